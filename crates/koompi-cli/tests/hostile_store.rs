//! `koompi-snapshot` against a hostile store on a real loop-device Btrfs: symbolic links,
//! FIFOs, huge files and foreign entries where snapshots and their `info.xml` should be.
//! Nothing outside the store may be read through, followed or deleted; nothing may hang;
//! every foreign object is reported and left alone. These tests need root.
#![allow(clippy::unwrap_used)]

use std::fs;
use std::os::unix::fs::symlink;
use std::path::Path;
use std::time::Duration;

use koompi_testutil::{require_root, sh, LoopBtrfs};

mod common;
use common::{ks, ks_json, numbers};

/// Every command must answer within this (a FIFO read would block forever).
const LIMIT: Duration = Duration::from_secs(60);

/// A directory outside the store with data that must survive everything below.
fn victim(root: &Path) -> std::path::PathBuf {
    let v = root.join("victim");
    fs::create_dir_all(v.join("sub")).unwrap();
    fs::write(v.join("precious"), "keep me").unwrap();
    fs::write(v.join("sub/also"), "keep me too").unwrap();
    v
}

fn victim_intact(v: &Path) {
    assert_eq!(fs::read_to_string(v.join("precious")).unwrap(), "keep me");
    assert_eq!(
        fs::read_to_string(v.join("sub/also")).unwrap(),
        "keep me too"
    );
}

/// A KOOMPI store on a fresh loop-device Btrfs with snapshot 1 ("good"); `None` (the
/// test skips) without root.
fn store_with_one_snapshot(test: &str) -> Option<LoopBtrfs> {
    if !require_root(test) {
        return None;
    }
    let fx = LoopBtrfs::koompi();
    ks(&fx)
        .args(["create", "good"])
        .timeout(LIMIT)
        .assert()
        .success();
    Some(fx)
}

/// The `broken` text of entry `num` in a `list --json` answer.
fn broken_reason(list: &serde_json::Value, num: u64) -> String {
    list.as_array()
        .unwrap()
        .iter()
        .find(|e| e["number"] == num)
        .unwrap_or_else(|| panic!("no entry {num} in {list}"))["broken"]
        .as_str()
        .unwrap_or_else(|| panic!("entry {num} is not broken: {list}"))
        .to_string()
}

#[test]
fn links_and_foreign_objects_in_the_store_are_never_followed_or_deleted() {
    let Some(fx) = store_with_one_snapshot(
        "links_and_foreign_objects_in_the_store_are_never_followed_or_deleted",
    ) else {
        return;
    };
    let outside = tempfile::tempdir().unwrap();
    let v = victim(outside.path());
    let snaps = fx.snapshots();
    // 2: the numbered directory itself is a link to the victim.
    symlink(&v, snaps.join("2")).unwrap();
    // 3: a real directory whose info.xml and another entry are links to the victim.
    fs::create_dir(snaps.join("3")).unwrap();
    symlink(v.join("precious"), snaps.join("3/info.xml")).unwrap();
    symlink(&v, snaps.join("3/junk")).unwrap();
    // 4: a plain file where a directory should be.
    fs::write(snaps.join("4"), "not a directory").unwrap();

    let list = ks_json(&fx, &["list"]);
    assert!(broken_reason(&list, 2).contains("symbolic link"), "{list}");
    assert!(broken_reason(&list, 3).contains("symbolic link"), "{list}");
    assert!(broken_reason(&list, 4).contains("regular file"), "{list}");
    ks(&fx).arg("status").timeout(LIMIT).assert().success();

    // delete refuses the link and the file, in one line, and touches nothing.
    for n in ["2", "4"] {
        let out = ks(&fx).args(["delete", n]).timeout(LIMIT).output().unwrap();
        assert!(!out.status.success(), "delete {n} must be refused");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains("leaves it alone"), "{err}");
        assert_eq!(err.trim_end().lines().count(), 1, "{err}");
    }
    // delete 3 removes the info.xml link itself, refuses the foreign `junk`.
    let out = ks(&fx)
        .args(["delete", "3"])
        .timeout(LIMIT)
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("junk"));
    // The automatic cleanup, planned and done, also with snapshots it may remove.
    for _ in 0..3 {
        ks(&fx).arg("create").timeout(LIMIT).assert().success();
    }
    ks(&fx)
        .args(["cleanup", "--dry-run"])
        .timeout(LIMIT)
        .assert()
        .success();
    ks(&fx).arg("cleanup").timeout(LIMIT).assert().success();
    victim_intact(&v);
    assert!(fs::symlink_metadata(snaps.join("2"))
        .unwrap()
        .file_type()
        .is_symlink());
    assert!(snaps.join("3/junk").exists());
    // The store still works, and numbers stay unique past the foreign entries.
    assert_eq!(ks_json(&fx, &["create"])["number"], 8);
}

#[test]
fn fifo_and_huge_metadata_never_hang_or_balloon() {
    let Some(fx) = store_with_one_snapshot("fifo_and_huge_metadata_never_hang_or_balloon") else {
        return;
    };
    let snaps = fx.snapshots();
    // 2: info.xml is a FIFO nobody writes to.
    fs::create_dir(snaps.join("2")).unwrap();
    sh("mkfifo", &[snaps.join("2/info.xml").to_str().unwrap()]);
    // 3: info.xml is a 2 GiB sparse file.
    fs::create_dir(snaps.join("3")).unwrap();
    let f = fs::File::create(snaps.join("3/info.xml")).unwrap();
    f.set_len(2 << 30).unwrap();
    drop(f);
    // 4: a FIFO where the numbered directory should be.
    sh("mkfifo", &[snaps.join("4").to_str().unwrap()]);

    for args in [&["list"][..], &["status"][..], &["cleanup"][..]] {
        ks(&fx).args(args).timeout(LIMIT).assert().success();
    }
    let list = ks_json(&fx, &["list"]);
    assert!(broken_reason(&list, 2).contains("FIFO"), "{list}");
    assert!(broken_reason(&list, 3).contains("large"), "{list}");
    assert!(broken_reason(&list, 4).contains("FIFO"), "{list}");
    // create takes the store lock and must not hang on them either.
    assert_eq!(ks_json(&fx, &["create"])["number"], 5);
    // The broken ones can be deleted: the FIFO and the big file go by name.
    ks(&fx)
        .args(["delete", "2"])
        .timeout(LIMIT)
        .assert()
        .success();
    ks(&fx)
        .args(["delete", "3"])
        .timeout(LIMIT)
        .assert()
        .success();
    assert!(!snaps.join("2").exists() && !snaps.join("3").exists());
    // The FIFO in place of a directory is foreign: left alone.
    ks(&fx)
        .args(["delete", "4"])
        .timeout(LIMIT)
        .assert()
        .failure();
    assert!(fs::symlink_metadata(snaps.join("4")).is_ok());
}

/// Sets a path's modification time `secs` seconds into the past (not following a link).
fn age(path: &Path, secs: u64) {
    let when = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
        - secs;
    sh(
        "touch",
        &["-h", "-d", &format!("@{when}"), path.to_str().unwrap()],
    );
}

/// What a create killed between the subvolume and info.xml leaves: the numbered
/// directory, a read-only snapshot subvolume and a temporary info.xml.
fn interrupted_create(fx: &LoopBtrfs, num: u32) {
    let d = fx.snapshots().join(num.to_string());
    fs::create_dir(&d).unwrap();
    sh(
        "btrfs",
        &[
            "-q",
            "subvolume",
            "snapshot",
            "-r",
            fx.root.to_str().unwrap(),
            d.join("snapshot").to_str().unwrap(),
        ],
    );
    fs::write(d.join("info.xml.tmp-4242"), "<snapshot><num>").unwrap();
}

#[test]
fn an_interrupted_create_is_healed_by_the_next_cleanup_or_create() {
    let Some(fx) =
        store_with_one_snapshot("an_interrupted_create_is_healed_by_the_next_cleanup_or_create")
    else {
        return;
    };
    let snaps = fx.snapshots();
    // A stray temporary file in a complete snapshot (a killed info.xml rewrite).
    fs::write(snaps.join("1/info.xml.tmp-777"), "partial").unwrap();
    age(&snaps.join("1"), 3600);
    interrupted_create(&fx, 2);
    age(&snaps.join("2"), 3600);
    // 3: interrupted a moment ago: perhaps still being made (by snapper, which does not
    // take KOOMPI's lock): reported, not removed.
    interrupted_create(&fx, 3);

    let list = ks_json(&fx, &["list"]);
    assert!(broken_reason(&list, 2).contains("interrupted"), "{list}");
    assert!(
        broken_reason(&list, 3).contains("info.xml is missing"),
        "{list}"
    );
    let dry = ks(&fx)
        .args(["cleanup", "--dry-run"])
        .timeout(LIMIT)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&dry.stdout);
    assert!(
        text.contains("Would remove the remains of 1 interrupted snapshot(s): 2"),
        "{text}{}",
        String::from_utf8_lossy(&dry.stderr)
    );
    assert!(
        snaps.join("2/snapshot").exists(),
        "dry run changed the store"
    );

    let out = ks(&fx).arg("cleanup").timeout(LIMIT).output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}");
    assert!(
        text.contains("Removed the remains of 1 interrupted snapshot(s): 2"),
        "{text}"
    );
    assert!(
        text.contains("Removed 1 stray temporary info.xml file(s)."),
        "{text}"
    );
    assert!(!snaps.join("2/snapshot").exists());
    assert!(!snaps.join("1/info.xml.tmp-777").exists());
    assert!(snaps.join("3/snapshot").exists(), "a young one must stay");
    // No subvolume of the interrupted create is left behind.
    let subs = sh(
        "btrfs",
        &["subvolume", "list", "-o", snaps.to_str().unwrap()],
    );
    assert!(!subs.contains(".snapshots/2/snapshot"), "{subs}");

    // The next create heals too.
    age(&snaps.join("3"), 3600);
    ks(&fx).arg("create").timeout(LIMIT).assert().success();
    assert!(!snaps.join("3/snapshot").exists());
    let list = ks_json(&fx, &["list"]);
    assert!(
        list.as_array()
            .unwrap()
            .iter()
            .all(|e| e.get("broken").is_none()),
        "{list}"
    );
}

#[test]
fn readers_do_not_see_half_made_snapshots_and_a_held_lock_is_named() {
    let Some(fx) =
        store_with_one_snapshot("readers_do_not_see_half_made_snapshots_and_a_held_lock_is_named")
    else {
        return;
    };
    let snaps = fx.snapshots();
    // Another process holds the store's lock for 4 s, as a create in progress does.
    let mut holder = std::process::Command::new("flock")
        .args(["-x", snaps.to_str().unwrap(), "sleep", "4"])
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(500));
    interrupted_create(&fx, 2);
    // A reader does not wait and does not see the half-made snapshot.
    let started = std::time::Instant::now();
    let list = ks_json(&fx, &["list"]);
    assert!(started.elapsed() < Duration::from_secs(3), "list waited");
    assert_eq!(common::numbers(&list), vec![1], "{list}");
    // A writer waits for the holder and says who it is.
    let out = ks(&fx).arg("create").timeout(LIMIT).output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    assert!(
        err.contains("holds the snapshot lock") && err.contains("pid"),
        "{err}"
    );
    holder.wait().unwrap();
    // Without a writer, the half-made one is listed as such.
    let list = ks_json(&fx, &["list"]);
    assert!(
        broken_reason(&list, 2).contains("info.xml is missing"),
        "{list}"
    );
}

#[test]
fn a_full_disk_is_one_line_and_leaves_nothing_half_made() {
    let Some(fx) = store_with_one_snapshot("a_full_disk_is_one_line_and_leaves_nothing_half_made")
    else {
        return;
    };
    // Fill the filesystem (dd stops at ENOSPC), then sync so the space is really gone.
    let fill = fx.root.join("fill");
    let _ = std::process::Command::new("dd")
        .args(["if=/dev/zero", "bs=1M", "status=none"])
        .arg(format!("of={}", fill.display()))
        .status();
    sh("btrfs", &["filesystem", "sync", fx.root.to_str().unwrap()]);
    let before = ks_json(&fx, &["list"]);
    let mut failures = 0;
    for _ in 0..5 {
        let out = ks(&fx).arg("create").timeout(LIMIT).output().unwrap();
        if out.status.success() {
            continue;
        }
        failures += 1;
        let err = String::from_utf8_lossy(&out.stderr);
        if failures == 1 {
            eprintln!("full disk: {}", err.trim_end());
        }
        assert_eq!(err.trim_end().lines().count(), 1, "{err}");
        assert!(err.matches("os error 28").count() <= 1, "said twice: {err}");
    }
    // Whatever succeeded is complete; whatever failed left nothing: no broken entry and
    // no temporary file anywhere in the store.
    let list = ks_json(&fx, &["list"]);
    assert!(
        list.as_array()
            .unwrap()
            .iter()
            .all(|e| e.get("broken").is_none()),
        "{list}\n(before: {before})"
    );
    let tmp = sh(
        "find",
        &[
            fx.snapshots().to_str().unwrap(),
            "-maxdepth",
            "2",
            "-name",
            "*.tmp*",
        ],
    );
    assert!(tmp.trim().is_empty(), "temporary files left: {tmp}");
    eprintln!("full disk: {failures} of 5 creates failed");
    // Space again: the store works.
    // btrfs hands the fill's space back to metadata only when its cleaner has freed the
    // emptied data chunks, a moment after the commit (under load, after the first try):
    // the store must work again within a few seconds.
    fs::remove_file(&fill).unwrap();
    let mut last = String::new();
    for _ in 0..10 {
        sh("btrfs", &["filesystem", "sync", fx.root.to_str().unwrap()]);
        let out = ks(&fx).arg("create").timeout(LIMIT).output().unwrap();
        if out.status.success() {
            return;
        }
        last = String::from_utf8_lossy(&out.stderr).into_owned();
        std::thread::sleep(Duration::from_millis(500));
    }
    panic!("with space again, create still fails: {last}");
}

/// A snapshot cleanup cannot remove (something is mounted inside it) makes cleanup fail
/// with one line naming it, and it never says "Nothing to clean up" beside that.
#[test]
fn a_cleanup_that_cannot_remove_says_so_and_only_so() {
    let name = "a_cleanup_that_cannot_remove_says_so_and_only_so";
    if !require_root(name) || !koompi_testutil::require_programs(name, &["chattr"]) {
        return;
    }
    let fx = LoopBtrfs::koompi();
    // NUMBER_LIMIT=10: 11 number snapshots, so the oldest is due.
    for _ in 0..11 {
        ks(&fx).arg("create").timeout(LIMIT).assert().success();
    }
    // Snapshot 1's directory is immutable: nothing in it can be removed, not even by root.
    let one = fx.snapshots().join("1");
    let one = one.to_str().unwrap();
    sh("chattr", &["+i", one]);
    let out = ks(&fx).arg("cleanup").timeout(LIMIT).output().unwrap();
    sh("chattr", &["-i", one]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{stdout}{stderr}");
    assert!(!stdout.contains("Nothing to clean up"), "{stdout}");
    assert_eq!(stderr.trim_end().lines().count(), 1, "{stderr}");
    assert!(
        stderr.starts_with("koompi-snapshot: error: could not remove 1 snapshot(s): 1: "),
        "{stderr}"
    );
    // Once it can be removed, the next cleanup removes it.
    ks(&fx).arg("cleanup").timeout(LIMIT).assert().success();
    let list = ks_json(&fx, &["list"]);
    assert!(!numbers(&list).contains(&1), "{list}");
}
