//! `koompi-snapshot`: create, list, inspect, delete, clean up, diff and roll back snapshots.

use std::collections::BTreeMap;
use std::path::PathBuf;

use anyhow::{bail, Context, Result};
use chrono::{Local, NaiveDateTime, Utc};
use clap::{Args, Parser, Subcommand, ValueEnum};
use serde::Serialize;

use koompi_core::cmd::Runner;
use koompi_core::output::{self, Format};
use koompi_snapshots::btrfs;
use koompi_snapshots::cleanup::{self, to_local};
use koompi_snapshots::config::SnapperConfig;
use koompi_snapshots::diff;
use koompi_snapshots::retention::Action;
use koompi_snapshots::rollback;
use koompi_snapshots::store::{CreateRequest, Entry, Snapshot, Store};
use koompi_snapshots::{Cleanup, SnapshotType};

use crate::global::GlobalArgs;

// Paragraphs are single lines: clap wraps them to the terminal (hand-broken lines would be
// wrapped a second time). Example lines stay under 72 columns.
const AFTER_HELP: &str = "\
IDs: a snapshot number (12), a name (factory-20260101), or a glob on names (factory-*) which picks the newest match.

Snapshots are stored in snapper's format, so `snapper list` shows them too. Every command needs root (sudo).

Examples:
  koompi-snapshot create before-drivers \"Before the drivers\" --important
  koompi-snapshot list
  koompi-snapshot diff before-drivers
  koompi-snapshot rollback factory-*     # takes effect at the next boot
  koompi-snapshot cleanup --dry-run      # what would be kept, and why";

/// Manage KOOMPI OS system snapshots (Btrfs, snapper-compatible).
#[derive(Debug, Parser)]
#[command(name = "koompi-snapshot", version, help_expected = true, after_help = AFTER_HELP)]
pub struct Cli {
    #[command(flatten)]
    target: Target,
    #[command(flatten)]
    global: GlobalArgs,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Args)]
struct Target {
    /// Snapper config name in /etc/snapper/configs.
    #[arg(
        long,
        short = 'c',
        global = true,
        default_value = "root",
        conflicts_with = "config_file"
    )]
    config: String,
    /// A config file in snapper's format at any path (for any mounted Btrfs subvolume).
    #[arg(long, global = true, value_name = "PATH")]
    config_file: Option<PathBuf>,
}

/// The cleanup rules a new snapshot can get.
#[derive(Debug, Clone, Copy, ValueEnum)]
enum CleanupArg {
    /// Removed by the number rule (NUMBER_LIMIT, NUMBER_LIMIT_IMPORTANT).
    Number,
    /// Removed by the timeline rule (TIMELINE_LIMIT_*).
    Timeline,
    /// Never removed by cleanup (like the factory snapshot).
    None,
}

impl From<CleanupArg> for Cleanup {
    fn from(c: CleanupArg) -> Self {
        match c {
            CleanupArg::Number => Cleanup::Number,
            CleanupArg::Timeline => Cleanup::Timeline,
            CleanupArg::None => Cleanup::None,
        }
    }
}

/// `koompi-snapshot create`'s options.
#[derive(Debug, Args)]
struct CreateArgs {
    /// A name to use instead of the number (letters, digits, - _ . + : @).
    name: Option<String>,
    /// What this snapshot is for.
    description: Option<String>,
    /// Description (alternative to the positional argument).
    #[arg(short, long, conflicts_with = "description")]
    desc: Option<String>,
    /// Mark important: kept by NUMBER_LIMIT_IMPORTANT (important=yes).
    #[arg(long)]
    important: bool,
    /// Which cleanup rule may remove it later.
    #[arg(long, value_enum, default_value = "number")]
    cleanup: CleanupArg,
    /// Extra userdata, KEY=VALUE (repeatable).
    #[arg(long = "userdata", short = 'u', value_name = "KEY=VALUE")]
    userdata: Vec<String>,
    /// The scheduled daily snapshot: named daily-YYYYMMDD, cleanup timeline; does
    /// nothing if today's exists already (for timers).
    #[arg(long, conflicts_with_all = ["name", "cleanup", "important"])]
    timeline: bool,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Take a snapshot of the subvolume now.
    Create(CreateArgs),
    /// List snapshots (broken ones are shown with the reason).
    List,
    /// Show everything about one snapshot.
    Info {
        /// A number, a name or a glob on names.
        id: String,
    },
    /// Delete snapshots.
    Delete {
        /// Numbers, names or globs on names.
        #[arg(required = true)]
        ids: Vec<String>,
        /// Also delete snapshots with no cleanup rule (such as the factory snapshot).
        #[arg(long)]
        force: bool,
    },
    /// Make a snapshot the system again at the next boot; the current state is kept.
    Rollback {
        /// A number, a name or a glob on names.
        id: String,
    },
    /// Apply the retention policy (the NUMBER_* and TIMELINE_* settings).
    Cleanup {
        /// Only show what would be removed and why each snapshot is kept.
        #[arg(long)]
        dry_run: bool,
    },
    /// Disk usage, snapshots per class, the last snapshot.
    Status,
    /// Files added, changed and removed since ID (or between ID and ID2).
    Diff {
        /// The snapshot to compare from.
        id: String,
        /// The snapshot to compare to (default: the subvolume as it is now).
        id2: Option<String>,
    },
}

/// Entry point of the binary.
pub fn main() -> Result<()> {
    let cli = Cli::parse();
    cli.global.init_logging();
    run(cli)
}

fn open_store(t: &Target) -> Result<Store> {
    let cfg = match &t.config_file {
        Some(p) => SnapperConfig::from_file(p)?,
        None => SnapperConfig::by_name(&t.config)?,
    };
    Ok(Store::open(cfg)?)
}

/// Runs a parsed command line.
pub fn run(cli: Cli) -> Result<()> {
    let fmt = cli.global.format();
    let store = open_store(&cli.target)?;
    let runner = Runner::real();
    match cli.command {
        Command::Create(args) => create(&store, fmt, &args),
        Command::List => list(&store, fmt),
        Command::Info { id } => info(&store, fmt, &id),
        Command::Delete { ids, force } => delete(&store, fmt, &ids, force, &runner),
        Command::Rollback { id } => do_rollback(&store, fmt, &id),
        Command::Cleanup { dry_run } => do_cleanup(&store, fmt, dry_run, &runner),
        Command::Status => status(&store, fmt),
        Command::Diff { id, id2 } => do_diff(&store, fmt, &id, id2.as_deref()),
    }
}

/// A snapshot as printed in JSON.
#[derive(Debug, Serialize)]
struct View<'a> {
    number: u32,
    #[serde(rename = "type")]
    kind: &'a str,
    pre_number: Option<u32>,
    /// UTC, RFC 3339.
    date: String,
    uid: u32,
    name: Option<&'a str>,
    description: &'a str,
    cleanup: &'a str,
    important: bool,
    userdata: &'a BTreeMap<String, String>,
    read_only: bool,
    active: bool,
    path: &'a std::path::Path,
}

impl<'a> View<'a> {
    fn of(s: &'a Snapshot) -> Self {
        View {
            number: s.info.num,
            kind: s.info.kind.as_str(),
            pre_number: s.info.pre_num,
            date: utc_rfc3339(s.info.date),
            uid: s.info.uid,
            name: s.info.name(),
            description: &s.info.description,
            cleanup: s.info.cleanup.as_str(),
            important: s.info.is_important(),
            userdata: &s.info.userdata,
            read_only: s.read_only,
            active: s.active,
            path: &s.path,
        }
    }
}

#[derive(Debug, Serialize)]
struct BrokenView<'a> {
    number: u32,
    broken: &'a str,
}

fn utc_rfc3339(d: NaiveDateTime) -> String {
    d.and_utc().format("%Y-%m-%dT%H:%M:%SZ").to_string()
}

fn local_str(d: NaiveDateTime) -> String {
    to_local(d).format("%Y-%m-%d %H:%M:%S").to_string()
}

fn resolve(store: &Store, entries: &[Entry], id: &str) -> Result<u32> {
    Ok(store.resolve(entries, id)?)
}

fn create(store: &Store, fmt: Format, args: &CreateArgs) -> Result<()> {
    let description = args.description.as_ref().or(args.desc.as_ref());
    let mut req = CreateRequest {
        description: description.cloned().unwrap_or_default(),
        cleanup: args.cleanup.into(),
        ..Default::default()
    };
    for kv in &args.userdata {
        let Some((k, v)) = kv.split_once('=') else {
            bail!("invalid userdata {kv:?}: use KEY=VALUE");
        };
        if k == koompi_snapshots::model::NAME_KEY {
            bail!("set the name as the first argument, not as userdata");
        }
        koompi_snapshots::store::validate_userdata(k, v)?;
        req.userdata.insert(k.to_string(), v.to_string());
    }
    if args.important {
        req = req.important();
    }
    if args.timeline {
        let today = Local::now().format("daily-%Y%m%d").to_string();
        if let Some(num) = store.find_name(&today)? {
            return print_existing(store, fmt, num, &today);
        }
        req.cleanup = Cleanup::Timeline;
        if req.description.is_empty() {
            req.description = "timeline".into();
        }
        req = req.with_name(&today)?;
    } else if let Some(n) = &args.name {
        req = req
            .with_name(n)
            .map_err(|e| anyhow::anyhow!("{e} (to give only a description, use --desc TEXT)"))?;
    }
    let snap = store.create(&req)?;
    match fmt {
        Format::Json => print!("{}", output::to_json(&View::of(&snap))),
        Format::Human => println!(
            "Created snapshot {}{}",
            snap.info.num,
            snap.info
                .name()
                .map(|n| format!(" ({n})"))
                .unwrap_or_default()
        ),
    }
    Ok(())
}

fn print_existing(store: &Store, fmt: Format, num: u32, name: &str) -> Result<()> {
    let snap = store.get(num)?;
    match fmt {
        Format::Json => print!("{}", output::to_json(&View::of(&snap))),
        Format::Human => println!("Today's snapshot {name} exists already (snapshot {num})"),
    }
    Ok(())
}

fn list(store: &Store, fmt: Format) -> Result<()> {
    let entries = store.entries()?;
    if fmt == Format::Json {
        let items: Vec<serde_json::Value> = entries
            .iter()
            .map(|e| match e {
                Entry::Ok(s) => serde_json::to_value(View::of(s)),
                Entry::Broken(b) => serde_json::to_value(BrokenView {
                    number: b.num,
                    broken: &b.reason,
                }),
            })
            .collect::<std::result::Result<_, _>>()?;
        print!("{}", output::to_json(&items));
        return Ok(());
    }
    if entries.is_empty() {
        println!("No snapshots yet. Take one with: koompi-snapshot create NAME \"what it is for\"");
        return Ok(());
    }
    // Compact columns so that the table fits an 80-column console: the name with the
    // description under it in one column, the only one that wraps (at word boundaries,
    // never narrower than the longest name); the type only when there are pre/post
    // snapshots; flags as letters explained below the table.
    let pre_post = entries
        .iter()
        .any(|e| matches!(e, Entry::Ok(s) if s.info.kind != SnapshotType::Single));
    let mut header = vec!["#"];
    if pre_post {
        header.push("Type");
    }
    header.extend(["Date", "Name / description", "Clean", "Flags"]);
    let free = header.len() - 3;
    let mut t = output::table(header);
    let mut used = std::collections::BTreeSet::new();
    let mut longest_name = 0;
    for e in &entries {
        let mut row = Vec::new();
        match e {
            Entry::Ok(s) => {
                let mut flags = String::new();
                for (on, letter) in [
                    (s.info.is_important(), 'i'),
                    (s.info.cleanup == Cleanup::None, 'p'),
                    (s.active, 'r'),
                    (!s.read_only, 'w'),
                ] {
                    if on {
                        flags.push(letter);
                        used.insert(letter);
                    }
                }
                let name = s.info.name().unwrap_or("");
                longest_name = longest_name.max(name.chars().count());
                let text = match (name, s.info.description.as_str()) {
                    ("", d) => d.to_string(),
                    (n, "") => n.to_string(),
                    (n, d) => format!("{n}\n{d}"),
                };
                let cleanup = match s.info.cleanup.as_str() {
                    "timeline" => "daily".to_string(),
                    c => c.to_string(),
                };
                row.push(s.info.num.to_string());
                if pre_post {
                    row.push(match s.info.pre_num {
                        Some(p) => format!("{} ({p})", s.info.kind.as_str()),
                        None => s.info.kind.as_str().to_string(),
                    });
                }
                row.extend([
                    to_local(s.info.date).format("%Y-%m-%d %H:%M").to_string(),
                    text,
                    cleanup,
                    flags,
                ]);
            }
            Entry::Broken(b) => {
                row.push(b.num.to_string());
                if pre_post {
                    row.push(String::new());
                }
                row.extend([
                    "BROKEN".to_string(),
                    b.reason.clone(),
                    String::new(),
                    String::new(),
                ]);
            }
        }
        t.add_row(row);
    }
    output::wrap_only(&mut t, free, longest_name.max(12));
    println!("{t}");
    if !used.is_empty() {
        let legend: Vec<&str> = used
            .iter()
            .map(|l| match l {
                'i' => "i important",
                'p' => "p protected (never cleaned up)",
                'r' => "r running now",
                _ => "w writable",
            })
            .collect();
        println!("Flags: {}", legend.join(", "));
    }
    Ok(())
}

fn info(store: &Store, fmt: Format, id: &str) -> Result<()> {
    let entries = store.entries()?;
    let num = resolve(store, &entries, id)?;
    let s = store.get(num)?;
    match fmt {
        Format::Json => print!("{}", output::to_json(&View::of(&s))),
        Format::Human => {
            let v = View::of(&s);
            println!("Snapshot:    {}", v.number);
            if let Some(n) = v.name {
                println!("Name:        {n}");
            }
            println!("Type:        {}", v.kind);
            if let Some(p) = v.pre_number {
                println!("Pre:         {p}");
            }
            println!("Date:        {} (UTC {})", local_str(s.info.date), v.date);
            println!("Description: {}", v.description);
            println!(
                "Cleanup:     {}",
                if v.cleanup.is_empty() {
                    "none (protected)"
                } else {
                    v.cleanup
                }
            );
            println!("Important:   {}", if v.important { "yes" } else { "no" });
            println!("Read-only:   {}", if v.read_only { "yes" } else { "no" });
            println!("Running:     {}", if v.active { "yes" } else { "no" });
            println!("Path:        {}", v.path.display());
            for (k, val) in v.userdata {
                println!("Userdata:    {k}={val}");
            }
        }
    }
    Ok(())
}

fn delete(store: &Store, fmt: Format, ids: &[String], force: bool, runner: &Runner) -> Result<()> {
    let entries = store.entries()?;
    // Resolve every ID before deleting anything, so a typo deletes nothing.
    let mut nums = Vec::new();
    for id in ids {
        let n = resolve(store, &entries, id)?;
        if let Some(Entry::Ok(s)) = entries.iter().find(|e| e.num() == n) {
            if s.info.cleanup == Cleanup::None && !force {
                bail!(
                    "snapshot {n} has no cleanup rule (a protected snapshot such as the factory snapshot); add --force to delete it"
                );
            }
        }
        if !nums.contains(&n) {
            nums.push(n);
        }
    }
    let default_id = store.default_subvolume_id(runner);
    let mut deleted = Vec::new();
    for n in &nums {
        store
            .delete(*n, default_id)
            .with_context(|| format!("deleted {deleted:?} before this failed"))?;
        deleted.push(*n);
        if fmt == Format::Human {
            println!("Deleted snapshot {n}");
        }
    }
    if fmt == Format::Json {
        print!(
            "{}",
            output::to_json(&serde_json::json!({ "deleted": deleted }))
        );
    }
    Ok(())
}

fn do_rollback(store: &Store, fmt: Format, id: &str) -> Result<()> {
    let entries = store.entries()?;
    let num = resolve(store, &entries, id)?;
    let report = rollback::rollback(store, num)?;
    match fmt {
        Format::Json => print!("{}", output::to_json(&report)),
        Format::Human => {
            for line in &report.recovered {
                println!("Note: {line}");
            }
            println!(
                "Rolled back: {} is now a copy of snapshot {}.",
                report.root_subvolume, report.target
            );
            println!(
                "The state before the rollback is kept as snapshot {} (important).",
                report.backup
            );
            println!("Reboot to start the restored system.");
        }
    }
    Ok(())
}

/// Snapshot numbers, space-separated.
fn join_nums(nums: &[u32]) -> String {
    nums.iter()
        .map(u32::to_string)
        .collect::<Vec<_>>()
        .join(" ")
}

fn do_cleanup(store: &Store, fmt: Format, dry_run: bool, runner: &Runner) -> Result<()> {
    let policy = store.config.policy()?;
    let now = Utc::now().naive_utc();
    if dry_run {
        let plan = cleanup::plan(store, &policy, runner, now)?;
        match fmt {
            Format::Json => print!("{}", output::to_json(&plan)),
            Format::Human => {
                let mut t = output::table(["#", "Action", "Why"]);
                for d in &plan.decisions {
                    let a = match d.action {
                        Action::Keep => "keep",
                        Action::Remove => "REMOVE",
                    };
                    t.add_row(vec![d.num.to_string(), a.to_string(), d.reason.clone()]);
                }
                output::wrap_only(&mut t, 2, 12);
                println!("{t}");
                let debris = store.heal_locked(true)?;
                if !debris.removed.is_empty() {
                    println!(
                        "Would remove the remains of {} interrupted snapshot(s): {}",
                        debris.removed.len(),
                        join_nums(&debris.removed)
                    );
                }
                if debris.temp_files > 0 {
                    println!(
                        "Would remove {} stray temporary info.xml file(s).",
                        debris.temp_files
                    );
                }
                println!(
                    "Would remove {} of {} snapshots (dry run: nothing was changed).",
                    plan.to_remove().len(),
                    plan.decisions.len()
                );
            }
        }
        return Ok(());
    }
    let out = cleanup::run(store, &policy, runner, now)?;
    match fmt {
        Format::Json => print!("{}", output::to_json(&out)),
        Format::Human => {
            if !out.healed.removed.is_empty() {
                println!(
                    "Removed the remains of {} interrupted snapshot(s): {}",
                    out.healed.removed.len(),
                    join_nums(&out.healed.removed)
                );
            }
            if out.healed.temp_files > 0 {
                println!(
                    "Removed {} stray temporary info.xml file(s).",
                    out.healed.temp_files
                );
            }
            if !out.removed.is_empty() {
                println!(
                    "Removed {} snapshot(s): {}",
                    out.removed.len(),
                    join_nums(&out.removed)
                );
            } else if out.failed.is_empty() && out.healed.failed.is_empty() {
                println!(
                    "Nothing to clean up ({} snapshots kept).",
                    out.plan.decisions.len()
                );
            }
        }
    }
    if !out.failed.is_empty() || !out.healed.failed.is_empty() {
        let msgs: Vec<String> = out
            .failed
            .iter()
            .chain(&out.healed.failed)
            .map(|(n, e)| format!("{n}: {e}"))
            .collect();
        bail!(
            "could not remove {} snapshot(s): {}",
            msgs.len(),
            msgs.join("; ")
        );
    }
    Ok(())
}

#[derive(Debug, Default, Serialize)]
struct Counts {
    total: usize,
    number: usize,
    timeline: usize,
    protected: usize,
    other: usize,
    important: usize,
    pre_post: usize,
    broken: usize,
}

#[derive(Debug, Serialize)]
struct StatusView<'a> {
    subvolume: &'a std::path::Path,
    filesystem: btrfs::Usage,
    snapshots: Counts,
    last: Option<View<'a>>,
    running_snapshot: Option<u32>,
    interrupted_rollback: bool,
}

fn status(store: &Store, fmt: Format) -> Result<()> {
    let entries = store.entries()?;
    let mut c = Counts::default();
    let mut last = None;
    let mut running = None;
    let mut interrupted = false;
    for e in &entries {
        c.total += 1;
        if store
            .info_dir(e.num())
            .join(rollback::JOURNAL_NAME)
            .exists()
        {
            interrupted = true;
        }
        match e {
            Entry::Broken(_) => c.broken += 1,
            Entry::Ok(s) => {
                match s.info.cleanup.as_str() {
                    "number" => c.number += 1,
                    "timeline" => c.timeline += 1,
                    "" => c.protected += 1,
                    _ => c.other += 1,
                }
                if s.info.is_important() {
                    c.important += 1;
                }
                if s.info.kind != koompi_snapshots::SnapshotType::Single {
                    c.pre_post += 1;
                }
                if s.active {
                    running = Some(s.info.num);
                }
                last = Some(s);
            }
        }
    }
    let usage = btrfs::usage(store.subvolume())
        .with_context(|| format!("cannot read disk usage of {}", store.subvolume().display()))?;
    let v = StatusView {
        subvolume: store.subvolume(),
        filesystem: usage,
        snapshots: c,
        last: last.map(View::of),
        running_snapshot: running,
        interrupted_rollback: interrupted,
    };
    match fmt {
        Format::Json => print!("{}", output::to_json(&v)),
        Format::Human => {
            let gib = |b: u64| b as f64 / (1024.0 * 1024.0 * 1024.0);
            println!("Subvolume:  {}", v.subvolume.display());
            println!(
                "Disk:       {:.1} GiB used of {:.1} GiB, {:.1} GiB free",
                gib(v.filesystem.used_bytes),
                gib(v.filesystem.size_bytes),
                gib(v.filesystem.free_bytes)
            );
            let s = &v.snapshots;
            println!(
                "Snapshots:  {} ({} number, {} timeline, {} protected, {} important, {} pre/post{})",
                s.total,
                s.number,
                s.timeline,
                s.protected,
                s.important,
                s.pre_post,
                if s.broken > 0 {
                    format!(", {} BROKEN", s.broken)
                } else {
                    String::new()
                }
            );
            match &v.last {
                Some(l) => println!(
                    "Last:       #{} {} {}",
                    l.number,
                    last.map(|s| local_str(s.info.date)).unwrap_or_default(),
                    l.name.unwrap_or(l.description)
                ),
                None => println!("Last:       none"),
            }
            if let Some(r) = v.running_snapshot {
                println!("Running:    snapshot {r} (not the normal root)");
            }
            if v.interrupted_rollback {
                println!("Warning:    a rollback was interrupted; run `koompi-snapshot rollback` again to finish it");
            }
        }
    }
    Ok(())
}

fn do_diff(store: &Store, fmt: Format, id: &str, id2: Option<&str>) -> Result<()> {
    let entries = store.entries()?;
    let a = store.get(resolve(store, &entries, id)?)?;
    let (b_path, b_label) = match id2 {
        Some(i) => {
            let b = store.get(resolve(store, &entries, i)?)?;
            (b.path.clone(), b.info.num.to_string())
        }
        None => (store.subvolume().to_path_buf(), "current".to_string()),
    };
    let changes = diff::diff(&a.path, &b_path)?;
    match fmt {
        Format::Json => print!(
            "{}",
            output::to_json(&serde_json::json!({
                "from": a.info.num,
                "to": b_label,
                "changes": changes,
            }))
        ),
        Format::Human => {
            for ch in &changes {
                println!("{} {}", ch.kind.mark(), ch.path);
            }
            let count = |k| changes.iter().filter(|c| c.kind == k).count();
            eprintln!(
                "{} added, {} changed, {} removed ({} -> {})",
                count(diff::ChangeKind::Added),
                count(diff::ChangeKind::Changed),
                count(diff::ChangeKind::Removed),
                a.info.num,
                b_label
            );
        }
    }
    Ok(())
}
