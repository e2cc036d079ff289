//! The `base-edition` scenario: the Base edition's promises (the specification's success
//! criteria and the services the seed enables), each checked in a booted live image and
//! printed as one line with what was measured (`promise NAME: PASS|SKIP: …`).
//!
//! 1. The live session exactly as `live-session` proves it ([`super::live::session`]): the
//!    same image, the same login.
//! 2. In that shell: zram swap, the services, the km_KH.UTF-8 locale, the Khmer fonts and
//!    their shaping (the words and references of `crates/koompi-testutil/data/khmer/`,
//!    shaped in the guest by its own HarfBuzz and fonts), Khmer input (fcitx5 started under
//!    Xvfb by `fcitx5-probe.sh` with only the system-wide profile), the Plymouth theme in
//!    the initramfs.
//! 3. The boot splash: `GRUB_CMDLINE_LINUX_DEFAULT` gets [`SPLASH_ARGS`] (the ISO's default
//!    entry has `quiet splash`; `console=tty0` last keeps the graphical console
//!    `/dev/console`, as without any `console=`, while the serial getty stays for the rig;
//!    Plymouth is told to leave the serial console alone),
//!    `update-grub`, a reboot, and QEMU screendumps of the graphical console every
//!    [`FRAME_INTERVAL`] until the serial login prompt ([`super::splash`]).
//!
//! BIOS is not a firmware of this scenario: the rig's kernel (Debian's cloud kernel) has no
//! DRM and no VESA framebuffer driver, only efifb, so only a UEFI guest has a graphical
//! console for Plymouth to draw on.
//!
//! What it does not prove: Arch's packages (the rig runs Debian's, docs/building.md), and
//! reflector (Arch only: its enablement link is checked, the timer cannot run).

use std::collections::BTreeSet;
use std::path::Path;
use std::time::Duration;

use anyhow::{bail, ensure, Context, Result};

use koompi_testutil::khmer::{broken, unbracket, words, Reference, FONTS};

use super::console::Console;
use super::live::{self, lines_of as lines, wait_text, PASSWORD};
use super::overlay::RIG_SHARE;
use super::progress;
use super::splash::{self, Look, Recorder, Seen};
use super::steps::Outcome;

/// `update-grub` in the emulated guest.
const UPDATE_GRUB_TIMEOUT: Duration = Duration::from_secs(300);
/// The fcitx5 probe: Xvfb and fcitx5 started in the emulated guest.
const PROBE_TIMEOUT: Duration = Duration::from_secs(300);
/// From the reboot to the serial login prompt of the splash boot.
const SPLASH_BOOT_TIMEOUT: Duration = Duration::from_secs(600);
/// Time between two screendumps.
const FRAME_INTERVAL: Duration = Duration::from_millis(700);
/// The kernel arguments of the splash boot, after the rig's. `plymouth.ignore-serial-consoles`
/// is the rig's own, not the ISO's: the rig keeps ttyS0 as a console, and with a serial
/// console Plymouth shows its text details there and skips the graphical displays.
const SPLASH_ARGS: &str = "console=tty0 quiet splash plymouth.ignore-serial-consoles";
/// The units the overlay enables that must be running.
const ACTIVE: [&str; 4] = [
    "tlp.service",
    "acpid.service",
    "NetworkManager.service",
    "fstrim.timer",
];
/// The font families the Khmer fonts must give fontconfig.
const KHMER_FAMILIES: [&str; 2] = ["Noto Sans Khmer", "Khmer OS"];

/// One promise's line.
fn promise(name: &str, verdict: &str, detail: &str) {
    progress(&format!("  promise {name}: {verdict}: {detail}"));
}

/// `cmd` as root (the live user is in wheel; sudo asks for the live password).
fn as_root(cmd: &str) -> String {
    format!(
        "echo {PASSWORD} | sudo -S -p '' sh -c '{}'",
        cmd.replace('\'', "'\\''")
    )
}

/// zram: `/dev/zram0` is the only swap, about half the RAM, zstd.
fn zram(c: &mut Console) -> Result<()> {
    let swaps = lines(
        c,
        "swapon --show=NAME,TYPE,SIZE,PRIO --bytes --noheadings --raw",
    )?;
    let mem_kib: u64 = lines(c, "awk '/^MemTotal:/ {print $2}' /proc/meminfo")?
        .first()
        .and_then(|l| l.trim().parse().ok())
        .context("no MemTotal in /proc/meminfo")?;
    ensure!(
        swaps.len() == 1,
        "zram: expected /dev/zram0 as the only swap, `swapon --show` lists {swaps:?}"
    );
    let f: Vec<&str> = swaps[0].split_whitespace().collect();
    ensure!(
        f.len() == 4 && f[0] == "/dev/zram0",
        "zram: the swap is not /dev/zram0: {:?}",
        swaps[0]
    );
    let size: u64 = f[2].parse().context("zram: swap size is not a number")?;
    let ratio = size as f64 / (mem_kib * 1024) as f64;
    ensure!(
        (0.45..=0.55).contains(&ratio),
        "zram: /dev/zram0 is {} MiB, {:.0} % of the {} MiB of RAM (zram-size = ram / 2)",
        size >> 20,
        ratio * 100.0,
        mem_kib >> 10
    );
    let algo = lines(c, "cat /sys/block/zram0/comp_algorithm")?.join(" ");
    ensure!(
        algo.split_whitespace().any(|a| a == "[zstd]"),
        "zram: the compression is not zstd: {algo}"
    );
    promise(
        "zram",
        "PASS",
        &format!(
            "/dev/zram0 is the only swap: {} MiB of {} MiB RAM ({:.0} %), [zstd] of `{algo}`, \
             priority {}",
            size >> 20,
            mem_kib >> 10,
            ratio * 100.0,
            f[3]
        ),
    );
    Ok(())
}

/// The services: running, enabled, or skipped by their condition (said so).
fn services(c: &mut Console) -> Result<()> {
    // One line per unit from each: the states, then the enablements.
    let all = ACTIVE.join(" ");
    let got = lines(
        c,
        &format!("systemctl is-active {all}; systemctl is-enabled {all}; true"),
    )?;
    ensure!(
        got.len() == 2 * ACTIVE.len(),
        "`systemctl is-active`/`is-enabled` of {all} printed {got:?}"
    );
    let (states, enablements) = got.split_at(ACTIVE.len());
    for ((unit, state), enabled) in ACTIVE.iter().zip(states).zip(enablements) {
        ensure!(
            state == "active" && enabled == "enabled",
            "{unit}: {state}, {enabled} (expected active and enabled by the overlay's link)"
        );
        promise(unit, "PASS", "enabled and active");
    }
    // Bluetooth: enabled; the guest has no adapter, so its condition may skip it.
    let unit = "bluetooth.service";
    let enabled = lines(c, &format!("systemctl is-enabled {unit}; true"))?.join(" ");
    ensure!(enabled == "enabled", "{unit}: {enabled} (expected enabled)");
    let show = lines(
        c,
        &format!("systemctl show -p ActiveState -p ConditionResult {unit}"),
    )?;
    let state = show
        .iter()
        .find_map(|l| l.strip_prefix("ActiveState="))
        .unwrap_or("?");
    let condition = show
        .iter()
        .find_map(|l| l.strip_prefix("ConditionResult="))
        .unwrap_or("?");
    match (state, condition) {
        ("active", _) => promise(unit, "PASS", "enabled and active"),
        (_, "no") => promise(
            unit,
            "SKIP",
            "enabled, not started: its condition failed (ConditionPathIsDirectory=\
             /sys/class/bluetooth: the guest has no Bluetooth adapter)",
        ),
        _ => bail!("{unit}: enabled but {state} (condition result {condition})"),
    }
    // reflector is Arch's: the overlay's link is there; the timer cannot exist here.
    let link = lines(
        c,
        "readlink /etc/systemd/system/timers.target.wants/reflector.timer; true",
    )?
    .join(" ");
    ensure!(
        link.ends_with("/reflector.timer"),
        "reflector.timer: the overlay's enablement link is missing ({link:?})"
    );
    let known = lines(
        c,
        "systemctl cat reflector.timer >/dev/null 2>&1 && echo yes || echo no",
    )?
    .join(" ");
    if known == "yes" {
        let enabled = lines(c, "systemctl is-enabled reflector.timer; true")?.join(" ");
        ensure!(enabled == "enabled", "reflector.timer: {enabled}");
        promise("reflector.timer", "PASS", "enabled");
    } else {
        promise(
            "reflector.timer",
            "SKIP",
            &format!(
                "reflector is Arch's (no Debian package): the overlay's link is there ({link}), \
                 the unit is not"
            ),
        );
    }
    Ok(())
}

/// km_KH.UTF-8 is generated and selectable.
fn locale(c: &mut Console) -> Result<()> {
    let all = lines(c, "locale -a")?;
    let have: BTreeSet<&str> = all.iter().map(String::as_str).collect();
    for l in ["km_KH.utf8", "en_US.utf8"] {
        ensure!(
            have.contains(l),
            "locale: {l} is not generated (`locale -a`: {all:?})"
        );
    }
    let charmap = lines(c, "LC_ALL=km_KH.UTF-8 locale charmap 2>&1")?.join(" ");
    ensure!(
        charmap == "UTF-8",
        "locale: LC_ALL=km_KH.UTF-8 does not work: {charmap}"
    );
    let month = lines(c, "LC_ALL=km_KH.UTF-8 date -d 2026-12-06 +%B")?.join(" ");
    ensure!(
        month
            .chars()
            .any(|ch| ('\u{1780}'..='\u{17FF}').contains(&ch)),
        "locale: km_KH.UTF-8 names December {month:?}, not in Khmer"
    );
    promise(
        "locale",
        "PASS",
        &format!(
            "km_KH.UTF-8 and en_US.UTF-8 generated; LC_ALL=km_KH.UTF-8 gives charmap UTF-8 and \
             December as {month}"
        ),
    );
    Ok(())
}

/// The Khmer fonts are installed and known to fontconfig.
fn fonts(c: &mut Console) -> Result<()> {
    let listed = lines(c, "fc-list :lang=km family | sort -u")?;
    let families: BTreeSet<&str> = listed
        .iter()
        .flat_map(|l| l.split(','))
        .map(str::trim)
        .collect();
    let missing: Vec<&str> = KHMER_FAMILIES
        .iter()
        .copied()
        .filter(|f| !families.contains(f))
        .collect();
    ensure!(
        missing.is_empty(),
        "fonts: fontconfig has no {missing:?} for Khmer (`fc-list :lang=km`: {listed:?})"
    );
    let chosen = lines(c, "fc-match -f '%{family}\\n' 'sans-serif:lang=km'")?.join(" ");
    promise(
        "fonts",
        "PASS",
        &format!(
            "fontconfig covers Khmer with {} famil(ies), {} among them; sans-serif for Khmer is \
             {chosen}",
            families.len(),
            KHMER_FAMILIES.join(" and ")
        ),
    );
    Ok(())
}

/// The words shape in the guest as the references say.
fn shaping(c: &mut Console) -> Result<()> {
    // The guest's words.txt is this file (the live image copies it in).
    let words_file = format!("{RIG_SHARE}/khmer/words.txt");
    let words = words().context("the Khmer test words")?;
    ensure!(words.len() >= 10, "shaping: {words_file} has {words:?}");
    let mut done = Vec::new();
    for (slug, alternatives) in FONTS {
        let r = Reference::load(slug).with_context(|| format!("the {slug} reference"))?;
        let font = alternatives.split('|').next().unwrap_or(alternatives);
        let sum = lines(c, &format!("sha256sum {font}"))?
            .first()
            .and_then(|l| l.split_whitespace().next().map(str::to_string))
            .with_context(|| format!("shaping: no {font} in the guest"))?;
        let cmd = format!(
            "grep -v '^#' {words_file} | cut -f1 | grep . | while IFS= read -r w; do \
             LC_ALL=C.UTF-8 hb-shape --font-file={font} {} --text=\"$w\"; done",
            r.options()
        );
        let shaped: Vec<String> = lines(c, &cmd)?
            .iter()
            .map(|l| unbracket(l).to_string())
            .collect();
        ensure!(
            shaped.len() == words.len(),
            "shaping: {} words but hb-shape printed {} lines with {font}",
            words.len(),
            shaped.len()
        );
        let exact = sum == r.font_sha256();
        for (i, word) in words.iter().enumerate() {
            let bad = broken(&shaped[i], r.dotted_circle());
            ensure!(
                bad.is_empty(),
                "shaping: {word} with {font} gives {bad:?}: {}",
                shaped[i]
            );
            if exact {
                let expected = r
                    .words
                    .iter()
                    .find(|(w, _)| w == word)
                    .map(|(_, s)| s.as_str())
                    .with_context(|| format!("the {slug} reference lacks {word}"))?;
                ensure!(
                    shaped[i] == expected,
                    "shaping: {word} with {font}: {} (the reference: {expected})",
                    shaped[i]
                );
            }
        }
        done.push(format!(
            "{slug}: {}",
            if exact {
                "glyphs and clusters equal to the reference"
            } else {
                "no missing glyph, no dotted circle (another font version than the reference's)"
            }
        ));
    }
    promise(
        "shaping",
        "PASS",
        &format!("{} words with each font; {}", words.len(), done.join("; ")),
    );
    Ok(())
}

/// The input methods KOOMPI's fcitx5 profile must offer, English first.
const INPUT_METHODS: [&str; 3] = ["keyboard-us", "keyboard-kh", "m17n_km_yannis"];

/// Khmer input: the probe of `crates/koompi-testutil/data/khmer/` starts fcitx5 under Xvfb
/// for a user with an empty home, so only /etc/xdg/fcitx5/profile can configure it.
fn input_method(c: &mut Console) -> Result<()> {
    let probe = format!("{RIG_SHARE}/khmer/fcitx5-probe.sh");
    let (status, out) = c.run(
        &format!(
            "FCITX5_PROBE_TIMEOUT=120 sh {probe} {}",
            INPUT_METHODS.join(" ")
        ),
        PROBE_TIMEOUT,
    )?;
    let said: Vec<&str> = out.lines().map(str::trim_end).collect();
    ensure!(
        status == 0 && said.contains(&"fcitx5-probe: ok"),
        "input method: the fcitx5 probe exited {status}:\n{}",
        said.join("\n")
    );
    let line = |prefix: &str| {
        said.iter()
            .find_map(|l| l.strip_prefix(prefix))
            .unwrap_or("?")
            .to_string()
    };
    promise(
        "input method",
        "PASS",
        &format!(
            "fcitx5 {} under Xvfb with only the system profile: group order {}; {} loaded; \
             Khmer: {}",
            line("fcitx5: ").split(',').next().unwrap_or("?"),
            line("group order: "),
            line("loaded input methods: "),
            line("available m17n_km_yannis: ")
        ),
    );
    Ok(())
}

/// The KOOMPI theme is the default and is in the initramfs.
fn splash_config(c: &mut Console) -> Result<()> {
    let theme = lines(c, "plymouth-set-default-theme")?.join(" ");
    ensure!(
        theme == "koompi",
        "splash: the default Plymouth theme is {theme:?}, not koompi"
    );
    let n = lines(
        c,
        "lsinitramfs /boot/initrd.img-$(uname -r) | grep -c 'usr/share/plymouth/themes/koompi/'; true",
    )?
    .join(" ");
    let files: usize = n.trim().parse().unwrap_or(0);
    ensure!(
        files > 0,
        "splash: the initramfs has no usr/share/plymouth/themes/koompi/ ({n})"
    );
    progress(&format!(
        "  the default Plymouth theme is koompi, {files} of its files in the initramfs"
    ));
    Ok(())
}

/// The same promises on a disk installed from the live image (`install-uefi`,
/// `install-bios`), in a root shell: zram, the services, the locale, the fonts and their
/// shaping. (The input method and the splash are the live image's checks only.)
pub fn installed(c: &mut Console) -> Result<()> {
    progress("  the Base edition's promises on the installed system:");
    zram(c)?;
    services(c)?;
    locale(c)?;
    fonts(c)?;
    shaping(c)
}

/// The scenario. `qmp` is QEMU's QMP socket, `frames` a directory for the screendumps,
/// `picture` where the splash frame shown in the summary is copied.
pub fn run(c: &mut Console, qmp: &Path, frames: &Path, picture: &Path) -> Result<Outcome> {
    let (boots, _) = live::session(c)?;
    progress("  the live session as in live-session: PASS");
    // Debian keeps swapon, plymouth-set-default-theme and friends in sbin, outside a user's
    // PATH (Arch has one bin).
    c.run_ok("export PATH=$PATH:/usr/sbin:/sbin", Duration::from_secs(30))?;
    zram(c)?;
    services(c)?;
    locale(c)?;
    fonts(c)?;
    shaping(c)?;
    input_method(c)?;
    splash_config(c)?;

    // The splash boot.
    c.run_ok(
        &as_root(&format!(
            "printf \"%s\\n\" \"GRUB_CMDLINE_LINUX_DEFAULT=\\\"{SPLASH_ARGS}\\\"\" \
             > /etc/default/grub.d/99-koompi-vm-splash.cfg && update-grub 2>&1 | tail -n 2"
        )),
        UPDATE_GRUB_TIMEOUT,
    )
    .context("update-grub with the splash arguments")?;
    let args = lines(
        c,
        &as_root("grep -m1 -o \"quiet splash\" /boot/grub/grub.cfg; true"),
    )?
    .join(" ");
    ensure!(
        args == "quiet splash",
        "splash: update-grub did not put `{SPLASH_ARGS}` into /boot/grub/grub.cfg"
    );
    progress(&format!(
        "  rebooting with `{SPLASH_ARGS}`; screendumps every {} ms",
        FRAME_INTERVAL.as_millis()
    ));
    let colours = splash::theme_colours()?;
    let mut retried = String::new();
    let mut attempt = 1;
    let (shots, verdict) = loop {
        let dir = frames.join(format!("boot-{attempt}"));
        let recorder = Recorder::start(qmp, &dir, FRAME_INTERVAL)?;
        let from = c.position();
        if attempt == 1 {
            c.send(&format!("{}\n", as_root("systemctl reboot")))?;
        } else {
            splash::reset(qmp)?;
        }
        let prompt = wait_text(c, from, "login: ", SPLASH_BOOT_TIMEOUT)
            .context("no login prompt on the serial console after the splash boot");
        let shots = recorder.finish();
        prompt?;
        progress(&format!(
            "  login prompt of splash boot {attempt} at {} s; {} frames",
            c.elapsed_secs(),
            shots.len()
        ));
        let mut looks = Vec::new();
        for s in &shots {
            let f = splash::Frame::load(&s.path)?;
            looks.push((s.at, splash::classify(&f, colours)));
        }
        let seen = Seen { looks };
        match splash::judge(&seen) {
            Ok(v) => break (shots, v),
            // Plymouth takes efifb only if udev has tagged it by its DeviceTimeout; when
            // udev is late it shows its text fallback for the whole boot (the rig has no
            // DRM driver). Such a boot, with no frame of the splash at all, is tried once
            // more; a splash with anything between its frames is not.
            Err(e) if attempt == 1 && seen.looks.iter().all(|(_, l)| *l != Look::Splash) => {
                progress(&format!(
                    "  note: splash boot 1 showed no splash ({e}); resetting for a second one"
                ));
                retried = " (on the second boot: the first showed Plymouth's text fallback, \
                           the rig's udev late for its DeviceTimeout)"
                    .into();
                attempt += 1;
            }
            Err(e) => {
                let text: Vec<String> = seen
                    .looks
                    .iter()
                    .zip(&shots)
                    .filter(|((_, l), _)| *l != Look::Blank)
                    .map(|((at, l), s)| {
                        format!("{:.0}s {l:?} {}", at.as_secs_f64(), s.path.display())
                    })
                    .collect();
                return Err(e.context(format!("the frames: {}", text.join("; "))));
            }
        }
    };
    let shot = &shots[verdict.picture];
    std::fs::copy(&shot.path, picture).with_context(|| {
        format!(
            "cannot copy {} to {}",
            shot.path.display(),
            picture.display()
        )
    })?;
    promise(
        "splash",
        "PASS",
        &format!(
            "{}{retried}; the frame: {}",
            verdict.summary,
            picture.display()
        ),
    );
    Ok(Outcome {
        boots: boots + attempt,
        detail: String::new(),
    })
}
