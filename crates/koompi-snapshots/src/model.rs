//! The snapshot record as snapper stores it in `.snapshots/N/info.xml`.
//!
//! These types are pure data: parsing and writing live in [`crate::info`], and the
//! retention planner in [`crate::retention`] works on them without touching a disk.

use std::collections::BTreeMap;

use chrono::NaiveDateTime;
use serde::Serialize;

/// snapper's snapshot types.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum SnapshotType {
    Single,
    Pre,
    Post,
}

impl SnapshotType {
    /// The word snapper writes in `<type>`.
    pub fn as_str(self) -> &'static str {
        match self {
            SnapshotType::Single => "single",
            SnapshotType::Pre => "pre",
            SnapshotType::Post => "post",
        }
    }

    /// Parses the word snapper writes in `<type>`.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "single" => Some(SnapshotType::Single),
            "pre" => Some(SnapshotType::Pre),
            "post" => Some(SnapshotType::Post),
            _ => None,
        }
    }
}

/// Which cleanup algorithm may remove a snapshot (snapper's `<cleanup>`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub enum Cleanup {
    /// None: kept until deleted by hand, like the factory snapshot (an empty field).
    #[default]
    None,
    /// snapper's number cleanup (`NUMBER_LIMIT`, `NUMBER_LIMIT_IMPORTANT`).
    Number,
    /// snapper's timeline cleanup (`TIMELINE_LIMIT_*`).
    Timeline,
    /// snapper's empty-pre-post cleanup (not run by KOOMPI).
    EmptyPrePost,
    /// A value another tool wrote: kept as written, never cleaned up by KOOMPI.
    Other(String),
}

impl Cleanup {
    /// The word snapper writes in `<cleanup>` (empty for [`Cleanup::None`]).
    pub fn as_str(&self) -> &str {
        match self {
            Cleanup::None => "",
            Cleanup::Number => "number",
            Cleanup::Timeline => "timeline",
            Cleanup::EmptyPrePost => "empty-pre-post",
            Cleanup::Other(s) => s,
        }
    }

    /// Reads the word snapper writes in `<cleanup>`; any word is accepted.
    pub fn parse(s: &str) -> Self {
        match s {
            "" => Cleanup::None,
            "number" => Cleanup::Number,
            "timeline" => Cleanup::Timeline,
            "empty-pre-post" => Cleanup::EmptyPrePost,
            other => Cleanup::Other(other.to_string()),
        }
    }
}

impl std::fmt::Display for Cleanup {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for Cleanup {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

/// Everything `info.xml` holds about one snapshot.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SnapshotInfo {
    pub num: u32,
    #[serde(rename = "type")]
    pub kind: SnapshotType,
    /// Creation time in UTC, to the second (snapper's `%F %T`).
    pub date: NaiveDateTime,
    /// Owner; snapper omits the element when it is 0 (root).
    pub uid: u32,
    /// Only for `post` snapshots: the number of the matching `pre`.
    pub pre_num: Option<u32>,
    pub description: String,
    /// Which cleanup algorithm may remove it.
    pub cleanup: Cleanup,
    pub userdata: BTreeMap<String, String>,
}

/// Userdata key that holds a snapshot's KOOMPI name.
pub const NAME_KEY: &str = "name";
/// Userdata key snapper's number cleanup reads (`important=yes`).
pub const IMPORTANT_KEY: &str = "important";
/// Userdata key of the boot watchdog's known-good mark: `yes` makes a snapshot a fallback
/// target, `no` keeps one out (a system that has not booted yet).
pub const KNOWN_GOOD_KEY: &str = "koompi-known-good";

impl SnapshotInfo {
    /// The KOOMPI name (`userdata name=`), if any.
    pub fn name(&self) -> Option<&str> {
        self.userdata.get(NAME_KEY).map(String::as_str)
    }

    /// `important=yes` in userdata, as snapper's number cleanup reads it.
    pub fn is_important(&self) -> bool {
        self.userdata.get(IMPORTANT_KEY).map(String::as_str) == Some("yes")
    }

    /// The known-good mark: `Some(true)` for `koompi-known-good=yes`, `Some(false)` for
    /// `no`, `None` when unmarked.
    pub fn known_good(&self) -> Option<bool> {
        match self.userdata.get(KNOWN_GOOD_KEY).map(String::as_str) {
            Some("yes") => Some(true),
            Some("no") => Some(false),
            _ => None,
        }
    }
}
