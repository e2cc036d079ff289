//! The interactive installer as a person meets it: `koompi-install --dry-run --json` on a
//! pseudo-terminal of 80x24, driven through all fourteen steps with keys, reading the
//! screen as a terminal shows it (vt100). The disk to choose is a sparse loop device, so
//! the test needs root; it is skipped otherwise, or when no loop device can be set up.
//! The plan printed at the end must be the one chosen on the screens, and the disk must
//! be left untouched.
#![allow(clippy::unwrap_used)]

use std::io::{Read, Write};
use std::sync::mpsc::{channel, Receiver};
use std::time::{Duration, Instant};

use koompi_testutil::{require_root, LoopDisk};
use portable_pty::{native_pty_system, CommandBuilder, PtySize};

const ENTER: &str = "\r";
const DOWN: &str = "\x1b[B";
const UP: &str = "\x1b[A";
const BACKSPACE: &str = "\x7f";

/// The program on the pseudo-terminal: what it printed, and the screen that makes.
struct Tty {
    screen: vt100::Parser,
    raw: Vec<u8>,
    output: Receiver<Vec<u8>>,
    keys: Box<dyn Write + Send>,
    closed: bool,
    /// Kept open while the program runs.
    _master: Box<dyn portable_pty::MasterPty + Send>,
}

impl Tty {
    /// Reads what has come, waiting at most `wait`.
    fn pump(&mut self, wait: Duration) {
        if self.closed {
            std::thread::sleep(wait.min(Duration::from_millis(50)));
            return;
        }
        match self.output.recv_timeout(wait) {
            Ok(bytes) => {
                self.screen.process(&bytes);
                self.raw.extend_from_slice(&bytes);
                while let Ok(more) = self.output.try_recv() {
                    self.screen.process(&more);
                    self.raw.extend_from_slice(&more);
                }
            }
            Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {}
            Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => self.closed = true,
        }
    }

    /// Reads until nothing more comes for a moment: the screen is drawn whole.
    fn settle(&mut self) {
        let start = Instant::now();
        let mut seen = self.raw.len();
        while start.elapsed() < Duration::from_secs(10) {
            self.pump(Duration::from_millis(150));
            if self.raw.len() == seen {
                return;
            }
            seen = self.raw.len();
        }
    }

    fn contents(&self) -> String {
        self.screen.screen().contents()
    }

    /// Waits until the screen contains `text`; fails with the screen after 30 s.
    fn wait_for(&mut self, text: &str) {
        let start = Instant::now();
        while !self.contents().contains(text) {
            assert!(
                start.elapsed() < Duration::from_secs(30) && !self.closed,
                "waited for `{text}`; the screen:\n{}\nall output: {}",
                self.contents(),
                String::from_utf8_lossy(&self.raw)
            );
            self.pump(Duration::from_millis(100));
        }
    }

    fn send(&mut self, keys: &str) {
        self.keys.write_all(keys.as_bytes()).unwrap();
        self.keys.flush().unwrap();
    }

    /// Sends `key`; true when the screen changed within a second and a half.
    fn moves(&mut self, key: &str) -> bool {
        let before = self.contents();
        self.send(key);
        let start = Instant::now();
        while start.elapsed() < Duration::from_millis(1500) {
            self.pump(Duration::from_millis(50));
            if self.contents() != before {
                self.settle();
                return true;
            }
        }
        false
    }

    /// Moves the list's cursor (`> `) to the line starting with `item`.
    fn choose(&mut self, item: &str) {
        let marked = format!("> {item}");
        for key in [DOWN, UP] {
            for _ in 0..64 {
                if self.contents().contains(&marked) {
                    return;
                }
                if !self.moves(key) {
                    break;
                }
            }
        }
        assert!(
            self.contents().contains(&marked),
            "cannot move to `{item}`:\n{}",
            self.contents()
        );
    }

    /// Waits for step `n` of 14.
    fn step(&mut self, n: usize, name: &str) {
        self.wait_for(&format!("step {n} of 14: {name}"));
        self.settle();
    }
}

/// The first MiB of `disk` is still all zeros.
fn untouched(disk: &LoopDisk) -> bool {
    let mut buf = vec![0u8; 1024 * 1024];
    let mut f = std::fs::File::open(&disk.device).unwrap();
    f.read_exact(&mut buf).unwrap();
    buf.iter().all(|b| *b == 0)
}

/// A sparse 9 GiB loop disk, or why there is none.
fn loop_disk() -> Result<LoopDisk, String> {
    let probe = std::process::Command::new("losetup")
        .arg("--find")
        .output()
        .map_err(|e| format!("cannot run losetup: {e}"))?;
    if !probe.status.success() {
        return Err(format!(
            "no free loop device: {}",
            String::from_utf8_lossy(&probe.stderr).trim()
        ));
    }
    std::panic::catch_unwind(|| LoopDisk::new(9))
        .map_err(|_| "losetup could not attach a loop device".to_string())
}

/// `koompi-install ARGS` on a new 80x24 pseudo-terminal.
fn spawn(args: &[&str]) -> (Tty, Box<dyn portable_pty::Child + Send + Sync>) {
    let pty = native_pty_system()
        .openpty(PtySize {
            rows: 24,
            cols: 80,
            pixel_width: 0,
            pixel_height: 0,
        })
        .unwrap();
    let mut cmd = CommandBuilder::new(env!("CARGO_BIN_EXE_koompi-install"));
    cmd.args(args);
    cmd.env("TERM", "linux");
    let child = pty.slave.spawn_command(cmd).unwrap();
    drop(pty.slave);
    let mut reader = pty.master.try_clone_reader().unwrap();
    let (tx, rx) = channel();
    std::thread::spawn(move || {
        let mut buf = [0u8; 4096];
        loop {
            match reader.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    if tx.send(buf[..n].to_vec()).is_err() {
                        break;
                    }
                }
            }
        }
    });
    let tty = Tty {
        screen: vt100::Parser::new(
            std::num::NonZeroU16::new(24).unwrap(),
            std::num::NonZeroU16::new(80).unwrap(),
            0,
        ),
        raw: Vec::new(),
        output: rx,
        keys: pty.master.take_writer().unwrap(),
        closed: false,
        _master: pty.master,
    };
    (tty, child)
}

/// Waits (30 s at most) for `child` to end, reading what it prints meanwhile and after;
/// true when it succeeded.
fn ended(tty: &mut Tty, child: &mut Box<dyn portable_pty::Child + Send + Sync>) -> bool {
    let start = Instant::now();
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "koompi-install did not end; the screen:\n{}",
            tty.contents()
        );
        tty.pump(Duration::from_millis(100));
    };
    let drain = Instant::now();
    while !tty.closed && drain.elapsed() < Duration::from_secs(5) {
        tty.pump(Duration::from_millis(100));
    }
    status.success()
}

/// What was printed after the installer left the alternate screen.
fn after_the_screens(tty: &Tty) -> String {
    let raw = String::from_utf8_lossy(&tty.raw).into_owned();
    raw.rsplit_once("\x1b[?1049l")
        .map(|(_, a)| a.to_string())
        .unwrap_or_else(|| panic!("the alternate screen was not left: {raw:?}"))
}

#[test]
fn ctrl_c_leaves_at_once_and_puts_the_terminal_back() {
    // Leaving needs no disk, and no root either.
    let (mut tty, mut child) = spawn(&[]);
    tty.step(1, "Welcome");
    tty.send(ENTER);
    tty.step(2, "Language");
    tty.send("\x03");
    assert!(ended(&mut tty, &mut child), "leaving is not a failure");
    let after = after_the_screens(&tty);
    assert!(
        after.starts_with("\x1b[?25h"),
        "the cursor is back: {after:?}"
    );
    assert!(
        after.contains("left the installer; nothing was changed"),
        "{after:?}"
    );
    assert!(!tty.screen.screen().alternate_screen());
}

#[test]
fn every_step_at_the_keyboard_and_the_plan_of_what_was_chosen() {
    const TEST: &str = "every_step_at_the_keyboard_and_the_plan_of_what_was_chosen";
    if !require_root(TEST) {
        return;
    }
    let disk = match loop_disk() {
        Ok(d) => d,
        Err(why) => {
            eprintln!("SKIP {TEST}: {why}");
            return;
        }
    };
    let (mut tty, mut child) = spawn(&["--dry-run", "--json"]);
    tty.step(1, "Welcome");
    tty.wait_for("Ctrl-C quit");
    tty.send(ENTER);
    tty.step(2, "Language");
    tty.choose("km_KH.UTF-8");
    tty.send(ENTER);
    tty.step(3, "Keyboard");
    tty.choose("kh ");
    tty.send(ENTER);
    tty.step(4, "Timezone");
    tty.send(ENTER);
    tty.step(5, "Disk");
    tty.choose(&format!("{}, 9 GiB", disk.device));
    tty.send(ENTER);
    tty.step(6, "Encryption");
    tty.send(ENTER);
    for (n, name) in [
        (7, "Partitions"),
        (8, "Subvolumes"),
        (9, "Base system"),
        (10, "Bootloader"),
    ] {
        tty.step(n, name);
        tty.send(ENTER);
    }
    tty.step(11, "User");
    tty.send("student\rStudent One\rpw-1234\rpw-1234\r\r");
    tty.step(12, "Network");
    tty.send(&BACKSPACE.repeat(6));
    tty.send("Lab 7\r");
    tty.wait_for("may hold only letters a-z");
    tty.send(&BACKSPACE.repeat(5));
    tty.send("lab-07\r");
    tty.step(13, "Factory snapshot");
    tty.send(ENTER);
    tty.step(14, "Summary");
    tty.wait_for("type its size (9 GiB)");
    tty.wait_for("User student (Student One) · hostname lab-07");
    // A wrong answer is refused and the screen stays.
    tty.send("8 GiB\r");
    tty.wait_for("to confirm, type 9 GiB");
    assert!(untouched(&disk));
    tty.send(&BACKSPACE.repeat(5));
    tty.send("9 GiB\r");

    let ok = ended(&mut tty, &mut child);
    let after = after_the_screens(&tty);
    assert!(ok, "koompi-install failed: {after}");
    let json = &after[after.find('{').expect("a plan")..];
    let plan: serde_json::Value = serde_json::Deserializer::from_str(json)
        .into_iter()
        .next()
        .expect("a JSON plan")
        .expect("JSON");
    assert_eq!(plan["disk"], disk.device.as_str());
    assert_eq!(plan["hostname"], "lab-07");
    assert_eq!(plan["user"], "student");
    let text = plan.to_string();
    assert!(text.contains("LANG=km_KH.UTF-8"), "{text}");
    assert!(text.contains("Student One"), "{text}");
    assert!(!text.contains("pw-1234"), "a secret in the plan");
    assert!(!after.contains("pw-1234"), "a secret printed");
    assert!(untouched(&disk), "--dry-run wrote to the disk");
}
