//! `koompi`: one command to install, remove, search and upgrade software, and `koompi-update`.
//!
//! Students and teachers type `koompi install NAME` and never need to know whether NAME
//! comes from the Arch repositories, the AUR or Flathub. pacman's short forms work too
//! (`-S`, `-R`, `-U`, `-Ss`, `-Si`, `-Q`, `-Sc`), and any other pacman/paru operation is
//! passed to paru (or pacman when paru is absent) unchanged, with its exit code.

use std::collections::BTreeSet;
use std::ffi::OsString;
use std::io::IsTerminal;
use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::{Args, Parser, Subcommand};

use koompi_core::cmd::Runner;
use koompi_core::output::{self, Format};
use koompi_packages::backend::{Backends, PacmanOpts};
use koompi_packages::channel::{self, Channel};
use koompi_packages::guard::SnapshotOutcome;
use koompi_packages::ops::{self, OpsError, UpgradeOutcome};
use koompi_packages::plan::{InstallPlan, MissingReason, Only};
use koompi_packages::upgrade::UpgradeError;
use koompi_packages::{classify, Source};

use crate::global::GlobalArgs;

// Paragraphs are single lines: clap wraps them to the terminal (hand-broken lines would be
// wrapped a second time). Example lines stay under 72 columns.
const AFTER_HELP: &str = "\
Sources: the official repositories first, then the AUR (built with paru as your own user, never as root), Flathub for application IDs (org.gnome.Calculator) or with --flatpak.

pacman's short forms work: -S install, -R remove, -U upgrade (-U FILE installs a package file, as pacman does), -Ss search, -Si info, -Q list, -Sc clean. Anything else (koompi -Syu, koompi -Qdt) goes to paru, or pacman when paru is not installed, unchanged.

A snapshot is taken before every install, remove and upgrade (none when snap-pac is installed: it takes its own), so `koompi-snapshot rollback` can undo any change.

Examples:
  koompi install firefox               # from the repositories
  koompi install koompi-cli            # from the AUR if not there
  koompi install org.gnome.Calculator  # from Flathub
  koompi search editor --json
  koompi upgrade                       # snapshot, upgrade, GRUB menu
  koompi upgrade --transactional       # a copy, the system next boot
  koompi channel set beta              # KOOMPI's beta packages

The classroom: `koompi class ...` is `koompi-class ...` (koompi class --help).";

/// Install, remove, search and upgrade software on KOOMPI OS.
#[derive(Debug, Parser)]
#[command(name = "koompi", version, help_expected = true, after_help = AFTER_HELP)]
pub struct Cli {
    #[command(flatten)]
    pacman: PacmanArgs,
    #[command(flatten)]
    global: GlobalArgs,
    #[command(subcommand)]
    command: Command,
}

/// pacman's options, passed to every pacman call.
#[derive(Debug, Args, Clone)]
struct PacmanArgs {
    /// Act on the system mounted at DIR (pacman --root).
    #[arg(long, global = true, value_name = "DIR")]
    root: Option<PathBuf>,
    /// pacman's configuration file (pacman --config).
    #[arg(long, global = true, value_name = "FILE")]
    config: Option<PathBuf>,
    /// pacman's database directory (pacman --dbpath).
    #[arg(long, global = true, value_name = "DIR")]
    dbpath: Option<PathBuf>,
    /// pacman's package cache (pacman --cachedir).
    #[arg(long, global = true, value_name = "DIR")]
    cachedir: Option<PathBuf>,
    /// Ask nothing; take the defaults (pacman --noconfirm).
    #[arg(long, global = true)]
    noconfirm: bool,
}

impl PacmanArgs {
    fn opts(&self, needed: bool) -> PacmanOpts {
        PacmanOpts {
            root: self.root.clone(),
            config: self.config.clone(),
            dbpath: self.dbpath.clone(),
            cachedir: self.cachedir.clone(),
            noconfirm: self.noconfirm,
            needed,
        }
    }
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Install packages or applications (-S).
    Install(InstallArgs),
    /// Remove packages with what they alone needed and their saved configs (-R, as -Rns).
    Remove {
        /// Package names or Flatpak application IDs.
        #[arg(required = true, value_name = "TARGET")]
        targets: Vec<String>,
    },
    /// Upgrade the whole system safely (-U): snapshot first, GRUB menu and retention after.
    Upgrade(UpgradeArgs),
    /// Search the repositories, the AUR and Flathub in one list (-Ss).
    Search(SearchArgs),
    /// Show a package's details (-Si).
    Info {
        /// A package name, repo/name, or a Flatpak application ID.
        #[arg(value_name = "TARGET")]
        target: String,
    },
    /// List installed packages (-Q).
    List {
        /// Only these packages.
        #[arg(value_name = "NAME")]
        names: Vec<String>,
    },
    /// Remove old packages from the package cache (-Sc).
    Clean,
    /// Show or set the update channel (stable, beta, development).
    Channel {
        #[command(subcommand)]
        action: Option<ChannelAction>,
    },
}

/// `koompi install`'s options.
#[derive(Debug, Args)]
struct InstallArgs {
    /// Package names, repo/name, or Flatpak application IDs.
    #[arg(required = true, value_name = "TARGET")]
    targets: Vec<String>,
    /// Only the official repositories.
    #[arg(long, conflicts_with_all = ["aur", "flatpak"])]
    repo: bool,
    /// Only the AUR.
    #[arg(long, conflicts_with = "flatpak")]
    aur: bool,
    /// Only Flathub.
    #[arg(long)]
    flatpak: bool,
    /// Skip targets that are already installed and up to date (pacman --needed).
    #[arg(long)]
    needed: bool,
    /// Show where each target would come from, change nothing.
    #[arg(long)]
    dry_run: bool,
}

impl InstallArgs {
    fn only(&self) -> Only {
        if self.repo {
            Only::Repo
        } else if self.aur {
            Only::Aur
        } else if self.flatpak {
            Only::Flatpak
        } else {
            Only::Any
        }
    }
}

/// `koompi upgrade`'s options (and `koompi-update`'s).
#[derive(Debug, Args)]
struct UpgradeArgs {
    /// Upgrade a snapshot of the system instead; it becomes the system at the next boot
    /// and the boot watchdog guards that boot.
    #[arg(long)]
    transactional: bool,
}

/// `koompi search`'s options.
#[derive(Debug, Args)]
struct SearchArgs {
    /// Words that must all appear in a result's name or description.
    #[arg(required = true, value_name = "TERM")]
    terms: Vec<String>,
    /// Only the repositories' databases (no network at all).
    #[arg(long)]
    repo: bool,
}

#[derive(Debug, Subcommand)]
enum ChannelAction {
    /// Show the current channel.
    Show,
    /// Switch to a channel.
    Set {
        /// stable, beta or development.
        #[arg(value_name = "CHANNEL")]
        channel: String,
    },
}

/// How the first arguments are read.
#[derive(Debug, PartialEq, Eq)]
pub enum Dispatch {
    /// koompi's own command line (short forms replaced by subcommand names).
    Koompi(Vec<OsString>),
    /// Everything goes to paru or pacman as given.
    PassThrough(Vec<OsString>),
}

/// pacman's short forms and the subcommands they mean.
const SHORT_FORMS: &[(&str, &str)] = &[
    ("-S", "install"),
    ("-R", "remove"),
    ("-Rns", "remove"),
    ("-U", "upgrade"),
    ("-Ss", "search"),
    ("-Si", "info"),
    ("-Q", "list"),
    ("-Sc", "clean"),
];

/// Global options that take a value.
const VALUE_OPTIONS: &[&str] = &["--root", "--config", "--dbpath", "--cachedir"];
/// Global flags.
const FLAG_OPTIONS: &[&str] = &["--noconfirm", "--json", "-v", "-vv", "-vvv", "--verbose"];

/// Reads the arguments after the program name: a short form becomes its subcommand, an
/// unknown option before any subcommand means pass-through.
pub fn dispatch(args: Vec<OsString>) -> Dispatch {
    let mut i = 0;
    while i < args.len() {
        let a = args[i].to_string_lossy();
        if VALUE_OPTIONS.contains(&a.as_ref()) {
            i += 2;
            continue;
        }
        if FLAG_OPTIONS.contains(&a.as_ref())
            || VALUE_OPTIONS
                .iter()
                .any(|o| a.starts_with(&format!("{o}=")))
        {
            i += 1;
            continue;
        }
        // `-U FILE...` installs package files, as pacman does (`-U` alone keeps the
        // seed's meaning: upgrade the system).
        if a == "-U"
            && args[i + 1..]
                .iter()
                .any(|x| !x.to_string_lossy().starts_with('-'))
        {
            return Dispatch::PassThrough(args);
        }
        if let Some((_, sub)) = SHORT_FORMS.iter().find(|(s, _)| *s == a) {
            let mut v = args.clone();
            v[i] = OsString::from(sub);
            return Dispatch::Koompi(v);
        }
        let help = ["-h", "--help", "-V", "--version"].contains(&a.as_ref());
        if a.starts_with('-') && !help {
            return Dispatch::PassThrough(args);
        }
        break;
    }
    Dispatch::Koompi(args)
}

/// `koompi`'s entry point: the exit code to leave with.
pub fn main() -> Result<i32> {
    let args: Vec<OsString> = std::env::args_os().skip(1).collect();
    run_args("koompi", args)
}

/// `koompi-update`: the safe system upgrade, `koompi upgrade` under its own name.
#[derive(Debug, Parser)]
#[command(name = "koompi-update", version, help_expected = true)]
pub struct UpdateCli {
    #[command(flatten)]
    pacman: PacmanArgs,
    #[command(flatten)]
    global: GlobalArgs,
    #[command(flatten)]
    upgrade: UpgradeArgs,
}

/// `koompi-update`'s entry point: the exit code to leave with.
pub fn update_main() -> Result<i32> {
    let u = UpdateCli::parse();
    u.global.init_logging();
    run(Cli {
        pacman: u.pacman,
        global: u.global,
        command: Command::Upgrade(u.upgrade),
    })
}

fn run_args(prog: &str, args: Vec<OsString>) -> Result<i32> {
    // `koompi class ...` is koompi-class's own command line, help and errors included.
    if args.first().is_some_and(|a| a == "class") {
        crate::class::main_from(&format!("{prog} class"), args[1..].to_vec())?;
        return Ok(0);
    }
    match dispatch(args) {
        Dispatch::PassThrough(args) => {
            let b = Backends::detect(Runner::real(), PacmanOpts::default());
            Ok(ops::pass_through(&b, &args)?.run_interactive(&Runner::real())?)
        }
        Dispatch::Koompi(args) => {
            let cli = Cli::parse_from(std::iter::once(OsString::from(prog)).chain(args));
            cli.global.init_logging();
            run(cli)
        }
    }
}

/// Changes need root: run this same command again through sudo.
fn become_root() -> Result<i32> {
    let exe = std::env::current_exe().context("cannot find this program's path")?;
    let args: Vec<OsString> = std::env::args_os().skip(1).collect();
    Ok(ops::as_root(&exe, &args)?.run_interactive(&Runner::real())?)
}

/// Runs a prepared change, or this command again as root when the change needs it.
fn run_change(prepared: std::result::Result<ops::Change, OpsError>) -> Result<i32> {
    let change = match prepared {
        Err(OpsError::NeedsRoot) => return become_root(),
        other => other?,
    };
    match &change.snapshot {
        Some(SnapshotOutcome::Taken(n)) => {
            eprintln!("koompi: snapshot {n} taken before the {}", change.verb)
        }
        Some(SnapshotOutcome::SnapPac(hook)) => {
            tracing::info!("snap-pac takes the snapshots ({})", hook.display())
        }
        Some(SnapshotOutcome::Skipped(why)) => eprintln!("koompi: note: {why}"),
        None => {}
    }
    Ok(change.run()?)
}

/// Runs a parsed command line; the exit code.
pub fn run(cli: Cli) -> Result<i32> {
    let fmt = cli.global.format();
    let needed = matches!(&cli.command, Command::Install(i) if i.needed);
    let b = Backends::detect(Runner::real(), cli.pacman.opts(needed));
    match cli.command {
        Command::Install(args) => install(&b, &args, fmt),
        Command::Remove { targets } => run_change(ops::remove(&b, &targets)),
        Command::Upgrade(args) => upgrade_cmd(&b, &args, fmt),
        Command::Search(args) => search(&b, &args, fmt),
        Command::Info { target } => info(&b, &target, fmt),
        Command::List { names } => list(&b, &names, fmt),
        Command::Clean => run_change(ops::clean(&b)),
        Command::Channel { action } => channel_cmd(&b, action, fmt),
    }
}

fn install(b: &Backends, args: &InstallArgs, fmt: Format) -> Result<i32> {
    let resolved = ops::resolve(b, &args.targets, args.only())?;
    if args.dry_run {
        print_plan(&resolved.plan, fmt)?;
        return Ok(if resolved.plan.missing.is_empty() {
            0
        } else {
            1
        });
    }
    run_change(ops::install(b, &resolved, args.needed))
}

fn print_plan(p: &InstallPlan, fmt: Format) -> Result<()> {
    if fmt == Format::Json {
        print!("{}", output::to_json(p));
        return Ok(());
    }
    let mut t = output::table(["TARGET", "SOURCE"]);
    for (list, src) in [
        (&p.repo, "repositories"),
        (&p.aur, "AUR"),
        (&p.flatpak, "Flathub"),
    ] {
        for n in list {
            t.add_row([n.as_str(), src]);
        }
    }
    for m in &p.missing {
        let why = match m.reason {
            MissingReason::NotFound => "not found",
            MissingReason::AurUnreachable => "not in the repositories; AUR unreachable",
        };
        t.add_row([m.name.as_str(), why]);
    }
    println!("{t}");
    Ok(())
}

fn search(b: &Backends, args: &SearchArgs, fmt: Format) -> Result<i32> {
    let terms = &args.terms;
    let found = ops::search(b, terms, args.repo)?;
    let (results, unreachable) = (found.results, found.unreachable);
    for (src, why) in &unreachable {
        eprintln!("koompi: note: {src} not searched: {why}");
    }
    let code = if results.is_empty() { 1 } else { 0 };
    if fmt == Format::Json {
        print!(
            "{}",
            output::to_json(&ops::SearchResults {
                results,
                unreachable
            })
        );
        return Ok(code);
    }
    if results.is_empty() {
        eprintln!("koompi: nothing found for `{}`", terms.join(" "));
        return Ok(1);
    }
    let mut t = output::table(["SOURCE", "NAME", "VERSION", "DESCRIPTION"]);
    for p in &results {
        let mut version = p.version.clone();
        if let Some(i) = &p.installed {
            version.push_str(if i == &p.version {
                " [installed]"
            } else {
                " [older installed]"
            });
        }
        t.add_row([
            source_label(&p.source),
            p.name.clone(),
            version,
            p.description.clone(),
        ]);
    }
    // Only the description wraps (at word boundaries); names and versions stay whole.
    output::wrap_only(&mut t, 3, 12);
    println!("{t}");
    Ok(code)
}

fn source_label(s: &Source) -> String {
    match s {
        Source::Repo(r) => r.clone(),
        Source::Aur => "aur".into(),
        Source::Flathub => "flathub".into(),
    }
}

fn info(b: &Backends, target: &str, fmt: Format) -> Result<i32> {
    match ops::info(b, target)? {
        ops::Details::Pacman(i) if fmt == Format::Json => print!("{}", output::to_json(&i)),
        ops::Details::Pacman(i) => print_info(&i),
        ops::Details::Aur(p) if fmt == Format::Json => print!("{}", output::to_json(&p)),
        ops::Details::Aur(p) => {
            println!("Source          : aur");
            println!("Name            : {}", p.name);
            println!("Version         : {}", p.version);
            println!("Description     : {}", p.description);
            if let Some(m) = &p.maintainer {
                println!("Maintainer      : {m}");
            }
            if let Some(v) = p.votes {
                println!("Votes           : {v}");
            }
            if p.out_of_date.is_some() {
                println!("Out of date     : yes");
            }
        }
        ops::Details::Flathub(cmd) => return Ok(cmd.run_interactive(&b.runner)?),
    }
    Ok(0)
}

fn print_info(i: &koompi_packages::parse::PackageInfo) {
    let mut rows: Vec<(String, String)> = vec![
        (
            "Repository".into(),
            i.repository.clone().unwrap_or_else(|| "installed".into()),
        ),
        ("Name".into(), i.name.clone()),
        ("Version".into(), i.version.clone()),
        ("Description".into(), i.description.clone()),
    ];
    if let Some(u) = &i.url {
        rows.push(("URL".into(), u.clone()));
    }
    rows.push((
        "Depends On".into(),
        if i.depends_on.is_empty() {
            "None".into()
        } else {
            i.depends_on.join("  ")
        },
    ));
    if let Some(s) = &i.installed_size {
        rows.push(("Installed Size".into(), s.clone()));
    }
    for (k, v) in rows {
        println!("{k:<16}: {v}");
    }
}

fn list(b: &Backends, names: &[String], fmt: Format) -> Result<i32> {
    for n in names {
        classify(n)?;
    }
    let installed = b.installed(names)?;
    if !names.is_empty() {
        let have: BTreeSet<&str> = installed.iter().map(|i| i.name.as_str()).collect();
        let absent: Vec<&str> = names
            .iter()
            .map(String::as_str)
            .filter(|n| !have.contains(n))
            .collect();
        if !absent.is_empty() {
            eprintln!("koompi: not installed: {}", absent.join(", "));
        }
    }
    if fmt == Format::Json {
        print!("{}", output::to_json(&installed));
    } else {
        let interactive = std::io::stdout().is_terminal();
        if interactive {
            let mut t = output::table(["NAME", "VERSION"]);
            for i in &installed {
                t.add_row([i.name.as_str(), i.version.as_str()]);
            }
            println!("{t}");
        } else {
            // Like pacman -Q: one `name version` per line, for pipes.
            for i in &installed {
                println!("{} {}", i.name, i.version);
            }
        }
    }
    Ok(if names.len() > installed.len() { 1 } else { 0 })
}

fn upgrade_cmd(b: &Backends, args: &UpgradeArgs, fmt: Format) -> Result<i32> {
    let prepared = match ops::upgrade(b, args.transactional, fmt == Format::Json) {
        Err(OpsError::NeedsRoot) => return become_root(),
        other => other?,
    };
    if let Some(why) = &prepared.note {
        eprintln!("koompi: note: {why}");
    }
    match prepared.run() {
        Ok(UpgradeOutcome::Transactional(report)) => {
            if fmt == Format::Json {
                print!("{}", output::to_json(&report));
                return Ok(0);
            }
            for c in &report.etc.conflicts {
                eprintln!(
                    "koompi: note: /etc/{} was changed here and by the upgrade; the upgrade's \
                     version is used, yours is kept as /etc/{}{}",
                    c.display(),
                    c.display(),
                    koompi_packages::etcmerge::CONFLICT_SUFFIX
                );
            }
            println!(
                "The upgraded system (snapshot {}) starts at the next boot; the system as it \
                 is now is kept as snapshot {} ({}). If the new one fails to start three \
                 times, the machine goes back by itself.",
                report.work, report.base.0, report.base.1
            );
            Ok(0)
        }
        Ok(UpgradeOutcome::Classic(report)) => {
            if fmt == Format::Json {
                print!("{}", output::to_json(&report));
            } else if let Some((n, name)) = &report.snapshot {
                println!("Upgrade done. The system before it is snapshot {n} ({name}).");
            } else {
                println!("Upgrade done.");
            }
            Ok(0)
        }
        Err(OpsError::Upgrade(e @ UpgradeError::Failed { code, .. })) => {
            eprintln!("koompi: error: {e}");
            Ok(code)
        }
        Err(e) => Err(e.into()),
    }
}

fn channel_cmd(b: &Backends, action: Option<ChannelAction>, fmt: Format) -> Result<i32> {
    let root = b.opts.target_root();
    match action {
        None | Some(ChannelAction::Show) => {
            let c = channel::current(&root)?;
            if fmt == Format::Json {
                print!(
                    "{}",
                    output::to_json(&serde_json::json!({
                        "channel": c,
                        "repositories": c.repositories(),
                    }))
                );
            } else {
                println!("{c}");
            }
            Ok(0)
        }
        Some(ChannelAction::Set { channel: name }) => {
            let c: Channel = name.parse()?;
            if !ops::is_root() {
                return become_root();
            }
            channel::set(&root, c)?;
            eprintln!(
                "koompi: update channel is now {c}; the next `koompi upgrade` uses {}",
                c.repositories().join(", ")
            );
            Ok(0)
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn os(v: &[&str]) -> Vec<OsString> {
        v.iter().map(OsString::from).collect()
    }

    #[test]
    fn short_forms_become_subcommands() {
        assert_eq!(
            dispatch(os(&["-S", "vim"])),
            Dispatch::Koompi(os(&["install", "vim"]))
        );
        assert_eq!(
            dispatch(os(&["-Rns", "vim"])),
            Dispatch::Koompi(os(&["remove", "vim"]))
        );
        assert_eq!(
            dispatch(os(&["--root", "/mnt", "-Ss", "vim"])),
            Dispatch::Koompi(os(&["--root", "/mnt", "search", "vim"]))
        );
        assert_eq!(
            dispatch(os(&["--json", "-Q"])),
            Dispatch::Koompi(os(&["--json", "list"]))
        );
    }

    #[test]
    fn other_options_pass_through_unchanged() {
        assert_eq!(
            dispatch(os(&["-Syu"])),
            Dispatch::PassThrough(os(&["-Syu"]))
        );
        assert_eq!(
            dispatch(os(&["--noconfirm", "-Qdt"])),
            Dispatch::PassThrough(os(&["--noconfirm", "-Qdt"]))
        );
        assert_eq!(dispatch(os(&["--help"])), Dispatch::Koompi(os(&["--help"])));
        assert_eq!(
            dispatch(os(&["install", "-S"])),
            Dispatch::Koompi(os(&["install", "-S"]))
        );
    }

    #[test]
    fn dash_u_with_files_installs_them_as_pacman_does() {
        assert_eq!(
            dispatch(os(&["-U", "./foo-1-1-x86_64.pkg.tar.zst"])),
            Dispatch::PassThrough(os(&["-U", "./foo-1-1-x86_64.pkg.tar.zst"]))
        );
        assert_eq!(
            dispatch(os(&["--noconfirm", "-U", "--needed", "a.pkg.tar.zst"])),
            Dispatch::PassThrough(os(&["--noconfirm", "-U", "--needed", "a.pkg.tar.zst"]))
        );
        // Alone (or with options only) it is still the safe system upgrade.
        assert_eq!(dispatch(os(&["-U"])), Dispatch::Koompi(os(&["upgrade"])));
        assert_eq!(
            dispatch(os(&["-U", "--transactional"])),
            Dispatch::Koompi(os(&["upgrade", "--transactional"]))
        );
    }

    #[test]
    fn the_command_lines_parse() {
        use clap::CommandFactory;
        Cli::command().debug_assert();
        UpdateCli::command().debug_assert();
        let u =
            UpdateCli::try_parse_from(["koompi-update", "--transactional", "--noconfirm"]).unwrap();
        assert!(u.upgrade.transactional && u.pacman.noconfirm);
        let v = UpdateCli::try_parse_from(["koompi-update", "--version"]).unwrap_err();
        assert_eq!(v.kind(), clap::error::ErrorKind::DisplayVersion);
    }
}
