//! The KOOMPI OS command-line tools. Each binary in `src/bin` is a few lines that call into
//! a module here; the modules parse arguments, call the libraries and print.

pub mod apply_config;
pub mod class;
pub mod desktop;
mod desktop_tui;
pub mod generate;
pub mod global;
pub mod install;
mod install_tui;
pub mod package;
pub mod snapshot;
pub mod watchdog;

/// Answers `PROG --generate KIND` (man page, shell completions) from `C`'s command line
/// definition; `None` when that was not asked.
fn generated<C: clap::CommandFactory>(prog: &str) -> Option<std::process::ExitCode> {
    let result = match generate::requested(std::env::args())? {
        generate::Request::Print(kind) => {
            let mut out = std::io::stdout().lock();
            generate::generate(C::command(), &kind, &mut out)
        }
        generate::Request::ManPages(dir) => generate::man_pages(C::command(), &dir),
    };
    Some(match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("{prog}: error: {}", one_line(&e));
            std::process::ExitCode::from(2)
        }
    })
}

/// Runs a command's body and turns its outcome into the process exit code, printing an
/// error as one line on stderr: `PROG: error: what went wrong: why`. `PROG --generate
/// KIND` prints the man page or completions of `C` instead ([`generate`]).
pub fn main_wrapper<C: clap::CommandFactory>(
    prog: &str,
    body: impl FnOnce() -> anyhow::Result<()>,
) -> std::process::ExitCode {
    quiet_broken_pipe();
    if let Some(code) = generated::<C>(prog) {
        return code;
    }
    match body() {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("{prog}: error: {}", one_line(&e));
            std::process::ExitCode::FAILURE
        }
    }
}

/// Like [`main_wrapper`] for commands that pass on another program's exit code.
pub fn main_with_code<C: clap::CommandFactory>(
    prog: &str,
    body: impl FnOnce() -> anyhow::Result<i32>,
) -> std::process::ExitCode {
    quiet_broken_pipe();
    if let Some(code) = generated::<C>(prog) {
        return code;
    }
    match body() {
        Ok(code) => std::process::ExitCode::from(u8::try_from(code).unwrap_or(1)),
        Err(e) => {
            eprintln!("{prog}: error: {}", one_line(&e));
            std::process::ExitCode::FAILURE
        }
    }
}

/// `koompi-class status | head -3`: Rust ignores SIGPIPE, so printing to a closed pipe
/// fails and `println!` panics with a backtrace hint. Like any Unix tool, the command then
/// just ends, quietly, with the status a SIGPIPE death gives (141), decided here in safe
/// code (a panic hook) rather than by restoring the signal's default handler.
fn quiet_broken_pipe() {
    let default = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let payload = info.payload();
        let msg = payload
            .downcast_ref::<String>()
            .map(String::as_str)
            .or_else(|| payload.downcast_ref::<&str>().copied())
            .unwrap_or("");
        if msg.starts_with("failed printing to std") && msg.contains("Broken pipe") {
            std::process::exit(141);
        }
        default(info);
    }));
}

/// An error and its causes as one line, each cause said once: a cause whose text a
/// message before it already contains (a library error that prints its source, then the
/// source itself) is not repeated, and line breaks become "; ".
pub fn one_line(e: &anyhow::Error) -> String {
    let mut out = String::new();
    for cause in e.chain() {
        let text = cause.to_string();
        let text = text.trim();
        if text.is_empty() || out.contains(text) {
            continue;
        }
        if !out.is_empty() {
            out.push_str(": ");
        }
        out.push_str(text);
    }
    out.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect::<Vec<_>>()
        .join("; ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, thiserror::Error)]
    #[error("cannot write /x/info.xml: {source}")]
    struct Wrapped {
        #[source]
        source: std::io::Error,
    }

    #[test]
    fn each_cause_is_said_once() {
        let io = std::io::Error::from_raw_os_error(28);
        let e = anyhow::Error::new(Wrapped { source: io }).context("cannot create snapshot");
        let line = one_line(&e);
        assert_eq!(line.matches("No space left on device").count(), 1, "{line}");
        assert!(line.starts_with("cannot create snapshot: cannot write /x/info.xml"));
        let multi = anyhow::anyhow!("first line\nsecond line");
        assert_eq!(one_line(&multi), "first line; second line");
    }
}
