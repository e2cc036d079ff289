//! Everything in a directory tree, to compare a home before and after a command: each
//! entry's path, type, permission bits, owner and content (a link's target), without
//! following links or opening anything but regular files. Two equal snapshots mean the
//! command changed nothing (times aside).

use std::collections::BTreeMap;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

/// One entry of a tree.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Entry {
    Dir {
        mode: u32,
        uid: u32,
    },
    File {
        mode: u32,
        uid: u32,
        content: Vec<u8>,
    },
    Symlink {
        target: PathBuf,
    },
    Other {
        mode: u32,
    },
}

/// Every entry under `root` (not `root` itself), by path relative to it.
pub fn snapshot(root: &Path) -> BTreeMap<PathBuf, Entry> {
    let mut out = BTreeMap::new();
    walk(root, Path::new(""), &mut out);
    out
}

fn walk(root: &Path, rel: &Path, out: &mut BTreeMap<PathBuf, Entry>) {
    let dir = root.join(rel);
    let Ok(entries) = std::fs::read_dir(&dir) else {
        return;
    };
    for e in entries.flatten() {
        let rel = rel.join(e.file_name());
        let path = root.join(&rel);
        let Ok(m) = std::fs::symlink_metadata(&path) else {
            continue;
        };
        let mode = m.mode() & 0o7777;
        let entry = if m.file_type().is_symlink() {
            Entry::Symlink {
                target: std::fs::read_link(&path).unwrap_or_default(),
            }
        } else if m.is_dir() {
            walk(root, &rel, out);
            Entry::Dir { mode, uid: m.uid() }
        } else if m.is_file() {
            Entry::File {
                mode,
                uid: m.uid(),
                content: std::fs::read(&path).unwrap_or_default(),
            }
        } else {
            Entry::Other { mode: m.mode() }
        };
        out.insert(rel, entry);
    }
}

/// The paths that differ between two snapshots, for a readable failure.
pub fn differences(a: &BTreeMap<PathBuf, Entry>, b: &BTreeMap<PathBuf, Entry>) -> Vec<String> {
    let mut out = Vec::new();
    for (p, e) in a {
        match b.get(p) {
            None => out.push(format!("- {}", p.display())),
            Some(f) if f != e => out.push(format!("~ {}", p.display())),
            _ => {}
        }
    }
    for p in b.keys().filter(|p| !a.contains_key(*p)) {
        out.push(format!("+ {}", p.display()));
    }
    out
}
