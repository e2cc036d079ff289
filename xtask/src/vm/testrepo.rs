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
use super::console::Console;
use super::steps::CMD_TIMEOUT;

/// The repository name the guest's pacman.conf uses.
pub const REPO: &str = "koompitest";
/// The guest's pacman.conf for the test repository.
pub const CONF: &str = "/etc/koompi-test-pacman.conf";
/// Where the repositories are unpacked in the guest; `current` points at the one in use.
pub const REPOS: &str = "/srv/koompi-repo";
/// Characters of base64 per console command (well below the tty's 4096-byte line limit).
const CHUNK: usize = 2000;

/// Sends the repositories' tarball over the console, unpacks it under [`REPOS`], points
/// `current` at `first` and writes [`CONF`] for it.
pub fn transfer(c: &mut Console, tar: &[u8], first: &str) -> Result<()> {
    let out = cmd::run_input(Command::new("base64").arg("-w0"), Some(tar))?;
    let b64 = String::from_utf8(out.stdout).context("base64 printed non-UTF-8")?;
    c.run_ok("rm -f /tmp/repos.b64", CMD_TIMEOUT)?;
    for chunk in b64.as_bytes().chunks(CHUNK) {
        let chunk = std::str::from_utf8(chunk).context("base64 chunk")?;
        c.run_ok(
            &format!("printf %s '{chunk}' >> /tmp/repos.b64"),
            CMD_TIMEOUT,
        )?;
    }
    c.run_ok(
        &format!(
            "mkdir -p {REPOS} /var/lib/pacman /var/cache/pacman/pkg && \
             base64 -d /tmp/repos.b64 | tar -xz -C {REPOS} && ln -sfn {first} {REPOS}/current"
        ),
        CMD_TIMEOUT,
    )?;
    let conf = format!(
        "[options]\\nArchitecture = auto\\nSigLevel = Never\\nLocalFileSigLevel = Never\\n\
         \\n[{REPO}]\\nServer = file://{REPOS}/current\\n"
    );
    c.run_ok(&format!("printf '{conf}' > {CONF}"), CMD_TIMEOUT)?;
    Ok(())
}

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
    let steps: Vec<(&str, Vec<TestPkg>)> = vec![
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
    build_repos(steps)
}

/// Stand-ins for the packages of the catalog's `edition` (`repo-<edition>/`): empty
/// packages with Arch's names, so that `koompi-desktop install` runs the real pacman; the
/// programs themselves are Debian's, in the desktop image ([`super::image::Variant`]).
pub fn build_edition(root: &Path, edition: &str) -> Result<Vec<u8>> {
    let catalog = koompi_desktop::catalog::Catalog::load(&root.join("configs/editions.toml"))?;
    let e = catalog.edition(edition)?;
    let pkgs = e
        .all_packages()
        .into_iter()
        .map(|n| {
            TestPkg::new(&n, "1.0-1")
                .description("stand-in: Debian's package of this program is in the test image")
                .file(&format!("usr/share/koompi-standin/{n}"), "1\n", 0o644)
        })
        .collect();
    build_repos(vec![(&format!("repo-{edition}"), pkgs)])
}

/// Builds each `(directory, packages)` as one repository and returns them as a gzip'd tar.
fn build_repos(steps: Vec<(&str, Vec<TestPkg>)>) -> Result<Vec<u8>> {
    let out = tempfile::Builder::new()
        .prefix("koompi-vm-repos.")
        .tempdir()
        .context("cannot create a temporary directory")?;
    for (dir, pkgs) in &steps {
        // PkgRepo panics with a message on a failed makepkg; turn that into an error.
        let built = std::panic::catch_unwind(|| {
            let repo = PkgRepo::new(REPO);
            repo.build(pkgs);
            repo
        })
        .map_err(|_| anyhow::anyhow!("building the test packages of {dir} failed (see above)"))?;
        let dest = out.path().join(dir);
        fs::create_dir(&dest).with_context(|| format!("cannot create {}", dest.display()))?;
        copy_repo(&built.dir(), &dest)?;
    }
    let dirs: Vec<&str> = steps.iter().map(|(d, _)| *d).collect();
    let tar = cmd::run(
        Command::new("tar")
            .arg("-C")
            .arg(out.path())
            .args(["-czf", "-"])
            .args(&dirs),
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
