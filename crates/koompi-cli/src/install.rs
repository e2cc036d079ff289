//! `koompi-install`: put KOOMPI OS on a disk.
//!
//! Every flag equals a key of the answer file (`--config`), and a flag given on the
//! command line wins over the file. The engine is `koompi-install` (the library): this
//! module merges the answers, surveys the machine, plans and prints.

use std::path::{Path, PathBuf};

use crate::global::GlobalArgs;

use anyhow::{bail, Context, Result};
use clap::Parser;

use koompi_core::cmd::Runner;
use koompi_install::answers::{Answers, DiskChoice, Finish, Source};
use koompi_install::{exec, facts, fleet, plan};

const AFTER_HELP: &str = "\
Every flag is also a key of the answer file: `--disk /dev/sda` is `disk = \"/dev/sda\"`, `--password-file F` is `password-file = \"F\"`. Flags win over the file. Secrets never go on the command line: --password-file and --passphrase-file name a file holding them, or `-` for standard input.

Nothing is written before the plan is shown (--dry-run prints it and stops). The disk's old contents are erased.

Fleets: `disk = \"largest-internal\"` takes the largest disk that is neither removable nor USB nor in use, and refuses a tie. See docs/install.md.";

/// Install KOOMPI OS on a disk, at the keyboard or unattended.
#[derive(Debug, Clone, Parser)]
#[command(name = "koompi-install", version, help_expected = true, after_help = AFTER_HELP)]
pub struct Cli {
    /// An answer file (TOML; its keys are these flags without `--`).
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
    /// The disk to install on (`/dev/...`), or `largest-internal`.
    #[arg(long, value_name = "DISK")]
    disk: Option<String>,
    /// Install into this partition and keep the disk's others (another system beside
    /// KOOMPI OS); the partition is erased.
    #[arg(long, value_name = "PARTITION")]
    root_partition: Option<String>,
    /// With --root-partition: the EFI system partition to boot from (default: the disk's
    /// only one). It is never formatted.
    #[arg(long, value_name = "PARTITION")]
    esp_partition: Option<String>,
    /// The machine's name.
    #[arg(long, value_name = "NAME")]
    hostname: Option<String>,
    /// The first user's login name (an administrator).
    #[arg(long, value_name = "NAME")]
    user: Option<String>,
    /// The first user's full name.
    #[arg(long, value_name = "TEXT")]
    full_name: Option<String>,
    /// A file holding the user's password (`-`: standard input).
    #[arg(long, value_name = "FILE")]
    password_file: Option<PathBuf>,
    /// The user's login shell.
    #[arg(long, value_name = "PATH")]
    shell: Option<String>,
    /// Encrypt the system with LUKS2 (the passphrase is asked once per boot).
    #[arg(long)]
    encrypt: bool,
    /// A file holding the encryption passphrase (`-`: standard input).
    #[arg(long, value_name = "FILE")]
    passphrase_file: Option<PathBuf>,
    /// The system language, e.g. en_US.UTF-8 or km_KH.UTF-8.
    #[arg(long, value_name = "LOCALE")]
    locale: Option<String>,
    /// The keyboard layout, e.g. us or kh.
    #[arg(long, value_name = "LAYOUT")]
    keyboard: Option<String>,
    /// The timezone, e.g. Asia/Phnom_Penh.
    #[arg(long, value_name = "ZONE")]
    timezone: Option<String>,
    /// Where the system comes from: a copy of this live system, or the repositories.
    #[arg(long, value_enum)]
    source: Option<SourceArg>,
    /// What to do when done.
    #[arg(long, value_enum)]
    finish: Option<FinishArg>,
    /// Do not ask: install as soon as the plan is made (unattended).
    #[arg(long)]
    yes: bool,
    /// Print the plan and change nothing.
    #[arg(long)]
    dry_run: bool,
    /// Forget the steps an interrupted install did and start from the first one.
    #[arg(long)]
    restart: bool,
    /// Install with the answer file this machine was given, if any: `koompi.install=PATH`
    /// on the kernel command line, or install.toml on a partition labelled KOOMPI-INSTALL
    /// (KOOMPI-INST on FAT). The live system runs this at boot.
    #[arg(long, conflicts_with = "config")]
    fleet: bool,
    /// How to report each step: lines for people (stderr), or one JSON object per line
    /// for other front ends (stdout: step, total, id, title, skipped; while the root
    /// image is copied, every second, bytes_done and bytes_total of it).
    #[arg(long, value_enum, value_name = "FORMAT", default_value = "text")]
    progress: ProgressArg,
    #[command(flatten)]
    global: GlobalArgs,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum ProgressArg {
    Text,
    Json,
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
enum SourceArg {
    Offline,
    Online,
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
enum FinishArg {
    Stay,
    Reboot,
    Poweroff,
}

impl Cli {
    /// The answers: the file's, then each flag given.
    fn answers(&self) -> Result<Answers> {
        let mut a = match &self.config {
            Some(path) => {
                let mut a = read_answers(path)?;
                // Secrets named relative to the file are read beside it (a fleet's stick).
                let dir = path.parent().unwrap_or(Path::new("."));
                for f in [&mut a.password_file, &mut a.passphrase_file]
                    .into_iter()
                    .flatten()
                {
                    *f = fleet::beside(dir, f);
                }
                a
            }
            None => Answers::default(),
        };
        if let Some(d) = &self.disk {
            a.disk = Some(DiskChoice::parse(d)?);
        }
        let set = |field: &mut String, v: &Option<String>| {
            if let Some(v) = v {
                field.clone_from(v);
            }
        };
        set(&mut a.hostname, &self.hostname);
        set(&mut a.shell, &self.shell);
        set(&mut a.locale, &self.locale);
        set(&mut a.keyboard, &self.keyboard);
        set(&mut a.timezone, &self.timezone);
        if self.user.is_some() {
            a.user.clone_from(&self.user);
        }
        if self.full_name.is_some() {
            a.full_name.clone_from(&self.full_name);
        }
        if self.root_partition.is_some() {
            a.root_partition.clone_from(&self.root_partition);
        }
        if self.esp_partition.is_some() {
            a.esp_partition.clone_from(&self.esp_partition);
        }
        if self.password_file.is_some() {
            a.password_file.clone_from(&self.password_file);
        }
        if self.passphrase_file.is_some() {
            a.passphrase_file.clone_from(&self.passphrase_file);
        }
        a.encrypt |= self.encrypt;
        a.yes |= self.yes;
        if let Some(s) = self.source {
            a.source = Some(match s {
                SourceArg::Offline => Source::Offline,
                SourceArg::Online => Source::Online,
            });
        }
        if let Some(f) = self.finish {
            a.finish = match f {
                FinishArg::Stay => Finish::Stay,
                FinishArg::Reboot => Finish::Reboot,
                FinishArg::Poweroff => Finish::Poweroff,
            };
        }
        a.check()?;
        Ok(a)
    }
}

/// Reads and checks an answer file; its errors name the file.
fn read_answers(path: &Path) -> Result<Answers> {
    let meta =
        std::fs::metadata(path).with_context(|| format!("cannot read {}", path.display()))?;
    if !meta.is_file() {
        bail!("{} is not a file", path.display());
    }
    if meta.len() > 64 * 1024 {
        bail!("{} is too large for an answer file", path.display());
    }
    let text =
        std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    Answers::from_toml(&text).with_context(|| path.display().to_string())
}

/// The disk `choice` names: symbolic names (`/dev/disk/by-id/...`) resolved to the device.
fn resolve(choice: &DiskChoice) -> DiskChoice {
    match choice {
        DiskChoice::Path(p) => DiskChoice::Path(
            std::fs::canonicalize(p)
                .map(|c| c.display().to_string())
                .unwrap_or_else(|_| p.clone()),
        ),
        other => other.clone(),
    }
}

pub fn main() -> Result<()> {
    let cli = Cli::parse();
    cli.global.init_logging();
    if cli.fleet {
        return fleet_main(cli);
    }
    let answers = cli.answers()?;
    let machine = facts::survey(&Runner::real()).context("cannot survey this machine's disks")?;
    let finish = run(&cli, &machine, answers)?;
    carry_out(finish)
}

/// `--fleet`: the answer file this machine was given (the kernel command line, or a
/// partition labelled KOOMPI-INSTALL, mounted read-only while the install runs), or
/// nothing to do. The file must say `yes = true`: it installs without asking.
fn fleet_main(mut cli: Cli) -> Result<()> {
    if !cli.dry_run && !rustix::process::geteuid().is_root() {
        bail!("installing needs root (run it with sudo); nothing was changed");
    }
    if let Some(settle) = exec::udev_settle() {
        // Best effort: a stick that udev has not finished with is looked for anyway.
        let _ = settle.run(&Runner::real());
    }
    let machine = facts::survey(&Runner::real()).context("cannot survey this machine's disks")?;
    let cmdline = std::fs::read_to_string("/proc/cmdline").unwrap_or_default();
    let mounted = match fleet::find(&cmdline, &machine.disks)? {
        None => {
            eprintln!(
                "koompi-install: no answer file here (no `{}=` on the kernel command line, no \
                 partition labelled {} or {}); nothing to do",
                fleet::CMDLINE_KEY,
                koompi_install::disks::ANSWER_LABEL,
                koompi_install::disks::ANSWER_LABEL_FAT
            );
            return Ok(());
        }
        Some(fleet::AnswerSource::Path(p)) => {
            cli.config = Some(p);
            None
        }
        Some(fleet::AnswerSource::Partition(dev)) => {
            let at = AnswersMount::mount(&dev)?;
            cli.config = Some(at.dir().join(fleet::ANSWER_FILE));
            Some(at)
        }
    };
    let config = cli.config.clone().unwrap_or_default();
    eprintln!(
        "koompi-install: installing with the answers in {}",
        config.display()
    );
    let answers = cli.answers()?;
    if !answers.yes {
        bail!(
            "{}: an answer file found at boot must say `yes = true` (it installs without \
             asking); nothing was changed",
            config.display()
        );
    }
    let finish = run(&cli, &machine, answers);
    drop(mounted);
    carry_out(finish?)
}

/// Where the answer partition is mounted: outside the installer's own mounts, so that
/// the stick counts as in use and is never chosen as the target.
const ANSWERS_MOUNT: &str = "/run/koompi-answers";

/// The answer partition, mounted read-only at [`ANSWERS_MOUNT`] while it lives.
struct AnswersMount(PathBuf);

impl AnswersMount {
    fn mount(device: &str) -> Result<AnswersMount> {
        let dir = PathBuf::from(ANSWERS_MOUNT);
        // A mount left there by a killed run goes first: this run reads the stick found
        // now.
        let runner = Runner::real();
        let _ = koompi_core::cmd::Cmd::new("umount")
            .arg(ANSWERS_MOUNT)
            .run(&runner);
        std::fs::create_dir_all(&dir)
            .with_context(|| format!("cannot create {}", dir.display()))?;
        koompi_core::cmd::Cmd::new("mount")
            .args(["-o", "ro,nosuid,nodev,noexec", device, ANSWERS_MOUNT])
            .run(&runner)
            .with_context(|| format!("cannot mount the answer partition {device}"))?;
        Ok(AnswersMount(dir))
    }

    fn dir(&self) -> &Path {
        &self.0
    }
}

impl Drop for AnswersMount {
    fn drop(&mut self) {
        let _ = koompi_core::cmd::Cmd::new("umount")
            .arg(&self.0)
            .run(&Runner::real());
    }
}

/// Plans the install with `answers` on `machine` (asking at the keyboard unless they are
/// all given), prints the plan or installs it: what to do when done, or `None` when
/// nothing was installed (`--dry-run`, or the user left the installer).
fn run(cli: &Cli, machine: &facts::Machine, answers: Answers) -> Result<Option<Finish>> {
    // At the keyboard, unless every answer is given (--yes) or a named disk's plan is asked.
    let given = answers.yes
        || (cli.dry_run && (answers.disk.is_some() || answers.root_partition.is_some()));
    let (answers, typed) = if !given {
        let mut answers = answers;
        if cli.timezone.is_none() && cli.config.is_none() {
            // What this live system was set to (a boot option, or someone at its
            // keyboard) is the screen's first choice; else the default.
            if let Some(zone) = facts::live_timezone(Path::new("/")) {
                answers.timezone = zone;
            }
        }
        match interactive(machine, answers)? {
            Some((answers, password, passphrase)) => (answers, Some((password, passphrase))),
            None => {
                eprintln!("koompi-install: left the installer; nothing was changed");
                return Ok(None);
            }
        }
    } else {
        (answers, None)
    };
    let disk = match (&answers.root_partition, &answers.disk) {
        (Some(part), choice) => {
            let disk = machine.disk_of_partition(part)?;
            if let Some(DiskChoice::Path(p)) = choice.as_ref().map(resolve) {
                if p != disk.path {
                    bail!(
                        "`disk`: {p} does not hold the root partition {part} ({} does)",
                        disk.path
                    );
                }
            }
            disk
        }
        (None, Some(choice)) => machine.choose(&resolve(choice))?,
        (None, None) => {
            bail!("`disk`: missing: name the disk (`--disk /dev/...`) or `--disk largest-internal`")
        }
    };
    let facts = machine.facts(disk, today(), resumed_ids(&disk.path, cli.restart)?);
    let plan = plan::plan(&answers, &facts)?;
    if cli.dry_run {
        if cli.global.json {
            println!("{}", serde_json::to_string_pretty(&plan)?);
        } else {
            print!("{}", plan.describe());
        }
        return Ok(None);
    }
    answers.check_unattended()?;
    if !rustix::process::geteuid().is_root() {
        bail!("installing needs root (run it with sudo); nothing was changed");
    }
    let _lock = exec::lock(Path::new(LOCK))?;
    // Answers confirmed at the keyboard carry the secrets typed there (their
    // answers name them `wizard::TYPED`, not a file); the others' are read from their files.
    let secrets = match typed {
        Some((password, passphrase)) => exec::Secrets::new(password, passphrase),
        None => exec::Secrets::load(&plan)?,
    };
    let plan = match resumed_from_disk(&plan, &secrets, cli.restart) {
        Some(ids) => plan::plan(&answers, &machine.facts(disk, today(), ids))?,
        None => plan,
    };
    install(&plan, &secrets, cli)?;
    Ok(Some(plan.finish))
}

/// After a power cut the live system's journal is gone, but the disk keeps a copy from
/// the moment the new system was mounted: its identifiers, when there is one (it becomes
/// the live system's journal again, and this run resumes from it).
fn resumed_from_disk(
    plan: &plan::Plan,
    secrets: &exec::Secrets,
    restart: bool,
) -> Option<plan::Ids> {
    if restart || Path::new(JOURNAL).exists() {
        return None;
    }
    let journal = exec::journal_on_disk(plan, secrets, &Runner::real())?;
    let ids = journal.ids.clone().filter(|i| !i.root_uuid.is_empty())?;
    if let Err(e) = journal.write(Path::new(JOURNAL)) {
        eprintln!("warning: cannot resume: cannot write {JOURNAL}: {e}");
        return None;
    }
    eprintln!(
        "resuming the interrupted install on {} (its journal was on the disk; {} of its \
         steps done; --restart starts over)",
        plan.disk,
        journal.done.len()
    );
    Some(ids)
}

/// Does what the answers say to do when the install is done.
fn carry_out(finish: Option<Finish>) -> Result<()> {
    let verb = match finish {
        None | Some(Finish::Stay) => return Ok(()),
        Some(Finish::Reboot) => "reboot",
        Some(Finish::Poweroff) => "poweroff",
    };
    koompi_core::cmd::Cmd::new("systemctl")
        .arg(verb)
        .run(&Runner::real())
        .with_context(|| format!("installed, but `systemctl {verb}` failed"))?;
    Ok(())
}

/// The identifiers of an interrupted install on `disk` (its journal), so that this run
/// plans the same install and resumes it; new ones otherwise.
fn resumed_ids(disk: &str, restart: bool) -> Result<plan::Ids> {
    if !restart {
        if let Some(j) = exec::Journal::read(Path::new(JOURNAL)) {
            if let Some(ids) = j.ids.filter(|i| j.disk == disk && !i.root_uuid.is_empty()) {
                eprintln!(
                    "resuming the interrupted install on {disk} ({} of its steps done; \
                     --restart starts over)",
                    j.done.len()
                );
                let mut ids = ids;
                if ids.luks_uuid.is_empty() {
                    ids.luks_uuid = facts::new_ids()?.luks_uuid;
                }
                return Ok(ids);
            }
        }
    }
    Ok(facts::new_ids()?)
}

/// The install's log on the live system ([`plan::LOG`]): the plan, each step as it
/// starts, and why it stopped. Secrets never reach it (the plan holds none, and no
/// command gets one in its arguments). The plan's `keep-log` step copies it to the new
/// system. Logging is best effort: a read-only /var/log does not stop an install.
struct InstallLog(Option<std::fs::File>);

impl InstallLog {
    fn open() -> InstallLog {
        use std::os::unix::fs::OpenOptionsExt;
        let f = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .mode(0o600)
            .open(plan::LOG);
        if let Err(e) = &f {
            eprintln!("warning: no log: cannot open {}: {e}", plan::LOG);
        }
        InstallLog(f.ok())
    }

    fn line(&mut self, text: &str) {
        use std::io::Write;
        if let Some(f) = &mut self.0 {
            let now = chrono::Local::now().format("%Y-%m-%d %H:%M:%S");
            for l in text.lines() {
                let _ = writeln!(f, "{now} {l}");
            }
        }
    }
}

/// The journal of the steps done, on the live system (a re-run resumes after them).
const JOURNAL: &str = "/run/koompi-install/journal.json";
/// The lock one install holds ([`exec::lock`]).
const LOCK: &str = "/run/koompi-install/lock";

/// Runs `plan`, one progress line per step on stderr, then does what `finish` says.
fn install(plan: &plan::Plan, secrets: &exec::Secrets, cli: &Cli) -> Result<()> {
    if cli.restart {
        match std::fs::remove_file(JOURNAL) {
            Ok(()) => eprintln!("starting over: the journal of the earlier try is removed"),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(e).with_context(|| format!("cannot remove {JOURNAL}")),
        }
    }
    eprint!("{}", plan.describe());
    let mut log = InstallLog::open();
    log.line(&plan.describe());
    let started = std::time::Instant::now();
    let json = cli.global.json || cli.progress == ProgressArg::Json;
    // The last quarter of a copy told on the text lines (0 to 4).
    let mut quarter = 0;
    let mut show = |p: &exec::Progress<'_>| {
        let bytes = p.bytes_done.zip(p.bytes_total);
        // The log keeps each step's start and each note; the bytes only the front ends.
        match (&p.note, bytes) {
            (Some(note), _) => log.line(note),
            (None, None) => log.line(&format!(
                "[{}/{}] {} {}{}",
                p.step,
                p.total,
                p.id,
                p.title,
                if p.skipped { " (done before)" } else { "" }
            )),
            (None, Some(_)) => {}
        }
        if json {
            if let Ok(line) = serde_json::to_string(p) {
                println!("{line}");
            }
            return;
        }
        match (&p.note, bytes) {
            (Some(note), _) => eprintln!("      {note}"),
            (None, Some((done, all))) => {
                if all > 0 && done * 4 / all > quarter {
                    quarter = done * 4 / all;
                    eprintln!(
                        "      {} of {} ({}%)",
                        human(done),
                        human(all),
                        done * 100 / all
                    );
                }
            }
            (None, None) => {
                quarter = 0;
                eprintln!(
                    "[{}/{}] {}{} ({} s)",
                    p.step,
                    p.total,
                    p.title,
                    if p.skipped {
                        ": done before, skipped"
                    } else {
                        ""
                    },
                    started.elapsed().as_secs()
                );
            }
        }
    };
    let result = exec::execute(
        plan,
        secrets,
        &Runner::real(),
        Path::new(JOURNAL),
        &exec::Options::default(),
        &mut show,
    );
    if let Err(e) = &result {
        log.line(&format!(
            "stopped: {}",
            crate::one_line(&anyhow::anyhow!("{e}"))
        ));
    }
    result.with_context(|| {
        format!(
            "the install stopped (log: {}); run the same command again to go on from this \
             step",
            plan::LOG
        )
    })?;
    eprintln!(
        "KOOMPI OS is installed on {} ({} s).",
        plan.disk,
        started.elapsed().as_secs()
    );
    let _ = std::fs::remove_file(JOURNAL);
    Ok(())
}

/// `512 MiB`, `1.2 GiB`: a byte count for people.
fn human(bytes: u64) -> String {
    koompi_install::disks::human_size(bytes)
}

/// Today as `YYYYMMDD` (local time), for the factory snapshot's name.
fn today() -> String {
    chrono::Local::now().format("%Y%m%d").to_string()
}

/// Asks the answers on this terminal, starting from `answers`: the confirmed answers, the
/// password and the passphrase typed; `None` when the user left. Refused, in one line,
/// when standard input or output is not a terminal.
fn interactive(
    machine: &facts::Machine,
    answers: Answers,
) -> Result<Option<crate::install_tui::Confirmed>> {
    use std::io::IsTerminal;
    if !(std::io::stdin().is_terminal() && std::io::stdout().is_terminal()) {
        if answers.disk.is_none() {
            bail!(
                "`disk`: missing: name the disk (`--disk /dev/...`) or `--disk \
                 largest-internal`, or run koompi-install on a terminal to be asked"
            );
        }
        bail!(
            "not on a terminal: give every answer with --yes, or run koompi-install on a \
             terminal to be asked; nothing was changed"
        );
    }
    crate::install_tui::run(machine, answers, |a| {
        let Some(choice) = &a.disk else {
            bail!("no disk is chosen");
        };
        let disk = machine.choose(&resolve(choice))?;
        let facts = machine.facts(disk, today(), facts::new_ids()?);
        Ok(plan::plan(a, &facts)?.describe())
    })
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    use super::*;

    /// coreos-installer's rule: every key of the answer file is a flag, and the other way
    /// round (besides the flags that are not answers).
    #[test]
    fn every_answer_key_is_a_flag_and_back() {
        let keys: Vec<String> = match serde_json::to_value(Answers::default()) {
            Ok(serde_json::Value::Object(m)) => m.keys().cloned().collect(),
            other => panic!("answers are not an object: {other:?}"),
        };
        let cmd = Cli::command();
        let flags: Vec<String> = cmd
            .get_arguments()
            .filter_map(|a| a.get_long().map(String::from))
            .filter(|f| {
                ![
                    "config", "dry-run", "restart", "fleet", "progress", "json", "verbose", "help",
                    "version",
                ]
                .contains(&f.as_str())
            })
            .collect();
        let mut k = keys.clone();
        k.sort();
        let mut f = flags.clone();
        f.sort();
        assert_eq!(k, f);
    }

    #[test]
    fn flags_win_over_the_file() {
        let dir = tempfile::tempdir().expect("tempdir");
        let file = dir.path().join("a.toml");
        std::fs::write(
            &file,
            "hostname = \"from-file\"\nlocale = \"km_KH.UTF-8\"\n",
        )
        .expect("write");
        let cli = Cli::parse_from([
            "koompi-install",
            "--config",
            file.to_str().expect("utf-8"),
            "--hostname",
            "from-flag",
        ]);
        let a = cli.answers().expect("answers");
        assert_eq!(a.hostname, "from-flag");
        assert_eq!(a.locale, "km_KH.UTF-8");
    }

    #[test]
    fn secrets_named_in_a_file_are_read_beside_it() {
        let dir = tempfile::tempdir().expect("tempdir");
        let file = dir.path().join("install.toml");
        std::fs::write(
            &file,
            "user = \"student\"\npassword-file = \"student-password\"\n",
        )
        .expect("write");
        let cli = Cli::parse_from(["koompi-install", "--config", file.to_str().expect("utf-8")]);
        let a = cli.answers().expect("answers");
        assert_eq!(a.password_file, Some(dir.path().join("student-password")));
        // A flag is taken as given (relative to where the command runs).
        let cli = Cli::parse_from([
            "koompi-install",
            "--config",
            file.to_str().expect("utf-8"),
            "--password-file",
            "pw",
        ]);
        assert_eq!(
            cli.answers().expect("answers").password_file,
            Some(PathBuf::from("pw"))
        );
    }

    #[test]
    fn a_bad_file_is_named_in_one_line() {
        let dir = tempfile::tempdir().expect("tempdir");
        let file = dir.path().join("a.toml");
        std::fs::write(&file, "hostname = \"ok\"\ncolour = \"blue\"\n").expect("write");
        let cli = Cli::parse_from(["koompi-install", "--config", file.to_str().expect("utf-8")]);
        let e = crate::one_line(&cli.answers().expect_err("unknown key"));
        assert!(
            e.starts_with(&format!(
                "{}: line 2, `colour`: unknown field",
                file.display()
            )),
            "{e}"
        );
        let cli = Cli::parse_from([
            "koompi-install",
            "--config",
            dir.path().to_str().expect("utf-8"),
        ]);
        let e = crate::one_line(&cli.answers().expect_err("a directory"));
        assert!(e.ends_with("is not a file"), "{e}");
    }
}
