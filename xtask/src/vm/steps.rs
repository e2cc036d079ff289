//! The console steps several scenarios share ([`super::scenarios`], [`super::upgrade`]):
//! waiting for the autologin prompt and settling the shell, the watchdog's status and the
//! boot's confirmation, a reboot, the wait for a recovery without input, and JSON from
//! command output; with the timeouts they use and what a passed scenario reports
//! ([`Outcome`]).

use std::time::{Duration, Instant};

use anyhow::{bail, ensure, Context, Result};
use serde_json::Value;

use super::console::{find, find_all, Console, BOOT_BANNER, PROMPT};
use super::progress;

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

/// What a passed scenario reports.
#[derive(Debug)]
pub(super) struct Outcome {
    /// Boots counted (for recoveries: from the break to the recovered system).
    pub(super) boots: usize,
    /// What the boot count means, and anything skipped.
    pub(super) detail: String,
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
pub(super) fn json(c: &mut Console, cmd: &str) -> Result<Value> {
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

#[cfg(test)]
mod tests {
    use super::*;

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
