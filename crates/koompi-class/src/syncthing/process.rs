//! One Syncthing instance for one home: created with `syncthing generate --home` (through
//! [`Cmd`]), run with `syncthing serve --home DIR --no-browser --no-restart --gui-address
//! 127.0.0.1:PORT` (flags that 1.19 and 2.x both take; the rest goes in `ST*` environment
//! variables, which both read and ignore when unknown), waited for until the REST API
//! answers, and stopped cleanly (`/rest/system/shutdown`, then SIGTERM, then SIGKILL).
//! An [`Instance`] that is dropped kills its process group, so no test leaves one behind.
//!
//! The real deployment is the systemd user unit (`system/systemd-user/`, [`super::UNIT_NAME`]); this runner is what the
//! tests and a foreground `koompi class` use.

use super::home::{read_home_config, HomeConfig, HomeError};
use super::rest::{Client, RestError};
use koompi_core::cmd::{Cmd, CmdError, Runner};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The environment every instance runs with: the monitor process restarts nothing (1.19
/// still starts one, a parent that runs the real Syncthing as its child), no upgrades, no
/// "Default Folder" on first start (1.x; 2.x creates none).
const ENV: [(&str, &str); 3] = [
    ("STNORESTART", "1"),
    ("STNOUPGRADE", "1"),
    ("STNODEFAULTFOLDER", "1"),
];

/// Errors running Syncthing.
#[derive(Debug, thiserror::Error)]
pub enum ProcessError {
    #[error(transparent)]
    Cmd(#[from] CmdError),
    #[error(transparent)]
    Home(#[from] HomeError),
    #[error(transparent)]
    Rest(#[from] RestError),
    #[error("cannot prepare Syncthing's home {path}: {source}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot start `{cmdline}`: {source}")]
    Spawn {
        cmdline: String,
        #[source]
        source: std::io::Error,
    },
    #[error(
        "Syncthing ({home}) exited ({status}) before its REST API answered; its log ends: {log}"
    )]
    Exited {
        home: String,
        status: String,
        log: String,
    },
    #[error("Syncthing's REST API says device {rest}, its config.xml {xml}")]
    IdMismatch { rest: String, xml: String },
}

/// How to run an instance.
#[derive(Debug, Clone)]
pub struct ServeConfig {
    /// The program, `syncthing` on PATH unless told.
    pub program: PathBuf,
    /// The home: config.xml, keys, database.
    pub home: PathBuf,
    /// The GUI/REST port on 127.0.0.1.
    pub gui_port: u16,
    /// How long to wait for the REST API after starting.
    pub start_deadline: Duration,
}

impl ServeConfig {
    /// `syncthing` with `home` and `gui_port`, 60 s to answer.
    pub fn new(home: impl Into<PathBuf>, gui_port: u16) -> Self {
        ServeConfig {
            program: PathBuf::from("syncthing"),
            home: home.into(),
            gui_port,
            start_deadline: Duration::from_secs(60),
        }
    }

    /// The GUI/REST address, always loopback.
    pub fn gui_address(&self) -> String {
        format!("127.0.0.1:{}", self.gui_port)
    }

    /// The arguments of `syncthing serve`.
    pub fn serve_args(&self) -> Vec<String> {
        vec![
            "serve".into(),
            format!("--home={}", self.home.display()),
            "--no-browser".into(),
            "--no-restart".into(),
            format!("--gui-address={}", self.gui_address()),
        ]
    }

    /// The log file the instance's output goes to.
    pub fn log_path(&self) -> PathBuf {
        self.home.join("koompi-syncthing.log")
    }
}

/// The `syncthing serve` command for `config` (arguments and environment), for a caller
/// that runs it in its own way: the `koompi-class engine` that the user unit starts execs it.
pub fn serve_command(config: &ServeConfig) -> Command {
    let mut command = Command::new(&config.program);
    command.args(config.serve_args()).envs(ENV);
    command
}

/// Creates the home (mode 0700) and its config and keys with `syncthing generate` unless
/// config.xml is there already, a new config made LAN only ([`super::home::lan_only`]);
/// returns what config.xml says.
pub fn ensure_home(
    runner: &Runner,
    program: &Path,
    home: &Path,
) -> Result<HomeConfig, ProcessError> {
    use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
    let io = |source| ProcessError::Io {
        path: home.display().to_string(),
        source,
    };
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(home)
        .map_err(io)?;
    std::fs::set_permissions(home, std::fs::Permissions::from_mode(0o700)).map_err(io)?;
    let config = home.join("config.xml");
    if !config.exists() {
        let mut cmd = Cmd::new(program)
            .arg("generate")
            .arg(format!("--home={}", home.display()));
        for (k, v) in ENV {
            cmd = cmd.env(k, v);
        }
        cmd.run(runner)?;
        // Before the first start: LAN only from the first second (docs/decisions.md, 87).
        let text = std::fs::read_to_string(&config).map_err(io)?;
        let lan = super::home::lan_only(&text).map_err(|reason| ProcessError::Io {
            path: config.display().to_string(),
            source: std::io::Error::new(std::io::ErrorKind::InvalidData, reason),
        })?;
        koompi_core::fsutil::write_atomic(&config, lan.as_bytes(), 0o600).map_err(io)?;
    }
    Ok(read_home_config(&config)?)
}

/// A running Syncthing.
#[derive(Debug)]
pub struct Instance {
    config: ServeConfig,
    child: Option<Child>,
    client: Client,
    device_id: String,
}

impl Instance {
    /// Generates the home if needed, starts `syncthing serve` and waits until its REST API
    /// answers (at most `config.start_deadline`).
    pub fn start(runner: &Runner, config: ServeConfig) -> Result<Instance, ProcessError> {
        let home = ensure_home(runner, &config.program, &config.home)?;
        let args = config.serve_args();
        let cmdline = format!("{} {}", config.program.display(), args.join(" "));
        let io = |source| ProcessError::Io {
            path: config.home.display().to_string(),
            source,
        };
        let log = std::fs::File::create(config.log_path()).map_err(io)?;
        let log2 = log.try_clone().map_err(io)?;
        // Cmd runs programs to completion; a daemon is spawned here, in its own process
        // group so that stopping it stops anything it started (docs/decisions.md, 60).
        tracing::debug!(target: "koompi::cmd", "starting: {cmdline}");
        let mut command = serve_command(&config);
        command
            .stdin(Stdio::null())
            .stdout(Stdio::from(log))
            .stderr(Stdio::from(log2));
        std::os::unix::process::CommandExt::process_group(&mut command, 0);
        let child = command.spawn().map_err(|source| ProcessError::Spawn {
            cmdline: cmdline.clone(),
            source,
        })?;
        let client = Client::new(&config.gui_address(), &home.api_key);
        let mut instance = Instance {
            config,
            child: Some(child),
            client,
            device_id: String::new(),
        };
        instance.wait_ready()?;
        let status = instance.client.status()?;
        if let Some(xml) = home.own_device_id() {
            if xml != status.my_id {
                return Err(ProcessError::IdMismatch {
                    rest: status.my_id,
                    xml: xml.to_string(),
                });
            }
        }
        instance.device_id = status.my_id;
        Ok(instance)
    }

    fn wait_ready(&mut self) -> Result<(), ProcessError> {
        let start = Instant::now();
        loop {
            if let Some(child) = self.child.as_mut() {
                if let Ok(Some(status)) = child.try_wait() {
                    self.child = None;
                    return Err(ProcessError::Exited {
                        home: self.config.home.display().to_string(),
                        status: status.to_string(),
                        log: self.log_tail(),
                    });
                }
            }
            let left = self.config.start_deadline.saturating_sub(start.elapsed());
            match self.client.ping() {
                Ok(()) => return Ok(()),
                Err(e) if left.is_zero() => {
                    return Err(RestError::Timeout {
                        what: "the REST API answering /rest/system/ping".into(),
                        secs: self.config.start_deadline.as_secs(),
                        last: e.to_string(),
                    }
                    .into())
                }
                Err(_) => std::thread::sleep(Duration::from_millis(200)),
            }
        }
    }

    /// The last lines of the instance's log, on one line.
    pub fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(self.config.log_path()).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        let from = lines.len().saturating_sub(5);
        super::rest::one_line(&lines[from..].join(" | "))
    }

    /// The REST client.
    pub fn client(&self) -> &Client {
        &self.client
    }

    /// This device's ID.
    pub fn device_id(&self) -> &str {
        &self.device_id
    }

    /// The home directory.
    pub fn home(&self) -> &Path {
        &self.config.home
    }

    /// The process ID, while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// Stops Syncthing cleanly: asks it to shut down, then SIGTERM after `grace`, then
    /// SIGKILL. Returns whether it exited on its own (before any signal).
    pub fn stop(mut self, grace: Duration) -> bool {
        let asked = self.client.shutdown().is_ok();
        if asked && self.wait_exit(grace) {
            return true;
        }
        self.signal(rustix::process::Signal::TERM);
        if !self.wait_exit(grace) {
            self.kill();
        }
        false
    }

    fn wait_exit(&mut self, within: Duration) -> bool {
        let start = Instant::now();
        let Some(child) = self.child.as_mut() else {
            return true;
        };
        while start.elapsed() < within {
            if let Ok(Some(_)) = child.try_wait() {
                self.child = None;
                return true;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        false
    }

    fn signal(&self, sig: rustix::process::Signal) {
        let Some(raw) = self.pid().and_then(|p| i32::try_from(p).ok()) else {
            return;
        };
        // 1.19's monitor starts the real Syncthing in a process group of its own (seen in
        // `ps -o pid,pgid`), so the group of the process we started does not cover it: its
        // children's groups are signalled first, while they are still its children.
        for (child, group) in children_of(raw) {
            if let Some(g) = rustix::process::Pid::from_raw(group) {
                let _ = rustix::process::kill_process_group(g, sig);
            }
            if let Some(c) = rustix::process::Pid::from_raw(child) {
                let _ = rustix::process::kill_process(c, sig);
            }
        }
        if let Some(pid) = rustix::process::Pid::from_raw(raw) {
            let _ = rustix::process::kill_process_group(pid, sig);
        }
    }

    fn kill(&mut self) {
        let children: Vec<i32> = self
            .pid()
            .and_then(|p| i32::try_from(p).ok())
            .map(|p| children_of(p).into_iter().map(|(c, _)| c).collect())
            .unwrap_or_default();
        self.signal(rustix::process::Signal::KILL);
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        // SIGKILL is delivered, not done: the monitor's children (not ours to reap) are
        // waited for until they are gone or zombies, 5 s at most, so that a stopped
        // instance has no process still running when this returns.
        let start = Instant::now();
        while start.elapsed() < Duration::from_secs(5) && children.iter().any(|&c| alive(c)) {
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

/// Whether process `pid` exists and is not a zombie.
fn alive(pid: i32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => stat
            .rfind(')')
            .is_some_and(|i| !stat[i + 1..].trim_start().starts_with(['Z', 'X'])),
        Err(_) => false,
    }
}

/// The direct children of `parent` and their process groups, from /proc.
fn children_of(parent: i32) -> Vec<(i32, i32)> {
    let mut out = Vec::new();
    let Ok(rd) = std::fs::read_dir("/proc") else {
        return out;
    };
    for e in rd.flatten() {
        let Some(pid) = e.file_name().to_str().and_then(|n| n.parse::<i32>().ok()) else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(e.path().join("stat")) else {
            continue;
        };
        // "pid (comm) state ppid pgrp ...": comm may hold spaces and parentheses.
        let Some(rest) = stat.rfind(')').map(|i| &stat[i + 1..]) else {
            continue;
        };
        let mut f = rest.split_whitespace().skip(1);
        let ppid = f.next().and_then(|v| v.parse::<i32>().ok());
        let pgrp = f.next().and_then(|v| v.parse::<i32>().ok());
        if let (Some(ppid), Some(pgrp)) = (ppid, pgrp) {
            if ppid == parent {
                out.push((pid, pgrp));
            }
        }
    }
    out
}

impl Drop for Instance {
    fn drop(&mut self) {
        self.kill();
    }
}
