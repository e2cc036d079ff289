//! `koompi-watchdog`: boot counting, confirmation and automatic rollback.

use std::path::PathBuf;

use crate::global::GlobalArgs;

use anyhow::{Context, Result};
use clap::{Parser, Subcommand};

use koompi_boot::watchdog::{self, CheckOutcome, Host, Settings};
use koompi_core::cmd::Runner;
use koompi_core::output::{self, Format};
use koompi_snapshots::config::SnapperConfig;
use koompi_snapshots::store::Store;

// Paragraphs are single lines: clap wraps them to the terminal (hand-broken lines would be
// wrapped a second time).
const AFTER_HELP: &str = "\
How it works: GRUB counts every boot that was not confirmed (in /boot/efi/koompi/grubenv). After 3 in a row it starts the last known-good snapshot instead; `check` on that boot makes the rollback permanent (the broken system is kept as an important snapshot) and reboots. A boot is confirmed by `success`, which koompi-boot-success.service runs once the system reached its target and stayed up for SUCCESS_DELAY_SEC (default 300) seconds.

Settings: /etc/koompi/watchdog.conf (ESP, STATE_DIR, SNAPPER_CONFIG, SUCCESS_DELAY_SEC).";

/// The KOOMPI boot watchdog: brings the system back when it fails to start.
#[derive(Debug, Parser)]
#[command(name = "koompi-watchdog", version, help_expected = true, after_help = AFTER_HELP)]
pub struct Cli {
    /// Settings file.
    #[arg(long, global = true, value_name = "PATH", default_value = watchdog::SETTINGS_PATH)]
    settings: PathBuf,
    /// The ESP's mount point (instead of ESP=).
    #[arg(long, global = true, value_name = "PATH")]
    esp: Option<PathBuf>,
    #[command(flatten)]
    global: GlobalArgs,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Early in boot: finish a fallback's rollback, or count this boot.
    Check {
        /// Do not reboot after a rollback (for tests).
        #[arg(long)]
        no_reboot: bool,
    },
    /// Confirm this boot: reset the counter, refresh the fallback.
    Success {
        /// Wait SUCCESS_DELAY_SEC seconds first (what the service does).
        #[arg(long)]
        wait: bool,
    },
    /// Failed attempts, the fallback, the last good boot, rollbacks.
    Status,
    /// Mark a snapshot known-good: the fallback (number, name, glob).
    MarkGood {
        /// A number, a name or a glob on names.
        id: String,
        /// Also when this boot is not confirmed yet.
        #[arg(long)]
        force: bool,
    },
    /// Recompute the known-good snapshot GRUB falls back to.
    Refresh,
    /// At the boot deadline: reboot if this boot was never confirmed.
    Deadline,
    /// Create the boot environment block on the ESP (for installers).
    Init {
        /// Reset an existing block.
        #[arg(long)]
        force: bool,
        /// The installed system's snapshot config (snapper format, for a root mounted
        /// elsewhere): the fallback is set to its newest snapshot marked known-good.
        #[arg(long, value_name = "PATH")]
        config_file: Option<PathBuf>,
    },
    /// Print the GRUB code for grub-mkconfig (run by /etc/grub.d).
    GrubScript,
}

/// Entry point of the binary.
pub fn main() -> Result<()> {
    let cli = Cli::parse();
    cli.global.init_logging();
    let mut settings = Settings::load(&cli.settings)?;
    if let Some(esp) = cli.esp {
        settings.esp = esp;
    }
    let fmt = cli.global.format();
    let runner = Runner::real();
    match cli.command {
        Command::Init { force, config_file } => {
            let p = watchdog::init(&settings, force)?;
            let store = match config_file {
                Some(f) => Some(Store::open(SnapperConfig::from_file(&f)?)?),
                None => settings.store().ok(),
            };
            let fallback = match &store {
                Some(store) => watchdog::init_fallback(&settings, store)?,
                None => None,
            };
            println!("Boot environment ready: {}", p.display());
            match fallback {
                Some(f) => println!(
                    "Fallback: snapshot {}{} ({})",
                    f.number,
                    f.name.map(|n| format!(" {n}")).unwrap_or_default(),
                    f.kernel
                ),
                None => println!("Fallback: none yet (no snapshot marked known-good)"),
            }
        }
        Command::GrubScript => print!("{}", watchdog::grub_script(&settings, &runner)?),
        Command::Check { no_reboot } => {
            let host = Host::read()?;
            let out = watchdog::check(&settings, &host, &runner, !no_reboot)
                .context("boot check failed")?;
            match fmt {
                Format::Json => print!("{}", output::to_json(&out)),
                Format::Human => match out {
                    CheckOutcome::Pending { tries } => {
                        println!("Boot {} of the unconfirmed series; waiting for success.", tries)
                    }
                    CheckOutcome::RolledBack { target, backup } => println!(
                        "Recovered: snapshot {target} is the system again; the broken one is kept as snapshot {backup}. Rebooting."
                    ),
                },
            }
        }
        Command::Success { wait } => {
            if wait && settings.success_delay > 0 {
                std::thread::sleep(std::time::Duration::from_secs(settings.success_delay));
            }
            let host = Host::read()?;
            let f = watchdog::success(&settings, &host)?;
            match fmt {
                Format::Json => print!(
                    "{}",
                    output::to_json(&serde_json::json!({ "confirmed": true, "fallback": f }))
                ),
                Format::Human => match f {
                    Some(f) => println!(
                        "Boot confirmed. Known-good fallback: snapshot {}.",
                        f.number
                    ),
                    None => println!("Boot confirmed. No known-good snapshot yet."),
                },
            }
        }
        Command::Refresh => {
            let host = Host::read()?;
            let history = watchdog::load_history(&settings)?;
            let f = watchdog::refresh(&settings, &host, &history)?;
            match fmt {
                Format::Json => print!("{}", output::to_json(&f)),
                Format::Human => match f {
                    Some(f) => println!("Known-good fallback: snapshot {}.", f.number),
                    None => println!("No known-good snapshot."),
                },
            }
        }
        Command::MarkGood { id, force } => {
            let host = Host::read()?;
            let store = settings.store()?;
            let num = store.resolve(&store.entries()?, &id)?;
            let f = watchdog::mark_good(&settings, &host, num, force)?;
            match fmt {
                Format::Json => print!("{}", output::to_json(&f)),
                Format::Human => println!(
                    "Snapshot {num} is known-good. Fallback: snapshot {}.",
                    f.map(|f| f.number.to_string())
                        .unwrap_or_else(|| "none".into())
                ),
            }
        }
        Command::Deadline => {
            let host = Host::read()?;
            if !watchdog::deadline(&settings, &host, &runner)? {
                println!("This boot is confirmed; nothing to do.");
            }
        }
        Command::Status => {
            let host = Host::read()?;
            let st = watchdog::status(&settings, &host)?;
            match fmt {
                Format::Json => print!("{}", output::to_json(&st)),
                Format::Human => {
                    println!(
                        "This boot:       {}",
                        if st.confirmed {
                            "confirmed"
                        } else {
                            "not confirmed yet"
                        }
                    );
                    if let Some(n) = st.booted_fallback {
                        println!("Started from:    known-good snapshot {n} (fallback)");
                    }
                    println!(
                        "Failed attempts: {} of {} before the fallback",
                        st.failed_attempts,
                        koompi_boot::counting::MAX_TRIES
                    );
                    match &st.fallback {
                        Some(f) => {
                            println!("Fallback:        snapshot {} ({})", f.number, f.kernel)
                        }
                        None => println!("Fallback:        none yet"),
                    }
                    match st.last_confirmed {
                        Some(t) => {
                            println!("Last confirmed:  {}", t.format("%Y-%m-%d %H:%M:%S UTC"))
                        }
                        None => println!("Last confirmed:  never"),
                    }
                    if st.rollbacks.is_empty() {
                        println!("Rollbacks:       none");
                    }
                    for r in &st.rollbacks {
                        println!(
                            "Rollback:        {} to snapshot {} (broken state kept as {}): {}",
                            r.time.format("%Y-%m-%d %H:%M UTC"),
                            r.target,
                            r.backup,
                            r.reason
                        );
                    }
                }
            }
        }
    }
    Ok(())
}
