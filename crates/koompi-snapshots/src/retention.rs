//! The retention planner: which snapshots snapper's `number` and `timeline` cleanup would delete.
//!
//! This module is pure: it takes the retention [`Policy`] (read from a snapper config with
//! [`Policy::from_lookup`]), the snapshots as [`Candidate`]s and the current time, and returns a
//! [`Plan`] with one [`Decision`] per snapshot, each with a one-line human reason. Nothing here
//! touches a disk; the caller deletes what [`Plan::to_remove`] lists.
//!
//! The algorithms are those of snapper's `client/cleanup.cc` (`snapper cleanup number` and
//! `snapper cleanup timeline`), so a KOOMPI system and a snapper system with the same config
//! agree on what goes:
//!
//! - **number**: snapshots with cleanup `number`, newest (highest number) first. A snapshot is
//!   kept while fewer than `NUMBER_LIMIT_IMPORTANT` important ones (`important=yes`) have been
//!   kept, and — independently — while fewer than `NUMBER_LIMIT` have been kept; important
//!   snapshots count toward both limits.
//! - **timeline**: snapshots with cleanup `timeline`, newest first. For every tier (hourly,
//!   daily, weekly, monthly, quarterly, yearly) a snapshot is kept if it is the first (oldest)
//!   snapshot of its period in local time and fewer than that tier's limit have been kept. One
//!   snapshot can count for several tiers.
//! - the removal candidates of each algorithm are then filtered as snapper filters them: the
//!   running (active) and the btrfs default snapshot are never removed, nor a snapshot younger
//!   than the algorithm's `*_MIN_AGE`; and, in one pass over the remaining list, a `pre`
//!   snapshot is only removed if its `post` is removed too and vice versa.
//!
//! Limits are snapper "ranges" (`N` or `MIN-MAX`); the planner uses the maximum, which is what
//! snapper uses for its unconditional cleanup. The quota and free-space driven passes
//! (`SPACE_LIMIT`, `FREE_LIMIT`, which shrink towards the minimum) are not modelled, nor is the
//! `empty-pre-post` cleanup (it needs a diff, which is I/O): such snapshots are kept.
//!
//! Two deliberate points where a choice had to be made are documented where they are made:
//! pre/post pairing is per algorithm (as snapper runs its algorithms one at a time), and "first
//! of its period" is decided among all older snapshots (see [`timeline_pass`]).

use std::collections::{HashMap, HashSet};

use chrono::{Datelike, Days, NaiveDateTime, Timelike};
use serde::Serialize;

use crate::model::{Cleanup, SnapshotInfo, SnapshotType};

/// The retention settings of one snapper config.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Policy {
    /// `NUMBER_CLEANUP`: run the number algorithm.
    pub number_cleanup: bool,
    /// `NUMBER_LIMIT`: how many of the newest `number` snapshots to keep.
    pub number_limit: u32,
    /// `NUMBER_LIMIT_IMPORTANT`: how many of the newest important `number` snapshots to keep.
    pub number_limit_important: u32,
    /// `NUMBER_MIN_AGE`: `number` snapshots younger than this many seconds are kept.
    pub number_min_age: u64,
    /// `TIMELINE_CLEANUP`: run the timeline algorithm.
    pub timeline_cleanup: bool,
    /// `TIMELINE_MIN_AGE`: `timeline` snapshots younger than this many seconds are kept.
    pub timeline_min_age: u64,
    /// `TIMELINE_LIMIT_HOURLY`.
    pub limit_hourly: u32,
    /// `TIMELINE_LIMIT_DAILY`.
    pub limit_daily: u32,
    /// `TIMELINE_LIMIT_WEEKLY`.
    pub limit_weekly: u32,
    /// `TIMELINE_LIMIT_MONTHLY`.
    pub limit_monthly: u32,
    /// `TIMELINE_LIMIT_QUARTERLY`.
    pub limit_quarterly: u32,
    /// `TIMELINE_LIMIT_YEARLY`.
    pub limit_yearly: u32,
}

impl Default for Policy {
    /// snapper's built-in defaults (what it uses when a key is absent), with both algorithms on.
    fn default() -> Self {
        Policy {
            number_cleanup: true,
            number_limit: 50,
            number_limit_important: 10,
            number_min_age: 3600,
            timeline_cleanup: true,
            timeline_min_age: 3600,
            limit_hourly: 10,
            limit_daily: 10,
            limit_weekly: 0,
            limit_monthly: 10,
            limit_quarterly: 0,
            limit_yearly: 10,
        }
    }
}

/// A retention setting that could not be understood.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PolicyError {
    /// The value of `key` is not what the key takes (a boolean, a number or a range).
    #[error("{key}=\"{value}\" is not {}", expected_for(.key))]
    Invalid { key: String, value: String },
}

/// What a key takes, for [`PolicyError`]'s message.
fn expected_for(key: &str) -> &'static str {
    if key.ends_with("_CLEANUP") {
        "yes or no"
    } else if key.ends_with("_MIN_AGE") {
        "a number of seconds"
    } else {
        "a number or range"
    }
}

impl Policy {
    /// Reads the policy from snapper config keys; `get` returns a key's (already unquoted)
    /// value, or `None` when the key is absent, in which case the default applies.
    pub fn from_lookup(get: impl Fn(&str) -> Option<String>) -> Result<Policy, PolicyError> {
        let d = Policy::default();
        Ok(Policy {
            number_cleanup: read(&get, "NUMBER_CLEANUP", d.number_cleanup, parse_bool)?,
            number_limit: read(&get, "NUMBER_LIMIT", d.number_limit, parse_range_max)?,
            number_limit_important: read(
                &get,
                "NUMBER_LIMIT_IMPORTANT",
                d.number_limit_important,
                parse_range_max,
            )?,
            number_min_age: read(&get, "NUMBER_MIN_AGE", d.number_min_age, parse_seconds)?,
            timeline_cleanup: read(&get, "TIMELINE_CLEANUP", d.timeline_cleanup, parse_bool)?,
            timeline_min_age: read(&get, "TIMELINE_MIN_AGE", d.timeline_min_age, parse_seconds)?,
            limit_hourly: read(
                &get,
                "TIMELINE_LIMIT_HOURLY",
                d.limit_hourly,
                parse_range_max,
            )?,
            limit_daily: read(&get, "TIMELINE_LIMIT_DAILY", d.limit_daily, parse_range_max)?,
            limit_weekly: read(
                &get,
                "TIMELINE_LIMIT_WEEKLY",
                d.limit_weekly,
                parse_range_max,
            )?,
            limit_monthly: read(
                &get,
                "TIMELINE_LIMIT_MONTHLY",
                d.limit_monthly,
                parse_range_max,
            )?,
            limit_quarterly: read(
                &get,
                "TIMELINE_LIMIT_QUARTERLY",
                d.limit_quarterly,
                parse_range_max,
            )?,
            limit_yearly: read(
                &get,
                "TIMELINE_LIMIT_YEARLY",
                d.limit_yearly,
                parse_range_max,
            )?,
        })
    }
}

/// Reads one key: absent -> `default`, unparsable -> [`PolicyError::Invalid`].
fn read<T>(
    get: &impl Fn(&str) -> Option<String>,
    key: &str,
    default: T,
    parse: fn(&str) -> Option<T>,
) -> Result<T, PolicyError> {
    match get(key) {
        None => Ok(default),
        Some(value) => parse(value.trim()).ok_or(PolicyError::Invalid {
            key: key.to_string(),
            value,
        }),
    }
}

fn parse_bool(s: &str) -> Option<bool> {
    match s.to_ascii_lowercase().as_str() {
        "yes" | "true" => Some(true),
        "no" | "false" => Some(false),
        _ => None,
    }
}

/// A plain decimal number: digits only (no sign, no blanks), as snapper's stream parsing
/// accepts for a well-formed value.
fn parse_count(s: &str) -> Option<u32> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

/// snapper's `Range`: `N` or `MIN-MAX` with `MIN <= MAX`; returns the maximum.
fn parse_range_max(s: &str) -> Option<u32> {
    match s.split_once('-') {
        None => parse_count(s),
        Some((min, max)) => {
            let (min, max) = (parse_count(min)?, parse_count(max)?);
            (min <= max).then_some(max)
        }
    }
}

fn parse_seconds(s: &str) -> Option<u64> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

/// Why a snapshot must never be removed, whatever the algorithms say.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Pin {
    /// The running system is this snapshot.
    Active,
    /// This snapshot is the btrfs default subvolume (what the next boot mounts).
    Default,
}

impl Pin {
    fn reason(self) -> &'static str {
        match self {
            Pin::Active => "kept: the running system (active)",
            Pin::Default => "kept: the btrfs default subvolume",
        }
    }
}

/// One snapshot as the planner sees it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Candidate {
    pub num: u32,
    pub kind: SnapshotType,
    /// For `post` snapshots: the number of the matching `pre`.
    pub pre_num: Option<u32>,
    /// Creation time in UTC (for the minimum ages).
    pub date: NaiveDateTime,
    /// The same instant in local time (for timeline periods: snapper uses `localtime`).
    pub local: NaiveDateTime,
    /// Which cleanup algorithm may remove it.
    pub cleanup: Cleanup,
    /// `important=yes` in userdata.
    pub important: bool,
    /// Set by the caller for snapshots that must never go.
    pub pinned: Option<Pin>,
}

impl Candidate {
    /// The candidate for a snapshot record; `local` is `info.date` in local time. Not pinned.
    pub fn from_info(info: &SnapshotInfo, local: NaiveDateTime) -> Candidate {
        Candidate {
            num: info.num,
            kind: info.kind,
            pre_num: info.pre_num,
            date: info.date,
            local,
            cleanup: info.cleanup.clone(),
            important: info.is_important(),
            pinned: None,
        }
    }
}

/// What happens to a snapshot.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Action {
    Keep,
    Remove,
}

/// The verdict on one snapshot, with a one-line reason (`kept: …` or `remove: …`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Decision {
    pub num: u32,
    pub action: Action,
    pub reason: String,
}

/// One decision per candidate, sorted by snapshot number.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Plan {
    pub decisions: Vec<Decision>,
}

impl Plan {
    /// Numbers of the snapshots to delete, ascending.
    pub fn to_remove(&self) -> Vec<u32> {
        self.with_action(Action::Remove)
    }

    /// Numbers of the snapshots that stay, ascending.
    pub fn kept(&self) -> Vec<u32> {
        self.with_action(Action::Keep)
    }

    fn with_action(&self, action: Action) -> Vec<u32> {
        self.decisions
            .iter()
            .filter(|d| d.action == action)
            .map(|d| d.num)
            .collect()
    }
}

/// Which side of a pre/post pair the partner is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Role {
    Pre,
    Post,
}

impl Role {
    fn word(self) -> &'static str {
        match self {
            Role::Pre => "pre",
            Role::Post => "post",
        }
    }
}

/// The planner's working verdict for one candidate (by index).
#[derive(Debug, Clone)]
enum Verdict {
    Keep(String),
    Remove(String),
    /// Held back by the pre/post filter because the partner (an index) is not removed in the
    /// same pass; the wording is settled once all verdicts are known.
    PartnerKept {
        partner: usize,
        role: Role,
    },
}

/// Plans a cleanup: which of `candidates` snapper's number and timeline cleanup would delete
/// at `now` (UTC) under `policy`.
pub fn plan(policy: &Policy, candidates: &[Candidate], now: NaiveDateTime) -> Plan {
    let mut out: Vec<Verdict> =
        vec![
            Verdict::Keep("kept: not considered by any cleanup algorithm".to_string());
            candidates.len()
        ];
    let mut number = Vec::new();
    let mut timeline = Vec::new();
    for (i, c) in candidates.iter().enumerate() {
        match &c.cleanup {
            Cleanup::None => {
                out[i] = Verdict::Keep(
                    "kept: no cleanup algorithm (empty cleanup field: protected, e.g. factory snapshot)"
                        .to_string(),
                )
            }
            Cleanup::Number if policy.number_cleanup => number.push(i),
            Cleanup::Number => out[i] = Verdict::Keep("kept: NUMBER_CLEANUP is off".to_string()),
            Cleanup::Timeline if policy.timeline_cleanup => timeline.push(i),
            Cleanup::Timeline => {
                out[i] = Verdict::Keep("kept: TIMELINE_CLEANUP is off".to_string())
            }
            other @ (Cleanup::EmptyPrePost | Cleanup::Other(_)) => {
                out[i] = Verdict::Keep(format!(
                    "kept: cleanup \"{other}\" is not handled by this command"
                ))
            }
        }
    }

    let partners = Partners::new(candidates);

    // snapper runs each algorithm as its own pass with its own filtering (`snapper cleanup
    // number`, then `snapper cleanup timeline`), so the pre/post filter of one pass only sees
    // that pass's removal list: a number pre whose post is a timeline snapshot is never removed.
    let tentative = number_pass(policy, candidates, &number, &mut out);
    filter(
        candidates,
        tentative,
        (policy.number_min_age, "NUMBER_MIN_AGE"),
        now,
        &partners,
        &mut out,
    );
    let tentative = timeline_pass(policy, candidates, &timeline, &mut out);
    filter(
        candidates,
        tentative,
        (policy.timeline_min_age, "TIMELINE_MIN_AGE"),
        now,
        &partners,
        &mut out,
    );

    let mut decisions: Vec<Decision> = out
        .iter()
        .zip(candidates)
        .map(|(verdict, c)| {
            let (action, reason) = match verdict {
                Verdict::Keep(reason) => (Action::Keep, reason.clone()),
                Verdict::Remove(reason) => (Action::Remove, reason.clone()),
                Verdict::PartnerKept { partner, role } => {
                    let n = candidates[*partner].num;
                    let role = role.word();
                    let reason = if matches!(out[*partner], Verdict::Remove(_)) {
                        // Only possible when a pre has several posts handled by different
                        // algorithms; snapper behaves the same way.
                        format!(
                            "kept: its {role} snapshot {n} is removed by another cleanup algorithm \
                             (pre/post pairs are only removed together within one algorithm)"
                        )
                    } else {
                        format!("kept: its {role} snapshot {n} is kept")
                    };
                    (Action::Keep, reason)
                }
            };
            Decision {
                num: c.num,
                action,
                reason,
            }
        })
        .collect();
    decisions.sort_by_key(|d| d.num);
    Plan { decisions }
}

/// snapper's number algorithm over the candidates `idx` (all with cleanup `number`): records
/// the kept ones in `out` and returns the removal candidates with their reasons.
fn number_pass(
    policy: &Policy,
    candidates: &[Candidate],
    idx: &[usize],
    out: &mut [Verdict],
) -> Vec<(usize, String)> {
    let limit = policy.number_limit;
    let limit_important = policy.number_limit_important;
    let mut newest_first = idx.to_vec();
    newest_first.sort_by_key(|&i| std::cmp::Reverse(candidates[i].num));

    let (mut num, mut num_important) = (0u32, 0u32);
    let mut tentative = Vec::new();
    for i in newest_first {
        let mut by_important = false;
        let mut by_limit = false;
        // The same two independent tests, in the same order, as snapper.
        if num_important < limit_important && candidates[i].important {
            num_important += 1;
            by_important = true;
        }
        if num < limit {
            num += 1;
            by_limit = true;
        }
        let mut why = Vec::new();
        if by_limit {
            why.push(format!("one of the newest {limit} (NUMBER_LIMIT)"));
        }
        if by_important {
            why.push(format!(
                "one of the newest {limit_important} important (NUMBER_LIMIT_IMPORTANT)"
            ));
        }
        if why.is_empty() {
            tentative.push((
                i,
                format!(
                    "remove: beyond NUMBER_LIMIT={limit} and not among the newest {limit_important} important"
                ),
            ));
        } else {
            out[i] = Verdict::Keep(format!("kept: {}", why.join("; ")));
        }
    }
    tentative
}

/// A timeline tier.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Tier {
    Hourly,
    Daily,
    Weekly,
    Monthly,
    Quarterly,
    Yearly,
}

/// In snapper's order of evaluation.
const TIERS: [Tier; 6] = [
    Tier::Hourly,
    Tier::Daily,
    Tier::Weekly,
    Tier::Monthly,
    Tier::Quarterly,
    Tier::Yearly,
];

impl Tier {
    fn name(self) -> &'static str {
        match self {
            Tier::Hourly => "hourly",
            Tier::Daily => "daily",
            Tier::Weekly => "weekly",
            Tier::Monthly => "monthly",
            Tier::Quarterly => "quarterly",
            Tier::Yearly => "yearly",
        }
    }

    fn key_name(self) -> &'static str {
        match self {
            Tier::Hourly => "TIMELINE_LIMIT_HOURLY",
            Tier::Daily => "TIMELINE_LIMIT_DAILY",
            Tier::Weekly => "TIMELINE_LIMIT_WEEKLY",
            Tier::Monthly => "TIMELINE_LIMIT_MONTHLY",
            Tier::Quarterly => "TIMELINE_LIMIT_QUARTERLY",
            Tier::Yearly => "TIMELINE_LIMIT_YEARLY",
        }
    }

    fn limit(self, p: &Policy) -> u32 {
        match self {
            Tier::Hourly => p.limit_hourly,
            Tier::Daily => p.limit_daily,
            Tier::Weekly => p.limit_weekly,
            Tier::Monthly => p.limit_monthly,
            Tier::Quarterly => p.limit_quarterly,
            Tier::Yearly => p.limit_yearly,
        }
    }

    /// Identifies the period `t` (local time) falls in; equal keys mean the same period.
    fn period(self, t: NaiveDateTime) -> (i32, u32, u32, u32) {
        let (y, m, d) = (t.year(), t.month(), t.day());
        match self {
            Tier::Hourly => (y, m, d, t.hour()),
            Tier::Daily => (y, m, d, 0),
            // Weeks run Monday to Sunday, across year boundaries, as snapper's equal_week.
            // Day numbers since the common era cannot overflow an i32 for any NaiveDate.
            Tier::Weekly => {
                let date = t.date();
                let monday = date.num_days_from_ce()
                    - i32::try_from(date.weekday().num_days_from_monday()).unwrap_or(0);
                (monday, 0, 0, 0)
            }
            Tier::Monthly => (y, m, 0, 0),
            Tier::Quarterly => (y, (m - 1) / 3, 0, 0),
            Tier::Yearly => (y, 0, 0, 0),
        }
    }

    /// The period `t` falls in, for humans: `day 2026-11-20`, `week from 2026-11-16`, ...
    fn label(self, t: NaiveDateTime) -> String {
        match self {
            Tier::Hourly => format!("hour {}", t.format("%Y-%m-%d %H:00")),
            Tier::Daily => format!("day {}", t.format("%Y-%m-%d")),
            Tier::Weekly => {
                let date = t.date();
                let back = Days::new(u64::from(date.weekday().num_days_from_monday()));
                let monday = date.checked_sub_days(back).unwrap_or(date);
                format!("week from {}", monday.format("%Y-%m-%d"))
            }
            Tier::Monthly => format!("month {}", t.format("%Y-%m")),
            Tier::Quarterly => format!("quarter {}-Q{}", t.year(), (t.month() - 1) / 3 + 1),
            Tier::Yearly => format!("year {}", t.year()),
        }
    }
}

/// snapper's timeline algorithm over the candidates `idx` (all with cleanup `timeline`):
/// records the kept ones in `out` and returns the removal candidates with their reasons.
///
/// "First of its period" follows snapper's `is_first` to the letter (see the comment inside),
/// including its answers when dates run against numbers because a clock was set back.
fn timeline_pass(
    policy: &Policy,
    candidates: &[Candidate],
    idx: &[usize],
    out: &mut [Verdict],
) -> Vec<(usize, String)> {
    let mut oldest_first = idx.to_vec();
    oldest_first.sort_by_key(|&i| candidates[i].num);

    // snapper's `is_first`, literally: walk from the snapshot towards older numbers; the
    // first entry in another period means "first", an entry of the same period with an
    // earlier time means "not first", equal times are stepped over. With a clock that was
    // set back this can call two snapshots of one day "first", and snapper keeps both, so
    // KOOMPI does too: both tools must agree on the same store.
    let mut first = vec![[false; TIERS.len()]; oldest_first.len()];
    for (t, tier) in TIERS.iter().enumerate() {
        for (pos, &i) in oldest_first.iter().enumerate() {
            let me = &candidates[i];
            let period = tier.period(me.local);
            let mut is_first = true;
            for &j in oldest_first[..pos].iter().rev() {
                let other = &candidates[j];
                if tier.period(other.local) != period {
                    break;
                }
                if me.date > other.date {
                    is_first = false;
                    break;
                }
            }
            first[pos][t] = is_first;
        }
    }

    let mut counters = [0u32; TIERS.len()];
    let mut tentative = Vec::new();
    for (pos, &i) in oldest_first.iter().enumerate().rev() {
        let local = candidates[i].local;
        let mut kept = Vec::new();
        let mut used_up = Vec::new();
        for (t, tier) in TIERS.iter().enumerate() {
            if !first[pos][t] {
                continue;
            }
            let limit = tier.limit(policy);
            if counters[t] < limit {
                counters[t] += 1;
                kept.push(format!(
                    "first of {} ({} {} of {limit})",
                    tier.label(local),
                    tier.name(),
                    counters[t]
                ));
            } else if limit > 0 {
                used_up.push(format!(
                    "first of {}, but {}={limit} is used up",
                    tier.label(local),
                    tier.key_name()
                ));
            }
        }
        if kept.is_empty() {
            let mut reason =
                "remove: timeline: not the first of any kept hour/day/week/month/quarter/year"
                    .to_string();
            if !used_up.is_empty() {
                reason.push_str(&format!(" ({})", used_up.join(", ")));
            }
            tentative.push((i, reason));
        } else {
            out[i] = Verdict::Keep(format!("kept: timeline: {}", kept.join("; ")));
        }
    }
    tentative.reverse();
    tentative
}

/// Pre/post partners, found as snapper finds them.
#[derive(Debug)]
struct Partners {
    /// pre number -> index of its post: the lowest-numbered `post` naming it (snapper's
    /// `findPost` returns the first in number order).
    post_of_pre: HashMap<u32, usize>,
    /// number -> index of the `pre` snapshot with that number (`findPre` only accepts pres).
    pre_by_num: HashMap<u32, usize>,
}

impl Partners {
    fn new(candidates: &[Candidate]) -> Partners {
        let mut by_num: Vec<usize> = (0..candidates.len()).collect();
        by_num.sort_by_key(|&i| candidates[i].num);
        let mut post_of_pre = HashMap::new();
        let mut pre_by_num = HashMap::new();
        for i in by_num {
            let c = &candidates[i];
            match (c.kind, c.pre_num) {
                (SnapshotType::Post, Some(pre)) => {
                    post_of_pre.entry(pre).or_insert(i);
                }
                (SnapshotType::Pre, _) => {
                    pre_by_num.entry(c.num).or_insert(i);
                }
                _ => {}
            }
        }
        Partners {
            post_of_pre,
            pre_by_num,
        }
    }

    /// The partner snapper's filter checks for candidate `i`, if any.
    fn of(&self, candidates: &[Candidate], i: usize) -> Option<(usize, Role)> {
        let c = &candidates[i];
        match c.kind {
            SnapshotType::Pre => self.post_of_pre.get(&c.num).map(|&j| (j, Role::Post)),
            SnapshotType::Post => c
                .pre_num
                .and_then(|p| self.pre_by_num.get(&p))
                .map(|&j| (j, Role::Pre)),
            SnapshotType::Single => None,
        }
    }
}

/// `now - date < min_age` (a date in the future is younger than any minimum age).
fn is_younger(date: NaiveDateTime, now: NaiveDateTime, min_age: u64) -> bool {
    let age = now.signed_duration_since(date).num_seconds();
    age < i64::try_from(min_age).unwrap_or(i64::MAX)
}

/// snapper's `Cleaner::filter` on one algorithm's removal candidates: drops the pinned ones,
/// then the ones younger than the minimum age, then (one pass over what is left) pres whose
/// post and posts whose pre exist but are not in the list. What survives is marked `Remove`.
fn filter(
    candidates: &[Candidate],
    tentative: Vec<(usize, String)>,
    (min_age, min_age_key): (u64, &str),
    now: NaiveDateTime,
    partners: &Partners,
    out: &mut [Verdict],
) {
    let mut tmp = Vec::new();
    for (i, why) in tentative {
        let c = &candidates[i];
        if let Some(pin) = c.pinned {
            out[i] = Verdict::Keep(pin.reason().to_string());
        } else if is_younger(c.date, now, min_age) {
            out[i] = Verdict::Keep(format!("kept: younger than {min_age_key} ({min_age} s)"));
        } else {
            tmp.push((i, why));
        }
    }
    // Membership is judged against the list as it was before this pass, as snapper does.
    let listed: HashSet<usize> = tmp.iter().map(|(i, _)| *i).collect();
    for (i, why) in tmp {
        out[i] = match partners.of(candidates, i) {
            Some((partner, role)) if !listed.contains(&partner) => {
                Verdict::PartnerKept { partner, role }
            }
            _ => Verdict::Remove(why),
        };
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::Duration;
    use proptest::prelude::*;
    use std::collections::{BTreeMap, BTreeSet};

    fn at(s: &str) -> NaiveDateTime {
        NaiveDateTime::parse_from_str(s, "%Y-%m-%d %H:%M:%S").expect("valid test date")
    }

    fn now() -> NaiveDateTime {
        at("2026-11-20 12:00:00")
    }

    fn cand(num: u32, kind: SnapshotType, cleanup: &str, date: NaiveDateTime) -> Candidate {
        Candidate {
            num,
            kind,
            pre_num: None,
            date,
            local: date,
            cleanup: Cleanup::parse(cleanup),
            important: false,
            pinned: None,
        }
    }

    fn single(num: u32, cleanup: &str, date: NaiveDateTime) -> Candidate {
        cand(num, SnapshotType::Single, cleanup, date)
    }

    fn post(num: u32, pre: u32, cleanup: &str, date: NaiveDateTime) -> Candidate {
        Candidate {
            pre_num: Some(pre),
            ..cand(num, SnapshotType::Post, cleanup, date)
        }
    }

    /// KOOMPI's shipped tiers.
    fn koompi() -> Policy {
        Policy {
            number_limit: 10,
            number_limit_important: 5,
            number_min_age: 1800,
            timeline_min_age: 1800,
            limit_hourly: 0,
            limit_daily: 5,
            limit_weekly: 2,
            limit_monthly: 1,
            limit_quarterly: 0,
            limit_yearly: 0,
            ..Policy::default()
        }
    }

    /// A policy keeping nothing by number or timeline, with the given minimum age.
    fn keep_nothing(min_age: u64) -> Policy {
        Policy {
            number_limit: 0,
            number_limit_important: 0,
            number_min_age: min_age,
            timeline_min_age: min_age,
            limit_hourly: 0,
            limit_daily: 0,
            limit_weekly: 0,
            limit_monthly: 0,
            limit_quarterly: 0,
            limit_yearly: 0,
            ..Policy::default()
        }
    }

    fn reason(plan: &Plan, num: u32) -> &str {
        plan.decisions
            .iter()
            .find(|d| d.num == num)
            .map(|d| d.reason.as_str())
            .expect("decision for num")
    }

    fn lookup(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let map: BTreeMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        move |k| map.get(k).cloned()
    }

    // ---- Policy -------------------------------------------------------------------------

    #[test]
    fn default_policy_is_snappers_code_defaults() {
        let p = Policy::default();
        assert!(p.number_cleanup && p.timeline_cleanup);
        assert_eq!((p.number_limit, p.number_limit_important), (50, 10));
        assert_eq!((p.number_min_age, p.timeline_min_age), (3600, 3600));
        assert_eq!(
            [
                p.limit_hourly,
                p.limit_daily,
                p.limit_weekly,
                p.limit_monthly,
                p.limit_quarterly,
                p.limit_yearly
            ],
            [10, 10, 0, 10, 0, 10]
        );
    }

    #[test]
    fn from_lookup_missing_keys_take_defaults() {
        let p = Policy::from_lookup(|_| None).expect("defaults");
        assert_eq!(p, Policy::default());
    }

    #[test]
    fn from_lookup_reads_koompi_config() {
        let p = Policy::from_lookup(lookup(&[
            ("NUMBER_CLEANUP", "yes"),
            ("NUMBER_LIMIT", "10"),
            ("NUMBER_LIMIT_IMPORTANT", "5"),
            ("NUMBER_MIN_AGE", "1800"),
            ("TIMELINE_CLEANUP", "yes"),
            ("TIMELINE_MIN_AGE", "1800"),
            ("TIMELINE_LIMIT_HOURLY", "0"),
            ("TIMELINE_LIMIT_DAILY", "5"),
            ("TIMELINE_LIMIT_WEEKLY", "2"),
            ("TIMELINE_LIMIT_MONTHLY", "1"),
            ("TIMELINE_LIMIT_QUARTERLY", "0"),
            ("TIMELINE_LIMIT_YEARLY", "0"),
        ]))
        .expect("valid config");
        assert_eq!(p, koompi());
    }

    #[test]
    fn from_lookup_ranges_use_the_maximum_and_booleans_accept_true_false() {
        let p = Policy::from_lookup(lookup(&[
            ("NUMBER_LIMIT", "2-10"),
            ("NUMBER_LIMIT_IMPORTANT", "4-4"),
            ("TIMELINE_LIMIT_YEARLY", " 0-3 "),
            ("NUMBER_CLEANUP", "false"),
            ("TIMELINE_CLEANUP", "true"),
        ]))
        .expect("valid config");
        assert_eq!(p.number_limit, 10);
        assert_eq!(p.number_limit_important, 4);
        assert_eq!(p.limit_yearly, 3);
        assert!(!p.number_cleanup);
        assert!(p.timeline_cleanup);
        // Untouched keys keep their defaults.
        assert_eq!(p.limit_monthly, 10);

        let p = Policy::from_lookup(lookup(&[("TIMELINE_CLEANUP", "no")])).expect("valid");
        assert!(!p.timeline_cleanup);
    }

    #[test]
    fn from_lookup_rejects_bad_values() {
        let err = Policy::from_lookup(lookup(&[("NUMBER_LIMIT", "abc")])).expect_err("abc");
        assert_eq!(
            err,
            PolicyError::Invalid {
                key: "NUMBER_LIMIT".into(),
                value: "abc".into()
            }
        );
        assert_eq!(
            err.to_string(),
            r#"NUMBER_LIMIT="abc" is not a number or range"#
        );

        for (key, value) in [
            ("TIMELINE_LIMIT_DAILY", "10-2"), // min > max, as snapper refuses
            ("TIMELINE_LIMIT_DAILY", "-5"),
            ("TIMELINE_LIMIT_DAILY", "5-"),
            ("TIMELINE_LIMIT_DAILY", "1-2-3"),
            ("TIMELINE_LIMIT_DAILY", ""),
            ("TIMELINE_LIMIT_DAILY", "99999999999"),
            ("NUMBER_MIN_AGE", "1h"),
            ("NUMBER_MIN_AGE", "1-2"),
            ("NUMBER_CLEANUP", "maybe"),
        ] {
            let err = Policy::from_lookup(lookup(&[(key, value)])).expect_err(value);
            assert_eq!(
                err,
                PolicyError::Invalid {
                    key: key.into(),
                    value: value.into()
                }
            );
        }
        let err = Policy::from_lookup(lookup(&[("NUMBER_CLEANUP", "maybe")])).expect_err("bool");
        assert_eq!(
            err.to_string(),
            r#"NUMBER_CLEANUP="maybe" is not yes or no"#
        );
        let err = Policy::from_lookup(lookup(&[("TIMELINE_MIN_AGE", "x")])).expect_err("age");
        assert_eq!(
            err.to_string(),
            r#"TIMELINE_MIN_AGE="x" is not a number of seconds"#
        );
    }

    // ---- Candidate / Plan ---------------------------------------------------------------

    #[test]
    fn candidate_from_info_copies_the_record() {
        let mut userdata = BTreeMap::new();
        userdata.insert("important".to_string(), "yes".to_string());
        let info = SnapshotInfo {
            num: 12,
            kind: SnapshotType::Post,
            date: at("2026-11-20 03:00:00"),
            uid: 0,
            pre_num: Some(11),
            description: "pacman".into(),
            cleanup: Cleanup::Number,
            userdata,
        };
        let local = at("2026-11-20 10:00:00");
        let c = Candidate::from_info(&info, local);
        assert_eq!(
            c,
            Candidate {
                num: 12,
                kind: SnapshotType::Post,
                pre_num: Some(11),
                date: info.date,
                local,
                cleanup: Cleanup::Number,
                important: true,
                pinned: None,
            }
        );
    }

    #[test]
    fn empty_input_gives_empty_plan() {
        let p = plan(&Policy::default(), &[], now());
        assert!(p.decisions.is_empty());
        assert!(p.to_remove().is_empty() && p.kept().is_empty());
    }

    // ---- timeline -----------------------------------------------------------------------

    /// 40 daily timeline snapshots, 2026-10-12 .. 2026-11-20 at 10:00 local (UTC+7), under
    /// KOOMPI's tiers: the newest 5 days, the first of the two newest weeks, the first of the
    /// newest month.
    #[test]
    fn koompi_timeline_forty_daily_snapshots() {
        let first_day = at("2026-10-11 03:00:00");
        let cands: Vec<Candidate> = (1..=40)
            .map(|n| {
                let date = first_day + Duration::days(i64::from(n));
                Candidate {
                    local: date + Duration::hours(7),
                    ..single(n, "timeline", date)
                }
            })
            .collect();
        let p = plan(&koompi(), &cands, now());
        // 40 = Fri 2026-11-20; 36 = Mon 2026-11-16; 29 = Mon 2026-11-09; 21 = 2026-11-01.
        assert_eq!(p.kept(), vec![21, 29, 36, 37, 38, 39, 40]);
        let removed: Vec<u32> = (1..=40)
            .filter(|n| ![21, 29, 36, 37, 38, 39, 40].contains(n))
            .collect();
        assert_eq!(p.to_remove(), removed);

        assert_eq!(
            reason(&p, 40),
            "kept: timeline: first of day 2026-11-20 (daily 1 of 5)"
        );
        assert_eq!(
            reason(&p, 36),
            "kept: timeline: first of day 2026-11-16 (daily 5 of 5); first of week from 2026-11-16 (weekly 1 of 2)"
        );
        assert_eq!(
            reason(&p, 29),
            "kept: timeline: first of week from 2026-11-09 (weekly 2 of 2)"
        );
        assert_eq!(
            reason(&p, 21),
            "kept: timeline: first of month 2026-11 (monthly 1 of 1)"
        );
        assert_eq!(
            reason(&p, 35),
            "remove: timeline: not the first of any kept hour/day/week/month/quarter/year (first of day 2026-11-15, but TIMELINE_LIMIT_DAILY=5 is used up)"
        );
        assert_eq!(
            reason(&p, 1),
            "remove: timeline: not the first of any kept hour/day/week/month/quarter/year (first of day 2026-10-12, but TIMELINE_LIMIT_DAILY=5 is used up, first of week from 2026-10-12, but TIMELINE_LIMIT_WEEKLY=2 is used up, first of month 2026-10, but TIMELINE_LIMIT_MONTHLY=1 is used up)"
        );
    }

    #[test]
    fn timeline_periods_use_local_time() {
        // Both are on 2026-11-19 in UTC, but on different days in UTC+7.
        let a = at("2026-11-19 15:00:00");
        let b = at("2026-11-19 18:00:00");
        let cands = vec![
            Candidate {
                local: a + Duration::hours(7),
                ..single(1, "timeline", a)
            },
            Candidate {
                local: b + Duration::hours(7),
                ..single(2, "timeline", b)
            },
        ];
        let policy = Policy {
            limit_daily: 5,
            ..keep_nothing(0)
        };
        let p = plan(&policy, &cands, now());
        assert_eq!(p.to_remove(), Vec::<u32>::new());
        assert_eq!(
            reason(&p, 2),
            "kept: timeline: first of day 2026-11-20 (daily 1 of 5)"
        );

        // Read in UTC (local == date) they share a day and only the older one stays.
        let utc: Vec<Candidate> = [(1, a), (2, b)]
            .into_iter()
            .map(|(n, d)| single(n, "timeline", d))
            .collect();
        assert_eq!(plan(&policy, &utc, now()).to_remove(), vec![2]);
    }

    #[test]
    fn timeline_weeks_cross_the_year_and_quarters_split_months() {
        // Tue 2025-12-30 and Fri 2026-01-02 are in the week from Mon 2025-12-29.
        let weekly = Policy {
            limit_weekly: 5,
            ..keep_nothing(0)
        };
        let cands = vec![
            single(1, "timeline", at("2025-12-30 09:00:00")),
            single(2, "timeline", at("2026-01-02 09:00:00")),
            single(3, "timeline", at("2026-01-05 09:00:00")),
        ];
        let p = plan(&weekly, &cands, now());
        assert_eq!(p.to_remove(), vec![2]);
        assert_eq!(
            reason(&p, 1),
            "kept: timeline: first of week from 2025-12-29 (weekly 2 of 5)"
        );

        let quarterly = Policy {
            limit_quarterly: 10,
            ..keep_nothing(0)
        };
        let cands = vec![
            single(1, "timeline", at("2026-03-31 23:00:00")),
            single(2, "timeline", at("2026-04-01 00:00:00")),
            single(3, "timeline", at("2026-06-30 12:00:00")),
            single(4, "timeline", at("2026-07-01 12:00:00")),
        ];
        let p = plan(&quarterly, &cands, now());
        assert_eq!(p.to_remove(), vec![3]);
        assert_eq!(
            reason(&p, 2),
            "kept: timeline: first of quarter 2026-Q2 (quarterly 2 of 10)"
        );
    }

    #[test]
    fn timeline_one_snapshot_counts_for_every_tier() {
        let policy = Policy {
            limit_hourly: 2,
            limit_yearly: 1,
            ..keep_nothing(0)
        };
        let cands = vec![
            single(1, "timeline", at("2026-11-20 08:00:00")),
            single(2, "timeline", at("2026-11-20 08:30:00")),
            single(3, "timeline", at("2026-11-20 09:00:00")),
            single(4, "timeline", at("2026-11-20 10:00:00")),
        ];
        let p = plan(&policy, &cands, now());
        // hourly keeps 4 and 3; yearly keeps 1, the first of 2026; 2 is nobody's first.
        assert_eq!(p.to_remove(), vec![2]);
        assert_eq!(
            reason(&p, 1),
            "kept: timeline: first of year 2026 (yearly 1 of 1)"
        );
        assert_eq!(
            reason(&p, 3),
            "kept: timeline: first of hour 2026-11-20 09:00 (hourly 2 of 2)"
        );
        assert_eq!(
            reason(&p, 2),
            "remove: timeline: not the first of any kept hour/day/week/month/quarter/year"
        );

        // With room in every tier, the oldest snapshot is the first of all six periods.
        let all = Policy {
            limit_hourly: 10,
            limit_daily: 10,
            limit_weekly: 10,
            limit_monthly: 10,
            limit_quarterly: 10,
            limit_yearly: 10,
            ..keep_nothing(0)
        };
        let p = plan(&all, &cands[..1], now());
        assert_eq!(
            reason(&p, 1),
            "kept: timeline: first of hour 2026-11-20 08:00 (hourly 1 of 10); first of day 2026-11-20 (daily 1 of 10); first of week from 2026-11-16 (weekly 1 of 10); first of month 2026-11 (monthly 1 of 10); first of quarter 2026-Q4 (quarterly 1 of 10); first of year 2026 (yearly 1 of 10)"
        );
    }

    // ---- number -------------------------------------------------------------------------

    /// 20 number snapshots, important: 2 5 8 11 14 17 19; KOOMPI keeps the newest 10
    /// (11..=20, which already hold 4 important ones) plus the 5th newest important, 8.
    #[test]
    fn koompi_number_twenty_with_important() {
        let important = [2, 5, 8, 11, 14, 17, 19];
        let cands: Vec<Candidate> = (1..=20)
            .map(|n| Candidate {
                important: important.contains(&n),
                ..single(
                    n,
                    "number",
                    at("2026-11-01 00:00:00") + Duration::hours(i64::from(n)),
                )
            })
            .collect();
        let p = plan(&koompi(), &cands, now());
        assert_eq!(p.to_remove(), vec![1, 2, 3, 4, 5, 6, 7, 9, 10]);
        assert_eq!(p.kept(), vec![8, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20]);
        assert_eq!(reason(&p, 20), "kept: one of the newest 10 (NUMBER_LIMIT)");
        assert_eq!(
            reason(&p, 19),
            "kept: one of the newest 10 (NUMBER_LIMIT); one of the newest 5 important (NUMBER_LIMIT_IMPORTANT)"
        );
        assert_eq!(
            reason(&p, 8),
            "kept: one of the newest 5 important (NUMBER_LIMIT_IMPORTANT)"
        );
        assert_eq!(
            reason(&p, 5),
            "remove: beyond NUMBER_LIMIT=10 and not among the newest 5 important"
        );
    }

    #[test]
    fn number_ignores_other_cleanups_and_can_be_off() {
        let old = at("2026-01-01 00:00:00");
        let cands = vec![
            single(0, "", old),
            single(1, "", old),
            single(2, "number", old),
            single(3, "timeline", old),
            single(4, "empty-pre-post", old),
            single(5, "number", old),
            single(6, "number", old),
        ];
        let policy = Policy {
            number_limit: 1,
            timeline_cleanup: false,
            ..Policy::default()
        };
        let p = plan(&policy, &cands, now());
        // Only number snapshots count toward NUMBER_LIMIT: 6 is kept, 2 and 5 go.
        assert_eq!(p.to_remove(), vec![2, 5]);
        assert_eq!(
            reason(&p, 1),
            "kept: no cleanup algorithm (empty cleanup field: protected, e.g. factory snapshot)"
        );
        assert_eq!(reason(&p, 3), "kept: TIMELINE_CLEANUP is off");
        assert_eq!(
            reason(&p, 4),
            r#"kept: cleanup "empty-pre-post" is not handled by this command"#
        );

        let off = Policy {
            number_cleanup: false,
            ..keep_nothing(0)
        };
        let p = plan(&off, &cands, now());
        assert_eq!(p.to_remove(), vec![3]);
        assert_eq!(reason(&p, 2), "kept: NUMBER_CLEANUP is off");
    }

    // ---- filters ------------------------------------------------------------------------

    #[test]
    fn pre_post_pairs_go_together() {
        let old = at("2026-01-01 00:00:00");
        let cands = vec![
            cand(1, SnapshotType::Pre, "number", old),
            post(2, 1, "number", old),
            cand(3, SnapshotType::Pre, "number", old),
            single(4, "number", old),
            post(5, 3, "number", old),
            single(6, "number", old),
        ];
        let policy = Policy {
            number_limit: 2,
            ..keep_nothing(0)
        };
        let p = plan(&policy, &cands, now());
        // 5 and 6 are the newest two; 3's post 5 stays, so 3 stays.
        assert_eq!(p.to_remove(), vec![1, 2, 4]);
        assert_eq!(reason(&p, 3), "kept: its post snapshot 5 is kept");
    }

    #[test]
    fn pre_post_min_age_protects_the_partner() {
        let old = at("2026-01-01 00:00:00");
        let young = now() - Duration::seconds(600);
        let cands = vec![
            cand(1, SnapshotType::Pre, "number", old),
            post(2, 1, "number", young),
            cand(3, SnapshotType::Pre, "number", young),
            post(4, 3, "number", old), // a post older than its pre: the clock moved
            single(5, "number", old),
        ];
        let p = plan(&keep_nothing(1800), &cands, now());
        assert_eq!(p.to_remove(), vec![5]);
        assert_eq!(reason(&p, 1), "kept: its post snapshot 2 is kept");
        assert_eq!(reason(&p, 2), "kept: younger than NUMBER_MIN_AGE (1800 s)");
        assert_eq!(reason(&p, 4), "kept: its pre snapshot 3 is kept");
    }

    #[test]
    fn pre_post_pairing_is_per_algorithm() {
        // snapper cleans number and timeline in separate passes, so a pair split between the
        // two algorithms is never removed: in each pass the partner is not on the list.
        let old = at("2026-01-01 00:00:00");
        let cands = vec![
            cand(1, SnapshotType::Pre, "number", old),
            post(2, 1, "timeline", old + Duration::days(40)),
            cand(3, SnapshotType::Pre, "number", old),
            post(4, 3, "", old),
            // A post naming a single (or a missing) snapshot has no pre to wait for.
            single(5, "number", old),
            post(6, 5, "number", old),
            post(7, 99, "number", old),
        ];
        let policy = Policy {
            limit_daily: 0,
            ..keep_nothing(0)
        };
        let p = plan(&policy, &cands, now());
        assert_eq!(p.to_remove(), vec![5, 6, 7]);
        assert_eq!(reason(&p, 1), "kept: its post snapshot 2 is kept");
        assert_eq!(reason(&p, 2), "kept: its pre snapshot 1 is kept");
        assert_eq!(reason(&p, 3), "kept: its post snapshot 4 is kept");
    }

    #[test]
    fn pre_with_two_posts_checks_the_first_post_like_snapper() {
        // snapper's findPost returns the lowest-numbered post naming the pre.
        let old = at("2026-01-01 00:00:00");
        let cands = vec![
            cand(1, SnapshotType::Pre, "number", old),
            post(2, 1, "timeline", old),
            post(3, 1, "number", old),
        ];
        let policy = keep_nothing(0);
        let p = plan(&policy, &cands, now());
        // number pass: 1's post is 2, not on the number list -> 1 stays; 3's pre 1 is on the
        // list -> 3 goes. timeline pass: 2's pre 1 is not on the timeline list -> 2 stays.
        assert_eq!(p.to_remove(), vec![3]);
        assert_eq!(reason(&p, 1), "kept: its post snapshot 2 is kept");
        assert_eq!(reason(&p, 2), "kept: its pre snapshot 1 is kept");
    }

    #[test]
    fn second_post_of_a_pre_removed_by_another_algorithm() {
        // The pre and its first post go in the timeline pass; the second post, a number
        // snapshot, waits for a pre that is not on the number list (snapper does the same).
        let old = at("2026-01-01 00:00:00");
        let cands = vec![
            cand(1, SnapshotType::Pre, "timeline", old),
            post(2, 1, "timeline", old),
            post(3, 1, "number", old),
        ];
        let p = plan(&keep_nothing(0), &cands, now());
        assert_eq!(p.to_remove(), vec![1, 2]);
        assert_eq!(
            reason(&p, 3),
            "kept: its pre snapshot 1 is removed by another cleanup algorithm \
             (pre/post pairs are only removed together within one algorithm)"
        );
    }

    #[test]
    fn min_age_boundary() {
        let cands = vec![
            single(1, "number", now() - Duration::seconds(1800)),
            single(2, "number", now() - Duration::seconds(1799)),
            single(3, "timeline", now() - Duration::seconds(1799)),
            single(4, "number", now() + Duration::seconds(60)), // clock skew: in the future
        ];
        let policy = Policy {
            timeline_min_age: 1000,
            ..keep_nothing(1800)
        };
        let p = plan(&policy, &cands, now());
        assert_eq!(p.to_remove(), vec![1, 3]);
        assert_eq!(reason(&p, 2), "kept: younger than NUMBER_MIN_AGE (1800 s)");
        assert_eq!(reason(&p, 4), "kept: younger than NUMBER_MIN_AGE (1800 s)");
        assert_eq!(
            reason(&p, 3),
            "remove: timeline: not the first of any kept hour/day/week/month/quarter/year"
        );
        let p = plan(
            &Policy {
                timeline_min_age: 1800,
                ..policy
            },
            &cands,
            now(),
        );
        assert_eq!(
            reason(&p, 3),
            "kept: younger than TIMELINE_MIN_AGE (1800 s)"
        );
    }

    #[test]
    fn pinned_snapshots_are_never_removed() {
        let old = at("2026-01-01 00:00:00");
        let cands = vec![
            Candidate {
                pinned: Some(Pin::Active),
                ..single(1, "number", old)
            },
            Candidate {
                pinned: Some(Pin::Default),
                ..single(2, "timeline", old)
            },
            single(3, "number", old),
            // A pre whose post is pinned stays with it.
            cand(4, SnapshotType::Pre, "number", old),
            Candidate {
                pinned: Some(Pin::Default),
                ..post(5, 4, "number", old)
            },
        ];
        let p = plan(&keep_nothing(0), &cands, now());
        assert_eq!(p.to_remove(), vec![3]);
        assert_eq!(reason(&p, 1), "kept: the running system (active)");
        assert_eq!(reason(&p, 2), "kept: the btrfs default subvolume");
        assert_eq!(reason(&p, 4), "kept: its post snapshot 5 is kept");
    }

    // ---- property tests -----------------------------------------------------------------

    const DAY: u64 = 86_400;

    /// One generated snapshot before numbers, dates and pairs are assigned.
    #[derive(Debug, Clone)]
    struct Raw {
        gap: u32,
        age: u64,
        kind: u8,
        cleanup: u8,
        important: bool,
        pin: u8,
        pre_sel: usize,
    }

    fn raw() -> impl Strategy<Value = Raw> {
        (
            1u32..4,
            prop_oneof![0u64..7_200, 0u64..3 * DAY, 0u64..730 * DAY],
            0u8..3,
            0u8..10,
            any::<bool>(),
            0u8..16,
            any::<usize>(),
        )
            .prop_map(|(gap, age, kind, cleanup, important, pin, pre_sel)| Raw {
                gap,
                age,
                kind,
                cleanup,
                important,
                pin,
                pre_sel,
            })
    }

    /// Builds candidates with unique, increasing numbers.
    ///
    /// Two restrictions, both what snapper itself produces and both needed for the cleanup to
    /// be idempotent in snapper too:
    /// - dates never decrease with the number (snapper numbers snapshots as it takes them). If
    ///   they could, the timeline algorithm is not idempotent: with TIMELINE_LIMIT_DAILY=1 and
    ///   numbers 1 (day A), 2 (day B), 3 (day A, pinned), the first run keeps 2 and removes 1;
    ///   the second run finds 3 the first of day A, keeps it and removes 2.
    /// - a pre has at most one post (snapper's `create --pre/--post` pairs them one to one). If
    ///   a pre had a number post and a timeline post, the number pass could remove the pre while
    ///   the timeline pass keeps the timeline post "for its pre", which the next run removes.
    ///
    /// `strict` makes dates strictly increasing, for the comparison with snapper's literal
    /// algorithm (which treats two same-period snapshots of the same second differently).
    fn build(raws: &[Raw], offset_hours: i64, strict: bool) -> Vec<Candidate> {
        let mut ages: Vec<u64> = raws.iter().map(|r| r.age).collect();
        ages.sort_unstable_by(|a, b| b.cmp(a));
        let mut num = 0u32;
        let mut open_pres: Vec<u32> = Vec::new();
        let mut prev: Option<NaiveDateTime> = None;
        let mut out = Vec::new();
        for (r, age) in raws.iter().zip(ages) {
            num += r.gap;
            let mut date = now() - Duration::seconds(i64::try_from(age).expect("small age"));
            if let Some(p) = prev {
                if strict && date <= p {
                    date = p + Duration::seconds(1);
                }
            }
            prev = Some(date);
            let kind = match r.kind {
                0 => SnapshotType::Single,
                1 => SnapshotType::Pre,
                _ => SnapshotType::Post,
            };
            let pre_num = match kind {
                SnapshotType::Post if !open_pres.is_empty() && r.pre_sel % 4 != 0 => {
                    Some(open_pres.remove(r.pre_sel % open_pres.len()))
                }
                // A post whose pre is gone (or was never there).
                SnapshotType::Post if r.pre_sel % 8 != 0 => Some(1_000_000 + num),
                _ => None,
            };
            if kind == SnapshotType::Pre {
                open_pres.push(num);
            }
            let cleanup = match r.cleanup {
                0..=4 => "number",
                5..=7 => "timeline",
                8 => "",
                _ => "empty-pre-post",
            };
            let pinned = match r.pin {
                0 => Some(Pin::Active),
                1 => Some(Pin::Default),
                _ => None,
            };
            out.push(Candidate {
                num,
                kind,
                pre_num,
                date,
                local: date + Duration::hours(offset_hours),
                cleanup: Cleanup::parse(cleanup),
                important: r.important,
                pinned,
            });
        }
        out
    }

    fn arb_policy() -> impl Strategy<Value = Policy> {
        (
            (
                any::<bool>(),
                0u32..8,
                0u32..5,
                prop_oneof![Just(0u64), 0u64..4 * DAY],
            ),
            (any::<bool>(), prop_oneof![Just(0u64), 0u64..4 * DAY]),
            prop::array::uniform6(0u32..4),
        )
            .prop_map(
                |(
                    (number_cleanup, number_limit, number_limit_important, number_min_age),
                    (timeline_cleanup, timeline_min_age),
                    limits,
                )| Policy {
                    number_cleanup,
                    number_limit,
                    number_limit_important,
                    number_min_age,
                    timeline_cleanup,
                    timeline_min_age,
                    limit_hourly: limits[0],
                    limit_daily: limits[1],
                    limit_weekly: limits[2],
                    limit_monthly: limits[3],
                    limit_quarterly: limits[4],
                    limit_yearly: limits[5],
                },
            )
    }

    fn arb_case(strict: bool) -> impl Strategy<Value = (Policy, Vec<Candidate>)> {
        (
            arb_policy(),
            prop::collection::vec(raw(), 0..40),
            -12i64..15,
        )
            .prop_map(move |(policy, raws, offset)| (policy, build(&raws, offset, strict)))
    }

    fn removed_set(p: &Plan) -> BTreeSet<u32> {
        p.to_remove().into_iter().collect()
    }

    /// Numbers of the newest `n` candidates (by number) satisfying `pred`.
    fn newest(cands: &[Candidate], n: u32, pred: impl Fn(&Candidate) -> bool) -> Vec<u32> {
        let mut nums: Vec<u32> = cands.iter().filter(|c| pred(c)).map(|c| c.num).collect();
        nums.sort_unstable_by(|a, b| b.cmp(a));
        nums.truncate(usize::try_from(n).expect("small limit"));
        nums
    }

    // A literal port of snapper's client/cleanup.cc (list walks with erase, is_first with its
    // early exits, equal_week with tm_year arithmetic), used as an independent reference.
    mod snapper_port {
        use super::*;

        type Pred = fn(&NaiveDateTime, &NaiveDateTime) -> bool;

        fn tm_year(t: &NaiveDateTime) -> i32 {
            t.year() - 1900
        }
        fn yday_of_weeks_monday(t: &NaiveDateTime) -> i32 {
            let yday = i32::try_from(t.ordinal0()).expect("yday");
            let wday = i32::try_from(t.weekday().num_days_from_sunday()).expect("wday");
            yday - if wday != 0 { wday } else { 7 }
        }
        fn days_in_year(t: &NaiveDateTime) -> i32 {
            let y = tm_year(t);
            if y % 4 == 0 && (y % 100 != 0 || y % 400 == 0) {
                366
            } else {
                365
            }
        }
        fn equal_year(a: &NaiveDateTime, b: &NaiveDateTime) -> bool {
            a.year() == b.year()
        }
        fn equal_quarter(a: &NaiveDateTime, b: &NaiveDateTime) -> bool {
            equal_year(a, b) && a.month0() / 3 == b.month0() / 3
        }
        fn equal_month(a: &NaiveDateTime, b: &NaiveDateTime) -> bool {
            equal_year(a, b) && a.month() == b.month()
        }
        fn equal_week(a: &NaiveDateTime, b: &NaiveDateTime) -> bool {
            if tm_year(a) == tm_year(b) {
                return yday_of_weeks_monday(a) == yday_of_weeks_monday(b);
            }
            if tm_year(a) + 1 == tm_year(b) {
                return yday_of_weeks_monday(a) == yday_of_weeks_monday(b) + days_in_year(a);
            }
            if tm_year(a) == tm_year(b) + 1 {
                return yday_of_weeks_monday(a) + days_in_year(b) == yday_of_weeks_monday(b);
            }
            false
        }
        fn equal_day(a: &NaiveDateTime, b: &NaiveDateTime) -> bool {
            equal_month(a, b) && a.day() == b.day()
        }
        fn equal_hour(a: &NaiveDateTime, b: &NaiveDateTime) -> bool {
            equal_day(a, b) && a.hour() == b.hour()
        }

        fn is_first(rest: &[&Candidate], it1: &Candidate, pred: Pred) -> bool {
            for it2 in rest {
                if std::ptr::eq(it1, *it2) {
                    continue;
                }
                if !pred(&it1.local, &it2.local) {
                    return true;
                }
                if it1.date > it2.date {
                    return false;
                }
            }
            true
        }

        fn filter(
            all: &[&Candidate],
            mut tmp: Vec<&Candidate>,
            min_age: u64,
            now: NaiveDateTime,
        ) -> Vec<u32> {
            tmp.retain(|c| c.pinned.is_none());
            let limit = now - Duration::seconds(i64::try_from(min_age).expect("small"));
            tmp.retain(|c| c.date <= limit);
            let has = |tmp: &[&Candidate], c: &Candidate| tmp.iter().any(|t| t.num == c.num);
            let mut ret = Vec::new();
            for c in &tmp {
                if c.kind == SnapshotType::Pre {
                    let post = all
                        .iter()
                        .find(|p| p.kind == SnapshotType::Post && p.pre_num == Some(c.num));
                    if let Some(post) = post {
                        if !has(&tmp, post) {
                            continue;
                        }
                    }
                }
                if c.kind == SnapshotType::Post {
                    let pre = all
                        .iter()
                        .find(|p| p.kind == SnapshotType::Pre && Some(p.num) == c.pre_num);
                    if let Some(pre) = pre {
                        if !has(&tmp, pre) {
                            continue;
                        }
                    }
                }
                ret.push(c.num);
            }
            ret
        }

        pub(super) fn removed(
            policy: &Policy,
            cands: &[Candidate],
            now: NaiveDateTime,
        ) -> BTreeSet<u32> {
            let mut all: Vec<&Candidate> = cands.iter().collect();
            all.sort_by_key(|c| c.num);
            let mut out = BTreeSet::new();

            if policy.number_cleanup {
                let mut ret: Vec<&Candidate> = all
                    .iter()
                    .rev()
                    .filter(|c| c.cleanup == Cleanup::Number)
                    .copied()
                    .collect();
                let (mut num, mut num_important) = (0, 0);
                let mut pos = 0;
                while pos < ret.len() {
                    let mut keep = false;
                    if num_important < policy.number_limit_important && ret[pos].important {
                        num_important += 1;
                        keep = true;
                    }
                    if num < policy.number_limit {
                        num += 1;
                        keep = true;
                    }
                    if keep {
                        ret.remove(pos);
                    } else {
                        pos += 1;
                    }
                }
                ret.reverse();
                out.extend(filter(&all, ret, policy.number_min_age, now));
            }

            if policy.timeline_cleanup {
                let mut ret: Vec<&Candidate> = all
                    .iter()
                    .rev()
                    .filter(|c| c.cleanup == Cleanup::Timeline)
                    .copied()
                    .collect();
                let tiers: [(u32, Pred); 6] = [
                    (policy.limit_hourly, equal_hour),
                    (policy.limit_daily, equal_day),
                    (policy.limit_weekly, equal_week),
                    (policy.limit_monthly, equal_month),
                    (policy.limit_quarterly, equal_quarter),
                    (policy.limit_yearly, equal_year),
                ];
                let mut counters = [0u32; 6];
                let mut pos = 0;
                while pos < ret.len() {
                    let mut keep = false;
                    for (k, (limit, pred)) in tiers.iter().enumerate() {
                        if counters[k] < *limit && is_first(&ret[pos..], ret[pos], *pred) {
                            counters[k] += 1;
                            keep = true;
                        }
                    }
                    if keep {
                        ret.remove(pos);
                    } else {
                        pos += 1;
                    }
                }
                ret.reverse();
                out.extend(filter(&all, ret, policy.timeline_min_age, now));
            }
            out
        }
    }

    proptest! {
        /// Empty cleanup, unhandled cleanup, disabled algorithm, pinned, or younger than the
        /// algorithm's minimum age: never removed.
        #[test]
        fn prop_protected_snapshots_survive((policy, cands) in arb_case(false)) {
            let p = plan(&policy, &cands, now());
            let removed = removed_set(&p);
            for c in &cands {
                let protected = c.pinned.is_some()
                    || match c.cleanup.as_str() {
                        "number" => {
                            !policy.number_cleanup
                                || is_younger(c.date, now(), policy.number_min_age)
                        }
                        "timeline" => {
                            !policy.timeline_cleanup
                                || is_younger(c.date, now(), policy.timeline_min_age)
                        }
                        _ => true,
                    };
                if protected {
                    prop_assert!(!removed.contains(&c.num), "protected {:?} removed", c);
                }
            }
        }

        /// Deleting what the plan says and planning again deletes nothing more, and every
        /// survivor keeps its decision and reason.
        #[test]
        fn prop_plan_is_idempotent((policy, cands) in arb_case(false)) {
            let first = plan(&policy, &cands, now());
            let removed = removed_set(&first);
            let rest: Vec<Candidate> =
                cands.iter().filter(|c| !removed.contains(&c.num)).cloned().collect();
            let second = plan(&policy, &rest, now());
            prop_assert_eq!(second.to_remove(), Vec::<u32>::new());
            let kept: Vec<Decision> = first
                .decisions
                .iter()
                .filter(|d| d.action == Action::Keep)
                .cloned()
                .collect();
            prop_assert_eq!(second.decisions, kept);
        }

        /// The newest NUMBER_LIMIT number snapshots and the newest NUMBER_LIMIT_IMPORTANT
        /// important number snapshots always survive.
        #[test]
        fn prop_newest_number_snapshots_survive((policy, cands) in arb_case(false)) {
            let p = plan(&policy, &cands, now());
            let removed = removed_set(&p);
            let number = |c: &Candidate| c.cleanup == Cleanup::Number;
            let newest_n = newest(&cands, policy.number_limit, number);
            let count = cands.iter().filter(|c| number(c)).count();
            prop_assert_eq!(
                newest_n.len(),
                count.min(usize::try_from(policy.number_limit).expect("small"))
            );
            for n in newest_n {
                prop_assert!(!removed.contains(&n), "{} is among the newest by number", n);
            }
            for n in newest(&cands, policy.number_limit_important, |c| number(c) && c.important) {
                prop_assert!(!removed.contains(&n), "{} is among the newest important", n);
            }
        }

        /// Exactly one decision per candidate, sorted by number, with a matching reason word.
        #[test]
        fn prop_one_sorted_decision_per_candidate((policy, cands) in arb_case(false)) {
            let p = plan(&policy, &cands, now());
            let mut nums: Vec<u32> = cands.iter().map(|c| c.num).collect();
            nums.sort_unstable();
            let got: Vec<u32> = p.decisions.iter().map(|d| d.num).collect();
            prop_assert_eq!(got, nums);
            for d in &p.decisions {
                let prefix = match d.action {
                    Action::Keep => "kept: ",
                    Action::Remove => "remove: ",
                };
                prop_assert!(d.reason.starts_with(prefix), "{:?}", d);
                prop_assert!(!d.reason.contains('\n'));
            }
            let mut all = p.to_remove();
            all.extend(p.kept());
            all.sort_unstable();
            prop_assert_eq!(all, p.decisions.iter().map(|d| d.num).collect::<Vec<_>>());
        }

        /// An important snapshot goes only if it is neither among the newest
        /// NUMBER_LIMIT_IMPORTANT important nor among the newest NUMBER_LIMIT number snapshots
        /// (for number snapshots; the timeline algorithm ignores `important`, as snapper's).
        #[test]
        fn prop_important_removed_only_beyond_both_limits((policy, cands) in arb_case(false)) {
            let p = plan(&policy, &cands, now());
            let number = |c: &Candidate| c.cleanup == Cleanup::Number;
            let newest_n = newest(&cands, policy.number_limit, number);
            let newest_i =
                newest(&cands, policy.number_limit_important, |c| number(c) && c.important);
            for c in &cands {
                if c.important && number(c) && p.to_remove().contains(&c.num) {
                    prop_assert!(!newest_i.contains(&c.num) && !newest_n.contains(&c.num));
                    prop_assert!(policy.number_cleanup);
                }
            }
        }

        /// A removed pre takes its post along, and a removed post its pre.
        #[test]
        fn prop_pre_post_pairs_removed_together((policy, cands) in arb_case(false)) {
            let p = plan(&policy, &cands, now());
            let removed = removed_set(&p);
            for c in &cands {
                if c.kind != SnapshotType::Post {
                    continue;
                }
                let Some(pre) = cands
                    .iter()
                    .find(|x| x.kind == SnapshotType::Pre && Some(x.num) == c.pre_num)
                else {
                    continue;
                };
                prop_assert_eq!(removed.contains(&c.num), removed.contains(&pre.num));
            }
        }

        /// For dates strictly increasing with the number, the planner removes exactly what a
        /// literal port of snapper's cleanup.cc removes.
        #[test]
        fn prop_matches_literal_snapper_port((policy, cands) in arb_case(true)) {
            let p = plan(&policy, &cands, now());
            prop_assert_eq!(removed_set(&p), snapper_port::removed(&policy, &cands, now()));
        }

        /// The same with dates in any order against the numbers (a clock set back, equal
        /// seconds): KOOMPI and snapper must still agree on the same store.
        #[test]
        fn prop_matches_literal_snapper_port_any_dates(
            (policy, mut cands) in arb_case(false),
            rotate in 0usize..40,
        ) {
            let n = cands.len();
            if n > 1 {
                let dates: Vec<_> = cands.iter().map(|c| (c.date, c.local)).collect();
                for (i, c) in cands.iter_mut().enumerate() {
                    let (d, l) = dates[(i * 7 + rotate) % n];
                    c.date = d;
                    c.local = l;
                }
            }
            let p = plan(&policy, &cands, now());
            prop_assert_eq!(removed_set(&p), snapper_port::removed(&policy, &cands, now()));
        }
    }
}
