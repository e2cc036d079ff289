//! Putting an edition's configs into a home without ever losing a user's change.
//!
//! For each file KOOMPI ships, three versions count: KOOMPI's (in the configs directory),
//! the one koompi-apply-config last wrote into this home (its hash, in the manifest) and
//! the one on disk. [`decide`] turns them into an action (a pure function); [`home`]
//! reaches the files through the home's directory descriptor only, never following a
//! link, and writes atomically; [`state`] keeps the manifest and what `--restore` needs;
//! [`ident`] finds a user and acts as that user.
//!
//! - A file on disk that is KOOMPI's version is left alone.
//! - A file the user never touched follows KOOMPI's new version.
//! - A file the user changed is left alone while KOOMPI has nothing newer; when KOOMPI has,
//!   the user's version is saved beside it as `FILE.koompi-backup-YYYYMMDDTHHMMSS` and
//!   KOOMPI's written ([`Policy::Backup`]), or the user's is kept and KOOMPI's saved as
//!   `FILE.koompi-new-YYYYMMDDTHHMMSS` ([`Policy::Keep`]). A backup never overwrites
//!   anything: a `-1`, `-2`, ... is added when the name is taken.
//! - Anything that is not a regular file (a link, a FIFO, a directory), a read-only file,
//!   and a path through a link are skipped with one line saying why.
//! - A run that finds nothing to do writes nothing at all, its state included.
//! - `--restore` undoes the last apply that changed something, file by file, and brings
//!   the manifest back as it was.

pub mod decide;
pub mod home;
pub mod ident;
pub mod state;

use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::catalog::ConfigFile;
use decide::{decide, next_record, Action, KeepWhy, OnDisk, Policy, Sha, SkipWhy};
use home::{show, Home, Seen, WriteError};
use state::{Before, Change, FileState, Journal, Manifest, State, StateError};

pub use home::FILE_CAP;

/// Why an apply or a restore could not run at all.
#[derive(Debug, thiserror::Error)]
pub enum ApplyError {
    #[error("cannot open the home {path}: {why}")]
    Home { path: String, why: String },
    #[error("cannot read KOOMPI's config {path}: {why} (reinstall koompi-configs)")]
    Shipped { path: String, why: String },
    #[error(transparent)]
    State(#[from] StateError),
    #[error(transparent)]
    Ident(#[from] ident::IdentError),
    #[error("nothing to restore in {home}: no apply is recorded there")]
    NothingToRestore { home: String },
}

/// What to apply.
#[derive(Debug, Clone)]
pub struct Request {
    /// What is applied, in words ("lite", "lite + neovim"), kept in the manifest.
    pub applied: String,
    /// The files, each destination once, read with [`load`] (before acting as the home's
    /// user, who may not read what root can).
    pub files: Vec<Shipped>,
    pub policy: Policy,
    /// Only say what would be done.
    pub dry_run: bool,
    /// The time of the apply (in the manifest and the backups' names).
    pub now: chrono::DateTime<chrono::FixedOffset>,
}

/// What happened to one file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Outcome {
    /// It was absent and KOOMPI's version was written.
    Created,
    /// KOOMPI's new version replaced the one it had written.
    Updated,
    /// The user's version was backed up, then KOOMPI's written.
    BackedUp,
    /// The user's version was kept and KOOMPI's saved beside it.
    Offered,
    /// It already was KOOMPI's version.
    Current,
    /// The user changed it and KOOMPI has nothing newer.
    Kept,
    /// Not touched: see the reason.
    Skipped,
    /// Could not be done: see the reason; the file is unchanged.
    Failed,
    /// `--restore`: put back as it was before the apply.
    Restored,
    /// `--restore`: removed, as it did not exist before the apply.
    Removed,
}

/// One file's line of a report.
#[derive(Debug, Clone, Serialize)]
pub struct FileReport {
    /// Relative to the home.
    pub path: String,
    pub outcome: Outcome,
    /// Where the user's version was saved (backed-up; a restore that found a later change).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub backup: Option<String>,
    /// Where KOOMPI's version was saved beside the user's (offered).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub saved_as: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// What an apply or a restore did (or would do, with `dry_run`).
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub home: String,
    /// "lite", or "restore".
    pub applied: String,
    pub dry_run: bool,
    pub files: Vec<FileReport>,
}

impl Report {
    /// Files that could not be done.
    pub fn failed(&self) -> usize {
        self.count(Outcome::Failed)
    }

    fn count(&self, o: Outcome) -> usize {
        self.files.iter().filter(|f| f.outcome == o).count()
    }

    /// Whether anything in the home changed (or would).
    pub fn changed(&self) -> bool {
        self.files.iter().any(|f| {
            !matches!(
                f.outcome,
                Outcome::Current | Outcome::Kept | Outcome::Skipped | Outcome::Failed
            )
        })
    }

    /// One line per file changed, skipped or failed, then a summary line.
    pub fn lines(&self) -> Vec<String> {
        let mut out: Vec<String> = self
            .files
            .iter()
            .filter_map(|f| f.line(self.dry_run))
            .collect();
        let mut parts = Vec::new();
        for (o, words) in [
            (Outcome::Created, "created"),
            (Outcome::Updated, "updated"),
            (Outcome::BackedUp, "backed up and replaced"),
            (Outcome::Offered, "kept with KOOMPI's version beside"),
            (Outcome::Restored, "restored"),
            (Outcome::Removed, "removed"),
            (Outcome::Current, "already current"),
            (Outcome::Kept, "kept as you changed them"),
            (Outcome::Skipped, "skipped"),
            (Outcome::Failed, "failed"),
        ] {
            let n = self.count(o);
            if n > 0 {
                parts.push(format!("{n} {words}"));
            }
        }
        let head = if self.dry_run {
            format!("{} (dry run, nothing written)", self.applied)
        } else {
            self.applied.clone()
        };
        let tail = if parts.is_empty() {
            "no files".to_string()
        } else {
            parts.join(", ")
        };
        let nothing = if self.changed() {
            ""
        } else {
            "; nothing to do"
        };
        out.push(format!("{head} in {}: {tail}{nothing}", self.home));
        out
    }
}

impl FileReport {
    fn new(path: &str, outcome: Outcome) -> FileReport {
        FileReport {
            path: path.to_string(),
            outcome,
            backup: None,
            saved_as: None,
            reason: None,
        }
    }

    fn because(mut self, reason: impl Into<String>) -> FileReport {
        self.reason = Some(reason.into());
        self
    }

    /// The line for people; `None` for a file left as it was on purpose.
    pub fn line(&self, dry_run: bool) -> Option<String> {
        let p = show(Path::new(&self.path));
        let opt = |s: &Option<String>| s.as_deref().map(|s| show(Path::new(s))).unwrap_or_default();
        let reason = self.reason.as_deref().unwrap_or_default();
        Some(match (self.outcome, dry_run) {
            (Outcome::Current | Outcome::Kept, _) => return None,
            (Outcome::Created, false) => format!("created {p}"),
            (Outcome::Created, true) => format!("would create {p}"),
            (Outcome::Updated, false) => format!("updated {p} to KOOMPI's new version"),
            (Outcome::Updated, true) => format!("would update {p} to KOOMPI's new version"),
            (Outcome::BackedUp, false) => format!(
                "backed up {p} to {} (you had changed it) and wrote KOOMPI's version",
                opt(&self.backup)
            ),
            (Outcome::BackedUp, true) => {
                format!("would back up {p} (you changed it) and write KOOMPI's version")
            }
            (Outcome::Offered, false) => format!(
                "kept {p}: you changed it; KOOMPI's new version saved as {}",
                opt(&self.saved_as)
            ),
            (Outcome::Offered, true) => {
                format!("would keep {p} (you changed it) and save KOOMPI's new version beside it")
            }
            (Outcome::Restored, false) if self.backup.is_some() => format!(
                "restored {p} (your later change saved as {})",
                opt(&self.backup)
            ),
            (Outcome::Restored, false) => format!("restored {p}"),
            (Outcome::Restored, true) => format!("would restore {p}"),
            (Outcome::Removed, false) if self.backup.is_some() => format!(
                "removed {p} (your later change saved as {})",
                opt(&self.backup)
            ),
            (Outcome::Removed, false) => format!("removed {p}"),
            (Outcome::Removed, true) => format!("would remove {p}"),
            (Outcome::Skipped, _) => format!("skipped {p}: {reason}"),
            (Outcome::Failed, _) => format!("failed {p}: {reason}"),
        })
    }
}

/// Opens the home at `path` and runs `f` on it, as the user `owner` (uid, gid) when
/// running as root ([`ident::AsUser`]); root's identity is back when it returns.
pub fn with_home<T>(
    path: &Path,
    owner: Option<(u32, u32)>,
    f: impl FnOnce(&Home) -> Result<T, ApplyError>,
) -> Result<T, ApplyError> {
    let _as_user = match owner {
        Some((uid, gid)) => ident::AsUser::become_user(uid, gid)?,
        None => None,
    };
    let home = Home::open(path).map_err(|e| ApplyError::Home {
        path: show(path),
        why: home::words(&e),
    })?;
    f(&home)
}

/// The owner (uid, gid) of the directory `path`, following links (the caller named it).
pub fn owner_of(path: &Path) -> Result<(u32, u32), ApplyError> {
    use std::os::unix::fs::MetadataExt;
    let m = std::fs::metadata(path).map_err(|e| ApplyError::Home {
        path: show(path),
        why: home::words(&e),
    })?;
    if !m.is_dir() {
        return Err(ApplyError::Home {
            path: show(path),
            why: "not a directory".into(),
        });
    }
    Ok((m.uid(), m.gid()))
}

/// One file to apply: its destination, KOOMPI's content and its hash, the mode.
#[derive(Debug, Clone)]
pub struct Shipped {
    dest: PathBuf,
    key: String,
    content: Vec<u8>,
    sha: Sha,
    mode: u32,
}

/// Reads KOOMPI's version of each of `files` from `configs_dir`.
pub fn load(files: &[&ConfigFile], configs_dir: &Path) -> Result<Vec<Shipped>, ApplyError> {
    let mut out = Vec::new();
    for f in files {
        let path = configs_dir.join(&f.src);
        let bad = |why: String| ApplyError::Shipped {
            path: show(&path),
            why,
        };
        let meta = std::fs::metadata(&path).map_err(|e| bad(home::words(&e)))?;
        if !meta.is_file() {
            return Err(bad("not a regular file".into()));
        }
        if meta.len() > FILE_CAP {
            return Err(bad(format!("larger than {} MiB", FILE_CAP >> 20)));
        }
        let content = std::fs::read(&path).map_err(|e| bad(home::words(&e)))?;
        out.push(Shipped {
            key: f.dest.to_string_lossy().into_owned(),
            dest: f.dest.clone(),
            sha: Sha::of(&content),
            content,
            mode: f.mode.unwrap_or(0o644),
        });
    }
    Ok(out)
}

fn skip_words(why: &SkipWhy) -> String {
    match why {
        SkipWhy::NotRegular(kind) => {
            format!("it is {kind}; KOOMPI replaces only regular files and never follows links")
        }
        SkipWhy::ReadOnly => {
            "it is read-only, so it is kept as you made it (make it writable to let KOOMPI update it)"
                .into()
        }
        SkipWhy::Blocked(why) => why.clone(),
    }
}

fn dir_strings(dirs: &[PathBuf]) -> Vec<String> {
    dirs.iter()
        .map(|d| d.to_string_lossy().into_owned())
        .collect()
}

/// Puts `req`'s files into `home`. Per-file problems are lines of the report (skipped,
/// failed); an error is returned only when nothing could be tried.
pub fn apply(home: &Home, req: &Request) -> Result<Report, ApplyError> {
    let shipped = &req.files;
    let state = State::new(home);
    let old = state.manifest()?;
    let time = req.now.to_rfc3339_opts(chrono::SecondsFormat::Secs, false);
    let stamp = req.now.format("%Y%m%dT%H%M%S").to_string();

    // Look and decide first: a dry run stops after this, and a run with nothing to do
    // writes nothing.
    let mut planned = Vec::new();
    let mut predicted = old
        .clone()
        .unwrap_or_else(|| Manifest::new(&req.applied, &time));
    predicted.applied = req.applied.clone();
    for s in shipped {
        let record = old
            .as_ref()
            .and_then(|m| m.files.get(&s.key))
            .map(FileState::record);
        let seen = home.look(&s.dest);
        let action = decide(s.sha, record, &seen.disk, req.policy);
        set_record(&mut predicted, s, next_record(s.sha, record, &action));
        planned.push((s, record, seen, action));
    }
    let mut report = Report {
        home: show(home.path()),
        applied: req.applied.clone(),
        dry_run: req.dry_run,
        files: Vec::new(),
    };
    let anything =
        planned.iter().any(|(_, _, _, a)| a.changes()) || state_differs(old.as_ref(), &predicted);
    if req.dry_run || !anything {
        report.files = planned
            .iter()
            .map(|(s, _, _, a)| planned_report(&s.key, a))
            .collect();
        return Ok(report);
    }

    let mut created_dirs = Vec::new();
    let blobs = Path::new(state::DIR).join("blobs");
    home.ensure_dir(&blobs, &mut created_dirs)
        .map_err(|e| StateError {
            home: show(home.path()),
            message: format!("cannot create it: {e}"),
        })?;
    let mut manifest = old
        .clone()
        .unwrap_or_else(|| Manifest::new(&req.applied, &time));
    manifest.applied = req.applied.clone();
    manifest.time = time.clone();
    let mut changes = Vec::new();
    for (s, record, seen, action) in &planned {
        let done = carry_out(
            home,
            &state,
            s,
            seen,
            action,
            &stamp,
            &mut changes,
            &mut created_dirs,
        );
        match done {
            Ok(file) => {
                set_record(&mut manifest, s, next_record(s.sha, *record, action));
                report.files.push(file);
            }
            Err(e) => report.files.push(
                FileReport::new(&s.key, Outcome::Failed)
                    .because(format!("{e}; the file is unchanged")),
            ),
        }
    }
    if changes.is_empty() && !state_differs(old.as_ref(), &manifest) {
        // Everything failed: the state stays as it was (the last journal too).
        for d in created_dirs.iter().rev() {
            home.remove_empty_dir(d);
        }
        return Ok(report);
    }
    let journal = Journal {
        version: 1,
        applied: req.applied.clone(),
        time,
        previous: old,
        changes,
        created_dirs: dir_strings(&created_dirs),
    };
    let mut more_dirs = Vec::new();
    let saved = state
        .save_journal(&journal, &mut more_dirs)
        .and_then(|()| state.save_manifest(&manifest, &mut more_dirs));
    if let Err(e) = saved {
        report.files.push(
            FileReport::new(state::DIR, Outcome::Failed)
                .because(format!("{e}; `--restore` may not undo this apply")),
        );
        return Ok(report);
    }
    let keep: Vec<Sha> = journal
        .changes
        .iter()
        .filter_map(|c| c.before.map(|b| b.sha))
        .collect();
    state.prune_blobs(&keep);
    Ok(report)
}

/// Whether `new` says something `old` (the manifest on disk, if any) does not.
fn state_differs(old: Option<&Manifest>, new: &Manifest) -> bool {
    match old {
        None => !new.files.is_empty(),
        Some(m) => !m.same_as(new),
    }
}

fn set_record(m: &mut Manifest, s: &Shipped, r: Option<decide::Record>) {
    match r {
        Some(r) => {
            m.files.insert(
                s.key.clone(),
                FileState {
                    written: r.written,
                    offered: r.offered,
                    mode: s.mode,
                },
            );
        }
        None => {
            m.files.remove(&s.key);
        }
    }
}

fn planned_report(key: &str, action: &Action) -> FileReport {
    match action {
        Action::Create => FileReport::new(key, Outcome::Created),
        Action::Update => FileReport::new(key, Outcome::Updated),
        Action::BackupThenUpdate => FileReport::new(key, Outcome::BackedUp),
        Action::Offer => FileReport::new(key, Outcome::Offered),
        Action::Keep(KeepWhy::Current) => FileReport::new(key, Outcome::Current),
        Action::Keep(KeepWhy::Changed) => FileReport::new(key, Outcome::Kept)
            .because("you changed it and KOOMPI has nothing newer"),
        Action::Skip(why) => FileReport::new(key, Outcome::Skipped).because(skip_words(why)),
    }
}

/// The content and mode of what `seen` found, stashed as a blob for `--restore`.
fn stash_before(
    state: &State<'_>,
    seen: &Seen,
    created: &mut Vec<PathBuf>,
) -> Result<Option<Before>, WriteError> {
    match (&seen.disk, &seen.content) {
        (OnDisk::File { sha, .. }, Some(content)) => {
            state.stash(*sha, content, created)?;
            Ok(Some(Before {
                sha: *sha,
                mode: seen.mode.unwrap_or(0o644),
            }))
        }
        _ => Ok(None),
    }
}

#[allow(clippy::too_many_arguments)]
fn carry_out(
    home: &Home,
    state: &State<'_>,
    s: &Shipped,
    seen: &Seen,
    action: &Action,
    stamp: &str,
    changes: &mut Vec<Change>,
    created: &mut Vec<PathBuf>,
) -> Result<FileReport, WriteError> {
    let key = s.key.as_str();
    match action {
        Action::Keep(_) | Action::Skip(_) => Ok(planned_report(key, action)),
        Action::Create => {
            home.write(&s.dest, &s.content, s.mode, None, created)?;
            changes.push(Change {
                path: key.into(),
                before: None,
                after: s.sha,
            });
            Ok(FileReport::new(key, Outcome::Created))
        }
        Action::Update => {
            let before = stash_before(state, seen, created)?;
            home.write(&s.dest, &s.content, s.mode, Some(seen), created)?;
            changes.push(Change {
                path: key.into(),
                before,
                after: s.sha,
            });
            Ok(FileReport::new(key, Outcome::Updated))
        }
        Action::BackupThenUpdate => {
            let before = stash_before(state, seen, created)?;
            let (Some(b), Some(content)) = (before, &seen.content) else {
                return Err(WriteError::Raced);
            };
            let backup = home.write_beside(
                &s.dest,
                &format!(".koompi-backup-{stamp}"),
                content,
                b.mode,
                created,
            )?;
            let backup = backup.to_string_lossy().into_owned();
            changes.push(Change {
                path: backup.clone(),
                before: None,
                after: b.sha,
            });
            home.write(&s.dest, &s.content, s.mode, Some(seen), created)
                .map_err(|e| {
                    WriteError::Blocked(format!(
                        "{e} (your version is also in {})",
                        show(Path::new(&backup))
                    ))
                })?;
            changes.push(Change {
                path: key.into(),
                before,
                after: s.sha,
            });
            let mut r = FileReport::new(key, Outcome::BackedUp);
            r.backup = Some(backup);
            Ok(r)
        }
        Action::Offer => {
            let saved = home.write_beside(
                &s.dest,
                &format!(".koompi-new-{stamp}"),
                &s.content,
                s.mode,
                created,
            )?;
            let saved = saved.to_string_lossy().into_owned();
            changes.push(Change {
                path: saved.clone(),
                before: None,
                after: s.sha,
            });
            let mut r = FileReport::new(key, Outcome::Offered);
            r.saved_as = Some(saved);
            Ok(r)
        }
    }
}

/// Undoes the last apply recorded in `home`: each file it created is removed, each file
/// it replaced gets its earlier content and mode back, the directories it created go if
/// empty, and the manifest is as before. A file changed since that apply is saved as a
/// backup first. `now` names such backups.
pub fn restore(
    home: &Home,
    dry_run: bool,
    now: chrono::DateTime<chrono::FixedOffset>,
) -> Result<Report, ApplyError> {
    let state = State::new(home);
    let journal = state
        .journal()?
        .ok_or_else(|| ApplyError::NothingToRestore {
            home: show(home.path()),
        })?;
    let stamp = now.format("%Y%m%dT%H%M%S").to_string();
    let mut report = Report {
        home: show(home.path()),
        applied: format!("restore of {} ({})", journal.applied, journal.time),
        dry_run,
        files: Vec::new(),
    };
    let mut scratch = Vec::new();
    for c in journal.changes.iter().rev() {
        let path = Path::new(&c.path);
        let seen = home.look(path);
        let now_sha = match &seen.disk {
            OnDisk::Absent => None,
            OnDisk::File { sha, .. } => Some(*sha),
            OnDisk::Other(kind) => {
                report.files.push(
                    FileReport::new(&c.path, Outcome::Skipped)
                        .because(format!("it is {kind} now; left alone")),
                );
                continue;
            }
            OnDisk::Blocked(why) => {
                report
                    .files
                    .push(FileReport::new(&c.path, Outcome::Skipped).because(why.clone()));
                continue;
            }
        };
        if now_sha == c.before.map(|b| b.sha) {
            continue; // already as it was
        }
        let outcome = if c.before.is_some() {
            Outcome::Restored
        } else {
            Outcome::Removed
        };
        if dry_run {
            report.files.push(FileReport::new(&c.path, outcome));
            continue;
        }
        let done = (|| -> Result<Option<String>, String> {
            // Changed since the apply: the user's later version is kept as a backup.
            let mut backup = None;
            if let (Some(sha), Some(content)) = (now_sha, &seen.content) {
                if sha != c.after {
                    let b = home
                        .write_beside(
                            path,
                            &format!(".koompi-backup-{stamp}"),
                            content,
                            seen.mode.unwrap_or(0o644),
                            &mut scratch,
                        )
                        .map_err(|e| e.to_string())?;
                    backup = Some(b.to_string_lossy().into_owned());
                }
            }
            match c.before {
                None => home.remove(path, &seen).map_err(|e| e.to_string())?,
                Some(b) => {
                    let content = state.blob(b.sha).map_err(|e| e.to_string())?;
                    let seen = seen.content.is_some().then_some(&seen);
                    home.write(path, &content, b.mode, seen, &mut scratch)
                        .map_err(|e| e.to_string())?;
                }
            }
            Ok(backup)
        })();
        match done {
            Ok(backup) => {
                let mut r = FileReport::new(&c.path, outcome);
                r.backup = backup;
                report.files.push(r);
            }
            Err(e) => report
                .files
                .push(FileReport::new(&c.path, Outcome::Failed).because(e)),
        }
    }
    if dry_run {
        return Ok(report);
    }
    if report.failed() > 0 {
        // Keep the journal: a second --restore can finish the job.
        return Ok(report);
    }
    match &journal.previous {
        Some(m) => state.save_manifest(m, &mut scratch)?,
        None => state.remove_manifest()?,
    }
    state.remove_journal()?;
    state.prune_blobs(&[]);
    for d in journal.created_dirs.iter().rev() {
        home.remove_empty_dir(Path::new(d));
    }
    Ok(report)
}
