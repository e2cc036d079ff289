//! A program on a pseudo-terminal, as a person meets it: keys in, the screen as a terminal
//! shows it (vt100) out. Shared by the TUI tests.
#![allow(clippy::unwrap_used, dead_code)]

use std::io::{Read, Write};
use std::sync::mpsc::{channel, Receiver};
use std::time::{Duration, Instant};

use portable_pty::{native_pty_system, CommandBuilder, PtySize};

pub const ENTER: &str = "\r";
pub const DOWN: &str = "\x1b[B";
pub const UP: &str = "\x1b[A";
pub const BACKSPACE: &str = "\x7f";

/// The program on the pseudo-terminal: what it printed, and the screen that makes.
pub struct Tty {
    pub screen: vt100::Parser,
    pub raw: Vec<u8>,
    output: Receiver<Vec<u8>>,
    keys: Box<dyn Write + Send>,
    pub closed: bool,
    /// Kept open while the program runs.
    _master: Box<dyn portable_pty::MasterPty + Send>,
}

impl Tty {
    /// Reads what has come, waiting at most `wait`.
    pub fn pump(&mut self, wait: Duration) {
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
    pub fn settle(&mut self) {
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

    pub fn contents(&self) -> String {
        self.screen.screen().contents()
    }

    /// Waits until the screen contains `text`; fails with the screen after 30 s.
    pub fn wait_for(&mut self, text: &str) {
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

    pub fn send(&mut self, keys: &str) {
        self.keys.write_all(keys.as_bytes()).unwrap();
        self.keys.flush().unwrap();
    }

    /// Sends `key`; true when the screen changed within a second and a half.
    pub fn moves(&mut self, key: &str) -> bool {
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
    pub fn choose(&mut self, item: &str) {
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
}

/// `program ARGS` (with `envs`) on a new 80x24 pseudo-terminal.
pub fn spawn(
    program: &str,
    args: &[&str],
    envs: &[(&str, &str)],
) -> (Tty, Box<dyn portable_pty::Child + Send + Sync>) {
    let pty = native_pty_system()
        .openpty(PtySize {
            rows: 24,
            cols: 80,
            pixel_width: 0,
            pixel_height: 0,
        })
        .unwrap();
    let mut cmd = CommandBuilder::new(program);
    cmd.args(args);
    for (k, v) in envs {
        cmd.env(k, v);
    }
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
pub fn ended(tty: &mut Tty, child: &mut Box<dyn portable_pty::Child + Send + Sync>) -> bool {
    let start = Instant::now();
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "the program did not end; the screen:\n{}",
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

/// What was printed after the program left the alternate screen.
pub fn after_the_screens(tty: &Tty) -> String {
    let raw = String::from_utf8_lossy(&tty.raw).into_owned();
    raw.rsplit_once("\x1b[?1049l")
        .map(|(_, a)| a.to_string())
        .unwrap_or_else(|| panic!("the alternate screen was not left: {raw:?}"))
}
