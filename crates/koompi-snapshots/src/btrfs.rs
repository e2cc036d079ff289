//! Btrfs operations through the kernel's ioctl interface.
//!
//! snapper calls these ioctls through libbtrfsutil; bindings to that library break across
//! distributions, and starting the `btrfs` program for each snapshot would cost a process per
//! operation. The ioctl ABI is stable, so KOOMPI issues the few it needs itself: create a
//! snapshot, delete a subvolume, read and set the read-only flag, and look up a subvolume's
//! id. Everything else (usage, default subvolume) runs the `btrfs` program through the
//! koompi-core runner.
//!
//! The ioctls, issued through `rustix::ioctl`, are the crate's only `unsafe` code; the
//! other calls here (open, statfs, statvfs) are rustix's or std's safe ones.

// The one exception to the workspace's `unsafe_code = "deny"`.
#![allow(unsafe_code)]

use std::fs::File;
use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd};
use std::os::unix::fs::MetadataExt;
use std::path::Path;

use rustix::fs::OFlags;
use rustix::ioctl::{ioctl, opcode, Getter, Opcode, Setter, Updater};

/// `BTRFS_SUPER_MAGIC` from statfs(2).
const BTRFS_SUPER_MAGIC: i64 = 0x9123_683E;
/// The inode number of every subvolume's root directory.
const BTRFS_FIRST_FREE_OBJECTID: u64 = 256;
/// The inode number of every subvolume's root directory.
pub const FIRST_FREE_OBJECTID: u64 = BTRFS_FIRST_FREE_OBJECTID;
const BTRFS_SUBVOL_RDONLY: u64 = 1 << 1;
const BTRFS_IOCTL_MAGIC: u8 = 0x94;
const BTRFS_PATH_NAME_MAX: usize = 4087;
const BTRFS_SUBVOL_NAME_MAX: usize = 4039;
const BTRFS_INO_LOOKUP_PATH_MAX: usize = 4080;

#[repr(C)]
struct VolArgs {
    fd: i64,
    name: [u8; BTRFS_PATH_NAME_MAX + 1],
}

#[repr(C)]
struct VolArgsV2 {
    fd: i64,
    transid: u64,
    flags: u64,
    unused: [u64; 4],
    name: [u8; BTRFS_SUBVOL_NAME_MAX + 1],
}

#[repr(C)]
struct InoLookupArgs {
    treeid: u64,
    objectid: u64,
    name: [u8; BTRFS_INO_LOOKUP_PATH_MAX],
}

// The request numbers of linux/btrfs.h (`_IOW(BTRFS_IOCTL_MAGIC, 15, ...)` and so on).
const IOC_SNAP_DESTROY: Opcode = opcode::write::<VolArgs>(BTRFS_IOCTL_MAGIC, 15);
const IOC_INO_LOOKUP: Opcode = opcode::read_write::<InoLookupArgs>(BTRFS_IOCTL_MAGIC, 18);
const IOC_SNAP_CREATE_V2: Opcode = opcode::write::<VolArgsV2>(BTRFS_IOCTL_MAGIC, 23);
const IOC_SUBVOL_GETFLAGS: Opcode = opcode::read::<u64>(BTRFS_IOCTL_MAGIC, 25);
const IOC_SUBVOL_SETFLAGS: Opcode = opcode::write::<u64>(BTRFS_IOCTL_MAGIC, 26);

/// Opens a directory for the ioctls (std adds `O_CLOEXEC`).
fn open_dir(path: &Path) -> io::Result<File> {
    use std::os::unix::fs::OpenOptionsExt;
    // O_DIRECTORY is a small positive flag: the cast to std's `i32` keeps its value.
    let directory = OFlags::DIRECTORY.bits() as i32;
    std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(directory)
        .open(path)
}

fn copy_name(dst: &mut [u8], name: &str) -> io::Result<()> {
    let bytes = name.as_bytes();
    if bytes.is_empty() || bytes.len() >= dst.len() || bytes.contains(&0) || name.contains('/') {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("invalid subvolume name {name:?}"),
        ));
    }
    dst[..bytes.len()].copy_from_slice(bytes);
    Ok(())
}

/// `path`, refused with the error the statfs calls always gave for a NUL inside it.
fn no_nul(path: &Path) -> io::Result<&Path> {
    if path.as_os_str().as_encoded_bytes().contains(&0) {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "path contains NUL",
        ));
    }
    Ok(path)
}

/// Whether `path` lies on a Btrfs filesystem.
pub fn is_btrfs(path: &Path) -> io::Result<bool> {
    let st = rustix::fs::statfs(no_nul(path)?)?;
    #[allow(clippy::unnecessary_cast)]
    Ok(st.f_type as i64 == BTRFS_SUPER_MAGIC)
}

/// Whether `path` is the root directory of a Btrfs subvolume (inode 256).
pub fn is_subvolume(path: &Path) -> io::Result<bool> {
    let md = std::fs::symlink_metadata(path)?;
    Ok(md.is_dir() && md.ino() == BTRFS_FIRST_FREE_OBJECTID && is_btrfs(path)?)
}

/// Same test on metadata already read (no extra system call).
pub fn metadata_is_subvolume(md: &std::fs::Metadata) -> bool {
    md.is_dir() && md.ino() == BTRFS_FIRST_FREE_OBJECTID
}

/// Creates a snapshot of the subvolume `source` named `name` inside directory `dest_dir`.
pub fn snapshot(source: &Path, dest_dir: &Path, name: &str, read_only: bool) -> io::Result<()> {
    let dst = open_dir(dest_dir)?;
    snapshot_at(source, dst.as_fd(), name, read_only)
}

/// [`snapshot`] into the directory open as `dest` (the store reaches its directories
/// through descriptors, never through a path that a link could redirect).
pub fn snapshot_at(
    source: &Path,
    dest: BorrowedFd<'_>,
    name: &str,
    read_only: bool,
) -> io::Result<()> {
    let src = open_dir(source)?;
    let dst = dest;
    let mut args = VolArgsV2 {
        fd: i64::from(src.as_raw_fd()),
        transid: 0,
        flags: if read_only { BTRFS_SUBVOL_RDONLY } else { 0 },
        unused: [0; 4],
        name: [0; BTRFS_SUBVOL_NAME_MAX + 1],
    };
    copy_name(&mut args.name, name)?;
    // SAFETY: the request number matches the struct's size and layout (linux/btrfs.h), and
    // the kernel only reads it.
    unsafe { ioctl(dst, Setter::<IOC_SNAP_CREATE_V2, _>::new(args)) }?;
    Ok(())
}

/// Deletes the subvolume `name` inside directory `parent`.
pub fn delete_subvolume(parent: &Path, name: &str) -> io::Result<()> {
    let dir = open_dir(parent)?;
    delete_subvolume_at(dir.as_fd(), name)
}

/// Deletes the subvolume `name` inside the directory open as `dir`.
pub fn delete_subvolume_at(dir: BorrowedFd<'_>, name: &str) -> io::Result<()> {
    let mut args = VolArgs {
        fd: 0,
        name: [0; BTRFS_PATH_NAME_MAX + 1],
    };
    copy_name(&mut args.name, name)?;
    // SAFETY: the request number matches the struct's size and layout (linux/btrfs.h), and
    // the kernel only reads it.
    unsafe { ioctl(dir, Setter::<IOC_SNAP_DESTROY, _>::new(args)) }?;
    Ok(())
}

/// Whether the subvolume at `path` is read-only.
pub fn is_read_only(path: &Path) -> io::Result<bool> {
    let dir = open_dir(path)?;
    let flags = get_flags(dir.as_fd())?;
    Ok(flags & BTRFS_SUBVOL_RDONLY != 0)
}

/// Sets or clears the read-only flag of the subvolume at `path`.
pub fn set_read_only(path: &Path, read_only: bool) -> io::Result<()> {
    let dir = open_dir(path)?;
    let mut flags = get_flags(dir.as_fd())?;
    if read_only {
        flags |= BTRFS_SUBVOL_RDONLY;
    } else {
        flags &= !BTRFS_SUBVOL_RDONLY;
    }
    // SAFETY: SETFLAGS reads one u64.
    unsafe { ioctl(&dir, Setter::<IOC_SUBVOL_SETFLAGS, u64>::new(flags)) }?;
    Ok(())
}

/// The subvolume flags of the directory open as `dir`.
fn get_flags(dir: BorrowedFd<'_>) -> io::Result<u64> {
    // SAFETY: GETFLAGS writes one u64.
    Ok(unsafe { ioctl(dir, Getter::<IOC_SUBVOL_GETFLAGS, u64>::new()) }?)
}

/// The id of the subvolume that contains `path`.
pub fn subvolume_id(path: &Path) -> io::Result<u64> {
    let dir = open_dir(path)?;
    let mut args = InoLookupArgs {
        treeid: 0,
        objectid: BTRFS_FIRST_FREE_OBJECTID,
        name: [0; BTRFS_INO_LOOKUP_PATH_MAX],
    };
    // SAFETY: the request number matches the struct's size and layout (linux/btrfs.h); the
    // kernel reads and writes it.
    unsafe { ioctl(&dir, Updater::<IOC_INO_LOOKUP, _>::new(&mut args)) }?;
    Ok(args.treeid)
}

/// Size and use of the filesystem holding a path, in bytes (from statvfs).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct Usage {
    pub size_bytes: u64,
    pub used_bytes: u64,
    pub free_bytes: u64,
}

/// Reads [`Usage`] for the filesystem holding `path`.
pub fn usage(path: &Path) -> io::Result<Usage> {
    let st = rustix::fs::statvfs(no_nul(path)?)?;
    let unit = st.f_frsize;
    Ok(Usage {
        size_bytes: st.f_blocks * unit,
        used_bytes: st.f_blocks.saturating_sub(st.f_bfree) * unit,
        free_bytes: st.f_bavail * unit,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn struct_sizes_match_the_kernel_abi() {
        assert_eq!(std::mem::size_of::<VolArgs>(), 4096);
        assert_eq!(std::mem::size_of::<VolArgsV2>(), 4096);
        assert_eq!(std::mem::size_of::<InoLookupArgs>(), 4096);
    }

    #[test]
    fn request_numbers_match_linux_btrfs_h() {
        // Values as the kernel headers compute them on x86_64.
        assert_eq!(IOC_SNAP_CREATE_V2, 0x5000_9417);
        assert_eq!(IOC_SNAP_DESTROY, 0x5000_940f);
        assert_eq!(IOC_SUBVOL_GETFLAGS, 0x8008_9419);
        assert_eq!(IOC_SUBVOL_SETFLAGS, 0x4008_941a);
        assert_eq!(IOC_INO_LOOKUP, 0xd000_9412);
    }

    #[test]
    fn tmp_is_not_a_subvolume_root() {
        let d = std::env::temp_dir();
        // /tmp may be on Btrfs on some hosts, but it is never inode 256 of a subvolume
        // unless it is one; either way the call must not fail.
        assert!(is_subvolume(&d).is_ok());
    }

    #[test]
    fn usage_of_tmp_adds_up() {
        let u = usage(&std::env::temp_dir()).expect("statvfs");
        assert!(u.size_bytes > 0 && u.used_bytes <= u.size_bytes && u.free_bytes <= u.size_bytes);
    }

    #[test]
    fn bad_names_are_refused_before_any_ioctl() {
        let mut buf = [0u8; 16];
        assert!(copy_name(&mut buf, "a/b").is_err());
        assert!(copy_name(&mut buf, "").is_err());
        assert!(copy_name(&mut buf, "0123456789abcdef").is_err());
        assert!(copy_name(&mut buf, "ok").is_ok());
    }
}
