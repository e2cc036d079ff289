//! The snapshot store: `SUBVOLUME/.snapshots/N/{snapshot,info.xml}`, exactly as snapper keeps it.
//!
//! Reading never fails on one bad snapshot: a directory whose `info.xml` is missing or corrupt,
//! or whose snapshot subvolume is gone, is reported as [`Broken`]. An empty numbered directory
//! is a number snapper keeps reserved so numbers are never reused; it is not listed.
//!
//! The store is walked through directory descriptors ([`crate::fsat`]): a symbolic link, a
//! FIFO, a mount point or any other foreign object where a snapshot directory or its
//! `info.xml` should be is reported as broken and *foreign*, and nothing ever deletes it or
//! reads through it. A snapshot is deleted only as a subvolume of its own numbered
//! directory, and its metadata files only by name.

use std::collections::BTreeMap;
use std::fs;
use std::io::Write;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use chrono::{NaiveDateTime, Utc};
use serde::Serialize;

use rustix::fs::FileType;

use crate::btrfs;
use crate::config::SnapperConfig;
use crate::error::{io_err, Error, Result};
use crate::fsat::{DirFd, Foreign};
use crate::model::{Cleanup, SnapshotInfo, SnapshotType, IMPORTANT_KEY, NAME_KEY};

/// Name of the subvolume inside each snapshot directory.
pub const SNAPSHOT_NAME: &str = "snapshot";
/// Name of the metadata file inside each snapshot directory.
pub const INFO_NAME: &str = "info.xml";

/// A readable snapshot.
#[derive(Debug, Clone, Serialize)]
pub struct Snapshot {
    #[serde(flatten)]
    pub info: SnapshotInfo,
    /// Path of the snapshot subvolume.
    pub path: PathBuf,
    pub read_only: bool,
    /// The system (the config's subvolume mount) runs on this snapshot.
    pub active: bool,
}

/// A snapshot directory that cannot be used as a snapshot.
#[derive(Debug, Clone, Serialize)]
pub struct Broken {
    pub num: u32,
    pub reason: String,
    /// Whether the directory still holds a snapshot subvolume.
    pub has_subvolume: bool,
    /// Something that is not a snapshot directory stands where one should be (a symbolic
    /// link, a file, a mount point): it is left alone, never deleted.
    pub foreign: bool,
    /// A snapshot half made or half deleted: no `info.xml`, or no subvolume.
    #[serde(skip)]
    pub incomplete: bool,
    /// The remains of an interrupted create (a subvolume, temporary files, no `info.xml`),
    /// old enough ([`DEBRIS_AGE`]) that no one is still making it: `create` and `cleanup`
    /// remove it.
    pub debris: bool,
}

/// One numbered directory in `.snapshots`.
#[derive(Debug, Clone, Serialize)]
#[serde(untagged)]
pub enum Entry {
    Ok(Snapshot),
    Broken(Broken),
}

impl Entry {
    /// The snapshot number.
    pub fn num(&self) -> u32 {
        match self {
            Entry::Ok(s) => s.info.num,
            Entry::Broken(b) => b.num,
        }
    }
}

/// What `create` should make.
#[derive(Debug, Clone)]
pub struct CreateRequest {
    pub kind: SnapshotType,
    pub pre_num: Option<u32>,
    pub description: String,
    pub cleanup: Cleanup,
    pub userdata: BTreeMap<String, String>,
    /// Read-only like every snapper snapshot unless asked otherwise.
    pub read_only: bool,
}

impl Default for CreateRequest {
    fn default() -> Self {
        CreateRequest {
            kind: SnapshotType::Single,
            pre_num: None,
            description: String::new(),
            cleanup: Cleanup::None,
            userdata: BTreeMap::new(),
            read_only: true,
        }
    }
}

impl CreateRequest {
    /// Sets `name=` userdata after checking the name.
    pub fn with_name(mut self, name: &str) -> Result<Self> {
        validate_name(name)?;
        self.userdata.insert(NAME_KEY.into(), name.into());
        Ok(self)
    }

    /// Sets `important=yes`.
    pub fn important(mut self) -> Self {
        self.userdata.insert(IMPORTANT_KEY.into(), "yes".into());
        self
    }
}

/// Checks a KOOMPI snapshot name: it must be usable as an ID, in userdata, and in a path.
pub fn validate_name(name: &str) -> Result<()> {
    let bad = |reason| {
        Err(Error::InvalidName {
            name: name.to_string(),
            reason,
        })
    };
    if name.is_empty() {
        return bad("it is empty");
    }
    if name.len() > 128 {
        return bad("it is longer than 128 bytes");
    }
    if name.contains('/') || name.contains("..") {
        return bad("it must not contain '/' or '..'");
    }
    if name.chars().all(|c| c.is_ascii_digit()) {
        return bad("an all-digit name would look like a snapshot number");
    }
    if name.starts_with('-') || name.starts_with('.') {
        return bad("it must not start with '-' or '.'");
    }
    if !name
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || "-_.+:@".contains(c))
    {
        return bad("use letters, digits and - _ . + : @ only");
    }
    Ok(())
}

/// Checks one userdata key and value as snapper does (no ',' or '=', key not empty).
pub fn validate_userdata(key: &str, value: &str) -> Result<()> {
    let ok = !key.is_empty()
        && !key.contains([',', '='])
        && !value.contains([',', '='])
        && !key.chars().chain(value.chars()).any(char::is_control);
    if ok {
        Ok(())
    } else {
        Err(Error::InvalidUserdata(format!("{key}={value}")))
    }
}

/// An exclusive lock on the store, held while it changes. Released on drop.
#[derive(Debug)]
pub struct Lock {
    _file: fs::File,
    held: std::sync::Arc<std::sync::atomic::AtomicBool>,
}

impl Drop for Lock {
    fn drop(&mut self) {
        self.held.store(false, std::sync::atomic::Ordering::SeqCst);
    }
}

/// How long [`Store::lock`] waits for another process that holds the store's lock.
pub const LOCK_WAIT: std::time::Duration = std::time::Duration::from_secs(120);

/// How old the remains of an interrupted snapshot must be before they are removed: a
/// snapper that does not take KOOMPI's lock may be making that snapshot right now, and
/// takes seconds.
pub const DEBRIS_AGE: std::time::Duration = std::time::Duration::from_secs(10 * 60);

/// A snapshot store opened on a config's subvolume.
#[derive(Debug, Clone)]
pub struct Store {
    pub config: SnapperConfig,
    subvolume: PathBuf,
    dir: PathBuf,
    /// st_dev of the subvolume: Btrfs gives each subvolume its own, so a snapshot with the
    /// same st_dev is the one the subvolume's mount shows (the active one).
    subvolume_dev: u64,
    /// `.snapshots`, open: every numbered directory is reached through it.
    fd: std::sync::Arc<DirFd>,
    /// Whether this process holds the store's lock (a [`Lock`] is alive).
    held: std::sync::Arc<std::sync::atomic::AtomicBool>,
}

impl Store {
    /// Opens the store of `config`, checking that it is a Btrfs subvolume with `.snapshots`.
    pub fn open(config: SnapperConfig) -> Result<Self> {
        let subvolume = config.subvolume.clone();
        let md = fs::metadata(&subvolume)
            .map_err(io_err(format!("cannot open {}", subvolume.display())))?;
        if !btrfs::is_btrfs(&subvolume)
            .map_err(io_err(format!("cannot stat {}", subvolume.display())))?
        {
            return Err(Error::NotBtrfs(subvolume));
        }
        if !btrfs::metadata_is_subvolume(&md) {
            return Err(Error::NotSubvolume(subvolume));
        }
        let dir = config.snapshots_dir();
        match fs::symlink_metadata(&dir) {
            Ok(m) if btrfs::metadata_is_subvolume(&m) => {}
            Ok(_) => return Err(Error::NotSubvolume(dir)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(Error::NoSnapshotsDir(dir))
            }
            Err(e) => return Err(io_err(format!("cannot open {}", dir.display()))(e)),
        }
        let fd = DirFd::open(&dir).map_err(io_err(format!("cannot open {}", dir.display())))?;
        Ok(Store {
            config,
            subvolume,
            dir,
            subvolume_dev: md.dev(),
            fd: std::sync::Arc::new(fd),
            held: std::sync::Arc::default(),
        })
    }

    /// The subvolume this store snapshots.
    pub fn subvolume(&self) -> &Path {
        &self.subvolume
    }

    /// The `.snapshots` directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Path of snapshot `num`'s directory.
    pub fn info_dir(&self, num: u32) -> PathBuf {
        self.dir.join(num.to_string())
    }

    /// Takes the store's lock (flock on `.snapshots`), waiting for other KOOMPI tools.
    /// When another process holds it, says who (a warning in the log) and waits up to
    /// [`LOCK_WAIT`], then fails naming the holder.
    pub fn lock(&self) -> Result<Lock> {
        use rustix::fs::FlockOperation;
        let file = fs::File::open(&self.dir)
            .map_err(io_err(format!("cannot open {}", self.dir.display())))?;
        let started = std::time::Instant::now();
        let mut told = false;
        loop {
            match rustix::fs::flock(&file, FlockOperation::NonBlockingLockExclusive) {
                Ok(()) => break,
                Err(rustix::io::Errno::WOULDBLOCK) => {
                    if started.elapsed() >= LOCK_WAIT {
                        return Err(Error::Busy {
                            dir: self.dir.clone(),
                            holder: lock_holder(&file, &self.dir),
                            waited: LOCK_WAIT.as_secs(),
                        });
                    }
                    if !told {
                        tracing::warn!(
                            "waiting for {} to finish with {} (it holds the snapshot lock)",
                            lock_holder(&file, &self.dir),
                            self.dir.display()
                        );
                        told = true;
                    }
                    std::thread::sleep(std::time::Duration::from_millis(100));
                }
                Err(rustix::io::Errno::INTR) => {}
                Err(e) => {
                    return Err(io_err(format!("cannot lock {}", self.dir.display()))(
                        e.into(),
                    ))
                }
            }
        }
        self.held.store(true, std::sync::atomic::Ordering::SeqCst);
        Ok(Lock {
            _file: file,
            held: std::sync::Arc::clone(&self.held),
        })
    }

    /// Whether another process is changing the store right now (holds its lock). False
    /// while this process holds it.
    fn writer_active(&self) -> bool {
        use rustix::fs::FlockOperation;
        if self.held.load(std::sync::atomic::Ordering::SeqCst) {
            return false;
        }
        let Ok(file) = fs::File::open(&self.dir) else {
            return false;
        };
        matches!(
            rustix::fs::flock(&file, FlockOperation::NonBlockingLockShared),
            Err(rustix::io::Errno::WOULDBLOCK)
        )
    }

    /// Numbers of all numbered entries (directories or not: a number is never reused),
    /// sorted.
    fn numbers(&self) -> Result<Vec<u32>> {
        let mut nums: Vec<u32> = self
            .fd
            .entries()
            .map_err(io_err(format!("cannot read {}", self.dir.display())))?
            .iter()
            .filter_map(|(name, _)| parse_number(name))
            .collect();
        nums.sort_unstable();
        Ok(nums)
    }

    /// Every snapshot and broken snapshot directory, by number.
    ///
    /// While another process changes the store, a snapshot it is creating or deleting
    /// (a directory without `info.xml`, or without its subvolume) is not listed: readers
    /// see each snapshot complete or not at all, without waiting for the writer.
    pub fn entries(&self) -> Result<Vec<Entry>> {
        let busy = self.writer_active();
        let mut out = Vec::new();
        for num in self.numbers()? {
            match self.read_entry(num) {
                Some(Entry::Broken(b)) if busy && b.incomplete => {}
                Some(e) => out.push(e),
                None => {}
            }
        }
        Ok(out)
    }

    /// The readable snapshots only.
    pub fn snapshots(&self) -> Result<Vec<Snapshot>> {
        Ok(self
            .entries()?
            .into_iter()
            .filter_map(|e| match e {
                Entry::Ok(s) => Some(s),
                Entry::Broken(_) => None,
            })
            .collect())
    }

    /// Reads one numbered directory; `None` for an empty reserved number.
    fn read_entry(&self, num: u32) -> Option<Entry> {
        let foreign = |reason: String| {
            Some(Entry::Broken(Broken {
                num,
                reason,
                has_subvolume: false,
                foreign: true,
                incomplete: false,
                debris: false,
            }))
        };
        let d = match self.fd.open_dir(&num.to_string()) {
            Ok(d) => d,
            Err(Foreign::Missing) => return None,
            Err(why) => return foreign(format!("not a snapshot directory: {why}; left alone")),
        };
        let path = self.info_dir(num).join(SNAPSHOT_NAME);
        let sub = d.stat(SNAPSHOT_NAME).ok().flatten();
        let has_subvolume = sub.as_ref().is_some_and(|st| {
            FileType::from_raw_mode(st.st_mode) == FileType::Directory
                && st.st_ino == btrfs::FIRST_FREE_OBJECTID
        });
        let broken = |reason: String| {
            Some(Entry::Broken(Broken {
                num,
                reason,
                has_subvolume,
                foreign: false,
                incomplete: false,
                debris: false,
            }))
        };
        let text = match d.read_small(INFO_NAME) {
            Ok(Some(t)) => t,
            Ok(None) => {
                let names = d.entries().unwrap_or_default();
                if sub.is_none() && names.is_empty() {
                    return None;
                }
                // Only what a create makes before info.xml: the subvolume (or an empty
                // directory in its place) and info.xml's temporary files.
                let torn_journal = format!("{}.tmp", crate::rollback::JOURNAL_NAME);
                let only_create = names.iter().all(|(n, _)| {
                    n == SNAPSHOT_NAME
                        || n.starts_with(&format!("{INFO_NAME}.tmp-"))
                        || *n == torn_journal
                });
                let age = d.age();
                let debris = only_create && age.is_some_and(|a| a >= DEBRIS_AGE);
                let reason = if debris {
                    "the remains of an interrupted snapshot (no info.xml); \
                     `koompi-snapshot cleanup` removes them"
                        .to_string()
                } else {
                    "info.xml is missing".to_string()
                };
                return Some(Entry::Broken(Broken {
                    num,
                    reason,
                    has_subvolume,
                    foreign: false,
                    incomplete: true,
                    debris,
                }));
            }
            Err(why) => return broken(format!("info.xml cannot be read: {why}")),
        };
        let info = match crate::info::parse(&text) {
            Ok(i) => i,
            Err(e) => return broken(format!("info.xml: {e}")),
        };
        if info.num != num {
            return broken(format!("info.xml says number {}", info.num));
        }
        let Some(st) = sub else {
            return Some(Entry::Broken(Broken {
                num,
                reason: "the snapshot subvolume is missing".into(),
                has_subvolume,
                foreign: false,
                incomplete: true,
                debris: false,
            }));
        };
        if !has_subvolume {
            return broken("`snapshot` is not a subvolume".into());
        }
        let read_only = btrfs::is_read_only(&path).unwrap_or(false);
        Some(Entry::Ok(Snapshot {
            active: st.st_dev == self.subvolume_dev,
            info,
            path,
            read_only,
        }))
    }

    /// Reads one snapshot by number.
    pub fn get(&self, num: u32) -> Result<Snapshot> {
        match self.read_entry(num) {
            Some(Entry::Ok(s)) => Ok(s),
            Some(Entry::Broken(b)) => Err(Error::Broken(num, b.reason)),
            None => Err(Error::UnknownId(num.to_string())),
        }
    }

    /// Reserves the next number (never reused: one past every directory that exists).
    /// Callers must hold the lock.
    pub fn reserve_number_locked(&self) -> Result<u32> {
        let mut num = self.numbers()?.last().copied().unwrap_or(0);
        loop {
            num = num
                .checked_add(1)
                .ok_or_else(|| Error::Info("snapshot numbers exhausted".into()))?;
            match self.fd.mkdir(&num.to_string()) {
                Ok(()) => return Ok(num),
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
                Err(e) => {
                    let d = self.info_dir(num);
                    return Err(io_err(format!("cannot create {}", d.display()))(e));
                }
            }
        }
    }

    /// Creates a snapshot of the subvolume. Holds the lock while it works; on failure
    /// nothing is left behind but the reserved (empty) number.
    pub fn create(&self, req: &CreateRequest) -> Result<Snapshot> {
        self.create_from(req, &self.subvolume.clone(), Utc::now().naive_utc())
    }

    /// Creates a snapshot of `source` (the subvolume, or another snapshot) dated `date`.
    pub fn create_from(
        &self,
        req: &CreateRequest,
        source: &Path,
        date: NaiveDateTime,
    ) -> Result<Snapshot> {
        for (k, v) in &req.userdata {
            validate_userdata(k, v)?;
        }
        if req.description.chars().any(|c| c.is_control() && c != '\t') {
            return Err(Error::Info(
                "the description must not contain control characters".into(),
            ));
        }
        let _lock = self.lock()?;
        // One listing serves the healing and the name check.
        let entries = self.entries()?;
        // What an interrupted create left goes first (a power cut during the daily
        // snapshot must not pin disk space forever).
        let healed = self.heal_entries(&entries, false);
        if !healed.failed.is_empty() {
            tracing::warn!(
                "could not remove the remains of interrupted snapshots: {:?}",
                healed.failed
            );
        }
        if let Some(name) = req.userdata.get(NAME_KEY) {
            validate_name(name)?;
            let taken = entries.iter().rev().find_map(|e| match e {
                Entry::Ok(s) if s.info.name() == Some(name.as_str()) => Some(s.info.num),
                _ => None,
            });
            if let Some(num) = taken {
                return Err(Error::NameTaken {
                    name: name.clone(),
                    num,
                });
            }
        }
        let num = self.reserve_number_locked()?;
        let d = self.info_dir(num);
        let info = SnapshotInfo {
            num,
            kind: req.kind,
            date: date.with_nanosecond0(),
            uid: 0,
            pre_num: req.pre_num,
            description: req.description.clone(),
            cleanup: req.cleanup.clone(),
            userdata: req.userdata.clone(),
        };
        let dfd = self.open_own(num)?;
        let result = btrfs::snapshot_at(source, dfd.fd(), SNAPSHOT_NAME, req.read_only)
            .map_err(io_err(format!(
                "cannot snapshot {} into {}",
                source.display(),
                d.display()
            )))
            .and_then(|()| write_info_at(&dfd, &d, &info));
        if let Err(e) = result {
            // Leave only the empty reserved number, as after a delete.
            let _ = btrfs::delete_subvolume_at(dfd.fd(), SNAPSHOT_NAME);
            let _ = remove_metadata(&dfd, &d);
            return Err(e);
        }
        self.get(num)
    }

    /// Number of the newest snapshot called `name`, if any (reads every info.xml).
    pub fn find_name(&self, name: &str) -> Result<Option<u32>> {
        Ok(self
            .snapshots()?
            .iter()
            .rev()
            .find(|s| s.info.name() == Some(name))
            .map(|s| s.info.num))
    }

    /// Rewrites a snapshot's info.xml (atomically).
    pub fn write_info(&self, info: &SnapshotInfo) -> Result<()> {
        let dfd = self.open_own(info.num)?;
        write_info_at(&dfd, &self.info_dir(info.num), info)
    }

    /// Snapshot `num`'s directory, open, when it is one of the store's own (a real
    /// directory on the store's filesystem); an error naming what stands there otherwise.
    fn open_own(&self, num: u32) -> Result<DirFd> {
        self.fd
            .open_dir(&num.to_string())
            .map_err(|why| Error::Foreign {
                num,
                why: why.to_string(),
            })
    }

    /// Deletes snapshot `num` (or a broken snapshot directory). The active snapshot and the
    /// Btrfs default subvolume are refused. The directory of the highest number is kept
    /// empty, as snapper does, so the number is never used again.
    pub fn delete(&self, num: u32, default_subvol_id: Option<u64>) -> Result<()> {
        let _lock = self.lock()?;
        self.delete_locked(num, default_subvol_id)
    }

    /// [`Store::delete`] for a caller that already holds the lock.
    pub fn delete_locked(&self, num: u32, default_subvol_id: Option<u64>) -> Result<()> {
        let d = self.info_dir(num);
        let entry = self
            .read_entry(num)
            .ok_or_else(|| Error::UnknownId(num.to_string()))?;
        let has_subvolume = match &entry {
            Entry::Ok(s) => {
                if s.active {
                    return Err(Error::Protected {
                        num,
                        why: "the snapshot the system runs on".into(),
                    });
                }
                true
            }
            Entry::Broken(b) if b.foreign => {
                return Err(Error::Foreign {
                    num,
                    why: b.reason.clone(),
                })
            }
            Entry::Broken(b) => b.has_subvolume,
        };
        let dfd = self.open_own(num)?;
        let sub = d.join(SNAPSHOT_NAME);
        if has_subvolume {
            if let Some(def) = default_subvol_id {
                if btrfs::subvolume_id(&sub).ok() == Some(def) {
                    return Err(Error::Protected {
                        num,
                        why: "the Btrfs default subvolume".into(),
                    });
                }
            }
            btrfs::delete_subvolume_at(dfd.fd(), SNAPSHOT_NAME)
                .map_err(io_err(format!("cannot delete subvolume {}", sub.display())))?;
        }
        remove_metadata(&dfd, &d)?;
        let highest = self.numbers()?.last().copied() == Some(num);
        if !highest {
            self.fd
                .rmdir(&num.to_string())
                .map_err(io_err(format!("cannot remove {}", d.display())))?;
        }
        Ok(())
    }

    /// The remains of interrupted creates ([`Broken::debris`]) and stray temporary
    /// `info.xml` files older than [`DEBRIS_AGE`]: removed, or with `dry_run` only listed.
    /// Returns what was (or would be) removed and what could not be. Callers hold the lock.
    pub fn heal_locked(&self, dry_run: bool) -> Result<Healed> {
        Ok(self.heal_entries(&self.entries()?, dry_run))
    }

    /// [`Store::heal_locked`] on entries already listed (under the same lock).
    fn heal_entries(&self, entries: &[Entry], dry_run: bool) -> Healed {
        let mut healed = Healed::default();
        for e in entries {
            match e {
                Entry::Broken(b) if b.debris => {
                    if dry_run {
                        healed.removed.push(b.num);
                        continue;
                    }
                    match self.delete_locked(b.num, None) {
                        Ok(()) => healed.removed.push(b.num),
                        Err(e) => healed.failed.push((b.num, e.to_string())),
                    }
                }
                Entry::Ok(s) => {
                    let Ok(d) = self.fd.open_dir(&s.info.num.to_string()) else {
                        continue;
                    };
                    if d.age().is_none_or(|a| a < DEBRIS_AGE) {
                        continue;
                    }
                    for (name, _) in d.entries().unwrap_or_default() {
                        if !name.starts_with(&format!("{INFO_NAME}.tmp-")) {
                            continue;
                        }
                        let regular = d.stat(&name).ok().flatten().is_some_and(|st| {
                            FileType::from_raw_mode(st.st_mode) == FileType::RegularFile
                        });
                        if regular && (dry_run || d.unlink(&name).is_ok()) {
                            healed.temp_files += 1;
                        }
                    }
                }
                Entry::Broken(_) => {}
            }
        }
        healed
    }

    /// Resolves an ID: a number, a name, or a glob on names (newest match wins).
    pub fn resolve(&self, entries: &[Entry], id: &str) -> Result<u32> {
        resolve_id(entries, id)
    }

    /// The Btrfs default subvolume's id (`btrfs subvolume get-default`), if it can be read.
    pub fn default_subvolume_id(&self, runner: &koompi_core::cmd::Runner) -> Option<u64> {
        let out = koompi_core::cmd::Cmd::new("btrfs")
            .args(["subvolume", "get-default"])
            .arg(&self.subvolume)
            .run(runner)
            .ok()?;
        // "ID 256 gen 9 top level 5 path @"
        out.stdout.split_whitespace().nth(1)?.parse().ok()
    }
}

/// What [`Store::heal_locked`] removed.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Healed {
    /// Numbers whose remains of an interrupted create were removed.
    pub removed: Vec<u32>,
    /// Stray temporary `info.xml` files removed from complete snapshots.
    pub temp_files: usize,
    /// Remains that could not be removed, with the reason.
    pub failed: Vec<(u32, String)>,
}

/// Who holds the flock on the directory open as `file` (at `dir`): "pid N (COMMAND)",
/// or "another process" when it cannot be found. /proc/locks names the pids holding a
/// write flock on an inode of that number (its device numbers are the filesystem's, not
/// the subvolume's, so they cannot tell subvolumes apart); the holder is the one among
/// them with `dir` open, or the only one.
fn lock_holder(file: &fs::File, dir: &Path) -> String {
    let Ok(md) = file.metadata() else {
        return "another process".into();
    };
    let ino = md.ino().to_string();
    let locks = fs::read_to_string("/proc/locks").unwrap_or_default();
    let pids: Vec<&str> = locks
        .lines()
        .filter_map(|l| {
            // "1: FLOCK  ADVISORY  WRITE 1234 00:2d:256 0 EOF"
            let f: Vec<&str> = l.split_whitespace().collect();
            let same_inode = f.get(5).and_then(|d| d.rsplit(':').next()) == Some(ino.as_str());
            (f.len() >= 6 && f[1] == "FLOCK" && f[3] == "WRITE" && same_inode).then(|| f[4])
        })
        .collect();
    let canonical = fs::canonicalize(dir).unwrap_or_else(|_| dir.to_path_buf());
    let has_open = |pid: &str| {
        fs::read_dir(format!("/proc/{pid}/fd")).is_ok_and(|rd| {
            rd.flatten()
                .any(|e| fs::read_link(e.path()).is_ok_and(|t| t == canonical))
        })
    };
    let pid = pids
        .iter()
        .find(|p| has_open(p))
        .or_else(|| (pids.len() == 1).then(|| &pids[0]));
    match pid {
        Some(pid) => {
            let comm = fs::read_to_string(format!("/proc/{pid}/comm")).unwrap_or_default();
            let comm = comm.trim();
            if comm.is_empty() {
                format!("pid {pid}")
            } else {
                format!("pid {pid} ({comm})")
            }
        }
        None => "another process".into(),
    }
}

/// Resolves an ID against listed entries: a number, a name, or a glob on names.
pub fn resolve_id(entries: &[Entry], id: &str) -> Result<u32> {
    let id = id.trim();
    if let Some(n) = parse_number(id) {
        return entries
            .iter()
            .find(|e| e.num() == n)
            .map(Entry::num)
            .ok_or_else(|| Error::UnknownId(id.to_string()));
    }
    let is_glob = id.contains(['*', '?', '[']);
    if !is_glob {
        validate_name(id)?;
    }
    entries
        .iter()
        .rev()
        .filter_map(|e| match e {
            Entry::Ok(s) => Some(s),
            Entry::Broken(_) => None,
        })
        .find(|s| match s.info.name() {
            Some(n) if is_glob => glob_match::glob_match(id, n),
            Some(n) => n == id,
            None => false,
        })
        .map(|s| s.info.num)
        .ok_or_else(|| Error::UnknownId(id.to_string()))
}

/// A snapshot number as snapper writes directory names: digits only, not zero.
pub fn parse_number(s: &str) -> Option<u32> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) || s.len() > 10 {
        return None;
    }
    s.parse().ok().filter(|n| *n > 0)
}

/// Whether `name` is one of the metadata files KOOMPI or snapper keep in a snapshot
/// directory: `info.xml`, its temporary files, snapper's file lists, the rollback journal
/// and its temporary file.
fn is_metadata(name: &str) -> bool {
    name == INFO_NAME
        || name.starts_with("info.xml.tmp-")
        || (name.starts_with("filelist-") && name.ends_with(".txt"))
        || name == crate::rollback::JOURNAL_NAME
        || name.starts_with(&format!("{}.tmp", crate::rollback::JOURNAL_NAME))
}

/// Removes a snapshot directory's metadata files by name (a link among them is removed
/// itself, never followed), and an empty `snapshot` directory that is not a subvolume.
/// Anything else is left where it is, and said.
fn remove_metadata(d: &DirFd, path: &Path) -> Result<()> {
    let entries = match d.entries() {
        Ok(e) => e,
        Err(e) => return Err(io_err(format!("cannot read {}", path.display()))(e)),
    };
    let mut foreign = Vec::new();
    for (name, _) in entries {
        let ctx = || format!("cannot remove {}", path.join(&name).display());
        let Some(st) = d.stat(&name).map_err(io_err(ctx()))? else {
            continue;
        };
        let t = FileType::from_raw_mode(st.st_mode);
        if is_metadata(&name) && t != FileType::Directory {
            d.unlink(&name).map_err(io_err(ctx()))?;
        } else if name == SNAPSHOT_NAME && t == FileType::Directory {
            // An empty leftover directory (not a subvolume); rmdir never recurses.
            if d.rmdir(&name).is_err() {
                foreign.push(name);
            }
        } else {
            foreign.push(name);
        }
    }
    if !foreign.is_empty() {
        return Err(Error::ForeignContent {
            path: path.to_path_buf(),
            names: foreign.join(", "),
        });
    }
    Ok(())
}

/// Writes info.xml atomically in the directory open as `d` (shown as `path`): a
/// temporary file, fsync, rename, fsync of the directory; never through a link.
fn write_info_at(d: &DirFd, path: &Path, info: &SnapshotInfo) -> Result<()> {
    let xml = crate::info::to_xml(info);
    let tmp = format!("{INFO_NAME}.tmp-{}", std::process::id());
    let ctx = || format!("cannot write {}", path.join(INFO_NAME).display());
    let res = (|| -> std::io::Result<()> {
        let fd = rustix::fs::openat(
            d.fd(),
            tmp.as_str(),
            rustix::fs::OFlags::WRONLY
                | rustix::fs::OFlags::CREATE
                | rustix::fs::OFlags::EXCL
                | rustix::fs::OFlags::NOFOLLOW
                | rustix::fs::OFlags::CLOEXEC,
            rustix::fs::Mode::from_raw_mode(0o644),
        )?;
        let mut f = fs::File::from(fd);
        f.set_permissions(fs::Permissions::from_mode(0o644))?;
        f.write_all(xml.as_bytes())?;
        f.sync_all()?;
        rustix::fs::renameat(d.fd(), tmp.as_str(), d.fd(), INFO_NAME)?;
        rustix::fs::fsync(d.fd())?;
        Ok(())
    })();
    if let Err(e) = res {
        let _ = d.unlink(&tmp);
        return Err(io_err(ctx())(e));
    }
    Ok(())
}

trait TruncSeconds {
    fn with_nanosecond0(self) -> Self;
}

impl TruncSeconds for NaiveDateTime {
    fn with_nanosecond0(self) -> Self {
        use chrono::Timelike;
        self.with_nanosecond(0).unwrap_or(self)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn snap(num: u32, name: Option<&str>) -> Entry {
        let mut userdata = BTreeMap::new();
        if let Some(n) = name {
            userdata.insert(NAME_KEY.to_string(), n.to_string());
        }
        Entry::Ok(Snapshot {
            info: SnapshotInfo {
                num,
                kind: SnapshotType::Single,
                date: chrono::DateTime::from_timestamp(1_700_000_000 + i64::from(num), 0)
                    .unwrap()
                    .naive_utc(),
                uid: 0,
                pre_num: None,
                description: String::new(),
                cleanup: crate::Cleanup::Number,
                userdata,
            },
            path: PathBuf::from("/x"),
            read_only: true,
            active: false,
        })
    }

    #[test]
    fn resolves_numbers_names_and_globs() {
        let e = vec![
            snap(1, Some("factory-20260101")),
            snap(2, None),
            snap(5, Some("factory-20260301")),
            snap(7, Some("daily-20261120")),
        ];
        assert_eq!(resolve_id(&e, "2").unwrap(), 2);
        assert_eq!(resolve_id(&e, "daily-20261120").unwrap(), 7);
        assert_eq!(resolve_id(&e, "factory-*").unwrap(), 5, "newest match");
        assert_eq!(resolve_id(&e, "factory-2026010?").unwrap(), 1);
        assert!(matches!(resolve_id(&e, "3"), Err(Error::UnknownId(_))));
        assert!(matches!(resolve_id(&e, "nope-*"), Err(Error::UnknownId(_))));
        assert!(matches!(
            resolve_id(&e, "../etc"),
            Err(Error::InvalidName { .. })
        ));
    }

    #[test]
    fn names_are_checked() {
        for bad in [
            "", "a/b", "..", "x..y", "123", "-rf", ".hidden", "a b", "a,b", "a=b",
        ] {
            assert!(validate_name(bad).is_err(), "{bad:?} accepted");
        }
        for good in [
            "factory-20260101",
            "pre-update-2026-11-21",
            "v1.2+fix",
            "a@b:c",
        ] {
            validate_name(good).unwrap();
        }
    }

    #[test]
    fn userdata_is_checked_like_snapper() {
        assert!(validate_userdata("k", "v").is_ok());
        assert!(validate_userdata("", "v").is_err());
        assert!(validate_userdata("a,b", "v").is_err());
        assert!(validate_userdata("k", "x=y").is_err());
    }

    #[test]
    fn numbers_are_plain_positive_decimals() {
        assert_eq!(parse_number("42"), Some(42));
        for s in ["0", "", "-1", "+1", "1a", "99999999999"] {
            assert_eq!(parse_number(s), None, "{s}");
        }
    }
}
