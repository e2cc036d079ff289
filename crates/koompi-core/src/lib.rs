//! Shared plumbing for the KOOMPI OS system tools.
//!
//! - [`cmd`]: the one runner every external program goes through (logs, errors, dry-run);
//! - [`config`]: snapper-style `KEY="value"` files;
//! - [`fsutil`]: atomic file replacement and a non-waiting lock;
//! - [`output`]: human tables or `--json`;
//! - [`mounts`]: the kernel mount table (`/proc/self/mountinfo`);
//! - [`logging`]: tracing to stderr, or to journald under systemd.

pub mod cmd;
pub mod config;
pub mod fsutil;
pub mod logging;
pub mod mounts;
pub mod output;
