//! `koompi-desktop` end to end on a throwaway root: real pacman installing stand-in
//! packages from a local repository (built with makepkg; the display managers' packages
//! ship real unit files), real `systemctl --root` switching display managers, the state
//! file; then removal back to the display manager before, a package missing from the
//! repositories, a pacman failure in the middle, and a second run at the same moment.
#![allow(clippy::unwrap_used)]

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Output;

use assert_cmd::Command;
use koompi_desktop::catalog::Catalog;
use koompi_testutil::pkgrepo::{require_pacman, PacmanRoot, PkgRepo, TestPkg};
use serde_json::Value;

fn configs() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../configs")
}

fn catalog() -> Catalog {
    Catalog::load(&configs().join("editions.toml")).unwrap()
}

fn unit(name: &str) -> String {
    format!(
        "[Unit]\nDescription={name} (stand-in)\n[Service]\nExecStart=/usr/bin/{name}\n\
         [Install]\nAlias=display-manager.service\n"
    )
}

/// A stand-in for every package of `editions`; display managers with their units.
fn standins(editions: &[&str], skip: &[&str]) -> Vec<TestPkg> {
    let c = catalog();
    let mut names: Vec<String> = editions
        .iter()
        .flat_map(|id| c.edition(id).unwrap().all_packages())
        .collect();
    names.push("gdm".into());
    names.sort();
    names.dedup();
    names
        .into_iter()
        .filter(|n| !skip.contains(&n.as_str()))
        .map(|n| {
            let p = TestPkg::new(&n, "1.0-1")
                .description("stand-in for the koompi-desktop test")
                .file(&format!("usr/share/standin/{n}"), "1\n", 0o644);
            if matches!(n.as_str(), "lightdm" | "gdm" | "sddm" | "greetd") {
                p.file(
                    &format!("usr/lib/systemd/system/{n}.service"),
                    unit(&n),
                    0o644,
                )
            } else {
                p
            }
        })
        .collect()
}

struct Fixture {
    _repo: PkgRepo,
    root: PacmanRoot,
}

impl Fixture {
    fn new(test: &str, skip: &[&str]) -> Option<Fixture> {
        if !require_pacman(test) {
            return None;
        }
        let repo = PkgRepo::new("koompitest");
        repo.build(&standins(&["lite"], skip));
        let root = PacmanRoot::new(&repo);
        root.pacman_ok(&["-Sy"]);
        // The system before: GDM enabled, the console target.
        root.pacman_ok(&["-S", "gdm"]);
        let lib = root.path("usr/lib/systemd/system");
        for t in ["graphical", "multi-user"] {
            fs::write(lib.join(format!("{t}.target")), "[Unit]\n").unwrap();
        }
        let sc = |args: &[&str]| {
            let ok = std::process::Command::new("systemctl")
                .arg(format!("--root={}", root.root().display()))
                .args(args)
                .output()
                .unwrap()
                .status
                .success();
            assert!(ok, "systemctl {args:?}");
        };
        sc(&["enable", "gdm.service"]);
        sc(&["set-default", "multi-user.target"]);
        Some(Fixture { _repo: repo, root })
    }

    fn cmd(&self) -> Command {
        let mut c = Command::cargo_bin("koompi-desktop").unwrap();
        c.env("KOOMPI_PARU", "")
            .env("KOOMPI_FLATPAK", "")
            .env("KOOMPI_AUR_URL", "http://127.0.0.1:1")
            .env_remove("SUDO_USER")
            .arg("--root")
            .arg(self.root.root())
            .arg("--config")
            .arg(self.root.conf())
            .arg("--catalog")
            .arg(configs().join("editions.toml"))
            .arg("--configs")
            .arg(configs())
            .arg("--noconfirm");
        c
    }

    fn run(&self, args: &[&str]) -> Output {
        self.cmd().args(args).output().unwrap()
    }

    fn ok(&self, args: &[&str]) -> Output {
        let out = self.run(args);
        assert!(
            out.status.success(),
            "koompi-desktop {args:?} failed ({}):\n{}\n{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        out
    }

    fn link(&self, name: &str) -> Option<String> {
        fs::read_link(self.root.path("etc/systemd/system").join(name))
            .ok()
            .map(|t| t.file_name().unwrap().to_string_lossy().into_owned())
    }

    fn installed(&self) -> Vec<String> {
        self.root.installed().into_iter().map(|(n, _)| n).collect()
    }

    fn status(&self) -> Value {
        serde_json::from_slice(&self.ok(&["--json", "status"]).stdout).unwrap()
    }
}

#[test]
fn install_lite_then_remove_it_through_real_pacman_and_systemctl() {
    let Some(f) = Fixture::new("desktop_install_remove", &[]) else {
        return;
    };
    // The plan first: nothing changes.
    let out = f.ok(&["--json", "install", "lite", "--dry-run"]);
    let plan: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(plan["display-manager"]["from"], "gdm.service");
    assert_eq!(plan["display-manager"]["to"], "lightdm.service");
    assert_eq!(plan["target"]["to"], "graphical.target");
    assert!(plan["install"]
        .as_array()
        .unwrap()
        .iter()
        .any(|p| p == "openbox"));
    assert_eq!(f.installed(), ["gdm"]);
    assert_eq!(
        f.link("display-manager.service").as_deref(),
        Some("gdm.service")
    );

    let out = f.ok(&["install", "lite"]);
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(said.contains("KOOMPI Lite is installed. Restart"), "{said}");
    let lite = catalog().edition("lite").unwrap().all_packages();
    let now = f.installed();
    for p in &lite {
        assert!(now.contains(p), "{p} not installed: {now:?}");
    }
    assert_eq!(
        f.link("display-manager.service").as_deref(),
        Some("lightdm.service")
    );
    assert_eq!(
        f.link("default.target").as_deref(),
        Some("graphical.target")
    );
    // New users get the edition's configs.
    for (shipped, home) in [
        ("openbox/rc.xml", ".config/openbox/rc.xml"),
        ("tint2/tint2rc", ".config/tint2/tint2rc"),
    ] {
        assert_eq!(
            fs::read(f.root.path("etc/skel").join(home)).unwrap(),
            fs::read(configs().join(shipped)).unwrap(),
            "{home}"
        );
    }
    let st = f.status();
    assert_eq!(st["installed"][0]["id"], "lite");
    assert_eq!(st["display-manager"], "lightdm.service");
    assert!(st["running"].is_null(), "a mounted root runs nothing");

    // Again: nothing left to do, and it says so without failing.
    let out = f.ok(&["--json", "install", "lite"]);
    let again: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(again["install"].as_array().unwrap().is_empty(), "{again}");
    assert!(again["display-manager"].is_null());

    let out = f.ok(&["--json", "remove", "lite", "--dry-run"]);
    let rp: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(rp["display-manager"]["to"], "gdm.service");
    f.ok(&["remove", "lite"]);
    assert_eq!(f.installed(), ["gdm"]);
    assert_eq!(
        f.link("display-manager.service").as_deref(),
        Some("gdm.service")
    );
    assert_eq!(
        f.link("default.target").as_deref(),
        Some("graphical.target")
    );
    assert!(f.status()["installed"].as_array().unwrap().is_empty());
    let out = f.run(&["remove", "lite"]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("`lite` is not installed"), "{err}");
}

#[test]
fn a_package_missing_from_the_repositories_changes_nothing() {
    let Some(f) = Fixture::new("desktop_missing_package", &["tint2"]) else {
        return;
    };
    let out = f.run(&["install", "lite"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("tint2"), "{err}");
    assert_eq!(err.trim_end().lines().count(), 1, "{err}");
    assert_eq!(f.installed(), ["gdm"]);
    assert_eq!(
        f.link("display-manager.service").as_deref(),
        Some("gdm.service")
    );
    assert_eq!(
        f.link("default.target").as_deref(),
        Some("multi-user.target")
    );
    assert!(!f.root.path("var/lib/koompi/desktop/state.json").exists());
}

#[test]
fn a_pacman_failure_in_the_middle_leaves_the_display_manager_alone() {
    let Some(f) = Fixture::new("desktop_pacman_fails", &[]) else {
        return;
    };
    // A file in the way of one package: pacman refuses the whole transaction.
    let clash = f.root.path("usr/share/standin/picom");
    fs::create_dir_all(clash.parent().unwrap()).unwrap();
    fs::write(&clash, "not pacman's\n").unwrap();
    let out = f.run(&["install", "lite"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("koompi install failed"), "{err}");
    assert!(err.contains("display manager and the default target are as they were"));
    assert_eq!(f.installed(), ["gdm"]);
    assert_eq!(
        f.link("display-manager.service").as_deref(),
        Some("gdm.service")
    );
    // Fixed, the same command finishes the job.
    fs::remove_file(&clash).unwrap();
    f.ok(&["install", "lite"]);
    assert_eq!(
        f.link("display-manager.service").as_deref(),
        Some("lightdm.service")
    );
}

#[test]
fn a_second_run_at_the_same_moment_is_refused() {
    let Some(f) = Fixture::new("desktop_lock", &[]) else {
        return;
    };
    let lock = koompi_core::fsutil::try_lock(&f.root.path("var/lib/koompi/desktop/lock"))
        .unwrap()
        .unwrap();
    let out = f.run(&["install", "lite"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains("another koompi-desktop is changing this system"),
        "{err}"
    );
    drop(lock);
}

#[test]
fn list_and_bad_input_without_a_system() {
    let mut c = Command::cargo_bin("koompi-desktop").unwrap();
    let out = c
        .args(["--catalog"])
        .arg(configs().join("editions.toml"))
        .args(["--json", "list"])
        .output()
        .unwrap();
    assert!(out.status.success());
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    let ids: Vec<&str> = v
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids.len(), 11);
    assert_eq!(&ids[..3], ["tiling", "terminal", "lite"]);

    // A broken catalog: one line with its line number, exit 1.
    let d = tempfile::tempdir().unwrap();
    let bad = d.path().join("editions.toml");
    fs::write(&bad, "[[edition]]\nid = \"x\"\nnope = 1\n").unwrap();
    let out = Command::cargo_bin("koompi-desktop")
        .unwrap()
        .arg("--catalog")
        .arg(&bad)
        .arg("list")
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1));
    assert!(err.contains("editions catalog, line"), "{err}");
    assert_eq!(err.trim_end().lines().count(), 1, "{err}");

    // An unknown edition, even in a dry run.
    let out = Command::cargo_bin("koompi-desktop")
        .unwrap()
        .arg("--catalog")
        .arg(configs().join("editions.toml"))
        .args(["install", "windows", "--dry-run"])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        err.contains("no edition `windows`; the editions are: tiling"),
        "{err}"
    );

    // The menu needs a terminal.
    let out = Command::cargo_bin("koompi-desktop")
        .unwrap()
        .arg("--catalog")
        .arg(configs().join("editions.toml"))
        .arg("menu")
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1));
    assert!(err.contains("the menu needs a terminal"), "{err}");
}
