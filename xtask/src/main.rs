//! Developer tasks for the KOOMPI OS workspace, run as `cargo xtask TASK`.
//!
//! This file only parses the command line and dispatches; each task lives in its own module.

mod bench;
mod bench_class;
mod bench_packages;
mod configs;
mod host;
mod iso_lint;
mod test;
mod vm;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// Developer tasks for the KOOMPI OS workspace.
#[derive(Debug, Parser)]
#[command(name = "cargo xtask")]
struct Cli {
    #[command(subcommand)]
    task: Task,
}

#[derive(Debug, Subcommand)]
enum Task {
    /// Run every test: unit, property, real Btrfs, ISO lint, packaging and VM scenarios.
    Test(test::Options),
    /// Check the archiso profile, branding, units and shell scripts statically.
    IsoLint(iso_lint::Options),
    /// Time koompi-snapshot against the real snapper on one loop-device Btrfs (needs root).
    BenchSnapshots(bench::Options),
    /// Time koompi search/list against pacman -Ss/-Q on one generated database (no root).
    BenchPackages(bench_packages::Options),
    /// Time a lesson to N students and their homework back, each laptop a network
    /// namespace with its own Syncthing on shaped links (needs root).
    BenchClass(bench_class::Options),
    /// Build (or reuse) the bootable KOOMPI test disk image (needs root); prints its path.
    VmImage(vm::ImageOptions),
    /// Boot the image in QEMU and run a test scenario over the serial console.
    VmTest(vm::TestOptions),
    /// Boot a throwaway copy of the image with the serial console on this terminal.
    VmRun(vm::RunOptions),
    /// Write the colours of configs/palette.toml into every config (--check: only compare).
    Configs(configs::Options),
    /// Print the host packages the tasks install when missing, one per line.
    HostPackages(host::packages::ListOptions),
}

impl Task {
    /// The task's name when it needs root (loop devices, mounts, host packages).
    fn needs_root(&self) -> Option<&'static str> {
        match self {
            Task::Test(_) => Some("test"),
            Task::BenchSnapshots(_) => Some("bench-snapshots"),
            Task::BenchClass(_) => Some("bench-class"),
            Task::VmImage(_) => Some("vm-image"),
            Task::VmTest(_) => Some("vm-test"),
            Task::VmRun(_) => Some("vm-run"),
            Task::IsoLint(_)
            | Task::BenchPackages(_)
            | Task::HostPackages(_)
            | Task::Configs(_) => None,
        }
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    // As a user, a root task runs again through sudo; as root, the guard gives the files
    // that run made back to the user who asked for it (host::sudo).
    let _give_back = match cli.task.needs_root().map(host::sudo::ensure_root) {
        None => None,
        Some(Ok(host::sudo::Root::Continue(give_back))) => Some(give_back),
        Some(Ok(host::sudo::Root::Done(code))) => return code,
        Some(Err(e)) => {
            eprintln!("xtask: error: {e:#}");
            return ExitCode::FAILURE;
        }
    };
    let result = match cli.task {
        Task::Test(opts) => host::workspace_root().and_then(|root| test::run(&root, &opts)),
        Task::IsoLint(opts) => host::workspace_root().and_then(|root| iso_lint::main(&root, &opts)),
        Task::BenchSnapshots(opts) => bench::run(&opts),
        Task::BenchPackages(opts) => bench_packages::run(&opts),
        Task::BenchClass(opts) => bench_class::run(&opts),
        Task::VmImage(opts) => vm::image(&opts),
        Task::VmTest(opts) => vm::test(&opts),
        Task::VmRun(opts) => vm::run(&opts),
        Task::HostPackages(opts) => host::packages::list(&opts),
        Task::Configs(opts) => host::workspace_root().and_then(|root| configs::run(&root, &opts)),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("xtask: error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
