//! The host packages xtask's tasks need: one list ([`NEEDS`]) of programs and files with
//! the Debian and Arch packages that provide them and the purpose they serve. `cargo xtask
//! test` and the VM tasks install what is missing themselves (Debian: apt-get; Arch: pacman
//! `--needed`), and `.ci/run` relies on that, so the list exists once.
//!
//! Installing never removes or downgrades a package: apt first simulates the install and,
//! when it would remove something, the install stops with one line naming both packages.
//! The one exception is handled, not refused: Debian's QEMU beside a newer `qemu-utils` from
//! backports, where the VM rig unpacks QEMU privately instead ([`super::private_qemu`]).
//! After installing, every needed program is run once more; one that still does not run is
//! named in one line with its package.

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};

use super::{cmd, distro, private_qemu, which, Distro};

pub use koompi_testutil::prereq::{Need, Purpose, NEEDS, OVMF_CODE, OVMF_VARS, QEMU_SYSTEM};
use Purpose::{Image, Qemu, Scenarios, Tests, Uefi};

/// Options of `cargo xtask host-packages`.
#[derive(Debug, clap::Args)]
pub struct ListOptions {
    /// The distribution whose package names to print (default: this host's; Debian's
    /// names on any other).
    #[arg(long, value_enum)]
    pub distro: Option<ListDistro>,
    /// Only the packages of the tests and benchmarks, not those of the VM rig.
    #[arg(long)]
    pub no_vm: bool,
}

/// `--distro` of `host-packages`.
#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum ListDistro {
    Debian,
    Arch,
}

/// `cargo xtask host-packages`: the package list, one per line, for IT staff and scripts.
pub fn list(opts: &ListOptions) -> Result<()> {
    let distro = match opts.distro {
        Some(ListDistro::Debian) => Distro::Debian,
        Some(ListDistro::Arch) => Distro::Arch,
        None => distro(),
    };
    let purposes: &[Purpose] = if opts.no_vm {
        &[Tests]
    } else {
        &[Tests, Image, Qemu, Uefi, Scenarios]
    };
    for p in packages(purposes, distro) {
        println!("{p}");
    }
    Ok(())
}

/// The packages that provide `purposes` on `distro`, sorted and without repeats.
pub fn packages(purposes: &[Purpose], distro: Distro) -> Vec<&'static str> {
    let set: BTreeSet<&str> = NEEDS
        .iter()
        .filter(|n| n.serves(purposes))
        .map(|n| package(n, distro))
        .collect();
    set.into_iter().collect()
}

fn package(n: &Need, distro: Distro) -> &'static str {
    if distro == Distro::Arch {
        n.arch
    } else {
        n.debian
    }
}

/// Why a need is not met.
#[derive(Debug)]
enum Missing {
    Absent,
    /// The program exists but does not run (a missing library, a wrong architecture).
    Broken(String),
}

/// Checks a need: the file exists, or the program is found and runs.
fn check(n: &Need) -> Result<(), Missing> {
    if n.what.starts_with('/') {
        return find_file(n.what).map(|_| ()).ok_or(Missing::Absent);
    }
    if n.what == QEMU_SYSTEM {
        // Debian's own, or the private copy unpacked beside a newer qemu-utils.
        if which(QEMU_SYSTEM).is_none() {
            return match private_qemu::installed() {
                Some(mut c) => runs({
                    c.arg("--version");
                    c
                })
                .map_err(Missing::Broken),
                None => Err(Missing::Absent),
            };
        }
    }
    let Some(path) = which(n.what) else {
        return Err(Missing::Absent);
    };
    let mut c = Command::new(path);
    // busybox answers --version with exit 127 ("applet not found").
    c.arg(if n.what == "busybox" {
        "--help"
    } else {
        "--version"
    });
    runs(c).map_err(Missing::Broken)
}

/// Runs `c` (any exit code but 126 and 127 will do) within 20 seconds; the reason
/// otherwise.
fn runs(mut c: Command) -> Result<(), String> {
    c.stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    let mut child = c.spawn().map_err(|e| format!("cannot run it: {e}"))?;
    let started = Instant::now();
    loop {
        match child.try_wait() {
            Ok(Some(status)) => {
                // 126/127: the loader or the shell could not run it.
                return match status.code() {
                    Some(126 | 127) | None => {
                        let mut err = String::new();
                        if let Some(mut s) = child.stderr.take() {
                            let _ = std::io::Read::read_to_string(&mut s, &mut err);
                        }
                        Err(format!(
                            "it does not run ({status}): {}",
                            err.lines().next().unwrap_or("").trim()
                        ))
                    }
                    Some(_) => Ok(()),
                };
            }
            Ok(None) if started.elapsed() > Duration::from_secs(20) => {
                let _ = child.kill();
                let _ = child.wait();
                return Err("it did not answer within 20 s".into());
            }
            Ok(None) => std::thread::sleep(Duration::from_millis(20)),
            Err(e) => return Err(format!("cannot wait for it: {e}")),
        }
    }
}

/// The first existing file of `|`-separated alternatives.
pub fn find_file(alternatives: &str) -> Option<PathBuf> {
    alternatives
        .split('|')
        .map(PathBuf::from)
        .find(|p| p.is_file())
}

/// The OVMF code and variables files.
pub fn ovmf() -> Result<(PathBuf, PathBuf)> {
    let code = find_file(OVMF_CODE).context("no OVMF code file (Debian package ovmf)")?;
    let vars = find_file(OVMF_VARS).context("no OVMF variables file (Debian package ovmf)")?;
    Ok((code, vars))
}

/// The short name of a need, for messages.
fn name(n: &Need) -> &str {
    n.what.split('|').next().unwrap_or(n.what)
}

/// Makes sure everything `purposes` need is there and runs, installing what is missing
/// when root on Debian or Arch; fails with one line otherwise.
pub fn ensure(task: &str, purposes: &[Purpose]) -> Result<()> {
    let needs: Vec<&Need> = NEEDS.iter().filter(|n| n.serves(purposes)).collect();
    let missing: Vec<&Need> = needs
        .iter()
        .copied()
        .filter(|n| check(n).is_err())
        .collect();
    if missing.is_empty() {
        return Ok(());
    }
    let distro = distro();
    let wanted: BTreeSet<&str> = missing.iter().map(|n| package(n, distro)).collect();
    let wanted: Vec<&str> = wanted.into_iter().collect();
    if !super::is_root() {
        bail!(
            "{task} needs {} (packages: {}); install them as root, or run the task as root \
             and it installs them itself",
            missing
                .iter()
                .map(|n| name(n))
                .collect::<Vec<_>>()
                .join(", "),
            wanted.join(" ")
        );
    }
    match distro {
        Distro::Debian => apt_install(task, &wanted)?,
        Distro::Arch => {
            let mut c = Command::new("pacman");
            c.args(["-S", "--needed", "--noconfirm"]).args(&wanted);
            eprintln!("xtask: installing for {task}: {}", cmd::describe(&c));
            c.stdout(Stdio::from(std::io::stderr()));
            cmd::run_inherited(&mut c)?;
        }
        Distro::Other => bail!(
            "{task} needs {}: this host is neither Debian nor Arch; install what provides them",
            missing
                .iter()
                .map(|n| name(n))
                .collect::<Vec<_>>()
                .join(", ")
        ),
    }
    recheck(task, &needs, distro)
}

/// After installing: every need is met, or one line names each one that is not.
fn recheck(task: &str, needs: &[&Need], distro: Distro) -> Result<()> {
    let still: Vec<String> = needs
        .iter()
        .filter_map(|n| match check(n) {
            Ok(()) => None,
            Err(Missing::Absent) => Some(format!(
                "{} is still missing (package {})",
                name(n),
                package(n, distro)
            )),
            Err(Missing::Broken(why)) => Some(format!(
                "{} (package {}): {why}",
                name(n),
                package(n, distro)
            )),
        })
        .collect();
    if still.is_empty() {
        return Ok(());
    }
    bail!("{task}: after installing, {}", still.join("; "))
}

/// apt-get with the environment of an unattended install.
fn apt_get() -> Command {
    let mut c = Command::new("apt-get");
    c.env("DEBIAN_FRONTEND", "noninteractive");
    c
}

/// Installs `wanted` with apt-get, never removing a package (see the module header).
fn apt_install(task: &str, wanted: &[&str]) -> Result<()> {
    eprintln!("xtask: {task}: refreshing apt's package lists (apt-get update)");
    let mut update = apt_get();
    update.args(["update", "-qq"]);
    if let Err(e) = cmd::run(&mut update) {
        // Stale lists may still do; the install says so if not.
        eprintln!("xtask: apt-get update failed, going on with the lists there are: {e:#}");
    }
    let mut plain: Vec<&str> = wanted.to_vec();
    let mut private = false;
    if !simulate_removals(&plain)?.is_empty() {
        // Find which package would remove which, one at a time.
        for p in wanted {
            let removed = simulate_removals(&[p])?;
            if removed.is_empty() {
                continue;
            }
            if *p == private_qemu::PACKAGE {
                private = true;
                plain.retain(|q| q != p);
                continue;
            }
            bail!(
                "{task}: installing {p} would remove {} (installed); xtask never removes a \
                 package: install {p} yourself or remove {} first",
                removed.join(", "),
                removed.join(", ")
            );
        }
    }
    if !plain.is_empty() {
        install_no_remove(task, &plain)?;
    }
    if private {
        private_qemu::install(task)?;
    }
    Ok(())
}

/// `apt-get install` of `packages` without recommends, refusing any removal.
pub(super) fn install_no_remove(task: &str, packages: &[&str]) -> Result<()> {
    let mut c = apt_get();
    c.args([
        "install",
        "-y",
        "-q",
        "--no-install-recommends",
        "--no-remove",
    ])
    .args(packages);
    eprintln!("xtask: installing for {task}: {}", cmd::describe(&c));
    c.stdout(Stdio::from(std::io::stderr()));
    cmd::run_inherited(&mut c)
}

/// The packages `apt-get install packages` would remove (a simulation, no changes).
pub(super) fn simulate_removals(packages: &[&str]) -> Result<Vec<String>> {
    let mut c = apt_get();
    c.args(["-s", "-q", "install", "--no-install-recommends"])
        .args(packages);
    let out = cmd::stdout(&mut c)?;
    Ok(removals(&out))
}

/// The `Remv NAME [VERSION]` lines of apt-get's simulation.
fn removals(simulation: &str) -> Vec<String> {
    simulation
        .lines()
        .filter_map(|l| l.strip_prefix("Remv "))
        .filter_map(|rest| rest.split_whitespace().next())
        .map(str::to_string)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;

    #[test]
    fn removals_are_read_from_a_simulation() {
        let sim = "NOTE: This is only a simulation!\n\
                   Remv qemu-utils [1:10.0.2+ds-2+deb13u1~bpo12+1]\n\
                   Inst qemu-system-common (1:7.2+dfsg-7+deb12u18+b2 Debian:12/stable [amd64])\n\
                   Conf qemu-system-common (1:7.2+dfsg-7+deb12u18+b2 Debian:12/stable [amd64])\n";
        assert_eq!(removals(sim), vec!["qemu-utils".to_string()]);
        assert!(removals("Inst a (1 x)\nConf a (1 x)\n").is_empty());
    }

    #[test]
    fn every_purpose_has_packages_on_both_distributions() {
        for p in [Tests, Image, Qemu, Uefi, Scenarios] {
            for d in [Distro::Debian, Distro::Arch] {
                let list = packages(&[p], d);
                assert!(!list.is_empty(), "{p:?} on {d:?}");
                assert!(list.iter().all(|n| !n.is_empty() && !n.contains(' ')));
            }
        }
    }

    /// Every program the VM rig starts (`Command::new("...")` in xtask/src/vm) is on the
    /// list for the rig's purposes, unless every Debian and Arch system has it: so
    /// `vm-test` on a fresh host installs it instead of failing with `os error 2`.
    #[test]
    fn the_rig_installs_every_program_it_runs() {
        // Essential on both distributions (coreutils, dpkg on Debian) or installed by the
        // rig's own code path (apt-get, dpkg-deb: Debian only, where they are essential).
        const BASE: &[&str] = &[
            "cp", "date", "base64", "chown", "sh", "id", "apt-get", "dpkg-deb", "env",
        ];
        let rig = [Image, Qemu, Uefi, Scenarios];
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/src/vm");
        let mut missing = Vec::new();
        for entry in fs::read_dir(dir).expect("xtask/src/vm") {
            let path = entry.expect("entry").path();
            let src = fs::read_to_string(&path).expect("source");
            let mut at = 0;
            while let Some(p) = src[at..].find("Command::new(\"") {
                let start = at + p + "Command::new(\"".len();
                let end = start + src[start..].find('"').expect("closing quote");
                let prog = &src[start..end];
                let listed = NEEDS.iter().any(|n| n.what == prog && n.serves(&rig));
                if !listed && !BASE.contains(&prog) {
                    missing.push(format!("{prog} ({})", path.display()));
                }
                at = end;
            }
        }
        assert!(missing.is_empty(), "not on the rig's list: {missing:?}");
    }

    /// The README names every Debian package the two commands may install.
    #[test]
    fn the_readme_lists_every_debian_package() {
        let readme = fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../README.md"))
            .expect("README.md");
        let all = packages(&[Tests, Image, Qemu, Uefi, Scenarios], Distro::Debian);
        let absent: Vec<&&str> = all
            .iter()
            .filter(|p| {
                !readme.contains(&format!("`{p}`"))
                    && !readme.contains(&format!(" {p} "))
                    && !readme.contains(&format!(" {p},"))
            })
            .collect();
        assert!(absent.is_empty(), "README.md does not name {absent:?}");
    }
}
