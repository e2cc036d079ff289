//! Cleanup: reads the store, marks what must never go (the running system, the default
//! subvolume), asks the pure planner in [`crate::retention`], and deletes what it says.

use chrono::{Local, NaiveDateTime, TimeZone};
use serde::Serialize;

use crate::btrfs;
use crate::error::Result;
use crate::retention::{self, Candidate, Pin, Plan, Policy};
use crate::store::{Healed, Snapshot, Store};
use koompi_core::cmd::Runner;

/// Converts a UTC time to local wall-clock time (snapper's timeline periods are local).
pub fn to_local(utc: NaiveDateTime) -> NaiveDateTime {
    Local.from_utc_datetime(&utc).naive_local()
}

/// Builds planner candidates from the store's snapshots.
pub fn candidates(snapshots: &[Snapshot], default_id: Option<u64>) -> Vec<Candidate> {
    snapshots
        .iter()
        .map(|s| {
            let mut c = Candidate::from_info(&s.info, to_local(s.info.date));
            if s.active {
                c.pinned = Some(Pin::Active);
            } else if let Some(def) = default_id.filter(|d| *d != 5) {
                if btrfs::subvolume_id(&s.path).ok() == Some(def) {
                    c.pinned = Some(Pin::Default);
                }
            }
            c
        })
        .collect()
}

/// The plan for `store` under `policy` at `now` (UTC).
pub fn plan(store: &Store, policy: &Policy, runner: &Runner, now: NaiveDateTime) -> Result<Plan> {
    let snaps = store.snapshots()?;
    let default_id = store.default_subvolume_id(runner);
    Ok(retention::plan(
        policy,
        &candidates(&snaps, default_id),
        now,
    ))
}

/// What a cleanup did.
#[derive(Debug, Clone, Serialize)]
pub struct Outcome {
    /// The remains of interrupted creates removed first.
    pub healed: Healed,
    pub plan: Plan,
    pub removed: Vec<u32>,
    /// Snapshots the plan removed but deleting failed, with the reason.
    pub failed: Vec<(u32, String)>,
}

/// Plans and applies a cleanup under the store's lock.
pub fn run(store: &Store, policy: &Policy, runner: &Runner, now: NaiveDateTime) -> Result<Outcome> {
    let _lock = store.lock()?;
    let healed = store.heal_locked(false)?;
    let snaps = store.snapshots()?;
    let default_id = store.default_subvolume_id(runner);
    let plan = retention::plan(policy, &candidates(&snaps, default_id), now);
    let mut removed = Vec::new();
    let mut failed = Vec::new();
    for num in plan.to_remove() {
        match store.delete_locked(num, default_id) {
            Ok(()) => removed.push(num),
            Err(e) => failed.push((num, e.to_string())),
        }
    }
    Ok(Outcome {
        healed,
        plan,
        removed,
        failed,
    })
}
