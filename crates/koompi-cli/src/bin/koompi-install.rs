//! `koompi-install`: put KOOMPI OS on a disk.

fn main() -> std::process::ExitCode {
    koompi_cli::main_wrapper::<koompi_cli::install::Cli>(
        "koompi-install",
        koompi_cli::install::main,
    )
}
