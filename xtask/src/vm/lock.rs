//! One VM rig task at a time on a checkout: an exclusive lock on `.vm-cache/rig.lock`.
//!
//! Two rig tasks at once broke each other: one removed the image (or the half-built image)
//! the other was building or booting, and every QEMU start of a run reopens its image by
//! path. Two guests at once also starve each other on the test machines
//! (docs/decisions.md 16). So every task that builds, removes or boots images (`vm-image`,
//! `vm-test`, `vm-run`, the VM part of `cargo xtask test`) holds this lock while it runs;
//! a second one says whom it waits for and waits, and the lock goes with its holder's
//! process however it ends (flock).

use std::fs::{self, File, OpenOptions};
use std::io::{Read, Seek, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use rustix::fs::{flock, FlockOperation, OFlags};

use super::progress;
use crate::host::interrupt;

/// How long a task waits for another before it gives up (a whole full-tier run fits).
const MAX_WAIT: Duration = Duration::from_secs(3 * 60 * 60);

/// The lock, held until dropped (or the process ends).
#[derive(Debug)]
pub struct RigLock {
    _file: File,
}

/// `O_NOFOLLOW | O_NONBLOCK` for std's `custom_flags` (small positive flags: the cast to
/// `i32` keeps their value).
fn no_follow_no_block() -> i32 {
    (OFlags::NOFOLLOW | OFlags::NONBLOCK).bits() as i32
}

/// Takes the rig lock of the checkout at `root` for `task`, waiting for its holder.
pub fn acquire(root: &Path, task: &str) -> Result<RigLock> {
    acquire_with(&root.join(".vm-cache"), task, MAX_WAIT)
}

fn acquire_with(cache: &Path, task: &str, max_wait: Duration) -> Result<RigLock> {
    fs::create_dir_all(cache).with_context(|| format!("cannot create {}", cache.display()))?;
    let path = cache.join("rig.lock");
    // Never through a symbolic link: the lock file is ours, and only ours is written.
    let mut file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .mode(0o644)
        .custom_flags(no_follow_no_block())
        .open(&path)
        .with_context(|| format!("cannot open the lock file {}", path.display()))?;
    let started = Instant::now();
    let mut told = false;
    loop {
        match flock(&file, FlockOperation::NonBlockingLockExclusive) {
            Ok(()) => break,
            Err(rustix::io::Errno::WOULDBLOCK) => {}
            Err(e) => bail!("cannot lock {}: {e}", path.display()),
        }
        if !told {
            let mut holder = String::new();
            let _ = file.read_to_string(&mut holder);
            let _ = file.rewind();
            let holder = holder.trim();
            progress(&format!(
                "waiting for another VM task to finish ({}); the rig runs one at a time",
                if holder.is_empty() {
                    "holder unknown"
                } else {
                    holder
                }
            ));
            told = true;
        }
        interrupt::check()?;
        if started.elapsed() >= max_wait {
            bail!(
                "another VM task has held {} for {} minutes; stop it or wait, then run {task} again",
                path.display(),
                max_wait.as_secs() / 60
            );
        }
        std::thread::sleep(Duration::from_millis(500));
    }
    // Who holds it, for the next one that waits.
    let _ = file.set_len(0);
    let _ = file.rewind();
    let _ = write!(file, "pid {}: cargo xtask {task}", std::process::id());
    let _ = file.flush();
    Ok(RigLock { _file: file })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_task_waits_and_names_the_holder() {
        let dir = tempfile::tempdir().expect("tempdir");
        let first = acquire_with(dir.path(), "vm-test", MAX_WAIT).expect("first");
        let text = fs::read_to_string(dir.path().join("rig.lock")).expect("lock file");
        assert_eq!(
            text,
            format!("pid {}: cargo xtask vm-test", std::process::id())
        );
        // Another open file description cannot take it while the first holds it.
        let e = acquire_with(dir.path(), "vm-run", Duration::from_millis(300)).expect_err("held");
        assert!(
            format!("{e:#}").contains("another VM task has held"),
            "{e:#}"
        );
        drop(first);
        acquire_with(dir.path(), "vm-run", Duration::from_millis(300)).expect("free again");
    }

    #[test]
    fn a_link_in_place_of_the_lock_file_is_refused() {
        let dir = tempfile::tempdir().expect("tempdir");
        let elsewhere = dir.path().join("elsewhere");
        fs::write(&elsewhere, "keep").expect("write");
        std::os::unix::fs::symlink(&elsewhere, dir.path().join("rig.lock")).expect("link");
        let e = acquire_with(dir.path(), "vm-test", Duration::ZERO).expect_err("a link");
        assert!(
            format!("{e:#}").starts_with("cannot open the lock file"),
            "{e:#}"
        );
        assert_eq!(fs::read_to_string(&elsewhere).expect("read"), "keep");
    }
}
