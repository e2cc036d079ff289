//! Shared plumbing for the KOOMPI OS system tools.
//!
//! - [`cmd`]: the one runner every external program goes through (logs, errors, dry-run);
//! - [`config`]: snapper-style `KEY="value"` files;
//! - [`output`]: human tables or `--json`;
//! - [`mounts`]: the kernel mount table (`/proc/self/mountinfo`);
//! - [`logging`]: tracing to stderr, or to journald under systemd.

pub mod cmd;
pub mod config;
pub mod logging;
pub mod mounts;
pub mod output;
