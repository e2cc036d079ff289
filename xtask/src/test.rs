//! `cargo xtask test`: every test the project has, as one command.
//!
//! 1. `cargo test --workspace`: unit and property tests, and (as root, with
//!    `KOOMPI_PRIVILEGED_TESTS=1`) the tests on real Btrfs loop devices;
//! 2. the ISO profile lint;
//! 3. the packaging test (makepkg, repo-add, pacman into a throwaway root), as root;
//! 4. the VM scenarios on BIOS and UEFI (one QEMU guest at a time unless `--vm-jobs`).
//!
//! Without root the privileged parts are skipped with a message; with
//! `KOOMPI_PRIVILEGED_TESTS=1` a part that cannot run fails instead.

use std::path::Path;
use std::process::{Child, Command};

use anyhow::{bail, Context, Result};

/// The VM scenarios `test` runs, on each firmware.
const SCENARIOS: [&str; 5] = [
    "boot",
    "live-session",
    "rollback-manual",
    "watchdog-panic",
    "watchdog-hang",
];
const FIRMWARES: [&str; 2] = ["bios", "uefi"];
/// Scenarios `test` runs on BIOS only: what they prove does not depend on the firmware
/// (boot counting and fallback are proven on both by the watchdog scenarios), and one run
/// costs about ten minutes. `cargo xtask vm-test upgrade-transactional --firmware uefi`
/// runs the other.
const BIOS_ONLY: [&str; 1] = ["upgrade-transactional"];

/// Options of `cargo xtask test`.
#[derive(Debug, clap::Args)]
pub struct Options {
    /// Skip the VM scenarios (they take about half an hour under software emulation).
    #[arg(long)]
    pub no_vm: bool,
    /// How many VM guests run at once (2 halves the time on 2 cores, but see docs/vm-rig.md).
    #[arg(long, default_value_t = 1)]
    pub vm_jobs: usize,
    /// Arguments passed on to `cargo test` (e.g. a test name filter).
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    pub args: Vec<String>,
}

/// Runs everything from the workspace root.
pub fn run(root: &Path, opts: &Options) -> Result<()> {
    let required = std::env::var("KOOMPI_PRIVILEGED_TESTS").is_ok_and(|v| v == "1");
    let root_user = crate::vm::host::is_root()?;
    let mut cmd = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
    cmd.current_dir(root)
        .args(["test", "--workspace"])
        .args(&opts.args);
    if root_user {
        cmd.env("KOOMPI_PRIVILEGED_TESTS", "1");
    } else if !required {
        eprintln!(
            "xtask test: not root: the tests on real Btrfs loop devices, the packaging test and \
             the VM scenarios will be skipped (run `sudo -E cargo xtask test` for all of them)"
        );
    }
    let status = cmd.status().context("cannot run cargo test")?;
    if !status.success() {
        bail!("cargo test failed ({status})");
    }

    eprintln!("== iso lint");
    crate::iso_lint::run(root)?;

    if !root_user {
        if required {
            bail!("KOOMPI_PRIVILEGED_TESTS=1 but not root: packaging and VM tests cannot run");
        }
        return Ok(());
    }
    eprintln!("== packaging test");
    let st = Command::new("bash")
        .arg(root.join("packaging/test/run-pacman-test.sh"))
        .current_dir(root)
        .status()
        .context("cannot run the packaging test")?;
    if !st.success() {
        bail!("packaging test failed ({st})");
    }
    if opts.no_vm {
        eprintln!("xtask test: --no-vm: VM scenarios skipped");
        return Ok(());
    }
    run_vm(opts.vm_jobs.max(1))
}

/// Builds the images once, then runs every scenario on both firmwares, `jobs` at a time.
fn run_vm(jobs: usize) -> Result<()> {
    let me = std::env::current_exe().context("cannot find the xtask binary")?;
    eprintln!("== VM image");
    let st = Command::new(&me).arg("vm-image").status()?;
    if !st.success() {
        bail!("vm-image failed ({st})");
    }
    let mut queue: Vec<(&str, &str)> = SCENARIOS
        .iter()
        .flat_map(|s| FIRMWARES.iter().map(move |f| (*s, *f)))
        .chain(BIOS_ONLY.iter().map(|s| (*s, "bios")))
        .collect();
    // `pop` takes from the end: the longest scenarios start first, so the lanes end together.
    let mut running: Vec<((&str, &str), Child)> = Vec::new();
    let mut results: Vec<((&str, &str), bool)> = Vec::new();
    while !queue.is_empty() || !running.is_empty() {
        while running.len() < jobs {
            let Some((scenario, fw)) = queue.pop() else {
                break;
            };
            eprintln!("== vm-test {scenario} --firmware {fw}");
            let child = Command::new(&me)
                .args(["vm-test", scenario, "--firmware", fw])
                .spawn()
                .with_context(|| format!("cannot start vm-test {scenario}"))?;
            running.push(((scenario, fw), child));
        }
        // Wait for whichever finishes first.
        let mut done = None;
        while done.is_none() {
            for (i, (_, child)) in running.iter_mut().enumerate() {
                if let Some(st) = child.try_wait()? {
                    done = Some((i, st.success()));
                    break;
                }
            }
            if done.is_none() {
                std::thread::sleep(std::time::Duration::from_millis(500));
            }
        }
        if let Some((i, ok)) = done {
            let (name, _) = running.remove(i);
            eprintln!(
                "== vm-test {} --firmware {}: {}",
                name.0,
                name.1,
                if ok { "passed" } else { "FAILED" }
            );
            results.push((name, ok));
        }
    }
    let failed: Vec<String> = results
        .iter()
        .filter(|(_, ok)| !ok)
        .map(|((s, f), _)| format!("{s}/{f}"))
        .collect();
    println!(
        "vm-tests: {} passed, {} failed",
        results.len() - failed.len(),
        failed.len()
    );
    if !failed.is_empty() {
        bail!("VM scenarios failed: {}", failed.join(", "));
    }
    Ok(())
}
