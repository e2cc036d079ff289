//! `cargo xtask test`: every test the project has, as one command.
//!
//! Runs `cargo test --workspace`. As root it asks for the privileged tests (loop devices,
//! mounts, the real snapper) with `KOOMPI_PRIVILEGED_TESTS=1`, so that any of them that
//! cannot run fails instead of skipping. Without root it says which tests will be skipped.

use std::process::Command;

use anyhow::{bail, Context, Result};

/// Runs the test suite from the workspace root; extra arguments go to `cargo test`.
pub fn run(root: &std::path::Path, extra: &[String]) -> Result<()> {
    // SAFETY: geteuid has no preconditions.
    let is_root = unsafe { geteuid() } == 0;
    let mut cmd = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
    cmd.current_dir(root)
        .args(["test", "--workspace"])
        .args(extra);
    if is_root {
        cmd.env("KOOMPI_PRIVILEGED_TESTS", "1");
    } else if std::env::var_os("KOOMPI_PRIVILEGED_TESTS").is_none() {
        eprintln!(
            "xtask test: not root: the tests on real Btrfs loop devices will be skipped \
             (run `sudo -E cargo xtask test` for all of them)"
        );
    }
    let status = cmd.status().context("cannot run cargo test")?;
    if !status.success() {
        bail!("tests failed ({status})");
    }
    Ok(())
}

extern "C" {
    fn geteuid() -> u32;
}
