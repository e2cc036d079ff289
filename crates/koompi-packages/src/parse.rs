//! Readers for what pacman, flatpak and the AUR answer.
//!
//! `koompi search` and `koompi info` run `pacman -Ss/-Si/-Qi/-Q`, `flatpak search` and ask the
//! AUR's RPC interface; this module turns their text into [`Package`]s and friends. Every
//! parser takes the text (`&str`), never runs anything, and fails with a typed error that
//! names the line, so a format change shows up as a clear message and a failing test rather
//! than as silently missing results.
//!
//! The formats, as pacman 6 and flatpak 1.x print them when their output is not a terminal
//! (the caller runs them with `LC_ALL=C`, so field names are English, and without `COLUMNS`,
//! so nothing is wrapped; wrapped continuation lines are handled anyway):
//!
//! - `pacman -Ss` / `-Qs`: `repo/name version [(group ...)] [[installed] | [installed: ver]]`,
//!   then the description on lines indented by four spaces;
//! - `pacman -Q`: `name version` per line;
//! - `pacman -Si` / `-Qi`: blocks of `Key            : value` lines separated by a blank line,
//!   long values continued on lines indented to the value column, lists separated by two
//!   spaces, `None` for an empty list (`-Qi` has no `Repository` line);
//! - `flatpak search --columns=application,name,description,version,remotes`
//!   ([`FLATPAK_SEARCH_COLUMNS`]): tab-separated, a header line only on a terminal, remotes
//!   separated by commas, `No matches found` when there is nothing;
//! - AUR RPC v5 (`/rpc/v5/search/...`, `/rpc/v5/info?arg[]=...`): a JSON object with
//!   `version`, `type` (`search`, `multiinfo` or `error`), `resultcount`, `results` and, for
//!   errors, `error`.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::model::{Installed, Package, Source};

/// The `--columns` argument [`parse_flatpak_search`] expects.
pub const FLATPAK_SEARCH_COLUMNS: &str = "application,name,description,version,remotes";

/// A line of a program's output that does not have the expected form.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unexpected {what} output, line {line}: {message}")]
pub struct ParseError {
    /// Which output: `pacman -Ss`, `flatpak search`, ...
    pub what: &'static str,
    pub line: usize,
    pub message: String,
}

fn perr(what: &'static str, line: usize, message: impl Into<String>) -> ParseError {
    ParseError {
        what,
        line,
        message: message.into(),
    }
}

/// Parses `pacman -Ss` (or `-Qs`) output. Packages of `-Qs` come from the repo `local`.
pub fn parse_pacman_search(text: &str) -> Result<Vec<Package>, ParseError> {
    const WHAT: &str = "pacman -Ss";
    let mut out: Vec<Package> = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let n = i + 1;
        if line.trim().is_empty() {
            continue;
        }
        if line.starts_with([' ', '\t']) {
            let Some(p) = out.last_mut() else {
                return Err(perr(WHAT, n, "a description line before any package line"));
            };
            if !p.description.is_empty() {
                p.description.push(' ');
            }
            p.description.push_str(line.trim());
            continue;
        }
        let (first, rest) = line.split_once(' ').unwrap_or((line, ""));
        let Some((repo, name)) = first.split_once('/') else {
            return Err(perr(WHAT, n, format!("{first:?} is not REPO/NAME")));
        };
        if repo.is_empty() || name.is_empty() {
            return Err(perr(WHAT, n, format!("{first:?} is not REPO/NAME")));
        }
        let rest = rest.trim_start();
        let (version, mut rest) = rest.split_once(' ').unwrap_or((rest, ""));
        if version.is_empty() {
            return Err(perr(WHAT, n, format!("no version after {first:?}")));
        }
        let mut p = Package::new(Source::Repo(repo.to_string()), name, version, "");
        loop {
            rest = rest.trim_start();
            if rest.is_empty() {
                break;
            }
            let (open, close) = match rest.chars().next() {
                Some('(') => ('(', ')'),
                Some('[') => ('[', ']'),
                _ => {
                    return Err(perr(
                        WHAT,
                        n,
                        format!("unexpected {rest:?} after the version"),
                    ))
                }
            };
            let Some(end) = rest.find(close) else {
                return Err(perr(WHAT, n, format!("`{open}` without `{close}`")));
            };
            let inner = &rest[1..end];
            rest = &rest[end + 1..];
            if open == '(' {
                p.groups = inner.split_whitespace().map(str::to_string).collect();
            } else if inner == "installed" {
                p.installed = Some(version.to_string());
            } else if let Some(v) = inner.strip_prefix("installed:") {
                p.installed = Some(v.trim().to_string());
            }
            // Any other bracketed marker is a newer pacman's addition: not needed, skipped.
        }
        out.push(p);
    }
    Ok(out)
}

/// Parses `pacman -Q` output: `name version` per line.
pub fn parse_pacman_query(text: &str) -> Result<Vec<Installed>, ParseError> {
    const WHAT: &str = "pacman -Q";
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let mut words = line.split_whitespace();
        match (words.next(), words.next(), words.next()) {
            (Some(name), Some(version), None) => out.push(Installed {
                name: name.to_string(),
                version: version.to_string(),
            }),
            _ => {
                return Err(perr(
                    WHAT,
                    i + 1,
                    format!("expected `NAME VERSION`, found {line:?}"),
                ))
            }
        }
    }
    Ok(out)
}

/// One block of `pacman -Si` or `-Qi`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PackageInfo {
    pub name: String,
    pub version: String,
    /// Wrapped lines joined with a space; empty for `None`.
    pub description: String,
    /// `None` for `-Qi` (installed packages have no repository line).
    pub repository: Option<String>,
    /// `Depends On`, empty for `None`.
    pub depends_on: Vec<String>,
    /// `Installed Size` as written (`3.00 MiB`); see [`parse_size`].
    pub installed_size: Option<String>,
    /// `URL`; `None` when absent or `None`.
    pub url: Option<String>,
    /// Every other field as written; continuation lines joined with `\n`. Read lists with
    /// [`PackageInfo::list`].
    pub other: BTreeMap<String, String>,
}

impl PackageInfo {
    /// A list field of [`PackageInfo::other`] (`Groups`, `Optional Deps`, `Provides`,
    /// `Required By`, ...): items are separated by two spaces or a line break; `None` and a
    /// missing field are the empty list.
    pub fn list(&self, key: &str) -> Vec<String> {
        self.other
            .get(key)
            .map(|v| split_list(v))
            .unwrap_or_default()
    }

    /// `Installed Size` in bytes.
    pub fn installed_size_bytes(&self) -> Option<u64> {
        self.installed_size.as_deref().and_then(parse_size)
    }

    /// The common shape. A `-Qi` block (no repository) is from `local` and installed.
    pub fn to_package(&self) -> Package {
        let source = Source::Repo(
            self.repository
                .clone()
                .unwrap_or_else(|| "local".to_string()),
        );
        let mut p = Package::new(source, &self.name, &self.version, &self.description);
        if self.repository.is_none() {
            p.installed = Some(self.version.clone());
        }
        p.groups = self.list("Groups");
        p
    }
}

/// Items of a pacman list value: two or more spaces or a line break separate them.
fn split_list(value: &str) -> Vec<String> {
    if value.trim() == "None" {
        return Vec::new();
    }
    value
        .lines()
        .flat_map(|l| l.split("  "))
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .collect()
}

/// A pacman size (`3.00 B`, `1.50 KiB`, `12.3 MiB`, `1.0 GiB`) in bytes, rounded.
pub fn parse_size(s: &str) -> Option<u64> {
    let (num, unit) = s.trim().split_once(' ')?;
    let num: f64 = num.trim().parse().ok()?;
    let factor: f64 = match unit.trim() {
        "B" => 1.0,
        "KiB" => 1024.0,
        "MiB" => 1024.0 * 1024.0,
        "GiB" => 1024.0 * 1024.0 * 1024.0,
        "TiB" => 1024.0 * 1024.0 * 1024.0 * 1024.0,
        _ => return None,
    };
    if !num.is_finite() || num < 0.0 {
        return None;
    }
    Some((num * factor).round() as u64)
}

/// Parses `pacman -Si` or `-Qi` output: one [`PackageInfo`] per block.
pub fn parse_pacman_info(text: &str) -> Result<Vec<PackageInfo>, ParseError> {
    const WHAT: &str = "pacman -Si";
    let mut out = Vec::new();
    // The current block: its first line, and its fields in order.
    let mut block: Option<(usize, Vec<(String, String)>)> = None;
    let finish = |block: Option<(usize, Vec<(String, String)>)>,
                  out: &mut Vec<PackageInfo>|
     -> Result<(), ParseError> {
        if let Some((line, fields)) = block {
            out.push(info_from_fields(line, fields)?);
        }
        Ok(())
    };
    for (i, line) in text.lines().enumerate() {
        let n = i + 1;
        if line.trim().is_empty() {
            finish(block.take(), &mut out)?;
            continue;
        }
        if line.starts_with([' ', '\t']) {
            let Some((_, fields)) = block.as_mut() else {
                return Err(perr(WHAT, n, "a continuation line before any field"));
            };
            if let Some((_, value)) = fields.last_mut() {
                value.push('\n');
                value.push_str(line.trim());
            }
            continue;
        }
        let Some((key, value)) = line.split_once(':') else {
            return Err(perr(
                WHAT,
                n,
                format!("expected `Key : value`, found {line:?}"),
            ));
        };
        let key = key.trim();
        if key.is_empty() {
            return Err(perr(WHAT, n, format!("no field name in {line:?}")));
        }
        let (_, fields) = block.get_or_insert_with(|| (n, Vec::new()));
        fields.push((key.to_string(), value.trim().to_string()));
    }
    finish(block, &mut out)?;
    Ok(out)
}

fn info_from_fields(line: usize, fields: Vec<(String, String)>) -> Result<PackageInfo, ParseError> {
    const WHAT: &str = "pacman -Si";
    let mut other: BTreeMap<String, String> = BTreeMap::new();
    for (k, v) in fields {
        other.entry(k).or_insert(v);
    }
    let none_is_empty = |v: String| if v == "None" { String::new() } else { v };
    let Some(name) = other.remove("Name") else {
        return Err(perr(WHAT, line, "a package block without `Name`"));
    };
    let Some(version) = other.remove("Version") else {
        return Err(perr(
            WHAT,
            line,
            format!("package {name:?} has no `Version`"),
        ));
    };
    let description = other
        .remove("Description")
        .map(|d| none_is_empty(d).lines().collect::<Vec<_>>().join(" "))
        .unwrap_or_default();
    let depends_on = other
        .remove("Depends On")
        .map(|d| split_list(&d))
        .unwrap_or_default();
    let url = other
        .remove("URL")
        .map(none_is_empty)
        .filter(|u| !u.is_empty());
    Ok(PackageInfo {
        name,
        version,
        description,
        repository: other.remove("Repository"),
        depends_on,
        installed_size: other.remove("Installed Size"),
        url,
        other,
    })
}

/// Parses `flatpak search --columns=application,name,description,version,remotes` output.
pub fn parse_flatpak_search(text: &str) -> Result<Vec<Package>, ParseError> {
    const WHAT: &str = "flatpak search";
    let mut out = Vec::new();
    let mut first = true;
    for (i, raw) in text.lines().enumerate() {
        let n = i + 1;
        let line = raw.trim_end_matches('\r');
        if line.trim().is_empty() {
            continue;
        }
        if line.trim() == "No matches found" {
            continue;
        }
        let cols: Vec<&str> = line.split('\t').collect();
        if first && cols.first().map(|c| c.trim()) == Some("Application ID") {
            first = false;
            continue;
        }
        first = false;
        if cols.len() != 5 {
            return Err(perr(
                WHAT,
                n,
                format!(
                    "expected 5 tab-separated columns ({FLATPAK_SEARCH_COLUMNS}), found {}",
                    cols.len()
                ),
            ));
        }
        let id = cols[0].trim();
        if let Err(e) = crate::name::validate_flatpak_id(id) {
            return Err(perr(WHAT, n, format!("first column: {e}")));
        }
        let mut p = Package::new(Source::Flathub, id, cols[3].trim(), cols[2].trim());
        let display = cols[1].trim();
        if !display.is_empty() {
            p.display_name = Some(display.to_string());
        }
        p.remotes = cols[4]
            .split(',')
            .map(str::trim)
            .filter(|r| !r.is_empty())
            .map(str::to_string)
            .collect();
        out.push(p);
    }
    Ok(out)
}

/// Why an AUR answer could not be used.
#[derive(Debug, thiserror::Error)]
pub enum AurError {
    #[error("the AUR refused the request: {0}")]
    Rpc(String),
    #[error("the AUR's answer is not RPC JSON: {0}")]
    Json(#[from] serde_json::Error),
    #[error("the AUR answered with RPC version {0}; KOOMPI speaks version 5")]
    Version(String),
    #[error("the AUR answered with type {0:?} (expected search or multiinfo)")]
    Type(String),
}

/// What kind of AUR answer it was.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum AurKind {
    Search,
    Multiinfo,
}

/// A successful AUR answer.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AurResponse {
    pub kind: AurKind,
    /// `resultcount` as the server sent it.
    pub result_count: u64,
    pub results: Vec<AurPackage>,
}

/// One AUR package. `search` answers fill the fields up to `url_path`; `multiinfo` answers
/// add the dependency lists and the rest.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AurPackage {
    #[serde(rename(deserialize = "ID"), default)]
    pub id: Option<u64>,
    #[serde(rename(deserialize = "Name"))]
    pub name: String,
    #[serde(rename(deserialize = "PackageBaseID"), default)]
    pub package_base_id: Option<u64>,
    #[serde(rename(deserialize = "PackageBase"), default)]
    pub package_base: Option<String>,
    #[serde(rename(deserialize = "Version"))]
    pub version: String,
    #[serde(rename(deserialize = "Description"), default)]
    pub description: Option<String>,
    #[serde(rename(deserialize = "URL"), default)]
    pub url: Option<String>,
    #[serde(rename(deserialize = "NumVotes"), default)]
    pub num_votes: u64,
    #[serde(rename(deserialize = "Popularity"), default)]
    pub popularity: f64,
    /// When it was flagged out of date (seconds since the epoch); `None` when it is not.
    #[serde(rename(deserialize = "OutOfDate"), default)]
    pub out_of_date: Option<i64>,
    /// `None` for an orphan.
    #[serde(rename(deserialize = "Maintainer"), default)]
    pub maintainer: Option<String>,
    #[serde(rename(deserialize = "Submitter"), default)]
    pub submitter: Option<String>,
    #[serde(rename(deserialize = "FirstSubmitted"), default)]
    pub first_submitted: Option<i64>,
    #[serde(rename(deserialize = "LastModified"), default)]
    pub last_modified: Option<i64>,
    /// The snapshot tarball, relative to the AUR (`/cgit/aur.git/snapshot/NAME.tar.gz`).
    #[serde(rename(deserialize = "URLPath"), default)]
    pub url_path: Option<String>,
    #[serde(rename(deserialize = "Depends"), default)]
    pub depends: Vec<String>,
    #[serde(rename(deserialize = "MakeDepends"), default)]
    pub make_depends: Vec<String>,
    #[serde(rename(deserialize = "OptDepends"), default)]
    pub opt_depends: Vec<String>,
    #[serde(rename(deserialize = "CheckDepends"), default)]
    pub check_depends: Vec<String>,
    #[serde(rename(deserialize = "Conflicts"), default)]
    pub conflicts: Vec<String>,
    #[serde(rename(deserialize = "Provides"), default)]
    pub provides: Vec<String>,
    #[serde(rename(deserialize = "Replaces"), default)]
    pub replaces: Vec<String>,
    #[serde(rename(deserialize = "Groups"), default)]
    pub groups: Vec<String>,
    #[serde(rename(deserialize = "License"), default)]
    pub license: Vec<String>,
    #[serde(rename(deserialize = "Keywords"), default)]
    pub keywords: Vec<String>,
    #[serde(rename(deserialize = "CoMaintainers"), default)]
    pub co_maintainers: Vec<String>,
}

impl AurPackage {
    /// The common shape (not installed: the AUR does not know; see
    /// [`crate::model::mark_installed`]).
    pub fn to_package(&self) -> Package {
        let mut p = Package::new(
            Source::Aur,
            &self.name,
            &self.version,
            self.description.clone().unwrap_or_default(),
        );
        p.groups = self.groups.clone();
        p.votes = Some(self.num_votes);
        p.popularity = Some(self.popularity);
        p.out_of_date = self.out_of_date;
        p.maintainer = self.maintainer.clone();
        p
    }
}

/// The envelope of every RPC answer.
#[derive(Deserialize)]
struct RawResponse {
    #[serde(default)]
    version: serde_json::Value,
    #[serde(rename = "type")]
    kind: String,
    #[serde(default)]
    resultcount: u64,
    #[serde(default)]
    results: serde_json::Value,
    #[serde(default)]
    error: Option<String>,
}

/// Parses an AUR RPC v5 answer. An answer of type `error` is [`AurError::Rpc`].
pub fn parse_aur(json: &str) -> Result<AurResponse, AurError> {
    let raw: RawResponse = serde_json::from_str(json)?;
    let kind = match raw.kind.as_str() {
        "error" => {
            return Err(AurError::Rpc(
                raw.error
                    .filter(|e| !e.trim().is_empty())
                    .unwrap_or_else(|| "no reason given".to_string()),
            ))
        }
        "search" => AurKind::Search,
        "multiinfo" => AurKind::Multiinfo,
        other => return Err(AurError::Type(other.to_string())),
    };
    match &raw.version {
        serde_json::Value::Null => {}
        v if v.as_u64() == Some(5) => {}
        v => return Err(AurError::Version(v.to_string())),
    }
    let results: Vec<AurPackage> = match raw.results {
        serde_json::Value::Null => Vec::new(),
        v => serde_json::from_value(v)?,
    };
    Ok(AurResponse {
        kind,
        result_count: raw.resultcount,
        results,
    })
}

/// [`parse_aur`], then [`AurPackage::to_package`] for each result.
pub fn parse_aur_packages(json: &str) -> Result<Vec<Package>, AurError> {
    Ok(parse_aur(json)?
        .results
        .iter()
        .map(AurPackage::to_package)
        .collect())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const SS: &str = include_str!("../tests/data/pacman-Ss.txt");
    const QS: &str = include_str!("../tests/data/pacman-Qs.txt");
    const SI: &str = include_str!("../tests/data/pacman-Si.txt");
    const QI: &str = include_str!("../tests/data/pacman-Qi.txt");
    const Q: &str = include_str!("../tests/data/pacman-Q.txt");
    const AUR_SEARCH: &str = include_str!("../tests/data/aur-search.json");
    const AUR_INFO: &str = include_str!("../tests/data/aur-multiinfo.json");
    const FLATPAK: &str = include_str!("../tests/data/flatpak-search.txt");

    fn repo(r: &str) -> Source {
        Source::Repo(r.to_string())
    }

    #[test]
    fn pacman_search_real_output() {
        let list = parse_pacman_search(SS).unwrap();
        assert_eq!(list.len(), 2);
        let a = &list[0];
        assert_eq!(a.source, repo("kt"));
        assert_eq!(a.name, "hello-koompi");
        assert_eq!(a.version, "1.2.4-1");
        assert_eq!(a.groups, ["koompi-test", "koompi-base"]);
        assert_eq!(a.installed.as_deref(), Some("1.2.3-1"));
        assert_eq!(
            a.description,
            "A tiny test package that says hello from KOOMPI"
        );
        let b = &list[1];
        assert_eq!(b.name, "lib32-thing+plus");
        assert_eq!(b.version, "1:0.9-2");
        assert_eq!(b.installed.as_deref(), Some("1:0.9-2"));
        assert!(b.groups.is_empty());
        assert!(b.description.ends_with("narrow enough for wrapping"));
    }

    #[test]
    fn pacman_local_search() {
        let list = parse_pacman_search(QS).unwrap();
        assert_eq!(list.len(), 2);
        assert_eq!(list[0].source, repo("local"));
        assert_eq!(list[0].installed, None);
    }

    #[test]
    fn pacman_search_arch_like_lines() {
        let text = "\
extra/firefox 133.0.3-1 [installed]
    Fast, Private & Safe Web Browser
extra/firefox-i18n-km 133.0.3-1
    Khmer language pack for Firefox
core/base-devel 1-2 (base-devel)
    Basic tools to build Arch Linux packages
multilib/lib32-mesa 1:24.3.1-1 [installed: 1:24.2.8-1]
    Open-source OpenGL drivers - 32-bit
extra/empty 1-1
    
koompi/koompi-tools 0.1.0-1 (koompi) [installed] [pinned]
    KOOMPI OS system tools: snapshots,
    rollback and the boot watchdog
";
        let list = parse_pacman_search(text).unwrap();
        let names: Vec<&str> = list.iter().map(|p| p.name.as_str()).collect();
        assert_eq!(
            names,
            [
                "firefox",
                "firefox-i18n-km",
                "base-devel",
                "lib32-mesa",
                "empty",
                "koompi-tools"
            ]
        );
        assert_eq!(list[0].installed.as_deref(), Some("133.0.3-1"));
        assert_eq!(list[0].description, "Fast, Private & Safe Web Browser");
        assert_eq!(list[2].groups, ["base-devel"]);
        assert_eq!(list[3].installed.as_deref(), Some("1:24.2.8-1"));
        assert_eq!(list[3].source, repo("multilib"));
        assert_eq!(list[4].description, "");
        assert_eq!(list[5].groups, ["koompi"]);
        assert_eq!(list[5].installed.as_deref(), Some("0.1.0-1"));
        assert_eq!(
            list[5].description,
            "KOOMPI OS system tools: snapshots, rollback and the boot watchdog"
        );
        assert!(parse_pacman_search("").unwrap().is_empty());
    }

    #[test]
    fn pacman_search_errors_name_the_line() {
        let e = parse_pacman_search("    orphan description\n").unwrap_err();
        assert_eq!(e.line, 1);
        let e = parse_pacman_search("extra/a 1-1\n    d\nnot-a-header 1-1\n").unwrap_err();
        assert_eq!(e.line, 3);
        assert!(
            e.to_string()
                .starts_with("unexpected pacman -Ss output, line 3: "),
            "{e}"
        );
        assert_eq!(parse_pacman_search("extra/a\n").unwrap_err().line, 1);
        assert_eq!(parse_pacman_search("extra/a 1 (grp\n").unwrap_err().line, 1);
        assert_eq!(parse_pacman_search("extra/a 1 junk\n").unwrap_err().line, 1);
        assert_eq!(parse_pacman_search("/a 1\n").unwrap_err().line, 1);
    }

    #[test]
    fn pacman_query() {
        let list = parse_pacman_query(Q).unwrap();
        assert_eq!(
            list,
            [
                Installed {
                    name: "hello-koompi".into(),
                    version: "1.2.3-1".into()
                },
                Installed {
                    name: "lib32-thing+plus".into(),
                    version: "1:0.9-2".into()
                },
            ]
        );
        assert!(parse_pacman_query("\n").unwrap().is_empty());
        assert_eq!(parse_pacman_query("a 1\nb\n").unwrap_err().line, 2);
        assert_eq!(parse_pacman_query("a 1 -> 2\n").unwrap_err().line, 1);
    }

    #[test]
    fn pacman_sync_info_real_output() {
        let list = parse_pacman_info(SI).unwrap();
        assert_eq!(list.len(), 2);
        let a = &list[0];
        assert_eq!(a.repository.as_deref(), Some("kt"));
        assert_eq!(a.name, "hello-koompi");
        assert_eq!(a.version, "1.2.4-1");
        assert_eq!(a.depends_on, ["bash>=5", "coreutils"]);
        assert_eq!(a.url.as_deref(), Some("https://koompi.org"));
        assert_eq!(a.installed_size.as_deref(), Some("3.00 B"));
        assert_eq!(a.installed_size_bytes(), Some(3));
        assert_eq!(
            a.list("Optional Deps"),
            ["fortune-mod: random quotes", "cowsay: a cow"]
        );
        assert_eq!(a.list("Groups"), ["koompi-test", "koompi-base"]);
        assert_eq!(a.list("Validated By"), ["MD5 Sum", "SHA-256 Sum"]);
        assert!(a.list("Provides").is_empty());
        assert!(a.list("No Such Field").is_empty());
        assert_eq!(a.other.get("Architecture").map(String::as_str), Some("any"));
        assert_eq!(
            a.other.get("Build Date").map(String::as_str),
            Some("Sun Nov 22 02:31:37 2026")
        );
        assert!(!a.other.contains_key("Name"));
        let b = &list[1];
        // Wrapped at 80 columns: the three lines are one description.
        assert_eq!(
            b.description,
            "Another one with a long description that goes on and on and on so that pacman \
             needs to wrap it across several lines in the -Si output when the terminal is \
             narrow enough for wrapping"
        );
        assert!(b.depends_on.is_empty());
        assert_eq!(b.list("Licenses"), ["MIT", "BSD"]);
        let p = b.to_package();
        assert_eq!(p.source, repo("kt"));
        assert_eq!(p.installed, None);
    }

    #[test]
    fn pacman_local_info_real_output() {
        let list = parse_pacman_info(QI).unwrap();
        assert_eq!(list.len(), 2);
        let a = &list[0];
        assert_eq!(a.repository, None);
        assert_eq!(
            a.other.get("Install Reason").map(String::as_str),
            Some("Explicitly installed")
        );
        assert!(a.list("Required By").is_empty());
        let p = a.to_package();
        assert_eq!(p.source, repo("local"));
        assert_eq!(p.installed.as_deref(), Some("1.2.3-1"));
        assert_eq!(p.groups, ["koompi-test", "koompi-base"]);
    }

    #[test]
    fn pacman_info_wrapped_lists_and_none() {
        let text = "\
Repository      : extra
Name            : big
Version         : 1-1
Description     : None
URL             : None
Depends On      : a  b>=2  c
                  d  e
Optional Deps   : x: for x things [installed]
                  y: for y
Installed Size  : 1.50 MiB
";
        let list = parse_pacman_info(text).unwrap();
        let p = &list[0];
        assert_eq!(p.description, "");
        assert_eq!(p.url, None);
        assert_eq!(p.depends_on, ["a", "b>=2", "c", "d", "e"]);
        assert_eq!(
            p.list("Optional Deps"),
            ["x: for x things [installed]", "y: for y"]
        );
        assert_eq!(p.installed_size_bytes(), Some(1_572_864));
    }

    #[test]
    fn pacman_info_errors() {
        let e = parse_pacman_info("   stray\n").unwrap_err();
        assert_eq!(e.line, 1);
        let e = parse_pacman_info("Name : a\nVersion : 1\n\nno colon here\n").unwrap_err();
        assert_eq!(e.line, 4);
        let e = parse_pacman_info("Name : a\nVersion : 1\n\nDescription : x\n").unwrap_err();
        assert_eq!(e.line, 4);
        assert!(e.to_string().contains("without `Name`"), "{e}");
        let e = parse_pacman_info("Name : a\n").unwrap_err();
        assert!(e.to_string().contains("no `Version`"), "{e}");
        assert!(parse_pacman_info("").unwrap().is_empty());
        assert!(parse_pacman_info("\n\n").unwrap().is_empty());
    }

    #[test]
    fn sizes() {
        assert_eq!(parse_size("0.00 B"), Some(0));
        assert_eq!(parse_size("1.00 KiB"), Some(1024));
        assert_eq!(parse_size("2.50 GiB"), Some(2_684_354_560));
        assert_eq!(parse_size("1.00 TiB"), Some(1 << 40));
        assert_eq!(parse_size("12"), None);
        assert_eq!(parse_size("1.0 XB"), None);
        assert_eq!(parse_size("-1.0 B"), None);
    }

    #[test]
    fn flatpak_search() {
        let list = parse_flatpak_search(FLATPAK).unwrap();
        assert_eq!(list.len(), 3);
        let a = &list[0];
        assert_eq!(a.source, Source::Flathub);
        assert_eq!(a.name, "org.gnome.Calculator");
        assert_eq!(a.display_name.as_deref(), Some("Calculator"));
        assert_eq!(
            a.description,
            "Perform arithmetic, scientific or financial calculations"
        );
        assert_eq!(a.version, "47.1");
        assert_eq!(a.remotes, ["flathub"]);
        assert_eq!(list[1].remotes, ["flathub", "flathub-beta"]);
        assert_eq!(list[2].version, "");
    }

    #[test]
    fn flatpak_search_header_and_no_matches() {
        let text = "Application ID\tName\tDescription\tVersion\tRemotes\n\
                    org.mozilla.firefox\tFirefox\tFast, Private & Safe Web Browser\t133.0.3\tflathub\n";
        let list = parse_flatpak_search(text).unwrap();
        assert_eq!(list.len(), 1);
        assert_eq!(list[0].name, "org.mozilla.firefox");
        assert!(parse_flatpak_search("No matches found\n")
            .unwrap()
            .is_empty());
        assert!(parse_flatpak_search("").unwrap().is_empty());
    }

    #[test]
    fn flatpak_search_errors() {
        let e = parse_flatpak_search("org.a.B\tB\n").unwrap_err();
        assert!(
            e.to_string().contains("expected 5 tab-separated columns"),
            "{e}"
        );
        // Columns in another order: the first is not an application ID.
        let e =
            parse_flatpak_search("Calculator\torg.gnome.Calculator\td\t1\tflathub\n").unwrap_err();
        assert!(e.to_string().contains("first column"), "{e}");
        assert_eq!(e.line, 1);
    }

    #[test]
    fn aur_search() {
        let r = parse_aur(AUR_SEARCH).unwrap();
        assert_eq!(r.kind, AurKind::Search);
        assert_eq!(r.result_count, 3);
        assert_eq!(r.results.len(), 3);
        let paru = &r.results[0];
        assert_eq!(paru.name, "paru");
        assert_eq!(paru.package_base.as_deref(), Some("paru"));
        assert_eq!(paru.num_votes, 1042);
        assert_eq!(paru.out_of_date, None);
        assert_eq!(
            paru.url_path.as_deref(),
            Some("/cgit/aur.git/snapshot/paru.tar.gz")
        );
        assert!(paru.depends.is_empty());
        let orphan = &r.results[2];
        assert_eq!(orphan.maintainer, None);
        assert_eq!(orphan.out_of_date, Some(1_700_000_000));
        assert_eq!(orphan.description, None);
        let pkgs = parse_aur_packages(AUR_SEARCH).unwrap();
        assert_eq!(pkgs[0].source, Source::Aur);
        assert_eq!(pkgs[0].votes, Some(1042));
        assert_eq!(pkgs[2].description, "");
        assert_eq!(pkgs[2].maintainer, None);
        assert_eq!(pkgs[2].out_of_date, Some(1_700_000_000));
    }

    #[test]
    fn aur_multiinfo() {
        let r = parse_aur(AUR_INFO).unwrap();
        assert_eq!(r.kind, AurKind::Multiinfo);
        let p = &r.results[0];
        assert_eq!(p.name, "paru");
        assert_eq!(p.depends, ["git", "pacman"]);
        assert_eq!(p.make_depends, ["cargo"]);
        assert_eq!(
            p.opt_depends,
            ["bat", "devtools: build in chroot and downloading pkgbuilds"]
        );
        assert_eq!(p.license, ["GPL-3.0-or-later"]);
        assert_eq!(p.keywords, ["AUR", "helper", "wrapper"]);
        assert_eq!(p.first_submitted, Some(1_601_729_040));
        assert_eq!(p.submitter.as_deref(), Some("Morganamilo"));
    }

    #[test]
    fn aur_errors() {
        let e = parse_aur(
            r#"{"version":5,"type":"error","resultcount":0,"results":[],"error":"Too many package results."}"#,
        )
        .unwrap_err();
        assert!(
            matches!(&e, AurError::Rpc(m) if m == "Too many package results."),
            "{e:?}"
        );
        assert_eq!(
            e.to_string(),
            "the AUR refused the request: Too many package results."
        );
        // Errors about the version come with a null version.
        let e = parse_aur(r#"{"version":null,"type":"error","resultcount":0,"results":[],"error":"Invalid version specified."}"#)
            .unwrap_err();
        assert!(matches!(e, AurError::Rpc(_)));
        assert!(matches!(
            parse_aur("<html>502 Bad Gateway</html>"),
            Err(AurError::Json(_))
        ));
        assert!(matches!(
            parse_aur(r#"{"version":6,"type":"search","resultcount":0,"results":[]}"#),
            Err(AurError::Version(_))
        ));
        assert!(matches!(
            parse_aur(r#"{"version":5,"type":"suggest","resultcount":0,"results":[]}"#),
            Err(AurError::Type(_))
        ));
        // A result without a name is not an AUR package.
        assert!(matches!(
            parse_aur(
                r#"{"version":5,"type":"search","resultcount":1,"results":[{"Version":"1"}]}"#
            ),
            Err(AurError::Json(_))
        ));
        let empty =
            parse_aur(r#"{"version":5,"type":"multiinfo","resultcount":0,"results":[]}"#).unwrap();
        assert!(empty.results.is_empty());
    }

    #[test]
    fn packages_serialize_for_json() {
        let pkgs = parse_pacman_search(SS).unwrap();
        let v = serde_json::to_value(&pkgs).unwrap();
        assert_eq!(
            v[0]["source"],
            serde_json::json!({"kind": "repo", "repo": "kt"})
        );
        assert_eq!(v[0]["installed"], "1.2.3-1");
        let info = parse_pacman_info(SI).unwrap();
        let v = serde_json::to_value(&info[0]).unwrap();
        assert_eq!(v["depends_on"], serde_json::json!(["bash>=5", "coreutils"]));
        let aur = parse_aur(AUR_INFO).unwrap();
        let v = serde_json::to_value(&aur).unwrap();
        assert_eq!(v["kind"], "multiinfo");
        assert_eq!(
            v["results"][0]["make_depends"],
            serde_json::json!(["cargo"])
        );
    }

    fn arb_search_entry(
    ) -> impl Strategy<Value = (String, String, String, Vec<String>, Option<String>, String)> {
        (
            "[a-z][a-z0-9-]{0,8}",
            "[a-z0-9][a-z0-9@._+-]{0,15}",
            "([0-9]:)?[0-9]{1,3}(\\.[0-9]{1,3}){0,2}-[0-9]",
            prop::collection::vec("[a-z][a-z0-9-]{0,8}", 0..3),
            proptest::option::of(proptest::option::of("[0-9]{1,3}\\.[0-9]-[0-9]")),
            "[A-Za-z0-9 ,.&()-]{0,60}",
        )
            .prop_map(|(r, n, v, g, inst, d)| {
                let installed = inst.map(|i| i.unwrap_or_else(|| v.clone()));
                (r, n, v, g, installed, d.trim().to_string())
            })
    }

    proptest! {
        /// Printing packages the way pacman -Ss does and parsing them gives them back.
        #[test]
        fn prop_pacman_search_round_trip(entries in prop::collection::vec(arb_search_entry(), 0..8)) {
            let mut text = String::new();
            for (r, n, v, g, inst, d) in &entries {
                text.push_str(&format!("{r}/{n} {v}"));
                if !g.is_empty() {
                    text.push_str(&format!(" ({})", g.join(" ")));
                }
                match inst {
                    Some(i) if i == v => text.push_str(" [installed]"),
                    Some(i) => text.push_str(&format!(" [installed: {i}]")),
                    None => {}
                }
                text.push_str(&format!("\n    {d}\n"));
            }
            let list = parse_pacman_search(&text).unwrap();
            prop_assert_eq!(list.len(), entries.len());
            for (p, (r, n, v, g, inst, d)) in list.iter().zip(&entries) {
                prop_assert_eq!(&p.source, &Source::Repo(r.clone()));
                prop_assert_eq!(&p.name, n);
                prop_assert_eq!(&p.version, v);
                prop_assert_eq!(&p.groups, g);
                prop_assert_eq!(&p.installed, inst);
                let normalized = d.split(' ').filter(|w| !w.is_empty()).collect::<Vec<_>>().join(" ");
                let got = p.description.split(' ').filter(|w| !w.is_empty()).collect::<Vec<_>>().join(" ");
                prop_assert_eq!(got, normalized);
            }
        }

        /// Arbitrary text never panics any parser.
        #[test]
        fn prop_parsers_total(text in any::<String>()) {
            let _ = parse_pacman_search(&text);
            let _ = parse_pacman_query(&text);
            let _ = parse_pacman_info(&text);
            let _ = parse_flatpak_search(&text);
            let _ = parse_aur(&text);
        }

        /// -Si blocks printed with pacman's padding come back field for field.
        #[test]
        fn prop_pacman_info_round_trip(
            blocks in prop::collection::vec(
                ("[a-z][a-z0-9-]{0,10}", "[0-9]{1,2}\\.[0-9]-[0-9]", prop::collection::vec("[a-z][a-z0-9>=.-]{0,8}", 0..5)),
                1..5,
            )
        ) {
            let mut text = String::new();
            for (n, v, deps) in &blocks {
                let deps_text = if deps.is_empty() { "None".to_string() } else { deps.join("  ") };
                text.push_str(&format!(
                    "Repository      : extra\nName            : {n}\nVersion         : {v}\nDepends On      : {deps_text}\n\n"
                ));
            }
            let list = parse_pacman_info(&text).unwrap();
            prop_assert_eq!(list.len(), blocks.len());
            for (p, (n, v, deps)) in list.iter().zip(&blocks) {
                prop_assert_eq!(&p.name, n);
                prop_assert_eq!(&p.version, v);
                prop_assert_eq!(&p.depends_on, deps);
            }
        }
    }
}
