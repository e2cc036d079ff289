//! The executor: runs a [`Plan`] step by step through koompi-core's runner.
//!
//! Each action is one program (or one file operation); secrets reach programs only on
//! standard input ([`Secrets`], never in argv, logs or errors). Each finished step's id is
//! added to a [`Journal`] on the live system and, once the new system is mounted, to its
//! copy on the target disk ([`TARGET_JOURNAL`], found by [`journal_on_disk`] after a power
//! cut), so a re-run with the same plan skips what is done; the opens and mounts of the
//! steps it skips are made again ([`replay`]). Actions are written to be run again safely:
//! a mount that is already there is kept, a file is replaced whole (written beside, then
//! renamed), a removal of something absent is no error. [`lock`] keeps a second install
//! from running at the same moment.

use std::fs;
use std::io::{Read, Write};
use std::os::unix::fs::{symlink, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use koompi_core::cmd::{Cmd, CmdError, Runner};
use serde::{Deserialize, Serialize};

use crate::plan::{
    sfdisk_script, with_block, Action, Ids, Plan, Secret, Step, PEEK, TARGET, TARGET_JOURNAL,
    TARGET_VAR_LOG,
};

/// The largest secret file read (a password or passphrase, not a key file).
const SECRET_MAX: u64 = 4096;

/// The password and passphrase, read once from their files (or standard input).
#[derive(Default)]
pub struct Secrets {
    password: Option<String>,
    passphrase: Option<String>,
}

impl std::fmt::Debug for Secrets {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secrets { .. }")
    }
}

/// Why an install step failed.
#[derive(Debug, thiserror::Error)]
pub enum ExecError {
    #[error("step {step} ({title}): {source}")]
    Cmd {
        step: String,
        title: String,
        #[source]
        source: Box<CmdError>,
    },
    #[error("step {step} ({title}): {what}: {source}")]
    Io {
        step: String,
        title: String,
        what: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{0}")]
    Secret(String),
    #[error(
        "the journal {path} belongs to another install ({why}); run with --restart to start over"
    )]
    ForeignJournal { path: String, why: String },
    #[error("another koompi-install is running (it holds {path}); nothing was changed")]
    Busy { path: String },
    #[error("cannot lock {path}: {source}")]
    Lock {
        path: String,
        #[source]
        source: std::io::Error,
    },
}

/// Holds the install lock while it lives ([`lock`]).
#[derive(Debug)]
pub struct InstallLock(#[allow(dead_code)] koompi_core::fsutil::Lock);

/// Takes the lock at `path` (an flock, released when the process ends however it ends),
/// so that two installs (the fleet's service and a person at the keyboard) never run at
/// the same moment. Does not wait: the second one is refused.
pub fn lock(path: &Path) -> Result<InstallLock, ExecError> {
    match koompi_core::fsutil::try_lock(path) {
        Ok(Some(l)) => Ok(InstallLock(l)),
        Ok(None) => Err(ExecError::Busy {
            path: path.display().to_string(),
        }),
        Err(source) => Err(ExecError::Lock {
            path: path.display().to_string(),
            source,
        }),
    }
}

impl Secrets {
    /// Reads the secrets `plan` needs from their files; `-` is standard input (once).
    pub fn load(plan: &Plan) -> Result<Secrets, ExecError> {
        let mut s = Secrets::default();
        for step in &plan.steps {
            for a in &step.actions {
                let secret = match a {
                    Action::LuksFormat { passphrase, .. } => passphrase,
                    Action::SetPassword { password, .. } => password,
                    _ => continue,
                };
                let (slot, file) = match secret {
                    Secret::Password(f) => (&mut s.password, f),
                    Secret::Passphrase(f) => (&mut s.passphrase, f),
                };
                if slot.is_none() {
                    *slot = Some(read_secret(file, secret)?);
                }
            }
        }
        Ok(s)
    }

    /// Secrets given directly (tests, the TUI).
    pub fn new(password: Option<String>, passphrase: Option<String>) -> Secrets {
        Secrets {
            password,
            passphrase,
        }
    }

    fn get(&self, secret: &Secret) -> Result<&str, ExecError> {
        let v = match secret {
            Secret::Password(_) => &self.password,
            Secret::Passphrase(_) => &self.passphrase,
        };
        v.as_deref()
            .ok_or_else(|| ExecError::Secret(format!("{secret} was not read")))
    }
}

/// The first line of a secret file (or standard input), without its line break.
fn read_secret(file: &str, what: &Secret) -> Result<String, ExecError> {
    let mut text = String::new();
    let res = if file == "-" {
        std::io::stdin()
            .take(SECRET_MAX)
            .read_to_string(&mut text)
            .map(|_| ())
    } else {
        let meta = fs::metadata(file)
            .map_err(|e| ExecError::Secret(format!("cannot read {what}: {e}")))?;
        if !meta.is_file() || meta.len() > SECRET_MAX {
            return Err(ExecError::Secret(format!(
                "cannot read {what}: not a small regular file"
            )));
        }
        fs::File::open(file).and_then(|f| f.take(SECRET_MAX).read_to_string(&mut text).map(|_| ()))
    };
    res.map_err(|e| ExecError::Secret(format!("cannot read {what}: {e}")))?;
    let line = text.lines().next().unwrap_or("").to_string();
    if line.is_empty() {
        return Err(ExecError::Secret(format!("{what} is empty")));
    }
    Ok(line)
}

/// The steps done so far, with what identifies the install they belong to.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Journal {
    /// The disk and the plan's root filesystem UUID: another install's journal is refused.
    pub disk: String,
    pub root_uuid: String,
    pub done: Vec<String>,
    /// The identifiers the install formats with, so that a re-run plans with the same ones
    /// and resumes (the CLI reads them with [`Journal::read`]).
    #[serde(default)]
    pub ids: Option<Ids>,
}

impl Journal {
    /// Reads the journal at `path` for `plan`; a fresh one when there is none.
    pub fn open(path: &Path, plan: &Plan) -> Result<Journal, ExecError> {
        let fresh = Journal {
            disk: plan.disk.clone(),
            root_uuid: plan_root_uuid(plan),
            done: Vec::new(),
            ids: Some(plan.ids()),
        };
        let text = match fs::read_to_string(path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(fresh),
            Err(e) => {
                return Err(ExecError::ForeignJournal {
                    path: path.display().to_string(),
                    why: e.to_string(),
                })
            }
        };
        let j: Journal = serde_json::from_str(&text).map_err(|e| ExecError::ForeignJournal {
            path: path.display().to_string(),
            why: format!("unreadable: {e}"),
        })?;
        if j.disk != fresh.disk || j.root_uuid != fresh.root_uuid {
            return Err(ExecError::ForeignJournal {
                path: path.display().to_string(),
                why: format!("disk {} with filesystem {}", j.disk, j.root_uuid),
            });
        }
        Ok(j)
    }

    /// The journal at `path`, if there is a readable one.
    pub fn read(path: &Path) -> Option<Journal> {
        let text = fs::read_to_string(path).ok()?;
        serde_json::from_str(&text).ok()
    }

    /// Adds `id` and writes the journal whole at `path`.
    fn record(&mut self, path: &Path, id: &str) -> std::io::Result<()> {
        self.done.push(id.to_string());
        self.write(path)
    }

    /// Writes the journal whole: beside, synced, renamed, and the rename synced (on the
    /// target disk it must survive a power cut).
    pub fn write(&self, path: &Path) -> std::io::Result<()> {
        let tmp = path.with_extension("tmp");
        let text = serde_json::to_string_pretty(self).map_err(std::io::Error::other)?;
        let dir = path.parent().unwrap_or(Path::new("."));
        fs::create_dir_all(dir)?;
        {
            let mut f = fs::File::create(&tmp)?;
            std::io::Write::write_all(&mut f, text.as_bytes())?;
            f.sync_all()?;
        }
        fs::rename(&tmp, path)?;
        fs::File::open(dir)?.sync_all()
    }
}

/// The root filesystem UUID a plan formats with.
fn plan_root_uuid(plan: &Plan) -> String {
    plan.steps
        .iter()
        .flat_map(|s| &s.actions)
        .find_map(|a| match a {
            Action::FormatBtrfs { uuid, .. } => Some(uuid.clone()),
            _ => None,
        })
        .unwrap_or_default()
}

/// What a run should do besides the whole plan (tests run parts of it).
#[derive(Debug, Clone)]
pub struct Options {
    /// Run only these steps (by id); all when empty.
    pub only: Vec<String>,
    /// The pause after a download's first failure; each next one is three times longer
    /// ([`download_pause`]).
    pub download_pause: std::time::Duration,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            only: Vec::new(),
            download_pause: std::time::Duration::from_secs(10),
        }
    }
}

/// How many times a step that downloads (pacstrap) is tried before the install stops:
/// a school's internet drops for minutes, not hours.
pub const DOWNLOAD_TRIES: u32 = 4;

/// The pause after the `failures`-th failure of a download (1, 2, ...): `first`, then
/// three times longer each time (10 s, 30 s, 90 s by default), never more than 10 minutes.
pub fn download_pause(first: std::time::Duration, failures: u32) -> std::time::Duration {
    let factor = 3u32.saturating_pow(failures.saturating_sub(1));
    first
        .saturating_mul(factor)
        .min(std::time::Duration::from_secs(600))
}

/// One line of progress: step `n` of `total` starts, or (with bytes) moves on.
#[derive(Debug, Clone, Serialize)]
pub struct Progress<'a> {
    pub step: usize,
    pub total: usize,
    pub id: &'a str,
    pub title: &'a str,
    /// True when the journal says it is done and it is skipped.
    pub skipped: bool,
    /// For a step that copies: the bytes of its source read so far, and in all. Absent
    /// in the line that starts a step.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bytes_done: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bytes_total: Option<u64>,
    /// Something the step has to say while it runs (a download failed and is tried again).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

/// How often a copying step reports its bytes.
const BYTES_EVERY: std::time::Duration = std::time::Duration::from_secs(1);

/// Runs `plan`, skipping the steps `journal_path` lists as done; calls `progress` as each
/// step starts. The first failing required step stops the run.
pub fn execute(
    plan: &Plan,
    secrets: &Secrets,
    runner: &Runner,
    journal_path: &Path,
    opts: &Options,
    progress: &mut dyn FnMut(&Progress<'_>),
) -> Result<Journal, ExecError> {
    let mut journal = Journal::open(journal_path, plan)?;
    let total = plan.steps.len();
    for (i, step) in plan.steps.iter().enumerate() {
        if !opts.only.is_empty() && !opts.only.iter().any(|o| o == step.id) {
            continue;
        }
        let skipped = journal.done.iter().any(|d| d == step.id);
        let at = |bytes: Option<(u64, u64)>, note: Option<String>| Progress {
            step: i + 1,
            total,
            id: step.id,
            title: &step.title,
            skipped,
            bytes_done: bytes.map(|b| b.0),
            bytes_total: bytes.map(|b| b.1),
            note,
        };
        progress(&at(None, None));
        if skipped {
            // What it opened and mounted may be gone (a restarted live system): again.
            replay(step, secrets, runner)?;
            continue;
        }
        let mut report = |r: Report| match r {
            Report::Bytes(done, all) => progress(&at(Some((done, all)), None)),
            Report::Note(text) => progress(&at(None, Some(text))),
        };
        match run_step(step, secrets, runner, opts, &mut report) {
            Ok(()) => {}
            Err(e) if step.optional => {
                tracing::warn!("optional step {} skipped: {e}", step.id);
            }
            Err(e) => return Err(e),
        }
        journal
            .record(journal_path, step.id)
            .map_err(|source| io_err(step, "cannot write the journal", source))?;
        if is_mounted(TARGET_VAR_LOG) && step.id != "finish" {
            if let Err(e) = journal.write(Path::new(TARGET_JOURNAL)) {
                tracing::warn!("cannot keep the journal on the disk ({TARGET_JOURNAL}): {e}");
            }
        }
    }
    Ok(journal)
}

/// The actions of a step done before whose effect does not outlive the live system
/// (opening the container, mounting, unmounting), run again so that the next steps find
/// what they expect. Each is a no-op when its effect is there.
fn replay(step: &Step, secrets: &Secrets, runner: &Runner) -> Result<(), ExecError> {
    for a in &step.actions {
        if matches!(
            a,
            Action::LuksOpen { .. }
                | Action::LuksClose { .. }
                | Action::Mount { .. }
                | Action::Unmount { .. }
        ) {
            for cmd in commands(a, secrets)? {
                cmd.run(runner).map_err(|source| ExecError::Cmd {
                    step: step.id.into(),
                    title: step.title.clone(),
                    source: Box::new(source),
                })?;
            }
        }
    }
    Ok(())
}

/// The journal an interrupted install of `plan` left on its disk ([`TARGET_JOURNAL`]),
/// for a re-run after the live system restarted (a power cut took its journal in /run):
/// the root filesystem's `@var_log` is mounted read-only at [`PEEK`] for a moment (the
/// container opened with the plan's passphrase first, and closed again). `None` when
/// there is none, it is unreadable, or it is another disk's.
pub fn journal_on_disk(plan: &Plan, secrets: &Secrets, runner: &Runner) -> Option<Journal> {
    let mut btrfs = None;
    let mut luks = None;
    for a in plan.steps.iter().flat_map(|s| &s.actions) {
        match a {
            Action::FormatBtrfs { device, .. } if btrfs.is_none() => btrfs = Some(device),
            Action::LuksOpen { .. } if luks.is_none() => luks = Some(a),
            _ => {}
        }
    }
    let btrfs = btrfs?;
    let mut opened_here = None;
    if let Some(open @ Action::LuksOpen { name, .. }) = luks {
        if !Path::new("/dev/mapper").join(name).exists() {
            for cmd in commands(open, secrets).ok()? {
                cmd.run(runner).ok()?;
            }
            opened_here = Some(name);
        }
    }
    let mut found = None;
    if Path::new(btrfs).exists() && fs::create_dir_all(PEEK).is_ok() {
        let mount = Cmd::new("mount").args(["-o", "ro,subvol=@var_log", btrfs, PEEK]);
        if mount.run(runner).is_ok() {
            let file = Path::new(PEEK).join("koompi-install.journal");
            found = Journal::read(&file).filter(|j| j.disk == plan.disk);
            if let Err(e) = Cmd::new("umount").arg(PEEK).run(runner) {
                tracing::warn!("{e}");
            }
        }
    }
    if let Some(name) = opened_here {
        let _ = Cmd::new("cryptsetup").args(["close", name]).run(runner);
    }
    found
}

fn io_err(step: &Step, what: &str, source: std::io::Error) -> ExecError {
    ExecError::Io {
        step: step.id.into(),
        title: step.title.clone(),
        what: what.into(),
        source,
    }
}

/// What a running step reports.
enum Report {
    /// The bytes of the image read so far, and in all.
    Bytes(u64, u64),
    /// A line for the user.
    Note(String),
}

/// Runs the actions of `step`; a copy of the root image reports the bytes read of it
/// while it runs, a download that fails is tried again ([`DOWNLOAD_TRIES`], pausing
/// longer each time) and says so.
fn run_step(
    step: &Step,
    secrets: &Secrets,
    runner: &Runner,
    opts: &Options,
    report: &mut dyn FnMut(Report),
) -> Result<(), ExecError> {
    let cmd_err = |source| ExecError::Cmd {
        step: step.id.into(),
        title: step.title.clone(),
        source: Box::new(source),
    };
    for a in &step.actions {
        if let Action::LuksKeyFile { device, path, .. } = a {
            // A resumed install: the key file already opens the container.
            let test = Cmd::new("cryptsetup").args([
                "open",
                "--test-passphrase",
                "--key-file",
                path,
                device,
            ]);
            if test.run(runner).is_ok() {
                continue;
            }
        }
        let size = match a {
            Action::CopyImage { image, .. } => fs::metadata(image).ok().map(|m| m.len()),
            _ => None,
        };
        let tries = if matches!(a, Action::Pacstrap { .. }) {
            DOWNLOAD_TRIES
        } else {
            1
        };
        for cmd in commands(a, secrets)? {
            let mut failures = 0;
            let ran = loop {
                let ran = match size {
                    // The image's bytes read by the unpacker so far (its /proc/PID/io).
                    Some(total) => cmd.run_watched(runner, BYTES_EVERY, &mut |pid| {
                        if let Some(read) = bytes_read(pid) {
                            report(Report::Bytes(read.min(total), total));
                        }
                    }),
                    None => cmd.run(runner),
                };
                match ran {
                    Err(e @ CmdError::Failed { .. }) if failures + 1 < tries => {
                        failures += 1;
                        let pause = download_pause(opts.download_pause, failures);
                        let why = last_line(&e);
                        tracing::warn!("{e}");
                        report(Report::Note(format!(
                            "the download failed ({why}); trying again in {} s (try {} of \
                             {tries})",
                            pause.as_secs(),
                            failures + 1
                        )));
                        std::thread::sleep(pause);
                    }
                    other => break other,
                }
            };
            match ran {
                Ok(_) => {}
                // Clearing what the kernel may still list: nothing there is no failure.
                Err(e) if is_partx_tolerated(&cmd) => tracing::debug!("{e}"),
                Err(e) => return Err(cmd_err(e)),
            }
        }
        files(a).map_err(|(what, e)| io_err(step, &what, e))?;
    }
    Ok(())
}

/// Why a program failed, in one line: pacman's first `error:` line (which file, from
/// where, why), or else the last line it printed, or else the error itself.
fn last_line(e: &CmdError) -> String {
    if let CmdError::Failed { stderr, .. } = e {
        let mut lines = stderr.lines().map(str::trim).filter(|l| !l.is_empty());
        if let Some(l) = lines.clone().find(|l| l.starts_with("error:")) {
            return l.to_string();
        }
        if let Some(l) = lines.next_back() {
            return l.to_string();
        }
    }
    e.to_string()
}

/// The bytes process `pid` has read so far (`rchar` of /proc/PID/io, all its threads).
fn bytes_read(pid: u32) -> Option<u64> {
    let io = fs::read_to_string(format!("/proc/{pid}/io")).ok()?;
    io.lines()
        .find_map(|l| l.strip_prefix("rchar:"))
        .and_then(|v| v.trim().parse().ok())
}

/// `partx`, whose failures are expected: `--delete` when the kernel lists nothing, `--add`
/// when udev added a partition first. What counts is that every partition's node is there
/// afterwards, which the step waits for.
fn is_partx_tolerated(cmd: &Cmd) -> bool {
    let line = cmd.cmdline();
    line.starts_with("partx --delete ") || line.starts_with("partx --add ")
}

/// `udevadm settle` where udev runs (not in the tests' containers).
pub fn udev_settle() -> Option<Cmd> {
    ["/usr/bin/udevadm", "/bin/udevadm", "/usr/sbin/udevadm"]
        .iter()
        .find(|p| Path::new(p).exists())
        .filter(|_| Path::new("/run/udev/control").exists())
        .map(|p| Cmd::new(p).args(["settle", "--timeout=30"]))
}

/// Whether `path` is a mount point (its own line in /proc/self/mountinfo).
fn is_mounted(path: &str) -> bool {
    fs::read_to_string("/proc/self/mountinfo")
        .is_ok_and(|m| m.lines().any(|l| l.split_whitespace().nth(4) == Some(path)))
}

/// The programs an action runs (none for file actions).
fn commands(a: &Action, secrets: &Secrets) -> Result<Vec<Cmd>, ExecError> {
    Ok(match a {
        Action::Wipe { device } => {
            // The partitions first (their filesystems' signatures), then the table.
            let parts = fs::read_dir("/dev")
                .map(|rd| {
                    let mut v: Vec<String> = rd
                        .filter_map(|e| e.ok())
                        .map(|e| format!("/dev/{}", e.file_name().to_string_lossy()))
                        .filter(|p| is_partition_of(p, device))
                        .collect();
                    v.sort();
                    v
                })
                .unwrap_or_default();
            let mut v: Vec<Cmd> = parts
                .iter()
                .map(|p| Cmd::new("wipefs").args(["--all", "--force", p]))
                .collect();
            v.push(Cmd::new("wipefs").args(["--all", "--force", device]));
            v
        }
        Action::Partition { device, partitions } => [
            Some(
                Cmd::new("sfdisk")
                    .args([
                        "--quiet",
                        "--wipe",
                        "always",
                        "--wipe-partitions",
                        "always",
                        device,
                    ])
                    .stdin(sfdisk_script(partitions)),
            ),
            // The kernel's view of the new table (the device nodes are awaited after):
            // what it still lists goes first (`partx -a` refuses partitions it already
            // has; `--update` would not add new ones), then the new ones. Where udev
            // runs, it re-reads the table itself after sfdisk closed the disk: let it
            // finish before and after, or it races partx.
            udev_settle(),
            Some(Cmd::new("partx").args(["--delete", device])),
            Some(Cmd::new("partx").args(["--add", device])),
            udev_settle(),
        ]
        .into_iter()
        .flatten()
        .collect(),
        Action::FormatFat {
            device,
            label,
            volume_id,
        } => vec![Cmd::new("mkfs.fat").args(["-F", "32", "-n", label, "-i", volume_id, device])],
        Action::LuksFormat {
            device,
            uuid,
            pbkdf,
            passphrase,
        } => vec![Cmd::new("cryptsetup")
            .args([
                "luksFormat",
                "--batch-mode",
                "--type",
                "luks2",
                "--pbkdf",
                pbkdf,
                "--uuid",
                uuid,
                "--key-file",
                "-",
                device,
            ])
            .stdin_secret(secrets.get(passphrase)?.as_bytes().to_vec())],
        Action::LuksOpen {
            device,
            name,
            passphrase,
        } => {
            if Path::new("/dev/mapper").join(name).exists() {
                vec![]
            } else {
                vec![Cmd::new("cryptsetup")
                    .args(["open", "--key-file", "-", device, name])
                    .stdin_secret(secrets.get(passphrase)?.as_bytes().to_vec())]
            }
        }
        Action::LuksKeyFile {
            device,
            path,
            passphrase,
        } => vec![Cmd::new("cryptsetup")
            .args([
                "luksAddKey",
                "--batch-mode",
                "--pbkdf",
                "pbkdf2",
                "--pbkdf-force-iterations",
                "1000",
                "--key-file",
                "-",
                device,
                path,
            ])
            .stdin_secret(secrets.get(passphrase)?.as_bytes().to_vec())],
        Action::FormatBtrfs {
            device,
            label,
            uuid,
        } => {
            vec![Cmd::new("mkfs.btrfs")
                .args(["--force", "--quiet", "-L", label, "-U", uuid, device])]
        }
        Action::Subvolume { path } => {
            if Path::new(path).is_dir() {
                vec![]
            } else {
                vec![Cmd::new("btrfs").args(["subvolume", "create", path])]
            }
        }
        Action::Mount {
            device,
            path,
            options,
        } => {
            if is_mounted(path) {
                vec![]
            } else {
                vec![
                    Cmd::new("mkdir").args(["-p", path]),
                    Cmd::new("mount").args(["-o", options, device, path]),
                ]
            }
        }
        Action::Unmount { path } => {
            if is_mounted(path) {
                vec![Cmd::new("umount").args(["--recursive", path])]
            } else {
                vec![]
            }
        }
        Action::LuksClose { name } => {
            if Path::new("/dev/mapper").join(name).exists() {
                vec![Cmd::new("cryptsetup").args(["close", name])]
            } else {
                vec![]
            }
        }
        Action::CopyImage { image, to } => {
            vec![Cmd::new("unsquashfs").args(["-force", "-no-progress", "-dest", to, image])]
        }
        Action::Pacstrap { to, packages } => {
            vec![Cmd::new("pacstrap").args(["-K", to]).args(packages)]
        }
        Action::InTarget { argv } => vec![in_target(argv)],
        Action::SetPassword { user, password } => vec![in_target(&["chpasswd".to_string()])
            .stdin_secret(format!("{user}:{}\n", secrets.get(password)?).into_bytes())],
        Action::CopyFile { .. }
        | Action::Remove { .. }
        | Action::WriteFile { .. }
        | Action::Link { .. }
        | Action::SetBlock { .. }
        | Action::KeyFile { .. } => vec![],
    })
}

/// A program run inside the target, with the API filesystems there (`arch-chroot` on
/// Arch; `systemd-nspawn`-free so that it works in a live system and in tests).
fn in_target(argv: &[String]) -> Cmd {
    // unshare: a private mount namespace, so /proc, /sys and /dev mounted for the command
    // vanish with it, whatever happens.
    let script = format!(
        "set -e; t={TARGET}; mount -t proc proc \"$t/proc\"; mount --rbind /sys \"$t/sys\"; \
         mount --rbind /dev \"$t/dev\"; mount -t tmpfs tmpfs \"$t/run\"; \
         [ -d /sys/firmware/efi/efivars ] && mount --rbind /sys/firmware/efi/efivars \"$t/sys/firmware/efi/efivars\" || true; \
         exec chroot \"$t\" \"$@\""
    );
    Cmd::new("unshare")
        .args([
            "--mount",
            "--propagation",
            "private",
            "--",
            "sh",
            "-c",
            &script,
            "in-target",
        ])
        .args(argv)
}

/// Whether `path` is a partition of `disk` (`/dev/sda1` of `/dev/sda`, `/dev/nvme0n1p2`).
fn is_partition_of(path: &str, disk: &str) -> bool {
    let Some(rest) = path.strip_prefix(disk) else {
        return false;
    };
    let rest = if disk.ends_with(|c: char| c.is_ascii_digit()) {
        match rest.strip_prefix('p') {
            Some(r) => r,
            None => return false,
        }
    } else {
        rest
    };
    !rest.is_empty() && rest.bytes().all(|b| b.is_ascii_digit())
}

/// How long the partitions' device nodes may take to appear (udev, or devtmpfs).
const NODE_WAIT: std::time::Duration = std::time::Duration::from_secs(30);

/// Fails unless `path` stays inside `root` when the parts of it that exist are resolved:
/// a symbolic link in the copied system (`etc -> /etc`) must not lead a write or a removal
/// into the live system. `path` itself is not resolved (a link there is what is replaced
/// or removed, never followed).
fn confined(root: &Path, path: &Path) -> std::io::Result<()> {
    let root = fs::canonicalize(root)?;
    let mut existing = path.parent();
    while let Some(dir) = existing {
        match fs::canonicalize(dir) {
            Ok(real) if real.starts_with(&root) => return Ok(()),
            Ok(real) => {
                return Err(std::io::Error::other(format!(
                    "{} leads outside {} (to {})",
                    dir.display(),
                    root.display(),
                    real.display()
                )))
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => existing = dir.parent(),
            Err(e) => return Err(e),
        }
    }
    Err(std::io::Error::other(format!(
        "{} is not inside {}",
        path.display(),
        root.display()
    )))
}

/// The file operations of an action, and what must follow its programs (none for most).
fn files(a: &Action) -> Result<(), (String, std::io::Error)> {
    let target = Path::new(TARGET);
    let inside = |p: &str| confined(target, Path::new(p)).map_err(|e| (format!("refusing {p}"), e));
    match a {
        Action::CopyFile { to: p, .. }
        | Action::Remove { path: p }
        | Action::WriteFile { path: p, .. }
        | Action::Link { path: p, .. }
        | Action::SetBlock { path: p, .. }
        | Action::KeyFile { path: p } => inside(p)?,
        _ => {}
    }
    let ctx = |what: String| move |e| (what, e);
    match a {
        Action::Partition { partitions, .. } => {
            let start = std::time::Instant::now();
            for p in partitions {
                while !Path::new(&p.device).exists() {
                    if start.elapsed() > NODE_WAIT {
                        return Err((
                            format!("{} did not appear after partitioning", p.device),
                            std::io::Error::from(std::io::ErrorKind::NotFound),
                        ));
                    }
                    std::thread::sleep(std::time::Duration::from_millis(100));
                }
            }
        }
        Action::CopyFile { from, to } => {
            let tmp = format!("{to}.koompi-new");
            fs::copy(from, &tmp)
                .and_then(|_| fs::rename(&tmp, to))
                .map_err(ctx(format!("cannot copy {from} to {to}")))?;
        }
        Action::Remove { path } => match fs::symlink_metadata(path) {
            Ok(m) if m.is_dir() => {
                fs::remove_dir_all(path).map_err(ctx(format!("cannot remove {path}")))?
            }
            Ok(_) => fs::remove_file(path).map_err(ctx(format!("cannot remove {path}")))?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err((format!("cannot look at {path}"), e)),
        },
        Action::WriteFile {
            path,
            mode,
            content,
        } => {
            let p = PathBuf::from(path);
            if let Some(dir) = p.parent() {
                fs::create_dir_all(dir).map_err(ctx(format!("cannot create {}", dir.display())))?;
            }
            let tmp = format!("{path}.koompi-new");
            fs::write(&tmp, content)
                .and_then(|()| fs::set_permissions(&tmp, fs::Permissions::from_mode(*mode)))
                .and_then(|()| fs::rename(&tmp, path))
                .map_err(ctx(format!("cannot write {path}")))?;
        }
        Action::SetBlock { path, block } => {
            let (old, mode) = match fs::read_to_string(path) {
                Ok(t) => {
                    let mode = fs::symlink_metadata(path)
                        .map(|m| m.permissions().mode() & 0o7777)
                        .unwrap_or(0o644);
                    (t, mode)
                }
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => (String::new(), 0o644),
                Err(e) => return Err((format!("cannot read {path}"), e)),
            };
            let tmp = format!("{path}.koompi-new");
            fs::write(&tmp, with_block(&old, block))
                .and_then(|()| fs::set_permissions(&tmp, fs::Permissions::from_mode(mode)))
                .and_then(|()| fs::rename(&tmp, path))
                .map_err(ctx(format!("cannot write {path}")))?;
        }
        Action::KeyFile { path } => {
            let have = fs::symlink_metadata(path).is_ok_and(|m| m.is_file() && m.len() > 0);
            if !have {
                let p = Path::new(path);
                if let Some(dir) = p.parent() {
                    fs::create_dir_all(dir)
                        .and_then(|()| fs::set_permissions(dir, fs::Permissions::from_mode(0o700)))
                        .map_err(ctx(format!("cannot create {}", dir.display())))?;
                }
                let mut key = vec![0u8; 64];
                fs::File::open("/dev/urandom")
                    .and_then(|mut f| f.read_exact(&mut key))
                    .map_err(ctx("cannot read /dev/urandom".to_string()))?;
                let tmp = format!("{path}.koompi-new");
                let _ = fs::remove_file(&tmp);
                fs::OpenOptions::new()
                    .write(true)
                    .create_new(true)
                    .mode(0o400)
                    .open(&tmp)
                    .and_then(|mut f| f.write_all(&key).and_then(|()| f.sync_all()))
                    .and_then(|()| fs::rename(&tmp, path))
                    .map_err(ctx(format!("cannot write {path}")))?;
            }
        }
        Action::Link { path, to } => {
            let tmp = format!("{path}.koompi-new");
            let _ = fs::remove_file(&tmp);
            symlink(to, &tmp)
                .and_then(|()| fs::rename(&tmp, path))
                .map_err(ctx(format!("cannot link {path}")))?;
        }
        _ => {}
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A second install is refused while the first holds the lock, the lock is free again
    /// once the first ends, and a symbolic link planted in its place is never followed.
    #[test]
    fn one_install_at_a_time_and_never_through_a_link() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("run/lock");
        let first = lock(&path).expect("the first install");
        match lock(&path) {
            Err(ExecError::Busy { .. }) => {}
            other => panic!("a second install was not refused: {other:?}"),
        }
        drop(first);
        drop(lock(&path).expect("free again"));
        let elsewhere = dir.path().join("elsewhere");
        fs::write(&elsewhere, "not the installer's").expect("write");
        fs::remove_file(&path).expect("rm");
        symlink(&elsewhere, &path).expect("link");
        match lock(&path) {
            Err(ExecError::Lock { .. }) => {}
            other => panic!("the lock went through a link: {other:?}"),
        }
        assert_eq!(
            fs::read_to_string(&elsewhere).expect("read"),
            "not the installer's"
        );
    }

    #[test]
    fn downloads_pause_longer_each_time_up_to_ten_minutes() {
        let s = std::time::Duration::from_secs;
        let p = |n| download_pause(s(10), n).as_secs();
        assert_eq!([p(1), p(2), p(3), p(4)], [10, 30, 90, 270]);
        assert_eq!(p(9), 600);
        assert_eq!(p(u32::MAX), 600);
        assert_eq!(download_pause(s(10), 0).as_secs(), 10);
    }

    #[test]
    fn partitions_are_told_from_other_disks() {
        assert!(is_partition_of("/dev/sda1", "/dev/sda"));
        assert!(is_partition_of("/dev/sda12", "/dev/sda"));
        assert!(!is_partition_of("/dev/sdab", "/dev/sda"));
        assert!(!is_partition_of("/dev/sda", "/dev/sda"));
        assert!(is_partition_of("/dev/nvme0n1p2", "/dev/nvme0n1"));
        assert!(!is_partition_of("/dev/nvme0n12", "/dev/nvme0n1"));
        assert!(is_partition_of("/dev/loop3p1", "/dev/loop3"));
        assert!(!is_partition_of("/dev/loop31", "/dev/loop3"));
    }

    #[test]
    fn links_never_lead_outside_the_target() {
        let dir = tempfile::tempdir().expect("tempdir");
        let root = dir.path().join("target");
        let outside = dir.path().join("live-etc");
        fs::create_dir_all(root.join("usr")).expect("mkdir");
        fs::create_dir_all(&outside).expect("mkdir");
        symlink(&outside, root.join("etc")).expect("link");
        symlink("/", root.join("up")).expect("link");
        assert!(confined(&root, &root.join("usr/lib/new/file")).is_ok());
        assert!(confined(&root, &root.join("etc-absent/x")).is_ok());
        // A link as the last part is what gets replaced, not followed.
        assert!(confined(&root, &root.join("etc")).is_ok());
        for bad in ["etc/fstab", "etc/deeper/x", "up/etc/passwd"] {
            let e = confined(&root, &root.join(bad)).expect_err(bad);
            assert!(e.to_string().contains("leads outside"), "{bad}: {e}");
        }
        assert!(confined(&root, Path::new("/etc/fstab")).is_err());
    }

    #[test]
    fn secrets_are_never_shown() {
        let s = Secrets::new(Some("hunter2".into()), None);
        assert_eq!(format!("{s:?}"), "Secrets { .. }");
        let cmd = commands(
            &Action::SetPassword {
                user: "u".into(),
                password: Secret::Password("/pw".into()),
            },
            &s,
        )
        .expect("commands");
        assert!(
            !cmd[0].cmdline().contains("hunter2"),
            "{}",
            cmd[0].cmdline()
        );
        let e = commands(
            &Action::LuksOpen {
                device: "/dev/x".into(),
                name: "koompi-install-test-absent".into(),
                passphrase: Secret::Passphrase("/p".into()),
            },
            &s,
        )
        .expect_err("no passphrase");
        assert_eq!(e.to_string(), "the passphrase from /p was not read");
    }
}
