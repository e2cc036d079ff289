//! What the tests and xtask's tasks need on the host: one list ([`NEEDS`]) of programs and
//! files, the Debian and Arch packages that provide them, and what each is for. `cargo
//! xtask test` installs from it; a test that finds a program missing names its package
//! from it in one line ([`require_programs`], [`fail`]).

use std::path::{Path, PathBuf};

/// What a needed program or file is for: each task asks for the purposes it has.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Purpose {
    /// The tests on real Btrfs, snapper, GRUB's environment block, systemd units, pacman
    /// and makepkg (`cargo test` as root and the packaging test), and the benchmarks.
    Tests,
    /// Building the VM test image (`vm-image`).
    Image,
    /// Booting it (`vm-test`, `vm-run`).
    Qemu,
    /// Booting it with UEFI firmware.
    Uefi,
    /// The scenarios' own work on the host (`vm-test`): the upgrade scenario builds its
    /// packages with makepkg and repo-add.
    Scenarios,
}

/// Something a task needs, and the package that provides it on Debian and on Arch.
#[derive(Debug)]
pub struct Need {
    /// A program name (looked up on PATH and the sbin directories) or, when it starts with
    /// `/`, alternative file paths separated by `|`.
    pub what: &'static str,
    pub debian: &'static str,
    pub arch: &'static str,
    /// The tasks that need it.
    pub purposes: &'static [Purpose],
}

impl Need {
    /// True when a task with any of `purposes` needs this.
    pub fn serves(&self, purposes: &[Purpose]) -> bool {
        self.purposes.iter().any(|p| purposes.contains(p))
    }
}

const fn need(
    what: &'static str,
    debian: &'static str,
    arch: &'static str,
    purposes: &'static [Purpose],
) -> Need {
    Need {
        what,
        debian,
        arch,
        purposes,
    }
}

use Purpose::{Image, Qemu, Scenarios, Tests, Uefi};

/// Needed by the tests and to build the VM image.
const TESTS_IMAGE: &[Purpose] = &[Tests, Image];
/// Needed by the tests and the VM scenarios (the upgrade scenario's test packages).
const TESTS_SCENARIOS: &[Purpose] = &[Tests, Scenarios];

/// OVMF code and variables: Debian's paths, then Arch's.
pub const OVMF_CODE: &str = "/usr/share/OVMF/OVMF_CODE_4M.fd|/usr/share/edk2/x64/OVMF_CODE.4m.fd";
pub const OVMF_VARS: &str = "/usr/share/OVMF/OVMF_VARS_4M.fd|/usr/share/edk2/x64/OVMF_VARS.4m.fd";

/// Noto Sans Khmer (Debian fonts-noto-core, Arch noto-fonts): Debian's path, then Arch's.
pub const NOTO_SANS_KHMER: &str = "/usr/share/fonts/truetype/noto/NotoSansKhmer-Regular.ttf|\
/usr/share/fonts/noto/NotoSansKhmer-Regular.ttf";
/// Khmer OS (Debian fonts-khmeros, Arch ttf-khmer): Debian's path, then Arch's.
pub const KHMER_OS: &str =
    "/usr/share/fonts/truetype/khmeros/KhmerOS.ttf|/usr/share/fonts/TTF/KhmerOS.ttf";

/// m17n-db's Khmer input method (Debian m17n-db, Arch m17n-db): the same path on both.
pub const M17N_KHMER: &str = "/usr/share/m17n/km-yannis.mim";
/// fcitx5's m17n addon (Debian and Arch fcitx5-m17n): its addon file, the same path on both.
pub const FCITX5_M17N: &str = "/usr/share/fcitx5/addon/m17n.conf";
/// The XKB layout `kh` (Debian xkb-data, Arch xkeyboard-config).
pub const XKB_KHMER: &str = "/usr/share/X11/xkb/symbols/kh";
/// The session bus configuration dbus-run-session starts dbus-daemon with (Debian
/// dbus-session-bus-common, Arch dbus).
pub const DBUS_SESSION_CONF: &str = "/usr/share/dbus-1/session.conf";

/// The program QEMU is looked up by.
pub const QEMU_SYSTEM: &str = "qemu-system-x86_64";

/// Everything any task needs. The README's list of host packages is checked against it.
pub const NEEDS: &[Need] = &[
    need("mkfs.btrfs", "btrfs-progs", "btrfs-progs", TESTS_IMAGE),
    need("btrfs", "btrfs-progs", "btrfs-progs", TESTS_IMAGE),
    need("snapper", "snapper", "snapper", &[Tests]),
    need("losetup", "mount", "util-linux", TESTS_IMAGE),
    need("mount", "mount", "util-linux", TESTS_IMAGE),
    need("umount", "mount", "util-linux", TESTS_IMAGE),
    need("partx", "util-linux", "util-linux", TESTS_IMAGE),
    need("runuser", "util-linux", "util-linux", TESTS_SCENARIOS),
    need("setpriv", "util-linux", "util-linux", &[Tests]),
    need("unshare", "util-linux", "util-linux", &[Tests]),
    need("useradd", "passwd", "shadow", TESTS_SCENARIOS),
    need("systemd-analyze", "systemd", "systemd", &[Tests]),
    need("shellcheck", "shellcheck", "shellcheck", &[Tests]),
    need("grub-editenv", "grub-common", "grub", &[Tests]),
    need("grub-mkconfig", "grub2-common", "grub", &[Tests]),
    need(
        "pacman",
        "pacman-package-manager",
        "pacman",
        TESTS_SCENARIOS,
    ),
    need("makepkg", "makepkg", "pacman", TESTS_SCENARIOS),
    need(
        "repo-add",
        "pacman-package-manager",
        "pacman",
        TESTS_SCENARIOS,
    ),
    need("bsdtar", "libarchive-tools", "libarchive", TESTS_SCENARIOS),
    need("fakeroot", "fakeroot", "fakeroot", TESTS_SCENARIOS),
    need("zstd", "zstd", "zstd", TESTS_SCENARIOS),
    need("busybox", "busybox-static", "busybox", TESTS_SCENARIOS),
    need("curl", "curl", "curl", &[Tests]),
    need("openssl", "openssl", "openssl", &[Tests]),
    need("python3", "python3", "python", &[Tests]),
    need(
        "pacstrap",
        "arch-install-scripts",
        "arch-install-scripts",
        &[Tests],
    ),
    need("pacman-key", "pacman-package-manager", "pacman", &[Tests]),
    need("strip", "binutils", "binutils", &[Tests]),
    need("man", "man-db", "man-db", &[Tests]),
    need("hb-shape", "libharfbuzz-bin", "harfbuzz-utils", &[Tests]),
    need(NOTO_SANS_KHMER, "fonts-noto-core", "noto-fonts", &[Tests]),
    need(KHMER_OS, "fonts-khmeros", "ttf-khmer", &[Tests]),
    need("fcitx5", "fcitx5", "fcitx5", &[Tests]),
    need(FCITX5_M17N, "fcitx5-m17n", "fcitx5-m17n", &[Tests]),
    need(M17N_KHMER, "m17n-db", "m17n-db", &[Tests]),
    need(XKB_KHMER, "xkb-data", "xkeyboard-config", &[Tests]),
    need("Xvfb", "xvfb", "xorg-server-xvfb", &[Tests]),
    need("dbus-run-session", "dbus-daemon", "dbus", &[Tests]),
    need("dbus-send", "dbus-bin", "dbus", &[Tests]),
    need(
        DBUS_SESSION_CONF,
        "dbus-session-bus-common",
        "dbus",
        &[Tests],
    ),
    // KOOMPI's configs, each checked by its own program (koompi-desktop/tests/configs_real.rs).
    need("foot", "foot", "foot", &[Tests]),
    need("fuzzel", "fuzzel", "fuzzel", &[Tests]),
    need("rofi", "rofi", "rofi", &[Tests]),
    need("openbox", "openbox", "openbox", &[Tests]),
    need("tint2", "tint2", "tint2", &[Tests]),
    need("stdbuf", "coreutils", "coreutils", &[Tests]),
    need("sway", "sway", "sway", &[Tests]),
    need("waybar", "waybar", "waybar", &[Tests]),
    need("luac5.4", "lua5.4", "lua", &[Tests]),
    need("nvim", "neovim", "neovim", &[Tests]),
    // The editions' screenshots (koompi-desktop/tests/edition_screens.rs): Lite's wallpaper
    // setter, a terminal for X, the X and Wayland screen grabbers, and sway's wallpaper.
    need("nitrogen", "nitrogen", "nitrogen", &[Tests]),
    need("xterm", "xterm", "xterm", &[Tests]),
    need("xwd", "x11-apps", "xorg-xwd", &[Tests]),
    need("xprop", "x11-utils", "xorg-xprop", &[Tests]),
    need("swaybg", "swaybg", "swaybg", &[Tests]),
    need("grim", "grim", "grim", &[Tests]),
    // The classroom's file sync (koompi-class/tests/syncthing_real.rs): Debian 12 ships 1.19,
    // Arch 2.x; the engine uses only what both have.
    need("syncthing", "syncthing", "syncthing", &[Tests]),
    // The classroom's test network (netns.rs) and its DNS-SD tests (koompi-class): network
    // namespaces, a bridge, tc shaping, nftables to block multicast, and one avahi-daemon
    // with its own dbus-daemon per namespace.
    need("ip", "iproute2", "iproute2", &[Tests]),
    need("tc", "iproute2", "iproute2", &[Tests]),
    need("nft", "nftables", "nftables", &[Tests]),
    need("avahi-daemon", "avahi-daemon", "avahi", &[Tests]),
    need("avahi-browse", "avahi-utils", "avahi", &[Tests]),
    need("avahi-publish", "avahi-utils", "avahi", &[Tests]),
    need("dbus-daemon", "dbus-daemon", "dbus", &[Tests]),
    need("timeout", "coreutils", "coreutils", &[Tests]),
    need("tar", "tar", "tar", TESTS_IMAGE),
    need("gzip", "gzip", "gzip", &[Tests]),
    need("script", "bsdutils", "util-linux", &[Tests]),
    need("chattr", "e2fsprogs", "e2fsprogs", &[Tests]),
    need("cryptsetup", "cryptsetup-bin", "cryptsetup", &[Tests]),
    need("wipefs", "util-linux", "util-linux", &[Tests]),
    need("mmdebstrap", "mmdebstrap", "mmdebstrap", &[Image]),
    need("sfdisk", "fdisk", "util-linux", TESTS_IMAGE),
    need("blkid", "util-linux", "util-linux", TESTS_IMAGE),
    need("mkfs.fat", "dosfstools", "dosfstools", TESTS_IMAGE),
    need("mksquashfs", "squashfs-tools", "squashfs-tools", &[Image]),
    need("xorriso", "xorriso", "libisoburn", &[Image]),
    need("mcopy", "mtools", "mtools", &[Image]),
    need("mmd", "mtools", "mtools", &[Image]),
    need("mkfs.ext4", "e2fsprogs", "e2fsprogs", &[Image]),
    need("mdir", "mtools", "mtools", &[Image]),
    need("chroot", "coreutils", "coreutils", &[Image]),
    need("sha256sum", "coreutils", "coreutils", &[Image]),
    need("systemctl", "systemd", "systemd", &[Image]),
    need(QEMU_SYSTEM, "qemu-system-x86", "qemu-system-x86", &[Qemu]),
    need("qemu-img", "qemu-utils", "qemu-img", &[Qemu]),
    need(OVMF_CODE, "ovmf", "edk2-ovmf", &[Uefi]),
    need(OVMF_VARS, "ovmf", "edk2-ovmf", &[Uefi]),
];

/// The Debian and Arch package that provide `program`, when the list knows it.
pub fn package_of(program: &str) -> Option<(&'static str, &'static str)> {
    NEEDS
        .iter()
        .find(|n| n.what == program)
        .map(|n| (n.debian, n.arch))
}

/// How to install the packages of `programs`, in one phrase.
pub fn install_hint(programs: &[&str]) -> String {
    let mut debian: Vec<&str> = Vec::new();
    let mut arch: Vec<&str> = Vec::new();
    for p in programs {
        if let Some((d, a)) = package_of(p) {
            if !debian.contains(&d) {
                debian.push(d);
            }
            if !arch.contains(&a) {
                arch.push(a);
            }
        }
    }
    if debian.is_empty() {
        return "`cargo xtask test` installs what the tests need".into();
    }
    format!(
        "install with `apt-get install {}` (Arch: `pacman -S --needed {}`), or run \
         `cargo xtask test`, which installs what the tests need",
        debian.join(" "),
        arch.join(" ")
    )
}

/// Ends the running test with `line` on stderr and nothing else: no panic message and
/// no backtrace (the test harness still reports the test as failed).
pub fn fail(line: &str) -> ! {
    eprintln!("{line}");
    std::panic::resume_unwind(Box::new(line.to_string()))
}

/// Finds an executable on PATH or in the sbin directories.
pub fn which(prog: &str) -> Option<PathBuf> {
    use std::os::unix::fs::PermissionsExt;
    let path = std::env::var("PATH").unwrap_or_default();
    let found = path
        .split(':')
        .filter(|d| !d.is_empty())
        .chain(["/usr/local/sbin", "/usr/sbin", "/sbin", "/usr/bin", "/bin"])
        .map(|d| Path::new(d).join(prog))
        .find(|p| {
            std::fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        });
    found
}

/// True when every program of `programs` is installed. Otherwise: with
/// `KOOMPI_PRIVILEGED_TESTS=1` the test fails with one line naming them and how to install
/// them; without, it is skipped with that line (false).
pub fn require_programs(test: &str, programs: &[&str]) -> bool {
    require(test, programs)
}

/// Whether a need, written as [`Need::what`] is (a program, or `/`-paths separated by
/// `|`), is met on this host.
pub fn present(what: &str) -> bool {
    if what.starts_with('/') {
        what.split('|').any(|p| Path::new(p).exists())
    } else {
        which(what).is_some()
    }
}

/// [`require_programs`] for programs and files alike, each written as [`Need::what`] is:
/// true when every one is present; otherwise the test fails (`KOOMPI_PRIVILEGED_TESTS=1`)
/// or is skipped (false) with one line naming the missing ones and their packages.
pub fn require(test: &str, needs: &[&str]) -> bool {
    let missing: Vec<&str> = needs.iter().copied().filter(|n| !present(n)).collect();
    if missing.is_empty() {
        return true;
    }
    let names: Vec<&str> = missing
        .iter()
        .map(|m| m.split('|').next().unwrap_or(m))
        .collect();
    let line = format!(
        "{test}: {} not installed: {}",
        names.join(", "),
        install_hint(&missing)
    );
    if crate::privileged_required() {
        fail(&line);
    }
    eprintln!("SKIP {line}");
    false
}
