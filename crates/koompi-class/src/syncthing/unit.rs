//! The systemd user units that run the classroom in a real session, shipped as files in
//! `system/systemd-user/` (installed to /usr/lib/systemd/user): the classroom's Syncthing,
//! `koompi-class-syncthing.service` (`koompi-class engine`: one per user, its own home
//! under `$XDG_STATE_HOME`, so a personal Syncthing in ~/.config/syncthing is not touched,
//! the GUI/REST API on loopback), and `koompi-class-watch.service` (`koompi-class watch`,
//! a student's lessons kept as the teacher sent them).

/// The classroom Syncthing's unit.
pub const UNIT_NAME: &str = "koompi-class-syncthing.service";
/// The student's watch unit.
pub const WATCH_UNIT_NAME: &str = "koompi-class-watch.service";
