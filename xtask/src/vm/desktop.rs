//! The `desktop-lite` scenario: from the console to the KOOMPI Lite desktop with one command.
//!
//! On the desktop image ([`super::image::Variant::Desktop`]: Debian's LightDM, Openbox,
//! tint2 and Xorg present but nothing enabled, the machine booting to the console):
//!
//! 1. a user `student` is made; the stand-in packages of the catalog's `lite` edition
//!    travel over the console as a local pacman repository ([`super::testrepo`]);
//! 2. `koompi-desktop install lite`, as `sudo` would run it for `student`: the real pacman
//!    installs the stand-ins (a snapshot first), LightDM becomes the display manager, the
//!    default target graphical, and the edition's configs land in /etc/skel and in the
//!    student's home; `koompi-desktop status --json` says so;
//! 3. a reboot: the greeter is on the graphical console (QEMU screendumps, read as the
//!    user sees them: the KOOMPI wallpaper with the greeter's panel at the top);
//! 4. the student types the name and the password on the greeter (QMP `send-key`);
//!    Openbox and tint2 run in the student's session, and the screen shows the wallpaper
//!    with tint2's panel at the bottom;
//! 5. Super+D, KOOMPI's Openbox key for the launcher, opens rofi in the session.
//!
//! The greeter's, the desktop's and the launcher's frames are kept as `<log>.greeter.png`,
//! `<log>.desktop.png` and `<log>.launcher.png` (docs/images has copies).

use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{bail, ensure, Result};
use serde_json::Value;

use super::console::Console;
use super::progress;
use super::splash::{self, Frame};
use super::steps::{json, login, reboot, Outcome, BOOT_TIMEOUT, CMD_TIMEOUT};
use super::testrepo::{self, CONF};

/// The user who logs in.
const USER: &str = "student";
const PASSWORD: &str = "koompi";
/// `koompi-desktop install` under TCG: pacman, the snapshot, systemctl, the configs.
const INSTALL_TIMEOUT: Duration = Duration::from_secs(600);
/// From the serial prompt to a greeter on the screen, and from the password to a session.
const GRAPHICS_TIMEOUT: Duration = Duration::from_secs(240);

/// `koompi-desktop` with the test repository.
fn desktop(args: &str) -> String {
    format!("koompi-desktop --config {CONF} --noconfirm {args}")
}

/// Runs the scenario on a booted desktop image; `repo` is [`testrepo::build_edition`]'s.
pub fn run(c: &mut Console, qmp: &Path, out: &Path, repo: &[u8]) -> Result<Outcome> {
    login(c, BOOT_TIMEOUT)?;
    // An Arch system has pacman's database from its first package; the Debian userland
    // gets an empty one (its own packages are dpkg's).
    c.run_ok("mkdir -p /var/lib/pacman/local", CMD_TIMEOUT)?;
    let status = json(c, "koompi-desktop --json status")?;
    ensure!(
        status["display-manager"].is_null(),
        "a display manager is enabled before the install: {status}"
    );
    c.run_ok(
        &format!(
            "id {USER} >/dev/null 2>&1 || useradd -m -s /bin/bash {USER}; \
             echo '{USER}:{PASSWORD}' | chpasswd"
        ),
        CMD_TIMEOUT,
    )?;
    testrepo::transfer(c, repo, "repo-lite")?;
    c.run_ok(&format!("pacman --config {CONF} -Sy"), CMD_TIMEOUT)?;

    progress("  koompi-desktop install lite");
    let started = Instant::now();
    let (code, said) = c.run(
        &format!("SUDO_USER={USER} {} 2>&1", desktop("install lite")),
        INSTALL_TIMEOUT,
    )?;
    ensure!(
        code == 0,
        "koompi-desktop install lite failed ({code}):\n{said}"
    );
    ensure!(
        said.contains("KOOMPI Lite is installed"),
        "koompi-desktop said:\n{said}"
    );
    let install_secs = started.elapsed().as_secs();
    let status = json(c, "koompi-desktop --json status")?;
    check_status(&status)?;
    let homes = c.run_ok(
        &format!(
            "ls /etc/skel/.config/openbox /home/{USER}/.config/openbox /home/{USER}/.config/tint2"
        ),
        CMD_TIMEOUT,
    )?;
    ensure!(
        homes.matches("rc.xml").count() >= 2 && homes.contains("tint2rc"),
        "the edition's configs are not in /etc/skel and the student's home:\n{homes}"
    );

    progress("  rebooting into the graphical target");
    reboot(c)?;
    let greeter_at = Instant::now();
    wait_guest(c, "pgrep -f lightdm-gtk-greeter", "the greeter")?;
    let greeter = out.with_extension("greeter.png");
    let g = wait_screen(qmp, &greeter, Screen::Greeter)?;
    progress(&format!(
        "  greeter on screen {} s after the prompt: {}",
        greeter_at.elapsed().as_secs(),
        g.describe()
    ));

    // LightDM lists no users without AccountsService (not on KOOMPI): the greeter asks for
    // the name first, then the password, as it does on a school's shared laptops.
    progress("  typing the user name and the password on the greeter");
    splash::type_text(qmp, &format!("{USER}\n"))?;
    std::thread::sleep(Duration::from_secs(3));
    splash::type_text(qmp, &format!("{PASSWORD}\n"))?;
    let session_at = Instant::now();
    wait_guest(c, &format!("pgrep -u {USER} -x openbox"), "Openbox")?;
    wait_guest(c, &format!("pgrep -u {USER} -x tint2"), "tint2")?;
    let desktop_png = out.with_extension("desktop.png");
    let d = wait_screen(qmp, &desktop_png, Screen::Desktop)?;
    progress(&format!(
        "  desktop on screen {} s after the password: {}",
        session_at.elapsed().as_secs(),
        d.describe()
    ));
    // KOOMPI's Openbox keys are the student's: Super+D opens rofi with KOOMPI's theme.
    let plain = Frame::load(&desktop_png)?;
    splash::press(qmp, &["meta_l", "d"])?;
    wait_guest(c, &format!("pgrep -u {USER} -x rofi"), "rofi (Super+D)")?;
    std::thread::sleep(Duration::from_secs(3));
    let launcher = out.with_extension("launcher.png");
    splash::screendump(qmp, &launcher)?;
    let changed = changed_share(&plain, &Frame::load(&launcher)?);
    ensure!(
        changed > 0.02,
        "rofi runs but the screen did not change ({:.1} % of the pixels); see {}",
        changed * 100.0,
        launcher.display()
    );
    progress(&format!(
        "  Super+D opened rofi: {:.0} % of the screen changed",
        changed * 100.0
    ));
    let sessions = c.run_ok(
        &format!("loginctl show-user {USER} --property=Display --value; loginctl list-sessions --no-legend"),
        CMD_TIMEOUT,
    )?;
    ensure!(
        sessions.contains(USER) && sessions.contains("seat0"),
        "no session of {USER} on seat0:\n{sessions}"
    );
    Ok(Outcome {
        boots: 2,
        detail: format!(
            " (install {install_secs} s; frames: {}, {}, {})",
            greeter.display(),
            desktop_png.display(),
            launcher.display()
        ),
    })
}

fn check_status(s: &Value) -> Result<()> {
    ensure!(
        s["display-manager"] == "lightdm.service",
        "LightDM is not the display manager after the install: {s}"
    );
    ensure!(
        s["default-target"] == "graphical.target",
        "the default target is not graphical: {s}"
    );
    let ids: Vec<&str> = s["installed"]
        .as_array()
        .map(|a| a.iter().filter_map(|e| e["id"].as_str()).collect())
        .unwrap_or_default();
    ensure!(ids == ["lite"], "installed editions: {ids:?}");
    ensure!(
        s["installed"][0]["packages-missing"]
            .as_array()
            .is_some_and(Vec::is_empty),
        "packages missing after the install: {s}"
    );
    Ok(())
}

/// Polls `cmd` in the guest until it succeeds.
fn wait_guest(c: &mut Console, cmd: &str, what: &str) -> Result<()> {
    let deadline = Instant::now() + GRAPHICS_TIMEOUT;
    loop {
        let (code, _) = c.run(cmd, CMD_TIMEOUT)?;
        if code == 0 {
            return Ok(());
        }
        if Instant::now() > deadline {
            let log = c
                .run(
                    "journalctl -b --no-pager -n 40 -u lightdm; tail -n 30 /var/log/Xorg.0.log",
                    CMD_TIMEOUT,
                )
                .map(|(_, o)| o)
                .unwrap_or_default();
            bail!(
                "{what} did not start within {} s; the journal says:\n{log}",
                GRAPHICS_TIMEOUT.as_secs()
            );
        }
        std::thread::sleep(Duration::from_secs(2));
    }
}

/// Which screen is expected.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Screen {
    Greeter,
    Desktop,
}

/// Takes screendumps until one shows `want`; keeps the last one at `path`.
fn wait_screen(qmp: &Path, path: &Path, want: Screen) -> Result<Look> {
    let deadline = Instant::now() + GRAPHICS_TIMEOUT;
    loop {
        splash::screendump(qmp, path)?;
        let frame = Frame::load(path)?;
        let look = look(&frame);
        if look.is(want) {
            return Ok(look);
        }
        if Instant::now() > deadline {
            bail!(
                "the screen never showed the {want:?} within {} s; the last frame ({}) shows: {}",
                GRAPHICS_TIMEOUT.as_secs(),
                path.display(),
                look.describe()
            );
        }
        std::thread::sleep(Duration::from_secs(3));
    }
}

/// The share of pixels (sampled) that differ between two frames of one size.
fn changed_share(a: &Frame, b: &Frame) -> f64 {
    if a.width != b.width || a.height != b.height {
        return 1.0;
    }
    let (mut n, mut diff) = (0u64, 0u64);
    for y in (0..a.height).step_by(4) {
        for x in (0..a.width).step_by(4) {
            n += 1;
            let (p, q) = (a.pixel_at(x, y), b.pixel_at(x, y));
            if p.iter().zip(q).any(|(u, v)| u.abs_diff(v) > 24) {
                diff += 1;
            }
        }
    }
    diff as f64 / n.max(1) as f64
}

/// What a frame shows, measured the way a person would tell the screens apart: the
/// wallpaper's dark blue in the corners, a panel with light text at the top (the greeter's)
/// or at the bottom (tint2's).
#[derive(Debug, Clone, Copy)]
pub struct Look {
    /// Share of the corner samples in the wallpaper's blue.
    pub corners: f64,
    /// Light pixels in the top 24 rows and the bottom 32 rows (per mille).
    pub top_text: f64,
    pub bottom_text: f64,
}

impl Look {
    fn is(&self, want: Screen) -> bool {
        let wallpaper = self.corners >= 0.5;
        match want {
            Screen::Greeter => wallpaper && self.top_text > 2.0,
            Screen::Desktop => wallpaper && self.bottom_text > 2.0 && self.top_text < 2.0,
        }
    }

    fn describe(&self) -> String {
        format!(
            "wallpaper blue in {:.0} % of the corners, light pixels {:.1} ‰ in the top strip, \
             {:.1} ‰ in the bottom strip",
            self.corners * 100.0,
            self.top_text,
            self.bottom_text
        )
    }
}

fn light(p: [u8; 3]) -> bool {
    p.iter().all(|&c| c > 170)
}

fn navy(p: [u8; 3]) -> bool {
    let [r, g, b] = p.map(i32::from);
    b > r + 8 && b >= g && b < 90 && r < 40
}

/// Measures a frame.
pub fn look(f: &Frame) -> Look {
    let (w, h) = (f.width, f.height);
    let share =
        |xs: std::ops::Range<usize>, ys: std::ops::Range<usize>, test: &dyn Fn([u8; 3]) -> bool| {
            let (mut n, mut hit) = (0u64, 0u64);
            for y in ys.clone().step_by(2) {
                for x in xs.clone().step_by(2) {
                    n += 1;
                    if test(f.pixel_at(x, y)) {
                        hit += 1;
                    }
                }
            }
            if n == 0 {
                0.0
            } else {
                hit as f64 / n as f64
            }
        };
    let (cw, ch) = (w / 8, h / 8);
    // The corners below the top strip and above the bottom strip.
    let corners = [
        share(0..cw, 40..40 + ch, &navy),
        share(w - cw..w, 40..40 + ch, &navy),
        share(0..cw, h - 40 - ch..h - 40, &navy),
        share(w - cw..w, h - 40 - ch..h - 40, &navy),
    ];
    Look {
        corners: corners.iter().sum::<f64>() / 4.0,
        top_text: share(0..w, 0..24.min(h), &light) * 1000.0,
        bottom_text: share(0..w, h.saturating_sub(32)..h, &light) * 1000.0,
    }
}
