//! Installing and removing an edition: the plan (pure) and the run.
//!
//! [`plan_install`] and [`plan_remove`] decide from what was observed ([`Observed`]: the
//! installed packages, the enabled display manager, the default target, the state file,
//! the GPU) what will change; `--dry-run` prints exactly that, and [`System::install`] /
//! [`System::remove`] run it in an order where a failure leaves a bootable system:
//!
//! install: lock → packages (`koompi install`, which takes the snapshot first; a failure
//! stops here with the display manager untouched) → the state record (with what was there
//! before) → services → display manager (an atomic switch, [`crate::dm`]) → default target
//! → configs (`/etc/skel`, and the invoking user's home);
//!
//! remove: lock → display manager back to the one before (or none) → default target →
//! packages (`koompi remove`, snapshot first) → the record forgotten.
//!
//! Running either again after an interruption finishes it: every step checks what is
//! already done.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use koompi_packages::backend::Backends;
use koompi_packages::guard::SnapshotOutcome;
use koompi_packages::ops::{self, OpsError};
use koompi_packages::plan::Only;
use serde::Serialize;

use crate::catalog::{Catalog, Edition, Target};
use crate::dm::{DmError, Systemd};
use crate::nvidia::Advice;
use crate::state::{Installed, State, StateError, LOCK_PATH};

/// Why an install or removal stopped.
#[derive(Debug, thiserror::Error)]
pub enum DesktopError {
    #[error(transparent)]
    Catalog(#[from] crate::catalog::CatalogError),
    #[error(transparent)]
    State(#[from] StateError),
    #[error(transparent)]
    Dm(#[from] DmError),
    #[error(transparent)]
    Packages(#[from] OpsError),
    #[error("{what} failed (exit code {code}); nothing else was changed: the display manager and the default target are as they were")]
    PackageStep { what: String, code: i32 },
    #[error("`{0}` is not installed by koompi-desktop (see `koompi-desktop status`)")]
    NotInstalled(String),
    #[error("another koompi-desktop is changing this system; wait for it to finish")]
    Busy,
    #[error("cannot take the lock {path}: {source}")]
    Lock {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot read the installed packages: {0}")]
    Query(String),
    #[error("cannot write {path}: {source}")]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{0} is not a regular file; move it away and run this again")]
    NotAFile(PathBuf),
    #[error(transparent)]
    Apply(#[from] crate::apply::ApplyError),
    #[error("{0} config file(s) could not be written (see above); the edition is installed: run `koompi-apply-config` again once the cause is fixed")]
    ConfigsFailed(usize),
}

/// What the system is now.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Observed {
    pub installed: BTreeSet<String>,
    pub display_manager: Option<String>,
    pub default_target: Option<String>,
    /// The display-manager units whose files exist.
    pub units: BTreeSet<String>,
    pub state: State,
    pub nvidia: Option<Advice>,
}

/// A change from one value to another.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Change<T> {
    pub from: Option<String>,
    pub to: T,
}

/// What `install EDITION` will do.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub struct InstallPlan {
    pub edition: String,
    pub name: String,
    /// Packages `koompi install` gets (those not installed yet).
    pub install: Vec<String>,
    /// The edition's packages already installed.
    pub present: Vec<String>,
    /// System units enabled besides the display manager.
    pub services: Vec<String>,
    /// The display manager switch, when one is needed.
    pub display_manager: Option<Change<String>>,
    /// The default target change, when one is needed.
    pub target: Option<Change<String>>,
    /// Files put into /etc/skel (for new users) and the user's home.
    pub configs: Vec<PathBuf>,
    /// System files written (relative to the root), such as greetd's configuration.
    pub system_files: Vec<SystemFile>,
    /// The NVIDIA advice, when there is an NVIDIA GPU.
    pub nvidia: Option<Advice>,
    /// The driver package, when the user said yes to it (part of `install`).
    pub driver: Option<String>,
}

impl InstallPlan {
    /// Whether running it would change nothing.
    pub fn is_empty(&self) -> bool {
        self.install.is_empty() && self.display_manager.is_none() && self.target.is_none()
    }
}

/// A system file an edition writes, with its content.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SystemFile {
    /// Relative to the root.
    pub path: PathBuf,
    #[serde(skip)]
    pub content: String,
}

/// Where greetd reads its configuration, relative to the root.
pub const GREETD_CONFIG: &str = "etc/greetd/config.toml";

/// greetd's configuration: tuigreet on the first console, starting `command`.
pub fn greetd_config(command: &str) -> String {
    format!(
        "# Written by koompi-desktop: greetd shows tuigreet, which starts {command}.\n\
         # The user's previous login and session are remembered. An earlier version of this\n\
         # file is kept as config.toml.koompi-orig.\n\
         [terminal]\n\
         vt = 1\n\
         \n\
         [default_session]\n\
         command = \"tuigreet --time --remember --remember-session --asterisks --cmd {command}\"\n\
         user = \"greeter\"\n"
    )
}

/// What `remove EDITION` will do.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub struct RemovePlan {
    pub edition: String,
    pub name: String,
    /// Packages `koompi remove` takes away (added by this edition's install, still
    /// installed, and not part of another installed edition).
    pub remove: Vec<String>,
    /// Packages kept because another installed edition has them.
    pub kept: Vec<String>,
    /// The display manager after it (`to: None`: none).
    pub display_manager: Option<Change<Option<String>>>,
    pub target: Option<Change<String>>,
}

/// Decides an install.
pub fn plan_install(
    catalog: &Catalog,
    edition: &Edition,
    seen: &Observed,
    accept_driver: bool,
) -> InstallPlan {
    let mut wanted = edition.all_packages();
    let driver = match (&seen.nvidia, accept_driver, edition.target) {
        (Some(Advice::Offer { package, .. }), true, Target::Graphical) => Some(package.clone()),
        _ => None,
    };
    wanted.extend(driver.clone());
    let (present, install): (Vec<String>, Vec<String>) =
        wanted.into_iter().partition(|p| seen.installed.contains(p));
    let display_manager = match &edition.display_manager {
        Some(dm) if seen.display_manager.as_ref() != Some(dm) => Some(Change {
            from: seen.display_manager.clone(),
            to: dm.clone(),
        }),
        _ => None,
    };
    // A console edition does not take the graphical login away from an installed desktop.
    let target = match edition.target {
        Target::Graphical => Some(Target::Graphical.unit().to_string()),
        Target::MultiUser if seen.display_manager.is_none() => {
            Some(Target::MultiUser.unit().to_string())
        }
        Target::MultiUser => None,
    }
    .filter(|t| seen.default_target.as_ref() != Some(t))
    .map(|to| Change {
        from: seen.default_target.clone(),
        to,
    });
    InstallPlan {
        edition: edition.id.clone(),
        name: edition.name.clone(),
        install,
        present,
        services: edition.all_services(),
        display_manager,
        target,
        configs: catalog
            .config_files(edition)
            .into_iter()
            .map(|f| f.dest.clone())
            .collect(),
        system_files: edition
            .session_command
            .iter()
            .map(|c| SystemFile {
                path: PathBuf::from(GREETD_CONFIG),
                content: greetd_config(c),
            })
            .collect(),
        nvidia: seen.nvidia.clone(),
        driver,
    }
}

/// Decides a removal.
pub fn plan_remove(
    catalog: &Catalog,
    edition: &Edition,
    seen: &Observed,
) -> Result<RemovePlan, DesktopError> {
    let record = seen
        .state
        .get(&edition.id)
        .ok_or_else(|| DesktopError::NotInstalled(edition.id.clone()))?;
    let others: Vec<&Edition> = seen
        .state
        .editions
        .iter()
        .filter(|r| r.id != edition.id)
        .filter_map(|r| catalog.edition(&r.id).ok())
        .collect();
    let needed_elsewhere: BTreeSet<String> = others.iter().flat_map(|e| e.all_packages()).collect();
    let (kept, remove): (Vec<String>, Vec<String>) = record
        .added_packages
        .iter()
        .filter(|p| seen.installed.contains(*p))
        .cloned()
        .partition(|p| needed_elsewhere.contains(p));

    let mine = edition.display_manager.as_ref();
    // It was the display manager before this edition came: it stays.
    let was_there = record.previous_display_manager.as_ref() == mine;
    let display_manager = if mine.is_some() && seen.display_manager.as_ref() == mine && !was_there {
        let usable = |u: &String| seen.units.contains(u) && Some(u) != mine;
        let back = record
            .previous_display_manager
            .clone()
            .filter(usable)
            .or_else(|| {
                // The newest other installed edition's display manager.
                seen.state
                    .editions
                    .iter()
                    .rev()
                    .filter(|r| r.id != edition.id)
                    .filter_map(|r| catalog.edition(&r.id).ok())
                    .filter_map(|e| e.display_manager.clone())
                    .find(usable)
            });
        // Another installed edition with the same display manager keeps it.
        let shared = others.iter().any(|e| e.display_manager.as_ref() == mine);
        (!shared).then(|| Change {
            from: seen.display_manager.clone(),
            to: back,
        })
    } else {
        None
    };
    let graphical_after = match &display_manager {
        Some(c) => c.to.is_some(),
        None => seen.display_manager.is_some(),
    };
    let want_target = if graphical_after {
        Target::Graphical.unit()
    } else {
        Target::MultiUser.unit()
    };
    let target = (seen.default_target.as_deref() != Some(want_target)).then(|| Change {
        from: seen.default_target.clone(),
        to: want_target.to_string(),
    });
    Ok(RemovePlan {
        edition: edition.id.clone(),
        name: edition.name.clone(),
        remove,
        kept,
        display_manager,
        target,
    })
}

/// The system koompi-desktop changes: the running one or one mounted at `root`.
#[derive(Debug, Clone)]
pub struct System {
    pub root: PathBuf,
    pub backends: Backends,
    pub systemd: Systemd,
}

impl System {
    /// Looks at the system: packages, display manager, target, state, GPU.
    pub fn observe(&self, catalog: &Catalog) -> Result<Observed, DesktopError> {
        let installed = self
            .backends
            .installed(&[])
            .map_err(|e| DesktopError::Query(e.to_string()))?
            .into_iter()
            .map(|p| p.name)
            .collect();
        let state = State::load(&self.root)?;
        let mut units = BTreeSet::new();
        let candidates = catalog
            .editions
            .iter()
            .filter_map(|e| e.display_manager.clone())
            .chain(
                state
                    .editions
                    .iter()
                    .filter_map(|r| r.previous_display_manager.clone()),
            );
        for u in candidates {
            if self.systemd.has_unit(&u) {
                units.insert(u);
            }
        }
        let sysfs = self.root.join("sys/bus/pci/devices");
        let nvidia = crate::nvidia::advise(&crate::nvidia::scan(&sysfs));
        Ok(Observed {
            installed,
            display_manager: self.systemd.current()?,
            default_target: self.systemd.default_target()?,
            units,
            state,
            nvidia,
        })
    }

    fn lock(&self) -> Result<koompi_core::fsutil::Lock, DesktopError> {
        let path = self.root.join(LOCK_PATH);
        match koompi_core::fsutil::try_lock(&path) {
            Ok(Some(l)) => Ok(l),
            Ok(None) => Err(DesktopError::Busy),
            Err(source) => Err(DesktopError::Lock { path, source }),
        }
    }

    /// Runs an install plan (see the module's order). `seen` is what the plan was made from.
    pub fn install(
        &self,
        plan: &InstallPlan,
        seen: &Observed,
        progress: &mut dyn FnMut(&str),
    ) -> Result<(), DesktopError> {
        let _lock = self.lock()?;
        if !plan.install.is_empty() {
            let resolved = ops::resolve(&self.backends, &plan.install, Only::Any)?;
            let change = ops::install(&self.backends, &resolved, true)?;
            progress(&format!(
                "installing {} package(s) with koompi install: {}",
                plan.install.len(),
                plan.install.join(" ")
            ));
            match &change.snapshot {
                Some(SnapshotOutcome::Taken(n)) => {
                    progress(&format!("snapshot {n} taken before the install"))
                }
                Some(SnapshotOutcome::Skipped(why)) => progress(&format!("note: {why}")),
                Some(SnapshotOutcome::SnapPac(_)) | None => {}
            }
            let code = change.run()?;
            if code != 0 {
                return Err(DesktopError::PackageStep {
                    what: "koompi install".into(),
                    code,
                });
            }
        }
        for f in &plan.system_files {
            progress(&format!("writing /{}", f.path.display()));
            write_system_file(&self.root, f)?;
        }
        let mut state = State::load(&self.root)?;
        state.record(Installed {
            id: plan.edition.clone(),
            installed_at: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
            added_packages: plan.install.clone(),
            previous_display_manager: seen.display_manager.clone(),
            previous_target: seen.default_target.clone(),
        });
        state.save(&self.root)?;
        for s in &plan.services {
            progress(&format!("enabling {s}"));
            self.systemd.enable(s)?;
        }
        if let Some(c) = &plan.display_manager {
            progress(&format!(
                "display manager: {} -> {} (at the next boot; the running session stays)",
                c.from.as_deref().unwrap_or("none"),
                c.to
            ));
            self.systemd.switch(Some(&c.to))?;
        }
        if let Some(t) = &plan.target {
            progress(&format!("boot target: {}", t.to));
            self.systemd.set_default(&t.to)?;
        }
        Ok(())
    }

    /// Runs a removal plan (see the module's order).
    pub fn remove(
        &self,
        plan: &RemovePlan,
        progress: &mut dyn FnMut(&str),
    ) -> Result<(), DesktopError> {
        let _lock = self.lock()?;
        if let Some(c) = &plan.display_manager {
            progress(&format!(
                "display manager: {} -> {}",
                c.from.as_deref().unwrap_or("none"),
                c.to.as_deref().unwrap_or("none")
            ));
            self.systemd.switch(c.to.as_deref())?;
        }
        if let Some(t) = &plan.target {
            progress(&format!("boot target: {}", t.to));
            self.systemd.set_default(&t.to)?;
        }
        if !plan.remove.is_empty() {
            progress(&format!(
                "removing {} package(s) with koompi remove: {}",
                plan.remove.len(),
                plan.remove.join(" ")
            ));
            let change = ops::remove(&self.backends, &plan.remove)?;
            let code = change.run()?;
            if code != 0 {
                return Err(DesktopError::PackageStep {
                    what: "koompi remove".into(),
                    code,
                });
            }
        }
        let mut state = State::load(&self.root)?;
        state.forget(&plan.edition);
        state.save(&self.root)?;
        Ok(())
    }
}

/// Writes `f` under `root` atomically; a different file already there is kept once as
/// `NAME.koompi-orig` (never overwritten, so it stays the package's original).
fn write_system_file(root: &Path, f: &SystemFile) -> Result<(), DesktopError> {
    let path = root.join(&f.path);
    let io = |source| DesktopError::Write {
        path: path.clone(),
        source,
    };
    let meta = std::fs::symlink_metadata(&path);
    if meta.as_ref().is_ok_and(|m| !m.is_file()) {
        return Err(DesktopError::NotAFile(path));
    }
    if meta.is_ok() {
        let old = std::fs::read(&path).map_err(io)?;
        if old == f.content.as_bytes() {
            return Ok(());
        }
        let mut orig = path.clone().into_os_string();
        orig.push(".koompi-orig");
        let orig = PathBuf::from(orig);
        if std::fs::symlink_metadata(&orig).is_err() {
            koompi_core::fsutil::write_atomic(&orig, &old, 0o644).map_err(io)?;
        }
    }
    koompi_core::fsutil::write_atomic(&path, f.content.as_bytes(), 0o644).map_err(io)
}

/// A home the edition's configs go into, and whose identity writes them (root's
/// `/etc/skel`: `None`).
#[derive(Debug, Clone)]
pub struct ConfigHome {
    pub home: PathBuf,
    pub owner: Option<(u32, u32)>,
}

impl System {
    /// The edition's configs put into each home ([`crate::apply`]: a user's own change is
    /// never lost); one report per home. Every home is tried; then a failure is an error.
    pub fn apply_configs(
        &self,
        catalog: &Catalog,
        edition: &Edition,
        configs_dir: &Path,
        homes: &[ConfigHome],
        progress: &mut dyn FnMut(&str),
    ) -> Result<Vec<crate::apply::Report>, DesktopError> {
        use crate::apply::{self, decide::Policy, Request};
        let files = catalog.config_files(edition);
        if files.is_empty() || homes.is_empty() {
            return Ok(Vec::new());
        }
        let req = Request {
            applied: edition.id.clone(),
            files: apply::load(&files, configs_dir)?,
            policy: Policy::Backup,
            dry_run: false,
            now: chrono::Local::now().fixed_offset(),
        };
        let mut reports = Vec::new();
        let mut failed = 0;
        for h in homes {
            progress(&format!("configs into {}", h.home.display()));
            let r = apply::with_home(&h.home, h.owner, |home| apply::apply(home, &req))?;
            for line in r.lines() {
                progress(&format!("  {line}"));
            }
            failed += r.failed();
            reports.push(r);
        }
        if failed > 0 {
            return Err(DesktopError::ConfigsFailed(failed));
        }
        Ok(reports)
    }
}

/// The root a `--root` option names, or `/`.
pub fn root_of(root: Option<&Path>) -> PathBuf {
    root.map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from("/"))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn catalog() -> Catalog {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../configs");
        Catalog::load(&dir.join("editions.toml")).unwrap()
    }

    fn installed(c: &Catalog, id: &str, prev: Option<&str>, added: &[String]) -> Installed {
        let _ = c.edition(id).unwrap();
        Installed {
            id: id.into(),
            installed_at: String::new(),
            added_packages: added.to_vec(),
            previous_display_manager: prev.map(Into::into),
            previous_target: Some("multi-user.target".into()),
        }
    }

    #[test]
    fn lite_on_a_fresh_cli_system() {
        let c = catalog();
        let lite = c.edition("lite").unwrap();
        let seen = Observed {
            installed: ["fcitx5".to_string()].into(),
            default_target: Some("multi-user.target".into()),
            ..Default::default()
        };
        let p = plan_install(&c, lite, &seen, false);
        assert!(p.install.contains(&"lightdm".to_string()));
        assert_eq!(p.present, ["fcitx5"]);
        assert_eq!(
            p.display_manager,
            Some(Change {
                from: None,
                to: "lightdm.service".into()
            })
        );
        assert_eq!(p.target.as_ref().unwrap().to, "graphical.target");
        assert!(p.configs.iter().any(|f| f.ends_with("openbox/rc.xml")));
        assert!(p.system_files.is_empty());
    }

    #[test]
    fn greetd_editions_write_its_config() {
        let c = catalog();
        let p = plan_install(&c, c.edition("sway").unwrap(), &Observed::default(), false);
        assert_eq!(p.system_files.len(), 1);
        let text = &p.system_files[0].content;
        let v: toml::Table = toml::from_str(text).unwrap();
        let cmd = v["default_session"]["command"].as_str().unwrap();
        assert!(
            cmd.starts_with("tuigreet ") && cmd.ends_with("--cmd sway"),
            "{cmd}"
        );
        assert_eq!(v["default_session"]["user"].as_str(), Some("greeter"));

        let d = tempfile::tempdir().unwrap();
        let path = d.path().join(GREETD_CONFIG);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, "package's own\n").unwrap();
        write_system_file(d.path(), &p.system_files[0]).unwrap();
        write_system_file(d.path(), &p.system_files[0]).unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), *text);
        let orig = d.path().join("etc/greetd/config.toml.koompi-orig");
        assert_eq!(std::fs::read_to_string(orig).unwrap(), "package's own\n");
        std::fs::remove_file(&path).unwrap();
        std::fs::create_dir(&path).unwrap();
        let e = write_system_file(d.path(), &p.system_files[0]).unwrap_err();
        assert!(e.to_string().contains("is not a regular file"), "{e}");
    }

    #[test]
    fn the_driver_only_with_a_yes_and_a_graphical_edition() {
        let c = catalog();
        let seen = Observed {
            nvidia: Some(Advice::Offer {
                device: "2520".into(),
                package: "nvidia-open-dkms".into(),
            }),
            ..Default::default()
        };
        let lite = c.edition("lite").unwrap();
        assert!(plan_install(&c, lite, &seen, false).driver.is_none());
        let yes = plan_install(&c, lite, &seen, true);
        assert!(yes.install.contains(&"nvidia-open-dkms".to_string()));
        let term = c.edition("terminal").unwrap();
        assert!(plan_install(&c, term, &seen, true).driver.is_none());
    }

    #[test]
    fn terminal_keeps_an_installed_desktops_login() {
        let c = catalog();
        let seen = Observed {
            display_manager: Some("lightdm.service".into()),
            default_target: Some("graphical.target".into()),
            ..Default::default()
        };
        let p = plan_install(&c, c.edition("terminal").unwrap(), &seen, false);
        assert!(p.display_manager.is_none() && p.target.is_none());
    }

    #[test]
    fn removing_puts_back_the_display_manager_from_before() {
        let c = catalog();
        let lite = c.edition("lite").unwrap();
        let added = vec!["openbox".to_string(), "lightdm".to_string()];
        let mut seen = Observed {
            installed: added.iter().cloned().collect(),
            display_manager: Some("lightdm.service".into()),
            default_target: Some("graphical.target".into()),
            units: ["lightdm.service".to_string(), "gdm.service".to_string()].into(),
            ..Default::default()
        };
        seen.state
            .record(installed(&c, "lite", Some("gdm.service"), &added));
        let p = plan_remove(&c, lite, &seen).unwrap();
        assert_eq!(p.remove, added);
        assert_eq!(
            p.display_manager.unwrap().to.as_deref(),
            Some("gdm.service")
        );
        assert!(p.target.is_none());

        // gdm gone meanwhile: none, and the console target.
        seen.units.remove("gdm.service");
        let p = plan_remove(&c, lite, &seen).unwrap();
        assert_eq!(p.display_manager.unwrap().to, None);
        assert_eq!(p.target.unwrap().to, "multi-user.target");
    }

    #[test]
    fn shared_packages_and_display_managers_stay() {
        let c = catalog();
        let added = vec![
            "lightdm".to_string(),
            "gvfs".to_string(),
            "openbox".to_string(),
        ];
        let mut seen = Observed {
            installed: added.iter().cloned().collect(),
            display_manager: Some("lightdm.service".into()),
            default_target: Some("graphical.target".into()),
            units: ["lightdm.service".to_string()].into(),
            ..Default::default()
        };
        seen.state.record(installed(&c, "lite", None, &added));
        seen.state
            .record(installed(&c, "xfce", Some("lightdm.service"), &[]));
        let p = plan_remove(&c, c.edition("lite").unwrap(), &seen).unwrap();
        assert_eq!(p.remove, ["openbox"]);
        assert_eq!(p.kept, ["lightdm", "gvfs"]);
        assert!(p.display_manager.is_none(), "xfce still uses lightdm");
        let e = plan_remove(&c, c.edition("kde").unwrap(), &seen).unwrap_err();
        assert!(e.to_string().contains("`kde` is not installed"));
    }

    fn dm_strategy() -> impl Strategy<Value = Option<String>> {
        prop::option::of(prop::sample::select(vec![
            "lightdm.service".to_string(),
            "gdm.service".into(),
            "sddm.service".into(),
            "greetd.service".into(),
        ]))
    }

    proptest! {
        /// Install then remove of any edition, from any display manager, ends with the
        /// display manager from before when its unit is still there, and the target
        /// always matches: graphical exactly when a display manager is enabled.
        #[test]
        fn install_then_remove_round_trips(idx in 0usize..11, before in dm_strategy()) {
            let c = catalog();
            let e = &c.editions[idx];
            let target_before = if before.is_some() { "graphical.target" } else { "multi-user.target" };
            let seen = Observed {
                display_manager: before.clone(),
                default_target: Some(target_before.into()),
                units: ["lightdm.service", "gdm.service", "sddm.service", "greetd.service"]
                    .iter().map(|s| s.to_string()).collect(),
                ..Default::default()
            };
            let ip = plan_install(&c, e, &seen, false);
            // Apply the install plan to the model.
            let mut after = seen.clone();
            if let Some(d) = &ip.display_manager { after.display_manager = Some(d.to.clone()); }
            if let Some(t) = &ip.target { after.default_target = Some(t.to.clone()); }
            after.installed.extend(ip.install.iter().cloned());
            after.state.record(Installed {
                id: e.id.clone(), installed_at: String::new(),
                added_packages: ip.install.clone(),
                previous_display_manager: before.clone(),
                previous_target: Some(target_before.into()),
            });
            let graphical = after.display_manager.is_some();
            prop_assert_eq!(after.default_target.as_deref() == Some("graphical.target"), graphical);
            let rp = plan_remove(&c, e, &after).unwrap();
            let mut back = after.clone();
            if let Some(d) = &rp.display_manager { back.display_manager = d.to.clone(); }
            if let Some(t) = &rp.target { back.default_target = Some(t.to.clone()); }
            prop_assert_eq!(back.display_manager.clone(), before);
            prop_assert_eq!(back.default_target.as_deref(), Some(target_before));
            prop_assert_eq!(rp.remove.len(), ip.install.len());
        }
    }
}
