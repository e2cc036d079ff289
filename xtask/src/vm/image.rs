//! `cargo xtask vm-image`: the bootable test disk, laid out as DESIGN.md's installed system.
//!
//! 1. The Debian userland: an mmdebstrap tarball from the host's apt sources, cached as
//!    `.vm-cache/rootfs-<hash>.tar` (hash of suite, variant and package list).
//! 2. A sparse raw disk: GPT with a 1 MiB BIOS boot partition, a 512 MiB ESP (FAT32,
//!    KOOMPI-ESP) and a Btrfs (koompi) holding `@`, `@home`, `@snapshots`, `@var_log`.
//! 3. `@` mounted with the other subvolumes and the ESP in place, the tarball unpacked into
//!    it, the system configured (fstab by UUID, hostname, serial autologin, GRUB defaults),
//!    KOOMPI's binaries, units, grub.d scripts and configs installed where the packages put
//!    them, units enabled, the test-speed overrides added.
//! 4. In a chroot (proc, sysfs, a private /dev with the loop partitions and their
//!    /dev/disk/by-uuid links): initramfs, GRUB for BIOS and UEFI, grub.cfg.
//! 5. Last: the factory snapshot (the real koompi-snapshot) and `koompi-watchdog init`.
//!
//! The ESP is never mounted on the host (these test machines' kernels have no FAT driver):
//! its files are staged in a tmpfs at /boot/efi and copied onto the FAT with mtools.
//!
//! The finished image is cached as `.vm-cache/koompi-<hash>.img`, keyed by the rootfs hash,
//! every installed file and [`RIG_VERSION`]; with nothing changed a second run takes
//! seconds. Bump [`RIG_VERSION`] whenever this module changes what goes into the image.
//!
//! [`Variant::Live`] is the same recipe plus the ISO's live-session overlay and KOOMPI's
//! branding, without the root autologin ([`super::live`]), cached as
//! `.vm-cache/koompi-live-<hash>.img`.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use anyhow::{bail, Context, Result};

use super::console::PROMPT;
use super::disk::{LoopDevice, Mounts};
use super::overlay::{remove, sha256_files, walk, Overlay, MEDIUM_LABEL};
use super::{cmd, path_str, progress, ImageOptions};
use crate::host;

/// Part of the image's cache key: change it when the image recipe changes.
pub const RIG_VERSION: &str = "koompi-vm-rig 8";

/// Which image to build.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Variant {
    /// The installed system: root logged in on the serial console.
    Installed,
    /// The installed system with the ISO's live-session overlay and the branding applied,
    /// and a real login on the serial console ([`super::live`]).
    Live,
    /// The installed system with Debian's programs of the KOOMPI Lite edition (LightDM,
    /// Openbox, tint2, rofi, an X server), none enabled, and koompi-configs' files
    /// (`configs/`, the wallpapers, the greeter's look): what `koompi-desktop install lite`
    /// finds on a machine after the packages' files are there ([`super::desktop`]).
    Desktop,
}

impl Variant {
    /// The start of the image's file name in `.vm-cache/`.
    fn prefix(self) -> &'static str {
        match self {
            Variant::Installed => "koompi",
            Variant::Live => "koompi-live",
            Variant::Desktop => "koompi-desktop",
        }
    }
}

const SUITE_VARIANT: &str = "minbase";

/// The rig's kernel: Debian's cloud flavour (small, quick to boot; no DRM).
const CLOUD_KERNEL: &str = "linux-image-cloud-amd64";

/// Debian packages of the guest userland (plus mmdebstrap's minbase).
const PACKAGES: &[&str] = &[
    "systemd",
    "systemd-sysv",
    "udev",
    "btrfs-progs",
    CLOUD_KERNEL,
    "initramfs-tools",
    "grub-pc-bin",
    "grub-efi-amd64-bin",
    "grub2-common",
    "grub-common",
    "kmod",
    "dosfstools",
    "util-linux",
    "mount",
    "iproute2",
    "procps",
    // The live user's shell (iso/airootfs/etc/passwd).
    "zsh",
    // Real pacman for `koompi` (the upgrade-transactional scenario).
    "pacman-package-manager",
    // initramfs-tools' default compressor (without it, gzip).
    "zstd",
    // What koompi-install runs in the live system and in the installed one (the install
    // scenarios): sfdisk, unsquashfs, LUKS2 and its initramfs hook, locale-gen, sudo for
    // the live user, NetworkManager, which the installer enables, and efibootmgr for the
    // firmware's boot entry (install-beside boots through it).
    "fdisk",
    "efibootmgr",
    "squashfs-tools",
    "cryptsetup",
    "cryptsetup-initramfs",
    "locales",
    "sudo",
    "network-manager",
];

/// The Base edition's packages that the live image adds to [`PACKAGES`]: Debian's stand-ins
/// for what `iso/packages.x86_64` installs on the ISO (docs/building.md has the table), for
/// the promises the `base-edition` scenario checks ([`super::edition`]). The installed-system
/// image goes without them: its scenarios boot with root's autologin and need none.
const EDITION_PACKAGES: &[&str] = &[
    // zram swap (the overlay's /etc/systemd/zram-generator.conf), power management, ACPI
    // events, Bluetooth: enabled by the overlay's links.
    "systemd-zram-generator",
    "tlp",
    "acpid",
    "bluez",
    // The boot splash (the KOOMPI theme, a script theme: plymouth has script.so).
    "plymouth",
    // Khmer text: the fonts (Arch noto-fonts, ttf-khmer), fontconfig to find them and
    // hb-shape to shape with them.
    "fonts-noto-core",
    "fonts-khmeros",
    "fontconfig",
    "libharfbuzz-bin",
    // Khmer input: fcitx5 with m17n, and an X server and a session bus to start it in.
    "fcitx5",
    "fcitx5-m17n",
    "xvfb",
    "dbus-bin",
    "dbus-daemon",
    "dbus-session-bus-common",
];

/// The KOOMPI Lite edition's programs as Debian has them, for the `desktop-lite` scenario:
/// the real LightDM with its GTK greeter, Openbox, tint2, rofi and nitrogen, and Xorg (its
/// modesetting driver, on the generic kernel's DRM) with libinput. The pacman
/// packages `koompi-desktop` installs in the scenario are stand-ins named as Arch names them
/// (docs/building.md has the table); these are the programs behind them.
const DESKTOP_PACKAGES: &[&str] = &[
    "lightdm",
    "lightdm-gtk-greeter",
    "openbox",
    "tint2",
    "rofi",
    "nitrogen",
    "xserver-xorg-core",
    "xserver-xorg-input-libinput",
    "xauth",
    "libpam-systemd",
    "dbus-user-session",
    "fonts-dejavu-core",
];

/// Size of the sparse raw disk.
const IMAGE_SIZE: u64 = 3 << 30;

/// sfdisk script: BIOS boot, ESP, Linux root.
const PARTITIONS: &str = "label: gpt
size=1MiB, type=21686148-6449-6E6F-744E-656564454649, name=\"BIOS boot\"
size=512MiB, type=C12A7328-F81F-11D2-BA4B-00A0C93EC93B, name=\"EFI system\"
type=0FC63DAF-8483-4772-8E79-3D69D8477DE4, name=\"KOOMPI root\"
";

/// The Btrfs subvolumes in the top level and where they are mounted.
const SUBVOLUMES: [(&str, &str); 4] = [
    ("@", "/"),
    ("@home", "/home"),
    ("@snapshots", "/.snapshots"),
    ("@var_log", "/var/log"),
];

/// `/etc/default/grub`; `extra` goes in front of the kernel arguments (the live variant's).
fn grub_defaults(extra: &str) -> String {
    // panic=1: the test image reboots a panicked kernel after 1 s (the shipped grub.d
    // script keeps its own value); each of watchdog-panic's broken boots ends sooner.
    let args = format!("{extra} console=ttyS0,115200 panic=1");
    format!(
        "\
# Written by cargo xtask vm-image: serial console, short timeout, panic reboots.
GRUB_DEFAULT=0
GRUB_TIMEOUT=1
GRUB_DISTRIBUTOR=KOOMPI
GRUB_CMDLINE_LINUX_DEFAULT=\"\"
GRUB_CMDLINE_LINUX=\"{}\"
GRUB_TERMINAL=\"serial console\"
GRUB_SERIAL_COMMAND=\"serial --unit=0 --speed=115200\"
GRUB_DISABLE_OS_PROBER=true
GRUB_DISABLE_RECOVERY=true
",
        args.trim()
    )
}

const AUTOLOGIN: &str = "\
# Written by cargo xtask vm-image: root is logged in on the serial console.
[Service]
ExecStart=
ExecStart=-/sbin/agetty --autologin root --noclear --keep-baud 115200 %I vt220
";

/// Root's prompt: the one the console driver waits for.
fn bashrc() -> String {
    format!(
        "\n# Written by cargo xtask vm-image: a prompt the rig's console driver recognises.\n\
         PS1='{PROMPT}'\n"
    )
}

/// Test-speed override: a boot is confirmed 5 s after it reached its target (default 300).
const WATCHDOG_OVERRIDE: &str = "
# cargo xtask vm-image (test speed): confirm a boot 5 s after it reached its target.
SUCCESS_DELAY_SEC=5
";

/// Test-speed override: an unconfirmed boot is rebooted after 120 s. A good boot of the
/// test image is confirmed about 25 s after the kernel starts here and about 45 s on the
/// slower CI hosts (docs/vm-rig.md, "Where a boot's time goes"); 60 s left CI too little
/// room, and a starved guest was rebooted before its confirmation.
const DEADLINE_OVERRIDE: &str = "\
# cargo xtask vm-image (test speed): reboot an unconfirmed boot after 120 s.
[Timer]
OnBootSec=
OnBootSec=120
";

/// Plymouth's configuration, which `plymouth-set-default-theme` writes (`[Daemon]`,
/// `Theme=koompi`).
const PLYMOUTHD_CONF: &str = "/etc/plymouth/plymouthd.conf";

/// The rig's kernel has no DRM driver, only efifb: Plymouth waits DeviceTimeout (8 s from its
/// start) for a DRM device before it takes the framebuffer, and in the emulated
/// guest that left the splash on screen for the last second of the boot only. On a laptop
/// the DRM driver is in the initramfs (the `kms` hook) and there is no wait. Plymouth takes
/// the framebuffer only if udev has tagged it (`seat`) by then: 1 s lost that race in one
/// CI run of three (Plymouth's text fallback for the whole boot); 3 s here.
const PLYMOUTH_DEVICE_TIMEOUT: &str = "\
# cargo xtask vm-image: no DRM device will come (efifb only); take the framebuffer after 3 s.
DeviceTimeout=3
";

/// Builds each image of `variants` unless a cached one matches; returns their paths.
pub fn ensure(
    root: &Path,
    opts: &ImageOptions,
    variants: &[Variant],
) -> Result<Vec<(Variant, PathBuf)>> {
    if !opts.no_build {
        host::build_tools(root)?;
    }
    let target = host::target_dir(root);
    let cache = root.join(".vm-cache");
    let suite = host::debian_suite();
    let plan = Plan::collect(root, &target)?;
    for note in &plan.notes {
        progress(note);
    }
    let mut images = Vec::new();
    for &variant in variants {
        let packages = packages(variant);
        let rootfs_key = rootfs_key(&suite, &packages)?;
        let mut plan = plan.clone();
        if variant == Variant::Desktop {
            plan.files.extend(desktop_files(root)?);
        }
        let plan = &plan;
        let base_key = image_key(&rootfs_key, plan)?;
        let (key, overlay) = match variant {
            Variant::Installed | Variant::Desktop => (base_key, None),
            Variant::Live => {
                let overlay = Overlay::collect(root)?;
                let spec = format!("base={base_key}\n{}", overlay.key_spec()?);
                (sha256_hex(spec.as_bytes())?, Some(overlay))
            }
        };
        let prefix = variant.prefix();
        let image = cache.join(format!("{prefix}-{key}.img"));
        let medium = (variant == Variant::Live).then(|| medium_of(&image));
        let have_medium = medium.as_ref().is_none_or(|m| m.is_file());
        if image.is_file() && have_medium && !opts.rebuild {
            progress(&format!("image up to date: {}", image.display()));
            images.push((variant, image));
            continue;
        }
        host::packages::ensure("vm-image", &[host::packages::Purpose::Image])?;
        fs::create_dir_all(&cache).with_context(|| format!("cannot create {}", cache.display()))?;
        let started = Instant::now();
        let tar = rootfs(&cache, &suite, &rootfs_key, &packages)?;
        if let Some(o) = &overlay {
            progress(&o.summary());
        }
        let partial = cache.join(format!("{prefix}-{key}.partial.img"));
        let guard = RemoveOnDrop(Some(partial.clone()));
        let medium_partial = medium
            .as_ref()
            .map(|_| cache.join(format!("{MEDIUM_PREFIX}-{key}.partial.img")));
        let medium_guard = RemoveOnDrop(medium_partial.clone());
        build(
            &partial,
            &tar,
            plan,
            overlay.as_ref(),
            medium_partial.as_deref(),
            variant,
        )?;
        if let (Some(from), Some(to)) = (&medium_partial, &medium) {
            fs::rename(from, to)
                .with_context(|| format!("cannot rename {} to {}", from.display(), to.display()))?;
            remove_stale(&cache, MEDIUM_PREFIX, to);
        }
        drop(medium_guard.disarm());
        fs::rename(&partial, &image).with_context(|| {
            format!("cannot rename {} to {}", partial.display(), image.display())
        })?;
        drop(guard.disarm());
        remove_stale(&cache, prefix, &image);
        progress(&format!(
            "image built in {} s: {}",
            started.elapsed().as_secs(),
            image.display()
        ));
        images.push((variant, image));
    }
    Ok(images)
}

/// The start of the install medium's file name in `.vm-cache/`.
const MEDIUM_PREFIX: &str = "koompi-medium";

/// The install medium built with the live image `image` (`koompi-live-<key>.img` →
/// `koompi-medium-<key>.img`): an ISO 9660 volume labelled [`MEDIUM_LABEL`] holding the
/// live root as a squashfs and its kernel where archiso puts them
/// (`koompi/x86_64/airootfs.sfs`, `koompi/boot/x86_64/vmlinuz-*`).
pub fn medium_of(image: &Path) -> PathBuf {
    let name = image
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let key = name
        .strip_prefix("koompi-live-")
        .unwrap_or(&name)
        .to_string();
    image.with_file_name(format!("{MEDIUM_PREFIX}-{key}"))
}

/// Removes a half-built file unless disarmed.
#[derive(Debug)]
struct RemoveOnDrop(Option<PathBuf>);

impl RemoveOnDrop {
    fn disarm(mut self) -> Self {
        self.0 = None;
        self
    }
}

impl Drop for RemoveOnDrop {
    fn drop(&mut self) {
        if let Some(p) = &self.0 {
            let _ = fs::remove_file(p);
        }
    }
}

/// Older images of one variant (`PREFIX-<16 hex>.img`, each several hundred MB on disk);
/// rootfs tarballs and the other variant's images stay.
fn remove_stale(cache: &Path, prefix: &str, keep: &Path) {
    let Ok(rd) = fs::read_dir(cache) else {
        return;
    };
    for p in rd.filter_map(|e| e.ok().map(|e| e.path())) {
        let name = p.file_name().map(|n| n.to_string_lossy().into_owned());
        let name = name.unwrap_or_default();
        if p != keep && is_image_of(&name, prefix) {
            progress(&format!("removing the outdated image {}", p.display()));
            let _ = fs::remove_file(&p);
        }
    }
}

/// Whether `name` is an image (or a half-built one) of the variant with `prefix`.
fn is_image_of(name: &str, prefix: &str) -> bool {
    let Some(rest) = name.strip_prefix(prefix).and_then(|r| r.strip_prefix('-')) else {
        return false;
    };
    let hash = rest
        .strip_suffix(".partial.img")
        .or_else(|| rest.strip_suffix(".img"));
    hash.is_some_and(|h| h.len() == 16 && h.bytes().all(|b| b.is_ascii_hexdigit()))
}

/// The first 16 hex digits of the SHA-256 of `data`.
fn sha256_hex(data: &[u8]) -> Result<String> {
    let out = cmd::run_input(&mut Command::new("sha256sum"), Some(data))?;
    let text = String::from_utf8_lossy(&out.stdout);
    let hex = text.split_whitespace().next().unwrap_or("");
    if hex.len() < 16 {
        bail!("sha256sum printed no hash: {text:?}");
    }
    Ok(hex[..16].to_string())
}

/// The Debian packages of `variant`'s userland.
fn packages(variant: Variant) -> Vec<&'static str> {
    let mut packages = PACKAGES.to_vec();
    match variant {
        Variant::Live => packages.extend_from_slice(EDITION_PACKAGES),
        Variant::Desktop => {
            // The generic kernel: it has DRM (bochs-drm drives QEMU's VGA, as i915 or amdgpu
            // drive a laptop's screen), which Xorg's modesetting driver needs; the cloud
            // kernel has only efifb, on which Xorg's fbdev driver fails to set the mode.
            packages.retain(|p| *p != CLOUD_KERNEL);
            packages.push("linux-image-amd64");
            packages.extend_from_slice(DESKTOP_PACKAGES);
        }
        Variant::Installed => {}
    }
    packages
}

/// Where koompi-configs puts the LightDM GTK greeter's KOOMPI settings (after Debian's and
/// Arch's own files in that directory).
pub const GREETER_CONF: &str = "/usr/share/lightdm/lightdm-gtk-greeter.conf.d/50-koompi.conf";

/// koompi-configs' and koompi-branding's files that the desktop image needs, where the
/// packages install them (packaging/*/PKGBUILD): `configs/` (the catalog and the editions'
/// configs), the wallpapers, the greeter's settings, the Openbox theme.
fn desktop_files(root: &Path) -> Result<Vec<Install>> {
    let mut files = Vec::new();
    let configs = root.join("configs");
    for rel in walk(&configs)? {
        files.push(Install {
            src: configs.join(&rel),
            dest: format!("/usr/share/koompi/configs/{}", rel.display()),
            mode: 0o644,
        });
    }
    let walls = root.join("branding/wallpapers");
    for rel in walk(&walls)? {
        files.push(Install {
            src: walls.join(&rel),
            dest: format!("/usr/share/koompi/wallpapers/{}", rel.display()),
            mode: 0o644,
        });
    }
    files.push(Install {
        src: configs.join("lightdm/lightdm-gtk-greeter.conf"),
        dest: GREETER_CONF.into(),
        mode: 0o644,
    });
    files.push(Install {
        src: configs.join("openbox/themes/KOOMPI/openbox-3/themerc"),
        dest: "/usr/share/themes/KOOMPI/openbox-3/themerc".into(),
        mode: 0o644,
    });
    Ok(files)
}

fn rootfs_key(suite: &str, packages: &[&str]) -> Result<String> {
    let mut packages = packages.to_vec();
    packages.sort_unstable();
    let spec = format!(
        "suite={suite}\nvariant={SUITE_VARIANT}\ninclude={}\n",
        packages.join(",")
    );
    sha256_hex(spec.as_bytes())
}

/// The mmdebstrap tarball, built unless cached.
fn rootfs(cache: &Path, suite: &str, key: &str, packages: &[&str]) -> Result<PathBuf> {
    let tar = cache.join(format!("rootfs-{key}.tar"));
    if tar.is_file() {
        progress(&format!("reusing the userland {}", tar.display()));
        return Ok(tar);
    }
    let partial = cache.join(format!("rootfs-{key}.partial.tar"));
    let guard = RemoveOnDrop(Some(partial.clone()));
    let _ = fs::remove_file(&partial);
    let mut c = Command::new("mmdebstrap");
    c.arg(format!("--variant={SUITE_VARIANT}"))
        .arg("--format=tar")
        .arg(format!("--include={}", packages.join(",")))
        .arg(suite)
        .arg(&partial);
    match host::apt_sources() {
        Some(sources) => {
            c.arg(sources);
        }
        None => progress(
            "warning: no Debian apt sources file on this host; mmdebstrap uses its default",
        ),
    }
    progress(&format!(
        "building the Debian {suite} userland (about a minute): {}",
        cmd::describe(&c)
    ));
    cmd::run(&mut c)?;
    fs::rename(&partial, &tar)
        .with_context(|| format!("cannot rename {} to {}", partial.display(), tar.display()))?;
    drop(guard.disarm());
    Ok(tar)
}

/// One file from the repository (or target/release) and where it goes in the guest.
#[derive(Debug, Clone)]
struct Install {
    src: PathBuf,
    /// Absolute path in the guest.
    dest: String,
    mode: u32,
}

/// Everything KOOMPI installs into the image.
#[derive(Debug, Clone)]
struct Plan {
    files: Vec<Install>,
    /// Units of system/systemd with an [Install] section, enabled in the image.
    units: Vec<String>,
    snapshot_tool: PathBuf,
    watchdog_tool: Option<PathBuf>,
    notes: Vec<String>,
}

impl Plan {
    fn collect(root: &Path, target: &Path) -> Result<Plan> {
        let mut files = Vec::new();
        let mut notes = Vec::new();
        let release = target.join("release");
        let mut bins: Vec<PathBuf> = fs::read_dir(&release)
            .with_context(|| format!("cannot read {}", release.display()))?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| is_tool(p))
            .collect();
        bins.sort();
        for b in &bins {
            let name = b.file_name().map(|n| n.to_string_lossy().into_owned());
            files.push(Install {
                src: b.clone(),
                dest: format!("/usr/bin/{}", name.unwrap_or_default()),
                mode: 0o755,
            });
        }
        let snapshot_tool = release.join("koompi-snapshot");
        if !snapshot_tool.is_file() {
            bail!(
                "{} does not exist: run `cargo build --release -p koompi-cli` \
                 (or vm-image without --no-build)",
                snapshot_tool.display()
            );
        }
        let watchdog = release.join("koompi-watchdog");
        let watchdog_tool = watchdog.is_file().then_some(watchdog);
        if watchdog_tool.is_none() {
            notes.push(format!(
                "warning: {} does not exist yet: the image has no boot counting \
                 (installed: {})",
                release.join("koompi-watchdog").display(),
                bins.iter()
                    .filter_map(|b| b.file_name().map(|n| n.to_string_lossy().into_owned()))
                    .collect::<Vec<_>>()
                    .join(", ")
            ));
        }

        let system = root.join("system");
        let tree = |dir: &str, dest: &str, mode: u32, files: &mut Vec<Install>| -> Result<bool> {
            let src = system.join(dir);
            if !src.is_dir() {
                return Ok(false);
            }
            for rel in walk(&src)? {
                files.push(Install {
                    src: src.join(&rel),
                    dest: format!("{dest}/{}", rel.display()),
                    mode,
                });
            }
            Ok(true)
        };
        tree("systemd", "/usr/lib/systemd/system", 0o644, &mut files)?;
        if !tree("grub.d", "/etc/grub.d", 0o755, &mut files)? {
            notes.push(
                "warning: system/grub.d does not exist yet: grub.cfg has no KOOMPI entries".into(),
            );
        }
        tree("koompi", "/etc/koompi", 0o644, &mut files)?;
        tree("motd.d", "/etc/motd.d", 0o644, &mut files)?;
        let snapper = system.join("snapper/root");
        if snapper.is_file() {
            files.push(Install {
                src: snapper,
                dest: "/etc/snapper/configs/root".into(),
                mode: 0o644,
            });
        }
        if let Ok(rd) = fs::read_dir(&system) {
            let known = ["systemd", "grub.d", "koompi", "motd.d", "snapper"];
            for e in rd.filter_map(|e| e.ok()) {
                let name = e.file_name().to_string_lossy().into_owned();
                if !known.contains(&name.as_str()) {
                    notes.push(format!(
                        "note: system/{name} is not installed into the image"
                    ));
                }
            }
        }

        let mut units = Vec::new();
        let unit_dir = system.join("systemd");
        if unit_dir.is_dir() {
            for rel in walk(&unit_dir)? {
                let path = unit_dir.join(&rel);
                let name = rel.to_string_lossy().into_owned();
                if name.contains('/') || name.contains("@.") {
                    continue;
                }
                let text = fs::read_to_string(&path)
                    .with_context(|| format!("cannot read {}", path.display()))?;
                if text.lines().any(|l| l.trim() == "[Install]") {
                    units.push(name);
                }
            }
        }
        Ok(Plan {
            files,
            units,
            snapshot_tool,
            watchdog_tool,
            notes,
        })
    }
}

/// An executable `koompi` or `koompi-*` in target/release (not the `.d` dep files).
fn is_tool(p: &Path) -> bool {
    let name = p
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let named = name == "koompi" || (name.starts_with("koompi-") && !name.contains('.'));
    named && fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

fn image_key(rootfs_key: &str, plan: &Plan) -> Result<String> {
    let srcs: Vec<&Path> = plan.files.iter().map(|f| f.src.as_path()).collect();
    let sums = sha256_files(&srcs)?;
    let mut spec = format!("rig={RIG_VERSION}\nrootfs={rootfs_key}\n");
    for (f, sum) in plan.files.iter().zip(&sums) {
        spec.push_str(&format!("file {:o} {} {sum}\n", f.mode, f.dest));
    }
    for u in &plan.units {
        spec.push_str(&format!("enable {u}\n"));
    }
    sha256_hex(spec.as_bytes())
}

/// Builds the disk at `image` (a new file); with `live`, the live-session variant.
fn build(
    image: &Path,
    tar: &Path,
    plan: &Plan,
    live: Option<&Overlay>,
    medium: Option<&Path>,
    variant: Variant,
) -> Result<()> {
    progress(&format!("creating the disk {}", image.display()));
    let _ = fs::remove_file(image);
    let f =
        fs::File::create(image).with_context(|| format!("cannot create {}", image.display()))?;
    f.set_len(IMAGE_SIZE)
        .with_context(|| format!("cannot size {}", image.display()))?;
    drop(f);
    cmd::run_input(
        Command::new("sfdisk")
            .args(["--quiet", "--wipe", "always"])
            .arg(image),
        Some(PARTITIONS.as_bytes()),
    )?;

    let work = tempfile::Builder::new()
        .prefix("koompi-vm-image.")
        .tempdir()
        .context("cannot create a temporary directory")?;
    let mut lo = LoopDevice::attach(image)?;
    lo.add_partitions(3)?;
    let (esp, btrfs) = (lo.part(2), lo.part(3));
    cmd::run(Command::new("mkfs.fat").args(["-F", "32", "-n", "KOOMPI-ESP", &esp]))?;
    cmd::run(Command::new("mkfs.btrfs").args(["-q", "-f", "-L", "koompi", &btrfs]))?;
    let btrfs_uuid = uuid(&btrfs)?;
    let esp_uuid = uuid(&esp)?;

    let mut mounts = Mounts::default();
    let top = work.path().join("top");
    mounts.mount(&btrfs, &top, None, Some("subvolid=5"))?;
    for (name, _) in SUBVOLUMES {
        cmd::run(
            Command::new("btrfs")
                .args(["subvolume", "create"])
                .arg(top.join(name)),
        )?;
    }
    mounts.unmount_to(0)?;

    let r = work.path().join("root");
    for (name, at) in SUBVOLUMES {
        let dir = r.join(at.trim_start_matches('/'));
        mounts.mount(&btrfs, &dir, None, Some(&format!("subvol={name}")))?;
    }
    fs::set_permissions(r.join(".snapshots"), fs::Permissions::from_mode(0o750))
        .context("cannot set the mode of /.snapshots")?;
    // The ESP's contents are staged in a tmpfs and copied onto the FAT with mtools at the
    // end: the kernels of these test machines have no FAT driver. The tmpfs is mounted with
    // the ESP partition as its source, so grub-probe (grub-install, the grub.d script)
    // finds the real FAT device behind /boot/efi and reads its UUID from it.
    let esp_dir = r.join("boot/efi");
    mounts.mount(&esp, &esp_dir, Some("tmpfs"), Some("mode=0700"))?;

    progress(&format!("unpacking {} into @", tar.display()));
    cmd::run(
        Command::new("tar")
            .args(["--extract", "--numeric-owner", "--preserve-permissions"])
            .args(["--xattrs", "--xattrs-include=*"])
            .arg("--file")
            .arg(tar)
            .arg("--directory")
            .arg(&r),
    )?;

    progress("configuring the system and installing KOOMPI's files");
    configure(&r, &btrfs_uuid, &esp_uuid, plan, live)?;
    if let Some(overlay) = live {
        progress("applying the live-session overlay (iso/airootfs) and the branding");
        overlay.apply(&r)?;
    }
    if variant == Variant::Desktop {
        // Debian's lightdm enables itself when installed; on KOOMPI nothing is enabled until
        // koompi-desktop switches to it, and the machine boots to the console.
        remove(&r.join("etc/systemd/system/display-manager.service"))?;
        let default = r.join("etc/systemd/system/default.target");
        remove(&default)?;
        std::os::unix::fs::symlink("/lib/systemd/system/multi-user.target", &default)
            .context("cannot set the desktop image's default target")?;
    }

    let depth = mounts.depth();
    mounts.mount("proc", &r.join("proc"), Some("proc"), None)?;
    mounts.mount("sysfs", &r.join("sys"), Some("sysfs"), None)?;
    mounts.mount("tmpfs", &r.join("dev"), Some("tmpfs"), Some("mode=0755"))?;
    populate_dev(
        &r.join("dev"),
        &lo,
        &[(btrfs_uuid.as_str(), 3), (esp_uuid.as_str(), 2)],
    )?;
    match live {
        None => {
            cmd::run(&mut chroot(&r, &["passwd", "--delete", "root"]))?;
        }
        // Root stays locked as the overlay's shadow says; sysusers.d/koompi-live.conf puts
        // the live user in its groups (on Arch, systemd's pacman hook runs this).
        Some(_) => {
            cmd::run(&mut chroot(&r, &["systemd-sysusers"]))?;
            // The ISO build's pacman hooks (locale-gen, the Plymouth theme), before the
            // initramfs is built: it takes the theme in.
            for argv in super::overlay::hook_commands() {
                progress(&format!(
                    "{} (a pacman hook of the ISO build)",
                    argv.join(" ")
                ));
                cmd::run(&mut chroot(&r, argv))?;
            }
            append(&r, PLYMOUTHD_CONF, PLYMOUTH_DEVICE_TIMEOUT)?;
        }
    }
    progress("update-initramfs -u -k all (in the image)");
    cmd::run(&mut chroot(&r, &["update-initramfs", "-u", "-k", "all"]))?;
    progress("grub-install for BIOS and UEFI, grub-mkconfig (in the image)");
    cmd::run(&mut chroot(
        &r,
        &["grub-install", "--target=i386-pc", lo.dev()],
    ))?;
    cmd::run(&mut chroot(
        &r,
        &[
            "grub-install",
            "--target=x86_64-efi",
            "--efi-directory=/boot/efi",
            "--removable",
            "--no-nvram",
        ],
    ))?;
    cmd::run(&mut chroot(
        &r,
        &["grub-mkconfig", "-o", "/boot/grub/grub.cfg"],
    ))?;
    mounts.unmount_to(depth)?;
    if let (Some(out), Some(_)) = (medium, live) {
        build_medium(&r, work.path(), out)?;
    }

    let snapshot_config = factory_snapshot(&r, work.path(), plan)?;
    match &plan.watchdog_tool {
        Some(tool) => {
            progress("koompi-watchdog init (the grubenv on the ESP, the factory fallback)");
            cmd::run(
                Command::new(tool)
                    .arg("--settings")
                    .arg(r.join("etc/koompi/watchdog.conf"))
                    .arg("--esp")
                    .arg(&esp_dir)
                    .arg("init")
                    .arg("--config-file")
                    .arg(&snapshot_config),
            )?;
        }
        None => progress("warning: no koompi-watchdog: the ESP has no /koompi/grubenv"),
    }
    copy_to_fat(&esp_dir, &esp)?;

    mounts.finish()?;
    lo.finish()?;
    fs::File::open(image)
        .and_then(|f| f.sync_all())
        .with_context(|| format!("cannot sync {}", image.display()))?;
    Ok(())
}

/// initramfs-tools' setting in the install medium's root only.
const MODULES_DEP: &str = "/etc/initramfs-tools/conf.d/koompi-modules-dep";

/// The install medium: the live root at `r` as mkarchiso leaves it (/boot emptied but
/// for Debian's `config-*`, the stock /etc/default/grub: the live kernel arguments are
/// the boot medium's, not the system's) in a squashfs, the kernel beside it, on an
/// ISO 9660 volume at `out`.
fn build_medium(r: &Path, work: &Path, out: &Path) -> Result<()> {
    let stage = work.join("medium");
    let sfs_dir = stage.join("koompi/x86_64");
    let boot_dir = stage.join("koompi/boot/x86_64");
    for d in [&sfs_dir, &boot_dir] {
        fs::create_dir_all(d).with_context(|| format!("cannot create {}", d.display()))?;
    }
    let mut kernels = 0;
    for e in fs::read_dir(r.join("boot")).context("cannot read the image's /boot")? {
        let p = e.context("cannot read the image's /boot")?.path();
        let name = p.file_name().map(|n| n.to_string_lossy().into_owned());
        if let Some(name) = name.filter(|n| n.starts_with("vmlinuz-")) {
            fs::copy(&p, boot_dir.join(&name))
                .with_context(|| format!("cannot copy {}", p.display()))?;
            kernels += 1;
        }
    }
    if kernels != 1 {
        bail!("the image's /boot has {kernels} kernels (vmlinuz-*), expected 1");
    }
    let grub = r.join("etc/default/grub");
    let live_grub =
        fs::read_to_string(&grub).with_context(|| format!("cannot read {}", grub.display()))?;
    write(r, "/etc/default/grub", &grub_defaults(""), 0o644)?;
    // The installed system's initramfs is built in the guest for the guest's hardware, as
    // mkinitcpio's autodetect hook does on KOOMPI OS; Debian's default (`most`) takes
    // minutes under emulation.
    write(r, MODULES_DEP, "MODULES=dep\n", 0o644)?;
    progress("mksquashfs: the live root for the install medium");
    let squashed = cmd::run(
        Command::new("mksquashfs")
            .arg(r)
            .arg(sfs_dir.join("airootfs.sfs"))
            .args(["-noappend", "-no-progress", "-quiet", "-comp", "zstd"])
            .args(["-wildcards", "-e"])
            // /boot emptied as mkarchiso does, but for Debian's kernel config, which
            // update-initramfs reads from there (Arch's mkinitcpio needs none).
            .args(["boot/vmlinuz-*", "boot/initrd.img-*", "boot/System.map-*"])
            .args([
                "boot/grub",
                "boot/efi",
                ".snapshots/*",
                "var/log/*",
                "proc/*",
            ])
            .args(["sys/*"])
            .args(["dev/*", "run/*", "tmp/*"]),
    );
    write(r, "/etc/default/grub", &live_grub, 0o644)?;
    fs::remove_file(r.join(MODULES_DEP.trim_start_matches('/')))
        .with_context(|| format!("cannot remove {MODULES_DEP}"))?;
    squashed?;
    let _ = fs::remove_file(out);
    cmd::run(
        Command::new("xorriso")
            .args(["-as", "mkisofs", "-quiet", "-iso-level", "3", "-R"])
            .args(["-V", MEDIUM_LABEL, "-o"])
            .arg(out)
            .arg(&stage),
    )?;
    Ok(())
}

/// Copies the staged ESP tree onto the FAT filesystem on `dev` (mtools, no mount).
fn copy_to_fat(staged: &Path, dev: &str) -> Result<()> {
    let mut entries: Vec<PathBuf> = fs::read_dir(staged)
        .with_context(|| format!("cannot read {}", staged.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .collect();
    entries.sort();
    if entries.is_empty() {
        bail!(
            "the staged ESP {} is empty (grub-install wrote nothing?)",
            staged.display()
        );
    }
    progress("copying the ESP's files onto the FAT filesystem (mcopy)");
    cmd::run(
        Command::new("mcopy")
            .env("MTOOLS_SKIP_CHECK", "1")
            .args(["-s", "-p", "-Q", "-i", dev])
            .args(&entries)
            .arg("::/"),
    )?;
    let listing = cmd::stdout(
        Command::new("mdir")
            .env("MTOOLS_SKIP_CHECK", "1")
            .args(["-/", "-b", "-i", dev, "::/"]),
    )?;
    for want in ["::/EFI/BOOT/BOOTX64.EFI"] {
        if !listing.lines().any(|l| l.trim().eq_ignore_ascii_case(want)) {
            bail!("{want} is missing on the ESP after mcopy; it holds:\n{listing}");
        }
    }
    Ok(())
}

/// The filesystem UUID of a device (low-level probe, no blkid cache).
fn uuid(dev: &str) -> Result<String> {
    let out = cmd::stdout(Command::new("blkid").args(["-p", "-s", "UUID", "-o", "value", dev]))?;
    let u = out.trim().to_string();
    if u.is_empty() {
        bail!("blkid found no filesystem UUID on {dev}");
    }
    Ok(u)
}

/// `chroot ROOT ARGS...` with a clean environment.
fn chroot(root: &Path, args: &[&str]) -> Command {
    let mut c = Command::new("chroot");
    c.arg(root)
        .args(args)
        .env_clear()
        .env("PATH", "/usr/sbin:/usr/bin:/sbin:/bin")
        .env("HOME", "/root")
        .env("LANG", "C.UTF-8")
        .env("DEBIAN_FRONTEND", "noninteractive");
    c
}

/// A private /dev for the chroot: the usual nodes, the loop device and its partitions,
/// and /dev/disk/by-uuid links (grub-mkconfig writes `root=UUID=` only when the link
/// exists, and this host has no udev to make it). The host's /dev is never written.
fn populate_dev(dev: &Path, lo: &LoopDevice, uuids: &[(&str, u32)]) -> Result<()> {
    let mut nodes: Vec<String> = ["null", "zero", "full", "random", "urandom", "tty"]
        .iter()
        .map(|n| format!("/dev/{n}"))
        .collect();
    nodes.push(lo.dev().to_string());
    nodes.extend((1..=3).map(|n| lo.part(n)));
    cmd::run(Command::new("cp").arg("-a").args(&nodes).arg(dev))?;
    for d in ["pts", "shm", "disk/by-uuid"] {
        fs::create_dir_all(dev.join(d))
            .with_context(|| format!("cannot create {}", dev.join(d).display()))?;
    }
    let links = [
        ("fd", "/proc/self/fd".to_string()),
        ("stdin", "/proc/self/fd/0".into()),
        ("stdout", "/proc/self/fd/1".into()),
        ("stderr", "/proc/self/fd/2".into()),
    ];
    for (name, to) in links {
        symlink(&to, &dev.join(name))?;
    }
    for (uuid, part) in uuids {
        let node = lo.part(*part);
        let base = node.trim_start_matches("/dev/");
        symlink(
            &format!("../../{base}"),
            &dev.join("disk/by-uuid").join(uuid),
        )?;
    }
    Ok(())
}

fn symlink(to: &str, at: &Path) -> Result<()> {
    std::os::unix::fs::symlink(to, at)
        .with_context(|| format!("cannot create the symlink {} -> {to}", at.display()))
}

/// Writes `text` to `rel` under `root` with `mode`, creating parent directories.
fn write(root: &Path, rel: &str, text: &str, mode: u32) -> Result<()> {
    let p = root.join(rel.trim_start_matches('/'));
    if let Some(parent) = p.parent() {
        fs::create_dir_all(parent)
            .with_context(|| format!("cannot create {}", parent.display()))?;
    }
    fs::write(&p, text).with_context(|| format!("cannot write {}", p.display()))?;
    fs::set_permissions(&p, fs::Permissions::from_mode(mode))
        .with_context(|| format!("cannot set the mode of {}", p.display()))
}

/// Appends `text` to `rel` under `root` (created 0644 if missing), on a line of its own.
fn append(root: &Path, rel: &str, text: &str) -> Result<()> {
    let p = root.join(rel.trim_start_matches('/'));
    let mut old = match fs::read_to_string(&p) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
        Err(e) => return Err(e).with_context(|| format!("cannot read {}", p.display())),
    };
    if !old.is_empty() && !old.ends_with('\n') {
        old.push('\n');
    }
    let mode = fs::metadata(&p).map_or(0o644, |m| m.permissions().mode() & 0o7777);
    write(root, rel, &(old + text), mode)
}

fn configure(r: &Path, btrfs: &str, esp: &str, plan: &Plan, live: Option<&Overlay>) -> Result<()> {
    let mut fstab = String::from("# Written by cargo xtask vm-image: KOOMPI's layout.\n");
    for (name, at) in SUBVOLUMES {
        fstab.push_str(&format!("UUID={btrfs} {at} btrfs subvol={name} 0 0\n"));
    }
    fstab.push_str(&format!("UUID={esp} /boot/efi vfat umask=0077 0 2\n"));
    if live.is_some() {
        // archiso's initramfs mounts the medium named by archisolabel= there; the rig's
        // Debian initramfs does not, so systemd does (when a run attached one).
        fstab.push_str(&format!(
            "LABEL={MEDIUM_LABEL} /run/archiso/bootmnt iso9660 ro,nofail,x-systemd.device-timeout=120s 0 0\n"
        ));
    }
    write(r, "/etc/fstab", &fstab, 0o644)?;
    write(r, "/etc/hostname", "koompi\n", 0o644)?;
    write(
        r,
        "/etc/hosts",
        "127.0.0.1 localhost\n127.0.1.1 koompi\n::1 localhost ip6-localhost ip6-loopback\n",
        0o644,
    )?;
    let extra_args = live.map(Overlay::kernel_args).unwrap_or_default();
    write(r, "/etc/default/grub", &grub_defaults(&extra_args), 0o644)?;
    if live.is_none() {
        write(
            r,
            "/etc/systemd/system/serial-getty@ttyS0.service.d/autologin.conf",
            AUTOLOGIN,
            0o644,
        )?;
    }
    append(r, "/root/.bashrc", &bashrc())?;
    append(r, "/etc/initramfs-tools/modules", "btrfs\n")?;
    write(
        r,
        "/etc/initramfs-tools/conf.d/resume",
        "RESUME=none\n",
        0o644,
    )?;

    for f in &plan.files {
        let dest = r.join(f.dest.trim_start_matches('/'));
        if let Some(parent) = dest.parent() {
            fs::create_dir_all(parent)
                .with_context(|| format!("cannot create {}", parent.display()))?;
        }
        fs::copy(&f.src, &dest)
            .with_context(|| format!("cannot copy {} to {}", f.src.display(), dest.display()))?;
        fs::set_permissions(&dest, fs::Permissions::from_mode(f.mode))
            .with_context(|| format!("cannot set the mode of {}", dest.display()))?;
    }
    append(r, "/etc/koompi/watchdog.conf", WATCHDOG_OVERRIDE)?;
    write(
        r,
        "/etc/systemd/system/koompi-boot-deadline.timer.d/vm-test.conf",
        DEADLINE_OVERRIDE,
        0o644,
    )?;
    if !plan.units.is_empty() {
        cmd::run(
            Command::new("systemctl")
                .arg(format!("--root={}", path_str(r)?))
                .arg("enable")
                .args(&plan.units),
        )?;
    }
    Ok(())
}

/// The factory snapshot of `@` (at `r`), taken by the real koompi-snapshot.
fn factory_snapshot(r: &Path, work: &Path, plan: &Plan) -> Result<PathBuf> {
    let shipped = r.join("etc/snapper/configs/root");
    let base = fs::read_to_string(&shipped).unwrap_or_else(|_| "FSTYPE=\"btrfs\"\n".into());
    let mut config: String = base
        .lines()
        .filter(|l| !l.trim_start().starts_with("SUBVOLUME="))
        .map(|l| format!("{l}\n"))
        .collect();
    config.push_str(&format!("SUBVOLUME=\"{}\"\n", path_str(r)?));
    let config_file = work.join("snapper-root");
    fs::write(&config_file, config)
        .with_context(|| format!("cannot write {}", config_file.display()))?;
    let date = cmd::stdout(Command::new("date").arg("+%Y%m%d"))?;
    let name = format!("factory-{}", date.trim());
    progress(&format!("factory snapshot {name}"));
    cmd::run(
        Command::new(&plan.snapshot_tool)
            .arg("--config-file")
            .arg(&config_file)
            .args([
                "create",
                &name,
                "Factory state",
                "--cleanup",
                "none",
                "--important",
            ])
            .args(["--userdata", "koompi-known-good=yes"]),
    )?;
    Ok(config_file)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bashrc_sets_the_prompt_the_driver_waits_for() {
        assert!(bashrc().contains("\nPS1='koompi-vm# '\n"));
    }

    #[test]
    fn the_kernel_command_line_takes_the_extra_arguments_first() {
        assert!(grub_defaults("").contains("GRUB_CMDLINE_LINUX=\"console=ttyS0,115200 panic=1\"\n"));
        assert!(
            grub_defaults("archisobasedir=koompi console=tty0").contains(
                "GRUB_CMDLINE_LINUX=\"archisobasedir=koompi console=tty0 console=ttyS0,115200 \
             panic=1\"\n"
            )
        );
    }

    #[test]
    fn stale_images_are_told_apart_by_variant() {
        assert!(is_image_of("koompi-0123456789abcdef.img", "koompi"));
        assert!(is_image_of("koompi-0123456789abcdef.partial.img", "koompi"));
        assert!(!is_image_of("koompi-live-0123456789abcdef.img", "koompi"));
        assert!(is_image_of(
            "koompi-live-0123456789abcdef.img",
            "koompi-live"
        ));
        assert!(!is_image_of("rootfs-0123456789abcdef.tar", "koompi"));
    }
}
