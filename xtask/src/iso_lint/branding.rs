//! The branding (`branding/`, which koompi-branding packages): the identity texts, checked
//! against the seed when it is present, os-release, the fastfetch config (against fastfetch's
//! JSON schema when it is present), the Plymouth theme and the wallpapers.

use std::{fs, io};

use super::{entries, png_size, Ctx, Problems, UnitFile, FASTFETCH_SCHEMA_PATH, SEED_PATH};

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
    let installs = cx.text(&mut p, pkgbuild);
    for (rel, marker) in TEXTS {
        let bad = !installs.contains(rel.trim_start_matches("branding/"));
        p += bad.then(|| format!("{pkgbuild}: does not install {rel}"));
        let have = cx.text(&mut p, rel);
        p += have.trim().is_empty().then(|| format!("{rel}: is empty"));
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
    let text = cx.text(&mut p, installed);
    let bad = !live.starts_with(&text) || text.contains("Password") || text.is_empty();
    p += bad.then(|| format!("{installed}: must be branding/issue without its login line"));
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
    let text = cx.text(&mut p, rel);
    let mut keys: Vec<&str> = Vec::new();
    let comment = |l: &str| l.trim().is_empty() || l.trim_start().starts_with('#');
    for (n, line) in text.lines().enumerate().filter(|(_, l)| !comment(l)) {
        let at = format!("{rel}: line {}", n + 1);
        let (key, value) = line.split_once('=').unwrap_or((line, ""));
        p += (!line.contains('=')).then(|| format!("{at}: no `=` in {line:?}"));
        let upper = |c: char| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_';
        let bad = !key.starts_with(|c: char| c.is_ascii_uppercase()) || !key.chars().all(upper);
        p += bad.then(|| format!("{at}: {key:?} is not a KEY"));
        let twice = keys.contains(&key);
        p += twice.then(|| format!("{at}: {key} is set twice"));
        keys.push(key);
        let plain = |c: char| c.is_ascii_alphanumeric() || "._-+:/,@%".contains(c);
        let bad = !value.starts_with(['"', '\'']) && !value.chars().all(plain);
        p += bad.then(|| format!("{at}: {key}'s unquoted value has specials (quote it)"));
        let mut specials = value.match_indices(['$', '`']);
        let bad = specials.any(|(i, _)| !value[..i].ends_with('\\'));
        p += bad.then(|| format!("{at}: {key} has an unescaped $ or ` (write \\$, \\`)"));
    }
    let v = cx.source(&mut p, rel, &keys).unwrap_or_default();
    for key in ["NAME", "ID", "PRETTY_NAME"] {
        let unset = v.get(key).unwrap_or("").is_empty();
        p += unset.then(|| format!("{rel}: no {key}="));
    }
    let lower = |c: char| c.is_ascii_lowercase() || c.is_ascii_digit() || "._-".contains(c);
    for key in ["ID", "VERSION_ID"] {
        let value = v.get(key).unwrap_or("");
        let bad = !value.chars().all(lower);
        p += bad.then(|| format!("{rel}: {key}={value:?}: only a-z, 0-9 and ._- (os-release(5))"));
    }
    p
}

pub(super) fn fastfetch(cx: &Ctx) -> Problems {
    let mut p = Problems::default();
    let rel = "branding/fastfetch/config.jsonc";
    let config = match parse_jsonc(&cx.text(&mut p, rel)) {
        Ok(v) => v,
        Err(e) => return p + format!("{rel}: is not valid JSONC: {e}"),
    };
    let modules = config
        .get("modules")
        .is_some_and(serde_json::Value::is_array);
    p += (!modules).then(|| format!("{rel}: has no \"modules\" array"));
    // As the seed, the schema is a file of shared/, and the config is checked when it is there.
    let schema = match fs::read_to_string(cx.path(FASTFETCH_SCHEMA_PATH)) {
        Err(e) if e.kind() == io::ErrorKind::NotFound => return p,
        Err(e) => return p + format!("{FASTFETCH_SCHEMA_PATH}: {e}"),
        Ok(schema) => schema,
    };
    match schema_violations(&schema, &config) {
        Err(e) => p += format!("{FASTFETCH_SCHEMA_PATH}: {e}"),
        Ok(violations) => {
            for v in violations {
                p += format!("{rel}: {v}");
            }
        }
    }
    p
}

/// Where `config` breaks fastfetch's JSON schema (`schema`, the text of its
/// doc/json_schema.json): one line each, beginning with the JSON pointer of the offending
/// value. Err when the schema itself is not JSON or not a schema. No `$ref` is retrieved: the
/// schema is whole, and jsonschema is built without its HTTP and file retrievers.
fn schema_violations(schema: &str, config: &serde_json::Value) -> Result<Vec<String>, String> {
    let schema: serde_json::Value =
        serde_json::from_str(schema).map_err(|e| format!("is not JSON: {e}"))?;
    let validator =
        jsonschema::validator_for(&schema).map_err(|e| format!("is not a usable schema: {e}"))?;
    let mut violations = Vec::new();
    for e in validator.iter_errors(config) {
        refine(&e, &mut violations);
    }
    Ok(violations)
}

/// Reports `e`, or for a value that matches none of an `anyOf` or `oneOf`, the errors of the
/// one alternative it was meant for, when only one is left after ruling out those whose type,
/// `enum` or `const` it does not have, or that a child's `const` tells apart (a module's
/// "type"). fastfetch's schema lists the modules so, and without this a wrong "format" in a
/// module would be reported as the whole module matching no alternative.
fn refine(e: &jsonschema::ValidationError<'_>, out: &mut Vec<String>) {
    use jsonschema::error::ValidationErrorKind as Kind;
    let at = e.instance_path().as_str();
    let ruled_out = |b: &jsonschema::ValidationError<'_>| {
        let path = b.instance_path().as_str();
        let child = path.strip_prefix(at).and_then(|p| p.strip_prefix('/'));
        match b.kind() {
            Kind::Type { .. } | Kind::Enum { .. } | Kind::Constant { .. } if path == at => true,
            Kind::Constant { .. } => child.is_some_and(|c| !c.contains('/')),
            _ => false,
        }
    };
    let alternatives = match e.kind() {
        Kind::AnyOf { context } | Kind::OneOfNotValid { context } => context.as_slice(),
        _ => &[],
    };
    let mut left = alternatives.iter().filter(|a| !a.iter().any(ruled_out));
    if let (Some(only), None) = (left.next(), left.next()) {
        only.iter().for_each(|e| refine(e, out));
    } else {
        let value = e.masked_with(brief(e.instance()));
        out.push(format!("at {at:?}: {value}"));
    }
}

/// `value` as compact JSON for a message: its long strings cut to 24 characters and the whole
/// to 120 (a module's line of box drawing would fill the line otherwise).
fn brief(value: &serde_json::Value) -> String {
    fn cut(text: &str, max: usize) -> String {
        match text.char_indices().nth(max) {
            Some((i, _)) => format!("{}…", &text[..i]),
            None => text.to_string(),
        }
    }
    fn shorten(v: &serde_json::Value) -> serde_json::Value {
        use serde_json::Value;
        match v {
            Value::String(s) => Value::String(cut(s, 24)),
            Value::Array(a) => Value::Array(a.iter().map(shorten).collect()),
            Value::Object(o) => {
                Value::Object(o.iter().map(|(k, v)| (k.clone(), shorten(v))).collect())
            }
            other => other.clone(),
        }
    }
    cut(&shorten(value).to_string(), 120)
}

/// JSONC as fastfetch reads it (JSON with comments and trailing commas): jsonc-parser parses it,
/// then its tokens, trailing commas left out, must be strict JSON for serde_json (jsonc-parser
/// 0.26 also takes what fastfetch refuses, such as missing commas).
fn parse_jsonc(text: &str) -> Result<serde_json::Value, String> {
    use jsonc_parser::{tokens::Token, CollectOptions, ParseOptions};
    let collect = CollectOptions {
        tokens: true,
        ..Default::default()
    };
    let parsed = jsonc_parser::parse_to_ast(text, &collect, &ParseOptions::default());
    let tokens = parsed.map_err(|e| e.to_string())?.tokens;
    // The text with all but the tokens blanked out, so that lines and columns stay.
    let blank = |b: u8| if b == b'\n' { b } else { b' ' };
    let mut json: Vec<u8> = text.bytes().map(blank).collect();
    let tokens = tokens.unwrap_or_default();
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
    let installed = "/usr/share/plymouth/themes/koompi";
    let rel = format!("{dir}/koompi.plymouth");
    let theme = UnitFile::read(cx, &mut p, &rel);
    let bad = theme.get("Plymouth Theme", "ModuleName") != Some("script");
    p += bad.then(|| format!("{rel}: ModuleName must be script (a script theme)"));
    let bad = theme.get("script", "ImageDir") != Some(installed);
    p += bad.then(|| format!("{rel}: [script] ImageDir must be {installed}"));
    let script = theme.get("script", "ScriptFile").unwrap_or("");
    let Some(script) = script.strip_prefix(installed) else {
        p += format!("{rel}: [script] ScriptFile {script:?} is not in {installed}");
        return p;
    };
    let srel = format!("{dir}{script}");
    let code = cx.text(&mut p, &srel);
    let images = code.split("Image(\"").skip(1);
    let images: Vec<&str> = images.filter_map(|r| r.split('"').next()).collect();
    for image in &images {
        match fs::read(cx.path(&format!("{dir}/{image}"))).map(|b| png_size(&b)) {
            Ok(Some(_)) => {}
            Ok(None) => p += format!("{srel}: {image} is not a PNG"),
            Err(_) => p += format!("{srel}: loads {image}, which is not in {dir}"),
        }
    }
    let none = images.is_empty();
    p += none.then(|| format!("{srel}: loads no image (the theme needs its logo)"));
    p
}

pub(super) fn wallpapers(cx: &Ctx) -> Problems {
    let mut p = Problems::default();
    let dir = "branding/wallpapers";
    let max = 200_000; // bytes: the biggest wallpaper the ISO carries
    let mut pngs = entries(&cx.path(dir));
    pngs.retain(|(n, _)| n.ends_with(".png"));
    p += pngs.is_empty().then(|| format!("{dir}: no PNG wallpaper"));
    for (name, path) in pngs {
        let rel = format!("{dir}/{name}");
        let bytes = fs::read(path).unwrap_or_default();
        let size = bytes.len();
        p += (size > max).then(|| format!("{rel}: {size} bytes: over the {max}-byte limit"));
        match png_size(&bytes) {
            Some((w, h)) if w >= 1280 && h >= 720 => {}
            Some((w, h)) => p += format!("{rel}: {w}x{h} is too small for a wallpaper"),
            None => p += format!("{rel}: is not a PNG"),
        }
    }
    p
}
