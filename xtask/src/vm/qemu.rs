//! QEMU: per-run copy-on-write overlays of the base image, the command line for BIOS
//! (SeaBIOS) and UEFI (OVMF), and a guard that kills QEMU however the run ends.
//!
//! Software emulation only (`-accel tcg`): KVM does not work on the test machines. In the
//! test scenarios a reset of the guest (a reboot, a panic's restart, the watchdog device)
//! ends its QEMU process (`-no-reboot`) and [`Qemu`] starts a new one on the same disk:
//! every boot is a cold start. Warm resets under software emulation have stalled guests
//! in the firmware or GRUB on loaded machines (docs/vm-rig.md, "Known problem"); a fresh
//! process has not. `vm-run` keeps one process across reboots, as a real machine would.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::thread::JoinHandle;
use std::time::Duration;

use anyhow::{bail, Context, Result};

use super::console::{lock, Ended};
use super::{cmd, path_str, progress, Firmware};
use crate::host::{packages, private_qemu};

/// One run's disk: a qcow2 overlay on the raw base image (and a copy of the UEFI
/// variables), in a directory removed on drop unless kept.
#[derive(Debug)]
pub struct Disk {
    pub dir: PathBuf,
    overlay: PathBuf,
    vars: Option<PathBuf>,
    /// An ISO image in the CD drive, booted first (`vm-run --iso`).
    cdrom: Option<PathBuf>,
    /// More virtio disks after the overlay (`/dev/vdb`, `/dev/vdc`, ...).
    extra: Vec<Drive>,
    /// Set by [`Disk::keep_only`]: this disk instead of the overlay and the others.
    only: Option<Drive>,
    /// The firmware's own console on the serial port too ([`Disk::firmware_console_on_serial`]).
    sercon: bool,
    keep: bool,
}

/// A virtio disk besides the run's overlay.
#[derive(Debug, Clone)]
pub struct Drive {
    pub path: PathBuf,
    /// `raw` or `qcow2`.
    pub format: &'static str,
    pub read_only: bool,
}

impl Disk {
    /// A fresh overlay of `base` in `dir` (emptied first).
    pub fn create(base: Base<'_>, dir: &Path, firmware: Firmware, keep: bool) -> Result<Disk> {
        if dir.exists() {
            fs::remove_dir_all(dir).with_context(|| format!("cannot remove {}", dir.display()))?;
        }
        fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
        let mut disk = Disk {
            dir: dir.to_path_buf(),
            overlay: dir.join("overlay.qcow2"),
            vars: None,
            cdrom: None,
            extra: Vec::new(),
            only: None,
            sercon: false,
            keep,
        };
        let mut create = Command::new("qemu-img");
        create.args(["create", "-q", "-f", "qcow2"]);
        match base {
            Base::Image(base) => {
                create
                    .args(["-F", "raw", "-b"])
                    .arg(base)
                    .arg(&disk.overlay);
            }
            Base::Iso(iso) => {
                // A blank disk beside the ISO, as on a machine about to be installed.
                create.arg(&disk.overlay).arg("16G");
                disk.cdrom = Some(iso.to_path_buf());
            }
        }
        cmd::run(&mut create)?;
        disk.vars = match firmware {
            Firmware::Bios => None,
            Firmware::Uefi => {
                let (_, template) = packages::ovmf()?;
                let vars = dir.join("OVMF_VARS.fd");
                fs::copy(&template, &vars).with_context(|| {
                    format!("cannot copy {} to {}", template.display(), vars.display())
                })?;
                Some(vars)
            }
        };
        Ok(disk)
    }
}

impl Disk {
    /// A blank sparse raw disk of `size` bytes in the run's directory, attached after the
    /// disks already there; its path.
    pub fn add_blank(&mut self, name: &str, size: u64) -> Result<PathBuf> {
        let path = self.dir.join(name);
        let f =
            fs::File::create(&path).with_context(|| format!("cannot create {}", path.display()))?;
        f.set_len(size)
            .with_context(|| format!("cannot size {}", path.display()))?;
        self.extra.push(Drive {
            path: path.clone(),
            format: "raw",
            read_only: false,
        });
        Ok(path)
    }

    /// A raw image attached read-only after the disks already there.
    pub fn add_read_only(&mut self, path: &Path) {
        self.extra.push(Drive {
            path: path.to_path_buf(),
            format: "raw",
            read_only: true,
        });
    }

    /// The firmware's text console also on the serial port, and serial input as keys:
    /// what GRUB prints and reads through the firmware before its own serial terminal is
    /// set up (the passphrase prompt of an encrypted /boot). `graphics=off` makes QEMU
    /// switch SeaBIOS's serial console on; OVMF mirrors its console to the serial port
    /// anyway.
    pub fn firmware_console_on_serial(&mut self) {
        self.sercon = true;
    }

    /// From now on the machine has only `drive` (one of those added): the installed disk
    /// alone, as on a laptop whose install stick was pulled.
    pub fn keep_only(&mut self, drive: &Path) -> Result<()> {
        let d = self
            .extra
            .iter()
            .find(|d| d.path == drive)
            .cloned()
            .with_context(|| format!("{} is not a disk of this run", drive.display()))?;
        self.only = Some(d);
        self.extra.clear();
        Ok(())
    }
}

/// What a run's disk starts from.
#[derive(Debug, Clone, Copy)]
pub enum Base<'a> {
    /// The raw test image, under a copy-on-write overlay.
    Image(&'a Path),
    /// An ISO in the CD drive and a blank disk.
    Iso(&'a Path),
}

impl Drop for Disk {
    fn drop(&mut self) {
        if self.keep {
            progress(&format!("kept the run's disk in {}", self.dir.display()));
        } else {
            let _ = fs::remove_dir_all(&self.dir);
        }
    }
}

/// Where the guest's serial console goes.
#[derive(Debug, Clone, Copy)]
pub enum Serial<'a> {
    /// A unix socket the console driver listens on; QEMU connects to it. Used by the
    /// test scenarios, so a guest reset ends QEMU too (`-no-reboot`): see [`Qemu`].
    Socket(&'a Path),
    /// This terminal, multiplexed with the QEMU monitor (Ctrl-A C; Ctrl-A X quits).
    Stdio,
}

/// What this QEMU supports among the optional devices and options.
#[derive(Debug)]
struct Features {
    watchdog_device: bool,
    watchdog_action: bool,
}

fn features() -> &'static Features {
    static F: OnceLock<Features> = OnceLock::new();
    F.get_or_init(|| {
        let help = cmd::stdout(private_qemu::command().arg("-help")).unwrap_or_default();
        let devices =
            cmd::stdout(private_qemu::command().args(["-device", "help"])).unwrap_or_default();
        let f = Features {
            watchdog_device: devices.contains("\"i6300esb\""),
            watchdog_action: help.lines().any(|l| l.starts_with("-action watchdog=")),
        };
        if !f.watchdog_device {
            progress("warning: this QEMU has no i6300esb watchdog device; left out");
        }
        if !f.watchdog_action {
            progress("warning: this QEMU refuses -action watchdog=reset; left out");
        }
        f
    })
}

/// A path for a QEMU option value (`,` would need doubling; refused instead).
fn opt_path(p: &Path) -> Result<&str> {
    let s = path_str(p)?;
    if s.contains(',') {
        bail!("path contains a comma, which QEMU options cannot take: {s}");
    }
    Ok(s)
}

/// The QEMU command line for a run.
pub fn command(disk: &Disk, firmware: Firmware, serial: Serial<'_>) -> Result<Command> {
    let mut c = private_qemu::command();
    let machine = if disk.sercon {
        "q35,graphics=off"
    } else {
        "q35"
    };
    c.args([
        "-accel", "tcg", "-machine", machine, "-m", "1024", "-smp", "2",
    ])
    .args(["-display", "none", "-no-user-config", "-nodefaults"]);
    match serial {
        Serial::Socket(sock) => {
            c.args(["-serial", "chardev:s0", "-chardev"])
                .arg(format!("socket,id=s0,path={}", opt_path(sock)?))
                .arg("-no-reboot");
        }
        Serial::Stdio => {
            c.args(["-serial", "mon:stdio"]);
        }
    }
    match &disk.only {
        None => {
            c.arg("-drive").arg(format!(
                "file={},if=virtio,format=qcow2",
                opt_path(&disk.overlay)?
            ));
        }
        Some(d) => {
            c.arg("-drive").arg(format!(
                "file={},if=virtio,format={}",
                opt_path(&d.path)?,
                d.format
            ));
        }
    }
    for d in &disk.extra {
        c.arg("-drive").arg(format!(
            "file={},if=virtio,format={}{}",
            opt_path(&d.path)?,
            d.format,
            if d.read_only { ",readonly=on" } else { "" }
        ));
    }
    if let Some(iso) = &disk.cdrom {
        c.arg("-drive")
            .arg(format!(
                "file={},media=cdrom,readonly=on,format=raw",
                opt_path(iso)?
            ))
            .args(["-boot", "order=d"]);
    }
    let f = features();
    if f.watchdog_device {
        c.args(["-device", "i6300esb"]);
        if f.watchdog_action {
            c.args(["-action", "watchdog=reset"]);
        }
    }
    if firmware == Firmware::Uefi {
        let (code, _) = packages::ovmf()?;
        let vars = disk
            .vars
            .as_deref()
            .context("UEFI run without a variables file")?;
        c.arg("-drive").arg(format!(
            "if=pflash,format=raw,unit=0,readonly=on,file={}",
            opt_path(&code)?
        ));
        c.arg("-drive").arg(format!(
            "if=pflash,format=raw,unit=1,file={}",
            opt_path(vars)?
        ));
    }
    // For investigating the rig itself (e.g. `-d cpu_reset -D /tmp/q.log`): extra
    // arguments, split on whitespace, appended last.
    if let Ok(extra) = std::env::var("KOOMPI_VM_QEMU_ARGS") {
        c.args(extra.split_whitespace());
    }
    Ok(c)
}

/// How many times one run's QEMU may be started again after a guest reset: far more
/// boots than any scenario makes, few enough to stop a guest that resets in a loop.
const MAX_STARTS: u32 = 40;

/// How often the supervisor looks at the running QEMU process.
const SUPERVISE_POLL: Duration = Duration::from_millis(50);

/// The machine of a test run: QEMU started again with the same command line (the same
/// disk and firmware variables) each time it exits successfully, which with
/// `-no-reboot` is each time the guest resets. A failed exit, a failed start or too many
/// starts end the machine for good, with the reason in [`Qemu::ended`]. Killed on drop.
#[derive(Debug)]
pub struct Qemu {
    shared: Arc<Supervised>,
    supervisor: Option<JoinHandle<()>>,
}

#[derive(Debug)]
struct Supervised {
    child: Mutex<Option<Child>>,
    stop: AtomicBool,
    ended: Ended,
}

/// A copy of `c` (program, arguments, environment, directory) to start again.
fn clone_command(c: &Command) -> Command {
    let mut n = Command::new(c.get_program());
    n.args(c.get_args());
    for (k, v) in c.get_envs() {
        match v {
            Some(v) => n.env(k, v),
            None => n.env_remove(k),
        };
    }
    if let Some(d) = c.get_current_dir() {
        n.current_dir(d);
    }
    n
}

/// Starts `c` with its messages appended to `stderr`.
fn start(c: &Command, stderr: &Path) -> Result<Child> {
    let err = fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(stderr)
        .with_context(|| format!("cannot open {}", stderr.display()))?;
    clone_command(c)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(err)
        .spawn()
        .with_context(|| format!("cannot run `{}`", cmd::describe(c)))
}

impl Qemu {
    /// Starts `c` in the background and keeps it running across guest resets; QEMU's own
    /// messages go to `stderr_file` (created afresh, appended to by later starts).
    pub fn spawn(c: Command, stderr_file: &Path) -> Result<Qemu> {
        fs::File::create(stderr_file)
            .with_context(|| format!("cannot create {}", stderr_file.display()))?;
        Qemu::supervise(c, stderr_file, MAX_STARTS)
    }

    /// Starts `c` in the background once: a guest reset or power-off ends the machine for
    /// good ("the machine stopped"), for a scenario that waits for the guest to power off.
    pub fn spawn_once(c: Command, stderr_file: &Path) -> Result<Qemu> {
        fs::File::create(stderr_file)
            .with_context(|| format!("cannot create {}", stderr_file.display()))?;
        Qemu::supervise(c, stderr_file, 1)
    }

    fn supervise(c: Command, stderr_file: &Path, max_starts: u32) -> Result<Qemu> {
        let child = start(&c, stderr_file)?;
        let shared = Arc::new(Supervised {
            child: Mutex::new(Some(child)),
            stop: AtomicBool::new(false),
            ended: Arc::new(Mutex::new(None)),
        });
        let supervisor = {
            let shared = Arc::clone(&shared);
            let stderr = stderr_file.to_path_buf();
            std::thread::Builder::new()
                .name("qemu-supervisor".into())
                .spawn(move || supervise_loop(&c, &stderr, &shared, max_starts))
                .context("cannot start the QEMU supervisor thread")?
        };
        Ok(Qemu {
            shared,
            supervisor: Some(supervisor),
        })
    }

    /// Why QEMU ended for good, once it has; for [`super::console::Console::watch`].
    pub fn ended(&self) -> Ended {
        Arc::clone(&self.shared.ended)
    }

    /// Fails if QEMU has ended for good, with the reason.
    pub fn check_running(&self) -> Result<()> {
        match lock(&self.shared.ended).as_ref() {
            Some(reason) => bail!("{reason}"),
            None => Ok(()),
        }
    }
}

fn supervise_loop(c: &Command, stderr: &Path, shared: &Supervised, max_starts: u32) {
    let cmdline = cmd::describe(c);
    let mut starts = 1;
    let end = |reason: String| *lock(&shared.ended) = Some(reason);
    loop {
        let mut child = lock(&shared.child);
        let Some(running) = child.as_mut() else {
            return;
        };
        if shared.stop.load(Ordering::SeqCst) {
            let _ = running.kill();
            let _ = running.wait();
            *child = None;
            return;
        }
        match running.try_wait() {
            Ok(None) => {
                drop(child);
                std::thread::sleep(SUPERVISE_POLL);
            }
            Ok(Some(status)) if status.success() && starts < max_starts => match start(c, stderr) {
                Ok(next) => {
                    *child = Some(next);
                    starts += 1;
                }
                Err(e) => {
                    *child = None;
                    end(format!("{e:#} (to start the machine again after a reset)"));
                    return;
                }
            },
            Ok(Some(status)) => {
                *child = None;
                let msg = fs::read_to_string(stderr).unwrap_or_default();
                end(if status.success() && max_starts == 1 {
                    "the machine stopped (the guest powered off or reset)".to_string()
                } else if status.success() {
                    format!("the guest reset the machine {max_starts} times; stopped (`{cmdline}`)")
                } else {
                    format!("`{cmdline}` exited ({status}): {}", msg.trim())
                });
                return;
            }
            Err(e) => {
                *child = None;
                end(format!("cannot wait for `{cmdline}`: {e}"));
                return;
            }
        }
    }
}

impl Drop for Qemu {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::SeqCst);
        if let Some(child) = lock(&self.shared.child).as_mut() {
            let _ = child.kill();
        }
        if let Some(h) = self.supervisor.take() {
            let _ = h.join();
        }
        if let Some(mut child) = lock(&self.shared.child).take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// `vm-run`: boots a throwaway overlay of `image` with the console on this terminal.
pub fn interactive(base: Base<'_>, firmware: Firmware, live: bool) -> Result<()> {
    let work = tempfile::Builder::new()
        .prefix("koompi-vm-run.")
        .tempdir()
        .context("cannot create a temporary directory")?;
    let mut disk = Disk::create(base, &work.path().join("disk"), firmware, false)?;
    if let (Base::Image(image), true) = (base, live) {
        // As in the install scenarios: a blank disk to install onto and the install medium.
        disk.add_blank("blank.raw", 12 << 30)?;
        disk.add_read_only(&super::image::medium_of(image));
    }
    let mut c = command(&disk, firmware, Serial::Stdio)?;
    let (what, how) = match base {
        Base::Image(image) => (
            format!("a throwaway copy of {}", image.display()),
            if live {
                "log in as koompi, password koompi; /dev/vdb is a blank 12 GiB disk: \
                 `sudo koompi-install --disk /dev/vdb --user NAME --password-file FILE --yes`, \
                 or `sudo koompi-install` at the keyboard"
            } else {
                "root is logged in on the console"
            },
        ),
        Base::Iso(iso) => (
            format!("{} beside a blank 16 GiB disk", iso.display()),
            "press r in the boot menu for the serial console, then log in as koompi, \
             password koompi",
        ),
    };
    eprintln!(
        "vm-run: booting {what} ({}): quit with Ctrl-A X (Ctrl-A C for the QEMU monitor); \
         {how}",
        firmware.name(),
    );
    let cmdline = cmd::describe(&c);
    let mut child = c
        .spawn()
        .with_context(|| format!("cannot run `{cmdline}`"))?;
    let status = child
        .wait()
        .with_context(|| format!("cannot wait for `{cmdline}`"))?;
    if !status.success() {
        bail!("`{cmdline}` failed ({status})");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::time::Instant;

    use super::*;

    fn sh(script: &str) -> Command {
        let mut c = Command::new("sh");
        c.args(["-c", script]);
        c
    }

    /// Waits until `f` holds, for at most 10 s.
    fn eventually(what: &str, f: impl Fn() -> bool) {
        let start = Instant::now();
        while !f() {
            assert!(start.elapsed() < Duration::from_secs(10), "never: {what}");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    #[test]
    fn a_reset_starts_the_same_command_again() {
        let dir = tempfile::tempdir().expect("tempdir");
        let count = dir.path().join("starts");
        let script = format!(
            "echo start >> '{0}'; [ $(wc -l < '{0}') -lt 3 ] && exit 0; exec sleep 60",
            count.display()
        );
        let vm = Qemu::spawn(sh(&script), &dir.path().join("stderr")).expect("spawn");
        let starts = || {
            fs::read_to_string(&count)
                .unwrap_or_default()
                .lines()
                .count()
        };
        eventually("three starts", || starts() == 3);
        std::thread::sleep(Duration::from_millis(200));
        assert_eq!(starts(), 3);
        vm.check_running().expect("still running");
        let started = Instant::now();
        drop(vm);
        assert!(started.elapsed() < Duration::from_secs(5), "drop kills it");
    }

    #[test]
    fn a_failed_exit_ends_the_machine_with_its_messages() {
        let dir = tempfile::tempdir().expect("tempdir");
        let vm = Qemu::spawn(
            sh("echo 'qemu: could not open disk' >&2; exit 3"),
            &dir.path().join("stderr"),
        )
        .expect("spawn");
        let ended = vm.ended();
        eventually("the end", || lock(&ended).is_some());
        let e = vm.check_running().expect_err("ended");
        let msg = format!("{e:#}");
        assert!(msg.contains("exited (exit status: 3)"), "{msg}");
        assert!(msg.ends_with("qemu: could not open disk"), "{msg}");
    }

    #[test]
    fn a_guest_that_resets_in_a_loop_is_stopped() {
        let dir = tempfile::tempdir().expect("tempdir");
        let vm = Qemu::supervise(sh("exit 0"), &dir.path().join("stderr"), 5).expect("spawn");
        let ended = vm.ended();
        eventually("the end", || lock(&ended).is_some());
        let msg = format!("{:#}", vm.check_running().expect_err("ended"));
        assert!(
            msg.starts_with("the guest reset the machine 5 times"),
            "{msg}"
        );
    }
}
