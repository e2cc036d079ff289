//! The `live-session` scenario: the image variant with the ISO's live-session overlay
//! (`iso/airootfs/`) and KOOMPI's branding on the rig's Debian userland ([`super::overlay`]
//! builds it), logged into at the serial console's real `login:` prompt as a user of the ISO
//! would.
//!
//! # The scenario
//!
//! 1. Boot; wait for `login: ` on ttyS0 (the boot is one kernel banner), then for the
//!    console to go quiet. `/etc/issue` (`branding/issue` with `\r` and `\m` expanded from
//!    the kernel banner) must be on screen above the prompt.
//! 2. `koompi` and a wrong password: must give `Login incorrect` and a new `login:` prompt (a
//!    login that accepted anything would prove nothing).
//! 3. `koompi` / `koompi`: `Login incorrect` fails the scenario with a readable message;
//!    otherwise the shell prompt (`koompi@…`) must come. Between the password and the prompt
//!    `branding/motd` must be on screen, byte for byte as one block, and its distinctive
//!    lines ([`MOTD_LANDMARKS`]) must be among the lines shown.
//! 4. In that shell: `echo $0` is `-zsh`; `id -un` is koompi and `id -nG` has wheel, video,
//!    audio and input; `hostname` is `koompi-live`; `grep PRETTY_NAME /etc/os-release` prints
//!    exactly `PRETTY_NAME="KOOMPI OS Base Edition"`; `/etc/os-release` is a symlink to
//!    `../usr/lib/os-release`.
//!
//! The expected texts are fixed here ([`HOSTNAME`], [`PRETTY_NAME`], [`USER`], [`PASSWORD`])
//! or compiled in from `branding/` (the motd and issue), never read back from the image.
//!
//! What it does not prove: that the ISO itself boots. It has the rig's disk layout, Debian's
//! kernel, initramfs, PAM, `login` and zsh instead of Arch's, and Debian's `login` shows
//! `uname -a` (`/etc/update-motd.d/10-uname`) above the motd, which Arch's does not. The real
//! ISO can only be built on an Arch host (`scripts/build-iso.sh`, docs/building.md).

use std::collections::BTreeSet;
use std::time::Duration;

use anyhow::{bail, ensure, Context, Result};

use super::console::{find, strip_escapes, Console, BOOT_BANNER};
use super::progress;

/// What the user types at the login prompt: the credentials `/etc/issue` promises.
pub const USER: &str = "koompi";
/// The live user's password.
pub const PASSWORD: &str = "koompi";
/// The password that must be refused.
const WRONG_PASSWORD: &str = "not-koompi";
/// The live system's hostname.
pub const HOSTNAME: &str = "koompi-live";
/// The os-release line the live session must have.
pub const PRETTY_NAME: &str = "PRETTY_NAME=\"KOOMPI OS Base Edition\"";
/// The groups the live user must be in (`sysusers.d/koompi-live.conf`).
const GROUPS: [&str; 4] = ["wheel", "video", "audio", "input"];

/// The motd the live session must show: `branding/motd` (which `cargo xtask iso-lint` holds
/// to the seed's text byte for byte).
const MOTD: &str = include_str!("../../../branding/motd");
/// `/etc/issue`, shown by agetty above the login prompt (`\r` and `\m` expanded).
const ISSUE: &str = include_str!("../../../branding/issue");
/// Lines of the seed's motd that must be among the lines shown, whatever branding/motd says
/// (compared with surrounding blanks trimmed).
pub const MOTD_LANDMARKS: [&str; 3] = [
    "OS Base Edition",
    "Quick Start:",
    "Website: https://koompi.com",
];

/// From QEMU's start to the getty's login prompt.
const LOGIN_PROMPT_TIMEOUT: Duration = Duration::from_secs(600);
/// How long the console must stay silent before the rig types (boot messages are over).
const QUIET: Duration = Duration::from_secs(5);
/// Most time for the console to go quiet after the login prompt.
const QUIET_TIMEOUT: Duration = Duration::from_secs(180);
/// From the user name to `Password: `, from a wrong password to `Login incorrect` (PAM's 3 s
/// fail delay) and to the next prompt, from the password to the shell's prompt.
const STEP_TIMEOUT: Duration = Duration::from_secs(120);
/// An ordinary command in the live shell.
const CMD_TIMEOUT: Duration = Duration::from_secs(60);
/// The prompt the rig gives the live shell for its commands (`PS1='live''-vm$ '`, so that
/// the echo of that command line does not contain it).
const SHELL_PROMPT: &str = "live-vm$ ";

/// The console text from `from` to `to` (or the end): escapes and carriage returns removed.
pub(super) fn screen(c: &Console, from: usize, to: Option<usize>) -> String {
    c.inspect(|buf| {
        let end = to.unwrap_or(buf.len()).min(buf.len());
        let seg = buf.get(from.min(end)..end).unwrap_or_default();
        strip_escapes(&String::from_utf8_lossy(seg).replace('\r', ""))
    })
}

/// Waits for `pattern` after `from`; returns the position just after it.
pub(super) fn wait_text(
    c: &mut Console,
    from: usize,
    pattern: &str,
    timeout: Duration,
) -> Result<usize> {
    c.wait_until(timeout, &format!("`{}`", pattern.trim()), |buf| {
        let p = find(buf.get(from..)?, pattern.as_bytes())?;
        let end = from + p + pattern.len();
        Some((end, end))
    })
}

/// The kernel release from the last boot banner (`Linux version 6.1.0-… (…`).
fn kernel_release(text: &str) -> Option<String> {
    let at = text.rfind(BOOT_BANNER)? + BOOT_BANNER.len();
    text[at..].split_whitespace().next().map(str::to_string)
}

/// `branding/issue` as agetty shows it: `\r` is the kernel release, `\m` the machine.
fn expanded_issue(release: &str) -> String {
    ISSUE.replace("\\r", release).replace("\\m", "x86_64")
}

/// Every non-blank line of `expected` must be a line of `shown` (trailing blanks ignored);
/// returns the missing ones.
fn missing_lines<'a>(expected: &'a str, shown: &str) -> Vec<&'a str> {
    let lines: BTreeSet<&str> = shown.lines().map(str::trim_end).collect();
    expected
        .lines()
        .filter(|l| !l.trim().is_empty() && !lines.contains(l.trim_end()))
        .collect()
}

/// Checks that the motd is in `shown` (the console from the password to the shell prompt).
fn check_motd(shown: &str) -> Result<()> {
    let trimmed: BTreeSet<&str> = shown.lines().map(str::trim).collect();
    let landmarks: Vec<&str> = MOTD_LANDMARKS
        .iter()
        .copied()
        .filter(|l| !trimmed.contains(l))
        .collect();
    if shown.contains(MOTD) && landmarks.is_empty() {
        return Ok(());
    }
    let missing = missing_lines(MOTD, shown);
    let total = MOTD.lines().filter(|l| !l.trim().is_empty()).count();
    if !missing.is_empty() {
        bail!(
            "the KOOMPI motd (branding/motd) was not shown after login: {} of its {total} \
             lines are missing, the first: {:?}; the console between the password and the \
             shell prompt shows:\n{}",
            missing.len(),
            missing[0],
            shown.trim_end()
        );
    }
    if !landmarks.is_empty() {
        bail!(
            "the motd shown after login lacks the seed's line(s) {landmarks:?} \
             (branding/motd changed?); shown:\n{}",
            shown.trim_end()
        );
    }
    bail!(
        "every line of the KOOMPI motd (branding/motd) was shown after login, but not as one \
         block (something printed in between?):\n{}",
        shown.trim_end()
    )
}

/// Output of a live-shell command without kernel messages (`[   12.345] …`).
fn output_lines(out: &str) -> Vec<&str> {
    out.lines()
        .filter(|l| {
            l.strip_prefix('[')
                .and_then(|r| r.split_once(']'))
                .is_none_or(|(t, _)| t.trim().parse::<f64>().is_err())
        })
        .map(str::trim_end)
        .filter(|l| !l.is_empty())
        .collect()
}

/// `cmd` in the live shell, exit 0; its output lines.
pub(super) fn lines_of(c: &mut Console, cmd: &str) -> Result<Vec<String>> {
    let out = c.run_ok(cmd, CMD_TIMEOUT)?;
    Ok(output_lines(&out).into_iter().map(String::from).collect())
}

/// `cmd` in the live shell must print exactly `want` (one line).
fn expect_line(c: &mut Console, cmd: &str, want: &str, what: &str) -> Result<()> {
    let got = lines_of(c, cmd)?;
    ensure!(
        got.len() == 1 && got[0] == want,
        "{what}: `{cmd}` printed {got:?}, expected exactly {want:?}"
    );
    Ok(())
}

/// The `live-session` scenario; returns the number of boots and a note for the summary.
pub fn session(c: &mut Console) -> Result<(usize, String)> {
    // 1. The getty's prompt, and /etc/issue above it.
    let prompt_end = wait_text(c, 0, "login: ", LOGIN_PROMPT_TIMEOUT)
        .context("no login prompt on the serial console")?;
    progress(&format!("  login prompt at {} s", c.elapsed_secs()));
    let boot = screen(c, 0, Some(prompt_end));
    let banner = boot.rfind(BOOT_BANNER).unwrap_or(0);
    let release = kernel_release(&boot).context("no kernel banner before the login prompt")?;
    let issue = expanded_issue(&release);
    let missing = missing_lines(&issue, &boot[banner..]);
    ensure!(
        missing.is_empty(),
        "/etc/issue (branding/issue) is not shown above the login prompt: missing {missing:?}"
    );
    c.wait_quiet(QUIET, QUIET_TIMEOUT)?;
    let failed: Vec<String> = screen(c, 0, None)
        .lines()
        .filter(|l| l.contains("[FAILED]"))
        .map(|l| l.trim().to_string())
        .collect();
    if !failed.is_empty() {
        progress(&format!(
            "note: the boot printed {} failure(s): {}",
            failed.len(),
            failed.join("; ")
        ));
    }
    let after_prompt = screen(c, prompt_end, None);
    let password_at;
    let mut detail = String::new();
    if after_prompt.contains("(automatic login)") {
        // The overlay logs someone in by itself: that is what the user sees, so no typing.
        let who = after_prompt.lines().next().unwrap_or("").trim().to_string();
        progress(&format!("  automatic login: {who}"));
        detail = format!(" (automatic login: {who})");
        password_at = prompt_end;
    } else {
        // 2. A wrong password must be refused.
        c.send(&format!("{USER}\n"))?;
        let at = wait_text(c, prompt_end, "Password: ", STEP_TIMEOUT)
            .with_context(|| format!("no `Password: ` prompt after the user name {USER}"))?;
        c.send(&format!("{WRONG_PASSWORD}\n"))?;
        let user_prompt = format!("{USER}@");
        let refused = c.wait_until(
            STEP_TIMEOUT,
            "`Login incorrect` after a wrong password",
            |buf| {
                let seg = buf.get(at..)?;
                if let Some(p) = find(seg, b"Login incorrect") {
                    let end = at + p + "Login incorrect".len();
                    return Some((Some(end), end));
                }
                let p = find(seg, user_prompt.as_bytes())?;
                Some((None, at + p))
            },
        );
        let refused = match refused {
            Ok(Some(end)) => end,
            Ok(None) => bail!(
                "the wrong password {WRONG_PASSWORD:?} logged {USER} in: the login does not \
                 check the password; the console shows:\n{}",
                screen(c, at, None).trim_end()
            ),
            Err(e) => {
                return Err(e).with_context(|| {
                    format!(
                        "a wrong password for {USER} was not refused; the console shows:\n{}",
                        screen(c, at, None).trim_end()
                    )
                })
            }
        };
        let again = wait_text(c, refused, "login: ", STEP_TIMEOUT)
            .context("no new login prompt after `Login incorrect`")?;
        progress("  a wrong password was refused");
        // 3. The real login.
        c.send(&format!("{USER}\n"))?;
        let at = wait_text(c, again, "Password: ", STEP_TIMEOUT)
            .with_context(|| format!("no `Password: ` prompt after the user name {USER}"))?;
        password_at = at;
        c.send(&format!("{PASSWORD}\n"))?;
    }
    let user_prompt = format!("{USER}@");
    let outcome = c.wait_until(
        STEP_TIMEOUT,
        &format!("the shell prompt `{user_prompt}…` after logging in"),
        |buf| {
            let seg = buf.get(password_at..)?;
            if let Some(p) = find(seg, b"Login incorrect") {
                return Some(((false, password_at + p), password_at + p));
            }
            let p = find(seg, user_prompt.as_bytes())?;
            Some(((true, password_at + p), password_at + p))
        },
    );
    let prompt_at = match outcome {
        Ok((true, at)) => at,
        Ok((false, _)) => bail!(
            "the login as {USER} with the password {PASSWORD:?} was refused (`Login \
             incorrect`): the live user's password in iso/airootfs/etc/shadow is not \
             {PASSWORD:?}, or the account is missing or locked"
        ),
        Err(e) => {
            return Err(e).with_context(|| {
                format!(
                    "after the password the console shows:\n{}",
                    screen(c, password_at, None).trim_end()
                )
            })
        }
    };
    progress(&format!("  logged in as {USER} at {} s", c.elapsed_secs()));
    let shown = screen(c, password_at, Some(prompt_at));
    check_motd(&shown)?;

    // 4. The live shell: what the user can ask the system.
    c.set_prompt(SHELL_PROMPT);
    c.run(
        "unsetopt zle prompt_sp prompt_cr 2>/dev/null; stty -echo cols 250 rows 50; \
         PS1='live''-vm$ '; export TERM=dumb PAGER=cat",
        CMD_TIMEOUT,
    )?;
    expect_line(
        c,
        "echo $0",
        "-zsh",
        "the live user's login shell (iso/airootfs/etc/passwd: /usr/bin/zsh)",
    )?;
    expect_line(c, "id -un", USER, "the logged-in user")?;
    let groups = lines_of(c, "id -nG")?.join(" ");
    let have: BTreeSet<&str> = groups.split_whitespace().collect();
    let lacking: Vec<&str> = GROUPS
        .iter()
        .copied()
        .filter(|g| !have.contains(g))
        .collect();
    ensure!(
        lacking.is_empty(),
        "{USER} is not in {lacking:?} (sysusers.d/koompi-live.conf); `id -nG` says: {groups}"
    );
    expect_line(c, "hostname", HOSTNAME, "the live system's hostname")?;
    expect_line(
        c,
        "grep PRETTY_NAME /etc/os-release",
        PRETTY_NAME,
        "the OS name in /etc/os-release",
    )?;
    expect_line(
        c,
        "readlink /etc/os-release",
        "../usr/lib/os-release",
        "/etc/os-release",
    )?;
    // A first boot, as every boot of the ISO (machine-id `uninitialized`): the login above
    // came through systemd-firstboot, which asks nothing when the overlay has what it
    // would ask for (/etc/localtime, locale.conf, root in /etc/shadow).
    expect_line(
        c,
        "systemctl show -P ConditionResult systemd-firstboot.service",
        "yes",
        "a first boot with systemd-firstboot run (machine-id `uninitialized`, as mkarchiso \
         writes it)",
    )?;
    expect_line(
        c,
        "readlink /etc/localtime",
        "/usr/share/zoneinfo/UTC",
        "/etc/localtime (iso/airootfs: the first boot asks for a timezone without it)",
    )?;
    let boots = c.boots_since(0);
    ensure!(boots == 1, "{boots} boots in the live session (expected 1)");
    Ok((boots, detail))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_motd_is_found_as_shown_and_missing_is_reported() {
        let shown = format!("Password: \nLinux koompi-live 6.1.0 x86_64\n{MOTD}\nkoompi@");
        assert!(check_motd(&shown).is_ok());
        let e = check_motd("Password: \nkoompi@").expect_err("no motd");
        assert!(format!("{e:#}").contains("was not shown after login"));
        // Every line, but interrupted by a kernel message.
        let mut lines: Vec<&str> = MOTD.lines().collect();
        lines.insert(3, "[   20.1] random: crng init done");
        let e = check_motd(&lines.join("\n")).expect_err("not one block");
        assert!(format!("{e:#}").contains("not as one block"));
    }

    #[test]
    fn the_issue_is_expanded_like_agetty() {
        let text = "Linux version 6.1.0-28-cloud-amd64 (debian-kernel@…) #1 SMP\n";
        let release = kernel_release(text).expect("release");
        assert_eq!(release, "6.1.0-28-cloud-amd64");
        let issue = expanded_issue(&release);
        assert!(issue.contains("Kernel: 6.1.0-28-cloud-amd64 on x86_64"));
        assert!(missing_lines(&issue, &format!("\x0c{issue}koompi-live login: ")).is_empty());
        assert!(!missing_lines(&issue, "Debian GNU/Linux 12 koompi-live login: ").is_empty());
    }

    #[test]
    fn kernel_messages_are_not_command_output() {
        assert_eq!(
            output_lines("[   12.5] random: crng init done\nkoompi-live\n"),
            vec!["koompi-live"]
        );
    }
}
