//! Retention checked against the real snapper: the same history of snapshots (dates forged
//! in info.xml, as snapper reads them) is cleaned up by `koompi-snapshot cleanup` on one
//! filesystem and by `snapper cleanup number` + `snapper cleanup timeline` on another, and
//! both must keep exactly the same snapshots.
#![allow(clippy::unwrap_used)]

use std::collections::BTreeSet;
use std::fs;

use chrono::{Duration, NaiveDateTime, Utc};
use koompi_testutil::{require_root, LoopBtrfs};

mod common;
use common::{ks, ks_json};

fn listed(fx: &LoopBtrfs) -> BTreeSet<u64> {
    ks_json(fx, &["list"])
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["number"].as_u64().unwrap())
        .collect()
}

/// Sets the date snapper and koompi read from info.xml.
fn forge_date(fx: &LoopBtrfs, num: u32, date: NaiveDateTime) {
    let p = fx.snapshots().join(format!("{num}/info.xml"));
    let text = fs::read_to_string(&p).unwrap();
    let start = text.find("<date>").unwrap() + "<date>".len();
    let end = text.find("</date>").unwrap();
    let new = format!(
        "{}{}{}",
        &text[..start],
        date.format("%Y-%m-%d %H:%M:%S"),
        &text[end..]
    );
    fs::write(&p, new).unwrap();
}

/// A history: 45 days of timeline snapshots (some days twice, some missing), then number
/// snapshots, some important, the newest younger than the min age; a pre/post pair.
fn build_history(fx: &LoopBtrfs) {
    let now = Utc::now().naive_utc();
    let next = |args: &[&str]| -> u32 {
        let v = ks_json(fx, args);
        u32::try_from(v["number"].as_u64().unwrap()).unwrap()
    };
    for day in (1..=45i64).rev() {
        if day % 7 == 3 {
            continue; // a day the laptop was off
        }
        let n = next(&["create", "--cleanup", "timeline", "--desc", "timeline"]);
        forge_date(fx, n, now - Duration::days(day) - Duration::hours(3));
        if day % 5 == 0 {
            let n = next(&["create", "--cleanup", "timeline", "--desc", "timeline"]);
            forge_date(fx, n, now - Duration::days(day) + Duration::hours(2));
        }
    }
    // The clock was set back (a dead CMOS battery): two later snapshots dated earlier on
    // days that already have one.
    for day in [2i64, 6] {
        let n = next(&[
            "create",
            "--cleanup",
            "timeline",
            "--desc",
            "clock set back",
        ]);
        forge_date(fx, n, now - Duration::days(day) - Duration::hours(9));
    }
    for i in 0..18i64 {
        let mut args = vec!["create", "--cleanup", "number", "--desc", "manual"];
        if i % 3 == 0 {
            args.push("--important");
        }
        let n = next(&args);
        forge_date(fx, n, now - Duration::hours(40 - i * 2));
    }
    // Two younger than NUMBER_MIN_AGE (1800 s in this test's config).
    for _ in 0..2 {
        next(&["create", "--cleanup", "number"]);
    }
}

fn snapper_pair(fx: &LoopBtrfs, cfg: &str) {
    let pre = fx.snapper(
        cfg,
        &["create", "-t", "pre", "-p", "-c", "number", "-d", "pre"],
    );
    fx.snapper(
        cfg,
        &[
            "create",
            "-t",
            "post",
            "--pre-number",
            pre.trim(),
            "-c",
            "number",
            "-d",
            "post",
        ],
    );
}

#[test]
fn cleanup_keeps_what_snapper_keeps() {
    if !require_root("cleanup_keeps_what_snapper_keeps") {
        return;
    }
    let extra =
        koompi_testutil::KOOMPI_POLICY.replace("NUMBER_MIN_AGE=\"0\"", "NUMBER_MIN_AGE=\"1800\"");
    let mut ours = LoopBtrfs::new(koompi_testutil::Layout::Koompi, 320, &extra);
    let mut theirs = LoopBtrfs::new(koompi_testutil::Layout::Koompi, 320, &extra);
    let ours_cfg = ours.snapper_config();
    let theirs_cfg = theirs.snapper_config();
    for (fx, cfg) in [(&ours, &ours_cfg), (&theirs, &theirs_cfg)] {
        snapper_pair(fx, cfg);
        build_history(fx);
    }
    let before = listed(&ours);
    let history: std::collections::BTreeMap<u64, String> = ks_json(&ours, &["list"])
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            (
                s["number"].as_u64().unwrap(),
                s["date"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    assert_eq!(before, listed(&theirs));
    assert!(before.len() > 60, "{}", before.len());

    // The dry run explains every snapshot and changes nothing.
    let plan = ks_json(&ours, &["cleanup", "--dry-run"]);
    let decisions = plan["decisions"].as_array().unwrap();
    assert_eq!(decisions.len(), before.len());
    assert!(decisions
        .iter()
        .all(|d| !d["reason"].as_str().unwrap().is_empty()));
    let planned_keep: BTreeSet<u64> = decisions
        .iter()
        .filter(|d| d["action"] == "keep")
        .map(|d| d["num"].as_u64().unwrap())
        .collect();
    assert_eq!(listed(&ours), before, "dry run removed something");

    ks(&ours).arg("cleanup").assert().success();
    theirs.snapper(&theirs_cfg, &["cleanup", "number"]);
    theirs.snapper(&theirs_cfg, &["cleanup", "timeline"]);
    let kept_ours = listed(&ours);
    let kept_theirs = listed(&theirs);
    assert_eq!(
        kept_ours, planned_keep,
        "cleanup did not follow its own plan"
    );
    let differ: Vec<String> = kept_ours
        .symmetric_difference(&kept_theirs)
        .map(|n| {
            let d = decisions.iter().find(|d| d["num"] == *n).unwrap();
            format!("{n} ({}): {}", history[n], d["reason"])
        })
        .collect();
    assert!(
        differ.is_empty(),
        "koompi and snapper kept different snapshots: {differ:#?}"
    );
    assert!(kept_ours.len() < before.len(), "nothing was cleaned");
    // Idempotent: a second cleanup removes nothing.
    let again = ks_json(&ours, &["cleanup"]);
    assert!(again["removed"].as_array().unwrap().is_empty());
    // KOOMPI tiers: at most 5 daily + 2 weekly + 1 monthly timeline snapshots survive.
    let timeline_left = ks_json(&ours, &["list"])
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| s["cleanup"] == "timeline")
        .count();
    assert!((5..=8).contains(&timeline_left), "{timeline_left}");
    let _ = (&mut ours, &mut theirs);
}
