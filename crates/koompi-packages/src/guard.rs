//! What must hold before pacman changes a system, and the snapshot taken first.
//!
//! - pacman's database lock: a held `db.lck` means another package manager is running, or
//!   one died. Deleting it under a running pacman corrupts the database, so KOOMPI never
//!   removes it: it says who holds it (if anyone runs) and how to remove it when no one does.
//! - A snapshot before every install, remove and upgrade, so any change can be undone with
//!   `koompi-snapshot rollback`. snap-pac takes its own pre/post pair from a pacman hook;
//!   when it is installed KOOMPI takes none (two snapshots per change would halve how far
//!   back the retention reaches). A target root without a snapper config, or not on Btrfs,
//!   gets no snapshot, and the caller says so in one line and goes on.

use std::fs;
use std::path::{Path, PathBuf};

use koompi_snapshots::config::SnapperConfig;
use koompi_snapshots::store::{CreateRequest, Store};

/// The snapper config KOOMPI snapshots the root with.
pub const ROOT_CONFIG: &str = "root";

/// Package managers whose running process explains a held lock.
const LOCK_HOLDERS: &[&str] = &[
    "pacman",
    "paru",
    "yay",
    "pamac",
    "pamac-daemon",
    "packagekitd",
    "koompi",
];

/// Why a change cannot start.
#[derive(Debug, thiserror::Error)]
pub enum GuardError {
    #[error(
        "pacman's database is locked ({}): {}",
        .path.display(),
        lock_advice(.path, .holders)
    )]
    Locked {
        path: PathBuf,
        /// Running package managers: (pid, name).
        holders: Vec<(u32, String)>,
    },
    #[error("cannot take a snapshot of {}: {source}", .root.display())]
    Snapshot {
        root: PathBuf,
        #[source]
        source: koompi_snapshots::Error,
    },
}

fn lock_advice(path: &Path, holders: &[(u32, String)]) -> String {
    if holders.is_empty() {
        format!(
            "no package manager is running, so an earlier one was interrupted; \
             remove the lock with `sudo rm {}` and try again",
            path.display()
        )
    } else {
        let list: Vec<String> = holders
            .iter()
            .map(|(p, n)| format!("{n} (pid {p})"))
            .collect();
        format!(
            "{} is running; wait for it to finish and try again",
            list.join(", ")
        )
    }
}

/// Fails if `dbpath/db.lck` exists.
pub fn check_lock(dbpath: &Path) -> Result<(), GuardError> {
    let path = dbpath.join("db.lck");
    if path.symlink_metadata().is_err() {
        return Ok(());
    }
    Err(GuardError::Locked {
        holders: running_package_managers(Path::new("/proc"))
            .into_iter()
            .filter(|(pid, name)| {
                let args = fs::read(Path::new("/proc").join(pid.to_string()).join("cmdline"))
                    .map(|b| {
                        b.split(|c| *c == 0)
                            .filter(|a| !a.is_empty())
                            .map(|a| String::from_utf8_lossy(a).into_owned())
                            .collect::<Vec<_>>()
                    })
                    .unwrap_or_default();
                may_hold(dbpath, name, &args)
            })
            .collect(),
        path,
    })
}

/// Whether a running package manager (`name`, started with `args`) may hold the lock of
/// `dbpath`. A pacman or koompi working on another root (`--dbpath`, `--root`, which both
/// take) does not; when its command line does not say (another `--config`, or another
/// program), it may.
pub fn may_hold(dbpath: &Path, name: &str, args: &[String]) -> bool {
    if name != "pacman" && name != "koompi" {
        return true;
    }
    let value = |long: &str, short: &str| -> Option<&str> {
        args.iter().enumerate().find_map(|(i, a)| {
            if a == long || a == short {
                args.get(i + 1).map(String::as_str)
            } else {
                a.strip_prefix(&format!("{long}="))
            }
        })
    };
    let same = |p: &Path| {
        let canon = |x: &Path| fs::canonicalize(x).unwrap_or_else(|_| x.to_path_buf());
        canon(p) == canon(dbpath)
    };
    if let Some(d) = value("--dbpath", "-b") {
        return same(Path::new(d));
    }
    if let Some(r) = value("--root", "-r") {
        return same(&Path::new(r).join("var/lib/pacman"));
    }
    if value("--config", "--config").is_some() {
        return true;
    }
    same(Path::new("/var/lib/pacman"))
}

/// Running processes whose name is a known package manager, from a procfs at `proc`.
pub fn running_package_managers(proc: &Path) -> Vec<(u32, String)> {
    let me = std::process::id();
    let mut out = Vec::new();
    let Ok(entries) = fs::read_dir(proc) else {
        return out;
    };
    for e in entries.flatten() {
        let Some(pid) = e.file_name().to_str().and_then(|s| s.parse::<u32>().ok()) else {
            continue;
        };
        if pid == me {
            continue;
        }
        let Ok(comm) = fs::read_to_string(e.path().join("comm")) else {
            continue;
        };
        let comm = comm.trim();
        if LOCK_HOLDERS.contains(&comm) {
            out.push((pid, comm.to_string()));
        }
    }
    out.sort();
    out
}

/// How the snapshot before a change will be taken.
#[derive(Debug)]
pub enum SnapshotPlan {
    /// snap-pac is installed in the target: its hook takes the snapshots.
    SnapPac { hook: PathBuf },
    /// KOOMPI takes one with this config.
    Take(Box<SnapperConfig>),
    /// No snapshot is possible; the reason is one line for the user.
    Skip(String),
}

/// Decides how the target `root` gets its snapshot before a change.
pub fn snapshot_plan(root: &Path) -> SnapshotPlan {
    for dir in ["usr/share/libalpm/hooks", "etc/pacman.d/hooks"] {
        if let Ok(entries) = fs::read_dir(root.join(dir)) {
            for e in entries.flatten() {
                if e.file_name().to_string_lossy().contains("snap-pac") {
                    return SnapshotPlan::SnapPac { hook: e.path() };
                }
            }
        }
    }
    match root_config(root) {
        Ok(config) => SnapshotPlan::Take(Box::new(config)),
        Err(why) => SnapshotPlan::Skip(why),
    }
}

/// The target's `root` snapper config, its subvolume seen from here, checked to be on
/// Btrfs; or the one-line reason why there is none.
pub fn root_config(root: &Path) -> Result<SnapperConfig, String> {
    let configs = root.join("etc/snapper/configs");
    let mut config = match SnapperConfig::by_name_in(&configs, ROOT_CONFIG) {
        Ok(c) => c,
        Err(koompi_snapshots::Error::ConfigNotFound { .. }) => {
            return Err(format!(
                "no snapshot taken: {} has no snapper config `{ROOT_CONFIG}`",
                root.display()
            ))
        }
        Err(e) => return Err(format!("no snapshot taken: {e}")),
    };
    // The config names the subvolume as the target system sees it.
    let rel = config
        .subvolume
        .strip_prefix("/")
        .unwrap_or(&config.subvolume)
        .to_path_buf();
    config.subvolume = root.join(rel);
    match koompi_snapshots::btrfs::is_btrfs(&config.subvolume) {
        Ok(true) => Ok(config),
        Ok(false) => Err(format!(
            "no snapshot taken: {} is not on Btrfs",
            config.subvolume.display()
        )),
        Err(e) => Err(format!(
            "no snapshot taken: cannot check {}: {e}",
            config.subvolume.display()
        )),
    }
}

/// Takes the snapshot of `config`'s subvolume with `req`; returns its number.
pub fn take(config: &SnapperConfig, req: &CreateRequest) -> Result<u32, GuardError> {
    let err = |source| GuardError::Snapshot {
        root: config.subvolume.clone(),
        source,
    };
    let store = Store::open(config.clone()).map_err(err)?;
    let snap = store.create(req).map_err(err)?;
    Ok(snap.info.num)
}

/// What happened about the snapshot before a change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SnapshotOutcome {
    /// KOOMPI took this snapshot.
    Taken(u32),
    /// snap-pac's hook (this file) takes the snapshots.
    SnapPac(PathBuf),
    /// None is possible; the reason is one line for the user.
    Skipped(String),
}

/// Takes the snapshot of the target `root` before `verb` of `targets` (or says why there
/// is none): the `snapshot_plan`, then [`take`] with a number-cleanup snapshot marked with
/// the operation.
pub fn snapshot_before(
    root: &Path,
    verb: &str,
    targets: &[String],
) -> Result<SnapshotOutcome, GuardError> {
    match snapshot_plan(root) {
        SnapshotPlan::SnapPac { hook } => Ok(SnapshotOutcome::SnapPac(hook)),
        SnapshotPlan::Skip(why) => Ok(SnapshotOutcome::Skipped(why)),
        SnapshotPlan::Take(config) => {
            let mut req = CreateRequest {
                description: describe(verb, targets),
                cleanup: koompi_snapshots::Cleanup::Number,
                ..CreateRequest::default()
            };
            req.userdata.insert("koompi-op".into(), verb.into());
            take(&config, &req).map(SnapshotOutcome::Taken)
        }
    }
}

/// The description of the snapshot before `verb` (install, remove) of `targets`, cut to a
/// length that fits `koompi-snapshot list`.
pub fn describe(verb: &str, targets: &[String]) -> String {
    let mut s = format!("koompi {verb}: {}", targets.join(" "));
    if s.chars().count() > 120 {
        s = s.chars().take(117).collect::<String>() + "...";
    }
    s
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn a_free_database_passes_and_a_held_one_explains() {
        let t = tempfile::tempdir().unwrap();
        check_lock(t.path()).unwrap();
        fs::write(t.path().join("db.lck"), "").unwrap();
        let e = check_lock(t.path()).unwrap_err();
        let msg = e.to_string();
        assert!(msg.contains("db.lck"), "{msg}");
        // The lock is never removed by the check.
        assert!(t.path().join("db.lck").exists());
        assert!(!msg.contains('\n'));
    }

    #[test]
    fn names_running_package_managers_from_proc() {
        let t = tempfile::tempdir().unwrap();
        for (pid, comm) in [("10", "pacman\n"), ("11", "bash\n"), ("12", "paru\n")] {
            fs::create_dir(t.path().join(pid)).unwrap();
            fs::write(t.path().join(pid).join("comm"), comm).unwrap();
        }
        fs::create_dir(t.path().join("self")).unwrap();
        let found = running_package_managers(t.path());
        assert_eq!(found, vec![(10, "pacman".into()), (12, "paru".into())]);
        let advice = lock_advice(Path::new("/x/db.lck"), &found);
        assert!(advice.contains("pacman (pid 10)"), "{advice}");
        let none = lock_advice(Path::new("/x/db.lck"), &[]);
        assert!(none.contains("sudo rm /x/db.lck"), "{none}");
    }

    #[test]
    fn a_pacman_on_another_root_does_not_hold_this_lock() {
        let t = tempfile::tempdir().unwrap();
        let db = t.path().join("var/lib/pacman");
        fs::create_dir_all(&db).unwrap();
        let args = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        let root = t.path().to_str().unwrap();
        let dbs = db.to_str().unwrap();
        assert!(may_hold(
            &db,
            "pacman",
            &args(&["pacman", "--root", root, "-S", "x"])
        ));
        assert!(may_hold(
            &db,
            "pacman",
            &args(&["pacman", &format!("--dbpath={dbs}")])
        ));
        assert!(!may_hold(
            &db,
            "pacman",
            &args(&["pacman", "-r", "/elsewhere", "-S"])
        ));
        assert!(!may_hold(&db, "pacman", &args(&["pacman", "-Syu"])));
        assert!(may_hold(
            &db,
            "pacman",
            &args(&["pacman", "--config", "/x.conf"])
        ));
        assert!(may_hold(&db, "paru", &args(&["paru", "-Syu"])));
        // koompi takes --root as pacman does: one on another root (another test's, or a
        // chroot's) does not hold this lock (a CI run caught this as a flaky test).
        assert!(!may_hold(
            &db,
            "koompi",
            &args(&[
                "koompi",
                "--config",
                "/x.conf",
                "--root",
                "/elsewhere",
                "install",
                "x"
            ])
        ));
        assert!(may_hold(
            &db,
            "koompi",
            &args(&["koompi", "--root", root, "install", "x"])
        ));
        assert!(may_hold(
            Path::new("/var/lib/pacman"),
            "pacman",
            &args(&["pacman", "-Q"])
        ));
    }

    #[test]
    fn snap_pac_means_no_second_snapshot() {
        let t = tempfile::tempdir().unwrap();
        let hooks = t.path().join("usr/share/libalpm/hooks");
        fs::create_dir_all(&hooks).unwrap();
        assert!(matches!(snapshot_plan(t.path()), SnapshotPlan::Skip(_)));
        fs::write(hooks.join("05-snap-pac-pre.hook"), "").unwrap();
        assert!(matches!(
            snapshot_plan(t.path()),
            SnapshotPlan::SnapPac { .. }
        ));
    }

    #[test]
    fn a_root_without_a_config_is_skipped_with_a_reason() {
        let t = tempfile::tempdir().unwrap();
        match snapshot_plan(t.path()) {
            SnapshotPlan::Skip(why) => assert!(why.contains("no snapper config"), "{why}"),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn descriptions_stay_short() {
        let many: Vec<String> = (0..50).map(|i| format!("package-{i}")).collect();
        let d = describe("install", &many);
        assert!(d.chars().count() <= 120);
        assert!(d.starts_with("koompi install: package-0"));
    }
}
