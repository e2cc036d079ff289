//! `koompi-snapshot` on real Btrfs filesystems in loop devices, side by side with the real
//! snapper. These tests need root; see koompi_testutil::require_root.
#![allow(clippy::unwrap_used)]

use std::collections::BTreeSet;
use std::fs;
use std::path::Path;

use assert_cmd::Command;

use koompi_testutil::{require_root, sh, write, Layout, LoopBtrfs, KOOMPI_POLICY};
use serde_json::Value;

mod common;
use common::{ks, ks_fail, ks_json, numbers};

#[test]
fn create_list_info_delete() {
    if !require_root("create_list_info_delete") {
        return;
    }
    let fx = LoopBtrfs::koompi();
    write(&fx.root.join("etc/hostname"), "koompi\n");
    let s = ks_json(&fx, &["create", "first", "First snapshot", "--important"]);
    assert_eq!(s["number"], 1);
    assert_eq!(s["name"], "first");
    assert_eq!(s["important"], true);
    assert_eq!(s["cleanup"], "number");
    assert_eq!(s["read_only"], true);
    assert_eq!(
        fs::read_to_string(fx.snapshots().join("1/snapshot/etc/hostname")).unwrap(),
        "koompi\n"
    );
    ks(&fx)
        .args(["create", "--desc", "no name", "--cleanup", "none"])
        .assert()
        .success();
    let list = ks_json(&fx, &["list"]);
    assert_eq!(numbers(&list), vec![1, 2]);
    assert_eq!(list[1]["description"], "no name");
    assert_eq!(list[1]["cleanup"], "");
    let info = ks_json(&fx, &["info", "first"]);
    assert_eq!(info["number"], 1);
    assert_eq!(info["description"], "First snapshot");
    // Human output names the snapshot.
    ks(&fx)
        .args(["list"])
        .assert()
        .success()
        .stdout(predicates::str::contains("First snapshot"));
    // A protected snapshot needs --force.
    let err = ks_fail(&fx, &["delete", "2"]);
    assert!(err.contains("--force"), "{err}");
    ks(&fx)
        .args(["delete", "first", "2", "--force"])
        .assert()
        .success();
    assert!(numbers(&ks_json(&fx, &["list"])).is_empty());
    assert!(!fx.snapshots().join("1").exists());
}

#[test]
fn numbers_are_never_reused() {
    if !require_root("numbers_are_never_reused") {
        return;
    }
    let fx = LoopBtrfs::koompi();
    for _ in 0..3 {
        ks(&fx).args(["create"]).assert().success();
    }
    ks(&fx).args(["delete", "3"]).assert().success();
    ks(&fx).args(["delete", "2"]).assert().success();
    let s = ks_json(&fx, &["create"]);
    assert_eq!(s["number"], 4, "3 was used once and must not come back");
}

#[test]
fn glob_ids_pick_the_newest_match() {
    if !require_root("glob_ids_pick_the_newest_match") {
        return;
    }
    let fx = LoopBtrfs::koompi();
    ks(&fx)
        .args(["create", "factory-20260101", "--cleanup", "none"])
        .assert()
        .success();
    ks(&fx).args(["create", "other"]).assert().success();
    ks(&fx)
        .args(["create", "factory-20260301", "--cleanup", "none"])
        .assert()
        .success();
    assert_eq!(ks_json(&fx, &["info", "factory-*"])["number"], 3);
    let err = ks_fail(&fx, &["create", "other"]);
    assert!(err.contains("already exists"), "{err}");
}

#[test]
fn snapper_lists_what_koompi_creates() {
    if !require_root("snapper_lists_what_koompi_creates") {
        return;
    }
    let mut fx = LoopBtrfs::koompi();
    let cfg = fx.snapper_config();
    ks(&fx)
        .args([
            "create",
            "pre-update-20261121",
            "Before update ស្តី & <ok>",
            "--important",
        ])
        .args(["--userdata", "origin=test"])
        .assert()
        .success();
    ks(&fx).args(["create", "--timeline"]).assert().success();
    let ours = ks_json(&fx, &["list"]);
    let theirs: Value =
        serde_json::from_str(&fx.snapper(&cfg, &["--jsonout", "--utc", "--iso", "list"])).unwrap();
    let theirs: Vec<&Value> = theirs[&cfg]
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| s["number"] != 0)
        .collect();
    assert_eq!(theirs.len(), 2, "{theirs:?}");
    for (o, t) in ours.as_array().unwrap().iter().zip(theirs) {
        assert_eq!(o["number"], t["number"]);
        assert_eq!(o["description"], t["description"]);
        assert_eq!(o["cleanup"], t["cleanup"]);
        assert_eq!(o["userdata"], t["userdata"]);
        // snapper prints ISO dates without the T and Z.
        let od = o["date"]
            .as_str()
            .unwrap()
            .replace('T', " ")
            .replace('Z', "");
        assert_eq!(od, t["date"].as_str().unwrap());
        assert_eq!(t["type"], "single");
    }
}

#[test]
fn koompi_reads_and_deletes_what_snapper_creates() {
    if !require_root("koompi_reads_and_deletes_what_snapper_creates") {
        return;
    }
    let mut fx = LoopBtrfs::koompi();
    let cfg = fx.snapper_config();
    fx.snapper(
        &cfg,
        &[
            "create",
            "-d",
            "by snapper",
            "-c",
            "number",
            "-u",
            "important=yes,name=snap-one",
        ],
    );
    fx.snapper(&cfg, &["create", "-t", "pre", "-p", "-d", "pre"]);
    fx.snapper(
        &cfg,
        &["create", "-t", "post", "--pre-number", "2", "-d", "post"],
    );
    let list = ks_json(&fx, &["list"]);
    assert_eq!(numbers(&list), vec![1, 2, 3]);
    assert_eq!(list[0]["name"], "snap-one");
    assert_eq!(list[0]["important"], true);
    assert_eq!(list[0]["description"], "by snapper");
    assert_eq!(list[1]["type"], "pre");
    assert_eq!(list[2]["type"], "post");
    assert_eq!(list[2]["pre_number"], 2);
    ks(&fx).args(["delete", "snap-one"]).assert().success();
    let theirs = fx.snapper(&cfg, &["--csvout", "list", "--columns", "number"]);
    let nums: Vec<&str> = theirs.lines().skip(1).collect();
    assert_eq!(nums, vec!["0", "2", "3"]);
    // And a snapshot koompi makes after snapper's continues snapper's numbering.
    assert_eq!(ks_json(&fx, &["create"])["number"], 4);
}

#[test]
fn broken_snapshot_directories_are_listed_not_fatal() {
    if !require_root("broken_snapshot_directories_are_listed_not_fatal") {
        return;
    }
    let fx = LoopBtrfs::koompi();
    ks(&fx).args(["create", "good"]).assert().success();
    ks(&fx)
        .args(["create", "will-lose-info"])
        .assert()
        .success();
    fs::create_dir(fx.snapshots().join("7")).unwrap();
    fs::write(fx.snapshots().join("7/info.xml"), "<snapshot><num>oops").unwrap();
    fs::remove_file(fx.snapshots().join("2/info.xml")).unwrap();
    fs::create_dir(fx.snapshots().join("9")).unwrap(); // an empty reserved number
    let list = ks_json(&fx, &["list"]);
    let arr = list.as_array().unwrap();
    assert_eq!(arr.len(), 3, "{list}");
    assert_eq!(arr[0]["number"], 1);
    assert!(arr[1]["broken"]
        .as_str()
        .unwrap()
        .contains("info.xml is missing"));
    assert!(arr[2]["broken"].as_str().unwrap().contains("info.xml"));
    ks(&fx)
        .arg("list")
        .assert()
        .success()
        .stdout(predicates::str::contains("BROKEN"));
    let st = ks_json(&fx, &["status"]);
    assert_eq!(st["snapshots"]["broken"], 2);
    // A broken snapshot can be deleted; its subvolume goes with it.
    ks(&fx).args(["delete", "2"]).assert().success();
    assert!(!fx.snapshots().join("2").exists());
    let err = ks_fail(&fx, &["info", "7"]);
    assert!(err.contains("broken"), "{err}");
    // The next number is past every directory, reserved ones included.
    assert_eq!(ks_json(&fx, &["create"])["number"], 10);
}

#[test]
fn bad_input_is_one_line_and_changes_nothing() {
    if !require_root("bad_input_is_one_line_and_changes_nothing") {
        return;
    }
    let fx = LoopBtrfs::koompi();
    ks(&fx).args(["create", "keep-me"]).assert().success();
    let before = ks_json(&fx, &["list"]);
    let dirs_before: BTreeSet<_> = fs::read_dir(fx.snapshots())
        .unwrap()
        .flatten()
        .map(|e| e.file_name())
        .collect();

    assert!(ks_fail(&fx, &["info", "42"]).contains("no snapshot matches"));
    assert!(ks_fail(&fx, &["delete", "keep-me", "nope"]).contains("no snapshot matches"));
    assert!(ks_fail(&fx, &["create", "a/b"]).contains("'/'"));
    assert!(ks_fail(&fx, &["create", "../../etc"]).contains("invalid name"));
    assert!(ks_fail(&fx, &["rollback", "../x"]).contains("invalid name"));
    assert!(ks_fail(&fx, &["create", "x", "--userdata", "a=b=c"]).contains("userdata"));

    // Not Btrfs.
    let plain = tempfile::tempdir().unwrap();
    let cfg = plain.path().join("cfg");
    fs::write(&cfg, format!("SUBVOLUME=\"{}\"\n", plain.path().display())).unwrap();
    let out = Command::cargo_bin("koompi-snapshot")
        .unwrap()
        .arg("--config-file")
        .arg(&cfg)
        .arg("list")
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("is not on a Btrfs filesystem"));

    // A config that does not parse.
    fs::write(&cfg, "SUBVOLUME=\"/unterminated\n").unwrap();
    let out = Command::cargo_bin("koompi-snapshot")
        .unwrap()
        .arg("--config-file")
        .arg(&cfg)
        .arg("list")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("does not parse") && err.contains("line 1"),
        "{err}"
    );
    // A config name that does not exist.
    let out = Command::cargo_bin("koompi-snapshot")
        .unwrap()
        .args(["--config", "no-such-config-here", "list"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("not found"));

    // No permission: an ordinary user cannot create snapshots.
    if koompi_testutil::which("setpriv").is_some() {
        let bin = assert_cmd::cargo::cargo_bin("koompi-snapshot");
        let out = std::process::Command::new("setpriv")
            .args(["--reuid=65534", "--regid=65534", "--clear-groups"])
            .arg(&bin)
            .arg("--config-file")
            .arg(&fx.config_file)
            .args(["create", "as-nobody"])
            .output()
            .unwrap();
        assert!(!out.status.success());
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains("permission denied"), "{err}");
        assert_eq!(err.trim_end().lines().count(), 1, "{err}");
    }

    assert_eq!(ks_json(&fx, &["list"]), before);
    let dirs_after: BTreeSet<_> = fs::read_dir(fx.snapshots())
        .unwrap()
        .flatten()
        .map(|e| e.file_name())
        .collect();
    assert_eq!(dirs_before, dirs_after);
}

#[test]
fn timeline_create_names_the_daily_snapshot_once() {
    if !require_root("timeline_create_names_the_daily_snapshot_once") {
        return;
    }
    let fx = LoopBtrfs::koompi();
    let a = ks_json(&fx, &["create", "--timeline"]);
    let b = ks_json(&fx, &["create", "--timeline"]);
    assert_eq!(
        a["number"], b["number"],
        "second run must not create another"
    );
    let name = a["name"].as_str().unwrap();
    let today = chrono::Local::now().format("daily-%Y%m%d").to_string();
    assert_eq!(name, today);
    assert_eq!(a["cleanup"], "timeline");
    assert_eq!(numbers(&ks_json(&fx, &["list"])).len(), 1);
}

#[test]
fn status_reports_usage_and_classes() {
    if !require_root("status_reports_usage_and_classes") {
        return;
    }
    let fx = LoopBtrfs::koompi();
    ks(&fx)
        .args(["create", "factory-20260101", "--cleanup", "none"])
        .assert()
        .success();
    ks(&fx)
        .args(["create", "a", "--important"])
        .assert()
        .success();
    ks(&fx).args(["create", "--timeline"]).assert().success();
    let st = ks_json(&fx, &["status"]);
    assert_eq!(st["snapshots"]["total"], 3);
    assert_eq!(st["snapshots"]["protected"], 1);
    assert_eq!(st["snapshots"]["number"], 1);
    assert_eq!(st["snapshots"]["timeline"], 1);
    assert_eq!(st["snapshots"]["important"], 1);
    assert_eq!(st["last"]["number"], 3);
    assert!(st["filesystem"]["size_bytes"].as_u64().unwrap() > 100 * 1024 * 1024);
    ks(&fx)
        .arg("status")
        .assert()
        .success()
        .stdout(predicates::str::contains("GiB"));
}

#[test]
fn diff_lists_added_changed_removed() {
    if !require_root("diff_lists_added_changed_removed") {
        return;
    }
    let fx = LoopBtrfs::koompi();
    write(&fx.root.join("etc/keep"), "same");
    write(&fx.root.join("etc/edit"), "before");
    write(&fx.root.join("etc/gone"), "x");
    ks(&fx).args(["create", "base"]).assert().success();
    write(&fx.root.join("etc/edit"), "after!");
    // Same size, and the old modification time put back: still a change.
    let old_copy = fx.snapshots().join("1/snapshot/etc/edit");
    sh(
        "touch",
        &[
            "-r",
            old_copy.to_str().unwrap(),
            fx.root.join("etc/edit").to_str().unwrap(),
        ],
    );
    fs::remove_file(fx.root.join("etc/gone")).unwrap();
    write(&fx.root.join("etc/new"), "n");
    let d = ks_json(&fx, &["diff", "base"]);
    let got: Vec<(String, String)> = d["changes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            (
                c["kind"].as_str().unwrap().to_string(),
                c["path"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    let want = [
        ("changed", "/etc/edit"),
        ("removed", "/etc/gone"),
        ("added", "/etc/new"),
    ];
    assert_eq!(
        got,
        want.map(|(a, b)| (a.to_string(), b.to_string())).to_vec()
    );
    // Between two snapshots, in the other direction.
    ks(&fx).args(["create", "later"]).assert().success();
    let d = ks_json(&fx, &["diff", "later", "base"]);
    assert_eq!(d["changes"].as_array().unwrap().len(), 3);
    ks(&fx)
        .args(["diff", "base"])
        .assert()
        .success()
        .stdout(predicates::str::contains("+ /etc/new"));
}

#[test]
fn rollback_restores_root_and_keeps_the_current_state() {
    if !require_root("rollback_restores_root_and_keeps_the_current_state") {
        return;
    }
    let fx = LoopBtrfs::koompi();
    write(&fx.root.join("etc/version"), "good\n");
    write(&fx.top.join("@home/student/work.txt"), "homework\n");
    write(&fx.top.join("@var_log/log.txt"), "log1\n");
    ks(&fx).args(["create", "known-good"]).assert().success();
    write(&fx.root.join("etc/version"), "broken\n");
    write(&fx.root.join("var/lib/pacman/db.lck"), "");
    write(&fx.root.join("etc/new-after"), "x");
    // The lock file exists in a snapshot too, as snap-pac's pre snapshots have it.
    ks(&fx).args(["create", "with-lock"]).assert().success();
    write(&fx.top.join("@home/student/work.txt"), "homework v2\n");

    let r = ks_json(&fx, &["rollback", "known-good"]);
    assert_eq!(r["target"], 1);
    let backup = r["backup"].as_u64().unwrap();
    assert_eq!(r["root_subvolume"], "@");
    // The running system is untouched until the next mount.
    assert_eq!(
        fs::read_to_string(fx.root.join("etc/version")).unwrap(),
        "broken\n"
    );
    fx.remount_root();
    assert_eq!(
        fs::read_to_string(fx.root.join("etc/version")).unwrap(),
        "good\n"
    );
    assert!(!fx.root.join("etc/new-after").exists());
    // /home and /var/log are separate subvolumes and stay as they are.
    assert_eq!(
        fs::read_to_string(fx.top.join("@home/student/work.txt")).unwrap(),
        "homework v2\n"
    );
    assert_eq!(
        fs::read_to_string(fx.top.join("@var_log/log.txt")).unwrap(),
        "log1\n"
    );
    // The replaced state is an important snapshot with all its content.
    let b = ks_json(&fx, &["info", &backup.to_string()]);
    assert_eq!(b["important"], true);
    let bpath = Path::new(b["path"].as_str().unwrap()).to_path_buf();
    assert_eq!(
        fs::read_to_string(bpath.join("etc/version")).unwrap(),
        "broken\n"
    );
    // Roll back to the snapshot that holds pacman's lock: the lock must not come back.
    ks(&fx).args(["rollback", "with-lock"]).assert().success();
    fx.remount_root();
    assert_eq!(
        fs::read_to_string(fx.root.join("etc/version")).unwrap(),
        "broken\n"
    );
    assert!(!fx.root.join("var/lib/pacman/db.lck").exists());
    // Nothing lost: 2 originals + 2 backups, none broken, no leftovers in the top level.
    let list = ks_json(&fx, &["list"]);
    assert_eq!(list.as_array().unwrap().len(), 4, "{list}");
    assert!(list
        .as_array()
        .unwrap()
        .iter()
        .all(|s| s.get("broken").is_none()));
    let top: Vec<String> = fs::read_dir(&fx.top)
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    assert!(top.iter().all(|n| !n.contains("koompi")), "{top:?}");
    // snapper agrees on the result.
    let mut fx = fx;
    let cfg = fx.snapper_config();
    let csv = fx.snapper(&cfg, &["--csvout", "list", "--columns", "number"]);
    assert_eq!(csv.lines().count(), 1 + 1 + 4, "{csv}");
}

#[test]
fn rollback_refuses_nested_layout_and_changes_nothing() {
    if !require_root("rollback_refuses_nested_layout_and_changes_nothing") {
        return;
    }
    let fx = LoopBtrfs::new(Layout::Nested, 256, KOOMPI_POLICY);
    ks(&fx).args(["create", "one"]).assert().success();
    let err = ks_fail(&fx, &["rollback", "one"]);
    assert!(err.contains("rollback refused"), "{err}");
    assert_eq!(numbers(&ks_json(&fx, &["list"])), vec![1]);
}

/// On an 80-column terminal (a pseudo-terminal made by `script`), `list` fits: no line
/// is wider than 80 columns, names and dates are never broken, only the description
/// wraps, and the flags are explained.
#[test]
fn list_fits_an_80_column_console() {
    if !require_root("list_fits_an_80_column_console")
        || !koompi_testutil::require_programs("list_fits_an_80_column_console", &["script"])
    {
        return;
    }
    let fx = LoopBtrfs::koompi();
    ks(&fx)
        .args([
            "create",
            "factory-20261202",
            "The system as it came from the factory, before any student touched it",
            "--important",
            "--cleanup",
            "none",
        ])
        .assert()
        .success();
    ks(&fx)
        .args(["create", "before-libreoffice-upgrade", "Before the upgrade"])
        .assert()
        .success();
    let bin = assert_cmd::cargo::cargo_bin("koompi-snapshot");
    let inner = format!(
        "stty cols 80 rows 40; {} --config-file {} list",
        bin.display(),
        fx.config_file.display()
    );
    let out = sh("script", &["-qec", &inner, "/dev/null"]);
    let text = out.replace('\r', "");
    for line in text.lines() {
        assert!(
            line.chars().count() <= 80,
            "wider than 80 columns ({}):\n{text}",
            line.chars().count()
        );
    }
    for whole in [
        "factory-20261202",
        "before-libreoffice-upgrade",
        "Flags: i important",
    ] {
        assert!(text.contains(whole), "{whole:?} broken or missing:\n{text}");
    }
    assert!(text.contains("student"), "{text}");
}
