//! `koompi-snapshot`: manage KOOMPI OS system snapshots.

fn main() -> std::process::ExitCode {
    koompi_cli::main_wrapper::<koompi_cli::snapshot::Cli>(
        "koompi-snapshot",
        koompi_cli::snapshot::main,
    )
}
