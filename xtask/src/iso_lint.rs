//! `cargo xtask iso-lint`: static checks of the ISO image's sources, runnable on any Linux host
//! (Debian CI included), where mkarchiso cannot run.
//!
//! It checks the archiso profile (`iso/`), the branding sources (`branding/`) and the systemd
//! units the profile enables (`system/systemd/`), reports every problem as one line
//! `iso-lint: <file>: <problem>` and fails if there is any:
//! - every file the profile, its boot menus, its pacman hooks or a unit refers to exists, and
//!   every package a unit, a hook or an initramfs hook comes from is in `packages.x86_64`
//!   (or pulled in by `base`);
//! - the KOOMPI units pass `systemd-analyze verify` (with the binaries installed where
//!   koompi-tools installs them, and the live medium's drop-ins applied);
//! - every KOOMPI unit with an `[Install]` section, and every unit the seed enables, has its
//!   committed `*.wants/` symlink, and every symlink names a unit that exists;
//! - every executable and every secret in `airootfs/` has its mode in `file_permissions`;
//! - os-release parses and has the seed's fields; motd, issue and the fastfetch config are the
//!   seed's texts byte for byte (the expected texts are embedded below and cross-checked against
//!   `../shared/seeds/koompi-os-build-prompt.txt` when that file exists); the fastfetch config
//!   is valid JSONC;
//! - no package from the known-removed list; boot modes cover BIOS and UEFI with current names;
//!   no `customize_airootfs.sh`.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Display;
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{bail, Context, Result};

/// The seed specification, relative to the workspace root.
const SEED_PATH: &str = "../shared/seeds/koompi-os-build-prompt.txt";

/// The heading that precedes each branding text's fenced block in the seed.
const SEED_MARKERS: [(&str, &str); 4] = [
    ("motd", "**MOTD (`/etc/motd`):**"),
    ("os-release", "**`/etc/os-release`:**"),
    ("issue", "**`/etc/issue`:**"),
    ("fastfetch", "**Fastfetch config**"),
];

/// Packages that must never be in the list, with the reason (shared/FACTS.md).
const REMOVED_PACKAGES: &[(&str, &str)] = &[
    (
        "noto-fonts-khmer",
        "does not exist in Arch: Noto Khmer ships in noto-fonts; add ttf-khmer",
    ),
    ("mesa-vdpau", "is gone (VDPAU was removed in Mesa 25.3)"),
    ("libva-mesa-driver", "is provided by mesa since 1:24.2.7"),
    (
        "nvidia-dkms",
        "left the repositories; nvidia-open-dkms replaces it",
    ),
];

/// Packages the profile cannot do without (the local repository's and archiso's).
const REQUIRED_PACKAGES: &[(&str, &str)] = &[
    (
        "koompi-tools",
        "KOOMPI's tools and units (local repository)",
    ),
    (
        "koompi-branding",
        "motd, issue, os-release, fastfetch, Plymouth theme (local repository)",
    ),
    ("koompi-configs", "the edition dotfiles (local repository)"),
    ("paru", "the AUR helper (local repository)"),
    ("mkinitcpio", "mandatory for archiso (the live initramfs)"),
    (
        "mkinitcpio-archiso",
        "mandatory for archiso (the live initramfs's archiso hooks)",
    ),
    ("fcitx5-m17n", "Khmer input (fcitx5-im has no m17n)"),
    ("ttf-khmer", "Khmer fonts besides noto-fonts"),
];

/// What `base` depends on: units and hooks may use these without listing them.
const BASE_DEPENDENCIES: &[&str] = &[
    "archlinux-keyring",
    "bash",
    "bzip2",
    "coreutils",
    "file",
    "filesystem",
    "findutils",
    "gawk",
    "gcc-libs",
    "gettext",
    "glibc",
    "grep",
    "gzip",
    "iproute2",
    "iputils",
    "licenses",
    "pacman",
    "pacman-mirrorlist",
    "pciutils",
    "procps-ng",
    "psmisc",
    "sed",
    "shadow",
    "systemd",
    "systemd-sysvcompat",
    "tar",
    "util-linux",
    "xz",
];

/// Names that other packages provide (pacman hooks' `Depends` may use them).
const VIRTUAL_PACKAGES: &[(&str, &str)] = &[("sh", "bash")];

/// A systemd unit that an Arch package installs in /usr/lib/systemd/system.
#[derive(Debug)]
struct PackageUnit {
    unit: &'static str,
    package: &'static str,
    /// `WantedBy=` of its `[Install]` section.
    wanted_by: &'static [&'static str],
    /// `Alias=` of its `[Install]` section.
    aliases: &'static [&'static str],
}

const fn pu(
    unit: &'static str,
    package: &'static str,
    wanted_by: &'static [&'static str],
    aliases: &'static [&'static str],
) -> PackageUnit {
    PackageUnit {
        unit,
        package,
        wanted_by,
        aliases,
    }
}

/// The package units the profile may enable, alias or mask.
const PACKAGE_UNITS: &[PackageUnit] = &[
    pu(
        "NetworkManager.service",
        "networkmanager",
        &["multi-user.target"],
        &["dbus-org.freedesktop.NetworkManager.service"],
    ),
    pu(
        "NetworkManager-dispatcher.service",
        "networkmanager",
        &[],
        &["dbus-org.freedesktop.nm-dispatcher.service"],
    ),
    pu(
        "NetworkManager-wait-online.service",
        "networkmanager",
        &["network-online.target"],
        &[],
    ),
    pu(
        "bluetooth.service",
        "bluez",
        &["bluetooth.target"],
        &["dbus-org.bluez.service"],
    ),
    pu("reflector.timer", "reflector", &["timers.target"], &[]),
    pu("fstrim.timer", "util-linux", &["timers.target"], &[]),
    pu("tlp.service", "tlp", &["multi-user.target"], &[]),
    pu("acpid.service", "acpid", &["multi-user.target"], &[]),
    pu("sshd.service", "openssh", &["multi-user.target"], &[]),
    pu("iwd.service", "iwd", &["multi-user.target"], &[]),
    pu(
        "grub-btrfsd.service",
        "grub-btrfs",
        &["multi-user.target"],
        &[],
    ),
    pu("snapper-timeline.timer", "snapper", &["timers.target"], &[]),
    pu("snapper-cleanup.timer", "snapper", &["timers.target"], &[]),
    pu(
        "systemd-timesyncd.service",
        "systemd",
        &["sysinit.target"],
        &["dbus-org.freedesktop.timesync1.service"],
    ),
    pu("systemd-rfkill.service", "systemd", &[], &[]),
    pu("systemd-rfkill.socket", "systemd", &[], &[]),
    pu("multi-user.target", "systemd", &[], &[]),
    pu("graphical.target", "systemd", &[], &[]),
    pu("sysinit.target", "systemd", &[], &[]),
    pu("timers.target", "systemd", &[], &[]),
    pu("bluetooth.target", "systemd", &[], &[]),
    pu("network-online.target", "systemd", &[], &[]),
];

/// Units the seed enables (its customize_airootfs.sh), and the one KOOMPI adds (the boot
/// deadline, docs/watchdog.md), each with the `.wants` directory its symlink belongs in.
const SEED_ENABLED: &[(&str, &str)] = &[
    ("NetworkManager.service", "multi-user.target"),
    ("bluetooth.service", "bluetooth.target"),
    ("koompi-snapshot-daily.timer", "timers.target"),
    ("koompi-boot-watchdog.service", "sysinit.target"),
    ("koompi-boot-success.service", "multi-user.target"),
    ("koompi-boot-deadline.timer", "timers.target"),
    ("reflector.timer", "timers.target"),
    ("fstrim.timer", "timers.target"),
    ("tlp.service", "multi-user.target"),
    ("acpid.service", "multi-user.target"),
];

/// Programs that units and pacman hooks run, with the package that installs them.
const PACKAGE_PROGRAMS: &[(&str, &str)] = &[
    ("/bin/sh", "bash"),
    ("/usr/bin/sh", "bash"),
    ("/usr/bin/bash", "bash"),
    ("/usr/bin/env", "coreutils"),
    ("/usr/bin/sleep", "coreutils"),
    ("/bin/sleep", "coreutils"),
    ("/usr/bin/sed", "sed"),
    ("/usr/bin/locale-gen", "glibc"),
    ("/usr/bin/pacman-key", "pacman"),
    ("/usr/bin/systemctl", "systemd"),
    ("/usr/bin/plymouth-set-default-theme", "plymouth"),
    ("/usr/bin/xdg-user-dirs-update", "xdg-user-dirs"),
    ("/usr/bin/mkinitcpio", "mkinitcpio"),
];

/// mkinitcpio hooks and the package that ships each.
const INITCPIO_HOOKS: &[(&str, &str)] = &[
    ("base", "mkinitcpio"),
    ("udev", "mkinitcpio"),
    ("systemd", "mkinitcpio"),
    ("autodetect", "mkinitcpio"),
    ("microcode", "mkinitcpio"),
    ("modconf", "mkinitcpio"),
    ("kms", "mkinitcpio"),
    ("keyboard", "mkinitcpio"),
    ("keymap", "mkinitcpio"),
    ("consolefont", "mkinitcpio"),
    ("sd-vconsole", "mkinitcpio"),
    ("block", "mkinitcpio"),
    ("encrypt", "mkinitcpio"),
    ("sd-encrypt", "mkinitcpio"),
    ("filesystems", "mkinitcpio"),
    ("fsck", "mkinitcpio"),
    ("memdisk", "mkinitcpio"),
    ("resume", "mkinitcpio"),
    ("usr", "mkinitcpio"),
    ("shutdown", "mkinitcpio"),
    ("archiso", "mkinitcpio-archiso"),
    ("archiso_loop_mnt", "mkinitcpio-archiso"),
    ("archiso_kms", "mkinitcpio-archiso"),
    ("archiso_pxe_common", "mkinitcpio-archiso"),
    ("archiso_pxe_nbd", "mkinitcpio-archiso"),
    ("archiso_pxe_http", "mkinitcpio-archiso"),
    ("archiso_pxe_nfs", "mkinitcpio-archiso"),
    ("plymouth", "plymouth"),
    ("lvm2", "lvm2"),
    ("mdadm_udev", "mdadm"),
];

/// mkinitcpio hooks that no longer exist in Arch.
const GONE_INITCPIO_HOOKS: &[(&str, &str)] = &[
    (
        "sd-plymouth",
        "Arch's plymouth package ships one `plymouth` hook for both inits",
    ),
    (
        "plymouth-encrypt",
        "the plymouth hook works with the standard encrypt hooks",
    ),
];

/// archiso's boot modes (v86 and later) and the deprecated names with their replacements.
const BOOTMODES: &[&str] = &["bios.syslinux", "uefi.grub", "uefi.systemd-boot"];
const DEPRECATED_BOOTMODES: &[(&str, &str)] = &[
    ("bios.syslinux.mbr", "bios.syslinux"),
    ("bios.syslinux.eltorito", "bios.syslinux"),
    ("uefi-x64.systemd-boot.esp", "uefi.systemd-boot"),
    ("uefi-x64.systemd-boot.eltorito", "uefi.systemd-boot"),
    ("uefi-ia32.systemd-boot.esp", "uefi.systemd-boot"),
    ("uefi-ia32.systemd-boot.eltorito", "uefi.systemd-boot"),
    ("uefi-x64.grub.esp", "uefi.grub"),
    ("uefi-x64.grub.eltorito", "uefi.grub"),
    ("uefi-ia32.grub.esp", "uefi.grub"),
    ("uefi-ia32.grub.eltorito", "uefi.grub"),
];

/// The placeholder of the local repository's path in iso/pacman.conf, which
/// scripts/build-iso.sh replaces.
const REPO_PLACEHOLDER: &str = "/@KOOMPI_LOCAL_REPO@";

/// Where the documentation links of the units point (a path in this repository follows).
const DOCS_URL: &str = "https://github.com/koompi/koompi-os/blob/main/";

/// The biggest wallpaper the ISO carries.
const WALLPAPER_MAX_BYTES: u64 = 200_000;

/// The seed's `/etc/motd`, byte for byte.
const SEED_MOTD: &str = concat!(
    "  ██╗  ██╗ ██████╗  ██████╗ ███╗   ███╗██████╗ ██╗\n",
    "  ██║ ██╔╝██╔═══██╗██╔═══██╗████╗ ████║██╔══██╗██║\n",
    "  █████╔╝ ██║   ██║██║   ██║██╔████╔██║██████╔╝██║\n",
    "  ██╔═██╗ ██║   ██║██║   ██║██║╚██╔╝██║██╔═══╝ ██║\n",
    "  ██║  ██╗╚██████╔╝╚██████╔╝██║ ╚═╝ ██║██║     ██║\n",
    "  ╚═╝  ╚═╝ ╚═════╝  ╚═════╝ ╚═╝     ╚═╝╚═╝     ╚═╝\n",
    "                                   OS Base Edition\n",
    "\n",
    "  Quick Start:\n",
    "  • koompi install <pkg> - Install packages (repos + AUR)\n",
    "  • koompi upgrade       - Safe system upgrade with snapshot\n",
    "  • koompi-desktop       - Install a desktop environment\n",
    "  • koompi-snapshot      - Manage system snapshots\n",
    "  • koompi-cli           - AI-powered assistant (if installed)\n",
    "\n",
    "  Website: https://koompi.com\n",
);

/// The seed's `/etc/issue`, byte for byte.
const SEED_ISSUE: &str = concat!(
    "\n",
    "  KOOMPI OS Base Edition\n",
    "  Kernel: \\r on \\m\n",
    "\n",
    "  Login: koompi | Password: koompi\n",
    "\n",
);

/// The seed's `/etc/os-release`, byte for byte.
const SEED_OS_RELEASE: &str = concat!(
    "NAME=\"KOOMPI OS\"\n",
    "ID=koompi\n",
    "ID_LIKE=arch\n",
    "VERSION=\"1.0\"\n",
    "VERSION_ID=\"1.0\"\n",
    "PRETTY_NAME=\"KOOMPI OS Base Edition\"\n",
    "HOME_URL=\"https://koompi.com\"\n",
    "DOCUMENTATION_URL=\"https://docs.koompi.com\"\n",
    "SUPPORT_URL=\"https://github.com/koompi/koompi-os\"\n",
);

/// The seed's `/etc/fastfetch/config.jsonc`, byte for byte.
const SEED_FASTFETCH: &str = concat!(
    "{\n",
    "    \"$schema\": \"https://github.com/fastfetch-cli/fastfetch/raw/dev/doc/json_schema.json\",\n",
    "    \"logo\": {\n",
    "        \"type\": \"builtin\",\n",
    "        \"source\": \"arch\",\n",
    "        \"color\": {\n",
    "            \"1\": \"blue\",\n",
    "            \"2\": \"white\"\n",
    "        }\n",
    "    },\n",
    "    \"display\": {\n",
    "        \"separator\": \" → \"\n",
    "    },\n",
    "    \"modules\": [\n",
    "        {\n",
    "            \"type\": \"custom\",\n",
    "            \"format\": \"┌──────────────────────────────────────────┐\"\n",
    "        },\n",
    "        {\n",
    "            \"type\": \"custom\",\n",
    "            \"format\": \"│  Welcome to KOOMPI OS                   │\"\n",
    "        },\n",
    "        {\n",
    "            \"type\": \"custom\",\n",
    "            \"format\": \"└──────────────────────────────────────────┘\"\n",
    "        },\n",
    "        \"break\",\n",
    "        \"title\",\n",
    "        \"separator\",\n",
    "        \"os\",\n",
    "        \"kernel\",\n",
    "        \"uptime\",\n",
    "        \"packages\",\n",
    "        \"shell\",\n",
    "        \"terminal\",\n",
    "        \"cpu\",\n",
    "        \"gpu\",\n",
    "        \"memory\",\n",
    "        \"disk\",\n",
    "        \"break\",\n",
    "        {\n",
    "            \"type\": \"custom\",\n",
    "            \"format\": \"Run 'koompi --help' for commands\"\n",
    "        }\n",
    "    ]\n",
    "}\n",
);

/// Runs every check and prints every problem; fails if there was any.
pub fn run(root: &Path) -> Result<()> {
    let problems = lint(root);
    if problems.is_empty() {
        println!("iso-lint: ok: iso/, branding/ and system/systemd/ pass every check");
        return Ok(());
    }
    for p in &problems {
        eprintln!("iso-lint: {p}");
    }
    bail!("iso-lint found {} problem(s)", problems.len())
}

/// Every problem found, each as `<file>: <problem>`.
fn lint(root: &Path) -> Vec<String> {
    let mut l = Lint {
        root,
        problems: Vec::new(),
    };
    let profile = l.profiledef();
    let packages = l.packages();
    l.pacman_conf();
    l.no_customize_script();
    if let Some(profile) = &profile {
        l.bootmodes(profile, &packages);
        l.file_permissions(profile);
    }
    l.boot_menus(&packages);
    l.initcpio(&packages);
    let units = l.koompi_units();
    l.koompi_unit_references(&units, &packages);
    l.enabled_units(&units, &packages);
    l.verify_units(&units);
    l.users(&packages);
    l.live_config(&packages);
    l.pacman_hooks(&packages);
    l.branding();
    l.problems
}

struct Lint<'a> {
    root: &'a Path,
    problems: Vec<String>,
}

/// The package list, with what `base` pulls in.
#[derive(Debug, Default)]
struct Packages(BTreeSet<String>);

impl Packages {
    fn has(&self, name: &str) -> bool {
        let name = VIRTUAL_PACKAGES
            .iter()
            .find(|(v, _)| *v == name)
            .map_or(name, |(_, real)| real);
        self.0.contains(name) || BASE_DEPENDENCIES.contains(&name)
    }
}

impl Lint<'_> {
    fn problem(&mut self, file: &str, msg: impl Display) {
        self.problems.push(format!("{file}: {msg}"));
    }

    fn path(&self, rel: &str) -> PathBuf {
        self.root.join(rel)
    }

    fn exists(&self, rel: &str) -> bool {
        fs::symlink_metadata(self.path(rel)).is_ok()
    }

    /// Reads a file, reporting it when it cannot.
    fn read(&mut self, rel: &str) -> Option<String> {
        match fs::read_to_string(self.path(rel)) {
            Ok(t) => Some(t),
            Err(e) => {
                self.problem(rel, format!("cannot read it: {e}"));
                None
            }
        }
    }

    fn need_package(&mut self, packages: &Packages, file: &str, package: &str, why: &str) {
        if !packages.has(package) {
            self.problem(
                file,
                format!("{why} comes from package {package}, which is not in iso/packages.x86_64"),
            );
        }
    }

    // ---------------------------------------------------------------------------- profiledef

    fn profiledef(&mut self) -> Option<ProfileDef> {
        let file = "iso/profiledef.sh";
        let text = self.read(file)?;
        let p = match parse_profiledef(&text) {
            Ok(p) => p,
            Err(e) => {
                self.problem(file, e);
                return None;
            }
        };
        match p.scalars.get("iso_name").map(String::as_str) {
            Some("koompi-os-base") => {}
            other => self.problem(
                file,
                format!("iso_name is {other:?}, not \"koompi-os-base\""),
            ),
        }
        for (key, want) in [("iso_label", "KOOMPI"), ("iso_publisher", "KOOMPI")] {
            match p.scalars.get(key) {
                Some(v) if v.trim_start_matches('"').starts_with(want) => {}
                other => self.problem(
                    file,
                    format!("{key} is {other:?}: it must start with {want}"),
                ),
            }
        }
        for key in ["iso_application", "iso_version", "install_dir"] {
            if !p.scalars.contains_key(key) {
                self.problem(file, format!("{key} is not set"));
            }
        }
        if let Some(dir) = p.scalars.get("install_dir") {
            let ok = !dir.is_empty()
                && dir.len() <= 8
                && dir
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit());
            if !ok {
                self.problem(file, format!("install_dir {dir:?} must be 1-8 of [a-z0-9]"));
            }
        }
        match p.scalars.get("pacman_conf") {
            Some(conf) => {
                if !self.exists(&format!("iso/{conf}")) {
                    self.problem(
                        file,
                        format!("pacman_conf names iso/{conf}, which does not exist"),
                    );
                }
            }
            None => self.problem(file, "pacman_conf is not set"),
        }
        let options = p
            .arrays
            .get("airootfs_image_tool_options")
            .cloned()
            .unwrap_or_default();
        match p.scalars.get("airootfs_image_type").map(String::as_str) {
            Some("squashfs") | Some("ext4+squashfs") => {
                if !options.windows(2).any(|w| w[0] == "-comp" && w[1] == "xz") {
                    self.problem(
                        file,
                        "squashfs without `-comp xz` in airootfs_image_tool_options: not the smallest image",
                    );
                }
            }
            Some("erofs") => {
                if !options.iter().any(|o| o.starts_with("-zlzma")) {
                    self.problem(
                        file,
                        "erofs without `-zlzma` in airootfs_image_tool_options: not the smallest image",
                    );
                }
            }
            other => self.problem(
                file,
                format!(
                    "airootfs_image_type is {other:?}: use squashfs (with xz) or erofs (with lzma)"
                ),
            ),
        }
        if p.arrays
            .get("buildmodes")
            .is_some_and(|b| !b.iter().any(|m| m == "iso"))
        {
            self.problem(file, "buildmodes does not contain 'iso'");
        }
        Some(p)
    }

    fn bootmodes(&mut self, profile: &ProfileDef, packages: &Packages) {
        let file = "iso/profiledef.sh";
        let Some(modes) = profile.arrays.get("bootmodes") else {
            self.problem(file, "bootmodes is not set");
            return;
        };
        for p in check_bootmodes(modes) {
            self.problem(file, p);
        }
        for mode in modes {
            match mode.as_str() {
                "bios.syslinux" => {
                    self.need_package(packages, file, "syslinux", "boot mode bios.syslinux");
                    if !self.has_file_with_ext("iso/syslinux", ".cfg") {
                        self.problem(file, "bios.syslinux needs iso/syslinux/*.cfg");
                    }
                }
                "uefi.grub" if !self.exists("iso/grub/grub.cfg") => {
                    self.problem(file, "uefi.grub needs iso/grub/grub.cfg");
                }
                "uefi.systemd-boot"
                    if !self.exists("iso/efiboot/loader/loader.conf")
                        || !self.has_file_with_ext("iso/efiboot/loader/entries", ".conf") =>
                {
                    self.problem(
                        file,
                        "uefi.systemd-boot needs iso/efiboot/loader/loader.conf and entries/*.conf",
                    );
                }
                _ => {}
            }
        }
    }

    fn has_file_with_ext(&self, dir: &str, ext: &str) -> bool {
        fs::read_dir(self.path(dir)).is_ok_and(|rd| {
            rd.flatten()
                .any(|e| e.file_name().to_string_lossy().ends_with(ext))
        })
    }

    /// file_permissions: well formed, paths exist; every executable and secret is listed.
    fn file_permissions(&mut self, profile: &ProfileDef) {
        let file = "iso/profiledef.sh";
        let mut listed: BTreeMap<String, u32> = BTreeMap::new();
        for (path, value) in &profile.file_permissions {
            match parse_permission(value) {
                Ok((_, _, mode)) => {
                    listed.insert(path.trim_end_matches('/').to_string(), mode);
                }
                Err(e) => self.problem(file, format!("file_permissions[{path}]: {e}")),
            }
            let rel = format!("iso/airootfs{}", path.trim_end_matches('/'));
            if !path.starts_with('/') || path.contains("..") {
                self.problem(
                    file,
                    format!("file_permissions[{path}]: not an absolute path inside airootfs"),
                );
            } else if !self.exists(&rel) {
                self.problem(
                    file,
                    format!("file_permissions[{path}]: {rel} does not exist"),
                );
            }
        }
        // Listed recursively ("/dir/") counts for everything below.
        let recursive: Vec<(String, u32)> = profile
            .file_permissions
            .iter()
            .filter(|(p, _)| p.ends_with('/'))
            .filter_map(|(p, v)| parse_permission(v).ok().map(|(_, _, m)| (p.clone(), m)))
            .collect();
        let mode_of = |path: &str| -> Option<u32> {
            listed.get(path).copied().or_else(|| {
                recursive
                    .iter()
                    .find(|(dir, _)| path.starts_with(dir.as_str()))
                    .map(|(_, m)| *m)
            })
        };
        let airootfs = self.path("iso/airootfs");
        for (path, meta) in walk(&airootfs) {
            if !meta.is_file() {
                continue;
            }
            let Ok(inside) = path.strip_prefix(&airootfs) else {
                continue;
            };
            let abs = format!("/{}", inside.display());
            let rel = format!("iso/airootfs{abs}");
            let mode = meta.permissions().mode() & 0o7777;
            if mode & 0o111 != 0 {
                match mode_of(&abs) {
                    Some(m) if m & 0o111 != 0 => {}
                    Some(m) => self.problem(
                        &rel,
                        format!("is executable but file_permissions gives it {m:o}"),
                    ),
                    None => self.problem(
                        &rel,
                        "is executable but has no entry in file_permissions (mkarchiso resets modes)",
                    ),
                }
            }
            if is_secret(&abs) {
                match mode_of(&abs) {
                    Some(m) if m & 0o007 == 0 && m & 0o222 == 0 => {}
                    Some(m) => self.problem(
                        &rel,
                        format!("is a secret but file_permissions gives it {m:o} (use 400, or 440 for sudoers)"),
                    ),
                    None => self.problem(&rel, "is a secret but has no entry in file_permissions"),
                }
            }
        }
    }

    // ---------------------------------------------------------------------------- packages

    fn packages(&mut self) -> Packages {
        let file = "iso/packages.x86_64";
        let Some(text) = self.read(file) else {
            return Packages::default();
        };
        let mut set = BTreeSet::new();
        for (i, line) in text.lines().enumerate() {
            let before_comment = line.split('#').next().unwrap_or("");
            if !before_comment.trim().is_empty() && before_comment != before_comment.trim() {
                self.problem(
                    file,
                    format!(
                        "line {}: blanks around the name (mkarchiso passes them on to pacstrap)",
                        i + 1
                    ),
                );
            }
        }
        for (n, name) in parse_package_list(&text) {
            if !valid_package_name(&name) {
                self.problem(file, format!("line {n}: {name:?} is not a package name"));
            }
            if let Some((_, why)) = REMOVED_PACKAGES.iter().find(|(p, _)| *p == name) {
                self.problem(file, format!("line {n}: {name} {why}"));
            }
            if !set.insert(name.clone()) {
                self.problem(file, format!("line {n}: {name} is listed twice"));
            }
        }
        for (name, why) in REQUIRED_PACKAGES {
            if !set.contains(*name) {
                self.problem(file, format!("{name} is missing: {why}"));
            }
        }
        if !set.iter().any(|p| {
            p == "linux"
                || p.starts_with("linux-")
                    && !p.starts_with("linux-firmware")
                    && !p.starts_with("linux-api")
        }) {
            self.problem(file, "no kernel package (linux, linux-lts, ...)");
        }
        Packages(set)
    }

    fn pacman_conf(&mut self) {
        let file = "iso/pacman.conf";
        let Some(text) = self.read(file) else {
            return;
        };
        let sections = parse_ini(&text);
        for repo in ["core", "extra"] {
            if !sections.iter().any(|(s, _, _)| s == repo) {
                self.problem(file, format!("no [{repo}] repository"));
            }
        }
        let koompi: Vec<_> = sections
            .iter()
            .filter(|(s, _, _)| s == "koompi")
            .map(|(_, k, v)| (k.as_str(), v.as_str()))
            .collect();
        if koompi.is_empty() {
            self.problem(
                file,
                "no [koompi] repository (the local repository of KOOMPI's packages)",
            );
        } else {
            let servers: Vec<_> = koompi.iter().filter(|(k, _)| *k == "Server").collect();
            if !servers.iter().any(|(_, v)| v.contains(REPO_PLACEHOLDER)) {
                self.problem(
                    file,
                    format!("[koompi] has no `Server = file://{REPO_PLACEHOLDER}` for scripts/build-iso.sh to fill in"),
                );
            }
            if !koompi.iter().any(|(k, _)| *k == "SigLevel") {
                self.problem(
                    file,
                    "[koompi] has no SigLevel (its packages are not signed)",
                );
            }
        }
        let first = |name: &str| sections.iter().position(|(s, _, _)| s == name);
        if let (Some(k), Some(c)) = (first("koompi"), first("core")) {
            if k > c {
                self.problem(
                    file,
                    "[koompi] must come before [core] so KOOMPI's packages win",
                );
            }
        }
        if let Some(script) = self.read("scripts/build-iso.sh") {
            if !script.contains(REPO_PLACEHOLDER) {
                self.problem(
                    "scripts/build-iso.sh",
                    format!("does not replace {REPO_PLACEHOLDER} (iso/pacman.conf's placeholder)"),
                );
            }
        }
    }

    fn no_customize_script(&mut self) {
        for (path, _) in walk(&self.path("iso")) {
            if path
                .file_name()
                .is_some_and(|n| n == "customize_airootfs.sh")
            {
                let rel = path
                    .strip_prefix(self.root)
                    .unwrap_or(&path)
                    .display()
                    .to_string();
                self.problem(
                    &rel,
                    "customize_airootfs.sh is deprecated: use airootfs files, *.wants symlinks, file_permissions and pacman hooks",
                );
            }
        }
    }

    // ---------------------------------------------------------------------------- boot menus

    fn boot_menus(&mut self, packages: &Packages) {
        let mut kernels = BTreeSet::new();
        let mut files = Vec::new();
        for dir in ["iso/syslinux", "iso/grub"] {
            let Ok(rd) = fs::read_dir(self.path(dir)) else {
                continue;
            };
            let mut names: Vec<String> = rd
                .flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|n| n.ends_with(".cfg"))
                .collect();
            names.sort();
            files.extend(names.into_iter().map(|n| format!("{dir}/{n}")));
        }
        let mut syslinux_all = String::new();
        for file in &files {
            let Some(text) = self.read(file) else {
                continue;
            };
            for line in text.lines() {
                let line = line.trim();
                for (prefix, suffix) in [("vmlinuz-", ""), ("initramfs-", ".img")] {
                    let marker = format!("/%INSTALL_DIR%/boot/%ARCH%/{prefix}");
                    if let Some(pos) = line.find(&marker) {
                        let rest = &line[pos + marker.len()..];
                        let word = rest.split_whitespace().next().unwrap_or("");
                        match word.strip_suffix(suffix) {
                            Some(k) if !k.is_empty() => {
                                kernels.insert(k.to_string());
                            }
                            _ => self
                                .problem(file, format!("cannot read the kernel name in {line:?}")),
                        }
                    }
                }
                let lower = line.to_ascii_lowercase();
                if (lower.starts_with("linux ") || lower.starts_with("append "))
                    && line.contains("archisobasedir")
                    && !line.contains("archisobasedir=%INSTALL_DIR%")
                {
                    self.problem(
                        file,
                        format!("archisobasedir must be %INSTALL_DIR%: {line:?}"),
                    );
                }
                // GRUB's `linux` line carries the parameters (syslinux has them on APPEND).
                if line.starts_with("linux ")
                    && line.contains("vmlinuz-")
                    && !line.contains("archisobasedir=%INSTALL_DIR%")
                {
                    self.problem(
                        file,
                        format!("kernel line without archisobasedir=%INSTALL_DIR%: {line:?}"),
                    );
                }
            }
            if file.starts_with("iso/syslinux/") {
                syslinux_all.push_str(&text);
                syslinux_all.push('\n');
                for line in text.lines() {
                    let words: Vec<&str> = line.split_whitespace().collect();
                    let referenced = match words.as_slice() {
                        [kw, f]
                            if kw.eq_ignore_ascii_case("INCLUDE")
                                || kw.eq_ignore_ascii_case("CONFIG") =>
                        {
                            Some(*f)
                        }
                        [menu, bg, f]
                            if menu.eq_ignore_ascii_case("MENU")
                                && bg.eq_ignore_ascii_case("BACKGROUND") =>
                        {
                            Some(*f)
                        }
                        _ => None,
                    };
                    if let Some(f) = referenced {
                        if !self.exists(&format!("iso/syslinux/{f}")) {
                            self.problem(
                                file,
                                format!("refers to {f}, which is not in iso/syslinux/"),
                            );
                        }
                    }
                    if line.trim() == "LINUX /boot/memtest86+/memtest" {
                        self.need_package(packages, file, "memtest86+", "/boot/memtest86+/memtest");
                    }
                }
            }
        }
        if let Ok(bytes) = fs::read(self.path("iso/syslinux/splash.png")) {
            match png_size(&bytes) {
                Some((640, 480)) => {}
                Some((w, h)) => self.problem(
                    "iso/syslinux/splash.png",
                    format!("is {w}x{h}; vesamenu needs 640x480"),
                ),
                None => self.problem("iso/syslinux/splash.png", "is not a PNG"),
            }
        }
        // `r` picks the serial console entry (`cargo xtask vm-run --iso` tells the user to press it).
        if let Ok(grub) = fs::read_to_string(self.path("iso/grub/grub.cfg")) {
            if !(grub.contains("--hotkey r") && grub.contains("console=ttyS0")) {
                self.problem(
                    "iso/grub/grub.cfg",
                    "no menu entry with --hotkey r and console=ttyS0 (vm-run --iso: press r)",
                );
            }
        }
        if !syslinux_all.is_empty() {
            let hotkey = syslinux_all
                .lines()
                .any(|l| l.trim_start().starts_with("MENU LABEL") && l.contains("^r"));
            if !(hotkey && syslinux_all.contains("console=ttyS0")) {
                self.problem(
                    "iso/syslinux",
                    "no menu entry with hotkey ^r and console=ttyS0 (vm-run --iso: press r)",
                );
            }
        }
        if kernels.is_empty() && !files.is_empty() {
            self.problem(
                "iso",
                "no boot menu entry boots /%INSTALL_DIR%/boot/%ARCH%/vmlinuz-*",
            );
        }
        for k in &kernels {
            self.need_package(packages, "iso (boot menus)", k, &format!("vmlinuz-{k}"));
            let preset = format!("iso/airootfs/etc/mkinitcpio.d/{k}.preset");
            let Some(text) = self.read(&preset) else {
                continue;
            };
            let p = match parse_profiledef(&text) {
                Ok(p) => p,
                Err(e) => {
                    self.problem(&preset, e);
                    continue;
                }
            };
            if p.scalars.get("ALL_kver").map(String::as_str) != Some(&format!("/boot/vmlinuz-{k}"))
            {
                self.problem(&preset, format!("ALL_kver must be /boot/vmlinuz-{k}"));
            }
            if p.arrays.get("PRESETS") != Some(&vec!["archiso".to_string()]) {
                self.problem(
                    &preset,
                    "PRESETS must be ('archiso'): the live medium boots one image",
                );
            }
            if p.scalars.get("archiso_image").map(String::as_str)
                != Some(&format!("/boot/initramfs-{k}.img"))
            {
                self.problem(
                    &preset,
                    format!(
                        "archiso_image must be /boot/initramfs-{k}.img, which the boot menus load"
                    ),
                );
            }
            match p.scalars.get("archiso_config") {
                Some(c) if self.exists(&format!("iso/airootfs{c}")) => {}
                Some(c) => self.problem(
                    &preset,
                    format!("archiso_config {c} is not in iso/airootfs"),
                ),
                None => self.problem(&preset, "archiso_config is not set"),
            }
        }
    }

    // ---------------------------------------------------------------------------- initramfs

    fn initcpio(&mut self, packages: &Packages) {
        let live = "iso/airootfs/etc/mkinitcpio.conf.d/archiso.conf";
        if let Some(hooks) = self.initcpio_hooks(live, packages) {
            for need in ["base", "udev", "archiso"] {
                if !hooks.iter().any(|h| h == need) {
                    self.problem(
                        live,
                        format!("HOOKS lacks {need} (the live medium cannot boot without it)"),
                    );
                }
            }
            if hooks.iter().any(|h| h == "systemd") {
                self.problem(
                    live,
                    "HOOKS has systemd: archiso's runtime hooks need the busybox init (base udev)",
                );
            }
        }
        let target = "iso/airootfs/etc/mkinitcpio.conf.d/koompi.conf";
        if let Some(hooks) = self.initcpio_hooks(target, packages) {
            let pos = |h: &str| hooks.iter().position(|x| x == h);
            match (pos("systemd"), pos("plymouth")) {
                (Some(s), Some(p)) if s < p => {}
                (Some(_), Some(_)) => self.problem(target, "plymouth must come after systemd"),
                _ => self.problem(
                    target,
                    "HOOKS must have systemd and plymouth (the seed's section 8)",
                ),
            }
            if pos("udev").is_some() {
                self.problem(target, "HOOKS has both systemd and udev");
            }
            if pos("archiso").is_some() {
                self.problem(target, "the installed system's HOOKS must not have archiso");
            }
            if pos("sd-vconsole").is_some() && !self.exists("iso/airootfs/etc/vconsole.conf") {
                self.problem(target, "sd-vconsole needs /etc/vconsole.conf");
            }
            if let Ok(text) = fs::read_to_string(self.path(target)) {
                let modules = parse_profiledef(&text)
                    .ok()
                    .and_then(|p| p.arrays.get("MODULES").cloned())
                    .unwrap_or_default();
                if !modules.iter().any(|m| m == "btrfs") {
                    self.problem(target, "MODULES must have btrfs (the seed's section 8)");
                }
            }
        }
    }

    fn initcpio_hooks(&mut self, file: &str, packages: &Packages) -> Option<Vec<String>> {
        let text = self.read(file)?;
        let p = match parse_profiledef(&text) {
            Ok(p) => p,
            Err(e) => {
                self.problem(file, e);
                return None;
            }
        };
        let Some(hooks) = p.arrays.get("HOOKS").cloned() else {
            self.problem(file, "no HOOKS=(...)");
            return None;
        };
        for h in &hooks {
            if let Some((_, why)) = GONE_INITCPIO_HOOKS.iter().find(|(g, _)| g == h) {
                self.problem(file, format!("hook {h} no longer exists: {why}"));
            } else if let Some((_, pkg)) = INITCPIO_HOOKS.iter().find(|(k, _)| k == h) {
                self.need_package(packages, file, pkg, &format!("mkinitcpio hook {h}"));
            } else {
                self.problem(file, format!("unknown mkinitcpio hook {h}"));
            }
        }
        Some(hooks)
    }

    // ---------------------------------------------------------------------------- units

    /// KOOMPI's units (system/systemd/), parsed.
    fn koompi_units(&mut self) -> BTreeMap<String, UnitFile> {
        let dir = "system/systemd";
        let mut units = BTreeMap::new();
        let Ok(rd) = fs::read_dir(self.path(dir)) else {
            self.problem(dir, "missing (KOOMPI's systemd units)");
            return units;
        };
        let mut names: Vec<String> = rd
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|n| is_unit_name(n))
            .collect();
        names.sort();
        for name in names {
            if let Some(text) = self.read(&format!("{dir}/{name}")) {
                units.insert(name, UnitFile::parse(&text));
            }
        }
        units
    }

    /// What the KOOMPI units refer to: programs, documentation, other units.
    fn koompi_unit_references(&mut self, units: &BTreeMap<String, UnitFile>, packages: &Packages) {
        let local = self.local_units();
        for (name, unit) in units {
            let file = format!("system/systemd/{name}");
            for prog in unit.programs() {
                self.program(&file, &prog, packages);
            }
            for doc in unit.values("Unit", "Documentation") {
                for url in doc.split_whitespace() {
                    if let Some(path) = url.strip_prefix(DOCS_URL) {
                        if !self.exists(path) {
                            self.problem(
                                &file,
                                format!("Documentation={url}: {path} does not exist"),
                            );
                        }
                    }
                }
            }
            for key in [
                "Wants",
                "Requires",
                "BindsTo",
                "PartOf",
                "Upholds",
                "OnFailure",
            ] {
                for v in unit.values("Unit", key) {
                    for other in v.split_whitespace() {
                        if other.starts_with("koompi-") && !units.contains_key(other) {
                            self.problem(
                                &file,
                                format!("{key}={other}: no such unit in system/systemd"),
                            );
                        }
                    }
                }
            }
            if let Some(stem) = name.strip_suffix(".timer") {
                let target = unit
                    .values("Timer", "Unit")
                    .next()
                    .map(str::to_string)
                    .unwrap_or_else(|| format!("{stem}.service"));
                if !units.contains_key(&target) {
                    self.problem(
                        &file,
                        format!("the timer starts {target}, which is not in system/systemd"),
                    );
                }
            }
        }
        for (name, unit) in &local {
            let file = format!("iso/airootfs/etc/systemd/system/{name}");
            for prog in unit.programs() {
                self.program(&file, &prog, packages);
            }
            for key in ["Requires", "BindsTo"] {
                for v in unit.values("Unit", key) {
                    for other in v.split_whitespace() {
                        if !local.contains_key(other)
                            && !units.contains_key(other)
                            && package_unit(other).is_none()
                        {
                            self.problem(&file, format!("{key}={other}: unknown unit"));
                        }
                    }
                }
            }
        }
    }

    /// A program a unit or hook runs must be a KOOMPI binary or come from a listed package.
    fn program(&mut self, file: &str, prog: &str, packages: &Packages) {
        if let Some(bin) = prog.strip_prefix("/usr/bin/") {
            if bin.starts_with("koompi") {
                self.need_package(packages, file, "koompi-tools", prog);
                if !self.workspace_binaries().contains(bin) {
                    self.problem(
                        file,
                        format!("runs {prog}, but no workspace crate builds a binary {bin}"),
                    );
                }
                return;
            }
        }
        match PACKAGE_PROGRAMS.iter().find(|(p, _)| *p == prog) {
            Some((_, pkg)) => self.need_package(packages, file, pkg, prog),
            None => self.problem(file, format!("runs {prog}, which is not a known program (add it to PACKAGE_PROGRAMS in xtask/src/iso_lint.rs with its package)")),
        }
    }

    /// The binaries the workspace's crates build (`[[bin]]` names and `src/bin/*.rs`).
    fn workspace_binaries(&self) -> BTreeSet<String> {
        let mut bins = BTreeSet::new();
        let Ok(crates) = fs::read_dir(self.path("crates")) else {
            return bins;
        };
        for c in crates.flatten() {
            let dir = c.path();
            if let Ok(toml) = fs::read_to_string(dir.join("Cargo.toml")) {
                let mut in_bin = false;
                for line in toml.lines() {
                    let t = line.trim();
                    if t.starts_with('[') {
                        in_bin = t == "[[bin]]";
                    } else if in_bin {
                        if let Some(v) = t.strip_prefix("name") {
                            let v = v
                                .trim_start()
                                .trim_start_matches('=')
                                .trim()
                                .trim_matches('"');
                            bins.insert(v.to_string());
                        }
                    }
                }
            }
            if let Ok(rd) = fs::read_dir(dir.join("src/bin")) {
                for e in rd.flatten() {
                    let n = e.file_name().to_string_lossy().into_owned();
                    if let Some(stem) = n.strip_suffix(".rs") {
                        bins.insert(stem.to_string());
                    }
                }
            }
        }
        bins
    }

    /// Unit files the live medium carries itself (iso/airootfs/etc/systemd/system/*.{service,...}).
    fn local_units(&self) -> BTreeMap<String, UnitFile> {
        let dir = self.path("iso/airootfs/etc/systemd/system");
        let mut units = BTreeMap::new();
        if let Ok(rd) = fs::read_dir(&dir) {
            for e in rd.flatten() {
                let name = e.file_name().to_string_lossy().into_owned();
                let is_file = e.file_type().is_ok_and(|t| t.is_file());
                if is_file && is_unit_name(&name) {
                    if let Ok(text) = fs::read_to_string(e.path()) {
                        units.insert(name, UnitFile::parse(&text));
                    }
                }
            }
        }
        units
    }

    /// The committed symlinks under airootfs/etc/systemd/system and the units they enable.
    fn enabled_units(&mut self, units: &BTreeMap<String, UnitFile>, packages: &Packages) {
        let base = "iso/airootfs/etc/systemd/system";
        let dir = self.path(base);
        let local = self.local_units();
        let Ok(rd) = fs::read_dir(&dir) else {
            self.problem(base, "missing: no unit is enabled");
            return;
        };
        let mut entries: Vec<_> = rd.flatten().collect();
        entries.sort_by_key(|e| e.file_name());
        // (unit, wants directory) of every enablement found
        let mut enabled: BTreeSet<(String, String)> = BTreeSet::new();
        for e in entries {
            let name = e.file_name().to_string_lossy().into_owned();
            let rel = format!("{base}/{name}");
            let Ok(ft) = e.file_type() else {
                continue;
            };
            if ft.is_symlink() {
                let target = fs::read_link(e.path())
                    .map(|t| t.display().to_string())
                    .unwrap_or_default();
                self.top_level_link(&rel, &name, &target, units, &local, packages);
            } else if ft.is_dir() {
                if let Some(wants) = name
                    .strip_suffix(".wants")
                    .or_else(|| name.strip_suffix(".requires"))
                {
                    let mut links: Vec<_> = fs::read_dir(e.path())
                        .map(|r| r.flatten().collect())
                        .unwrap_or_else(|_| Vec::new());
                    links.sort_by_key(|l: &fs::DirEntry| l.file_name());
                    for link in links {
                        let unit = link.file_name().to_string_lossy().into_owned();
                        let lrel = format!("{rel}/{unit}");
                        if !link.file_type().is_ok_and(|t| t.is_symlink()) {
                            self.problem(&lrel, "must be a symlink to the unit");
                            continue;
                        }
                        let target = fs::read_link(link.path())
                            .map(|t| t.display().to_string())
                            .unwrap_or_default();
                        if self.wants_link(&lrel, wants, &unit, &target, units, &local, packages) {
                            enabled.insert((unit, wants.to_string()));
                        }
                    }
                } else if let Some(unit) = name.strip_suffix(".d") {
                    if !units.contains_key(unit)
                        && !local.contains_key(unit)
                        && package_unit(unit).is_none()
                    {
                        self.problem(&rel, format!("drop-in directory for unknown unit {unit}"));
                    }
                    for d in fs::read_dir(e.path())
                        .map(|r| r.flatten().collect::<Vec<_>>())
                        .unwrap_or_default()
                    {
                        let dn = d.file_name().to_string_lossy().into_owned();
                        if !dn.ends_with(".conf") {
                            self.problem(&format!("{rel}/{dn}"), "drop-ins must end in .conf");
                        }
                    }
                } else {
                    self.problem(
                        &rel,
                        "unexpected directory (expected *.wants, *.requires or *.d)",
                    );
                }
            } else if ft.is_file() && !is_unit_name(&name) {
                self.problem(&rel, "unexpected file (not a unit)");
            }
        }
        // Every KOOMPI unit with [Install] is enabled where its WantedBy= says.
        for (name, unit) in units {
            for wanted in unit
                .values("Install", "WantedBy")
                .flat_map(str::split_whitespace)
            {
                if !enabled.contains(&(name.clone(), wanted.to_string())) {
                    self.problem(
                        &format!("system/systemd/{name}"),
                        format!(
                            "has WantedBy={wanted} but {base}/{wanted}.wants/{name} is missing"
                        ),
                    );
                }
            }
        }
        for (name, unit) in &local {
            for wanted in unit
                .values("Install", "WantedBy")
                .flat_map(str::split_whitespace)
            {
                if !enabled.contains(&(name.clone(), wanted.to_string())) {
                    self.problem(
                        &format!("{base}/{name}"),
                        format!("has WantedBy={wanted} but is not enabled there"),
                    );
                }
            }
        }
        for (unit, wants) in SEED_ENABLED {
            if !enabled.contains(&(unit.to_string(), wants.to_string())) {
                self.problem(
                    base,
                    format!("{wants}.wants/{unit} is missing (the seed enables {unit})"),
                );
            }
        }
        match fs::read_link(dir.join("default.target")) {
            Ok(t) if t == Path::new("/usr/lib/systemd/system/multi-user.target") => {}
            Ok(t) => self.problem(
                &format!("{base}/default.target"),
                format!(
                    "points to {}, not multi-user.target (the seed boots to a CLI)",
                    t.display()
                ),
            ),
            Err(_) => self.problem(
                base,
                "default.target -> /usr/lib/systemd/system/multi-user.target is missing",
            ),
        }
    }

    /// A symlink directly in /etc/systemd/system: default.target, a mask or an alias.
    #[allow(clippy::too_many_arguments)]
    fn top_level_link(
        &mut self,
        rel: &str,
        name: &str,
        target: &str,
        units: &BTreeMap<String, UnitFile>,
        local: &BTreeMap<String, UnitFile>,
        packages: &Packages,
    ) {
        if name == "default.target" {
            return; // checked with the enabled units
        }
        if target == "/dev/null" {
            match package_unit(name) {
                Some(pu) => {
                    self.need_package(packages, rel, pu.package, &format!("masked unit {name}"))
                }
                None => self.problem(rel, format!("masks {name}, which is not a known unit")),
            }
            return;
        }
        let Some(aliased) = target.rsplit('/').next() else {
            return;
        };
        if let Some(pu) = package_unit(aliased) {
            if target != format!("/usr/lib/systemd/system/{aliased}") {
                self.problem(
                    rel,
                    format!("must point to /usr/lib/systemd/system/{aliased}"),
                );
            }
            if !pu.aliases.contains(&name) {
                self.problem(rel, format!("{aliased} has no Alias={name}"));
            }
            self.need_package(packages, rel, pu.package, aliased);
        } else if let Some(u) = units.get(aliased).or_else(|| local.get(aliased)) {
            if !u
                .values("Install", "Alias")
                .flat_map(str::split_whitespace)
                .any(|a| a == name)
            {
                self.problem(rel, format!("{aliased} has no Alias={name}"));
            }
        } else {
            self.problem(
                rel,
                format!("points to {target}, which is not a known unit"),
            );
        }
    }

    /// A symlink in X.wants/: the unit exists and its [Install] section wants it there.
    #[allow(clippy::too_many_arguments)]
    fn wants_link(
        &mut self,
        rel: &str,
        wants: &str,
        unit: &str,
        target: &str,
        units: &BTreeMap<String, UnitFile>,
        local: &BTreeMap<String, UnitFile>,
        packages: &Packages,
    ) -> bool {
        let installed = format!("/usr/lib/systemd/system/{unit}");
        if let Some(u) = units.get(unit) {
            if target != installed {
                self.problem(
                    rel,
                    format!(
                        "must point to {installed} (koompi-tools installs it there), not {target}"
                    ),
                );
                return false;
            }
            self.need_package(packages, rel, "koompi-tools", unit);
            if !u
                .values("Install", "WantedBy")
                .flat_map(str::split_whitespace)
                .any(|w| w == wants)
            {
                self.problem(
                    rel,
                    format!("system/systemd/{unit} has no WantedBy={wants}"),
                );
            }
            return true;
        }
        if let Some(u) = local.get(unit) {
            if target != format!("../{unit}") && target != format!("/etc/systemd/system/{unit}") {
                self.problem(
                    rel,
                    format!("must point to ../{unit} (the live medium's own unit)"),
                );
                return false;
            }
            if !u
                .values("Install", "WantedBy")
                .flat_map(str::split_whitespace)
                .any(|w| w == wants)
            {
                self.problem(rel, format!("{unit} has no WantedBy={wants}"));
            }
            return true;
        }
        if let Some(pu) = package_unit(unit) {
            if target != installed {
                self.problem(rel, format!("must point to {installed}, not {target}"));
                return false;
            }
            self.need_package(packages, rel, pu.package, unit);
            if !pu.wanted_by.contains(&wants) {
                self.problem(
                    rel,
                    format!("{unit} is not WantedBy={wants} (it is {:?})", pu.wanted_by),
                );
            }
            return true;
        }
        self.problem(
            rel,
            format!("{unit} is neither in system/systemd, nor in airootfs, nor a known package unit (PACKAGE_UNITS in xtask/src/iso_lint.rs)"),
        );
        false
    }

    // ---------------------------------------------------------------------------- verify

    /// `systemd-analyze verify` of KOOMPI's units (with the live medium's drop-ins) and of the
    /// live medium's own units, in a staged root; any output is a problem.
    fn verify_units(&mut self, units: &BTreeMap<String, UnitFile>) {
        if units.is_empty() {
            return;
        }
        match self.try_verify_units(units) {
            Ok(lines) => {
                for line in lines {
                    self.problem("system/systemd", format!("systemd-analyze verify: {line}"));
                }
            }
            Err(e) => self.problem(
                "system/systemd",
                format!("cannot run systemd-analyze verify: {e:#}"),
            ),
        }
    }

    fn try_verify_units(&mut self, units: &BTreeMap<String, UnitFile>) -> Result<Vec<String>> {
        let local = self.local_units();
        let stage = tempfile::tempdir().context("creating a staging root")?;
        let t = stage.path();
        let lib = t.join("usr/lib/systemd/system");
        let etc = t.join("etc/systemd/system");
        let bin = t.join("usr/bin");
        for d in [&lib, &etc, &bin] {
            fs::create_dir_all(d).with_context(|| format!("creating {}", d.display()))?;
        }
        // The standard targets and units the KOOMPI units refer to, from the host's systemd.
        let host = ["/usr/lib/systemd/system", "/lib/systemd/system"]
            .into_iter()
            .map(Path::new)
            .find(|p| p.is_dir())
            .context("the host has no /usr/lib/systemd/system (install systemd)")?;
        copy_tree(host, &lib)?;
        // The programs: KOOMPI's binaries as built, stubs for the packages' programs.
        let mut koompi_bins = BTreeSet::new();
        let mut stubs = BTreeSet::new();
        for u in units.values().chain(local.values()) {
            for prog in u.programs() {
                match prog.strip_prefix("/usr/bin/") {
                    Some(b) if b.starts_with("koompi") => {
                        koompi_bins.insert(b.to_string());
                    }
                    _ => {
                        stubs.insert(prog);
                    }
                }
            }
        }
        let built = self.built_binaries(&koompi_bins)?;
        for (name, path) in &built {
            fs::copy(path, bin.join(name))
                .with_context(|| format!("copying {}", path.display()))?;
        }
        for prog in &stubs {
            let p = t.join(prog.trim_start_matches('/'));
            if let Some(parent) = p.parent() {
                fs::create_dir_all(parent)?;
            }
            if !p.exists() {
                fs::write(&p, "#!/bin/sh\n")?;
                fs::set_permissions(&p, fs::Permissions::from_mode(0o755))?;
            }
        }
        let mut names = Vec::new();
        for name in units.keys() {
            fs::copy(self.path(&format!("system/systemd/{name}")), lib.join(name))?;
            names.push(format!("usr/lib/systemd/system/{name}"));
        }
        // The live medium's own units and every drop-in it has.
        let airootfs_units = self.path("iso/airootfs/etc/systemd/system");
        for name in local.keys() {
            fs::copy(airootfs_units.join(name), etc.join(name))?;
            names.push(format!("etc/systemd/system/{name}"));
        }
        if let Ok(rd) = fs::read_dir(&airootfs_units) {
            for e in rd.flatten() {
                let n = e.file_name().to_string_lossy().into_owned();
                if n.ends_with(".d") && e.file_type().is_ok_and(|t| t.is_dir()) {
                    copy_tree(&e.path(), &etc.join(&n))?;
                }
            }
        }
        let out = Command::new("systemd-analyze")
            .arg(format!("--root={}", t.display()))
            .args(["verify", "--man=no"])
            .args(&names)
            .current_dir(t)
            .output()
            .context("systemd-analyze not found (Debian/Arch package systemd)")?;
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        let mut lines: Vec<String> = text
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .map(str::to_string)
            .collect();
        if !out.status.success() && lines.is_empty() {
            lines.push(format!("failed with {}", out.status));
        }
        Ok(lines)
    }

    /// The KOOMPI binaries from the target directory (release, then debug), built with
    /// `cargo build --workspace --bins` (debug: quicker, and `cargo test` has built most of it)
    /// when one is missing.
    fn built_binaries(&mut self, names: &BTreeSet<String>) -> Result<BTreeMap<String, PathBuf>> {
        let target = match std::env::var_os("CARGO_TARGET_DIR") {
            Some(d) if !d.is_empty() => self.root.join(d),
            _ => self.root.join("target"),
        };
        let find = |name: &str| -> Option<PathBuf> {
            ["release", "debug"]
                .iter()
                .map(|p| target.join(p).join(name))
                .find(|p| p.is_file())
        };
        if names.iter().any(|n| find(n).is_none()) {
            let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
            let out = Command::new(cargo)
                .args(["build", "--workspace", "--bins", "--quiet"])
                .current_dir(self.root)
                .output()
                .context("running cargo build")?;
            if !out.status.success() {
                bail!(
                    "cargo build --workspace --bins failed: {}",
                    String::from_utf8_lossy(&out.stderr).trim()
                );
            }
        }
        let mut found = BTreeMap::new();
        for n in names {
            match find(n) {
                Some(p) => {
                    found.insert(n.clone(), p);
                }
                None => self.problem(
                    "system/systemd",
                    format!(
                        "{n} is not built by the workspace (looked in {})",
                        target.display()
                    ),
                ),
            }
        }
        Ok(found)
    }

    // ---------------------------------------------------------------------------- users

    fn users(&mut self, packages: &Packages) {
        let base = "iso/airootfs/etc";
        let mut files: BTreeMap<&str, Vec<Vec<String>>> = BTreeMap::new();
        for (name, fields) in [("passwd", 7), ("shadow", 9), ("group", 4), ("gshadow", 4)] {
            let rel = format!("{base}/{name}");
            let Some(text) = self.read(&rel) else {
                continue;
            };
            let mut rows = Vec::new();
            for (n, line) in text.lines().enumerate() {
                if line.trim().is_empty() {
                    continue;
                }
                let cols: Vec<String> = line.split(':').map(str::to_string).collect();
                if cols.len() != fields {
                    self.problem(
                        &rel,
                        format!("line {}: {} fields, expected {fields}", n + 1, cols.len()),
                    );
                    continue;
                }
                rows.push(cols);
            }
            if !rows.iter().any(|r| r[0] == "root") {
                self.problem(
                    &rel,
                    "has no root entry (archiso requires root in every user database file)",
                );
            }
            files.insert(name, rows);
        }
        let get = |file: &str, name: &str| -> Option<Vec<String>> {
            files
                .get(file)
                .and_then(|rows| rows.iter().find(|r| r[0] == name).cloned())
        };
        let passwd = files.get("passwd").cloned().unwrap_or_default();
        for user in &passwd {
            let rel = format!("{base}/passwd");
            if get("shadow", &user[0]).is_none() {
                self.problem(
                    &format!("{base}/shadow"),
                    format!("no entry for {}", user[0]),
                );
            }
            let gid = &user[3];
            let group = files
                .get("group")
                .and_then(|g| g.iter().find(|r| &r[2] == gid).cloned());
            match group {
                Some(g) => {
                    if get("gshadow", &g[0]).is_none() {
                        self.problem(
                            &format!("{base}/gshadow"),
                            format!("no entry for group {}", g[0]),
                        );
                    }
                }
                None => self.problem(
                    &rel,
                    format!("{}'s primary group {gid} is not in /etc/group", user[0]),
                ),
            }
            match user[6].as_str() {
                "/usr/bin/zsh" | "/bin/zsh" => {
                    self.need_package(packages, &rel, "zsh", &format!("{}'s shell", user[0]))
                }
                "/bin/bash" | "/usr/bin/bash" => {}
                other => self.problem(
                    &rel,
                    format!("{}'s shell {other} is not zsh or bash", user[0]),
                ),
            }
        }
        // The live user the seed and /etc/issue promise: koompi/koompi, zsh, uid 1000.
        match get("passwd", "koompi") {
            Some(u) => {
                if u[2] != "1000" || u[5] != "/home/koompi" || u[6] != "/usr/bin/zsh" {
                    self.problem(
                        &format!("{base}/passwd"),
                        "koompi must be uid 1000 with home /home/koompi and shell /usr/bin/zsh",
                    );
                }
            }
            None => self.problem(&format!("{base}/passwd"), "no live user koompi"),
        }
        if let Some(s) = get("shadow", "koompi") {
            if let Some(false) = password_matches(&s[1], "koompi") {
                self.problem(
                    &format!("{base}/shadow"),
                    "koompi's password is not \"koompi\" (as /etc/issue says)",
                );
            }
        }
        // Supplementary groups through sysusers.d (the seed's useradd -G wheel,video,audio,input).
        let rel = format!("{base}/sysusers.d/koompi-live.conf");
        if let Some(text) = self.read(&rel) {
            let groups: BTreeSet<&str> = text
                .lines()
                .filter_map(|l| {
                    let w: Vec<&str> = l.split_whitespace().collect();
                    match w.as_slice() {
                        ["m", "koompi", g] => Some(*g),
                        _ => None,
                    }
                })
                .collect();
            for g in ["wheel", "video", "audio", "input"] {
                if !groups.contains(g) {
                    self.problem(&rel, format!("no `m koompi {g}` line"));
                }
            }
        }
        let rel = format!("{base}/sudoers.d/wheel");
        if let Some(text) = self.read(&rel) {
            if text != "%wheel ALL=(ALL:ALL) ALL\n" {
                self.problem(&rel, "must be exactly `%wheel ALL=(ALL:ALL) ALL`");
            }
            self.need_package(packages, &rel, "sudo", "/etc/sudoers.d");
        }
    }

    // ---------------------------------------------------------------------------- live config

    fn live_config(&mut self, packages: &Packages) {
        let base = "iso/airootfs/etc";
        if let Some(t) = self.read(&format!("{base}/hostname")) {
            if t != "koompi-live\n" {
                self.problem(&format!("{base}/hostname"), "must be koompi-live");
            }
        }
        let mut generated = BTreeSet::new();
        if let Some(t) = self.read(&format!("{base}/locale.gen")) {
            generated = t
                .lines()
                .map(str::trim)
                .filter(|l| !l.is_empty() && !l.starts_with('#'))
                .filter_map(|l| l.split_whitespace().next().map(str::to_string))
                .collect();
            for l in ["en_US.UTF-8", "km_KH.UTF-8"] {
                if !generated.contains(l) {
                    self.problem(
                        &format!("{base}/locale.gen"),
                        format!("{l} UTF-8 is not enabled"),
                    );
                }
            }
        }
        if let Some(t) = self.read(&format!("{base}/locale.conf")) {
            match t.lines().find_map(|l| l.strip_prefix("LANG=")) {
                Some(lang) if generated.contains(lang.trim_matches('"')) => {}
                Some(lang) => self.problem(
                    &format!("{base}/locale.conf"),
                    format!("LANG={lang} is not in locale.gen"),
                ),
                None => self.problem(&format!("{base}/locale.conf"), "no LANG="),
            }
        }
        if let Some(t) = self.read(&format!("{base}/vconsole.conf")) {
            if !t.lines().any(|l| l.starts_with("KEYMAP=")) {
                self.problem(&format!("{base}/vconsole.conf"), "no KEYMAP=");
            }
        }
        let rel = format!("{base}/systemd/zram-generator.conf");
        if let Some(t) = self.read(&rel) {
            let ini = parse_ini(&t);
            let get = |k: &str| {
                ini.iter()
                    .find(|(s, key, _)| s == "zram0" && key == k)
                    .map(|(_, _, v)| v.clone())
            };
            if get("zram-size").as_deref() != Some("ram / 2") {
                self.problem(&rel, "[zram0] zram-size must be `ram / 2`");
            }
            if get("compression-algorithm").as_deref() != Some("zstd") {
                self.problem(&rel, "[zram0] compression-algorithm must be zstd");
            }
            self.need_package(packages, &rel, "zram-generator", "zram-generator.conf");
        }
        let rel = format!("{base}/skel/.zshrc");
        if let Some(t) = self.read(&rel) {
            if !t.contains("fastfetch") {
                self.problem(&rel, "does not run fastfetch at login");
            }
            for plugin in ["zsh-autosuggestions", "zsh-syntax-highlighting"] {
                if t.contains(&format!("/usr/share/zsh/plugins/{plugin}/")) {
                    self.need_package(packages, &rel, plugin, plugin);
                }
            }
        }
        // The branding lives in koompi-branding, not in the overlay.
        for f in ["motd", "issue", "os-release", "fastfetch/config.jsonc"] {
            if self.exists(&format!("{base}/{f}")) {
                self.problem(
                    &format!("{base}/{f}"),
                    "branding belongs to the koompi-branding package, not to airootfs",
                );
            }
        }
    }

    // ---------------------------------------------------------------------------- pacman hooks

    fn pacman_hooks(&mut self, packages: &Packages) {
        let dir = "iso/airootfs/etc/pacman.d/hooks";
        let Ok(rd) = fs::read_dir(self.path(dir)) else {
            return;
        };
        let mut names: Vec<String> = rd
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        let mut remover = false;
        let mut plymouth_theme = None;
        for name in names {
            let rel = format!("{dir}/{name}");
            if !name.ends_with(".hook") {
                self.problem(&rel, "pacman reads only *.hook files");
                continue;
            }
            let Some(text) = self.read(&rel) else {
                continue;
            };
            if text.lines().next() != Some("# remove from airootfs!") {
                self.problem(&rel, "first line must be `# remove from airootfs!` (a build-time hook must not reach the live system)");
            }
            let ini = parse_ini(&text);
            let values = |s: &str, k: &str| -> Vec<String> {
                ini.iter()
                    .filter(|(sec, key, _)| sec == s && key == k)
                    .map(|(_, _, v)| v.clone())
                    .collect()
            };
            if values("Trigger", "Type").iter().any(|t| t == "Package") {
                for target in values("Trigger", "Target") {
                    if target != "*" && !target.starts_with('!') {
                        self.need_package(packages, &rel, &target, &format!("Target = {target}"));
                    }
                }
            }
            for dep in values("Action", "Depends") {
                self.need_package(packages, &rel, &dep, &format!("Depends = {dep}"));
            }
            let exec = values("Action", "Exec");
            if exec.len() != 1 {
                self.problem(&rel, "needs exactly one Exec =");
            }
            for line in &exec {
                if line.contains("grep -Frl 'remove from airootfs'") {
                    remover = true;
                }
                for word in line.split_whitespace() {
                    let word = word.trim_matches('"');
                    if word.starts_with("/usr/bin/") || word.starts_with("/bin/") {
                        self.program(&rel, word, packages);
                    }
                }
                if let Some(rest) = line.strip_prefix("/usr/bin/plymouth-set-default-theme ") {
                    plymouth_theme = rest
                        .split_whitespace()
                        .find(|w| !w.starts_with('-'))
                        .map(str::to_string);
                }
            }
        }
        if !remover {
            self.problem(dir, "no hook removes the `# remove from airootfs!` hooks after the build (archiso's zzzz99-remove-custom-hooks-from-airootfs.hook)");
        }
        match plymouth_theme {
            Some(t) if self.exists(&format!("branding/plymouth/{t}/{t}.plymouth")) => {}
            Some(t) => self.problem(dir, format!("sets the Plymouth theme {t}, but branding/plymouth/{t}/{t}.plymouth does not exist")),
            None => self.problem(dir, "no hook sets the KOOMPI Plymouth theme (plymouth-set-default-theme koompi)"),
        }
    }

    // ---------------------------------------------------------------------------- branding

    fn branding(&mut self) {
        let expected = self.expected_texts();
        for (key, rel) in [
            ("motd", "branding/motd"),
            ("issue", "branding/issue"),
            ("os-release", "branding/os-release"),
            ("fastfetch", "branding/fastfetch/config.jsonc"),
        ] {
            let Some(want) = expected.get(key) else {
                continue;
            };
            if let Some(have) = self.read(rel) {
                if let Some(diff) = first_difference(want, &have) {
                    self.problem(rel, format!("differs from the seed's text: {diff}"));
                }
            }
        }
        if let Ok(text) = fs::read_to_string(self.path("branding/os-release")) {
            match (
                parse_os_release(&text),
                expected.get("os-release").map(|s| parse_os_release(s)),
            ) {
                (Ok(have), Some(Ok(want))) => {
                    if have != want {
                        self.problem(
                            "branding/os-release",
                            format!("fields {have:?} are not the seed's {want:?}"),
                        );
                    }
                    for key in ["NAME", "ID", "PRETTY_NAME"] {
                        if !have.iter().any(|(k, _)| k == key) {
                            self.problem("branding/os-release", format!("no {key}="));
                        }
                    }
                }
                (Err(e), _) => self.problem("branding/os-release", e),
                (_, Some(Err(e))) => {
                    self.problem(SEED_PATH, format!("its os-release does not parse: {e}"))
                }
                (Ok(_), None) => {}
            }
        }
        if let Ok(text) = fs::read_to_string(self.path("branding/fastfetch/config.jsonc")) {
            match strip_jsonc(&text).and_then(|j| {
                serde_json::from_str::<serde_json::Value>(&j).map_err(|e| e.to_string())
            }) {
                Ok(v) => {
                    if !v.get("modules").is_some_and(serde_json::Value::is_array) {
                        self.problem(
                            "branding/fastfetch/config.jsonc",
                            "has no \"modules\" array",
                        );
                    }
                }
                Err(e) => self.problem(
                    "branding/fastfetch/config.jsonc",
                    format!("is not valid JSONC: {e}"),
                ),
            }
        }
        self.plymouth_theme();
        self.wallpapers();
    }

    /// The seed's texts: from the seed file when it exists (and then the embedded copies must
    /// agree with it), else the embedded copies.
    fn expected_texts(&mut self) -> BTreeMap<&'static str, String> {
        let embedded: BTreeMap<&'static str, String> = [
            ("motd", SEED_MOTD),
            ("issue", SEED_ISSUE),
            ("os-release", SEED_OS_RELEASE),
            ("fastfetch", SEED_FASTFETCH),
        ]
        .into_iter()
        .map(|(k, v)| (k, v.to_string()))
        .collect();
        let Ok(seed) = fs::read_to_string(self.path(SEED_PATH)) else {
            return embedded;
        };
        let mut texts = BTreeMap::new();
        for (key, marker) in SEED_MARKERS {
            match seed_block(&seed, marker) {
                Some(block) => {
                    if let Some(diff) = embedded.get(key).and_then(|e| first_difference(&block, e))
                    {
                        self.problem(
                            "xtask/src/iso_lint.rs",
                            format!("the embedded {key} differs from the seed's: {diff}"),
                        );
                    }
                    texts.insert(key, block);
                }
                None => self.problem(SEED_PATH, format!("no fenced block after {marker}")),
            }
        }
        texts
    }

    fn plymouth_theme(&mut self) {
        let dir = "branding/plymouth/koompi";
        let rel = format!("{dir}/koompi.plymouth");
        let Some(text) = self.read(&rel) else {
            return;
        };
        let ini = parse_ini(&text);
        let get = |s: &str, k: &str| {
            ini.iter()
                .find(|(sec, key, _)| sec == s && key == k)
                .map(|(_, _, v)| v.clone())
        };
        if get("Plymouth Theme", "ModuleName").as_deref() != Some("script") {
            self.problem(
                &rel,
                "ModuleName must be script (the KOOMPI theme is a script theme)",
            );
        }
        let installed = "/usr/share/plymouth/themes/koompi";
        if get("script", "ImageDir").as_deref() != Some(installed) {
            self.problem(&rel, format!("[script] ImageDir must be {installed}"));
        }
        let script = match get("script", "ScriptFile") {
            Some(s) => match s.strip_prefix(&format!("{installed}/")) {
                Some(f) => f.to_string(),
                None => {
                    self.problem(&rel, format!("ScriptFile {s} is not in {installed}"));
                    return;
                }
            },
            None => {
                self.problem(&rel, "no [script] ScriptFile");
                return;
            }
        };
        let srel = format!("{dir}/{script}");
        let Some(code) = self.read(&srel) else {
            return;
        };
        let mut images = 0;
        for (i, _) in code.match_indices("Image(\"") {
            let rest = &code[i + 7..];
            let Some(end) = rest.find('"') else {
                continue;
            };
            let image = &rest[..end];
            images += 1;
            match fs::read(self.path(&format!("{dir}/{image}"))) {
                Ok(b) if png_size(&b).is_some() => {}
                Ok(_) => self.problem(&srel, format!("{image} is not a PNG")),
                Err(_) => self.problem(&srel, format!("loads {image}, which is not in {dir}")),
            }
        }
        if images == 0 {
            self.problem(&srel, "loads no image (the theme needs its logo)");
        }
    }

    fn wallpapers(&mut self) {
        let dir = "branding/wallpapers";
        let Ok(rd) = fs::read_dir(self.path(dir)) else {
            self.problem(dir, "missing");
            return;
        };
        let mut count = 0;
        for e in rd.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            let rel = format!("{dir}/{name}");
            if !name.ends_with(".png") {
                continue;
            }
            count += 1;
            let Ok(bytes) = fs::read(e.path()) else {
                self.problem(&rel, "cannot read it");
                continue;
            };
            if bytes.len() as u64 > WALLPAPER_MAX_BYTES {
                self.problem(
                    &rel,
                    format!(
                        "{} bytes: over the {WALLPAPER_MAX_BYTES}-byte limit",
                        bytes.len()
                    ),
                );
            }
            match png_size(&bytes) {
                Some((w, h)) if w >= 1280 && h >= 720 => {}
                Some((w, h)) => self.problem(&rel, format!("{w}x{h} is too small for a wallpaper")),
                None => self.problem(&rel, "is not a PNG"),
            }
        }
        if count == 0 {
            self.problem(dir, "no PNG wallpaper");
        }
    }
}

// -------------------------------------------------------------------------------- parsers

/// The assignments of a profiledef.sh (or any file of plain bash assignments: mkinitcpio
/// configs and presets).
#[derive(Debug, Default, Clone, PartialEq)]
struct ProfileDef {
    /// `name=value`: the value with simple quoting removed, else as written.
    scalars: BTreeMap<String, String>,
    /// `name=(...)`: the words.
    arrays: BTreeMap<String, Vec<String>>,
    /// `file_permissions=(["path"]="uid:gid:mode" ...)`, in order.
    file_permissions: Vec<(String, String)>,
}

fn parse_profiledef(text: &str) -> Result<ProfileDef, String> {
    let mut p = ProfileDef::default();
    let lines: Vec<&str> = text.lines().collect();
    let mut i = 0;
    while i < lines.len() {
        let line = lines[i].trim();
        let n = i + 1;
        i += 1;
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let Some((name, value)) = line.split_once('=') else {
            continue;
        };
        let valid_name = !name.is_empty()
            && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
            && !name.starts_with(|c: char| c.is_ascii_digit());
        if !valid_name {
            continue;
        }
        if let Some(body) = value.strip_prefix('(') {
            // An array, possibly over several lines, up to the unquoted ')'.
            let mut body = body.to_string();
            loop {
                if let Some(end) = array_end(&body) {
                    body.truncate(end);
                    break;
                }
                match lines.get(i) {
                    Some(next) => {
                        body.push('\n');
                        body.push_str(next);
                        i += 1;
                    }
                    None => return Err(format!("line {n}: {name}=( is never closed")),
                }
            }
            let words = shell_words(&body).map_err(|e| format!("line {n}: {name}: {e}"))?;
            if name == "file_permissions" {
                for w in words {
                    let entry = w
                        .strip_prefix('[')
                        .and_then(|r| r.split_once("]="))
                        .ok_or_else(|| {
                            format!("line {n}: file_permissions entry {w:?} is not [path]=value")
                        })?;
                    p.file_permissions
                        .push((entry.0.to_string(), entry.1.to_string()));
                }
            } else {
                p.arrays.insert(name.to_string(), words);
            }
        } else {
            p.scalars
                .insert(name.to_string(), unquote_simple(value.trim()));
        }
    }
    Ok(p)
}

/// Where the unquoted `)` closing an array is, if in `body`.
fn array_end(body: &str) -> Option<usize> {
    let mut quote: Option<char> = None;
    let mut escaped = false;
    let mut comment = false;
    let mut prev_blank = true;
    for (i, c) in body.char_indices() {
        if comment {
            if c == '\n' {
                comment = false;
                prev_blank = true;
            }
            continue;
        }
        if escaped {
            escaped = false;
            continue;
        }
        match (quote, c) {
            (Some('\''), '\'') | (Some('"'), '"') => quote = None,
            (Some('"'), '\\') => escaped = true,
            (Some(_), _) => {}
            (None, '\\') => escaped = true,
            (None, '\'' | '"') => quote = Some(c),
            (None, '#') if prev_blank => comment = true,
            (None, ')') => return Some(i),
            _ => {}
        }
        prev_blank = c.is_whitespace() || c == '(';
    }
    None
}

/// Splits bash words: quotes removed, `#` comments skipped.
fn shell_words(text: &str) -> Result<Vec<String>, String> {
    let mut words = Vec::new();
    let mut cur = String::new();
    let mut in_word = false;
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        match c {
            c if c.is_whitespace() => {
                if in_word {
                    words.push(std::mem::take(&mut cur));
                    in_word = false;
                }
            }
            '#' if !in_word => {
                for n in chars.by_ref() {
                    if n == '\n' {
                        break;
                    }
                }
            }
            '\'' => {
                in_word = true;
                loop {
                    match chars.next() {
                        Some('\'') => break,
                        Some(n) => cur.push(n),
                        None => return Err("unterminated '".into()),
                    }
                }
            }
            '"' => {
                in_word = true;
                loop {
                    match chars.next() {
                        Some('"') => break,
                        Some('\\') => match chars.next() {
                            Some(n @ ('"' | '\\' | '$' | '`')) => cur.push(n),
                            Some('\n') => {}
                            Some(n) => {
                                cur.push('\\');
                                cur.push(n);
                            }
                            None => return Err("unterminated \"".into()),
                        },
                        Some(n) => cur.push(n),
                        None => return Err("unterminated \"".into()),
                    }
                }
            }
            '\\' => match chars.next() {
                Some('\n') => {}
                Some(n) => {
                    in_word = true;
                    cur.push(n);
                }
                None => return Err("trailing backslash".into()),
            },
            _ => {
                in_word = true;
                cur.push(c);
            }
        }
    }
    if in_word {
        words.push(cur);
    }
    Ok(words)
}

/// `"value"` or `'value'` without inner quotes becomes `value`; anything else stays as written.
fn unquote_simple(v: &str) -> String {
    for q in ['"', '\''] {
        if let Some(inner) = v.strip_prefix(q).and_then(|r| r.strip_suffix(q)) {
            if !inner.contains(q) {
                return inner.to_string();
            }
        }
    }
    v.to_string()
}

/// `uid:gid:mode` of file_permissions.
fn parse_permission(value: &str) -> Result<(u32, u32, u32), String> {
    let parts: Vec<&str> = value.split(':').collect();
    let [uid, gid, mode] = parts.as_slice() else {
        return Err(format!("{value:?} is not uid:gid:mode"));
    };
    let num = |s: &str, what: &str| -> Result<u32, String> {
        s.parse::<u32>()
            .map_err(|_| format!("{what} {s:?} in {value:?} is not a number"))
    };
    let uid = num(uid, "uid")?;
    let gid = num(gid, "gid")?;
    if !(3..=4).contains(&mode.len()) || !mode.bytes().all(|b| (b'0'..=b'7').contains(&b)) {
        return Err(format!(
            "mode {mode:?} in {value:?} is not 3 or 4 octal digits"
        ));
    }
    let mode = u32::from_str_radix(mode, 8).map_err(|e| e.to_string())?;
    Ok((uid, gid, mode))
}

/// Problems of a bootmodes list: deprecated or unknown names, no BIOS or no UEFI mode, two UEFI
/// boot loaders.
fn check_bootmodes(modes: &[String]) -> Vec<String> {
    let mut problems = Vec::new();
    let mut seen = BTreeSet::new();
    for m in modes {
        if !seen.insert(m.as_str()) {
            problems.push(format!("boot mode {m} is listed twice"));
        }
        if let Some((_, new)) = DEPRECATED_BOOTMODES.iter().find(|(old, _)| old == m) {
            problems.push(format!(
                "boot mode {m} is deprecated since archiso v86: use {new}"
            ));
        } else if !BOOTMODES.contains(&m.as_str()) {
            problems.push(format!(
                "unknown boot mode {m} (archiso knows {})",
                BOOTMODES.join(", ")
            ));
        }
    }
    if !modes.iter().any(|m| m == "bios.syslinux") {
        problems
            .push("no BIOS boot mode (bios.syslinux): KOOMPI must boot on BIOS machines".into());
    }
    if !modes
        .iter()
        .any(|m| m == "uefi.grub" || m == "uefi.systemd-boot")
    {
        problems.push("no UEFI boot mode (uefi.grub): KOOMPI must boot on UEFI machines".into());
    }
    if modes.iter().any(|m| m == "uefi.grub") && modes.iter().any(|m| m == "uefi.systemd-boot") {
        problems.push("uefi.grub and uefi.systemd-boot cannot be used together".into());
    }
    problems
}

/// The package names of a packages.x86_64 with their line numbers (mkarchiso's rules: `#`
/// starts a comment anywhere, blank lines are skipped).
fn parse_package_list(text: &str) -> Vec<(usize, String)> {
    text.lines()
        .enumerate()
        .filter_map(|(i, l)| {
            let l = l.split('#').next().unwrap_or("").trim();
            (!l.is_empty()).then(|| (i + 1, l.to_string()))
        })
        .collect()
}

/// pacman's package name rules: lower-case alphanumerics and `@._+-`, not starting with `-` or `.`.
fn valid_package_name(name: &str) -> bool {
    !name.is_empty()
        && !name.starts_with(['-', '.'])
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"@._+-".contains(&b))
}

/// (section, key, value) of an INI-like file (pacman.conf, pacman hooks, plymouth themes,
/// zram-generator.conf); `#` and `;` lines are comments; a key without `=` has an empty value.
fn parse_ini(text: &str) -> Vec<(String, String, String)> {
    let mut section = String::new();
    let mut out = Vec::new();
    for line in text.lines() {
        let l = line.trim();
        if l.is_empty() || l.starts_with('#') || l.starts_with(';') {
            continue;
        }
        if let Some(s) = l.strip_prefix('[').and_then(|r| r.strip_suffix(']')) {
            section = s.trim().to_string();
            continue;
        }
        let (k, v) = l.split_once('=').unwrap_or((l, ""));
        out.push((section.clone(), k.trim().to_string(), v.trim().to_string()));
    }
    out
}

/// A systemd unit file's settings.
#[derive(Debug, Clone, Default)]
struct UnitFile(Vec<(String, String, String)>);

impl UnitFile {
    fn parse(text: &str) -> Self {
        UnitFile(parse_ini(text))
    }

    fn values<'s>(&'s self, section: &'s str, key: &'s str) -> impl Iterator<Item = &'s str> + 's {
        self.0
            .iter()
            .filter(move |(s, k, _)| s == section && k == key)
            .map(|(_, _, v)| v.as_str())
    }

    /// The programs of every `Exec*=` line (prefixes `-@:+!` removed).
    fn programs(&self) -> Vec<String> {
        self.0
            .iter()
            .filter(|(_, k, _)| k.starts_with("Exec"))
            .filter_map(|(_, _, v)| {
                v.trim_start_matches(['-', '@', ':', '+', '!'])
                    .split_whitespace()
                    .next()
                    .map(str::to_string)
            })
            .collect()
    }
}

fn is_unit_name(name: &str) -> bool {
    [
        ".service",
        ".timer",
        ".socket",
        ".target",
        ".mount",
        ".path",
        ".automount",
        ".slice",
    ]
    .iter()
    .any(|s| name.ends_with(s))
}

fn package_unit(name: &str) -> Option<&'static PackageUnit> {
    PACKAGE_UNITS.iter().find(|u| u.unit == name)
}

/// Files that hold secrets or grant privileges.
fn is_secret(abs: &str) -> bool {
    matches!(abs, "/etc/shadow" | "/etc/gshadow" | "/etc/sudoers")
        || abs.starts_with("/etc/sudoers.d/")
}

/// Every entry below `dir` (not following symlinks), sorted.
fn walk(dir: &Path) -> Vec<(PathBuf, fs::Metadata)> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(rd) = fs::read_dir(&d) else {
            continue;
        };
        for e in rd.flatten() {
            let path = e.path();
            let Ok(meta) = fs::symlink_metadata(&path) else {
                continue;
            };
            if meta.is_dir() {
                stack.push(path.clone());
            }
            out.push((path, meta));
        }
    }
    out.sort_by(|a, b| a.0.cmp(&b.0));
    out
}

/// Copies a directory tree, symlinks as symlinks; existing files are kept.
fn copy_tree(from: &Path, to: &Path) -> Result<()> {
    fs::create_dir_all(to).with_context(|| format!("creating {}", to.display()))?;
    for e in fs::read_dir(from)
        .with_context(|| format!("reading {}", from.display()))?
        .flatten()
    {
        let t = e.file_type()?;
        let dest = to.join(e.file_name());
        if t.is_dir() {
            copy_tree(&e.path(), &dest)?;
        } else if t.is_symlink() {
            if fs::symlink_metadata(&dest).is_err() {
                std::os::unix::fs::symlink(fs::read_link(e.path())?, &dest)?;
            }
        } else if !dest.exists() {
            fs::copy(e.path(), &dest).with_context(|| format!("copying {}", e.path().display()))?;
        }
    }
    Ok(())
}

/// Width and height of a PNG.
fn png_size(bytes: &[u8]) -> Option<(u32, u32)> {
    if bytes.len() < 24 || &bytes[..8] != b"\x89PNG\r\n\x1a\n" || &bytes[12..16] != b"IHDR" {
        return None;
    }
    let be = |b: &[u8]| u32::from_be_bytes([b[0], b[1], b[2], b[3]]);
    Some((be(&bytes[16..20]), be(&bytes[20..24])))
}

/// Whether a SHA-512 crypt hash (`$6$salt$...`) is the hash of `password`, using
/// `openssl passwd -6`; None when it cannot tell (other scheme, no openssl).
fn password_matches(hash: &str, password: &str) -> Option<bool> {
    let salt = hash.strip_prefix("$6$")?.split('$').next()?;
    let out = Command::new("openssl")
        .args(["passwd", "-6", "-salt", salt, password])
        .output()
        .ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).trim() == hash)
}

/// JSONC to JSON: `//` and `/* */` comments outside strings removed, trailing commas before
/// `}` or `]` removed.
fn strip_jsonc(text: &str) -> Result<String, String> {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars().peekable();
    let mut in_str = false;
    while let Some(c) = chars.next() {
        if in_str {
            out.push(c);
            if c == '\\' {
                if let Some(n) = chars.next() {
                    out.push(n);
                }
            } else if c == '"' {
                in_str = false;
            }
            continue;
        }
        match c {
            '"' => {
                in_str = true;
                out.push(c);
            }
            '/' if chars.peek() == Some(&'/') => {
                for n in chars.by_ref() {
                    if n == '\n' {
                        out.push('\n');
                        break;
                    }
                }
            }
            '/' if chars.peek() == Some(&'*') => {
                chars.next();
                let mut prev = '\0';
                let mut closed = false;
                for n in chars.by_ref() {
                    if n == '\n' {
                        out.push('\n');
                    }
                    if prev == '*' && n == '/' {
                        closed = true;
                        break;
                    }
                    prev = n;
                }
                if !closed {
                    return Err("unterminated /* comment".into());
                }
                out.push(' ');
            }
            _ => out.push(c),
        }
    }
    if in_str {
        return Err("unterminated string".into());
    }
    // Trailing commas.
    let chars: Vec<char> = out.chars().collect();
    let mut res = String::with_capacity(out.len());
    let mut in_str = false;
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if in_str {
            res.push(c);
            if c == '\\' {
                if let Some(n) = chars.get(i + 1) {
                    res.push(*n);
                    i += 1;
                }
            } else if c == '"' {
                in_str = false;
            }
        } else if c == '"' {
            in_str = true;
            res.push(c);
        } else if c == ',' {
            let next = chars[i + 1..].iter().find(|n| !n.is_whitespace());
            if !matches!(next, Some('}') | Some(']')) {
                res.push(c);
            }
        } else {
            res.push(c);
        }
        i += 1;
    }
    Ok(res)
}

/// os-release(5): `KEY=value` lines, values unquoted (no shell specials) or in single or
/// double quotes (with `\"`, `\\`, `` \` `` and `\$` escapes); `#` comments.
fn parse_os_release(text: &str) -> Result<Vec<(String, String)>, String> {
    let mut out: Vec<(String, String)> = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let n = i + 1;
        let t = line.trim();
        if t.is_empty() || t.starts_with('#') {
            continue;
        }
        let (key, raw) = line
            .split_once('=')
            .ok_or_else(|| format!("line {n}: no `=` in {line:?}"))?;
        let key_ok = key.starts_with(|c: char| c.is_ascii_uppercase())
            && key
                .chars()
                .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_');
        if !key_ok {
            return Err(format!("line {n}: {key:?} is not a KEY"));
        }
        let value = if let Some(inner) = raw.strip_prefix('"') {
            let inner = inner
                .strip_suffix('"')
                .ok_or_else(|| format!("line {n}: {key}'s value has no closing \""))?;
            let mut v = String::new();
            let mut chars = inner.chars();
            while let Some(c) = chars.next() {
                match c {
                    '\\' => match chars.next() {
                        Some(e @ ('"' | '\\' | '`' | '$')) => v.push(e),
                        other => {
                            return Err(format!(
                                "line {n}: {key}: bad escape \\{}",
                                other.map(String::from).unwrap_or_default()
                            ))
                        }
                    },
                    '"' | '`' | '$' => {
                        return Err(format!("line {n}: {key}: unescaped {c} inside quotes"))
                    }
                    _ => v.push(c),
                }
            }
            v
        } else if let Some(inner) = raw.strip_prefix('\'') {
            let inner = inner
                .strip_suffix('\'')
                .ok_or_else(|| format!("line {n}: {key}'s value has no closing '"))?;
            if inner.contains('\'') {
                return Err(format!("line {n}: {key}: ' inside single quotes"));
            }
            inner.to_string()
        } else {
            if let Some(bad) = raw
                .chars()
                .find(|c| !(c.is_ascii_alphanumeric() || "._-+:/,@%".contains(*c)))
            {
                return Err(format!(
                    "line {n}: {key}: {bad:?} in an unquoted value (quote it)"
                ));
            }
            raw.to_string()
        };
        if out.iter().any(|(k, _)| k == key) {
            return Err(format!("line {n}: {key} is set twice"));
        }
        out.push((key.to_string(), value));
    }
    Ok(out)
}

/// The fenced block that follows the line containing `marker` in the seed, each line ending
/// in `\n`.
fn seed_block(seed: &str, marker: &str) -> Option<String> {
    let lines: Vec<&str> = seed.lines().collect();
    let at = lines.iter().position(|l| l.contains(marker))?;
    let open = (at + 1..lines.len()).find(|&i| lines[i].starts_with("```"))?;
    let mut block = String::new();
    for line in &lines[open + 1..] {
        if *line == "```" {
            return Some(block);
        }
        block.push_str(line);
        block.push('\n');
    }
    None
}

/// Where two texts first differ, for a one-line message; None when they are equal.
fn first_difference(want: &str, have: &str) -> Option<String> {
    if want == have {
        return None;
    }
    let (w, h): (Vec<&str>, Vec<&str>) = (want.split('\n').collect(), have.split('\n').collect());
    for i in 0..w.len().max(h.len()) {
        let (a, b) = (w.get(i), h.get(i));
        if a != b {
            let show =
                |s: Option<&&str>| s.map_or("<end of file>".to_string(), |s| format!("{s:?}"));
            return Some(format!(
                "line {}: expected {}, found {}",
                i + 1,
                show(a),
                show(b)
            ));
        }
    }
    Some("the texts differ".to_string())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn workspace() -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .parent()
            .unwrap()
            .to_path_buf()
    }

    #[test]
    fn jsonc_comments_and_trailing_commas_are_removed() {
        let text = r#"{
            // a line comment
            "url": "https://example.com/a//b", /* a block
            comment */ "glob": "/* not a comment */",
            "quote": "say \"hi\" // still a string",
            "list": [1, 2, 3,],
            "nested": {"a": 1, /* c */ },
        }"#;
        let json = strip_jsonc(text).unwrap();
        let v: serde_json::Value = serde_json::from_str(&json).unwrap();
        assert_eq!(v["url"], "https://example.com/a//b");
        assert_eq!(v["glob"], "/* not a comment */");
        assert_eq!(v["quote"], "say \"hi\" // still a string");
        assert_eq!(v["list"], serde_json::json!([1, 2, 3]));
        assert_eq!(v["nested"], serde_json::json!({"a": 1}));
    }

    #[test]
    fn jsonc_errors_are_caught() {
        assert!(strip_jsonc("{ /* open").is_err());
        assert!(strip_jsonc("{ \"a\": \"open }").is_err());
        // Stripping alone does not make invalid JSON valid.
        let json = strip_jsonc("{ \"a\": 1 \"b\": 2 }").unwrap();
        assert!(serde_json::from_str::<serde_json::Value>(&json).is_err());
    }

    #[test]
    fn the_seed_fastfetch_config_is_valid_jsonc() {
        let json = strip_jsonc(SEED_FASTFETCH).unwrap();
        let v: serde_json::Value = serde_json::from_str(&json).unwrap();
        assert_eq!(v["display"]["separator"], " → ");
        assert_eq!(v["modules"].as_array().unwrap().len(), 18);
    }

    #[test]
    fn os_release_parses_quoted_and_unquoted_values() {
        let fields = parse_os_release(SEED_OS_RELEASE).unwrap();
        assert_eq!(fields.len(), 9);
        assert_eq!(fields[0], ("NAME".to_string(), "KOOMPI OS".to_string()));
        assert_eq!(fields[1], ("ID".to_string(), "koompi".to_string()));
        assert_eq!(
            fields[5],
            (
                "PRETTY_NAME".to_string(),
                "KOOMPI OS Base Edition".to_string()
            )
        );
        let odd = parse_os_release("# c\n\nA=\"x \\\"y\\\" \\$z\"\nB='a b'\nC=1.0\n").unwrap();
        assert_eq!(odd[0].1, "x \"y\" $z");
        assert_eq!(odd[1].1, "a b");
        assert_eq!(odd[2].1, "1.0");
    }

    #[test]
    fn os_release_errors_are_caught() {
        for bad in [
            "NAME=KOOMPI OS\n",         // unquoted space
            "NAME=\"KOOMPI OS\n",       // no closing quote
            "NAME=\"a\"\nNAME=\"b\"\n", // twice
            "name=\"a\"\n",             // lower-case key
            "NAME\n",                   // no =
            "NAME=\"a\"b\"\n",          // unescaped quote
            "NAME=\"$HOME\"\n",         // unescaped $
        ] {
            assert!(parse_os_release(bad).is_err(), "{bad:?} parsed");
        }
    }

    #[test]
    fn profiledef_assignments_arrays_and_permissions_parse() {
        let text = r#"#!/usr/bin/env bash
# shellcheck disable=SC2034
iso_name="koompi-os-base"
iso_label="KOOMPI_$(date --date="@${SOURCE_DATE_EPOCH:-$(date +%s)}" +%Y%m)"
install_dir=koompi
bootmodes=('bios.syslinux'   # BIOS
           'uefi.grub')
airootfs_image_tool_options=('-comp' 'xz' '-Xbcj' 'x86' '-b' '1M')
file_permissions=(
  ["/etc/shadow"]="0:0:400"
  # a comment
  ["/usr/local/bin/tool with space"]="0:0:755"
)
"#;
        let p = parse_profiledef(text).unwrap();
        assert_eq!(p.scalars["iso_name"], "koompi-os-base");
        assert_eq!(p.scalars["install_dir"], "koompi");
        assert!(p.scalars["iso_label"].starts_with("\"KOOMPI_$(date"));
        assert_eq!(p.arrays["bootmodes"], ["bios.syslinux", "uefi.grub"]);
        assert_eq!(p.arrays["airootfs_image_tool_options"][1], "xz");
        assert_eq!(
            p.file_permissions,
            [
                ("/etc/shadow".to_string(), "0:0:400".to_string()),
                (
                    "/usr/local/bin/tool with space".to_string(),
                    "0:0:755".to_string()
                )
            ]
        );
        assert!(parse_profiledef("bootmodes=('bios.syslinux'\n").is_err());
        assert!(parse_profiledef("file_permissions=(\"/etc/shadow\")\n").is_err());
        assert!(parse_profiledef("a=('open)\n").is_err());
    }

    #[test]
    fn file_permission_values_parse() {
        assert_eq!(parse_permission("0:0:400").unwrap(), (0, 0, 0o400));
        assert_eq!(
            parse_permission("1000:1000:0750").unwrap(),
            (1000, 1000, 0o750)
        );
        for bad in [
            "0:0",
            "0:0:999",
            "0:0:40",
            "root:0:400",
            "0:0:400:1",
            "0:0:rwx",
        ] {
            assert!(parse_permission(bad).is_err(), "{bad} parsed");
        }
    }

    #[test]
    fn bootmodes_need_bios_and_uefi_with_current_names() {
        let v = |m: &[&str]| m.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert!(check_bootmodes(&v(&["bios.syslinux", "uefi.grub"])).is_empty());
        assert!(check_bootmodes(&v(&["bios.syslinux", "uefi.systemd-boot"])).is_empty());
        let p = check_bootmodes(&v(&["bios.syslinux.mbr", "uefi-x64.grub.esp"]));
        assert!(
            p.iter()
                .any(|s| s.contains("bios.syslinux.mbr is deprecated")),
            "{p:?}"
        );
        assert!(p.iter().any(|s| s.contains("no BIOS")), "{p:?}");
        assert!(p.iter().any(|s| s.contains("no UEFI")), "{p:?}");
        let p = check_bootmodes(&v(&["uefi.grub"]));
        assert_eq!(p.len(), 1, "{p:?}");
        let p = check_bootmodes(&v(&[
            "bios.syslinux",
            "uefi.grub",
            "uefi.systemd-boot",
            "uefi.grub",
        ]));
        assert!(
            p.iter().any(|s| s.contains("cannot be used together")),
            "{p:?}"
        );
        assert!(p.iter().any(|s| s.contains("twice")), "{p:?}");
        assert!(check_bootmodes(&v(&["bios.grub", "uefi.grub"]))
            .iter()
            .any(|s| s.contains("unknown")));
    }

    #[test]
    fn package_lists_drop_comments_and_names_are_checked() {
        let list = parse_package_list("# head\nbase\n\n  linux-lts  # kernel\nfcitx5-im\n");
        assert_eq!(
            list,
            [
                (2, "base".to_string()),
                (4, "linux-lts".to_string()),
                (5, "fcitx5-im".to_string())
            ]
        );
        assert!(valid_package_name("memtest86+-efi"));
        assert!(valid_package_name("wireless_tools"));
        assert!(!valid_package_name("Base"));
        assert!(!valid_package_name("-x"));
        assert!(!valid_package_name("a b"));
    }

    #[test]
    fn seed_blocks_and_differences() {
        let seed = "intro\n**`/etc/issue`:**\n```\n\n  line\n\n```\nafter\n";
        assert_eq!(
            seed_block(seed, "**`/etc/issue`:**").unwrap(),
            "\n  line\n\n"
        );
        assert!(seed_block(seed, "**missing**").is_none());
        assert!(first_difference("a\nb\n", "a\nb\n").is_none());
        let d = first_difference("a\nb\n", "a\nc\n").unwrap();
        assert!(d.starts_with("line 2: expected \"b\""), "{d}");
        assert!(first_difference("a\n", "a").is_some());
    }

    #[test]
    fn png_sizes_are_read() {
        let mut png = b"\x89PNG\r\n\x1a\n\0\0\0\x0dIHDR".to_vec();
        png.extend(640u32.to_be_bytes());
        png.extend(480u32.to_be_bytes());
        assert_eq!(png_size(&png), Some((640, 480)));
        assert_eq!(png_size(b"GIF89a"), None);
    }

    #[test]
    fn the_embedded_seed_texts_match_the_seed_when_it_is_here() {
        let Ok(seed) = fs::read_to_string(workspace().join(SEED_PATH)) else {
            eprintln!("SKIP: {SEED_PATH} not here");
            return;
        };
        for ((key, marker), embedded) in
            SEED_MARKERS
                .iter()
                .zip([SEED_MOTD, SEED_OS_RELEASE, SEED_ISSUE, SEED_FASTFETCH])
        {
            assert_eq!(
                seed_block(&seed, marker).as_deref(),
                Some(embedded),
                "{key}"
            );
        }
    }

    #[test]
    fn the_real_tree_passes() {
        let problems = lint(&workspace());
        assert!(
            problems.is_empty(),
            "iso-lint problems:\n{}",
            problems.join("\n")
        );
    }

    /// A copy of the tree with mistakes in it: each mistake is reported.
    #[test]
    fn mistakes_are_reported() {
        let real = workspace();
        // The copy shares the real tree's target directory: build the binaries there first.
        let _ = lint(&real);
        let tmp = tempfile::tempdir().unwrap();
        let ws = tmp.path().join("ws");
        for dir in ["iso", "branding", "system", "docs", "scripts"] {
            copy_tree(&real.join(dir), &ws.join(dir)).unwrap();
        }
        // Binaries and crates are only read: link them.
        for dir in ["crates", "target"] {
            std::os::unix::fs::symlink(real.join(dir), ws.join(dir)).unwrap();
        }
        let a = ws.join("iso/airootfs");
        for script in ["root/customize_airootfs.sh", "usr/local/bin/tool"] {
            let path = a.join(script);
            fs::create_dir_all(path.parent().unwrap()).unwrap();
            fs::write(&path, "#!/bin/sh\n").unwrap();
            fs::set_permissions(&path, fs::Permissions::from_mode(0o755)).unwrap();
        }
        fs::remove_file(
            a.join("etc/systemd/system/timers.target.wants/koompi-snapshot-daily.timer"),
        )
        .unwrap();
        std::os::unix::fs::symlink(
            "/usr/lib/systemd/system/nonesuch.service",
            a.join("etc/systemd/system/multi-user.target.wants/nonesuch.service"),
        )
        .unwrap();
        let pk = ws.join("iso/packages.x86_64");
        let list = fs::read_to_string(&pk).unwrap();
        fs::write(
            &pk,
            format!("{list}noto-fonts-khmer\nzsh\n").replace("\nacpid\n", "\n"),
        )
        .unwrap();
        let pd = ws.join("iso/profiledef.sh");
        let def = fs::read_to_string(&pd)
            .unwrap()
            .replace("'bios.syslinux'", "'bios.syslinux.mbr'");
        fs::write(&pd, def).unwrap();
        let motd = ws.join("branding/motd");
        let text = fs::read_to_string(&motd)
            .unwrap()
            .replace("Quick Start:", "Quick start:");
        fs::write(&motd, text).unwrap();
        fs::write(
            ws.join("branding/fastfetch/config.jsonc"),
            "{ \"modules\": [ }",
        )
        .unwrap();
        let unit = ws.join("system/systemd/koompi-boot-success.service");
        let text = fs::read_to_string(&unit)
            .unwrap()
            .replace("[Service]", "[Service]\nBogusKey=1");
        fs::write(&unit, text).unwrap();

        let problems = lint(&ws);
        let all = problems.join("\n");
        for want in [
            "customize_airootfs.sh is deprecated",
            "iso/airootfs/usr/local/bin/tool: is executable but has no entry in file_permissions",
            "timers.target.wants/koompi-snapshot-daily.timer is missing",
            "nonesuch.service is neither in system/systemd",
            "noto-fonts-khmer does not exist in Arch",
            "zsh is listed twice",
            "acpid.service comes from package acpid, which is not in iso/packages.x86_64",
            "bios.syslinux.mbr is deprecated",
            "branding/motd: differs from the seed's text: line 9",
            "branding/fastfetch/config.jsonc: differs from the seed's text",
            "is not valid JSONC",
            "BogusKey",
        ] {
            assert!(all.contains(want), "{want:?} not reported in:\n{all}");
        }
        // Each problem is one line.
        assert!(problems.iter().all(|p| !p.contains('\n')), "{all}");
    }
}
