//! The shapes every backend's answers are turned into.
//!
//! `koompi search` merges results from pacman's repositories, the AUR and Flathub into one
//! list, and `koompi search --json` prints that list for scripts. [`Package`] is that one
//! shape: the fields all sources share, plus a few optional ones that only some sources have
//! (votes for the AUR, remotes for Flatpak). [`Installed`] is a line of `pacman -Q`.

use serde::{Deserialize, Serialize};

/// Where a package comes from.
///
/// In JSON: `{"kind":"repo","repo":"extra"}`, `{"kind":"aur"}`, `{"kind":"flathub"}`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(tag = "kind", content = "repo", rename_all = "lowercase")]
pub enum Source {
    /// A pacman repository (`core`, `extra`, `koompi`, ...; `local` for `pacman -Qs`).
    Repo(String),
    /// The Arch User Repository, built with paru.
    Aur,
    /// A Flatpak remote (Flathub for KOOMPI; the remotes are in [`Package::remotes`]).
    Flathub,
}

impl std::fmt::Display for Source {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Source::Repo(r) => f.write_str(r),
            Source::Aur => f.write_str("aur"),
            Source::Flathub => f.write_str("flathub"),
        }
    }
}

/// One package as a search or info command shows it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Package {
    pub source: Source,
    /// What to pass to `koompi install`: the package name, or the Flatpak application ID.
    pub name: String,
    pub version: String,
    pub description: String,
    /// The installed version, when the package is installed (it may differ from `version`).
    pub installed: Option<String>,
    /// pacman groups (`pacman -Ss` shows them in parentheses).
    #[serde(default)]
    pub groups: Vec<String>,
    /// The human name of a Flatpak application ("Calculator").
    #[serde(default)]
    pub display_name: Option<String>,
    /// The Flatpak remotes that have the application.
    #[serde(default)]
    pub remotes: Vec<String>,
    /// AUR votes.
    #[serde(default)]
    pub votes: Option<u64>,
    /// AUR popularity.
    #[serde(default)]
    pub popularity: Option<f64>,
    /// AUR: when the package was flagged out of date (seconds since the epoch).
    #[serde(default)]
    pub out_of_date: Option<i64>,
    /// AUR maintainer; `None` for an orphan (or when the source does not say).
    #[serde(default)]
    pub maintainer: Option<String>,
}

impl Package {
    /// A package with only the common fields set.
    pub fn new(
        source: Source,
        name: impl Into<String>,
        version: impl Into<String>,
        description: impl Into<String>,
    ) -> Self {
        Package {
            source,
            name: name.into(),
            version: version.into(),
            description: description.into(),
            installed: None,
            groups: Vec::new(),
            display_name: None,
            remotes: Vec::new(),
            votes: None,
            popularity: None,
            out_of_date: None,
            maintainer: None,
        }
    }
}

/// One installed package, a line of `pacman -Q`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Installed {
    pub name: String,
    pub version: String,
}

/// Fills [`Package::installed`] of pacman and AUR packages from a `pacman -Q` listing.
///
/// The AUR does not know what is installed, so AUR search results are completed this way;
/// repository results already say it, and Flatpak applications are not in pacman's database,
/// so both are left alone when `installed` is already set or the source is Flathub.
pub fn mark_installed(packages: &mut [Package], installed: &[Installed]) {
    let by_name: std::collections::HashMap<&str, &str> = installed
        .iter()
        .map(|i| (i.name.as_str(), i.version.as_str()))
        .collect();
    for p in packages.iter_mut() {
        if p.installed.is_some() || p.source == Source::Flathub {
            continue;
        }
        if let Some(v) = by_name.get(p.name.as_str()) {
            p.installed = Some((*v).to_string());
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn source_json() {
        let j = |s: &Source| serde_json::to_string(s).unwrap();
        assert_eq!(
            j(&Source::Repo("extra".into())),
            r#"{"kind":"repo","repo":"extra"}"#
        );
        assert_eq!(j(&Source::Aur), r#"{"kind":"aur"}"#);
        assert_eq!(j(&Source::Flathub), r#"{"kind":"flathub"}"#);
        for s in [Source::Repo("core".into()), Source::Aur, Source::Flathub] {
            let back: Source = serde_json::from_str(&j(&s)).unwrap();
            assert_eq!(back, s);
        }
    }

    #[test]
    fn package_json_round_trip() {
        let mut p = Package::new(Source::Aur, "paru", "2.0.4-1", "Feature packed AUR helper");
        p.votes = Some(1234);
        p.popularity = Some(12.5);
        let text = serde_json::to_string(&p).unwrap();
        let back: Package = serde_json::from_str(&text).unwrap();
        assert_eq!(back, p);
        let v: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(v["installed"], serde_json::Value::Null);
        assert_eq!(v["source"]["kind"], "aur");
    }

    #[test]
    fn marks_installed_aur_packages_only_where_unknown() {
        let mut list = vec![
            Package::new(Source::Aur, "paru", "2.0.4-1", ""),
            Package::new(Source::Aur, "yay", "12-1", ""),
            Package::new(Source::Flathub, "paru", "1", ""),
            Package {
                installed: Some("1.0-1".into()),
                ..Package::new(Source::Repo("extra".into()), "vim", "9.1-1", "")
            },
        ];
        let installed = vec![
            Installed {
                name: "paru".into(),
                version: "2.0.3-1".into(),
            },
            Installed {
                name: "vim".into(),
                version: "9.0-1".into(),
            },
        ];
        mark_installed(&mut list, &installed);
        assert_eq!(list[0].installed.as_deref(), Some("2.0.3-1"));
        assert_eq!(list[1].installed, None);
        assert_eq!(list[2].installed, None);
        assert_eq!(list[3].installed.as_deref(), Some("1.0-1"));
    }
}
