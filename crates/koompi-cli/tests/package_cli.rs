//! `koompi` against real pacman: packages built with makepkg into a local repository,
//! installed into throwaway roots; the AUR path against a mock speaking RPC v5 on
//! loopback; snapshots on a real Btrfs in a loop device.
#![allow(clippy::unwrap_used)]

use std::fs;
use std::path::Path;
use std::process::Output;

use assert_cmd::Command;
use koompi_testutil::aur::MockAur;
use koompi_testutil::pkgrepo::{require_pacman, PacmanRoot, PkgRepo, TestPkg};
use koompi_testutil::LoopBtrfs;
use serde_json::Value;

fn pkgs_v1() -> Vec<TestPkg> {
    vec![
        TestPkg::new("libdemo", "1.0-1")
            .description("Demo library")
            .file("usr/lib/libdemo.txt", "libdemo 1\n", 0o644),
        TestPkg::new("demo-app", "1.0-1")
            .description("Demo application for KOOMPI")
            .depends(&["libdemo"])
            .file("usr/bin/demo-app", "#!/bin/sh\necho demo 1\n", 0o755),
        TestPkg::new("koompi-demo", "1.0-1")
            .description("A KOOMPI demo package")
            .file("usr/share/koompi-demo/README", "hello\n", 0o644),
    ]
}

/// `koompi --config CONF --root ROOT --noconfirm`, paru absent, AUR at `aur`.
fn koompi(root: &PacmanRoot, aur: &str) -> Command {
    let mut c = Command::cargo_bin("koompi").unwrap();
    c.env("KOOMPI_PARU", "")
        .env("KOOMPI_FLATPAK", "")
        .env("KOOMPI_AUR_URL", aur)
        .env_remove("SUDO_USER")
        .arg("--config")
        .arg(root.conf())
        .arg("--root")
        .arg(root.root())
        .arg("--noconfirm");
    c
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn run(c: &mut Command, args: &[&str]) -> Output {
    c.args(args).output().unwrap()
}

fn ok(c: &mut Command, args: &[&str]) -> Output {
    let out = run(c, args);
    assert!(
        out.status.success(),
        "koompi {args:?} failed ({}):\n{}\n{}",
        out.status,
        text(&out.stdout),
        text(&out.stderr)
    );
    out
}

fn installed(root: &PacmanRoot) -> Vec<String> {
    root.installed().into_iter().map(|(n, _)| n).collect()
}

/// A repository with the v1 packages and a synced root.
fn setup(test: &str) -> Option<(PkgRepo, PacmanRoot)> {
    setup_with(test, Vec::new())
}

/// [`setup`] with more packages in the repository.
fn setup_with(test: &str, extra: Vec<TestPkg>) -> Option<(PkgRepo, PacmanRoot)> {
    if !require_pacman(test) {
        return None;
    }
    let repo = PkgRepo::new("koompitest");
    let mut pkgs = pkgs_v1();
    pkgs.extend(extra);
    repo.build(&pkgs);
    let root = PacmanRoot::new(&repo);
    // Anything koompi does not know goes to pacman unchanged: this is `pacman -Sy`.
    ok(&mut koompi(&root, "http://127.0.0.1:1"), &["-Sy"]);
    Some((repo, root))
}

#[test]
fn install_list_info_remove_through_real_pacman() {
    let Some((_repo, root)) = setup("install_list_info_remove_through_real_pacman") else {
        return;
    };
    let aur = MockAur::start();
    let out = ok(&mut koompi(&root, &aur.url()), &["install", "demo-app"]);
    assert_eq!(installed(&root), ["demo-app", "libdemo"]);
    // No snapper config in the throwaway root: said in one line, and it went on.
    let err = text(&out.stderr);
    assert!(err.contains("no snapshot taken"), "{err}");
    // Repository packages never ask the AUR.
    assert!(aur.requests().is_empty(), "{:?}", aur.requests());

    let out = ok(&mut koompi(&root, &aur.url()), &["--json", "list"]);
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    let names: Vec<&str> = v
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["demo-app", "libdemo"]);
    // pacman's short form means the same.
    let out = ok(&mut koompi(&root, &aur.url()), &["-Q", "demo-app"]);
    assert_eq!(text(&out.stdout).trim(), "demo-app 1.0-1");

    let out = ok(
        &mut koompi(&root, &aur.url()),
        &["--json", "info", "demo-app"],
    );
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["name"], "demo-app");
    assert_eq!(v["version"], "1.0-1");
    assert_eq!(v["repository"], "koompitest");
    assert_eq!(v["depends_on"][0], "libdemo");

    // remove is -Rns: the dependency nothing else needs goes too.
    ok(&mut koompi(&root, &aur.url()), &["-R", "demo-app"]);
    assert!(installed(&root).is_empty());
    let out = run(&mut koompi(&root, &aur.url()), &["remove", "demo-app"]);
    assert!(!out.status.success());
    assert!(text(&out.stderr).contains("not installed: demo-app"));
}

#[test]
fn conflicts_and_scriptlets_keep_pacmans_answer_and_clean_empties_the_cache() {
    use koompi_testutil::pkgrepo::Scriptlet;
    let extra = vec![
        TestPkg::new("demo-legacy", "0.9-1")
            .conflicts(&["demo-app"])
            .file("usr/share/demo-legacy/README", "old\n", 0o644),
        TestPkg::new("demo-badscript", "1.0-1")
            .file("usr/share/demo-badscript/README", "x\n", 0o644)
            .scriptlet(Scriptlet::PreInstall, "echo refusing; exit 1"),
    ];
    let Some((repo, root)) = setup_with("conflicts_and_scriptlets", extra) else {
        return;
    };
    let aur = "http://127.0.0.1:1";
    ok(&mut koompi(&root, aur), &["install", "demo-app"]);
    // A conflict: pacman refuses under --noconfirm (exit 1), and koompi exits with that.
    let out = run(&mut koompi(&root, aur), &["install", "demo-legacy"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    assert_eq!(installed(&root), ["demo-app", "libdemo"]);
    // A failing install scriptlet does not fail pacman's transaction (pacman 6 installs
    // and exits 0, printing an error): koompi reports pacman's own answer, unchanged.
    let out = run(&mut koompi(&root, aur), &["install", "demo-badscript"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let all = format!("{}{}", text(&out.stdout), text(&out.stderr));
    assert!(all.contains("refusing"), "{all}");
    assert!(installed(&root).contains(&"demo-badscript".to_string()));

    // clean (-Sc): packages that are not installed leave the cache.
    let cache = root.path("/var/cache/pacman/pkg");
    let stale = cache.join("demo-legacy-0.9-1-any.pkg.tar.zst");
    let built = fs::read_dir(repo.dir())
        .unwrap()
        .flatten()
        .find(|e| {
            e.file_name()
                .to_string_lossy()
                .starts_with("demo-legacy-0.9-1")
        })
        .unwrap()
        .path();
    fs::copy(built, &stale).unwrap();
    ok(&mut koompi(&root, aur), &["-Sc"]);
    assert!(!stale.exists(), "koompi clean left {}", stale.display());
}

#[test]
fn search_shows_every_source_and_says_which_it_could_not_reach() {
    let Some((_repo, root)) = setup("search_shows_every_source") else {
        return;
    };
    let aur = MockAur::start();
    let out = ok(
        &mut koompi(&root, &aur.url()),
        &["--json", "search", "koompi"],
    );
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    let results = v["results"].as_array().unwrap();
    let find = |name: &str| results.iter().find(|p| p["name"] == name).cloned();
    let repo = find("koompi-demo").expect("the repository's package");
    assert_eq!(repo["source"]["kind"], "repo");
    let aurpkg = find("koompi-cli").expect("the AUR's package");
    assert_eq!(aurpkg["source"]["kind"], "aur");
    assert!(v["unreachable"].as_array().unwrap().is_empty());
    assert!(aur
        .requests()
        .iter()
        .any(|r| r.starts_with("/rpc/v5/search/koompi")));

    // The AUR down: the repositories' results still come, and the note says so.
    let out = ok(
        &mut koompi(&root, "http://127.0.0.1:1"),
        &["--json", "search", "koompi"],
    );
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    let names: Vec<&str> = v["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].as_str().unwrap())
        .collect();
    // demo-app's description mentions KOOMPI; the AUR's koompi-cli is missing.
    assert_eq!(names, ["demo-app", "koompi-demo"]);
    assert_eq!(v["unreachable"][0][0], "aur");
    assert!(text(&out.stderr).contains("aur not searched"));

    // Nothing anywhere: exit 1, like pacman.
    let out = run(&mut koompi(&root, &aur.url()), &["-Ss", "zzzz-nothing"]);
    assert_eq!(out.status.code(), Some(1));
}

#[test]
fn bad_and_unknown_names_are_refused_before_anything_runs() {
    let Some((_repo, root)) = setup("bad_and_unknown_names") else {
        return;
    };
    let aur = MockAur::start();
    for bad in ["demo;rm -rf /", "$(reboot)", "Demo-App", "-Syu"] {
        let out = run(&mut koompi(&root, &aur.url()), &["install", "--", bad]);
        assert!(!out.status.success(), "{bad} accepted");
        let err = text(&out.stderr);
        assert_eq!(err.trim_end().lines().count(), 1, "{err}");
        assert!(err.starts_with("koompi: error: "), "{err}");
    }
    assert!(installed(&root).is_empty());

    let out = run(&mut koompi(&root, &aur.url()), &["install", "demo-ap"]);
    assert!(!out.status.success());
    let err = text(&out.stderr);
    assert!(
        err.contains("`demo-ap` was not found in koompitest, the AUR"),
        "{err}"
    );
    assert!(err.contains("did you mean: demo-app"), "{err}");
    assert_eq!(err.trim_end().lines().count(), 1, "{err}");
}

#[test]
fn aur_packages_are_built_by_the_invoking_user_never_root() {
    let Some((_repo, root)) = setup("aur_packages_are_built_by_the_invoking_user") else {
        return;
    };
    let aur = MockAur::start();
    // The plan: yay is only in the AUR.
    let out = ok(
        &mut koompi(&root, &aur.url()),
        &["--json", "install", "--dry-run", "demo-app", "yay"],
    );
    let plan: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(plan["repo"][0], "demo-app");
    assert_eq!(plan["aur"][0], "yay");

    // Without paru: one line that says what to do.
    let out = run(&mut koompi(&root, &aur.url()), &["install", "yay"]);
    assert!(!out.status.success());
    assert!(text(&out.stderr).contains("paru is not installed"));

    // Root without SUDO_USER: refused.
    let t = tempfile::tempdir().unwrap();
    let log = t.path().join("paru.log");
    let paru = t.path().join("paru");
    fs::write(
        &paru,
        format!(
            "#!/bin/sh\necho \"$(id -un) $*\" >> {}\nexit 0\n",
            log.display()
        ),
    )
    .unwrap();
    use std::os::unix::fs::PermissionsExt;
    fs::set_permissions(&paru, fs::Permissions::from_mode(0o755)).unwrap();
    fs::set_permissions(t.path(), fs::Permissions::from_mode(0o777)).unwrap();
    fs::write(&log, "").unwrap();
    fs::set_permissions(&log, fs::Permissions::from_mode(0o666)).unwrap();
    let mut c = koompi(&root, &aur.url());
    c.env("KOOMPI_PARU", &paru);
    let out = run(&mut c, &["install", "yay"]);
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).contains("never as root"),
        "{}",
        text(&out.stderr)
    );

    // Through sudo: paru runs as that user.
    let user = koompi_testutil::pkgrepo::BUILD_USER;
    let mut c = koompi(&root, &aur.url());
    c.env("KOOMPI_PARU", &paru).env("SUDO_USER", user);
    ok(&mut c, &["install", "yay"]);
    let line = fs::read_to_string(&log).unwrap();
    assert!(line.starts_with(&format!("{user} -S ")), "{line}");
    assert!(line.trim_end().ends_with("-- yay"), "{line}");
}

#[test]
fn a_held_lock_is_explained_and_kept() {
    let Some((_repo, root)) = setup("a_held_lock_is_explained_and_kept") else {
        return;
    };
    let lock = root.path("/var/lib/pacman/db.lck");
    fs::write(&lock, "").unwrap();
    let out = run(
        &mut koompi(&root, "http://127.0.0.1:1"),
        &["install", "demo-app"],
    );
    assert!(!out.status.success());
    let err = text(&out.stderr);
    assert!(err.contains("database is locked"), "{err}");
    assert!(
        err.contains(&format!("sudo rm {}", lock.display())),
        "{err}"
    );
    assert!(lock.exists(), "the lock must never be removed by koompi");
    assert!(installed(&root).is_empty());
}

#[test]
fn offline_mirrors_stop_an_install_and_nothing_changes() {
    let Some((repo, root)) = setup("offline_mirrors_stop_an_install") else {
        return;
    };
    if koompi_testutil::which("unshare").is_none() {
        panic!("unshare (util-linux) is needed for the offline test");
    }
    // The same repository, served from an address that a fresh network namespace (with
    // only a loopback device, down) cannot reach.
    let conf = fs::read_to_string(root.conf())
        .unwrap()
        .replace(&repo.server(), "http://192.0.2.10/koompitest");
    let offline = root.base().join("offline.conf");
    fs::write(&offline, conf).unwrap();
    let bin = assert_cmd::cargo::cargo_bin("koompi");
    let out = std::process::Command::new("unshare")
        .arg("--net")
        .arg(&bin)
        .env("KOOMPI_PARU", "")
        .env("KOOMPI_AUR_URL", "http://192.0.2.10/")
        .arg("--config")
        .arg(&offline)
        .arg("--root")
        .arg(root.root())
        .args(["--noconfirm", "install", "demo-app"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = text(&out.stderr);
    assert!(err.contains("no network"), "{err}");
    assert!(err.contains("192.0.2.10"), "{err}");
    assert_eq!(err.trim_end().lines().count(), 1, "{err}");
    assert!(installed(&root).is_empty());
}

/// A pacman root inside a Btrfs `@` with a snapper config named `root`.
struct BtrfsRoot {
    fx: LoopBtrfs,
    conf: std::path::PathBuf,
}

fn btrfs_root(root: &PacmanRoot) -> BtrfsRoot {
    let fx = LoopBtrfs::koompi();
    let r = &fx.root;
    for d in [
        "var/lib/pacman",
        "var/cache/pacman/pkg",
        "var/log",
        "etc/pacman.d/hooks",
    ] {
        fs::create_dir_all(r.join(d)).unwrap();
    }
    fs::create_dir_all(r.join("etc/snapper/configs")).unwrap();
    fs::write(
        r.join("etc/snapper/configs/root"),
        format!(
            "SUBVOLUME=\"/\"\nFSTYPE=\"btrfs\"\n{}",
            koompi_testutil::KOOMPI_POLICY
        ),
    )
    .unwrap();
    // The shell for scriptlets, as PacmanRoot sets it up.
    copy_tree(&root.root().join("usr"), &r.join("usr"));
    std::os::unix::fs::symlink("usr/bin", r.join("bin")).unwrap();
    let old = root
        .root()
        .to_str()
        .unwrap()
        .trim_end_matches('/')
        .to_string();
    let conf = fs::read_to_string(root.conf())
        .unwrap()
        .replace(&old, r.to_str().unwrap());
    let path = fx.dir.path().join("pacman.conf");
    fs::write(&path, conf).unwrap();
    BtrfsRoot { fx, conf: path }
}

fn copy_tree(from: &Path, to: &Path) {
    let st = std::process::Command::new("cp")
        .arg("-a")
        .arg(from)
        .arg(to)
        .status()
        .unwrap();
    assert!(st.success());
}

fn koompi_on(b: &BtrfsRoot) -> Command {
    let mut c = Command::cargo_bin("koompi").unwrap();
    c.env("KOOMPI_PARU", "")
        .env("KOOMPI_FLATPAK", "")
        .env("KOOMPI_AUR_URL", "http://127.0.0.1:1")
        .env_remove("SUDO_USER")
        .arg("--config")
        .arg(&b.conf)
        .arg("--root")
        .arg(&b.fx.root)
        .arg("--noconfirm");
    c
}

fn snapshots(b: &BtrfsRoot) -> Vec<Value> {
    let out = Command::cargo_bin("koompi-snapshot")
        .unwrap()
        .arg("--config-file")
        .arg(&b.fx.config_file)
        .args(["--json", "list"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    serde_json::from_slice::<Value>(&out.stdout)
        .unwrap()
        .as_array()
        .unwrap()
        .clone()
}

fn pacman_q(b: &BtrfsRoot, name: &str) -> String {
    let out = std::process::Command::new("pacman")
        .env("LC_ALL", "C")
        .arg("--config")
        .arg(&b.conf)
        .arg("--root")
        .arg(&b.fx.root)
        .arg("--dbpath")
        .arg(b.fx.root.join("var/lib/pacman"))
        .args(["-Q", name])
        .output()
        .unwrap();
    text(&out.stdout).trim().to_string()
}

#[test]
fn a_snapshot_before_every_change_and_a_named_one_before_upgrades() {
    let Some((repo, root)) = setup("a_snapshot_before_every_change") else {
        return;
    };
    let b = btrfs_root(&root);
    ok(&mut koompi_on(&b), &["-Sy"]);
    let out = ok(&mut koompi_on(&b), &["install", "demo-app"]);
    assert!(text(&out.stderr).contains("snapshot 1 taken before the install"));
    let snaps = snapshots(&b);
    assert_eq!(snaps.len(), 1);
    assert_eq!(snaps[0]["description"], "koompi install: demo-app");
    // Taken before: the snapshot does not have the package.
    let snap_db = b.fx.snapshots().join("1/snapshot/var/lib/pacman/local");
    let in_snap: Vec<String> = fs::read_dir(&snap_db)
        .map(|d| {
            d.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    assert!(
        !in_snap.iter().any(|n| n.starts_with("demo-app")),
        "{in_snap:?}"
    );

    // snap-pac installed: it takes the snapshots, koompi takes none.
    let hooks = b.fx.root.join("usr/share/libalpm/hooks");
    fs::create_dir_all(&hooks).unwrap();
    fs::write(hooks.join("05-snap-pac-pre.hook"), "").unwrap();
    ok(&mut koompi_on(&b), &["install", "koompi-demo"]);
    assert_eq!(snapshots(&b).len(), 1);
    fs::remove_file(hooks.join("05-snap-pac-pre.hook")).unwrap();

    // The upgrade: a named, important pre-update snapshot, then pacman -Syu.
    repo.build(&[TestPkg::new("demo-app", "2.0-1")
        .description("Demo application for KOOMPI")
        .depends(&["libdemo"])
        .file("usr/bin/demo-app", "#!/bin/sh\necho demo 2\n", 0o755)]);
    let out = ok(&mut koompi_on(&b), &["--json", "upgrade"]);
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    let num = report["snapshot"][0].as_u64().unwrap();
    let name = report["snapshot"][1].as_str().unwrap().to_string();
    assert!(name.starts_with("pre-update-"), "{name}");
    assert_eq!(pacman_q(&b, "demo-app"), "demo-app 2.0-1");
    let snap = snapshots(&b)
        .into_iter()
        .find(|s| s["number"].as_u64() == Some(num))
        .unwrap();
    assert_eq!(snap["userdata"]["important"], "yes", "{snap}");
    assert_eq!(snap["name"], name.as_str());

    // An upgrade pacman refuses (a file another package does not own is in the way):
    // pacman's exit code, and the snapshot to go back to.
    fs::write(b.fx.root.join("usr/bin/demo-extra"), "mine\n").unwrap();
    repo.build(&[TestPkg::new("demo-app", "3.0-1")
        .depends(&["libdemo"])
        .file("usr/bin/demo-app", "#!/bin/sh\necho demo 3\n", 0o755)
        .file("usr/bin/demo-extra", "#!/bin/sh\n", 0o755)]);
    let out = run(&mut koompi_on(&b), &["upgrade"]);
    assert_eq!(
        out.status.code(),
        Some(1),
        "stdout: {}\nstderr: {}",
        text(&out.stdout),
        text(&out.stderr)
    );
    let err = text(&out.stderr);
    assert!(err.contains("koompi-snapshot rollback"), "{err}");
    assert_eq!(pacman_q(&b, "demo-app"), "demo-app 2.0-1");
}

#[test]
fn koompi_update_is_koompi_upgrade() {
    let Some((_repo, root)) = setup("koompi_update_is_koompi_upgrade") else {
        return;
    };
    let out = Command::cargo_bin("koompi-update")
        .unwrap()
        .env("KOOMPI_PARU", "")
        .arg("--config")
        .arg(root.conf())
        .arg("--root")
        .arg(root.root())
        .args(["--noconfirm", "--json"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(v["snapshot"].is_null(), "{v}");
    assert!(text(&out.stderr).contains("no snapshot taken"));
}

#[test]
fn channels_select_the_koompi_repositories() {
    let t = tempfile::tempdir().unwrap();
    let mut c = Command::cargo_bin("koompi").unwrap();
    let out = c
        .arg("--root")
        .arg(t.path())
        .args(["--json", "channel"])
        .output()
        .unwrap();
    assert!(out.status.success());
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["channel"], "stable");
    if !koompi_testutil::require_root("channels_select_the_koompi_repositories") {
        return;
    }
    let out = Command::cargo_bin("koompi")
        .unwrap()
        .arg("--root")
        .arg(t.path())
        .args(["channel", "set", "beta"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    let frag = fs::read_to_string(t.path().join("etc/pacman.d/koompi-channel.conf")).unwrap();
    assert!(frag.contains("[koompi-beta]") && frag.contains("[koompi]"));
    let out = Command::cargo_bin("koompi")
        .unwrap()
        .arg("--root")
        .arg(t.path())
        .args(["channel", "set", "nightly"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(text(&out.stderr).contains("stable, beta or development"));
}

mod transactional {
    use super::*;
    use koompi_core::cmd::Runner;
    use koompi_packages::upgrade::{self, TxOptions, TxStep, UpgradeCommand};
    use koompi_snapshots::config::SnapperConfig;
    use koompi_snapshots::rollback::Control;
    use koompi_snapshots::store::Store;

    fn v2() -> TestPkg {
        TestPkg::new("demo-app", "2.0-1")
            .description("Demo application for KOOMPI")
            .depends(&["libdemo"])
            .file("usr/bin/demo-app", "#!/bin/sh\necho demo 2\n", 0o755)
    }

    /// A Btrfs root with demo-app 1.0 installed and 2.0 waiting in the repository.
    fn prepared(test: &str) -> Option<(PkgRepo, PacmanRoot, BtrfsRoot)> {
        let (repo, root) = setup(test)?;
        let b = btrfs_root(&root);
        ok(&mut koompi_on(&b), &["-Sy"]);
        ok(&mut koompi_on(&b), &["install", "demo-app"]);
        repo.build(&[v2()]);
        fs::create_dir_all(b.fx.root.join("etc")).unwrap();
        fs::write(b.fx.root.join("etc/school.conf"), "room=1\n").unwrap();
        Some((repo, root, b))
    }

    fn store(b: &BtrfsRoot) -> Store {
        Store::open(SnapperConfig::from_file(&b.fx.config_file).unwrap()).unwrap()
    }

    fn options(b: &BtrfsRoot) -> TxOptions {
        TxOptions {
            upgrade: UpgradeCommand {
                program: vec!["pacman".into()],
                options: vec![
                    "--config".into(),
                    b.conf.clone().into_os_string(),
                    "--noconfirm".into(),
                ],
                quiet_stdout: true,
            },
            logfile: b.fx.root.join("var/log/pacman.log"),
            grub: false,
            watchdog: None,
        }
    }

    fn mounted_below(dir: &Path) -> Vec<String> {
        let table = fs::read_to_string("/proc/self/mountinfo").unwrap();
        let d = format!("{}/", dir.to_str().unwrap());
        table
            .lines()
            .filter_map(|l| l.split(' ').nth(4))
            .filter(|m| m.starts_with(&d))
            .map(str::to_string)
            .collect()
    }

    #[test]
    fn the_upgrade_goes_into_a_snapshot_that_is_the_root_at_the_next_boot() {
        let Some((_repo, _root, b)) = prepared("transactional_upgrade") else {
            return;
        };
        let st = store(&b);
        let report = upgrade::transactional(&st, &options(&b), &Runner::real(), &mut |s| {
            if s == TxStep::MergeEtc {
                // A teacher changes a setting while the upgrade runs.
                fs::write(b.fx.root.join("etc/school.conf"), "room=2\n").unwrap();
            }
            Control::Continue
        })
        .unwrap();
        // The running system is untouched.
        assert_eq!(pacman_q(&b, "demo-app"), "demo-app 1.0-1");
        assert!(mounted_below(&b.fx.snapshots()).is_empty());
        let snaps = snapshots(&b);
        let by_num = |n: u32| {
            snaps
                .iter()
                .find(|s| s["number"].as_u64() == Some(u64::from(n)))
                .cloned()
                .unwrap()
        };
        let base = by_num(report.base.0);
        assert_eq!(base["userdata"]["important"], "yes");
        assert!(base["name"].as_str().unwrap().starts_with("pre-update-"));
        let work = by_num(report.work);
        assert_eq!(work["userdata"]["koompi-transaction"], "applied");
        assert_eq!(work["userdata"]["koompi-known-good"], "no");
        let backup = by_num(report.backup);
        assert_eq!(backup["userdata"]["important"], "yes");

        // The next boot (a fresh mount of @) is the upgraded system, with the change made
        // to /etc during the upgrade.
        b.fx.remount_root();
        assert_eq!(pacman_q(&b, "demo-app"), "demo-app 2.0-1");
        assert_eq!(
            fs::read_to_string(b.fx.root.join("etc/school.conf")).unwrap(),
            "room=2\n"
        );
        assert_eq!(
            report.etc.taken,
            vec![std::path::PathBuf::from("school.conf")]
        );
    }

    #[test]
    fn an_interrupted_transaction_changes_nothing_and_is_cleaned_up_next_time() {
        let Some((_repo, _root, b)) = prepared("interrupted_transaction") else {
            return;
        };
        let st = store(&b);
        let steps = [
            TxStep::CleanLeftovers,
            TxStep::Base,
            TxStep::Work,
            TxStep::Mount,
            TxStep::Pacman,
            TxStep::Unmount,
            TxStep::MergeEtc,
            TxStep::Seal,
            TxStep::Switch,
        ];
        for stop in steps {
            for control in [Control::Fail, Control::Crash] {
                let r = upgrade::transactional(&st, &options(&b), &Runner::real(), &mut |s| {
                    if s == stop {
                        control
                    } else {
                        Control::Continue
                    }
                });
                assert!(r.is_err(), "{stop:?}/{control:?} went through");
                // The next boot is still the old system.
                b.fx.remount_root();
                assert_eq!(
                    pacman_q(&b, "demo-app"),
                    "demo-app 1.0-1",
                    "after {stop:?}/{control:?}"
                );
                if control == Control::Fail {
                    assert!(
                        upgrade::leftovers(&st).unwrap().is_empty(),
                        "{stop:?}: a failed run cleans up after itself"
                    );
                    assert!(mounted_below(&b.fx.snapshots()).is_empty(), "{stop:?}");
                }
            }
        }
        // A crash mid-upgrade leaves the marked work snapshot and its mounts; the next run
        // removes them and goes through.
        let r = upgrade::transactional(&st, &options(&b), &Runner::real(), &mut |s| {
            if s == TxStep::Unmount {
                Control::Crash
            } else {
                Control::Continue
            }
        });
        let e = r.unwrap_err();
        assert!(
            matches!(
                e,
                upgrade::UpgradeError::Interrupted {
                    step: TxStep::Unmount,
                    crash: true
                }
            ),
            "{e}"
        );
        let left = upgrade::leftovers(&st).unwrap();
        assert!(!left.is_empty());
        assert!(!mounted_below(&b.fx.snapshots()).is_empty());
        let report = upgrade::transactional(&st, &options(&b), &Runner::real(), &mut |_| {
            Control::Continue
        })
        .unwrap();
        for n in &left {
            assert!(report.removed_leftovers.contains(n), "{n} not cleaned");
        }
        assert!(upgrade::leftovers(&st).unwrap().is_empty());
        b.fx.remount_root();
        assert_eq!(pacman_q(&b, "demo-app"), "demo-app 2.0-1");
    }

    #[test]
    fn koompi_upgrade_transactional_from_the_command_line() {
        let Some((_repo, _root, b)) = prepared("koompi_upgrade_transactional") else {
            return;
        };
        let out = ok(
            &mut koompi_on(&b),
            &["--json", "upgrade", "--transactional"],
        );
        let report: Value = serde_json::from_slice(&out.stdout).unwrap();
        assert!(report["work"].as_u64().is_some(), "{report}");
        assert_eq!(pacman_q(&b, "demo-app"), "demo-app 1.0-1");
        b.fx.remount_root();
        assert_eq!(pacman_q(&b, "demo-app"), "demo-app 2.0-1");
    }
}
