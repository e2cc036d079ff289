//! KOOMPI OS desktops.
//!
//! [`catalog`] is the editions catalog (data shipped in koompi-configs, checked at load).
//! [`dm`] switches display managers so that exactly one is enabled at every moment.
//! [`nvidia`] finds NVIDIA GPUs in PCI data and names the driver package that fits.
//! [`desktop`] turns an edition into an install or removal plan (pure) and runs it
//! ([`state`] remembers what each install changed, so `remove` can undo it).
//! [`apply`] puts an edition's configs into a home without ever losing a user's change,
//! and [`profile`] reads the declarative profile.toml.

pub mod apply;
pub mod catalog;
pub mod desktop;
pub mod dm;
pub mod menu;
pub mod nvidia;
pub mod profile;
pub mod state;
