//! The branding (`branding/`, which koompi-branding packages): the identity texts, checked
//! against the seed when it is present, os-release, the fastfetch config, the Plymouth theme
//! and the wallpapers.

use std::fs;

use super::{parse_ini, png_size, Ctx, Problems, UnitFile, SEED_PATH};

/// The identity files, each with the heading of its fenced block in the seed.
pub(super) const TEXTS: [(&str, &str); 4] = [
    ("branding/motd", "**MOTD (`/etc/motd`):**"),
    ("branding/os-release", "**`/etc/os-release`:**"),
    ("branding/issue", "**`/etc/issue`:**"),
    ("branding/fastfetch/config.jsonc", "**Fastfetch config**"),
];

/// The identity texts: present, installed by koompi-branding's PKGBUILD, and the seed's bytes
/// when the seed is here.
pub(super) fn texts(cx: &Ctx) -> Problems {
    let mut p = Problems::default();
    let seed = fs::read_to_string(cx.path(SEED_PATH)).ok();
    let pkgbuild = "packaging/koompi-branding/PKGBUILD";
    let installs = cx.read(&mut p, pkgbuild).unwrap_or_default();
    for (rel, marker) in TEXTS {
        if !installs.contains(rel.trim_start_matches("branding/")) {
            p += format!("{pkgbuild}: does not install {rel}");
        }
        let Some(have) = cx.read(&mut p, rel) else {
            continue;
        };
        if have.trim().is_empty() {
            p += format!("{rel}: is empty");
        }
        match seed.as_deref().map(|s| seed_block(s, marker)) {
            None => {}
            Some(None) => p += format!("{SEED_PATH}: no fenced block after {marker}"),
            Some(Some(want)) => {
                p += first_difference(&want, &have).map(|d| format!("{rel}: not the seed's: {d}"))
            }
        }
    }
    // The installed system's /etc/issue: the live one without the live user's login line.
    let (live, installed) = ("branding/issue", "branding/issue.installed");
    let live = fs::read_to_string(cx.path(live)).unwrap_or_default();
    let text = cx.read(&mut p, installed).unwrap_or_default();
    if !live.starts_with(&text) || text.contains("Password") || text.is_empty() {
        p += format!("{installed}: must be branding/issue without its login line");
    }
    p
}

/// The fenced block that follows the line containing `marker` in the seed, each line ending
/// in `\n`.
fn seed_block(seed: &str, marker: &str) -> Option<String> {
    let mut lines = seed.lines().skip_while(|l| !l.contains(marker)).skip(1);
    lines.find(|l| l.starts_with("```"))?;
    let mut block = String::new();
    for line in lines {
        if line == "```" {
            return Some(block);
        }
        block.push_str(line);
        block.push('\n');
    }
    None
}

/// Where two texts first differ, for a one-line message; None when they are equal.
fn first_difference(want: &str, have: &str) -> Option<String> {
    let (w, h): (Vec<&str>, Vec<&str>) = (want.split('\n').collect(), have.split('\n').collect());
    let show = |s: Option<&&str>| s.map_or("<end of file>".to_string(), |s| format!("{s:?}"));
    let i = (0..w.len().max(h.len())).find(|&i| w.get(i) != h.get(i))?;
    let (want, have) = (show(w.get(i)), show(h.get(i)));
    Some(format!("line {}: expected {want}, found {have}", i + 1))
}

/// os-release(5): `KEY=value` lines that a shell can source (bash does, here), shell specials
/// escaped, unquoted values plain; NAME, ID and PRETTY_NAME set; ID and VERSION_ID lower-case.
pub(super) fn os_release(cx: &Ctx) -> Problems {
    let mut p = Problems::default();
    let rel = "branding/os-release";
    let text = cx.read(&mut p, rel).unwrap_or_default();
    let mut keys: Vec<&str> = Vec::new();
    for (n, line) in text.lines().enumerate().map(|(i, l)| (i + 1, l)) {
        if line.trim().is_empty() || line.trim_start().starts_with('#') {
            continue;
        }
        let Some((key, value)) = line.split_once('=') else {
            p += format!("{rel}: line {n}: no `=` in {line:?}");
            continue;
        };
        let upper = |c: char| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_';
        if !key.starts_with(|c: char| c.is_ascii_uppercase()) || !key.chars().all(upper) {
            p += format!("{rel}: line {n}: {key:?} is not a KEY");
        }
        if keys.contains(&key) {
            p += format!("{rel}: line {n}: {key} is set twice");
        }
        keys.push(key);
        let plain = |c: char| c.is_ascii_alphanumeric() || "._-+:/,@%".contains(c);
        if !value.starts_with(['"', '\'']) && !value.chars().all(plain) {
            p += format!("{rel}: line {n}: {key}'s unquoted value has specials (quote it)");
        }
        if value
            .match_indices(['$', '`'])
            .any(|(i, _)| !value[..i].ends_with('\\'))
        {
            p += format!("{rel}: line {n}: {key} has an unescaped $ or ` (write \\$, \\`)");
        }
    }
    let v = cx.source(&mut p, rel, &keys).unwrap_or_default();
    for key in ["NAME", "ID", "PRETTY_NAME"] {
        if v.get(key).unwrap_or("").is_empty() {
            p += format!("{rel}: no {key}=");
        }
    }
    let lower = |c: char| c.is_ascii_lowercase() || c.is_ascii_digit() || "._-".contains(c);
    for key in ["ID", "VERSION_ID"] {
        if let Some(value) = v.get(key).filter(|s| !s.chars().all(lower)) {
            p += format!("{rel}: {key}={value:?}: only a-z, 0-9 and ._- (os-release(5))");
        }
    }
    p
}

pub(super) fn fastfetch(cx: &Ctx) -> Problems {
    let mut p = Problems::default();
    let rel = "branding/fastfetch/config.jsonc";
    let text = cx.read(&mut p, rel).unwrap_or_default();
    match parse_jsonc(&text) {
        Ok(v) if v.get("modules").is_some_and(serde_json::Value::is_array) => {}
        Ok(_) => p += format!("{rel}: has no \"modules\" array"),
        Err(e) => p += format!("{rel}: is not valid JSONC: {e}"),
    }
    p
}

/// JSONC as fastfetch reads it (JSON with comments and trailing commas): jsonc-parser parses it,
/// then its tokens, trailing commas left out, must be strict JSON for serde_json (jsonc-parser
/// 0.26, the last for Rust 1.80, also takes what fastfetch refuses, such as missing commas).
fn parse_jsonc(text: &str) -> Result<serde_json::Value, String> {
    use jsonc_parser::{tokens::Token, CollectOptions, ParseOptions};
    let collect = CollectOptions {
        tokens: true,
        ..Default::default()
    };
    let parsed = jsonc_parser::parse_to_ast(text, &collect, &ParseOptions::default());
    let tokens = parsed
        .map_err(|e| e.to_string())?
        .tokens
        .unwrap_or_default();
    // The text with all but the tokens blanked out, so that lines and columns stay.
    let mut json: Vec<u8> = text
        .bytes()
        .map(|b| if b == b'\n' { b } else { b' ' })
        .collect();
    for (i, t) in tokens.iter().enumerate() {
        let next = tokens.get(i + 1).map(|n| &n.token);
        let closes = matches!(next, Some(Token::CloseBrace | Token::CloseBracket));
        let r = t.range.start..t.range.end;
        let (to, from) = (json.get_mut(r.clone()), text.as_bytes().get(r));
        if let (false, Some(to), Some(from)) = (closes && t.token == Token::Comma, to, from) {
            to.copy_from_slice(from);
        }
    }
    serde_json::from_slice(&json).map_err(|e| e.to_string())
}

pub(super) fn plymouth_theme(cx: &Ctx) -> Problems {
    let mut p = Problems::default();
    let dir = "branding/plymouth/koompi";
    let rel = format!("{dir}/koompi.plymouth");
    let theme = UnitFile(parse_ini(&cx.read(&mut p, &rel).unwrap_or_default()));
    if theme.get("Plymouth Theme", "ModuleName") != Some("script") {
        p += format!("{rel}: ModuleName must be script (the KOOMPI theme is a script theme)");
    }
    let installed = "/usr/share/plymouth/themes/koompi";
    if theme.get("script", "ImageDir") != Some(installed) {
        p += format!("{rel}: [script] ImageDir must be {installed}");
    }
    let script = theme.get("script", "ScriptFile").unwrap_or("");
    let Some(script) = script.strip_prefix(installed) else {
        p += format!("{rel}: [script] ScriptFile {script:?} is not in {installed}");
        return p;
    };
    let srel = format!("{dir}{script}");
    let code = cx.read(&mut p, &srel).unwrap_or_default();
    let images: Vec<&str> = code
        .split("Image(\"")
        .skip(1)
        .filter_map(|r| r.split('"').next())
        .collect();
    for image in &images {
        match fs::read(cx.path(&format!("{dir}/{image}"))) {
            Ok(b) if png_size(&b).is_some() => {}
            Ok(_) => p += format!("{srel}: {image} is not a PNG"),
            Err(_) => p += format!("{srel}: loads {image}, which is not in {dir}"),
        }
    }
    if images.is_empty() {
        p += format!("{srel}: loads no image (the theme needs its logo)");
    }
    p
}

pub(super) fn wallpapers(cx: &Ctx) -> Problems {
    let mut p = Problems::default();
    let dir = "branding/wallpapers";
    let max = 200_000; // bytes: the biggest wallpaper the ISO carries
    let mut count = 0;
    for e in fs::read_dir(cx.path(dir)).into_iter().flatten().flatten() {
        let rel = format!("{dir}/{}", e.file_name().to_string_lossy());
        if !rel.ends_with(".png") {
            continue;
        }
        count += 1;
        let bytes = fs::read(e.path()).unwrap_or_default();
        if bytes.len() > max {
            p += format!("{rel}: {} bytes: over the {max}-byte limit", bytes.len());
        }
        match png_size(&bytes) {
            Some((w, h)) if w >= 1280 && h >= 720 => {}
            Some((w, h)) => p += format!("{rel}: {w}x{h} is too small for a wallpaper"),
            None => p += format!("{rel}: is not a PNG"),
        }
    }
    if count == 0 {
        p += format!("{dir}: no PNG wallpaper");
    }
    p
}
