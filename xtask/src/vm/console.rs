//! The serial console driver: talks to the guest's ttyS0 through QEMU's unix socket.
//!
//! A reader thread reads continuously into a buffer and into the log file, so nothing is
//! lost while the driver is not waiting. The driver keeps a cursor into the buffer:
//! [`Console::wait_for`] finds a pattern after the cursor and moves past it. Boots are
//! counted by the kernel's `Linux version` banner. [`Console::run`] sends
//! `CMD; echo __KVM_<n>_$?__` and waits for the marker with a number, so the exit code and
//! output come back exactly; the echo of the command line is stripped (after
//! [`Console::prepare_shell`] the tty does not echo at all).
//!
//! The reader thread also feeds everything to a [`Detector`], which follows the boot phase
//! (reset, firmware, kernel); every wait ends with a [`super::stall::Stall`] error as soon
//! as the guest has been silent between a reset and its kernel for longer than
//! [`super::stall::PHASE_ALLOWANCE`].

use std::fs::File;
use std::io::{Read, Write};
use std::net::Shutdown;
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};

use super::stall::Detector;

/// The root prompt set in the image's /root/.bashrc.
pub const PROMPT: &str = "koompi-vm# ";

/// The kernel's first line at every boot.
pub const BOOT_BANNER: &str = "Linux version ";

/// How long [`Console::run`] waits for the prompt after a command's marker.
const PROMPT_AFTER_MARKER: Duration = Duration::from_secs(5);

/// How often a waiting driver looks at the buffer again.
const POLL: Duration = Duration::from_millis(100);

#[derive(Debug)]
struct State {
    buf: Vec<u8>,
    /// Why the reader stopped (QEMU closed the socket, or a read error).
    closed: Option<String>,
    /// The boot phase, from everything received (with its arrival time).
    detector: Detector,
    /// The end offset in `buf` of each chunk received and when it arrived (since
    /// connecting), for the boot phase times.
    arrivals: Vec<(usize, Duration)>,
}

/// A connected serial console.
#[derive(Debug)]
pub struct Console {
    state: Arc<Mutex<State>>,
    writer: UnixStream,
    cursor: usize,
    next_id: u32,
    reader: Option<JoinHandle<()>>,
    started: Instant,
    /// The shell prompt [`Console::run`] consumes after each command ([`PROMPT`] unless
    /// [`Console::set_prompt`] changed it).
    prompt: String,
}

fn lock(state: &Mutex<State>) -> MutexGuard<'_, State> {
    state
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl Console {
    /// Connects to QEMU's socket (retrying until `timeout` while QEMU creates it) and
    /// starts logging everything the guest prints to `log`.
    pub fn connect(socket: &Path, log: &Path, timeout: Duration) -> Result<Console> {
        Console::connect_with(socket, log, timeout, Detector::new())
    }

    /// [`Console::connect`] with the given stall detector.
    fn connect_with(
        socket: &Path,
        log: &Path,
        timeout: Duration,
        detector: Detector,
    ) -> Result<Console> {
        let start = Instant::now();
        let stream = loop {
            match UnixStream::connect(socket) {
                Ok(s) => break s,
                Err(e) if start.elapsed() >= timeout => {
                    return Err(e).with_context(|| {
                        format!(
                            "cannot connect to QEMU's serial socket {}",
                            socket.display()
                        )
                    });
                }
                Err(_) => std::thread::sleep(Duration::from_millis(50)),
            }
        };
        let mut log_file =
            File::create(log).with_context(|| format!("cannot create {}", log.display()))?;
        let mut reader = stream
            .try_clone()
            .context("cannot clone the serial socket")?;
        let state = Arc::new(Mutex::new(State {
            buf: Vec::new(),
            closed: None,
            detector,
            arrivals: Vec::new(),
        }));
        let shared = Arc::clone(&state);
        let started = Instant::now();
        let handle = std::thread::Builder::new()
            .name("serial-console".into())
            .spawn(move || {
                let mut chunk = [0u8; 16384];
                loop {
                    match reader.read(&mut chunk) {
                        Ok(0) => {
                            lock(&shared).closed =
                                Some("QEMU closed the serial console (it exited)".into());
                            break;
                        }
                        Ok(n) => {
                            let _ = log_file.write_all(&chunk[..n]);
                            let mut st = lock(&shared);
                            st.buf.extend_from_slice(&chunk[..n]);
                            let now = started.elapsed();
                            let end = st.buf.len();
                            st.arrivals.push((end, now));
                            st.detector.feed(&chunk[..n], now);
                        }
                        Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                        Err(e) => {
                            lock(&shared).closed =
                                Some(format!("reading the serial console failed: {e}"));
                            break;
                        }
                    }
                }
            })
            .context("cannot start the serial console reader thread")?;
        Ok(Console {
            state,
            writer: stream,
            cursor: 0,
            next_id: 0,
            reader: Some(handle),
            started,
            prompt: PROMPT.to_string(),
        })
    }

    /// When the byte at `pos` of the console output arrived, since connecting.
    pub fn arrival_of(&self, pos: usize) -> Option<Duration> {
        let st = lock(&self.state);
        let i = st.arrivals.partition_point(|(end, _)| *end <= pos);
        st.arrivals.get(i).map(|(_, t)| *t)
    }

    /// The shell prompt of later commands, for a shell other than the image's root shell.
    pub fn set_prompt(&mut self, prompt: &str) {
        self.prompt = prompt.to_string();
    }

    /// Waits until the guest has printed nothing for `quiet` (boot messages are over);
    /// fails if that does not happen within `timeout`. Moves the cursor to the end.
    pub fn wait_quiet(&mut self, quiet: Duration, timeout: Duration) -> Result<()> {
        let mut seen = (usize::MAX, Instant::now());
        self.wait_until(
            timeout,
            &format!("{} s without console output", quiet.as_secs()),
            |buf| {
                if buf.len() != seen.0 {
                    seen = (buf.len(), Instant::now());
                    return None;
                }
                (seen.1.elapsed() >= quiet).then_some(((), buf.len()))
            },
        )
    }

    /// Seconds since the console was connected (about when QEMU started).
    pub fn elapsed_secs(&self) -> u64 {
        self.started.elapsed().as_secs()
    }

    /// Bytes received so far (a position in the console output).
    pub fn position(&self) -> usize {
        lock(&self.state).buf.len()
    }

    /// Moves the cursor: later waits only look at output from `pos` on.
    pub fn seek(&mut self, pos: usize) {
        self.cursor = pos;
    }

    /// Calls `check` on the whole buffer until it returns `Some((value, new cursor))`.
    /// Fails at the timeout, when QEMU closed the console, when interrupted, and with a
    /// [`super::stall::Stall`] when the guest stalled between a reset and its kernel.
    pub fn wait_until<T>(
        &mut self,
        timeout: Duration,
        what: &str,
        mut check: impl FnMut(&[u8]) -> Option<(T, usize)>,
    ) -> Result<T> {
        let deadline = Instant::now() + timeout;
        loop {
            {
                let st = lock(&self.state);
                if let Some((value, end)) = check(&st.buf) {
                    drop(st);
                    self.cursor = end;
                    return Ok(value);
                }
                if let Some(reason) = &st.closed {
                    bail!("{reason} while waiting for {what}");
                }
                if let Some(stall) = st.detector.check(self.started.elapsed()) {
                    return Err(anyhow::Error::new(stall))
                        .with_context(|| format!("while waiting for {what}"));
                }
            }
            super::interrupt::check()?;
            if Instant::now() >= deadline {
                bail!("timed out after {} s waiting for {what}", timeout.as_secs());
            }
            std::thread::sleep(POLL);
        }
    }

    /// Waits for `pattern` after the cursor and moves the cursor past it.
    pub fn wait_for(&mut self, pattern: &str, timeout: Duration) -> Result<()> {
        let from = self.cursor;
        self.wait_until(timeout, &format!("`{}`", pattern.trim()), |buf| {
            let pos = find(buf.get(from..)?, pattern.as_bytes())?;
            Some(((), from + pos + pattern.len()))
        })
    }

    /// How many boots began at or after `pos` (kernel banners).
    pub fn boots_since(&self, pos: usize) -> usize {
        let st = lock(&self.state);
        st.buf
            .get(pos..)
            .map_or(0, |b| find_all(b, BOOT_BANNER.as_bytes()).len())
    }

    /// Calls `f` with everything received so far.
    pub fn inspect<T>(&self, f: impl FnOnce(&[u8]) -> T) -> T {
        f(&lock(&self.state).buf)
    }

    /// Types `text` on the console.
    pub fn send(&mut self, text: &str) -> Result<()> {
        self.writer
            .write_all(text.as_bytes())
            .and_then(|()| self.writer.flush())
            .context("cannot write to the serial console")
    }

    /// Runs `cmd` in the guest's shell; returns its exit code and output (stdout and
    /// stderr as the console shows them, without the echo of the command).
    pub fn run(&mut self, cmd: &str, timeout: Duration) -> Result<(i32, String)> {
        let id = self.next_id;
        self.next_id += 1;
        let from = self.position();
        self.cursor = from;
        self.send(&format!("{cmd}; echo __KVM_{id}_$?__\n"))?;
        let marker = format!("__KVM_{id}_");
        let (code, out_end) = self.wait_until(timeout, &format!("`{cmd}` to finish"), |buf| {
            let (code, start, end) = find_marker(buf, from, marker.as_bytes())?;
            Some(((code, start), end))
        })?;
        let raw = {
            let st = lock(&self.state);
            String::from_utf8_lossy(&st.buf[from..out_end]).into_owned()
        };
        // Consume the prompt bash prints after the marker, so that it cannot arrive after
        // the next command was sent and stand in front of that command's output.
        let after = self.cursor;
        let prompt = self.prompt.clone();
        let _ = self.wait_until(PROMPT_AFTER_MARKER, "the prompt", |buf| {
            let p = find(buf.get(after..)?, prompt.as_bytes())?;
            Some(((), after + p + prompt.len()))
        });
        Ok((
            code,
            clean_output(&raw, &format!("__KVM_{id}_$?__"), &self.prompt),
        ))
    }

    /// [`Console::run`], failing unless the command exits 0.
    pub fn run_ok(&mut self, cmd: &str, timeout: Duration) -> Result<String> {
        let (code, out) = self.run(cmd, timeout)?;
        if code != 0 {
            bail!("guest command `{cmd}` exited {code}: {}", out.trim());
        }
        Ok(out)
    }

    /// Makes the shell easy to drive: no echo, no line editing, wide lines, no pager or
    /// colours. Call once at each new prompt.
    pub fn prepare_shell(&mut self) -> Result<()> {
        let t = Duration::from_secs(60);
        self.run("stty -echo cols 250 rows 50; set +o emacs; set +o vi", t)?;
        self.run_ok(
            "export TERM=dumb PAGER=cat SYSTEMD_PAGER= SYSTEMD_COLORS=0 LANG=C.UTF-8",
            t,
        )?;
        Ok(())
    }
}

impl Drop for Console {
    fn drop(&mut self) {
        let _ = self.writer.shutdown(Shutdown::Both);
        if let Some(h) = self.reader.take() {
            let _ = h.join();
        }
    }
}

/// Finds `__KVM_<n>_<digits>__` from `from` on: (exit code, start, end) of the marker.
fn find_marker(buf: &[u8], from: usize, marker: &[u8]) -> Option<(i32, usize, usize)> {
    let mut at = from;
    while let Some(p) = find(buf.get(at..)?, marker) {
        let start = at + p;
        let rest = &buf[start + marker.len()..];
        let digits = rest.iter().take_while(|b| b.is_ascii_digit()).count();
        if digits > 0 && rest[digits..].starts_with(b"__") {
            let code = std::str::from_utf8(&rest[..digits]).ok()?.parse().ok()?;
            return Some((code, start, start + marker.len() + digits + 2));
        }
        at = start + 1;
    }
    None
}

/// Removes carriage returns, terminal escape sequences and the echoed command line.
fn clean_output(raw: &str, echo_marker: &str, prompt: &str) -> String {
    let text = strip_escapes(&raw.replace('\r', ""));
    let mut body = match text.find(echo_marker) {
        Some(p) => text[p..].split_once('\n').map_or("", |(_, rest)| rest),
        None => &text,
    };
    // A prompt that came late (after the command was sent) stands in front of the output.
    while let Some(rest) = body.strip_prefix(prompt) {
        body = rest;
    }
    body.trim_end_matches('\n').to_string()
}

/// Removes ANSI CSI and OSC sequences and other ESC-prefixed pairs.
pub fn strip_escapes(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        if c != '\u{1b}' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('[') => {
                for c in chars.by_ref() {
                    if ('@'..='~').contains(&c) {
                        break;
                    }
                }
            }
            Some(']') => {
                while let Some(c) = chars.next() {
                    if c == '\u{7}' {
                        break;
                    }
                    if c == '\u{1b}' && chars.peek() == Some(&'\\') {
                        chars.next();
                        break;
                    }
                }
            }
            _ => {}
        }
    }
    out
}

/// Position of the first `needle` in `hay`.
pub fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    if needle.is_empty() || hay.len() < needle.len() {
        return None;
    }
    hay.windows(needle.len()).position(|w| w == needle)
}

/// Positions of every `needle` in `hay`.
pub fn find_all(hay: &[u8], needle: &[u8]) -> Vec<usize> {
    let mut out = Vec::new();
    let mut at = 0;
    while let Some(p) = hay.get(at..).and_then(|h| find(h, needle)) {
        out.push(at + p);
        at += p + needle.len();
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn marker_with_code_ends_the_output() {
        let buf = b"ls; echo __KVM_3_$?__\r\nfile\r\n__KVM_3_2__\r\nkoompi-vm# ";
        let (code, start, end) = find_marker(buf, 0, b"__KVM_3_").expect("marker");
        assert_eq!(code, 2);
        assert_eq!(&buf[end..end + 2], b"\r\n");
        let raw = String::from_utf8_lossy(&buf[..start]);
        assert_eq!(clean_output(&raw, "__KVM_3_$?__", PROMPT), "file");
    }

    #[test]
    fn a_late_prompt_is_not_output() {
        assert_eq!(
            clean_output("koompi-vm# good\r\n", "__KVM_5_$?__", PROMPT),
            "good"
        );
    }

    #[test]
    fn incomplete_marker_is_not_found() {
        assert!(find_marker(b"x\n__KVM_1_1", 0, b"__KVM_1_").is_none());
        assert!(find_marker(b"echo __KVM_1_$?__\n", 0, b"__KVM_1_").is_none());
    }

    #[test]
    fn escapes_are_stripped() {
        assert_eq!(
            strip_escapes("a\u{1b}[1;32mb\u{1b}[0m\u{1b}]0;t\u{7}c"),
            "abc"
        );
    }

    /// A console connected to a socket the test writes the guest's output to.
    fn guest(allowance: Duration) -> (Console, UnixStream, tempfile::TempDir) {
        let dir = tempfile::tempdir().expect("tempdir");
        let sock = dir.path().join("console.sock");
        let listener = std::os::unix::net::UnixListener::bind(&sock).expect("bind");
        let console = Console::connect_with(
            &sock,
            &dir.path().join("console.log"),
            Duration::from_secs(5),
            Detector::with_allowance(allowance),
        )
        .expect("connect");
        let (guest, _) = listener.accept().expect("accept");
        (console, guest, dir)
    }

    #[test]
    fn a_wait_ends_with_a_stall_when_the_guest_is_silent_after_a_reset() {
        let (mut c, mut guest, _dir) = guest(Duration::from_millis(300));
        guest
            .write_all(b"reboot: Restarting system\r\nBdsDxe: loading Boot0001\r\n")
            .expect("write");
        let started = Instant::now();
        let e = c
            .wait_for(PROMPT, Duration::from_secs(30))
            .expect_err("a stall");
        assert!(started.elapsed() < Duration::from_secs(10));
        let stall = super::super::stall::stall_of(&e).expect("a Stall error");
        assert_eq!(stall.phase, super::super::stall::Phase::Firmware);
        assert_eq!(stall.after, "BdsDxe");
        assert!(format!("{e:#}").contains("while waiting for `koompi-vm#`"));
    }

    #[test]
    fn a_silent_running_system_only_times_out() {
        let (mut c, mut guest, _dir) = guest(Duration::from_millis(100));
        guest
            .write_all(b"SeaBIOS (version 1.16)\r\nLinux version 6.1\r\n")
            .expect("write");
        c.wait_for("Linux version", Duration::from_secs(5))
            .expect("the banner");
        let e = c
            .wait_for(PROMPT, Duration::from_millis(800))
            .expect_err("a timeout");
        assert!(super::super::stall::stall_of(&e).is_none(), "{e:#}");
        assert!(format!("{e:#}").starts_with("timed out"), "{e:#}");
    }

    #[test]
    fn find_all_counts_boots() {
        let b = b"Linux version 6\n...Linux version 6\n";
        assert_eq!(find_all(b, BOOT_BANNER.as_bytes()).len(), 2);
    }
}
