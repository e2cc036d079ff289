//! `koompi`: install, remove, search and upgrade software on KOOMPI OS.

fn main() -> std::process::ExitCode {
    koompi_cli::main_with_code::<koompi_cli::package::Cli>("koompi", koompi_cli::package::main)
}
