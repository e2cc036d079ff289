//! Khmer input (issue 13): fcitx5 started by a user who never configured it offers English
//! first, then the Khmer keyboard layout and m17n's Khmer method, because of the profile
//! koompi-configs installs as /etc/xdg/fcitx5/profile (`configs/fcitx5/profile`).
//!
//! The test lays that file out as the package installs it, under a temporary directory
//! that `XDG_CONFIG_DIRS` points at, with `HOME` and `XDG_CONFIG_HOME` an empty temporary
//! directory, and runs `data/khmer/fcitx5-probe.sh` (the probe the VM rig can run in a
//! guest): a private session bus, Xvfb, fcitx5, and fcitx5's own answers over D-Bus. Each
//! run is bounded; the probe's process group is killed at the end whatever happened, and
//! a process it left behind fails the test. The checks can fail: without the system
//! profile fcitx5 lists no Khmer method, and a method m17n-db does not have is reported as
//! not available.

#![allow(clippy::unwrap_used)]

use std::fs;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use koompi_testutil::prereq::{self, DBUS_SESSION_CONF, FCITX5_M17N, M17N_KHMER, XKB_KHMER};

/// What the probe needs on the host, as `prereq::NEEDS` names them.
const NEEDS: [&str; 8] = [
    "fcitx5",
    "Xvfb",
    "dbus-run-session",
    "dbus-send",
    FCITX5_M17N,
    M17N_KHMER,
    XKB_KHMER,
    DBUS_SESSION_CONF,
];

/// The input methods of KOOMPI's profile, in its order.
const KOOMPI_IMS: [&str; 3] = ["keyboard-us", "keyboard-kh", "m17n_km_yannis"];

/// How long one run of the probe may take (it waits up to 30 s for Xvfb and 30 s for
/// fcitx5 itself).
const PROBE_LIMIT: Duration = Duration::from_secs(120);

fn crate_dir() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn repo() -> PathBuf {
    crate_dir().join("../..")
}

fn probe_script() -> PathBuf {
    crate_dir().join("data/khmer/fcitx5-probe.sh")
}

/// A probe's result.
struct Run {
    code: Option<i32>,
    stdout: String,
    stderr: String,
    /// The `XDG_CONFIG_DIRS` it ran with.
    config_dirs: PathBuf,
}

impl Run {
    fn has(&self, line: &str) -> bool {
        self.stdout.lines().any(|l| l == line)
    }

    /// The value of the `KEY: value` line.
    fn value(&self, key: &str) -> Option<&str> {
        self.stdout
            .lines()
            .find_map(|l| l.strip_prefix(key)?.strip_prefix(": "))
    }

    /// Fails the test unless the probe printed `line`.
    fn expect(&self, line: &str) {
        assert!(self.has(line), "the probe did not print {line:?}\n{self}");
    }
}

impl std::fmt::Display for Run {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "--- probe (XDG_CONFIG_DIRS={}, exit {}) stdout:\n{}--- stderr:\n{}---",
            self.config_dirs.display(),
            self.code
                .map_or_else(|| "by a signal".to_string(), |c| c.to_string()),
            self.stdout,
            self.stderr
        )
    }
}

/// Kills a process group when dropped, so nothing the probe started outlives the test,
/// also when an assertion fails halfway.
struct Group(i32);

impl Drop for Group {
    fn drop(&mut self) {
        if let Some(pid) = rustix::process::Pid::from_raw(self.0) {
            let _ = rustix::process::kill_process_group(pid, rustix::process::Signal::KILL);
        }
    }
}

/// The processes of process group `pgid` that are still running (not zombies), as
/// `pid command` strings, read from /proc.
fn running_in_group(pgid: i32) -> Vec<String> {
    let mut found = Vec::new();
    let Ok(dir) = fs::read_dir("/proc") else {
        return found;
    };
    for entry in dir.flatten() {
        let Ok(stat) = fs::read_to_string(entry.path().join("stat")) else {
            continue;
        };
        // pid (comm) state ppid pgrp ...; comm may contain spaces and parentheses.
        let Some((head, rest)) = stat.rsplit_once(") ") else {
            continue;
        };
        let fields: Vec<&str> = rest.split_whitespace().collect();
        let (Some(state), Some(pgrp)) = (fields.first(), fields.get(2)) else {
            continue;
        };
        if *state != "Z" && pgrp.parse::<i32>().ok() == Some(pgid) {
            found.push(head.replacen(" (", " ", 1));
        }
    }
    found
}

/// Runs the probe with `XDG_CONFIG_DIRS=config_dirs`, HOME and XDG_CONFIG_HOME an empty
/// temporary directory, and `args` (none: the probe's own default expectation).
fn probe(config_dirs: &Path, args: &[&str]) -> Run {
    let tmp = tempfile::Builder::new()
        .prefix("koompi-fcitx5-")
        .tempdir()
        .unwrap();
    let home = tmp.path().join("home");
    let scratch = tmp.path().join("tmp");
    fs::create_dir(&home).unwrap();
    fs::create_dir(&scratch).unwrap();
    let out = tmp.path().join("stdout");
    let err = tmp.path().join("stderr");
    // Output into files, not pipes: a process left behind holding a pipe open would keep a
    // reader waiting for its end.
    let mut child = Command::new("sh")
        .arg(probe_script())
        .args(args)
        .env("HOME", &home)
        .env("XDG_CONFIG_HOME", &home)
        .env("XDG_CONFIG_DIRS", config_dirs)
        // fcitx5 5.1 and later read their built-in /etc/xdg/fcitx5 after XDG_CONFIG_DIRS
        // (standardpaths_p_unix.cpp): on a host with koompi-configs that is the installed
        // profile, not the one under test. This leaves it out (5.0 has no such directory).
        .env("SKIP_FCITX_PATH", "1")
        .env("TMPDIR", &scratch)
        .env("FCITX5_PROBE_TIMEOUT", "30")
        .stdin(Stdio::null())
        .stdout(fs::File::create(&out).unwrap())
        .stderr(fs::File::create(&err).unwrap())
        .process_group(0)
        .spawn()
        .unwrap();
    let pgid = i32::try_from(child.id()).unwrap();
    let group = Group(pgid);
    let started = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break Some(status);
        }
        if started.elapsed() > PROBE_LIMIT {
            break None;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let read = |p: &Path| fs::read_to_string(p).unwrap_or_default();
    let mut run = Run {
        code: status.and_then(|s| s.code()),
        stdout: read(&out),
        stderr: read(&err),
        config_dirs: config_dirs.to_path_buf(),
    };
    if status.is_none() {
        drop(group);
        let _ = child.wait();
        run.stdout = read(&out);
        panic!(
            "the probe did not finish within {} s; killed\n{run}",
            PROBE_LIMIT.as_secs()
        );
    }
    // The probe stops what it started before it exits; give the last ones a moment.
    let mut left = running_in_group(pgid);
    let waited = Instant::now();
    while !left.is_empty() && waited.elapsed() < Duration::from_secs(5) {
        std::thread::sleep(Duration::from_millis(100));
        left = running_in_group(pgid);
    }
    drop(group);
    assert!(
        left.is_empty(),
        "the probe left processes running (killed now): {left:?}\n{run}"
    );
    let leftovers: Vec<PathBuf> = fs::read_dir(&home)
        .unwrap()
        .chain(fs::read_dir(&scratch).unwrap())
        .map(|e| e.unwrap().path())
        .collect();
    assert!(
        leftovers.is_empty(),
        "the probe wrote into the caller's HOME or left its temporary directory: {leftovers:?}\n{run}"
    );
    run.stdout = read(&out);
    run
}

/// A root laid out as koompi-configs installs the profile: `<root>/etc/xdg/fcitx5/profile`,
/// the same bytes as `configs/fcitx5/profile`. The PKGBUILD must install it there.
fn installed_layout() -> (tempfile::TempDir, PathBuf) {
    let pkgbuild = fs::read_to_string(repo().join("packaging/koompi-configs/PKGBUILD")).unwrap();
    assert!(
        pkgbuild.contains("fcitx5/profile \"$pkgdir/etc/xdg/fcitx5/profile\""),
        "packaging/koompi-configs/PKGBUILD no longer installs configs/fcitx5/profile as \
         /etc/xdg/fcitx5/profile; this test lays the file out as it did"
    );
    let root = tempfile::Builder::new()
        .prefix("koompi-fcitx5-root-")
        .tempdir()
        .unwrap();
    let dir = root.path().join("etc/xdg/fcitx5");
    fs::create_dir_all(&dir).unwrap();
    fs::copy(repo().join("configs/fcitx5/profile"), dir.join("profile")).unwrap();
    let xdg = root.path().join("etc/xdg");
    (root, xdg)
}

fn ready() -> bool {
    prereq::require("fcitx5_khmer", &NEEDS)
}

#[test]
fn a_new_user_gets_english_then_khmer_from_the_system_profile() {
    if !ready() {
        return;
    }
    let (_root, xdg) = installed_layout();
    let run = probe(&xdg, &[]);
    assert_eq!(
        run.value("system profile"),
        Some(xdg.join("fcitx5/profile").to_str().unwrap()),
        "the probe did not find the installed profile\n{run}"
    );
    run.expect(&format!("expected: {}", KOOMPI_IMS.join(" ")));
    assert_eq!(run.code, Some(0), "the probe failed\n{run}");
    run.expect(&format!("group order: {}", KOOMPI_IMS.join(" ")));
    run.expect("first keyboard-us: yes");
    for im in KOOMPI_IMS {
        run.expect(&format!("listed {im}: yes"));
    }
    // fcitx5's keyboard addon takes the layout's language from xkeyboard-config.
    let kh = run.value("available keyboard-kh").unwrap_or_default();
    assert!(
        kh.starts_with("yes (") && kh.ends_with("language km)"),
        "the kh layout is not available as a Khmer keyboard: {kh:?}\n{run}"
    );
    // fcitx5-m17n names what it loads from m17n-db "<name> (M17N)".
    let m17n = run.value("available m17n_km_yannis").unwrap_or_default();
    assert!(
        m17n.starts_with("yes (") && m17n.contains("(M17N)") && m17n.ends_with("language km)"),
        "m17n's Khmer method is not loaded from m17n-db: {m17n:?}\n{run}"
    );
    run.expect("fcitx5-probe: ok");
    eprintln!("{}", run.stdout.trim_end());
}

#[test]
fn without_the_system_profile_no_khmer_method_is_listed() {
    if !ready() {
        return;
    }
    let empty = tempfile::tempdir().unwrap();
    let run = probe(empty.path(), &[]);
    run.expect("system profile: none");
    assert_eq!(
        run.code,
        Some(1),
        "the probe should report a failed check\n{run}"
    );
    run.expect("listed keyboard-kh: no");
    run.expect("listed m17n_km_yannis: no");
    // Loaded all the same: what was missing is the profile, not the input methods.
    let m17n = run.value("available m17n_km_yannis").unwrap_or_default();
    assert!(m17n.starts_with("yes ("), "{m17n:?}\n{run}");
    run.expect("fcitx5-probe: FAILED");
    eprintln!("{}", run.stdout.trim_end());
}

#[test]
fn a_method_that_m17n_db_lacks_is_not_available() {
    if !ready() {
        return;
    }
    let (_root, xdg) = installed_layout();
    let run = probe(&xdg, &["keyboard-us", "keyboard-kh", "m17n_km_nosuch"]);
    assert_eq!(
        run.code,
        Some(1),
        "the probe should report a failed check\n{run}"
    );
    run.expect("group order: keyboard-us keyboard-kh m17n_km_yannis");
    run.expect("listed m17n_km_nosuch: no");
    run.expect("available m17n_km_nosuch: no");
    run.expect("fcitx5-probe: FAILED");
    eprintln!("{}", run.stdout.trim_end());
}
