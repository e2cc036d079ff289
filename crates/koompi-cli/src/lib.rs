//! The KOOMPI OS command-line tools. Each binary in `src/bin` is a few lines that call into
//! a module here; the modules parse arguments, call the libraries and print.

pub mod package;
pub mod snapshot;
pub mod watchdog;

/// Runs a command's body and turns its outcome into the process exit code, printing an
/// error as one line on stderr: `PROG: error: what went wrong: why`.
pub fn main_wrapper(
    prog: &str,
    body: impl FnOnce() -> anyhow::Result<()>,
) -> std::process::ExitCode {
    match body() {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("{prog}: error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

/// Like [`main_wrapper`] for commands that pass on another program's exit code.
pub fn main_with_code(
    prog: &str,
    body: impl FnOnce() -> anyhow::Result<i32>,
) -> std::process::ExitCode {
    match body() {
        Ok(code) => std::process::ExitCode::from(u8::try_from(code).unwrap_or(1)),
        Err(e) => {
            eprintln!("{prog}: error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
