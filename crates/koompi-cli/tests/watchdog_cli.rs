//! `koompi-watchdog` as a person runs it: an ordinary user asking for the status of a
//! root-only ESP is told the truth (permission, and to use sudo), not "missing, run init".
#![allow(clippy::unwrap_used)]

use std::fs;
use std::os::unix::fs::PermissionsExt;

use koompi_testutil::{require_programs, require_root};

#[test]
fn status_as_an_ordinary_user_names_the_permission_problem() {
    if !require_root("status_as_an_ordinary_user_names_the_permission_problem")
        || !require_programs("watchdog_cli", &["setpriv"])
    {
        return;
    }
    let t = tempfile::tempdir().unwrap();
    let dir = t.path();
    fs::set_permissions(dir, fs::Permissions::from_mode(0o755)).unwrap();
    let esp = dir.join("esp");
    let state = dir.join("state");
    fs::create_dir_all(&esp).unwrap();
    fs::create_dir_all(&state).unwrap();
    fs::set_permissions(&state, fs::Permissions::from_mode(0o755)).unwrap();
    let settings = dir.join("watchdog.conf");
    fs::write(
        &settings,
        format!(
            "ESP={}\nSTATE_DIR={}\nSNAPPER_CONFIG_FILE={}\n",
            esp.display(),
            state.display(),
            dir.join("no-such-config").display()
        ),
    )
    .unwrap();
    fs::set_permissions(&settings, fs::Permissions::from_mode(0o644)).unwrap();
    let bin = assert_cmd::cargo::cargo_bin("koompi-watchdog");
    let init = std::process::Command::new(&bin)
        .arg("--settings")
        .arg(&settings)
        .arg("init")
        .output()
        .unwrap();
    assert!(
        init.status.success(),
        "{}",
        String::from_utf8_lossy(&init.stderr)
    );
    // The ESP as it is mounted on KOOMPI: umask=0077, root only.
    fs::set_permissions(&esp, fs::Permissions::from_mode(0o700)).unwrap();
    let out = std::process::Command::new("setpriv")
        .args(["--reuid=65534", "--regid=65534", "--clear-groups", "--"])
        .arg(&bin)
        .arg("--settings")
        .arg(&settings)
        .arg("status")
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        err.contains("permission denied") && err.contains("sudo"),
        "{err}"
    );
    assert!(!err.contains("init"), "it must not say to run init: {err}");
    assert_eq!(err.trim_end().lines().count(), 1, "{err}");
}
