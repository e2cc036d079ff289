//! The image variant of the `live-session` scenario ([`super::live`]): the ISO's live-session
//! overlay (`iso/airootfs/`) and KOOMPI's branding, collected from the repository and applied
//! to the rig's Debian userland ([`Overlay`]); and the generic file helpers it shares with
//! [`super::image`]: the tree walk ([`walk`]) and the files' hashes ([`sha256_files`]).
//!
//! `.vm-cache/koompi-live-<hash>.img` is built like the installed-system image
//! ([`super::image`]), keyed additionally by every applied overlay file, the branding files
//! and `iso/profiledef.sh`, with these differences:
//!
//! - **No root autologin and no empty root password**: the serial console gets the stock
//!   `serial-getty@ttyS0` (agetty shows `/etc/issue` and `koompi-live login:`), and root stays
//!   locked as the overlay's `/etc/shadow` says. The overlay configures no autologin on any
//!   console, so a real login is what a user of the ISO sees on ttyS0.
//! - **The kernel command line of the ISO's serial boot entry**: `archisobasedir=<install_dir
//!   of profiledef.sh> console=tty0` before the rig's `console=ttyS0,115200 panic=10`, so the
//!   overlay's `ConditionKernelCommandLine=!archisobasedir` drop-ins switch the boot watchdog
//!   and the snapshot timer off as on the ISO. (Debian's initramfs ignores the argument.)
//! - **`iso/airootfs/` is applied the way mkarchiso applies it**, after the rig's own
//!   configuration: every file and symlink copied over the root (files 0644, or 0755 when
//!   executable in the repository, as `cp --no-preserve=mode` does), then `file_permissions`
//!   of `iso/profiledef.sh` (owner, group, mode), then each user of the overlay's
//!   `/etc/passwd` with a UID from 1000 to 59999 gets a home made from `/etc/skel` (0750,
//!   owned by the user), then `systemd-sysusers` runs in the image (on Arch the pacman hook
//!   of systemd runs it while mkarchiso installs the packages), which applies
//!   `sysusers.d/koompi-live.conf`: koompi joins wheel, video, audio and input (wheel is
//!   created; Debian has none).
//! - **The account files are merged, not replaced**: an entry of the overlay's `passwd`,
//!   `shadow`, `group` or `gshadow` replaces Debian's entry of the same name or is added; the
//!   other Debian entries stay. On the ISO, too, the overlay's files are kept and the
//!   packages add their system accounts to them (systemd-sysusers); Debian's base-passwd
//!   accounts play that part here.
//! - `/etc/hosts` names the overlay's hostname instead of the rig's `koompi`.
//! - Debian's `/etc/localtime` is removed first (no Arch package makes one; only the
//!   overlay's link is there, as on the ISO).
//! - `/etc/machine-id` is `uninitialized`, as mkarchiso writes it: every boot of the live
//!   medium is a first boot, so `systemd-firstboot` and the other `ConditionFirstBoot` units
//!   run as on the ISO (a prompt on the console would stop the scenario at its login).
//! - **The branding, where koompi-branding and its pacman hook put it**: `branding/os-release`
//!   as `/usr/lib/os-release` with `/etc/os-release` a symlink to `../usr/lib/os-release`,
//!   `branding/motd` as `/etc/motd`, `branding/issue` as `/etc/issue`, the package's copies of
//!   the three in `/usr/share/koompi/branding/`, `/etc/fastfetch/config.jsonc`, the Plymouth
//!   theme and the wallpapers. The hook script itself is not run (Debian's own motd and issue
//!   are not Arch's, which the script would leave alone as local edits); the packaging test
//!   (`packaging/test/run-pacman-test.sh`) proves with real pacman that the hook produces
//!   exactly these files.
//!
//! Skipped from `iso/airootfs/`, because it cannot apply to a Debian userland ([`SKIPPED`]):
//!
//! - `etc/pacman.d/hooks/`: pacman hooks of the ISO build (locale-gen, the Plymouth theme,
//!   the XDG directories in /etc/skel, the mirror list, and archiso's hook that deletes them
//!   all at the end of the build, so the ISO never has them either). Debian has no pacman.
//!   In consequence the locales of `locale.gen` are not generated (Debian's minbase has no
//!   locale-gen) and /etc/skel has no XDG directories.
//! - `etc/mkinitcpio.conf.d/` and `etc/mkinitcpio.d/`: mkinitcpio's configuration; the rig's
//!   Debian builds its initramfs with initramfs-tools, and archiso's boot hooks exist only on
//!   the ISO.
//! - `etc/systemd/system/pacman-init.service`, its `multi-user.target.wants/` link and
//!   `etc-pacman.d-gnupg.mount`: the live pacman keyring; `pacman-key` does not exist on
//!   Debian, so the unit could only fail.
//!
//! Everything else is applied as it is, including `locale.conf`, `vconsole.conf`,
//! `zram-generator.conf`, `sudoers.d/wheel` and the enablement symlinks of units Debian does
//! not have (NetworkManager, bluetooth, tlp, acpid, reflector, timesyncd): systemd ignores
//! links to units that do not exist, and the other files are inert without their programs
//! (no sudo, zram-generator or kbd in the rig's userland).

use std::collections::BTreeSet;
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{bail, ensure, Context, Result};

use super::{cmd, path_str};

/// Part of the live image's cache key: change it when this module changes what goes into it.
const LIVE_VERSION: &str = "koompi-vm-live 5";

/// Paths under `iso/airootfs/` (a trailing `/` means everything below) that are not applied,
/// and why.
pub const SKIPPED: [(&str, &str); 6] = [
    (
        "etc/pacman.d/hooks/",
        "pacman hooks of the ISO build (deleted from the ISO at the end of the build); no pacman",
    ),
    (
        "etc/mkinitcpio.conf.d/",
        "mkinitcpio configuration; the rig's initramfs is initramfs-tools'",
    ),
    (
        "etc/mkinitcpio.d/",
        "mkinitcpio preset; the rig's initramfs is initramfs-tools'",
    ),
    (
        "etc/systemd/system/pacman-init.service",
        "the live pacman keyring: pacman-key does not exist on Debian",
    ),
    (
        "etc/systemd/system/multi-user.target.wants/pacman-init.service",
        "enables pacman-init.service (skipped)",
    ),
    (
        "etc/systemd/system/etc-pacman.d-gnupg.mount",
        "the tmpfs for the live pacman keyring (pacman-init.service is skipped)",
    ),
];

/// What the rig does for each pacman hook of the ISO build (`etc/pacman.d/hooks/`, not
/// copied into the image): on the ISO they run while mkarchiso installs the packages; the
/// rig runs the same command in the image's chroot after applying the overlay (the hook's
/// `Exec`, its program found on Debian's PATH: locale-gen and plymouth-set-default-theme are
/// in /usr/sbin there), or says why not. A test holds this table to the hook files.
pub const HOOKS: [(&str, Hook); 5] = [
    ("30-koompi-locale-gen.hook", Hook::Run(&["locale-gen"])),
    (
        "40-koompi-plymouth-theme.hook",
        Hook::Run(&["plymouth-set-default-theme", "koompi"]),
    ),
    (
        "50-koompi-xdg-user-dirs.hook",
        Hook::Skip("xdg-user-dirs is not in the rig's userland"),
    ),
    (
        "uncomment-mirrors.hook",
        Hook::Skip("pacman's mirror list; the rig has no Arch mirror"),
    ),
    (
        "zzzz99-remove-custom-hooks-from-airootfs.hook",
        Hook::Skip("deletes the hooks from the ISO; the rig never copies them"),
    ),
];

/// One row of [`HOOKS`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Hook {
    /// The command (program and arguments) run in the chroot.
    Run(&'static [&'static str]),
    /// Not run, and why.
    Skip(&'static str),
}

/// The commands of [`HOOKS`] to run in the image's chroot, in the hooks' order.
pub fn hook_commands() -> Vec<&'static [&'static str]> {
    HOOKS
        .iter()
        .filter_map(|(_, h)| match h {
            Hook::Run(argv) => Some(*argv),
            Hook::Skip(_) => None,
        })
        .collect()
}

/// Units that Debian's maintainer scripts enable when mmdebstrap installs their packages. No
/// Arch package enables a unit: on the ISO only the overlay's links do. The rig removes every
/// link to these before applying the overlay, so that what the `base-edition` scenario finds
/// enabled is what `iso/airootfs/` enables.
pub const DEBIAN_ENABLED: [&str; 9] = [
    "NetworkManager.service",
    "NetworkManager-wait-online.service",
    "NetworkManager-dispatcher.service",
    "tlp.service",
    "acpid.service",
    "acpid.socket",
    "acpid.path",
    "bluetooth.service",
    "fstrim.timer",
];

/// Removes the links under `/etc/systemd/system` of `r` that point at a unit of
/// [`DEBIAN_ENABLED`]; returns how many.
fn remove_debian_enablement(r: &Path) -> Result<usize> {
    let dir = r.join("etc/systemd/system");
    if !dir.is_dir() {
        return Ok(0);
    }
    let mut removed = 0;
    for rel in walk(&dir)? {
        let p = dir.join(&rel);
        let Ok(target) = fs::read_link(&p) else {
            continue;
        };
        let unit = target.file_name().map(|n| n.to_string_lossy().into_owned());
        if unit.is_some_and(|u| DEBIAN_ENABLED.contains(&u.as_str())) {
            remove(&p)?;
            removed += 1;
        }
    }
    Ok(removed)
}

/// Where the rig puts its own probe files in the live image (nothing of KOOMPI's).
pub const RIG_SHARE: &str = "/usr/local/share/koompi-vm";

/// The files of `iso/airootfs/etc/` that are merged entry by entry instead of replaced.
const ACCOUNT_FILES: [&str; 4] = ["etc/passwd", "etc/shadow", "etc/group", "etc/gshadow"];

/// One thing from `iso/airootfs/` to put into the image.
#[derive(Debug)]
enum Entry {
    File {
        src: PathBuf,
        rel: String,
        mode: u32,
    },
    Link {
        rel: String,
        target: String,
    },
}

impl Entry {
    fn rel(&self) -> &str {
        match self {
            Entry::File { rel, .. } | Entry::Link { rel, .. } => rel,
        }
    }
}

/// `file_permissions` of `iso/profiledef.sh`: path, uid, gid, mode.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Permission {
    path: String,
    uid: u32,
    gid: u32,
    mode: u32,
}

/// The volume label of the rig's install medium ([`super::image`]), named by
/// `archisolabel=` as on the ISO.
pub const MEDIUM_LABEL: &str = "KOOMPI_RIG";

/// The live-session overlay and the branding, collected from the repository.
#[derive(Debug)]
pub struct Overlay {
    entries: Vec<Entry>,
    /// Paths left out ([`SKIPPED`]).
    skipped: Vec<String>,
    permissions: Vec<Permission>,
    install_dir: String,
    /// Branding files: source, destination in the guest.
    branding: Vec<(PathBuf, String)>,
}

impl Overlay {
    /// Reads `iso/airootfs/`, `iso/profiledef.sh` and `branding/` under `root`.
    pub fn collect(root: &Path) -> Result<Overlay> {
        let airootfs = root.join("iso/airootfs");
        let mut entries = Vec::new();
        let mut skipped = Vec::new();
        for rel in walk(&airootfs)? {
            let src = airootfs.join(&rel);
            let rel = rel
                .to_str()
                .with_context(|| format!("path is not UTF-8: {}", src.display()))?
                .to_string();
            if skip_reason(&rel).is_some() {
                skipped.push(rel);
                continue;
            }
            let meta = fs::symlink_metadata(&src)
                .with_context(|| format!("cannot stat {}", src.display()))?;
            if meta.file_type().is_symlink() {
                let target = fs::read_link(&src)
                    .with_context(|| format!("cannot read the link {}", src.display()))?;
                entries.push(Entry::Link {
                    rel,
                    target: path_str(&target)?.to_string(),
                });
            } else {
                let mode = if meta.permissions().mode() & 0o111 != 0 {
                    0o755
                } else {
                    0o644
                };
                entries.push(Entry::File { src, rel, mode });
            }
        }
        ensure!(
            entries.iter().any(|e| e.rel() == "etc/passwd"),
            "{} has no etc/passwd: no live user to log in as",
            airootfs.display()
        );
        let profiledef = root.join("iso/profiledef.sh");
        let text = fs::read_to_string(&profiledef)
            .with_context(|| format!("cannot read {}", profiledef.display()))?;
        let permissions = parse_file_permissions(&text)
            .with_context(|| format!("in {}", profiledef.display()))?;
        let install_dir = shell_value(&text, "install_dir")
            .with_context(|| format!("no install_dir=\"…\" in {}", profiledef.display()))?;

        let b = root.join("branding");
        let mut branding = Vec::new();
        // koompi-branding's hook: os-release, motd, issue in place (see the module docs).
        for (name, dest) in [
            ("os-release", "/usr/lib/os-release"),
            ("motd", "/etc/motd"),
            ("issue", "/etc/issue"),
        ] {
            branding.push((b.join(name), dest.to_string()));
            branding.push((b.join(name), format!("/usr/share/koompi/branding/{name}")));
        }
        // The installed system's /etc/issue, which koompi-install puts in place.
        branding.push((
            b.join("issue.installed"),
            "/usr/share/koompi/branding/issue.installed".into(),
        ));
        branding.push((
            b.join("fastfetch/config.jsonc"),
            "/etc/fastfetch/config.jsonc".into(),
        ));
        let plymouth = b.join("plymouth/koompi");
        for rel in walk(&plymouth)? {
            branding.push((
                plymouth.join(&rel),
                format!("/usr/share/plymouth/themes/koompi/{}", rel.display()),
            ));
        }
        let wallpapers = b.join("wallpapers");
        for rel in walk(&wallpapers)? {
            let name = rel.to_string_lossy().into_owned();
            let image = [".png", ".jpg", ".jpeg", ".svg", ".webp"]
                .iter()
                .any(|ext| name.ends_with(ext));
            if image && !name.contains('/') {
                branding.push((
                    wallpapers.join(&rel),
                    format!("/usr/share/koompi/wallpapers/{name}"),
                ));
            }
        }
        // koompi-configs' system-wide files: Khmer input for every user.
        for (src, dest) in [
            ("configs/fcitx5/profile", "/etc/xdg/fcitx5/profile"),
            (
                "configs/fcitx5/koompi-input-method.sh",
                "/etc/profile.d/koompi-input-method.sh",
            ),
        ] {
            branding.push((root.join(src), dest.to_string()));
        }
        // The rig's own probes for the base-edition scenario (not part of any package).
        for name in ["words.txt", "fcitx5-probe.sh"] {
            branding.push((
                root.join("crates/koompi-testutil/data/khmer").join(name),
                format!("{RIG_SHARE}/khmer/{name}"),
            ));
        }
        for (src, _) in &branding {
            ensure!(src.is_file(), "{} does not exist", src.display());
        }
        Ok(Overlay {
            entries,
            skipped,
            permissions,
            install_dir,
            branding,
        })
    }

    /// What the live image's cache key covers beyond the installed image's key.
    pub fn key_spec(&self) -> Result<String> {
        let mut spec = format!("{LIVE_VERSION}\ninstall_dir={}\n", self.install_dir);
        let files: Vec<&Path> = self
            .entries
            .iter()
            .filter_map(|e| match e {
                Entry::File { src, .. } => Some(src.as_path()),
                Entry::Link { .. } => None,
            })
            .chain(self.branding.iter().map(|(src, _)| src.as_path()))
            .collect();
        let mut sums = sha256_files(&files)?.into_iter();
        for e in &self.entries {
            match e {
                Entry::File { rel, mode, .. } => {
                    let sum = sums.next().context("sha256sum printed too few hashes")?;
                    spec.push_str(&format!("overlay {mode:o} {rel} {sum}\n"));
                }
                Entry::Link { rel, target } => {
                    spec.push_str(&format!("overlay link {rel} {target}\n"));
                }
            }
        }
        for (_, dest) in &self.branding {
            let sum = sums.next().context("sha256sum printed too few hashes")?;
            spec.push_str(&format!("branding {dest} {sum}\n"));
        }
        for p in &self.permissions {
            spec.push_str(&format!(
                "permission {} {}:{}:{:o}\n",
                p.path, p.uid, p.gid, p.mode
            ));
        }
        Ok(spec)
    }

    /// The kernel arguments of the ISO's serial boot entry that matter in the rig.
    pub fn kernel_args(&self) -> String {
        format!(
            "archisobasedir={} archisolabel={MEDIUM_LABEL} console=tty0",
            self.install_dir
        )
    }

    /// One line for the build's progress output.
    pub fn summary(&self) -> String {
        format!(
            "live overlay: {} paths of iso/airootfs applied, {} skipped ({}), {} branding files",
            self.entries.len(),
            self.skipped.len(),
            self.skipped.join(", "),
            self.branding.len()
        )
    }

    /// Applies the overlay and the branding to the root at `r` (on the host, before the
    /// chroot steps; `systemd-sysusers` runs afterwards in the chroot).
    pub fn apply(&self, r: &Path) -> Result<()> {
        // No Arch package creates /etc/localtime (Debian's tzdata does): on the ISO it is
        // there only if the overlay brings it, and without it the first boot asks.
        remove(&r.join("etc/localtime"))?;
        let removed = remove_debian_enablement(r)?;
        super::progress(&format!(
            "  removed {removed} unit link(s) Debian's packages made (only the overlay enables)"
        ));
        for e in &self.entries {
            let dest = r.join(e.rel());
            if let Some(parent) = dest.parent() {
                fs::create_dir_all(parent)
                    .with_context(|| format!("cannot create {}", parent.display()))?;
            }
            match e {
                Entry::File { src, rel, .. } if ACCOUNT_FILES.contains(&rel.as_str()) => {
                    let ours = fs::read_to_string(src)
                        .with_context(|| format!("cannot read {}", src.display()))?;
                    let theirs = match fs::read_to_string(&dest) {
                        Ok(t) => t,
                        Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
                        Err(e) => {
                            return Err(e)
                                .with_context(|| format!("cannot read {}", dest.display()))
                        }
                    };
                    fs::write(&dest, merge_accounts(&theirs, &ours))
                        .with_context(|| format!("cannot write {}", dest.display()))?;
                }
                Entry::File { src, mode, .. } => {
                    remove(&dest)?;
                    fs::copy(src, &dest).with_context(|| {
                        format!("cannot copy {} to {}", src.display(), dest.display())
                    })?;
                    fs::set_permissions(&dest, fs::Permissions::from_mode(*mode))
                        .with_context(|| format!("cannot set the mode of {}", dest.display()))?;
                }
                Entry::Link { target, .. } => {
                    remove(&dest)?;
                    std::os::unix::fs::symlink(target, &dest).with_context(|| {
                        format!("cannot create the symlink {} -> {target}", dest.display())
                    })?;
                }
            }
        }
        let hostname = fs::read_to_string(r.join("etc/hostname"))
            .context("cannot read the overlay's /etc/hostname")?;
        fs::write(
            r.join("etc/hosts"),
            format!(
                "127.0.0.1 localhost\n127.0.1.1 {}\n::1 localhost ip6-localhost ip6-loopback\n",
                hostname.trim()
            ),
        )
        .context("cannot write /etc/hosts")?;
        // As mkarchiso leaves it: every boot of the live medium is a first boot, so
        // ConditionFirstBoot units (systemd-firstboot's prompts) run as on the ISO.
        fs::write(r.join("etc/machine-id"), "uninitialized\n")
            .context("cannot write /etc/machine-id")?;

        for (src, dest) in &self.branding {
            let d = r.join(dest.trim_start_matches('/'));
            if let Some(parent) = d.parent() {
                fs::create_dir_all(parent)
                    .with_context(|| format!("cannot create {}", parent.display()))?;
            }
            remove(&d)?;
            fs::copy(src, &d)
                .with_context(|| format!("cannot copy {} to {}", src.display(), d.display()))?;
            fs::set_permissions(&d, fs::Permissions::from_mode(0o644))
                .with_context(|| format!("cannot set the mode of {}", d.display()))?;
        }
        let etc_os_release = r.join("etc/os-release");
        remove(&etc_os_release)?;
        std::os::unix::fs::symlink("../usr/lib/os-release", &etc_os_release)
            .context("cannot link /etc/os-release to ../usr/lib/os-release")?;

        for p in &self.permissions {
            let at = r.join(p.path.trim_start_matches('/'));
            ensure!(
                fs::symlink_metadata(&at).is_ok(),
                "file_permissions of iso/profiledef.sh names {}, which the overlay does not have",
                p.path
            );
            std::os::unix::fs::chown(&at, Some(p.uid), Some(p.gid))
                .with_context(|| format!("cannot chown {}", at.display()))?;
            fs::set_permissions(&at, fs::Permissions::from_mode(p.mode))
                .with_context(|| format!("cannot set the mode of {}", at.display()))?;
        }
        self.make_homes(r)
    }

    /// mkarchiso's "Copying /etc/skel/* to user homes": every user of the overlay's passwd
    /// with a UID from 1000 to 59999 and a real home gets /etc/skel, 0750, owned by them.
    fn make_homes(&self, r: &Path) -> Result<()> {
        let passwd = self
            .entries
            .iter()
            .find_map(|e| match e {
                Entry::File { src, rel, .. } if rel == "etc/passwd" => Some(src),
                _ => None,
            })
            .context("the overlay has no etc/passwd")?;
        let text = fs::read_to_string(passwd)
            .with_context(|| format!("cannot read {}", passwd.display()))?;
        for line in text.lines() {
            let f: Vec<&str> = line.split(':').collect();
            if f.len() < 7 {
                continue;
            }
            let (Ok(uid), Ok(gid)) = (f[2].parse::<u32>(), f[3].parse::<u32>()) else {
                continue;
            };
            let home = f[5];
            if !(1000..60000).contains(&uid) || home.is_empty() || home == "/" {
                continue;
            }
            ensure!(
                home.starts_with('/') && !home.split('/').any(|c| c == ".."),
                "{}'s home {home:?} is not an absolute path inside the root",
                f[0]
            );
            let dir = r.join(home.trim_start_matches('/'));
            fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
            cmd::run(
                Command::new("cp")
                    .args(["-dRT", "--preserve=mode,timestamps,links", "--"])
                    .arg(r.join("etc/skel/."))
                    .arg(&dir),
            )?;
            fs::set_permissions(&dir, fs::Permissions::from_mode(0o750))
                .with_context(|| format!("cannot set the mode of {}", dir.display()))?;
            cmd::run(
                Command::new("chown")
                    .args(["-hR", "--"])
                    .arg(format!("{uid}:{gid}"))
                    .arg(&dir),
            )?;
        }
        Ok(())
    }
}

/// Why `rel` (relative to iso/airootfs) is skipped, if it is.
fn skip_reason(rel: &str) -> Option<&'static str> {
    SKIPPED.iter().find_map(|(path, why)| {
        let hit = match path.strip_suffix('/') {
            Some(dir) => rel.starts_with(path) || rel == dir,
            None => rel == *path,
        };
        hit.then_some(*why)
    })
}

/// Removes a file or symlink at `p` if there is one.
pub(super) fn remove(p: &Path) -> Result<()> {
    match fs::remove_file(p) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e).with_context(|| format!("cannot remove {}", p.display())),
    }
}

/// An account file (`name:...` lines) with `ours` laid over `theirs`: each of our entries
/// replaces theirs of the same name in place or is appended; their other entries stay.
fn merge_accounts(theirs: &str, ours: &str) -> String {
    let name = |l: &str| l.split(':').next().unwrap_or("").to_string();
    let ours: Vec<&str> = ours.lines().filter(|l| !l.trim().is_empty()).collect();
    let mut used = BTreeSet::new();
    let mut out = String::new();
    for l in theirs.lines().filter(|l| !l.trim().is_empty()) {
        match ours.iter().find(|o| name(o) == name(l)) {
            Some(o) => {
                used.insert(name(o));
                out.push_str(o);
            }
            None => out.push_str(l),
        }
        out.push('\n');
    }
    for o in ours {
        if !used.contains(&name(o)) {
            out.push_str(o);
            out.push('\n');
        }
    }
    out
}

/// The entries of `file_permissions=( ["PATH"]="UID:GID:MODE" ... )`.
fn parse_file_permissions(profiledef: &str) -> Result<Vec<Permission>> {
    let mut out = Vec::new();
    let mut inside = false;
    for line in profiledef.lines() {
        let l = line.trim();
        if l.starts_with("file_permissions=(") {
            inside = true;
            continue;
        }
        if !inside {
            continue;
        }
        if l == ")" {
            break;
        }
        if l.is_empty() || l.starts_with('#') {
            continue;
        }
        let parsed = l
            .strip_prefix("[\"")
            .and_then(|r| r.split_once("\"]=\""))
            .and_then(|(path, r)| Some((path, r.strip_suffix('"')?)))
            .and_then(|(path, spec)| {
                let mut f = spec.split(':');
                let uid = f.next()?.parse().ok()?;
                let gid = f.next()?.parse().ok()?;
                let mode = u32::from_str_radix(f.next()?, 8).ok()?;
                f.next().is_none().then(|| Permission {
                    path: path.to_string(),
                    uid,
                    gid,
                    mode,
                })
            });
        match parsed {
            Some(p) => out.push(p),
            None => bail!("cannot parse this file_permissions entry: {l}"),
        }
    }
    ensure!(!out.is_empty(), "no file_permissions=( ... ) entries");
    Ok(out)
}

/// The value of `name="value"` at the start of a line.
fn shell_value(text: &str, name: &str) -> Option<String> {
    text.lines().find_map(|l| {
        let v = l.trim().strip_prefix(name)?.strip_prefix('=')?;
        let v = v.trim();
        let v = v
            .strip_prefix('"')
            .and_then(|v| v.strip_suffix('"'))
            .unwrap_or(v);
        (!v.is_empty()).then(|| v.to_string())
    })
}

/// Files and symlinks under `dir` (not following symlinks), as sorted relative paths.
pub(super) fn walk(dir: &Path) -> Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    let mut stack = vec![PathBuf::new()];
    while let Some(rel) = stack.pop() {
        let abs = dir.join(&rel);
        for e in fs::read_dir(&abs).with_context(|| format!("cannot read {}", abs.display()))? {
            let e = e.with_context(|| format!("cannot read {}", abs.display()))?;
            let ty = e
                .file_type()
                .with_context(|| format!("cannot stat {}", e.path().display()))?;
            let r = rel.join(e.file_name());
            if ty.is_dir() {
                stack.push(r);
            } else {
                out.push(r);
            }
        }
    }
    out.sort();
    Ok(out)
}

/// The SHA-256 of each file, in order.
pub(super) fn sha256_files(files: &[&Path]) -> Result<Vec<String>> {
    if files.is_empty() {
        return Ok(Vec::new());
    }
    let out = cmd::stdout(Command::new("sha256sum").arg("--").args(files))?;
    let sums: Vec<String> = out
        .lines()
        .filter_map(|l| l.split_whitespace().next())
        .map(|h| h.trim_start_matches('\\').to_string())
        .collect();
    if sums.len() != files.len() {
        bail!(
            "sha256sum printed {} hashes for {} files",
            sums.len(),
            files.len()
        );
    }
    Ok(sums)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn overlay_entries_replace_theirs_and_the_rest_stays() {
        let theirs = "root:x:0:0:root:/root:/bin/bash\ndaemon:x:1:1::/:/bin/false\n";
        let ours =
            "root:x:0:0:root:/root:/bin/bash\nkoompi:x:1000:1000::/home/koompi:/usr/bin/zsh\n";
        assert_eq!(
            merge_accounts(theirs, ours),
            "root:x:0:0:root:/root:/bin/bash\ndaemon:x:1:1::/:/bin/false\n\
             koompi:x:1000:1000::/home/koompi:/usr/bin/zsh\n"
        );
        assert_eq!(
            merge_accounts("root::19000:0:99999:7:::\n", "root:!*:14871::::::\n"),
            "root:!*:14871::::::\n"
        );
    }

    #[test]
    fn the_profiles_file_permissions_parse() {
        let text = "x=1\nfile_permissions=(\n  [\"/etc/shadow\"]=\"0:0:400\"\n  \
                    [\"/etc/sudoers.d\"]=\"0:0:750\"\n)\ninstall_dir=\"koompi\"\n";
        let p = parse_file_permissions(text).expect("parses");
        assert_eq!(p.len(), 2);
        assert_eq!(
            p[1],
            Permission {
                path: "/etc/sudoers.d".into(),
                uid: 0,
                gid: 0,
                mode: 0o750
            }
        );
        assert_eq!(shell_value(text, "install_dir").as_deref(), Some("koompi"));
        assert!(parse_file_permissions("file_permissions=(\n  [\"/x\"]=\"0:0\"\n)\n").is_err());
    }

    #[test]
    fn the_real_profile_and_overlay_are_understood() {
        let root = crate::host::workspace_root().expect("workspace root");
        let o = Overlay::collect(&root).expect("the overlay collects");
        assert!(o.kernel_args().starts_with("archisobasedir="));
        assert!(o.permissions.iter().any(|p| p.path == "/etc/shadow"));
        assert!(o
            .skipped
            .iter()
            .any(|s| s.starts_with("etc/pacman.d/hooks/")));
        assert!(o.entries.iter().any(|e| e.rel() == "etc/skel/.zshrc"));
        assert!(!o.entries.iter().any(|e| e.rel().contains("mkinitcpio")));
    }

    #[test]
    fn the_hook_table_matches_the_profiles_hooks() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../iso/airootfs/etc/pacman.d/hooks");
        let files: BTreeSet<String> = walk(&dir)
            .expect("hooks")
            .iter()
            .map(|p| p.to_string_lossy().into_owned())
            .collect();
        let rows: BTreeSet<String> = HOOKS.iter().map(|(f, _)| f.to_string()).collect();
        assert_eq!(
            files, rows,
            "every hook file has a row in HOOKS, and only those"
        );
        for (file, hook) in HOOKS {
            let Hook::Run(argv) = hook else { continue };
            let text = fs::read_to_string(dir.join(file)).expect("hook");
            let exec = text
                .lines()
                .find_map(|l| l.strip_prefix("Exec = "))
                .expect("an Exec line");
            let words: Vec<&str> = exec.split_whitespace().collect();
            let program = words[0].rsplit('/').next().expect("program");
            assert_eq!(program, argv[0], "{file}: the rig runs another program");
            assert_eq!(
                &words[1..],
                &argv[1..],
                "{file}: the rig runs other arguments"
            );
        }
    }

    #[test]
    fn debian_enablement_links_are_removed_and_others_stay() {
        let t = tempfile::tempdir().expect("tempdir");
        let sys = t.path().join("etc/systemd/system");
        let wants = sys.join("multi-user.target.wants");
        fs::create_dir_all(&wants).expect("mkdir");
        let link = |name: &str, target: &str| {
            std::os::unix::fs::symlink(target, wants.join(name)).expect("symlink")
        };
        link("tlp.service", "/lib/systemd/system/tlp.service");
        link("ssh.service", "/lib/systemd/system/ssh.service");
        std::os::unix::fs::symlink(
            "/lib/systemd/system/NetworkManager.service",
            sys.join("dbus-org.freedesktop.NetworkManager.service"),
        )
        .expect("symlink");
        assert_eq!(remove_debian_enablement(t.path()).expect("remove"), 2);
        assert!(fs::symlink_metadata(wants.join("ssh.service")).is_ok());
        assert!(fs::symlink_metadata(wants.join("tlp.service")).is_err());
    }

    #[test]
    fn skip_rules_match_directories_and_files() {
        assert!(skip_reason("etc/pacman.d/hooks/x.hook").is_some());
        assert!(skip_reason("etc/mkinitcpio.d/linux-lts.preset").is_some());
        assert!(skip_reason("etc/systemd/system/pacman-init.service").is_some());
        assert!(skip_reason("etc/pacman.d/mirrorlist").is_none());
        assert!(skip_reason("etc/systemd/system/koompi-boot-success.service.d/x.conf").is_none());
    }
}
