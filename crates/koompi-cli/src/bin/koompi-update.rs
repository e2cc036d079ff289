//! `koompi-update`: the safe system upgrade (`koompi upgrade`).

fn main() -> std::process::ExitCode {
    koompi_cli::main_with_code::<koompi_cli::package::UpdateCli>(
        "koompi-update",
        koompi_cli::package::update_main,
    )
}
