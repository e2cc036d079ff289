//! The live medium's overlay (`iso/airootfs/`): its users, its configuration and the pacman
//! hooks that run while mkarchiso builds it.

use std::collections::{BTreeMap, BTreeSet};
use std::process::Command;

use super::{parse_ini, Ctx, Problems, UnitFile};

const ETC: &str = "iso/airootfs/etc";

pub(super) fn users(cx: &Ctx) -> Problems {
    let mut p = Problems::default();
    let mut files: BTreeMap<&str, Vec<Vec<String>>> = BTreeMap::new();
    for (name, fields) in [("passwd", 7), ("shadow", 9), ("group", 4), ("gshadow", 4)] {
        let rel = format!("{ETC}/{name}");
        let text = cx.read(&mut p, &rel).unwrap_or_default();
        let mut rows = Vec::new();
        for (n, line) in text
            .lines()
            .enumerate()
            .filter(|(_, l)| !l.trim().is_empty())
        {
            let cols: Vec<String> = line.split(':').map(str::to_string).collect();
            if cols.len() != fields {
                p += format!("{rel}: line {}: {} fields, not {fields}", n + 1, cols.len());
            } else {
                rows.push(cols);
            }
        }
        if !rows.iter().any(|r| r[0] == "root") {
            p += format!("{rel}: has no root entry (archiso requires one in every user database)");
        }
        files.insert(name, rows);
    }
    let get = |file: &str, col: usize, value: &str| {
        files
            .get(file)
            .and_then(|rows| rows.iter().find(|r| r[col] == value))
            .cloned()
    };
    let (passwd, shadow) = (format!("{ETC}/passwd"), format!("{ETC}/shadow"));
    for user in files.get("passwd").into_iter().flatten() {
        let (name, gid, shell) = (&user[0], &user[3], &user[6]);
        if get("shadow", 0, name).is_none() {
            p += format!("{shadow}: no entry for {name}");
        }
        match get("group", 2, gid) {
            Some(g) if get("gshadow", 0, &g[0]).is_none() => {
                p += format!("{ETC}/gshadow: no entry for group {}", g[0])
            }
            Some(_) => {}
            None => p += format!("{passwd}: {name}'s primary group {gid} is not in /etc/group"),
        }
        match shell.as_str() {
            "/usr/bin/zsh" | "/bin/zsh" => p += cx.need(&passwd, "zsh", &format!("{name}'s shell")),
            "/bin/bash" | "/usr/bin/bash" => {}
            _ => p += format!("{passwd}: {name}'s shell {shell} is not zsh or bash"),
        }
    }
    // The live user the seed and /etc/issue promise: koompi/koompi, zsh, uid 1000.
    match get("passwd", 0, "koompi") {
        Some(u) if u[2] == "1000" && u[5] == "/home/koompi" && u[6] == "/usr/bin/zsh" => {}
        Some(_) => p += format!("{passwd}: koompi must be uid 1000, home /home/koompi, zsh"),
        None => p += format!("{passwd}: no live user koompi"),
    }
    let hash = get("shadow", 0, "koompi")
        .map(|s| s[1].clone())
        .unwrap_or_default();
    if password_matches(&hash, "koompi") == Some(false) {
        p += format!("{shadow}: koompi's password is not \"koompi\" (as /etc/issue says)");
    }
    // Supplementary groups through sysusers.d (the seed's useradd -G wheel,video,audio,input).
    let rel = format!("{ETC}/sysusers.d/koompi-live.conf");
    let text = cx.read(&mut p, &rel).unwrap_or_default();
    let words = text
        .lines()
        .map(|l| l.split_whitespace().collect::<Vec<_>>().join(" "));
    let groups: Vec<String> = words
        .filter_map(|l| Some(l.strip_prefix("m koompi ")?.into()))
        .collect();
    let groups: Vec<&str> = groups.iter().map(String::as_str).collect();
    for g in ["wheel", "video", "audio", "input"]
        .iter()
        .filter(|g| !groups.contains(g))
    {
        p += format!("{rel}: no `m koompi {g}` line");
    }
    let rel = format!("{ETC}/sudoers.d/wheel");
    if let Some(text) = cx.read(&mut p, &rel) {
        if text != "%wheel ALL=(ALL:ALL) ALL\n" {
            p += format!("{rel}: must be exactly `%wheel ALL=(ALL:ALL) ALL`");
        }
        p += cx.need(&rel, "sudo", "/etc/sudoers.d");
    }
    p
}

/// Whether a SHA-512 crypt hash (`$6$salt$...`) is the hash of `password`, by `openssl passwd
/// -6`; None when it cannot tell (another scheme, no openssl).
fn password_matches(hash: &str, password: &str) -> Option<bool> {
    let salt = hash.strip_prefix("$6$")?.split('$').next()?;
    let mut openssl = Command::new("openssl");
    let out = openssl
        .args(["passwd", "-6", "-salt", salt, password])
        .output()
        .ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).trim() == hash)
}

pub(super) fn live_config(cx: &Ctx) -> Problems {
    let mut p = Problems::default();
    if cx
        .read(&mut p, &format!("{ETC}/hostname"))
        .is_some_and(|t| t != "koompi-live\n")
    {
        p += format!("{ETC}/hostname: must be koompi-live");
    }
    let text = cx
        .read(&mut p, &format!("{ETC}/locale.gen"))
        .unwrap_or_default();
    let enabled = text.lines().map(str::trim).filter(|l| !l.starts_with('#'));
    let generated: BTreeSet<&str> = enabled
        .filter_map(|l| l.split_whitespace().next())
        .collect();
    for l in ["en_US.UTF-8", "km_KH.UTF-8"]
        .into_iter()
        .filter(|l| !generated.contains(l))
    {
        p += format!("{ETC}/locale.gen: {l} UTF-8 is not enabled");
    }
    let text = cx
        .read(&mut p, &format!("{ETC}/locale.conf"))
        .unwrap_or_default();
    match text.lines().find_map(|l| l.strip_prefix("LANG=")) {
        Some(lang) if generated.contains(lang.trim_matches('"')) => {}
        Some(lang) => p += format!("{ETC}/locale.conf: LANG={lang} is not in locale.gen"),
        None => p += format!("{ETC}/locale.conf: no LANG="),
    }
    let text = cx
        .read(&mut p, &format!("{ETC}/vconsole.conf"))
        .unwrap_or_default();
    if !text.lines().any(|l| l.starts_with("KEYMAP=")) {
        p += format!("{ETC}/vconsole.conf: no KEYMAP=");
    }
    let zram = format!("{ETC}/systemd/zram-generator.conf");
    if let Some(text) = cx.read(&mut p, &zram) {
        let conf = UnitFile(parse_ini(&text));
        if conf.get("zram0", "zram-size") != Some("ram / 2") {
            p += format!("{zram}: [zram0] zram-size must be `ram / 2`");
        }
        if conf.get("zram0", "compression-algorithm") != Some("zstd") {
            p += format!("{zram}: [zram0] compression-algorithm must be zstd");
        }
        p += cx.need(&zram, "zram-generator", "zram-generator.conf");
    }
    let zshrc = format!("{ETC}/skel/.zshrc");
    let text = cx.read(&mut p, &zshrc).unwrap_or_default();
    if !text.contains("fastfetch") {
        p += format!("{zshrc}: does not run fastfetch at login");
    }
    for plugin in ["zsh-autosuggestions", "zsh-syntax-highlighting"] {
        if text.contains(&format!("/usr/share/zsh/plugins/{plugin}/")) {
            p += cx.need(&zshrc, plugin, plugin);
        }
    }
    // The branding lives in koompi-branding, not in the overlay.
    let copies = "etc/motd etc/issue etc/os-release usr/lib/os-release etc/fastfetch/config.jsonc";
    for f in copies.split(' ').map(|f| format!("iso/airootfs/{f}")) {
        if cx.exists(&f) {
            p += format!("{f}: branding belongs to the koompi-branding package, not to airootfs");
        }
    }
    p
}

pub(super) fn pacman_hooks(cx: &Ctx) -> Problems {
    let mut p = Problems::default();
    let dir = "iso/airootfs/etc/pacman.d/hooks";
    let mut names: Vec<String> = std::fs::read_dir(cx.path(dir))
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    let (mut remover, mut theme) = (false, None);
    for name in names {
        let rel = format!("{dir}/{name}");
        if !name.ends_with(".hook") {
            p += format!("{rel}: pacman reads only *.hook files");
            continue;
        }
        let text = cx.read(&mut p, &rel).unwrap_or_default();
        if !text.starts_with("# remove from airootfs!\n") {
            p += format!("{rel}: not marked `# remove from airootfs!` on its first line");
        }
        let hook = UnitFile(parse_ini(&text));
        if hook.values("Trigger", "Type").any(|t| t == "Package") {
            for t in hook
                .values("Trigger", "Target")
                .filter(|t| *t != "*" && !t.starts_with('!'))
            {
                p += cx.need(&rel, t, &format!("Target = {t}"));
            }
        }
        for dep in hook.values("Action", "Depends") {
            p += cx.need(&rel, dep, &format!("Depends = {dep}"));
        }
        let exec: Vec<&str> = hook.values("Action", "Exec").collect();
        if exec.len() != 1 {
            p += format!("{rel}: needs exactly one Exec =");
        }
        for line in exec {
            remover |= line.contains("grep -Frl 'remove from airootfs'");
            for word in line.split_whitespace().map(|w| w.trim_matches('"')) {
                if word.starts_with("/usr/bin/") || word.starts_with("/bin/") {
                    p += cx.program(&rel, word);
                }
            }
            if let Some(rest) = line.strip_prefix("/usr/bin/plymouth-set-default-theme ") {
                theme = rest
                    .split_whitespace()
                    .find(|w| !w.starts_with('-'))
                    .map(str::to_string);
            }
        }
    }
    if !remover {
        p += format!(
            "{dir}: no hook removes the marked hooks after the build (archiso's zzzz99 hook)"
        );
    }
    let plymouth = |t: &str| format!("branding/plymouth/{t}/{t}.plymouth");
    match theme {
        Some(t) if cx.exists(&plymouth(&t)) => {}
        Some(t) => {
            p += format!(
                "{dir}: sets the Plymouth theme {t}, but {} is missing",
                plymouth(&t)
            )
        }
        None => p += format!("{dir}: no hook runs plymouth-set-default-theme koompi"),
    }
    p
}
