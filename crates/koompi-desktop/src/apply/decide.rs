//! What to do with one config file: a pure function of its three versions.
//!
//! The three versions are KOOMPI's shipped one, the one koompi-apply-config last wrote
//! (from the home's manifest) and the one on disk. Only their SHA-256 hashes and the kind
//! of what is on disk are needed, so the whole decision is a table that property tests
//! walk through. The I/O around it observes the disk ([`super::home`]) and carries the
//! action out.

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// A SHA-256 hash, shown and stored as 64 hexadecimal digits.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Sha([u8; 32]);

impl Sha {
    /// The hash of `bytes`.
    pub fn of(bytes: &[u8]) -> Sha {
        Sha(Sha256::digest(bytes).into())
    }

    /// The hash whose hexadecimal form is `hex`.
    pub fn from_hex(hex: &str) -> Option<Sha> {
        if hex.len() != 64 {
            return None;
        }
        let mut out = [0u8; 32];
        for (i, b) in out.iter_mut().enumerate() {
            *b = u8::from_str_radix(hex.get(2 * i..2 * i + 2)?, 16).ok()?;
        }
        Some(Sha(out))
    }

    /// 64 lower-case hexadecimal digits.
    pub fn hex(&self) -> String {
        self.0.iter().map(|b| format!("{b:02x}")).collect()
    }
}

impl std::fmt::Debug for Sha {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Sha({})", &self.hex()[..12])
    }
}

impl std::fmt::Display for Sha {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.hex())
    }
}

impl Serialize for Sha {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.hex())
    }
}

impl<'de> Deserialize<'de> for Sha {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Sha, D::Error> {
        let s = String::deserialize(d)?;
        Sha::from_hex(&s).ok_or_else(|| serde::de::Error::custom("not a SHA-256 in hexadecimal"))
    }
}

/// What stands at a config file's place in the home.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OnDisk {
    /// Nothing.
    Absent,
    /// A regular file with this content; `writable`: its owner may write it (a file the
    /// user made read-only is left alone).
    File { sha: Sha, writable: bool },
    /// Something that is not a regular file ("a symbolic link", "a FIFO", ...): never
    /// opened, never replaced.
    Other(&'static str),
    /// The way to it is not usable (a directory on the way is a symbolic link, a file, or
    /// cannot be entered): why, in words.
    Blocked(String),
}

/// What to do when the user changed a file and KOOMPI ships a new version of it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Policy {
    /// Move the user's version to a timestamped backup beside it, then write KOOMPI's
    /// (the edition asked for gets its configs; nothing is lost).
    #[default]
    Backup,
    /// Keep the user's version in place and save KOOMPI's beside it, once per version.
    Keep,
}

/// What the manifest remembers of one file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Record {
    /// What koompi-apply-config last wrote at the file's place (or found there equal to
    /// KOOMPI's version): the "last written" version.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub written: Option<Sha>,
    /// KOOMPI's version last saved beside a file the user changed ([`Policy::Keep`]), so
    /// it is offered once, not at every run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub offered: Option<Sha>,
}

/// Why a file is left as it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeepWhy {
    /// It already is KOOMPI's version.
    Current,
    /// The user changed it and KOOMPI has nothing newer than what it already wrote or
    /// offered.
    Changed,
}

/// Why a file is not touched at all.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SkipWhy {
    /// Not a regular file (the words say what it is).
    NotRegular(&'static str),
    /// A regular file without its owner's write permission.
    ReadOnly,
    /// The way to it is not usable.
    Blocked(String),
}

/// What to do with one file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Nothing there: write KOOMPI's version.
    Create,
    /// What is there is what KOOMPI last wrote; KOOMPI's version is newer: replace it.
    Update,
    /// Leave it.
    Keep(KeepWhy),
    /// The user's own version is there and KOOMPI has a new one: back the user's up beside
    /// it, then write KOOMPI's.
    BackupThenUpdate,
    /// The user's own version is there and KOOMPI has a new one: keep the user's and save
    /// KOOMPI's beside it.
    Offer,
    /// Do not touch it.
    Skip(SkipWhy),
}

impl Action {
    /// Whether carrying it out changes the home.
    pub fn changes(&self) -> bool {
        matches!(
            self,
            Action::Create | Action::Update | Action::BackupThenUpdate | Action::Offer
        )
    }
}

/// The action for one file: KOOMPI's version `shipped`, what the manifest remembers
/// (`None` for a file never applied to this home), what is on disk, and the policy for
/// a user's change.
pub fn decide(shipped: Sha, record: Option<Record>, disk: &OnDisk, policy: Policy) -> Action {
    let record = record.unwrap_or_default();
    let sha = match disk {
        OnDisk::Absent => return Action::Create,
        OnDisk::Other(kind) => return Action::Skip(SkipWhy::NotRegular(kind)),
        OnDisk::Blocked(why) => return Action::Skip(SkipWhy::Blocked(why.clone())),
        OnDisk::File { sha, .. } if *sha == shipped => return Action::Keep(KeepWhy::Current),
        OnDisk::File {
            writable: false, ..
        } => return Action::Skip(SkipWhy::ReadOnly),
        OnDisk::File { sha, .. } => *sha,
    };
    if record.written == Some(sha) {
        // Untouched since KOOMPI wrote it, and KOOMPI's version moved on.
        return Action::Update;
    }
    // The user's own version: changed since the last apply, or there before it.
    if record.written == Some(shipped) || record.offered == Some(shipped) {
        return Action::Keep(KeepWhy::Changed);
    }
    match policy {
        Policy::Backup => Action::BackupThenUpdate,
        Policy::Keep => Action::Offer,
    }
}

/// What the manifest remembers after `action` was carried out (or failed: then the old
/// record stays).
pub fn next_record(shipped: Sha, record: Option<Record>, action: &Action) -> Option<Record> {
    match action {
        Action::Create
        | Action::Update
        | Action::BackupThenUpdate
        | Action::Keep(KeepWhy::Current) => Some(Record {
            written: Some(shipped),
            offered: None,
        }),
        Action::Offer => Some(Record {
            written: record.and_then(|r| r.written),
            offered: Some(shipped),
        }),
        Action::Keep(KeepWhy::Changed) | Action::Skip(_) => record,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn sha(n: u8) -> Sha {
        Sha::of(&[n])
    }

    #[test]
    fn hex_round_trips() {
        let s = Sha::of(b"koompi");
        assert_eq!(Sha::from_hex(&s.hex()), Some(s));
        assert_eq!(Sha::from_hex("zz"), None);
        assert_eq!(Sha::from_hex(&"g".repeat(64)), None);
        assert_eq!(
            Sha::of(b"").hex(),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
    }

    #[test]
    fn the_table() {
        let file = |n, w| OnDisk::File {
            sha: sha(n),
            writable: w,
        };
        let rec = |w: Option<u8>, o: Option<u8>| {
            Some(Record {
                written: w.map(sha),
                offered: o.map(sha),
            })
        };
        let b = Policy::Backup;
        let k = Policy::Keep;
        let cases: Vec<(Option<Record>, OnDisk, Policy, Action)> = vec![
            (None, OnDisk::Absent, b, Action::Create),
            (rec(Some(1), None), OnDisk::Absent, b, Action::Create),
            (None, file(1, true), b, Action::Keep(KeepWhy::Current)),
            (None, file(1, false), b, Action::Keep(KeepWhy::Current)),
            (rec(Some(2), None), file(2, true), b, Action::Update),
            (
                rec(Some(2), None),
                file(2, false),
                b,
                Action::Skip(SkipWhy::ReadOnly),
            ),
            (
                rec(Some(1), None),
                file(3, true),
                b,
                Action::Keep(KeepWhy::Changed),
            ),
            (
                rec(Some(2), None),
                file(3, true),
                b,
                Action::BackupThenUpdate,
            ),
            (rec(Some(2), None), file(3, true), k, Action::Offer),
            (
                rec(Some(2), Some(1)),
                file(3, true),
                k,
                Action::Keep(KeepWhy::Changed),
            ),
            (None, file(3, true), b, Action::BackupThenUpdate),
            (None, file(3, true), k, Action::Offer),
            (
                None,
                OnDisk::Other("a FIFO"),
                b,
                Action::Skip(SkipWhy::NotRegular("a FIFO")),
            ),
        ];
        for (record, disk, policy, want) in cases {
            assert_eq!(
                decide(sha(1), record, &disk, policy),
                want,
                "{record:?} {disk:?} {policy:?}"
            );
        }
    }

    fn any_disk() -> impl Strategy<Value = OnDisk> {
        prop_oneof![
            Just(OnDisk::Absent),
            (0u8..4, any::<bool>()).prop_map(|(n, writable)| OnDisk::File {
                sha: sha(n),
                writable
            }),
            Just(OnDisk::Other("a symbolic link")),
            Just(OnDisk::Blocked("`.config` is a symbolic link".into())),
        ]
    }

    fn any_record() -> impl Strategy<Value = Option<Record>> {
        proptest::option::of(
            (proptest::option::of(0u8..4), proptest::option::of(0u8..4)).prop_map(|(w, o)| {
                Record {
                    written: w.map(sha),
                    offered: o.map(sha),
                }
            }),
        )
    }

    fn any_policy() -> impl Strategy<Value = Policy> {
        prop_oneof![Just(Policy::Backup), Just(Policy::Keep)]
    }

    /// What is on disk after `action` (the file's own place; backups and offers are
    /// beside it).
    fn after(shipped: Sha, disk: &OnDisk, action: &Action) -> OnDisk {
        match action {
            Action::Create | Action::Update | Action::BackupThenUpdate => OnDisk::File {
                sha: shipped,
                writable: true,
            },
            _ => disk.clone(),
        }
    }

    proptest! {
        /// A user's version (on disk, neither KOOMPI's nor what KOOMPI last wrote) is
        /// never replaced without a backup.
        #[test]
        fn a_users_change_is_never_lost(
            s in 0u8..4, record in any_record(), disk in any_disk(), policy in any_policy()
        ) {
            let action = decide(sha(s), record, &disk, policy);
            if let OnDisk::File { sha: d, .. } = &disk {
                let ours = *d == sha(s) || record.and_then(|r| r.written) == Some(*d);
                if !ours {
                    prop_assert!(
                        !matches!(action, Action::Update | Action::Create),
                        "{action:?}"
                    );
                }
            }
        }

        /// Only regular, writable files are ever replaced; anything else is skipped.
        #[test]
        fn only_regular_files_are_touched(
            s in 0u8..4, record in any_record(), disk in any_disk(), policy in any_policy()
        ) {
            let action = decide(sha(s), record, &disk, policy);
            match &disk {
                OnDisk::Other(_) | OnDisk::Blocked(_) => {
                    prop_assert!(matches!(action, Action::Skip(_)), "{action:?}");
                }
                OnDisk::File { writable: false, sha: d } if *d != sha(s) => {
                    prop_assert_eq!(action, Action::Skip(SkipWhy::ReadOnly));
                }
                _ => prop_assert!(!matches!(action, Action::Skip(_)), "{action:?}"),
            }
        }

        /// A second run right after the first changes nothing and remembers the same.
        #[test]
        fn a_second_run_changes_nothing(
            s in 0u8..4, record in any_record(), disk in any_disk(), policy in any_policy()
        ) {
            let shipped = sha(s);
            let first = decide(shipped, record, &disk, policy);
            let record1 = next_record(shipped, record, &first);
            let disk1 = after(shipped, &disk, &first);
            let second = decide(shipped, record1, &disk1, policy);
            prop_assert!(!second.changes(), "{first:?} then {second:?}");
            prop_assert_eq!(next_record(shipped, record1, &second), record1);
        }

        /// KOOMPI's version on disk is always kept, and remembered as written.
        #[test]
        fn koompis_version_is_kept(s in 0u8..4, record in any_record(), w in any::<bool>(), policy in any_policy()) {
            let disk = OnDisk::File { sha: sha(s), writable: w };
            let action = decide(sha(s), record, &disk, policy);
            prop_assert_eq!(&action, &Action::Keep(KeepWhy::Current));
            prop_assert_eq!(
                next_record(sha(s), record, &action).and_then(|r| r.written),
                Some(sha(s))
            );
        }

        /// A file left as KOOMPI wrote it follows KOOMPI's new version.
        #[test]
        fn untouched_files_follow_koompi(s in 0u8..4, d in 0u8..4, policy in any_policy()) {
            prop_assume!(s != d);
            let record = Some(Record { written: Some(sha(d)), offered: None });
            let disk = OnDisk::File { sha: sha(d), writable: true };
            prop_assert_eq!(decide(sha(s), record, &disk, policy), Action::Update);
        }
    }
}
