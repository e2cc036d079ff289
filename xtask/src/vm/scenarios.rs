//! The VM scenarios, each on a fresh overlay of the base image, driven over the serial
//! console:
//!
//! - `boot`: the image boots to the autologin prompt and the boot gets confirmed
//!   (`koompi-watchdog status`: confirmed, tries 0; the grubenv on the ESP says
//!   `koompi_tries=0`; the factory snapshot is the fallback).
//! - `watchdog-panic`: a known-good snapshot is marked, then `/usr/sbin/init` is pointed at
//!   /bin/false so every boot ends in a kernel panic; with no input at all the machine must
//!   come back on its own (3 failed boots, the fallback boot, the restored boot), with the
//!   known-good state restored and the broken state kept as an important snapshot.
//! - `watchdog-hang`: the same, but the break is a unit that blocks boot forever, so every
//!   boot hangs in userspace until koompi-boot-deadline.timer reboots it.
//! - `rollback-manual`: `koompi-snapshot rollback` plus a reboot restores `/` while /home
//!   and /var/log (their own subvolumes) keep what was written after the snapshot.
//! - `live-session`: the image variant with the ISO's live-session overlay and the branding
//!   ([`super::live`]) boots to a real `login:` prompt under /etc/issue; a wrong password is
//!   refused, koompi/koompi logs in, the KOOMPI motd is shown, and the shell sees hostname
//!   koompi-live and `PRETTY_NAME="KOOMPI OS Base Edition"` in /etc/os-release.
//! - `base-edition`: the live session on the same image, then the Base edition's promises
//!   (zram, the services, the Khmer locale, fonts and shaping, the boot splash seen in QEMU
//!   screendumps of a second boot), one line each ([`super::edition`]).
//! - `upgrade-transactional`: `koompi install` and two `koompi upgrade --transactional`
//!   runs against local test repositories, the second breaking boot ([`super::upgrade`]).
//!
//! Each scenario declares on which firmwares it runs in each [`Tier`] ([`Scenario::tiers`]):
//! the full tier runs everything on BIOS and UEFI, the ci tier (`cargo xtask test`) runs a
//! scenario on both only where what it proves depends on the firmware. [`run`] runs a plan
//! one guest at a time and runs a run again once, from a fresh overlay, when the guest
//! stalled between a reset and its kernel ([`super::stall`]). The console steps several
//! scenarios share (login, the watchdog's confirmation, reboot, the wait for a recovery) are
//! in [`super::steps`].

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{bail, ensure, Context, Result};
use serde_json::Value;

use super::console::{find, Console, BOOT_BANNER, PROMPT};
use super::image::Variant;
use super::qemu::{self, Disk, Qemu, Serial};
use super::report::{Retry, Row, Runs};
use super::stall::with_one_retry;
use super::steps::{
    json, login, reboot, require_watchdog, settle, wait_confirmed, wait_recovered, watchdog_status,
    Outcome, BOOT_TIMEOUT, CMD_TIMEOUT, MAX_RECOVERY_BOOTS,
};
use super::{cmd, path_str, progress, Firmware, FirmwareChoice};

/// The `SCENARIO` argument of `vm-test`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Choice {
    Boot,
    WatchdogPanic,
    WatchdogHang,
    RollbackManual,
    LiveSession,
    BaseEdition,
    DesktopLite,
    UpgradeTransactional,
    InstallBios,
    InstallUefi,
    InstallLuks,
    InstallResume,
    InstallUnattended,
    InstallBeside,
    /// Every scenario: the full tier (with `--tier ci`, the ci tier).
    All,
}

impl Choice {
    /// The scenarios this choice stands for.
    pub fn list(self) -> Vec<Scenario> {
        match self {
            Choice::Boot => vec![Scenario::Boot],
            Choice::WatchdogPanic => vec![Scenario::Recovery(Break::Panic)],
            Choice::WatchdogHang => vec![Scenario::Recovery(Break::Hang)],
            Choice::RollbackManual => vec![Scenario::RollbackManual],
            Choice::LiveSession => vec![Scenario::LiveSession],
            Choice::BaseEdition => vec![Scenario::BaseEdition],
            Choice::DesktopLite => vec![Scenario::DesktopLite],
            Choice::UpgradeTransactional => vec![Scenario::UpgradeTransactional],
            Choice::InstallBios => vec![Scenario::InstallBios],
            Choice::InstallUefi => vec![Scenario::InstallUefi],
            Choice::InstallLuks => vec![Scenario::InstallLuks],
            Choice::InstallResume => vec![Scenario::InstallResume],
            Choice::InstallUnattended => vec![Scenario::InstallUnattended],
            Choice::InstallBeside => vec![Scenario::InstallBeside],
            Choice::All => Scenario::ALL.to_vec(),
        }
    }
}

/// A set of VM runs: which scenarios on which firmwares.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Tier {
    /// What `cargo xtask test` and CI run: a scenario on both firmwares only where what it
    /// proves depends on the firmware, otherwise on one.
    Ci,
    /// Every scenario on both firmwares.
    All,
}

impl Tier {
    /// The value as typed on the command line.
    pub fn name(self) -> &'static str {
        match self {
            Tier::Ci => "ci",
            Tier::All => "all",
        }
    }
}

/// How a recovery scenario breaks the system.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Break {
    /// PID 1 is /bin/false: a kernel panic at every boot (panic=10 reboots).
    Panic,
    /// A unit before multi-user.target that never finishes.
    Hang,
}

/// One scenario.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scenario {
    Boot,
    Recovery(Break),
    RollbackManual,
    LiveSession,
    /// The live session, then the Base edition's promises and the boot splash
    /// ([`super::edition`]).
    BaseEdition,
    /// `koompi-desktop install lite` to a graphical login and the Lite desktop
    /// ([`super::desktop`]).
    DesktopLite,
    UpgradeTransactional,
    /// `koompi-install` from the live image onto a blank disk, then the disk booted alone
    /// ([`super::install`]).
    InstallBios,
    InstallUefi,
    InstallLuks,
    InstallResume,
    InstallUnattended,
    InstallBeside,
}

/// On which firmwares a scenario runs in each tier, BIOS first.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Tiers {
    /// In the ci tier (`cargo xtask test`).
    pub ci: &'static [Firmware],
    /// In the full tier (`cargo xtask test --vm all`, `vm-test all`).
    pub all: &'static [Firmware],
}

const BOTH: &[Firmware] = &[Firmware::Bios, Firmware::Uefi];
const BIOS: &[Firmware] = &[Firmware::Bios];
const UEFI: &[Firmware] = &[Firmware::Uefi];

/// `boot`: both firmwares in every tier. What it proves is each firmware's own path: SeaBIOS
/// loads GRUB's core.img from the BIOS boot partition, OVMF loads EFI/BOOT/BOOTX64.EFI from
/// the ESP, and GRUB reaches the grubenv on the ESP (which confirms the boot) through that
/// firmware's disk services. About a minute a run.
const BOOT_TIERS: Tiers = Tiers {
    ci: BOTH,
    all: BOTH,
};

/// `watchdog-panic`: both firmwares in every tier. The boot counting and the fallback
/// happen in GRUB (42_koompi_watchdog reading and writing koompi/grubenv on the ESP), the
/// firmware-dependent half of the watchdog, and each panic restarts the machine through the
/// firmware's reset path. This is the scenario that proves GRUB's side on UEFI for the
/// single-firmware scenarios below. About 6 minutes a run.
const WATCHDOG_PANIC_TIERS: Tiers = Tiers {
    ci: BOTH,
    all: BOTH,
};

/// `watchdog-hang`: BIOS only in the ci tier. What it adds to `watchdog-panic` is
/// userspace: a boot that hangs is rebooted by koompi-boot-deadline.timer, a systemd timer
/// that works the same under either firmware; GRUB's counting and fallback on UEFI are
/// proven by `watchdog-panic`. BIOS because this run has five reboots, and only UEFI
/// guests have stalled after a warm reset (docs/vm-rig.md, "Known problem"); at about 11
/// minutes a run it is also the longest scenario, so the second firmware would cost the
/// most here.
const WATCHDOG_HANG_TIERS: Tiers = Tiers {
    ci: BIOS,
    all: BOTH,
};

/// `rollback-manual`: BIOS only in the ci tier. The rollback is the snapshot engine's
/// (a subvolume exchange in the Btrfs, found at the next boot by the same `subvol=@`), the
/// same under either firmware; GRUB reading a root that was just exchanged is proven on
/// UEFI by `watchdog-panic`'s recovery. BIOS for its reboot, as for `watchdog-hang`.
const ROLLBACK_MANUAL_TIERS: Tiers = Tiers {
    ci: BIOS,
    all: BOTH,
};

/// `live-session`: the full tier only, on both firmwares. The getty, `login`, PAM,
/// /etc/issue, the motd and the shell are userspace and do not depend on the firmware; in
/// the ci tier `base-edition` runs this same session first, on the same image, with UEFI.
const LIVE_SESSION_TIERS: Tiers = Tiers { ci: &[], all: BOTH };

/// `base-edition`: UEFI in both tiers. The splash needs a graphical console, and the rig's
/// kernel has only efifb (no DRM, no VESA framebuffer): a BIOS guest has none. The other
/// promises are userspace and do not depend on the firmware. Two boots.
const BASE_EDITION_TIERS: Tiers = Tiers {
    ci: UEFI,
    all: UEFI,
};

/// `desktop-lite`: UEFI in both tiers. What `koompi-desktop` does (pacman, systemctl, the
/// configs) and what X draws on (the generic kernel's DRM) do not depend on the firmware;
/// one is enough. Two boots.
const DESKTOP_LITE_TIERS: Tiers = Tiers {
    ci: UEFI,
    all: UEFI,
};

/// `upgrade-transactional`: BIOS only in the ci tier. The upgrade, the switch and the
/// regenerated GRUB menu (in /boot/grub inside `@`) are the same under either firmware; the
/// recovery of the broken upgrade is GRUB's counting and fallback, proven on both by
/// `watchdog-panic`. BIOS for its six reboots, as for `watchdog-hang`; about 10 minutes a
/// run.
const UPGRADE_TRANSACTIONAL_TIERS: Tiers = Tiers {
    ci: BIOS,
    all: BOTH,
};

/// `install-bios`: the full tier only. An unencrypted install booted by SeaBIOS; the ci
/// tier proves the BIOS path of an install with `install-luks` (GRUB's core.img with the
/// LUKS modules in the BIOS boot partition, the harder case).
const INSTALL_BIOS_TIERS: Tiers = Tiers { ci: &[], all: BIOS };

/// `install-uefi`: UEFI in both tiers. An unencrypted install booted by OVMF from the
/// fallback loader the installer put on the ESP.
const INSTALL_UEFI_TIERS: Tiers = Tiers {
    ci: UEFI,
    all: UEFI,
};

/// `install-luks`: BIOS in the ci tier (with `install-uefi`, both firmwares boot an
/// installed disk in CI), both in the full tier.
const INSTALL_LUKS_TIERS: Tiers = Tiers {
    ci: BIOS,
    all: BOTH,
};

/// `install-resume`: the full tier, BIOS. The journal and the resume are the installer's,
/// the same under either firmware.
const INSTALL_RESUME_TIERS: Tiers = Tiers { ci: &[], all: BIOS };

/// `install-unattended`: BIOS in both tiers. A school's fleet install (an answer stick,
/// nobody typing) is what forty laptops go through; the firmware paths of an installed disk
/// are proven by `install-uefi` and `install-luks`.
const INSTALL_UNATTENDED_TIERS: Tiers = Tiers {
    ci: BIOS,
    all: BIOS,
};

/// `install-beside`: the full tier, UEFI. Beside another system KOOMPI OS is reached
/// through its UEFI NVRAM entry (the other system keeps the fallback loader and the disk
/// has no BIOS boot partition): a UEFI path only.
const INSTALL_BESIDE_TIERS: Tiers = Tiers { ci: &[], all: UEFI };

impl Scenario {
    /// Every scenario, in the order a tier runs them: the short ones first, so that a broken
    /// image fails early.
    pub const ALL: [Scenario; 14] = [
        Scenario::Boot,
        Scenario::LiveSession,
        Scenario::BaseEdition,
        Scenario::DesktopLite,
        Scenario::RollbackManual,
        Scenario::Recovery(Break::Panic),
        Scenario::Recovery(Break::Hang),
        Scenario::UpgradeTransactional,
        Scenario::InstallUefi,
        Scenario::InstallLuks,
        Scenario::InstallBios,
        Scenario::InstallResume,
        Scenario::InstallUnattended,
        Scenario::InstallBeside,
    ];

    fn name(self) -> &'static str {
        match self {
            Scenario::Boot => "boot",
            Scenario::Recovery(Break::Panic) => "watchdog-panic",
            Scenario::Recovery(Break::Hang) => "watchdog-hang",
            Scenario::RollbackManual => "rollback-manual",
            Scenario::LiveSession => "live-session",
            Scenario::BaseEdition => "base-edition",
            Scenario::DesktopLite => "desktop-lite",
            Scenario::UpgradeTransactional => "upgrade-transactional",
            Scenario::InstallBios => "install-bios",
            Scenario::InstallUefi => "install-uefi",
            Scenario::InstallLuks => "install-luks",
            Scenario::InstallResume => "install-resume",
            Scenario::InstallUnattended => "install-unattended",
            Scenario::InstallBeside => "install-beside",
        }
    }

    /// On which firmwares the scenario runs in each tier (the reasons are at each
    /// declaration).
    pub fn tiers(self) -> Tiers {
        match self {
            Scenario::Boot => BOOT_TIERS,
            Scenario::Recovery(Break::Panic) => WATCHDOG_PANIC_TIERS,
            Scenario::Recovery(Break::Hang) => WATCHDOG_HANG_TIERS,
            Scenario::RollbackManual => ROLLBACK_MANUAL_TIERS,
            Scenario::LiveSession => LIVE_SESSION_TIERS,
            Scenario::BaseEdition => BASE_EDITION_TIERS,
            Scenario::DesktopLite => DESKTOP_LITE_TIERS,
            Scenario::UpgradeTransactional => UPGRADE_TRANSACTIONAL_TIERS,
            Scenario::InstallBios => INSTALL_BIOS_TIERS,
            Scenario::InstallUefi => INSTALL_UEFI_TIERS,
            Scenario::InstallLuks => INSTALL_LUKS_TIERS,
            Scenario::InstallResume => INSTALL_RESUME_TIERS,
            Scenario::InstallUnattended => INSTALL_UNATTENDED_TIERS,
            Scenario::InstallBeside => INSTALL_BESIDE_TIERS,
        }
    }

    /// The firmwares the scenario runs on in `tier`.
    pub fn firmwares(self, tier: Tier) -> &'static [Firmware] {
        let t = self.tiers();
        match tier {
            Tier::Ci => t.ci,
            Tier::All => t.all,
        }
    }

    /// The image the scenario boots.
    pub fn variant(self) -> Variant {
        match self {
            Scenario::LiveSession
            | Scenario::BaseEdition
            | Scenario::InstallBios
            | Scenario::InstallUefi
            | Scenario::InstallLuks
            | Scenario::InstallResume
            | Scenario::InstallUnattended
            | Scenario::InstallBeside => Variant::Live,
            Scenario::DesktopLite => Variant::Desktop,
            _ => Variant::Installed,
        }
    }

    /// What an install scenario installs; `None` for the others.
    fn install_kind(self) -> Option<super::install::Kind> {
        use super::install::Kind;
        match self {
            Scenario::InstallBios | Scenario::InstallUefi => Some(Kind::Plain),
            Scenario::InstallLuks => Some(Kind::Luks),
            Scenario::InstallResume => Some(Kind::Resume),
            Scenario::InstallUnattended => Some(Kind::Unattended),
            Scenario::InstallBeside => Some(Kind::Beside),
            _ => None,
        }
    }

    fn run(self, c: &mut Console, repos: Option<&[u8]>) -> Result<Outcome> {
        match self {
            Scenario::UpgradeTransactional => super::upgrade::upgrade_transactional(
                c,
                repos.context("the test repositories were not built")?,
            ),
            Scenario::Boot => boot(c),
            Scenario::Recovery(b) => recovery(c, b),
            Scenario::RollbackManual => rollback_manual(c),
            Scenario::LiveSession => {
                super::live::session(c).map(|(boots, detail)| Outcome { boots, detail })
            }
            Scenario::BaseEdition | Scenario::DesktopLite => {
                bail!("{} needs its machine's QMP socket (run_one)", self.name())
            }
            Scenario::InstallBios
            | Scenario::InstallUefi
            | Scenario::InstallLuks
            | Scenario::InstallResume
            | Scenario::InstallUnattended
            | Scenario::InstallBeside => {
                bail!("an install scenario runs its own machines (super::install::run)")
            }
        }
    }
}

/// The runs of `scenarios` in `tier`, limited to the firmwares of `firmware`: scenario by
/// scenario, BIOS before UEFI.
pub fn plan(
    scenarios: &[Scenario],
    tier: Tier,
    firmware: FirmwareChoice,
) -> Vec<(Scenario, Firmware)> {
    let allowed = firmware.list();
    scenarios
        .iter()
        .flat_map(|&s| {
            s.firmwares(tier)
                .iter()
                .filter(|fw| allowed.contains(fw))
                .map(move |&fw| (s, fw))
        })
        .collect()
}

/// Why `plan` gave nothing, for the error message: where each scenario runs in `tier`.
pub fn where_they_run(scenarios: &[Scenario], tier: Tier) -> String {
    scenarios
        .iter()
        .map(|s| {
            let fws: Vec<&str> = s.firmwares(tier).iter().map(|f| f.name()).collect();
            format!("{} runs on {}", s.name(), fws.join(" and "))
        })
        .collect::<Vec<_>>()
        .join("; ")
}

/// Runs `plan` one guest at a time, each run on its scenario's image from `images`. A run
/// whose guest stalls ([`super::stall`]) runs once more from a fresh overlay, its console
/// in `<scenario>-<firmware>.retry.log` next to the first attempt's log. Returns every run
/// for the summary; stops starting runs once interrupted.
pub fn run(
    root: &Path,
    images: &[(Variant, PathBuf)],
    plan: &[(Scenario, Firmware)],
    keep: bool,
) -> Result<Runs> {
    let logs = root.join("target/vm-logs");
    std::fs::create_dir_all(&logs).with_context(|| format!("cannot create {}", logs.display()))?;
    let mut runs = Runs::default();
    for &(s, fw) in plan {
        if super::interrupt::check().is_err() {
            runs.interrupted = true;
            break;
        }
        let label = format!("{}/{}", s.name(), fw.name());
        let name = format!("{}-{}", s.name(), fw.name());
        let log = logs.join(format!("{name}.log"));
        let retry_log = logs.join(format!("{name}.retry.log"));
        // A retry log of an earlier session would be mistaken for this one's.
        let _ = std::fs::remove_file(&retry_log);
        let start = Instant::now();
        let mut first_secs = 0;
        let (result, stall) = with_one_retry(
            |attempt| {
                let (log, dir) = match attempt {
                    0 => (&log, name.clone()),
                    _ => (&retry_log, format!("{name}.retry")),
                };
                progress(&format!(
                    "{label}: booting{} (console log {})",
                    if attempt == 0 { "" } else { " again" },
                    log.display()
                ));
                let (_, image) = images
                    .iter()
                    .find(|(v, _)| *v == s.variant())
                    .with_context(|| format!("no {:?} image was built", s.variant()))?;
                run_one(root, image, s, fw, keep, &dir, log)
            },
            |stall| {
                first_secs = start.elapsed().as_secs();
                progress(&format!(
                    "{label}: stopped after {first_secs} s: {stall} (console log {}); running \
                     it once more from a fresh overlay",
                    log.display()
                ));
                super::interrupt::check()
            },
        );
        let secs = start.elapsed().as_secs();
        let last_log = if stall.is_some() && retry_log.exists() {
            &retry_log
        } else {
            &log
        };
        match &result {
            Ok(o) => progress(&format!(
                "{label}: PASS in {secs} s{}, {} boot(s){}",
                if stall.is_some() { " (retried)" } else { "" },
                o.boots,
                o.detail
            )),
            Err(e) => {
                progress(&format!("{label}: FAIL after {secs} s: {e:#}"));
                let text = std::fs::read_to_string(last_log).unwrap_or_default();
                let text = super::console::strip_escapes(&text.replace('\r', ""));
                eprintln!("---- last 60 lines of the console ----");
                eprintln!("{}", cmd::tail(&text, 60));
                eprintln!("---- full console log: {} ----", last_log.display());
            }
        }
        runs.rows.push(Row {
            scenario: s.name(),
            firmware: fw,
            secs,
            result: result.map(|o| o.boots).map_err(|e| format!("{e:#}")),
            retried: stall.map(|stall| Retry {
                stall,
                secs: first_secs,
                log: log.display().to_string(),
            }),
        });
    }
    Ok(runs)
}

/// One attempt of one run, on a fresh overlay in `target/vm-runs/<run_dir>/`.
fn run_one(
    root: &Path,
    image: &Path,
    s: Scenario,
    fw: Firmware,
    keep: bool,
    run_dir: &str,
    log: &Path,
) -> Result<Outcome> {
    let dir = root.join("target/vm-runs").join(run_dir);
    // Built before the guest starts, so makepkg does not compete with it for the CPU.
    let repos = match s {
        Scenario::UpgradeTransactional => {
            progress("  building the test packages (makepkg, repo-add)");
            Some(super::testrepo::build()?)
        }
        Scenario::DesktopLite => {
            progress("  building the lite edition's stand-in packages (makepkg, repo-add)");
            Some(super::testrepo::build_edition(root, "lite")?)
        }
        _ => None,
    };
    if let Some(kind) = s.install_kind() {
        let mut disk = Disk::create(qemu::Base::Image(image), &dir, fw, keep)?;
        let medium = super::image::medium_of(image);
        return super::install::run(&mut disk, &medium, fw, kind, log);
    }
    let disk = Disk::create(qemu::Base::Image(image), &dir, fw, keep)?;
    let sock_dir = tempfile::Builder::new()
        .prefix("koompi-vm.")
        .tempdir()
        .context("cannot create a temporary directory")?;
    let sock = sock_dir.path().join("console.sock");
    // The console listens before QEMU starts: QEMU connects to it.
    let mut console = Console::listen(&sock, log)?;
    let mut command = qemu::command(&disk, fw, Serial::Socket(&sock))?;
    let qmp = sock_dir.path().join("qmp.sock");
    if matches!(s, Scenario::BaseEdition | Scenario::DesktopLite) {
        // A graphical console to take screendumps of, through QMP.
        command
            .args(["-device", "VGA", "-qmp"])
            .arg(format!("unix:{},server=on,wait=off", path_str(&qmp)?));
    }
    let vm = Qemu::spawn(command, &disk.dir.join("qemu.stderr"))?;
    console.watch(vm.ended());
    let result = match s {
        Scenario::BaseEdition => super::edition::run(
            &mut console,
            &qmp,
            &log.with_extension("frames"),
            &log.with_extension("splash.png"),
        ),
        Scenario::DesktopLite => super::desktop::run(
            &mut console,
            &qmp,
            log,
            repos
                .as_deref()
                .context("the stand-in packages were not built")?,
        ),
        _ => s.run(&mut console, repos.as_deref()),
    };
    // QEMU first: its end closes the connection the console's reader is reading.
    let stopped = vm.check_running();
    drop(vm);
    drop(console);
    match (result, stopped) {
        (Err(e), Err(q)) if !format!("{e:#}").contains(&format!("{q:#}")) => {
            Err(e.context(format!("{q:#}")))
        }
        (r, _) => r,
    }
}

pub(super) fn snapshots(c: &mut Console) -> Result<Vec<Value>> {
    match json(c, "koompi-snapshot list --json")? {
        Value::Array(a) => Ok(a),
        other => bail!("`koompi-snapshot list --json` printed no array: {other}"),
    }
}

fn number_of(list: &[Value], name: &str) -> Result<u64> {
    list.iter()
        .find(|s| s["name"] == name)
        .and_then(|s| s["number"].as_u64())
        .with_context(|| format!("no snapshot named {name} in `koompi-snapshot list --json`"))
}

/// `tries` of a status object.
fn tries(status: &Value) -> Result<i64> {
    status["tries"]
        .as_i64()
        .with_context(|| format!("no integer \"tries\" in the status: {status}"))
}

/// `cat FILE` in the guest, trimmed.
fn cat(c: &mut Console, file: &str) -> Result<String> {
    Ok(c.run_ok(&format!("cat {file}"), CMD_TIMEOUT)?
        .trim()
        .to_string())
}

fn boot(c: &mut Console) -> Result<Outcome> {
    c.wait_for(PROMPT, BOOT_TIMEOUT)
        .context("no autologin prompt on the serial console")?;
    let prompt_at = c.arrival_of(c.position().saturating_sub(1));
    let kernel_at = c
        .inspect(|buf| find(buf, BOOT_BANNER.as_bytes()))
        .and_then(|pos| c.arrival_of(pos));
    progress(&format!("  autologin prompt at {} s", c.elapsed_secs()));
    settle(c)?;
    let boots = c.boots_since(0);
    ensure!(
        boots == 1,
        "{boots} boots before the first prompt (expected 1)"
    );
    require_watchdog(c)?;
    let status = wait_confirmed(c)?;
    ensure!(
        tries(&status)? == 0,
        "confirmed, but tries is not 0: {status}"
    );
    let env = c.run_ok("grub-editenv /boot/efi/koompi/grubenv list", CMD_TIMEOUT)?;
    ensure!(
        env.lines().any(|l| l.trim() == "koompi_tries=0"),
        "the grubenv on the ESP has no koompi_tries=0:\n{env}"
    );
    let list = snapshots(c)?;
    let factory = list
        .iter()
        .find(|s| {
            s["name"]
                .as_str()
                .is_some_and(|n| n.starts_with("factory-"))
        })
        .with_context(|| format!("no factory-* snapshot in the image: {list:?}"))?;
    ensure!(
        factory["important"] == Value::Bool(true),
        "the factory snapshot is not important: {factory}"
    );
    ensure!(
        status["fallback"]["number"] == factory["number"],
        "the fallback is not the factory snapshot {}: {status}",
        factory["number"]
    );
    let detail = boot_phases(c, kernel_at, prompt_at);
    progress(&format!("  boot phases: {detail}"));
    Ok(Outcome { boots, detail })
}

/// The boot's phases (docs/vm-rig.md, "Where a boot's time goes"): QEMU's start to the
/// kernel banner on the console (firmware and GRUB), the guest's own `systemd-analyze`
/// (kernel, initrd, userspace), and QEMU's start to the prompt. Measured, not checked.
fn boot_phases(
    c: &mut Console,
    kernel_at: Option<Duration>,
    prompt_at: Option<Duration>,
) -> String {
    let secs = |d: Option<Duration>| {
        d.map_or_else(|| "?".to_string(), |d| format!("{:.1}", d.as_secs_f64()))
    };
    let analyze = match c.run("systemd-analyze time", CMD_TIMEOUT) {
        Ok((0, out)) => out
            .lines()
            .find_map(|l| l.trim().strip_prefix("Startup finished in "))
            .map(|rest| rest.trim().to_string())
            .unwrap_or_else(|| "no `Startup finished` line".into()),
        Ok((code, out)) => format!("systemd-analyze exited {code}: {}", out.trim()),
        Err(e) => format!("systemd-analyze: {e:#}"),
    };
    if let Ok((0, blame)) = c.run("systemd-analyze blame --no-pager | head -n 8", CMD_TIMEOUT) {
        for l in blame.lines() {
            progress(&format!("    {}", l.trim()));
        }
    }
    format!(
        " (firmware+GRUB {} s; {analyze}; prompt at {} s)",
        secs(kernel_at),
        secs(prompt_at)
    )
}

const HANG_UNIT: &str = "[Unit]\\nDescription=hang\\nBefore=multi-user.target\\n\
[Service]\\nType=oneshot\\nExecStart=/bin/sleep infinity\\nTimeoutStartSec=infinity\\n\
[Install]\\nWantedBy=multi-user.target\\n";

fn recovery(c: &mut Console, kind: Break) -> Result<Outcome> {
    login(c, BOOT_TIMEOUT)?;
    require_watchdog(c)?;
    wait_confirmed(c)?;
    c.run_ok("echo good > /etc/koompi-vm-marker", CMD_TIMEOUT)?;
    c.run_ok(
        "koompi-snapshot create known-good \"before break\" --important \
         && koompi-watchdog mark-good known-good",
        CMD_TIMEOUT,
    )?;
    let known_good = number_of(&snapshots(c)?, "known-good")?;
    let status = watchdog_status(c)?;
    ensure!(
        status["fallback"]["number"].as_u64() == Some(known_good),
        "after mark-good, the fallback is not the known-good snapshot {known_good}: {status}"
    );
    match kind {
        Break::Panic => {
            c.run_ok("ln -sfn /bin/false /usr/sbin/init", CMD_TIMEOUT)?;
        }
        Break::Hang => {
            c.run_ok(
                &format!("printf '{HANG_UNIT}' > /etc/systemd/system/koompi-vm-hang.service"),
                CMD_TIMEOUT,
            )?;
            c.run_ok("systemctl enable koompi-vm-hang.service", CMD_TIMEOUT)?;
        }
    }
    let brk = c.position();
    c.seek(brk);
    progress("broken; rebooting and sending nothing until the system has recovered");
    c.send("sync; systemctl reboot --force\n")?;
    let boots = wait_recovered(c, brk)?;
    progress(&format!(
        "  recovered system's autologin prompt at {} s, {boots} boot(s) since the break",
        c.elapsed_secs()
    ));
    settle(c)?;
    let status = wait_confirmed(c)?;
    ensure!(
        tries(&status)? == 0,
        "recovered and confirmed, but tries is not 0: {status}"
    );
    let marker = cat(c, "/etc/koompi-vm-marker")?;
    ensure!(
        marker == "good",
        "/etc/koompi-vm-marker is {marker:?}, not \"good\""
    );
    let rollbacks = status["rollbacks"]
        .as_array()
        .with_context(|| format!("no \"rollbacks\" array in the status: {status}"))?;
    ensure!(
        rollbacks.len() == 1,
        "expected exactly 1 automatic rollback, the status has {}: {status}",
        rollbacks.len()
    );
    let rb = &rollbacks[0];
    ensure!(
        rb["target"].as_u64() == Some(known_good),
        "the rollback's target is not the known-good snapshot {known_good}: {rb}"
    );
    let backup = rb["backup"]
        .as_u64()
        .with_context(|| format!("the rollback has no backup number: {rb}"))?;
    let list = snapshots(c)?;
    let kept = list
        .iter()
        .find(|s| s["number"].as_u64() == Some(backup))
        .with_context(|| format!("the rollback's backup snapshot {backup} is not listed"))?;
    ensure!(
        kept["important"] == Value::Bool(true),
        "the backup snapshot {backup} is not important: {kept}"
    );
    let path = kept["path"]
        .as_str()
        .with_context(|| format!("the backup snapshot has no path: {kept}"))?
        .to_string();
    match kind {
        Break::Panic => {
            let init = c.run_ok("readlink /usr/sbin/init", CMD_TIMEOUT)?;
            ensure!(
                init.trim().ends_with("systemd"),
                "/usr/sbin/init of the restored root points to {:?}",
                init.trim()
            );
            let broken = c.run_ok(&format!("readlink {path}/usr/sbin/init"), CMD_TIMEOUT)?;
            ensure!(
                broken.trim() == "/bin/false",
                "the backup {backup} does not hold the broken state: its /usr/sbin/init \
                 points to {:?}",
                broken.trim()
            );
        }
        Break::Hang => {
            let unit = "/etc/systemd/system/koompi-vm-hang.service";
            let (code, _) = c.run(&format!("test -e {unit}"), CMD_TIMEOUT)?;
            ensure!(code != 0, "the restored root still has {unit}");
            c.run_ok(&format!("test -e {path}{unit}"), CMD_TIMEOUT)
                .with_context(|| format!("the backup {backup} does not hold the broken state"))?;
        }
    }
    ensure!(
        boots <= MAX_RECOVERY_BOOTS,
        "recovery took {boots} boots (at most {MAX_RECOVERY_BOOTS} expected)"
    );
    Ok(Outcome {
        boots,
        detail: format!(
            " from the break to the recovered system (rolled back to {known_good}, \
             broken state kept as {backup})"
        ),
    })
}

fn rollback_manual(c: &mut Console) -> Result<Outcome> {
    login(c, BOOT_TIMEOUT)?;
    require_watchdog(c)?;
    wait_confirmed(c)?;
    let t = CMD_TIMEOUT;
    c.run_ok("echo one > /etc/koompi-vm-marker", t)?;
    c.run_ok("koompi-snapshot create manual-one", t)?;
    c.run_ok("echo two > /etc/koompi-vm-marker", t)?;
    c.run_ok("echo h > /home/koompi-vm-home", t)?;
    c.run_ok("echo l > /var/log/koompi-vm-log", t)?;
    c.run_ok("koompi-snapshot rollback manual-one", t)?;
    let brk = reboot(c)?;
    let boots = c.boots_since(brk);
    let marker = cat(c, "/etc/koompi-vm-marker")?;
    ensure!(
        marker == "one",
        "/etc/koompi-vm-marker is {marker:?} after the rollback, not \"one\""
    );
    let home = cat(c, "/home/koompi-vm-home")?;
    ensure!(
        home == "h",
        "/home/koompi-vm-home is {home:?}, not \"h\" (/home was rolled back?)"
    );
    let log = cat(c, "/var/log/koompi-vm-log")?;
    ensure!(
        log == "l",
        "/var/log/koompi-vm-log is {log:?}, not \"l\" (/var/log was rolled back?)"
    );
    let status = wait_confirmed(c)?;
    ensure!(
        tries(&status)? == 0,
        "confirmed, but tries is not 0: {status}"
    );
    ensure!(boots == 1, "{boots} boots after the reboot (expected 1)");
    Ok(Outcome {
        boots,
        detail: " after the rollback".into(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn runs(plan: &[(Scenario, Firmware)]) -> Vec<String> {
        plan.iter()
            .map(|(s, fw)| format!("{}/{}", s.name(), fw.name()))
            .collect()
    }

    #[test]
    fn the_ci_tier_doubles_only_what_depends_on_the_firmware() {
        let ci = plan(&Scenario::ALL, Tier::Ci, FirmwareChoice::Both);
        assert_eq!(
            runs(&ci),
            [
                "boot/bios",
                "boot/uefi",
                "base-edition/uefi",
                "desktop-lite/uefi",
                "rollback-manual/bios",
                "watchdog-panic/bios",
                "watchdog-panic/uefi",
                "watchdog-hang/bios",
                "upgrade-transactional/bios",
                "install-uefi/uefi",
                "install-luks/bios",
                "install-unattended/bios",
            ]
        );
    }

    /// The install scenarios named after a firmware run on that one.
    const ONE_FIRMWARE: [Scenario; 2] = [Scenario::InstallBios, Scenario::InstallUefi];
    /// UEFI only for another reason (in its declaration).
    const UEFI_ONLY: [Scenario; 3] = [
        Scenario::InstallBeside,
        Scenario::BaseEdition,
        Scenario::DesktopLite,
    ];
    /// Scenarios on one firmware for another reason (in its declaration).
    const BIOS_ONLY: [Scenario; 2] = [Scenario::InstallResume, Scenario::InstallUnattended];

    #[test]
    fn the_full_tier_is_every_scenario_on_both_firmwares() {
        let all = plan(&Scenario::ALL, Tier::All, FirmwareChoice::Both);
        assert_eq!(
            all.len(),
            2 * Scenario::ALL.len() - ONE_FIRMWARE.len() - BIOS_ONLY.len() - UEFI_ONLY.len()
        );
        for s in Scenario::ALL {
            if BIOS_ONLY.contains(&s) {
                assert_eq!(s.tiers().all, BIOS, "{}", s.name());
                continue;
            }
            if UEFI_ONLY.contains(&s) {
                assert_eq!(s.tiers().all, UEFI, "{}", s.name());
                continue;
            }
            if ONE_FIRMWARE.contains(&s) {
                assert_eq!(s.tiers().all.len(), 1, "{}", s.name());
                assert!(s.name().ends_with(s.tiers().all[0].name()), "{}", s.name());
                continue;
            }
            assert_eq!(s.tiers().all, BOTH, "{}", s.name());
            // The ci tier is a part of the full tier.
            assert!(s.tiers().ci.iter().all(|fw| s.tiers().all.contains(fw)));
        }
        assert_eq!(Choice::All.list(), Scenario::ALL.to_vec());
    }

    #[test]
    fn vm_test_limits_a_tier_to_its_firmware_option() {
        let uefi = plan(&Scenario::ALL, Tier::All, FirmwareChoice::Uefi);
        assert!(uefi.iter().all(|(_, fw)| *fw == Firmware::Uefi));
        assert_eq!(
            uefi.len(),
            Scenario::ALL.len() - 1 - BIOS_ONLY.len(),
            "every scenario but install-bios and the BIOS-only ones"
        );
        let hang = Choice::WatchdogHang.list();
        assert_eq!(
            runs(&plan(&hang, Tier::Ci, FirmwareChoice::Both)),
            ["watchdog-hang/bios"]
        );
        assert!(plan(&hang, Tier::Ci, FirmwareChoice::Uefi).is_empty());
        assert_eq!(
            where_they_run(&hang, Tier::Ci),
            "watchdog-hang runs on bios"
        );
        assert_eq!(
            runs(&plan(&[Scenario::Boot], Tier::All, FirmwareChoice::Both)),
            ["boot/bios", "boot/uefi"]
        );
    }
}
