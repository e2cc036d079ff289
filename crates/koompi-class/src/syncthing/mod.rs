//! KOOMPI's Syncthing engine for the classroom: the process ([`process`]: one instance per
//! home, and the systemd user unit in [`unit`]), what its `config.xml` tells us
//! ([`home`]), its REST API ([`rest`], with the JSON shapes in [`types`]) and the settings a
//! classroom needs ([`classroom`]: LAN only, bandwidth limits, which folder goes where).
//!
//! Supported: Syncthing 1.19 (Debian 12, what the tests run) and 2.x (Arch). Only flags,
//! environment variables and endpoints both have are used.

pub mod classroom;
pub mod home;
pub mod process;
pub mod rest;
pub mod types;
pub mod unit;

pub use classroom::{apply_class_options, class_device, class_folders, ClassOptions, Member, Role};
pub use home::{read_home_config, HomeConfig, HomeError};
pub use process::{ensure_home, Instance, ProcessError, ServeConfig};
pub use rest::{Client, RestError};
pub use types::{
    Completion, DeviceConfig, FolderConfig, FolderDevice, FolderStatus, FolderType, PendingDevice,
    PendingDevices, SystemStatus, Version,
};
pub use unit::{UNIT_NAME, WATCH_UNIT_NAME};
