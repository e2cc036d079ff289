//! A home directory, reached only through its open descriptor.
//!
//! Every path here is relative to the home and made of plain names (the catalog refuses
//! `..` and absolute paths). Each directory on the way is opened with `O_NOFOLLOW |
//! O_DIRECTORY` relative to the one before it, so a symbolic link anywhere on the way (to
//! outside the home, or a loop) stops the walk with one sentence saying which name it is;
//! nothing is ever resolved through a link. The file itself is examined with
//! `fstatat(AT_SYMLINK_NOFOLLOW)` before it is opened, and opened only when it is a
//! regular file, with `O_NOFOLLOW | O_NONBLOCK`, so a FIFO never blocks a read.
//!
//! Writes are atomic: a temporary file in the same directory, written, given its mode,
//! fsynced, then renamed over the old one (or hard-linked into place when the name must not
//! exist yet, which never overwrites), and the directory fsynced. Any failure (a full disk,
//! a read-only filesystem, a permission) removes the temporary file and leaves the old file
//! as it was.

use std::ffi::{OsStr, OsString};
use std::fs::File;
use std::io::{self, Read, Write};
use std::os::fd::OwnedFd;
use std::os::unix::ffi::OsStrExt;
use std::path::{Component, Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};

use rustix::fs::{AtFlags, FileType, Mode, OFlags};
use rustix::io::Errno;

use super::decide::{OnDisk, Sha};

/// The largest config file read (the shipped ones are a few KiB).
pub const FILE_CAP: u64 = 8 * 1024 * 1024;

/// Mode of the directories created in a home (as XDG asks for its base directories).
const DIR_MODE: u32 = 0o700;

/// An open home directory.
#[derive(Debug)]
pub struct Home {
    fd: OwnedFd,
    path: PathBuf,
}

/// What is at one place of the home, as seen before acting on it.
#[derive(Debug, Clone)]
pub struct Seen {
    pub disk: OnDisk,
    /// The content, for a regular file that could be read.
    pub content: Option<Vec<u8>>,
    /// The permission bits of a regular file.
    pub mode: Option<u32>,
    /// Identity of the file seen, to notice a change before it is replaced.
    stamp: Option<Stamp>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Stamp {
    dev: u64,
    ino: u64,
    size: i64,
    mtime: (i64, i64),
}

impl Stamp {
    fn of(st: &rustix::fs::Stat) -> Stamp {
        Stamp {
            dev: st.st_dev,
            ino: st.st_ino,
            size: st.st_size,
            mtime: (st.st_mtime, st.st_mtime_nsec as i64),
        }
    }
}

/// Why a write did not happen; the old file is intact.
#[derive(Debug, thiserror::Error)]
pub enum WriteError {
    /// The way to the file is not usable.
    #[error("{0}")]
    Blocked(String),
    /// The file changed, appeared or went away between looking and writing.
    #[error("it changed while KOOMPI was applying; run again")]
    Raced,
    #[error("cannot {step}: {}", words(.source))]
    Io {
        step: &'static str,
        #[source]
        source: io::Error,
    },
}

fn io_err(step: &'static str) -> impl FnOnce(Errno) -> WriteError {
    move |e| WriteError::Io {
        step,
        source: e.into(),
    }
}

/// An I/O error in words, without the `(os error N)` tail.
pub fn words(e: &io::Error) -> String {
    match e.raw_os_error().map(Errno::from_raw_os_error) {
        Some(Errno::NOSPC) => "the disk is full".into(),
        Some(Errno::DQUOT) => "the disk quota is used up".into(),
        Some(Errno::ROFS) => "the filesystem is read-only".into(),
        Some(Errno::ACCESS) | Some(Errno::PERM) => "permission denied".into(),
        _ => {
            let s = e.to_string();
            match s.find(" (os error") {
                Some(i) => s[..i].to_string(),
                None => s,
            }
        }
    }
}

/// A path for people: control characters (a newline in a file name) escaped, so every
/// message stays one line.
pub fn show(p: &Path) -> String {
    let s = p.to_string_lossy();
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if c.is_control() {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    out
}

/// Words for a file type.
fn kind(t: FileType) -> &'static str {
    match t {
        FileType::RegularFile => "a regular file",
        FileType::Directory => "a directory",
        FileType::Symlink => "a symbolic link",
        FileType::Fifo => "a FIFO",
        FileType::Socket => "a socket",
        FileType::CharacterDevice => "a character device",
        FileType::BlockDevice => "a block device",
        FileType::Unknown => "of an unknown type",
    }
}

/// The plain names of `rel`; `None` when it is not a relative path of plain names.
fn names(rel: &Path) -> Option<Vec<&OsStr>> {
    let mut out = Vec::new();
    for c in rel.components() {
        match c {
            Component::Normal(n) => out.push(n),
            Component::CurDir => {}
            _ => return None,
        }
    }
    (!out.is_empty()).then_some(out)
}

/// Where a walk to a file's directory ended.
enum Walk {
    /// The directory holding the file, and the file's name.
    Dir(OwnedFd, OsString),
    /// A directory on the way does not exist (so neither does the file).
    Missing,
}

const DIR_FLAGS: OFlags = OFlags::RDONLY
    .union(OFlags::DIRECTORY)
    .union(OFlags::NOFOLLOW)
    .union(OFlags::CLOEXEC);

static TEMP_COUNTER: AtomicU32 = AtomicU32::new(0);

impl Home {
    /// Opens the home directory `path` (a link in `path` itself is followed: the caller
    /// named it).
    pub fn open(path: &Path) -> io::Result<Home> {
        let fd = rustix::fs::open(
            path,
            OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
            Mode::empty(),
        )?;
        Ok(Home {
            fd,
            path: path.to_owned(),
        })
    }

    /// The home's path, as given.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Walks to the directory of `rel`, creating missing directories when `created` is
    /// given (and noting each one created there, relative to the home).
    fn walk(&self, rel: &Path, mut created: Option<&mut Vec<PathBuf>>) -> Result<Walk, WriteError> {
        let parts = names(rel).ok_or_else(|| {
            WriteError::Blocked(format!("{} is not a plain relative path", show(rel)))
        })?;
        let (file, dirs) = parts.split_last().ok_or(WriteError::Raced)?;
        let mut dir = rustix::io::dup(&self.fd).map_err(io_err("open the home"))?;
        let mut so_far = PathBuf::new();
        for name in dirs {
            so_far.push(name);
            let next = match rustix::fs::openat(&dir, *name, DIR_FLAGS, Mode::empty()) {
                Ok(fd) => fd,
                Err(Errno::NOENT) => match created.as_deref_mut() {
                    None => return Ok(Walk::Missing),
                    Some(list) => {
                        match rustix::fs::mkdirat(&dir, *name, Mode::from_raw_mode(DIR_MODE)) {
                            Ok(()) => list.push(so_far.clone()),
                            Err(Errno::EXIST) => {}
                            Err(e) => {
                                return Err(WriteError::Io {
                                    step: "create the directory",
                                    source: e.into(),
                                })
                            }
                        }
                        rustix::fs::openat(&dir, *name, DIR_FLAGS, Mode::empty())
                            .map_err(|e| self.blocked(&dir, name, &so_far, e))?
                    }
                },
                Err(e) => return Err(self.blocked(&dir, name, &so_far, e)),
            };
            dir = next;
        }
        Ok(Walk::Dir(dir, file.to_os_string()))
    }

    /// Why the directory `name` (at `so_far`) could not be entered.
    fn blocked(&self, dir: &OwnedFd, name: &OsStr, so_far: &Path, e: Errno) -> WriteError {
        let what = match rustix::fs::statat(dir, name, AtFlags::SYMLINK_NOFOLLOW) {
            Ok(st) => {
                let t = FileType::from_raw_mode(st.st_mode);
                if t == FileType::Symlink {
                    "is a symbolic link (KOOMPI never follows links in a home)".to_string()
                } else if t != FileType::Directory {
                    format!("is {}, not a directory", kind(t))
                } else {
                    format!("cannot be entered: {}", words(&e.into()))
                }
            }
            Err(_) => format!("cannot be entered: {}", words(&e.into())),
        };
        WriteError::Blocked(format!("`{}` on the way {what}", show(so_far)))
    }

    /// What is at `rel`, read only when it is a regular file.
    pub fn look(&self, rel: &Path) -> Seen {
        let blocked = |why: String| Seen {
            disk: OnDisk::Blocked(why),
            content: None,
            mode: None,
            stamp: None,
        };
        let absent = Seen {
            disk: OnDisk::Absent,
            content: None,
            mode: None,
            stamp: None,
        };
        let (dir, name) = match self.walk(rel, None) {
            Ok(Walk::Dir(dir, name)) => (dir, name),
            Ok(Walk::Missing) => return absent,
            Err(e) => return blocked(e.to_string()),
        };
        let st = match rustix::fs::statat(&dir, &name, AtFlags::SYMLINK_NOFOLLOW) {
            Ok(st) => st,
            Err(Errno::NOENT) => return absent,
            Err(e) => return blocked(format!("cannot examine it: {}", words(&e.into()))),
        };
        let t = FileType::from_raw_mode(st.st_mode);
        let other = |t| Seen {
            disk: OnDisk::Other(kind(t)),
            content: None,
            mode: None,
            stamp: None,
        };
        if t != FileType::RegularFile {
            return other(t);
        }
        if st.st_size as u64 > FILE_CAP {
            return blocked(format!("it is larger than {} MiB", FILE_CAP >> 20));
        }
        let flags =
            OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::NONBLOCK | OFlags::CLOEXEC | OFlags::NOCTTY;
        let fd = match rustix::fs::openat(&dir, &name, flags, Mode::empty()) {
            Ok(fd) => fd,
            Err(Errno::LOOP) => return other(FileType::Symlink),
            Err(e) => return blocked(format!("cannot read it: {}", words(&e.into()))),
        };
        let st = match rustix::fs::fstat(&fd) {
            Ok(st) => st,
            Err(e) => return blocked(format!("cannot examine it: {}", words(&e.into()))),
        };
        let t = FileType::from_raw_mode(st.st_mode);
        if t != FileType::RegularFile {
            return other(t);
        }
        let mut content = Vec::new();
        if let Err(e) = File::from(fd).take(FILE_CAP + 1).read_to_end(&mut content) {
            return blocked(format!("cannot read it: {}", words(&e)));
        }
        if content.len() as u64 > FILE_CAP {
            return blocked(format!("it is larger than {} MiB", FILE_CAP >> 20));
        }
        let mode = st.st_mode & 0o7777;
        Seen {
            disk: OnDisk::File {
                sha: Sha::of(&content),
                writable: mode & 0o200 != 0,
            },
            content: Some(content),
            mode: Some(mode),
            stamp: Some(Stamp::of(&st)),
        }
    }

    /// Writes `content` with `mode` at `rel`, atomically. `seen` is what [`Home::look`]
    /// found there: the write happens only if the place still holds the same (a file that
    /// was absent must still be absent; it is then linked into place, never overwriting).
    pub fn write(
        &self,
        rel: &Path,
        content: &[u8],
        mode: u32,
        seen: Option<&Seen>,
        created: &mut Vec<PathBuf>,
    ) -> Result<(), WriteError> {
        let (dir, name) = match self.walk(rel, Some(created))? {
            Walk::Dir(dir, name) => (dir, name),
            Walk::Missing => return Err(WriteError::Raced),
        };
        let expect = seen.and_then(|s| s.stamp);
        let tmp = temp_name();
        let result = (|| {
            let fd = rustix::fs::openat(
                &dir,
                &tmp,
                OFlags::WRONLY | OFlags::CREATE | OFlags::EXCL | OFlags::NOFOLLOW | OFlags::CLOEXEC,
                Mode::from_raw_mode(mode & 0o777),
            )
            .map_err(io_err("create a temporary file"))?;
            let mut f = File::from(fd);
            f.write_all(content).map_err(|source| WriteError::Io {
                step: "write",
                source,
            })?;
            rustix::fs::fchmod(&f, Mode::from_raw_mode(mode & 0o777))
                .map_err(io_err("set the mode"))?;
            rustix::fs::fsync(&f).map_err(io_err("write"))?;
            drop(f);
            match expect {
                Some(stamp) => {
                    let now = rustix::fs::statat(&dir, &name, AtFlags::SYMLINK_NOFOLLOW)
                        .map_err(|_| WriteError::Raced)?;
                    if FileType::from_raw_mode(now.st_mode) != FileType::RegularFile
                        || Stamp::of(&now) != stamp
                    {
                        return Err(WriteError::Raced);
                    }
                    rustix::fs::renameat(&dir, &tmp, &dir, &name)
                        .map_err(io_err("replace the file"))?;
                }
                None => {
                    match rustix::fs::linkat(&dir, &tmp, &dir, &name, AtFlags::empty()) {
                        Ok(()) => {}
                        Err(Errno::EXIST) => return Err(WriteError::Raced),
                        Err(e) => return Err(io_err("create the file")(e)),
                    }
                    let _ = rustix::fs::unlinkat(&dir, &tmp, AtFlags::empty());
                }
            }
            Ok(())
        })();
        if result.is_err() {
            let _ = rustix::fs::unlinkat(&dir, &tmp, AtFlags::empty());
            return result;
        }
        rustix::fs::fsync(&dir).map_err(io_err("write the directory"))?;
        Ok(())
    }

    /// Writes `content` as a new file named `stem` + `suffix` beside `rel`'s name, or
    /// `stem` + `suffix` + `-N` when that exists: never overwriting. Returns the path
    /// written, relative to the home.
    pub fn write_beside(
        &self,
        rel: &Path,
        suffix: &str,
        content: &[u8],
        mode: u32,
        created: &mut Vec<PathBuf>,
    ) -> Result<PathBuf, WriteError> {
        let base = rel.file_name().ok_or(WriteError::Raced)?.to_os_string();
        for n in 0..100 {
            let mut name = base.clone();
            name.push(suffix);
            if n > 0 {
                name.push(format!("-{n}"));
            }
            let candidate = rel.with_file_name(&name);
            match self.write(&candidate, content, mode, None, created) {
                Ok(()) => return Ok(candidate),
                Err(WriteError::Raced) => continue,
                Err(e) => return Err(e),
            }
        }
        Err(WriteError::Blocked(format!(
            "100 files named {}{suffix}-N are already there",
            show(rel)
        )))
    }

    /// Reads the regular file `rel`; `Ok(None)` when it is absent.
    pub fn read(&self, rel: &Path) -> Result<Option<Vec<u8>>, WriteError> {
        let seen = self.look(rel);
        match seen.disk {
            OnDisk::Absent => Ok(None),
            OnDisk::File { .. } => Ok(seen.content),
            OnDisk::Other(k) => Err(WriteError::Blocked(format!("{} is {k}", show(rel)))),
            OnDisk::Blocked(why) => Err(WriteError::Blocked(format!("{}: {why}", show(rel)))),
        }
    }

    /// Removes the regular file `rel` if it still is what `seen` found; absent is fine.
    pub fn remove(&self, rel: &Path, seen: &Seen) -> Result<(), WriteError> {
        let (dir, name) = match self.walk(rel, None)? {
            Walk::Dir(dir, name) => (dir, name),
            Walk::Missing => return Ok(()),
        };
        match rustix::fs::statat(&dir, &name, AtFlags::SYMLINK_NOFOLLOW) {
            Err(Errno::NOENT) => return Ok(()),
            Err(e) => return Err(io_err("examine the file")(e)),
            Ok(st) => {
                if FileType::from_raw_mode(st.st_mode) != FileType::RegularFile
                    || Some(Stamp::of(&st)) != seen.stamp
                {
                    return Err(WriteError::Raced);
                }
            }
        }
        rustix::fs::unlinkat(&dir, &name, AtFlags::empty()).map_err(io_err("remove the file"))?;
        rustix::fs::fsync(&dir).map_err(io_err("write the directory"))
    }

    /// Makes sure the directory `rel` exists, creating what is missing (noted in
    /// `created`).
    pub fn ensure_dir(&self, rel: &Path, created: &mut Vec<PathBuf>) -> Result<(), WriteError> {
        self.walk(&rel.join("x"), Some(created)).map(drop)
    }

    /// Removes the directory `rel` if it is empty; true if it did.
    pub fn remove_empty_dir(&self, rel: &Path) -> bool {
        match self.walk(rel, None) {
            Ok(Walk::Dir(dir, name)) => {
                rustix::fs::unlinkat(&dir, &name, AtFlags::REMOVEDIR).is_ok()
            }
            _ => false,
        }
    }

    /// The names in directory `rel` (empty when it is absent or not a directory).
    pub fn list(&self, rel: &Path) -> Vec<OsString> {
        let Ok(Walk::Dir(dir, name)) = self.walk(&rel.join("x"), None) else {
            return Vec::new();
        };
        drop(name);
        let Ok(mut d) = rustix::fs::Dir::read_from(&dir) else {
            return Vec::new();
        };
        let mut out = Vec::new();
        while let Some(Ok(e)) = d.next() {
            let n = e.file_name().to_bytes();
            if n != b"." && n != b".." {
                out.push(OsStr::from_bytes(n).to_os_string());
            }
        }
        out
    }
}

/// A temporary name that no config file has, short enough for any directory.
fn temp_name() -> String {
    format!(
        ".koompi-apply-{}-{}.tmp",
        std::process::id(),
        TEMP_COUNTER.fetch_add(1, Ordering::Relaxed)
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::{symlink, PermissionsExt};

    fn home() -> (tempfile::TempDir, Home) {
        let dir = tempfile::tempdir().expect("tempdir");
        let h = Home::open(dir.path()).expect("open");
        (dir, h)
    }

    #[test]
    fn writes_reads_and_never_follows_links() {
        let (dir, h) = home();
        let rel = Path::new(".config/a b/-x\nname");
        let mut created = Vec::new();
        h.write(rel, b"one", 0o644, None, &mut created)
            .expect("write");
        assert_eq!(
            created,
            [PathBuf::from(".config"), PathBuf::from(".config/a b")]
        );
        let seen = h.look(rel);
        assert_eq!(seen.content.as_deref(), Some(&b"one"[..]));
        assert_eq!(seen.mode, Some(0o644));
        // Creating over an existing file is refused; replacing what was seen works.
        assert!(matches!(
            h.write(rel, b"two", 0o644, None, &mut created),
            Err(WriteError::Raced)
        ));
        h.write(rel, b"two", 0o600, Some(&seen), &mut created)
            .expect("replace");
        assert_eq!(std::fs::read(dir.path().join(rel)).expect("read"), b"two");
        // What was seen before the replacement is stale now.
        assert!(matches!(
            h.write(rel, b"3", 0o644, Some(&seen), &mut created),
            Err(WriteError::Raced)
        ));
        assert_eq!(show(rel), ".config/a b/-x\\nname");

        let outside = tempfile::tempdir().expect("outside");
        symlink(outside.path(), dir.path().join(".local")).expect("symlink");
        let s = h.look(Path::new(".local/state/x"));
        assert!(
            matches!(&s.disk, OnDisk::Blocked(w) if w.contains("`.local` on the way is a symbolic link")),
            "{s:?}"
        );
        let e = h
            .write(Path::new(".local/state/x"), b"x", 0o644, None, &mut created)
            .expect_err("refused");
        assert!(e.to_string().contains("symbolic link"), "{e}");
        assert_eq!(std::fs::read_dir(outside.path()).expect("ls").count(), 0);
        // No temporary file left anywhere.
        let left: Vec<_> = std::fs::read_dir(dir.path().join(".config/a b"))
            .expect("ls")
            .map(|e| e.expect("e").file_name())
            .collect();
        assert_eq!(left.len(), 1, "{left:?}");
    }

    #[test]
    fn a_fifo_is_seen_without_being_opened() {
        let (dir, h) = home();
        let p = dir.path().join("fifo");
        rustix::fs::mknodat(
            rustix::fs::CWD,
            &p,
            FileType::Fifo,
            Mode::from_raw_mode(0o644),
            0,
        )
        .expect("mkfifo");
        assert_eq!(h.look(Path::new("fifo")).disk, OnDisk::Other("a FIFO"));
        symlink("loop", dir.path().join("loop")).expect("loop");
        assert_eq!(
            h.look(Path::new("loop")).disk,
            OnDisk::Other("a symbolic link")
        );
        assert!(matches!(
            h.look(Path::new("loop/x")).disk,
            OnDisk::Blocked(_)
        ));
    }

    #[test]
    fn backups_never_overwrite() {
        let (dir, h) = home();
        let mut created = Vec::new();
        let rel = Path::new("f");
        let a = h
            .write_beside(rel, ".bak", b"1", 0o600, &mut created)
            .expect("first");
        let b = h
            .write_beside(rel, ".bak", b"2", 0o600, &mut created)
            .expect("second");
        assert_eq!(a, PathBuf::from("f.bak"));
        assert_eq!(b, PathBuf::from("f.bak-1"));
        assert_eq!(std::fs::read(dir.path().join("f.bak")).expect("read"), b"1");
        let m = std::fs::metadata(dir.path().join("f.bak-1")).expect("meta");
        assert_eq!(m.permissions().mode() & 0o777, 0o600);
    }
}
