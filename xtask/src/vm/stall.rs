//! Stall detection: a guest that goes silent between a reset and its kernel.
//!
//! Under CPU starvation an OVMF guest has stalled after a warm reset, once before any
//! firmware output and once right after GRUB's "Welcome to GRUB!" (docs/vm-rig.md, "Known
//! problem"). Without detection such a run waits for its scenario's timeout (up to 20
//! minutes) and then fails. The console shows where a boot is, so the driver can tell a
//! stall from a legitimately quiet guest:
//!
//! - [`Phase::Reset`]: from QEMU's start, the kernel's `reboot: Restarting system` /
//!   `reboot: machine restart`, or N seconds after a panic's `Rebooting in N seconds..`,
//!   until the firmware says something;
//! - [`Phase::Firmware`]: from SeaBIOS's, OVMF's or GRUB's output until the kernel banner;
//! - [`Phase::Kernel`]: from the kernel banner on. Not watched: a running system may be
//!   silent for minutes (a hung boot waiting for its deadline timer, a long command).
//!
//! In the first two phases, where QEMU under software emulation takes about 5–20 s, a
//! guest silent for longer than [`PHASE_ALLOWANCE`] has stalled. [`Detector`] is the pure
//! state machine (fed with console text and the time it arrived); the console driver feeds
//! it from its reader thread and checks it in every wait, ending the wait with a [`Stall`]
//! error. [`with_one_retry`] runs an attempt again once when it ended in a stall.

use std::fmt;
use std::time::Duration;

use anyhow::Result;

use super::console::{find, BOOT_BANNER};

/// How long a guest may be silent between a reset and the kernel banner. QEMU under
/// software emulation spends about 5–20 s in each of these phases on the test machines
/// (firmware start, GRUB's menu and loading the kernel and initramfs); 60 s leaves room
/// for a loaded machine, while a stalled guest is caught within a minute instead of at its
/// scenario's timeout.
pub const PHASE_ALLOWANCE: Duration = Duration::from_secs(60);

/// The kernel's messages when it restarts the machine (reboot syscall, `systemctl reboot`).
const RESET_MARKERS: [&str; 2] = ["reboot: Restarting system", "reboot: machine restart"];

/// A panic with `panic=N` prints this, then restarts the machine N seconds later.
const PANIC_REBOOT: &str = "Rebooting in ";

/// Output only firmware prints after a reset: SeaBIOS's banner, OVMF's boot manager,
/// GRUB's greeting (the EFI GRUB prints it). Recognised in any phase, so that a reset the
/// kernel did not announce (QEMU's watchdog device) is watched too.
const FIRMWARE_MARKERS: [&str; 3] = ["SeaBIOS (version", "BdsDxe", "Welcome to GRUB!"];

/// GRUB's menu and boot messages. Only recognised after a reset: the running system can
/// print these too (`cat /boot/grub/grub.cfg`).
const LOADER_MARKERS: [&str; 3] = ["GNU GRUB", "Booting `", "Loading Linux"];

/// The longest marker text that can straddle two chunks of console output, with room for
/// the digits of a panic's reboot delay.
const CARRY: usize = 40;

/// Where a boot is, as far as the console shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// After a reset (or QEMU's start), before any firmware output.
    Reset,
    /// Firmware or GRUB output seen, no kernel banner yet.
    Firmware,
    /// The kernel has started; silence is not watched.
    Kernel,
}

impl fmt::Display for Phase {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Phase::Reset => "after a reset, before any firmware output",
            Phase::Firmware => "in the firmware or GRUB, before the kernel",
            Phase::Kernel => "after the kernel started",
        })
    }
}

/// A guest silent beyond its phase's allowance; the error a console wait ends with.
/// Recognise it with [`stall_of`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stall {
    pub phase: Phase,
    /// Seconds since the guest last printed anything.
    pub silent_secs: u64,
    /// The console text that began the phase (or `QEMU start`).
    pub after: &'static str,
    /// The phase's allowance ([`PHASE_ALLOWANCE`] plus a panic's reboot delay).
    pub allowed_secs: u64,
}

impl fmt::Display for Stall {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "the guest stalled {} (last sign: `{}`): silent for {} s, more than the {} s \
             allowed",
            self.phase, self.after, self.silent_secs, self.allowed_secs
        )
    }
}

impl std::error::Error for Stall {}

/// The stall an error ended with, if it did (through any context added on the way).
pub fn stall_of(e: &anyhow::Error) -> Option<&Stall> {
    e.downcast_ref::<Stall>()
        .or_else(|| e.chain().find_map(|c| c.downcast_ref::<Stall>()))
}

/// One transition found in the console text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Event {
    /// A reset, after `delay` (a panic's reboot delay; zero for a reboot).
    Reset {
        marker: &'static str,
        delay: Duration,
    },
    /// Firmware output; `strong` markers count in any phase.
    Firmware { marker: &'static str, strong: bool },
    /// The kernel banner.
    Kernel,
}

/// The boot phase of one guest, from its console output; pure (time is passed in, as the
/// time since QEMU's start).
#[derive(Debug, Clone)]
pub struct Detector {
    phase: Phase,
    after: &'static str,
    /// When the guest last printed anything.
    last_output: Duration,
    /// Silence before this time is expected (a panic waits before it resets).
    quiet_until: Duration,
    /// The end of the previous text, to find markers split between two pieces.
    carry: Vec<u8>,
    /// How long the guest may be silent in the reset and firmware phases.
    allowance: Duration,
}

impl Default for Detector {
    fn default() -> Self {
        Detector::new()
    }
}

impl Detector {
    /// A guest just started: QEMU's start is a reset.
    pub fn new() -> Detector {
        Detector::with_allowance(PHASE_ALLOWANCE)
    }

    /// [`Detector::new`] with another allowance than [`PHASE_ALLOWANCE`] (for tests of the
    /// console driver, which cannot wait a minute).
    pub fn with_allowance(allowance: Duration) -> Detector {
        Detector {
            phase: Phase::Reset,
            after: "QEMU start",
            last_output: Duration::ZERO,
            quiet_until: Duration::ZERO,
            carry: Vec::new(),
            allowance,
        }
    }

    /// The current phase.
    #[cfg(test)]
    pub fn phase(&self) -> Phase {
        self.phase
    }

    /// The guest printed `text` at `now`.
    pub fn feed(&mut self, text: &[u8], now: Duration) {
        if text.is_empty() {
            return;
        }
        self.last_output = self.last_output.max(now);
        let mut window = std::mem::take(&mut self.carry);
        let old = window.len();
        window.extend_from_slice(text);
        for event in events(&window, old) {
            self.apply(event, now);
        }
        let keep = window.len().saturating_sub(CARRY);
        self.carry = window.split_off(keep);
    }

    fn apply(&mut self, event: Event, now: Duration) {
        match event {
            Event::Reset { marker, delay } => {
                self.phase = Phase::Reset;
                self.after = marker;
                self.quiet_until = now + delay;
            }
            Event::Firmware { marker, strong } => {
                if strong || self.phase != Phase::Kernel {
                    self.phase = Phase::Firmware;
                    self.after = marker;
                }
            }
            Event::Kernel => {
                self.phase = Phase::Kernel;
                self.after = BOOT_BANNER.trim_end();
            }
        }
    }

    /// QEMU was started again at `now` after the guest reset the machine (the rig turns
    /// each reset into a new QEMU process): a reset, watched from `now` on, whatever the
    /// console showed before (a watchdog device's reset shows nothing).
    pub fn restarted(&mut self, now: Duration) {
        self.phase = Phase::Reset;
        self.after = "QEMU restart";
        self.quiet_until = self.quiet_until.max(now);
        self.carry.clear();
    }

    /// The stall at `now`, if the guest has been silent beyond its phase's allowance.
    pub fn check(&self, now: Duration) -> Option<Stall> {
        if self.phase == Phase::Kernel {
            return None;
        }
        let from = self.last_output.max(self.quiet_until);
        (now > from + self.allowance).then(|| Stall {
            phase: self.phase,
            silent_secs: now.saturating_sub(self.last_output).as_secs(),
            after: self.after,
            allowed_secs: (from + self.allowance - self.last_output).as_secs(),
        })
    }
}

/// The events in `window` that end after `old` (the part seen before), in order.
fn events(window: &[u8], old: usize) -> Vec<Event> {
    let mut found: Vec<(usize, Event)> = Vec::new();
    let mut each = |marker: &'static str, event: &dyn Fn(usize) -> Option<(usize, Event)>| {
        let mut at = 0;
        while let Some(p) = window.get(at..).and_then(|w| find(w, marker.as_bytes())) {
            let start = at + p;
            if let Some((end, e)) = event(start) {
                if end > old {
                    found.push((start, e));
                }
            }
            at = start + 1;
        }
    };
    for marker in RESET_MARKERS {
        each(marker, &|start| {
            let delay = Duration::ZERO;
            Some((start + marker.len(), Event::Reset { marker, delay }))
        });
    }
    each(PANIC_REBOOT, &|start| {
        let rest = &window[start + PANIC_REBOOT.len()..];
        let digits = rest.iter().take_while(|b| b.is_ascii_digit()).count();
        // Complete only once a non-digit follows; otherwise wait for the next piece.
        if digits == 0 || digits >= rest.len() {
            return None;
        }
        let secs: u64 = std::str::from_utf8(&rest[..digits]).ok()?.parse().ok()?;
        let event = Event::Reset {
            marker: "Rebooting in N seconds",
            delay: Duration::from_secs(secs),
        };
        Some((start + PANIC_REBOOT.len() + digits + 1, event))
    });
    for (markers, strong) in [(FIRMWARE_MARKERS, true), (LOADER_MARKERS, false)] {
        for marker in markers {
            each(marker, &|start| {
                Some((start + marker.len(), Event::Firmware { marker, strong }))
            });
        }
    }
    each(BOOT_BANNER, &|start| {
        Some((start + BOOT_BANNER.len(), Event::Kernel))
    });
    found.sort_by_key(|(start, _)| *start);
    found.into_iter().map(|(_, e)| e).collect()
}

/// Runs `attempt(0)`; if it ends in a stall, calls `on_stall` and runs `attempt(1)` once.
/// Returns the last attempt's result and the first attempt's stall, if there was a retry.
/// A second stall is returned as the error it is.
pub fn with_one_retry<T>(
    mut attempt: impl FnMut(u32) -> Result<T>,
    on_stall: impl FnOnce(&Stall) -> Result<()>,
) -> (Result<T>, Option<Stall>) {
    let first = attempt(0);
    let stall = match &first {
        Err(e) => match stall_of(e) {
            Some(s) => s.clone(),
            None => return (first, None),
        },
        Ok(_) => return (first, None),
    };
    if let Err(e) = on_stall(&stall) {
        return (Err(e), Some(stall));
    }
    (attempt(1), Some(stall))
}

#[cfg(test)]
mod tests {
    use anyhow::Context;

    use super::*;

    fn secs(s: u64) -> Duration {
        Duration::from_secs(s)
    }

    /// A detector that has seen a whole boot up to the kernel.
    fn booted() -> Detector {
        let mut d = Detector::new();
        d.feed(b"SeaBIOS (version 1.16.2-debian-1.16.2-1)\r\n", secs(1));
        d.feed(b"Welcome to GRUB!\r\n", secs(3));
        d.feed(
            b"[    0.000000] Linux version 6.1.0-28-cloud-amd64\r\n",
            secs(10),
        );
        d
    }

    #[test]
    fn a_reboot_then_61_s_of_silence_is_a_stall() {
        let mut d = booted();
        d.feed(b"[  200.1] reboot: Restarting system\r\n", secs(200));
        assert_eq!(d.phase(), Phase::Reset);
        assert_eq!(d.check(secs(259)), None);
        let stall = d.check(secs(261)).expect("a stall");
        assert_eq!(stall.phase, Phase::Reset);
        assert_eq!(stall.silent_secs, 61);
        assert_eq!(stall.after, "reboot: Restarting system");
        assert_eq!(
            stall.to_string(),
            "the guest stalled after a reset, before any firmware output (last sign: \
             `reboot: Restarting system`): silent for 61 s, more than the 60 s allowed"
        );
    }

    #[test]
    fn machine_restart_is_a_reset_too() {
        let mut d = booted();
        d.feed(b"[  50.0] reboot: machine restart\r\n", secs(50));
        assert_eq!(d.phase(), Phase::Reset);
    }

    #[test]
    fn firmware_then_kernel_banner_is_no_stall() {
        let mut d = booted();
        d.feed(b"reboot: Restarting system\r\n", secs(100));
        d.feed(
            b"BdsDxe: loading Boot0001 \"UEFI Misc Device\"\r\n",
            secs(120),
        );
        assert_eq!(d.phase(), Phase::Firmware);
        d.feed(b"Welcome to GRUB!\r\n", secs(150));
        d.feed(b"Linux version 6.1.0\r\n", secs(200));
        assert_eq!(d.phase(), Phase::Kernel);
        for t in [200, 261, 400, 10_000] {
            assert_eq!(d.check(secs(t)), None, "at {t} s");
        }
    }

    #[test]
    fn silence_in_the_firmware_phase_is_a_stall() {
        let mut d = booted();
        d.feed(
            b"reboot: Restarting system\r\nBdsDxe: loading\r\n",
            secs(100),
        );
        d.feed(b"Welcome to GRUB!\r\n", secs(110));
        assert_eq!(d.check(secs(170)), None);
        let stall = d.check(secs(171)).expect("a stall");
        assert_eq!(stall.phase, Phase::Firmware);
        assert_eq!(stall.after, "Welcome to GRUB!");
        assert_eq!(stall.silent_secs, 61);
    }

    #[test]
    fn a_hung_userspace_may_be_silent_for_minutes() {
        let mut d = booted();
        d.feed(b"koompi-vm# ", secs(60));
        assert_eq!(d.check(secs(60 + 30 * 60)), None);
    }

    #[test]
    fn a_restart_is_watched_even_without_a_reset_message() {
        let mut d = booted();
        d.feed(b"koompi-vm# ", secs(40));
        d.restarted(secs(300));
        assert_eq!(d.phase(), Phase::Reset);
        assert_eq!(d.check(secs(360)), None);
        let stall = d.check(secs(361)).expect("a stall");
        assert_eq!((stall.phase, stall.after), (Phase::Reset, "QEMU restart"));
        d.feed(b"SeaBIOS (version 1.16)\r\n", secs(310));
        assert_eq!(d.phase(), Phase::Firmware);
    }

    #[test]
    fn qemu_start_is_watched() {
        let d = Detector::new();
        assert_eq!(d.check(secs(60)), None);
        let stall = d.check(secs(61)).expect("a stall");
        assert_eq!((stall.phase, stall.after), (Phase::Reset, "QEMU start"));
    }

    #[test]
    fn a_panic_waits_its_delay_before_the_allowance_starts() {
        let mut d = booted();
        d.feed(
            b"Kernel panic - not syncing: Attempted to kill init!\r\n",
            secs(98),
        );
        d.feed(b"[   30.1] Rebooting in 10 seconds..\r\n", secs(100));
        assert_eq!(d.phase(), Phase::Reset);
        assert_eq!(d.check(secs(115)), None);
        assert_eq!(d.check(secs(170)), None);
        let stall = d.check(secs(175)).expect("a stall");
        assert_eq!(stall.silent_secs, 75);
        assert_eq!(stall.allowed_secs, 70);
        assert_eq!(stall.phase, Phase::Reset);
    }

    #[test]
    fn markers_split_between_pieces_are_found_once() {
        let mut d = booted();
        d.feed(b"[  20.0] reboot: Resta", secs(20));
        assert_eq!(d.phase(), Phase::Kernel);
        d.feed(b"rting system\r\n", secs(21));
        assert_eq!(d.phase(), Phase::Reset);
        d.feed(b"Welcome to", secs(25));
        d.feed(b" GRUB!", secs(26));
        assert_eq!(d.phase(), Phase::Firmware);
        // The carried reset marker must not count again.
        d.feed(b"\r\n", secs(27));
        assert_eq!(d.phase(), Phase::Firmware);
        d.feed(b"Linux ver", secs(30));
        d.feed(b"sion 6.1", secs(31));
        assert_eq!(d.phase(), Phase::Kernel);
    }

    #[test]
    fn a_panic_delay_split_in_its_digits_is_read_whole() {
        let mut d = booted();
        d.feed(b"Rebooting in 1", secs(100));
        assert_eq!(d.phase(), Phase::Kernel);
        d.feed(b"0 seconds..\r\n", secs(100));
        assert_eq!(d.phase(), Phase::Reset);
        assert_eq!(d.check(secs(170)), None);
        assert!(d.check(secs(171)).is_some());
    }

    #[test]
    fn grub_menu_text_from_the_running_system_is_not_a_reset() {
        let mut d = booted();
        d.feed(b"echo 'Loading Linux 6.1.0 ...'\r\nGNU GRUB\r\n", secs(100));
        assert_eq!(d.phase(), Phase::Kernel);
        assert_eq!(d.check(secs(1000)), None);
    }

    #[test]
    fn the_last_marker_of_a_piece_decides() {
        let mut d = booted();
        d.feed(
            b"reboot: Restarting system\r\nSeaBIOS (version 1.16)\r\nLinux version 6\r\n",
            secs(100),
        );
        assert_eq!(d.phase(), Phase::Kernel);
    }

    #[test]
    fn a_reset_without_a_kernel_message_is_seen_by_the_firmware() {
        let mut d = booted();
        d.feed(b"SeaBIOS (version 1.16)\r\n", secs(300));
        assert_eq!(d.phase(), Phase::Firmware);
        assert!(d.check(secs(361)).is_some());
    }

    #[test]
    fn a_stall_is_found_through_context() {
        let stall = Stall {
            phase: Phase::Reset,
            silent_secs: 61,
            after: "QEMU start",
            allowed_secs: 60,
        };
        let e = Err::<(), _>(anyhow::Error::new(stall.clone()))
            .context("waiting for the prompt")
            .context("no autologin prompt")
            .expect_err("an error");
        assert_eq!(stall_of(&e), Some(&stall));
        assert!(stall_of(&anyhow::anyhow!("timed out")).is_none());
    }

    fn stalled() -> anyhow::Error {
        anyhow::Error::new(Stall {
            phase: Phase::Firmware,
            silent_secs: 70,
            after: "Welcome to GRUB!",
            allowed_secs: 60,
        })
    }

    #[test]
    fn one_stall_is_retried_once() {
        let mut tries = Vec::new();
        let mut told = 0;
        let (result, stall) = with_one_retry(
            |n| {
                tries.push(n);
                if n == 0 {
                    Err(stalled())
                } else {
                    Ok(5)
                }
            },
            |_| {
                told += 1;
                Ok(())
            },
        );
        assert_eq!(result.expect("the retry passed"), 5);
        assert_eq!(stall.map(|s| s.silent_secs), Some(70));
        assert_eq!((tries, told), (vec![0, 1], 1));
    }

    #[test]
    fn a_second_stall_fails() {
        let (result, stall) = with_one_retry(|_| Err::<(), _>(stalled()), |_| Ok(()));
        let e = result.expect_err("two stalls fail");
        assert!(stall_of(&e).is_some());
        assert!(stall.is_some());
    }

    #[test]
    fn other_failures_are_not_retried() {
        let mut tries = 0;
        let (result, stall) = with_one_retry(
            |_| {
                tries += 1;
                Err::<(), _>(anyhow::anyhow!("marker is two"))
            },
            |_| Ok(()),
        );
        assert!(result.is_err() && stall.is_none());
        assert_eq!(tries, 1);
    }

    #[test]
    fn no_retry_once_interrupted() {
        let mut tries = 0;
        let (result, _) = with_one_retry(
            |_| {
                tries += 1;
                Err::<(), _>(stalled())
            },
            |_| Err(anyhow::anyhow!("interrupted")),
        );
        assert_eq!(format!("{:#}", result.expect_err("error")), "interrupted");
        assert_eq!(tries, 1);
    }
}
