//! The shipped systemd units pass `systemd-analyze verify` with the binaries installed where
//! the package installs them, and the timers and services fit together.
#![allow(clippy::unwrap_used)]

use std::fs;
use std::path::Path;
use std::process::Command;

fn workspace() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .parent()
        .unwrap()
}

fn have_systemd_analyze() -> bool {
    koompi_testutil::require_programs("units", &["systemd-analyze"])
}

fn copy_dir(from: &Path, to: &Path) {
    fs::create_dir_all(to).unwrap();
    for e in fs::read_dir(from).unwrap().flatten() {
        let t = e.file_type().unwrap();
        let dest = to.join(e.file_name());
        if t.is_dir() {
            copy_dir(&e.path(), &dest);
        } else if t.is_symlink() {
            let _ = std::os::unix::fs::symlink(fs::read_link(e.path()).unwrap(), &dest);
        } else if !dest.exists() {
            fs::copy(e.path(), &dest).unwrap();
        }
    }
}

#[test]
fn units_pass_systemd_analyze_verify() {
    if !have_systemd_analyze() {
        return;
    }
    let root = tempfile::tempdir().unwrap();
    let r = root.path();
    let units = r.join("usr/lib/systemd/system");
    fs::create_dir_all(r.join("usr/bin")).unwrap();
    for bin in ["koompi-snapshot", "koompi-watchdog", "koompi-install"] {
        fs::copy(
            assert_cmd::cargo::cargo_bin(bin),
            r.join("usr/bin").join(bin),
        )
        .unwrap();
    }
    let ours: Vec<_> = fs::read_dir(workspace().join("system/systemd"))
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .collect();
    assert!(ours.len() >= 6, "{ours:?}");
    fs::create_dir_all(&units).unwrap();
    for u in &ours {
        fs::copy(u, units.join(u.file_name().unwrap())).unwrap();
    }
    // The standard targets the units refer to, from the host's systemd.
    for host_dir in ["/usr/lib/systemd/system", "/lib/systemd/system"] {
        if Path::new(host_dir).is_dir() {
            copy_dir(Path::new(host_dir), &units);
            break;
        }
    }
    let names: Vec<String> = ours
        .iter()
        .map(|u| {
            format!(
                "usr/lib/systemd/system/{}",
                u.file_name().unwrap().to_string_lossy()
            )
        })
        .collect();
    let out = Command::new("systemd-analyze")
        .arg(format!("--root={}", r.display()))
        .args(["verify", "--man=no"])
        .args(&names)
        .current_dir(r)
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.status.success() && text.trim().is_empty(),
        "verify: {text}"
    );
}

#[test]
fn every_timer_has_its_service_and_units_call_installed_binaries() {
    let dir = workspace().join("system/systemd");
    for e in fs::read_dir(&dir).unwrap().flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        let text = fs::read_to_string(e.path()).unwrap();
        if let Some(stem) = name.strip_suffix(".timer") {
            assert!(
                dir.join(format!("{stem}.service")).exists(),
                "{name} has no service"
            );
        }
        for line in text.lines().filter(|l| l.starts_with("Exec")) {
            let cmd = line
                .split_once('=')
                .unwrap()
                .1
                .trim_start_matches(['-', '@', '+']);
            let prog = cmd.split_whitespace().next().unwrap();
            assert!(
                prog.starts_with("/usr/bin/koompi-") || prog.starts_with("/usr/bin/"),
                "{name}: {prog} is not where the package installs it"
            );
            assert!(
                !cmd.contains("$("),
                "{name}: systemd does not run a shell: {cmd}"
            );
        }
    }
}

/// `--help` on an 80-column terminal (a pseudo-terminal made by `script`) is wrapped
/// once: no line is wider than 80 columns and no lone word is left inside a paragraph by
/// wrapping hand-broken lines a second time.
#[test]
fn help_is_wrapped_once_on_80_columns() {
    if !koompi_testutil::require_programs("help_is_wrapped_once_on_80_columns", &["script"]) {
        return;
    }
    for bin in [
        "koompi",
        "koompi-snapshot",
        "koompi-watchdog",
        "koompi-update",
    ] {
        let path = assert_cmd::cargo::cargo_bin(bin);
        let inner = format!("stty cols 80 rows 60; NO_COLOR=1 {} --help", path.display());
        let out = Command::new("script")
            .args(["-qec", &inner, "/dev/null"])
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout).replace('\r', "");
        let lines: Vec<&str> = text.lines().collect();
        for (i, line) in lines.iter().enumerate() {
            let t = line.trim();
            assert!(line.chars().count() <= 80, "{bin}: wider than 80:\n{text}");
            // A paragraph may end in one word; a lone word with the paragraph going on
            // below it is what wrapping a hand-broken line leaves.
            let lone_word = !t.is_empty() && !t.contains(' ') && !t.ends_with(':');
            let continues = lines.get(i + 1).is_some_and(|n| !n.trim().is_empty());
            assert!(
                !(lone_word && continues),
                "{bin}: a lone word {t:?} inside a paragraph:\n{text}"
            );
        }
    }
}
