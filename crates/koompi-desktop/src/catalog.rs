//! The editions catalog: which desktops KOOMPI offers and what each one is made of.
//!
//! Editions are data. koompi-configs ships the catalog as TOML
//! (`/usr/share/koompi/configs/editions.toml`, from `configs/editions.toml`); this module
//! parses it from a `&str` and checks every value before anything uses it, so a broken
//! catalog ends in one line naming the edition and the key, never in a half-done install.
//!
//! ```toml
//! [[edition]]
//! id = "lite"                        # the command-line name
//! name = "KOOMPI Lite"
//! group = "koompi"                   # koompi | community | more (the menu's boxes)
//! summary = "Openbox"                # the menu's short text
//! description = "..."
//! packages = ["openbox", "tint2"]    # what `koompi install` gets
//! display-manager = "lightdm.service"
//! session = "openbox"                # the session file's name, without .desktop
//! seat = "logind"                    # logind | seatd: who grants the session its devices
//! services = []                      # further system units to enable
//! configs = ["openbox", "tint2"]     # config sets, below
//! target = "graphical"               # graphical | multi-user
//!
//! [config-set.openbox]
//! files = [{ src = "openbox/rc.xml", dest = ".config/openbox/rc.xml" }]
//! ```
//!
//! Paths are checked here without touching a disk: config sources are relative to the
//! configs directory, destinations relative to a home, and neither may climb out with `..`.
//! [`Catalog::check_sources`] is the one check that reads the configs directory.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Component, Path, PathBuf};

use serde::{Deserialize, Serialize};

/// Where koompi-configs installs the catalog.
pub const DEFAULT_PATH: &str = "/usr/share/koompi/configs/editions.toml";
/// greetd's unit: the display manager that needs a `session-command`.
pub const GREETD: &str = "greetd.service";
/// Where koompi-configs installs the configs the catalog names.
pub const CONFIGS_DIR: &str = "/usr/share/koompi/configs";

/// Why a catalog cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum CatalogError {
    #[error("cannot read the editions catalog {path}: {source}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// TOML that does not parse, or a key the catalog does not know.
    #[error("editions catalog, line {line}: {message}")]
    Syntax { line: usize, message: String },
    /// A value that parses but is wrong.
    #[error("editions catalog: {place}: {message}")]
    Invalid { place: String, message: String },
    /// An edition ID that is not in the catalog.
    #[error("no edition `{id}`; the editions are: {known}")]
    Unknown { id: String, known: String },
}

impl CatalogError {
    fn invalid(place: impl Into<String>, message: impl Into<String>) -> Self {
        CatalogError::Invalid {
            place: place.into(),
            message: message.into(),
        }
    }
}

/// The menu box an edition is shown in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Group {
    /// KOOMPI's own editions, with KOOMPI's configs.
    Koompi,
    /// The well-known desktops, shown on the menu's second line.
    Community,
    /// Behind the menu's "More" entry.
    More,
}

/// Who gives a graphical session access to the screen, keyboard and mouse.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "kebab-case")]
pub enum Seat {
    /// systemd-logind (always there on KOOMPI): nothing to install or enable.
    #[default]
    Logind,
    /// seatd: the `seatd` package and `seatd.service`, and the user in the `seat` group.
    Seatd,
}

/// The systemd target the machine boots into.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Target {
    #[serde(rename = "graphical")]
    Graphical,
    #[serde(rename = "multi-user")]
    MultiUser,
}

impl Target {
    /// The unit name, for `systemctl set-default`.
    pub fn unit(self) -> &'static str {
        match self {
            Target::Graphical => "graphical.target",
            Target::MultiUser => "multi-user.target",
        }
    }
}

/// One file of a config set: where it comes from, where it goes in a home.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConfigFile {
    /// Relative to the configs directory.
    pub src: PathBuf,
    /// Relative to the home directory.
    pub dest: PathBuf,
    /// Permission bits of the copy (0644 when absent; 0755 for scripts).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mode: Option<u32>,
}

/// The files one program needs in a home.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConfigSet {
    pub files: Vec<ConfigFile>,
}

/// One desktop the user can install.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct Edition {
    pub id: String,
    pub name: String,
    pub group: Group,
    pub summary: String,
    #[serde(default)]
    pub description: String,
    pub packages: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub display_manager: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub session: Option<String>,
    /// For greetd: the command its greeter (tuigreet) starts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub session_command: Option<String>,
    #[serde(default)]
    pub seat: Seat,
    #[serde(default)]
    pub services: Vec<String>,
    #[serde(default)]
    pub configs: Vec<String>,
    pub target: Target,
}

impl Edition {
    /// Every package the edition needs, the seat manager's included, each once.
    pub fn all_packages(&self) -> Vec<String> {
        let mut out: Vec<String> = Vec::new();
        let seat = match self.seat {
            Seat::Seatd => Some("seatd".to_string()),
            Seat::Logind => None,
        };
        for p in self.packages.iter().cloned().chain(seat) {
            if !out.contains(&p) {
                out.push(p);
            }
        }
        out
    }

    /// The system units to enable, besides the display manager.
    pub fn all_services(&self) -> Vec<String> {
        let mut out = self.services.clone();
        if self.seat == Seat::Seatd && !out.iter().any(|s| s == "seatd.service") {
            out.push("seatd.service".into());
        }
        out
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct RawCatalog {
    #[serde(default, rename = "edition")]
    editions: Vec<Edition>,
    #[serde(default)]
    config_set: BTreeMap<String, ConfigSet>,
}

/// The editions, in menu order, and the config sets they use.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Catalog {
    pub editions: Vec<Edition>,
    pub config_sets: BTreeMap<String, ConfigSet>,
}

impl Catalog {
    /// Parses and checks a catalog.
    pub fn parse(text: &str) -> Result<Catalog, CatalogError> {
        let raw: RawCatalog = toml::from_str(text).map_err(|e| syntax(text, &e))?;
        let catalog = Catalog {
            editions: raw.editions,
            config_sets: raw.config_set,
        };
        catalog.check()?;
        Ok(catalog)
    }

    /// Reads, parses and checks the catalog at `path`.
    pub fn load(path: &Path) -> Result<Catalog, CatalogError> {
        let text = std::fs::read_to_string(path).map_err(|source| CatalogError::Read {
            path: path.to_owned(),
            source,
        })?;
        Catalog::parse(&text)
    }

    /// The edition called `id`.
    pub fn edition(&self, id: &str) -> Result<&Edition, CatalogError> {
        self.editions
            .iter()
            .find(|e| e.id == id)
            .ok_or_else(|| CatalogError::Unknown {
                id: id.to_string(),
                known: self.ids().join(", "),
            })
    }

    /// The edition IDs in menu order.
    pub fn ids(&self) -> Vec<&str> {
        self.editions.iter().map(|e| e.id.as_str()).collect()
    }

    /// The files an edition puts into a home, in catalog order, each destination once.
    pub fn config_files(&self, edition: &Edition) -> Vec<&ConfigFile> {
        let mut seen = BTreeSet::new();
        edition
            .configs
            .iter()
            .filter_map(|name| self.config_sets.get(name))
            .flat_map(|set| set.files.iter())
            .filter(|f| seen.insert(f.dest.clone()))
            .collect()
    }

    /// Every value checked; the first problem, naming where it is.
    pub fn check(&self) -> Result<(), CatalogError> {
        if self.editions.is_empty() {
            return Err(CatalogError::invalid("catalog", "it lists no [[edition]]"));
        }
        let mut ids = BTreeSet::new();
        for (i, e) in self.editions.iter().enumerate() {
            let place = if e.id.is_empty() {
                format!("edition {}", i + 1)
            } else {
                format!("edition `{}`", e.id)
            };
            check_edition(self, e, &place)?;
            if !ids.insert(e.id.as_str()) {
                return Err(CatalogError::invalid(
                    place,
                    "its id is used by an earlier edition too",
                ));
            }
        }
        for (name, set) in &self.config_sets {
            let place = format!("config-set `{name}`");
            check_word(name).map_err(|m| CatalogError::invalid(&place, m))?;
            if set.files.is_empty() {
                return Err(CatalogError::invalid(place, "files is empty"));
            }
            let mut dests = BTreeSet::new();
            for f in &set.files {
                check_relative(&f.src)
                    .map_err(|m| CatalogError::invalid(&place, format!("src: {m}")))?;
                check_relative(&f.dest)
                    .map_err(|m| CatalogError::invalid(&place, format!("dest: {m}")))?;
                if let Some(mode) = f.mode {
                    if mode & !0o777 != 0 || mode & 0o600 != 0o600 || mode & 0o022 != 0 {
                        return Err(CatalogError::invalid(
                            &place,
                            format!(
                                "{}: mode {mode:o} must be readable and writable by the user \
                                 and not writable by others (such as 644 or 755)",
                                f.dest.display()
                            ),
                        ));
                    }
                }
                if !dests.insert(&f.dest) {
                    return Err(CatalogError::invalid(
                        &place,
                        format!("{} is a destination twice", f.dest.display()),
                    ));
                }
            }
        }
        Ok(())
    }

    /// Every config file the catalog names is a regular file under `configs_dir`.
    pub fn check_sources(&self, configs_dir: &Path) -> Result<(), CatalogError> {
        for (name, set) in &self.config_sets {
            for f in &set.files {
                let path = configs_dir.join(&f.src);
                let ok = std::fs::symlink_metadata(&path).is_ok_and(|m| m.is_file());
                if !ok {
                    return Err(CatalogError::invalid(
                        format!("config-set `{name}`"),
                        format!("{} is not a file", path.display()),
                    ));
                }
            }
        }
        Ok(())
    }
}

fn check_edition(catalog: &Catalog, e: &Edition, place: &str) -> Result<(), CatalogError> {
    let bad = |m: String| CatalogError::invalid(place, m);
    check_word(&e.id).map_err(|m| bad(format!("id: {m}")))?;
    if e.name.trim().is_empty() {
        return Err(bad("name is empty".into()));
    }
    if e.summary.trim().is_empty() {
        return Err(bad("summary is empty".into()));
    }
    if e.packages.is_empty() {
        return Err(bad("packages is empty".into()));
    }
    let mut seen = BTreeSet::new();
    for p in &e.packages {
        check_package(p).map_err(|m| bad(format!("packages: `{p}`: {m}")))?;
        if !seen.insert(p) {
            return Err(bad(format!("packages: `{p}` is listed twice")));
        }
    }
    for s in e.services.iter().chain(&e.display_manager) {
        check_unit(s).map_err(|m| bad(format!("`{s}`: {m}")))?;
    }
    match (e.target, &e.display_manager, &e.session) {
        (Target::Graphical, None, _) => {
            return Err(bad(
                "target is graphical but no display-manager logs the user in".into(),
            ))
        }
        (Target::Graphical, Some(_), None) => {
            return Err(bad(
                "target is graphical but no session names what the display manager starts".into(),
            ))
        }
        (Target::MultiUser, Some(_), _) => {
            return Err(bad(
                "a display-manager needs target = \"graphical\" (multi-user never starts it)"
                    .into(),
            ))
        }
        _ => {}
    }
    if let Some(s) = &e.session {
        check_word(s).map_err(|m| bad(format!("session: {m}")))?;
    }
    let greetd = e.display_manager.as_deref() == Some(GREETD);
    match &e.session_command {
        None if greetd => {
            return Err(bad(
                "greetd needs session-command: the command its greeter starts".into(),
            ))
        }
        Some(_) if !greetd => {
            return Err(bad(format!(
                "session-command is for {GREETD} only (other display managers list the sessions)"
            )))
        }
        Some(c) if c.trim().is_empty() || c.contains(['"', '\\', '\n']) => {
            return Err(bad(
                "session-command must be a plain command line without quotes or backslashes".into(),
            ))
        }
        _ => {}
    }
    for c in &e.configs {
        if !catalog.config_sets.contains_key(c) {
            return Err(bad(format!("configs: no [config-set.{c}] in the catalog")));
        }
    }
    Ok(())
}

/// An ID, config-set or session name: lower-case ASCII letters, digits and `-`, starting
/// with a letter.
fn check_word(s: &str) -> Result<(), String> {
    let mut chars = s.chars();
    match chars.next() {
        None => Err("is empty".into()),
        Some(c) if !c.is_ascii_lowercase() => Err(format!("`{s}` must start with a-z")),
        _ if chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-') => Ok(()),
        _ => Err(format!("`{s}` may hold only a-z, 0-9 and -")),
    }
}

/// A pacman package name: a-z, 0-9 and `@._+-`, not starting with `-` or `.`.
pub fn check_package(p: &str) -> Result<(), String> {
    if p.is_empty() {
        return Err("is empty".into());
    }
    if p.starts_with(['-', '.']) {
        return Err("must not start with - or .".into());
    }
    if !p
        .chars()
        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || "@._+-".contains(c))
    {
        return Err("a package name holds only a-z, 0-9 and @._+-".into());
    }
    Ok(())
}

/// A systemd service unit name: `NAME.service`, NAME of letters, digits and `:-_.\@`.
pub fn check_unit(s: &str) -> Result<(), String> {
    let Some(stem) = s.strip_suffix(".service") else {
        return Err("a unit here is a .service".into());
    };
    if stem.is_empty()
        || !stem
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || ":-_.\\@".contains(c))
    {
        return Err("not a valid unit name".into());
    }
    Ok(())
}

fn check_relative(p: &Path) -> Result<(), String> {
    if p.as_os_str().is_empty() {
        return Err("is empty".into());
    }
    for c in p.components() {
        match c {
            Component::Normal(_) => {}
            Component::CurDir => {}
            _ => {
                return Err(format!(
                    "{} must be a relative path without ..",
                    p.display()
                ))
            }
        }
    }
    Ok(())
}

/// A TOML error as (1-based line, the message on one line), for the catalog's and the
/// profile's one-line errors.
pub(crate) fn toml_error(text: &str, e: &toml::de::Error) -> (usize, String) {
    let message = e
        .message()
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect::<Vec<_>>()
        .join(" ");
    let line = e
        .span()
        .map(|s| text[..s.start.min(text.len())].matches('\n').count() + 1)
        .unwrap_or(0);
    (line, message)
}

fn syntax(text: &str, e: &toml::de::Error) -> CatalogError {
    let (line, message) = toml_error(text, e);
    CatalogError::Syntax { line, message }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MINI: &str = r#"
[[edition]]
id = "lite"
name = "KOOMPI Lite"
group = "koompi"
summary = "Openbox"
packages = ["openbox", "tint2"]
display-manager = "lightdm.service"
session = "openbox"
configs = ["openbox"]
target = "graphical"

[[edition]]
id = "terminal"
name = "KOOMPI Terminal"
group = "koompi"
summary = "Pure CLI"
packages = ["zellij"]
target = "multi-user"

[config-set.openbox]
files = [{ src = "openbox/rc.xml", dest = ".config/openbox/rc.xml" }]
"#;

    #[test]
    fn parses_the_small_catalog() {
        let c = Catalog::parse(MINI).expect("valid");
        assert_eq!(c.ids(), ["lite", "terminal"]);
        let lite = c.edition("lite").expect("lite");
        assert_eq!(lite.display_manager.as_deref(), Some("lightdm.service"));
        assert_eq!(c.config_files(lite).len(), 1);
        let err = c.edition("kde").expect_err("unknown");
        assert_eq!(
            err.to_string(),
            "no edition `kde`; the editions are: lite, terminal"
        );
    }

    fn err_of(text: &str) -> String {
        Catalog::parse(text).expect_err("invalid").to_string()
    }

    #[test]
    fn refuses_with_one_line_naming_the_place() {
        let cases: &[(&str, &str, &str)] = &[
            (
                "id = \"lite\"",
                "id = \"Lite\"",
                "id: `Lite` must start with a-z",
            ),
            (
                "packages = [\"openbox\", \"tint2\"]",
                "packages = [\"openbox\", \"openbox\"]",
                "`openbox` is listed twice",
            ),
            (
                "packages = [\"openbox\", \"tint2\"]",
                "packages = [\"-rf\"]",
                "must not start with - or .",
            ),
            (
                "display-manager = \"lightdm.service\"",
                "display-manager = \"lightdm\"",
                "a unit here is a .service",
            ),
            (
                "configs = [\"openbox\"]",
                "configs = [\"tint2\"]",
                "no [config-set.tint2]",
            ),
            (
                "dest = \".config/openbox/rc.xml\"",
                "dest = \"../../etc/passwd\"",
                "relative path without ..",
            ),
            (
                "dest = \".config/openbox/rc.xml\"",
                "dest = \"/etc/passwd\"",
                "relative path without ..",
            ),
            ("session = \"openbox\"\n", "", "no session names"),
            (
                "target = \"graphical\"",
                "target = \"multi-user\"",
                "needs target",
            ),
            ("group = \"koompi\"", "group = \"kompi\"", "line 5"),
            (
                "summary = \"Openbox\"",
                "sumary = \"Openbox\"",
                "unknown field `sumary`",
            ),
        ];
        for (from, to, want) in cases {
            assert!(MINI.contains(from), "{from}");
            let text = MINI.replacen(from, to, 1);
            let e = err_of(&text);
            assert!(e.contains(want), "{to}: {e}");
            assert!(!e.contains('\n'), "one line: {e}");
        }
        let dup = format!("{MINI}\n[[edition]]\nid = \"lite\"\nname = \"x\"\ngroup = \"more\"\nsummary = \"x\"\npackages = [\"x\"]\ntarget = \"multi-user\"\n");
        assert!(err_of(&dup).contains("used by an earlier edition"));
    }

    #[test]
    fn seatd_brings_its_package_and_service() {
        let text = MINI.replacen(
            "session = \"openbox\"",
            "session = \"openbox\"\nseat = \"seatd\"",
            1,
        );
        let c = Catalog::parse(&text).expect("valid");
        let lite = c.edition("lite").expect("lite");
        assert_eq!(lite.all_packages(), ["openbox", "tint2", "seatd"]);
        assert_eq!(lite.all_services(), ["seatd.service"]);
    }

    #[test]
    fn the_shipped_catalog_is_valid_and_its_files_exist() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../configs");
        let c = Catalog::load(&dir.join("editions.toml")).expect("the shipped catalog");
        c.check_sources(&dir).expect("every config file shipped");
        assert_eq!(
            c.ids(),
            [
                "tiling", "terminal", "lite", "kde", "gnome", "xfce", "cinnamon", "mate", "i3",
                "sway", "hyprland"
            ]
        );
        for e in &c.editions {
            let pkgs = e.all_packages();
            for need in ["fcitx5", "fcitx5-m17n"] {
                assert!(
                    pkgs.iter().any(|p| p == need),
                    "{}: Khmer input: {need}",
                    e.id
                );
            }
        }
    }
}
