//! The store's directories, walked through directory descriptors.
//!
//! Nothing under `.snapshots` may lead a read or a deletion outside it. So the store opens
//! `.snapshots` once, without following a symbolic link, and reaches every numbered
//! directory and every file in one relative to a descriptor (`openat`-style, never
//! following a link, never crossing into another filesystem), checking each entry's type
//! before it is used. A symbolic link, a FIFO, a device or a mount point where a snapshot
//! directory or `info.xml` should be is reported as foreign and left alone; metadata files
//! are read only when they are regular files of bounded size, without blocking; removals
//! are by name inside the directory they were found in, never recursive.

use std::ffi::CStr;
use std::fs::File;
use std::io::{self, Read};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::Path;

use rustix::fs::{AtFlags, Dir, FileType, Mode, OFlags};

/// The largest `info.xml` (or journal) the store reads. snapper's are under 1 KiB; anything
/// near this is not one of ours, and reading it whole could exhaust a small laptop's memory.
pub const METADATA_CAP: u64 = 64 * 1024;

/// Flags of every open here: read-only, never through a link, never inherited.
fn flags() -> OFlags {
    OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::CLOEXEC
}

/// An open directory of the store (`.snapshots` or one numbered directory in it).
#[derive(Debug)]
pub struct DirFd {
    fd: OwnedFd,
    /// The filesystem (st_dev) the directory is on; its entries must be on the same one.
    dev: u64,
}

/// Why an entry cannot be used as what the store expected.
#[derive(Debug)]
pub enum Foreign {
    /// No such entry.
    Missing,
    /// Something else stands there: the words say what ("a symbolic link", "a FIFO", ...).
    Kind(&'static str),
    /// A directory of another filesystem: a mount point.
    MountPoint,
    /// The entry could not be examined.
    Io(io::Error),
}

impl std::fmt::Display for Foreign {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Foreign::Missing => f.write_str("it is missing"),
            Foreign::Kind(k) => write!(f, "it is {k}"),
            Foreign::MountPoint => f.write_str("it is a mount point"),
            Foreign::Io(e) => write!(f, "it cannot be examined: {e}"),
        }
    }
}

/// Words for a file type, in messages.
pub fn kind_words(t: FileType) -> &'static str {
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

/// The type of an entry, without following a link; `None` when it does not exist.
fn lstat_at(dir: BorrowedFd<'_>, name: &str) -> io::Result<Option<rustix::fs::Stat>> {
    match rustix::fs::statat(dir, name, AtFlags::SYMLINK_NOFOLLOW) {
        Ok(st) => Ok(Some(st)),
        Err(rustix::io::Errno::NOENT) => Ok(None),
        Err(e) => Err(e.into()),
    }
}

impl DirFd {
    /// Opens the directory at `path` itself (a link there is refused, not followed).
    pub fn open(path: &Path) -> io::Result<DirFd> {
        let fd = rustix::fs::open(path, flags() | OFlags::DIRECTORY, Mode::empty())?;
        let dev = rustix::fs::fstat(&fd)?.st_dev;
        Ok(DirFd { fd, dev })
    }

    /// The entry `name` as a directory of the same filesystem, or why it is not one.
    pub fn open_dir(&self, name: &str) -> Result<DirFd, Foreign> {
        match lstat_at(self.fd.as_fd(), name) {
            Ok(None) => return Err(Foreign::Missing),
            Ok(Some(st)) => {
                let t = FileType::from_raw_mode(st.st_mode);
                if t != FileType::Directory {
                    return Err(Foreign::Kind(kind_words(t)));
                }
                if st.st_dev != self.dev {
                    return Err(Foreign::MountPoint);
                }
            }
            Err(e) => return Err(Foreign::Io(e)),
        }
        let fd = rustix::fs::openat(&self.fd, name, flags() | OFlags::DIRECTORY, Mode::empty())
            .map_err(|e| match e {
                // Replaced by a link or something else between the two calls.
                rustix::io::Errno::LOOP | rustix::io::Errno::NOTDIR => {
                    Foreign::Kind("not a directory")
                }
                rustix::io::Errno::NOENT => Foreign::Missing,
                e => Foreign::Io(e.into()),
            })?;
        let st = rustix::fs::fstat(&fd).map_err(|e| Foreign::Io(e.into()))?;
        if st.st_dev != self.dev {
            return Err(Foreign::MountPoint);
        }
        Ok(DirFd { fd, dev: self.dev })
    }

    /// The names in this directory (not `.` and `..`), with their types as the directory
    /// reports them.
    pub fn entries(&self) -> io::Result<Vec<(String, FileType)>> {
        // A new open file description of the same directory: a dup would share (and
        // leave at the end) the read position of the store's own descriptor.
        let fresh = rustix::fs::openat(&self.fd, ".", flags() | OFlags::DIRECTORY, Mode::empty())?;
        let mut dir = Dir::new(fresh)?;
        let mut out = Vec::new();
        while let Some(e) = dir.read() {
            let e = e?;
            let name: &CStr = e.file_name();
            let Ok(name) = name.to_str() else { continue };
            if name == "." || name == ".." {
                continue;
            }
            out.push((name.to_string(), e.file_type()));
        }
        Ok(out)
    }

    /// The type of `name` without following a link, and whether it is on this directory's
    /// filesystem; `None` when it does not exist.
    pub fn stat(&self, name: &str) -> io::Result<Option<rustix::fs::Stat>> {
        lstat_at(self.fd.as_fd(), name)
    }

    /// Reads the regular file `name`, at most [`METADATA_CAP`] bytes, without blocking on
    /// a FIFO or a device and without following a link. `Ok(None)`: it does not exist.
    pub fn read_small(&self, name: &str) -> Result<Option<String>, Foreign> {
        let fd = match rustix::fs::openat(
            &self.fd,
            name,
            flags() | OFlags::NONBLOCK | OFlags::NOCTTY,
            Mode::empty(),
        ) {
            Ok(fd) => fd,
            Err(rustix::io::Errno::NOENT) => return Ok(None),
            Err(rustix::io::Errno::LOOP) => return Err(Foreign::Kind("a symbolic link")),
            Err(e) => return Err(Foreign::Io(e.into())),
        };
        let st = rustix::fs::fstat(&fd).map_err(|e| Foreign::Io(e.into()))?;
        let t = FileType::from_raw_mode(st.st_mode);
        if t != FileType::RegularFile {
            return Err(Foreign::Kind(kind_words(t)));
        }
        let size = u64::try_from(st.st_size).unwrap_or(u64::MAX);
        if size > METADATA_CAP {
            return Err(Foreign::Kind(if size > 1 << 20 {
                "far too large (more than 1 MiB)"
            } else {
                "too large (more than 64 KiB)"
            }));
        }
        let mut text = String::new();
        File::from(fd)
            .take(METADATA_CAP + 1)
            .read_to_string(&mut text)
            .map_err(Foreign::Io)?;
        if text.len() as u64 > METADATA_CAP {
            return Err(Foreign::Kind("too large (it grew while being read)"));
        }
        Ok(Some(text))
    }

    /// Removes the file or symbolic link `name` (a link itself, never what it points at).
    pub fn unlink(&self, name: &str) -> io::Result<()> {
        rustix::fs::unlinkat(&self.fd, name, AtFlags::empty()).map_err(Into::into)
    }

    /// Removes the empty directory `name`.
    pub fn rmdir(&self, name: &str) -> io::Result<()> {
        rustix::fs::unlinkat(&self.fd, name, AtFlags::REMOVEDIR).map_err(Into::into)
    }

    /// Creates the directory `name` (mode 0755 before the umask).
    pub fn mkdir(&self, name: &str) -> io::Result<()> {
        rustix::fs::mkdirat(&self.fd, name, Mode::from_raw_mode(0o755)).map_err(Into::into)
    }

    /// How long ago the directory last changed (an entry made, renamed or removed);
    /// `None` when that cannot be read or lies in the future.
    pub fn age(&self) -> Option<std::time::Duration> {
        let st = rustix::fs::fstat(&self.fd).ok()?;
        let mtime = std::time::UNIX_EPOCH
            + std::time::Duration::new(
                u64::try_from(st.st_mtime).ok()?,
                u32::try_from(st.st_mtime_nsec).ok()?,
            );
        std::time::SystemTime::now().duration_since(mtime).ok()
    }

    /// The descriptor, for the Btrfs ioctls.
    pub fn fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}
