//! `koompi-desktop`: install a desktop with one command, from the menu or by its name.

use std::ffi::OsString;
use std::io::{IsTerminal, Write};
use std::path::PathBuf;

use anyhow::{bail, Context, Result};
use clap::{Args, Parser, Subcommand, ValueEnum};
use serde::Serialize;

use koompi_core::cmd::Runner;
use koompi_core::output::{self, Format};
use koompi_desktop::catalog::{self, Catalog};
use koompi_desktop::desktop::{self, ConfigHome, InstallPlan, Observed, RemovePlan, System};
use koompi_desktop::dm::Systemd;
use koompi_desktop::nvidia::Advice;
use koompi_packages::backend::{Backends, PacmanOpts};
use koompi_packages::ops;

use crate::global::GlobalArgs;

const AFTER_HELP: &str = "\
Editions: tiling, terminal, lite (KOOMPI's own, with KOOMPI's configs); kde, gnome, xfce; cinnamon, mate, i3, sway, hyprland. `koompi-desktop list` describes them.

Installing goes through `koompi install`, so a snapshot is taken first and `koompi-snapshot rollback` undoes it. The display manager is switched safely (exactly one is enabled at every moment) and takes effect at the next boot: the running session is never stopped. New users get the edition's configs through /etc/skel; the user who ran sudo gets them at once (koompi-apply-config). Khmer input (fcitx5, Ctrl+Space) comes with every edition.

Examples:
  koompi-desktop                        # the menu
  sudo koompi-desktop install lite      # KOOMPI Lite (Openbox)
  koompi-desktop install kde --dry-run  # what would change
  koompi-desktop status --json
  sudo koompi-desktop remove lite       # back to the display manager before";

/// Install a desktop: the KOOMPI editions and the community desktops.
#[derive(Debug, Parser)]
#[command(name = "koompi-desktop", version, help_expected = true, after_help = AFTER_HELP)]
pub struct Cli {
    #[command(flatten)]
    sys: SystemArgs,
    #[command(flatten)]
    global: GlobalArgs,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Debug, Args, Clone)]
struct SystemArgs {
    /// Act on the system mounted at DIR (the installer's target).
    #[arg(long, global = true, value_name = "DIR")]
    root: Option<PathBuf>,
    /// pacman's configuration file (pacman --config).
    #[arg(long, global = true, value_name = "FILE")]
    config: Option<PathBuf>,
    /// The editions catalog.
    #[arg(long, global = true, value_name = "FILE", default_value = catalog::DEFAULT_PATH)]
    catalog: PathBuf,
    /// The editions' config files (what koompi-configs installs).
    #[arg(long, global = true, value_name = "DIR", default_value = catalog::CONFIGS_DIR)]
    configs: PathBuf,
    /// Ask nothing: take the defaults (no NVIDIA driver unless --nvidia yes).
    #[arg(long, global = true)]
    noconfirm: bool,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Choose an edition from the menu (what `koompi-desktop` alone does on a terminal).
    Menu {
        /// Show the plan of the chosen edition and change nothing.
        #[arg(long)]
        dry_run: bool,
    },
    /// List the editions.
    List,
    /// Show the installed editions, the enabled and the running display manager.
    Status,
    /// Install an edition.
    Install {
        /// The edition's ID (see `list`).
        edition: String,
        /// Show what would change (packages, services, files) and change nothing.
        #[arg(long)]
        dry_run: bool,
        /// The NVIDIA driver, when an NVIDIA GPU that it drives is found.
        #[arg(long, value_enum, default_value_t = Nvidia::Ask)]
        nvidia: Nvidia,
    },
    /// Remove an edition: its packages, and back to the display manager before it.
    Remove {
        /// The edition's ID.
        edition: String,
        /// Show what would change and change nothing.
        #[arg(long)]
        dry_run: bool,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Nvidia {
    /// Ask on the terminal (no when there is none).
    Ask,
    Yes,
    No,
}

/// `koompi-desktop`'s entry point: the exit code.
pub fn main() -> Result<i32> {
    let cli = Cli::parse();
    cli.global.init_logging();
    run(cli)
}

struct Ctx {
    catalog: Catalog,
    system: System,
    fmt: Format,
    sys: SystemArgs,
}

impl Ctx {
    fn new(cli: &Cli, runner: Runner) -> Result<Ctx> {
        let catalog = Catalog::load(&cli.sys.catalog)?;
        let opts = PacmanOpts {
            root: cli.sys.root.clone(),
            config: cli.sys.config.clone(),
            noconfirm: true,
            needed: true,
            ..Default::default()
        };
        let backends = Backends::detect(runner.clone(), opts);
        let system = System {
            root: desktop::root_of(cli.sys.root.as_deref()),
            backends,
            systemd: Systemd::new(cli.sys.root.clone(), runner),
        };
        Ok(Ctx {
            catalog,
            system,
            fmt: cli.global.format(),
            sys: cli.sys.clone(),
        })
    }
}

fn run(cli: Cli) -> Result<i32> {
    let ctx = Ctx::new(&cli, Runner::real())?;
    match &cli.command {
        None if std::io::stdin().is_terminal() && std::io::stdout().is_terminal() => {
            menu(&ctx, false)
        }
        None => {
            list(&ctx)?;
            eprintln!("koompi-desktop: install one with `sudo koompi-desktop install ID`");
            Ok(0)
        }
        Some(Command::Menu { dry_run }) => menu(&ctx, *dry_run),
        Some(Command::List) => list(&ctx).map(|()| 0),
        Some(Command::Status) => status(&ctx).map(|()| 0),
        Some(Command::Install {
            edition,
            dry_run,
            nvidia,
        }) => install(&ctx, edition, *dry_run, *nvidia),
        Some(Command::Remove { edition, dry_run }) => remove(&ctx, edition, *dry_run),
    }
}

fn list(ctx: &Ctx) -> Result<()> {
    if ctx.fmt == Format::Json {
        print!("{}", output::to_json(&ctx.catalog.editions));
        return Ok(());
    }
    let mut t = output::table(["ID", "EDITION", "KIND", "DESCRIPTION"]);
    for e in &ctx.catalog.editions {
        let kind = match e.group {
            catalog::Group::Koompi => "KOOMPI",
            _ => "community",
        };
        t.add_row([e.id.as_str(), e.name.as_str(), kind, e.description.as_str()]);
    }
    output::wrap_only(&mut t, 3, 12);
    println!("{t}");
    Ok(())
}

#[derive(Serialize)]
#[serde(rename_all = "kebab-case")]
struct Status {
    installed: Vec<StatusEdition>,
    display_manager: Option<String>,
    /// The display managers running now (`None` for a mounted root).
    running: Option<Vec<String>>,
    default_target: Option<String>,
    nvidia: Option<Advice>,
}

#[derive(Serialize)]
#[serde(rename_all = "kebab-case")]
struct StatusEdition {
    id: String,
    name: String,
    installed_at: String,
    packages_missing: Vec<String>,
}

fn status(ctx: &Ctx) -> Result<()> {
    let seen = ctx.system.observe(&ctx.catalog)?;
    let installed = seen
        .state
        .editions
        .iter()
        .map(|r| {
            let (name, missing) = match ctx.catalog.edition(&r.id) {
                Ok(e) => (
                    e.name.clone(),
                    e.all_packages()
                        .into_iter()
                        .filter(|p| !seen.installed.contains(p))
                        .collect(),
                ),
                Err(_) => (format!("{} (not in the catalog)", r.id), Vec::new()),
            };
            StatusEdition {
                id: r.id.clone(),
                name,
                installed_at: r.installed_at.clone(),
                packages_missing: missing,
            }
        })
        .collect();
    let running = ctx.sys.root.is_none().then(|| {
        let mut dms: Vec<String> = ctx
            .catalog
            .editions
            .iter()
            .filter_map(|e| e.display_manager.clone())
            .collect();
        dms.sort();
        dms.dedup();
        dms.into_iter()
            .filter(|d| ctx.system.systemd.is_active(d))
            .collect::<Vec<_>>()
    });
    let st = Status {
        installed,
        display_manager: seen.display_manager.clone(),
        running,
        default_target: seen.default_target.clone(),
        nvidia: seen.nvidia.clone(),
    };
    if ctx.fmt == Format::Json {
        print!("{}", output::to_json(&st));
        return Ok(());
    }
    if st.installed.is_empty() {
        println!("No edition installed by koompi-desktop.");
    } else {
        let mut t = output::table(["ID", "EDITION", "INSTALLED", "PACKAGES"]);
        for e in &st.installed {
            let pk = if e.packages_missing.is_empty() {
                "all there".to_string()
            } else {
                format!("missing: {}", e.packages_missing.join(" "))
            };
            t.add_row([e.id.as_str(), e.name.as_str(), e.installed_at.as_str(), &pk]);
        }
        output::wrap_only(&mut t, 3, 12);
        println!("{t}");
    }
    let none = || "none".to_string();
    println!(
        "Display manager: {} (enabled){}",
        st.display_manager.clone().unwrap_or_else(none),
        match &st.running {
            Some(r) if r.is_empty() => ", none running".to_string(),
            Some(r) => format!(", {} running", r.join(", ")),
            None => String::new(),
        }
    );
    println!(
        "Boot target: {}",
        st.default_target.clone().unwrap_or_else(none)
    );
    if let Some(a) = &st.nvidia {
        println!("{}", a.describe());
    }
    Ok(())
}

/// Changes need root: this command again through sudo.
fn become_root() -> Result<i32> {
    let exe = std::env::current_exe().context("cannot find this program's path")?;
    let args: Vec<OsString> = std::env::args_os().skip(1).collect();
    Ok(ops::as_root(&exe, &args)?.run_interactive(&Runner::real())?)
}

fn ask(question: &str) -> Result<bool> {
    eprint!("{question} [y/N] ");
    std::io::stderr().flush().ok();
    let mut line = String::new();
    std::io::stdin()
        .read_line(&mut line)
        .context("cannot read the answer")?;
    Ok(matches!(line.trim(), "y" | "Y" | "yes" | "Yes"))
}

fn plan_lines_install(p: &InstallPlan) -> Vec<String> {
    let mut v = Vec::new();
    if p.install.is_empty() {
        v.push(format!(
            "Packages: all {} already installed",
            p.present.len()
        ));
    } else {
        v.push(format!(
            "Packages to install ({}): {}",
            p.install.len(),
            p.install.join(" ")
        ));
        if !p.present.is_empty() {
            v.push(format!("Already installed: {}", p.present.join(" ")));
        }
    }
    if !p.services.is_empty() {
        v.push(format!("Services to enable: {}", p.services.join(" ")));
    }
    match &p.display_manager {
        Some(c) => v.push(format!(
            "Display manager: {} -> {} (from the next boot)",
            c.from.as_deref().unwrap_or("none"),
            c.to
        )),
        None => v.push("Display manager: unchanged".into()),
    }
    if let Some(t) = &p.target {
        v.push(format!(
            "Boot target: {} -> {}",
            t.from.as_deref().unwrap_or("none"),
            t.to
        ));
    }
    for f in &p.system_files {
        v.push(format!("System file written: /{}", f.path.display()));
    }
    if !p.configs.is_empty() {
        let files: Vec<String> = p.configs.iter().map(|f| f.display().to_string()).collect();
        v.push(format!(
            "Configs for new users (/etc/skel) and you: {}",
            files.join(" ")
        ));
    }
    if let Some(a) = &p.nvidia {
        v.push(a.describe());
    }
    v
}

fn plan_lines_remove(p: &RemovePlan) -> Vec<String> {
    let mut v = Vec::new();
    if p.remove.is_empty() {
        v.push("Packages to remove: none".into());
    } else {
        v.push(format!(
            "Packages to remove ({}): {}",
            p.remove.len(),
            p.remove.join(" ")
        ));
    }
    if !p.kept.is_empty() {
        v.push(format!(
            "Kept (another installed edition uses them): {}",
            p.kept.join(" ")
        ));
    }
    if let Some(c) = &p.display_manager {
        v.push(format!(
            "Display manager: {} -> {} (from the next boot)",
            c.from.as_deref().unwrap_or("none"),
            c.to.as_deref().unwrap_or("none")
        ));
    }
    if let Some(t) = &p.target {
        v.push(format!(
            "Boot target: {} -> {}",
            t.from.as_deref().unwrap_or("none"),
            t.to
        ));
    }
    v
}

/// The plan of installing `id`, with the NVIDIA question answered.
fn install_plan(ctx: &Ctx, id: &str, nvidia: Nvidia, seen: &Observed) -> Result<InstallPlan> {
    let edition = ctx.catalog.edition(id)?;
    let mut accept = nvidia == Nvidia::Yes;
    if let (Nvidia::Ask, Some(a @ Advice::Offer { package, .. })) = (nvidia, &seen.nvidia) {
        if !ctx.sys.noconfirm && std::io::stdin().is_terminal() && ctx.fmt == Format::Human {
            eprintln!("{}", a.describe());
            accept = ask(&format!("Install {package} too?"))?;
        }
    }
    Ok(desktop::plan_install(&ctx.catalog, edition, seen, accept))
}

fn install(ctx: &Ctx, id: &str, dry_run: bool, nvidia: Nvidia) -> Result<i32> {
    let edition = ctx.catalog.edition(id)?.clone();
    if !dry_run && !ops::is_root() {
        return become_root();
    }
    let seen = ctx.system.observe(&ctx.catalog)?;
    let plan = install_plan(ctx, id, if dry_run { Nvidia::No } else { nvidia }, &seen)?;
    if dry_run {
        if ctx.fmt == Format::Json {
            print!("{}", output::to_json(&plan));
        } else {
            println!("{} (dry run: nothing is changed)", edition.name);
            for l in plan_lines_install(&plan) {
                println!("  {l}");
            }
        }
        return Ok(0);
    }
    run_install(ctx, &plan, &seen)?;
    Ok(0)
}

/// The homes an install puts the edition's configs into: /etc/skel (for users made later)
/// and, on the running system, the home of the user who ran sudo.
fn config_homes(ctx: &Ctx) -> Result<Vec<ConfigHome>> {
    let skel = ctx.system.root.join("etc/skel");
    if !skel.exists() {
        std::fs::create_dir_all(&skel)
            .with_context(|| format!("cannot create {}", skel.display()))?;
    }
    let mut homes = vec![ConfigHome {
        home: skel,
        owner: None,
    }];
    if ctx.sys.root.is_none() {
        if let Some(user) = ops::invoking_user() {
            let p = koompi_desktop::apply::ident::lookup(&Runner::real(), &user)?;
            homes.push(ConfigHome {
                home: PathBuf::from(p.home),
                owner: Some((p.uid, p.gid)),
            });
        }
    }
    Ok(homes)
}

fn run_install(ctx: &Ctx, plan: &InstallPlan, seen: &Observed) -> Result<()> {
    let mut progress = |s: &str| eprintln!("koompi-desktop: {s}");
    ctx.system
        .install(plan, seen, &mut progress)
        .with_context(|| format!("installing {} stopped", plan.name))?;
    let edition = ctx.catalog.edition(&plan.edition)?;
    let homes = config_homes(ctx)?;
    ctx.system
        .apply_configs(
            &ctx.catalog,
            edition,
            &ctx.sys.configs,
            &homes,
            &mut progress,
        )
        .with_context(|| format!("{}'s configs", plan.name))?;
    if ctx.fmt == Format::Json {
        print!("{}", output::to_json(plan));
    } else if plan.display_manager.is_some() || plan.target.is_some() {
        println!(
            "{} is installed. Restart to log in to it: sudo reboot",
            plan.name
        );
    } else {
        println!("{} is installed.", plan.name);
    }
    Ok(())
}

fn remove(ctx: &Ctx, id: &str, dry_run: bool) -> Result<i32> {
    let edition = ctx.catalog.edition(id)?.clone();
    if !dry_run && !ops::is_root() {
        return become_root();
    }
    let seen = ctx.system.observe(&ctx.catalog)?;
    let plan = desktop::plan_remove(&ctx.catalog, &edition, &seen)?;
    if dry_run && ctx.fmt == Format::Json {
        print!("{}", output::to_json(&plan));
        return Ok(0);
    }
    if dry_run {
        println!("Remove {} (dry run: nothing is changed)", edition.name);
        for l in plan_lines_remove(&plan) {
            println!("  {l}");
        }
        return Ok(0);
    }
    let mut progress = |s: &str| eprintln!("koompi-desktop: {s}");
    ctx.system
        .remove(&plan, &mut progress)
        .with_context(|| format!("removing {} stopped", edition.name))?;
    if ctx.fmt == Format::Json {
        print!("{}", output::to_json(&plan));
    } else {
        println!(
            "{} is removed. Your own files in your home stay as they are.",
            edition.name
        );
    }
    Ok(0)
}

fn menu(ctx: &Ctx, dry_run: bool) -> Result<i32> {
    if !std::io::stdin().is_terminal() || !std::io::stdout().is_terminal() {
        bail!("the menu needs a terminal; use `koompi-desktop install ID` (see `koompi-desktop list`)");
    }
    let seen = ctx.system.observe(&ctx.catalog)?;
    let chosen = crate::desktop_tui::run(&ctx.catalog, &seen, |id| {
        let p = install_plan(ctx, id, Nvidia::No, &seen)?;
        Ok(plan_lines_install(&p))
    })?;
    let Some(id) = chosen else {
        return Ok(0);
    };
    install(ctx, &id, dry_run, Nvidia::Ask)
}
