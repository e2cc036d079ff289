//! `cargo xtask bench-snapshots`: times `koompi-snapshot` against the real snapper.
//!
//! Both tools run as processes (what a user pays: start-up, config parsing, the work, exit)
//! on ONE Btrfs filesystem in a loop device, each on its own subvolume with a nested
//! `.snapshots` subvolume and the same few hundred small files, with the same retention
//! settings. The calls alternate between the two tools (and which one goes first) so that
//! noise hits both alike. Measured:
//!
//! 1. `create` of 100 snapshots (cleanup number): the total time of the 100 processes;
//! 2. `list` with 100 snapshots: the median of several runs, after one warm-up run;
//! 3. `list` with 1000 snapshots: the same, after 900 more untimed creates;
//! 4. `cleanup` removing exactly 50 of 100 number snapshots (NUMBER_LIMIT=50, min age 0),
//!    on a fresh pair of subvolumes; both must have exactly 50 left afterwards.
//!
//! Every command must exit 0 and the snapshot counts must be what they should be, or the
//! benchmark fails instead of printing figures of something else. The ratio
//! koompi/snapper is printed but never judged: this is a measurement, not a test.
//!
//! Needs root, btrfs-progs, util-linux and snapper. Everything it sets up (the snapper
//! configs in /etc/snapper/configs, the mount, the loop device, the image) is removed at
//! the end and on error by a drop guard.

use std::ffi::OsString;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};

use crate::host::cmd::{check, describe, stdout as capture};
use crate::host::packages::{self, Purpose};
use crate::host::{build_tools as build, path_str, target_dir, workspace_root};

/// Options of `cargo xtask bench-snapshots`.
#[derive(Debug, clap::Args)]
pub struct Options {
    /// Print the results as a JSON array instead of a table.
    #[arg(long)]
    json: bool,
    /// Size of the sparse image file holding the Btrfs filesystem, in MiB.
    #[arg(long, value_name = "MIB", default_value_t = 2048,
          value_parser = clap::value_parser!(u64).range(512..))]
    image_size_mib: u64,
    /// Timed runs of `list` with 100 snapshots (the median is reported).
    #[arg(long, value_name = "N", default_value_t = 30,
          value_parser = clap::value_parser!(u32).range(1..))]
    list_runs_100: u32,
    /// Timed runs of `list` with 1000 snapshots (the median is reported).
    #[arg(long, value_name = "N", default_value_t = 15,
          value_parser = clap::value_parser!(u32).range(1..))]
    list_runs_1000: u32,
    /// Use the koompi-snapshot already in target/release instead of building it first.
    #[arg(long)]
    no_build: bool,
}

/// Retention settings shared by both tools; only NUMBER_* matter (timeline is off).
const POLICY: &str = "\
FSTYPE=\"btrfs\"
QGROUP=\"\"
ALLOW_USERS=\"\"
ALLOW_GROUPS=\"\"
SYNC_ACL=\"no\"
BACKGROUND_COMPARISON=\"no\"
NUMBER_CLEANUP=\"yes\"
NUMBER_MIN_AGE=\"0\"
NUMBER_LIMIT=\"50\"
NUMBER_LIMIT_IMPORTANT=\"0\"
TIMELINE_CREATE=\"no\"
TIMELINE_CLEANUP=\"no\"
EMPTY_PRE_POST_CLEANUP=\"no\"
";

/// Snapshots created (and timed) in step 1; `list (100)` runs with this many.
const FIRST: u32 = 100;
/// Snapshots in each store for `list (1000)`.
const MANY: u32 = 1000;
/// What `cleanup` must leave of [`FIRST`] number snapshots (NUMBER_LIMIT in [`POLICY`]).
const KEEP: u32 = 50;

/// Runs the benchmark.
pub fn run(opts: &Options) -> Result<()> {
    preflight()?;
    let root = workspace_root()?;
    if !opts.no_build {
        build(&root)?;
    }
    let koompi_bin = target_dir(&root).join("release/koompi-snapshot");
    if !koompi_bin.is_file() {
        bail!(
            "{} does not exist (build it: cargo build --release -p koompi-cli)",
            koompi_bin.display()
        );
    }
    progress(&format!(
        "{} vs {}",
        first_line(&capture(Command::new(&koompi_bin).arg("--version"))?),
        first_line(&capture(Command::new("snapper").arg("--version"))?)
    ));

    let mut fx = Fixture::new(opts.image_size_mib)?;
    let pair = fx.pair(&koompi_bin, "koompi", "snapper", "")?;
    let mut results = Vec::new();

    // 1. create 100.
    progress(&format!("timing {FIRST} creates in each store"));
    fx.sync()?;
    let (mut k, mut s) = (Duration::ZERO, Duration::ZERO);
    for i in 0..FIRST {
        let (dk, ds) = pair.alternate(i, |st| st.create(i + 1))?;
        k += dk;
        s += ds;
    }
    results.push(Row::new(format!("create {FIRST}"), k, s));
    pair.expect_count(FIRST, "after the timed creates")?;

    // 2. list with 100.
    fx.sync()?;
    results.push(time_list(&pair, FIRST, opts.list_runs_100)?);

    // 3. list with 1000.
    progress(&format!(
        "creating {} more snapshots in each store (not timed)",
        MANY - FIRST
    ));
    for i in FIRST..MANY {
        pair.alternate(i, |st| st.create(i + 1))?;
        if (i + 1) % 100 == 0 {
            progress(&format!("  {} of {MANY} snapshots in each store", i + 1));
        }
    }
    pair.expect_count(MANY, "after the untimed creates")?;
    fx.sync()?;
    results.push(time_list(&pair, MANY, opts.list_runs_1000)?);

    // 4. cleanup removing 50 of 100, on fresh subvolumes.
    let pair2 = fx.pair(&koompi_bin, "koompi2", "snapper2", "-2")?;
    progress(&format!(
        "creating {FIRST} snapshots in two fresh stores for cleanup (not timed)"
    ));
    for i in 0..FIRST {
        pair2.alternate(i, |st| st.create(i + 1))?;
    }
    pair2.expect_count(FIRST, "before cleanup")?;
    progress(&format!(
        "timing cleanup (NUMBER_LIMIT={KEEP}: removes {})",
        FIRST - KEEP
    ));
    // Each cleanup starts on a quiet filesystem: dirty data written and the subvolumes
    // deleted by the other tool cleaned away.
    fx.sync()?;
    let k = pair2.koompi.cleanup()?;
    fx.sync()?;
    let s = pair2.snapper.cleanup()?;
    fx.sync()?;
    pair2.expect_count(KEEP, "after cleanup")?;
    results.push(Row::new(format!("cleanup (remove {})", FIRST - KEEP), k, s));

    drop(fx);
    report(&results, opts.json)
}

/// One line on stderr.
fn progress(msg: &str) {
    eprintln!("bench-snapshots: {msg}");
}

pub(crate) fn first_line(s: &str) -> &str {
    s.lines().next().unwrap_or("").trim()
}

/// Fails with one line naming what is missing (the benchmark runs as root: main.rs).
fn preflight() -> Result<()> {
    packages::ensure("bench-snapshots", &[Purpose::Tests])
}

/// Runs a command with its stdout discarded; returns the wall time from spawn to exit.
fn timed(cmd: &mut Command) -> Result<Duration> {
    cmd.stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    let start = Instant::now();
    let out = cmd
        .output()
        .with_context(|| format!("cannot run `{}`", describe(cmd)))?;
    let elapsed = start.elapsed();
    check(cmd, &out)?;
    Ok(elapsed)
}

fn run_tool(prog: &str, args: &[&str]) -> Result<String> {
    capture(Command::new(prog).args(args))
}

/// The loop-device filesystem and the snapper configs; all undone on drop.
#[derive(Debug)]
struct Fixture {
    /// Removed last (fields drop after [`Drop::drop`] ran): holds the image and mount point.
    dir: tempfile::TempDir,
    /// The top level of the filesystem.
    mnt: PathBuf,
    device: Option<String>,
    mounted: bool,
    snapper_configs: Vec<PathBuf>,
}

impl Fixture {
    fn new(size_mib: u64) -> Result<Self> {
        let dir = tempfile::Builder::new()
            .prefix("koompi-bench-")
            .tempdir()
            .context("cannot create a temporary directory")?;
        let mnt = dir.path().join("mnt");
        let mut fx = Fixture {
            dir,
            mnt,
            device: None,
            mounted: false,
            snapper_configs: Vec::new(),
        };
        let img = fx.dir.path().join("btrfs.img");
        fs::File::create(&img)
            .and_then(|f| f.set_len(size_mib * 1024 * 1024))
            .with_context(|| format!("cannot create the image {}", img.display()))?;
        let device = run_tool("losetup", &["--find", "--show", path_str(&img)?])?
            .trim()
            .to_string();
        if device.is_empty() {
            bail!("losetup --find --show printed no device");
        }
        fx.device = Some(device.clone());
        run_tool("mkfs.btrfs", &["-q", "-f", &device])?;
        fs::create_dir(&fx.mnt).with_context(|| format!("cannot create {}", fx.mnt.display()))?;
        run_tool("mount", &["-t", "btrfs", &device, path_str(&fx.mnt)?])?;
        fx.mounted = true;
        progress(&format!(
            "{size_mib} MiB Btrfs on {device}, mounted on {}",
            fx.mnt.display()
        ));
        Ok(fx)
    }

    /// Writes dirty data and waits until deleted subvolumes are cleaned away.
    fn sync(&self) -> Result<()> {
        let m = path_str(&self.mnt)?;
        run_tool("btrfs", &["filesystem", "sync", m])?;
        run_tool("btrfs", &["subvolume", "sync", m])?;
        Ok(())
    }

    /// Creates subvolume `name` with a nested `.snapshots` and the same few hundred files.
    fn populate(&self, name: &str) -> Result<PathBuf> {
        let sv = self.mnt.join(name);
        run_tool("btrfs", &["-q", "subvolume", "create", path_str(&sv)?])?;
        run_tool(
            "btrfs",
            &[
                "-q",
                "subvolume",
                "create",
                path_str(&sv.join(".snapshots"))?,
            ],
        )?;
        for d in 0..20 {
            let dir = sv.join(format!("data/dir{d:02}"));
            fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
            for f in 0..15 {
                let p = dir.join(format!("file{f:02}.txt"));
                let line = format!("KOOMPI bench file {d}/{f}\n");
                fs::write(&p, line.repeat(1 + (d * 15 + f) % 40))
                    .with_context(|| format!("cannot write {}", p.display()))?;
            }
        }
        Ok(sv)
    }

    /// Two fresh stores with the same content and [`POLICY`]: koompi's on subvolume
    /// `koompi_sv` with a config file in the temporary directory, snapper's on
    /// `snapper_sv` with /etc/snapper/configs/koompi-bench-PID`suffix`.
    fn pair(
        &mut self,
        koompi_bin: &Path,
        koompi_sv: &str,
        snapper_sv: &str,
        suffix: &str,
    ) -> Result<Pair> {
        let ksv = self.populate(koompi_sv)?;
        let ssv = self.populate(snapper_sv)?;
        let kconf = self.dir.path().join(format!("{koompi_sv}.conf"));
        fs::write(&kconf, config_text(&ksv)?)
            .with_context(|| format!("cannot write {}", kconf.display()))?;

        let name = format!("koompi-bench-{}{suffix}", std::process::id());
        let dir = Path::new("/etc/snapper/configs");
        fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
        let sconf = dir.join(&name);
        if sconf.exists() {
            bail!("{} exists already", sconf.display());
        }
        self.snapper_configs.push(sconf.clone());
        fs::write(&sconf, config_text(&ssv)?)
            .with_context(|| format!("cannot write {}", sconf.display()))?;

        let mut kbase: Vec<OsString> = vec!["--config-file".into()];
        kbase.push(kconf.into_os_string());
        Ok(Pair {
            koompi: Store {
                tool: Tool::Koompi,
                program: koompi_bin.to_path_buf(),
                base: kbase,
            },
            snapper: Store {
                tool: Tool::Snapper,
                program: PathBuf::from("snapper"),
                base: vec!["--no-dbus".into(), "-c".into(), name.into()],
            },
        })
    }
}

impl Drop for Fixture {
    fn drop(&mut self) {
        for c in &self.snapper_configs {
            if let Err(e) = fs::remove_file(c) {
                if e.kind() != std::io::ErrorKind::NotFound {
                    progress(&format!("cleanup: cannot remove {}: {e}", c.display()));
                }
            }
        }
        if self.mounted {
            let ok = Command::new("umount")
                .arg("-l")
                .arg(&self.mnt)
                .status()
                .is_ok_and(|s| s.success());
            if !ok {
                progress(&format!("cleanup: umount -l {} failed", self.mnt.display()));
            }
        }
        if let Some(dev) = &self.device {
            let ok = Command::new("losetup")
                .args(["-d", dev])
                .status()
                .is_ok_and(|s| s.success());
            if !ok {
                progress(&format!("cleanup: losetup -d {dev} failed"));
            }
        }
    }
}

fn config_text(subvolume: &Path) -> Result<String> {
    Ok(format!(
        "# written by cargo xtask bench-snapshots; removed when it ends\nSUBVOLUME=\"{}\"\n{POLICY}",
        path_str(subvolume)?
    ))
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Tool {
    Koompi,
    Snapper,
}

/// One store and the command line that reaches it.
#[derive(Debug)]
struct Store {
    tool: Tool,
    program: PathBuf,
    /// Global options choosing the config.
    base: Vec<OsString>,
}

impl Store {
    fn name(&self) -> &'static str {
        match self.tool {
            Tool::Koompi => "koompi-snapshot",
            Tool::Snapper => "snapper",
        }
    }

    fn command(&self, args: &[&str]) -> Command {
        let mut c = Command::new(&self.program);
        c.args(&self.base).args(args);
        c
    }

    fn create(&self, n: u32) -> Result<Duration> {
        let desc = format!("bench {n}");
        timed(&mut match self.tool {
            Tool::Koompi => self.command(&["create", "--desc", &desc, "--cleanup", "number"]),
            Tool::Snapper => self.command(&["create", "-d", &desc, "-c", "number"]),
        })
    }

    fn list(&self) -> Result<Duration> {
        timed(&mut self.command(&["list"]))
    }

    fn cleanup(&self) -> Result<Duration> {
        timed(&mut match self.tool {
            Tool::Koompi => self.command(&["cleanup"]),
            Tool::Snapper => self.command(&["cleanup", "number"]),
        })
    }

    /// Snapshots in the store (snapper's snapshot 0, the live system, not counted).
    fn count(&self) -> Result<u32> {
        match self.tool {
            Tool::Koompi => {
                let out = capture(&mut self.command(&["--json", "list"]))?;
                let v: serde_json::Value = serde_json::from_str(&out)
                    .context("koompi-snapshot --json list: output is not JSON")?;
                let items = v
                    .as_array()
                    .context("koompi-snapshot --json list: output is not an array")?;
                if let Some(b) = items.iter().find(|i| i.get("broken").is_some()) {
                    bail!("koompi-snapshot lists a broken snapshot: {b}");
                }
                u32::try_from(items.len()).context("too many snapshots")
            }
            Tool::Snapper => {
                let out = capture(&mut self.command(&["--csvout", "list", "--columns", "number"]))?;
                let mut n = 0u32;
                for line in out.lines().map(str::trim).filter(|l| !l.is_empty()) {
                    match line.parse::<u32>() {
                        Ok(0) => {}
                        Ok(_) => n += 1,
                        Err(_) if line == "number" => {}
                        Err(_) => bail!("snapper --csvout list: unexpected line {line:?}"),
                    }
                }
                Ok(n)
            }
        }
    }
}

/// The same operation on both tools.
#[derive(Debug)]
struct Pair {
    koompi: Store,
    snapper: Store,
}

impl Pair {
    /// Runs `f` on both stores, koompi first when `i` is even, snapper first when odd.
    /// Returns (koompi's, snapper's) results.
    fn alternate<T>(&self, i: u32, f: impl Fn(&Store) -> Result<T>) -> Result<(T, T)> {
        if i.is_multiple_of(2) {
            let k = f(&self.koompi)?;
            let s = f(&self.snapper)?;
            Ok((k, s))
        } else {
            let s = f(&self.snapper)?;
            let k = f(&self.koompi)?;
            Ok((k, s))
        }
    }

    fn expect_count(&self, want: u32, when: &str) -> Result<()> {
        for st in [&self.koompi, &self.snapper] {
            let got = st.count()?;
            if got != want {
                bail!("{} has {got} snapshots {when}, expected {want}", st.name());
            }
        }
        Ok(())
    }
}

/// One warm-up run each, then `runs` alternating timed runs; the medians.
fn time_list(pair: &Pair, snapshots: u32, runs: u32) -> Result<Row> {
    progress(&format!(
        "timing list with {snapshots} snapshots: 1 warm-up + median of {runs} runs each"
    ));
    pair.alternate(0, Store::list)?;
    let mut k = Vec::new();
    let mut s = Vec::new();
    for i in 0..runs {
        let (dk, ds) = pair.alternate(i, Store::list)?;
        k.push(dk);
        s.push(ds);
    }
    Ok(Row::new(
        format!("list ({snapshots})"),
        median(&mut k)?,
        median(&mut s)?,
    ))
}

pub(crate) fn median(v: &mut [Duration]) -> Result<Duration> {
    if v.is_empty() {
        bail!("no measurements");
    }
    v.sort();
    let m = v.len() / 2;
    Ok(if v.len() % 2 == 1 {
        v[m]
    } else {
        (v[m - 1] + v[m]) / 2
    })
}

/// One line of the results.
#[derive(Debug)]
struct Row {
    operation: String,
    koompi: Duration,
    snapper: Duration,
}

impl Row {
    fn new(operation: String, koompi: Duration, snapper: Duration) -> Self {
        Row {
            operation,
            koompi,
            snapper,
        }
    }

    fn ratio(&self) -> f64 {
        self.koompi.as_secs_f64() / self.snapper.as_secs_f64()
    }
}

/// A duration the way people read it: `1.02 s`, `3.1 ms`, `850 µs`.
pub(crate) fn human(d: Duration) -> String {
    let s = d.as_secs_f64();
    if s >= 1.0 {
        format!("{s:.2} s")
    } else if s >= 1e-3 {
        format!("{:.1} ms", s * 1e3)
    } else {
        format!("{:.0} µs", s * 1e6)
    }
}

fn report(rows: &[Row], json: bool) -> Result<()> {
    let all_faster = rows.iter().all(|r| r.ratio() <= 1.0);
    let verdict = format!(
        "all ratios <= 1.0: {}",
        if all_faster { "yes" } else { "no" }
    );
    if json {
        let items: Vec<serde_json::Value> = rows
            .iter()
            .map(|r| {
                serde_json::json!({
                    "operation": r.operation,
                    "koompi_seconds": r.koompi.as_secs_f64(),
                    "snapper_seconds": r.snapper.as_secs_f64(),
                    "ratio": (r.ratio() * 100.0).round() / 100.0,
                })
            })
            .collect();
        println!("{}", serde_json::to_string_pretty(&items)?);
        // stdout stays pure JSON.
        eprintln!("{verdict}");
        return Ok(());
    }
    println!(
        "{:<22} {:<10} {:<10} ratio",
        "operation", "koompi", "snapper"
    );
    for r in rows {
        println!(
            "{:<22} {:<10} {:<10} {:.2}",
            r.operation,
            human(r.koompi),
            human(r.snapper),
            r.ratio()
        );
    }
    println!("{verdict}");
    Ok(())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn median_of_odd_and_even() {
        let ms = Duration::from_millis;
        assert_eq!(median(&mut [ms(3), ms(1), ms(2)]).unwrap(), ms(2));
        assert_eq!(
            median(&mut [ms(4), ms(1), ms(2), ms(3)]).unwrap(),
            ms(2) + ms(1) / 2
        );
        assert!(median(&mut []).is_err());
    }

    #[test]
    fn human_units() {
        assert_eq!(human(Duration::from_millis(1020)), "1.02 s");
        assert_eq!(human(Duration::from_micros(3100)), "3.1 ms");
        assert_eq!(human(Duration::from_micros(850)), "850 µs");
    }

    #[test]
    fn policy_keeps_what_the_cleanup_check_expects() {
        assert!(POLICY.contains(&format!("NUMBER_LIMIT=\"{KEEP}\"")));
        assert!(POLICY.contains("NUMBER_MIN_AGE=\"0\""));
    }
}
