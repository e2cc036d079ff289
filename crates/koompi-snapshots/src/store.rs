//! The snapshot store: `SUBVOLUME/.snapshots/N/{snapshot,info.xml}`, exactly as snapper keeps it.
//!
//! Reading never fails on one bad snapshot: a directory whose `info.xml` is missing or corrupt,
//! or whose snapshot subvolume is gone, is reported as [`Broken`]. An empty numbered directory
//! is a number snapper keeps reserved so numbers are never reused; it is not listed.

use std::collections::BTreeMap;
use std::fs;
use std::io::Write;
use std::os::fd::AsRawFd;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use chrono::{NaiveDateTime, Utc};
use serde::Serialize;

use crate::btrfs;
use crate::config::SnapperConfig;
use crate::error::{io_err, Error, Result};
use crate::model::{SnapshotInfo, SnapshotType, IMPORTANT_KEY, NAME_KEY};

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
    pub cleanup: String,
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
            cleanup: String::new(),
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
}

/// A snapshot store opened on a config's subvolume.
#[derive(Debug, Clone)]
pub struct Store {
    pub config: SnapperConfig,
    subvolume: PathBuf,
    dir: PathBuf,
    /// st_dev of the subvolume: Btrfs gives each subvolume its own, so a snapshot with the
    /// same st_dev is the one the subvolume's mount shows (the active one).
    subvolume_dev: u64,
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
        Ok(Store {
            config,
            subvolume,
            dir,
            subvolume_dev: md.dev(),
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
    pub fn lock(&self) -> Result<Lock> {
        let file = fs::File::open(&self.dir)
            .map_err(io_err(format!("cannot open {}", self.dir.display())))?;
        // SAFETY: flock on a valid, owned descriptor.
        if unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX) } != 0 {
            return Err(io_err(format!("cannot lock {}", self.dir.display()))(
                std::io::Error::last_os_error(),
            ));
        }
        Ok(Lock { _file: file })
    }

    /// Numbers of all numbered directories, sorted.
    fn numbers(&self) -> Result<Vec<u32>> {
        let rd = fs::read_dir(&self.dir)
            .map_err(io_err(format!("cannot read {}", self.dir.display())))?;
        let mut nums = Vec::new();
        for e in rd {
            let e = e.map_err(io_err(format!("cannot read {}", self.dir.display())))?;
            if let Some(n) = e.file_name().to_str().and_then(parse_number) {
                nums.push(n);
            }
        }
        nums.sort_unstable();
        Ok(nums)
    }

    /// Every snapshot and broken snapshot directory, by number.
    pub fn entries(&self) -> Result<Vec<Entry>> {
        let mut out = Vec::new();
        for num in self.numbers()? {
            if let Some(e) = self.read_entry(num) {
                out.push(e);
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
        let d = self.info_dir(num);
        let path = d.join(SNAPSHOT_NAME);
        let sub_md = fs::symlink_metadata(&path).ok();
        let has_subvolume = sub_md.as_ref().is_some_and(btrfs::metadata_is_subvolume);
        let broken = |reason: String| {
            Some(Entry::Broken(Broken {
                num,
                reason,
                has_subvolume,
            }))
        };
        let text = match fs::read_to_string(d.join(INFO_NAME)) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                if sub_md.is_none() && dir_is_empty(&d) {
                    return None;
                }
                return broken("info.xml is missing".into());
            }
            Err(e) => return broken(format!("cannot read info.xml: {e}")),
        };
        let info = match crate::info::parse(&text) {
            Ok(i) => i,
            Err(e) => return broken(format!("info.xml: {e}")),
        };
        if info.num != num {
            return broken(format!("info.xml says number {}", info.num));
        }
        let Some(md) = sub_md else {
            return broken("the snapshot subvolume is missing".into());
        };
        if !has_subvolume {
            return broken("`snapshot` is not a subvolume".into());
        }
        let read_only = btrfs::is_read_only(&path).unwrap_or(false);
        Some(Entry::Ok(Snapshot {
            active: md.dev() == self.subvolume_dev,
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
            let d = self.info_dir(num);
            match fs::create_dir(&d) {
                Ok(()) => {
                    let _ = fs::set_permissions(&d, fs::Permissions::from_mode(0o755));
                    return Ok(num);
                }
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
                Err(e) => {
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
        if let Some(name) = req.userdata.get(NAME_KEY) {
            validate_name(name)?;
            if let Some(num) = self.find_name(name)? {
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
        let result = btrfs::snapshot(source, &d, SNAPSHOT_NAME, req.read_only)
            .map_err(io_err(format!(
                "cannot snapshot {} into {}",
                source.display(),
                d.display()
            )))
            .and_then(|()| write_info(&d, &info));
        if let Err(e) = result {
            // Leave only the empty reserved number, as after a delete.
            let _ = btrfs::delete_subvolume(&d, SNAPSHOT_NAME);
            let _ = remove_files(&d);
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
        write_info(&self.info_dir(info.num), info)
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
            Entry::Broken(b) => b.has_subvolume,
        };
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
            btrfs::delete_subvolume(&d, SNAPSHOT_NAME)
                .map_err(io_err(format!("cannot delete subvolume {}", sub.display())))?;
        }
        remove_files(&d)?;
        let highest = self.numbers()?.last().copied() == Some(num);
        if !highest {
            fs::remove_dir(&d).map_err(io_err(format!("cannot remove {}", d.display())))?;
        }
        Ok(())
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

fn dir_is_empty(d: &Path) -> bool {
    fs::read_dir(d)
        .map(|mut r| r.next().is_none())
        .unwrap_or(false)
}

/// Removes the plain files of a snapshot directory (info.xml, snapper's filelists).
fn remove_files(d: &Path) -> Result<()> {
    let rd = match fs::read_dir(d) {
        Ok(rd) => rd,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(io_err(format!("cannot read {}", d.display()))(e)),
    };
    for e in rd.flatten() {
        let p = e.path();
        let is_dir = e.file_type().map(|t| t.is_dir()).unwrap_or(false);
        let r = if is_dir {
            fs::remove_dir_all(&p)
        } else {
            fs::remove_file(&p)
        };
        r.map_err(io_err(format!("cannot remove {}", p.display())))?;
    }
    Ok(())
}

/// Writes info.xml atomically: a temporary file, fsync, rename, fsync of the directory.
fn write_info(dir: &Path, info: &SnapshotInfo) -> Result<()> {
    let xml = crate::info::to_xml(info);
    let tmp = dir.join(format!("{INFO_NAME}.tmp-{}", std::process::id()));
    let ctx = || format!("cannot write {}", dir.join(INFO_NAME).display());
    let res = (|| {
        let mut f = fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&tmp)?;
        f.set_permissions(fs::Permissions::from_mode(0o644))?;
        f.write_all(xml.as_bytes())?;
        f.sync_all()?;
        fs::rename(&tmp, dir.join(INFO_NAME))?;
        fs::File::open(dir)?.sync_all()
    })();
    if let Err(e) = res {
        let _ = fs::remove_file(&tmp);
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
                cleanup: "number".into(),
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
