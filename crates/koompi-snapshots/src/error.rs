//! Errors of the snapshot engine. Each message is one line that says what is wrong and,
//! where the user can act, what to do.

use std::io;
use std::path::PathBuf;

/// Everything the snapshot engine can fail with.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("snapper config {name:?} not found at {path} (list them with `ls /etc/snapper/configs`, or pass --config-file PATH)")]
    ConfigNotFound { name: String, path: PathBuf },
    #[error("config name {0:?} is not valid (letters, digits, '-', '_', '.')")]
    BadConfigName(String),
    #[error("cannot read config {path}: {source}")]
    ConfigRead {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("config {path} does not parse: {source}")]
    ConfigParse {
        path: PathBuf,
        #[source]
        source: koompi_core::config::ConfigError,
    },
    #[error("config {path}: {message}")]
    ConfigInvalid { path: PathBuf, message: String },
    #[error("{0} is not on a Btrfs filesystem")]
    NotBtrfs(PathBuf),
    #[error("{0} is not a Btrfs subvolume")]
    NotSubvolume(PathBuf),
    #[error("{0} is missing: create the snapshots subvolume first (btrfs subvolume create {0})")]
    NoSnapshotsDir(PathBuf),
    #[error("no snapshot matches {0:?} (see `koompi-snapshot list`)")]
    UnknownId(String),
    #[error("snapshot {0} is broken ({1}); only `delete` works on it")]
    Broken(u32, String),
    #[error("{num} in .snapshots is not a snapshot directory ({why}); KOOMPI leaves it alone: look at it and remove it yourself")]
    Foreign { num: u32, why: String },
    #[error("{path} holds what is not a snapshot's ({names}); KOOMPI leaves it alone")]
    ForeignContent { path: PathBuf, names: String },
    #[error("{holder} has held the snapshot lock on {dir} for more than {waited} s; try again when it has finished")]
    Busy {
        dir: PathBuf,
        holder: String,
        waited: u64,
    },
    #[error("invalid name {name:?}: {reason}")]
    InvalidName { name: String, reason: &'static str },
    #[error("invalid userdata {0:?}: use KEY=VALUE, without ',' or '=' inside key or value")]
    InvalidUserdata(String),
    #[error("a snapshot named {name:?} already exists (#{num})")]
    NameTaken { name: String, num: u32 },
    #[error("snapshot {num} is {why}; refusing to delete it")]
    Protected { num: u32, why: String },
    #[error("permission denied: {0} (run as root, e.g. with sudo)")]
    PermissionDenied(String),
    #[error("{context}: {source}")]
    Io {
        context: String,
        #[source]
        source: io::Error,
    },
    #[error(transparent)]
    Cmd(#[from] koompi_core::cmd::CmdError),
    #[error("{0}")]
    Info(String),
    #[error("retention settings: {0}")]
    Policy(#[from] crate::retention::PolicyError),
    #[error("rollback refused: {0}")]
    RollbackRefused(String),
    #[error("rollback failed at step {step}: {message}")]
    RollbackFailed { step: String, message: String },
}

/// Result with this crate's [`Error`].
pub type Result<T> = std::result::Result<T, Error>;

/// Wraps an I/O error with what was being done, turning EPERM/EACCES into the
/// permission message users understand.
pub fn io_err(context: impl Into<String>) -> impl FnOnce(io::Error) -> Error {
    let context = context.into();
    move |source| {
        if source.kind() == io::ErrorKind::PermissionDenied
            || source.raw_os_error() == Some(rustix::io::Errno::PERM.raw_os_error())
        {
            Error::PermissionDenied(context)
        } else {
            Error::Io { context, source }
        }
    }
}
