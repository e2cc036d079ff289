//! Which subvolume a command works on: a snapper config by name or a config file by path.

use std::path::{Path, PathBuf};

use koompi_core::config::ShellVars;

use crate::error::{io_err, Error, Result};
use crate::retention::Policy;

/// Where snapper keeps its configs.
pub const SNAPPER_CONFIG_DIR: &str = "/etc/snapper/configs";

/// A loaded snapper config.
#[derive(Debug, Clone)]
pub struct SnapperConfig {
    /// The config's file.
    pub path: PathBuf,
    /// The subvolume it manages (`SUBVOLUME=`).
    pub subvolume: PathBuf,
    pub vars: ShellVars,
}

impl SnapperConfig {
    /// Loads `/etc/snapper/configs/NAME`.
    pub fn by_name(name: &str) -> Result<Self> {
        Self::by_name_in(Path::new(SNAPPER_CONFIG_DIR), name)
    }

    /// Loads `DIR/NAME`.
    pub fn by_name_in(dir: &Path, name: &str) -> Result<Self> {
        let ok = !name.is_empty()
            && !name.starts_with('.')
            && name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c));
        if !ok {
            return Err(Error::BadConfigName(name.to_string()));
        }
        let path = dir.join(name);
        if !path.exists() {
            return Err(Error::ConfigNotFound {
                name: name.to_string(),
                path,
            });
        }
        Self::from_file(&path)
    }

    /// Loads a config file at any path.
    pub fn from_file(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path).map_err(|source| Error::ConfigRead {
            path: path.to_path_buf(),
            source,
        })?;
        Self::parse(path, &text)
    }

    /// Parses config text; `path` is only used in messages.
    pub fn parse(path: &Path, text: &str) -> Result<Self> {
        let vars = ShellVars::parse(text).map_err(|source| Error::ConfigParse {
            path: path.to_path_buf(),
            source,
        })?;
        let subvolume = match vars.get("SUBVOLUME") {
            Some(s) if s.starts_with('/') => PathBuf::from(s),
            Some(s) => {
                return Err(Error::ConfigInvalid {
                    path: path.to_path_buf(),
                    message: format!("SUBVOLUME={s:?} must be an absolute path"),
                })
            }
            None => {
                return Err(Error::ConfigInvalid {
                    path: path.to_path_buf(),
                    message: "SUBVOLUME is not set".into(),
                })
            }
        };
        if let Some(fs) = vars.get("FSTYPE") {
            if fs != "btrfs" {
                return Err(Error::ConfigInvalid {
                    path: path.to_path_buf(),
                    message: format!("FSTYPE={fs:?}: KOOMPI snapshots need btrfs"),
                });
            }
        }
        Ok(SnapperConfig {
            path: path.to_path_buf(),
            subvolume,
            vars,
        })
    }

    /// The retention policy these settings describe.
    pub fn policy(&self) -> Result<Policy> {
        Ok(Policy::from_lookup(|k| {
            self.vars.get(k).map(str::to_string)
        })?)
    }

    /// The `.snapshots` directory of the subvolume.
    pub fn snapshots_dir(&self) -> PathBuf {
        self.subvolume.join(".snapshots")
    }

    /// Name of the root subvolume in the top level (`KOOMPI_ROOT_SUBVOLUME`, default `@`),
    /// used by rollback when it cannot be read from the mount table.
    pub fn root_subvolume_name(&self) -> Option<&str> {
        self.vars.get("KOOMPI_ROOT_SUBVOLUME")
    }
}

/// Reads a file that must exist, for callers outside this module.
pub fn read_text(path: &Path) -> Result<String> {
    std::fs::read_to_string(path).map_err(io_err(format!("cannot read {}", path.display())))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn parses_koompi_root_config() {
        let c = SnapperConfig::parse(
            Path::new("root"),
            "SUBVOLUME=\"/\"\nFSTYPE=\"btrfs\"\nNUMBER_LIMIT=\"10\"\n",
        )
        .unwrap();
        assert_eq!(c.subvolume, PathBuf::from("/"));
        assert_eq!(c.snapshots_dir(), PathBuf::from("/.snapshots"));
        assert_eq!(c.policy().unwrap().number_limit, 10);
    }

    #[test]
    fn refuses_missing_or_relative_subvolume_and_other_fs() {
        for text in [
            "FSTYPE=btrfs\n",
            "SUBVOLUME=home\n",
            "SUBVOLUME=/ \nFSTYPE=ext4\n",
        ] {
            let e = SnapperConfig::parse(Path::new("x"), text).unwrap_err();
            assert!(matches!(e, Error::ConfigInvalid { .. }), "{text}: {e}");
        }
    }

    #[test]
    fn refuses_bad_names() {
        for n in ["", "../etc", "a/b", ".hidden"] {
            assert!(matches!(
                SnapperConfig::by_name_in(Path::new("/nonexistent"), n),
                Err(Error::BadConfigName(_))
            ));
        }
        assert!(matches!(
            SnapperConfig::by_name_in(Path::new("/nonexistent"), "root"),
            Err(Error::ConfigNotFound { .. })
        ));
    }

    #[test]
    fn syntax_error_names_the_file() {
        let e = SnapperConfig::parse(Path::new("/etc/x"), "SUBVOLUME=\"/\nFOO\n").unwrap_err();
        assert!(e.to_string().contains("/etc/x"), "{e}");
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod shipped {
    use super::*;

    /// The config KOOMPI installs as /etc/snapper/configs/root carries the seed's tiers.
    #[test]
    fn shipped_root_config_has_koompi_tiers() {
        let text = include_str!("../../../system/snapper/root");
        let c = SnapperConfig::parse(Path::new("system/snapper/root"), text).unwrap();
        assert_eq!(c.subvolume, PathBuf::from("/"));
        assert_eq!(c.root_subvolume_name(), Some("@"));
        let p = c.policy().unwrap();
        assert_eq!(
            (
                p.limit_hourly,
                p.limit_daily,
                p.limit_weekly,
                p.limit_monthly,
                p.limit_yearly
            ),
            (0, 5, 2, 1, 0)
        );
        assert_eq!((p.number_limit, p.number_limit_important), (10, 5));
        assert_eq!((p.number_min_age, p.timeline_min_age), (1800, 1800));
        assert!(p.number_cleanup && p.timeline_cleanup);
    }
}
