//! Snapper-compatible Btrfs snapshot store for KOOMPI OS.
//!
//! The on-disk format is snapper's own (`.snapshots/N/snapshot` plus `.snapshots/N/info.xml`),
//! so snapper, snap-pac and grub-btrfs see KOOMPI's snapshots and KOOMPI sees theirs.
//!
//! - [`store`]: reading, creating and deleting snapshots;
//! - [`retention`]: the pure cleanup planner;
//! - [`rollback`]: making a snapshot the root again, safe against power loss;
//! - [`diff`]: what changed between two snapshots;
//! - [`btrfs`]: the few kernel ioctls all of this needs.
//!
//! Those ioctls are the only code in the workspace outside the compiler's safety checks
//! (the workspace's lints deny it everywhere else); every other system call goes through
//! rustix.

pub mod btrfs;
pub mod cleanup;
pub mod config;
pub mod diff;
pub mod error;
pub mod fsat;
pub mod info;
pub mod model;
pub mod retention;
pub mod rollback;
pub mod store;

pub use error::{Error, Result};
pub use model::{Cleanup, SnapshotInfo, SnapshotType};
