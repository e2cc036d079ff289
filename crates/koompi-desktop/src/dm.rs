//! Display managers: which one is enabled, and switching so that exactly one stays enabled.
//!
//! Every display manager's unit declares `Alias=display-manager.service`; enabling it makes
//! `/etc/systemd/system/display-manager.service` a link to it, and that link is what
//! `graphical.target` starts. So "the enabled display manager" is where that link points.
//!
//! A switch is planned by [`switch_plan`] (pure) and run by [`Systemd::switch`]:
//!
//! 1. `systemctl enable --force NEW`: systemd replaces the alias link with a rename (a new
//!    link under a temporary name, then `rename(2)` over the old one), so at every moment
//!    the link names the old display manager or the new one, never none and never two;
//! 2. verify: the link names NEW and `systemctl is-enabled NEW` says so;
//! 3. `systemctl disable OLD`: removes OLD's own links (it leaves the alias, which no
//!    longer points at OLD).
//!
//! Nothing is started or stopped (no `--now`): the running session keeps running, and the
//! new display manager greets the user at the next boot. If step 1 or 2 fails, OLD is
//! enabled again the same way (or NEW disabled when there was no OLD) and the error says
//! what happened. The default target is set with `systemctl set-default`, itself one
//! atomic link.

use std::path::{Path, PathBuf};

use koompi_core::cmd::{Cmd, CmdError, Runner};
use serde::Serialize;

/// The alias every display manager's unit declares.
pub const ALIAS: &str = "display-manager.service";

/// Why a display-manager change failed.
#[derive(Debug, thiserror::Error)]
pub enum DmError {
    #[error(transparent)]
    Cmd(#[from] CmdError),
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// The new display manager did not take; the old one is enabled again.
    #[error("{unit} did not become the display manager ({why}); {restored}")]
    NotSwitched {
        unit: String,
        why: String,
        restored: String,
    },
    /// The switch failed and so did putting the old one back: the state is reported as is.
    #[error("{unit} did not become the display manager ({why}), and enabling {old} again failed too ({again}); run `systemctl enable --force {old}` before rebooting")]
    RestoreFailed {
        unit: String,
        old: String,
        why: String,
        again: String,
    },
}

/// One step of a switch.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "step", content = "unit", rename_all = "kebab-case")]
pub enum Step {
    /// `systemctl enable --force UNIT` (an atomic replacement of the alias link).
    Enable(String),
    /// The alias names UNIT and `is-enabled UNIT` agrees.
    Verify(String),
    /// `systemctl disable UNIT`.
    Disable(String),
}

/// The steps from display manager `current` to `wanted` (`None`: none at all).
pub fn switch_plan(current: Option<&str>, wanted: Option<&str>) -> Vec<Step> {
    match (current, wanted) {
        (c, w) if c == w => Vec::new(),
        (c, Some(w)) => {
            let mut v = vec![Step::Enable(w.into()), Step::Verify(w.into())];
            if let Some(c) = c {
                v.push(Step::Disable(c.into()));
            }
            v
        }
        (Some(c), None) => vec![Step::Disable(c.into())],
        (None, None) => Vec::new(),
    }
}

/// The steps that undo a failed switch to `wanted`, back to `current`.
pub fn undo_plan(current: Option<&str>, wanted: &str) -> Vec<Step> {
    match current {
        Some(c) => vec![Step::Enable(c.into()), Step::Verify(c.into())],
        None => vec![Step::Disable(wanted.into())],
    }
}

/// systemd's unit configuration of one system: the running one, or one mounted at a root.
#[derive(Debug, Clone)]
pub struct Systemd {
    /// `None`: this machine.
    pub root: Option<PathBuf>,
    pub systemctl: PathBuf,
    pub runner: Runner,
}

impl Systemd {
    /// `systemctl` from PATH (`KOOMPI_SYSTEMCTL` overrides it) for the system at `root`.
    pub fn new(root: Option<PathBuf>, runner: Runner) -> Self {
        let systemctl = std::env::var_os("KOOMPI_SYSTEMCTL")
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from("systemctl"));
        Systemd {
            root,
            systemctl,
            runner,
        }
    }

    fn etc(&self) -> PathBuf {
        let root = self.root.as_deref().unwrap_or(Path::new("/"));
        root.join("etc/systemd/system")
    }

    /// `systemctl [--root=R] ARGS`.
    pub fn cmd(&self) -> Cmd {
        let c = Cmd::new(&self.systemctl).env("SYSTEMD_COLORS", "0");
        match &self.root {
            Some(r) => c.arg(format!("--root={}", r.display())),
            None => c,
        }
    }

    /// The unit `name`'s link in /etc/systemd/system names, as a unit name.
    fn link_target(&self, name: &str) -> Result<Option<String>, DmError> {
        let path = self.etc().join(name);
        match std::fs::read_link(&path) {
            Ok(t) => Ok(t.file_name().map(|f| f.to_string_lossy().into_owned())),
            Err(e)
                if e.kind() == std::io::ErrorKind::NotFound
                    || e.raw_os_error() == Some(rustix::io::Errno::INVAL.raw_os_error()) =>
            {
                Ok(None)
            }
            Err(source) => Err(DmError::Read { path, source }),
        }
    }

    /// The enabled display manager: where `display-manager.service` points.
    pub fn current(&self) -> Result<Option<String>, DmError> {
        self.link_target(ALIAS)
    }

    /// The default target (`default.target`'s link), if set.
    pub fn default_target(&self) -> Result<Option<String>, DmError> {
        self.link_target("default.target")
    }

    /// `systemctl is-enabled UNIT`'s word (`enabled`, `disabled`, `alias`, `not-found`, ...).
    pub fn is_enabled(&self, unit: &str) -> Result<String, DmError> {
        // is-enabled exits 1 for disabled units and prints the state all the same.
        let (_, out) = self
            .cmd()
            .arg("is-enabled")
            .arg("--")
            .arg(unit)
            .run_status(&self.runner)?;
        Ok(first_word(&out.stdout))
    }

    /// Whether UNIT is running (`systemctl is-active`); always false for a mounted root.
    pub fn is_active(&self, unit: &str) -> bool {
        if self.root.is_some() {
            return false;
        }
        self.cmd()
            .arg("is-active")
            .arg("--quiet")
            .arg("--")
            .arg(unit)
            .run(&self.runner)
            .is_ok()
    }

    /// Whether the unit file exists for this system (`systemctl cat` would find it).
    pub fn has_unit(&self, unit: &str) -> bool {
        let root = self.root.as_deref().unwrap_or(Path::new("/"));
        [
            "etc/systemd/system",
            "usr/lib/systemd/system",
            "lib/systemd/system",
        ]
        .iter()
        .any(|d| root.join(d).join(unit).is_file())
    }

    fn run_step(&self, step: &Step) -> Result<(), String> {
        let res = match step {
            Step::Enable(u) => self
                .cmd()
                .args(["enable", "--force", "--"])
                .arg(u)
                .run(&self.runner)
                .map(drop),
            Step::Disable(u) => self
                .cmd()
                .args(["disable", "--"])
                .arg(u)
                .run(&self.runner)
                .map(drop),
            Step::Verify(u) => return self.verify(u),
        };
        res.map_err(|e| e.to_string())
    }

    fn verify(&self, unit: &str) -> Result<(), String> {
        if self.runner.is_dry_run() {
            return Ok(());
        }
        let link = self.current().map_err(|e| e.to_string())?;
        if link.as_deref() != Some(unit) {
            return Err(format!(
                "{ALIAS} points to {}",
                link.as_deref().unwrap_or("nothing")
            ));
        }
        let state = self.is_enabled(unit).map_err(|e| e.to_string())?;
        if state != "enabled" && state != "alias" {
            return Err(format!("systemctl is-enabled {unit} says {state}"));
        }
        Ok(())
    }

    /// Makes `wanted` the display manager (`None`: none), from whatever is enabled now.
    /// Returns the one that was enabled before.
    pub fn switch(&self, wanted: Option<&str>) -> Result<Option<String>, DmError> {
        let current = self.current()?;
        let plan = switch_plan(current.as_deref(), wanted);
        for step in &plan {
            let Err(why) = self.run_step(step) else {
                continue;
            };
            let Some(w) = wanted else {
                // Disabling the last one failed: nothing to put back.
                return Err(DmError::NotSwitched {
                    unit: "no display manager".into(),
                    why,
                    restored: format!(
                        "{} is still enabled",
                        current.as_deref().unwrap_or("nothing")
                    ),
                });
            };
            if matches!(step, Step::Disable(_)) {
                // The new one is enabled and verified; the old one kept some links.
                tracing::warn!(
                    "{w} is the display manager, but disabling the old one failed: {why}"
                );
                return Ok(current);
            }
            let mut again = Ok(());
            for undo in undo_plan(current.as_deref(), w) {
                again = again.and_then(|()| self.run_step(&undo));
            }
            return Err(match (again, &current) {
                (Ok(()), Some(c)) => DmError::NotSwitched {
                    unit: w.into(),
                    why,
                    restored: format!("{c} is enabled again"),
                },
                (Ok(()), None) => DmError::NotSwitched {
                    unit: w.into(),
                    why,
                    restored: "no display manager is enabled, as before".into(),
                },
                (Err(again), c) => DmError::RestoreFailed {
                    unit: w.into(),
                    old: c.clone().unwrap_or_else(|| "nothing".into()),
                    why,
                    again,
                },
            });
        }
        Ok(current)
    }

    /// `systemctl set-default TARGET`.
    pub fn set_default(&self, target: &str) -> Result<(), DmError> {
        self.cmd()
            .arg("set-default")
            .arg("--")
            .arg(target)
            .run(&self.runner)?;
        Ok(())
    }

    /// `systemctl enable UNIT` (never `--now`).
    pub fn enable(&self, unit: &str) -> Result<(), DmError> {
        self.cmd()
            .arg("enable")
            .arg("--")
            .arg(unit)
            .run(&self.runner)?;
        Ok(())
    }
}

fn first_word(s: &str) -> String {
    s.split_whitespace().next().unwrap_or("").to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn plans() {
        assert!(switch_plan(Some("a.service"), Some("a.service")).is_empty());
        assert!(switch_plan(None, None).is_empty());
        assert_eq!(
            switch_plan(Some("gdm.service"), Some("lightdm.service")),
            [
                Step::Enable("lightdm.service".into()),
                Step::Verify("lightdm.service".into()),
                Step::Disable("gdm.service".into())
            ]
        );
        assert_eq!(
            switch_plan(Some("gdm.service"), None),
            [Step::Disable("gdm.service".into())]
        );
        assert_eq!(
            undo_plan(None, "lightdm.service"),
            [Step::Disable("lightdm.service".into())]
        );
    }

    fn dm() -> impl Strategy<Value = Option<String>> {
        prop::option::of(prop::sample::select(vec![
            "lightdm.service".to_string(),
            "gdm.service".into(),
            "sddm.service".into(),
            "greetd.service".into(),
        ]))
    }

    /// The alias link after each step, as a model: Enable replaces it, Disable of the unit
    /// it names removes it.
    fn simulate(mut link: Option<String>, steps: &[Step]) -> Vec<Option<String>> {
        let mut seen = vec![link.clone()];
        for s in steps {
            match s {
                Step::Enable(u) => link = Some(u.clone()),
                Step::Disable(u) if link.as_ref() == Some(u) => link = None,
                _ => {}
            }
            seen.push(link.clone());
        }
        seen
    }

    proptest! {
        /// A switch between two display managers never passes through "none": every state
        /// on the way names the old one or the new one, and it ends at the new one.
        #[test]
        fn never_none_between_two(cur in dm(), want in dm()) {
            let plan = switch_plan(cur.as_deref(), want.as_deref());
            let states = simulate(cur.clone(), &plan);
            prop_assert_eq!(states.last().cloned().flatten(), want.clone());
            if cur.is_some() && want.is_some() {
                for s in &states {
                    prop_assert!(s.is_some());
                    prop_assert!(*s == cur || *s == want);
                }
            }
        }

        /// Undoing after any prefix of a switch's steps ends where it started.
        #[test]
        fn undo_restores(cur in dm(), want in dm(), cut in 0usize..3) {
            let Some(w) = want.clone() else { return Ok(()) };
            let plan = switch_plan(cur.as_deref(), Some(&w));
            let done = &plan[..cut.min(plan.len())];
            let mut steps = done.to_vec();
            steps.extend(undo_plan(cur.as_deref(), &w));
            let states = simulate(cur.clone(), &steps);
            prop_assert_eq!(states.last().cloned().flatten(), cur);
        }
    }
}
