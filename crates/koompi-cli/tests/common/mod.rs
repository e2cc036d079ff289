//! Helpers shared by the koompi-snapshot integration tests: run the binary against a
//! fixture's config file and read its JSON.
#![allow(clippy::unwrap_used, dead_code)]

use assert_cmd::Command;
use koompi_testutil::LoopBtrfs;
use serde_json::Value;

/// `koompi-snapshot --config-file FIXTURE`.
pub fn ks(fx: &LoopBtrfs) -> Command {
    let mut c = Command::cargo_bin("koompi-snapshot").unwrap();
    c.arg("--config-file").arg(&fx.config_file);
    c
}

/// Runs koompi-snapshot with --json and parses stdout; the command must succeed.
pub fn ks_json(fx: &LoopBtrfs, args: &[&str]) -> Value {
    let out = ks(fx).arg("--json").args(args).output().unwrap();
    assert!(
        out.status.success(),
        "koompi-snapshot {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

/// Runs koompi-snapshot expecting failure; returns stderr, checked to be one line.
pub fn ks_fail(fx: &LoopBtrfs, args: &[&str]) -> String {
    let out = ks(fx).args(args).output().unwrap();
    assert!(!out.status.success(), "{args:?} should fail");
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(
        err.trim_end().lines().count(),
        1,
        "one-line error expected: {err}"
    );
    assert!(err.starts_with("koompi-snapshot: error: "), "{err}");
    err
}

/// The snapshot numbers of a `list --json` answer, in order.
pub fn numbers(list: &Value) -> Vec<u64> {
    list.as_array()
        .unwrap()
        .iter()
        .map(|s| s["number"].as_u64().unwrap())
        .collect()
}
