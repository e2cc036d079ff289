//! Host checks: root, the programs and files the rig needs (installed on demand with
//! apt-get on Debian or pacman on Arch when running as root), the host's Debian suite and
//! apt sources file, and the OVMF firmware files.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{bail, Context, Result};

use super::{cmd, progress, Firmware};

/// Something the rig needs, and the package that provides it on Debian and on Arch.
#[derive(Debug)]
struct Need {
    /// A program name (looked up on PATH and the sbin directories) or, when it starts
    /// with `/`, alternative file paths separated by `|`.
    what: &'static str,
    debian: &'static str,
    arch: &'static str,
}

const fn need(what: &'static str, debian: &'static str, arch: &'static str) -> Need {
    Need { what, debian, arch }
}

/// What `vm-image` runs on the host (the guest's own grub and initramfs tools are used in
/// a chroot, so the host needs no GRUB).
const IMAGE: &[Need] = &[
    need("mmdebstrap", "mmdebstrap", "mmdebstrap"),
    need("sfdisk", "fdisk", "util-linux"),
    need("losetup", "mount", "util-linux"),
    need("partx", "util-linux", "util-linux"),
    need("blkid", "util-linux", "util-linux"),
    need("mount", "mount", "util-linux"),
    need("umount", "mount", "util-linux"),
    need("mkfs.fat", "dosfstools", "dosfstools"),
    need("mcopy", "mtools", "mtools"),
    need("mdir", "mtools", "mtools"),
    need("mkfs.btrfs", "btrfs-progs", "btrfs-progs"),
    need("btrfs", "btrfs-progs", "btrfs-progs"),
    need("tar", "tar", "tar"),
    need("chroot", "coreutils", "coreutils"),
    need("sha256sum", "coreutils", "coreutils"),
    need("systemctl", "systemd", "systemd"),
];

const QEMU: &[Need] = &[
    need("qemu-system-x86_64", "qemu-system-x86", "qemu-system-x86"),
    need("qemu-img", "qemu-utils", "qemu-img"),
];

/// OVMF code and variables: Debian's paths, then Arch's.
const OVMF_CODE: &str = "/usr/share/OVMF/OVMF_CODE_4M.fd|/usr/share/edk2/x64/OVMF_CODE.4m.fd";
const OVMF_VARS: &str = "/usr/share/OVMF/OVMF_VARS_4M.fd|/usr/share/edk2/x64/OVMF_VARS.4m.fd";

const UEFI: &[Need] = &[
    need(OVMF_CODE, "ovmf", "edk2-ovmf"),
    need(OVMF_VARS, "ovmf", "edk2-ovmf"),
];

/// Checks (and installs what it can of) everything `vm-image` needs; needs root.
pub fn ensure_image() -> Result<()> {
    if !is_root()? {
        bail!(
            "vm-image needs root (loop devices, mounts, chroot): run it as root, \
             e.g. sudo -E cargo xtask vm-image"
        );
    }
    ensure("vm-image", IMAGE.iter().collect())
}

/// Checks (and installs what it can of) QEMU and, for UEFI, OVMF.
pub fn ensure_qemu(firmwares: &[Firmware]) -> Result<()> {
    let mut needs: Vec<&Need> = QEMU.iter().collect();
    if firmwares.contains(&Firmware::Uefi) {
        needs.extend(UEFI.iter());
    }
    ensure("the VM rig", needs)
}

/// The OVMF code and variables files.
pub fn ovmf() -> Result<(PathBuf, PathBuf)> {
    let code = find_file(OVMF_CODE).context("no OVMF code file (Debian package ovmf)")?;
    let vars = find_file(OVMF_VARS).context("no OVMF variables file (Debian package ovmf)")?;
    Ok((code, vars))
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Distro {
    Debian,
    Arch,
    Other,
}

fn ensure(task: &str, needs: Vec<&Need>) -> Result<()> {
    let distro = distro();
    let package = |n: &Need| {
        if distro == Distro::Arch {
            n.arch
        } else {
            n.debian
        }
    };
    let packages_of = |missing: &[&Need]| {
        let mut p: Vec<&str> = missing.iter().map(|n| package(n)).collect();
        p.sort_unstable();
        p.dedup();
        p
    };
    let missing: Vec<&Need> = needs.iter().copied().filter(|n| !present(n)).collect();
    if missing.is_empty() {
        return Ok(());
    }
    let mut failure = String::new();
    if is_root()? && distro != Distro::Other {
        let mut install = match distro {
            Distro::Arch => {
                let mut c = Command::new("pacman");
                c.args(["-S", "--needed", "--noconfirm"]);
                c
            }
            _ => {
                let mut c = Command::new("apt-get");
                c.args(["install", "-y", "--no-install-recommends"])
                    .env("DEBIAN_FRONTEND", "noninteractive");
                c
            }
        };
        install.args(packages_of(&missing));
        progress(&format!(
            "installing what is missing: {}",
            cmd::describe(&install)
        ));
        if let Err(e) = cmd::run(&mut install) {
            let last = format!("{e:#}");
            failure = format!(
                " (`{}` failed: {})",
                cmd::describe(&install),
                last.lines().last().unwrap_or("").trim()
            );
        }
    }
    let still: Vec<&Need> = missing.into_iter().filter(|n| !present(n)).collect();
    if still.is_empty() {
        return Ok(());
    }
    let what: Vec<String> = still
        .iter()
        .map(|n| n.what.split('|').next().unwrap_or(n.what).to_string())
        .collect();
    bail!(
        "{task} needs {}: install the package(s) {}{failure}",
        what.join(", "),
        packages_of(&still).join(" ")
    )
}

fn present(n: &Need) -> bool {
    if n.what.starts_with('/') {
        find_file(n.what).is_some()
    } else {
        which(n.what).is_some()
    }
}

fn find_file(alternatives: &str) -> Option<PathBuf> {
    alternatives
        .split('|')
        .map(PathBuf::from)
        .find(|p| p.is_file())
}

/// Finds a program on PATH or in the sbin directories.
pub fn which(prog: &str) -> Option<PathBuf> {
    let path = std::env::var("PATH").unwrap_or_default();
    let found = path
        .split(':')
        .filter(|d| !d.is_empty())
        .chain(["/usr/local/sbin", "/usr/sbin", "/sbin", "/usr/bin", "/bin"])
        .map(|d| Path::new(d).join(prog))
        .find(|p| p.is_file());
    found
}

/// Whether the effective uid is 0 (the second field of `Uid:` in /proc/self/status).
pub fn is_root() -> Result<bool> {
    let status =
        fs::read_to_string("/proc/self/status").context("cannot read /proc/self/status")?;
    let euid = status
        .lines()
        .find_map(|l| l.strip_prefix("Uid:"))
        .and_then(|rest| rest.split_whitespace().nth(1))
        .context("no Uid: line in /proc/self/status")?;
    Ok(euid == "0")
}

/// A field of /etc/os-release, without quotes.
fn os_release(key: &str) -> Option<String> {
    let text = fs::read_to_string("/etc/os-release").ok()?;
    text.lines()
        .find_map(|l| l.strip_prefix(key)?.strip_prefix('='))
        .map(|v| v.trim().trim_matches('"').to_string())
}

fn distro() -> Distro {
    let ids = format!(
        "{} {}",
        os_release("ID").unwrap_or_default(),
        os_release("ID_LIKE").unwrap_or_default()
    );
    let has = |w: &str| ids.split_whitespace().any(|i| i == w);
    if has("debian") {
        Distro::Debian
    } else if has("arch") {
        Distro::Arch
    } else {
        Distro::Other
    }
}

/// The Debian suite of the guest: the host's own codename on a Debian host (so that the
/// koompi binaries built here find the same or a newer glibc in the guest), else bookworm.
pub fn debian_suite() -> String {
    match (os_release("ID"), os_release("VERSION_CODENAME")) {
        (Some(id), Some(code)) if id == "debian" && !code.is_empty() => code,
        _ => "bookworm".to_string(),
    }
}

/// The host's apt sources file for Debian, handed to mmdebstrap as its mirror argument
/// (mmdebstrap copies it into the guest): the first file under /etc/apt/sources.list.d
/// (`*.sources`, then `*.list`), then /etc/apt/sources.list, whose non-comment lines
/// mention "debian". None: mmdebstrap's built-in default.
pub fn apt_sources() -> Option<PathBuf> {
    let dir = Path::new("/etc/apt/sources.list.d");
    let mut candidates = Vec::new();
    for ext in ["sources", "list"] {
        let mut files: Vec<PathBuf> = fs::read_dir(dir)
            .map(|rd| {
                rd.filter_map(|e| e.ok().map(|e| e.path()))
                    .filter(|p| p.extension().is_some_and(|x| x == ext))
                    .collect()
            })
            .unwrap_or_default();
        files.sort();
        candidates.extend(files);
    }
    candidates.push(PathBuf::from("/etc/apt/sources.list"));
    candidates.into_iter().find(|p| {
        fs::read_to_string(p).is_ok_and(|t| {
            t.lines()
                .any(|l| !l.trim_start().starts_with('#') && l.contains("debian"))
        })
    })
}
