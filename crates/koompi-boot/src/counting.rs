//! Boot counting: the states GRUB moves through, as a pure state machine.
//!
//! GRUB keeps `koompi_tries` in the ESP's environment block: the number of boots started
//! since the last confirmed one. Every GRUB start applies [`grub_boot`]; userspace resets the
//! count with [`confirm`] (`koompi-watchdog success`) or after a fallback made its rollback
//! permanent. The GRUB script is generated from [`TRANSITIONS`], so the script and this
//! model cannot disagree.

use serde::Serialize;

/// Unconfirmed boots that trigger the fallback.
pub const MAX_TRIES: u8 = 3;

/// Which entry GRUB boots.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Entry {
    /// The normal entry (`@`).
    Normal,
    /// The last known-good snapshot.
    Fallback,
}

/// The counter as GRUB reads it: a missing or unknown value counts as 0.
pub fn parse_tries(value: Option<&str>) -> u8 {
    match value.map(str::trim) {
        Some("1") => 1,
        Some("2") => 2,
        Some("3") => 3,
        Some("4") => 4,
        _ => 0,
    }
}

/// One row of GRUB's decision table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Transition {
    /// `koompi_tries` when GRUB starts.
    pub from: u8,
    /// Whether the row applies only when a known-good snapshot is set.
    pub needs_good: Option<bool>,
    pub to: u8,
    pub entry: Entry,
}

/// GRUB's decision table, in the order GRUB tests it. State 4 means "the fallback was
/// tried": if that boot failed too, counting starts over on the normal entry.
pub const TRANSITIONS: [Transition; 6] = [
    Transition {
        from: 3,
        needs_good: Some(true),
        to: 4,
        entry: Entry::Fallback,
    },
    Transition {
        from: 3,
        needs_good: Some(false),
        to: 3,
        entry: Entry::Normal,
    },
    Transition {
        from: 4,
        needs_good: None,
        to: 1,
        entry: Entry::Normal,
    },
    Transition {
        from: 2,
        needs_good: None,
        to: 3,
        entry: Entry::Normal,
    },
    Transition {
        from: 1,
        needs_good: None,
        to: 2,
        entry: Entry::Normal,
    },
    Transition {
        from: 0,
        needs_good: None,
        to: 1,
        entry: Entry::Normal,
    },
];

/// What GRUB does at start: the new counter and the entry it boots.
pub fn grub_boot(tries: u8, has_good: bool) -> (u8, Entry) {
    TRANSITIONS
        .iter()
        .find(|t| t.from == tries && t.needs_good.is_none_or(|g| g == has_good))
        .map(|t| (t.to, t.entry))
        .unwrap_or((1, Entry::Normal))
}

/// The counter after userspace confirmed the boot (or finished a fallback's rollback).
pub fn confirm(_tries: u8) -> u8 {
    0
}

/// Failed attempts so far, as people read it: boots started and not confirmed, not
/// counting a fallback attempt.
pub fn failed_attempts(tries: u8) -> u8 {
    tries.min(MAX_TRIES)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn three_failed_boots_then_fallback() {
        let mut t = 0;
        let mut entries = Vec::new();
        for _ in 0..4 {
            let (n, e) = grub_boot(t, true);
            t = n;
            entries.push(e);
        }
        assert_eq!(
            entries,
            [Entry::Normal, Entry::Normal, Entry::Normal, Entry::Fallback]
        );
    }

    #[test]
    fn without_a_known_good_snapshot_it_keeps_booting_normally() {
        let mut t = 0;
        for _ in 0..10 {
            let (n, e) = grub_boot(t, false);
            assert_eq!(e, Entry::Normal);
            t = n;
        }
        assert_eq!(t, 3);
    }

    #[test]
    fn failed_fallback_starts_over() {
        assert_eq!(grub_boot(4, true), (1, Entry::Normal));
    }

    #[test]
    fn garbage_counts_as_zero() {
        assert_eq!(parse_tries(Some("x")), 0);
        assert_eq!(parse_tries(None), 0);
        assert_eq!(parse_tries(Some("3")), 3);
    }

    #[test]
    fn table_covers_every_state_once_per_condition() {
        for from in 0..=4u8 {
            for good in [false, true] {
                let rows = TRANSITIONS
                    .iter()
                    .filter(|t| t.from == from && t.needs_good.is_none_or(|g| g == good))
                    .count();
                assert_eq!(rows, 1, "state {from} good {good}");
            }
        }
    }

    proptest! {
        /// From any state, with a known-good snapshot, failing boots reach the fallback
        /// within MAX_TRIES + 1 boots.
        #[test]
        fn prop_fallback_within_four_boots(start in 0u8..=4) {
            let mut t = start;
            let mut reached = false;
            for _ in 0..=(MAX_TRIES + 1) {
                let (n, e) = grub_boot(t, true);
                t = n;
                if e == Entry::Fallback { reached = true; break; }
            }
            prop_assert!(reached);
        }

        /// The fallback is only chosen after MAX_TRIES unconfirmed boots in a row, and a
        /// confirmation anywhere resets the count.
        #[test]
        fn prop_fallback_only_after_three_unconfirmed(events in prop::collection::vec(any::<bool>(), 0..40)) {
            // event = true: the boot was confirmed.
            let mut t = 0;
            let mut unconfirmed_in_a_row = 0;
            for confirmed in events {
                let (n, e) = grub_boot(t, true);
                if e == Entry::Fallback {
                    prop_assert!(unconfirmed_in_a_row >= MAX_TRIES as usize);
                }
                t = n;
                if confirmed {
                    t = confirm(t);
                    unconfirmed_in_a_row = 0;
                } else {
                    unconfirmed_in_a_row += 1;
                }
                prop_assert!(t <= 4);
            }
        }

        #[test]
        fn prop_confirm_always_resets(t in 0u8..=4) {
            prop_assert_eq!(confirm(t), 0);
            prop_assert_eq!(grub_boot(confirm(t), true).1, Entry::Normal);
        }
    }
}
