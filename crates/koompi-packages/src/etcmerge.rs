//! Carrying /etc changes into a transactional upgrade's new root.
//!
//! A transactional upgrade works on a snapshot of the running root while the running
//! system goes on: a teacher may change the Wi-Fi password or add a user meanwhile, and
//! that change must not vanish when the new root boots. Three states of /etc are known:
//! the *base* (the read-only snapshot the upgrade started from), the *running* system now,
//! and the *new* root after the upgrade. This is a three-way merge per path, like tukit's
//! and ostree's /etc handling:
//!
//! - the running system did not change a path: the new root's version stands;
//! - the running system changed it and the upgrade did not: the running version is taken
//!   (a deletion included);
//! - both changed it the same way: nothing to do;
//! - both changed it differently: the upgrade's version stands (it matches the new
//!   software) and the running version is kept beside it as `PATH.koompi-running`, and the
//!   conflict is reported.
//!
//! [`decide`] is the pure rule; [`merge`] applies it to three directory trees. Regular
//! files, symlinks and directories are compared by kind, content, mode and owner.

use std::collections::BTreeSet;
use std::fs;
use std::io;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

/// Suffix of the running system's version of a path that both sides changed.
pub const CONFLICT_SUFFIX: &str = ".koompi-running";

/// What a path is, as far as the merge cares.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Node {
    File {
        content: Vec<u8>,
        mode: u32,
        uid: u32,
        gid: u32,
    },
    Symlink {
        target: PathBuf,
    },
    Dir {
        mode: u32,
        uid: u32,
        gid: u32,
    },
    /// A device node, socket or fifo: never copied.
    Other,
}

/// What to do with one path in the new root.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Leave the new root's version (or absence) as it is.
    Keep,
    /// Make the new root's path equal to the running one's.
    TakeRunning,
    /// Remove the path from the new root (the running system deleted it).
    Remove,
    /// Both sides changed the path differently: keep the new root's version and save the
    /// running one beside it.
    Conflict,
}

/// The three-way rule for one path (`None`: the path does not exist there).
pub fn decide(base: Option<&Node>, running: Option<&Node>, new: Option<&Node>) -> Action {
    if running == base || running == new {
        return Action::Keep;
    }
    if new == base {
        return match running {
            Some(Node::Other) => Action::Keep,
            Some(_) => Action::TakeRunning,
            None => Action::Remove,
        };
    }
    match running {
        Some(Node::File { .. }) | Some(Node::Symlink { .. }) => Action::Conflict,
        // A directory both sides changed is merged path by path below it; a deletion
        // or a special file against an upgrade's change: the upgrade wins.
        _ => Action::Keep,
    }
}

/// Errors of the merge, with the path they concern.
#[derive(Debug, thiserror::Error)]
#[error("cannot merge {}: {source}", .path.display())]
pub struct MergeError {
    pub path: PathBuf,
    #[source]
    pub source: io::Error,
}

/// What [`merge`] did, by path relative to the merged directory.
#[derive(Debug, Default, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Report {
    pub taken: Vec<PathBuf>,
    pub removed: Vec<PathBuf>,
    pub conflicts: Vec<PathBuf>,
}

impl Report {
    /// Whether the merge changed nothing.
    pub fn is_empty(&self) -> bool {
        self.taken.is_empty() && self.removed.is_empty() && self.conflicts.is_empty()
    }
}

fn err(path: &Path) -> impl FnOnce(io::Error) -> MergeError + '_ {
    move |source| MergeError {
        path: path.to_path_buf(),
        source,
    }
}

/// Reads what `path` is, `None` when it does not exist.
pub fn read_node(path: &Path) -> Result<Option<Node>, MergeError> {
    let meta = match fs::symlink_metadata(path) {
        Ok(m) => m,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(err(path)(e)),
    };
    let ft = meta.file_type();
    let mode = meta.mode() & 0o7777;
    Ok(Some(if ft.is_symlink() {
        Node::Symlink {
            target: fs::read_link(path).map_err(err(path))?,
        }
    } else if ft.is_dir() {
        Node::Dir {
            mode,
            uid: meta.uid(),
            gid: meta.gid(),
        }
    } else if ft.is_file() {
        Node::File {
            content: fs::read(path).map_err(err(path))?,
            mode,
            uid: meta.uid(),
            gid: meta.gid(),
        }
    } else {
        Node::Other
    }))
}

/// Relative paths of everything under `dir` (not following symlinks); empty if absent.
fn walk(dir: &Path) -> Result<BTreeSet<PathBuf>, MergeError> {
    let mut out = BTreeSet::new();
    let mut stack = vec![PathBuf::new()];
    while let Some(rel) = stack.pop() {
        let abs = dir.join(&rel);
        let entries = match fs::read_dir(&abs) {
            Ok(e) => e,
            Err(e) if e.kind() == io::ErrorKind::NotFound && rel.as_os_str().is_empty() => {
                return Ok(out)
            }
            Err(e) => return Err(err(&abs)(e)),
        };
        for entry in entries {
            let entry = entry.map_err(err(&abs))?;
            let child = rel.join(entry.file_name());
            let is_dir = entry.file_type().map_err(err(&abs))?.is_dir();
            out.insert(child.clone());
            if is_dir {
                stack.push(child);
            }
        }
    }
    Ok(out)
}

/// Merges the changes the running system made to `running` since `base` into `new`.
/// All three are the same directory (usually /etc) in three roots.
pub fn merge(base: &Path, running: &Path, new: &Path) -> Result<Report, MergeError> {
    let mut paths = walk(base)?;
    paths.extend(walk(running)?);
    let mut report = Report::default();
    // Parents sort before children, so directories exist before their files are copied;
    // removals are done deepest first afterwards.
    let mut removals = Vec::new();
    for rel in &paths {
        let (b, r, n) = (base.join(rel), running.join(rel), new.join(rel));
        let (bn, rn, nn) = (read_node(&b)?, read_node(&r)?, read_node(&n)?);
        match decide(bn.as_ref(), rn.as_ref(), nn.as_ref()) {
            Action::Keep => {}
            Action::TakeRunning => {
                if let Some(node) = &rn {
                    if !parent_is_dir(&n) {
                        continue;
                    }
                    install(node, &r, &n)?;
                    report.taken.push(rel.clone());
                }
            }
            Action::Remove => removals.push(rel.clone()),
            Action::Conflict => {
                if let Some(node) = &rn {
                    if !parent_is_dir(&n) {
                        continue;
                    }
                    let mut side = n.clone().into_os_string();
                    side.push(CONFLICT_SUFFIX);
                    install(node, &r, Path::new(&side))?;
                    report.conflicts.push(rel.clone());
                }
            }
        }
    }
    removals.sort_by_key(|p| std::cmp::Reverse(p.components().count()));
    for rel in removals {
        let n = new.join(&rel);
        let res = match fs::symlink_metadata(&n) {
            Ok(m) if m.is_dir() => fs::remove_dir_all(&n),
            Ok(_) => fs::remove_file(&n),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(e),
        };
        res.map_err(err(&n))?;
        report.removed.push(rel);
    }
    report.removed.sort();
    Ok(report)
}

fn parent_is_dir(p: &Path) -> bool {
    p.parent().is_some_and(Path::is_dir)
}

/// Makes `dst` what `node` (read from `src`) is: written to a temporary name and renamed,
/// so a crash leaves either the old or the new version.
fn install(node: &Node, src: &Path, dst: &Path) -> Result<(), MergeError> {
    match node {
        Node::Dir { mode, uid, gid } => {
            if !dst.is_dir() {
                if dst.symlink_metadata().is_ok() {
                    fs::remove_file(dst).map_err(err(dst))?;
                }
                fs::create_dir(dst).map_err(err(dst))?;
            }
            fs::set_permissions(dst, fs::Permissions::from_mode(*mode)).map_err(err(dst))?;
            std::os::unix::fs::lchown(dst, Some(*uid), Some(*gid)).map_err(err(dst))?;
        }
        Node::File { .. } | Node::Symlink { .. } => {
            let mut tmp = dst.as_os_str().to_owned();
            tmp.push(".koompi-merge");
            let tmp = PathBuf::from(tmp);
            let _ = fs::remove_file(&tmp);
            match node {
                Node::Symlink { target } => {
                    std::os::unix::fs::symlink(target, &tmp).map_err(err(&tmp))?
                }
                Node::File { mode, uid, gid, .. } => {
                    fs::copy(src, &tmp).map_err(err(&tmp))?;
                    std::os::unix::fs::lchown(&tmp, Some(*uid), Some(*gid)).map_err(err(&tmp))?;
                    fs::set_permissions(&tmp, fs::Permissions::from_mode(*mode))
                        .map_err(err(&tmp))?;
                }
                _ => {}
            }
            if dst.is_dir() && !dst.is_symlink() {
                fs::remove_dir_all(dst).map_err(err(dst))?;
            }
            fs::rename(&tmp, dst).map_err(err(dst))?;
        }
        Node::Other => {}
    }
    Ok(())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn file(s: &str) -> Node {
        Node::File {
            content: s.as_bytes().to_vec(),
            mode: 0o644,
            uid: 0,
            gid: 0,
        }
    }

    fn node() -> impl Strategy<Value = Option<Node>> {
        prop_oneof![
            Just(None),
            Just(Some(file("a"))),
            Just(Some(file("b"))),
            Just(Some(file("c"))),
            Just(Some(Node::Symlink { target: "a".into() })),
            Just(Some(Node::Dir {
                mode: 0o755,
                uid: 0,
                gid: 0
            })),
        ]
    }

    /// The new root's path after applying the action, as the merge would leave it.
    fn result(a: Action, r: &Option<Node>, n: &Option<Node>) -> Option<Node> {
        match a {
            Action::Keep | Action::Conflict => n.clone(),
            Action::TakeRunning => r.clone(),
            Action::Remove => None,
        }
    }

    proptest! {
        #[test]
        fn unchanged_running_never_touches_the_new_root(b in node(), n in node()) {
            prop_assert_eq!(decide(b.as_ref(), b.as_ref(), n.as_ref()), Action::Keep);
        }

        #[test]
        fn a_change_only_the_running_system_made_is_carried_over(b in node(), r in node()) {
            let a = decide(b.as_ref(), r.as_ref(), b.as_ref());
            prop_assert_eq!(result(a, &r, &b), r);
        }

        #[test]
        fn the_upgrade_wins_when_both_changed(b in node(), r in node(), n in node()) {
            prop_assume!(r != b && n != b);
            let a = decide(b.as_ref(), r.as_ref(), n.as_ref());
            prop_assert_eq!(result(a, &r, &n), n.clone());
            let saved = matches!(r, Some(Node::File { .. }) | Some(Node::Symlink { .. }));
            prop_assert_eq!(a == Action::Conflict, saved && r != n);
        }
    }

    #[test]
    fn merges_three_trees() {
        let t = tempfile::tempdir().unwrap();
        let (b, r, n) = (t.path().join("b"), t.path().join("r"), t.path().join("n"));
        for d in [&b, &r, &n] {
            fs::create_dir_all(d.join("sub")).unwrap();
            fs::write(d.join("same"), "1").unwrap();
            fs::write(d.join("both"), "base").unwrap();
            fs::write(d.join("gone"), "x").unwrap();
            fs::write(d.join("pkg"), "old").unwrap();
        }
        // The running system: edits, a new file in a new directory, a deletion.
        fs::write(r.join("both"), "mine").unwrap();
        fs::write(r.join("same"), "2").unwrap();
        fs::create_dir(r.join("newdir")).unwrap();
        fs::write(r.join("newdir/wifi"), "secret").unwrap();
        fs::set_permissions(r.join("newdir/wifi"), fs::Permissions::from_mode(0o600)).unwrap();
        fs::remove_file(r.join("gone")).unwrap();
        std::os::unix::fs::symlink("same", r.join("sub/link")).unwrap();
        // The upgrade: changes `both` and `pkg`.
        fs::write(n.join("both"), "upgrade").unwrap();
        fs::write(n.join("pkg"), "new").unwrap();

        let rep = merge(&b, &r, &n).unwrap();
        assert_eq!(fs::read_to_string(n.join("same")).unwrap(), "2");
        assert_eq!(fs::read_to_string(n.join("both")).unwrap(), "upgrade");
        let side = n.join(format!("both{CONFLICT_SUFFIX}"));
        assert_eq!(fs::read_to_string(side).unwrap(), "mine");
        assert_eq!(fs::read_to_string(n.join("pkg")).unwrap(), "new");
        assert_eq!(fs::read_to_string(n.join("newdir/wifi")).unwrap(), "secret");
        let mode = fs::metadata(n.join("newdir/wifi")).unwrap().mode() & 0o777;
        assert_eq!(mode, 0o600);
        assert!(!n.join("gone").exists());
        assert_eq!(
            fs::read_link(n.join("sub/link")).unwrap(),
            Path::new("same")
        );
        assert_eq!(rep.conflicts, vec![PathBuf::from("both")]);
        assert_eq!(rep.removed, vec![PathBuf::from("gone")]);
        assert!(rep.taken.contains(&PathBuf::from("newdir/wifi")));
        // Merging again changes nothing more.
        let again = merge(&b, &r, &n).unwrap();
        assert!(again.taken.is_empty() && again.removed.is_empty());
    }
}
