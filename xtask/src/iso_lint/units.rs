//! The systemd units: what KOOMPI's units (`system/systemd/`) and the overlay's own refer to,
//! the symlinks that enable, alias and mask them, and `systemd-analyze verify`.

use std::collections::BTreeSet;
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{anyhow, bail, ensure, Context, Result};

use super::{entries, is_unit_name, Ctx, Problems};

/// The units Arch packages install that the profile may enable, alias or mask: each line the
/// unit, its package, its `WantedBy=` and its `Alias=` (`-` for none).
const PACKAGE_UNITS: &str = "
    NetworkManager.service networkmanager multi-user.target \
        dbus-org.freedesktop.NetworkManager.service
    NetworkManager-dispatcher.service networkmanager - dbus-org.freedesktop.nm-dispatcher.service
    NetworkManager-wait-online.service networkmanager network-online.target -
    bluetooth.service bluez bluetooth.target dbus-org.bluez.service
    reflector.timer reflector timers.target -
    fstrim.timer util-linux timers.target -
    tlp.service tlp multi-user.target -
    acpid.service acpid multi-user.target -
    sshd.service openssh multi-user.target -
    iwd.service iwd multi-user.target -
    grub-btrfsd.service grub-btrfs multi-user.target -
    snapper-timeline.timer snapper timers.target -
    snapper-cleanup.timer snapper timers.target -
    systemd-timesyncd.service systemd sysinit.target dbus-org.freedesktop.timesync1.service
    systemd-time-wait-sync.service systemd sysinit.target -
    systemd-rfkill.service systemd - -
    systemd-rfkill.socket systemd - -
    multi-user.target systemd - -
    graphical.target systemd - -
    sysinit.target systemd - -
    timers.target systemd - -
    bluetooth.target systemd - -
    network-online.target systemd - -";

/// The symlinks of the units the seed enables (its customize_airootfs.sh), and of the ones
/// KOOMPI adds (the boot watchdog and deadline, docs/watchdog.md).
const SEED_ENABLED: &str = "multi-user.target.wants/NetworkManager.service \
    bluetooth.target.wants/bluetooth.service timers.target.wants/koompi-snapshot-daily.timer \
    sysinit.target.wants/koompi-boot-watchdog.service \
    multi-user.target.wants/koompi-boot-success.service \
    timers.target.wants/koompi-boot-deadline.timer timers.target.wants/reflector.timer \
    timers.target.wants/fstrim.timer multi-user.target.wants/tlp.service \
    multi-user.target.wants/acpid.service";

/// Where the documentation links of the units point (a path in this repository follows).
const DOCS_URL: &str = "https://github.com/koompi/koompi-os/blob/main/";

const ETC: &str = "iso/airootfs/etc/systemd/system";
const LIB: &str = "/usr/lib/systemd/system";

/// A package unit's package, `WantedBy=` and `Alias=`.
fn package_unit(name: &str) -> Option<(&'static str, &'static str, &'static str)> {
    let words = |l: &'static str| l.split_whitespace().collect::<Vec<_>>();
    let mut lines = PACKAGE_UNITS.lines().map(words).filter(|w| w.len() == 4);
    lines.find(|w| w[0] == name).map(|w| (w[1], w[2], w[3]))
}

/// Whether `name` is a unit of KOOMPI, of the overlay or of a known package.
fn known(cx: &Ctx, name: &str) -> bool {
    cx.units.contains_key(name) || cx.local.contains_key(name) || package_unit(name).is_some()
}

pub(super) fn references(cx: &Ctx) -> Problems {
    let mut p = Problems::default();
    let bad = !cx.path("system/systemd").is_dir();
    p += bad.then(|| "system/systemd: missing (KOOMPI's systemd units)".to_string());
    for (name, unit) in &cx.units {
        let file = format!("system/systemd/{name}");
        for prog in unit.programs() {
            p += cx.program(&file, &prog);
        }
        for url in unit.words("Unit", "Documentation") {
            let path = url.strip_prefix(DOCS_URL).filter(|path| !cx.exists(path));
            p += path.map(|path| format!("{file}: Documentation={url}: no {path}"));
        }
        for key in "Wants Requires BindsTo PartOf Upholds OnFailure".split(' ') {
            for other in unit.words("Unit", key).filter(|u| u.starts_with("koompi-")) {
                let bad = !cx.units.contains_key(other);
                p += bad.then(|| format!("{file}: {key}={other}: not in system/systemd"));
            }
        }
        if let Some(stem) = name.strip_suffix(".timer") {
            let service = format!("{stem}.service");
            let started = unit.get("Timer", "Unit").unwrap_or(&service);
            let bad = !cx.units.contains_key(started);
            p += bad.then(|| format!("{file}: the timer starts {started}, not in system/systemd"));
        }
    }
    for (name, unit) in &cx.local {
        let file = format!("{ETC}/{name}");
        for prog in unit.programs() {
            p += cx.program(&file, &prog);
        }
        for key in ["Requires", "BindsTo"] {
            for other in unit.words("Unit", key).filter(|u| !known(cx, u)) {
                p += format!("{file}: {key}={other}: unknown unit");
            }
        }
    }
    p
}

/// The committed symlinks under airootfs/etc/systemd/system and the units they enable.
pub(super) fn enabled(cx: &Ctx) -> Problems {
    let mut p = Problems::default();
    let link = |path: &Path| fs::read_link(path).map(|t| t.display().to_string());
    // "<wants>.wants/<unit>" of every valid enablement found
    let mut enabled = BTreeSet::new();
    for (name, path) in entries(&cx.path(ETC)) {
        let rel = format!("{ETC}/{name}");
        let is_dir = path.is_dir() && !path.is_symlink();
        let requires = name.strip_suffix(".requires");
        let wants = name.strip_suffix(".wants").or(requires);
        if let Ok(target) = link(&path).as_deref() {
            p += top_level_link(cx, &rel, &name, target);
        } else if let Some(wants) = wants.filter(|_| is_dir) {
            for (unit, path) in entries(&path) {
                let lrel = format!("{rel}/{unit}");
                let Ok(target) = link(&path) else {
                    p += format!("{lrel}: must be a symlink to the unit");
                    continue;
                };
                let problems = wants_link(cx, &lrel, wants, &unit, &target);
                if problems.0.is_empty() {
                    enabled.insert(format!("{wants}.wants/{unit}"));
                }
                p += problems;
            }
        } else if let Some(unit) = name.strip_suffix(".d").filter(|_| is_dir) {
            let bad = !known(cx, unit);
            p += bad.then(|| format!("{rel}: drop-in directory for unknown unit {unit}"));
            for (drop_in, _) in entries(&path) {
                let bad = !drop_in.ends_with(".conf");
                p += bad.then(|| format!("{rel}/{drop_in}: drop-ins must end in .conf"));
            }
        } else if is_dir {
            p += format!("{rel}: unexpected directory (not *.wants, *.requires or *.d)");
        } else {
            p += (!is_unit_name(&name)).then(|| format!("{rel}: unexpected file (not a unit)"));
        }
    }
    // Every unit with WantedBy= is enabled where it says, and so is every unit the seed enables.
    for (dir, units) in [("system/systemd", &cx.units), (ETC, &cx.local)] {
        for (name, unit) in units {
            for wanted in unit.words("Install", "WantedBy") {
                let link = format!("{wanted}.wants/{name}");
                let bad = !enabled.contains(&link);
                p += bad.then(|| format!("{dir}/{name}: WantedBy={wanted}, but no {ETC}/{link}"));
            }
        }
    }
    for link in SEED_ENABLED.split_whitespace() {
        let bad = !enabled.contains(link);
        p += bad.then(|| format!("{ETC}: {link} is missing (the seed enables it)"));
    }
    let default = fs::read_link(cx.path(ETC).join("default.target")).unwrap_or_default();
    let bad = default != Path::new(LIB).join("multi-user.target");
    p += bad.then(|| format!("{ETC}/default.target: not a link to {LIB}/multi-user.target"));
    p
}

/// A symlink directly in /etc/systemd/system: default.target, a mask or an alias.
fn top_level_link(cx: &Ctx, rel: &str, name: &str, target: &str) -> Problems {
    let mut p = Problems::default();
    let aliased = target.rsplit('/').next().unwrap_or(target);
    let aliases: Vec<&str> = if name == "default.target" {
        return p; // checked with the enabled units
    } else if target == "/dev/null" {
        match package_unit(name) {
            Some((package, _, _)) => p += cx.need(rel, package, &format!("masked unit {name}")),
            None => p += format!("{rel}: masks {name}, which is not a known unit"),
        }
        return p;
    } else if let Some((package, _, aliases)) = package_unit(aliased) {
        let bad = target != format!("{LIB}/{aliased}");
        p += bad.then(|| format!("{rel}: must point to {LIB}/{aliased}"));
        p += cx.need(rel, package, aliased);
        aliases.split(',').collect()
    } else if let Some(u) = cx.units.get(aliased).or_else(|| cx.local.get(aliased)) {
        u.words("Install", "Alias").collect()
    } else {
        p += format!("{rel}: points to {target}, which is not a known unit");
        return p;
    };
    p += (!aliases.contains(&name)).then(|| format!("{rel}: {aliased} has no Alias={name}"));
    p
}

/// A symlink in X.wants/: the unit exists, the link points where it is installed, and its
/// [Install] section wants it there. Its problems (none: it enables the unit).
fn wants_link(cx: &Ctx, rel: &str, wants: &str, unit: &str, target: &str) -> Problems {
    let mut p = Problems::default();
    let (lib, local) = (format!("{LIB}/{unit}"), format!("../{unit}"));
    let (installed, wanted_by): (_, Vec<_>) = if let Some(u) = cx.units.get(unit) {
        p += cx.need(rel, "koompi-tools", unit);
        (lib, u.words("Install", "WantedBy").collect())
    } else if let Some(u) = cx.local.get(unit) {
        (local, u.words("Install", "WantedBy").collect())
    } else if let Some((package, wanted_by, _)) = package_unit(unit) {
        p += cx.need(rel, package, unit);
        (lib, wanted_by.split(',').collect())
    } else {
        let known = "in system/systemd, nor in airootfs, nor in PACKAGE_UNITS (units.rs)";
        p += format!("{rel}: {unit} is neither {known}");
        return p;
    };
    let etc = cx.local.contains_key(unit) && target == format!("/etc/systemd/system/{unit}");
    if target != installed && !etc {
        p += format!("{rel}: must point to {installed} (where the unit is), not {target}");
    } else if !wanted_by.contains(&wants) {
        p += format!("{rel}: {unit} has no WantedBy={wants} (it has {wanted_by:?})");
    }
    p
}

/// The live keyring waits for a synchronised clock, and no target the boot waits for waits for
/// the clock (docs/decisions.md, 31). systemd-time-wait-sync has no timeout: without a network
/// time-sync.target never comes, and a target automatically waits for the units it wants
/// unless they say DefaultDependencies=no.
pub(super) fn time_sync(cx: &Ctx) -> Problems {
    let mut p = Problems::default();
    for (dir, path) in entries(&cx.path(ETC)) {
        let wants = dir.strip_suffix(".wants").or(dir.strip_suffix(".requires"));
        let Some(target) = wants.filter(|t| t.ends_with(".target") && path.is_dir()) else {
            continue;
        };
        for (name, _) in entries(&path) {
            let Some(unit) = cx.local.get(&name).or_else(|| cx.units.get(&name)) else {
                continue;
            };
            let waits = unit.words("Unit", "After").any(|a| a == "time-sync.target");
            let no = ["no", "false", "off", "0"];
            let own = unit
                .get("Unit", "DefaultDependencies")
                .is_some_and(|d| no.contains(&d));
            let bad = waits && !own;
            let why = "offline, time-sync.target never comes; DefaultDependencies=no unties it";
            p += bad.then(|| {
                format!(
                    "{ETC}/{dir}/{name}: After=time-sync.target, but {target} waits for it: {why}"
                )
            });
        }
    }
    let file = format!("{ETC}/pacman-init.service");
    let wait_sync = "systemd-time-wait-sync.service";
    let global = cx.exists(&format!("{ETC}/sysinit.target.wants/{wait_sync}"));
    let mut waited = global;
    if let Some(unit) = cx.local.get("pacman-init.service") {
        let after = unit.words("Unit", "After").any(|a| a == "time-sync.target");
        let why = "its local signatures would carry an unsynchronised clock (archiso 3f55c95)";
        p += (!after).then(|| format!("{file}: not After=time-sync.target: {why}"));
        let mut pulled = unit
            .words("Unit", "Wants")
            .chain(unit.words("Unit", "Requires"));
        let pulled = pulled.any(|u| u == wait_sync);
        waited |= pulled;
        let why = "nothing else delays the target until the clock is synchronised";
        let bad = after && !pulled && !global;
        p += bad.then(|| {
            format!("{file}: After=time-sync.target does nothing without Wants={wait_sync}: {why}")
        });
    }
    let timesyncd = "sysinit.target.wants/systemd-timesyncd.service";
    let bad = waited && !cx.exists(&format!("{ETC}/{timesyncd}"));
    p += bad.then(|| format!("{ETC}: no {timesyncd}: {wait_sync} waits for it for ever"));
    p
}

/// `systemd-analyze verify` of KOOMPI's units (with the live medium's drop-ins) and of the live
/// medium's own units, in a staged root; any output is a problem.
pub(super) fn verify(cx: &Ctx) -> Problems {
    let mut p = Problems::default();
    match stage_and_verify(cx) {
        Ok(out) => {
            for line in out.lines().map(str::trim).filter(|l| !l.is_empty()) {
                p += format!("system/systemd: systemd-analyze verify: {line}");
            }
        }
        Err(e) => p += format!("system/systemd: cannot run systemd-analyze verify: {e:#}"),
    }
    p
}

/// What `systemd-analyze verify` says, in a root with the host's units, KOOMPI's units and
/// binaries, the overlay's units and drop-ins, and stubs of the packages' programs.
fn stage_and_verify(cx: &Ctx) -> Result<String> {
    let stage = tempfile::tempdir().context("creating a staging root")?;
    let t = stage.path();
    let lib = t.join("usr/lib/systemd/system");
    let host = [LIB, "/lib/systemd/system"].map(Path::new);
    let host = host.into_iter().find(|d| d.is_dir());
    copy_tree(
        host.context("the host has no /usr/lib/systemd/system")?,
        &lib,
    )?;
    // The programs: KOOMPI's binaries as built, stubs for the packages' programs.
    let units = cx.units.values().chain(cx.local.values());
    let programs: BTreeSet<String> = units.flat_map(|u| u.programs()).collect();
    let koompi = programs.iter().filter_map(|p| p.strip_prefix("/usr/bin/"));
    let koompi: BTreeSet<&str> = koompi.filter(|b| b.starts_with("koompi")).collect();
    fs::create_dir_all(t.join("usr/bin"))?;
    for (name, path) in built_binaries(cx, &koompi)? {
        fs::copy(&path, t.join("usr/bin").join(name))?;
    }
    for stub in programs.iter().map(|p| t.join(p.trim_start_matches('/'))) {
        fs::create_dir_all(stub.parent().unwrap_or(t))?;
        if !stub.exists() {
            fs::write(&stub, "#!/bin/sh\n")?;
            fs::set_permissions(&stub, fs::Permissions::from_mode(0o755))?;
        }
    }
    let mut names = Vec::new();
    for name in cx.units.keys() {
        fs::copy(cx.path(&format!("system/systemd/{name}")), lib.join(name))?;
        names.push(format!("usr/lib/systemd/system/{name}"));
    }
    // The live medium's own units, and every drop-in it has.
    let etc = t.join("etc/systemd/system");
    fs::create_dir_all(&etc)?;
    for name in cx.local.keys() {
        fs::copy(cx.path(&format!("{ETC}/{name}")), etc.join(name))?;
        names.push(format!("etc/systemd/system/{name}"));
    }
    let drop_ins = entries(&cx.path(ETC))
        .into_iter()
        .filter(|(n, _)| n.ends_with(".d"));
    for (name, path) in drop_ins {
        copy_tree(&path, &etc.join(name))?;
    }
    let mut analyze = Command::new("systemd-analyze");
    let args = [
        format!("--root={}", t.display()),
        "verify".into(),
        "--man=no".into(),
    ];
    let out = analyze.args(args).args(&names).current_dir(t).output();
    let out = out.context("systemd-analyze not found (Debian/Arch package systemd)")?;
    let text = String::from_utf8_lossy(&out.stdout) + String::from_utf8_lossy(&out.stderr);
    let failed = format!("failed with {}", out.status);
    Ok(if out.status.success() || !text.trim().is_empty() {
        text.into()
    } else {
        failed
    })
}

/// Copies a directory tree, symlinks as symlinks, keeping the files that exist (`cp -Rn`).
fn copy_tree(from: &Path, to: &Path) -> Result<()> {
    fs::create_dir_all(to).with_context(|| format!("creating {}", to.display()))?;
    let st = Command::new("cp")
        .arg("-Rn")
        .arg(from.join("."))
        .arg(to)
        .status()?;
    if !st.success() {
        bail!("cp -Rn {} {} failed ({st})", from.display(), to.display());
    }
    Ok(())
}

/// The KOOMPI binaries from the target directory (release, then debug), built with `cargo
/// build --workspace --bins` (debug: quicker, and `cargo test` has built most of it) when one
/// is missing.
fn built_binaries(cx: &Ctx, names: &BTreeSet<&str>) -> Result<Vec<(String, PathBuf)>> {
    let target = &cx.cargo().map_err(|e| anyhow!("{e}"))?.1;
    let built = |n: &str| ["release", "debug"].map(|d| target.join(d).join(n));
    let find = |n: &str| built(n).into_iter().find(|p| p.is_file());
    if names.iter().any(|n| find(n).is_none()) {
        let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
        let args = ["build", "--workspace", "--bins", "--quiet"];
        let out = Command::new(cargo)
            .args(args)
            .current_dir(&cx.root)
            .output()?;
        let err = String::from_utf8_lossy(&out.stderr);
        ensure!(
            out.status.success(),
            "cargo build --workspace --bins failed: {}",
            err.trim()
        );
    }
    let found = names.iter().map(|n| Some((n.to_string(), find(n)?)));
    let found: Option<Vec<_>> = found.collect();
    found.with_context(|| format!("a KOOMPI binary is missing from {}", target.display()))
}
