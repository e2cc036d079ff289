//! The command runner.
//!
//! Every external program a KOOMPI tool starts (btrfs, mount, grub-*, pacman, ...) goes
//! through [`Cmd`]. It logs the full command line, puts the program's stderr into the error
//! when it fails, keeps secrets out of logs and errors, and can record instead of run, which
//! is how `--dry-run` and plan previews work.

use std::ffi::{OsStr, OsString};
use std::fmt;
use std::io::Write;
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};

/// How much of a failing program's stderr an error keeps.
const STDERR_KEEP: usize = 4000;

/// Errors from running a program.
#[derive(Debug, thiserror::Error)]
pub enum CmdError {
    /// The program is not installed (not found on PATH, or its file is missing).
    #[error("`{program}` is not installed (needed for `{cmdline}`); install it with pacman -S and try again")]
    Missing { program: String, cmdline: String },
    #[error("cannot run `{cmdline}`: {source}")]
    Spawn {
        cmdline: String,
        #[source]
        source: std::io::Error,
    },
    #[error("`{cmdline}` failed ({status}){}", stderr_suffix(.stderr))]
    Failed {
        cmdline: String,
        status: String,
        /// The exit code, when the program exited (not killed by a signal).
        code: Option<i32>,
        stderr: String,
    },
}

fn stderr_suffix(stderr: &str) -> String {
    let s = stderr.trim();
    if s.is_empty() {
        String::new()
    } else {
        format!(": {s}")
    }
}

/// One argument: plain, or a secret that is passed to the program but never shown.
#[derive(Clone)]
enum Arg {
    Plain(OsString),
    Secret(OsString),
}

/// A program to run, with its arguments and an optional standard input.
#[derive(Clone)]
pub struct Cmd {
    program: OsString,
    args: Vec<Arg>,
    stdin: Option<Vec<u8>>,
    stdin_secret: bool,
    envs: Vec<(OsString, OsString)>,
    stdout_to_stderr: bool,
}

impl fmt::Debug for Cmd {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("Cmd").field(&self.cmdline()).finish()
    }
}

/// What a finished program printed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Output {
    pub stdout: String,
    pub stderr: String,
}

impl Cmd {
    /// A new command for `program`.
    pub fn new(program: impl AsRef<OsStr>) -> Self {
        Cmd {
            program: program.as_ref().to_owned(),
            args: Vec::new(),
            stdin: None,
            stdin_secret: false,
            envs: Vec::new(),
            stdout_to_stderr: false,
        }
    }

    /// Adds one argument.
    pub fn arg(mut self, arg: impl AsRef<OsStr>) -> Self {
        self.args.push(Arg::Plain(arg.as_ref().to_owned()));
        self
    }

    /// Adds several arguments.
    pub fn args<I, S>(mut self, args: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        self.args
            .extend(args.into_iter().map(|a| Arg::Plain(a.as_ref().to_owned())));
        self
    }

    /// Adds an argument that is passed but shown as `***` in logs, errors and recordings.
    /// Prefer [`Cmd::stdin_secret`]: a command line is visible to every user in /proc.
    pub fn secret_arg(mut self, arg: impl AsRef<OsStr>) -> Self {
        self.args.push(Arg::Secret(arg.as_ref().to_owned()));
        self
    }

    /// Sets an environment variable for the program.
    pub fn env(mut self, key: impl AsRef<OsStr>, value: impl AsRef<OsStr>) -> Self {
        self.envs
            .push((key.as_ref().to_owned(), value.as_ref().to_owned()));
        self
    }

    /// For [`Cmd::run_interactive`]: the program's stdout goes to our stderr, so a
    /// `--json` document on our stdout stays clean.
    pub fn stdout_to_stderr(mut self) -> Self {
        self.stdout_to_stderr = true;
        self
    }

    /// Feeds `data` to the program's standard input.
    pub fn stdin(mut self, data: impl Into<Vec<u8>>) -> Self {
        self.stdin = Some(data.into());
        self.stdin_secret = false;
        self
    }

    /// Feeds a secret (a passphrase) on standard input; it never appears in logs.
    pub fn stdin_secret(mut self, data: impl Into<Vec<u8>>) -> Self {
        self.stdin = Some(data.into());
        self.stdin_secret = true;
        self
    }

    /// The command line as shown to people: shell-quoted, secrets as `***`.
    pub fn cmdline(&self) -> String {
        let mut out = quote(&self.program.to_string_lossy());
        for a in &self.args {
            out.push(' ');
            match a {
                Arg::Plain(s) => out.push_str(&quote(&s.to_string_lossy())),
                Arg::Secret(_) => out.push_str("***"),
            }
        }
        if self.stdin.is_some() && self.stdin_secret {
            out.push_str(" <<< ***");
        }
        out
    }

    /// The secret values, to scrub from anything shown.
    fn secrets(&self) -> Vec<String> {
        let mut v: Vec<String> = self
            .args
            .iter()
            .filter_map(|a| match a {
                Arg::Secret(s) => Some(s.to_string_lossy().into_owned()),
                Arg::Plain(_) => None,
            })
            .collect();
        if let (true, Some(data)) = (self.stdin_secret, &self.stdin) {
            let text = String::from_utf8_lossy(data);
            v.extend(text.lines().map(str::to_string));
        }
        v.retain(|s| !s.is_empty());
        v
    }

    fn to_command(&self) -> Command {
        let mut c = Command::new(&self.program);
        for a in &self.args {
            match a {
                Arg::Plain(s) | Arg::Secret(s) => c.arg(s),
            };
        }
        for (k, v) in &self.envs {
            c.env(k, v);
        }
        c.stdin(if self.stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        });
        c.stdout(Stdio::piped());
        c.stderr(Stdio::piped());
        c
    }

    /// Runs the program and waits for it. A non-zero exit is an error that carries the
    /// command line and stderr.
    pub fn run(&self, runner: &Runner) -> Result<Output, CmdError> {
        runner.run(self)
    }

    /// Runs the program and returns its exit code (`None` when a signal killed it) with what
    /// it printed, whatever the code: for programs whose exit code is an answer, such as
    /// `systemctl is-enabled` (1 and `disabled`). Only a failure to start is an error. A
    /// recording runner records it and returns 0 with no output.
    pub fn run_status(&self, runner: &Runner) -> Result<(Option<i32>, Output), CmdError> {
        runner.run_status(self)
    }

    /// Runs the program as [`Cmd::run`] does, calling `tick` with its process id every
    /// `every` while it runs (to report the progress of long work from outside it, e.g.
    /// /proc/PID/io). A recording runner records it and never ticks.
    pub fn run_watched(
        &self,
        runner: &Runner,
        every: std::time::Duration,
        tick: &mut dyn FnMut(u32),
    ) -> Result<Output, CmdError> {
        runner.run_watched(self, Some((every, tick)))
    }

    /// Runs the program attached to this terminal (stdin, stdout and stderr inherited, so
    /// it can ask questions and show progress) and returns its exit code; a program killed
    /// by a signal gives 128 + the signal number, as a shell reports it. Only a failure to
    /// start is an error: the caller decides what a non-zero exit means. A recording
    /// runner records the command line and returns 0.
    pub fn run_interactive(&self, runner: &Runner) -> Result<i32, CmdError> {
        runner.run_interactive(self)
    }
}

/// Quotes one word for display the way a shell would need it.
fn quote(s: &str) -> String {
    let safe = !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_./=:,+@%^".contains(c));
    if safe {
        s.to_string()
    } else {
        format!("'{}'", s.replace('\'', r"'\''"))
    }
}

/// Starts `c` (built from `cmd`) and writes `cmd`'s standard input, if any, to it.
fn spawn_feeding(
    mut c: Command,
    cmd: &Cmd,
    cmdline: &str,
) -> Result<std::process::Child, CmdError> {
    let program = c.get_program().to_string_lossy().into_owned();
    let mut child = c.spawn().map_err(|source| {
        if source.kind() == std::io::ErrorKind::NotFound {
            CmdError::Missing {
                program: program.clone(),
                cmdline: cmdline.to_string(),
            }
        } else {
            CmdError::Spawn {
                cmdline: cmdline.to_string(),
                source,
            }
        }
    })?;
    if let Some(data) = &cmd.stdin {
        if let Some(mut pipe) = child.stdin.take() {
            // A program that exits without reading its input is not our error here; its
            // exit status says what happened.
            let _ = pipe.write_all(data);
        }
    }
    Ok(child)
}

/// Waits for `child` as `wait_with_output` does (its output read on two threads, so a
/// full pipe never stops it), calling `tick` with its pid every `every` meanwhile.
fn wait_ticking(
    mut child: std::process::Child,
    every: std::time::Duration,
    tick: &mut dyn FnMut(u32),
) -> std::io::Result<std::process::Output> {
    use std::io::Read;
    fn drain<R: Read + Send + 'static>(
        pipe: Option<R>,
    ) -> std::thread::JoinHandle<std::io::Result<Vec<u8>>> {
        std::thread::spawn(move || {
            let mut buf = Vec::new();
            if let Some(mut p) = pipe {
                p.read_to_end(&mut buf)?;
            }
            Ok(buf)
        })
    }
    let out = drain(child.stdout.take());
    let err = drain(child.stderr.take());
    let pid = child.id();
    let status = loop {
        if let Some(status) = child.try_wait()? {
            break status;
        }
        tick(pid);
        std::thread::sleep(every);
    };
    let join = |h: std::thread::JoinHandle<std::io::Result<Vec<u8>>>| {
        h.join()
            .unwrap_or_else(|_| Err(std::io::Error::other("a pipe reader panicked")))
    };
    Ok(std::process::Output {
        status,
        stdout: join(out)?,
        stderr: join(err)?,
    })
}

/// Runs commands for real, or records them (dry-run).
#[derive(Debug, Clone, Default)]
pub struct Runner {
    recording: Option<Arc<Mutex<Vec<String>>>>,
}

impl Runner {
    /// A runner that runs programs.
    pub fn real() -> Self {
        Runner { recording: None }
    }

    /// A runner that runs nothing and records each command line instead.
    pub fn recording() -> Self {
        Runner {
            recording: Some(Arc::new(Mutex::new(Vec::new()))),
        }
    }

    /// Whether this runner only records.
    pub fn is_dry_run(&self) -> bool {
        self.recording.is_some()
    }

    /// The command lines recorded so far (empty for a real runner).
    pub fn recorded(&self) -> Vec<String> {
        match &self.recording {
            Some(r) => r.lock().map(|v| v.clone()).unwrap_or_default(),
            None => Vec::new(),
        }
    }

    /// Records `cmdline` when this runner only records; true if it did.
    fn record(&self, cmdline: &str) -> bool {
        let Some(rec) = &self.recording else {
            return false;
        };
        tracing::info!(target: "koompi::cmd", "would run: {cmdline}");
        if let Ok(mut v) = rec.lock() {
            v.push(cmdline.to_string());
        }
        true
    }

    fn run_interactive(&self, cmd: &Cmd) -> Result<i32, CmdError> {
        let cmdline = cmd.cmdline();
        if self.record(&cmdline) {
            return Ok(0);
        }
        tracing::debug!(target: "koompi::cmd", "running: {cmdline}");
        let mut c = cmd.to_command();
        c.stderr(Stdio::inherit());
        if cmd.stdout_to_stderr {
            c.stdout(Stdio::from(std::io::stderr()));
        } else {
            c.stdout(Stdio::inherit());
        }
        if cmd.stdin.is_none() {
            c.stdin(Stdio::inherit());
        }
        let mut child = spawn_feeding(c, cmd, &cmdline)?;
        let status = child.wait().map_err(|source| CmdError::Spawn {
            cmdline: cmdline.clone(),
            source,
        })?;
        let code = match status.code() {
            Some(code) => code,
            None => {
                use std::os::unix::process::ExitStatusExt;
                128 + status.signal().unwrap_or(0)
            }
        };
        tracing::debug!(target: "koompi::cmd", "exited {code}: {cmdline}");
        Ok(code)
    }

    fn run(&self, cmd: &Cmd) -> Result<Output, CmdError> {
        self.run_watched(cmd, None)
    }

    fn run_status(&self, cmd: &Cmd) -> Result<(Option<i32>, Output), CmdError> {
        let cmdline = cmd.cmdline();
        if self.record(&cmdline) {
            return Ok((Some(0), Output::default()));
        }
        tracing::debug!(target: "koompi::cmd", "running: {cmdline}");
        let child = spawn_feeding(cmd.to_command(), cmd, &cmdline)?;
        let out = child.wait_with_output().map_err(|source| CmdError::Spawn {
            cmdline: cmdline.clone(),
            source,
        })?;
        let mut stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        for secret in cmd.secrets() {
            stderr = stderr.replace(secret.as_str(), "***");
        }
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        Ok((out.status.code(), Output { stdout, stderr }))
    }

    fn run_watched(
        &self,
        cmd: &Cmd,
        watch: Option<(std::time::Duration, &mut dyn FnMut(u32))>,
    ) -> Result<Output, CmdError> {
        let cmdline = cmd.cmdline();
        if self.record(&cmdline) {
            return Ok(Output::default());
        }
        tracing::debug!(target: "koompi::cmd", "running: {cmdline}");
        let child = spawn_feeding(cmd.to_command(), cmd, &cmdline)?;
        let spawn_err = |source| CmdError::Spawn {
            cmdline: cmdline.clone(),
            source,
        };
        let out = match watch {
            None => child.wait_with_output().map_err(spawn_err)?,
            Some((every, tick)) => wait_ticking(child, every, tick).map_err(spawn_err)?,
        };
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        let mut stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        if out.status.success() {
            return Ok(Output { stdout, stderr });
        }
        for secret in cmd.secrets() {
            stderr = stderr.replace(secret.as_str(), "***");
        }
        if stderr.len() > STDERR_KEEP {
            let mut cut = stderr.len() - STDERR_KEEP;
            while !stderr.is_char_boundary(cut) {
                cut += 1;
            }
            stderr = format!("...{}", &stderr[cut..]);
        }
        tracing::debug!(target: "koompi::cmd", "failed: {cmdline}: {}", out.status);
        Err(CmdError::Failed {
            cmdline,
            status: out.status.to_string(),
            code: out.status.code(),
            stderr,
        })
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn a_watched_run_ticks_with_its_pid_and_keeps_its_output() {
        let mut pids = Vec::new();
        let out = Cmd::new("sh")
            .args(["-c", "echo $$; sleep 0.3; echo done >&2"])
            .run_watched(
                &Runner::real(),
                std::time::Duration::from_millis(50),
                &mut |pid| pids.push(pid),
            )
            .unwrap();
        assert!(pids.len() >= 2, "{pids:?}");
        assert_eq!(out.stdout.trim(), pids[0].to_string());
        assert_eq!(out.stderr.trim(), "done");
        let e = Cmd::new("sh")
            .args(["-c", "echo oops >&2; exit 4"])
            .run_watched(
                &Runner::real(),
                std::time::Duration::from_millis(50),
                &mut |_| {},
            )
            .unwrap_err();
        assert!(e.to_string().contains("oops"), "{e}");
        // A recording runner never ticks.
        let mut ticked = false;
        Cmd::new("sleep")
            .arg("1")
            .run_watched(
                &Runner::recording(),
                std::time::Duration::from_millis(1),
                &mut |_| ticked = true,
            )
            .unwrap();
        assert!(!ticked);
    }

    #[test]
    fn interactive_keeps_the_exit_code() {
        let r = Runner::real();
        assert_eq!(
            Cmd::new("sh")
                .args(["-c", "exit 3"])
                .run_interactive(&r)
                .unwrap(),
            3
        );
        assert_eq!(Cmd::new("true").run_interactive(&r).unwrap(), 0);
        let killed = Cmd::new("sh").args(["-c", "kill -TERM $$"]);
        assert_eq!(killed.run_interactive(&r).unwrap(), 128 + 15);
        assert!(matches!(
            Cmd::new("/nonexistent/prog").run_interactive(&r),
            Err(CmdError::Missing { .. })
        ));
        let rec = Runner::recording();
        assert_eq!(Cmd::new("false").run_interactive(&rec).unwrap(), 0);
        assert_eq!(rec.recorded(), vec!["false".to_string()]);
    }

    #[test]
    fn runs_and_captures_stdout() {
        let out = Cmd::new("sh")
            .args(["-c", "echo hello; echo warn >&2"])
            .run(&Runner::real())
            .unwrap();
        assert_eq!(out.stdout, "hello\n");
        assert_eq!(out.stderr, "warn\n");
    }

    #[test]
    fn failure_carries_cmdline_status_and_stderr() {
        let err = Cmd::new("sh")
            .args(["-c", "echo 'disk on fire' >&2; exit 3"])
            .run(&Runner::real())
            .unwrap_err();
        let msg = err.to_string();
        assert!(msg.contains("sh -c"), "{msg}");
        assert!(msg.contains("disk on fire"), "{msg}");
        match err {
            CmdError::Failed { code, .. } => assert_eq!(code, Some(3)),
            other => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn a_missing_program_is_named_in_one_human_line() {
        let err = Cmd::new("koompi-nothing-such")
            .arg("x")
            .run(&Runner::real())
            .unwrap_err();
        assert!(matches!(err, CmdError::Missing { .. }));
        let text = err.to_string();
        assert!(
            text.contains("`koompi-nothing-such` is not installed"),
            "{text}"
        );
        assert!(!text.contains("os error"), "{text}");
    }

    #[test]
    fn secrets_never_shown() {
        let c = Cmd::new("cryptsetup")
            .arg("open")
            .secret_arg("hunter2")
            .stdin_secret("pass phrase");
        let line = c.cmdline();
        assert!(!line.contains("hunter2"));
        assert!(!line.contains("pass phrase"));
        assert_eq!(line, "cryptsetup open *** <<< ***");
    }

    #[test]
    fn secret_reaches_program_but_not_error() {
        // The program checks the secret against the environment, then echoes it to stderr
        // and fails: the error keeps the stderr, but never the secret.
        let err = Cmd::new("sh")
            .args([
                "-c",
                "test \"$1\" = \"$WANT\" && echo \"bad key $1\" >&2 && exit 7",
                "x",
            ])
            .secret_arg("s3cret")
            .env("WANT", "s3cret")
            .run(&Runner::real())
            .unwrap_err();
        assert!(err.to_string().contains("bad key ***"), "{err}");
        match &err {
            CmdError::Failed { code, .. } => assert_eq!(*code, Some(7)),
            other => panic!("unexpected {other:?}"),
        }
        assert!(!err.to_string().contains("s3cret"));
    }

    #[test]
    fn stdin_is_fed() {
        let out = Cmd::new("cat")
            .stdin("from stdin")
            .run(&Runner::real())
            .unwrap();
        assert_eq!(out.stdout, "from stdin");
    }

    #[test]
    fn recording_runner_runs_nothing() {
        let r = Runner::recording();
        let dir = std::env::temp_dir().join(format!("koompi-rec-{}", std::process::id()));
        Cmd::new("mkdir").arg(&dir).run(&r).unwrap();
        assert!(!dir.exists());
        assert_eq!(r.recorded(), vec![format!("mkdir {}", dir.display())]);
        assert!(r.is_dry_run());
    }

    #[test]
    fn quoting_for_display() {
        let c = Cmd::new("echo").args(["a b", "it's", ""]);
        assert_eq!(c.cmdline(), r"echo 'a b' 'it'\''s' ''");
    }
}
