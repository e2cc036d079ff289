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

/// Runs `check` on a fresh copy of the tree with mistakes planted by `script`, one a line:
/// `FILE: FROM => TO` (every FROM replaced), `FILE := TEXT` (written), `FILE -> TARGET` (a
/// symlink), `FILE +x` (made executable), `FILE rm`; `\n` stands for a newline. Each line
/// `! TEXT` is a problem the check must report (one containing TEXT); without one, it must
/// report none. The copy is a git checkout with the seed and fastfetch's schema, when they are
/// here, where [`SEED_PATH`] and [`FASTFETCH_SCHEMA_PATH`] find them; the crates, xtask and
/// target are links.
fn assert_reports(check: &str, script: &str) {
    let (real, tmp) = (workspace(), tempfile::tempdir().unwrap());
    let ws = tmp.path().join("ws");
    fs::create_dir_all(&ws).unwrap();
    let run = |cmd: &mut Command| assert!(cmd.current_dir(&ws).status().unwrap().success());
    for dir in "iso branding system docs scripts packaging configs .ci".split(' ') {
        run(Command::new("cp").arg("-R").arg(real.join(dir)).arg("."));
    }
    for name in ["crates", "xtask", "target", "Cargo.toml", "Cargo.lock"] {
        symlink(real.join(name), ws.join(name)).unwrap();
    }
    for shared in [SEED_PATH, FASTFETCH_SCHEMA_PATH] {
        fs::create_dir_all(ws.join(shared).parent().unwrap()).unwrap();
        let _ = fs::copy(real.join(shared), ws.join(shared));
    }
    run(Command::new("git").args(["init", "-q"]));
    let mut want = Vec::new();
    for line in script.lines().map(|l| l.trim().replace("\\n", "\n")) {
        let file = |f: &str| ws.join(f);
        if let Some(problem) = line.strip_prefix("! ") {
            want.push(problem.to_string());
        } else if let Some((f, text)) = line.split_once(" := ") {
            fs::create_dir_all(file(f).parent().unwrap()).unwrap();
            fs::write(file(f), text).unwrap();
        } else if let Some((f, target)) = line.split_once(" -> ") {
            symlink(target, file(f)).unwrap();
        } else if let Some(f) = line.strip_suffix(" +x") {
            fs::set_permissions(file(f), fs::Permissions::from_mode(0o755)).unwrap();
        } else if let Some(f) = line.strip_suffix(" rm") {
            fs::remove_file(file(f)).unwrap();
        } else if let Some((f, edit)) = line.split_once(": ") {
            let (from, to) = edit.split_once(" =>").unwrap();
            let text = fs::read_to_string(file(f)).unwrap();
            assert!(text.contains(from), "{f} has no {from:?}");
            fs::write(
                file(f),
                text.replace(from, to.strip_prefix(' ').unwrap_or(to)),
            )
            .unwrap();
        } else {
            assert!(line.is_empty(), "{line:?}: not a plant");
        }
    }
    let problems = lint(&ws, &[check.to_string()]);
    let all = problems.join("\n");
    for w in &want {
        assert!(all.contains(w), "{check}: {w:?} is not reported in:\n{all}");
    }
    assert!(!want.is_empty() || problems.is_empty(), "{check}: {all}");
    assert!(problems
        .iter()
        .all(|p| p.starts_with(check) && !p.contains('\n')));
}

#[test]
fn the_real_tree_passes_every_check() {
    let problems = lint(&workspace(), &[]).join("\n");
    assert!(problems.is_empty(), "iso-lint problems:\n{problems}");
}

/// Every check of the old, monolithic lint is still here under its name.
#[test]
fn every_check_has_a_unique_name_and_the_old_ones_are_kept() {
    let names: BTreeSet<&str> = CHECKS.iter().map(|c| c.name).collect();
    assert_eq!(names.len(), CHECKS.len());
    assert!(CHECKS.iter().all(|c| (1..80).contains(&c.about.len())));
    let old = "profile bootmodes file-permissions no-customize-script packages pacman-conf \
        boot-menus initcpio unit-references units-enabled units-verify users live-config \
        pacman-hooks branding-texts os-release fastfetch plymouth-theme wallpapers";
    assert!(old.split(' ').all(|name| names.contains(name)));
}

#[test]
fn profile() {
    assert_reports(
        "profile",
        r#"iso/profiledef.sh: iso_name="koompi-os-base" => iso_name="other"
        iso/profiledef.sh: install_dir="koompi" => install_dir="Koompi_OS"
        iso/profiledef.sh: iso_label="KOOMPI_ => iso_label="koompi-
        iso/profiledef.sh: airootfs_image_type="squashfs" => airootfs_image_type="erofs"
        ! iso/profiledef.sh: iso_name "other" is wrong
        ! install_dir "Koompi_OS" is not 1-8 of [a-z0-9]
        ! iso_label "koompi-
        ! no `-zlzma` in airootfs_image_tool_options"#,
    );
    let unclosed = "iso/profiledef.sh: 'uefi.grub') => 'uefi.grub'";
    assert_reports(
        "profile",
        &format!("{unclosed}\n! profiledef.sh: bash cannot source"),
    );
}

#[test]
fn bootmodes() {
    assert_reports(
        "bootmodes",
        r#"iso/profiledef.sh: 'bios.syslinux' => 'bios.syslinux.mbr'
        iso/profiledef.sh: 'uefi.grub' => 'uefi.grub' 'uefi.grub' 'uefi.systemd-boot'
        ! bios.syslinux.mbr is deprecated since archiso v86: use bios.syslinux
        ! no BIOS boot mode
        ! uefi.grub is listed twice
        ! uefi.grub and uefi.systemd-boot clash
        ! uefi.systemd-boot needs iso/efiboot"#,
    );
}

#[test]
fn file_permissions() {
    assert_reports(
        "file-permissions",
        r#"iso/airootfs/usr/local/bin/tool := #!/bin/sh\n
        iso/airootfs/usr/local/bin/tool +x
        iso/profiledef.sh: ["/etc/shadow"]="0:0:400" => ["/etc/shadow"]="0:0:644"
        iso/profiledef.sh: ["/etc/gshadow"]="0:0:400" => ["/etc/nothere"]="0:0:4o0"
        ! iso/airootfs/usr/local/bin/tool: is executable but not in file_permissions
        ! iso/airootfs/etc/shadow: is a secret but file_permissions gives it 644
        ! iso/airootfs/etc/gshadow: is a secret but not in file_permissions
        ! file_permissions[/etc/nothere]: "0:0:4o0" is not uid:gid:mode
        ! file_permissions[/etc/nothere]: iso/airootfs/etc/nothere does not exist"#,
    );
}

#[test]
fn no_customize_script() {
    assert_reports(
        "no-customize-script",
        "iso/airootfs/root/customize_airootfs.sh := echo
        ! iso/airootfs/root/customize_airootfs.sh: is deprecated",
    );
}

#[test]
fn packages() {
    assert_reports(
        "packages",
        r#"iso/packages.x86_64: \nparu\n => \nnoto-fonts-khmer\nzsh\n Bad_Name\n
        ! line 48: noto-fonts-khmer does not exist in Arch
        ! zsh is listed twice
        ! blanks around the name
        ! "Bad_Name" is not a package name
        ! iso/packages.x86_64: paru is missing: the AUR helper"#,
    );
    assert_reports(
        "packages",
        r"iso/packages.x86_64: \npv\n => \n
        ! iso/packages.x86_64: pv is missing: the progress of the copy to RAM",
    );
    assert_reports(
        "packages",
        r"iso/packages.x86_64: \n7zip\n => \np7zip\nbind-tools\n
        ! p7zip is gone: use 7zip (
        ! bind-tools is gone: use bind (",
    );
}

#[test]
fn pacman_conf() {
    assert_reports(
        "pacman-conf",
        r#"iso/pacman.conf: [koompi] => [other]
        iso/pacman.conf: [extra] => [extra]\n[koompi]\nServer = file:///@KOOMPI_LOCAL_REPO@
        scripts/build-iso.sh: @KOOMPI_LOCAL_REPO@ => @OTHER@
        ! iso/pacman.conf: [koompi] must come before [core]
        ! iso/pacman.conf: [koompi] has no SigLevel
        ! scripts/build-iso.sh: does not replace"#,
    );
    let plant = "iso/pacman.conf: [koompi] => [other]\n! iso/pacman.conf: no [koompi]";
    assert_reports("pacman-conf", plant);
}

#[test]
fn boot_menus() {
    assert_reports(
        "boot-menus",
        r#"iso/grub/grub.cfg: archisobasedir=%INSTALL_DIR% => archisobasedir=koompi
        iso/grub/grub.cfg: --hotkey r => --hotkey s
        iso/syslinux/archiso_sys.cfg: INCLUDE archiso_tail.cfg => INCLUDE nonesuch.cfg
        iso/airootfs/etc/mkinitcpio.d/linux-lts.preset: -linux-lts' => '
        iso/syslinux/splash.png := GIF89a
        ! iso/grub/grub.cfg: no archisobasedir=%INSTALL_DIR% in "linux /%INSTALL_DIR%
        ! iso/grub/grub.cfg: no menu entry with console=ttyS0 and hotkey r
        ! iso/syslinux/archiso_sys.cfg: refers to nonesuch.cfg, not in iso/syslinux/
        ! linux-lts.preset: ALL_kver is not /boot/vmlinuz-linux-lts
        ! iso/syslinux/splash.png: is not a PNG"#,
    );
    assert_reports(
        "boot-menus",
        r"iso/packages.x86_64: \nedk2-shell\n => \n
        ! iso/grub/grub.cfg: the UEFI Shell entry's /shell*.efi comes from package edk2-shell
        ! iso/grub/loopback.cfg: the UEFI Shell entry's /shell*.efi comes from package edk2-shell",
    );
    assert_reports(
        "boot-menus",
        r#"iso/grub/grub.cfg: cow_spacesize=1G quiet => quiet
        iso/grub/loopback.cfg: cow_spacesize=1G console => cow_spacesize=256M console
        iso/syslinux/archiso_sys-linux.cfg: cow_spacesize=1G console => console
        ! iso/grub/grub.cfg: no cow_spacesize=1G in "linux /%INSTALL_DIR%/boot/%ARCH%/vmlinuz-
        ! iso/grub/loopback.cfg: cow_spacesize=256M, not 1G, in "linux
        ! iso/syslinux/archiso_sys-linux.cfg: no cow_spacesize=1G in "APPEND archisobasedir"#,
    );
    assert_reports(
        "boot-menus",
        r"iso/syslinux/archiso_sys-linux.cfg: \nAPPEND => \n# APPEND
        ! iso/syslinux/archiso_sys-linux.cfg: entry koompi loads a vmlinuz but has no APPEND line
        ! iso/syslinux/archiso_sys-linux.cfg: entry koompiserial loads a vmlinuz but has no APPEND",
    );
}

#[test]
fn initcpio() {
    assert_reports(
        "initcpio",
        r#"iso/airootfs/etc/mkinitcpio.conf.d/archiso.conf: (base udev => (base systemd
        iso/airootfs/etc/mkinitcpio.conf.d/koompi.conf: systemd plymouth => systemd sd-plymouth x
        iso/airootfs/etc/mkinitcpio.conf.d/koompi.conf: MODULES=(btrfs) => MODULES=()
        ! archiso.conf: HOOKS lacks udev
        ! archiso.conf: HOOKS has systemd
        ! koompi.conf: hook sd-plymouth no longer exists
        ! koompi.conf: unknown mkinitcpio hook x
        ! koompi.conf: HOOKS must have systemd and plymouth
        ! koompi.conf: MODULES must have btrfs"#,
    );
}

#[test]
fn unit_references() {
    assert_reports(
        "unit-references",
        r#"system/systemd/koompi-boot-success.service: [Service] => [Service]\nExecStartPre=/x
        system/systemd/koompi-boot-success.service: /usr/bin/koompi- => /usr/bin/koompi-x
        system/systemd/koompi-boot-success.service: docs/watchdog.md => docs/nonesuch.md
        system/systemd/koompi-boot-success.service: Wants=koompi-boot-w => Wants=koompi-w
        ! runs /x, not in PACKAGE_PROGRAMS
        ! runs /usr/bin/koompi-xwatchdog, which no workspace crate builds
        ! Documentation=https://github.com/koompi/koompi-os/blob/main/docs/nonesuch.md: no docs/
        ! Wants=koompi-watchdog.service: not in system/systemd"#,
    );
}

#[test]
fn units_enabled() {
    assert_reports(
        "units-enabled",
        r#"iso/airootfs/etc/systemd/system/timers.target.wants/koompi-snapshot-daily.timer rm
        iso/airootfs/etc/systemd/system/multi-user.target.wants/x.service -> /usr/lib/x.service
        iso/airootfs/etc/systemd/system/stray.txt := x
        iso/packages.x86_64: \nacpid\n => \n
        ! timers.target.wants/koompi-snapshot-daily.timer is missing
        ! x.service is neither in system/systemd
        ! acpid.service comes from package acpid, which is not in iso/packages.x86_64
        ! stray.txt: unexpected file"#,
    );
}

#[test]
fn time_sync() {
    let unit = "iso/airootfs/etc/systemd/system/pacman-init.service";
    assert_reports(
        "time-sync",
        &format!(
            "{unit}: DefaultDependencies=no\\n =>
            ! pacman-init.service: After=time-sync.target, but multi-user.target waits for it"
        ),
    );
    assert_reports(
        "time-sync",
        &format!(
            "{unit}: Wants=systemd-time-wait-sync.service\\n =>
            ! pacman-init.service: After=time-sync.target does nothing without Wants="
        ),
    );
    assert_reports(
        "time-sync",
        &format!(
            "{unit}: time-sync.target\\n => \\n
            iso/airootfs/etc/systemd/system/sysinit.target.wants/systemd-timesyncd.service rm
            ! pacman-init.service: not After=time-sync.target
            ! no sysinit.target.wants/systemd-timesyncd.service"
        ),
    );
}

#[test]
fn units_verify() {
    // The copy's target is the real one: build the binaries there first.
    lint(&workspace(), &["units-verify".into()]);
    assert_reports(
        "units-verify",
        r#"system/systemd/koompi-boot-success.service: [Service] => [Service]\nBogusKey=1
        ! system/systemd: systemd-analyze verify:
        ! BogusKey"#,
    );
}

#[test]
fn users() {
    assert_reports(
        "users",
        r#"iso/airootfs/etc/passwd: /home/koompi:/usr/bin/zsh => /home/koompi:/bin/fish
        iso/airootfs/etc/sysusers.d/koompi-live.conf: m koompi video => # none
        iso/airootfs/etc/sudoers.d/wheel: ALL\n => NOPASSWD: ALL\n
        iso/airootfs/etc/group: root: => wheel:
        ! koompi's shell /bin/fish is not zsh or bash
        ! no live user koompi, uid 1000
        ! no `m koompi video` line
        ! sudoers.d/wheel: must be exactly
        ! etc/group: has no root entry"#,
    );
}

#[test]
fn live_config() {
    assert_reports(
        "live-config",
        r#"iso/airootfs/etc/hostname := archiso\n
        iso/airootfs/etc/motd := hello\n
        iso/airootfs/etc/locale.gen: km_KH.UTF-8 => #km_KH.UTF-8
        iso/airootfs/etc/localtime rm
        iso/airootfs/etc/localtime -> /etc/zoneinfo-nowhere
        iso/airootfs/etc/systemd/system-generators/systemd-gpt-auto-generator rm
        ! hostname: must be koompi-live
        ! etc/motd: branding belongs
        ! km_KH.UTF-8 UTF-8 is not enabled
        ! etc/localtime: not a link into /usr/share/zoneinfo
        ! systemd-gpt-auto-generator: must link to /dev/null"#,
    );
}

#[test]
fn pacman_hooks() {
    assert_reports(
        "pacman-hooks",
        r#"iso/airootfs/etc/pacman.d/hooks/30-koompi-locale-gen.hook: # remove from airootfs!\n =>
        iso/airootfs/etc/pacman.d/hooks/40-koompi-plymouth-theme.hook: theme koompi => theme x
        ! not marked `# remove from airootfs!`
        ! Plymouth theme "x""#,
    );
}

#[test]
fn branding_texts_must_be_the_seeds_when_it_is_here() {
    // A seed made of the branding files passes; the edited files then differ from it.
    let mut seed = format!("{SEED_PATH} := ");
    for (rel, marker) in branding::TEXTS {
        let text = fs::read_to_string(workspace().join(rel)).unwrap();
        seed += &format!("intro\n{marker}\n```text\n{text}```\n\n").replace('\n', "\\n");
    }
    assert_reports("branding-texts", &seed);
    let plants = r#"branding/motd: Quick Start: => Quick start:
        branding/issue.installed := KOOMPI\n
        ! branding/motd: not the seed's: line 9: expected "  Quick Start:", found "  Quick start:"
        ! branding/issue.installed: must be branding/issue without its login line"#;
    assert_reports("branding-texts", &format!("{seed}\n{plants}"));
    let seed = format!("{SEED_PATH} := none\n! no fenced block after **MOTD (`/etc/motd`):**");
    assert_reports("branding-texts", &seed);
}

#[test]
fn os_release() {
    let good = r#"# c\nNAME="KOOMPI \"OS\" \$x"\nID=koompi\nPRETTY_NAME='K OS'\nVERSION_ID=1"#;
    assert_reports("os-release", &format!("branding/os-release := {good}\\n"));
    for (bad, want) in [
        ("NAME=KOOMPI OS", "unquoted value has specials"),
        ("NAME=\"KOOMPI OS", "bash cannot source it"),
        ("NAME=\"a\"\\nNAME=\"b\"", "NAME is set twice"),
        ("name=\"a\"", "\"name\" is not a KEY"),
        ("NAME", "no `=`"),
        ("NAME=\"$HOME\"", "unescaped $"),
        ("ID=Koompi", "ID=\"Koompi\": only a-z"),
        ("ID=koompi", "no PRETTY_NAME="),
    ] {
        assert_reports(
            "os-release",
            &format!("branding/os-release := {bad}\\n\n! {want}"),
        );
    }
}

#[test]
fn fastfetch() {
    let file = "branding/fastfetch/config.jsonc";
    let good = r#"{ // c\n "$schema": "https://x//y/*z*/", /* b\n */ "modules": ["os", ], }\n"#;
    assert_reports("fastfetch", &format!("{file} := {good}"));
    for (bad, want) in [
        (
            r#"{ "a": 1 "modules": [] }"#,
            "is not valid JSONC: expected `,`",
        ),
        (r#"{ "modules": [1 2] }"#, "is not valid JSONC"),
        (r#"{ 'modules': [] }"#, "is not valid JSONC"),
        (r#"{ /* open"#, "is not valid JSONC"),
        (r#"{ "a": [] }"#, "has no \"modules\" array"),
    ] {
        assert_reports("fastfetch", &format!("{file} := {bad}\n! {want}"));
    }
}

/// A schema of the same shape as fastfetch's (draft 7; modules are names or objects whose
/// "type" picks one of a `oneOf`), small enough for a plant line; the shipped config passes it.
const SMALL_SCHEMA: &str = r#"{"$schema": "https://json-schema.org/draft-07/schema",
    "type": "object", "additionalProperties": false, "properties": {
    "$schema": {"type": "string"}, "logo": {"type": ["object", "string", "null"]},
    "general": {"type": "object", "properties": {"processingTimeout": {"type": "integer"}}},
    "display": {"type": "object", "properties": {"separator": {"type": "string"}}},
    "modules": {"type": "array", "items": {"anyOf": [{"type": "string", "enum": ["break",
        "title", "separator", "os", "kernel", "uptime", "packages", "shell", "terminal", "cpu",
        "gpu", "memory", "disk"]}, {"type": "object", "required": ["type"], "oneOf": [
        {"additionalProperties": false, "properties": {"type": {"const": "custom"},
        "format": {"type": "string"}}}]}]}}}}"#;

/// Plants in the fastfetch config: a module of an unknown type, a string for a number.
const FASTFETCH_PLANTS: &str = concat!(
    r#"F: "custom",\n            "format": "Run => "custom2", "format": "Run"#,
    r#"
    F: "display": { => "general": { "processingTimeout": "1000" },\n    "display": {
    ! F: at "/modules/17": {"format":"Run 'koompi --help' for …","type":"custom2"} is not valid
    ! F: at "/general/processingTimeout": "1000" is not of type "integer""#
);

#[test]
fn fastfetch_config_against_a_schema() {
    let (file, schema) = ("branding/fastfetch/config.jsonc", FASTFETCH_SCHEMA_PATH);
    let small = format!("{schema} := {}", SMALL_SCHEMA.replace('\n', " "));
    assert_reports("fastfetch", &small);
    let plants = FASTFETCH_PLANTS.replace("F:", &format!("{file}:"));
    assert_reports("fastfetch", &format!("{small}\n{plants}"));
    // Within an anyOf or oneOf, the error of the alternative meant (a module of type custom).
    assert_reports(
        "fastfetch",
        &format!(
            r#"{small}
            {file}: "separator": " → " => "separator": 3
            {file}: "kernel", => ["kernel"],
            {file}: "format": "┌ => "format": ["┌
            {file}: ┐" => ┐"]
            ! {file}: at "/display/separator": 3 is not of type "string"
            ! {file}: at "/modules/7": ["kernel"] is not valid under any of the schemas listed in
            ! {file}: at "/modules/0/format": ["┌───────────────────────…"] is not of type"#
        ),
    );
    // A broken schema is the schema's problem; without one, the config is not checked against
    // any (as the seed, the schema is a file of shared/ that may be absent).
    let broken = format!("{schema} := {{\"type\": \n! {schema}: is not JSON");
    assert_reports("fastfetch", &broken);
    let bad = format!("{schema} := {{\"type\": 7}}\n! {schema}: is not a usable schema");
    assert_reports("fastfetch", &bad);
    let absent = format!("{small}\n{schema} rm\n{file}: \"kernel\", => 3,");
    assert_reports("fastfetch", &absent);
}

/// fastfetch's own schema, when the steering repository's shared/ has it: the shipped config
/// passes it (`the_real_tree_passes_every_check`), and the same mistakes are reported.
#[test]
fn fastfetch_config_against_fastfetchs_schema() {
    if !workspace().join(FASTFETCH_SCHEMA_PATH).is_file() {
        eprintln!("skipped: no {FASTFETCH_SCHEMA_PATH} (shared/ has no fastfetch schema)");
        return;
    }
    let file = "branding/fastfetch/config.jsonc";
    let plants = FASTFETCH_PLANTS.replace("F:", &format!("{file}:"));
    let kernel = format!("{file}: \"kernel\", => \"kernal\",\n! at \"/modules/7\": \"kernal\" is");
    assert_reports("fastfetch", &format!("{plants}\n{kernel}"));
}

#[test]
fn plymouth_theme_and_wallpapers() {
    assert_reports(
        "plymouth-theme",
        r#"branding/plymouth/koompi/koompi.script: Image("logo.png") => Image("x.png")
        ! koompi.script: loads x.png, which is not in branding/plymouth/koompi"#,
    );
    assert_reports(
        "wallpapers",
        "branding/wallpapers/small.png -> ../plymouth/koompi/bullet.png
        branding/wallpapers/fake.png := GIF89a
        ! small.png: 12x12 is too small
        ! fake.png: is not a PNG",
    );
}

#[test]
fn shellcheck_finds_every_script_by_shebang_and_name() {
    assert_reports(
        "shellcheck",
        r#"scripts/new-tool := #!/usr/bin/env bash\necho $1\n
        scripts/not-shell := #!/usr/bin/python3\necho $1\n
        packaging/koompi-configs/PKGBUILD: || return 1 =>
        iso/airootfs/etc/mkinitcpio.d/linux-lts.preset: PRESETS= => x=$y\nPRESETS=
        ! shellcheck: scripts/new-tool: 2:6: note: Double quote to prevent globbing
        ! packaging/koompi-configs/PKGBUILD: 29:3: warning: Use 'cd ... || exit'
        ! linux-lts.preset: 6:3: warning: y is referenced but not assigned. [SC2154]"#,
    );
    assert_reports(
        "shellcheck",
        r"scripts/not-shell := #!/usr/bin/python3\necho $1\n",
    );
}
