//! `koompi-install` as a user runs it: the plan of a real (loop) disk with `--dry-run`,
//! which writes nothing, and the one-line refusals of disks that must not be installed
//! on (in use, too small) and of bad answers.
#![allow(clippy::unwrap_used)]

use std::fs;
use std::path::Path;
use std::process::Command as Std;

use assert_cmd::Command;
use koompi_testutil::{require_root, sh, LoopDisk};

/// The first MiB of `disk` is still all zeros (nothing was written).
fn untouched(disk: &LoopDisk) -> bool {
    let mut buf = vec![0u8; 1024 * 1024];
    let mut f = fs::File::open(&disk.device).unwrap();
    std::io::Read::read_exact(&mut f, &mut buf).unwrap();
    buf.iter().all(|b| *b == 0)
}

fn install() -> Command {
    Command::cargo_bin("koompi-install").unwrap()
}

/// Runs koompi-install expecting failure; returns stderr, checked to be one line.
fn refused(args: &[&str]) -> String {
    let out = install().args(args).output().unwrap();
    assert!(!out.status.success(), "{args:?} should fail");
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(
        err.trim_end().lines().count(),
        1,
        "one line expected: {err}"
    );
    assert!(err.starts_with("koompi-install: error: "), "{err}");
    err
}

#[test]
fn bad_answers_are_refused_in_one_line_before_the_disks_are_looked_at() {
    let err = refused(&["--dry-run", "--disk", "sda"]);
    assert!(
        err.contains("`disk`: `sda` is neither a device path"),
        "{err}"
    );
    let err = refused(&["--dry-run", "--disk", "/dev/sda", "--user", "root"]);
    assert!(
        err.contains("`user`: `root` belongs to the system"),
        "{err}"
    );
    let err = refused(&["--dry-run"]);
    assert!(err.contains("`disk`: missing"), "{err}");
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("answers.toml");
    fs::write(&file, "disk = \"/dev/sda\"\nencrypt = \"yes\"\n").unwrap();
    let err = refused(&["--config", file.to_str().unwrap(), "--dry-run"]);
    assert!(err.contains("line 2, `encrypt`: invalid type"), "{err}");
}

#[test]
fn the_plan_of_a_real_disk_is_shown_and_nothing_is_written() {
    if !require_root("the_plan_of_a_real_disk_is_shown_and_nothing_is_written") {
        return;
    }
    let disk = LoopDisk::new(10);
    let pw = tempfile::NamedTempFile::new().unwrap();
    fs::write(pw.path(), "secret-password\n").unwrap();
    let out = install()
        .args([
            "--dry-run",
            "--json",
            "--disk",
            &disk.device,
            "--user",
            "student",
        ])
        .arg("--password-file")
        .arg(pw.path())
        .assert()
        .success();
    let plan: serde_json::Value = serde_json::from_slice(&out.get_output().stdout).unwrap();
    assert_eq!(plan["disk"], disk.device.as_str());
    let steps: Vec<&str> = plan["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["id"].as_str().unwrap())
        .collect();
    assert_eq!(steps.first(), Some(&"wipe"));
    assert!(steps.contains(&"factory-snapshot"), "{steps:?}");
    let text = String::from_utf8_lossy(&out.get_output().stdout).into_owned();
    assert!(!text.contains("secret-password"), "a secret in the plan");
    // In words, with the partitions named as the kernel names them.
    let words = install()
        .args(["--dry-run", "--disk", &disk.device, "--hostname", "lab-07"])
        .assert()
        .success();
    let words = String::from_utf8_lossy(&words.get_output().stdout).into_owned();
    assert!(
        words.starts_with(&format!("Install KOOMPI OS on {}, 10 GiB", disk.device)),
        "{words}"
    );
    assert!(
        words.contains(&format!("{}p3 koompi-root rest", disk.device)),
        "{words}"
    );
    assert!(untouched(&disk), "--dry-run wrote to the disk");
    // Without --yes and without the interactive installer nothing happens either.
    let err = refused(&["--disk", &disk.device]);
    assert!(err.contains("nothing was changed"), "{err}");
    assert!(untouched(&disk));
}

#[test]
fn disks_in_use_and_small_disks_are_refused() {
    if !require_root("disks_in_use_and_small_disks_are_refused") {
        return;
    }
    let small = LoopDisk::new(2);
    let err = refused(&["--dry-run", "--disk", &small.device]);
    assert!(
        err.contains(&format!(
            "{} is too small: 2 GiB; KOOMPI OS needs at least 8 GiB",
            small.device
        )),
        "{err}"
    );
    // A disk with a mounted filesystem is in use.
    let busy = LoopDisk::new(9);
    sh("mkfs.btrfs", &["-q", &busy.device]);
    let mnt = tempfile::tempdir().unwrap();
    sh("mount", &[&busy.device, mnt.path().to_str().unwrap()]);
    let err = refused(&["--dry-run", "--disk", &busy.device]);
    let _ = Std::new("umount").arg(mnt.path()).status();
    assert!(
        err.contains(&format!(
            "{} is in use (mounted at {})",
            busy.device,
            mnt.path().display()
        )),
        "{err}"
    );
    // A name that is not a disk here lists the ones that are.
    let err = refused(&["--dry-run", "--disk", "/dev/koompi-no-such-disk"]);
    assert!(
        err.contains("is not a disk of this machine; the disks here:"),
        "{err}"
    );
    assert!(Path::new(&small.device).exists());
}
