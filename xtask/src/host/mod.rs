//! What every xtask task shares about the host: where the workspace and its target
//! directory are, building the koompi tools, finding and running programs ([`cmd`]),
//! whether we are root (and becoming root through sudo, [`sudo`]), Ctrl-C ([`interrupt`]),
//! the host's distribution, and the host packages the tasks need ([`packages`], with the
//! private QEMU of [`private_qemu`] where installing QEMU would remove a package).

pub mod cmd;
pub mod interrupt;
pub mod packages;
pub mod private_qemu;
pub mod sudo;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use anyhow::{Context, Result};

/// The workspace root: the parent of xtask's manifest directory.
pub fn workspace_root() -> Result<PathBuf> {
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
    manifest
        .parent()
        .map(Path::to_path_buf)
        .with_context(|| format!("{} has no parent directory", manifest.display()))
}

/// Cargo's target directory (`CARGO_TARGET_DIR`, relative to the root, or `target`).
pub fn target_dir(root: &Path) -> PathBuf {
    match std::env::var_os("CARGO_TARGET_DIR") {
        Some(d) if !d.is_empty() => root.join(d),
        _ => root.join("target"),
    }
}

/// The cargo that runs us (`CARGO`, set by `cargo run`), else `cargo` from PATH.
pub fn cargo() -> Command {
    Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()))
}

/// `cargo build --release -p koompi-cli`, its output on stderr.
pub fn build_tools(root: &Path) -> Result<()> {
    eprintln!("xtask: building the koompi tools (cargo build --release -p koompi-cli)");
    let mut c = cargo();
    c.args(["build", "--release", "-p", "koompi-cli"])
        .current_dir(root)
        .stdin(Stdio::null())
        .stdout(Stdio::from(std::io::stderr()));
    cmd::run_inherited(&mut c)
}

/// Finds an executable file on PATH or in the sbin directories (the tests' own lookup).
pub use koompi_testutil::prereq::which;

/// Whether the effective uid is 0.
pub fn is_root() -> bool {
    rustix::process::geteuid().is_root()
}

/// A field of /etc/os-release, without quotes.
fn os_release(key: &str) -> Option<String> {
    let text = fs::read_to_string("/etc/os-release").ok()?;
    text.lines()
        .find_map(|l| l.strip_prefix(key)?.strip_prefix('='))
        .map(|v| v.trim().trim_matches('"').to_string())
}

/// The host's family of distributions, for its package manager.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Distro {
    Debian,
    Arch,
    Other,
}

/// The host's distribution, from ID and ID_LIKE in /etc/os-release.
pub fn distro() -> Distro {
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

/// `path` as UTF-8, for command lines and config files.
pub fn path_str(p: &Path) -> Result<&str> {
    p.to_str()
        .with_context(|| format!("path is not UTF-8: {}", p.display()))
}
