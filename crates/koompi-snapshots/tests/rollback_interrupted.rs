//! A rollback stopped at every step, by an error and by a simulated power loss, on real
//! Btrfs in a loop device: the disk must always hold a mountable `@` with either the old or
//! the restored content, no snapshot may be lost, and the next rollback must finish or undo
//! the interrupted one and leave nothing behind.
#![allow(clippy::unwrap_used)]

use std::fs;

use koompi_snapshots::config::SnapperConfig;
use koompi_snapshots::rollback::{self, Control, Step};
use koompi_snapshots::store::{CreateRequest, Entry, Store};
use koompi_testutil::{require_root, write, LoopBtrfs};

fn open(fx: &LoopBtrfs) -> Store {
    Store::open(SnapperConfig::from_file(&fx.config_file).unwrap()).unwrap()
}

fn version(fx: &LoopBtrfs) -> String {
    fs::read_to_string(fx.root.join("etc/version")).unwrap()
}

/// A KOOMPI filesystem whose snapshot "good" has `etc/version` = good, while the running
/// root has moved on to "current". Returns the fixture, its store and good's number.
fn good_then_current() -> (LoopBtrfs, Store, u32) {
    let fx = LoopBtrfs::koompi();
    write(&fx.root.join("etc/version"), "good");
    let store = open(&fx);
    let good = store
        .create(&CreateRequest::default().with_name("good").unwrap())
        .unwrap()
        .info
        .num;
    write(&fx.root.join("etc/version"), "current");
    (fx, store, good)
}

fn top_names(fx: &LoopBtrfs) -> Vec<String> {
    let mut v: Vec<String> = fs::read_dir(&fx.top)
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

fn case(step: Step, control: Control) {
    let fx = LoopBtrfs::koompi();
    write(&fx.root.join("etc/version"), "good");
    write(&fx.root.join("var/lib/pacman/db.lck"), "");
    let store = open(&fx);
    let good = store
        .create(&CreateRequest::default().with_name("good").unwrap())
        .unwrap()
        .info
        .num;
    write(&fx.root.join("etc/version"), "current");
    let other = store
        .create(&CreateRequest::default().with_name("other").unwrap())
        .unwrap()
        .info
        .num;

    let mut hook = |s: Step| {
        if s == step {
            control
        } else {
            Control::Continue
        }
    };
    let err = rollback::rollback_with(&store, good, &mut hook).unwrap_err();
    let label = format!("{step:?}/{control:?}");
    assert!(
        err.to_string().contains("rollback failed"),
        "{label}: {err}"
    );

    // A "reboot": the root is mounted again by name, as rootflags=subvol=@ does.
    fx.remount_root();
    let after_exchange = Step::ALL.iter().position(|s| *s == step)
        > Step::ALL.iter().position(|s| *s == Step::Exchange);
    let expected = if after_exchange { "good" } else { "current" };
    assert_eq!(
        version(&fx),
        expected,
        "{label}: wrong root after interruption"
    );
    assert!(
        !after_exchange || !fx.root.join("var/lib/pacman/db.lck").exists(),
        "{label}"
    );

    // No snapshot lost: both originals still read fine, with their content.
    let store = open(&fx);
    for (num, v) in [(good, "good"), (other, "current")] {
        let s = store
            .get(num)
            .unwrap_or_else(|e| panic!("{label}: {num}: {e}"));
        assert_eq!(
            fs::read_to_string(s.path.join("etc/version")).unwrap(),
            v,
            "{label}"
        );
    }

    // The next rollback finishes or undoes the interrupted one, then does its own work.
    let report = rollback::rollback(&store, good).unwrap_or_else(|e| panic!("{label}: {e}"));
    let left_something = !matches!(
        (step, control),
        (Step::Reserve, _) | (Step::CopyTarget, _) | (_, Control::Fail)
    ) || after_exchange;
    assert_eq!(
        !report.recovered.is_empty(),
        left_something,
        "{label}: recovered {:?}",
        report.recovered
    );
    fx.remount_root();
    assert_eq!(version(&fx), "good", "{label}");
    let store = open(&fx);
    let entries = store.entries().unwrap();
    assert!(
        entries.iter().all(|e| matches!(e, Entry::Ok(_))),
        "{label}: broken entries {entries:?}"
    );
    // The state that was running before the first rollback survives as a snapshot.
    let kept_current = store.snapshots().unwrap().iter().any(|s| {
        s.info.num != other
            && s.info.is_important()
            && fs::read_to_string(s.path.join("etc/version"))
                .ok()
                .as_deref()
                == Some("current")
    });
    assert!(kept_current, "{label}: the pre-rollback state was lost");
    assert_eq!(
        top_names(&fx),
        ["@", "@home", "@snapshots", "@var_log"],
        "{label}"
    );
    for e in fs::read_dir(store.dir()).unwrap().flatten() {
        assert!(
            !e.path().join(rollback::JOURNAL_NAME).exists(),
            "{label}: journal left in {}",
            e.path().display()
        );
    }
}

#[test]
fn rollback_interrupted_by_an_error_at_every_step() {
    if !require_root("rollback_interrupted_by_an_error_at_every_step") {
        return;
    }
    for step in Step::ALL {
        case(step, Control::Fail);
    }
}

#[test]
fn rollback_interrupted_by_power_loss_at_every_step() {
    if !require_root("rollback_interrupted_by_power_loss_at_every_step") {
        return;
    }
    for step in Step::ALL {
        case(step, Control::Crash);
    }
}

#[test]
fn rollback_of_a_running_root_keeps_writes_made_before_reboot() {
    if !require_root("rollback_of_a_running_root_keeps_writes_made_before_reboot") {
        return;
    }
    let (fx, store, good) = good_then_current();
    let report = rollback::rollback(&store, good).unwrap();
    // The system keeps running on the old root, which is now the backup snapshot: what it
    // writes before the reboot is kept there, and the backup is the running snapshot.
    write(&fx.root.join("home-work.txt"), "saved before reboot");
    let backup = store.get(report.backup).unwrap();
    assert!(
        backup.active,
        "the running root is the backup snapshot until reboot"
    );
    assert_eq!(
        fs::read_to_string(backup.path.join("home-work.txt")).unwrap(),
        "saved before reboot"
    );
    // It is protected while it runs.
    assert!(store.delete(report.backup, None).is_err());
    fx.remount_root();
    assert_eq!(version(&fx), "good");
}

/// What a rollback killed outright leaves (no destructor runs): a mount of the top level
/// under /run/koompi and a torn journal. The next rollback (or recovery) removes both;
/// a torn journal alone in a directory is remains that cleanup removes.
#[test]
fn a_killed_rollback_leaves_nothing_after_the_next_run() {
    if !require_root("a_killed_rollback_leaves_nothing_after_the_next_run") {
        return;
    }
    let fx = LoopBtrfs::koompi();
    let store = open(&fx);
    store.create(&CreateRequest::default()).unwrap();
    // A dead process's mount: the pid of a child that has exited.
    let mut child = std::process::Command::new("true").spawn().unwrap();
    let dead = child.id();
    child.wait().unwrap();
    let base = std::path::Path::new("/run/koompi");
    let stale = base.join(format!("top-{dead}-1"));
    fs::create_dir_all(&stale).unwrap();
    koompi_testutil::sh("mount", &["-t", "tmpfs", "none", stale.to_str().unwrap()]);
    // A torn journal in the snapshot's directory.
    let torn = store.info_dir(1).join("koompi-rollback.json.tmp");
    fs::write(&torn, "{\"target\":").unwrap();
    rollback::recover(&store).unwrap();
    assert!(!stale.exists(), "the stale mount point is still there");
    let mounts = fs::read_to_string("/proc/self/mounts").unwrap();
    assert!(!mounts.contains(stale.to_str().unwrap()), "{mounts}");
    assert!(!torn.exists(), "the torn journal is still there");
    // The store lists no broken entry.
    assert!(store
        .entries()
        .unwrap()
        .iter()
        .all(|e| matches!(e, Entry::Ok(_))));
}

/// Fills the filesystem mounted at `dir`: data with one large file, then metadata with
/// small files until the filesystem refuses more (bounded, in case it never does).
fn fill(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let big = dir.join("fill");
    let _ = std::process::Command::new("dd")
        .args(["if=/dev/zero", "bs=1M", "status=none"])
        .arg(format!("of={}", big.display()))
        .status();
    let small = dir.join("fill.d");
    let mut made = vec![big];
    if fs::create_dir(&small).is_ok() {
        made.push(small.clone());
        for i in 0..200_000 {
            if fs::write(small.join(i.to_string()), [b'x'; 2000]).is_err() {
                break;
            }
        }
    }
    koompi_testutil::sh("btrfs", &["filesystem", "sync", dir.to_str().unwrap()]);
    made
}

/// A rollback on a full disk: it may fail (with the cause said once) or succeed, but it
/// leaves no mount, no temporary journal and no half-made subvolume that the next run
/// would not clean up; once there is space, the next rollback finishes the job.
#[test]
fn a_full_disk_rollback_leaves_nothing_the_next_run_does_not_heal() {
    if !require_root("a_full_disk_rollback_leaves_nothing_the_next_run_does_not_heal") {
        return;
    }
    let (fx, store, good) = good_then_current();
    // The fill lives in @home, so a rollback of @ neither keeps nor drops it.
    let home = fx.top.join("@home");
    let filled = fill(&home);
    let first = rollback::rollback(&store, good);
    match &first {
        Ok(_) => eprintln!("full disk: the rollback succeeded"),
        Err(e) => {
            let msg = format!("{e:#}");
            eprintln!("full disk: {msg}");
            assert!(msg.matches("os error 28").count() <= 1, "said twice: {msg}");
            assert!(!msg.contains('\n'), "more than one line: {msg}");
        }
    }
    // Nothing of this rollback stays mounted (the other tests of this binary run at the same
    // time in the same process, so only this fixture's device counts), and no journal is
    // half written.
    let mounts = fs::read_to_string("/proc/self/mounts").unwrap();
    let ours = format!("{} /run/koompi/top-{}-", fx.device, std::process::id());
    assert!(!mounts.lines().any(|l| l.starts_with(&ours)), "{mounts}");
    let torn = koompi_testutil::sh(
        "find",
        &[
            store.dir().to_str().unwrap(),
            "-maxdepth",
            "2",
            "-name",
            "*.tmp*",
        ],
    );
    assert!(torn.trim().is_empty(), "temporary files left: {torn}");
    // The root is whole: the old or the restored content, never neither.
    fx.remount_root();
    let v = version(&fx);
    assert!(v == "good" || v == "current", "{v}");
    assert_eq!(
        v == "good",
        first.is_ok(),
        "the root does not match the result"
    );

    // Space again: the next rollback finishes or redoes the job and leaves a clean store.
    for f in filled {
        if f.is_dir() {
            fs::remove_dir_all(&f).unwrap();
        } else {
            fs::remove_file(&f).unwrap();
        }
    }
    koompi_testutil::sh("btrfs", &["filesystem", "sync", home.to_str().unwrap()]);
    let store = open(&fx);
    rollback::rollback(&store, good).unwrap();
    fx.remount_root();
    assert_eq!(version(&fx), "good");
    let store = open(&fx);
    assert!(store
        .entries()
        .unwrap()
        .iter()
        .all(|e| matches!(e, Entry::Ok(_))));
    assert_eq!(top_names(&fx), ["@", "@home", "@snapshots", "@var_log"]);
    for e in fs::read_dir(store.dir()).unwrap().flatten() {
        assert!(!e.path().join(rollback::JOURNAL_NAME).exists());
    }
}
