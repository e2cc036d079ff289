//! The `upgrade-transactional` scenario: `koompi upgrade --transactional` in a real guest.
//!
//! The guest's pacman (Debian's pacman-package-manager) manages a few test packages from a
//! local repository that travels over the serial console ([`super::testrepo`]):
//!
//! 1. `koompi install demo-app` (1.0) from the repository: a snapshot before the change;
//! 2. repository at 2.0: `koompi upgrade --transactional`. The running system keeps 1.0,
//!    the watchdog's fallback is the state before the switch; a reboot runs 2.0 and is
//!    confirmed;
//! 3. repository at 3.0, whose scriptlet breaks PID 1: `koompi upgrade --transactional`
//!    again. The running 2.0 system is untouched; the reboot into 3.0 panics, and with no
//!    input the watchdog brings back the 2.0 system (3 failed boots, the fallback boot, the
//!    restored boot).

use std::time::Duration;

use anyhow::{ensure, Context, Result};
use serde_json::Value;

use super::console::Console;
use super::progress;
use super::steps::{
    login, parse_json, reboot, require_watchdog, settle, wait_confirmed, wait_recovered,
    watchdog_status, Outcome, BOOT_TIMEOUT, CMD_TIMEOUT, MAX_RECOVERY_BOOTS,
};
use super::testrepo::{self, CONF, REPOS};

/// A transactional upgrade (pacman, the /etc merge, the switch, grub-mkconfig) under TCG.
const UPGRADE_TIMEOUT: Duration = Duration::from_secs(600);

/// `koompi` with the test configuration.
fn koompi(args: &str) -> String {
    format!("koompi --config {CONF} --noconfirm {args}")
}

fn demo_version(c: &mut Console) -> Result<String> {
    Ok(c.run_ok("demo-app", CMD_TIMEOUT)?.trim().to_string())
}

/// `koompi upgrade --transactional --json` with the repository at `step`; the report.
fn transactional(c: &mut Console, step: &str) -> Result<Value> {
    c.run_ok(&format!("ln -sfn {step} {REPOS}/current"), CMD_TIMEOUT)?;
    let (code, _) = c.run(
        &format!(
            "{} > /tmp/upgrade.json 2> /tmp/upgrade.log",
            koompi("--json upgrade --transactional")
        ),
        UPGRADE_TIMEOUT,
    )?;
    if code != 0 {
        let log = c.run("tail -n 30 /tmp/upgrade.log", CMD_TIMEOUT)?.1;
        anyhow::bail!(
            "koompi upgrade --transactional ({step}) exited {code}: {}",
            log.trim()
        );
    }
    let out = c.run_ok("cat /tmp/upgrade.json", CMD_TIMEOUT)?;
    parse_json(&out).context("koompi upgrade --transactional --json")
}

fn num(v: &Value, key: &str) -> Result<u64> {
    v[key]
        .as_u64()
        .with_context(|| format!("no number {key:?} in {v}"))
}

pub(super) fn upgrade_transactional(c: &mut Console, repos: &[u8]) -> Result<Outcome> {
    login(c, BOOT_TIMEOUT)?;
    require_watchdog(c)?;
    wait_confirmed(c)?;
    testrepo::transfer(c, repos, "repo-v1")?;

    // 1. A plain install, from the local repository.
    c.run_ok(&koompi("-Sy"), CMD_TIMEOUT)?;
    let (code, out) = c.run(&koompi("install demo-app"), UPGRADE_TIMEOUT)?;
    ensure!(
        code == 0,
        "koompi install demo-app exited {code}: {}",
        out.trim()
    );
    ensure!(
        out.contains("taken before the install"),
        "no snapshot before the install: {}",
        out.trim()
    );
    ensure!(
        demo_version(c)? == "demo 1",
        "demo-app 1.0 is not installed"
    );

    // 2. The good upgrade goes into a snapshot; the running system stays as it is.
    c.run_ok("echo kept > /etc/koompi-vm-etc-marker", CMD_TIMEOUT)?;
    let first = transactional(c, "repo-v2")?;
    progress(&format!(
        "  transactional upgrade to 2.0: base {}, work {}, backup {}",
        first["base"][0], first["work"], first["backup"]
    ));
    ensure!(
        demo_version(c)? == "demo 1",
        "the running system changed during a transactional upgrade"
    );
    let backup = num(&first, "backup")?;
    let status = watchdog_status(c)?;
    ensure!(
        status["fallback"]["number"].as_u64() == Some(backup),
        "after the upgrade the fallback is not the pre-switch state {backup}: {status}"
    );
    reboot(c)?;
    ensure!(
        demo_version(c)? == "demo 2",
        "after the reboot the upgraded system does not run demo-app 2.0"
    );
    let marker = c.run_ok("cat /etc/koompi-vm-etc-marker", CMD_TIMEOUT)?;
    ensure!(
        marker.trim() == "kept",
        "/etc lost a file across the upgrade"
    );
    wait_confirmed(c)?;

    // 3. An upgrade that breaks boot: the watchdog brings back 2.0 with no input.
    let second = transactional(c, "repo-v3")?;
    ensure!(
        demo_version(c)? == "demo 2",
        "the running system changed during the breaking transactional upgrade"
    );
    let good = num(&second, "backup")?;
    let brk = c.position();
    c.seek(brk);
    progress("upgraded into a broken system; rebooting and sending nothing");
    c.send("sync; systemctl reboot\n")?;
    let boots = wait_recovered(c, brk)?;
    progress(&format!(
        "  recovered system's autologin prompt at {} s, {boots} boot(s) after the upgrade",
        c.elapsed_secs()
    ));
    settle(c)?;
    ensure!(
        demo_version(c)? == "demo 2",
        "the recovered system does not run demo-app 2.0"
    );
    let status = wait_confirmed(c)?;
    let rollbacks = status["rollbacks"]
        .as_array()
        .with_context(|| format!("no \"rollbacks\" in the status: {status}"))?;
    ensure!(
        rollbacks.len() == 1 && rollbacks[0]["target"].as_u64() == Some(good),
        "expected one automatic rollback to {good} (the system before the broken upgrade): \
         {status}"
    );
    ensure!(
        boots <= MAX_RECOVERY_BOOTS,
        "recovery took {boots} boots (at most {MAX_RECOVERY_BOOTS} expected)"
    );
    Ok(Outcome {
        boots,
        detail: format!(
            " from the broken upgrade to the recovered 2.0 system (rolled back to {good})"
        ),
    })
}
