//! `koompi` where things are missing: no pacman database, no package lists, no curl, no
//! AUR. Every case is one human line (never a raw `os error 2`), and the read-only
//! commands create nothing in the target root.
#![allow(clippy::unwrap_used)]

use std::fs;
use std::path::{Path, PathBuf};

use assert_cmd::Command;

/// Every path under `root`, sorted.
fn tree(root: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in fs::read_dir(&d).unwrap().flatten() {
            let p = e.path();
            if e.file_type().unwrap().is_dir() {
                stack.push(p.clone());
            }
            out.push(p);
        }
    }
    out.sort();
    out
}

fn koompi(root: &Path) -> Command {
    let mut c = Command::cargo_bin("koompi").unwrap();
    c.env("KOOMPI_PARU", "")
        .env("KOOMPI_FLATPAK", "")
        .env("KOOMPI_AUR_URL", "http://127.0.0.1:1")
        .arg("--root")
        .arg(root)
        .arg("--config")
        .arg(root.join("etc/pacman.conf"));
    c
}

#[test]
fn missing_databases_and_programs_are_one_line_and_nothing_is_written() {
    if !koompi_testutil::require_programs("package_offline", &["pacman", "curl"]) {
        return;
    }
    let t = tempfile::tempdir().unwrap();
    let root = t.path();
    fs::create_dir_all(root.join("etc")).unwrap();
    fs::write(
        root.join("etc/pacman.conf"),
        "[options]\nArchitecture = auto\n[core]\nServer = http://127.0.0.1:1/\n",
    )
    .unwrap();
    // No database at all: one line, exit 1, nothing created.
    let before = tree(root);
    for args in [&["search", "vim"][..], &["list"][..], &["info", "vim"][..]] {
        let out = koompi(root).args(args).output().unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{args:?}");
        assert!(err.contains("no pacman database"), "{args:?}: {err}");
        assert_eq!(err.trim_end().lines().count(), 1, "{args:?}: {err}");
        assert!(!err.contains("os error"), "{err}");
    }
    assert_eq!(
        tree(root),
        before,
        "a read-only command wrote into the root"
    );

    // A database without package lists, and no curl on PATH: each source says in one
    // line why it was not searched; nothing is created.
    fs::create_dir_all(root.join("var/lib/pacman/local")).unwrap();
    fs::write(root.join("var/lib/pacman/local/ALPM_DB_VERSION"), "9\n").unwrap();
    let before = tree(root);
    let out = koompi(root)
        .env("PATH", "/nonexistent")
        .args(["search", "vim"])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("no package lists yet"), "{err}");
    assert!(err.contains("`curl` is not installed"), "{err}");
    assert!(!err.contains("os error") && !err.contains("()"), "{err}");
    assert_eq!(tree(root), before, "search wrote into the root");
}
