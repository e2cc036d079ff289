//! What koompi-desktop installed, and what each install changed, so `remove` can undo it.
//!
//! One JSON file, `/var/lib/koompi/desktop/state.json` (under `--root` for a mounted
//! system), replaced atomically. An edition's record is written before its display manager
//! is switched, with the display manager and default target found before the install, so a
//! run cut off after that point is healed by running it again and can still be removed.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// The state file, relative to the system's root.
pub const STATE_PATH: &str = "var/lib/koompi/desktop/state.json";
/// The lock two koompi-desktop runs on one system share, relative to the root.
pub const LOCK_PATH: &str = "var/lib/koompi/desktop/lock";

/// Why the state could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum StateError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path} is damaged ({message}); move it away to start afresh (koompi-desktop then knows of no installed edition)")]
    Damaged { path: PathBuf, message: String },
    #[error("cannot write {path}: {source}")]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// One installed edition.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct Installed {
    pub id: String,
    /// When it was installed (RFC 3339).
    pub installed_at: String,
    /// The packages this install added (those already there are not removed with it).
    #[serde(default)]
    pub added_packages: Vec<String>,
    /// The display manager enabled before it (`None`: none).
    #[serde(default)]
    pub previous_display_manager: Option<String>,
    /// The default target before it.
    #[serde(default)]
    pub previous_target: Option<String>,
}

/// Every installed edition, oldest first.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct State {
    #[serde(default)]
    pub editions: Vec<Installed>,
}

impl State {
    /// The record of edition `id`.
    pub fn get(&self, id: &str) -> Option<&Installed> {
        self.editions.iter().find(|e| e.id == id)
    }

    /// Adds or replaces `id`'s record; a record already there keeps what it found before
    /// the first install (a re-run must not take the new display manager for the old one).
    pub fn record(&mut self, new: Installed) {
        match self.editions.iter_mut().find(|e| e.id == new.id) {
            Some(old) => {
                for p in new.added_packages {
                    if !old.added_packages.contains(&p) {
                        old.added_packages.push(p);
                    }
                }
            }
            None => self.editions.push(new),
        }
    }

    /// Forgets `id`.
    pub fn forget(&mut self, id: &str) {
        self.editions.retain(|e| e.id != id);
    }

    /// Parses the state file's text.
    pub fn parse(text: &str, path: &Path) -> Result<State, StateError> {
        serde_json::from_str(text).map_err(|e| StateError::Damaged {
            path: path.to_owned(),
            message: e.to_string(),
        })
    }

    /// The state of the system at `root` (empty when there is no file yet).
    pub fn load(root: &Path) -> Result<State, StateError> {
        let path = root.join(STATE_PATH);
        match std::fs::read_to_string(&path) {
            Ok(text) => State::parse(&text, &path),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(State::default()),
            Err(source) => Err(StateError::Read { path, source }),
        }
    }

    /// Writes the state of the system at `root`, atomically.
    pub fn save(&self, root: &Path) -> Result<(), StateError> {
        let path = root.join(STATE_PATH);
        let mut text = serde_json::to_string_pretty(self).unwrap_or_default();
        text.push('\n');
        koompi_core::fsutil::write_atomic(&path, text.as_bytes(), 0o644)
            .map_err(|source| StateError::Write { path, source })
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn rec(id: &str, dm: Option<&str>, pkgs: &[&str]) -> Installed {
        Installed {
            id: id.into(),
            installed_at: "2026-12-06T00:00:00Z".into(),
            added_packages: pkgs.iter().map(|s| s.to_string()).collect(),
            previous_display_manager: dm.map(Into::into),
            previous_target: Some("multi-user.target".into()),
        }
    }

    #[test]
    fn a_rerun_keeps_what_the_first_install_found() {
        let mut s = State::default();
        s.record(rec("lite", None, &["openbox"]));
        s.record(rec("lite", Some("lightdm.service"), &["tint2"]));
        let lite = s.get("lite").unwrap();
        assert_eq!(lite.previous_display_manager, None);
        assert_eq!(lite.added_packages, ["openbox", "tint2"]);
        s.forget("lite");
        assert!(s.editions.is_empty());
    }

    #[test]
    fn round_trips_and_reports_damage_in_one_line() {
        let d = tempfile::tempdir().unwrap();
        assert_eq!(State::load(d.path()).unwrap(), State::default());
        let mut s = State::default();
        s.record(rec("kde", Some("gdm.service"), &["sddm"]));
        s.save(d.path()).unwrap();
        assert_eq!(State::load(d.path()).unwrap(), s);
        std::fs::write(d.path().join(STATE_PATH), "{ half").unwrap();
        let e = State::load(d.path()).unwrap_err().to_string();
        assert!(e.contains("is damaged") && !e.contains('\n'), "{e}");
    }
}
