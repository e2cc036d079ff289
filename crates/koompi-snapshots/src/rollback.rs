//! Rollback of the root: a snapshot becomes `@` again, effective at the next mount or boot.
//!
//! KOOMPI's layout keeps `@` (the root) and `@snapshots` (mounted on `/.snapshots`) side by
//! side in the Btrfs top level, and boots with `rootflags=subvol=@`, so a rollback is a few
//! renames in the top level (no `btrfs subvolume set-default`, which that flag ignores):
//!
//! 1. reserve a snapshot number M for the state being replaced;
//! 2. make a writable snapshot of the target as `@.koompi-rollback-new` and remove
//!    `var/lib/pacman/db.lck` from it;
//! 3. write a journal (`.snapshots/M/koompi-rollback.json`) with both subvolume ids;
//! 4. exchange `@` and `@.koompi-rollback-new` in one atomic `renameat2(RENAME_EXCHANGE)`;
//! 5. move the old root (now under the temporary name) to `.snapshots/M/snapshot`;
//! 6. write M's info.xml (important) and remove the journal.
//!
//! The disk holds a complete `@` at every instant: before step 4 the old one, after it the
//! restored one. The running system keeps running on the old root, which becomes snapshot M,
//! so nothing written before the reboot is lost. A run that stopped half-way (power loss,
//! error) is finished or undone by [`recover`], which every rollback runs first.

use std::ffi::CString;
use std::fs;
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use chrono::Utc;
use rustix::fs::{renameat_with, RenameFlags, CWD};
use rustix::mount::{mount, unmount, MountFlags, UnmountFlags};
use serde::{Deserialize, Serialize};

use crate::btrfs;
use crate::error::{io_err, Error, Result};
use crate::model::{SnapshotInfo, SnapshotType, IMPORTANT_KEY};
use crate::store::{Store, SNAPSHOT_NAME};
use koompi_core::mounts;

/// Temporary name of the new root in the top level.
pub const NEW_NAME: &str = "@.koompi-rollback-new";
/// Journal file in the backup snapshot's directory.
pub const JOURNAL_NAME: &str = "koompi-rollback.json";
/// Userdata key on the backup snapshot naming the rollback target.
pub const ROLLBACK_TO_KEY: &str = "koompi-rollback-to";

/// The steps of a rollback, in order; a test hook may stop the run before any of them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Step {
    Reserve,
    CopyTarget,
    RemoveLock,
    WriteJournal,
    Exchange,
    MoveOld,
    WriteInfo,
    RemoveJournal,
}

impl Step {
    /// Every step, in order.
    pub const ALL: [Step; 8] = [
        Step::Reserve,
        Step::CopyTarget,
        Step::RemoveLock,
        Step::WriteJournal,
        Step::Exchange,
        Step::MoveOld,
        Step::WriteInfo,
        Step::RemoveJournal,
    ];
}

/// What a test hook tells the rollback to do before a step.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Control {
    /// Go on.
    Continue,
    /// Fail with an error: the rollback cleans up what it can, as after any error.
    Fail,
    /// Stop dead, as a power loss would: no cleanup at all.
    Crash,
}

/// The outcome of a rollback.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// The snapshot that is now `@`.
    pub target: u32,
    /// The snapshot holding the state that was replaced.
    pub backup: u32,
    /// Name of the root subvolume in the top level.
    pub root_subvolume: String,
    pub device: String,
    /// Leftovers of an earlier interrupted rollback that were finished or undone first.
    pub recovered: Vec<String>,
}

#[derive(Debug, Serialize, Deserialize)]
struct Journal {
    target: u32,
    root: String,
    old_id: u64,
    new_id: u64,
}

/// The Btrfs top level (subvolid 5) mounted on a private directory; unmounted on drop.
#[derive(Debug)]
pub struct TopLevel {
    path: PathBuf,
    mounted: bool,
}

impl TopLevel {
    /// Mounts the top level of `device`.
    pub fn mount(device: &str) -> Result<Self> {
        let base = if Path::new("/run").is_dir() {
            PathBuf::from("/run/koompi")
        } else {
            std::env::temp_dir()
        };
        fs::create_dir_all(&base).map_err(io_err(format!("cannot create {}", base.display())))?;
        heal_stale_mounts(&base);
        // `top-PID-XXXXXX`: the PID tells heal_stale_mounts whose it is. The directory is
        // then removed by hand, never by TempDir's recursive removal, which would empty
        // the filesystem through a mount that is still attached.
        let path = tempfile::Builder::new()
            .prefix(&format!("top-{}-", std::process::id()))
            .tempdir_in(&base)
            .map_err(io_err(format!(
                "cannot create a directory in {}",
                base.display()
            )))?
            .keep();
        let mut top = TopLevel {
            path,
            mounted: false,
        };
        let src = cstr(Path::new(device))?;
        let dst = cstr(&top.path)?;
        mount(src, dst, c"btrfs", MountFlags::NOATIME, c"subvolid=5").map_err(|e| {
            io_err(format!("cannot mount the top level of {device}"))(io::Error::from(e))
        })?;
        top.mounted = true;
        Ok(top)
    }

    /// Where the top level is mounted.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for TopLevel {
    fn drop(&mut self) {
        if self.mounted {
            if let Ok(c) = cstr(&self.path) {
                // MNT_DETACH never blocks on busy mounts.
                let _ = unmount(c, UnmountFlags::DETACH);
            }
        }
        let _ = fs::remove_dir(&self.path);
    }
}

/// Unmounts and removes what a killed run left in `base`: `top-PID-XXXXXX` directories whose
/// process is gone (a live one is another rollback at work and is left alone).
pub fn heal_stale_mounts(base: &Path) {
    let Ok(rd) = fs::read_dir(base) else { return };
    for e in rd.flatten() {
        let name = e.file_name();
        let Some(pid) = name
            .to_str()
            .and_then(|n| n.strip_prefix("top-"))
            .and_then(|rest| rest.split('-').next())
            .and_then(|p| p.parse::<u32>().ok())
        else {
            continue;
        };
        if pid == std::process::id() || Path::new("/proc").join(pid.to_string()).exists() {
            continue;
        }
        let path = e.path();
        if let Ok(c) = cstr(&path) {
            // MNT_DETACH never blocks. Not mounted: EINVAL, ignored.
            let _ = unmount(c, UnmountFlags::DETACH);
        }
        match fs::remove_dir(&path) {
            Ok(()) => tracing::warn!("removed {} left by an interrupted rollback", path.display()),
            Err(e) => tracing::warn!("cannot remove {}: {e}", path.display()),
        }
    }
}

fn cstr(p: &Path) -> Result<CString> {
    CString::new(p.as_os_str().as_bytes())
        .map_err(|_| Error::Info(format!("path {} contains NUL", p.display())))
}

fn exchange(a: &Path, b: &Path) -> io::Result<()> {
    let (ca, cb) = (
        CString::new(a.as_os_str().as_bytes())?,
        CString::new(b.as_os_str().as_bytes())?,
    );
    // CWD with absolute paths.
    renameat_with(CWD, ca, CWD, cb, RenameFlags::EXCHANGE)?;
    Ok(())
}

/// Where the rollback acts, read from the mount table.
#[derive(Debug, Clone)]
pub struct Layout {
    pub device: String,
    /// Root subvolume name in the top level (`@`).
    pub root: String,
    /// The snapshots subvolume's path in the top level (`@snapshots`).
    pub snapshots: String,
}

/// Finds the device, the root subvolume and the snapshots subvolume of a store, and checks
/// that it has KOOMPI's layout (`.snapshots` a separate subvolume, not nested in the root).
pub fn layout(store: &Store) -> Result<Layout> {
    let table = mounts::read().map_err(io_err("cannot read /proc/self/mountinfo"))?;
    let subvolume = fs::canonicalize(store.subvolume()).map_err(io_err(format!(
        "cannot resolve {}",
        store.subvolume().display()
    )))?;
    let root_mount = mounts::mount_at(&table, &subvolume).ok_or_else(|| {
        Error::RollbackRefused(format!(
            "{} is not a mount point; rollback works on a mounted root subvolume",
            subvolume.display()
        ))
    })?;
    let snaps_path = subvolume.join(".snapshots");
    let snaps_mount = mounts::mount_at(&table, &snaps_path).ok_or_else(|| {
        Error::RollbackRefused(format!(
            "{} is not its own mounted subvolume (KOOMPI's layout mounts @snapshots there)",
            snaps_path.display()
        ))
    })?;
    if snaps_mount.source != root_mount.source {
        return Err(Error::RollbackRefused(
            ".snapshots is on another filesystem than the root".into(),
        ));
    }
    let top_child = |root: &str| -> Option<String> {
        let n = root.strip_prefix('/')?;
        (!n.is_empty() && !n.contains('/')).then(|| n.to_string())
    };
    let root = top_child(&root_mount.root)
        .or_else(|| store.config.root_subvolume_name().map(str::to_string))
        .unwrap_or_else(|| "@".to_string());
    let snapshots = snaps_mount
        .root
        .strip_prefix('/')
        .unwrap_or(&snaps_mount.root)
        .to_string();
    if snapshots.is_empty() || snapshots == root || snapshots.starts_with(&format!("{root}/")) {
        return Err(Error::RollbackRefused(format!(
            ".snapshots must not live inside the root subvolume {root:?}"
        )));
    }
    Ok(Layout {
        device: root_mount.source.clone(),
        root,
        snapshots,
    })
}

/// Makes snapshot `target` the root at the next mount or boot.
pub fn rollback(store: &Store, target: u32) -> Result<Report> {
    rollback_with(store, target, &mut |_| Control::Continue)
}

/// [`rollback`] with a hook called before every step (tests use it to interrupt).
pub fn rollback_with(
    store: &Store,
    target: u32,
    hook: &mut dyn FnMut(Step) -> Control,
) -> Result<Report> {
    let snap = store.get(target)?;
    let layout = layout(store)?;
    let top = TopLevel::mount(&layout.device)?;
    let _lock = store.lock()?;
    let recovered = recover_in(store, &top, &layout)?;

    let root = top.path().join(&layout.root);
    if !btrfs::is_subvolume(&root).map_err(io_err(format!("cannot stat {}", root.display())))? {
        return Err(Error::RollbackRefused(format!(
            "the top level has no root subvolume {:?}",
            layout.root
        )));
    }
    let snapshots_top = top.path().join(&layout.snapshots);
    let new = top.path().join(NEW_NAME);

    let mut state = Progress::default();
    let places = Places {
        root: &root,
        snapshots_top: &snapshots_top,
        new: &new,
        target_path: &snap.path,
    };
    let run = run_steps(store, &layout, &places, target, hook, &mut state);
    match run {
        Ok(backup) => Ok(Report {
            target,
            backup,
            root_subvolume: layout.root.clone(),
            device: layout.device.clone(),
            recovered,
        }),
        Err(Interrupted::Crash(step)) => Err(Error::RollbackFailed {
            step: format!("{step:?}"),
            message: "interrupted (simulated power loss)".into(),
        }),
        Err(Interrupted::Error(step, err)) => {
            // Undo what is not yet committed; after the exchange the rollback has happened
            // and what remains is finished by the next run's recovery.
            if !state.exchanged {
                if state.copied {
                    let _ = btrfs::delete_subvolume(top.path(), NEW_NAME);
                }
                if let Some(m) = state.backup {
                    let _ = fs::remove_file(store.info_dir(m).join(JOURNAL_NAME));
                }
            }
            let message = if state.exchanged {
                format!("{err}; the rollback itself is done, run the command again to finish")
            } else {
                format!("{err}; nothing was changed")
            };
            Err(Error::RollbackFailed {
                step: format!("{step:?}"),
                message,
            })
        }
    }
}

#[derive(Debug, Default)]
struct Progress {
    backup: Option<u32>,
    copied: bool,
    exchanged: bool,
}

enum Interrupted {
    Crash(Step),
    Error(Step, Error),
}

/// Where a rollback works, on the mounted top level.
struct Places<'a> {
    /// The root subvolume (`@`).
    root: &'a Path,
    /// The snapshots subvolume.
    snapshots_top: &'a Path,
    /// The target's writable copy, made before the exchange.
    new: &'a Path,
    /// The target snapshot.
    target_path: &'a Path,
}

fn run_steps(
    store: &Store,
    layout: &Layout,
    places: &Places<'_>,
    target: u32,
    hook: &mut dyn FnMut(Step) -> Control,
    st: &mut Progress,
) -> std::result::Result<u32, Interrupted> {
    let Places {
        root,
        snapshots_top,
        new,
        target_path,
    } = *places;
    let mut gate = |step: Step| match hook(step) {
        Control::Continue => Ok(()),
        Control::Crash => Err(Interrupted::Crash(step)),
        Control::Fail => Err(Interrupted::Error(
            step,
            Error::Info("injected failure".into()),
        )),
    };
    let fail = |step: Step| move |e: Error| Interrupted::Error(step, e);

    gate(Step::Reserve)?;
    let m = store.reserve_number_locked().map_err(fail(Step::Reserve))?;
    st.backup = Some(m);
    let m_dir_top = snapshots_top.join(m.to_string());

    gate(Step::CopyTarget)?;
    btrfs::snapshot(
        target_path,
        new.parent().unwrap_or(Path::new("/")),
        NEW_NAME,
        false,
    )
    .map_err(io_err(format!("cannot copy snapshot {target}")))
    .map_err(fail(Step::CopyTarget))?;
    st.copied = true;

    gate(Step::RemoveLock)?;
    let lck = new.join("var/lib/pacman/db.lck");
    match fs::remove_file(&lck) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => {
            return Err(Interrupted::Error(
                Step::RemoveLock,
                io_err(format!("cannot remove {}", lck.display()))(e),
            ))
        }
    }

    gate(Step::WriteJournal)?;
    let ids = btrfs::subvolume_id(root)
        .and_then(|old| Ok((old, btrfs::subvolume_id(new)?)))
        .map_err(io_err("cannot read subvolume ids"))
        .map_err(fail(Step::WriteJournal))?;
    let journal = Journal {
        target,
        root: layout.root.clone(),
        old_id: ids.0,
        new_id: ids.1,
    };
    write_journal(&m_dir_top.join(JOURNAL_NAME), &journal).map_err(fail(Step::WriteJournal))?;

    gate(Step::Exchange)?;
    exchange(root, new)
        .map_err(io_err(format!(
            "cannot exchange {} and {NEW_NAME}",
            layout.root
        )))
        .map_err(fail(Step::Exchange))?;
    st.exchanged = true;

    finish(store, new, &m_dir_top, m, &journal, &mut gate)?;
    Ok(m)
}

/// Steps after the exchange, shared by a normal run and by recovery.
fn finish(
    store: &Store,
    old_root_at: &Path,
    m_dir_top: &Path,
    m: u32,
    journal: &Journal,
    gate: &mut dyn FnMut(Step) -> std::result::Result<(), Interrupted>,
) -> std::result::Result<(), Interrupted> {
    gate(Step::MoveOld)?;
    let dest = m_dir_top.join(SNAPSHOT_NAME);
    if old_root_at.exists() {
        fs::rename(old_root_at, &dest)
            .map_err(io_err(format!(
                "cannot move the old root to {}",
                dest.display()
            )))
            .map_err(|e| Interrupted::Error(Step::MoveOld, e))?;
    }

    gate(Step::WriteInfo)?;
    let mut info = SnapshotInfo {
        num: m,
        kind: SnapshotType::Single,
        date: Utc::now().naive_utc(),
        uid: 0,
        pre_num: None,
        description: format!("state before rollback to {}", journal.target),
        cleanup: crate::Cleanup::Number,
        userdata: Default::default(),
    };
    info.date = info.date.with_nanosecond(0).unwrap_or(info.date);
    info.userdata.insert(IMPORTANT_KEY.into(), "yes".into());
    info.userdata
        .insert(ROLLBACK_TO_KEY.into(), journal.target.to_string());
    store
        .write_info(&info)
        .map_err(|e| Interrupted::Error(Step::WriteInfo, e))?;

    gate(Step::RemoveJournal)?;
    fs::remove_file(m_dir_top.join(JOURNAL_NAME))
        .map_err(io_err("cannot remove the rollback journal"))
        .map_err(|e| Interrupted::Error(Step::RemoveJournal, e))?;
    Ok(())
}

use chrono::Timelike;

fn write_journal(path: &Path, j: &Journal) -> Result<()> {
    let text = serde_json::to_string(j).map_err(|e| Error::Info(e.to_string()))?;
    let tmp = path.with_extension("json.tmp");
    let r = (|| {
        use std::io::Write;
        let mut f = fs::File::create(&tmp)?;
        f.write_all(text.as_bytes())?;
        f.sync_all()?;
        fs::rename(&tmp, path)?;
        if let Some(p) = path.parent() {
            fs::File::open(p)?.sync_all()?;
        }
        Ok(())
    })();
    if r.is_err() {
        // A full disk, say: nothing has happened yet, and nothing is left.
        let _ = fs::remove_file(&tmp);
    }
    r.map_err(io_err(format!("cannot write {}", path.display())))
}

/// Finishes or undoes rollbacks that stopped half-way. Returns what it did, one line each.
pub fn recover(store: &Store) -> Result<Vec<String>> {
    let layout = layout(store)?;
    let top = TopLevel::mount(&layout.device)?;
    let _lock = store.lock()?;
    recover_in(store, &top, &layout)
}

fn recover_in(store: &Store, top: &TopLevel, layout: &Layout) -> Result<Vec<String>> {
    let mut done = Vec::new();
    let new = top.path().join(NEW_NAME);
    let snapshots_top = top.path().join(&layout.snapshots);
    let mut journal_found = false;
    let rd = fs::read_dir(store.dir()).map_err(io_err("cannot read .snapshots"))?;
    let mut dirs: Vec<u32> = rd
        .flatten()
        .filter_map(|e| e.file_name().to_str().and_then(crate::store::parse_number))
        .collect();
    dirs.sort_unstable();
    for m in dirs {
        // A torn journal (killed before its rename): nothing happened yet.
        let _ = fs::remove_file(store.info_dir(m).join(format!("{JOURNAL_NAME}.tmp")));
        let jpath = store.info_dir(m).join(JOURNAL_NAME);
        let Ok(text) = fs::read_to_string(&jpath) else {
            continue;
        };
        journal_found = true;
        let Ok(journal) = serde_json::from_str::<Journal>(&text) else {
            // A torn journal was written before the exchange: nothing happened yet.
            let _ = fs::remove_file(&jpath);
            continue;
        };
        let root_id = btrfs::subvolume_id(&top.path().join(&journal.root)).ok();
        let exchanged = root_id == Some(journal.new_id);
        if exchanged {
            let mut gate = |_| Ok(());
            finish(
                store,
                &new,
                &snapshots_top.join(m.to_string()),
                m,
                &journal,
                &mut gate,
            )
            .map_err(|i| match i {
                Interrupted::Error(_, e) => e,
                Interrupted::Crash(s) => Error::Info(format!("recovery stopped at {s:?}")),
            })?;
            done.push(format!(
                "finished the interrupted rollback to {} (backup {m})",
                journal.target
            ));
        } else {
            if new.exists() {
                btrfs::delete_subvolume(top.path(), NEW_NAME)
                    .map_err(io_err(format!("cannot delete {NEW_NAME}")))?;
            }
            fs::remove_file(&jpath).map_err(io_err("cannot remove the rollback journal"))?;
            done.push(format!(
                "undid the interrupted rollback to {} (the root was never switched)",
                journal.target
            ));
        }
    }
    if !journal_found && new.exists() {
        // Copied before any journal was written: the exchange cannot have happened.
        btrfs::delete_subvolume(top.path(), NEW_NAME)
            .map_err(io_err(format!("cannot delete {NEW_NAME}")))?;
        done.push("removed the copy left by an interrupted rollback".into());
    }
    Ok(done)
}
