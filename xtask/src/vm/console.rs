//! The serial console driver: talks to the guest's ttyS0 through a unix socket that
//! QEMU connects to.
//!
//! The console listens and each QEMU process connects as a client: a scenario's machine
//! runs one QEMU process per boot (a reset ends the process, see [`super::qemu::Qemu`]),
//! and all of them print into one buffer and one log, as one machine would.
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
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
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

/// How often the reader thread looks for the next QEMU process's connection.
const ACCEPT_POLL: Duration = Duration::from_millis(20);

#[derive(Debug)]
struct State {
    buf: Vec<u8>,
    /// Why the reader stopped (a read error).
    closed: Option<String>,
    /// The boot phase, from everything received (with its arrival time).
    detector: Detector,
    /// The end offset in `buf` of each chunk received and when it arrived (since
    /// connecting), for the boot phase times.
    arrivals: Vec<(usize, Duration)>,
}

/// Why QEMU ended for good, once it has (set by [`super::qemu::Qemu`]'s supervisor).
pub type Ended = Arc<Mutex<Option<String>>>;

/// The connection of the QEMU process running now, shared by the reader thread (which
/// accepts it) and the writer.
#[derive(Debug, Default)]
struct Link {
    current: Mutex<Option<UnixStream>>,
    stop: AtomicBool,
}

/// The serial console of one machine, across the QEMU processes that run its boots.
#[derive(Debug)]
pub struct Console {
    state: Arc<Mutex<State>>,
    link: Arc<Link>,
    qemu_ended: Option<Ended>,
    cursor: usize,
    next_id: u32,
    reader: Option<JoinHandle<()>>,
    started: Instant,
    /// The shell prompt [`Console::run`] consumes after each command ([`PROMPT`] unless
    /// [`Console::set_prompt`] changed it).
    prompt: String,
}

/// Locks `m`, also after a thread panicked holding it (the data is still usable here).
pub(super) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl Console {
    /// Listens on `socket` for QEMU's serial port (QEMU connects as a client, once per
    /// QEMU process) and logs everything the guest prints to `log`. Output of successive
    /// QEMU processes (one per boot, see [`super::qemu::Qemu`]) goes into one buffer, so
    /// the console reads as one machine's.
    pub fn listen(socket: &Path, log: &Path) -> Result<Console> {
        Console::listen_with(socket, log, Detector::new())
    }

    /// [`Console::listen`] with the given stall detector.
    fn listen_with(socket: &Path, log: &Path, detector: Detector) -> Result<Console> {
        let listener = UnixListener::bind(socket)
            .with_context(|| format!("cannot listen on {}", socket.display()))?;
        listener
            .set_nonblocking(true)
            .context("cannot make the serial socket non-blocking")?;
        let log_file =
            File::create(log).with_context(|| format!("cannot create {}", log.display()))?;
        let state = Arc::new(Mutex::new(State {
            buf: Vec::new(),
            closed: None,
            detector,
            arrivals: Vec::new(),
        }));
        let link = Arc::new(Link::default());
        let started = Instant::now();
        let handle = {
            let state = Arc::clone(&state);
            let link = Arc::clone(&link);
            std::thread::Builder::new()
                .name("serial-console".into())
                .spawn(move || read_guests(&listener, log_file, &state, &link, started))
                .context("cannot start the serial console reader thread")?
        };
        Ok(Console {
            state,
            link,
            qemu_ended: None,
            cursor: 0,
            next_id: 0,
            reader: Some(handle),
            started,
            prompt: PROMPT.to_string(),
        })
    }

    /// Makes every wait fail once QEMU has ended for good (not for a reset), with the
    /// reason `ended` holds then.
    pub fn watch(&mut self, ended: Ended) {
        self.qemu_ended = Some(ended);
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
                if let Some(reason) = self.qemu_ended.as_ref().and_then(|e| lock(e).clone()) {
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
        let mut current = lock(&self.link.current);
        let Some(writer) = current.as_mut() else {
            bail!("cannot write to the serial console: no QEMU is connected to it");
        };
        writer
            .write_all(text.as_bytes())
            .and_then(|()| writer.flush())
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
        self.link.stop.store(true, Ordering::SeqCst);
        if let Some(stream) = lock(&self.link.current).as_ref() {
            let _ = stream.shutdown(Shutdown::Both);
        }
        if let Some(h) = self.reader.take() {
            let _ = h.join();
        }
    }
}

/// The reader thread: accepts each QEMU process's connection in turn and reads it to its
/// end, into the buffer, the log and the stall detector, until the console is dropped.
fn read_guests(
    listener: &UnixListener,
    mut log: File,
    state: &Mutex<State>,
    link: &Link,
    started: Instant,
) {
    let mut connections = 0u32;
    while !link.stop.load(Ordering::SeqCst) {
        let stream = match listener.accept() {
            Ok((stream, _)) => stream,
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                std::thread::sleep(ACCEPT_POLL);
                continue;
            }
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => {
                lock(state).closed = Some(format!("the serial socket failed: {e}"));
                return;
            }
        };
        let reader = stream
            .set_nonblocking(false)
            .and_then(|()| stream.try_clone());
        let mut reader = match reader {
            Ok(r) => r,
            Err(e) => {
                lock(state).closed = Some(format!("cannot use the serial connection: {e}"));
                return;
            }
        };
        connections += 1;
        if connections > 1 {
            // Only in the log, for whoever reads it: the buffer stays the guest's own.
            let _ = write!(
                log,
                "\r\n[xtask: the guest reset the machine; QEMU started again ({connections})]\r\n"
            );
            lock(state).detector.restarted(started.elapsed());
        }
        {
            let mut current = lock(&link.current);
            if link.stop.load(Ordering::SeqCst) {
                // Dropped while this connection was being accepted.
                let _ = stream.shutdown(Shutdown::Both);
                return;
            }
            *current = Some(stream);
        }
        let mut chunk = [0u8; 16384];
        loop {
            match reader.read(&mut chunk) {
                Ok(0) => break,
                Ok(n) => {
                    let _ = log.write_all(&chunk[..n]);
                    let mut st = lock(state);
                    st.buf.extend_from_slice(&chunk[..n]);
                    let now = started.elapsed();
                    let end = st.buf.len();
                    st.arrivals.push((end, now));
                    st.detector.feed(&chunk[..n], now);
                }
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => {
                    lock(state).closed = Some(format!("reading the serial console failed: {e}"));
                    return;
                }
            }
        }
        *lock(&link.current) = None;
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

    /// A console and the test's connection to it, which stands in for QEMU's.
    fn guest(allowance: Duration) -> (Console, UnixStream, tempfile::TempDir) {
        let dir = tempfile::tempdir().expect("tempdir");
        let sock = dir.path().join("console.sock");
        let console = Console::listen_with(
            &sock,
            &dir.path().join("console.log"),
            Detector::with_allowance(allowance),
        )
        .expect("listen");
        let guest = UnixStream::connect(&sock).expect("connect");
        (console, guest, dir)
    }

    #[test]
    fn the_next_qemu_process_continues_the_same_console() {
        let (mut c, mut first, dir) = guest(Duration::from_secs(60));
        first
            .write_all(b"SeaBIOS (version 1.16)\r\nLinux version 6.1\r\nkoompi-vm# ")
            .expect("write");
        c.wait_for(PROMPT, Duration::from_secs(5)).expect("prompt");
        first
            .write_all(b"reboot: Restarting system\r\n")
            .expect("write");
        drop(first);
        let mut second = UnixStream::connect(dir.path().join("console.sock")).expect("again");
        second
            .write_all(b"SeaBIOS (version 1.16)\r\nLinux version 6.1\r\nkoompi-vm# ")
            .expect("write");
        c.wait_for(PROMPT, Duration::from_secs(5))
            .expect("second prompt");
        assert_eq!(c.boots_since(0), 2);
        // Typing goes to the process running now.
        c.send("ls\n").expect("send");
        let mut typed = [0u8; 3];
        second.read_exact(&mut typed).expect("read");
        assert_eq!(&typed, b"ls\n");
        let log = std::fs::read_to_string(dir.path().join("console.log")).expect("log");
        assert!(log.contains("QEMU started again (2)"), "{log}");
        assert_eq!(log.matches("Linux version").count(), 2);
    }

    #[test]
    fn a_wait_ends_when_qemu_has_ended_for_good() {
        let (mut c, _guest, _dir) = guest(Duration::from_secs(60));
        let ended: Ended = Arc::new(Mutex::new(None));
        c.watch(Arc::clone(&ended));
        *lock(&ended) = Some("`qemu` exited (exit status: 1): boom".into());
        let e = c
            .wait_for(PROMPT, Duration::from_secs(30))
            .expect_err("QEMU ended");
        assert_eq!(
            format!("{e:#}"),
            "`qemu` exited (exit status: 1): boom while waiting for `koompi-vm#`"
        );
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
