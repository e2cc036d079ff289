//! `koompi-install`: put KOOMPI OS on a disk.

fn main() -> std::process::ExitCode {
    koompi_cli::main_wrapper("koompi-install", koompi_cli::install::main)
}
