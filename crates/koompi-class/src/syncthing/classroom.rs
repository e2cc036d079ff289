//! The classroom's Syncthing settings, decided here and applied through the REST API: LAN
//! only (no global discovery, no relays, no NAT traversal, no usage reporting), bandwidth
//! limits that hold on the LAN, rescan on change, and which device gets which folder with
//! which type. Pure functions: no I/O.
//!
//! Folders of a class `NAME` (under `~/Classroom/NAME/`):
//! - `Lessons/`: the teacher's is send-only, every student's receive-only (a student's
//!   local change is reverted);
//! - `Submissions/<student>/`: the student's is send-only, the teacher's receive-only; it is
//!   shared with the teacher alone, so students never receive each other's work.

use super::types::{DeviceConfig, FolderConfig, FolderDevice, FolderType};
use std::path::Path;

/// What the classroom's options set, whatever else the options hold.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClassOptions {
    /// Local (LAN broadcast/multicast) discovery: on in a classroom, off in tests where
    /// devices are told each other's addresses.
    pub local_announce: bool,
    /// Where the sync protocol listens, e.g. `tcp://0.0.0.0:22000`; `None` keeps Syncthing's.
    pub listen_addresses: Option<Vec<String>>,
}

/// Sets the classroom's options in `options` (the whole object from
/// `GET /rest/config/options`), leaving every other field as it is.
pub fn apply_class_options(options: &mut serde_json::Value, class: &ClassOptions) {
    use serde_json::Value;
    let Some(map) = options.as_object_mut() else {
        return;
    };
    let set = |map: &mut serde_json::Map<String, Value>, k: &str, v: Value| {
        map.insert(k.to_string(), v);
    };
    // LAN only: nothing leaves the school's network.
    set(map, "globalAnnounceEnabled", Value::Bool(false));
    set(map, "relaysEnabled", Value::Bool(false));
    set(map, "natEnabled", Value::Bool(false));
    set(
        map,
        "localAnnounceEnabled",
        Value::Bool(class.local_announce),
    );
    // Usage reporting declined (-1), crash reports and upgrade checks off: no internet.
    set(map, "urAccepted", Value::from(-1));
    set(map, "crashReportingEnabled", Value::Bool(false));
    set(map, "autoUpgradeIntervalH", Value::from(0));
    set(map, "startBrowser", Value::Bool(false));
    // Without this, Syncthing ignores every rate limit (global and per device) between
    // devices on the same LAN, which is all of a classroom.
    set(map, "limitBandwidthInLan", Value::Bool(true));
    if let Some(addrs) = &class.listen_addresses {
        set(
            map,
            "listenAddresses",
            Value::Array(addrs.iter().cloned().map(Value::String).collect()),
        );
    }
}

/// Whether `options` are LAN only as [`apply_class_options`] sets them.
pub fn is_lan_only(options: &serde_json::Value) -> bool {
    let b = |k: &str| options.get(k).and_then(|v| v.as_bool());
    b("globalAnnounceEnabled") == Some(false)
        && b("relaysEnabled") == Some(false)
        && b("natEnabled") == Some(false)
        && b("limitBandwidthInLan") == Some(true)
        && options.get("urAccepted").and_then(|v| v.as_i64()) == Some(-1)
}

/// A device of the class as this device adds it: its addresses and the bandwidth limit.
pub fn class_device(
    device_id: &str,
    name: &str,
    addresses: &[String],
    limit_kbps: u32,
) -> DeviceConfig {
    DeviceConfig {
        device_id: device_id.to_string(),
        name: name.to_string(),
        addresses: if addresses.is_empty() {
            vec!["dynamic".to_string()]
        } else {
            addresses.to_vec()
        },
        max_send_kbps: limit_kbps,
        max_recv_kbps: limit_kbps,
        introducer: false,
        introduced_by: String::new(),
    }
}

/// Who this device is in the class.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Role {
    Teacher,
    /// A student, by the name their submissions folder carries.
    Student {
        name: String,
    },
}

/// A member of the class as another device knows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Member {
    pub device_id: String,
    pub role: Role,
}

/// What no class folder shares: the lock and backup files editors leave beside an open
/// document (LibreOffice's `.~lock.NAME#`, Microsoft Office's `~$NAME`, Vim's swap files,
/// Emacs' `.#NAME` and `NAME~`). On a student's laptop they would otherwise count as local
/// changes to the lessons and be removed by `watch` while the document is open, and a
/// teacher's would reach every student. `(?d)`: Syncthing may delete them when they are
/// all that keeps a directory from being removed.
pub const IGNORE_PATTERNS: [&str; 5] = [
    "(?d).~lock.*#",
    "(?d)~$*",
    "(?d)*.sw[a-p]",
    "(?d).#*",
    "(?d)*~",
];

/// The folder ID of a class's lessons.
pub fn lessons_id(class: &str) -> String {
    format!("koompi-{class}-lessons")
}

/// The folder ID of a student's submissions.
pub fn submissions_id(class: &str, student: &str) -> String {
    format!("koompi-{class}-sub-{student}")
}

fn folder(
    id: String,
    label: String,
    path: &Path,
    kind: FolderType,
    devices: Vec<String>,
) -> FolderConfig {
    FolderConfig {
        id,
        label,
        path: path.display().to_string(),
        kind,
        devices: devices
            .into_iter()
            .map(|device_id| FolderDevice { device_id })
            .collect(),
        fs_watcher_enabled: true,
        fs_watcher_delay_s: 2,
        rescan_interval_s: 3600,
        ignore_delete: false,
    }
}

/// The folders this device (`me`, with `role`) has for class `class` rooted at `root`
/// (`~/Classroom/NAME`), given the members it knows. The teacher: lessons send-only to
/// every student, and one receive-only submissions folder per student shared with that
/// student alone. A student: lessons receive-only from the teacher, and their own
/// submissions send-only to the teacher alone.
pub fn class_folders(
    class: &str,
    root: &Path,
    role: &Role,
    members: &[Member],
) -> Vec<FolderConfig> {
    let students: Vec<(&str, &str)> = members
        .iter()
        .filter_map(|m| match &m.role {
            Role::Student { name } => Some((m.device_id.as_str(), name.as_str())),
            Role::Teacher => None,
        })
        .collect();
    let teachers: Vec<String> = members
        .iter()
        .filter(|m| m.role == Role::Teacher)
        .map(|m| m.device_id.clone())
        .collect();
    let lessons_path = root.join("Lessons");
    match role {
        Role::Teacher => {
            let mut out = vec![folder(
                lessons_id(class),
                format!("{class}: Lessons"),
                &lessons_path,
                FolderType::SendOnly,
                students.iter().map(|(d, _)| d.to_string()).collect(),
            )];
            for (device, name) in &students {
                let mut f = folder(
                    submissions_id(class, name),
                    format!("{class}: {name}"),
                    &root.join("Submissions").join(name),
                    FolderType::ReceiveOnly,
                    vec![device.to_string()],
                );
                // Handed in is handed in: a student deleting their copy does not delete
                // the teacher's.
                f.ignore_delete = true;
                out.push(f);
            }
            out
        }
        Role::Student { name } => vec![
            folder(
                lessons_id(class),
                format!("{class}: Lessons"),
                &lessons_path,
                FolderType::ReceiveOnly,
                teachers.clone(),
            ),
            folder(
                submissions_id(class, name),
                format!("{class}: {name}"),
                &root.join("Submissions").join(name),
                FolderType::SendOnly,
                teachers,
            ),
        ],
    }
}

/// The loopback port of the classroom instance's GUI/REST API for user `uid`: one port per
/// user, away from Syncthing's own 8384, so each user on a shared laptop has their own and
/// a personal Syncthing is not in the way.
pub fn gui_port_for_uid(uid: u32) -> u16 {
    // 28384..=30383: 2000 users' ports (uid 1000 → 28384).
    let slot = u16::try_from(uid.wrapping_sub(1000) % 2000).unwrap_or(0);
    28384 + slot
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::path::PathBuf;

    #[test]
    fn class_options_are_lan_only_and_keep_the_rest() {
        let mut o = serde_json::json!({
            "globalAnnounceEnabled": true, "relaysEnabled": true, "natEnabled": true,
            "localAnnounceEnabled": false, "urAccepted": 0, "limitBandwidthInLan": false,
            "maxFolderConcurrency": 7, "listenAddresses": ["default"]
        });
        assert!(!is_lan_only(&o));
        apply_class_options(
            &mut o,
            &ClassOptions {
                local_announce: true,
                listen_addresses: None,
            },
        );
        assert!(is_lan_only(&o));
        assert_eq!(o["localAnnounceEnabled"], true);
        assert_eq!(o["maxFolderConcurrency"], 7);
        assert_eq!(o["listenAddresses"], serde_json::json!(["default"]));
    }

    fn members(n: usize) -> Vec<Member> {
        let mut v = vec![Member {
            device_id: "TEACHER".into(),
            role: Role::Teacher,
        }];
        for i in 0..n {
            v.push(Member {
                device_id: format!("DEV{i}"),
                role: Role::Student {
                    name: format!("s{i}"),
                },
            });
        }
        v
    }

    proptest! {
        /// Students never receive each other's submissions, lessons flow one way, and every
        /// folder a student has is shared with teachers only.
        #[test]
        fn folders_keep_students_apart(n in 0usize..45, me in 0usize..45) {
            let all = members(n);
            let root = PathBuf::from("/home/t/Classroom/math");
            let teacher = class_folders("math", &root, &Role::Teacher, &all);
            prop_assert_eq!(teacher.len(), n + 1);
            prop_assert_eq!(teacher[0].kind, FolderType::SendOnly);
            prop_assert_eq!(teacher[0].devices.len(), n);
            for f in &teacher[1..] {
                prop_assert_eq!(f.kind, FolderType::ReceiveOnly);
                prop_assert_eq!(f.devices.len(), 1);
                prop_assert!(!f.shared_with("TEACHER"));
            }
            if n > 0 {
                let i = me % n;
                let role = Role::Student { name: format!("s{i}") };
                let mine = class_folders("math", &root, &role, &all);
                prop_assert_eq!(mine.len(), 2);
                prop_assert_eq!(mine[0].kind, FolderType::ReceiveOnly);
                prop_assert_eq!(mine[1].kind, FolderType::SendOnly);
                for f in &mine {
                    prop_assert!(f.devices.iter().all(|d| d.device_id == "TEACHER"));
                    prop_assert!(f.fs_watcher_enabled);
                }
                // The teacher's copy of my submissions has the ID mine has, and only me.
                let theirs = teacher.iter().find(|f| f.id == mine[1].id);
                let dev = format!("DEV{i}");
                prop_assert!(theirs.is_some_and(|f| f.shared_with(&dev) && f.devices.len() == 1));
            }
        }

        #[test]
        fn gui_ports_are_distinct_for_ordinary_users(a in 1000u32..3000, b in 1000u32..3000) {
            prop_assert!(gui_port_for_uid(a) >= 28384);
            prop_assert!(a == b || gui_port_for_uid(a) != gui_port_for_uid(b));
        }
    }
}
