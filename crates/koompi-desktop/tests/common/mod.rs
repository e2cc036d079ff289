//! What the tests that start KOOMPI's configured programs share (configs_real.rs,
//! edition_screens.rs): the configs of this checkout, bounded runs of programs that are
//! killed with their whole process group, Xvfb, and a headless sway run as nobody.

#![allow(dead_code, clippy::unwrap_used)]

use std::fs;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use koompi_desktop::catalog::CONFIGS_DIR;

pub fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

pub fn configs() -> PathBuf {
    repo().join("configs").canonicalize().unwrap()
}

pub fn read(rel: &str) -> String {
    fs::read_to_string(configs().join(rel)).unwrap()
}

/// A configs file with the installed base path pointing at this checkout.
pub fn localized(text: &str) -> String {
    text.replace(CONFIGS_DIR, configs().to_str().unwrap())
}

pub fn as_root() -> bool {
    rustix::process::geteuid().is_root()
}

/// The user sway runs as when the tests run as root (sway refuses root): nobody.
pub const NOBODY: u32 = 65534;

/// Gives `dir` and everything in it to nobody.
pub fn chown_tree(dir: &Path) {
    rustix::fs::chown(
        dir,
        Some(rustix::fs::Uid::from_raw(NOBODY)),
        Some(rustix::fs::Gid::from_raw(NOBODY)),
    )
    .unwrap();
    if dir.is_dir() {
        for e in fs::read_dir(dir).unwrap() {
            chown_tree(&e.unwrap().path());
        }
    }
}

/// Writes `text` at `path`, making its directories.
pub fn write(path: &Path, text: &str) {
    fs::create_dir_all(path.parent().unwrap()).unwrap();
    fs::write(path, text).unwrap();
}

/// Kills a process group when dropped, so nothing a check started outlives it.
pub struct Group(pub i32);

impl Drop for Group {
    fn drop(&mut self) {
        if let Some(pid) = rustix::process::Pid::from_raw(self.0) {
            let _ = rustix::process::kill_process_group(pid, rustix::process::Signal::KILL);
        }
    }
}

/// What a bounded run gave.
#[derive(Debug)]
pub struct Run {
    pub code: Option<i32>,
    /// Still running at the end (then killed).
    pub running: bool,
    pub out: String,
}

/// Runs `cmd` (stdout and stderr into one file) in its own process group for at most
/// `limit`, or until it exits; then kills the group.
pub fn run_for(cmd: Command, limit: Duration) -> Run {
    run_until(cmd, limit, None)
}

/// [`run_for`], also stopping once the output holds `done`.
pub fn run_until(mut cmd: Command, limit: Duration, done: Option<&str>) -> Run {
    let log = tempfile::NamedTempFile::new().unwrap();
    let file = || {
        fs::OpenOptions::new()
            .append(true)
            .open(log.path())
            .unwrap()
    };
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(file())
        .stderr(file())
        .process_group(0)
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {cmd:?}: {e}"));
    let group = Group(i32::try_from(child.id()).unwrap());
    let started = Instant::now();
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break Some(s);
        }
        let finished =
            done.is_some_and(|d| fs::read_to_string(log.path()).is_ok_and(|t| t.contains(d)));
        if finished || started.elapsed() > limit {
            break None;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    if status.is_none() {
        // SIGTERM first: a program that buffers its output (tint2) writes it as it ends.
        if let Some(pid) = rustix::process::Pid::from_raw(group.0) {
            let _ = rustix::process::kill_process_group(pid, rustix::process::Signal::TERM);
        }
        let waited = Instant::now();
        while child.try_wait().unwrap().is_none() && waited.elapsed() < Duration::from_secs(3) {
            std::thread::sleep(Duration::from_millis(50));
        }
    }
    drop(group);
    let _ = child.wait();
    Run {
        code: status.and_then(|s| s.code()),
        running: status.is_none(),
        out: fs::read_to_string(log.path()).unwrap_or_default(),
    }
}

// ------------------------------------------------------------------ X11 programs

/// Xvfb on a display it picks itself, stopped when dropped.
pub struct Xvfb {
    pub display: String,
    _group: Group,
    _child: std::process::Child,
}

impl Xvfb {
    pub fn start() -> Xvfb {
        // Xvfb writes the display it found into fd 3, which the shell points at a file
        // (Rust's own pipes are closed on exec).
        let file = tempfile::NamedTempFile::new().unwrap();
        let child = Command::new("sh")
            .args([
                "-c",
                "exec Xvfb -displayfd 3 -nolisten tcp -screen 0 1280x800x24 3>\"$0\"",
            ])
            .arg(file.path())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .process_group(0)
            .spawn()
            .unwrap();
        let group = Group(i32::try_from(child.id()).unwrap());
        let started = Instant::now();
        let number = loop {
            let text = fs::read_to_string(file.path()).unwrap_or_default();
            if text.ends_with('\n') {
                break text.trim().to_string();
            }
            assert!(
                started.elapsed() < Duration::from_secs(30),
                "Xvfb did not report its display within 30 s"
            );
            std::thread::sleep(Duration::from_millis(50));
        };
        Xvfb {
            display: format!(":{number}"),
            _group: group,
            _child: child,
        }
    }
}

/// XDG directories in `home` for a program under test, so the host's own configs are
/// never read.
pub fn xdg_env(cmd: &mut Command, home: &Path) {
    cmd.env("HOME", home)
        .env("XDG_CONFIG_HOME", home.join(".config"))
        .env("XDG_DATA_HOME", home.join(".local/share"))
        .env("XDG_CACHE_HOME", home.join(".cache"))
        .env("XDG_CONFIG_DIRS", home.join("no-system-config"));
}

/// `sway ARGS` with its home in `dir`, as nobody when root (then `dir` is given to nobody
/// first), headless, with an empty environment but for what it needs; the Wayland runtime
/// directory is `dir/runtime`.
pub fn sway_command(dir: &Path, args: &[&str]) -> Command {
    let runtime = dir.join("runtime");
    fs::create_dir_all(&runtime).unwrap();
    fs::set_permissions(
        &runtime,
        std::os::unix::fs::PermissionsExt::from_mode(0o700),
    )
    .unwrap();
    let mut cmd = if as_root() {
        chown_tree(dir);
        let mut c = Command::new("setpriv");
        c.args([
            "--reuid=65534",
            "--regid=65534",
            "--clear-groups",
            "--",
            "sway",
        ]);
        c
    } else {
        Command::new("sway")
    };
    cmd.args(args).env_clear();
    cmd.env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("HOME", dir)
        .env("XDG_RUNTIME_DIR", &runtime)
        .env("XDG_CONFIG_HOME", dir.join(".config"))
        .env("XDG_CONFIG_DIRS", dir.join("no-system-config"))
        .env("WLR_BACKENDS", "headless")
        .env("WLR_LIBINPUT_NO_DEVICES", "1")
        .env("WLR_RENDERER", "pixman");
    cmd
}
