//! `koompi-watchdog`: the boot watchdog of KOOMPI OS.

fn main() -> std::process::ExitCode {
    koompi_cli::main_wrapper::<koompi_cli::watchdog::Cli>(
        "koompi-watchdog",
        koompi_cli::watchdog::main,
    )
}
