//! Developer tasks for the KOOMPI OS workspace, run as `cargo xtask TASK`.
//!
//! This file only parses the command line and dispatches; each task lives in its own module.

mod bench;

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
    /// Time koompi-snapshot against the real snapper on one loop-device Btrfs (needs root).
    BenchSnapshots(bench::Options),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.task {
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
