//! The real tree passes every check; each check reports the mistakes planted in a temporary
//! copy of the tree.

#![allow(clippy::unwrap_used)]

use std::os::unix::fs::{symlink, PermissionsExt};

use super::*;

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

/// A copy of what the lint reads in `<tmp>/ws`, with the seed, when it is here, where
/// [`SEED_PATH`] finds it; the crates, xtask and target are links (cargo metadata, binaries).
fn copy() -> (tempfile::TempDir, PathBuf) {
    let (real, tmp) = (workspace(), tempfile::tempdir().unwrap());
    let ws = tmp.path().join("ws");
    fs::create_dir_all(ws.join(SEED_PATH).parent().unwrap()).unwrap();
    for dir in [
        "iso",
        "branding",
        "system",
        "docs",
        "scripts",
        "packaging",
        "configs",
        ".ci",
    ] {
        let cp = Command::new("cp")
            .arg("-R")
            .arg(real.join(dir))
            .arg(&ws)
            .status();
        assert!(cp.unwrap().success());
    }
    for name in ["crates", "xtask", "target", "Cargo.toml", "Cargo.lock"] {
        symlink(real.join(name), ws.join(name)).unwrap();
    }
    if let Ok(seed) = fs::read(real.join(SEED_PATH)) {
        fs::write(ws.join(SEED_PATH), seed).unwrap();
    }
    (tmp, ws)
}

/// Replaces every `from` in a file of the copy.
fn edit(ws: &Path, file: &str, from: &str, to: &str) {
    let text = fs::read_to_string(ws.join(file)).unwrap();
    assert!(text.contains(from), "{file} has no {from:?}");
    fs::write(ws.join(file), text.replace(from, to)).unwrap();
}

/// Plants mistakes in a fresh copy; `check` must report every one of `want`, each on one line.
fn assert_reports(check: &str, plant: impl FnOnce(&Path), want: &[&str]) {
    let (_tmp, ws) = copy();
    plant(&ws);
    let problems = lint(&ws, &[check.to_string()]);
    let all = problems.join("\n");
    for w in want {
        assert!(all.contains(w), "{check}: {w:?} is not reported in:\n{all}");
    }
    assert!(problems
        .iter()
        .all(|p| p.starts_with(&format!("{check}: ")) && !p.contains('\n')));
}

#[test]
fn the_real_tree_passes_every_check() {
    let problems = lint(&workspace(), &[]);
    assert!(
        problems.is_empty(),
        "iso-lint problems:\n{}",
        problems.join("\n")
    );
}

/// Every check of the old, monolithic lint is still here under its name.
#[test]
fn every_check_has_a_unique_name_and_the_old_ones_are_kept() {
    let names: BTreeSet<&str> = CHECKS.iter().map(|c| c.name).collect();
    assert_eq!(names.len(), CHECKS.len());
    assert!(CHECKS
        .iter()
        .all(|c| !c.about.is_empty() && c.about.len() < 80));
    let old = "profile bootmodes file-permissions no-customize-script packages pacman-conf \
        boot-menus initcpio unit-references units-enabled units-verify users live-config \
        pacman-hooks branding-texts os-release fastfetch plymouth-theme wallpapers shellcheck";
    for name in old.split_whitespace() {
        assert!(names.contains(name), "{name}");
    }
}

#[test]
fn profile() {
    let plant = |ws: &Path| {
        let f = "iso/profiledef.sh";
        edit(ws, f, "iso_name=\"koompi-os-base\"", "iso_name=\"other\"");
        edit(ws, f, "install_dir=\"koompi\"", "install_dir=\"Koompi_OS\"");
        edit(ws, f, "iso_label=\"KOOMPI_", "iso_label=\"koompi-");
        edit(
            ws,
            f,
            "airootfs_image_type=\"squashfs\"",
            "airootfs_image_type=\"erofs\"",
        );
    };
    let want = [
        "iso_name \"other\"",
        "install_dir \"Koompi_OS\"",
        "iso_label \"koompi-",
    ];
    assert_reports("profile", plant, &[&want[..], &["no `-zlzma`"]].concat());
    let unclosed = |ws: &Path| edit(ws, "iso/profiledef.sh", "'uefi.grub')", "'uefi.grub'");
    assert_reports(
        "profile",
        unclosed,
        &["iso/profiledef.sh: bash cannot source it"],
    );
}

#[test]
fn bootmodes() {
    let plant = |ws: &Path| {
        let two = "'uefi.grub' 'uefi.grub' 'uefi.systemd-boot'";
        edit(
            ws,
            "iso/profiledef.sh",
            "'bios.syslinux'",
            "'bios.syslinux.mbr'",
        );
        edit(ws, "iso/profiledef.sh", "'uefi.grub'", two);
    };
    let want = ["bios.syslinux.mbr is deprecated since archiso v86: use bios.syslinux"];
    let more = [
        "no BIOS boot mode",
        "uefi.grub is listed twice",
        "clash",
        "needs iso/efiboot",
    ];
    assert_reports("bootmodes", plant, &[&want[..], &more].concat());
}

#[test]
fn file_permissions() {
    let plant = |ws: &Path| {
        let tool = ws.join("iso/airootfs/usr/local/bin/tool");
        fs::create_dir_all(tool.parent().unwrap()).unwrap();
        fs::write(&tool, "#!/bin/sh\n").unwrap();
        fs::set_permissions(&tool, fs::Permissions::from_mode(0o755)).unwrap();
        let f = "iso/profiledef.sh";
        edit(
            ws,
            f,
            "[\"/etc/shadow\"]=\"0:0:400\"",
            "[\"/etc/shadow\"]=\"0:0:644\"",
        );
        edit(
            ws,
            f,
            "[\"/etc/gshadow\"]=\"0:0:400\"",
            "[\"/etc/nothere\"]=\"0:0:4o0\"",
        );
    };
    let want = [
        "iso/airootfs/usr/local/bin/tool: is executable but not in file_permissions",
        "iso/airootfs/etc/shadow: is a secret but file_permissions gives it 644",
        "iso/airootfs/etc/gshadow: is a secret but not in file_permissions",
        "file_permissions[/etc/nothere]: \"0:0:4o0\" is not uid:gid:mode",
        "file_permissions[/etc/nothere]: iso/airootfs/etc/nothere does not exist",
    ];
    assert_reports("file-permissions", plant, &want);
}

#[test]
fn no_customize_script() {
    let plant = |ws: &Path| {
        fs::create_dir_all(ws.join("iso/airootfs/root")).unwrap();
        fs::write(ws.join("iso/airootfs/root/customize_airootfs.sh"), "").unwrap();
    };
    let want = ["iso/airootfs/root/customize_airootfs.sh: is deprecated"];
    assert_reports("no-customize-script", plant, &want);
}

#[test]
fn packages() {
    let plant = |ws: &Path| {
        let f = "iso/packages.x86_64";
        edit(ws, f, "\nparu\n", "\nnoto-fonts-khmer\nzsh\n Bad_Name\n");
    };
    let want = [
        "noto-fonts-khmer does not exist in Arch",
        "zsh is listed twice",
        "blanks around the name",
        "\"Bad_Name\" is not a package name",
        "iso/packages.x86_64: paru is missing: the AUR helper",
    ];
    assert_reports("packages", plant, &want);
}

#[test]
fn pacman_conf() {
    let plant = |ws: &Path| {
        let block =
            "[koompi]\nSigLevel = Optional TrustAll\nServer = file:///@KOOMPI_LOCAL_REPO@\n";
        edit(ws, "iso/pacman.conf", block, "");
        let conf = fs::read_to_string(ws.join("iso/pacman.conf")).unwrap();
        fs::write(ws.join("iso/pacman.conf"), format!("{conf}\n{block}")).unwrap();
        edit(ws, "scripts/build-iso.sh", "@KOOMPI_LOCAL_REPO@", "@OTHER@");
    };
    let want = [
        "[koompi] must come before [core]",
        "build-iso.sh: does not replace",
    ];
    assert_reports("pacman-conf", plant, &want);
}

#[test]
fn boot_menus() {
    let plant = |ws: &Path| {
        let grub = "iso/grub/grub.cfg";
        edit(
            ws,
            grub,
            "archisobasedir=%INSTALL_DIR%",
            "archisobasedir=koompi",
        );
        edit(ws, grub, "--hotkey r", "--hotkey s");
        let preset = "iso/airootfs/etc/mkinitcpio.d/linux-lts.preset";
        edit(
            ws,
            preset,
            "ALL_kver='/boot/vmlinuz-linux-lts'",
            "ALL_kver='/boot/vmlinuz'",
        );
        fs::write(ws.join("iso/syslinux/splash.png"), "GIF89a").unwrap();
    };
    let want = [
        "iso/grub/grub.cfg: no archisobasedir=%INSTALL_DIR% in",
        "iso/grub/grub.cfg: no menu entry with console=ttyS0 and hotkey r",
        "linux-lts.preset: ALL_kver is not /boot/vmlinuz-linux-lts",
        "iso/syslinux/splash.png: is not a PNG",
    ];
    assert_reports("boot-menus", plant, &want);
}

#[test]
fn initcpio() {
    let plant = |ws: &Path| {
        let (live, target) = ("archiso.conf", "koompi.conf");
        let dir = "iso/airootfs/etc/mkinitcpio.conf.d";
        edit(
            ws,
            &format!("{dir}/{live}"),
            "HOOKS=(base udev",
            "HOOKS=(base systemd",
        );
        edit(
            ws,
            &format!("{dir}/{target}"),
            "systemd plymouth",
            "systemd sd-plymouth nonesuch",
        );
        edit(
            ws,
            &format!("{dir}/{target}"),
            "MODULES=(btrfs)",
            "MODULES=()",
        );
    };
    let want = [
        "archiso.conf: HOOKS lacks udev",
        "archiso.conf: HOOKS has systemd",
        "koompi.conf: hook sd-plymouth no longer exists",
        "koompi.conf: unknown mkinitcpio hook nonesuch",
        "koompi.conf: HOOKS must have systemd and plymouth",
        "koompi.conf: MODULES must have btrfs",
    ];
    assert_reports("initcpio", plant, &want);
}

#[test]
fn unit_references() {
    let plant = |ws: &Path| {
        let unit = "system/systemd/koompi-boot-success.service";
        let docs = "Documentation=https://github.com/koompi/koompi-os/blob/main/docs/nonesuch.md";
        let more = "ExecStartPre=/usr/bin/frobnicate\nExecStartPost=/usr/bin/koompi-nonesuch";
        edit(ws, unit, "[Service]", &format!("[Service]\n{more}"));
        edit(
            ws,
            unit,
            "[Unit]",
            &format!("[Unit]\n{docs}\nWants=koompi-nonesuch.service"),
        );
    };
    let want = [
        "runs /usr/bin/frobnicate, not in PACKAGE_PROGRAMS",
        "runs /usr/bin/koompi-nonesuch, which no workspace crate builds",
        "docs/nonesuch.md",
        "Wants=koompi-nonesuch.service: not in system/systemd",
    ];
    assert_reports("unit-references", plant, &want);
}

#[test]
fn units_enabled() {
    let plant = |ws: &Path| {
        let etc = ws.join("iso/airootfs/etc/systemd/system");
        fs::remove_file(etc.join("timers.target.wants/koompi-snapshot-daily.timer")).unwrap();
        let wants = etc.join("multi-user.target.wants");
        symlink(
            "/usr/lib/systemd/system/nonesuch.service",
            wants.join("nonesuch.service"),
        )
        .unwrap();
        edit(ws, "iso/packages.x86_64", "\nacpid\n", "\n");
        fs::write(etc.join("stray.txt"), "").unwrap();
    };
    let want = [
        "timers.target.wants/koompi-snapshot-daily.timer is missing",
        "nonesuch.service is neither in system/systemd",
        "acpid.service comes from package acpid, which is not in iso/packages.x86_64",
        "stray.txt: unexpected file",
    ];
    assert_reports("units-enabled", plant, &want);
}

#[test]
fn units_verify() {
    // The copy's target is the real one: build the binaries there first.
    let real = Ctx::new(&workspace());
    units::built_binaries(&real, &["koompi-watchdog"].into()).unwrap();
    let unit = "system/systemd/koompi-boot-success.service";
    let plant = |ws: &Path| edit(ws, unit, "[Service]", "[Service]\nBogusKey=1");
    assert_reports(
        "units-verify",
        plant,
        &["systemd-analyze verify:", "BogusKey"],
    );
}

#[test]
fn users() {
    let plant = |ws: &Path| {
        let etc = "iso/airootfs/etc";
        edit(
            ws,
            &format!("{etc}/passwd"),
            "/home/koompi:/usr/bin/zsh",
            "/home/koompi:/bin/fish",
        );
        edit(
            ws,
            &format!("{etc}/sysusers.d/koompi-live.conf"),
            "m koompi video\n",
            "",
        );
        edit(
            ws,
            &format!("{etc}/sudoers.d/wheel"),
            "ALL\n",
            "NOPASSWD: ALL\n",
        );
        edit(ws, &format!("{etc}/group"), "root:", "wheel:");
    };
    let want = [
        "koompi's shell /bin/fish is not zsh or bash",
        "koompi must be uid 1000, home /home/koompi, zsh",
        "no `m koompi video` line",
        "sudoers.d/wheel: must be exactly",
        "etc/group: has no root entry",
    ];
    assert_reports("users", plant, &want);
}

#[test]
fn live_config() {
    let plant = |ws: &Path| {
        fs::write(ws.join("iso/airootfs/etc/hostname"), "archiso\n").unwrap();
        fs::write(ws.join("iso/airootfs/etc/motd"), "hello\n").unwrap();
        edit(
            ws,
            "iso/airootfs/etc/locale.gen",
            "km_KH.UTF-8",
            "#km_KH.UTF-8",
        );
    };
    let want = [
        "hostname: must be koompi-live",
        "etc/motd: branding belongs",
        "km_KH.UTF-8",
    ];
    assert_reports("live-config", plant, &want);
}

#[test]
fn pacman_hooks() {
    let plant = |ws: &Path| {
        let hook = "iso/airootfs/etc/pacman.d/hooks/40-koompi-plymouth-theme.hook";
        edit(ws, hook, "# remove from airootfs!\n", "");
        edit(
            ws,
            hook,
            "plymouth-set-default-theme koompi",
            "plymouth-set-default-theme other",
        );
    };
    let want = [
        "not marked `# remove from airootfs!`",
        "sets the Plymouth theme other",
    ];
    assert_reports("pacman-hooks", plant, &want);
}

#[test]
fn branding_texts_must_be_the_seeds_when_it_is_here() {
    // A seed made of the branding files passes; an edited motd then differs from it.
    let plant = |ws: &Path| {
        let mut seed = String::new();
        for (rel, marker) in branding::TEXTS {
            let text = fs::read_to_string(ws.join(rel)).unwrap();
            seed.push_str(&format!("intro\n{marker}\n```text\n{text}```\n\n"));
        }
        fs::write(ws.join(SEED_PATH), seed).unwrap();
        assert!(lint(ws, &["branding-texts".into()]).is_empty());
        edit(ws, "branding/motd", "Quick Start:", "Quick start:");
        fs::write(ws.join("branding/issue.installed"), "KOOMPI\n").unwrap();
    };
    let want = [
        "branding/motd: not the seed's: line 9: expected \"  Quick Start:\"",
        "branding/issue.installed: must be branding/issue without its login line",
    ];
    assert_reports("branding-texts", plant, &want);
    let no_seed = |ws: &Path| fs::write(ws.join(SEED_PATH), "no blocks\n").unwrap();
    assert_reports("branding-texts", no_seed, &["no fenced block after **MOTD"]);
}

#[test]
fn os_release() {
    let (_tmp, ws) = copy();
    let file = ws.join("branding/os-release");
    let good =
        "# c\nNAME=\"KOOMPI \\\"OS\\\" \\$x\"\nID=koompi\nPRETTY_NAME='K OS'\nVERSION_ID=1.0\n";
    fs::write(&file, good).unwrap();
    assert_eq!(lint(&ws, &["os-release".into()]), Vec::<String>::new());
    for (bad, want) in [
        ("NAME=KOOMPI OS\n", "unquoted value has specials"),
        ("NAME=\"KOOMPI OS\n", "bash cannot source it"),
        ("NAME=\"a\"\nNAME=\"b\"\n", "NAME is set twice"),
        ("name=\"a\"\n", "\"name\" is not a KEY"),
        ("NAME\n", "no `=`"),
        ("NAME=\"$HOME\"\n", "unescaped $"),
        ("ID=Koompi\n", "ID=\"Koompi\": only a-z"),
        ("ID=koompi\n", "no PRETTY_NAME="),
    ] {
        fs::write(&file, bad).unwrap();
        let all = lint(&ws, &["os-release".into()]).join("\n");
        assert!(all.contains(want), "{bad:?}: {want:?} not in:\n{all}");
    }
}

#[test]
fn fastfetch() {
    let (_tmp, ws) = copy();
    let file = ws.join("branding/fastfetch/config.jsonc");
    let good = "{ // c\n \"a\": \"x // y /* z */\", /* b\n */ \"modules\": [\"os\", ], }\n";
    fs::write(&file, good).unwrap();
    assert_eq!(lint(&ws, &["fastfetch".into()]), Vec::<String>::new());
    for (bad, want) in [
        (
            "{ \"a\": 1 \"modules\": [] }",
            "is not valid JSONC: expected `,`",
        ),
        ("{ \"modules\": [1 2] }", "is not valid JSONC"),
        ("{ 'modules': [] }", "is not valid JSONC"),
        ("{ /* open", "is not valid JSONC"),
        ("{ \"a\": [] }", "has no \"modules\" array"),
    ] {
        fs::write(&file, bad).unwrap();
        let all = lint(&ws, &["fastfetch".into()]).join("\n");
        assert!(all.contains(want), "{bad:?}: {want:?} not in:\n{all}");
    }
}

#[test]
fn plymouth_theme_and_wallpapers() {
    let script = "branding/plymouth/koompi/koompi.script";
    let plant = |ws: &Path| edit(ws, script, "Image(\"logo.png\")", "Image(\"nonesuch.png\")");
    assert_reports(
        "plymouth-theme",
        plant,
        &["loads nonesuch.png, which is not in"],
    );
    let plant = |ws: &Path| {
        let mut small = b"\x89PNG\r\n\x1a\n\0\0\0\x0dIHDR".to_vec();
        small.extend([640u32.to_be_bytes(), 480u32.to_be_bytes()].concat());
        fs::write(ws.join("branding/wallpapers/small.png"), small).unwrap();
        fs::write(ws.join("branding/wallpapers/fake.png"), "GIF89a").unwrap();
    };
    let want = ["small.png: 640x480 is too small", "fake.png: is not a PNG"];
    assert_reports("wallpapers", plant, &want);
}

#[test]
fn shellcheck_finds_every_script_by_shebang_and_name() {
    let plant = |ws: &Path| {
        fs::write(
            ws.join("scripts/new-tool"),
            "#!/usr/bin/env bash\necho $1\n",
        )
        .unwrap();
        fs::write(
            ws.join("scripts/not-shell"),
            "#!/usr/bin/python3\necho $1\n",
        )
        .unwrap();
        edit(ws, "packaging/koompi-configs/PKGBUILD", "|| return 1", "");
        let preset = "iso/airootfs/etc/mkinitcpio.d/linux-lts.preset";
        edit(
            ws,
            preset,
            "PRESETS=('archiso')",
            "PRESETS=('archiso')\nx=$y",
        );
    };
    let want = [
        "scripts/new-tool: 2:6: note: Double quote to prevent globbing",
        "packaging/koompi-configs/PKGBUILD: ",
        "[SC2164]",
        "linux-lts.preset: ",
        "[SC2154]",
    ];
    assert_reports("shellcheck", plant, &want);
    let (_tmp, ws) = copy();
    fs::write(
        ws.join("scripts/not-shell"),
        "#!/usr/bin/python3\necho $1\n",
    )
    .unwrap();
    assert!(lint(&ws, &["shellcheck".into()]).is_empty());
}
