//! `koompi-apply-config`: put a KOOMPI edition's configuration files into a home without
//! ever losing a user's change. The work is koompi_desktop::apply and ::profile; this
//! module parses the command line, finds the home and prints.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use clap::Parser;
use serde::Serialize;

use koompi_core::cmd::Runner;
use koompi_core::output::{to_json, Format};
use koompi_desktop::apply::{self, decide::Policy, ident, Report, Request};
use koompi_desktop::catalog::{self, Catalog};
use koompi_desktop::profile::{self, Profile};

use crate::global::GlobalArgs;

const AFTER_HELP: &str = "\
Three versions of each file count: KOOMPI's (in /usr/share/koompi/configs), the one koompi-apply-config last wrote into the home, and the one on disk. A file you never touched follows KOOMPI's new versions. A file you changed is left alone while KOOMPI has nothing newer; when it has, yours is first saved beside it as FILE.koompi-backup-YYYYMMDDTHHMMSS (--keep-changed: yours stays and KOOMPI's is saved as FILE.koompi-new-YYYYMMDDTHHMMSS). A second run changes nothing. Links, FIFOs, read-only files and paths through links are skipped with one line each; nothing outside the home is touched.

--restore undoes the last apply that changed something (one level). What it needs is kept in ~/.local/state/koompi/apply-config/.

Examples:
  koompi-apply-config lite                   your own home
  koompi-apply-config lite --dry-run         what would change
  sudo koompi-apply-config tiling --user dara
  sudo koompi-apply-config lite --home /etc/skel    every new user gets it
  koompi-apply-config --restore
  sudo koompi-apply-config --profile         ~/.config/koompi/profile.toml, else /etc/koompi/profile.toml
  sudo koompi-apply-config --profile school.toml --dry-run

profile.toml:
  edition = \"lite\"
  packages = [\"gimp\"]            # further packages (koompi install, a snapshot first)
  config-sets = [\"neovim\"]       # further config sets from the catalog
  services = [\"cups.service\"]    # further system units to enable (systemctl enable)

See docs/desktops.md.";

/// Put a KOOMPI edition's configuration files into a home, keeping every change you made.
#[derive(Debug, Clone, Parser)]
#[command(name = "koompi-apply-config", version, help_expected = true, after_help = AFTER_HELP)]
pub struct Cli {
    /// The edition whose configs to apply (`koompi-desktop list` shows them).
    #[arg(value_name = "EDITION", required_unless_present_any = ["restore", "profile"])]
    edition: Option<String>,
    /// Apply to this user's home, writing as that user (root only).
    #[arg(long, value_name = "NAME", conflicts_with = "home")]
    user: Option<String>,
    /// Apply to this directory (default: $HOME); `/etc/skel` gives every new user the
    /// edition. As root, files are written as the directory's owner.
    #[arg(long, value_name = "DIR")]
    home: Option<PathBuf>,
    /// Show what would change, and change nothing.
    #[arg(long)]
    dry_run: bool,
    /// Undo the last apply in the home.
    #[arg(long, conflicts_with_all = ["edition", "profile", "keep_changed"])]
    restore: bool,
    /// When you changed a file and KOOMPI has a new version of it: keep yours in place and
    /// save KOOMPI's beside it (default: save yours as a backup and write KOOMPI's).
    #[arg(long)]
    keep_changed: bool,
    /// Apply a profile (FILE, or the home's ~/.config/koompi/profile.toml, else
    /// /etc/koompi/profile.toml): install its missing packages, enable its units and apply
    /// its configs; only what differs is done.
    #[arg(long, value_name = "FILE", num_args = 0..=1, conflicts_with = "edition")]
    profile: Option<Option<PathBuf>>,
    /// The editions catalog.
    #[arg(long, value_name = "FILE", default_value = catalog::DEFAULT_PATH)]
    catalog: PathBuf,
    /// The directory holding KOOMPI's config files.
    #[arg(long, value_name = "DIR", default_value = catalog::CONFIGS_DIR)]
    configs: PathBuf,
    #[command(flatten)]
    global: GlobalArgs,
}

fn is_root() -> bool {
    rustix::process::geteuid().is_root()
}

/// The home and, when running as root, whose identity writes into it.
fn target(cli: &Cli) -> Result<(PathBuf, Option<(u32, u32)>)> {
    if let Some(name) = &cli.user {
        ident::check_name(name)?;
        if !is_root() {
            bail!(
                "--user needs root (run it with sudo); leave --user out to apply to your own home"
            );
        }
        let p = ident::lookup(&Runner::real(), name)?;
        return Ok((PathBuf::from(p.home), Some((p.uid, p.gid))));
    }
    let home = match &cli.home {
        Some(h) => h.clone(),
        None => match std::env::var_os("HOME") {
            Some(h) if !h.is_empty() => PathBuf::from(h),
            _ => bail!("HOME is not set; name the home with --home DIR"),
        },
    };
    let owner = if is_root() {
        Some(apply::owner_of(&home)?)
    } else {
        None
    };
    Ok((home, owner))
}

fn now() -> chrono::DateTime<chrono::FixedOffset> {
    chrono::Local::now().fixed_offset()
}

fn print_report(report: &Report, fmt: Format) {
    match fmt {
        Format::Json => print!("{}", to_json(report)),
        Format::Human => {
            for line in report.lines() {
                println!("{line}");
            }
        }
    }
}

fn check_failed(report: &Report) -> Result<()> {
    match report.failed() {
        0 => Ok(()),
        1 => bail!("1 file could not be written (see above); run again once the cause is fixed"),
        n => bail!("{n} files could not be written (see above); run again once the cause is fixed"),
    }
}

fn load_catalog(cli: &Cli) -> Result<Catalog> {
    Ok(Catalog::load(&cli.catalog)?)
}

fn policy(cli: &Cli) -> Policy {
    if cli.keep_changed {
        Policy::Keep
    } else {
        Policy::Backup
    }
}

/// `koompi-apply-config`'s body.
pub fn main() -> Result<()> {
    let cli = Cli::parse();
    cli.global.init_logging();
    let fmt = cli.global.format();
    let (home, owner) = target(&cli)?;
    if cli.restore {
        let report = apply::with_home(&home, owner, |h| apply::restore(h, cli.dry_run, now()))?;
        print_report(&report, fmt);
        return check_failed(&report);
    }
    if let Some(file) = &cli.profile {
        return apply_profile(&cli, file.as_deref(), &home, owner, fmt);
    }
    let Some(id) = &cli.edition else {
        bail!("name an edition, or use --profile or --restore (see --help)");
    };
    let catalog = load_catalog(&cli)?;
    let edition = catalog.edition(id)?;
    let req = Request {
        applied: edition.id.clone(),
        files: apply::load(&catalog.config_files(edition), &cli.configs)?,
        policy: policy(&cli),
        dry_run: cli.dry_run,
        now: now(),
    };
    let report = apply::with_home(&home, owner, |h| apply::apply(h, &req))?;
    print_report(&report, fmt);
    check_failed(&report)
}

#[derive(Debug, Serialize)]
struct ProfileOutput<'a> {
    profile: String,
    plan: &'a profile::Plan,
    dry_run: bool,
    /// The commands run (or, with dry_run, that would run).
    commands: Vec<String>,
    configs: &'a Report,
}

fn apply_profile(
    cli: &Cli,
    file: Option<&Path>,
    home: &Path,
    owner: Option<(u32, u32)>,
    fmt: Format,
) -> Result<()> {
    let path = match file {
        Some(f) => f.to_path_buf(),
        None => Profile::find(home).with_context(|| {
            format!(
                "no profile: neither {} nor {} exists; name one with --profile FILE",
                home.join(profile::USER_PATH).display(),
                profile::SYSTEM_PATH
            )
        })?,
    };
    let prof = Profile::load(&path)?;
    let catalog = load_catalog(cli)?;
    let units = profile::Plan::units(&prof, &catalog)?;
    let seen = profile::observe(&Runner::real(), &units)?;
    let plan = profile::plan(&prof, &catalog, &seen)?;
    let system = !plan.install.is_empty() || !plan.enable.is_empty();
    if system && !cli.dry_run && !is_root() {
        bail!(
            "the profile needs packages installed or units enabled, which needs root: run it with sudo (--dry-run shows what)"
        );
    }
    let runner = if cli.dry_run {
        Runner::recording()
    } else {
        Runner::real()
    };
    let human = fmt == Format::Human;
    let verb = |now: &str, later: &str| {
        if cli.dry_run {
            later.to_string()
        } else {
            now.to_string()
        }
    };
    if human && !plan.install.is_empty() {
        println!(
            "{} {}",
            verb("installing", "would install"),
            plan.install.join(" ")
        );
    }
    let commands = profile::execute(&plan, &runner, !human)?;
    if human {
        for unit in &plan.enable {
            println!("{} {unit}", verb("enabled", "would enable"));
        }
        if let Some(note) = &plan.note {
            println!("note: {note}");
        }
    }
    let req = Request {
        applied: plan.applied(&catalog),
        files: apply::load(&plan.config_files(&catalog), &cli.configs)?,
        policy: policy(cli),
        dry_run: cli.dry_run,
        now: now(),
    };
    let report = apply::with_home(home, owner, |h| apply::apply(h, &req))?;
    match fmt {
        Format::Json => print!(
            "{}",
            to_json(&ProfileOutput {
                profile: path.display().to_string(),
                plan: &plan,
                dry_run: cli.dry_run,
                commands,
                configs: &report,
            })
        ),
        Format::Human => print_report(&report, fmt),
    }
    check_failed(&report)
}
