//! The changes `koompi` makes (install, remove, clean, upgrade) and every decision around
//! them: what needs root, who runs paru (the user who ran sudo, never root), which program
//! upgrades and with which options, and what must hold before pacman starts (no other
//! package manager, the mirrors reachable, a snapshot taken).
//!
//! Each change is prepared in one call that checks everything and takes the snapshot, and
//! returns a [`Change`] (or a [`SystemUpgrade`]) that the binary prints and then runs. The
//! binary parses, calls these in order and prints; nothing here calls back into it. A
//! change that needs root fails with [`OpsError::NeedsRoot`] after validating its input
//! and before touching anything; the binary then runs itself again through [`as_root`].

use std::collections::BTreeSet;
use std::ffi::OsString;
use std::path::{Path, PathBuf};

use koompi_boot::watchdog;
use koompi_core::cmd::{Cmd, CmdError, Runner};
use koompi_snapshots::rollback::Control;
use koompi_snapshots::store::Store;

use crate::backend::{BackendError, Backends};
use crate::guard::{self, GuardError, SnapshotOutcome, SnapshotPlan};
use crate::network::{self, CheckTarget};
use crate::plan::{self, Found, InstallPlan, MissingReason, Only};
use crate::upgrade::{self, TxOptions, TxReport, UpgradeCommand, UpgradeError, UpgradeReport};
use crate::{classify, NameError, Target};

/// Why a change cannot be made (each is one line for the user).
#[derive(Debug, thiserror::Error)]
pub enum OpsError {
    /// This process is not root; the binary runs itself again through [`as_root`].
    #[error("this needs root")]
    NeedsRoot,
    #[error("this needs root: run it as root (sudo is not installed)")]
    NoSudo,
    #[error(
        "AUR packages are built as a normal user, never as root: run `sudo koompi ...` \
         from your own account"
    )]
    AurAsRoot,
    #[error(transparent)]
    Name(#[from] NameError),
    #[error(transparent)]
    Backend(#[from] BackendError),
    #[error(transparent)]
    Guard(#[from] GuardError),
    #[error(transparent)]
    Cmd(#[from] CmdError),
    #[error(transparent)]
    Upgrade(#[from] UpgradeError),
    #[error(transparent)]
    Snapshot(#[from] koompi_snapshots::Error),
    #[error(transparent)]
    Watchdog(#[from] watchdog::Error),
    #[error("cannot read {}: {source}", .path.display())]
    Config {
        path: PathBuf,
        #[source]
        source: crate::pacman_conf::ConfError,
    },
    #[error("no network: {0}; nothing was changed")]
    NoNetwork(String),
    /// Targets found nowhere: the message names each, and similar names.
    #[error("{0}")]
    Missing(String),
    #[error(
        "{} {} only in the AUR, and paru is not installed: `koompi install paru` first",
        .0.join(", "),
        if .0.len() == 1 { "is" } else { "are" }
    )]
    NoParu(Vec<String>),
    #[error("{} needs Flatpak: `koompi install flatpak` first", .0.join(", "))]
    NoFlatpak(Vec<String>),
    #[error("Flatpak is not installed, so there are no Flatpak applications to remove")]
    NoFlatpakToRemove,
    #[error("not installed: {} (see `koompi list`)", .0.join(", "))]
    NotInstalled(Vec<String>),
    #[error("`{target}` was not found in {} or the AUR", .repos.join(", "))]
    NotFound { target: String, repos: Vec<String> },
    #[error("search terms cannot start with `-`: {0}")]
    BadTerm(String),
    #[error("a transactional upgrade needs snapshots: {0}")]
    TxNeedsSnapshots(String),
}

/// Whether this process runs as root.
pub fn is_root() -> bool {
    rustix::process::geteuid().is_root()
}

/// The user who ran `sudo koompi`, who builds AUR packages.
pub fn invoking_user() -> Option<String> {
    std::env::var("SUDO_USER")
        .ok()
        .filter(|u| !u.is_empty() && u != "root")
}

fn need_root() -> Result<(), OpsError> {
    if is_root() {
        Ok(())
    } else {
        Err(OpsError::NeedsRoot)
    }
}

/// The command that runs `exe` again as root with the same arguments: `sudo -- EXE ARGS`.
pub fn as_root(exe: &Path, args: &[OsString]) -> Result<Cmd, OpsError> {
    if crate::backend::which("sudo").is_none() {
        return Err(OpsError::NoSudo);
    }
    Ok(Cmd::new("sudo").arg("--").arg(exe).args(args))
}

/// paru as the invoking user when run by root through sudo, else as is.
fn paru_cmd(paru: &Path) -> Result<Cmd, OpsError> {
    if !is_root() {
        return Ok(Cmd::new(paru));
    }
    match invoking_user() {
        Some(user) => Ok(Cmd::new("runuser").args(["-u", &user, "--"]).arg(paru)),
        None => Err(OpsError::AurAsRoot),
    }
}

/// An operation `koompi` does not know, for paru (as the invoking user) or pacman when
/// paru is not installed or nobody but root is there to run it.
pub fn pass_through(b: &Backends, args: &[OsString]) -> Result<Cmd, OpsError> {
    let cmd = match &b.paru {
        Some(paru) if !is_root() || invoking_user().is_some() => paru_cmd(paru)?,
        _ => Cmd::new(&b.pacman),
    };
    Ok(cmd.args(args))
}

/// The repositories pacman.conf names (for messages).
pub fn repo_names(b: &Backends) -> Vec<String> {
    b.opts
        .load_config()
        .map(|c| c.repos.iter().map(|r| r.name.clone()).collect())
        .unwrap_or_default()
}

/// Fails with one line if the mirrors of pacman's repositories (and the AUR, `with_aur`)
/// cannot be reached.
pub fn require_network(b: &Backends, with_aur: bool) -> Result<(), OpsError> {
    let conf = b.opts.load_config().map_err(|source| OpsError::Config {
        path: b.opts.config_path(),
        source,
    })?;
    let mut targets = network::targets_from_config(&conf);
    if with_aur {
        targets.push(CheckTarget::new("aur", vec![b.aur_url.clone()]));
    }
    let report = network::check(&targets, network::DEFAULT_TIMEOUT);
    match report.failure_summary() {
        Some(why) => Err(OpsError::NoNetwork(why)),
        None => Ok(()),
    }
}

/// Validates every target before anything runs.
pub fn classify_all(targets: &[String]) -> Result<Vec<Target>, OpsError> {
    Ok(targets
        .iter()
        .map(|t| classify(t))
        .collect::<Result<_, _>>()?)
}

/// What `koompi search` found, and the sources that could not be asked.
#[derive(Debug, Clone, serde::Serialize)]
pub struct SearchResults {
    pub results: Vec<crate::Package>,
    /// Sources that could not be asked, with why.
    pub unreachable: Vec<(String, String)>,
}

/// `koompi search`: the repositories' databases, then (unless `repo_only`) the AUR and
/// Flathub. The AUR and Flathub search one term, the longest (the most selective); the AUR's
/// answers are filtered by every term and sorted by popularity. A source that cannot be
/// asked is reported, not fatal.
pub fn search(b: &Backends, terms: &[String], repo_only: bool) -> Result<SearchResults, OpsError> {
    if let Some(t) = terms.iter().find(|t| t.starts_with('-')) {
        return Err(OpsError::BadTerm(t.clone()));
    }
    let mut unreachable = Vec::new();
    let mut results = match b.repo_search(terms) {
        Ok(r) => r,
        // No package lists yet: the other sources can still answer.
        Err(e @ BackendError::NoPackageLists(_)) => {
            unreachable.push(("repositories".to_string(), e.to_string()));
            Vec::new()
        }
        Err(e) => return Err(e.into()),
    };
    let main = terms.iter().max_by_key(|t| t.len()).filter(|_| !repo_only);
    if let Some(main) = main {
        if main.chars().count() >= 2 {
            match b.aur_search(main) {
                Ok(mut aur) => {
                    let lower: Vec<String> = terms.iter().map(|t| t.to_lowercase()).collect();
                    aur.retain(|p| {
                        let hay = format!("{} {}", p.name, p.description).to_lowercase();
                        lower.iter().all(|t| hay.contains(t))
                    });
                    aur.sort_by(|a, b| {
                        b.popularity
                            .partial_cmp(&a.popularity)
                            .unwrap_or(std::cmp::Ordering::Equal)
                    });
                    let installed = b.installed(&[]).unwrap_or_default();
                    crate::model::mark_installed(&mut aur, &installed);
                    results.extend(aur);
                }
                Err(e) => unreachable.push(("aur".to_string(), e.to_string())),
            }
        }
        match b.flatpak_search(main) {
            Ok(f) => results.extend(f),
            Err(e) => unreachable.push(("flathub".to_string(), e.to_string())),
        }
    }
    Ok(SearchResults {
        results,
        unreachable,
    })
}

/// Where `koompi info` found a target.
#[derive(Debug)]
pub enum Details {
    /// In a repository's database, or installed.
    Pacman(crate::parse::PackageInfo),
    /// In the AUR.
    Aur(crate::Package),
    /// Neither: Flathub's own `flatpak remote-info`, to run attached to the terminal.
    Flathub(Cmd),
}

/// `koompi info`: a package is looked for in the repositories, then among the installed
/// packages, then in the AUR; an application ID (or a name found nowhere) on Flathub.
pub fn info(b: &Backends, target: &str) -> Result<Details, OpsError> {
    let t = classify(target)?;
    let name = t.name().to_string();
    if let Target::Package { .. } = t {
        let found = match b.repo_info(target)? {
            Some(i) => Some(i),
            None => b.local_info(&name)?,
        };
        if let Some(i) = found {
            return Ok(Details::Pacman(i));
        }
        if let Some(p) = b
            .aur_info(std::slice::from_ref(&name))
            .ok()
            .and_then(|mut aur| aur.pop())
        {
            return Ok(Details::Aur(p));
        }
    }
    match &b.flatpak {
        Some(flatpak) => Ok(Details::Flathub(
            Cmd::new(flatpak)
                .args(["remote-info", "flathub", "--"])
                .arg(&name),
        )),
        None => Err(OpsError::NotFound {
            target: target.to_string(),
            repos: repo_names(b),
        }),
    }
}

/// A change about to be made: checked, its snapshot taken; [`Change::run`] runs it.
#[derive(Debug)]
pub struct Change {
    /// What the change is: install, remove, clean.
    pub verb: &'static str,
    /// The snapshot before the change (`None` when nothing pacman runs is involved).
    pub snapshot: Option<SnapshotOutcome>,
    commands: Vec<Cmd>,
    runner: Runner,
}

impl Change {
    /// Runs the change's programs attached to the terminal, in order; the first non-zero
    /// exit code stops it and is returned.
    pub fn run(self) -> Result<i32, OpsError> {
        for cmd in self.commands {
            let code = cmd.run_interactive(&self.runner)?;
            if code != 0 {
                return Ok(code);
            }
        }
        Ok(0)
    }
}

/// What `koompi install` found for its targets.
#[derive(Debug, Clone)]
pub struct Resolved {
    pub targets: Vec<String>,
    pub plan: InstallPlan,
    /// Why the AUR could not be asked, when it could not.
    pub aur_error: Option<String>,
}

/// Looks every target up (the repositories, then the AUR) and decides its source.
pub fn resolve(b: &Backends, targets: &[String], only: Only) -> Result<Resolved, OpsError> {
    let parsed = classify_all(targets)?;
    let mut found = Found::default();
    let mut aur_error = None;
    let names = plan::names_to_look_up(&parsed);
    if only != Only::Aur && only != Only::Flatpak {
        for name in &names {
            if b.in_repos(name)? {
                found.repo.insert(name.clone());
            }
        }
    }
    let need_aur: Vec<String> = names
        .into_iter()
        .filter(|n| !found.repo.contains(n))
        .collect();
    if !need_aur.is_empty() && only != Only::Repo && only != Only::Flatpak {
        match b.aur_info(&need_aur) {
            Ok(pkgs) => found.aur = Some(pkgs.into_iter().map(|p| p.name).collect()),
            Err(e) => aur_error = Some(e.to_string()),
        }
    } else {
        found.aur = Some(BTreeSet::new());
    }
    Ok(Resolved {
        targets: targets.to_vec(),
        plan: plan::plan(&parsed, only, &found),
        aur_error,
    })
}

/// "package `x` was not found in ...; did you mean: ...?" for every missing target.
pub fn missing_message(b: &Backends, r: &Resolved) -> String {
    let repos = repo_names(b);
    let mut parts = Vec::new();
    for m in &r.plan.missing {
        let s = match m.reason {
            MissingReason::AurUnreachable => format!(
                "`{}` is not in the repositories ({}) and the AUR could not be asked ({})",
                m.name,
                repos.join(", "),
                r.aur_error.as_deref().unwrap_or("no answer")
            ),
            MissingReason::NotFound => {
                let mut searched = repos.clone();
                searched.push("the AUR".into());
                let mut s = format!(
                    "package `{}` was not found in {}",
                    m.name,
                    searched.join(", ")
                );
                let mut similar = b.similar(&m.name);
                if let Ok(aur) = b.aur_search(&m.name) {
                    similar.extend(aur.into_iter().take(3).map(|p| p.name));
                }
                similar.retain(|n| n != &m.name);
                similar.dedup();
                if similar.is_empty() {
                    s.push_str("; try `koompi search` with part of the name");
                } else {
                    s.push_str(&format!("; did you mean: {}?", similar.join(", ")));
                }
                s
            }
        };
        parts.push(s);
    }
    parts.join("; ")
}

/// Prepares `koompi install`: every target found, the programs it needs there, root, no
/// other package manager, the mirrors reachable; then the snapshot.
pub fn install(b: &Backends, r: &Resolved, needed: bool) -> Result<Change, OpsError> {
    let p = &r.plan;
    if !p.missing.is_empty() {
        return Err(OpsError::Missing(missing_message(b, r)));
    }
    if p.needs_aur() && b.paru.is_none() {
        return Err(OpsError::NoParu(p.aur.clone()));
    }
    if !p.flatpak.is_empty() && b.flatpak.is_none() {
        return Err(OpsError::NoFlatpak(p.flatpak.clone()));
    }
    need_root()?;
    guard::check_lock(&b.opts.db_path())?;
    if !p.repo.is_empty() || !p.aur.is_empty() {
        require_network(b, p.needs_aur())?;
    }
    let snapshot = guard::snapshot_before(&b.opts.target_root(), "install", &r.targets)?;
    let mut commands = Vec::new();
    let pkgs: Vec<&String> = p.repo.iter().chain(&p.aur).collect();
    if !pkgs.is_empty() {
        let mut change = b.opts.change_args();
        if needed {
            change.push("--needed".into());
        }
        let program = match &b.paru {
            Some(paru) if p.needs_aur() => paru_cmd(paru)?,
            _ => Cmd::new(&b.pacman),
        };
        commands.push(program.arg("-S").args(change).arg("--").args(pkgs));
    }
    if let Some(flatpak) = b.flatpak.as_ref().filter(|_| !p.flatpak.is_empty()) {
        let mut cmd = Cmd::new(flatpak).arg("install");
        if b.opts.noconfirm {
            cmd = cmd.arg("--noninteractive");
        }
        commands.push(cmd.arg("flathub").arg("--").args(&p.flatpak));
    }
    Ok(Change {
        verb: "install",
        snapshot: Some(snapshot),
        commands,
        runner: b.runner.clone(),
    })
}

/// Prepares `koompi remove`: packages with `pacman -Rns` (each must be installed; a
/// snapshot first), Flatpak applications with `flatpak uninstall`.
pub fn remove(b: &Backends, targets: &[String]) -> Result<Change, OpsError> {
    let parsed = classify_all(targets)?;
    need_root()?;
    let (apps, pkgs): (Vec<&Target>, Vec<&Target>) = parsed
        .iter()
        .partition(|t| matches!(t, Target::FlatpakApp { .. }));
    let pkgs: Vec<String> = pkgs.iter().map(|t| t.to_string()).collect();
    let mut commands = Vec::new();
    let mut snapshot = None;
    if !pkgs.is_empty() {
        guard::check_lock(&b.opts.db_path())?;
        let installed = b.installed(&[])?;
        let names: BTreeSet<&str> = installed.iter().map(|i| i.name.as_str()).collect();
        let absent: Vec<String> = pkgs
            .iter()
            .filter(|p| !names.contains(p.as_str()))
            .cloned()
            .collect();
        if !absent.is_empty() {
            return Err(OpsError::NotInstalled(absent));
        }
        if !apps.is_empty() && b.flatpak.is_none() {
            return Err(OpsError::NoFlatpakToRemove);
        }
        snapshot = Some(guard::snapshot_before(
            &b.opts.target_root(),
            "remove",
            targets,
        )?);
        commands.push(
            Cmd::new(&b.pacman)
                .arg("-Rns")
                .args(b.opts.change_args())
                .arg("--")
                .args(&pkgs),
        );
    }
    if !apps.is_empty() {
        let flatpak = b.flatpak.as_ref().ok_or(OpsError::NoFlatpakToRemove)?;
        let ids: Vec<String> = apps.iter().map(|t| t.to_string()).collect();
        let mut cmd = Cmd::new(flatpak).arg("uninstall");
        if b.opts.noconfirm {
            cmd = cmd.arg("--noninteractive");
        }
        commands.push(cmd.arg("--").args(ids));
    }
    Ok(Change {
        verb: "remove",
        snapshot,
        commands,
        runner: b.runner.clone(),
    })
}

/// Prepares `koompi clean` (`pacman -Sc`): root, no other package manager.
pub fn clean(b: &Backends) -> Result<Change, OpsError> {
    need_root()?;
    guard::check_lock(&b.opts.db_path())?;
    Ok(Change {
        verb: "clean",
        snapshot: None,
        commands: vec![Cmd::new(&b.pacman).arg("-Sc").args(b.opts.change_args())],
        runner: b.runner.clone(),
    })
}

/// How the upgrade runs pacman or paru: paru builds AUR updates, so it runs as the user
/// who ran sudo (`user`); a transactional upgrade stays with pacman (AUR builds inside a
/// snapshot are not supported yet) and drops `--root`/`--dbpath`, which would point
/// pacman back at the running system (the work snapshot has its own).
pub fn upgrade_command(
    b: &Backends,
    user: Option<&str>,
    transactional: bool,
    quiet_stdout: bool,
) -> UpgradeCommand {
    let program: Vec<OsString> = match (&b.paru, user) {
        (Some(paru), Some(user)) if !transactional => vec![
            "runuser".into(),
            "-u".into(),
            user.into(),
            "--".into(),
            paru.clone().into_os_string(),
        ],
        _ => vec![b.pacman.clone().into_os_string()],
    };
    let options = if transactional {
        let mut options: Vec<OsString> = Vec::new();
        for (flag, value) in [
            ("--config", &b.opts.config),
            ("--cachedir", &b.opts.cachedir),
        ] {
            if let Some(v) = value {
                options.push(flag.into());
                options.push(v.clone().into_os_string());
            }
        }
        if b.opts.noconfirm {
            options.push("--noconfirm".into());
        }
        options
    } else {
        b.opts.change_args()
    };
    UpgradeCommand {
        program,
        options,
        quiet_stdout,
    }
}

/// `koompi upgrade`, checked and ready to run.
#[derive(Debug)]
pub struct SystemUpgrade {
    /// Why no snapshot is taken before it, when none is.
    pub note: Option<String>,
    mode: Mode,
    runner: Runner,
}

/// The two upgrades, each with what it needs.
#[derive(Debug)]
enum Mode {
    Classic {
        command: UpgradeCommand,
        /// The root's snapshot store, when it has one.
        store: Option<Store>,
        regenerate_grub: bool,
    },
    Transactional {
        store: Box<Store>,
        opts: TxOptions,
    },
}

/// What an upgrade did.
#[derive(Debug, Clone)]
pub enum UpgradeOutcome {
    Classic(UpgradeReport),
    Transactional(TxReport),
}

/// Prepares `koompi upgrade` (`transactional`: into a snapshot that becomes the system at
/// the next boot): root, no other package manager, the mirrors reachable, the program,
/// the snapshot store (a transactional upgrade cannot do without one).
pub fn upgrade(
    b: &Backends,
    transactional: bool,
    quiet_stdout: bool,
) -> Result<SystemUpgrade, OpsError> {
    need_root()?;
    guard::check_lock(&b.opts.db_path())?;
    require_network(b, false)?;
    let root = b.opts.target_root();
    // The store (or why there is none) and, for a classic upgrade, the note to print.
    let (store, note) = match guard::snapshot_plan(&root) {
        SnapshotPlan::Take(cfg) => (Ok(Store::open(*cfg)?), None),
        // The named pre-update snapshot is taken even with snap-pac: it is the one the
        // user is told to go back to.
        SnapshotPlan::SnapPac { .. } => match guard::root_config(&root) {
            Ok(cfg) => (Ok(Store::open(cfg)?), None),
            Err(why) => (Err(why), None),
        },
        SnapshotPlan::Skip(why) => (Err(why.clone()), Some(why)),
    };
    let command = upgrade_command(b, invoking_user().as_deref(), transactional, quiet_stdout);
    let runner = b.runner.clone();
    if !transactional {
        let mode = Mode::Classic {
            command,
            store: store.ok(),
            regenerate_grub: b.opts.root.is_none(),
        };
        return Ok(SystemUpgrade { note, mode, runner });
    }
    let store = store.map_err(OpsError::TxNeedsSnapshots)?;
    // The watchdog of the running system (its ESP, its fallback): only when the upgrade
    // is of the running system.
    let watchdog = if root == Path::new("/") {
        Some(watchdog::Settings::load(Path::new(
            watchdog::SETTINGS_PATH,
        ))?)
    } else {
        None
    };
    let opts = TxOptions {
        upgrade: command,
        logfile: root.join("var/log/pacman.log"),
        grub: true,
        watchdog,
    };
    let mode = Mode::Transactional {
        store: Box::new(store),
        opts,
    };
    Ok(SystemUpgrade {
        note: None,
        mode,
        runner,
    })
}

impl SystemUpgrade {
    /// Runs the upgrade. A classic upgrade whose pacman fails returns
    /// [`UpgradeError::Failed`] with pacman's exit code and the snapshot to go back to.
    pub fn run(self) -> Result<UpgradeOutcome, OpsError> {
        Ok(match self.mode {
            Mode::Transactional { store, opts } => UpgradeOutcome::Transactional(
                upgrade::transactional(&store, &opts, &self.runner, &mut |_| Control::Continue)?,
            ),
            Mode::Classic {
                command,
                store,
                regenerate_grub,
            } => UpgradeOutcome::Classic(upgrade::upgrade(
                store.as_ref(),
                &command,
                &self.runner,
                regenerate_grub,
            )?),
        })
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::backend::PacmanOpts;

    fn backends(paru: bool, opts: PacmanOpts) -> Backends {
        Backends {
            runner: Runner::real(),
            pacman: PathBuf::from("/usr/bin/pacman"),
            opts,
            paru: paru.then(|| PathBuf::from("/usr/bin/paru")),
            flatpak: None,
            aur_url: String::new(),
        }
    }

    fn strings(v: &[OsString]) -> Vec<String> {
        v.iter().map(|s| s.to_string_lossy().into_owned()).collect()
    }

    #[test]
    fn paru_upgrades_as_the_user_who_ran_sudo_and_never_in_a_snapshot() {
        let opts = PacmanOpts {
            noconfirm: true,
            ..PacmanOpts::default()
        };
        let b = backends(true, opts);
        let c = upgrade_command(&b, Some("dara"), false, false);
        assert_eq!(
            strings(&c.program),
            ["runuser", "-u", "dara", "--", "/usr/bin/paru"]
        );
        assert_eq!(strings(&c.options), ["--noconfirm"]);
        // No user to build as: pacman.
        let c = upgrade_command(&b, None, false, false);
        assert_eq!(strings(&c.program), ["/usr/bin/pacman"]);
        // Transactional: pacman, even with a user and paru.
        let c = upgrade_command(&b, Some("dara"), true, true);
        assert_eq!(strings(&c.program), ["/usr/bin/pacman"]);
        assert!(c.quiet_stdout);
    }

    #[test]
    fn a_transactional_upgrade_drops_the_options_that_point_at_the_running_system() {
        let opts = PacmanOpts {
            root: Some("/mnt".into()),
            config: Some("/etc/pacman.conf".into()),
            dbpath: Some("/mnt/var/lib/pacman".into()),
            cachedir: Some("/var/cache/pacman/pkg".into()),
            noconfirm: true,
            needed: false,
        };
        let b = backends(false, opts);
        let c = upgrade_command(&b, None, true, false);
        assert_eq!(
            strings(&c.options),
            [
                "--config",
                "/etc/pacman.conf",
                "--cachedir",
                "/var/cache/pacman/pkg",
                "--noconfirm"
            ]
        );
        let c = upgrade_command(&b, None, false, false);
        let o = strings(&c.options);
        assert!(o.contains(&"--root".to_string()) && o.contains(&"--dbpath".to_string()));
    }
}
