//! The `koompi` package command's library: what a target means, where it comes from, and
//! how a change is made safely.
//!
//! `koompi install firefox` has to decide what the user meant (a pacman package, an AUR
//! package, a Flatpak application), refuse anything that could be mistaken for an option or
//! shell syntax before it reaches pacman, paru or flatpak, know which mirrors pacman will use,
//! tell "the network is down" apart from "the package does not exist" before downloading, and
//! read what pacman, the AUR and flatpak answer. All of that lives here, mostly as functions
//! over strings, so it is tested without a network, a package database or root:
//!
//! - [`name`]: what a user types as a package target, validated and classified;
//! - [`pacman_conf`]: `pacman.conf` and its mirrorlists, parsed and resolved;
//! - [`url`]: mirror URLs split into scheme, host, port and path;
//! - [`network`]: can each repository be reached, checked with TCP connects (not ping);
//! - [`parse`]: `pacman -Ss/-Q/-Si/-Qi`, `flatpak search` and AUR RPC v5 answers;
//! - [`model`]: the [`Package`] every search result becomes (this is what `--json` prints).
//!
//! Above them, the parts that run programs (through `koompi_core::cmd`):
//!
//! - [`backend`]: pacman, paru, flatpak and the AUR's RPC, queried and parsed;
//! - [`guard`]: the database lock and the snapshot before a change;
//! - [`ops`]: install, remove, clean and upgrade with every decision around them (root,
//!   who builds AUR packages, which program upgrades); the binary only parses and prints;
//! - [`upgrade`]: the classic and the transactional upgrade, down to the snapshot engine
//!   ([`koompi_snapshots`]) and the boot watchdog ([`koompi_boot`]);
//! - [`channel`]: the update channel; [`etcmerge`]: /etc merged into an upgraded root.

pub mod backend;
pub mod channel;
pub mod etcmerge;
pub mod guard;
pub mod model;
pub mod name;
pub mod network;
pub mod ops;
pub mod pacman_conf;
pub mod parse;
pub mod plan;
pub mod upgrade;
pub mod url;

pub use model::{mark_installed, Installed, Package, Source};
pub use name::{classify, NameError, Target};
pub use network::{NetworkReport, ProbeStatus};
pub use pacman_conf::{PacmanConfig, Repo};
