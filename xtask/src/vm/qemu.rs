//! QEMU: per-run copy-on-write overlays of the base image, the command line for BIOS
//! (SeaBIOS) and UEFI (OVMF), and a guard that kills QEMU however the run ends.
//!
//! Software emulation only (`-accel tcg`): KVM does not work on the test machines. QEMU
//! keeps running across guest reboots (no `-no-reboot`), so one process sees a whole
//! scenario, reboots, panics and watchdog resets included.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;

use anyhow::{bail, Context, Result};

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
    keep: bool,
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
    /// A unix socket QEMU listens on (the console driver connects to it).
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
    c.args([
        "-accel", "tcg", "-machine", "q35", "-m", "1024", "-smp", "2",
    ])
    .args(["-display", "none", "-no-user-config", "-nodefaults"]);
    match serial {
        Serial::Socket(sock) => {
            c.args(["-serial", "chardev:s0", "-chardev"]).arg(format!(
                "socket,id=s0,path={},server=on,wait=off",
                opt_path(sock)?
            ));
        }
        Serial::Stdio => {
            c.args(["-serial", "mon:stdio"]);
        }
    }
    c.arg("-drive").arg(format!(
        "file={},if=virtio,format=qcow2",
        opt_path(&disk.overlay)?
    ));
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

/// A running QEMU; killed on drop.
#[derive(Debug)]
pub struct Qemu {
    child: Child,
    cmdline: String,
    stderr: PathBuf,
}

impl Qemu {
    /// Starts `c` in the background; QEMU's own messages go to `stderr_file`.
    pub fn spawn(mut c: Command, stderr_file: &Path) -> Result<Qemu> {
        let cmdline = cmd::describe(&c);
        let err = fs::File::create(stderr_file)
            .with_context(|| format!("cannot create {}", stderr_file.display()))?;
        let child = c
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(err)
            .spawn()
            .with_context(|| format!("cannot run `{cmdline}`"))?;
        Ok(Qemu {
            child,
            cmdline,
            stderr: stderr_file.to_path_buf(),
        })
    }

    /// Fails if QEMU has exited, with its status and messages.
    pub fn check_running(&mut self) -> Result<()> {
        let status = self
            .child
            .try_wait()
            .with_context(|| format!("cannot wait for `{}`", self.cmdline))?;
        if let Some(status) = status {
            let msg = fs::read_to_string(&self.stderr).unwrap_or_default();
            bail!("`{}` exited ({status}): {}", self.cmdline, msg.trim());
        }
        Ok(())
    }
}

impl Drop for Qemu {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `vm-run`: boots a throwaway overlay of `image` with the console on this terminal.
pub fn interactive(base: Base<'_>, firmware: Firmware, live: bool) -> Result<()> {
    let work = tempfile::Builder::new()
        .prefix("koompi-vm-run.")
        .tempdir()
        .context("cannot create a temporary directory")?;
    let disk = Disk::create(base, &work.path().join("disk"), firmware, false)?;
    let mut c = command(&disk, firmware, Serial::Stdio)?;
    let (what, how) = match base {
        Base::Image(image) => (
            format!("a throwaway copy of {}", image.display()),
            if live {
                "log in as koompi, password koompi"
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
