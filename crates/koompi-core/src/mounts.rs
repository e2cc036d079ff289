//! The kernel's mount table, `/proc/self/mountinfo`, parsed from text.
//!
//! Btrfs mounts carry the mounted subvolume in the `root` field (`/@`), which is how the tools
//! find the device and subvolume behind a path without asking `findmnt`.

use std::path::{Path, PathBuf};

/// One line of mountinfo.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mount {
    pub id: u32,
    pub parent: u32,
    /// Path inside the filesystem that is mounted (for Btrfs: the subvolume path, `/@`).
    pub root: String,
    pub mount_point: PathBuf,
    pub fstype: String,
    pub source: String,
    pub super_options: String,
}

impl Mount {
    /// Value of a superblock option such as `subvolid`.
    pub fn super_option(&self, key: &str) -> Option<&str> {
        self.super_options.split(',').find_map(|o| {
            let (k, v) = o.split_once('=')?;
            (k == key).then_some(v)
        })
    }
}

/// Undoes mountinfo's octal escapes (`\040` for a space).
fn unescape(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\'
            && i + 3 < b.len()
            && b[i + 1..i + 4].iter().all(|c| (b'0'..=b'7').contains(c))
        {
            let v = (b[i + 1] - b'0') * 64 + (b[i + 2] - b'0') * 8 + (b[i + 3] - b'0');
            out.push(v);
            i += 4;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Parses mountinfo text; malformed lines are skipped.
pub fn parse(text: &str) -> Vec<Mount> {
    text.lines().filter_map(parse_line).collect()
}

fn parse_line(line: &str) -> Option<Mount> {
    let (left, right) = line.split_once(" - ")?;
    let f: Vec<&str> = left.split(' ').collect();
    if f.len() < 6 {
        return None;
    }
    let r: Vec<&str> = right.split(' ').collect();
    if r.len() < 3 {
        return None;
    }
    Some(Mount {
        id: f[0].parse().ok()?,
        parent: f[1].parse().ok()?,
        root: unescape(f[3]),
        mount_point: PathBuf::from(unescape(f[4])),
        fstype: r[0].to_string(),
        source: unescape(r[1]),
        super_options: r[2].to_string(),
    })
}

/// Reads this process's mount table.
pub fn read() -> std::io::Result<Vec<Mount>> {
    Ok(parse(&std::fs::read_to_string("/proc/self/mountinfo")?))
}

/// The mount whose mount point is exactly `path` (the top one when mounts are stacked).
pub fn mount_at<'a>(mounts: &'a [Mount], path: &Path) -> Option<&'a Mount> {
    mounts.iter().rev().find(|m| m.mount_point == path)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    const SAMPLE: &str = "\
22 1 0:21 /@ / rw,relatime shared:1 - btrfs /dev/vda2 rw,compress=zstd:3,ssd,subvolid=256,subvol=/@
23 22 0:21 /@snapshots /.snapshots rw,relatime shared:2 - btrfs /dev/vda2 rw,subvolid=258,subvol=/@snapshots
24 22 0:5 / /dev rw,nosuid shared:3 - devtmpfs devtmpfs rw,size=4096k
25 22 0:40 / /mnt/with\\040space rw - tmpfs tmpfs rw
";

    #[test]
    fn parses_btrfs_mounts() {
        let m = parse(SAMPLE);
        assert_eq!(m.len(), 4);
        assert_eq!(m[0].root, "/@");
        assert_eq!(m[0].mount_point, PathBuf::from("/"));
        assert_eq!(m[0].source, "/dev/vda2");
        assert_eq!(m[0].super_option("subvolid"), Some("256"));
        assert_eq!(m[1].super_option("subvol"), Some("/@snapshots"));
        assert_eq!(m[3].mount_point, PathBuf::from("/mnt/with space"));
    }

    #[test]
    fn finds_top_mount_at_path() {
        let text = format!("{SAMPLE}30 22 0:50 / /.snapshots rw - tmpfs tmpfs rw\n");
        let m = parse(&text);
        assert_eq!(
            mount_at(&m, Path::new("/.snapshots")).unwrap().fstype,
            "tmpfs"
        );
        assert!(mount_at(&m, Path::new("/nope")).is_none());
    }

    #[test]
    fn skips_garbage() {
        assert!(parse("garbage\n1 2 3\n").is_empty());
    }

    #[test]
    fn reads_own_table() {
        let m = read().unwrap();
        assert!(!m.is_empty());
    }
}
