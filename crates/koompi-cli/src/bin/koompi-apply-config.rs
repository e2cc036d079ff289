//! `koompi-apply-config`: put a KOOMPI edition's configs into a home, keeping every change.

fn main() -> std::process::ExitCode {
    koompi_cli::main_wrapper::<koompi_cli::apply_config::Cli>(
        "koompi-apply-config",
        koompi_cli::apply_config::main,
    )
}
