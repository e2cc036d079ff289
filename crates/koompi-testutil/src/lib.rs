//! Test fixtures: real Btrfs filesystems in loop devices, laid out as KOOMPI installs them.
//!
//! Privileged tests call [`require_root`] first. Without root they are skipped with a
//! message, unless `KOOMPI_PRIVILEGED_TESTS=1` (set by `.ci/run`) asks for them: then a
//! missing privilege or tool fails the test loudly instead of skipping it.
#![allow(clippy::unwrap_used)]
pub mod aur;
pub mod avahi;
pub mod khmer;
pub mod netns;
pub mod pkgrepo;
pub mod prereq;
pub mod tree;

pub use prereq::{fail, require_programs, which};

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};

/// Whether privileged tests were asked for (CI sets `KOOMPI_PRIVILEGED_TESTS=1`).
pub fn privileged_required() -> bool {
    std::env::var("KOOMPI_PRIVILEGED_TESTS").is_ok_and(|v| v == "1")
}

/// True when this test may use loop devices and mount; false (skip) otherwise.
/// Panics when the tests were required but cannot run.
pub fn require_root(test: &str) -> bool {
    let root = rustix::process::geteuid().is_root();
    const TOOLS: [&str; 4] = ["mkfs.btrfs", "losetup", "mount", "btrfs"];
    if root {
        return require_programs(test, &TOOLS);
    }
    let why = "not root";
    if privileged_required() {
        fail(&format!(
            "{test}: privileged test required (KOOMPI_PRIVILEGED_TESTS=1) but cannot run: \
             {why} (run `cargo xtask test`, which runs it as root)"
        ));
    }
    eprintln!("SKIP {test}: {why} (set KOOMPI_PRIVILEGED_TESTS=1 as root to run it)");
    false
}

/// True when this test runs as root and `programs` are installed; false (skip) when not
/// root; panics when privileged tests were required (KOOMPI_PRIVILEGED_TESTS=1) but this
/// is not root. For root tests that need no Btrfs tools (network namespaces).
pub fn require_root_with(test: &str, programs: &[&str]) -> bool {
    if !rustix::process::geteuid().is_root() {
        if privileged_required() {
            fail(&format!(
                "{test}: privileged test required (KOOMPI_PRIVILEGED_TESTS=1) but not root"
            ));
        }
        eprintln!("SKIP {test}: not root (set KOOMPI_PRIVILEGED_TESTS=1 as root to run it)");
        return false;
    }
    require_programs(test, programs)
}

/// Runs a command, panicking with its stderr when it fails. Returns stdout.
pub fn sh(prog: &str, args: &[&str]) -> String {
    let out = match Command::new(prog).args(args).output() {
        Ok(out) => out,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => fail(&format!(
            "{prog} is not installed: {}",
            prereq::install_hint(&[prog])
        )),
        Err(e) => panic!("cannot run {prog}: {e}"),
    };
    assert!(
        out.status.success(),
        "{prog} {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn p(path: &Path) -> &str {
    path.to_str().unwrap()
}

/// The layouts a fixture can have.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Layout {
    /// KOOMPI: `@`, `@snapshots`, `@home`, `@var_log` in the top level; `@` mounted as the
    /// root with `@snapshots` on its `.snapshots`.
    Koompi,
    /// snapper's default: `.snapshots` is a subvolume nested inside the managed subvolume.
    Nested,
}

/// A blank sparse disk attached as a loop device (the installer's target); detached on
/// drop, with any partitions added to it removed first: partitions added with partx
/// outlive the detaching and would be in the way of the next user of the device number.
#[derive(Debug)]
pub struct LoopDisk {
    pub device: String,
    _dir: tempfile::TempDir,
}

impl LoopDisk {
    /// A disk of `size_gib` GiB, all zeros.
    pub fn new(size_gib: u64) -> LoopDisk {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("disk.img");
        fs::File::create(&file)
            .unwrap()
            .set_len(size_gib * 1024 * 1024 * 1024)
            .unwrap();
        let device = sh("losetup", &["--find", "--show", p(&file)])
            .trim()
            .to_string();
        LoopDisk { device, _dir: dir }
    }
}

impl Drop for LoopDisk {
    fn drop(&mut self) {
        let _ = Command::new("partx").args(["-d", &self.device]).status();
        let _ = Command::new("losetup").args(["-d", &self.device]).status();
    }
}

/// A Btrfs filesystem in a loop device, mounted; everything is undone on drop.
#[derive(Debug)]
pub struct LoopBtrfs {
    pub dir: tempfile::TempDir,
    pub device: String,
    /// The top level (subvolid=5).
    pub top: PathBuf,
    /// The managed subvolume (`@` in the Koompi layout).
    pub root: PathBuf,
    /// A config file in snapper's format for `root`.
    pub config_file: PathBuf,
    pub layout: Layout,
    snapper_configs: Vec<PathBuf>,
}

/// KOOMPI's retention settings, as shipped in /etc/snapper/configs/root.
pub const KOOMPI_POLICY: &str = "\
TIMELINE_CREATE=\"yes\"
TIMELINE_CLEANUP=\"yes\"
TIMELINE_LIMIT_HOURLY=\"0\"
TIMELINE_LIMIT_DAILY=\"5\"
TIMELINE_LIMIT_WEEKLY=\"2\"
TIMELINE_LIMIT_MONTHLY=\"1\"
TIMELINE_LIMIT_QUARTERLY=\"0\"
TIMELINE_LIMIT_YEARLY=\"0\"
NUMBER_CLEANUP=\"yes\"
NUMBER_MIN_AGE=\"0\"
NUMBER_LIMIT=\"10\"
NUMBER_LIMIT_IMPORTANT=\"5\"
";

static COUNTER: AtomicU32 = AtomicU32::new(0);

impl LoopBtrfs {
    /// A fresh filesystem of `size_mib` MiB with `layout`, `extra_config` appended to the
    /// config file.
    pub fn new(layout: Layout, size_mib: u32, extra_config: &str) -> Self {
        let dir = tempfile::Builder::new()
            .prefix("koompi-btrfs-")
            .tempdir()
            .unwrap();
        let img = dir.path().join("disk.img");
        let f = fs::File::create(&img).unwrap();
        f.set_len(u64::from(size_mib) * 1024 * 1024).unwrap();
        drop(f);
        let device = sh("losetup", &["--find", "--show", p(&img)])
            .trim()
            .to_string();
        sh("mkfs.btrfs", &["-q", "-f", &device]);
        let top = dir.path().join("top");
        let root = dir.path().join("root");
        fs::create_dir(&top).unwrap();
        fs::create_dir(&root).unwrap();
        sh("mount", &["-o", "subvolid=5", &device, p(&top)]);
        let me = LoopBtrfs {
            config_file: dir.path().join("snapper-config"),
            dir,
            device,
            top,
            root,
            layout,
            snapper_configs: Vec::new(),
        };
        match layout {
            Layout::Koompi => {
                for sv in ["@", "@snapshots", "@home", "@var_log"] {
                    sh("btrfs", &["-q", "subvolume", "create", p(&me.top.join(sv))]);
                }
                fs::create_dir(me.top.join("@/.snapshots")).unwrap();
                fs::set_permissions(
                    me.top.join("@snapshots"),
                    std::os::unix::fs::PermissionsExt::from_mode(0o750),
                )
                .unwrap();
                me.mount_root();
            }
            Layout::Nested => {
                sh(
                    "btrfs",
                    &["-q", "subvolume", "create", p(&me.top.join("data"))],
                );
                sh(
                    "btrfs",
                    &[
                        "-q",
                        "subvolume",
                        "create",
                        p(&me.top.join("data/.snapshots")),
                    ],
                );
                sh("mount", &["-o", "subvol=data", &me.device, p(&me.root)]);
            }
        }
        let cfg = format!(
            "# test config\nSUBVOLUME=\"{}\"\nFSTYPE=\"btrfs\"\n{extra_config}",
            p(&me.root)
        );
        fs::write(&me.config_file, cfg).unwrap();
        me
    }

    /// KOOMPI's layout with KOOMPI's retention settings.
    pub fn koompi() -> Self {
        Self::new(Layout::Koompi, 320, KOOMPI_POLICY)
    }

    /// Mounts `@` on `root` and `@snapshots` on `root/.snapshots`.
    pub fn mount_root(&self) {
        sh("mount", &["-o", "subvol=@", &self.device, p(&self.root)]);
        sh(
            "mount",
            &[
                "-o",
                "subvol=@snapshots",
                &self.device,
                p(&self.root.join(".snapshots")),
            ],
        );
    }

    /// Unmounts and mounts the root again (what a reboot does to `@`).
    pub fn remount_root(&self) {
        self.umount_root();
        self.mount_root();
    }

    fn umount_root(&self) {
        // Lazy: under load a plain umount can fail with EBUSY for a moment, and the mount
        // that follows would then find the old one still there.
        let snaps = self.root.join(".snapshots");
        let _ = Command::new("umount").arg("-l").arg(&snaps).status();
        let _ = Command::new("umount").arg("-l").arg(&self.root).status();
    }

    /// `.snapshots` of the managed subvolume.
    pub fn snapshots(&self) -> PathBuf {
        self.root.join(".snapshots")
    }

    /// Registers the config as `/etc/snapper/configs/NAME` so the real snapper can use it;
    /// removed on drop. Returns NAME.
    pub fn snapper_config(&mut self) -> String {
        let name = format!(
            "koompi-test-{}-{}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::SeqCst)
        );
        let dir = Path::new("/etc/snapper/configs");
        fs::create_dir_all(dir).unwrap();
        let path = dir.join(&name);
        fs::copy(&self.config_file, &path).unwrap();
        self.snapper_configs.push(path);
        name
    }

    /// Runs the real snapper (`--no-dbus`) on a registered config; returns stdout.
    pub fn snapper(&self, config: &str, args: &[&str]) -> String {
        let mut all = vec!["--no-dbus", "-c", config];
        all.extend_from_slice(args);
        sh("snapper", &all)
    }
}

impl Drop for LoopBtrfs {
    fn drop(&mut self) {
        for c in &self.snapper_configs {
            let _ = fs::remove_file(c);
        }
        // Lazy unmounts of everything below the fixture's directory, deepest first.
        let table = fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
        let base = self.dir.path().to_string_lossy().into_owned();
        let mut points: Vec<String> = table
            .lines()
            .filter_map(|l| l.split(' ').nth(4).map(str::to_string))
            .filter(|m| m.starts_with(&base))
            .collect();
        points.sort_by_key(|m| std::cmp::Reverse(m.len()));
        for m in points {
            let _ = Command::new("umount").args(["-l", &m]).status();
        }
        let _ = Command::new("losetup").args(["-d", &self.device]).status();
    }
}

/// Writes a file, creating its parent directories.
pub fn write(path: &Path, content: &str) {
    if let Some(d) = path.parent() {
        fs::create_dir_all(d).unwrap();
    }
    fs::write(path, content).unwrap();
}
