//! Logging setup shared by all binaries.
//!
//! Logs go to stderr (never stdout, which belongs to the command's output). When a tool runs
//! as a systemd service (`JOURNAL_STREAM` is set), logs go to journald when it is reachable.
//! `KOOMPI_LOG` (e.g. `debug`, `koompi::cmd=debug`) sets the level; `-v` raises it.

use tracing_subscriber::{layer::SubscriberExt, util::SubscriberInitExt, EnvFilter};

/// Installs the global subscriber. `verbosity` 0 = warnings, 1 = info, 2+ = debug.
pub fn init(verbosity: u8) {
    let default = match verbosity {
        0 => "warn",
        1 => "info",
        _ => "debug",
    };
    let filter = EnvFilter::try_from_env("KOOMPI_LOG").unwrap_or_else(|_| EnvFilter::new(default));
    let registry = tracing_subscriber::registry().with(filter);
    if std::env::var_os("JOURNAL_STREAM").is_some() {
        if let Ok(journald) = tracing_journald::layer() {
            let _ = registry.with(journald).try_init();
            return;
        }
    }
    let _ = registry
        .with(
            tracing_subscriber::fmt::layer()
                .with_writer(std::io::stderr)
                // Colour codes only for a terminal, never into a log file or a pipe.
                .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
                .with_target(false)
                .without_time(),
        )
        .try_init();
}
