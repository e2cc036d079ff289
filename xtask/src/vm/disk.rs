//! Cleanup guards for building the image: a loop device with partition nodes, and a stack
//! of mounts. Both undo themselves on drop (also after an error); the explicit `finish`
//! methods do the same but report failures.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};

use super::{cmd, path_str, progress};

/// A loop device attached to an image file, with its partitions added by `partx -a`.
#[derive(Debug)]
pub struct LoopDevice {
    dev: String,
    partitions: bool,
    attached: bool,
}

impl LoopDevice {
    /// `losetup --find --show IMAGE`.
    pub fn attach(image: &Path) -> Result<Self> {
        let out = cmd::stdout(
            Command::new("losetup")
                .args(["--find", "--show"])
                .arg(image),
        )?;
        let dev = out.trim().to_string();
        if !dev.starts_with("/dev/loop") {
            bail!(
                "losetup printed no loop device for {}: {out:?}",
                image.display()
            );
        }
        Ok(LoopDevice {
            dev,
            partitions: false,
            attached: true,
        })
    }

    /// The whole-disk device, e.g. /dev/loop3.
    pub fn dev(&self) -> &str {
        &self.dev
    }

    /// Partition `n`'s node, e.g. /dev/loop3p2.
    pub fn part(&self, n: u32) -> String {
        format!("{}p{n}", self.dev)
    }

    /// `partx -a` (here `losetup -P` does not create the nodes), then waits until the
    /// nodes of partitions 1..=count exist. Partitions a killed process added to this
    /// loop device number outlive its detaching, and `partx -a` refuses to add them
    /// again, so whatever the kernel still lists is deleted first (`partx --update` only
    /// deletes them, it does not add the new ones).
    pub fn add_partitions(&mut self, count: u32) -> Result<()> {
        let _ = cmd::run_cleanup(Command::new("partx").args(["-d", &self.dev]));
        cmd::run(Command::new("partx").args(["-a", &self.dev]))?;
        self.partitions = true;
        let start = Instant::now();
        loop {
            let missing: Vec<String> = (1..=count)
                .map(|n| self.part(n))
                .filter(|p| !Path::new(p).exists())
                .collect();
            if missing.is_empty() {
                return Ok(());
            }
            if start.elapsed() > Duration::from_secs(10) {
                bail!(
                    "`partx -a {}` ran but {} did not appear",
                    self.dev,
                    missing.join(", ")
                );
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Removes the partitions and detaches the device, reporting failures.
    pub fn finish(mut self) -> Result<()> {
        self.release()
    }

    fn release(&mut self) -> Result<()> {
        if self.partitions {
            // Best effort: losetup -d removes the partitions of a detached device anyway.
            let _ = cmd::run_cleanup(Command::new("partx").args(["-d", &self.dev]));
            self.partitions = false;
        }
        if self.attached {
            self.attached = false;
            cmd::run_cleanup(Command::new("losetup").args(["-d", &self.dev]))?;
        }
        Ok(())
    }
}

impl Drop for LoopDevice {
    fn drop(&mut self) {
        if let Err(e) = self.release() {
            progress(&format!("warning: cleanup: {e:#}"));
        }
    }
}

/// Mounts made while building, unmounted in reverse order.
#[derive(Debug, Default)]
pub struct Mounts {
    stack: Vec<PathBuf>,
}

impl Mounts {
    /// `mount [-t FSTYPE] [-o OPTIONS] SOURCE TARGET`, creating TARGET if needed.
    pub fn mount(
        &mut self,
        source: &str,
        target: &Path,
        fstype: Option<&str>,
        options: Option<&str>,
    ) -> Result<()> {
        std::fs::create_dir_all(target)
            .with_context(|| format!("cannot create mount point {}", target.display()))?;
        let mut c = Command::new("mount");
        if let Some(t) = fstype {
            c.args(["-t", t]);
        }
        if let Some(o) = options {
            c.args(["-o", o]);
        }
        c.arg(source).arg(path_str(target)?);
        cmd::run(&mut c)?;
        self.stack.push(target.to_path_buf());
        Ok(())
    }

    /// How many mounts are active (for [`Mounts::unmount_to`]).
    pub fn depth(&self) -> usize {
        self.stack.len()
    }

    /// Unmounts the newest mounts until `depth` are left; reports the first failure.
    pub fn unmount_to(&mut self, depth: usize) -> Result<()> {
        let mut first_err = None;
        while self.stack.len() > depth {
            let Some(target) = self.stack.pop() else {
                break;
            };
            if let Err(e) = cmd::run_cleanup(Command::new("umount").arg(&target)) {
                // Never leave a mount behind: detach it lazily, still report the failure.
                let _ = cmd::run_cleanup(Command::new("umount").arg("--lazy").arg(&target));
                first_err.get_or_insert(e);
            }
        }
        match first_err {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }

    /// Unmounts everything, reporting failures.
    pub fn finish(&mut self) -> Result<()> {
        self.unmount_to(0)
    }
}

impl Drop for Mounts {
    fn drop(&mut self) {
        if let Err(e) = self.unmount_to(0) {
            progress(&format!("warning: cleanup: {e:#}"));
        }
    }
}
