//! What changed between two trees (two snapshots, or a snapshot and the live subvolume).
//!
//! The walk stays on one subvolume: nested subvolumes and mount points (such as the live
//! root's `.snapshots`) are not entered. A file counts as changed when its type, mode,
//! owner, size, link target or content differ; content is compared only when the size is
//! equal and the inode number or change time differ (a snapshot keeps both for a file it
//! did not change, so unchanged files cost one stat each).

use std::collections::BTreeMap;
use std::fs;
use std::io::{self, Read};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::error::{io_err, Result};

/// One difference.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Change {
    pub kind: ChangeKind,
    /// Path relative to the tree's root, starting with `/`.
    pub path: String,
}

/// Added, changed or removed, seen from the older tree to the newer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ChangeKind {
    Added,
    Changed,
    Removed,
}

impl ChangeKind {
    /// The one-character mark snapper's status uses.
    pub fn mark(self) -> char {
        match self {
            ChangeKind::Added => '+',
            ChangeKind::Changed => 'c',
            ChangeKind::Removed => '-',
        }
    }
}

#[derive(Debug)]
struct Node {
    md: fs::Metadata,
}

/// Lists one directory level: name -> metadata.
fn list(dir: &Path) -> io::Result<BTreeMap<std::ffi::OsString, Node>> {
    let mut out = BTreeMap::new();
    for e in fs::read_dir(dir)? {
        let e = e?;
        let md = fs::symlink_metadata(e.path())?;
        out.insert(e.file_name(), Node { md });
    }
    Ok(out)
}

fn same_file(a: &Path, am: &fs::Metadata, b: &Path, bm: &fs::Metadata) -> io::Result<bool> {
    let (at, bt) = (am.file_type(), bm.file_type());
    if at.is_dir() != bt.is_dir()
        || at.is_symlink() != bt.is_symlink()
        || at.is_file() != bt.is_file()
    {
        return Ok(false);
    }
    if am.mode() != bm.mode() || am.uid() != bm.uid() || am.gid() != bm.gid() {
        return Ok(false);
    }
    if at.is_symlink() {
        return Ok(fs::read_link(a)? == fs::read_link(b)?);
    }
    if at.is_dir() {
        return Ok(true);
    }
    if am.size() != bm.size() || am.rdev() != bm.rdev() {
        return Ok(false);
    }
    // A snapshot keeps the inode number and ctime of every file it did not change, and no
    // one can set a ctime by hand: equal ones mean the same file. (Equal mtimes prove
    // nothing: two writes within one clock tick have the same mtime.)
    if am.ino() == bm.ino() && am.ctime() == bm.ctime() && am.ctime_nsec() == bm.ctime_nsec() {
        return Ok(true);
    }
    if !at.is_file() {
        return Ok(true);
    }
    same_content(a, b)
}

fn same_content(a: &Path, b: &Path) -> io::Result<bool> {
    let (mut fa, mut fb) = (fs::File::open(a)?, fs::File::open(b)?);
    let (mut ba, mut bb) = (vec![0u8; 64 * 1024], vec![0u8; 64 * 1024]);
    loop {
        let na = read_full(&mut fa, &mut ba)?;
        let nb = read_full(&mut fb, &mut bb)?;
        if na != nb || ba[..na] != bb[..nb] {
            return Ok(false);
        }
        if na == 0 {
            return Ok(true);
        }
    }
}

fn read_full(f: &mut fs::File, buf: &mut [u8]) -> io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match f.read(&mut buf[n..])? {
            0 => break,
            k => n += k,
        }
    }
    Ok(n)
}

/// Whether a directory entry is its own subvolume or mount (not entered by the walk).
fn is_boundary(md: &fs::Metadata, root_dev: u64) -> bool {
    md.is_dir() && md.dev() != root_dev
}

/// Compares tree `old` with tree `new`; paths come out sorted.
pub fn diff(old: &Path, new: &Path) -> Result<Vec<Change>> {
    let old_dev = fs::metadata(old)
        .map_err(io_err(format!("cannot open {}", old.display())))?
        .dev();
    let new_dev = fs::metadata(new)
        .map_err(io_err(format!("cannot open {}", new.display())))?
        .dev();
    let mut out = Vec::new();
    walk(old, new, old_dev, new_dev, &PathBuf::from("/"), &mut out)?;
    out.sort_by(|a, b| a.path.cmp(&b.path));
    Ok(out)
}

fn walk(
    old: &Path,
    new: &Path,
    old_dev: u64,
    new_dev: u64,
    rel: &Path,
    out: &mut Vec<Change>,
) -> Result<()> {
    let lo = list(old).map_err(io_err(format!("cannot read {}", old.display())))?;
    let ln = list(new).map_err(io_err(format!("cannot read {}", new.display())))?;
    let show = |p: &Path| p.to_string_lossy().into_owned();
    for (name, o) in &lo {
        let rp = rel.join(name);
        let op = old.join(name);
        match ln.get(name) {
            None => removed_tree(&op, &o.md, old_dev, &rp, out)?,
            Some(n) => {
                let np = new.join(name);
                let ob = is_boundary(&o.md, old_dev);
                let nb = is_boundary(&n.md, new_dev);
                if ob || nb {
                    continue;
                }
                let same = same_file(&op, &o.md, &np, &n.md)
                    .map_err(io_err(format!("cannot compare {}", show(&rp))))?;
                let both_dirs = o.md.is_dir() && n.md.is_dir();
                if !same {
                    out.push(Change {
                        kind: ChangeKind::Changed,
                        path: show(&rp),
                    });
                }
                if both_dirs {
                    walk(&op, &np, old_dev, new_dev, &rp, out)?;
                } else if !same && (o.md.is_dir() || n.md.is_dir()) {
                    // A directory replaced by a file or the other way round.
                    if o.md.is_dir() {
                        removed_children(&op, old_dev, &rp, ChangeKind::Removed, out)?;
                    } else {
                        removed_children(&np, new_dev, &rp, ChangeKind::Added, out)?;
                    }
                }
            }
        }
    }
    for (name, n) in &ln {
        if !lo.contains_key(name) {
            let rp = rel.join(name);
            if is_boundary(&n.md, new_dev) {
                continue;
            }
            out.push(Change {
                kind: ChangeKind::Added,
                path: show(&rp),
            });
            if n.md.is_dir() {
                removed_children(&new.join(name), new_dev, &rp, ChangeKind::Added, out)?;
            }
        }
    }
    Ok(())
}

fn removed_tree(
    p: &Path,
    md: &fs::Metadata,
    dev: u64,
    rel: &Path,
    out: &mut Vec<Change>,
) -> Result<()> {
    if is_boundary(md, dev) {
        return Ok(());
    }
    out.push(Change {
        kind: ChangeKind::Removed,
        path: rel.to_string_lossy().into_owned(),
    });
    if md.is_dir() {
        removed_children(p, dev, rel, ChangeKind::Removed, out)?;
    }
    Ok(())
}

/// Reports every entry below `dir` with `kind`.
fn removed_children(
    dir: &Path,
    dev: u64,
    rel: &Path,
    kind: ChangeKind,
    out: &mut Vec<Change>,
) -> Result<()> {
    let l = list(dir).map_err(io_err(format!("cannot read {}", dir.display())))?;
    for (name, n) in l {
        if is_boundary(&n.md, dev) {
            continue;
        }
        let rp = rel.join(&name);
        out.push(Change {
            kind,
            path: rp.to_string_lossy().into_owned(),
        });
        if n.md.is_dir() {
            removed_children(&dir.join(&name), dev, &rp, kind, out)?;
        }
    }
    Ok(())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn kinds(v: &[Change]) -> Vec<(char, &str)> {
        v.iter().map(|c| (c.kind.mark(), c.path.as_str())).collect()
    }

    #[test]
    fn finds_added_changed_removed() {
        let a = tempfile::tempdir().unwrap();
        let b = tempfile::tempdir().unwrap();
        for d in [a.path(), b.path()] {
            fs::create_dir_all(d.join("etc/sub")).unwrap();
            fs::write(d.join("etc/same"), "x").unwrap();
        }
        fs::write(a.path().join("etc/gone"), "1").unwrap();
        fs::write(b.path().join("etc/new"), "1").unwrap();
        fs::write(a.path().join("etc/edited"), "aaaa").unwrap();
        fs::write(b.path().join("etc/edited"), "bbbb").unwrap();
        fs::create_dir(a.path().join("olddir")).unwrap();
        fs::write(a.path().join("olddir/f"), "1").unwrap();
        std::os::unix::fs::symlink("t1", a.path().join("link")).unwrap();
        std::os::unix::fs::symlink("t2", b.path().join("link")).unwrap();
        let d = diff(a.path(), b.path()).unwrap();
        assert_eq!(
            kinds(&d),
            vec![
                ('c', "/etc/edited"),
                ('-', "/etc/gone"),
                ('+', "/etc/new"),
                ('c', "/link"),
                ('-', "/olddir"),
                ('-', "/olddir/f"),
            ]
        );
    }

    #[test]
    fn identical_trees_have_no_changes() {
        let a = tempfile::tempdir().unwrap();
        fs::write(a.path().join("f"), "x").unwrap();
        assert!(diff(a.path(), a.path()).unwrap().is_empty());
    }

    #[test]
    fn same_content_with_new_mtime_is_unchanged() {
        let a = tempfile::tempdir().unwrap();
        let b = tempfile::tempdir().unwrap();
        fs::write(a.path().join("f"), "same").unwrap();
        std::thread::sleep(std::time::Duration::from_millis(20));
        fs::write(b.path().join("f"), "same").unwrap();
        assert!(diff(a.path(), b.path()).unwrap().is_empty());
    }
}
