//! The `live-session` scenario and the image variant it boots: the ISO's live-session overlay
//! (`iso/airootfs/`) and KOOMPI's branding on the rig's Debian userland, logged into at the
//! serial console's real `login:` prompt as a user of the ISO would.
//!
//! # The image variant
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
//!
//! # The scenario
//!
//! 1. Boot; wait for `login: ` on ttyS0 (the boot is one kernel banner), then for the
//!    console to go quiet. `/etc/issue` (`branding/issue` with `\r` and `\m` expanded from
//!    the kernel banner) must be on screen above the prompt.
//! 2. `koompi` and a wrong password: must give `Login incorrect` and a new `login:` prompt (a
//!    login that accepted anything would prove nothing).
//! 3. `koompi` / `koompi`: `Login incorrect` fails the scenario with a readable message;
//!    otherwise the shell prompt (`koompi@…`) must come. Between the password and the prompt
//!    `branding/motd` must be on screen, byte for byte as one block, and its distinctive
//!    lines ([`MOTD_LANDMARKS`]) must be among the lines shown.
//! 4. In that shell: `echo $0` is `-zsh`; `id -un` is koompi and `id -nG` has wheel, video,
//!    audio and input; `hostname` is `koompi-live`; `grep PRETTY_NAME /etc/os-release` prints
//!    exactly `PRETTY_NAME="KOOMPI OS Base Edition"`; `/etc/os-release` is a symlink to
//!    `../usr/lib/os-release`.
//!
//! The expected texts are fixed here ([`HOSTNAME`], [`PRETTY_NAME`], [`USER`], [`PASSWORD`])
//! or compiled in from `branding/` (the motd and issue), never read back from the image.
//!
//! What it does not prove: that the ISO itself boots. It has the rig's disk layout, Debian's
//! kernel, initramfs, PAM, `login` and zsh instead of Arch's, and Debian's `login` shows
//! `uname -a` (`/etc/update-motd.d/10-uname`) above the motd, which Arch's does not. The real
//! ISO can only be built on an Arch host (`scripts/build-iso.sh`, docs/building.md).

use std::collections::BTreeSet;
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use anyhow::{bail, ensure, Context, Result};

use super::console::{find, strip_escapes, Console, BOOT_BANNER};
use super::image::walk;
use super::{cmd, path_str, progress};

/// Part of the live image's cache key: change it when this module changes what goes into it.
const LIVE_VERSION: &str = "koompi-vm-live 1";

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

/// The files of `iso/airootfs/etc/` that are merged entry by entry instead of replaced.
const ACCOUNT_FILES: [&str; 4] = ["etc/passwd", "etc/shadow", "etc/group", "etc/gshadow"];

/// What the user types at the login prompt: the credentials `/etc/issue` promises.
pub const USER: &str = "koompi";
/// The live user's password.
pub const PASSWORD: &str = "koompi";
/// The password that must be refused.
const WRONG_PASSWORD: &str = "not-koompi";
/// The live system's hostname.
pub const HOSTNAME: &str = "koompi-live";
/// The os-release line the live session must have.
pub const PRETTY_NAME: &str = "PRETTY_NAME=\"KOOMPI OS Base Edition\"";
/// The groups the live user must be in (`sysusers.d/koompi-live.conf`).
const GROUPS: [&str; 4] = ["wheel", "video", "audio", "input"];

/// The motd the live session must show: `branding/motd` (which `cargo xtask iso-lint` holds
/// to the seed's text byte for byte).
const MOTD: &str = include_str!("../../../branding/motd");
/// `/etc/issue`, shown by agetty above the login prompt (`\r` and `\m` expanded).
const ISSUE: &str = include_str!("../../../branding/issue");
/// Lines of the seed's motd that must be among the lines shown, whatever branding/motd says
/// (compared with surrounding blanks trimmed).
pub const MOTD_LANDMARKS: [&str; 3] = [
    "OS Base Edition",
    "Quick Start:",
    "Website: https://koompi.com",
];

/// From QEMU's start to the getty's login prompt.
const LOGIN_PROMPT_TIMEOUT: Duration = Duration::from_secs(600);
/// How long the console must stay silent before the rig types (boot messages are over).
const QUIET: Duration = Duration::from_secs(5);
/// Most time for the console to go quiet after the login prompt.
const QUIET_TIMEOUT: Duration = Duration::from_secs(180);
/// From the user name to `Password: `, from a wrong password to `Login incorrect` (PAM's 3 s
/// fail delay) and to the next prompt, from the password to the shell's prompt.
const STEP_TIMEOUT: Duration = Duration::from_secs(120);
/// An ordinary command in the live shell.
const CMD_TIMEOUT: Duration = Duration::from_secs(60);
/// The prompt the rig gives the live shell for its commands (`PS1='live''-vm$ '`, so that
/// the echo of that command line does not contain it).
const SHELL_PROMPT: &str = "live-vm$ ";

// ---------------------------------------------------------------------------------------
// The image variant
// ---------------------------------------------------------------------------------------

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
        let mut sums = super::image::sha256_files(&files)?.into_iter();
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
        format!("archisobasedir={} console=tty0", self.install_dir)
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
fn remove(p: &Path) -> Result<()> {
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

// ---------------------------------------------------------------------------------------
// The scenario
// ---------------------------------------------------------------------------------------

/// The console text from `from` to `to` (or the end): escapes and carriage returns removed.
fn screen(c: &Console, from: usize, to: Option<usize>) -> String {
    c.inspect(|buf| {
        let end = to.unwrap_or(buf.len()).min(buf.len());
        let seg = buf.get(from.min(end)..end).unwrap_or_default();
        strip_escapes(&String::from_utf8_lossy(seg).replace('\r', ""))
    })
}

/// Waits for `pattern` after `from`; returns the position just after it.
fn wait_text(c: &mut Console, from: usize, pattern: &str, timeout: Duration) -> Result<usize> {
    c.wait_until(timeout, &format!("`{}`", pattern.trim()), |buf| {
        let p = find(buf.get(from..)?, pattern.as_bytes())?;
        let end = from + p + pattern.len();
        Some((end, end))
    })
}

/// The kernel release from the last boot banner (`Linux version 6.1.0-… (…`).
fn kernel_release(text: &str) -> Option<String> {
    let at = text.rfind(BOOT_BANNER)? + BOOT_BANNER.len();
    text[at..].split_whitespace().next().map(str::to_string)
}

/// `branding/issue` as agetty shows it: `\r` is the kernel release, `\m` the machine.
fn expanded_issue(release: &str) -> String {
    ISSUE.replace("\\r", release).replace("\\m", "x86_64")
}

/// Every non-blank line of `expected` must be a line of `shown` (trailing blanks ignored);
/// returns the missing ones.
fn missing_lines<'a>(expected: &'a str, shown: &str) -> Vec<&'a str> {
    let lines: BTreeSet<&str> = shown.lines().map(str::trim_end).collect();
    expected
        .lines()
        .filter(|l| !l.trim().is_empty() && !lines.contains(l.trim_end()))
        .collect()
}

/// Checks that the motd is in `shown` (the console from the password to the shell prompt).
fn check_motd(shown: &str) -> Result<()> {
    let trimmed: BTreeSet<&str> = shown.lines().map(str::trim).collect();
    let landmarks: Vec<&str> = MOTD_LANDMARKS
        .iter()
        .copied()
        .filter(|l| !trimmed.contains(l))
        .collect();
    if shown.contains(MOTD) && landmarks.is_empty() {
        return Ok(());
    }
    let missing = missing_lines(MOTD, shown);
    let total = MOTD.lines().filter(|l| !l.trim().is_empty()).count();
    if !missing.is_empty() {
        bail!(
            "the KOOMPI motd (branding/motd) was not shown after login: {} of its {total} \
             lines are missing, the first: {:?}; the console between the password and the \
             shell prompt shows:\n{}",
            missing.len(),
            missing[0],
            shown.trim_end()
        );
    }
    if !landmarks.is_empty() {
        bail!(
            "the motd shown after login lacks the seed's line(s) {landmarks:?} \
             (branding/motd changed?); shown:\n{}",
            shown.trim_end()
        );
    }
    bail!(
        "every line of the KOOMPI motd (branding/motd) was shown after login, but not as one \
         block (something printed in between?):\n{}",
        shown.trim_end()
    )
}

/// Output of a live-shell command without kernel messages (`[   12.345] …`).
fn output_lines(out: &str) -> Vec<&str> {
    out.lines()
        .filter(|l| {
            !l.strip_prefix('[')
                .and_then(|r| r.split_once(']'))
                .is_some_and(|(t, _)| t.trim().parse::<f64>().is_ok())
        })
        .map(str::trim_end)
        .filter(|l| !l.is_empty())
        .collect()
}

/// `cmd` in the live shell, exit 0; its output lines.
fn lines_of(c: &mut Console, cmd: &str) -> Result<Vec<String>> {
    let out = c.run_ok(cmd, CMD_TIMEOUT)?;
    Ok(output_lines(&out).into_iter().map(String::from).collect())
}

/// `cmd` in the live shell must print exactly `want` (one line).
fn expect_line(c: &mut Console, cmd: &str, want: &str, what: &str) -> Result<()> {
    let got = lines_of(c, cmd)?;
    ensure!(
        got.len() == 1 && got[0] == want,
        "{what}: `{cmd}` printed {got:?}, expected exactly {want:?}"
    );
    Ok(())
}

/// The `live-session` scenario; returns the number of boots and a note for the summary.
pub fn session(c: &mut Console) -> Result<(usize, String)> {
    // 1. The getty's prompt, and /etc/issue above it.
    let prompt_end = wait_text(c, 0, "login: ", LOGIN_PROMPT_TIMEOUT)
        .context("no login prompt on the serial console")?;
    progress(&format!("  login prompt at {} s", c.elapsed_secs()));
    let boot = screen(c, 0, Some(prompt_end));
    let banner = boot.rfind(BOOT_BANNER).unwrap_or(0);
    let release = kernel_release(&boot).context("no kernel banner before the login prompt")?;
    let issue = expanded_issue(&release);
    let missing = missing_lines(&issue, &boot[banner..]);
    ensure!(
        missing.is_empty(),
        "/etc/issue (branding/issue) is not shown above the login prompt: missing {missing:?}"
    );
    c.wait_quiet(QUIET, QUIET_TIMEOUT)?;
    let failed: Vec<String> = screen(c, 0, None)
        .lines()
        .filter(|l| l.contains("[FAILED]"))
        .map(|l| l.trim().to_string())
        .collect();
    if !failed.is_empty() {
        progress(&format!(
            "note: the boot printed {} failure(s): {}",
            failed.len(),
            failed.join("; ")
        ));
    }
    let after_prompt = screen(c, prompt_end, None);
    let password_at;
    let mut detail = String::new();
    if after_prompt.contains("(automatic login)") {
        // The overlay logs someone in by itself: that is what the user sees, so no typing.
        let who = after_prompt.lines().next().unwrap_or("").trim().to_string();
        progress(&format!("  automatic login: {who}"));
        detail = format!(" (automatic login: {who})");
        password_at = prompt_end;
    } else {
        // 2. A wrong password must be refused.
        c.send(&format!("{USER}\n"))?;
        let at = wait_text(c, prompt_end, "Password: ", STEP_TIMEOUT)
            .with_context(|| format!("no `Password: ` prompt after the user name {USER}"))?;
        c.send(&format!("{WRONG_PASSWORD}\n"))?;
        let user_prompt = format!("{USER}@");
        let refused = c.wait_until(
            STEP_TIMEOUT,
            "`Login incorrect` after a wrong password",
            |buf| {
                let seg = buf.get(at..)?;
                if let Some(p) = find(seg, b"Login incorrect") {
                    let end = at + p + "Login incorrect".len();
                    return Some((Some(end), end));
                }
                let p = find(seg, user_prompt.as_bytes())?;
                Some((None, at + p))
            },
        );
        let refused = match refused {
            Ok(Some(end)) => end,
            Ok(None) => bail!(
                "the wrong password {WRONG_PASSWORD:?} logged {USER} in: the login does not \
                 check the password; the console shows:\n{}",
                screen(c, at, None).trim_end()
            ),
            Err(e) => {
                return Err(e).with_context(|| {
                    format!(
                        "a wrong password for {USER} was not refused; the console shows:\n{}",
                        screen(c, at, None).trim_end()
                    )
                })
            }
        };
        let again = wait_text(c, refused, "login: ", STEP_TIMEOUT)
            .context("no new login prompt after `Login incorrect`")?;
        progress("  a wrong password was refused");
        // 3. The real login.
        c.send(&format!("{USER}\n"))?;
        let at = wait_text(c, again, "Password: ", STEP_TIMEOUT)
            .with_context(|| format!("no `Password: ` prompt after the user name {USER}"))?;
        password_at = at;
        c.send(&format!("{PASSWORD}\n"))?;
    }
    let user_prompt = format!("{USER}@");
    let outcome = c.wait_until(
        STEP_TIMEOUT,
        &format!("the shell prompt `{user_prompt}…` after logging in"),
        |buf| {
            let seg = buf.get(password_at..)?;
            if let Some(p) = find(seg, b"Login incorrect") {
                return Some(((false, password_at + p), password_at + p));
            }
            let p = find(seg, user_prompt.as_bytes())?;
            Some(((true, password_at + p), password_at + p))
        },
    );
    let prompt_at = match outcome {
        Ok((true, at)) => at,
        Ok((false, _)) => bail!(
            "the login as {USER} with the password {PASSWORD:?} was refused (`Login \
             incorrect`): the live user's password in iso/airootfs/etc/shadow is not \
             {PASSWORD:?}, or the account is missing or locked"
        ),
        Err(e) => {
            return Err(e).with_context(|| {
                format!(
                    "after the password the console shows:\n{}",
                    screen(c, password_at, None).trim_end()
                )
            })
        }
    };
    progress(&format!("  logged in as {USER} at {} s", c.elapsed_secs()));
    let shown = screen(c, password_at, Some(prompt_at));
    check_motd(&shown)?;

    // 4. The live shell: what the user can ask the system.
    c.set_prompt(SHELL_PROMPT);
    c.run(
        "unsetopt zle prompt_sp prompt_cr 2>/dev/null; stty -echo cols 250 rows 50; \
         PS1='live''-vm$ '; export TERM=dumb PAGER=cat",
        CMD_TIMEOUT,
    )?;
    expect_line(
        c,
        "echo $0",
        "-zsh",
        "the live user's login shell (iso/airootfs/etc/passwd: /usr/bin/zsh)",
    )?;
    expect_line(c, "id -un", USER, "the logged-in user")?;
    let groups = lines_of(c, "id -nG")?.join(" ");
    let have: BTreeSet<&str> = groups.split_whitespace().collect();
    let lacking: Vec<&str> = GROUPS
        .iter()
        .copied()
        .filter(|g| !have.contains(g))
        .collect();
    ensure!(
        lacking.is_empty(),
        "{USER} is not in {lacking:?} (sysusers.d/koompi-live.conf); `id -nG` says: {groups}"
    );
    expect_line(c, "hostname", HOSTNAME, "the live system's hostname")?;
    expect_line(
        c,
        "grep PRETTY_NAME /etc/os-release",
        PRETTY_NAME,
        "the OS name in /etc/os-release",
    )?;
    expect_line(
        c,
        "readlink /etc/os-release",
        "../usr/lib/os-release",
        "/etc/os-release",
    )?;
    let boots = c.boots_since(0);
    ensure!(boots == 1, "{boots} boots in the live session (expected 1)");
    Ok((boots, detail))
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
    fn skip_rules_match_directories_and_files() {
        assert!(skip_reason("etc/pacman.d/hooks/x.hook").is_some());
        assert!(skip_reason("etc/mkinitcpio.d/linux-lts.preset").is_some());
        assert!(skip_reason("etc/systemd/system/pacman-init.service").is_some());
        assert!(skip_reason("etc/pacman.d/mirrorlist").is_none());
        assert!(skip_reason("etc/systemd/system/koompi-boot-success.service.d/x.conf").is_none());
    }

    #[test]
    fn the_motd_is_found_as_shown_and_missing_is_reported() {
        let shown = format!("Password: \nLinux koompi-live 6.1.0 x86_64\n{MOTD}\nkoompi@");
        assert!(check_motd(&shown).is_ok());
        let e = check_motd("Password: \nkoompi@").expect_err("no motd");
        assert!(format!("{e:#}").contains("was not shown after login"));
        // Every line, but interrupted by a kernel message.
        let mut lines: Vec<&str> = MOTD.lines().collect();
        lines.insert(3, "[   20.1] random: crng init done");
        let e = check_motd(&lines.join("\n")).expect_err("not one block");
        assert!(format!("{e:#}").contains("not as one block"));
    }

    #[test]
    fn the_issue_is_expanded_like_agetty() {
        let text = "Linux version 6.1.0-28-cloud-amd64 (debian-kernel@…) #1 SMP\n";
        let release = kernel_release(text).expect("release");
        assert_eq!(release, "6.1.0-28-cloud-amd64");
        let issue = expanded_issue(&release);
        assert!(issue.contains("Kernel: 6.1.0-28-cloud-amd64 on x86_64"));
        assert!(missing_lines(&issue, &format!("\x0c{issue}koompi-live login: ")).is_empty());
        assert!(!missing_lines(&issue, "Debian GNU/Linux 12 koompi-live login: ").is_empty());
    }

    #[test]
    fn kernel_messages_are_not_command_output() {
        assert_eq!(
            output_lines("[   12.5] random: crng init done\nkoompi-live\n"),
            vec!["koompi-live"]
        );
    }
}
