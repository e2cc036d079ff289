//! Snapper-compatible Btrfs snapshot store for KOOMPI OS.
//!
//! The on-disk format is snapper's own (`.snapshots/N/snapshot` plus `.snapshots/N/info.xml`),
//! so snapper, snap-pac and grub-btrfs see KOOMPI's snapshots and KOOMPI sees theirs.

pub mod info;
pub mod model;
pub mod retention;

pub use model::{SnapshotInfo, SnapshotType};
