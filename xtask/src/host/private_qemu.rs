//! Debian's QEMU unpacked privately under `.vm-cache`, for a Debian host where installing
//! `qemu-system-x86` would remove a package.
//!
//! The case is real: Debian 12 machines that carry `qemu-utils` from bookworm-backports
//! (10.x) cannot install bookworm's `qemu-system-x86` (7.2), because its
//! `qemu-system-common` and the newer `qemu-utils` exclude each other; apt would remove
//! `qemu-utils`. xtask never removes a package, so instead it installs QEMU's libraries,
//! firmware and data files the ordinary way (none of them conflicts), downloads the two
//! conflicting packages with `apt-get download`, unpacks them with `dpkg-deb -x` into
//! `.vm-cache/host-qemu-VERSION` (through a `.partial` directory renamed at the end, so an
//! interrupted unpack is never used and the next run starts it again), and runs that
//! `qemu-system-x86_64` with `QEMU_MODULE_DIR` pointing at its own modules (TCG is one).
//! It is the same Debian binary; only where it lives differs. docs/decisions.md has why.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{bail, Context, Result};

use super::packages::{install_no_remove, simulate_removals, QEMU_SYSTEM};
use super::{cmd, which, workspace_root};

/// The package whose install would remove another, handled here.
pub const PACKAGE: &str = "qemu-system-x86";

/// The packages unpacked privately (the rest is installed normally).
const UNPACKED: [&str; 2] = ["qemu-system-x86", "qemu-system-common"];

const PREFIX: &str = "host-qemu-";

fn cache() -> Result<PathBuf> {
    Ok(workspace_root()?.join(".vm-cache"))
}

/// The unpacked QEMU's directory, if there is one (the newest by name).
fn dir() -> Option<PathBuf> {
    let cache = cache().ok()?;
    let mut dirs: Vec<PathBuf> = fs::read_dir(&cache)
        .ok()?
        .filter_map(|e| e.ok())
        .filter(|e| {
            let name = e.file_name();
            let name = name.to_string_lossy();
            name.starts_with(PREFIX) && !name.ends_with(".partial")
        })
        .map(|e| e.path())
        .filter(|p| p.join("usr/bin").join(QEMU_SYSTEM).is_file())
        .collect();
    dirs.sort();
    dirs.pop()
}

/// A command for the unpacked QEMU, if there is one.
pub fn installed() -> Option<Command> {
    let dir = dir()?;
    link_system_files(&dir);
    let mut c = Command::new(dir.join("usr/bin").join(QEMU_SYSTEM));
    if let Some(modules) = module_dir(&dir) {
        c.env("QEMU_MODULE_DIR", modules);
    }
    Some(c)
}

/// The directories Debian's QEMU reads its firmware and data from, which it finds
/// relative to its binary (QEMU is relocatable), and which the installed packages fill.
const SYSTEM_DIRS: [&str; 3] = ["usr/share/seabios", "usr/lib/ipxe", "usr/share/ovmf"];

/// Links the installed packages' firmware and data into the unpacked tree, where the
/// relocated QEMU looks for them: each of [`SYSTEM_DIRS`] as a whole, and each entry of
/// /usr/share/qemu (keymaps, option ROMs) the tree does not have itself. Idempotent, run
/// before every use; a link that cannot be made leaves QEMU to name the file it misses.
fn link_system_files(dir: &Path) {
    let absent = |p: &Path| fs::symlink_metadata(p).is_err();
    for sub in SYSTEM_DIRS {
        let (system, ours) = (Path::new("/").join(sub), dir.join(sub));
        if system.is_dir() && absent(&ours) {
            if let Some(parent) = ours.parent() {
                let _ = fs::create_dir_all(parent);
            }
            let _ = std::os::unix::fs::symlink(&system, &ours);
        }
    }
    let data = dir.join("usr/share/qemu");
    let _ = fs::create_dir_all(&data);
    if let Ok(entries) = fs::read_dir("/usr/share/qemu") {
        for e in entries.flatten() {
            let ours = data.join(e.file_name());
            if absent(&ours) {
                let _ = std::os::unix::fs::symlink(e.path(), &ours);
            }
        }
    }
}

/// `usr/lib/<multiarch>/qemu` under `dir`.
fn module_dir(dir: &Path) -> Option<PathBuf> {
    let lib = dir.join("usr/lib");
    fs::read_dir(&lib)
        .ok()?
        .filter_map(|e| e.ok())
        .map(|e| e.path().join("qemu"))
        .find(|p| p.is_dir())
}

/// A command for QEMU: the host's own, else the unpacked one, else the bare name (whose
/// failure to start then names it).
pub fn command() -> Command {
    if let Some(p) = which(QEMU_SYSTEM) {
        return Command::new(p);
    }
    installed().unwrap_or_else(|| Command::new(QEMU_SYSTEM))
}

/// Installs QEMU's dependencies and unpacks the conflicting packages (module header).
pub fn install(task: &str) -> Result<()> {
    let cache = cache()?;
    let partial = cache.join(format!("{PREFIX}unpack.partial"));
    if partial.exists() {
        // Left by an interrupted run.
        fs::remove_dir_all(&partial)
            .with_context(|| format!("cannot remove {}", partial.display()))?;
    }
    let debs = partial.join("debs");
    fs::create_dir_all(&debs).with_context(|| format!("cannot create {}", debs.display()))?;
    eprintln!(
        "xtask: {task}: installing {PACKAGE} would remove a newer package; unpacking \
         Debian's QEMU into {} instead (docs/decisions.md)",
        cache.display()
    );
    let mut download = Command::new("apt-get");
    // apt's download sandbox user cannot write into root's directories.
    download
        .args(["-q", "-o", "APT::Sandbox::User=root", "download"])
        .args(UNPACKED)
        .current_dir(&debs);
    cmd::run(&mut download)?;
    let mut files = Vec::new();
    for name in UNPACKED {
        files.push(deb_of(&debs, name)?);
    }
    let mut deps: Vec<String> = Vec::new();
    for f in &files {
        let field = cmd::stdout(Command::new("dpkg-deb").arg("-f").arg(f).arg("Depends"))?;
        for d in depends(&field) {
            if !UNPACKED.contains(&d.as_str()) && !deps.contains(&d) {
                deps.push(d);
            }
        }
    }
    let deps: Vec<&str> = deps.iter().map(String::as_str).collect();
    let removed = simulate_removals(&deps)?;
    if !removed.is_empty() {
        bail!(
            "{task}: even QEMU's libraries ({}) would remove {}; install QEMU yourself",
            deps.join(" "),
            removed.join(", ")
        );
    }
    install_no_remove(task, &deps)?;
    let version = cmd::stdout(
        Command::new("dpkg-deb")
            .arg("-f")
            .arg(&files[0])
            .arg("Version"),
    )?;
    let version: String = version
        .trim()
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || ".+-~".contains(c) {
                c
            } else {
                '_'
            }
        })
        .collect();
    let root = partial.join("root");
    for f in &files {
        cmd::run(Command::new("dpkg-deb").arg("-x").arg(f).arg(&root))?;
    }
    let done = cache.join(format!("{PREFIX}{version}"));
    if done.exists() {
        fs::remove_dir_all(&done).with_context(|| format!("cannot remove {}", done.display()))?;
    }
    fs::rename(&root, &done)
        .with_context(|| format!("cannot rename {} to {}", root.display(), done.display()))?;
    fs::remove_dir_all(&partial).with_context(|| format!("cannot remove {}", partial.display()))?;
    Ok(())
}

/// The downloaded `.deb` of package `name` in `dir`.
fn deb_of(dir: &Path, name: &str) -> Result<PathBuf> {
    let prefix = format!("{name}_");
    fs::read_dir(dir)
        .with_context(|| format!("cannot read {}", dir.display()))?
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .find(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with(&prefix) && n.ends_with(".deb"))
        })
        .with_context(|| format!("apt-get download left no {name}_*.deb in {}", dir.display()))
}

/// The package names of a `Depends:` field: the first of each set of alternatives,
/// without version or architecture qualifiers.
fn depends(field: &str) -> Vec<String> {
    field
        .split(',')
        .filter_map(|alts| alts.split('|').next())
        .filter_map(|d| d.split_whitespace().next())
        .map(|d| d.split(':').next().unwrap_or(d).to_string())
        .filter(|d| !d.is_empty())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn depends_takes_the_first_alternative_without_versions() {
        let f = "libaio1 (>= 0.3.93), libc6 (>= 2.34), qemu-system-common (= 1:7.2+dfsg-7), \
                 seabios, ipxe-qemu | ipxe (>= 1), python3:any";
        assert_eq!(
            depends(f),
            [
                "libaio1",
                "libc6",
                "qemu-system-common",
                "seabios",
                "ipxe-qemu",
                "python3"
            ]
        );
        assert!(depends("").is_empty());
    }
}
