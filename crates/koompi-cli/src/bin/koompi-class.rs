//! `koompi-class`: the KOOMPI classroom (lessons out, homework back, over the LAN).

fn main() -> std::process::ExitCode {
    koompi_cli::main_wrapper::<koompi_cli::class::Cli>("koompi-class", koompi_cli::class::main)
}
