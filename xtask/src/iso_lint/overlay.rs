//! The live medium's overlay (`iso/airootfs/`): its users, its configuration and the pacman
//! hooks that run while mkarchiso builds it.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;

use super::{entries, Ctx, Problems, UnitFile};

const ETC: &str = "iso/airootfs/etc";

pub(super) fn users(cx: &Ctx) -> Problems {
    let mut p = Problems::default();
    let mut files: BTreeMap<&str, Vec<Vec<String>>> = BTreeMap::new();
    for (name, fields) in [("passwd", 7), ("shadow", 9), ("group", 4), ("gshadow", 4)] {
        let rel = format!("{ETC}/{name}");
        let rows = files.entry(name).or_default();
        for (n, line) in cx.text(&mut p, &rel).lines().enumerate() {
            let cols: Vec<String> = line.split(':').map(str::to_string).collect();
            match cols.len() {
                _ if line.trim().is_empty() => {}
                len if len == fields => rows.push(cols),
                len => p += format!("{rel}: line {}: {len} fields, not {fields}", n + 1),
            }
        }
        let bad = !rows.iter().any(|r| r[0] == "root");
        p += bad.then(|| format!("{rel}: has no root entry (archiso needs it in every one)"));
    }
    let get = |file: &str, col: usize, value: &str| {
        let rows = files.get(file).map_or(&[][..], Vec::as_slice);
        let row = rows.iter().find(|r| r[col] == value);
        row.cloned().unwrap_or_default()
    };
    let (passwd, shadow) = (format!("{ETC}/passwd"), format!("{ETC}/shadow"));
    for user in &files["passwd"] {
        let (name, gid, shell) = (&user[0], &user[3], &user[6]);
        let bad = get("shadow", 0, name).is_empty();
        p += bad.then(|| format!("{shadow}: no entry for {name}"));
        let group = get("group", 2, gid);
        let bad = group.is_empty();
        p += bad.then(|| format!("{passwd}: {name}'s primary group {gid} is not in /etc/group"));
        let bad = !group.is_empty() && get("gshadow", 0, &group[0]).is_empty();
        p += bad.then(|| format!("{ETC}/gshadow: no entry for group {}", group[0]));
        match shell.as_str() {
            "/usr/bin/zsh" | "/bin/zsh" => p += cx.need(&passwd, "zsh", &format!("{name}'s shell")),
            "/bin/bash" | "/usr/bin/bash" => {}
            _ => p += format!("{passwd}: {name}'s shell {shell} is not zsh or bash"),
        }
    }
    // The live user the seed and /etc/issue promise: koompi/koompi, zsh, uid 1000.
    let live = get("passwd", 0, "koompi").join(":");
    let ok = live.starts_with("koompi:x:1000:") && live.ends_with(":/home/koompi:/usr/bin/zsh");
    p += (!ok).then(|| format!("{passwd}: no live user koompi, uid 1000, /home/koompi, zsh"));
    let shadowed = get("shadow", 0, "koompi");
    let hash = shadowed.get(1).map_or("", String::as_str);
    let bad = password_matches(hash, "koompi") == Some(false);
    p += bad.then(|| format!("{shadow}: koompi's password is not \"koompi\" (as /etc/issue says)"));
    // Supplementary groups through sysusers.d (the seed's useradd -G wheel,video,audio,input).
    let rel = format!("{ETC}/sysusers.d/koompi-live.conf");
    let text = cx.text(&mut p, &rel);
    let words = |l: &str| l.split_whitespace().collect::<Vec<_>>().join(" ");
    let lines: Vec<String> = text.lines().map(words).collect();
    for g in ["wheel", "video", "audio", "input"] {
        let bad = !lines.contains(&format!("m koompi {g}"));
        p += bad.then(|| format!("{rel}: no `m koompi {g}` line"));
    }
    let rel = format!("{ETC}/sudoers.d/wheel");
    let bad = cx.text(&mut p, &rel) != "%wheel ALL=(ALL:ALL) ALL\n";
    p += bad.then(|| format!("{rel}: must be exactly `%wheel ALL=(ALL:ALL) ALL`"));
    p += cx.need(&rel, "sudo", "/etc/sudoers.d");
    p
}

/// Whether a SHA-512 crypt hash (`$6$salt$...`) is the hash of `password`, by `openssl passwd
/// -6`; None when it cannot tell (another scheme, no openssl).
fn password_matches(hash: &str, password: &str) -> Option<bool> {
    let salt = hash.strip_prefix("$6$")?.split('$').next()?;
    let args = ["passwd", "-6", "-salt", salt, password];
    let out = Command::new("openssl").args(args).output().ok()?;
    let matches = String::from_utf8_lossy(&out.stdout).trim() == hash;
    out.status.success().then_some(matches)
}

pub(super) fn live_config(cx: &Ctx) -> Problems {
    let mut p = Problems::default();
    let bad = cx.text(&mut p, &format!("{ETC}/hostname")) != "koompi-live\n";
    p += bad.then(|| format!("{ETC}/hostname: must be koompi-live"));
    let locales = cx.text(&mut p, &format!("{ETC}/locale.gen"));
    let enabled = |l: &str| {
        let first = |x: &str| x.split_whitespace().next() == Some(l);
        locales.lines().any(first)
    };
    for l in ["en_US.UTF-8", "km_KH.UTF-8"] {
        p += (!enabled(l)).then(|| format!("{ETC}/locale.gen: {l} UTF-8 is not enabled"));
    }
    let conf = cx.text(&mut p, &format!("{ETC}/locale.conf"));
    let lang = conf.lines().find_map(|l| l.strip_prefix("LANG="));
    let lang = lang.unwrap_or("");
    let bad = !enabled(lang.trim_matches('"'));
    p += bad.then(|| format!("{ETC}/locale.conf: LANG={lang:?} is not enabled in locale.gen"));
    let vconsole = cx.text(&mut p, &format!("{ETC}/vconsole.conf"));
    let keymap = vconsole.contains("KEYMAP=");
    p += (!keymap).then(|| format!("{ETC}/vconsole.conf: no KEYMAP="));
    // mkarchiso writes machine-id `uninitialized`, so every live boot is a first boot:
    // without /etc/localtime, systemd-firstboot stops it to ask for a timezone.
    let link = std::fs::read_link(cx.path(&format!("{ETC}/localtime"))).ok();
    let zone = link
        .as_deref()
        .and_then(|t| t.strip_prefix("/usr/share/zoneinfo").ok());
    let bad = zone.is_none_or(|z| z.as_os_str().is_empty());
    p += bad
        .then(|| format!("{ETC}/localtime: not a link into /usr/share/zoneinfo (firstboot asks)"));
    // The live system must not mount or swap on the machine's own partitions by itself.
    let gpt_auto = format!("{ETC}/systemd/system-generators/systemd-gpt-auto-generator");
    let masked = std::fs::read_link(cx.path(&gpt_auto)).is_ok_and(|t| t == Path::new("/dev/null"));
    p += (!masked)
        .then(|| format!("{gpt_auto}: must link to /dev/null (masked on the live medium)"));
    let zram = format!("{ETC}/systemd/zram-generator.conf");
    let conf = UnitFile::read(cx, &mut p, &zram);
    let bad = conf.get("zram0", "zram-size") != Some("ram / 2");
    p += bad.then(|| format!("{zram}: [zram0] zram-size must be `ram / 2`"));
    let bad = conf.get("zram0", "compression-algorithm") != Some("zstd");
    p += bad.then(|| format!("{zram}: [zram0] compression-algorithm must be zstd"));
    p += cx.need(&zram, "zram-generator", "zram-generator.conf");
    let zshrc = format!("{ETC}/skel/.zshrc");
    let text = cx.text(&mut p, &zshrc);
    p += (!text.contains("fastfetch")).then(|| format!("{zshrc}: does not run fastfetch at login"));
    for plugin in ["zsh-autosuggestions", "zsh-syntax-highlighting"] {
        if text.contains(&format!("/usr/share/zsh/plugins/{plugin}/")) {
            p += cx.need(&zshrc, plugin, plugin);
        }
    }
    // The branding lives in koompi-branding, not in the overlay.
    let copies = "etc/motd etc/issue etc/os-release usr/lib/os-release etc/fastfetch/config.jsonc";
    for f in copies.split(' ').map(|f| format!("iso/airootfs/{f}")) {
        let bad = cx.exists(&f);
        p += bad.then(|| format!("{f}: branding belongs to the koompi-branding package"));
    }
    p
}

pub(super) fn pacman_hooks(cx: &Ctx) -> Problems {
    let mut p = Problems::default();
    let dir = "iso/airootfs/etc/pacman.d/hooks";
    let (mut remover, mut theme) = (false, String::new());
    for (name, _) in entries(&cx.path(dir)) {
        let rel = format!("{dir}/{name}");
        let text = cx.text(&mut p, &rel);
        p += (!name.ends_with(".hook")).then(|| format!("{rel}: pacman reads only *.hook files"));
        let bad = !text.starts_with("# remove from airootfs!\n");
        p += bad.then(|| format!("{rel}: not marked `# remove from airootfs!` on its first line"));
        let hook = UnitFile::parse(&text);
        if hook.values("Trigger", "Type").any(|t| t == "Package") {
            let targets = hook.values("Trigger", "Target");
            for t in targets.filter(|t| !t.starts_with(['*', '!'])) {
                p += cx.need(&rel, t, &format!("Target = {t}"));
            }
        }
        for dep in hook.values("Action", "Depends") {
            p += cx.need(&rel, dep, &format!("Depends = {dep}"));
        }
        let exec: Vec<&str> = hook.values("Action", "Exec").collect();
        p += (exec.len() != 1).then(|| format!("{rel}: needs exactly one Exec ="));
        for line in exec {
            remover |= line.contains("grep -Frl 'remove from airootfs'");
            for word in line.split_whitespace().map(|w| w.trim_matches('"')) {
                if word.starts_with("/usr/bin/") || word.starts_with("/bin/") {
                    p += cx.program(&rel, word);
                }
            }
            let set = line.strip_prefix("/usr/bin/plymouth-set-default-theme ");
            theme = set.map_or(theme, |t| t.split_whitespace().last().unwrap_or("").into());
        }
    }
    let missing = "no hook removes the marked hooks after the build (archiso's zzzz99 hook)";
    p += (!remover).then(|| format!("{dir}: {missing}"));
    let bad = !cx.exists(&format!("branding/plymouth/{theme}/{theme}.plymouth"));
    p +=
        bad.then(|| format!("{dir}: the hooks set the Plymouth theme {theme:?}, not in branding/"));
    p
}
