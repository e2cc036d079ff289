//! The install scenarios: `koompi-install` run in the live system onto a blank second
//! disk, then **the installed disk booted alone** and checked as its user would find it.
//!
//! # The machine
//!
//! The live-session image ([`super::live`]) as `/dev/vda`, a blank 12 GiB disk as
//! `/dev/vdb`, and the install medium (`.vm-cache/koompi-medium-<key>.img`, an ISO 9660
//! volume labelled `KOOMPI_RIG` with `koompi/x86_64/airootfs.sfs` and the kernel in
//! `koompi/boot/x86_64/`, built with the live image) read-only as `/dev/vdc`, mounted at
//! `/run/archiso/bootmnt` as archiso mounts its medium. The installer copies the squashfs,
//! as it does from a real ISO.
//!
//! # The scenario
//!
//! 1. The live system's `login:`; koompi/koompi; `sudo -i` with the live password.
//! 2. `koompi-install --disk /dev/vdb --user student --password-file F --hostname lab-07
//!    --locale km_KH.UTF-8 --yes` (with `--encrypt --passphrase-file G` for LUKS). Its
//!    time and the time of a plain copy of the same squashfs to the same disk are printed
//!    (the benchmark of the issue: their ratio). For `install-resume` the power is cut
//!    during the first try's copy, and the command runs again in the live system booted
//!    anew.
//!
//!    For `install-unattended` steps 1 and 2 are a stick instead: the sample answer file
//!    of docs/install.md on a FAT partition labelled `KOOMPI-INST` (`/dev/vdd`), and
//!    nothing typed until the live system has installed and powered itself off.
//! 3. QEMU stops; a new QEMU boots the installed disk alone (same firmware, same UEFI
//!    variables). With LUKS, GRUB's passphrase prompt is answered once; the initramfs must
//!    not ask again.
//! 4. At the installed system's `login:`: /etc/issue without the live password; a wrong
//!    password refused; student logs in; `sudo -i`; then: hostname, km_KH.UTF-8 generated
//!    and set, the four subvolumes mounted where DESIGN.md puts them, no live user, the
//!    boot confirmed by the watchdog, the factory snapshot (important, known-good), and for
//!    LUKS the root on a dm-crypt device.

use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{bail, ensure, Context, Result};

use super::console::{find, strip_escapes, Console, PROMPT};
use super::live::{screen, wait_text};
use super::qemu::{self, Disk, Qemu, Serial};
use super::scenarios::snapshots;
use super::steps::{settle, wait_confirmed, Outcome, CMD_TIMEOUT};
use super::{progress, Firmware};

/// What an install scenario varies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// No encryption.
    Plain,
    /// LUKS2, the passphrase typed at GRUB's prompt.
    Luks,
    /// No encryption; the power is cut while the first try copies the root image, and the
    /// same command run again in the restarted live system must resume it from the
    /// journal on the disk.
    Resume,
    /// A fleet install: the answer file of docs/install.md on a stick labelled
    /// `KOOMPI-INST`, nobody typing from power-on to the installed system's `login:`.
    Unattended,
    /// Beside another system: the disk already has an ESP with another system's loaders
    /// (its fallback loader among them) and that system's partition with a file; KOOMPI
    /// OS goes into the third partition (`--root-partition`) and must boot through its
    /// NVRAM entry, the other system's files untouched.
    Beside,
}

/// The other system's fallback loader and file, as [`other_system`] writes them.
const OTHER_LOADER: &str = "the other system's loader\n";
const OTHER_FILE: &str = "homework, kept\n";

/// Lays out `target` (a blank raw disk) as a laptop with another system: GPT with an ESP
/// (FAT, `EFI/BOOT/BOOTX64.EFI` and `EFI/Other/loader.efi`), the other system's 1 GiB ext4
/// partition labelled `other` holding `homework.txt`, and the rest left for KOOMPI OS.
fn other_system(target: &Path) -> Result<()> {
    use std::process::Command;
    let img = target.to_str().context("the target's path is not UTF-8")?;
    super::cmd::run_input(
        Command::new("sfdisk").args(["--quiet", img]),
        Some(
            b"label: gpt\nstart=1MiB, size=100MiB, type=C12A7328-F81F-11D2-BA4B-00A0C93EC93B\n\
              start=101MiB, size=1GiB, type=EBD0A0A2-B9E5-4433-87C0-68B6B72699C7\n\
              start=1125MiB, type=0FC63DAF-8483-4772-8E79-3D69D8477DE4\n",
        ),
    )?;
    // One sector per cluster: enough clusters for FAT32 in 100 MiB, as Windows makes it.
    super::cmd::run(Command::new("mkfs.fat").args([
        "-F",
        "32",
        "-s",
        "1",
        "-n",
        "SYSTEM",
        "--offset=2048",
        img,
        &(100 * 1024).to_string(),
    ]))?;
    let dir = tempfile::tempdir().context("cannot create a temporary directory")?;
    let loader = dir.path().join("loader.efi");
    std::fs::write(&loader, OTHER_LOADER).context("cannot write the loader")?;
    let fat = format!("{img}@@1M");
    for d in ["::EFI", "::EFI/BOOT", "::EFI/Other"] {
        super::cmd::run(Command::new("mmd").args(["-i", &fat, d]))?;
    }
    for to in ["::EFI/BOOT/BOOTX64.EFI", "::EFI/Other/loader.efi"] {
        super::cmd::run(
            Command::new("mcopy")
                .args(["-i", &fat])
                .arg(&loader)
                .arg(to),
        )?;
    }
    let files = dir.path().join("other");
    std::fs::create_dir(&files).context("cannot create a directory")?;
    std::fs::write(files.join("homework.txt"), OTHER_FILE).context("cannot write a file")?;
    super::cmd::run(
        Command::new("mkfs.ext4")
            .args(["-q", "-F", "-L", "other", "-d"])
            .arg(&files)
            .args(["-E", &format!("offset={}", 101u64 << 20), img, "1G"]),
    )?;
    Ok(())
}

/// The live user and password (iso/airootfs).
const LIVE_USER: &str = super::live::USER;
const LIVE_PASSWORD: &str = super::live::PASSWORD;
/// What the scenario installs.
const USER: &str = "student";
const PASSWORD: &str = "Kdei-2026-pw";
const PASSPHRASE: &str = "angkor wat at dawn";
const HOSTNAME: &str = "lab-07";
const LOCALE: &str = "km_KH.UTF-8";
/// The blank disk's size.
const TARGET_SIZE: u64 = 12 << 30;

/// From QEMU's start to a `login:` prompt.
const LOGIN_TIMEOUT: Duration = Duration::from_secs(600);
/// A step of a login (prompt to prompt).
const STEP_TIMEOUT: Duration = Duration::from_secs(120);
/// The whole install in the guest.
const INSTALL_TIMEOUT: Duration = Duration::from_secs(60 * 60);

/// Waits for `pattern` in what the console drew after `from`, escapes removed: SeaBIOS's
/// serial console moves the cursor in the middle of words (`En\x1b[06;03Hter passphrase`).
/// Returns the end of the console output at that moment.
fn wait_drawn(c: &mut Console, from: usize, pattern: &str, timeout: Duration) -> Result<usize> {
    c.wait_until(timeout, &format!("`{pattern}`"), |buf| {
        let seg = buf.get(from..)?;
        let text = strip_escapes(&String::from_utf8_lossy(seg));
        text.contains(pattern).then_some((buf.len(), buf.len()))
    })
}

/// A QEMU for `disk` with its console on a fresh socket, logging to `log`.
fn start(disk: &Disk, fw: Firmware, log: &Path) -> Result<(Console, Qemu, tempfile::TempDir)> {
    start_with(disk, fw, log, Qemu::spawn)
}

/// [`start`] with `spawn` starting QEMU ([`Qemu::spawn`], or [`Qemu::spawn_once`] for a
/// phase that ends when the guest powers off).
fn start_with(
    disk: &Disk,
    fw: Firmware,
    log: &Path,
    spawn: fn(std::process::Command, &Path) -> Result<Qemu>,
) -> Result<(Console, Qemu, tempfile::TempDir)> {
    let sock_dir = tempfile::Builder::new()
        .prefix("koompi-vm.")
        .tempdir()
        .context("cannot create a temporary directory")?;
    let sock = sock_dir.path().join("console.sock");
    let mut console = Console::listen(&sock, log)?;
    let vm = spawn(
        qemu::command(disk, fw, Serial::Socket(&sock))?,
        &disk.dir.join("qemu.stderr"),
    )?;
    console.watch(vm.ended());
    Ok((console, vm, sock_dir))
}

/// Logs in at the `login:` prompt after `from` as `user`; the position after the shell's
/// prompt (`user@`). A wrong password first, when `refuse_first`, must be refused.
fn log_in(
    c: &mut Console,
    from: usize,
    user: &str,
    password: &str,
    refuse_first: bool,
) -> Result<usize> {
    let mut at = wait_text(c, from, "login: ", LOGIN_TIMEOUT).context("no login prompt")?;
    progress(&format!("  login prompt at {} s", c.elapsed_secs()));
    c.wait_quiet(Duration::from_secs(5), Duration::from_secs(180))?;
    if refuse_first {
        c.send(&format!("{user}\n"))?;
        at = wait_text(c, at, "Password: ", STEP_TIMEOUT)?;
        c.send("not-the-password\n")?;
        at = wait_text(c, at, "Login incorrect", STEP_TIMEOUT)
            .context("a wrong password was not refused")?;
        at = wait_text(c, at, "login: ", STEP_TIMEOUT)?;
        progress("  a wrong password was refused");
    }
    c.send(&format!("{user}\n"))?;
    at = wait_text(c, at, "Password: ", STEP_TIMEOUT)?;
    c.send(&format!("{password}\n"))?;
    let want = format!("{user}@");
    let (ok, end) = c.wait_until(STEP_TIMEOUT, &format!("the shell prompt `{want}`"), |buf| {
        let seg = buf.get(at..)?;
        if let Some(p) = find(seg, b"Login incorrect") {
            return Some(((false, at + p), at + p));
        }
        let p = find(seg, want.as_bytes())?;
        Some(((true, at + p), at + p))
    })?;
    ensure!(ok, "the password of {user} was refused (`Login incorrect`)");
    progress(&format!("  logged in as {user} at {} s", c.elapsed_secs()));
    Ok(end)
}

/// `sudo -i` with `password` from the user's shell; leaves root's shell ready for commands.
fn become_root(c: &mut Console, from: usize, password: &str) -> Result<()> {
    c.send("sudo -i\n")?;
    let at = wait_text(c, from, "password for", STEP_TIMEOUT).context("no sudo prompt")?;
    c.send(&format!("{password}\n"))?;
    wait_text(c, at, PROMPT, STEP_TIMEOUT).context("no root prompt after sudo -i")?;
    c.set_prompt(PROMPT);
    settle(c)
}

/// The install scenario `kind` on `fw`: phase 1 in the live system on `disk` (the live
/// image's overlay), phase 2 on the installed disk alone.
pub fn run(
    disk: &mut Disk,
    medium: &Path,
    fw: Firmware,
    kind: Kind,
    log: &Path,
) -> Result<Outcome> {
    let target = disk.add_blank("target.raw", TARGET_SIZE)?;
    if kind == Kind::Beside {
        other_system(&target)?;
    }
    disk.add_read_only(medium);
    if kind == Kind::Luks {
        disk.firmware_console_on_serial();
    }
    let (installed, detail) = if kind == Kind::Unattended {
        install_unattended(disk, fw, log)?
    } else {
        let (install_secs, floor) = install_typed(disk, fw, kind, log)?;
        (
            Installed {
                hostname: HOSTNAME.into(),
            },
            format!(
                ", install {install_secs:.0} s, {:.2}× a plain copy ({floor:.0} s)",
                install_secs / floor.max(1.0)
            ),
        )
    };
    let boots = boot_installed(disk, &target, fw, kind, log, &installed)?;
    Ok(Outcome { boots, detail })
}

/// What phase 2 checks that phase 1 chose.
struct Installed {
    hostname: String,
}

/// Phase 1 at the keyboard: logs in to the live system, runs koompi-install there (for
/// [`Kind::Resume`] twice) and measures the floor; the install's and the floor's seconds.
fn install_typed(disk: &Disk, fw: Firmware, kind: Kind, log: &Path) -> Result<(f64, f64)> {
    let (mut c, mut vm, mut sock) = start(disk, fw, log)?;
    prepare_live(&mut c)?;
    let mut args = format!(
        "{} --user {USER} --password-file /root/pw --hostname {HOSTNAME} --locale {LOCALE} \
         --yes",
        if kind == Kind::Beside {
            "--root-partition /dev/vdb3"
        } else {
            "--disk /dev/vdb"
        }
    );
    if kind == Kind::Luks {
        args.push_str(" --encrypt --passphrase-file /root/luks");
    }
    let started = Instant::now();
    if kind == Kind::Resume {
        start_then_wait_for_copy(&mut c, &args)?;
        drop(vm);
        drop(c);
        drop(sock);
        progress("  the power was cut while the first try copied the root image");
        let log2 = log.with_extension("after-cut.log");
        progress(&format!(
            "  the live system again (console log {})",
            log2.display()
        ));
        (c, vm, sock) = start(disk, fw, &log2)?;
        prepare_live(&mut c)?;
    }
    let out = c
        .run_ok(&format!("koompi-install {args} 2>&1"), INSTALL_TIMEOUT)
        .context("koompi-install failed")?;
    if kind == Kind::Resume {
        ensure!(
            out.contains(
                "resuming the interrupted install on /dev/vdb (its journal was on the disk"
            ) && out.contains(
                "Mount the new system at /run/koompi-install/target: done before, skipped"
            ),
            "the second try did not resume after the steps the first one finished: {}",
            super::cmd::tail(&out, 30)
        );
        progress("  the second try found the journal on the disk and resumed after its steps");
    }
    let install_secs = started.elapsed().as_secs_f64();
    progress(&format!("  installed in {install_secs:.0} s"));
    ensure!(
        out.contains("KOOMPI OS is installed on /dev/vdb"),
        "koompi-install ended without saying it installed: {}",
        super::cmd::tail(&out, 20)
    );
    // The shell does not echo what the rig types (stty -echo): a secret on the console
    // was printed by the installer.
    let shown = screen(&c, 0, None);
    for secret in [PASSWORD, PASSPHRASE] {
        ensure!(
            !shown.contains(secret),
            "the install printed a secret on the console"
        );
    }
    // The physical floor: the same squashfs unpacked onto the same disk, nothing else.
    let floor = floor_secs(&mut c)?;
    progress(&format!(
        "  benchmark: install {install_secs:.0} s, plain copy of the root image to the same \
         disk {floor:.0} s, ratio {:.2}",
        install_secs / floor.max(1.0)
    ));
    c.run_ok("sync", CMD_TIMEOUT)?;
    drop(vm);
    drop(c);
    drop(sock);
    Ok((install_secs, floor))
}

/// The sample answer file of docs/install.md (its first TOML block), as a school would put
/// it on a stick.
fn documented_answers() -> Result<String> {
    let path = crate::host::workspace_root()?.join("docs/install.md");
    let doc = std::fs::read_to_string(&path)
        .with_context(|| format!("cannot read {}", path.display()))?;
    let start = doc
        .find("```toml\n")
        .map(|i| i + "```toml\n".len())
        .with_context(|| format!("no TOML block in {}", path.display()))?;
    let len = doc[start..]
        .find("```")
        .with_context(|| format!("an unclosed TOML block in {}", path.display()))?;
    Ok(doc[start..start + len].to_string())
}

/// The value of `key = "value"` in a flat TOML text.
fn toml_string(text: &str, key: &str) -> Option<String> {
    text.lines().find_map(|l| {
        let (k, v) = l.split_once('=')?;
        (k.trim() == key).then(|| v.trim().trim_matches('"').to_string())
    })
}

/// A 64 MiB stick image at `path` as a school makes one: an MBR with one FAT partition
/// labelled `KOOMPI-INST` holding `install.toml` and the files it names.
fn answer_stick(path: &Path, files: &[(&str, &str)]) -> Result<()> {
    use std::process::Command;
    const SIZE_MIB: u64 = 64;
    let f =
        std::fs::File::create(path).with_context(|| format!("cannot create {}", path.display()))?;
    f.set_len(SIZE_MIB << 20)
        .with_context(|| format!("cannot size {}", path.display()))?;
    drop(f);
    let img = path.to_str().context("the stick's path is not UTF-8")?;
    super::cmd::run_input(
        Command::new("sfdisk").args(["--quiet", img]),
        Some(b"label: dos\nstart=2048, type=c\n"),
    )?;
    super::cmd::run(Command::new("mkfs.fat").args([
        "-n",
        "KOOMPI-INST",
        "--offset=2048",
        img,
        &((SIZE_MIB - 1) * 1024).to_string(),
    ]))?;
    let dir = tempfile::tempdir().context("cannot create a temporary directory")?;
    for (name, text) in files {
        let local = dir.path().join(name);
        std::fs::write(&local, text)
            .with_context(|| format!("cannot write {}", local.display()))?;
        super::cmd::run(
            Command::new("mcopy")
                .args(["-i", &format!("{img}@@1M")])
                .arg(&local)
                .arg(format!("::{name}")),
        )?;
    }
    Ok(())
}

/// Phase 1 for a fleet: the documented answer file on a stick, the live system booted and
/// left alone until it powers off.
fn install_unattended(disk: &mut Disk, fw: Firmware, log: &Path) -> Result<(Installed, String)> {
    let answers = documented_answers()?;
    let hostname = toml_string(&answers, "hostname").context("the sample has no hostname")?;
    let password_file =
        toml_string(&answers, "password-file").context("the sample has no password-file")?;
    ensure!(
        toml_string(&answers, "finish").as_deref() == Some("poweroff")
            && toml_string(&answers, "user").as_deref() == Some(USER),
        "the sample answer file no longer installs {USER} and powers off: {answers}"
    );
    let stick = disk.dir.join("answers.raw");
    answer_stick(
        &stick,
        &[
            ("install.toml", &answers),
            (&password_file, &format!("{PASSWORD}\n")),
        ],
    )?;
    disk.add_read_only(&stick);
    // Once: the machine powers itself off at the end, and that ends this phase.
    let (mut c, vm, _sock) = start_with(disk, fw, log, Qemu::spawn_once)?;
    progress("  the live system boots with the answer stick; nobody types");
    let started = Instant::now();
    let (ok, line) = c.wait_until(INSTALL_TIMEOUT, "the install's end", |buf| {
        let text = strip_escapes(&String::from_utf8_lossy(buf));
        // An error, or no answers found, ends the service without a power-off.
        if let Some(l) = text.lines().find(|l| {
            l.contains("koompi-install: error:")
                || (l.contains("koompi-install: ") && l.contains("nothing to do"))
        }) {
            return Some(((false, l.trim().to_string()), buf.len()));
        }
        if let Some(i) = text.find("KOOMPI OS is installed on ") {
            if text[i..].contains("reboot: Power down") {
                return Some(((true, String::new()), buf.len()));
            }
        }
        None
    })?;
    if !ok {
        bail!(
            "the fleet install stopped: {line}\n{}",
            fleet_diagnostics(&mut c).unwrap_or_else(|e| format!("(no diagnostics: {e:#})"))
        );
    }
    let install_secs = started.elapsed().as_secs_f64();
    let shown = screen(&c, 0, None);
    ensure!(
        shown.contains("installing with the answers in /run/koompi-answers/install.toml"),
        "the install did not say which answer file it used"
    );
    ensure!(
        !shown.contains(PASSWORD),
        "the install printed the password on the console"
    );
    progress(&format!(
        "  installed and powered off {install_secs:.0} s after power-on"
    ));
    drop(vm);
    drop(c);
    Ok((
        Installed { hostname },
        format!(", power-on to power-off {install_secs:.0} s"),
    ))
}

/// What the live system saw, for a fleet install that did not start: its disks as the
/// installer reads them and the fleet unit's journal.
fn fleet_diagnostics(c: &mut Console) -> Result<String> {
    let from = c.position();
    c.send("\n")?;
    let at = log_in(c, from, LIVE_USER, LIVE_PASSWORD, false)?;
    become_root(c, at, LIVE_PASSWORD)?;
    let (_, out) = c.run(
        "lsblk --json --output PATH,TYPE,RO,MOUNTPOINTS,LABEL,PARTLABEL,FSTYPE; \
         ls -l /dev/disk/by-label; journalctl -b -u koompi-install-fleet --no-pager",
        CMD_TIMEOUT,
    )?;
    Ok(out)
}

/// Phase 2: the installed disk alone, booted and checked; the boots seen.
fn boot_installed(
    disk: &mut Disk,
    target: &Path,
    fw: Firmware,
    kind: Kind,
    log: &Path,
    installed: &Installed,
) -> Result<usize> {
    disk.keep_only(target)?;
    let log2 = log.with_extension("installed.log");
    progress(&format!(
        "  booting the installed disk alone (console log {})",
        log2.display()
    ));
    let (mut c, vm, _sock) = start(disk, fw, &log2)?;
    let mut from = 0;
    if kind == Kind::Luks {
        from = wait_drawn(&mut c, 0, "Enter passphrase for", LOGIN_TIMEOUT)
            .context("GRUB did not ask for the passphrase")?;
        progress(&format!(
            "  GRUB asks for the passphrase at {} s",
            c.elapsed_secs()
        ));
        c.send(&format!("{PASSPHRASE}\n"))?;
    }
    let prompt = wait_text(&mut c, from, "login: ", LOGIN_TIMEOUT)
        .context("the installed system gave no login prompt")?;
    // Cut at the prompt's byte position in the raw console, before escapes are removed.
    let boot = screen(&c, 0, Some(prompt));
    ensure!(
        !boot.contains("Password: koompi"),
        "the installed system's /etc/issue shows the live password"
    );
    ensure!(
        boot.contains("KOOMPI OS Base Edition"),
        "the installed system's /etc/issue is not KOOMPI's"
    );
    if kind == Kind::Luks {
        let asked = boot.matches("Enter passphrase for").count();
        ensure!(asked == 1, "GRUB asked for the passphrase {asked} times");
        ensure!(
            !boot.contains("Please unlock disk"),
            "the initramfs asked for the passphrase again (the key file did not open it)"
        );
    }
    let at = log_in(&mut c, from, USER, PASSWORD, true)?;
    become_root(&mut c, at, PASSWORD)?;
    check_installed(&mut c, kind, installed)?;
    let boots = c.boots_since(0);
    drop(vm);
    Ok(boots)
}

/// Starts `koompi-install ARGS` in the background and waits until it copies the root
/// image; the caller then cuts the power (kills QEMU: what the guest had not written is
/// lost, /run with the live system's journal too).
fn start_then_wait_for_copy(c: &mut Console, args: &str) -> Result<()> {
    c.run_ok(
        // In a subshell: the console driver appends `; echo MARKER`, and `&;` is no shell.
        &format!("(setsid koompi-install {args} > /root/first-try.log 2>&1 < /dev/null &)"),
        CMD_TIMEOUT,
    )?;
    c.run_ok(
        "for i in $(seq 600); do grep -q 'Copy the live system' /root/first-try.log && break; \
         sleep 1; done; grep -q 'Copy the live system' /root/first-try.log",
        Duration::from_secs(900),
    )
    .context("the first try never reached the copy")?;
    let journal = c.run_ok("sleep 3; cat /run/koompi-install/journal.json", CMD_TIMEOUT)?;
    ensure!(
        journal.contains("\"mount\"") && !journal.contains("\"base-system\""),
        "the first try is not copying; its journal: {journal}"
    );
    Ok(())
}

/// Logs in to the live system as root and makes it ready to install: the medium
/// mounted, the secret files written.
fn prepare_live(c: &mut Console) -> Result<()> {
    let at = log_in(c, 0, LIVE_USER, LIVE_PASSWORD, false)?;
    become_root(c, at, LIVE_PASSWORD)?;
    // systemd mounts the medium once udev has seen it (slow under emulation).
    c.run_ok(
        "for i in $(seq 90); do findmnt -n /run/archiso/bootmnt >/dev/null && break; sleep 2; done; \
         findmnt -n /run/archiso/bootmnt",
        Duration::from_secs(240),
    )
    .context("the install medium is not mounted at /run/archiso/bootmnt")?;
    c.run_ok(
        &format!("umask 077; printf '%s\\n' '{PASSWORD}' > /root/pw; printf '%s\\n' '{PASSPHRASE}' > /root/luks"),
        CMD_TIMEOUT,
    )?;
    Ok(())
}

/// The time to unpack the live root image onto the installed Btrfs (mounted with the
/// installer's options, beside its subvolumes) and sync, then removed again: the floor of
/// an offline install, the same bytes read from the same medium and written to the same
/// disk through the same filesystem.
fn floor_secs(c: &mut Console) -> Result<f64> {
    c.run_ok(
        "mkdir -p /run/floor && mount -o subvolid=5,noatime,compress=zstd:1 /dev/vdb3 /run/floor 2>/dev/null || \
         { head -c -1 /root/luks | cryptsetup open --key-file - /dev/vdb3 floor && \
         mount -o subvolid=5,noatime,compress=zstd:1 /dev/mapper/floor /run/floor; }",
        CMD_TIMEOUT,
    )?;
    let out = c.run_ok(
        "s=$(date +%s.%N); unsquashfs -f -no-progress -d /run/floor/copy /run/archiso/bootmnt/koompi/x86_64/airootfs.sfs >/dev/null && sync; e=$(date +%s.%N); echo \"floor $s $e\"",
        INSTALL_TIMEOUT,
    )?;
    c.run_ok(
        "btrfs subvolume list /run/floor >/dev/null; rm -rf /run/floor/copy; umount /run/floor; \
         if [ -e /dev/mapper/floor ]; then cryptsetup close floor; fi",
        CMD_TIMEOUT,
    )?;
    let line = out
        .lines()
        .find_map(|l| l.trim().strip_prefix("floor "))
        .context("no timing from the plain copy")?;
    let mut it = line.split_whitespace().map(|v| v.parse::<f64>());
    match (it.next(), it.next()) {
        (Some(Ok(s)), Some(Ok(e))) => Ok(e - s),
        _ => bail!("unreadable timing: {line}"),
    }
}

/// The checks in the installed system's root shell.
fn check_installed(c: &mut Console, kind: Kind, installed: &Installed) -> Result<()> {
    let line = |c: &mut Console, cmd: &str| -> Result<String> {
        Ok(c.run_ok(cmd, CMD_TIMEOUT)?.trim().to_string())
    };
    let host = line(c, "hostname")?;
    ensure!(
        host == installed.hostname,
        "hostname is {host:?}, expected {}",
        installed.hostname
    );
    let lang = line(c, "cat /etc/locale.conf")?;
    ensure!(
        lang.contains(&format!("LANG={LOCALE}")),
        "/etc/locale.conf says {lang:?}"
    );
    let locales = line(c, "locale -a")?;
    ensure!(
        locales.lines().any(|l| l.trim() == "km_KH.utf8"),
        "km_KH.UTF-8 was not generated; `locale -a`: {locales}"
    );
    for (at, subvol) in [
        ("/", "/@"),
        ("/home", "/@home"),
        ("/.snapshots", "/@snapshots"),
        ("/var/log", "/@var_log"),
    ] {
        let o = line(c, &format!("findmnt -n -o FSTYPE,OPTIONS {at}"))?;
        ensure!(
            o.starts_with("btrfs") && o.contains(&format!("subvol={subvol}")),
            "{at} is not the Btrfs subvolume {subvol}: {o}"
        );
    }
    let (code, live) = c.run(&format!("getent passwd {LIVE_USER}"), CMD_TIMEOUT)?;
    ensure!(code != 0, "the live user is still there: {}", live.trim());
    let groups = line(c, &format!("id -nG {USER}"))?;
    ensure!(
        groups.split_whitespace().any(|g| g == "wheel"),
        "{USER} is not in wheel: {groups}"
    );
    let enabled = line(c, "systemctl is-enabled NetworkManager.service")?;
    ensure!(enabled == "enabled", "NetworkManager is {enabled}");
    if kind == Kind::Plain {
        super::edition::installed(c)?;
    }
    let status = wait_confirmed(c)?;
    ensure!(
        status["tries"].as_i64() == Some(0),
        "after the confirmation the watchdog says {status}"
    );
    let list = snapshots(c)?;
    let factory = list
        .iter()
        .find(|s| {
            s["name"]
                .as_str()
                .is_some_and(|n| n.starts_with("factory-"))
        })
        .with_context(|| format!("no factory snapshot: {list:?}"))?;
    let text = factory.to_string();
    ensure!(
        text.contains("koompi-known-good") && text.contains("important"),
        "the factory snapshot is not important and known-good: {text}"
    );
    if kind == Kind::Beside {
        // The disk is /dev/vda now: the other system's partition and loaders as they were.
        let other = line(
            c,
            "mkdir -p /run/other && mount -o ro /dev/vda2 /run/other && \
             cat /run/other/homework.txt; umount /run/other",
        )?;
        // The kernel's messages about the mount may be interleaved on the console.
        let has = |out: &str, want: &str| out.lines().any(|l| l.trim() == want.trim());
        ensure!(
            has(&other, OTHER_FILE),
            "the other system's file reads {other:?}"
        );
        for loader in ["BOOT/BOOTX64.EFI", "Other/loader.efi"] {
            let text = line(c, &format!("cat /boot/efi/EFI/{loader}"))?;
            ensure!(
                has(&text, OTHER_LOADER),
                "the other system's EFI/{loader} was replaced: {text:?}"
            );
        }
        let root = line(c, "findmnt -n -o SOURCE /")?;
        ensure!(
            root.starts_with("/dev/vda3"),
            "the root is {root}, not the third partition"
        );
        let entries = line(c, "efibootmgr")?;
        ensure!(
            entries.contains("KOOMPI OS"),
            "no KOOMPI OS entry in the firmware's boot menu: {entries}"
        );
    }
    if kind == Kind::Luks {
        let root = line(c, "findmnt -n -o SOURCE /")?;
        let types = line(c, "lsblk -n -o TYPE")?;
        ensure!(
            types.lines().any(|t| t.trim() == "crypt"),
            "the root ({root}) is not on a LUKS container; lsblk: {types}"
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// SeaBIOS's serial console as seen in a run: a cursor move inside the word.
    #[test]
    fn the_passphrase_prompt_is_found_through_cursor_moves() {
        let raw = "Welcome to GRUB!\r\n\x1b[0mEn\x1b[06;02H\x1b[06;03Hter passphrase for hd0,gpt3 (2199): ";
        assert!(!raw.contains("Enter passphrase for"));
        assert!(strip_escapes(raw).contains("Enter passphrase for"));
    }
}
