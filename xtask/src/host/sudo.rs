//! Becoming root for the tasks that need it (loop devices, mounts, installing packages).
//!
//! Run by a user, such a task re-runs itself through sudo by absolute paths: the xtask
//! binary that is running and the cargo that started it, with the user's rustup and cargo
//! homes and the toolchain's directory first on PATH, through `/usr/bin/env`. It never
//! relies on sudo's PATH (Debian's `secure_path` has no `~/.cargo/bin`) nor on `sudo -E`.
//! The crates are fetched as the user first and the root run is offline, so root writes
//! nothing into the user's cargo home. When the root run ends, however it ends short of
//! SIGKILL, the files it created in the target directory and `.vm-cache` are given back to
//! the user (and a run that was killed is healed by the next one, which does the same at
//! its start). Without sudo, the task says in one line to run it as root.

use std::ffi::OsString;
use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};

use anyhow::{bail, Context, Result};

use super::{cmd, is_root, target_dir, which, workspace_root};

/// Set in the root run to the user's `uid:gid`, whose files to give back.
const OWNER_VAR: &str = "KOOMPI_XTASK_OWNER";

/// What the caller does next.
pub enum Root {
    /// We are root: go on with the task (the guard gives files back when dropped).
    Continue(GiveBack),
    /// The task ran as root through sudo and ended with this code.
    Done(ExitCode),
}

/// Makes sure `task` runs as root: returns at once when we are root, else runs this
/// same command line through sudo and returns its exit code.
pub fn ensure_root(task: &str) -> Result<Root> {
    if is_root() {
        let give = GiveBack::from_env();
        give.restore();
        return Ok(Root::Continue(give));
    }
    let Some(sudo) = which("sudo") else {
        bail!(
            "cargo xtask {task} needs root (loop devices, mounts, host packages) and sudo is \
             not installed: run it as root"
        );
    };
    let root = workspace_root()?;
    let exe = std::env::current_exe().context("cannot find the running xtask binary")?;
    let cargo = cargo_path()?;
    // Fetch as the user, so that the offline root run reads the crates and writes none.
    let mut fetch = Command::new(&cargo);
    fetch.arg("fetch").arg("--quiet").current_dir(&root);
    cmd::run_inherited(&mut fetch)?;

    let home = std::env::var_os("HOME").map(PathBuf::from);
    let from_home = |var: &str, sub: &str| -> Option<OsString> {
        std::env::var_os(var)
            .filter(|v| !v.is_empty())
            .or_else(|| home.as_ref().map(|h| h.join(sub).into_os_string()))
    };
    let mut env: Vec<(String, OsString)> = Vec::new();
    let mut path = OsString::new();
    if let Some(dir) = cargo.parent() {
        path.push(dir);
        path.push(":");
    }
    if let Some(cargo_home) = from_home("CARGO_HOME", ".cargo") {
        path.push(Path::new(&cargo_home).join("bin"));
        path.push(":");
        env.push(("CARGO_HOME".into(), cargo_home));
    }
    path.push(std::env::var_os("PATH").unwrap_or_default());
    path.push(":/usr/local/sbin:/usr/sbin:/sbin");
    env.push(("PATH".into(), path));
    if let Some(rustup_home) = from_home("RUSTUP_HOME", ".rustup") {
        env.push(("RUSTUP_HOME".into(), rustup_home));
    }
    env.push(("CARGO".into(), cargo.into_os_string()));
    env.push(("CARGO_NET_OFFLINE".into(), "true".into()));
    let (uid, gid) = (
        rustix::process::getuid().as_raw(),
        rustix::process::getgid().as_raw(),
    );
    env.push((OWNER_VAR.into(), format!("{uid}:{gid}").into()));
    for keep in [
        "RUSTUP_TOOLCHAIN",
        "CARGO_TARGET_DIR",
        "KOOMPI_PRIVILEGED_TESTS",
        "RUST_BACKTRACE",
        "TERM",
    ] {
        if let Some(v) = std::env::var_os(keep) {
            env.push((keep.into(), v));
        }
    }
    let mut c = Command::new(sudo);
    c.arg("--").arg("/usr/bin/env");
    for (k, v) in &env {
        let mut kv = OsString::from(k);
        kv.push("=");
        kv.push(v);
        c.arg(kv);
    }
    c.arg(&exe).args(std::env::args_os().skip(1));
    eprintln!("xtask: {task} needs root: running it again through sudo");
    // Ctrl-C reaches the root run too; this process only waits for it.
    super::interrupt::install();
    let status = c
        .current_dir(&root)
        .status()
        .with_context(|| format!("cannot run `{}`", cmd::describe(&c)))?;
    let code = status.code().unwrap_or(1);
    Ok(Root::Done(ExitCode::from(u8::try_from(code).unwrap_or(1))))
}

/// The absolute path of the cargo that runs us.
fn cargo_path() -> Result<PathBuf> {
    let cargo = std::env::var_os("CARGO")
        .map(PathBuf::from)
        .or_else(|| which("cargo"))
        .context("cannot find cargo (CARGO is not set and cargo is not on PATH)")?;
    if cargo.is_absolute() {
        Ok(cargo)
    } else {
        which(&cargo.to_string_lossy()).context("cannot find cargo's absolute path")
    }
}

/// Gives the files a root run made back to the user who ran it through sudo.
pub struct GiveBack {
    owner: Option<(u32, u32)>,
}

impl GiveBack {
    fn from_env() -> Self {
        let owner = std::env::var(OWNER_VAR).ok().and_then(|o| {
            let (u, g) = o.split_once(':')?;
            let (u, g) = (u.parse::<u32>().ok()?, g.parse::<u32>().ok()?);
            (u != 0).then_some((u, g))
        });
        GiveBack { owner }
    }

    /// Gives what root owns (uid and gid 0) in the target directory and `.vm-cache` to the
    /// owner: symbolic links themselves, never what they point at, and never across a
    /// mount point (a mount left by a killed image build holds the guest's own files).
    fn restore(&self) {
        let Some((uid, gid)) = self.owner else { return };
        let Ok(root) = workspace_root() else { return };
        for dir in [target_dir(&root), root.join(".vm-cache")] {
            let Ok(meta) = fs::symlink_metadata(&dir) else {
                continue;
            };
            if !meta.is_dir() {
                continue;
            }
            let mut failed = 0usize;
            give_back(&dir, meta.dev(), uid, gid, &mut failed);
            if failed > 0 {
                eprintln!(
                    "xtask: could not give {failed} file(s) under {} back to uid {uid}",
                    dir.display()
                );
            }
        }
    }
}

/// [`GiveBack::restore`] for `path` and, when it is a directory on `dev`, what is in it.
fn give_back(path: &Path, dev: u64, uid: u32, gid: u32, failed: &mut usize) {
    let Ok(meta) = fs::symlink_metadata(path) else {
        return;
    };
    if meta.dev() != dev {
        return;
    }
    if meta.uid() == 0 && meta.gid() == 0 {
        // The ids came from getuid/getgid of the user's run.
        let owner = (
            Some(rustix::fs::Uid::from_raw(uid)),
            Some(rustix::fs::Gid::from_raw(gid)),
        );
        if rustix::fs::chownat(
            rustix::fs::CWD,
            path,
            owner.0,
            owner.1,
            rustix::fs::AtFlags::SYMLINK_NOFOLLOW,
        )
        .is_err()
        {
            *failed += 1;
        }
    }
    if meta.is_dir() {
        if let Ok(entries) = fs::read_dir(path) {
            for e in entries.flatten() {
                give_back(&e.path(), dev, uid, gid, failed);
            }
        }
    }
}

impl Drop for GiveBack {
    fn drop(&mut self) {
        self.restore();
    }
}
