//! `cargo xtask test`: every test the project has, as one command.
//!
//! 1. `cargo test --workspace`: unit and property tests, and (as root, with
//!    `KOOMPI_PRIVILEGED_TESTS=1`) the tests on real Btrfs loop devices;
//! 2. the ISO profile lint;
//! 3. the packaging test (makepkg, repo-add, pacman into a throwaway root), as root;
//! 4. the VM scenarios of a tier (`--vm ci`, the default; `--vm all`; `--vm none` skips
//!    them), one QEMU guest at a time, run in this process by [`crate::vm::run_tier`].
//!
//! At the end it prints one table of the VM runs (scenario, firmware, result, seconds,
//! boots) and a total line with the time of the VM part and of the whole command. Without
//! root the privileged parts are skipped with a message; with `KOOMPI_PRIVILEGED_TESTS=1` a
//! part that cannot run fails instead.

use std::path::Path;
use std::process::Command;
use std::time::Instant;

use anyhow::{bail, Context, Result};

use crate::host::packages::{self, Purpose};
use crate::vm::{min_sec, total_line, Runs, Tier, VmPart};

/// `--vm`: which VM runs `cargo xtask test` makes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum VmChoice {
    /// The ci tier: a scenario on both firmwares only where what it proves depends on the
    /// firmware (about 40 minutes under software emulation).
    Ci,
    /// Every scenario on BIOS and UEFI (about 65 minutes).
    All,
    /// No VM scenarios.
    None,
}

/// Options of `cargo xtask test`.
#[derive(Debug, clap::Args)]
pub struct Options {
    /// Which VM scenarios run: `ci` (what CI runs), `all` (every scenario on both
    /// firmwares) or `none`.
    #[arg(long, value_enum, value_name = "TIER", default_value = "ci")]
    pub vm: VmChoice,
    /// Skip the VM scenarios (the same as `--vm none`).
    #[arg(long, conflicts_with = "vm")]
    pub no_vm: bool,
    /// Arguments passed on to `cargo test` (e.g. a test name filter).
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    pub args: Vec<String>,
}

impl Options {
    /// The tier of VM runs, or `None` when they are skipped.
    fn tier(&self) -> Option<Tier> {
        match (self.no_vm, self.vm) {
            (true, _) | (false, VmChoice::None) => None,
            (false, VmChoice::Ci) => Some(Tier::Ci),
            (false, VmChoice::All) => Some(Tier::All),
        }
    }
}

/// What the VM part did, for the summary.
#[derive(Debug)]
struct VmSummary {
    part: VmPart,
    runs: Option<Runs>,
}

/// Runs everything from the workspace root; prints the summary however it ends.
pub fn run(root: &Path, opts: &Options) -> Result<()> {
    let started = Instant::now();
    let mut vm = VmSummary {
        part: VmPart::Skipped("not reached"),
        runs: None,
    };
    let result = run_steps(root, opts, &mut vm);
    if let Some(runs) = &vm.runs {
        print!("{}", crate::vm::table(runs));
    }
    println!(
        "{}",
        total_line(
            vm.part,
            Some(("cargo xtask test", started.elapsed().as_secs()))
        )
    );
    result
}

/// One step's end, with its time, on stderr.
fn step_done(name: &str, started: Instant) {
    eprintln!(
        "== {name}: done in {}",
        min_sec(started.elapsed().as_secs())
    );
}

fn run_steps(root: &Path, opts: &Options, vm: &mut VmSummary) -> Result<()> {
    let required = std::env::var("KOOMPI_PRIVILEGED_TESTS").is_ok_and(|v| v == "1");
    let root_user = crate::host::is_root();
    if root_user {
        // The VM part checks (and installs) its own packages when it starts.
        packages::ensure("cargo xtask test", &[Purpose::Tests])?;
    }
    let mut cmd = crate::host::cargo();
    cmd.current_dir(root)
        .args(["test", "--workspace"])
        .args(&opts.args);
    if root_user {
        cmd.env("KOOMPI_PRIVILEGED_TESTS", "1");
    } else if !required {
        eprintln!(
            "xtask test: not root: the tests on real Btrfs loop devices, the packaging test and \
             the VM scenarios will be skipped (run `cargo xtask test` as root, or as a user with sudo, for all of them)"
        );
    }
    let step = Instant::now();
    let status = cmd.status().context("cannot run cargo test")?;
    if !status.success() {
        bail!("cargo test failed ({status})");
    }
    step_done("cargo test", step);

    eprintln!("== iso lint");
    let step = Instant::now();
    crate::iso_lint::run(root)?;
    step_done("iso lint", step);

    if !root_user {
        vm.part = VmPart::Skipped("not root");
        if required {
            bail!("KOOMPI_PRIVILEGED_TESTS=1 but not root: packaging and VM tests cannot run");
        }
        return Ok(());
    }
    eprintln!("== packaging test");
    let step = Instant::now();
    let st = Command::new("bash")
        .arg(root.join("packaging/test/run-pacman-test.sh"))
        .current_dir(root)
        .status()
        .context("cannot run the packaging test")?;
    if !st.success() {
        bail!("packaging test failed ({st})");
    }
    step_done("packaging test", step);

    let Some(tier) = opts.tier() else {
        vm.part = VmPart::Skipped("--vm none");
        eprintln!("xtask test: --vm none: VM scenarios skipped");
        return Ok(());
    };
    eprintln!("== VM scenarios, {} tier", tier.name());
    let step = Instant::now();
    let runs = crate::vm::run_tier(tier);
    vm.part = VmPart::Ran(step.elapsed().as_secs());
    let runs = vm.runs.insert(runs?);
    runs.verdict()
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;

    #[derive(Debug, Parser)]
    struct Cli {
        #[command(flatten)]
        opts: Options,
    }

    fn parse(args: &[&str]) -> Result<Options, clap::Error> {
        Cli::try_parse_from(std::iter::once("test").chain(args.iter().copied())).map(|c| c.opts)
    }

    #[test]
    fn the_ci_tier_is_the_default() {
        let o = parse(&[]).expect("parses");
        assert_eq!(o.tier(), Some(Tier::Ci));
        assert!(o.args.is_empty());
    }

    #[test]
    fn vm_all_and_none() {
        assert_eq!(
            parse(&["--vm", "all"]).expect("all").tier(),
            Some(Tier::All)
        );
        assert_eq!(parse(&["--vm", "none"]).expect("none").tier(), None);
        assert_eq!(parse(&["--no-vm"]).expect("--no-vm").tier(), None);
        assert!(parse(&["--vm", "some"]).is_err());
        assert!(parse(&["--no-vm", "--vm", "all"]).is_err());
    }

    #[test]
    fn the_rest_goes_to_cargo_test() {
        let o = parse(&["--vm", "none", "rollback", "--", "--nocapture"]).expect("parses");
        assert_eq!(o.tier(), None);
        assert_eq!(o.args, ["rollback", "--", "--nocapture"]);
    }
}
