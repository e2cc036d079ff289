//! `cargo xtask configs`: writes KOOMPI's colours from `configs/palette.toml` into every
//! config that shows them, so the colours are set in one file and never by hand.
//!
//! Each such config holds one marked block, a line with `BEGIN koompi-palette` and a line
//! with `END koompi-palette` in the file's own comment syntax. The lines between them are
//! this module's: either the whole palette as the program's variables (Hyprland `$koompi_*`,
//! GTK CSS `@define-color koompi_*`, rofi `koompi-*`, a Lua table), for programs that have
//! variables, or a template of the program's colour settings with `%{name}` (`#rrggbb`) and
//! `%{name:hex}` (`rrggbb`) placeholders. `--check` writes nothing and fails when a file
//! differs; the test `the_shipped_configs_are_what_the_palette_makes` does the same in
//! `cargo test`. A colour written outside a block is refused too.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;

use anyhow::{bail, Context, Result};

/// Options of `cargo xtask configs`.
#[derive(Debug, clap::Args)]
pub struct Options {
    /// Write nothing; fail when a config differs from what the palette makes.
    #[arg(long)]
    check: bool,
}

/// The palette file, relative to the workspace root.
pub const PALETTE: &str = "configs/palette.toml";

/// An `#rrggbb` colour.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rgb(pub [u8; 3]);

impl Rgb {
    fn parse(s: &str) -> Option<Rgb> {
        let hex = s.strip_prefix('#')?;
        if hex.len() != 6 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
            return None;
        }
        let byte = |i: usize| u8::from_str_radix(&hex[i..i + 2], 16).ok();
        Some(Rgb([byte(0)?, byte(2)?, byte(4)?]))
    }

    /// `rrggbb`, lower case.
    pub fn hex(self) -> String {
        let [r, g, b] = self.0;
        format!("{r:02x}{g:02x}{b:02x}")
    }
}

/// The palette: `[colors]` (what the configs use) and `[wallpaper]` (the artwork's).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Palette {
    /// In the file's order.
    pub colors: Vec<(String, Rgb)>,
    pub wallpaper: BTreeMap<String, Rgb>,
}

impl Palette {
    /// Parses and checks a palette: every value `#rrggbb`, every name `a-z0-9-`.
    pub fn parse(text: &str) -> Result<Palette> {
        let doc: toml::Table = toml::from_str(text).context("palette: not valid TOML")?;
        let mut colors = Vec::new();
        let mut wallpaper = BTreeMap::new();
        for (table, value) in &doc {
            let toml::Value::Table(entries) = value else {
                bail!("palette: `{table}` must be a table ([colors] or [wallpaper])");
            };
            for (name, v) in entries {
                let place = format!("palette: [{table}] {name}");
                let ok_name = name.starts_with(|c: char| c.is_ascii_lowercase())
                    && name
                        .chars()
                        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
                if !ok_name {
                    bail!("{place}: a name holds only a-z, 0-9 and -, starting with a letter");
                }
                let rgb = v
                    .as_str()
                    .and_then(Rgb::parse)
                    .with_context(|| format!("{place}: {v} is not a colour \"#rrggbb\""))?;
                match table.as_str() {
                    "colors" => colors.push((name.clone(), rgb)),
                    "wallpaper" => {
                        wallpaper.insert(name.clone(), rgb);
                    }
                    _ => {
                        bail!("palette: unknown table [{table}] (it has [colors] and [wallpaper])")
                    }
                }
            }
        }
        if colors.is_empty() {
            bail!("palette: [colors] is empty");
        }
        // toml's tables are sorted; the file's order reads better in the configs.
        let order: Vec<&str> = text
            .lines()
            .filter_map(|l| l.split_once('=').map(|(k, _)| k.trim()))
            .collect();
        colors.sort_by_key(|(n, _)| order.iter().position(|o| o == n));
        Ok(Palette { colors, wallpaper })
    }

    /// Reads the palette of the workspace at `root`.
    pub fn load(root: &Path) -> Result<Palette> {
        let path = root.join(PALETTE);
        let text = std::fs::read_to_string(&path)
            .with_context(|| format!("cannot read {}", path.display()))?;
        Palette::parse(&text)
    }

    /// The colour called `name` in `[colors]`.
    pub fn get(&self, name: &str) -> Option<Rgb> {
        self.colors.iter().find(|(n, _)| n == name).map(|(_, c)| *c)
    }
}

/// What goes between a file's markers.
#[derive(Debug, Clone, Copy)]
enum Block {
    /// One line per palette colour: the function gets the name and the colour.
    Vars(fn(&str, Rgb) -> String),
    /// Lines with `%{name}` / `%{name:hex}` placeholders.
    Template(&'static str),
}

/// Every config with a palette block, relative to the workspace root.
const TARGETS: &[(&str, Block)] = &[
    (
        "configs/hyprland/hyprland.conf",
        Block::Vars(|n, c| format!("$koompi_{} = rgb({})", n.replace('-', "_"), c.hex())),
    ),
    (
        "configs/waybar/style.css",
        Block::Vars(|n, c| format!("@define-color koompi_{} #{};", n.replace('-', "_"), c.hex())),
    ),
    (
        "configs/rofi/config.rasi",
        Block::Vars(|n, c| format!("koompi-{n}: #{};", c.hex())),
    ),
    (
        "configs/neovim/init.lua",
        Block::Vars(|n, c| format!("{} = \"#{}\",", n.replace('-', "_"), c.hex())),
    ),
    ("configs/foot/foot.ini", Block::Template(FOOT)),
    ("configs/fuzzel/fuzzel.ini", Block::Template(FUZZEL)),
    ("configs/zellij/config.kdl", Block::Template(ZELLIJ)),
    ("configs/tint2/tint2rc", Block::Template(TINT2)),
    (
        "configs/openbox/themes/KOOMPI/openbox-3/themerc",
        Block::Template(OPENBOX_THEME),
    ),
];

const FOOT: &str = "\
background=%{background:hex}
foreground=%{text:hex}
selection-background=%{accent:hex}
selection-foreground=%{background:hex}
regular0=%{surface:hex}
regular1=%{red:hex}
regular2=%{green:hex}
regular3=%{yellow:hex}
regular4=%{accent:hex}
regular5=%{magenta:hex}
regular6=%{cyan:hex}
regular7=%{text:hex}
bright0=%{subtle:hex}
bright1=%{bright-red:hex}
bright2=%{bright-green:hex}
bright3=%{bright-yellow:hex}
bright4=%{accent-light:hex}
bright5=%{bright-magenta:hex}
bright6=%{bright-cyan:hex}
bright7=%{bright:hex}";

// fuzzel colours are rrggbbaa. `prompt` and `input` are fuzzel 1.9's and later (Arch has
// them; Debian 12's fuzzel 1.8.2 does not: the real-program test knows).
const FUZZEL: &str = "\
background=%{background:hex}f2
text=%{text:hex}ff
prompt=%{accent:hex}ff
input=%{bright:hex}ff
match=%{accent:hex}ff
selection=%{accent:hex}ff
selection-text=%{background:hex}ff
selection-match=%{bright:hex}ff
border=%{accent:hex}ff";

const ZELLIJ: &str = "\
fg \"%{text}\"
bg \"%{background}\"
black \"%{surface}\"
red \"%{red}\"
green \"%{green}\"
yellow \"%{yellow}\"
blue \"%{accent}\"
magenta \"%{magenta}\"
cyan \"%{cyan}\"
white \"%{bright}\"
orange \"%{orange}\"";

// tint2 numbers backgrounds in the order they appear (each starts with `rounded`).
const TINT2: &str = "\
# 1: panel
rounded = 0
border_width = 0
border_sides = TBLR
background_color = %{background} 100
border_color = %{accent} 100
background_color_hover = %{background} 100
border_color_hover = %{accent} 100
background_color_pressed = %{background} 100
border_color_pressed = %{accent} 100

# 2: normal task
rounded = 4
border_width = 0
border_sides = TBLR
background_color = %{surface} 100
border_color = %{overlay} 100
background_color_hover = %{overlay} 100
border_color_hover = %{overlay} 100
background_color_pressed = %{accent} 100
border_color_pressed = %{accent} 100

# 3: active task
rounded = 4
border_width = 1
border_sides = B
background_color = %{selection} 100
border_color = %{accent} 100
background_color_hover = %{selection} 100
border_color_hover = %{accent} 100
background_color_pressed = %{accent} 100
border_color_pressed = %{accent} 100

# Text
task_font_color = %{text} 100
task_active_font_color = %{bright} 100
task_iconified_font_color = %{muted} 100
clock_font_color = %{bright} 100
tooltip_font_color = %{text} 100";

const OPENBOX_THEME: &str = "\
window.active.border.color: %{accent}
window.inactive.border.color: %{overlay}
window.active.title.bg: flat solid
window.active.title.bg.color: %{background}
window.active.label.bg: parentrelative
window.active.label.text.color: %{bright}
window.inactive.title.bg: flat solid
window.inactive.title.bg.color: %{surface}
window.inactive.label.bg: parentrelative
window.inactive.label.text.color: %{muted}
window.active.button.unpressed.bg: parentrelative
window.active.button.unpressed.image.color: %{text}
window.active.button.hover.bg: flat solid
window.active.button.hover.bg.color: %{overlay}
window.active.button.hover.image.color: %{bright}
window.active.button.pressed.bg: flat solid
window.active.button.pressed.bg.color: %{accent}
window.active.button.pressed.image.color: %{background}
window.active.button.disabled.bg: parentrelative
window.active.button.disabled.image.color: %{overlay}
window.inactive.button.unpressed.bg: parentrelative
window.inactive.button.unpressed.image.color: %{muted}
window.inactive.button.hover.bg: flat solid
window.inactive.button.hover.bg.color: %{overlay}
window.inactive.button.hover.image.color: %{text}
window.inactive.button.pressed.bg: flat solid
window.inactive.button.pressed.bg.color: %{accent}
window.inactive.button.pressed.image.color: %{background}
window.inactive.button.disabled.bg: parentrelative
window.inactive.button.disabled.image.color: %{overlay}
menu.border.color: %{accent}
menu.title.bg: flat solid
menu.title.bg.color: %{surface}
menu.title.text.color: %{accent}
menu.items.bg: flat solid
menu.items.bg.color: %{background}
menu.items.text.color: %{text}
menu.items.disabled.text.color: %{muted}
menu.items.active.bg: flat solid
menu.items.active.bg.color: %{accent}
menu.items.active.text.color: %{background}
menu.separator.color: %{overlay}
osd.border.color: %{accent}
osd.bg: flat solid
osd.bg.color: %{background}
osd.label.text.color: %{text}
osd.hilight.bg: flat solid
osd.hilight.bg.color: %{accent}
osd.unhilight.bg: flat solid
osd.unhilight.bg.color: %{overlay}";

/// `template` with its placeholders replaced.
fn render_template(template: &str, palette: &Palette) -> Result<String> {
    let mut out = String::new();
    let mut rest = template;
    while let Some(i) = rest.find("%{") {
        out.push_str(&rest[..i]);
        let after = &rest[i + 2..];
        let end = after
            .find('}')
            .context("a %{ placeholder without its closing }")?;
        let (name, hex) = match after[..end].split_once(':') {
            Some((n, "hex")) => (n, true),
            Some((_, f)) => bail!("placeholder %{{{}}}: unknown form `{f}`", &after[..end]),
            None => (&after[..end], false),
        };
        let c = palette
            .get(name)
            .with_context(|| format!("placeholder %{{{name}}}: no such colour in [colors]"))?;
        if !hex {
            out.push('#');
        }
        out.push_str(&c.hex());
        rest = &after[end + 1..];
    }
    out.push_str(rest);
    Ok(out)
}

/// `text` with its palette block rewritten; `file` names it in errors.
fn render_file(file: &str, text: &str, block: Block, palette: &Palette) -> Result<String> {
    let lines: Vec<&str> = text.split_inclusive('\n').collect();
    let find = |word: &str| -> Result<usize> {
        let found: Vec<usize> = (0..lines.len())
            .filter(|&i| lines[i].contains(word))
            .collect();
        match found[..] {
            [i] => Ok(i),
            [] => bail!("{file}: no `{word}` line"),
            _ => bail!("{file}: `{word}` more than once"),
        }
    };
    let begin = find("BEGIN koompi-palette")?;
    let end = find("END koompi-palette")?;
    if end < begin {
        bail!("{file}: `END koompi-palette` comes before `BEGIN koompi-palette`");
    }
    let indent: String = lines[begin]
        .chars()
        .take_while(|c| *c == ' ' || *c == '\t')
        .collect();
    let body = match block {
        Block::Vars(line) => {
            let mut s = String::new();
            for (n, c) in &palette.colors {
                let _ = writeln!(s, "{}", line(n, *c));
            }
            s
        }
        Block::Template(t) => render_template(t, palette)? + "\n",
    };
    let mut out: String = lines[..=begin].concat();
    for l in body.lines() {
        if l.is_empty() {
            out.push('\n');
        } else {
            let _ = writeln!(out, "{indent}{l}");
        }
    }
    out.push_str(&lines[end..].concat());
    let outside = lines[..begin].concat() + &lines[end + 1..].concat();
    if let Some(c) = stray_colour(&outside) {
        bail!(
            "{file}: the colour `{c}` is written outside the koompi-palette block; \
             name it in {PALETTE} and use it through the block"
        );
    }
    Ok(out)
}

/// The first colour literal in `text`: `#rrggbb` (or `#rgb`), or `rgb(`/`rgba(` hex.
fn stray_colour(text: &str) -> Option<String> {
    let b = text.as_bytes();
    for i in 0..b.len() {
        let hex_run = |from: usize| {
            b[from.min(b.len())..]
                .iter()
                .take_while(|c| c.is_ascii_hexdigit())
                .count()
        };
        if b[i] == b'#' {
            let n = hex_run(i + 1);
            let ends = b
                .get(i + 1 + n)
                .is_none_or(|c| !c.is_ascii_alphanumeric() && *c != b'_' && *c != b'-');
            if (n == 3 || n == 6 || n == 8) && ends {
                return Some(text[i..i + 1 + n].to_string());
            }
        }
        for p in ["rgb(", "rgba("] {
            if text[i..].starts_with(p) && hex_run(i + p.len()) >= 6 {
                return Some(text[i..i + p.len() + 6].to_string());
            }
        }
    }
    None
}

/// Every target as (path, what it should hold, what it holds).
fn render_all(root: &Path, palette: &Palette) -> Result<Vec<(String, String, String)>> {
    TARGETS
        .iter()
        .map(|(rel, block)| {
            let path = root.join(rel);
            let text = std::fs::read_to_string(&path)
                .with_context(|| format!("cannot read {}", path.display()))?;
            let want = render_file(rel, &text, *block, palette)?;
            Ok((rel.to_string(), want, text))
        })
        .collect()
}

/// The configs that differ from what the palette makes (relative paths).
#[cfg(test)]
pub fn stale(root: &Path) -> Result<Vec<String>> {
    let palette = Palette::load(root)?;
    Ok(render_all(root, &palette)?
        .into_iter()
        .filter(|(_, want, have)| want != have)
        .map(|(rel, _, _)| rel)
        .collect())
}

/// `cargo xtask configs [--check]`.
pub fn run(root: &Path, opts: &Options) -> Result<()> {
    let palette = Palette::load(root)?;
    let mut differ = Vec::new();
    for (rel, want, have) in render_all(root, &palette)? {
        if want == have {
            continue;
        }
        if !opts.check {
            std::fs::write(root.join(&rel), &want)
                .with_context(|| format!("cannot write {rel}"))?;
            println!("wrote {rel}");
        }
        differ.push(rel);
    }
    if opts.check && !differ.is_empty() {
        bail!(
            "{} differ from {PALETTE}: {} (run `cargo xtask configs`)",
            differ.len(),
            differ.join(", ")
        );
    }
    if differ.is_empty() {
        println!("every config has the colours of {PALETTE}");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn root() -> std::path::PathBuf {
        crate::host::workspace_root().unwrap()
    }

    #[test]
    fn the_shipped_configs_are_what_the_palette_makes() {
        let stale = stale(&root()).unwrap();
        assert!(
            stale.is_empty(),
            "these configs differ from {PALETTE} (colours edited by hand, or the palette \
             changed without `cargo xtask configs`): {stale:?}"
        );
    }

    #[test]
    fn a_colour_changed_by_hand_is_found() {
        let palette = Palette::load(&root()).unwrap();
        let rel = "configs/foot/foot.ini";
        let text = std::fs::read_to_string(root().join(rel)).unwrap();
        let edited = text.replacen("background=0d1117", "background=000000", 1);
        assert_ne!(
            text, edited,
            "the test expects foot's background from the palette"
        );
        let block = TARGETS.iter().find(|(p, _)| *p == rel).unwrap().1;
        assert_eq!(render_file(rel, &edited, block, &palette).unwrap(), text);
        // Outside the block, a colour is refused.
        let outside = format!("{text}\n[colors2]\nx=#123456\n");
        let err = render_file(rel, &outside, block, &palette).unwrap_err();
        assert!(
            err.to_string().contains("`#123456` is written outside"),
            "{err}"
        );
    }

    #[test]
    fn a_palette_change_reaches_every_kind_of_block() {
        let mut palette = Palette::load(&root()).unwrap();
        for (name, c) in palette.colors.iter_mut() {
            if name == "accent" {
                *c = Rgb([0x12, 0x34, 0x56]);
            }
        }
        for (rel, want, have) in render_all(&root(), &palette).unwrap() {
            assert_ne!(want, have, "{rel} does not change with the accent colour");
            assert!(want.contains("123456"), "{rel}");
        }
    }

    #[test]
    fn placeholders_and_palettes_are_checked() {
        let p = Palette::parse("[colors]\naccent = \"#1E88E5\"\n").unwrap();
        assert_eq!(
            render_template("a=%{accent} b=%{accent:hex}", &p).unwrap(),
            "a=#1e88e5 b=1e88e5"
        );
        assert!(render_template("%{nosuch}", &p).is_err());
        assert!(render_template("%{accent:rgb}", &p).is_err());
        assert!(Palette::parse("[colors]\naccent = \"blue\"\n").is_err());
        assert!(Palette::parse("[colors]\nAccent = \"#000000\"\n").is_err());
        assert!(Palette::parse("[other]\nx = \"#000000\"\n").is_err());
    }

    #[test]
    fn stray_colours() {
        assert_eq!(stray_colour("a #0d1117 b").as_deref(), Some("#0d1117"));
        assert_eq!(
            stray_colour("x = rgb(1e88e5)").as_deref(),
            Some("rgb(1e88e5")
        );
        assert_eq!(stray_colour("#custom-koompi { }"), None);
        assert_eq!(stray_colour("#battery.warning"), None);
        assert_eq!(stray_colour("# comment"), None);
    }

    /// The wallpapers (drawn by branding/generate-artwork.py from the palette) start at the
    /// palette's gradient colours and carry the logo in its colours.
    #[test]
    fn the_wallpapers_use_the_palette() {
        let palette = Palette::load(&root()).unwrap();
        let w = |n: &str| palette.wallpaper[n].0;
        let accent = palette.get("accent").unwrap().0;
        for (file, top) in [
            ("koompi-default.png", w("navy-top")),
            ("koompi-blue.png", w("blue-top")),
        ] {
            let path = root().join("branding/wallpapers").join(file);
            let decoder = png::Decoder::new(std::fs::File::open(&path).unwrap());
            let mut reader = decoder.read_info().unwrap();
            let mut buf = vec![0; reader.output_buffer_size()];
            let info = reader.next_frame(&mut buf).unwrap();
            assert_eq!(info.color_type, png::ColorType::Rgb, "{file}");
            let (width, height) = (info.width as usize, info.height as usize);
            let px = |x: usize, y: usize| {
                let i = (y * width + x) * 3;
                [buf[i], buf[i + 1], buf[i + 2]]
            };
            assert_eq!(px(0, 0), top, "{file}: the top is not the palette's colour");
            let bottom = if file == "koompi-blue.png" {
                w("navy-top")
            } else {
                w("navy-bottom")
            };
            assert_eq!(
                px(0, height - 1),
                bottom,
                "{file}: the bottom is not the palette's colour"
            );
            let row = height / 2;
            let logo: Vec<[u8; 3]> = (0..height)
                .flat_map(|y| (0..width).map(move |x| (x, y)))
                .filter(|&(_, y)| y.abs_diff(row) < 80)
                .map(|(x, y)| px(x, y))
                .collect();
            assert!(
                logo.contains(&w("logo")),
                "{file}: no logo pixel in the palette's logo colour"
            );
            assert!(
                logo.contains(&accent),
                "{file}: no logo pixel in the accent colour"
            );
        }
    }
}
