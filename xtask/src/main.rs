//! Developer tasks for the KOOMPI OS workspace, run as `cargo xtask TASK`.
//!
//! This file only parses the command line and dispatches; each task lives in its own module.

mod bench;
mod test;

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
    /// Run every test: unit, property and (as root) the real-Btrfs tests.
    Test {
        /// Arguments passed on to `cargo test` (e.g. a test name filter).
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<String>,
    },
    /// Time koompi-snapshot against the real snapper on one loop-device Btrfs (needs root).
    BenchSnapshots(bench::Options),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.task {
        Task::Test { args } => bench::workspace_root().and_then(|root| test::run(&root, &args)),
        Task::BenchSnapshots(opts) => bench::run(&opts),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("xtask: error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
