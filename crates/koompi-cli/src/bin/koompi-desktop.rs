//! `koompi-desktop`: install a desktop with one command.

fn main() -> std::process::ExitCode {
    koompi_cli::main_with_code::<koompi_cli::desktop::Cli>(
        "koompi-desktop",
        koompi_cli::desktop::main,
    )
}
