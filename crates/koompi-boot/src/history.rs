//! The watchdog's memory: boots and automatic rollbacks, kept in `/var/log/koompi/watchdog.json`.
//!
//! `/var/log` is its own subvolume (`@var_log`), so the history survives every rollback of
//! `@`. The choice of the known-good snapshot is a pure function of this history and the
//! snapshots' dates: a snapshot is known-good when it is marked so, or was taken during a
//! boot that was later confirmed.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// How many boots and rollbacks the file keeps.
pub const KEEP_BOOTS: usize = 100;
pub const KEEP_ROLLBACKS: usize = 50;

/// One boot.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BootRecord {
    pub boot_id: String,
    pub started: DateTime<Utc>,
    /// The snapshot GRUB fell back to, for a fallback boot.
    #[serde(default)]
    pub fallback: Option<u32>,
    /// When `koompi-watchdog success` confirmed it.
    #[serde(default)]
    pub confirmed: Option<DateTime<Utc>>,
}

/// One automatic rollback.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RollbackRecord {
    pub time: DateTime<Utc>,
    /// The known-good snapshot that became the system.
    pub target: u32,
    /// The snapshot that keeps the broken state.
    pub backup: u32,
    pub reason: String,
}

/// The whole file.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct History {
    #[serde(default)]
    pub boots: Vec<BootRecord>,
    #[serde(default)]
    pub rollbacks: Vec<RollbackRecord>,
}

impl History {
    /// Records the start of a boot (once per boot id).
    pub fn record_boot(&mut self, boot_id: &str, started: DateTime<Utc>, fallback: Option<u32>) {
        if self.boots.iter().any(|b| b.boot_id == boot_id) {
            return;
        }
        self.boots.push(BootRecord {
            boot_id: boot_id.to_string(),
            started,
            fallback,
            confirmed: None,
        });
        let excess = self.boots.len().saturating_sub(KEEP_BOOTS);
        self.boots.drain(..excess);
    }

    /// Marks a boot confirmed, recording it first if `check` never ran for it.
    pub fn confirm(&mut self, boot_id: &str, started: DateTime<Utc>, now: DateTime<Utc>) {
        self.record_boot(boot_id, started, None);
        if let Some(b) = self.boots.iter_mut().find(|b| b.boot_id == boot_id) {
            b.confirmed.get_or_insert(now);
        }
    }

    /// Records an automatic rollback.
    pub fn record_rollback(&mut self, r: RollbackRecord) {
        self.rollbacks.push(r);
        let excess = self.rollbacks.len().saturating_sub(KEEP_ROLLBACKS);
        self.rollbacks.drain(..excess);
    }

    /// The boot with this id.
    pub fn boot(&self, boot_id: &str) -> Option<&BootRecord> {
        self.boots.iter().find(|b| b.boot_id == boot_id)
    }

    /// The newest confirmed boot.
    pub fn last_confirmed(&self) -> Option<&BootRecord> {
        self.boots.iter().rev().find(|b| b.confirmed.is_some())
    }

    /// Whether `date` lies in a boot session that was confirmed (from its start to the
    /// next boot's start).
    pub fn in_confirmed_session(&self, date: DateTime<Utc>) -> bool {
        let mut sorted: Vec<&BootRecord> = self.boots.iter().collect();
        sorted.sort_by_key(|b| b.started);
        sorted.iter().enumerate().any(|(i, b)| {
            let end = sorted.get(i + 1).map(|n| n.started);
            b.confirmed.is_some() && date >= b.started && end.is_none_or(|e| date < e)
        })
    }
}

/// A snapshot as the known-good choice sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SnapshotFacts {
    pub num: u32,
    pub date: DateTime<Utc>,
    /// Userdata `koompi-known-good=yes`.
    pub marked: bool,
    /// Userdata `koompi-known-good=no`: a system that has not booted yet (a transactional
    /// upgrade's result), never a fallback even if taken during a confirmed session.
    pub refused: bool,
}

/// The known-good snapshots (marked, or taken in a confirmed session), ascending.
pub fn known_good(history: &History, snapshots: &[SnapshotFacts]) -> Vec<u32> {
    let mut v: Vec<u32> = snapshots
        .iter()
        .filter(|s| !s.refused && (s.marked || history.in_confirmed_session(s.date)))
        .map(|s| s.num)
        .collect();
    v.sort_unstable();
    v
}

/// The fallback target: the newest known-good snapshot.
pub fn fallback_target(history: &History, snapshots: &[SnapshotFacts]) -> Option<u32> {
    known_good(history, snapshots).last().copied()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use chrono::TimeZone;
    use proptest::prelude::*;

    fn t(h: i64) -> DateTime<Utc> {
        Utc.timestamp_opt(1_790_000_000 + h * 3600, 0).unwrap()
    }

    fn snap(num: u32, h: i64) -> SnapshotFacts {
        SnapshotFacts {
            num,
            date: t(h),
            marked: false,
            refused: false,
        }
    }

    #[test]
    fn a_refused_snapshot_is_never_known_good() {
        let mut h = History::default();
        h.record_boot("a", t(0), None);
        h.confirm("a", t(0), t(1));
        let mut work = snap(2, 3);
        work.refused = true;
        let snaps = [snap(1, 2), work.clone()];
        assert_eq!(known_good(&h, &snaps), vec![1]);
        work.marked = true;
        assert_eq!(known_good(&h, &[snap(1, 2), work]), vec![1]);
    }

    #[test]
    fn snapshots_of_confirmed_sessions_are_known_good() {
        let mut h = History::default();
        h.record_boot("a", t(0), None);
        h.confirm("a", t(0), t(1));
        h.record_boot("b", t(10), None); // never confirmed: an update broke it
        let snaps = [snap(1, 2), snap(2, 9), snap(3, 11)];
        assert_eq!(known_good(&h, &snaps), vec![1, 2]);
        assert_eq!(fallback_target(&h, &snaps), Some(2));
    }

    #[test]
    fn marked_snapshots_count_without_any_boot() {
        let h = History::default();
        let mut f = snap(1, -100);
        f.marked = true;
        assert_eq!(fallback_target(&h, &[f, snap(2, 5)]), Some(1));
    }

    #[test]
    fn the_current_confirmed_session_counts_until_the_next_boot() {
        let mut h = History::default();
        h.confirm("a", t(0), t(1));
        assert!(h.in_confirmed_session(t(500)));
        h.record_boot("b", t(600), Some(3));
        assert!(!h.in_confirmed_session(t(601)));
        assert!(h.in_confirmed_session(t(599)));
    }

    #[test]
    fn history_is_bounded_and_boots_recorded_once() {
        let mut h = History::default();
        for i in 0..150 {
            h.record_boot(&format!("b{i}"), t(i), None);
            h.record_boot(&format!("b{i}"), t(i), None);
        }
        assert_eq!(h.boots.len(), KEEP_BOOTS);
        assert_eq!(h.boots[0].boot_id, "b50");
    }

    proptest! {
        /// A snapshot taken during a boot that was never confirmed is never chosen unless
        /// marked by hand.
        #[test]
        fn prop_unconfirmed_sessions_never_give_the_fallback(
            confirmed in prop::collection::vec(any::<bool>(), 1..10),
            snaps in prop::collection::vec((0i64..100, any::<bool>()), 0..20),
        ) {
            let mut h = History::default();
            for (i, c) in confirmed.iter().enumerate() {
                let start = t(i as i64 * 10);
                h.record_boot(&format!("b{i}"), start, None);
                if *c { h.confirm(&format!("b{i}"), start, start); }
            }
            let facts: Vec<SnapshotFacts> = snaps.iter().enumerate().map(|(n, (hr, m))| SnapshotFacts {
                num: n as u32 + 1, date: t(*hr), marked: *m, refused: false,
            }).collect();
            if let Some(target) = fallback_target(&h, &facts) {
                let s = &facts[target as usize - 1];
                // Sessions start every 10 hours; the last one is open-ended.
                let hours = usize::try_from((s.date - t(0)).num_hours()).unwrap_or(0);
                let session = (hours / 10).min(confirmed.len() - 1);
                let confirmed_session = confirmed[session];
                prop_assert!(s.marked || confirmed_session, "{:?} chosen", s);
            }
        }
    }
}
