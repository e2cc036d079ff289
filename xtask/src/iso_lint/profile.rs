//! The archiso profile: profiledef.sh (as bash sources it), the package list, pacman.conf, the
//! boot menus with their presets, and the mkinitcpio configs.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::os::unix::fs::PermissionsExt;

use super::{package_list, png_size, walk, Ctx, Problems, UnitFile};

const PROFILE: &str = "iso/profiledef.sh";

/// Packages that must never be in the list, each with the reason (shared/FACTS.md).
const REMOVED_PACKAGES: &str = "
    noto-fonts-khmer: does not exist in Arch: Noto Khmer ships in noto-fonts; add ttf-khmer
    mesa-vdpau: is gone (VDPAU was removed in Mesa 25.3)
    libva-mesa-driver: is provided by mesa since 1:24.2.7
    nvidia-dkms: left the repositories; nvidia-open-dkms replaces it";

/// Packages Arch renamed or replaced: the old name, then the current one and where it is said.
const RENAMED_PACKAGES: &str = "
    p7zip: 7zip (p7zip was dropped for 7-Zip's own Linux port, Dec 2024; lxqt-archiver#411)
    bind-tools: bind (archiso a8f7762)";

/// Packages the profile cannot do without (the local repository's and archiso's).
const REQUIRED_PACKAGES: &str = "
    koompi-tools: KOOMPI's tools and units (local repository)
    koompi-branding: motd, issue, os-release, fastfetch, Plymouth theme (local repository)
    koompi-configs: the edition dotfiles (local repository)
    paru: the AUR helper (local repository)
    mkinitcpio: mandatory for archiso (the live initramfs)
    mkinitcpio-archiso: mandatory for archiso (the live initramfs's archiso hooks)
    pv: the progress of the copy to RAM (copytoram=auto copies the image on 4 GB laptops)
    fcitx5-m17n: Khmer input (fcitx5-im has no m17n)
    ttf-khmer: Khmer fonts besides noto-fonts";

/// archiso's boot modes (v86 and later), and the names v86 deprecated.
const BOOTMODES: &str = "bios.syslinux uefi.grub uefi.systemd-boot";
const DEPRECATED_BOOTMODES: &str = "bios.syslinux.mbr bios.syslinux.eltorito \
    uefi-x64.systemd-boot.esp uefi-x64.systemd-boot.eltorito uefi-ia32.systemd-boot.esp \
    uefi-ia32.systemd-boot.eltorito uefi-x64.grub.esp uefi-x64.grub.eltorito \
    uefi-ia32.grub.esp uefi-ia32.grub.eltorito";

/// mkinitcpio hooks: each line a package, then the hooks it ships.
const INITCPIO_HOOKS: &str = "
    mkinitcpio base udev systemd autodetect microcode modconf kms keyboard keymap consolefont
    mkinitcpio sd-vconsole block encrypt sd-encrypt filesystems fsck memdisk resume usr shutdown
    mkinitcpio-archiso archiso archiso_loop_mnt archiso_kms archiso_pxe_common archiso_pxe_nbd
    mkinitcpio-archiso archiso_pxe_http archiso_pxe_nfs
    plymouth plymouth
    lvm2 lvm2
    mdadm mdadm_udev";

/// mkinitcpio hooks that no longer exist in Arch, each with the reason.
const GONE_INITCPIO_HOOKS: &str = "
    sd-plymouth: Arch's plymouth package ships one `plymouth` hook for both inits
    plymouth-encrypt: the plymouth hook works with the standard encrypt hooks";

/// The placeholder of the local repository in iso/pacman.conf (scripts/build-iso.sh fills it).
const REPO_PLACEHOLDER: &str = "/@KOOMPI_LOCAL_REPO@";

/// The `name: reason` pairs of a table.
fn reasons(table: &'static str) -> impl Iterator<Item = (&'static str, &'static str)> {
    table.lines().filter_map(|l| l.trim().split_once(": "))
}

pub(super) fn profile(cx: &Ctx) -> Problems {
    let mut p = Problems::default();
    p += cx.profile_error.as_ref().map(|e| format!("{PROFILE}: {e}"));
    let get = |k: &str| cx.profile.get(k).unwrap_or("");
    let name = get("iso_name");
    p += (name != "koompi-os-base").then(|| format!("{PROFILE}: iso_name {name:?} is wrong"));
    for key in ["iso_label", "iso_publisher"] {
        let value = get(key);
        let bad = !value.starts_with("KOOMPI");
        p += bad.then(|| format!("{PROFILE}: {key} {value:?} does not start with KOOMPI"));
    }
    // The ISO 9660 volume ID, which the boot menus find the medium by: up to 32 of [A-Z0-9_].
    let label = get("iso_label");
    let volume_id = |b: u8| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'_';
    let bad = label.len() > 32 || !label.bytes().all(volume_id);
    p += bad.then(|| format!("{PROFILE}: iso_label {label:?} is not up to 32 of [A-Z0-9_]"));
    for key in [
        "iso_application",
        "iso_version",
        "install_dir",
        "pacman_conf",
    ] {
        let unset = get(key).is_empty();
        p += unset.then(|| format!("{PROFILE}: {key} is not set"));
    }
    let dir = get("install_dir");
    let lower = |b: u8| b.is_ascii_lowercase() || b.is_ascii_digit();
    let bad = dir.len() > 8 || !dir.bytes().all(lower);
    p += bad.then(|| format!("{PROFILE}: install_dir {dir:?} is not 1-8 of [a-z0-9]"));
    let conf = get("pacman_conf");
    let bad = !conf.is_empty() && !cx.exists(&format!("iso/{conf}"));
    p += bad.then(|| format!("{PROFILE}: pacman_conf names iso/{conf}, which does not exist"));
    let options = cx.profile.list("airootfs_image_tool_options");
    let xz = options.windows(2).any(|w| w[0] == "-comp" && w[1] == "xz");
    let lzma = options.iter().any(|o| o.starts_with("-zlzma"));
    let small = "in airootfs_image_tool_options: not the smallest image";
    match get("airootfs_image_type") {
        "squashfs" | "ext4+squashfs" if !xz => p += format!("{PROFILE}: no `-comp xz` {small}"),
        "erofs" if !lzma => p += format!("{PROFILE}: no `-zlzma` {small}"),
        "squashfs" | "ext4+squashfs" | "erofs" => {}
        other => p += format!("{PROFILE}: airootfs_image_type {other:?}: not squashfs or erofs"),
    }
    let modes = cx.profile.list("buildmodes");
    let bad = cx.profile.get("buildmodes").is_some() && !modes.iter().any(|m| m == "iso");
    p += bad.then(|| format!("{PROFILE}: buildmodes does not contain 'iso'"));
    p
}

pub(super) fn bootmodes(cx: &Ctx) -> Problems {
    let mut p = Problems::default();
    let modes = cx.profile.list("bootmodes");
    let mut seen = BTreeSet::new();
    for m in modes {
        p += (!seen.insert(m)).then(|| format!("{PROFILE}: boot mode {m} is listed twice"));
        if DEPRECATED_BOOTMODES.split_whitespace().any(|d| d == m) {
            let mut modes = BOOTMODES.split(' ');
            let new = modes.find(|n| m.contains(&n[4..])).unwrap_or("?");
            p += format!("{PROFILE}: boot mode {m} is deprecated since archiso v86: use {new}");
        } else if !BOOTMODES.split(' ').any(|b| b == m) {
            p += format!("{PROFILE}: unknown boot mode {m} (archiso knows {BOOTMODES})");
        }
    }
    let has = |m: &str| modes.iter().any(|x| x == m);
    let (bios, grub) = (has("bios.syslinux"), has("uefi.grub"));
    let sdboot = has("uefi.systemd-boot");
    p += (!bios).then(|| format!("{PROFILE}: no BIOS boot mode (bios.syslinux)"));
    p += (!grub && !sdboot).then(|| format!("{PROFILE}: no UEFI boot mode (uefi.grub)"));
    p += (grub && sdboot).then(|| format!("{PROFILE}: uefi.grub and uefi.systemd-boot clash"));
    let has_file = |dir: &str, ext: &str| {
        let mut files = fs::read_dir(cx.path(dir)).into_iter().flatten().flatten();
        files.any(|e| e.file_name().to_string_lossy().ends_with(ext))
    };
    if bios {
        p += cx.need(PROFILE, "syslinux", "boot mode bios.syslinux");
        let bad = !has_file("iso/syslinux", ".cfg");
        p += bad.then(|| format!("{PROFILE}: bios.syslinux needs iso/syslinux/*.cfg"));
    }
    let bad = grub && !cx.exists("iso/grub/grub.cfg");
    p += bad.then(|| format!("{PROFILE}: uefi.grub needs iso/grub/grub.cfg"));
    let loader = cx.exists("iso/efiboot/loader/loader.conf");
    let bad = sdboot && !(loader && has_file("iso/efiboot/loader/entries", ".conf"));
    p += bad.then(|| format!("{PROFILE}: uefi.systemd-boot needs iso/efiboot/loader/*"));
    p
}

/// file_permissions: well formed, its paths exist; every executable and every secret is in it.
pub(super) fn file_permissions(cx: &Ctx) -> Problems {
    let mut p = Problems::default();
    let mut listed = BTreeMap::new();
    for pair in cx.profile.list("file_permissions").chunks(2) {
        let [path, value] = pair else { continue };
        let at = format!("{PROFILE}: file_permissions[{path}]");
        let mode = match value.split(':').collect::<Vec<_>>()[..] {
            [uid, gid, mode] if uid.parse::<u32>().is_ok() && gid.parse::<u32>().is_ok() => mode,
            _ => "",
        };
        let octal = u32::from_str_radix(mode, 8).ok();
        match octal.filter(|_| mode.len() >= 3 && mode.len() <= 4) {
            Some(mode) => _ = listed.insert(path.clone(), mode),
            None => p += format!("{at}: {value:?} is not uid:gid:mode (3 or 4 octal digits)"),
        }
        let rel = format!("iso/airootfs{}", path.trim_end_matches('/'));
        if !path.starts_with('/') || path.contains("..") {
            p += format!("{at}: not an absolute path inside airootfs");
        } else if !cx.exists(&rel) {
            p += format!("{at}: {rel} does not exist");
        }
    }
    // A directory listed with a trailing slash counts for everything below it.
    let mode_of = |path: &str| {
        let mut dirs = listed.iter().filter(|(d, _)| d.ends_with('/'));
        let dir = dirs.find(|(d, _)| path.starts_with(*d)).map(|(_, m)| m);
        listed.get(path).or(dir).copied()
    };
    let airootfs = cx.path("iso/airootfs");
    for (path, meta) in walk(&airootfs).into_iter().filter(|(_, m)| m.is_file()) {
        let inside = path.strip_prefix(&airootfs).unwrap_or(&path);
        let abs = format!("/{}", inside.display());
        let mode = mode_of(&abs);
        let rel = format!("iso/airootfs{abs}");
        let secret = ["/etc/shadow", "/etc/gshadow", "/etc/sudoers"].contains(&abs.as_str())
            || abs.starts_with("/etc/sudoers.d/");
        match mode {
            _ if meta.permissions().mode() & 0o111 == 0 => {}
            Some(m) if m & 0o111 != 0 => {}
            Some(m) => p += format!("{rel}: is executable but file_permissions gives it {m:o}"),
            None => p += format!("{rel}: is executable but not in file_permissions"),
        }
        match mode {
            _ if !secret => {}
            Some(m) if m & 0o227 == 0 => {}
            Some(m) => p += format!("{rel}: is a secret but file_permissions gives it {m:o}"),
            None => p += format!("{rel}: is a secret but not in file_permissions"),
        }
    }
    p
}

pub(super) fn no_customize_script(cx: &Ctx) -> Problems {
    let mut p = Problems::default();
    for (path, _) in walk(&cx.path("iso")) {
        let rel = path.strip_prefix(&cx.root).unwrap_or(&path).display();
        let bad = path.ends_with("customize_airootfs.sh");
        p += bad.then(|| format!("{rel}: is deprecated: use airootfs files and pacman hooks"));
    }
    p
}

pub(super) fn packages(cx: &Ctx) -> Problems {
    let mut p = Problems::default();
    let file = "iso/packages.x86_64";
    let text = cx.text(&mut p, file);
    for (i, line) in text.lines().enumerate() {
        let name = line.split('#').next().unwrap_or("");
        let bad = !name.trim().is_empty() && name != name.trim();
        p += bad.then(|| format!("{file}: line {}: blanks around the name", i + 1));
    }
    let mut seen = BTreeSet::new();
    for (n, name) in package_list(&text) {
        // pacman's rules: lower-case alphanumerics and `@._+-`, not starting with `-` or `.`.
        let ok = |b: u8| b.is_ascii_lowercase() || b.is_ascii_digit() || b"@._+-".contains(&b);
        let bad = name.starts_with(['-', '.']) || !name.bytes().all(ok);
        p += bad.then(|| format!("{file}: line {n}: {name:?} is not a package name"));
        let removed = reasons(REMOVED_PACKAGES).find(|(r, _)| *r == name);
        p += removed.map(|(_, why)| format!("{file}: line {n}: {name} {why}"));
        let renamed = reasons(RENAMED_PACKAGES).find(|(r, _)| *r == name);
        p += renamed.map(|(_, now)| format!("{file}: line {n}: {name} is gone: use {now}"));
        let twice = !seen.insert(name.clone());
        p += twice.then(|| format!("{file}: line {n}: {name} is listed twice"));
    }
    for (name, why) in reasons(REQUIRED_PACKAGES).filter(|(n, _)| !seen.contains(*n)) {
        p += format!("{file}: {name} is missing: {why}");
    }
    let other = |k: &str| k.starts_with("linux-firmware") || k.starts_with("linux-api");
    let kernel = |k: &String| k == "linux" || k.starts_with("linux-") && !other(k);
    let bad = !seen.iter().any(kernel);
    p += bad.then(|| format!("{file}: no kernel package (linux, linux-lts, ...)"));
    p
}

pub(super) fn pacman_conf(cx: &Ctx) -> Problems {
    let mut p = Problems::default();
    let file = "iso/pacman.conf";
    let conf = UnitFile::read(cx, &mut p, file);
    let first = |name: &str| conf.0.iter().position(|(s, _, _)| s == name);
    for repo in ["core", "extra"].into_iter().filter(|r| first(r).is_none()) {
        p += format!("{file}: no [{repo}] repository");
    }
    let (koompi, core) = (first("koompi"), first("core"));
    let bad = koompi.is_none();
    p += bad.then(|| format!("{file}: no [koompi] (the local repository)"));
    let mut servers = conf.values("koompi", "Server");
    let bad = koompi.is_some() && !servers.any(|s| s.contains(REPO_PLACEHOLDER));
    p += bad.then(|| format!("{file}: [koompi] has no `Server = file://{REPO_PLACEHOLDER}`"));
    let bad = koompi.is_some() && conf.get("koompi", "SigLevel").is_none();
    p += bad.then(|| format!("{file}: [koompi] has no SigLevel (its packages are not signed)"));
    let bad = matches!((koompi, core), (Some(k), Some(c)) if k > c);
    p += bad.then(|| format!("{file}: [koompi] must come before [core] so KOOMPI's packages win"));
    let script = "scripts/build-iso.sh";
    let bad = !cx.text(&mut p, script).contains(REPO_PLACEHOLDER);
    p += bad.then(|| format!("{script}: does not replace {REPO_PLACEHOLDER}"));
    p
}

pub(super) fn boot_menus(cx: &Ctx) -> Problems {
    let mut p = Problems::default();
    let mut kernels = BTreeSet::new();
    let mut files = Vec::new();
    for dir in ["iso/syslinux", "iso/grub"] {
        let mut names = Vec::new();
        for e in fs::read_dir(cx.path(dir)).into_iter().flatten().flatten() {
            names.push(format!("{dir}/{}", e.file_name().to_string_lossy()));
        }
        names.sort();
        files.extend(names.into_iter().filter(|n| n.ends_with(".cfg")));
    }
    let mut syslinux = String::new();
    for file in &files {
        let text = cx.text(&mut p, file);
        let is_syslinux = file.starts_with("iso/syslinux/");
        // GRUB's "UEFI Shell" entries appear only when mkarchiso found edk2-shell's binaries.
        let shell = |l: &str| l.starts_with("chainloader /shell") && l.ends_with(".efi");
        if !is_syslinux && text.lines().map(str::trim).any(shell) {
            p += cx.need(file, "edk2-shell", "the UEFI Shell entry's /shell*.efi");
        }
        p += live_entries(file, &text, is_syslinux);
        for line in text.lines().map(str::trim) {
            for (prefix, suffix) in [("vmlinuz-", ""), ("initramfs-", ".img")] {
                let marker = format!("/%INSTALL_DIR%/boot/%ARCH%/{prefix}");
                let Some((_, rest)) = line.split_once(&marker) else {
                    continue;
                };
                let word = rest.split_whitespace().next().unwrap_or("");
                match word.strip_suffix(suffix).filter(|k| !k.is_empty()) {
                    Some(k) => _ = kernels.insert(k.to_string()),
                    None => p += format!("{file}: cannot read the kernel name in {line:?}"),
                }
            }
            // GRUB's `linux` line carries the parameters, syslinux's APPEND line.
            let lower = line.to_ascii_lowercase();
            let grub = line.starts_with("linux ") && line.contains("vmlinuz-");
            let named = lower.starts_with("linux ") || lower.starts_with("append ");
            let named = named && line.contains("archisobasedir");
            let bad = (grub || named) && !line.contains("archisobasedir=%INSTALL_DIR%");
            p += bad.then(|| format!("{file}: no archisobasedir=%INSTALL_DIR% in {line:?}"));
            let words: Vec<&str> = line.split_whitespace().collect();
            let referenced = match words[..] {
                [kw, f] if ["INCLUDE", "CONFIG"].contains(&kw.to_uppercase().as_str()) => f,
                [menu, bg, f] if format!("{menu} {bg}").to_uppercase() == "MENU BACKGROUND" => f,
                _ => "",
            };
            let bad = is_syslinux && !referenced.is_empty();
            let bad = bad && !cx.exists(&format!("iso/syslinux/{referenced}"));
            p += bad.then(|| format!("{file}: refers to {referenced}, not in iso/syslinux/"));
            if is_syslinux && line == "LINUX /boot/memtest86+/memtest" {
                p += cx.need(file, "memtest86+", "/boot/memtest86+/memtest");
            }
        }
        syslinux.push_str(if is_syslinux { &text } else { "" });
    }
    let splash = "iso/syslinux/splash.png";
    match fs::read(cx.path(splash)).ok().map(|b| png_size(&b)) {
        None | Some(Some((640, 480))) => {}
        Some(Some((w, h))) => p += format!("{splash}: is {w}x{h}; vesamenu needs 640x480"),
        Some(None) => p += format!("{splash}: is not a PNG"),
    }
    // `r` picks the serial console entry (`cargo xtask vm-run --iso` tells the user to press it).
    let serial = "menu entry with console=ttyS0 and hotkey r (vm-run --iso: press r)";
    let grub = fs::read_to_string(cx.path("iso/grub/grub.cfg"));
    let bad = grub.is_ok_and(|g| !(g.contains("--hotkey r") && g.contains("console=ttyS0")));
    p += bad.then(|| format!("iso/grub/grub.cfg: no {serial}"));
    let label = |l: &str| l.trim_start().starts_with("MENU LABEL") && l.contains("^r");
    let hotkey = syslinux.lines().any(label) && syslinux.contains("console=ttyS0");
    p += (!syslinux.is_empty() && !hotkey).then(|| format!("iso/syslinux: no {serial}"));
    let bad = kernels.is_empty() && !files.is_empty();
    p += bad.then(|| "iso: no boot menu entry boots /%INSTALL_DIR%/boot/*/vmlinuz-*".into());
    for k in &kernels {
        p += cx.need("iso (boot menus)", k, &format!("vmlinuz-{k}"));
        p += preset(cx, k);
    }
    p
}

/// The copy-on-write space of the live session, on every live boot entry (docs/decisions.md, 35).
const COW_SPACESIZE: &str = "1G";

/// The kernel command line of every live entry (GRUB's `linux` line that loads a vmlinuz; the
/// APPEND line of a syslinux LABEL whose LINUX loads one) gives the session its copy-on-write
/// space.
fn live_entries(file: &str, text: &str, is_syslinux: bool) -> Problems {
    let mut p = Problems::default();
    let no_append = |l: &str| format!("{file}: entry {l} loads a vmlinuz but has no APPEND line");
    let (mut label, mut pending) = ("", None);
    for line in text.lines().map(str::trim) {
        let keyword = line
            .split_whitespace()
            .next()
            .unwrap_or("")
            .to_ascii_uppercase();
        let live = match keyword.as_str() {
            _ if !is_syslinux => keyword == "LINUX" && line.contains("vmlinuz-"),
            "LABEL" => {
                p += pending.take().map(no_append);
                label = line[5..].trim();
                false
            }
            "LINUX" | "KERNEL" if line.contains("vmlinuz-") => {
                pending = Some(label);
                false
            }
            "APPEND" => pending.take().is_some(),
            _ => false,
        };
        let mut sizes = line
            .split_whitespace()
            .filter_map(|w| w.strip_prefix("cow_spacesize="));
        match sizes.next() {
            _ if !live => {}
            Some(COW_SPACESIZE) => {}
            Some(v) => p += format!("{file}: cow_spacesize={v}, not {COW_SPACESIZE}, in {line:?}"),
            None => {
                let why = "archiso's 256M is too small to install packages (docs/decisions.md, 35)";
                p += format!("{file}: no cow_spacesize={COW_SPACESIZE} in {line:?}: {why}");
            }
        }
    }
    p += pending.map(no_append);
    p
}

/// The live preset of kernel `k`: it builds the one image the boot menus load.
fn preset(cx: &Ctx, k: &str) -> Problems {
    let mut p = Problems::default();
    let f = format!("iso/airootfs/etc/mkinitcpio.d/{k}.preset");
    let names = ["ALL_kver", "PRESETS", "archiso_image", "archiso_config"];
    let v = cx.source(&mut p, &f, &names).unwrap_or_default();
    let bad = v.get("ALL_kver") != Some(&format!("/boot/vmlinuz-{k}"));
    p += bad.then(|| format!("{f}: ALL_kver is not /boot/vmlinuz-{k}"));
    let bad = v.list("PRESETS") != ["archiso"];
    p += bad.then(|| format!("{f}: PRESETS is not ('archiso'): the live medium boots one image"));
    let bad = v.get("archiso_image") != Some(&format!("/boot/initramfs-{k}.img"));
    p += bad.then(|| format!("{f}: archiso_image is not /boot/initramfs-{k}.img (menus load it)"));
    let config = v.get("archiso_config").unwrap_or("");
    let bad = config.is_empty() || !cx.exists(&format!("iso/airootfs{config}"));
    p += bad.then(|| format!("{f}: archiso_config {config:?} is not in iso/airootfs"));
    p
}

pub(super) fn initcpio(cx: &Ctx) -> Problems {
    let mut p = Problems::default();
    let live = "iso/airootfs/etc/mkinitcpio.conf.d/archiso.conf";
    let (hooks, _) = config(cx, &mut p, live);
    let needed = ["base", "udev", "archiso"];
    for need in needed.iter().filter(|n| !hooks.contains(n)) {
        p += format!("{live}: HOOKS lacks {need} (the live medium cannot boot without it)");
    }
    let bad = hooks.contains(&"systemd");
    p += bad.then(|| format!("{live}: HOOKS has systemd: archiso's hooks need the busybox init"));
    let target = "iso/airootfs/etc/mkinitcpio.conf.d/koompi.conf";
    let (hooks, modules) = config(cx, &mut p, target);
    let pos = |h: &str| hooks.iter().position(|x| *x == h);
    match (pos("systemd"), pos("plymouth")) {
        (Some(s), Some(y)) if s < y => {}
        (Some(_), Some(_)) => p += format!("{target}: plymouth must come after systemd"),
        _ => p += format!("{target}: HOOKS must have systemd and plymouth (seed, section 8)"),
    }
    let bad = pos("udev").is_some();
    p += bad.then(|| format!("{target}: HOOKS has both systemd and udev"));
    let bad = pos("archiso").is_some();
    p += bad.then(|| format!("{target}: the installed system's HOOKS must not have archiso"));
    let bad = pos("sd-vconsole").is_some() && !cx.exists("iso/airootfs/etc/vconsole.conf");
    p += bad.then(|| format!("{target}: sd-vconsole needs /etc/vconsole.conf"));
    let bad = !modules.iter().any(|m| m == "btrfs");
    p += bad.then(|| format!("{target}: MODULES must have btrfs (the seed's section 8)"));
    p
}

/// A mkinitcpio config's known HOOKS and its MODULES (bash sources it, as mkinitcpio does);
/// each hook must be known, still in Arch and from a listed package.
fn config(cx: &Ctx, p: &mut Problems, file: &str) -> (Vec<&'static str>, Vec<String>) {
    let v = cx.source(p, file, &["HOOKS", "MODULES"]);
    let v = v.unwrap_or_default();
    let bad = v.get("HOOKS").is_none();
    *p += bad.then(|| format!("{file}: no HOOKS=(...)"));
    let mut hooks = Vec::new();
    for h in v.list("HOOKS") {
        let words = |l: &'static str| l.split_whitespace().collect::<Vec<_>>();
        let lines = INITCPIO_HOOKS.lines().map(words);
        let mut found =
            lines.filter_map(|w| Some((*w.first()?, *w.iter().skip(1).find(|x| *x == h)?)));
        if let Some((_, why)) = reasons(GONE_INITCPIO_HOOKS).find(|(g, _)| g == h) {
            *p += format!("{file}: hook {h} no longer exists: {why}");
        } else if let Some((package, hook)) = found.next() {
            *p += cx.need(file, package, &format!("mkinitcpio hook {h}"));
            hooks.push(hook);
        } else {
            *p += format!("{file}: unknown mkinitcpio hook {h}");
        }
    }
    (hooks, v.list("MODULES").to_vec())
}
