//! The watchdog's operations: what `koompi-watchdog check`, `success`, `status`,
//! `mark-good`, `refresh`, `deadline`, `init` and `grub-script` do.
//!
//! The pure parts (counting, known-good choice, kernel choice, GRUB text) live in their own
//! modules; this one reads and writes the ESP's environment block, the history file and the
//! snapshot store.

use std::fs;
use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};
use serde::Serialize;

use koompi_core::cmd::{Cmd, Runner};
use koompi_core::config::ShellVars;
use koompi_snapshots::config::SnapperConfig;
use koompi_snapshots::rollback;
use koompi_snapshots::store::{Snapshot, Store};

use crate::counting;
use crate::grubenv::{self, GrubEnv};
use crate::grubscript::{self, ScriptParams};
use crate::history::{self, History, RollbackRecord, SnapshotFacts};
use crate::kernel;

/// Where the settings live.
pub const SETTINGS_PATH: &str = "/etc/koompi/watchdog.conf";
/// Userdata key that marks a snapshot known-good (kept beside `important` in the snapshot
/// model).
pub use koompi_snapshots::model::KNOWN_GOOD_KEY;
/// How long the login message about an automatic recovery stays.
pub const RECOVERY_NOTICE_DAYS: i64 = 7;

/// Errors of the watchdog.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{context}: {source}")]
    Io {
        context: String,
        #[source]
        source: std::io::Error,
    },
    #[error(transparent)]
    GrubEnv(#[from] grubenv::GrubEnvError),
    #[error(transparent)]
    Snapshots(#[from] koompi_snapshots::Error),
    #[error(transparent)]
    Cmd(#[from] koompi_core::cmd::CmdError),
    #[error("settings {path}: {message}")]
    Settings { path: PathBuf, message: String },
    #[error(
        "the boot environment {0} is missing: run `koompi-watchdog init` (the ESP must be mounted)"
    )]
    NoEnv(PathBuf),
    #[error("cannot read {0}: permission denied (run it with sudo)")]
    Permission(PathBuf),
    #[error("the boot environment {path} is damaged ({why}); the next boot repairs it, or run `sudo koompi-watchdog success` now")]
    Damaged { path: PathBuf, why: String },
    #[error("this boot is not confirmed yet; a snapshot of an unconfirmed system is not known-good (use --force to mark it anyway)")]
    NotConfirmed,
    #[error("history {path} is corrupt: {message}")]
    History { path: PathBuf, message: String },
}

/// Result with the watchdog's [`Error`].
pub type Result<T> = std::result::Result<T, Error>;

fn io(context: impl Into<String>) -> impl FnOnce(std::io::Error) -> Error {
    let context = context.into();
    move |source| Error::Io { context, source }
}

/// Which snapper config the watchdog uses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SnapperTarget {
    Name(String),
    File(PathBuf),
}

/// The watchdog's settings (`/etc/koompi/watchdog.conf`, snapper-style `KEY="value"`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settings {
    /// Mount point of the ESP (`ESP=`, default /boot/efi).
    pub esp: PathBuf,
    /// Where the history lives (`STATE_DIR=`, default /var/log/koompi).
    pub state_dir: PathBuf,
    /// `SNAPPER_CONFIG=` (default root).
    pub snapper: SnapperTarget,
    /// Seconds the system must stay up after reaching its target (`SUCCESS_DELAY_SEC=`).
    pub success_delay: u64,
    /// Where the login message goes (`MOTD_DIR=`, default /run/motd.d).
    pub motd_dir: PathBuf,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            esp: PathBuf::from("/boot/efi"),
            state_dir: PathBuf::from("/var/log/koompi"),
            snapper: SnapperTarget::Name("root".into()),
            success_delay: 300,
            motd_dir: PathBuf::from("/run/motd.d"),
        }
    }
}

impl Settings {
    /// Reads settings text; missing keys keep their defaults.
    pub fn parse(path: &Path, text: &str) -> Result<Self> {
        let bad = |message: String| Error::Settings {
            path: path.to_path_buf(),
            message,
        };
        let vars = ShellVars::parse(text).map_err(|e| bad(e.to_string()))?;
        let mut s = Settings::default();
        if let Some(v) = vars.get("ESP") {
            s.esp = PathBuf::from(v);
        }
        if let Some(v) = vars.get("STATE_DIR") {
            s.state_dir = PathBuf::from(v);
        }
        if let Some(v) = vars.get("SNAPPER_CONFIG") {
            s.snapper = SnapperTarget::Name(v.to_string());
        }
        if let Some(v) = vars.get("SNAPPER_CONFIG_FILE") {
            s.snapper = SnapperTarget::File(PathBuf::from(v));
        }
        if let Some(v) = vars.get("MOTD_DIR") {
            s.motd_dir = PathBuf::from(v);
        }
        if let Some(v) = vars.get("SUCCESS_DELAY_SEC") {
            s.success_delay = v.parse().map_err(|_| {
                bad(format!(
                    "SUCCESS_DELAY_SEC={v:?} is not a number of seconds"
                ))
            })?;
        }
        Ok(s)
    }

    /// Loads the settings file; a missing file means the defaults.
    pub fn load(path: &Path) -> Result<Self> {
        match fs::read_to_string(path) {
            Ok(t) => Self::parse(path, &t),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Settings::default()),
            Err(e) => Err(io(format!("cannot read {}", path.display()))(e)),
        }
    }

    /// The environment block on the ESP.
    pub fn env_path(&self) -> PathBuf {
        self.esp
            .join(grubscript::ENV_PATH_ON_ESP.trim_start_matches('/'))
    }

    fn history_path(&self) -> PathBuf {
        self.state_dir.join("watchdog.json")
    }

    /// The snapshot store of the configured snapper config.
    pub fn store(&self) -> Result<Store> {
        let cfg = match &self.snapper {
            SnapperTarget::Name(n) => SnapperConfig::by_name(n)?,
            SnapperTarget::File(p) => SnapperConfig::from_file(p)?,
        };
        Ok(Store::open(cfg)?)
    }
}

/// Facts about the running boot, read from /proc.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Host {
    pub cmdline: String,
    pub boot_id: String,
    pub boot_started: DateTime<Utc>,
    pub kernel_release: String,
}

impl Host {
    /// Reads /proc.
    pub fn read() -> Result<Self> {
        let r = |p: &str| fs::read_to_string(p).map_err(io(format!("cannot read {p}")));
        let uptime: f64 = r("/proc/uptime")?
            .split_whitespace()
            .next()
            .and_then(|s| s.parse().ok())
            .unwrap_or(0.0);
        let started = Utc::now() - chrono::Duration::milliseconds((uptime * 1000.0) as i64);
        Ok(Host {
            cmdline: r("/proc/cmdline")?.trim().to_string(),
            boot_id: r("/proc/sys/kernel/random/boot_id")?.trim().to_string(),
            boot_started: started,
            kernel_release: r("/proc/sys/kernel/osrelease")?.trim().to_string(),
        })
    }

    /// The snapshot this boot fell back to (`koompi.fallback=N`).
    pub fn fallback(&self) -> Option<u32> {
        grubscript::fallback_from_cmdline(&self.cmdline)
    }
}

/// Reads the history (empty when there is none yet).
pub fn load_history(settings: &Settings) -> Result<History> {
    let p = settings.history_path();
    match fs::read_to_string(&p) {
        Ok(t) => serde_json::from_str(&t).map_err(|e| Error::History {
            path: p,
            message: e.to_string(),
        }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(History::default()),
        Err(e) => Err(io(format!("cannot read {}", p.display()))(e)),
    }
}

fn save_history(settings: &Settings, h: &History) -> Result<()> {
    let p = settings.history_path();
    fs::create_dir_all(&settings.state_dir).map_err(io(format!(
        "cannot create {}",
        settings.state_dir.display()
    )))?;
    let text = serde_json::to_string_pretty(h).map_err(|e| Error::History {
        path: p.clone(),
        message: e.to_string(),
    })?;
    let tmp = p.with_extension("json.new");
    fs::write(&tmp, text)
        .and_then(|()| fs::File::open(&tmp)?.sync_all())
        .and_then(|()| fs::rename(&tmp, &p))
        .map_err(io(format!("cannot write {}", p.display())))
}

/// Whether the block exists: `Ok(false)` when it is missing, an error naming the real
/// cause when it cannot be told (no permission to look: not "missing").
fn env_exists(p: &Path) -> Result<bool> {
    match fs::symlink_metadata(p) {
        Ok(_) => Ok(true),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
        Err(e) if e.kind() == std::io::ErrorKind::PermissionDenied => {
            Err(Error::Permission(p.to_path_buf()))
        }
        Err(e) => Err(io(format!("cannot look at {}", p.display()))(e)),
    }
}

/// Reads the block without changing it (for `status`).
fn load_env(settings: &Settings) -> Result<GrubEnv> {
    let p = settings.env_path();
    if !env_exists(&p)? {
        return Err(Error::NoEnv(p));
    }
    grubenv::read(&p).map_err(|e| match e {
        grubenv::GrubEnvError::Io { source, .. }
            if source.kind() == std::io::ErrorKind::PermissionDenied =>
        {
            Error::Permission(p.clone())
        }
        e => Error::Damaged {
            path: p.clone(),
            why: e.to_string(),
        },
    })
}

/// For the commands that write the block: recreates a missing one when the ESP is there
/// (a reformatted ESP must not stop the watchdog from counting again) and repairs a
/// damaged one, so that GRUB can read it at the next boot. Returns whether it repaired.
fn load_or_init_env(settings: &Settings) -> Result<(GrubEnv, bool)> {
    let p = settings.env_path();
    if !env_exists(&p)? && settings.esp.is_dir() {
        tracing::warn!("{} was missing; creating it", p.display());
        init(settings, false)?;
    }
    if !env_exists(&p)? {
        return Err(Error::NoEnv(p));
    }
    let (env, repaired) = grubenv::read_or_repair(&p)?;
    if let Some(note) = &repaired {
        tracing::warn!("{note}");
    }
    Ok((env, repaired.is_some()))
}

/// Creates the environment block on the ESP (`force` resets an existing one).
pub fn init(settings: &Settings, force: bool) -> Result<PathBuf> {
    let p = settings.env_path();
    if env_exists(&p)? && !force {
        if let (_, Some(note)) = grubenv::read_or_repair(&p)? {
            tracing::warn!("{note}");
        }
        return Ok(p);
    }
    let mut env = GrubEnv::new();
    env.set("koompi_tries", "0")?;
    grubenv::write(&p, &env)?;
    Ok(p)
}

/// At install time: points the new environment block's fallback at the newest snapshot
/// marked known-good (the factory snapshot), so that even a first boot that fails before
/// `check` runs has somewhere to go back to. No boot history exists yet, so only marks
/// count, and the kernel is chosen by name (no running kernel to match).
pub fn init_fallback(settings: &Settings, store: &Store) -> Result<Option<Fallback>> {
    let mut snaps = store.snapshots()?;
    snaps.sort_by_key(|s| std::cmp::Reverse(s.info.num));
    let chosen = snaps
        .iter()
        .filter(|s| s.info.known_good() == Some(true))
        .find_map(|s| bootable(s, None));
    if let Some(f) = &chosen {
        let (mut env, _) = load_or_init_env(settings)?;
        set_fallback(&mut env, Some(f))?;
        grubenv::write(&settings.env_path(), &env)?;
    }
    Ok(chosen)
}

/// `snap` as a fallback target, if its /boot has a kernel with an initramfs (the one for
/// `release` when there is one).
fn bootable(snap: &Snapshot, release: Option<&str>) -> Option<Fallback> {
    let names: Vec<String> = fs::read_dir(snap.path.join("boot"))
        .map(|rd| {
            rd.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    let files = kernel::choose(&names, release)?;
    Some(Fallback {
        number: snap.info.num,
        name: snap.info.name().map(str::to_string),
        date: snap.info.date.and_utc(),
        kernel: files.kernel,
        initrd: files.initrd,
    })
}

/// Writes (or, with `None`, removes) the fallback GRUB reads from the environment block.
fn set_fallback(env: &mut GrubEnv, f: Option<&Fallback>) -> Result<()> {
    match f {
        Some(f) => {
            env.set("koompi_good", &f.number.to_string())?;
            env.set("koompi_kernel", &f.kernel)?;
            env.set("koompi_initrd", &f.initrd)?;
        }
        None => {
            env.unset("koompi_good");
            env.unset("koompi_kernel");
            env.unset("koompi_initrd");
        }
    }
    Ok(())
}

/// The known-good snapshot GRUB falls back to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Fallback {
    pub number: u32,
    pub name: Option<String>,
    pub date: DateTime<Utc>,
    pub kernel: String,
    pub initrd: String,
}

/// Marks every known-good snapshot and points GRUB's fallback at the newest one that has a
/// bootable kernel. Returns it.
pub fn refresh(settings: &Settings, host: &Host, history: &History) -> Result<Option<Fallback>> {
    let store = settings.store()?;
    let snaps = store.snapshots()?;
    let facts: Vec<SnapshotFacts> = snaps
        .iter()
        .map(|s| SnapshotFacts {
            num: s.info.num,
            date: s.info.date.and_utc(),
            marked: s.info.known_good() == Some(true),
            refused: s.info.known_good() == Some(false),
        })
        .collect();
    let good = history::known_good(history, &facts);
    for s in snaps.iter().filter(|s| good.contains(&s.info.num)) {
        if s.info.known_good() != Some(true) {
            let mut info = s.info.clone();
            info.userdata.insert(KNOWN_GOOD_KEY.into(), "yes".into());
            store.write_info(&info)?;
        }
    }
    let mut chosen = None;
    for num in good.iter().rev() {
        let Some(s) = snaps.iter().find(|s| s.info.num == *num) else {
            continue;
        };
        chosen = bootable(s, Some(&host.kernel_release));
        if chosen.is_some() {
            break;
        }
        tracing::warn!("known-good snapshot {num} has no kernel with an initramfs in /boot");
    }
    let (mut env, _) = load_or_init_env(settings)?;
    set_fallback(&mut env, chosen.as_ref())?;
    grubenv::write(&settings.env_path(), &env)?;
    Ok(chosen)
}

/// What `check` did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "outcome", rename_all = "kebab-case")]
pub enum CheckOutcome {
    /// A normal boot: counted by GRUB, waiting for `success`.
    Pending { tries: u8 },
    /// A fallback boot: the rollback to `target` is permanent, reboot follows.
    RolledBack { target: u32, backup: u32 },
}

/// Early in every boot. On a fallback boot: make the rollback permanent, keep the broken
/// state as a snapshot, record it, reset the counter, and ask for a reboot. Otherwise:
/// record that the boot is pending and refresh the fallback target.
pub fn check(
    settings: &Settings,
    host: &Host,
    runner: &Runner,
    reboot: bool,
) -> Result<CheckOutcome> {
    let mut history = load_history(settings)?;
    history.record_boot(&host.boot_id, host.boot_started, host.fallback());
    let (mut env, repaired) = load_or_init_env(settings)?;
    let mut tries = counting::parse_tries(env.get("koompi_tries"));
    if repaired && env.get("koompi_tries").is_none() {
        // GRUB could not read the block, so it did not count this boot: count it here,
        // on the side of caution, and write the count back for GRUB.
        tries = tries.max(1);
        env.set("koompi_tries", &tries.to_string())?;
        grubenv::write(&settings.env_path(), &env)?;
    }
    let outcome = if let Some(target) = host.fallback() {
        let store = settings.store()?;
        let report = rollback::rollback(&store, target)?;
        history.record_rollback(RollbackRecord {
            time: Utc::now(),
            target,
            backup: report.backup,
            reason: format!("{} boots in a row were not confirmed", counting::MAX_TRIES),
        });
        env.set("koompi_tries", &counting::confirm(tries).to_string())?;
        grubenv::write(&settings.env_path(), &env)?;
        save_history(settings, &history)?;
        let _ = write_motd(settings, &history);
        if reboot {
            Cmd::new("systemctl")
                .args(["--no-block", "reboot"])
                .run(runner)?;
        }
        CheckOutcome::RolledBack {
            target,
            backup: report.backup,
        }
    } else {
        save_history(settings, &history)?;
        if let Err(e) = refresh(settings, host, &history) {
            tracing::warn!("cannot refresh the fallback snapshot: {e}");
        }
        let _ = write_motd(settings, &history);
        CheckOutcome::Pending { tries }
    };
    Ok(outcome)
}

/// Confirms this boot: resets GRUB's counter and refreshes the known-good snapshot.
pub fn success(settings: &Settings, host: &Host) -> Result<Option<Fallback>> {
    let mut history = load_history(settings)?;
    history.confirm(&host.boot_id, host.boot_started, Utc::now());
    let (mut env, _) = load_or_init_env(settings)?;
    env.set("koompi_tries", &counting::confirm(0).to_string())?;
    grubenv::write(&settings.env_path(), &env)?;
    save_history(settings, &history)?;
    // The boot is confirmed now; not finding the fallback snapshot (no snapper config,
    // say) is worth a warning, not a failure of the confirmation.
    match refresh(settings, host, &history) {
        Ok(f) => Ok(f),
        Err(e) => {
            tracing::warn!(
                "this boot is confirmed, but the fallback snapshot was not refreshed: {e}"
            );
            Ok(None)
        }
    }
}

/// Marks snapshot `num` known-good (this boot must be confirmed unless `force`).
pub fn mark_good(
    settings: &Settings,
    host: &Host,
    num: u32,
    force: bool,
) -> Result<Option<Fallback>> {
    let history = load_history(settings)?;
    let confirmed = history
        .boot(&host.boot_id)
        .is_some_and(|b| b.confirmed.is_some());
    if !confirmed && !force {
        return Err(Error::NotConfirmed);
    }
    let store = settings.store()?;
    let mut info = store.get(num)?.info;
    info.userdata.insert(KNOWN_GOOD_KEY.into(), "yes".into());
    store.write_info(&info)?;
    refresh(settings, host, &history)
}

/// At the boot deadline: reboot when this boot was never confirmed. Returns whether it did.
pub fn deadline(settings: &Settings, host: &Host, runner: &Runner) -> Result<bool> {
    let history = load_history(settings)?;
    if history
        .boot(&host.boot_id)
        .is_some_and(|b| b.confirmed.is_some())
    {
        return Ok(false);
    }
    tracing::error!("this boot was not confirmed in time: rebooting so the watchdog counts it");
    Cmd::new("systemctl")
        .args(["reboot", "--force"])
        .run(runner)?;
    Ok(true)
}

/// Everything `status` shows.
#[derive(Debug, Clone, Serialize)]
pub struct Status {
    /// Boots GRUB counted since the last confirmed one (this one included while pending).
    pub tries: u8,
    pub failed_attempts: u8,
    /// Whether this boot is confirmed.
    pub confirmed: bool,
    /// The snapshot this boot fell back to.
    pub booted_fallback: Option<u32>,
    /// The known-good snapshot GRUB falls back to.
    pub fallback: Option<FallbackView>,
    pub last_confirmed: Option<DateTime<Utc>>,
    pub rollbacks: Vec<RollbackRecord>,
    pub env_path: PathBuf,
}

/// The fallback as `status` shows it (from the environment block).
#[derive(Debug, Clone, Serialize)]
pub struct FallbackView {
    pub number: u32,
    pub kernel: String,
    pub initrd: String,
}

/// Reads the state without changing anything.
pub fn status(settings: &Settings, host: &Host) -> Result<Status> {
    let history = load_history(settings)?;
    let env = load_env(settings)?;
    let tries = counting::parse_tries(env.get("koompi_tries"));
    let fallback = env
        .get("koompi_good")
        .and_then(|g| g.parse().ok())
        .map(|number| FallbackView {
            number,
            kernel: env.get("koompi_kernel").unwrap_or("").to_string(),
            initrd: env.get("koompi_initrd").unwrap_or("").to_string(),
        });
    Ok(Status {
        tries,
        failed_attempts: counting::failed_attempts(tries),
        confirmed: history
            .boot(&host.boot_id)
            .is_some_and(|b| b.confirmed.is_some()),
        booted_fallback: host.fallback(),
        fallback,
        last_confirmed: history.last_confirmed().and_then(|b| b.confirmed),
        rollbacks: history.rollbacks.clone(),
        env_path: settings.env_path(),
    })
}

/// The login message about a recent automatic recovery, if any.
pub fn recovery_notice(history: &History, now: DateTime<Utc>) -> Option<String> {
    let r = history.rollbacks.last()?;
    if now - r.time > chrono::Duration::days(RECOVERY_NOTICE_DAYS) {
        return None;
    }
    Some(format!(
        "\n  KOOMPI watchdog: on {} this computer failed to start {} times in a row.\n  \
         It went back by itself to the last good system (snapshot {}).\n  \
         The broken system is kept as snapshot {}. Details: koompi-watchdog status\n\n",
        r.time.format("%Y-%m-%d %H:%M UTC"),
        counting::MAX_TRIES,
        r.target,
        r.backup
    ))
}

fn write_motd(settings: &Settings, history: &History) -> Result<()> {
    let p = settings.motd_dir.join("koompi-watchdog.motd");
    match recovery_notice(history, Utc::now()) {
        Some(text) => {
            fs::create_dir_all(&settings.motd_dir)
                .map_err(io(format!("cannot create {}", settings.motd_dir.display())))?;
            fs::write(&p, text).map_err(io(format!("cannot write {}", p.display())))
        }
        None => {
            let _ = fs::remove_file(&p);
            Ok(())
        }
    }
}

/// The GRUB code for grub-mkconfig, for this machine.
pub fn grub_script(settings: &Settings, runner: &Runner) -> Result<String> {
    let probe = |path: &Path| -> Result<String> {
        Ok(Cmd::new("grub-probe")
            .args(["--target=fs_uuid"])
            .arg(path)
            .run(runner)?
            .stdout
            .trim()
            .to_string())
    };
    let esp_uuid = probe(&settings.esp)?;
    let root_uuid = match std::env::var("GRUB_DEVICE_UUID") {
        Ok(u) if !u.is_empty() => u,
        _ => probe(Path::new("/"))?,
    };
    let snapshots_subvol = koompi_core::mounts::read()
        .ok()
        .and_then(|m| {
            koompi_core::mounts::mount_at(&m, Path::new("/.snapshots"))
                .map(|m| m.root.trim_start_matches('/').to_string())
        })
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "@snapshots".to_string());
    let cmdline = format!(
        "{} {}",
        std::env::var("GRUB_CMDLINE_LINUX").unwrap_or_default(),
        std::env::var("GRUB_CMDLINE_LINUX_DEFAULT").unwrap_or_default()
    );
    Ok(grubscript::render(&ScriptParams {
        esp_uuid,
        root_uuid,
        snapshots_subvol,
        cmdline,
    }))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn settings_defaults_and_overrides() {
        let s = Settings::parse(Path::new("x"), "").unwrap();
        assert_eq!(s, Settings::default());
        let s = Settings::parse(
            Path::new("x"),
            "ESP=/efi\nSUCCESS_DELAY_SEC=5\nSNAPPER_CONFIG_FILE=/tmp/c\n",
        )
        .unwrap();
        assert_eq!(s.esp, PathBuf::from("/efi"));
        assert_eq!(s.success_delay, 5);
        assert_eq!(s.snapper, SnapperTarget::File("/tmp/c".into()));
        assert_eq!(s.env_path(), PathBuf::from("/efi/koompi/grubenv"));
        assert!(Settings::parse(Path::new("x"), "SUCCESS_DELAY_SEC=soon\n").is_err());
    }

    #[test]
    fn notice_only_for_recent_rollbacks() {
        let now = Utc::now();
        let mut h = History::default();
        assert!(recovery_notice(&h, now).is_none());
        h.record_rollback(RollbackRecord {
            time: now - chrono::Duration::days(1),
            target: 4,
            backup: 9,
            reason: "x".into(),
        });
        let n = recovery_notice(&h, now).unwrap();
        assert!(n.contains("snapshot 4") && n.contains("snapshot 9"), "{n}");
        assert!(recovery_notice(&h, now + chrono::Duration::days(8)).is_none());
    }

    #[test]
    fn init_creates_a_valid_block_once() {
        let d = tempfile::tempdir().unwrap();
        let s = Settings {
            esp: d.path().to_path_buf(),
            ..Settings::default()
        };
        let p = init(&s, false).unwrap();
        assert_eq!(std::fs::metadata(&p).unwrap().len(), 1024);
        let mut env = grubenv::read(&p).unwrap();
        env.set("koompi_tries", "2").unwrap();
        grubenv::write(&p, &env).unwrap();
        init(&s, false).unwrap();
        assert_eq!(grubenv::read(&p).unwrap().get("koompi_tries"), Some("2"));
        init(&s, true).unwrap();
        assert_eq!(grubenv::read(&p).unwrap().get("koompi_tries"), Some("0"));
        // A lost block is recreated where the watchdog writes, not where it only reads.
        std::fs::remove_file(&p).unwrap();
        assert!(matches!(load_env(&s), Err(Error::NoEnv(_))));
        assert_eq!(
            load_or_init_env(&s).unwrap().0.get("koompi_tries"),
            Some("0")
        );
    }
}
