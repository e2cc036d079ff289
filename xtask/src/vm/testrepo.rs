//! Test packages for the `upgrade-transactional` scenario.
//!
//! Real pacman packages, built on the host with makepkg (as an unprivileged user, through
//! koompi-testutil's `PkgRepo`) into three repositories that share one name, one per step
//! of the scenario:
//!
//! - `repo-v1`: libdemo 1.0 and demo-app 1.0 (`demo-app` prints `demo 1`);
//! - `repo-v2`: demo-app 2.0 (prints `demo 2`), the good upgrade;
//! - `repo-v3`: demo-app 3.0, whose `post_upgrade` points /usr/sbin/init at /bin/false,
//!   the upgrade that breaks every boot of the system it lands in (a kernel panic).
//!
//! The guest switches between them by repointing `/srv/koompi-repo/current`. The three
//! directories travel to the guest as one gzip'd tar over the serial console (a few KiB).

use std::fs;
use std::path::Path;
use std::process::Command;

use anyhow::{bail, Context, Result};
use koompi_testutil::pkgrepo::{PkgRepo, Scriptlet, TestPkg};

use super::cmd;

/// The repository name the guest's pacman.conf uses.
pub const REPO: &str = "koompitest";

fn libdemo() -> TestPkg {
    TestPkg::new("libdemo", "1.0-1")
        .description("Demo library for the KOOMPI VM test")
        .file("usr/share/libdemo/version", "1\n", 0o644)
}

fn demo_app(version: u32) -> TestPkg {
    TestPkg::new("demo-app", &format!("{version}.0-1"))
        .description("Demo application for the KOOMPI VM test")
        .depends(&["libdemo"])
        .file(
            "usr/local/bin/demo-app",
            format!("#!/bin/sh\necho demo {version}\n"),
            0o755,
        )
}

/// Builds the three repositories and returns them as a gzip'd tar (`repo-v1/`, ...).
pub fn build() -> Result<Vec<u8>> {
    let steps: [(&str, Vec<TestPkg>); 3] = [
        ("repo-v1", vec![libdemo(), demo_app(1)]),
        ("repo-v2", vec![libdemo(), demo_app(2)]),
        (
            "repo-v3",
            vec![
                libdemo(),
                demo_app(3).scriptlet(Scriptlet::PostUpgrade, "ln -sfn /bin/false /usr/sbin/init"),
            ],
        ),
    ];
    let out = tempfile::Builder::new()
        .prefix("koompi-vm-repos.")
        .tempdir()
        .context("cannot create a temporary directory")?;
    for (dir, pkgs) in steps {
        // PkgRepo panics with a message on a failed makepkg; turn that into an error.
        let built = std::panic::catch_unwind(|| {
            let repo = PkgRepo::new(REPO);
            repo.build(&pkgs);
            repo
        })
        .map_err(|_| anyhow::anyhow!("building the test packages of {dir} failed (see above)"))?;
        let dest = out.path().join(dir);
        fs::create_dir(&dest).with_context(|| format!("cannot create {}", dest.display()))?;
        copy_repo(&built.dir(), &dest)?;
    }
    let tar = cmd::run(
        Command::new("tar")
            .arg("-C")
            .arg(out.path())
            .args(["-czf", "-", "repo-v1", "repo-v2", "repo-v3"]),
    )?
    .stdout;
    if tar.is_empty() {
        bail!("tar of the test repositories is empty");
    }
    Ok(tar)
}

/// Copies the packages and the database files (not makepkg's leftovers).
fn copy_repo(from: &Path, to: &Path) -> Result<()> {
    let entries = fs::read_dir(from).with_context(|| format!("cannot read {}", from.display()))?;
    let mut n = 0;
    for e in entries {
        let e = e.with_context(|| format!("cannot read {}", from.display()))?;
        let name = e.file_name().to_string_lossy().into_owned();
        let wanted = name.ends_with(".pkg.tar.zst")
            || name.starts_with(&format!("{REPO}.db"))
            || name.starts_with(&format!("{REPO}.files"));
        if !wanted {
            continue;
        }
        // repo-add makes NAME.db a symlink to NAME.db.tar.gz: copy the content.
        let data =
            fs::read(e.path()).with_context(|| format!("cannot read {}", e.path().display()))?;
        fs::write(to.join(&name), data)
            .with_context(|| format!("cannot write {}", to.join(&name).display()))?;
        n += 1;
    }
    if n == 0 {
        bail!("no packages in {}", from.display());
    }
    Ok(())
}
