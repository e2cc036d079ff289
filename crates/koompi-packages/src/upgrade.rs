//! Safe upgrades: `koompi upgrade` and `koompi upgrade --transactional`.
//!
//! The classic upgrade (DESIGN.md, "Updates"): an important pre-update snapshot named
//! `pre-update-DATE`, `pacman -Syu` (or paru as the invoking user), the GRUB menu
//! regenerated, the retention applied. If pacman fails the user is told which snapshot
//! holds the system as it was and how to go back.
//!
//! The transactional upgrade never touches the running system:
//!
//! 1. leftovers of an interrupted transaction (snapshots marked
//!    `koompi-transaction=in-progress`, and anything still mounted in them) are removed;
//! 2. the *base*: a read-only, important `pre-update-DATE` snapshot of the running root;
//! 3. the *work* snapshot: a writable snapshot of the base, marked in progress and never
//!    counted as known-good (it has not booted yet);
//! 4. `pacman -Syu --root WORK` with /dev, /proc and /sys mounted in it for scriptlets and
//!    hooks, pacman's log going to the shared /var/log, the package cache shared;
//! 5. /etc changes the running system made since the base are merged into the work
//!    snapshot ([`crate::etcmerge`]);
//! 6. the work snapshot is set read-only and unmarked, and becomes `@` at the next boot
//!    through the snapshot engine's power-safe rollback (which keeps the running `@` as an
//!    important backup);
//! 7. the new `@`'s GRUB menu is regenerated from inside it (mounted as `@`, so the menu
//!    names `@`), the watchdog's fallback is pointed at the newest known-good snapshot, and
//!    the retention runs.
//!
//! Until step 6 the next boot is the running system; an interruption leaves only the
//! marked work snapshot, which the next run removes. The first boot of the new root is
//! unconfirmed, so the watchdog falls back to the old system if it fails three times.

use std::ffi::OsString;
use std::fs;
use std::path::{Path, PathBuf};

use chrono::{NaiveDateTime, Utc};
use koompi_boot::watchdog;
use koompi_core::cmd::{Cmd, CmdError, Runner};
use koompi_snapshots::model::KNOWN_GOOD_KEY;
use koompi_snapshots::rollback::{self, Control};
use koompi_snapshots::store::{CreateRequest, Store};
use koompi_snapshots::SnapshotType;
use serde::Serialize;

use crate::etcmerge;

/// Userdata key marking a transaction's work snapshot.
pub const TRANSACTION_KEY: &str = "koompi-transaction";
/// Its value while the transaction runs.
pub const IN_PROGRESS: &str = "in-progress";
/// Its value once the snapshot became the next root.
pub const APPLIED: &str = "applied";

/// Errors of an upgrade.
#[derive(Debug, thiserror::Error)]
pub enum UpgradeError {
    #[error(transparent)]
    Snapshot(#[from] koompi_snapshots::Error),
    #[error(transparent)]
    Cmd(#[from] CmdError),
    #[error(transparent)]
    Merge(#[from] etcmerge::MergeError),
    #[error("{0}")]
    Io(String),
    #[error("{what} failed (exit {code}){}", snapshot_hint(.snapshot))]
    Failed {
        what: String,
        code: i32,
        snapshot: Option<(u32, String)>,
    },
    #[error("interrupted before {step:?} (test hook)")]
    Interrupted {
        step: TxStep,
        /// Stopped dead, as by a power loss: nothing was cleaned up.
        crash: bool,
    },
}

fn snapshot_hint(s: &Option<(u32, String)>) -> String {
    match s {
        Some((n, name)) => format!(
            "; the system before it is snapshot {n} ({name}): to go back, run \
             `sudo koompi-snapshot rollback {n}` and reboot"
        ),
        None => String::new(),
    }
}

/// The name of a pre-update snapshot taken at `now`.
pub fn pre_update_name(now: NaiveDateTime) -> String {
    format!("pre-update-{}", now.format("%Y%m%d-%H%M%S"))
}

/// The request for the pre-update snapshot.
pub fn pre_update_request(now: NaiveDateTime) -> Result<CreateRequest, UpgradeError> {
    let name = pre_update_name(now);
    Ok(CreateRequest {
        kind: SnapshotType::Single,
        description: "before koompi upgrade".into(),
        cleanup: koompi_snapshots::Cleanup::Number,
        ..CreateRequest::default()
    }
    .with_name(&name)?
    .important())
}

/// Takes the pre-update snapshot; a second one in the same second gets `-2`, `-3`, ...
pub fn create_pre_update(
    store: &Store,
    now: NaiveDateTime,
) -> Result<(koompi_snapshots::store::Snapshot, String), UpgradeError> {
    let base = pre_update_name(now);
    let mut name = base.clone();
    for i in 2..100 {
        if store.find_name(&name)?.is_none() {
            break;
        }
        name = format!("{base}-{i}");
    }
    let req = pre_update_request(now)?.with_name(&name)?;
    let snap = store.create(&req)?;
    Ok((snap, name))
}

/// How pacman (or paru) is run for the upgrade.
#[derive(Debug, Clone)]
pub struct UpgradeCommand {
    /// Program and the arguments before `-Syu` (e.g. `runuser -u USER -- paru`).
    pub program: Vec<OsString>,
    /// Options after `-Syu` (system options, `--noconfirm`).
    pub options: Vec<OsString>,
    /// Send the program's output to stderr (our stdout carries `--json`).
    pub quiet_stdout: bool,
}

impl UpgradeCommand {
    fn cmd(&self, extra: &[OsString]) -> Result<Cmd, UpgradeError> {
        let (prog, pre) = self
            .program
            .split_first()
            .ok_or_else(|| UpgradeError::Io("no upgrade program".into()))?;
        let c = Cmd::new(prog)
            .args(pre)
            .arg("-Syu")
            .args(&self.options)
            .args(extra);
        Ok(if self.quiet_stdout {
            c.stdout_to_stderr()
        } else {
            c
        })
    }
}

/// The result of the classic upgrade.
#[derive(Debug, Clone, Serialize)]
pub struct UpgradeReport {
    /// The pre-update snapshot: number and name.
    pub snapshot: Option<(u32, String)>,
    pub grub: GrubOutcome,
    pub cleaned: Vec<u32>,
}

/// What happened to the GRUB menu.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum GrubOutcome {
    Regenerated(String),
    /// No /boot/grub/grub.cfg or no grub-mkconfig: nothing to regenerate.
    NotUsed,
}

/// The program that writes GRUB's menu: grub-mkconfig, or update-grub (Debian).
fn grub_mkconfig(root: &Path) -> Option<Vec<String>> {
    for dir in ["usr/bin", "usr/sbin", "bin", "sbin"] {
        if root.join(dir).join("grub-mkconfig").exists() {
            return Some(vec![
                "grub-mkconfig".into(),
                "-o".into(),
                "/boot/grub/grub.cfg".into(),
            ]);
        }
    }
    None
}

/// Regenerates `/boot/grub/grub.cfg` of the running system.
pub fn regenerate_grub(runner: &Runner) -> Result<GrubOutcome, UpgradeError> {
    let root = Path::new("/");
    if !root.join("boot/grub/grub.cfg").exists() {
        return Ok(GrubOutcome::NotUsed);
    }
    let Some(argv) = grub_mkconfig(root) else {
        return Ok(GrubOutcome::NotUsed);
    };
    let line = argv.join(" ");
    Cmd::new(&argv[0]).args(&argv[1..]).run(runner)?;
    Ok(GrubOutcome::Regenerated(line))
}

/// Applies the snapper config's retention; the numbers removed.
pub fn apply_retention(store: &Store, runner: &Runner) -> Result<Vec<u32>, UpgradeError> {
    let policy = store.config.policy()?;
    let out = koompi_snapshots::cleanup::run(store, &policy, runner, Utc::now().naive_utc())?;
    for (n, why) in &out.failed {
        tracing::warn!("retention could not delete snapshot {n}: {why}");
    }
    Ok(out.removed)
}

/// The classic upgrade. `store` is the root's snapshot store when it has one.
pub fn upgrade(
    store: Option<&Store>,
    upgrade: &UpgradeCommand,
    runner: &Runner,
    regenerate: bool,
) -> Result<UpgradeReport, UpgradeError> {
    let now = Utc::now().naive_utc();
    let snapshot = match store {
        Some(store) => {
            let (snap, name) = create_pre_update(store, now)?;
            Some((snap.info.num, name))
        }
        None => None,
    };
    let code = upgrade.cmd(&[])?.run_interactive(runner)?;
    if code != 0 {
        return Err(UpgradeError::Failed {
            what: "the upgrade".into(),
            code,
            snapshot,
        });
    }
    let grub = if regenerate {
        regenerate_grub(runner)?
    } else {
        GrubOutcome::NotUsed
    };
    let cleaned = match store {
        Some(store) => apply_retention(store, runner)?,
        None => Vec::new(),
    };
    Ok(UpgradeReport {
        snapshot,
        grub,
        cleaned,
    })
}

/// The steps of a transactional upgrade, for the test hook.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum TxStep {
    CleanLeftovers,
    Base,
    Work,
    Mount,
    Pacman,
    Unmount,
    MergeEtc,
    Seal,
    Switch,
    Grub,
    Fallback,
    Retention,
}

/// The result of a transactional upgrade.
#[derive(Debug, Clone, Serialize)]
pub struct TxReport {
    /// Work snapshots of interrupted transactions that were removed first.
    pub removed_leftovers: Vec<u32>,
    /// The pre-update snapshot (the system as it runs now).
    pub base: (u32, String),
    /// The upgraded snapshot that becomes `@` at the next boot.
    pub work: u32,
    /// The snapshot keeping the running `@` (made by the switch).
    pub backup: u32,
    pub etc: etcmerge::Report,
    pub grub: GrubOutcome,
    pub cleaned: Vec<u32>,
}

/// How the transactional upgrade runs pacman and what it does around it.
#[derive(Debug, Clone)]
pub struct TxOptions {
    pub upgrade: UpgradeCommand,
    /// Where pacman's log goes (the shared /var/log).
    pub logfile: PathBuf,
    /// Regenerate the new root's GRUB menu.
    pub grub: bool,
    /// The boot watchdog's settings, where it runs: its ESP is bound into the new root for
    /// GRUB's menu, and its fallback is pointed at the newest known-good snapshot after
    /// the switch. `None` where there is no watchdog (a test root).
    pub watchdog: Option<watchdog::Settings>,
}

/// Work snapshots left by interrupted transactions.
pub fn leftovers(store: &Store) -> Result<Vec<u32>, UpgradeError> {
    Ok(store
        .snapshots()?
        .into_iter()
        .filter(|s| s.info.userdata.get(TRANSACTION_KEY).map(String::as_str) == Some(IN_PROGRESS))
        .map(|s| s.info.num)
        .collect())
}

/// Unmounts everything mounted at or below `dir`, deepest first (lazily, so a busy
/// mount does not stop the cleanup).
fn unmount_below(dir: &Path, runner: &Runner) -> Result<(), UpgradeError> {
    let table = koompi_core::mounts::read()
        .map_err(|e| UpgradeError::Io(format!("cannot read the mount table: {e}")))?;
    let mut points: Vec<PathBuf> = table
        .iter()
        .map(|m| m.mount_point.clone())
        .filter(|p| p.starts_with(dir))
        .collect();
    points.sort_by_key(|p| std::cmp::Reverse(p.components().count()));
    points.dedup();
    for p in points {
        Cmd::new("umount").arg("-l").arg(&p).run(runner)?;
    }
    Ok(())
}

/// The API filesystems pacman's scriptlets and hooks need inside the work root.
const API_MOUNTS: &[(&str, &[&str])] = &[
    ("proc", &["-t", "proc", "proc"]),
    ("sys", &["--rbind", "/sys"]),
    ("dev", &["--rbind", "/dev"]),
];

fn mount_api(root: &Path, runner: &Runner) -> Result<(), UpgradeError> {
    for (dir, args) in API_MOUNTS {
        let target = root.join(dir);
        fs::create_dir_all(&target)
            .map_err(|e| UpgradeError::Io(format!("cannot create {}: {e}", target.display())))?;
        Cmd::new("mount").args(*args).arg(&target).run(runner)?;
    }
    Ok(())
}

/// Removes the work snapshots of interrupted transactions; their numbers.
pub fn clean_leftovers(store: &Store, runner: &Runner) -> Result<Vec<u32>, UpgradeError> {
    let nums = leftovers(store)?;
    for n in &nums {
        let snap = store.get(*n)?;
        unmount_below(&snap.path, runner)?;
        // A work snapshot is writable; deleting does not care.
        store.delete(*n, None)?;
    }
    Ok(nums)
}

/// The transactional upgrade (see the module documentation). `hook` is called before each
/// step; tests use it to change the running system mid-way or to interrupt.
pub fn transactional(
    store: &Store,
    opts: &TxOptions,
    runner: &Runner,
    hook: &mut dyn FnMut(TxStep) -> Control,
) -> Result<TxReport, UpgradeError> {
    let mut step = |s: TxStep| -> Result<(), UpgradeError> {
        match hook(s) {
            Control::Continue => Ok(()),
            Control::Fail => Err(UpgradeError::Interrupted {
                step: s,
                crash: false,
            }),
            Control::Crash => Err(UpgradeError::Interrupted {
                step: s,
                crash: true,
            }),
        }
    };
    macro_rules! at {
        ($s:expr) => {
            step($s)?
        };
    }

    at!(TxStep::CleanLeftovers);
    let removed_leftovers = clean_leftovers(store, runner)?;

    at!(TxStep::Base);
    let now = Utc::now().naive_utc();
    let (base, base_name) = create_pre_update(store, now)?;

    at!(TxStep::Work);
    let mut req = CreateRequest {
        description: format!("koompi upgrade --transactional (from {})", base.info.num),
        cleanup: koompi_snapshots::Cleanup::Number,
        read_only: false,
        ..CreateRequest::default()
    };
    req.userdata
        .insert(TRANSACTION_KEY.into(), IN_PROGRESS.into());
    req.userdata.insert(KNOWN_GOOD_KEY.into(), "no".into());
    let work = store.create_from(&req, &base.path, now)?;
    let work_root = work.path.clone();

    // From here a failure removes the work snapshot (and what is mounted in it).
    let result = (|| -> Result<etcmerge::Report, UpgradeError> {
        at!(TxStep::Mount);
        mount_api(&work_root, runner)?;
        at!(TxStep::Pacman);
        let extra: Vec<OsString> = vec![
            "--root".into(),
            work_root.clone().into_os_string(),
            "--dbpath".into(),
            work_root.join("var/lib/pacman").into_os_string(),
            "--hookdir".into(),
            work_root.join("etc/pacman.d/hooks").into_os_string(),
            "--logfile".into(),
            opts.logfile.clone().into_os_string(),
        ];
        let code = opts.upgrade.cmd(&extra)?.run_interactive(runner)?;
        at!(TxStep::Unmount);
        unmount_below(&work_root, runner)?;
        if code != 0 {
            return Err(UpgradeError::Failed {
                what: "the upgrade in the new snapshot".into(),
                code,
                snapshot: None,
            });
        }
        at!(TxStep::MergeEtc);
        let etc = etcmerge::merge(
            &base.path.join("etc"),
            &store.subvolume().join("etc"),
            &work_root.join("etc"),
        )?;
        at!(TxStep::Seal);
        let mut info = store.get(work.info.num)?.info;
        info.userdata.insert(TRANSACTION_KEY.into(), APPLIED.into());
        koompi_snapshots::btrfs::set_read_only(&work_root, true)
            .map_err(|e| UpgradeError::Io(format!("cannot seal {}: {e}", work_root.display())))?;
        // Sealed first, then unmarked: a crash in between leaves a read-only marked
        // snapshot, which the next run deletes like any leftover.
        store.write_info(&info)?;
        at!(TxStep::Switch);
        Ok(etc)
    })();
    let etc = match result {
        Ok(etc) => etc,
        Err(e @ UpgradeError::Interrupted { crash: true, .. }) => return Err(e),
        Err(e) => {
            let _ = unmount_below(&work_root, runner);
            let _ = store.delete(work.info.num, None);
            return Err(e);
        }
    };

    // The switch is the rollback engine's, safe against power loss at every step; from
    // here the work snapshot is referenced by its journal and stays.
    let switched = rollback::rollback(store, work.info.num)?;

    at!(TxStep::Grub);
    let esp = opts.watchdog.as_ref().map(|w| w.esp.as_path());
    let grub = if opts.grub {
        regenerate_grub_in_root(&switched, esp, runner)?
    } else {
        GrubOutcome::NotUsed
    };

    at!(TxStep::Fallback);
    if let Some(settings) = &opts.watchdog {
        if let Err(e) = refresh_fallback(settings) {
            tracing::warn!("cannot refresh the watchdog's fallback: {e}");
        }
    }

    at!(TxStep::Retention);
    let cleaned = apply_retention(store, runner)?;
    Ok(TxReport {
        removed_leftovers,
        base: (base.info.num, base_name),
        work: work.info.num,
        backup: switched.backup,
        etc,
        grub,
        cleaned,
    })
}

/// Points the watchdog's fallback at the newest known-good snapshot (nothing to do when
/// its environment block is not there: a machine without the watchdog's GRUB snippet).
fn refresh_fallback(settings: &watchdog::Settings) -> Result<(), watchdog::Error> {
    if !settings.env_path().exists() {
        return Ok(());
    }
    let host = watchdog::Host::read()?;
    let history = watchdog::load_history(settings)?;
    watchdog::refresh(settings, &host, &history)?;
    Ok(())
}

/// Mounts the new `@` as `@` and regenerates its GRUB menu from inside it, so the menu
/// names the subvolume GRUB will boot. `esp`: where the ESP is mounted (the watchdog's
/// GRUB snippet asks grub-probe for its UUID), bound at the same place inside.
fn regenerate_grub_in_root(
    switched: &rollback::Report,
    esp: Option<&Path>,
    runner: &Runner,
) -> Result<GrubOutcome, UpgradeError> {
    let dir = tempfile::Builder::new()
        .prefix("koompi-upgrade.")
        .tempdir()
        .map_err(|e| UpgradeError::Io(format!("cannot create a temporary directory: {e}")))?;
    let mnt = dir.path().join("root");
    fs::create_dir_all(&mnt)
        .map_err(|e| UpgradeError::Io(format!("cannot create {}: {e}", mnt.display())))?;
    Cmd::new("mount")
        .arg("-o")
        .arg(format!("subvol={}", switched.root_subvolume))
        .arg(&switched.device)
        .arg(&mnt)
        .run(runner)?;
    let result = (|| {
        if !mnt.join("boot/grub/grub.cfg").exists() {
            return Ok(GrubOutcome::NotUsed);
        }
        let Some(argv) = grub_mkconfig(&mnt) else {
            return Ok(GrubOutcome::NotUsed);
        };
        mount_api(&mnt, runner)?;
        let table = koompi_core::mounts::read().unwrap_or_default();
        let esp_inside = esp.and_then(|esp| {
            let inside = mnt.join(esp.strip_prefix("/").unwrap_or(esp));
            let mounted = koompi_core::mounts::mount_at(&table, esp).is_some();
            (mounted && inside.is_dir()).then_some((esp, inside))
        });
        if let Some((esp, inside)) = &esp_inside {
            Cmd::new("mount")
                .arg("--bind")
                .arg(esp)
                .arg(inside)
                .run(runner)?;
        }
        let r = Cmd::new("chroot").arg(&mnt).args(&argv).run(runner);
        if let Some((_, inside)) = &esp_inside {
            unmount_below(inside, runner)?;
        }
        unmount_below(&mnt.join("proc"), runner)?;
        unmount_below(&mnt.join("sys"), runner)?;
        unmount_below(&mnt.join("dev"), runner)?;
        r?;
        Ok(GrubOutcome::Regenerated(argv.join(" ")))
    })();
    let _ = unmount_below(&mnt, runner);
    // Something may still be mounted below a busy lazy unmount: never remove recursively
    // through it, only the empty directories.
    let _ = fs::remove_dir(&mnt);
    let _ = fs::remove_dir(dir.keep());
    result
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use chrono::NaiveDate;

    #[test]
    fn pre_update_names_sort_by_time_and_are_valid_snapshot_names() {
        let t = NaiveDate::from_ymd_opt(2026, 11, 22)
            .unwrap()
            .and_hms_opt(3, 4, 5)
            .unwrap();
        assert_eq!(pre_update_name(t), "pre-update-20261122-030405");
        let req = pre_update_request(t).unwrap();
        assert_eq!(
            req.userdata.get("important").map(String::as_str),
            Some("yes")
        );
        assert_eq!(req.cleanup, koompi_snapshots::Cleanup::Number);
    }

    #[test]
    fn a_failure_names_the_snapshot_to_go_back_to() {
        let e = UpgradeError::Failed {
            what: "the upgrade".into(),
            code: 1,
            snapshot: Some((7, "pre-update-x".into())),
        };
        let m = e.to_string();
        assert!(m.contains("snapshot 7"), "{m}");
        assert!(m.contains("koompi-snapshot rollback 7"), "{m}");
        assert!(!m.contains('\n'));
    }
}
