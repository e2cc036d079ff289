//! Boot counting and the boot watchdog of KOOMPI OS.
//!
//! GRUB counts boots that were never confirmed in an environment block on the ESP; after
//! three in a row it boots the last known-good snapshot, whose `koompi-watchdog check` makes
//! the rollback permanent. See `docs/watchdog.md`.
//!
//! - [`counting`]: the counter's state machine (pure);
//! - [`grubenv`]: the 1024-byte environment block;
//! - [`grubscript`]: the GRUB code grub-mkconfig includes (pure);
//! - [`history`]: boots and rollbacks, and the known-good choice (pure);
//! - [`kernel`]: which kernel a snapshot boots (pure);
//! - [`watchdog`]: the operations, with I/O.

pub mod counting;
pub mod grubenv;
pub mod grubscript;
pub mod history;
pub mod kernel;
pub mod watchdog;
