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
//! - `upgrade-transactional`: `koompi install` and two `koompi upgrade --transactional`
//!   runs against local test repositories, the second breaking boot ([`super::upgrade`]).
//!
//! Each scenario declares on which firmwares it runs in each [`Tier`] ([`Scenario::tiers`]):
//! the full tier runs everything on BIOS and UEFI, the ci tier (`cargo xtask test`) runs a
//! scenario on both only where what it proves depends on the firmware. [`run`] runs a plan
//! one guest at a time and runs a run again once, from a fresh overlay, when the guest
//! stalled between a reset and its kernel ([`super::stall`]).

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{bail, ensure, Context, Result};
use serde_json::Value;

use super::console::{find, find_all, Console, BOOT_BANNER, PROMPT};
use super::image::Variant;
use super::qemu::{self, Disk, Qemu, Serial};
use super::report::{Retry, Row, Runs};
use super::stall::with_one_retry;
use super::{cmd, progress, Firmware, FirmwareChoice};

/// From QEMU's start to the first autologin prompt (software emulation; UEFI is slower).
pub(super) const BOOT_TIMEOUT: Duration = Duration::from_secs(600);
/// From the prompt to `confirmed: true`.
const CONFIRM_TIMEOUT: Duration = Duration::from_secs(180);
/// From the break to the recovered system's prompt, without any input.
const RECOVERY_TIMEOUT: Duration = Duration::from_secs(20 * 60);
/// Most boots a recovery may take: 3 failed, the fallback, the restored system.
pub(super) const MAX_RECOVERY_BOOTS: usize = 5;
/// An ordinary guest command.
pub(super) const CMD_TIMEOUT: Duration = Duration::from_secs(120);

/// The `SCENARIO` argument of `vm-test`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Choice {
    Boot,
    WatchdogPanic,
    WatchdogHang,
    RollbackManual,
    LiveSession,
    UpgradeTransactional,
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
            Choice::UpgradeTransactional => vec![Scenario::UpgradeTransactional],
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
    UpgradeTransactional,
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

/// `live-session`: UEFI only in the ci tier. The getty, `login`, PAM, /etc/issue, the motd
/// and the shell are userspace and do not depend on the firmware. UEFI because the other
/// single-firmware runs are on BIOS: this way UEFI also boots the second image variant and
/// sees a real login (not only root's autologin), and the machines the ISO is for mostly
/// boot with UEFI. One boot, no reboot.
const LIVE_SESSION_TIERS: Tiers = Tiers {
    ci: UEFI,
    all: BOTH,
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

impl Scenario {
    /// Every scenario, in the order a tier runs them: the short ones first, so that a broken
    /// image fails early.
    pub const ALL: [Scenario; 6] = [
        Scenario::Boot,
        Scenario::LiveSession,
        Scenario::RollbackManual,
        Scenario::Recovery(Break::Panic),
        Scenario::Recovery(Break::Hang),
        Scenario::UpgradeTransactional,
    ];

    fn name(self) -> &'static str {
        match self {
            Scenario::Boot => "boot",
            Scenario::Recovery(Break::Panic) => "watchdog-panic",
            Scenario::Recovery(Break::Hang) => "watchdog-hang",
            Scenario::RollbackManual => "rollback-manual",
            Scenario::LiveSession => "live-session",
            Scenario::UpgradeTransactional => "upgrade-transactional",
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
            Scenario::UpgradeTransactional => UPGRADE_TRANSACTIONAL_TIERS,
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
            Scenario::LiveSession => Variant::Live,
            _ => Variant::Installed,
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

/// What a passed scenario reports.
#[derive(Debug)]
pub(super) struct Outcome {
    /// Boots counted (for recoveries: from the break to the recovered system).
    pub(super) boots: usize,
    /// What the boot count means, and anything skipped.
    pub(super) detail: String,
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
        _ => None,
    };
    let disk = Disk::create(image, &dir, fw, keep)?;
    let sock_dir = tempfile::Builder::new()
        .prefix("koompi-vm.")
        .tempdir()
        .context("cannot create a temporary directory")?;
    let sock = sock_dir.path().join("console.sock");
    let mut vm = Qemu::spawn(
        qemu::command(&disk, fw, Serial::Socket(&sock))?,
        &disk.dir.join("qemu.stderr"),
    )?;
    let result = Console::connect(&sock, log, Duration::from_secs(30))
        .and_then(|mut console| s.run(&mut console, repos.as_deref()));
    match (result, vm.check_running()) {
        (Err(e), Err(q)) => Err(e.context(format!("{q:#}"))),
        (r, _) => r,
    }
}

/// Waits for the autologin prompt, then [`settle`].
pub(super) fn login(c: &mut Console, timeout: Duration) -> Result<()> {
    c.wait_for(PROMPT, timeout)
        .context("no autologin prompt on the serial console")?;
    progress(&format!("  autologin prompt at {} s", c.elapsed_secs()));
    settle(c)
}

/// Prepares the shell at a fresh prompt and waits until the boot finished (so that no
/// boot messages land in the middle of command output); notes failed units.
pub(super) fn settle(c: &mut Console) -> Result<()> {
    c.prepare_shell()?;
    let (code, state) = c.run(
        "systemctl is-system-running --wait",
        Duration::from_secs(300),
    )?;
    if code != 0 {
        let failed = c
            .run("systemctl --failed --no-legend --plain", CMD_TIMEOUT)
            .map(|(_, o)| o)
            .unwrap_or_default();
        progress(&format!(
            "note: the system is {} (failed units: {})",
            state.trim(),
            failed.trim().replace('\n', "; ")
        ));
    }
    Ok(())
}

pub(super) fn require_watchdog(c: &mut Console) -> Result<()> {
    let (code, _) = c.run("command -v koompi-watchdog", CMD_TIMEOUT)?;
    ensure!(
        code == 0,
        "koompi-watchdog is not in the image (target/release/koompi-watchdog was missing \
         when the image was built)"
    );
    Ok(())
}

/// JSON from command output; tolerates console lines and stray prompts around it.
pub(super) fn parse_json(out: &str) -> Result<Value> {
    if let Ok(v) = serde_json::from_str(out.trim()) {
        return Ok(v);
    }
    // A prompt printed late by an earlier command can stand in front of the output.
    let lines: Vec<&str> = out
        .lines()
        .map(|l| {
            let mut l = l;
            while let Some(rest) = l.strip_prefix(super::console::PROMPT) {
                l = rest;
            }
            l
        })
        .collect();
    let first = lines
        .iter()
        .position(|l| l.starts_with('{') || l.starts_with('['));
    let last = lines
        .iter()
        .rposition(|l| l.trim_end().ends_with('}') || l.trim_end().ends_with(']'));
    if let (Some(a), Some(b)) = (first, last) {
        if a <= b {
            let body: Vec<&str> = lines[a..=b]
                .iter()
                .copied()
                .filter(|l| !is_kernel_line(l))
                .collect();
            if let Ok(v) = serde_json::from_str(&body.join("\n")) {
                return Ok(v);
            }
        }
    }
    bail!("not JSON: {}", out.trim())
}

/// A kernel message on the console: `[  12.345678] text`.
fn is_kernel_line(l: &str) -> bool {
    l.strip_prefix('[')
        .and_then(|r| r.split_once(']'))
        .is_some_and(|(t, _)| t.trim().parse::<f64>().is_ok())
}

/// `cmd` in the guest, exit 0, output parsed as JSON.
fn json(c: &mut Console, cmd: &str) -> Result<Value> {
    let out = c.run_ok(cmd, CMD_TIMEOUT)?;
    parse_json(&out).with_context(|| format!("output of `{cmd}`"))
}

pub(super) fn watchdog_status(c: &mut Console) -> Result<Value> {
    json(c, "koompi-watchdog status --json")
}

/// Polls `koompi-watchdog status --json` until the boot is confirmed.
pub(super) fn wait_confirmed(c: &mut Console) -> Result<Value> {
    let deadline = Instant::now() + CONFIRM_TIMEOUT;
    let cmd = "koompi-watchdog status --json";
    loop {
        let (code, out) = c.run(cmd, CMD_TIMEOUT)?;
        if code == 0 {
            if let Ok(v) = parse_json(&out) {
                if v["confirmed"] == Value::Bool(true) {
                    return Ok(v);
                }
            }
        }
        if Instant::now() >= deadline {
            bail!(
                "the boot was not confirmed within {} s; `{cmd}` (exit {code}) says: {}",
                CONFIRM_TIMEOUT.as_secs(),
                out.trim()
            );
        }
        std::thread::sleep(Duration::from_secs(3));
    }
}

fn snapshots(c: &mut Console) -> Result<Vec<Value>> {
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

/// One boot in the console output, as the recovery wait sees it.
#[derive(Debug)]
struct BootSeen {
    cmdline: String,
    fallback: bool,
    /// End of the first autologin prompt of this boot (absolute position).
    prompt: Option<usize>,
}

/// Whether a kernel command line boots a snapshot instead of `@`.
fn is_fallback(cmdline: &str) -> bool {
    cmdline.contains("koompi.fallback=")
        || cmdline.contains("@snapshots")
        || cmdline.contains(".snapshots/")
}

/// The boots in `buf` from `from` on.
fn boots_in(buf: &[u8], from: usize) -> Vec<BootSeen> {
    let Some(seg) = buf.get(from..) else {
        return Vec::new();
    };
    let starts = find_all(seg, BOOT_BANNER.as_bytes());
    let mut out = Vec::new();
    for (i, &s) in starts.iter().enumerate() {
        let e = starts.get(i + 1).copied().unwrap_or(seg.len());
        let text = &seg[s..e];
        let cmdline = find(text, b"Command line: ")
            .map(|p| {
                let rest = &text[p + 14..];
                let end = rest
                    .iter()
                    .position(|&b| b == b'\n' || b == b'\r')
                    .unwrap_or(rest.len());
                String::from_utf8_lossy(&rest[..end]).trim().to_string()
            })
            .unwrap_or_default();
        out.push(BootSeen {
            fallback: is_fallback(&cmdline),
            prompt: find(text, PROMPT.as_bytes()).map(|p| from + s + p + PROMPT.len()),
            cmdline,
        });
    }
    out
}

/// Waits, sending nothing, for the prompt of the first normal boot after a fallback boot;
/// returns how many boots that took since `from`.
pub(super) fn wait_recovered(c: &mut Console, from: usize) -> Result<usize> {
    let started = Instant::now();
    let mut reported = 0;
    let found = c.wait_until(
        RECOVERY_TIMEOUT,
        "the recovered system's autologin prompt",
        |buf| {
            let boots = boots_in(buf, from);
            // Report a boot once its command line is known (or the next boot began).
            while reported < boots.len()
                && (!boots[reported].cmdline.is_empty() || reported + 1 < boots.len())
            {
                let b = &boots[reported];
                reported += 1;
                progress(&format!(
                    "  boot {reported} since the break at {} s{}",
                    started.elapsed().as_secs(),
                    if b.fallback {
                        " (fallback snapshot)"
                    } else {
                        ""
                    }
                ));
            }
            let first_fallback = boots.iter().position(|b| b.fallback)?;
            boots
                .iter()
                .enumerate()
                .skip(first_fallback + 1)
                .find_map(|(i, b)| match (b.fallback, b.prompt) {
                    (false, Some(end)) => Some((i + 1, end)),
                    _ => None,
                })
        },
    );
    found.with_context(|| {
        let boots = c.inspect(|buf| boots_in(buf, from));
        let list: Vec<String> = boots
            .iter()
            .enumerate()
            .map(|(i, b)| {
                format!(
                    "boot {}: {}{} [{}]",
                    i + 1,
                    if b.fallback { "FALLBACK " } else { "" },
                    if b.prompt.is_some() {
                        "prompt"
                    } else {
                        "no prompt"
                    },
                    b.cmdline
                )
            })
            .collect();
        format!(
            "{} boot(s) since the break, none of them a normal boot after a fallback boot: {}",
            boots.len(),
            list.join("; ")
        )
    })
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

/// `systemctl reboot`, then the next boot's autologin prompt; the console position of the
/// reboot.
pub(super) fn reboot(c: &mut Console) -> Result<usize> {
    let brk = c.position();
    c.seek(brk);
    c.send("sync; systemctl reboot\n")?;
    c.wait_for(BOOT_BANNER, Duration::from_secs(300))
        .context("the guest did not reboot")?;
    login(c, BOOT_TIMEOUT)?;
    Ok(brk)
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
                "live-session/uefi",
                "rollback-manual/bios",
                "watchdog-panic/bios",
                "watchdog-panic/uefi",
                "watchdog-hang/bios",
                "upgrade-transactional/bios",
            ]
        );
    }

    #[test]
    fn the_full_tier_is_every_scenario_on_both_firmwares() {
        let all = plan(&Scenario::ALL, Tier::All, FirmwareChoice::Both);
        assert_eq!(all.len(), 2 * Scenario::ALL.len());
        for s in Scenario::ALL {
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
        assert_eq!(uefi.len(), Scenario::ALL.len());
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

    #[test]
    fn json_survives_a_stray_prompt_in_front() {
        let out = "koompi-vm# [\n  {\n    \"number\": 1\n  }\n]";
        let v = parse_json(out).expect("json");
        assert_eq!(v[0]["number"], 1);
    }

    #[test]
    fn json_survives_kernel_lines() {
        let out = "{\n  \"tries\": 0,\n[   12.5] random: crng init done\n  \"confirmed\": true\n}";
        let v = parse_json(out).expect("json");
        assert_eq!(v["confirmed"], Value::Bool(true));
    }

    #[test]
    fn boots_are_split_and_classified() {
        let buf = b"old koompi-vm# \nLinux version 6\nCommand line: root=UUID=x rootflags=subvol=@ panic=10\n\
koompi-vm# Linux version 6\nCommand line: rootflags=subvol=@snapshots/4/snapshot ro koompi.fallback=4\n\
koompi-vm# Linux version 6\r\nCommand line: rootflags=subvol=@\r\nkoompi-vm# ";
        let boots = boots_in(buf, 0);
        assert_eq!(boots.len(), 3);
        assert!(!boots[0].fallback && boots[1].fallback && !boots[2].fallback);
        assert_eq!(boots[2].cmdline, "rootflags=subvol=@");
        assert_eq!(boots[2].prompt, Some(buf.len()));
    }
}
