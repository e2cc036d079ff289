//! What koompi-apply-config remembers in a home, under
//! `~/.local/state/koompi/apply-config/`:
//!
//! - `manifest.json`: the last apply (its label and time) and, per file, the SHA-256 it
//!   wrote (the "last written" version), the version it offered beside a user's file, and
//!   the mode;
//! - `last-apply.json`: what `--restore` needs to undo the last apply that changed
//!   something: each file it created or replaced, with the content it had before (a blob)
//!   or the fact that it did not exist, the directories it created, and the manifest
//!   before it;
//! - `blobs/SHA256`: the earlier contents the journal names.
//!
//! It lives in the home, so it goes wherever the home goes (a copy of /etc/skel gives a
//! new user the manifest of the skeleton's configs, so the user's first apply knows them).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::decide::{Record, Sha};
use super::home::{Home, WriteError};

/// The state directory, relative to the home.
pub const DIR: &str = ".local/state/koompi/apply-config";
const MANIFEST: &str = "manifest.json";
const JOURNAL: &str = "last-apply.json";
const BLOBS: &str = "blobs";
const VERSION: u32 = 1;

/// One file in the manifest.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileState {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub written: Option<Sha>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub offered: Option<Sha>,
    pub mode: u32,
}

impl FileState {
    pub fn record(&self) -> Record {
        Record {
            written: self.written,
            offered: self.offered,
        }
    }
}

/// The manifest of a home.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    pub version: u32,
    /// What was applied last: the edition, and any further config sets.
    pub applied: String,
    /// When (RFC 3339).
    pub time: String,
    /// Per destination (relative to the home).
    pub files: BTreeMap<String, FileState>,
}

impl Manifest {
    pub fn new(applied: &str, time: &str) -> Manifest {
        Manifest {
            version: VERSION,
            applied: applied.into(),
            time: time.into(),
            files: BTreeMap::new(),
        }
    }

    /// Same content, whatever the time.
    pub fn same_as(&self, other: &Manifest) -> bool {
        self.applied == other.applied && self.files == other.files
    }
}

/// What a file held before an apply changed it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Before {
    pub sha: Sha,
    pub mode: u32,
}

/// One file an apply created or replaced.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Change {
    /// Relative to the home.
    pub path: String,
    /// `None`: the file did not exist.
    pub before: Option<Before>,
    /// What the apply left there.
    pub after: Sha,
}

/// What `--restore` needs to undo the last apply.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Journal {
    pub version: u32,
    pub applied: String,
    pub time: String,
    /// The manifest before the apply (`None`: there was none).
    pub previous: Option<Manifest>,
    /// In the order they were made.
    pub changes: Vec<Change>,
    /// Directories the apply created, in the order it created them.
    pub created_dirs: Vec<String>,
}

/// Why the state cannot be read or written.
#[derive(Debug, thiserror::Error)]
#[error("the apply state in {home}/{DIR}: {message}")]
pub struct StateError {
    pub home: String,
    pub message: String,
}

/// The state directory of an open home.
#[derive(Debug)]
pub struct State<'h> {
    home: &'h Home,
}

fn rel(name: &str) -> PathBuf {
    Path::new(DIR).join(name)
}

impl<'h> State<'h> {
    pub fn new(home: &'h Home) -> State<'h> {
        State { home }
    }

    fn err(&self, message: String) -> StateError {
        StateError {
            home: super::home::show(self.home.path()),
            message,
        }
    }

    fn load<T: for<'de> Deserialize<'de>>(&self, name: &str) -> Result<Option<T>, StateError> {
        let bytes = self
            .home
            .read(&rel(name))
            .map_err(|e| self.err(format!("cannot read {name}: {e}")))?;
        match bytes {
            None => Ok(None),
            Some(b) => serde_json::from_slice(&b).map(Some).map_err(|e| {
                self.err(format!(
                    "{name} is damaged ({e}); move it away to start afresh"
                ))
            }),
        }
    }

    pub fn manifest(&self) -> Result<Option<Manifest>, StateError> {
        self.load(MANIFEST)
    }

    pub fn journal(&self) -> Result<Option<Journal>, StateError> {
        self.load(JOURNAL)
    }

    fn save<T: Serialize>(
        &self,
        name: &str,
        value: &T,
        created: &mut Vec<PathBuf>,
    ) -> Result<(), StateError> {
        let mut text = serde_json::to_vec_pretty(value)
            .map_err(|e| self.err(format!("cannot encode {name}: {e}")))?;
        text.push(b'\n');
        let path = rel(name);
        let seen = self.home.look(&path);
        let seen = seen.content.is_some().then_some(&seen);
        self.home
            .write(&path, &text, 0o600, seen, created)
            .map_err(|e| self.err(format!("cannot write {name}: {e}")))
    }

    pub fn save_manifest(
        &self,
        m: &Manifest,
        created: &mut Vec<PathBuf>,
    ) -> Result<(), StateError> {
        self.save(MANIFEST, m, created)
    }

    pub fn save_journal(&self, j: &Journal, created: &mut Vec<PathBuf>) -> Result<(), StateError> {
        self.save(JOURNAL, j, created)
    }

    fn remove(&self, path: &Path) -> Result<(), StateError> {
        let seen = self.home.look(path);
        if seen.content.is_none() {
            return Ok(());
        }
        self.home
            .remove(path, &seen)
            .map_err(|e| self.err(format!("cannot remove {}: {e}", super::home::show(path))))
    }

    pub fn remove_manifest(&self) -> Result<(), StateError> {
        self.remove(&rel(MANIFEST))
    }

    pub fn remove_journal(&self) -> Result<(), StateError> {
        self.remove(&rel(JOURNAL))
    }

    /// Keeps `content` (whose hash is `sha`) as a blob, once.
    pub fn stash(
        &self,
        sha: Sha,
        content: &[u8],
        created: &mut Vec<PathBuf>,
    ) -> Result<(), WriteError> {
        let path = rel(BLOBS).join(sha.hex());
        let seen = self.home.look(&path);
        if seen.content.as_ref().is_some_and(|c| Sha::of(c) == sha) {
            return Ok(());
        }
        if seen.content.is_some() {
            return self.home.write(&path, content, 0o600, Some(&seen), created);
        }
        self.home.write(&path, content, 0o600, None, created)
    }

    /// The blob `sha`, checked.
    pub fn blob(&self, sha: Sha) -> Result<Vec<u8>, StateError> {
        let path = rel(BLOBS).join(sha.hex());
        match self.home.read(&path) {
            Ok(Some(b)) if Sha::of(&b) == sha => Ok(b),
            Ok(Some(_)) => Err(self.err(format!("blob {sha} is damaged"))),
            Ok(None) => Err(self.err(format!("blob {sha} is missing"))),
            Err(e) => Err(self.err(format!("cannot read blob {sha}: {e}"))),
        }
    }

    /// Removes every blob that `keep` does not name.
    pub fn prune_blobs(&self, keep: &[Sha]) {
        let keep: Vec<String> = keep.iter().map(Sha::hex).collect();
        for name in self.home.list(&rel(BLOBS)) {
            let name = name.to_string_lossy().into_owned();
            if keep.contains(&name) {
                continue;
            }
            let path = rel(BLOBS).join(&name);
            let seen = self.home.look(&path);
            if seen.content.is_some() {
                let _ = self.home.remove(&path, &seen);
            }
        }
    }
}
