//! `cargo xtask bench-class`: a classroom of N students and a teacher, each laptop a
//! network namespace with its own real Syncthing and its own `koompi-class` state, on one
//! bridge whose every link is shaped with tc; times a lesson reaching every student and
//! every student's homework reaching the teacher (issue 15).
//!
//! The network is `koompi_testutil::netns::Net` with N+1 devices (the teacher 10.77.0.1,
//! student `sK` 10.77.0.(K+1)), every link shaped to `--rate-mbit` with tbf at both ends
//! (what a device sends and what it receives), and `--delay-ms` with netem where the kernel
//! has it (each end of a link delays, so two devices are 2 × delay apart one way); without
//! sch_netem the delay is left out and the output says so. A TCP stream from one student to
//! the teacher checks the shaped rate first.
//!
//! Every laptop runs `syncthing serve` in its namespace (`koompi_class::syncthing::Instance`,
//! the same GUI port on each namespace's own loopback; REST calls run on a thread moved into
//! that namespace, `Net::in_ns`) and the release `koompi-class` binary through
//! `ip netns exec` with its own HOME and `--home`: the teacher `create`s and `serve`s the
//! class, every student `join`s with the code and the teacher's address (a few at a time),
//! every student runs `koompi-class watch` (what koompi-class-watch.service runs on a
//! student's laptop: classmates get the per-device limit), the lesson waits until the
//! teacher (the students' introducer) has introduced every classmate, the teacher `share`s
//! a lesson of deterministic pseudo-random bytes (`--lesson-mb` in `--files` files, every
//! block unique), then every student `submit`s `--submission-mb`. Nothing is configured
//! behind the tool's back: Syncthing runs with the classroom's options as `koompi-class`
//! sets them (LAN only, local discovery on, the per-device limit of decision 77).
//!
//! Measured, each from the moment the command starts:
//! - the lesson: until every student's own Syncthing reports its Lessons complete (every
//!   file at full size on disk, then `/rest/db/status`: nothing needed, local bytes = global
//!   bytes = the lesson's size, idle);
//! - the submissions: until the teacher's Syncthing reports every student's Submissions
//!   folder complete the same way;
//! - peak memory per laptop: VmHWM of its Syncthing from /proc (1.19's monitor process runs
//!   the real Syncthing as its child: the child's figure, the monitor's printed apart);
//! - CPU: utime + stime of every Syncthing process per phase, against the wall time and
//!   against what the whole machine did (/proc/stat, also sampled every second: how much
//!   of the phase it was saturated), to show when a run was CPU-bound;
//! - the bytes every device sent during the lesson (the bridge ports' counters), which tell
//!   whether students passed lesson blocks to each other or the teacher sent everything.
//!
//! Bounds: the swarm bound (lesson / link rate: every student downloads at full rate from
//! the start), the teacher-alone bound (N × lesson / link rate: the teacher's uplink sends
//! every copy) and, for the submissions, N × submission / link rate (the teacher's
//! downlink). The last two lines are `lesson: all N devices complete in S s` and
//! `submissions: all N at the teacher in S s`.
//!
//! Needs root, `ip` and `tc` (iproute2) and `syncthing`. The scratch directory (default
//! under /var/tmp: N+1 copies of the lesson do not belong in /dev/shm) is removed at the
//! end unless `--keep`; every Syncthing, the `serve` process and every namespace go at the
//! end, on error and on Ctrl-C (guards).

use std::collections::{HashMap, HashSet};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{mpsc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use koompi_class::class::DEVICE_LIMIT_KBPS;
use koompi_class::syncthing::classroom::{lessons_id, submissions_id};
use koompi_class::syncthing::{FolderStatus, Instance, ServeConfig};
use koompi_core::cmd::Runner;
use koompi_testutil::netns::{Net, Shaping};

use crate::host::cmd::{self, describe};
use crate::host::{cargo, interrupt, target_dir, which, workspace_root};

/// Options of `cargo xtask bench-class`.
#[derive(Debug, clap::Args)]
pub struct Options {
    /// Students (the teacher is one more laptop).
    #[arg(long, value_name = "N", default_value_t = 40,
          value_parser = clap::value_parser!(u32).range(1..=252))]
    devices: u32,
    /// The lesson's size in MB (10^6 bytes).
    #[arg(long, value_name = "MB", default_value_t = 200,
          value_parser = clap::value_parser!(u64).range(1..=100_000))]
    lesson_mb: u64,
    /// The lesson's files.
    #[arg(long, value_name = "N", default_value_t = 100,
          value_parser = clap::value_parser!(u32).range(1..=10_000))]
    files: u32,
    /// Each student's submission in MB (one file).
    #[arg(long, value_name = "MB", default_value_t = 5,
          value_parser = clap::value_parser!(u64).range(1..=10_000))]
    submission_mb: u64,
    /// Every link's rate in Mbit/s (tbf, both directions).
    #[arg(long, value_name = "MBIT", default_value_t = 100,
          value_parser = clap::value_parser!(u32).range(1..=10_000))]
    rate_mbit: u32,
    /// Every link's delay in ms at each end (netem; left out where the kernel lacks it).
    #[arg(long, value_name = "MS", default_value_t = 5,
          value_parser = clap::value_parser!(u32).range(0..=10_000))]
    delay_ms: u32,
    /// Where the scratch directory goes (default /var/tmp).
    #[arg(long, value_name = "DIR")]
    dir: Option<PathBuf>,
    /// Keep the scratch directory (the laptops' files and Syncthing logs).
    #[arg(long)]
    keep: bool,
    /// Print the figures as one JSON object (before the two summary lines).
    #[arg(long)]
    json: bool,
    /// Use the koompi-class already in target/release instead of building it first.
    #[arg(long)]
    no_build: bool,
    /// The longest each wait may take, in seconds (default: 3 × the teacher-alone bound,
    /// at least 10 minutes).
    #[arg(long, value_name = "SECS")]
    timeout: Option<u64>,
}

/// The class's name.
const CLASS: &str = "Bench";
/// Every laptop's Syncthing GUI/REST port, on its own namespace's loopback.
const GUI_PORT: u16 = 28384;
/// The teacher's join port.
const JOIN_PORT: u16 = 28383;
/// The link check's port on the teacher.
const CHECK_PORT: u16 = 28390;
/// Syncthing starts and joins at once (each join derives a PBKDF2 key, a core's work).
const PARALLEL: usize = 4;
/// How often the waits look.
const POLL: Duration = Duration::from_millis(250);

/// One line of progress on stderr.
fn progress(msg: &str) {
    eprintln!("bench-class: {msg}");
}

/// The sizes and the bounds.
#[derive(Debug, Clone)]
struct Plan {
    students: usize,
    lesson_bytes: u64,
    files: usize,
    submission_bytes: u64,
    rate_mbit: u32,
    delay_ms: u32,
}

impl Plan {
    fn new(opts: &Options) -> Plan {
        Plan {
            students: opts.devices as usize,
            lesson_bytes: opts.lesson_mb * 1_000_000,
            files: opts.files as usize,
            submission_bytes: opts.submission_mb * 1_000_000,
            rate_mbit: opts.rate_mbit,
            delay_ms: opts.delay_ms,
        }
    }

    /// The link rate in bytes per second.
    fn rate_bytes(&self) -> f64 {
        f64::from(self.rate_mbit) * 125_000.0
    }

    /// Lesson / link rate.
    fn swarm_bound(&self) -> f64 {
        self.lesson_bytes as f64 / self.rate_bytes()
    }

    /// N × lesson / link rate.
    fn teacher_alone_bound(&self) -> f64 {
        self.students as f64 * self.swarm_bound()
    }

    /// N × submission / link rate.
    fn submissions_bound(&self) -> f64 {
        self.students as f64 * self.submission_bytes as f64 / self.rate_bytes()
    }

    /// Lesson / the per-device limit: one source alone feeds a student no faster.
    fn pair_limit_bound(&self) -> f64 {
        self.lesson_bytes as f64 / (f64::from(DEVICE_LIMIT_KBPS) * 1024.0)
    }

    /// The size of lesson file `i`: equal parts, the rest in the last.
    fn file_size(&self, i: usize) -> u64 {
        let n = self.files as u64;
        let base = self.lesson_bytes / n;
        if i + 1 == self.files {
            self.lesson_bytes - base * (n - 1)
        } else {
            base
        }
    }

    fn file_name(i: usize) -> String {
        format!("lesson-{:04}.bin", i + 1)
    }

    /// Bytes the scratch directory needs: N+2 copies of the lesson (the source, the
    /// teacher's, every student's), each submission three times, Syncthing's databases.
    fn disk_needed(&self) -> u64 {
        let n = self.students as u64;
        (n + 2) * self.lesson_bytes + 3 * n * self.submission_bytes + (n + 1) * 64_000_000
    }
}

/// Runs the benchmark.
pub fn run(opts: &Options) -> Result<()> {
    interrupt::install();
    sbin_on_path();
    // The test network's helpers panic on failure and `no_panic` turns that into an error:
    // a panic is one line here, not a backtrace.
    std::panic::set_hook(Box::new(|info| {
        eprintln!("bench-class: panic: {info}");
    }));
    preflight()?;
    let root = workspace_root()?;
    if !opts.no_build {
        progress("building koompi-class (cargo build --release -p koompi-cli --bin koompi-class)");
        let mut c = cargo();
        c.args([
            "build",
            "--release",
            "-p",
            "koompi-cli",
            "--bin",
            "koompi-class",
        ])
        .current_dir(&root)
        .stdin(Stdio::null())
        .stdout(Stdio::from(std::io::stderr()));
        cmd::run_inherited(&mut c)?;
    }
    let bin = target_dir(&root).join("release/koompi-class");
    if !bin.is_file() {
        bail!(
            "{} does not exist (build it: cargo build --release -p koompi-cli --bin koompi-class)",
            bin.display()
        );
    }
    let plan = Plan::new(opts);
    let parent = opts
        .dir
        .clone()
        .unwrap_or_else(|| PathBuf::from("/var/tmp"));
    std::fs::create_dir_all(&parent)
        .with_context(|| format!("cannot create {}", parent.display()))?;
    let free = free_bytes(&parent)?;
    if free < plan.disk_needed() {
        bail!(
            "{} has {:.1} GB free; {} students and a {} MB lesson need about {:.1} GB (--dir elsewhere, or fewer --devices)",
            parent.display(),
            free as f64 / 1e9,
            plan.students,
            opts.lesson_mb,
            plan.disk_needed() as f64 / 1e9
        );
    }
    let scratch = tempfile::Builder::new()
        .prefix("koompi-bench-class-")
        .tempdir_in(&parent)
        .with_context(|| format!("cannot create a directory in {}", parent.display()))?;
    progress(&format!("scratch directory {}", scratch.path().display()));
    let timeout = Duration::from_secs(
        opts.timeout
            .unwrap_or_else(|| (plan.teacher_alone_bound() * 3.0).max(600.0) as u64),
    );
    let result = bench(&plan, &bin, scratch.path(), timeout);
    if opts.keep {
        let kept = scratch.keep();
        progress(&format!("kept {}", kept.display()));
    } else {
        let shown = scratch.path().display().to_string();
        scratch
            .close()
            .with_context(|| format!("cannot remove {shown}"))?;
    }
    let figures = result?;
    figures.report(&plan, opts.json)
}

/// `ip` and `tc` live in /usr/sbin, which a user's PATH may lack, and the test network runs
/// them by name: the sbin directories go at the end of PATH (as the sudo re-run has them).
fn sbin_on_path() {
    let path = std::env::var_os("PATH").unwrap_or_default();
    let dirs: Vec<PathBuf> = std::env::split_paths(&path).collect();
    let mut add: Vec<PathBuf> = ["/usr/local/sbin", "/usr/sbin", "/sbin"]
        .into_iter()
        .map(PathBuf::from)
        .filter(|d| !dirs.contains(d))
        .collect();
    if add.is_empty() {
        return;
    }
    let mut all = dirs;
    all.append(&mut add);
    if let Ok(joined) = std::env::join_paths(all) {
        std::env::set_var("PATH", joined);
    }
}

/// Root, and the programs: one line naming what is missing.
fn preflight() -> Result<()> {
    if !crate::host::is_root() {
        bail!("bench-class needs root (network namespaces, tc): run it as root");
    }
    let missing: Vec<&str> = ["ip", "tc", "syncthing"]
        .into_iter()
        .filter(|p| which(p).is_none())
        .collect();
    if !missing.is_empty() {
        bail!(
            "bench-class needs {}: {}",
            missing.join(", "),
            koompi_testutil::prereq::install_hint(&missing)
        );
    }
    Ok(())
}

/// Free bytes for an unprivileged writer on the filesystem of `dir`.
fn free_bytes(dir: &Path) -> Result<u64> {
    let st = rustix::fs::statvfs(dir).with_context(|| format!("statvfs {}", dir.display()))?;
    Ok(st.f_bavail.saturating_mul(st.f_frsize))
}

/// Runs `f`, turning a panic (the test network's helpers panic on failure) into an error.
fn no_panic<T>(what: &str, f: impl FnOnce() -> T) -> Result<T> {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)).map_err(|e| {
        let msg = e
            .downcast_ref::<String>()
            .cloned()
            .or_else(|| e.downcast_ref::<&str>().map(|s| s.to_string()))
            .unwrap_or_else(|| "panicked".into());
        anyhow::anyhow!("{what}: {msg}")
    })
}

// ---------------------------------------------------------------------------------------
// The laptops.

/// One laptop's files: its HOME and its state root.
#[derive(Debug, Clone)]
struct Laptop {
    /// `teacher` or `sK`.
    name: String,
    home: PathBuf,
    state: PathBuf,
}

impl Laptop {
    fn new(scratch: &Path, name: String) -> Result<Laptop> {
        let home = scratch.join(&name).join("home");
        let state = scratch.join(&name).join("state");
        for d in [&home, &state] {
            std::fs::create_dir_all(d).with_context(|| format!("cannot create {}", d.display()))?;
        }
        Ok(Laptop { name, home, state })
    }

    /// `koompi-class --home STATE --gui-port P ARGS` with this laptop's HOME.
    fn cmd(&self, bin: &Path, args: &[&str]) -> Command {
        let mut c = Command::new(bin);
        c.env("HOME", &self.home)
            .env_remove("XDG_STATE_HOME")
            .env("NO_COLOR", "1")
            .arg("--home")
            .arg(&self.state)
            .arg("--gui-port")
            .arg(GUI_PORT.to_string())
            .args(args);
        c
    }

    /// Where the classroom's Syncthing keeps its home (`Paths::syncthing_home`).
    fn syncthing_home(&self) -> PathBuf {
        self.state.join("koompi-class").join("syncthing")
    }

    fn class_dir(&self) -> PathBuf {
        self.home.join("Classroom").join(CLASS)
    }
}

/// A process of ours (`serve`, a `watch`): SIGTERM (it stops cleanly), then SIGKILL
/// after 5 s, on drop.
#[derive(Debug)]
struct Guard(Child);

impl Guard {
    fn pid(&self) -> i32 {
        i32::try_from(self.0.id()).unwrap_or(0)
    }
}

impl Drop for Guard {
    fn drop(&mut self) {
        if let Some(pid) = rustix::process::Pid::from_raw(self.pid()) {
            let _ = rustix::process::kill_process(pid, rustix::process::Signal::TERM);
        }
        let start = Instant::now();
        while start.elapsed() < Duration::from_secs(5) {
            if let Ok(Some(_)) = self.0.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The teacher's `serve` process and what it printed.
#[derive(Debug)]
struct Serve {
    child: Guard,
    /// Its stdout's lines (a Mutex: the rig is shared with the join threads).
    lines: Mutex<mpsc::Receiver<String>>,
    seen: Vec<String>,
}

impl Serve {
    /// Waits until a line `pred` accepts, at most `within`.
    fn wait_line(
        &mut self,
        what: &str,
        within: Duration,
        pred: impl Fn(&str) -> bool,
    ) -> Result<()> {
        let start = Instant::now();
        loop {
            if self.seen.iter().any(|l| pred(l)) {
                return Ok(());
            }
            interrupt::check()?;
            if let Ok(Some(status)) = self.child.0.try_wait() {
                bail!(
                    "koompi-class serve exited ({status}) before {what}: {:?}",
                    self.seen
                );
            }
            let left = within.saturating_sub(start.elapsed());
            if left.is_zero() {
                bail!(
                    "koompi-class serve did not print {what} within {within:?}: {:?}",
                    self.seen
                );
            }
            let wait = left.min(Duration::from_millis(500));
            let line = match self.lines.get_mut() {
                Ok(rx) => rx.recv_timeout(wait).ok(),
                Err(_) => bail!("koompi-class serve: its output reader is gone"),
            };
            if let Some(l) = line {
                self.seen.push(l);
            }
        }
    }
}

/// Everything running; dropped in field order: the students' `watch`, `serve`, the
/// Syncthings, then the network.
#[derive(Debug)]
struct Rig {
    watchers: Vec<Guard>,
    serve: Option<Serve>,
    syncthings: Vec<Instance>,
    net: Net,
    laptops: Vec<Laptop>,
}

impl Rig {
    /// Runs `koompi-class ARGS` on laptop `i` in its namespace; its stdout.
    fn class(&self, bin: &Path, i: usize, args: &[&str]) -> Result<String> {
        let mut c = self.net.run_in(i, &self.laptops[i].cmd(bin, args));
        let out = cmd::run(&mut c)?;
        String::from_utf8(out.stdout)
            .with_context(|| format!("`{}`: output not UTF-8", describe(&c)))
    }

    /// `f` with laptop `i`'s Syncthing, on a thread in its namespace.
    fn rest<T: Send>(&self, i: usize, f: impl FnOnce(&Instance) -> T + Send) -> Result<T> {
        let st = self
            .syncthings
            .get(i)
            .with_context(|| format!("no Syncthing for laptop {i}"))?;
        let ns = self.net.ns(i).to_string();
        no_panic(&format!("REST call in {ns}"), || {
            self.net.in_ns(i, || f(st))
        })
    }

    fn log_tail(&self, i: usize) -> String {
        self.syncthings
            .get(i)
            .map(|s| s.log_tail())
            .unwrap_or_default()
    }
}

/// Runs `f(0..n)` on `workers` threads; the results in order, or the first error.
fn parallel<T: Send>(
    n: usize,
    workers: usize,
    f: impl Fn(usize) -> Result<T> + Sync,
) -> Result<Vec<T>> {
    let next = AtomicUsize::new(0);
    let failed = AtomicBool::new(false);
    let results: Mutex<Vec<Option<Result<T>>>> = Mutex::new((0..n).map(|_| None).collect());
    std::thread::scope(|s| {
        for _ in 0..workers.min(n.max(1)) {
            s.spawn(|| loop {
                if failed.load(Ordering::SeqCst) {
                    return;
                }
                let i = next.fetch_add(1, Ordering::SeqCst);
                if i >= n {
                    return;
                }
                let r = interrupt::check().and_then(|()| f(i));
                if r.is_err() {
                    failed.store(true, Ordering::SeqCst);
                }
                if let Ok(mut v) = results.lock() {
                    v[i] = Some(r);
                }
            });
        }
    });
    let v = results
        .into_inner()
        .map_err(|_| anyhow::anyhow!("a worker thread panicked"))?;
    let mut out = Vec::with_capacity(n);
    for (i, r) in v.into_iter().enumerate() {
        match r {
            Some(Ok(t)) => out.push(t),
            Some(Err(e)) => return Err(e),
            None => bail!("item {i} was not done (an earlier one failed)"),
        }
    }
    Ok(out)
}

// ---------------------------------------------------------------------------------------
// /proc: the Syncthing processes' memory and CPU, the machine's CPU.

/// `(pid, ppid)` of every process.
fn process_parents() -> Vec<(i32, i32)> {
    let mut out = Vec::new();
    let Ok(rd) = std::fs::read_dir("/proc") else {
        return out;
    };
    for e in rd.flatten() {
        let Some(pid) = e.file_name().to_str().and_then(|n| n.parse::<i32>().ok()) else {
            continue;
        };
        if let Some(f) = stat_fields(pid) {
            if let Some(ppid) = f.get(1).and_then(|v| v.parse::<i32>().ok()) {
                out.push((pid, ppid));
            }
        }
    }
    out
}

/// The fields of /proc/PID/stat after `(comm)`: state, ppid, pgrp, ... (field 3 onwards).
fn stat_fields(pid: i32) -> Option<Vec<String>> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest = &stat[stat.rfind(')')? + 1..];
    Some(rest.split_whitespace().map(str::to_string).collect())
}

/// utime + stime of `pid`, in clock ticks.
fn cpu_ticks(pid: i32) -> u64 {
    let (u, s) = cpu_times(pid);
    u + s
}

/// (utime, stime) of `pid`, in clock ticks.
fn cpu_times(pid: i32) -> (u64, u64) {
    // utime and stime are fields 14 and 15; the fields here start at 3.
    stat_fields(pid)
        .map(|f| {
            let get = |i: usize| f.get(i).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0);
            (get(11), get(12))
        })
        .unwrap_or((0, 0))
}

/// VmHWM of `pid` in bytes.
fn vm_hwm(pid: i32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}

/// One laptop's Syncthing processes: the one started, and its children (1.19's monitor
/// runs the real Syncthing as its child).
#[derive(Debug, Clone)]
struct Procs {
    started: i32,
    children: Vec<i32>,
}

impl Procs {
    fn all(&self) -> impl Iterator<Item = i32> + '_ {
        std::iter::once(self.started).chain(self.children.iter().copied())
    }
}

fn syncthing_procs(rig: &Rig) -> Vec<Procs> {
    let parents = process_parents();
    rig.syncthings
        .iter()
        .map(|s| {
            let started = s.pid().and_then(|p| i32::try_from(p).ok()).unwrap_or(0);
            let children = parents
                .iter()
                .filter(|(_, pp)| *pp == started)
                .map(|(p, _)| *p)
                .collect();
            Procs { started, children }
        })
        .collect()
}

/// A CPU sample: every Syncthing's ticks and the machine's busy and total ticks.
#[derive(Debug, Clone)]
struct CpuSample {
    at: Instant,
    syncthing_ticks: u64,
    watch_ticks: u64,
    /// User time of this run's processes: Syncthings, watch, serve and this one.
    ours_user: u64,
    /// CPU of this process and `serve`.
    bench_ticks: u64,
    /// User time of every process on the machine.
    machine_user: u64,
    busy: u64,
    total: u64,
}

fn cpu_sample(rig: &Rig) -> CpuSample {
    let syncthing: Vec<(u64, u64)> = syncthing_procs(rig)
        .iter()
        .flat_map(|p| p.all().collect::<Vec<_>>())
        .map(cpu_times)
        .collect();
    let watch: Vec<(u64, u64)> = rig.watchers.iter().map(|w| cpu_times(w.pid())).collect();
    // This process (its polling) and `serve` are this run's too.
    let mut rest = vec![cpu_times(std::process::id() as i32)];
    if let Some(serve) = &rig.serve {
        rest.push(cpu_times(serve.child.pid()));
    }
    let (busy, total) = machine_ticks();
    CpuSample {
        at: Instant::now(),
        syncthing_ticks: syncthing.iter().map(|(u, s)| u + s).sum(),
        watch_ticks: watch.iter().map(|(u, s)| u + s).sum(),
        ours_user: syncthing
            .iter()
            .chain(&watch)
            .chain(&rest)
            .map(|(u, _)| u)
            .sum(),
        bench_ticks: rest.iter().map(|(u, s)| u + s).sum(),
        machine_user: machine_user_ticks(),
        busy,
        total,
    }
}

/// user + nice ticks of all CPUs from /proc/stat.
fn machine_user_ticks() -> u64 {
    std::fs::read_to_string("/proc/stat")
        .ok()
        .and_then(|t| {
            let line = t.lines().find(|l| l.starts_with("cpu "))?.to_string();
            let v: Vec<u64> = line
                .split_whitespace()
                .skip(1)
                .take(2)
                .filter_map(|x| x.parse().ok())
                .collect();
            Some(v.iter().sum())
        })
        .unwrap_or(0)
}

/// (busy, total) ticks of all CPUs from /proc/stat (idle and iowait are not busy).
fn machine_ticks() -> (u64, u64) {
    let Ok(text) = std::fs::read_to_string("/proc/stat") else {
        return (0, 0);
    };
    let Some(line) = text.lines().find(|l| l.starts_with("cpu ")) else {
        return (0, 0);
    };
    let v: Vec<u64> = line
        .split_whitespace()
        .skip(1)
        .filter_map(|x| x.parse().ok())
        .collect();
    // user nice system idle iowait irq softirq steal (guest time is inside user).
    let total: u64 = v.iter().take(8).sum();
    let idle = v.get(3).copied().unwrap_or(0) + v.get(4).copied().unwrap_or(0);
    (total.saturating_sub(idle), total)
}

/// The machine's busy share in each second of a phase, sampled on a thread of its own.
#[derive(Debug)]
struct BusySampler {
    stop: std::sync::Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<Vec<f64>>>,
}

impl BusySampler {
    fn start() -> BusySampler {
        let stop = std::sync::Arc::new(AtomicBool::new(false));
        let flag = std::sync::Arc::clone(&stop);
        let thread = std::thread::spawn(move || {
            let mut out = Vec::new();
            let mut last = machine_ticks();
            while !flag.load(Ordering::SeqCst) {
                std::thread::sleep(Duration::from_secs(1));
                let now = machine_ticks();
                let total = now.1.saturating_sub(last.1);
                if total > 0 {
                    out.push(now.0.saturating_sub(last.0) as f64 / total as f64);
                }
                last = now;
            }
            out
        });
        BusySampler {
            stop,
            thread: Some(thread),
        }
    }

    /// The share of the seconds in which the machine was at least 95 % busy.
    fn saturated(mut self) -> f64 {
        self.stop.store(true, Ordering::SeqCst);
        let v = self
            .thread
            .take()
            .and_then(|t| t.join().ok())
            .unwrap_or_default();
        if v.is_empty() {
            0.0
        } else {
            v.iter().filter(|&&b| b >= 0.95).count() as f64 / v.len() as f64
        }
    }
}

impl Drop for BusySampler {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
    }
}

/// The CPU ticks of every Syncthing process on this machine that is not this run's
/// (another test or benchmark competing for the CPU), by pid.
fn foreign_syncthings(rig: &Rig) -> HashMap<i32, u64> {
    let ours: HashSet<i32> = syncthing_procs(rig)
        .iter()
        .flat_map(|p| p.all().collect::<Vec<_>>())
        .collect();
    let Ok(rd) = std::fs::read_dir("/proc") else {
        return HashMap::new();
    };
    rd.flatten()
        .filter_map(|e| e.file_name().to_str().and_then(|n| n.parse::<i32>().ok()))
        .filter(|pid| !ours.contains(pid))
        .filter(|pid| {
            std::fs::read_to_string(format!("/proc/{pid}/comm"))
                .is_ok_and(|c| c.trim() == "syncthing")
        })
        .map(|pid| (pid, cpu_ticks(pid)))
        .collect()
}

/// Seconds of CPU the foreign Syncthings alive at `after` used since `before` (the whole
/// of those started since; those that came and went in between are not seen).
fn foreign_cpu(before: &HashMap<i32, u64>, after: &HashMap<i32, u64>) -> f64 {
    let ticks: u64 = after
        .iter()
        .map(|(pid, t)| t.saturating_sub(before.get(pid).copied().unwrap_or(0)))
        .sum();
    ticks as f64 / rustix::param::clock_ticks_per_second() as f64
}

/// What a phase cost in CPU.
#[derive(Debug, Clone)]
struct CpuUse {
    wall: f64,
    /// Seconds of CPU of every Syncthing process.
    syncthing: f64,
    /// Seconds of CPU of every student's `koompi-class watch`.
    watch: f64,
    /// Share of the machine's CPUs busy (0..1), whoever used them.
    machine_busy: f64,
    /// Share of the phase's seconds with the machine at least 95 % busy.
    saturated: f64,
    /// Seconds of CPU of this process (its polling) and `serve`.
    bench: f64,
    /// Seconds of user CPU of every other process (whatever else runs on this machine).
    others_user: f64,
}

fn cpu_use(a: &CpuSample, b: &CpuSample) -> CpuUse {
    let hz = rustix::param::clock_ticks_per_second() as f64;
    let total = b.total.saturating_sub(a.total);
    CpuUse {
        wall: b.at.duration_since(a.at).as_secs_f64(),
        syncthing: b.syncthing_ticks.saturating_sub(a.syncthing_ticks) as f64 / hz,
        watch: b.watch_ticks.saturating_sub(a.watch_ticks) as f64 / hz,
        saturated: 0.0,
        bench: b.bench_ticks.saturating_sub(a.bench_ticks) as f64 / hz,
        others_user: (b.machine_user.saturating_sub(a.machine_user) as f64
            - b.ours_user.saturating_sub(a.ours_user) as f64)
            .max(0.0)
            / hz,
        machine_busy: if total == 0 {
            0.0
        } else {
            b.busy.saturating_sub(a.busy) as f64 / total as f64
        },
    }
}

/// (sent, received) bytes of each device: its bridge port's receive and transmit
/// counters (`ip -j -s link` in the bridge's namespace).
fn port_counters(net: &Net) -> Result<Vec<(u64, u64)>> {
    let mut c = Command::new("ip");
    c.args(["-n", net.bridge_ns(), "-j", "-s", "link", "show"]);
    let out = cmd::stdout(&mut c)?;
    let v: serde_json::Value =
        serde_json::from_str(&out).with_context(|| format!("`{}`: not JSON", describe(&c)))?;
    let links = v.as_array().context("ip -j link: not an array")?;
    net.devices()
        .iter()
        .map(|d| {
            let link = links
                .iter()
                .find(|l| l.get("ifname").and_then(|n| n.as_str()) == Some(d.port.as_str()));
            let counter = |dir: &str| {
                link.and_then(|l| l.pointer(&format!("/stats64/{dir}/bytes")))
                    .and_then(|b| b.as_u64())
                    .with_context(|| format!("no {dir} byte counter for bridge port {}", d.port))
            };
            Ok((counter("rx")?, counter("tx")?))
        })
        .collect()
}

// ---------------------------------------------------------------------------------------
// Content.

/// Deterministic pseudo-random bytes (xorshift64*), a different stream per seed: every
/// Syncthing block unique, so nothing is copied from blocks a device already has.
fn write_random(path: &Path, size: u64, seed: u64) -> Result<()> {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let mut f = std::io::BufWriter::with_capacity(
        1 << 20,
        std::fs::File::create(path).with_context(|| format!("cannot create {}", path.display()))?,
    );
    let mut left = size;
    let mut buf = vec![0u8; 1 << 16];
    while left > 0 {
        for chunk in buf.chunks_mut(8) {
            x ^= x >> 12;
            x ^= x << 25;
            x ^= x >> 27;
            let v = x.wrapping_mul(0x2545_F491_4F6C_DD1D).to_le_bytes();
            chunk.copy_from_slice(&v[..chunk.len()]);
        }
        let n = left.min(buf.len() as u64) as usize;
        f.write_all(&buf[..n])
            .with_context(|| format!("cannot write {}", path.display()))?;
        left -= n as u64;
    }
    f.flush()
        .with_context(|| format!("cannot write {}", path.display()))
}

fn same_content(a: &Path, b: &Path) -> Result<bool> {
    let read = |p: &Path| std::fs::read(p).with_context(|| format!("cannot read {}", p.display()));
    Ok(read(a)? == read(b)?)
}

// ---------------------------------------------------------------------------------------
// The run.

/// What was measured.
#[derive(Debug)]
struct Figures {
    netem: bool,
    link_check_mbit: f64,
    setup: Vec<(String, f64)>,
    /// Seconds from `share` until each student was complete (student order).
    lesson: Vec<f64>,
    share_cmd: f64,
    /// Seconds from the first `submit` until the teacher had each student's.
    submissions: Vec<f64>,
    submit_cmds: f64,
    /// Bytes sent during the lesson: the teacher, every student.
    lesson_sent_teacher: u64,
    lesson_sent_students: Vec<u64>,
    /// Whether a student's Lessons folder is shared with anyone but the teacher.
    /// Whether the students take the teacher as introducer.
    introducer: bool,
    mesh_at_share: Mesh,
    mesh_after: Mesh,
    /// Classmates the students' `watch` gave the per-device limit (lines of its output).
    classmates_limited: usize,
    /// VmHWM per laptop (teacher first) of the real Syncthing; of the monitors.
    memory: Vec<u64>,
    monitor_memory: Vec<u64>,
    has_monitor: bool,
    cpu_lesson: CpuUse,
    cpu_submissions: CpuUse,
    cpu_all: CpuUse,
    cores: usize,
    /// Syncthing processes not of this run seen during the lesson, and their CPU seconds.
    foreign_syncthings: (usize, f64),
}

fn bench(plan: &Plan, bin: &Path, scratch: &Path, timeout: Duration) -> Result<Figures> {
    let n = plan.students;
    let mut setup = Vec::new();
    let mut step = |name: &str, t: Instant| {
        let s = t.elapsed().as_secs_f64();
        progress(&format!("{name}: {s:.1} s"));
        setup.push((name.to_string(), s));
    };

    // The lesson and the submissions, before anything runs.
    let t = Instant::now();
    let lesson_dir = scratch.join("lesson");
    std::fs::create_dir_all(&lesson_dir)
        .with_context(|| format!("cannot create {}", lesson_dir.display()))?;
    let lesson_files: Vec<PathBuf> = (0..plan.files)
        .map(|i| lesson_dir.join(Plan::file_name(i)))
        .collect();
    for (i, f) in lesson_files.iter().enumerate() {
        write_random(f, plan.file_size(i), 1 + i as u64)?;
    }
    let sub_dir = scratch.join("homework");
    std::fs::create_dir_all(&sub_dir)
        .with_context(|| format!("cannot create {}", sub_dir.display()))?;
    let homework: Vec<PathBuf> = (1..=n)
        .map(|k| sub_dir.join(format!("homework-s{k}.bin")))
        .collect();
    for (k, f) in homework.iter().enumerate() {
        write_random(f, plan.submission_bytes, 1_000_000 + k as u64)?;
    }
    step(
        &format!(
            "generate: lesson {} MB in {} files, {n} submissions of {} MB",
            plan.lesson_bytes / 1_000_000,
            plan.files,
            plan.submission_bytes / 1_000_000
        ),
        t,
    );

    // The network.
    let t = Instant::now();
    let net = no_panic("the test network", || Net::new(n + 1))?;
    let netem = netem_available(&net);
    let shaping = Shaping {
        rate_kbit: Some(plan.rate_mbit * 1000),
        delay_ms: (netem && plan.delay_ms > 0).then_some(plan.delay_ms),
        loss_percent: None,
    };
    for i in 0..=n {
        no_panic("shaping a link", || net.shape(i, &shaping))?;
    }
    if !netem {
        progress("delay: not applied (no sch_netem in this kernel)");
    }
    let mut laptops = vec![Laptop::new(scratch, "teacher".into())?];
    for k in 1..=n {
        laptops.push(Laptop::new(scratch, format!("s{k}"))?);
    }
    let mut rig = Rig {
        watchers: Vec::new(),
        serve: None,
        syncthings: Vec::new(),
        net,
        laptops,
    };
    step(
        &format!(
            "network: {} namespaces on one bridge, links {} Mbit/s (tbf both ends){}",
            n + 1,
            plan.rate_mbit,
            if netem {
                format!(", {} ms each end (netem)", plan.delay_ms)
            } else {
                String::new()
            }
        ),
        t,
    );
    let link_check_mbit = link_check(&rig.net, plan)?;
    progress(&format!(
        "link check: {link_check_mbit:.1} Mbit/s measured (one TCP stream, s1 to the teacher; shaped {} Mbit/s)",
        plan.rate_mbit
    ));

    // The Syncthings.
    let t = Instant::now();
    let started = AtomicUsize::new(0);
    rig.syncthings = parallel(n + 1, PARALLEL, |i| {
        let home = rig.laptops[i].syncthing_home();
        let inst = no_panic("starting Syncthing", || {
            rig.net.in_ns(i, || {
                Instance::start(&Runner::real(), ServeConfig::new(home, GUI_PORT))
            })
        })?
        .with_context(|| format!("{}: Syncthing", rig.laptops[i].name))?;
        let k = started.fetch_add(1, Ordering::SeqCst) + 1;
        if k.is_multiple_of(10) || k == n + 1 {
            progress(&format!("syncthing: {k}/{} running", n + 1));
        }
        Ok(inst)
    })?;
    step(&format!("syncthing: {} instances", n + 1), t);
    let cpu_start = cpu_sample(&rig);

    // The class.
    let t = Instant::now();
    let created: serde_json::Value = {
        let out = rig.class(bin, 0, &["--json", "create", CLASS])?;
        serde_json::from_str(&out).context("koompi-class --json create: not JSON")?
    };
    let code = created
        .get("words")
        .and_then(|w| w.as_str())
        .context("koompi-class --json create: no words")?
        .to_string();
    let teacher_addr = rig.net.device(0).addr;
    let listen = format!("{teacher_addr}:{JOIN_PORT}");
    let mut c = rig.net.run_in(
        0,
        &rig.laptops[0].cmd(bin, &["serve", CLASS, "--listen", &listen, "--no-announce"]),
    );
    let serve_log = scratch.join("serve.log");
    c.stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::from(
            std::fs::File::create(&serve_log)
                .with_context(|| format!("cannot create {}", serve_log.display()))?,
        ));
    let mut child = c
        .spawn()
        .with_context(|| format!("cannot run `{}`", describe(&c)))?;
    let stdout = child.stdout.take().context("serve has no stdout")?;
    let (tx, lines) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(|l| l.ok()) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    rig.serve = Some(Serve {
        child: Guard(child),
        lines: Mutex::new(lines),
        seen: Vec::new(),
    });
    let serve = rig.serve.as_mut().context("serve")?;
    serve.wait_line("its port", Duration::from_secs(60), |l| {
        l.contains("students join on port")
    })?;
    step("class: create + serve", t);

    let t = Instant::now();
    let joined = AtomicUsize::new(0);
    let rig_ref = &rig;
    parallel(n, PARALLEL, |j| {
        let k = j + 1;
        let name = format!("s{k}");
        rig_ref.class(
            bin,
            k,
            &[
                "join",
                CLASS,
                "--code",
                &code,
                "--teacher",
                &listen,
                "--as",
                &name,
            ],
        )?;
        let d = joined.fetch_add(1, Ordering::SeqCst) + 1;
        if d.is_multiple_of(10) || d == n {
            progress(&format!(
                "join: {d}/{n} joined, {:.1} s",
                t.elapsed().as_secs_f64()
            ));
        }
        Ok(())
    })?;
    let serve = rig.serve.as_mut().context("serve")?;
    for k in 1..=n {
        let prefix = format!("joined: s{k} ");
        serve.wait_line(&format!("s{k} admitted"), Duration::from_secs(120), |l| {
            l.starts_with(&prefix)
        })?;
    }
    if let Some(bad) = serve.seen.iter().find(|l| l.contains("not set up")) {
        bail!("the teacher did not set a student up: {bad}");
    }
    step(&format!("join: {n} students joined and admitted"), t);

    // Every student connected to the teacher before the lesson starts.
    let t = Instant::now();
    let ids: Vec<String> = rig
        .syncthings
        .iter()
        .map(|s| s.device_id().to_string())
        .collect();
    let mut last_print = Instant::now();
    loop {
        interrupt::check()?;
        let conns = rig.rest(0, |st| st.client().connections())??;
        let up = ids[1..]
            .iter()
            .filter(|id| {
                conns
                    .get(id.as_str())
                    .and_then(|c| c.get("connected"))
                    .and_then(|v| v.as_bool())
                    == Some(true)
            })
            .count();
        if up == n {
            break;
        }
        if last_print.elapsed() >= Duration::from_secs(5) {
            progress(&format!(
                "connect: {up}/{n} students connected to the teacher, {:.1} s",
                t.elapsed().as_secs_f64()
            ));
            last_print = Instant::now();
        }
        if t.elapsed() > Duration::from_secs(600) {
            bail!(
                "only {up}/{n} students connected to the teacher within 600 s; teacher's log: {}",
                rig.log_tail(0)
            );
        }
        std::thread::sleep(Duration::from_millis(500));
    }
    step(
        &format!("connect: {n}/{n} students connected to the teacher"),
        t,
    );

    // Every student runs `koompi-class watch`, as koompi-class-watch.service does on a
    // student's laptop (lessons kept as sent, classmates given the per-device limit).
    let t = Instant::now();
    let mut watchers = Vec::new();
    for k in 1..=n {
        let log = scratch.join(format!("watch-s{k}.log"));
        let file = std::fs::File::create(&log)
            .with_context(|| format!("cannot create {}", log.display()))?;
        let err = file
            .try_clone()
            .with_context(|| format!("cannot open {}", log.display()))?;
        let mut c = rig.net.run_in(k, &rig.laptops[k].cmd(bin, &["watch"]));
        c.stdin(Stdio::null())
            .stdout(Stdio::from(file))
            .stderr(Stdio::from(err));
        watchers.push(Guard(
            c.spawn()
                .with_context(|| format!("cannot run `{}`", describe(&c)))?,
        ));
    }
    rig.watchers = watchers;
    step(
        &format!("watch: {n} students' koompi-class watch running"),
        t,
    );

    // Students learn each other from the teacher (the introducer, where the code has it):
    // the lesson starts once the class is set up, as in a classroom.
    let t = Instant::now();
    let mut last_print = Instant::now();
    let introducer = rig
        .rest(1, |st| st.client().devices())??
        .iter()
        .any(|d| d.device_id == ids[0] && d.introducer);
    let mut mesh = mesh_state(&rig, &ids)?;
    while introducer && mesh.introduced < n {
        interrupt::check()?;
        if t.elapsed() > Duration::from_secs(300) {
            progress("introductions: not complete within 300 s; the lesson starts anyway");
            break;
        }
        if last_print.elapsed() >= Duration::from_secs(5) {
            progress(&format!(
                "introductions: {}/{n} students know every classmate, {:.1} s",
                mesh.introduced,
                t.elapsed().as_secs_f64()
            ));
            last_print = Instant::now();
        }
        std::thread::sleep(Duration::from_secs(1));
        mesh = mesh_state(&rig, &ids)?;
    }
    let mesh_at_share = mesh;
    step(
        &if introducer {
            format!(
                "introductions: {}/{n} students share the Lessons with every classmate, {} of {} student pairs connected",
                mesh_at_share.introduced,
                mesh_at_share.pairs,
                n * n.saturating_sub(1) / 2
            )
        } else {
            "introductions: none (the students' teacher device is no introducer)".to_string()
        },
        t,
    );

    // The lesson.
    let counters_before = port_counters(&rig.net)?;
    let sent_before: Vec<u64> = counters_before.iter().map(|c| c.0).collect();
    let received_before: u64 = counters_before[1..].iter().map(|c| c.1).sum();
    let lesson_total = n as u64 * plan.lesson_bytes;
    let foreign_before = foreign_syncthings(&rig);
    if !foreign_before.is_empty() {
        progress(&format!(
            "note: {} Syncthing processes of something else run on this machine (their CPU during the lesson is reported)",
            foreign_before.len()
        ));
    }
    let cpu_lesson_start = cpu_sample(&rig);
    let busy_lesson = BusySampler::start();
    let t_lesson = Instant::now();
    let mut args: Vec<String> = vec!["share".into(), CLASS.into()];
    for f in &lesson_files {
        args.push(crate::host::path_str(f)?.to_string());
    }
    let arg_refs: Vec<&str> = args.iter().map(String::as_str).collect();
    rig.class(bin, 0, &arg_refs)?;
    let share_cmd = t_lesson.elapsed().as_secs_f64();
    progress(&format!(
        "share: {} files copied and scanned by the teacher in {share_cmd:.1} s",
        plan.files
    ));
    let received = || {
        port_counters(&rig.net).ok().map(|c| {
            let got = c[1..].iter().map(|c| c.1).sum::<u64>() - received_before;
            format!(
                ", {:.2} of {:.2} GB received",
                got as f64 / 1e9,
                lesson_total as f64 / 1e9
            )
        })
    };
    let lesson = wait_complete(
        &rig,
        "lesson",
        t_lesson,
        timeout,
        &received,
        (1..=n)
            .map(|k| Target {
                laptop: k,
                rest_on: k,
                folder: lessons_id(CLASS),
                files: (0..plan.files)
                    .map(|i| {
                        (
                            rig.laptops[k]
                                .class_dir()
                                .join("Lessons")
                                .join(Plan::file_name(i)),
                            plan.file_size(i),
                        )
                    })
                    .collect(),
                bytes: plan.lesson_bytes,
            })
            .collect(),
    )?;
    let cpu_lesson_end = cpu_sample(&rig);
    let lesson_saturated = busy_lesson.saturated();
    let foreign_after = foreign_syncthings(&rig);
    let foreign = (
        foreign_before.len().max(foreign_after.len()),
        foreign_cpu(&foreign_before, &foreign_after),
    );
    let sent_after: Vec<u64> = port_counters(&rig.net)?.iter().map(|c| c.0).collect();
    let mesh_after = mesh_state(&rig, &ids)?;
    let sent: Vec<u64> = sent_after
        .iter()
        .zip(&sent_before)
        .map(|(a, b)| a.saturating_sub(*b))
        .collect();
    // Every student has what the teacher shared (one file compared byte for byte each).
    let last = plan.files - 1;
    for k in 1..=n {
        let got = rig.laptops[k]
            .class_dir()
            .join("Lessons")
            .join(Plan::file_name(last));
        if !same_content(&lesson_files[last], &got)? {
            bail!(
                "{}: {} differs from the lesson",
                rig.laptops[k].name,
                got.display()
            );
        }
    }

    // The submissions.
    let cpu_sub_start = cpu_sample(&rig);
    let busy_sub = BusySampler::start();
    let t_sub = Instant::now();
    parallel(n, PARALLEL * 2, |j| {
        let k = j + 1;
        rig.class(
            bin,
            k,
            &["submit", CLASS, crate::host::path_str(&homework[j])?],
        )
        .map(|_| ())
    })?;
    let submit_cmds = t_sub.elapsed().as_secs_f64();
    progress(&format!(
        "submit: {n} students' submit commands done in {submit_cmds:.1} s"
    ));
    let submissions = wait_complete(
        &rig,
        "submissions",
        t_sub,
        timeout,
        &|| None,
        (1..=n)
            .map(|k| Target {
                laptop: 0,
                rest_on: 0,
                folder: submissions_id(CLASS, &format!("s{k}")),
                files: vec![(
                    rig.laptops[0]
                        .class_dir()
                        .join("Submissions")
                        .join(format!("s{k}"))
                        .join(format!("homework-s{k}.bin")),
                    plan.submission_bytes,
                )],
                bytes: plan.submission_bytes,
            })
            .collect(),
    )?;
    let cpu_sub_end = cpu_sample(&rig);
    let sub_saturated = busy_sub.saturated();
    let classmates_limited = (1..=n)
        .map(|k| {
            std::fs::read_to_string(scratch.join(format!("watch-s{k}.log")))
                .map(|t| {
                    t.lines()
                        .filter(|l| l.contains("per-device limit set"))
                        .count()
                })
                .unwrap_or(0)
        })
        .sum();

    // Peak memory, while every Syncthing still runs.
    let procs = syncthing_procs(&rig);
    let has_monitor = procs.iter().all(|p| !p.children.is_empty());
    let mut memory = Vec::new();
    let mut monitor_memory = Vec::new();
    for p in &procs {
        if has_monitor {
            memory.push(p.children.iter().filter_map(|c| vm_hwm(*c)).sum());
            monitor_memory.push(vm_hwm(p.started).unwrap_or(0));
        } else {
            memory.push(vm_hwm(p.started).unwrap_or(0));
        }
    }

    let figures = Figures {
        netem,
        link_check_mbit,
        setup,
        lesson,
        share_cmd,
        submissions,
        submit_cmds,
        lesson_sent_teacher: sent[0],
        lesson_sent_students: sent[1..].to_vec(),
        introducer,
        mesh_at_share,
        mesh_after,
        classmates_limited,
        memory,
        monitor_memory,
        has_monitor,
        cpu_lesson: CpuUse {
            saturated: lesson_saturated,
            ..cpu_use(&cpu_lesson_start, &cpu_lesson_end)
        },
        cpu_submissions: CpuUse {
            saturated: sub_saturated,
            ..cpu_use(&cpu_sub_start, &cpu_sub_end)
        },
        foreign_syncthings: foreign,
        cpu_all: cpu_use(&cpu_start, &cpu_sub_end),
        cores: std::thread::available_parallelism().map_or(1, |c| c.get()),
    };

    // Everything stops; nothing may be left.
    let t = Instant::now();
    let names: Vec<String> = rig
        .net
        .devices()
        .iter()
        .map(|d| d.ns.clone())
        .chain(std::iter::once(rig.net.bridge_ns().to_string()))
        .collect();
    drop(rig);
    check_gone(scratch, &names)?;
    progress(&format!(
        "cleanup: every Syncthing, serve and {} namespaces gone in {:.1} s",
        names.len(),
        t.elapsed().as_secs_f64()
    ));
    Ok(figures)
}

/// Whether this kernel has sch_netem: a netem qdisc on device 0's loopback, removed again.
fn netem_available(net: &Net) -> bool {
    let tc = |args: &[&str]| {
        Command::new("ip")
            .args(["netns", "exec", net.ns(0), "tc", "qdisc"])
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    };
    let ok = tc(&["add", "dev", "lo", "root", "netem", "delay", "1ms"]);
    if ok {
        tc(&["del", "dev", "lo", "root"]);
    }
    ok
}

/// One TCP stream of two seconds' worth of bytes from student 1 to the teacher, through
/// both shaped links; the rate measured by the receiver, Mbit/s.
fn link_check(net: &Net, plan: &Plan) -> Result<f64> {
    let bytes = (plan.rate_bytes() * 2.0) as u64;
    let teacher = net.device(0).addr;
    let addr = SocketAddr::from((teacher, CHECK_PORT));
    let listener = no_panic("link check", || net.in_ns(0, || TcpListener::bind(addr)))?
        .with_context(|| format!("link check: cannot listen on {addr}"))?;
    listener
        .set_nonblocking(true)
        .context("link check: nonblocking listener")?;
    std::thread::scope(|s| -> Result<f64> {
        let receiver = s.spawn(|| -> Result<(u64, Duration)> {
            let start = Instant::now();
            let (mut conn, _) = loop {
                match listener.accept() {
                    Ok(c) => break c,
                    Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                        if start.elapsed() > Duration::from_secs(20) {
                            bail!("link check: nobody connected within 20 s");
                        }
                        std::thread::sleep(Duration::from_millis(10));
                    }
                    Err(e) => return Err(e).context("link check: accept"),
                }
            };
            conn.set_nonblocking(false)
                .context("link check: blocking stream")?;
            conn.set_read_timeout(Some(Duration::from_secs(30)))
                .context("link check: read timeout")?;
            let mut buf = vec![0u8; 1 << 16];
            let mut got = 0u64;
            let mut first: Option<Instant> = None;
            loop {
                let k = conn.read(&mut buf).context("link check: read")?;
                if k == 0 {
                    break;
                }
                first.get_or_insert_with(Instant::now);
                got += k as u64;
            }
            Ok((got, first.map(|f| f.elapsed()).unwrap_or_default()))
        });
        let sent = no_panic("link check", || {
            net.in_ns(1, || -> Result<()> {
                let mut c = TcpStream::connect_timeout(&addr, Duration::from_secs(10))
                    .with_context(|| format!("link check: cannot connect to {addr}"))?;
                let buf = vec![0x5au8; 1 << 16];
                let mut left = bytes;
                while left > 0 {
                    let k = left.min(buf.len() as u64) as usize;
                    c.write_all(&buf[..k]).context("link check: write")?;
                    left -= k as u64;
                }
                c.shutdown(std::net::Shutdown::Write)
                    .context("link check: shutdown")?;
                Ok(())
            })
        })?;
        let received = receiver
            .join()
            .map_err(|_| anyhow::anyhow!("link check: the receiver panicked"))?;
        sent?;
        let (got, took) = received?;
        if got != bytes || took.is_zero() {
            bail!("link check: {got} of {bytes} bytes arrived");
        }
        Ok(got as f64 * 8.0 / took.as_secs_f64() / 1e6)
    })
}

/// How far the students know each other.
#[derive(Debug, Clone, Copy)]
struct Mesh {
    /// Students whose Lessons folder is shared with every classmate.
    introduced: usize,
    /// Students whose Lessons folder is shared with at least one classmate.
    sharing: usize,
    /// Student pairs connected (as each side counts them, halved).
    pairs: usize,
}

/// Every student's Lessons folder and connections, through its REST API.
fn mesh_state(rig: &Rig, ids: &[String]) -> Result<Mesh> {
    let n = ids.len() - 1;
    let mut mesh = Mesh {
        introduced: 0,
        sharing: 0,
        pairs: 0,
    };
    let mut ends = 0;
    for k in 1..=n {
        let (folder, conns) = rig.rest(k, |st| {
            (
                st.client().folder(&lessons_id(CLASS)),
                st.client().connections(),
            )
        })?;
        let folder = folder?;
        let conns = conns?;
        // The folder's devices include the student's own.
        let classmates = folder
            .devices
            .iter()
            .filter(|d| d.device_id != ids[0] && d.device_id != ids[k])
            .count();
        if classmates > 0 {
            mesh.sharing += 1;
        }
        if classmates + 1 >= n {
            mesh.introduced += 1;
        }
        ends += ids[1..]
            .iter()
            .enumerate()
            .filter(|(j, id)| {
                j + 1 != k
                    && conns
                        .get(id.as_str())
                        .and_then(|c| c.get("connected"))
                        .and_then(|v| v.as_bool())
                        == Some(true)
            })
            .count();
    }
    mesh.pairs = ends / 2;
    Ok(mesh)
}

/// One thing to wait for: files on a laptop's disk, then a folder's status.
#[derive(Debug)]
struct Target {
    /// Whose disk has the files (for messages).
    laptop: usize,
    /// Whose Syncthing confirms.
    rest_on: usize,
    folder: String,
    files: Vec<(PathBuf, u64)>,
    bytes: u64,
}

/// Whether a folder's status says it is complete with `bytes`.
fn complete(s: &FolderStatus, bytes: u64) -> bool {
    s.need_files == 0
        && s.need_bytes == 0
        && s.local_bytes == bytes
        && s.global_bytes == bytes
        && s.state == "idle"
}

/// Waits until every target is complete; the seconds from `start` at which each was.
fn wait_complete(
    rig: &Rig,
    what: &str,
    start: Instant,
    timeout: Duration,
    extra: &dyn Fn() -> Option<String>,
    targets: Vec<Target>,
) -> Result<Vec<f64>> {
    let n = targets.len();
    let total_files: usize = targets.iter().map(|t| t.files.len()).sum();
    // Files not yet at full size, per target.
    let mut pending: Vec<Vec<usize>> = targets
        .iter()
        .map(|t| (0..t.files.len()).collect())
        .collect();
    let mut done: Vec<Option<f64>> = vec![None; n];
    let mut last_print = Instant::now();
    let mut last_count = 0;
    loop {
        interrupt::check()?;
        for (i, t) in targets.iter().enumerate() {
            if done[i].is_some() {
                continue;
            }
            pending[i].retain(|&f| {
                let (path, size) = &t.files[f];
                std::fs::metadata(path).map_or(true, |m| m.len() != *size)
            });
            if !pending[i].is_empty() {
                continue;
            }
            let status = rig.rest(t.rest_on, |st| st.client().folder_status(&t.folder))?;
            if let Ok(s) = status {
                if complete(&s, t.bytes) {
                    done[i] = Some(start.elapsed().as_secs_f64());
                }
            }
        }
        let count = done.iter().filter(|d| d.is_some()).count();
        if count == n {
            break;
        }
        let files_done = total_files - pending.iter().map(Vec::len).sum::<usize>();
        let quiet = last_print.elapsed();
        if (count != last_count && quiet >= Duration::from_secs(5))
            || quiet >= Duration::from_secs(15)
        {
            progress(&format!(
                "{what}: {count}/{n} complete ({files_done}/{total_files} files{}), {:.1} s",
                extra().unwrap_or_default(),
                start.elapsed().as_secs_f64()
            ));
            last_print = Instant::now();
            last_count = count;
        }
        if start.elapsed() > timeout {
            let missing: Vec<String> = targets
                .iter()
                .zip(&done)
                .filter(|(_, d)| d.is_none())
                .map(|(t, _)| rig.laptops[t.laptop].name.clone())
                .collect();
            let first = targets
                .iter()
                .zip(&done)
                .find(|(_, d)| d.is_none())
                .map(|(t, _)| t.rest_on)
                .unwrap_or(0);
            bail!(
                "{what}: {count}/{n} complete after {:.0} s (--timeout); not: {}; Syncthing's log of {}: {}",
                timeout.as_secs_f64(),
                missing.join(" "),
                rig.laptops[first].name,
                rig.log_tail(first)
            );
        }
        std::thread::sleep(POLL);
    }
    progress(&format!(
        "{what}: {n}/{n} complete ({total_files}/{total_files} files), {:.1} s",
        start.elapsed().as_secs_f64()
    ));
    Ok(done.into_iter().map(|d| d.unwrap_or(0.0)).collect())
}

/// After the rig is dropped: no namespace of ours and no process with the scratch
/// directory on its command line (zombies aside) is left, within 10 s.
fn check_gone(scratch: &Path, namespaces: &[String]) -> Result<()> {
    let marker = scratch.to_string_lossy().into_owned();
    let start = Instant::now();
    loop {
        let listed = Command::new("ip")
            .args(["netns", "list"])
            .output()
            .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
            .unwrap_or_default();
        let ns_left: Vec<&String> = namespaces
            .iter()
            .filter(|n| listed.split_whitespace().any(|w| w == n.as_str()))
            .collect();
        let mut procs_left = Vec::new();
        if let Ok(rd) = std::fs::read_dir("/proc") {
            for e in rd.flatten() {
                let Some(pid) = e.file_name().to_str().and_then(|n| n.parse::<i32>().ok()) else {
                    continue;
                };
                let zombie = stat_fields(pid).is_some_and(|f| f.first().is_some_and(|s| s == "Z"));
                if zombie {
                    continue;
                }
                if let Ok(cmdline) = std::fs::read(e.path().join("cmdline")) {
                    let cmdline = String::from_utf8_lossy(&cmdline).replace('\0', " ");
                    if cmdline.contains(&marker) {
                        procs_left.push(format!("{pid}: {cmdline}"));
                    }
                }
            }
        }
        if ns_left.is_empty() && procs_left.is_empty() {
            return Ok(());
        }
        if start.elapsed() > Duration::from_secs(10) {
            bail!("left behind after the run: namespaces {ns_left:?}, processes {procs_left:?}");
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

// ---------------------------------------------------------------------------------------
// The report.

fn max(v: &[f64]) -> f64 {
    v.iter().copied().fold(0.0, f64::max)
}

fn min(v: &[f64]) -> f64 {
    v.iter().copied().fold(f64::INFINITY, f64::min)
}

fn median(v: &[f64]) -> f64 {
    let mut s = v.to_vec();
    s.sort_by(f64::total_cmp);
    match s.len() {
        0 => 0.0,
        l if l % 2 == 1 => s[l / 2],
        l => (s[l / 2 - 1] + s[l / 2]) / 2.0,
    }
}

fn mean(v: &[f64]) -> f64 {
    if v.is_empty() {
        0.0
    } else {
        v.iter().sum::<f64>() / v.len() as f64
    }
}

fn mib(b: f64) -> f64 {
    b / (1024.0 * 1024.0)
}

impl Figures {
    /// Whether students sent a real share of the lesson (more than 5 % of what they got).
    /// Whether other processes used more than a tenth of a core during the lesson.
    fn not_alone(&self) -> bool {
        self.cpu_lesson.others_user > 0.1 * self.cpu_lesson.wall
    }

    /// The students' share of the bytes sent during the lesson (0..1).
    fn students_share(&self) -> f64 {
        let students: u64 = self.lesson_sent_students.iter().sum();
        let all = students + self.lesson_sent_teacher;
        if all == 0 {
            0.0
        } else {
            students as f64 / all as f64
        }
    }

    /// Whether the students sent a real part of the lesson (a tenth or more of the bytes;
    /// below that it is acknowledgements, indexes and a few blocks).
    fn swarmed(&self) -> bool {
        self.students_share() >= 0.1
    }

    fn report(&self, plan: &Plan, json: bool) -> Result<()> {
        let n = plan.students;
        let lesson = max(&self.lesson);
        let subs = max(&self.submissions);
        let students_sent: u64 = self.lesson_sent_students.iter().sum();
        let mem: Vec<f64> = self.memory.iter().map(|&b| b as f64).collect();
        let mon: Vec<f64> = self.monitor_memory.iter().map(|&b| b as f64).collect();
        let lesson_copies = plan.lesson_bytes as f64;
        let flow = if self.swarmed() {
            format!(
                "students passed lesson blocks to each other (swarm): {:.0} % of the bytes came from students",
                self.students_share() * 100.0
            )
        } else {
            format!(
                "the lesson came from the teacher ({:.0} % of the bytes from students)",
                self.students_share() * 100.0
            )
        };
        let c = &self.cpu_lesson;
        let cpu_bound = if c.machine_busy >= 0.9 || c.saturated >= 0.5 {
            "the lesson was CPU-bound"
        } else if c.saturated >= 0.2 {
            "the lesson was partly CPU-bound"
        } else {
            "the lesson was not CPU-bound"
        };
        if json {
            let cpu = |c: &CpuUse| {
                serde_json::json!({
                    "wall_seconds": c.wall,
                    "syncthing_cpu_seconds": c.syncthing,
                    "watch_cpu_seconds": c.watch,
                    "bench_and_serve_cpu_seconds": c.bench,
                    "other_processes_user_cpu_seconds": c.others_user,
                    "machine_busy": c.machine_busy,
                    "machine_saturated_share": c.saturated,
                })
            };
            let v = serde_json::json!({
                "devices": n,
                "lesson_bytes": plan.lesson_bytes,
                "lesson_files": plan.files,
                "submission_bytes": plan.submission_bytes,
                "rate_mbit": plan.rate_mbit,
                "delay_ms": if self.netem { Some(plan.delay_ms) } else { None },
                "link_check_mbit": self.link_check_mbit,
                "setup_seconds": self.setup.iter().map(|(k, v)| serde_json::json!({"step": k, "seconds": v})).collect::<Vec<_>>(),
                "lesson_seconds": lesson,
                "lesson_first_seconds": min(&self.lesson),
                "lesson_median_seconds": median(&self.lesson),
                "lesson_per_student_seconds": self.lesson,
                "share_command_seconds": self.share_cmd,
                "swarm_bound_seconds": plan.swarm_bound(),
                "teacher_alone_bound_seconds": plan.teacher_alone_bound(),
                "lesson_over_swarm_bound": lesson / plan.swarm_bound(),
                "lesson_over_teacher_alone_bound": lesson / plan.teacher_alone_bound(),
                "lesson_sent_teacher_bytes": self.lesson_sent_teacher,
                "lesson_sent_students_bytes": students_sent,
                "introducer": self.introducer,
                "students_introduced_at_share": self.mesh_at_share.introduced,
                "student_pairs_connected_at_share": self.mesh_at_share.pairs,
                "students_sharing_lessons_after": self.mesh_after.sharing,
                "student_pairs_connected_after": self.mesh_after.pairs,
                "classmates_limited_by_watch": self.classmates_limited,
                "swarmed": self.swarmed(),
                "students_share_of_bytes_sent": self.students_share(),
                "submissions_seconds": subs,
                "submit_commands_seconds": self.submit_cmds,
                "submissions_bound_seconds": plan.submissions_bound(),
                "submissions_over_bound": subs / plan.submissions_bound(),
            });
            // Two objects merged: one json! of everything passes the macro's recursion limit.
            let machine = serde_json::json!({
                "memory_vmhwm_bytes": self.memory,
                "memory_is_child_of_monitor": self.has_monitor,
                "monitor_vmhwm_bytes": self.monitor_memory,
                "cpu_lesson": cpu(&self.cpu_lesson),
                "cpu_submissions": cpu(&self.cpu_submissions),
                "cpu_all": cpu(&self.cpu_all),
                "cores": self.cores,
                "cpu_verdict": cpu_bound,
                "not_alone_on_the_machine": self.not_alone(),
                "foreign_syncthing_processes": self.foreign_syncthings.0,
                "foreign_syncthing_cpu_seconds_lesson": self.foreign_syncthings.1,
            });
            let mut v = v;
            if let (Some(all), Some(more)) = (v.as_object_mut(), machine.as_object()) {
                all.extend(more.clone());
            }
            println!("{}", serde_json::to_string_pretty(&v)?);
        } else {
            println!(
                "classroom: {n} students + teacher, lesson {} MB in {} files, submissions {} MB each",
                plan.lesson_bytes / 1_000_000,
                plan.files,
                plan.submission_bytes / 1_000_000
            );
            println!(
                "links: {} Mbit/s each way (tbf at both ends; {:.1} Mbit/s measured with one TCP stream), {}",
                plan.rate_mbit,
                self.link_check_mbit,
                if self.netem {
                    format!("delay {} ms at each end (netem)", plan.delay_ms)
                } else {
                    "delay: not applied (no sch_netem in this kernel)".to_string()
                }
            );
            for (k, v) in &self.setup {
                println!("setup: {k}: {v:.1} s");
            }
            println!(
                "lesson: {lesson:.1} s (first student {:.1} s, median {:.1} s; the share command {:.1} s)",
                min(&self.lesson),
                median(&self.lesson),
                self.share_cmd
            );
            println!(
                "  swarm bound {:.1} s: x{:.2}; teacher-alone bound {:.1} s: x{:.2}; closer to the {} bound",
                plan.swarm_bound(),
                lesson / plan.swarm_bound(),
                plan.teacher_alone_bound(),
                lesson / plan.teacher_alone_bound(),
                if lesson - plan.swarm_bound() < plan.teacher_alone_bound() - lesson {
                    "swarm"
                } else {
                    "teacher-alone"
                }
            );
            println!(
                "  per-device limit {DEVICE_LIMIT_KBPS} KiB/s (decision 77): one source alone feeds a student the lesson in {:.1} s at best",
                plan.pair_limit_bound()
            );
            println!(
                "  sent during the lesson: teacher {:.2} GB ({:.1} lessons), students {:.2} GB ({:.1} lessons): {flow}",
                self.lesson_sent_teacher as f64 / 1e9,
                self.lesson_sent_teacher as f64 / lesson_copies,
                students_sent as f64 / 1e9,
                students_sent as f64 / lesson_copies,
            );
            let pairs = n * n.saturating_sub(1) / 2;
            if self.introducer {
                println!(
                    "  the teacher introduces: at the share {}/{n} students knew every classmate, {} of {pairs} student pairs connected; after the lesson {}; watch limited {} classmate devices",
                    self.mesh_at_share.introduced,
                    self.mesh_at_share.pairs,
                    self.mesh_after.pairs,
                    self.classmates_limited
                );
            } else {
                println!(
                    "  no introductions: every student's Lessons folder is shared with the teacher only"
                );
            }
            println!(
                "submissions: {subs:.1} s (the submit commands {:.1} s); bound {:.1} s (N x {} MB over the teacher's link): x{:.2}",
                self.submit_cmds,
                plan.submissions_bound(),
                plan.submission_bytes / 1_000_000,
                subs / plan.submissions_bound()
            );
            println!(
                "memory per laptop (VmHWM of {}): max {:.1} MiB, median {:.1} MiB, mean {:.1} MiB; the teacher's {:.1} MiB, the students' max {:.1} MiB",
                if self.has_monitor {
                    "the real Syncthing, the child of 1.19's monitor process"
                } else {
                    "its Syncthing process"
                },
                mib(max(&mem)),
                mib(median(&mem)),
                mib(mean(&mem)),
                mib(mem.first().copied().unwrap_or(0.0)),
                mib(max(mem.get(1..).unwrap_or_default()))
            );
            if self.has_monitor {
                println!(
                    "  the monitor processes, not counted above: max {:.1} MiB, median {:.1} MiB",
                    mib(max(&mon)),
                    mib(median(&mon))
                );
            }
            for (name, c) in [
                ("lesson", &self.cpu_lesson),
                ("submissions", &self.cpu_submissions),
                ("whole run", &self.cpu_all),
            ] {
                let saturated = if name == "whole run" {
                    String::new()
                } else {
                    format!(
                        ", at least 95 % busy in {:.0} % of its seconds",
                        c.saturated * 100.0
                    )
                };
                println!(
                    "cpu: {name}: Syncthing {:.1} s of CPU in {:.1} s wall ({:.2} of {} cores), the watch processes {:.1} s, the benchmark and serve {:.1} s, other processes {:.1} s of user CPU; the machine {:.0} % busy{saturated}",
                    c.syncthing,
                    c.wall,
                    if c.wall > 0.0 { c.syncthing / c.wall } else { 0.0 },
                    self.cores,
                    c.watch,
                    c.bench,
                    c.others_user,
                    c.machine_busy * 100.0
                );
            }
            println!(
                "cpu: {} Syncthings share {} cores here (the machine's busy time also holds the kernel's work for the {} shaped virtual links): {cpu_bound}",
                n + 1,
                self.cores,
                n + 1
            );
            if self.not_alone() {
                println!(
                    "cpu: warning: other processes used {:.1} s of CPU during the lesson ({:.0} % of a core): this run was not alone on the machine, its times are not this code's alone",
                    self.cpu_lesson.others_user,
                    self.cpu_lesson.others_user / self.cpu_lesson.wall.max(1e-9) * 100.0
                );
            }
            if self.foreign_syncthings.0 > 0 {
                println!(
                    "cpu: {} Syncthing processes of something else ran on this machine; they used {:.1} s of CPU during the lesson",
                    self.foreign_syncthings.0, self.foreign_syncthings.1
                );
            }
        }
        println!("lesson: all {n} devices complete in {lesson:.1} s");
        println!("submissions: all {n} at the teacher in {subs:.1} s");
        Ok(())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn plan(files: usize) -> Plan {
        Plan {
            students: 40,
            lesson_bytes: 200_000_000,
            files,
            submission_bytes: 5_000_000,
            rate_mbit: 100,
            delay_ms: 5,
        }
    }

    #[test]
    fn bounds_are_the_issues() {
        let p = plan(100);
        assert!((p.swarm_bound() - 16.0).abs() < 1e-9);
        assert!((p.teacher_alone_bound() - 640.0).abs() < 1e-9);
        assert!((p.submissions_bound() - 16.0).abs() < 1e-9);
    }

    #[test]
    fn files_add_up_to_the_lesson() {
        for files in [1, 3, 100, 7777] {
            let p = plan(files);
            let sum: u64 = (0..files).map(|i| p.file_size(i)).sum();
            assert_eq!(sum, p.lesson_bytes, "{files} files");
        }
    }

    #[test]
    fn random_content_is_deterministic_and_differs_per_seed() {
        let dir = tempfile::tempdir().unwrap();
        let (a, b, c) = (
            dir.path().join("a"),
            dir.path().join("b"),
            dir.path().join("c"),
        );
        write_random(&a, 300_001, 1).unwrap();
        write_random(&b, 300_001, 1).unwrap();
        write_random(&c, 300_001, 2).unwrap();
        assert_eq!(std::fs::metadata(&a).unwrap().len(), 300_001);
        assert!(same_content(&a, &b).unwrap());
        assert!(!same_content(&a, &c).unwrap());
        // No two 128 KiB blocks alike (Syncthing would copy a block it has).
        let bytes = std::fs::read(&a).unwrap();
        assert_ne!(bytes[..131_072], bytes[131_072..262_144]);
    }

    /// A folder is complete by its bytes and state, as `/rest/db/status` of 1.19 words it.
    #[test]
    fn a_folder_is_complete_by_its_bytes() {
        let status = |local: u64, need_files: u64, state: &str| -> FolderStatus {
            serde_json::from_value(serde_json::json!({
                "state": state, "globalBytes": 2_000_000, "globalFiles": 1,
                "localBytes": local, "localFiles": 1, "needBytes": 2_000_000 - local,
                "needFiles": need_files, "receiveOnlyChangedFiles": 0, "error": ""
            }))
            .unwrap()
        };
        assert!(complete(&status(2_000_000, 0, "idle"), 2_000_000));
        assert!(!complete(&status(2_000_000, 0, "syncing"), 2_000_000));
        assert!(!complete(&status(1_000_000, 1, "syncing"), 2_000_000));
        assert!(!complete(&status(2_000_000, 0, "idle"), 3_000_000));
    }

    #[test]
    fn medians() {
        assert_eq!(median(&[3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(&[4.0, 1.0, 2.0, 3.0]), 2.5);
        assert_eq!(median(&[]), 0.0);
    }
}
