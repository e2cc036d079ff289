//! The declarative profile: what a machine or a user should have, in one TOML file.
//!
//! ```toml
//! # ~/.config/koompi/profile.toml, or /etc/koompi/profile.toml for the whole machine
//! edition = "lite"                      # its packages, services and configs
//! packages = ["libreoffice-fresh", "gimp"]   # further packages
//! config-sets = ["neovim"]              # further config sets from the catalog
//! services = ["cups.service"]           # further system units to enable
//! ```
//!
//! `koompi-apply-config --profile` turns it into a [`Plan`] with [`plan`], a pure function
//! of the profile, the catalog and what [`observe`] saw (installed packages from `pacman
//! -Qq` and `pacman -Qg`, units from `systemctl is-enabled`), so only what differs is done:
//! missing packages through `koompi install --noconfirm` (which takes a snapshot first),
//! units through `systemctl enable` (never `--now`), and the configs through the applier,
//! which itself changes only what differs. The edition's display manager is left to
//! `koompi-desktop`, which switches display managers safely; the plan says when it is not
//! enabled.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use koompi_core::cmd::{Cmd, CmdError, Runner};

use crate::catalog::{check_package, check_unit, Catalog, CatalogError, ConfigFile};

/// The machine's profile.
pub const SYSTEM_PATH: &str = "/etc/koompi/profile.toml";
/// A user's profile, relative to the home (looked for first).
pub const USER_PATH: &str = ".config/koompi/profile.toml";

/// A profile.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct Profile {
    pub edition: String,
    #[serde(default)]
    pub packages: Vec<String>,
    #[serde(default)]
    pub config_sets: Vec<String>,
    #[serde(default)]
    pub services: Vec<String>,
}

/// Why a profile cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum ProfileError {
    #[error("cannot read the profile {path}: {source}")]
    Read {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("profile, line {line}: {message}")]
    Syntax { line: usize, message: String },
    #[error("profile: {0}")]
    Invalid(String),
    #[error("profile: {0}")]
    Catalog(#[from] CatalogError),
    #[error("cannot see what is installed: {0}")]
    Observe(#[source] CmdError),
    #[error("{0}")]
    Run(String),
}

impl Profile {
    /// Parses a profile (unknown keys refused, with the line).
    pub fn parse(text: &str) -> Result<Profile, ProfileError> {
        let p: Profile = toml::from_str(text).map_err(|e| {
            let (line, message) = crate::catalog::toml_error(text, &e);
            ProfileError::Syntax { line, message }
        })?;
        for pkg in &p.packages {
            check_package(pkg)
                .map_err(|m| ProfileError::Invalid(format!("packages: `{pkg}`: {m}")))?;
        }
        for unit in &p.services {
            check_unit(unit)
                .map_err(|m| ProfileError::Invalid(format!("services: `{unit}`: {m}")))?;
        }
        Ok(p)
    }

    /// Reads and parses the profile at `path`.
    pub fn load(path: &Path) -> Result<Profile, ProfileError> {
        let text = std::fs::read_to_string(path).map_err(|source| ProfileError::Read {
            path: path.display().to_string(),
            source,
        })?;
        Profile::parse(&text)
    }

    /// The profile that counts for `home`: the user's, else the machine's.
    pub fn find(home: &Path) -> Option<PathBuf> {
        [home.join(USER_PATH), PathBuf::from(SYSTEM_PATH)]
            .into_iter()
            .find(|p| p.is_file())
    }
}

/// What the system has now.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Observed {
    /// Installed package names, and the names of groups with an installed member.
    pub installed: BTreeSet<String>,
    /// Units `systemctl is-enabled` calls enabled (or static, alias, ...: nothing to do).
    pub enabled: BTreeSet<String>,
}

/// The names in `pacman -Qq`'s output.
pub fn parse_pacman_qq(out: &str) -> BTreeSet<String> {
    out.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(String::from)
        .collect()
}

/// The group names in `pacman -Qg`'s output (`GROUP PACKAGE` per line).
pub fn parse_pacman_qg(out: &str) -> BTreeSet<String> {
    out.lines()
        .filter_map(|l| l.split_whitespace().next())
        .map(String::from)
        .collect()
}

/// Asks pacman and systemctl about `units` (queries only; `runner` should be a real one,
/// also for a dry run).
pub fn observe(runner: &Runner, units: &[String]) -> Result<Observed, ProfileError> {
    let mut o = Observed::default();
    let q = Cmd::new("pacman")
        .arg("-Qq")
        .run(runner)
        .map_err(ProfileError::Observe)?;
    o.installed = parse_pacman_qq(&q.stdout);
    // -Qg exits 1 when no installed package is in a group.
    match Cmd::new("pacman").arg("-Qg").run(runner) {
        Ok(g) => o.installed.extend(parse_pacman_qg(&g.stdout)),
        Err(CmdError::Failed { code: Some(1), .. }) => {}
        Err(e) => return Err(ProfileError::Observe(e)),
    }
    for unit in units {
        match Cmd::new("systemctl")
            .args(["is-enabled", "--", unit])
            .run(runner)
        {
            Ok(_) => {
                o.enabled.insert(unit.clone());
            }
            // Disabled, masked or unknown: `systemctl enable` says which.
            Err(CmdError::Failed { code: Some(_), .. }) => {}
            Err(e) => return Err(ProfileError::Observe(e)),
        }
    }
    Ok(o)
}

/// What applying a profile does.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Plan {
    pub edition: String,
    /// The config sets to apply: the edition's, then the profile's further ones.
    pub config_sets: Vec<String>,
    /// Packages to install (the edition's and the profile's that are missing).
    pub install: Vec<String>,
    /// Units to enable.
    pub enable: Vec<String>,
    /// Said when the edition's display manager is not enabled.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

impl Plan {
    /// The units [`observe`] must ask about for `profile`.
    pub fn units(profile: &Profile, catalog: &Catalog) -> Result<Vec<String>, ProfileError> {
        let e = catalog.edition(&profile.edition)?;
        let mut out = e.all_services();
        out.extend(profile.services.iter().cloned());
        out.extend(e.display_manager.iter().cloned());
        dedupe(&mut out);
        Ok(out)
    }

    /// The configs of the plan's sets, each destination once.
    pub fn config_files<'c>(&self, catalog: &'c Catalog) -> Vec<&'c ConfigFile> {
        let mut seen = BTreeSet::new();
        self.config_sets
            .iter()
            .filter_map(|s| catalog.config_sets.get(s))
            .flat_map(|s| s.files.iter())
            .filter(|f| seen.insert(f.dest.clone()))
            .collect()
    }

    /// What is applied, in words: "lite" or "lite + neovim".
    pub fn applied(&self, catalog: &Catalog) -> String {
        let mut s = self.edition.clone();
        let own: Vec<String> = catalog
            .edition(&self.edition)
            .map(|e| e.configs.clone())
            .unwrap_or_default();
        for set in self.config_sets.iter().filter(|c| !own.contains(c)) {
            s.push_str(" + ");
            s.push_str(set);
        }
        s
    }
}

fn dedupe(v: &mut Vec<String>) {
    let mut seen = BTreeSet::new();
    v.retain(|x| seen.insert(x.clone()));
}

/// The plan for `profile`, given what the system has.
pub fn plan(profile: &Profile, catalog: &Catalog, seen: &Observed) -> Result<Plan, ProfileError> {
    let e = catalog.edition(&profile.edition)?;
    for set in &profile.config_sets {
        if !catalog.config_sets.contains_key(set) {
            let known: Vec<&str> = catalog.config_sets.keys().map(String::as_str).collect();
            return Err(ProfileError::Invalid(format!(
                "config-sets: no `{set}` in the catalog; there are: {}",
                known.join(", ")
            )));
        }
    }
    let mut sets = e.configs.clone();
    sets.extend(profile.config_sets.iter().cloned());
    dedupe(&mut sets);
    let mut install = e.all_packages();
    install.extend(profile.packages.iter().cloned());
    dedupe(&mut install);
    install.retain(|p| !seen.installed.contains(p));
    let mut enable = e.all_services();
    enable.extend(profile.services.iter().cloned());
    dedupe(&mut enable);
    enable.retain(|u| !seen.enabled.contains(u));
    let note = e
        .display_manager
        .as_ref()
        .filter(|dm| !seen.enabled.contains(*dm))
        .map(|dm| {
            format!(
                "{dm} (the {} display manager) is not enabled: `koompi-desktop install {}` switches to it",
                e.name, e.id
            )
        });
    Ok(Plan {
        edition: e.id.clone(),
        config_sets: sets,
        install,
        enable,
        note,
    })
}

/// Installs and enables what `plan` says, through `runner` (a recording runner records
/// the commands). `quiet_stdout`: the programs' output goes to stderr (for `--json`).
/// Returns the command lines run.
pub fn execute(
    plan: &Plan,
    runner: &Runner,
    quiet_stdout: bool,
) -> Result<Vec<String>, ProfileError> {
    let mut cmds = Vec::new();
    if !plan.install.is_empty() {
        let mut c = Cmd::new("koompi")
            .args(["install", "--noconfirm"])
            .args(&plan.install);
        if quiet_stdout {
            c = c.stdout_to_stderr();
        }
        let code = c
            .run_interactive(runner)
            .map_err(|e| ProfileError::Run(e.to_string()))?;
        if code != 0 {
            return Err(ProfileError::Run(format!(
                "`{}` failed (exit {code}); nothing else was changed",
                c.cmdline()
            )));
        }
        cmds.push(c.cmdline());
    }
    for unit in &plan.enable {
        let c = Cmd::new("systemctl").args(["enable", "--", unit]);
        c.run(runner)
            .map_err(|e| ProfileError::Run(e.to_string()))?;
        cmds.push(c.cmdline());
    }
    Ok(cmds)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn catalog() -> Catalog {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../configs");
        Catalog::load(&dir.join("editions.toml")).expect("catalog")
    }

    const EXAMPLE: &str = r#"
edition = "lite"
packages = ["gimp", "openbox"]
config-sets = ["neovim"]
services = ["cups.service"]
"#;

    #[test]
    fn parses_and_refuses_with_the_line() {
        let p = Profile::parse(EXAMPLE).expect("ok");
        assert_eq!(p.edition, "lite");
        assert_eq!(p.config_sets, ["neovim"]);
        let e = Profile::parse("edition = \"lite\"\npackage = [\"x\"]\n").expect_err("unknown");
        assert!(e.to_string().starts_with("profile, line 2:"), "{e}");
        assert!(e.to_string().contains("unknown field `package`"), "{e}");
        let e = Profile::parse("edition = \"lite\"\npackages = [\"-rf\"]\n").expect_err("bad");
        assert_eq!(
            e.to_string(),
            "profile: packages: `-rf`: must not start with - or ."
        );
        let e = Profile::parse("edition = \"lite\"\nservices = [\"cups\"]\n").expect_err("bad");
        assert!(e.to_string().contains("a unit here is a .service"), "{e}");
        let e = Profile::parse("packages = []\n").expect_err("no edition");
        assert!(e.to_string().contains("missing field `edition`"), "{e}");
        assert!(!e.to_string().contains('\n'));
    }

    #[test]
    fn the_plan_holds_only_what_differs() {
        let c = catalog();
        let p = Profile::parse(EXAMPLE).expect("ok");
        let lite = c.edition("lite").expect("lite");
        // Nothing installed: every package, every unit.
        let none = plan(&p, &c, &Observed::default()).expect("plan");
        let mut want = lite.all_packages();
        want.push("gimp".into());
        assert_eq!(none.install, want);
        assert_eq!(none.enable, ["cups.service"]);
        assert_eq!(none.config_sets, ["openbox", "tint2", "rofi", "neovim"]);
        assert_eq!(none.applied(&c), "lite + neovim");
        assert!(none
            .note
            .as_deref()
            .is_some_and(|n| n.contains("koompi-desktop install lite")));
        assert_eq!(
            Plan::units(&p, &c).expect("units"),
            ["cups.service", "lightdm.service"]
        );
        // Everything there: nothing to do.
        let all = Observed {
            installed: want.iter().cloned().collect(),
            enabled: ["cups.service", "lightdm.service"].map(String::from).into(),
        };
        let done = plan(&p, &c, &all).expect("plan");
        assert!(done.install.is_empty() && done.enable.is_empty() && done.note.is_none());
        // A group counts when pacman -Qg names it.
        let g = Profile::parse("edition = \"gnome\"\n").expect("ok");
        let mut seen = Observed::default();
        seen.installed
            .extend(parse_pacman_qg("gnome gdm\ngnome nautilus\n"));
        assert!(!plan(&g, &c, &seen)
            .expect("plan")
            .install
            .contains(&"gnome".into()));
        // Unknown edition or set: one line.
        let e = plan(&Profile::parse("edition = \"kd\"").expect("ok"), &c, &all).expect_err("x");
        assert!(e.to_string().starts_with("profile: no edition `kd`"), "{e}");
        let e = plan(
            &Profile::parse("edition = \"lite\"\nconfig-sets = [\"vim\"]").expect("ok"),
            &c,
            &all,
        )
        .expect_err("x");
        assert!(
            e.to_string()
                .contains("config-sets: no `vim` in the catalog"),
            "{e}"
        );
    }

    #[test]
    fn execute_records_the_commands() {
        let c = catalog();
        let p = Profile::parse(EXAMPLE).expect("ok");
        let pl = plan(&p, &c, &Observed::default()).expect("plan");
        let r = Runner::recording();
        let cmds = execute(&pl, &r, false).expect("run");
        assert_eq!(cmds, r.recorded());
        assert!(
            cmds[0].starts_with("koompi install --noconfirm openbox tint2"),
            "{cmds:?}"
        );
        assert!(cmds[0].ends_with(" gimp"), "{cmds:?}");
        assert_eq!(cmds[1], "systemctl enable -- cups.service");
        let empty = Plan {
            install: vec![],
            enable: vec![],
            ..pl
        };
        let r = Runner::recording();
        assert!(execute(&empty, &r, false).expect("run").is_empty());
        assert!(r.recorded().is_empty());
    }

    #[test]
    fn pacman_outputs() {
        assert_eq!(
            parse_pacman_qq("a\nb\n\n"),
            ["a", "b"].map(String::from).into()
        );
        assert_eq!(
            parse_pacman_qg("xfce4 thunar\nxfce4 xfwm4\nbase-devel gcc\n"),
            ["base-devel", "xfce4"].map(String::from).into()
        );
    }
}
