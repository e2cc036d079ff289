//! Screenshots of the KOOMPI editions that run on Debian, made by starting the real
//! programs with KOOMPI's configs as a user's home has them (issue 14):
//!
//! - **Lite**: Xvfb at 1280x800, Openbox with KOOMPI's rc.xml and theme, tint2 with
//!   KOOMPI's tint2rc, the KOOMPI wallpaper set by nitrogen (as Lite's autostart does), an
//!   xterm and rofi's launcher; captured with `xwd -root`.
//! - **Tiling**: a headless sway standing in for Hyprland (which Debian does not have), with
//!   the gaps, borders and colours of KOOMPI's hyprland.conf, Waybar and foot with KOOMPI's
//!   configs, the KOOMPI wallpaper drawn by swaybg; captured with `grim`.
//!
//! The home files come from the catalog's config sets (configs/editions.toml) and load
//! their base from a copy of this checkout's configs/ instead of /usr/share/koompi/configs.
//! Each picture is checked (the wallpaper fills what the windows leave, the panel is where
//! its config puts it in the palette's colour, the windows have KOOMPI's colours), so a
//! broken config or a program that did not start fails the test. The pictures go to
//! target/screenshots/ always, and with `KOOMPI_UPDATE_SCREENSHOTS=1` also to docs/images/
//! (docs/desktops.md shows them). A missing program skips a test with one line, except under
//! `KOOMPI_PRIVILEGED_TESTS=1`, where it fails (koompi_testutil::prereq).

#![allow(clippy::unwrap_used)]

mod common;

use std::collections::BTreeMap;
use std::fs;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::{configs, read, repo, run_for, sway_command, write, xdg_env, Xvfb};
use koompi_desktop::catalog::{Catalog, CONFIGS_DIR};
use koompi_testutil::prereq;

/// The screen of both pictures.
const WIDTH: usize = 1280;
const HEIGHT: usize = 800;

/// The pictures' names (in target/screenshots and docs/images).
const LITE_PNG: &str = "edition-lite-xvfb.png";
const TILING_PNG: &str = "edition-tiling-sway.png";

/// How long a picture may take to show everything it should.
const DEADLINE: Duration = Duration::from_secs(25);

// ------------------------------------------------------------------ pictures

type Rgb = [u8; 3];

/// An RGB picture.
#[derive(Clone)]
struct Image {
    width: usize,
    height: usize,
    pixels: Vec<Rgb>,
}

impl std::fmt::Debug for Image {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Image({}x{})", self.width, self.height)
    }
}

impl Image {
    fn at(&self, x: usize, y: usize) -> Rgb {
        self.pixels[y * self.width + x]
    }

    fn from_png(bytes: &[u8]) -> Result<Image, String> {
        let mut decoder = png::Decoder::new(bytes);
        decoder.set_transformations(png::Transformations::EXPAND | png::Transformations::STRIP_16);
        let mut reader = decoder.read_info().map_err(|e| format!("PNG: {e}"))?;
        let mut buf = vec![0; reader.output_buffer_size()];
        let info = reader
            .next_frame(&mut buf)
            .map_err(|e| format!("PNG: {e}"))?;
        let channels = match info.color_type {
            png::ColorType::Rgb => 3,
            png::ColorType::Rgba => 4,
            png::ColorType::Grayscale => 1,
            png::ColorType::GrayscaleAlpha => 2,
            png::ColorType::Indexed => return Err("PNG: palette left after EXPAND".into()),
        };
        let pixels = buf[..info.buffer_size()]
            .chunks_exact(channels)
            .map(|p| {
                if channels < 3 {
                    [p[0]; 3]
                } else {
                    [p[0], p[1], p[2]]
                }
            })
            .collect();
        Ok(Image {
            width: info.width as usize,
            height: info.height as usize,
            pixels,
        })
    }

    /// An `xwd` dump (X Window Dump, version 7: a big-endian header, the window name, the
    /// colour map, then the pixels) of a TrueColor screen with 24 or 32 bits per pixel.
    fn from_xwd(bytes: &[u8]) -> Result<Image, String> {
        let field = |i: usize| -> Result<u32, String> {
            bytes
                .get(i * 4..i * 4 + 4)
                .map(|b| u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
                .ok_or_else(|| format!("xwd: {} bytes, no header", bytes.len()))
        };
        let usize_of = |i: usize| -> Result<usize, String> { Ok(field(i)? as usize) };
        if field(1)? != 7 {
            return Err(format!("xwd: file version {}, not 7", field(1)?));
        }
        let header_size = usize_of(0)?;
        let (format, width, height) = (field(2)?, usize_of(4)?, usize_of(5)?);
        let byte_order = field(7)?;
        let bits_per_pixel = usize_of(11)?;
        let bytes_per_line = usize_of(12)?;
        let masks = [field(13 + 1)?, field(13 + 2)?, field(13 + 3)?];
        let ncolors = usize_of(19)?;
        if format != 2 || !(bits_per_pixel == 32 || bits_per_pixel == 24) {
            return Err(format!(
                "xwd: format {format}, {bits_per_pixel} bits per pixel (ZPixmap, 24 or 32 wanted)"
            ));
        }
        let data = header_size + ncolors * 12;
        let need = data + bytes_per_line * height;
        if bytes.len() < need {
            return Err(format!("xwd: {} bytes, {need} wanted", bytes.len()));
        }
        let step = bits_per_pixel / 8;
        let channel = |value: u32, mask: u32| -> u8 {
            let shift = mask.trailing_zeros();
            u8::try_from(((value & mask) >> shift) & 0xff).unwrap_or(0)
        };
        let mut pixels = Vec::with_capacity(width * height);
        for y in 0..height {
            let row = &bytes[data + y * bytes_per_line..];
            for x in 0..width {
                let p = &row[x * step..x * step + step];
                let mut b = [0u8; 4];
                b[..step].copy_from_slice(p);
                let value = if byte_order == 0 {
                    u32::from_le_bytes(b)
                } else {
                    u32::from_be_bytes(b) >> (8 * (4 - step))
                };
                pixels.push([
                    channel(value, masks[0]),
                    channel(value, masks[1]),
                    channel(value, masks[2]),
                ]);
            }
        }
        Ok(Image {
            width,
            height,
            pixels,
        })
    }

    fn save_png(&self, path: &Path) {
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        let file = fs::File::create(path).unwrap();
        let mut encoder = png::Encoder::new(
            std::io::BufWriter::new(file),
            u32::try_from(self.width).unwrap(),
            u32::try_from(self.height).unwrap(),
        );
        encoder.set_color(png::ColorType::Rgb);
        encoder.set_depth(png::BitDepth::Eight);
        encoder.set_compression(png::Compression::Best);
        encoder.set_adaptive_filter(png::AdaptiveFilterType::Adaptive);
        let mut writer = encoder.write_header().unwrap();
        let data: Vec<u8> = self.pixels.iter().flatten().copied().collect();
        writer.write_image_data(&data).unwrap();
        writer.finish().unwrap();
    }

    /// How many of the pixels in `rows` x `cols` pass `f`, as a fraction.
    fn share(
        &self,
        rows: std::ops::Range<usize>,
        cols: std::ops::Range<usize>,
        f: impl Fn(usize, usize, Rgb) -> bool,
    ) -> f64 {
        let (mut yes, mut all) = (0usize, 0usize);
        for y in rows {
            for x in cols.clone() {
                all += 1;
                if f(x, y, self.at(x, y)) {
                    yes += 1;
                }
            }
        }
        if all == 0 {
            return 0.0;
        }
        yes as f64 / all as f64
    }

    /// The share of row `y` that is `colour` (within `tolerance` per channel).
    fn row_share(&self, y: usize, colour: Rgb, tolerance: u8) -> f64 {
        self.share(y..y + 1, 0..self.width, |_, _, p| {
            near(p, colour, tolerance)
        })
    }

    /// The longest vertical run of `colour` in column `x` between rows `rows`.
    fn column_run(&self, x: usize, rows: std::ops::Range<usize>, colour: Rgb) -> usize {
        let (mut best, mut run) = (0, 0);
        for y in rows {
            if self.at(x, y) == colour {
                run += 1;
                best = best.max(run);
            } else {
                run = 0;
            }
        }
        best
    }

    /// How many different colours the picture has (up to 10 000).
    fn colours(&self) -> usize {
        let mut seen = std::collections::HashSet::new();
        for p in &self.pixels {
            seen.insert(*p);
            if seen.len() >= 10_000 {
                break;
            }
        }
        seen.len()
    }
}

fn near(a: Rgb, b: Rgb, tolerance: u8) -> bool {
    a.iter().zip(b).all(|(x, y)| x.abs_diff(y) <= tolerance)
}

fn hex(text: &str) -> Rgb {
    let t = text.trim().trim_start_matches('#');
    let c = |i: usize| u8::from_str_radix(&t[i..i + 2], 16).unwrap();
    [c(0), c(2), c(4)]
}

fn show(c: Rgb) -> String {
    format!("#{:02x}{:02x}{:02x}", c[0], c[1], c[2])
}

/// configs/palette.toml's `[colors]`.
fn palette() -> BTreeMap<String, Rgb> {
    let doc: toml::Table = toml::from_str(&read("palette.toml")).unwrap();
    doc["colors"]
        .as_table()
        .unwrap()
        .iter()
        .map(|(k, v)| (k.clone(), hex(v.as_str().unwrap())))
        .collect()
}

/// The KOOMPI wallpaper as a screen of `width` x `height` shows it zoomed to fill (scaled
/// to cover the screen, the middle kept): nitrogen's `--set-zoom-fill`, swaybg's `fill`.
struct Wallpaper(Image);

const WALLPAPER: &str = "branding/wallpapers/koompi-default.png";

impl Wallpaper {
    fn load() -> Wallpaper {
        Wallpaper(Image::from_png(&fs::read(repo().join(WALLPAPER)).unwrap()).unwrap())
    }

    fn expected(&self, x: usize, y: usize, width: usize, height: usize) -> Rgb {
        let w = &self.0;
        let scale = (width as f64 / w.width as f64).max(height as f64 / w.height as f64);
        let off_x = (w.width as f64 * scale - width as f64) / 2.0;
        let off_y = (w.height as f64 * scale - height as f64) / 2.0;
        let sx = (((x as f64 + 0.5 + off_x) / scale) as usize).min(w.width - 1);
        let sy = (((y as f64 + 0.5 + off_y) / scale) as usize).min(w.height - 1);
        w.at(sx, sy)
    }

    /// The share of `rows` (every 4th pixel) that shows the wallpaper.
    fn share(&self, img: &Image, rows: std::ops::Range<usize>) -> f64 {
        let (mut yes, mut all) = (0usize, 0usize);
        for y in rows.step_by(4) {
            for x in (0..img.width).step_by(4) {
                all += 1;
                if near(img.at(x, y), self.expected(x, y, img.width, img.height), 12) {
                    yes += 1;
                }
            }
        }
        yes as f64 / all.max(1) as f64
    }
}

// ------------------------------------------------------------------ homes and programs

/// A scratch directory with `base/`, a copy of this checkout's configs/ (what koompi-configs
/// installs at /usr/share/koompi/configs), and `home/`, holding the files the catalog's
/// config sets of `edition` put into a home, each loading its base from `base/`.
struct Scratch {
    dir: tempfile::TempDir,
}

impl Scratch {
    fn new(edition: &str) -> Scratch {
        let dir = tempfile::Builder::new()
            .prefix("koompi-screens-")
            .tempdir()
            .unwrap();
        let scratch = Scratch { dir };
        copy_tree(&configs(), &scratch.base());
        let catalog = Catalog::parse(&read("editions.toml")).unwrap();
        let e = catalog.edition(edition).unwrap();
        let files = catalog.config_files(e);
        assert!(!files.is_empty(), "{edition} has no config sets");
        for f in files {
            let text = read(f.src.to_str().unwrap())
                .replace(CONFIGS_DIR, scratch.base().to_str().unwrap());
            write(&scratch.home().join(&f.dest), &text);
        }
        fs::copy(repo().join(WALLPAPER), scratch.wallpaper()).unwrap();
        scratch
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    fn base(&self) -> PathBuf {
        self.path().join("base")
    }

    fn home(&self) -> PathBuf {
        self.path().join("home")
    }

    fn wallpaper(&self) -> PathBuf {
        self.path().join("koompi-default.png")
    }
}

fn copy_tree(from: &Path, to: &Path) {
    fs::create_dir_all(to).unwrap();
    for e in fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let target = to.join(e.file_name());
        if e.file_type().unwrap().is_dir() {
            copy_tree(&e.path(), &target);
        } else {
            fs::copy(e.path(), &target).unwrap();
        }
    }
}

/// A program started in the background in its own process group, its output in a log;
/// the whole group is killed when this is dropped, whatever happened. (What sway starts
/// runs in sessions of its own; those Wayland clients end when sway is gone.)
struct Started {
    name: String,
    log: tempfile::NamedTempFile,
    child: Child,
    pgid: i32,
}

impl Started {
    fn spawn(name: &str, mut cmd: Command) -> Started {
        let log = tempfile::NamedTempFile::new().unwrap();
        let file = || {
            fs::OpenOptions::new()
                .append(true)
                .open(log.path())
                .unwrap()
        };
        let child = cmd
            .stdin(Stdio::null())
            .stdout(file())
            .stderr(file())
            .process_group(0)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {name}: {e}"));
        let pgid = i32::try_from(child.id()).unwrap();
        Started {
            name: name.to_string(),
            log,
            child,
            pgid,
        }
    }

    fn log(&self) -> String {
        fs::read_to_string(self.log.path()).unwrap_or_default()
    }

    /// Its exit status when it has ended.
    fn ended(&mut self) -> Option<std::process::ExitStatus> {
        self.child.try_wait().unwrap()
    }
}

impl Drop for Started {
    fn drop(&mut self) {
        // The group first, while the child (its leader) is not yet reaped, so the group's
        // number cannot have been reused.
        if let Some(pid) = rustix::process::Pid::from_raw(self.pgid) {
            let _ = rustix::process::kill_process_group(pid, rustix::process::Signal::KILL);
        }
        let _ = self.child.wait();
    }
}

/// What every started program said, for a failure message.
fn logs(programs: &[&Started]) -> String {
    programs
        .iter()
        .map(|p| format!("--- {}:\n{}", p.name, p.log().trim_end()))
        .collect::<Vec<_>>()
        .join("\n")
}

/// Takes pictures with `capture` until `check` accepts one and, a second later, the next
/// one too (so what it checked had finished drawing); fails at the deadline with the last
/// reason and the programs' logs, and keeps the last picture as
/// target/screenshots/failed-NAME.
fn settle(
    name: &str,
    mut capture: impl FnMut() -> Result<Image, String>,
    check: impl Fn(&Image) -> Result<(), String>,
    programs: &mut [&mut Started],
) -> Image {
    let started = Instant::now();
    let mut passed = false;
    let mut last = String::from("no picture yet");
    let mut last_image = None;
    loop {
        let ended = programs
            .iter_mut()
            .find_map(|p| p.ended().map(|s| (p.name.clone(), s)));
        if let Some((program, status)) = ended {
            let all: Vec<&Started> = programs.iter().map(|p| &**p).collect();
            panic!("{name}: {program} ended ({status}):\n{}", logs(&all));
        }
        match capture() {
            Ok(img) => match check(&img) {
                Ok(()) if passed => return img,
                Ok(()) => passed = true,
                Err(e) => {
                    passed = false;
                    last = e;
                    last_image = Some(img);
                }
            },
            Err(e) => {
                passed = false;
                last = e;
            }
        }
        if started.elapsed() > DEADLINE {
            if let Some(img) = last_image {
                img.save_png(&screenshots().join(format!("failed-{name}")));
            }
            let all: Vec<&Started> = programs.iter().map(|p| &**p).collect();
            panic!(
                "{name}: not right after {DEADLINE:?}: {last}\n{}",
                logs(&all)
            );
        }
        std::thread::sleep(Duration::from_millis(if passed { 1000 } else { 500 }));
    }
}

/// target/screenshots.
fn screenshots() -> PathBuf {
    Path::new(env!("CARGO_TARGET_TMPDIR"))
        .parent()
        .unwrap()
        .join("screenshots")
}

/// Writes the picture to target/screenshots/NAME, and to docs/images/NAME with
/// `KOOMPI_UPDATE_SCREENSHOTS=1`.
fn keep(img: &Image, name: &str) {
    let target = screenshots().join(name);
    img.save_png(&target);
    eprintln!("{name}: {}", target.display());
    if std::env::var("KOOMPI_UPDATE_SCREENSHOTS").as_deref() == Ok("1") {
        let docs = repo().join("docs/images").join(name);
        img.save_png(&docs);
        eprintln!("{name}: {}", docs.display());
    }
}

/// `key = value` of a config with such lines (tint2rc, hyprland.conf), the first one.
fn setting<'t>(text: &'t str, key: &str) -> &'t str {
    text.lines()
        .filter_map(|l| l.split_once('='))
        .find(|(k, _)| k.trim() == key)
        .map(|(_, v)| v.trim())
        .unwrap_or_else(|| panic!("no `{key} =`"))
}

// ------------------------------------------------------------------ KOOMPI Lite

/// Where tint2rc puts the panel and how high it is: (at the bottom, height).
fn tint2_panel(rc: &str) -> (bool, usize) {
    let size = setting(rc, "panel_size");
    let height = size.split_whitespace().nth(1).unwrap().parse().unwrap();
    let bottom = setting(rc, "panel_position").starts_with("bottom");
    (bottom, height)
}

/// rofi's window width in the base config.rasi (`window { width: Npx; }`).
fn rofi_width(rasi: &str) -> usize {
    let window = rasi.split("\nwindow {").nth(1).unwrap();
    let width = window
        .split("width:")
        .nth(1)
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .trim()
        .trim_end_matches("px");
    width.parse().unwrap()
}

/// What the Lite picture must show.
struct LiteLook {
    wallpaper: Wallpaper,
    panel_bottom: bool,
    panel_height: usize,
    panel: Rgb,
    /// The Openbox theme's active and inactive window border colours.
    borders: [Rgb; 2],
    accent: Rgb,
    rofi_width: usize,
    /// Where the xterm's frame starts (x).
    xterm_x: usize,
}

impl LiteLook {
    fn new(xterm_x: usize) -> LiteLook {
        let colours = palette();
        let (panel_bottom, panel_height) = tint2_panel(&read("tint2/tint2rc"));
        let theme = read("openbox/themes/KOOMPI/openbox-3/themerc");
        let border = |key: &str| hex(setting(&theme.replace(": ", "="), key));
        LiteLook {
            wallpaper: Wallpaper::load(),
            panel_bottom,
            panel_height,
            panel: colours["background"],
            borders: [
                border("window.active.border.color"),
                border("window.inactive.border.color"),
            ],
            accent: colours["accent"],
            rofi_width: rofi_width(&read("rofi/config.rasi")),
            xterm_x,
        }
    }

    fn check(&self, img: &Image) -> Result<(), String> {
        if (img.width, img.height) != (WIDTH, HEIGHT) {
            return Err(format!("the picture is {img:?}, not {WIDTH}x{HEIGHT}"));
        }
        if img.colours() < 16 {
            return Err(format!("the picture has {} colours", img.colours()));
        }
        // tint2's panel: its first and last rows in the palette's colour, the row past it not.
        let h = self.panel_height;
        let (first, last, past) = if self.panel_bottom {
            (HEIGHT - h, HEIGHT - 1, HEIGHT - h - 1)
        } else {
            (0, h - 1, h)
        };
        for y in [first, last] {
            let s = img.row_share(y, self.panel, 0);
            if s < 0.8 {
                return Err(format!(
                    "tint2's panel: row {y} is {:.0}% {} (80% wanted)",
                    s * 100.0,
                    show(self.panel)
                ));
            }
        }
        if img.row_share(past, self.panel, 0) > 0.5 {
            return Err(format!("tint2's panel is higher than {h} px (row {past})"));
        }
        // The wallpaper: most of what the windows leave above the panel.
        let rows = if self.panel_bottom {
            0..HEIGHT - h
        } else {
            h..HEIGHT
        };
        let s = self.wallpaper.share(img, rows);
        if s < 0.35 {
            return Err(format!(
                "the wallpaper shows on {:.0}% of the screen (35% wanted)",
                s * 100.0
            ));
        }
        // rofi in the middle: its left and right borders in KOOMPI blue, and inside them
        // KOOMPI's dark colours (light text and icons on them, the selected row in blue).
        let left = (WIDTH - self.rofi_width) / 2;
        let right = left + self.rofi_width - 1;
        for x in [left, right] {
            let run = (x.saturating_sub(2)..=x + 2)
                .map(|x| img.column_run(x, 0..HEIGHT, self.accent))
                .max()
                .unwrap_or(0);
            if run < 150 {
                return Err(format!(
                    "rofi: no border in {} at x={x} (longest run {run} px)",
                    show(self.accent)
                ));
            }
        }
        let rows: Vec<usize> = (0..HEIGHT)
            .filter(|y| img.at(left + 1, *y) == self.accent)
            .collect();
        let (Some(&top), Some(&bottom)) = (rows.first(), rows.last()) else {
            return Err(format!(
                "rofi: no border in {} at x={}",
                show(self.accent),
                left + 1
            ));
        };
        let light = img.share(top + 8..bottom - 8, left + 8..right - 8, |_, _, p| {
            p.iter().all(|c| *c > 160)
        });
        if light > 0.1 {
            return Err(format!(
                "rofi: {:.0}% of its window is light (10% at most: KOOMPI's rofi is dark)",
                light * 100.0
            ));
        }
        // The xterm's frame in the KOOMPI Openbox theme's border colour.
        let run = self
            .borders
            .iter()
            .flat_map(|c| {
                (self.xterm_x.saturating_sub(4)..self.xterm_x + 8)
                    .map(|x| img.column_run(x, 0..HEIGHT, *c))
            })
            .max()
            .unwrap_or(0);
        if run < 100 {
            return Err(format!(
                "Openbox: no window border in {} or {} near x={} (longest run {run} px)",
                show(self.borders[0]),
                show(self.borders[1]),
                self.xterm_x
            ));
        }
        Ok(())
    }
}

fn xwd(display: &str) -> Result<Image, String> {
    let out = Command::new("xwd")
        .args(["-root", "-silent", "-display", display])
        .stdin(Stdio::null())
        .stderr(Stdio::piped())
        .output()
        .map_err(|e| format!("xwd: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "xwd: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    Image::from_xwd(&out.stdout)
}

/// Waits until a window manager runs on `display` (the root window names it).
fn wait_for_wm(display: &str, wm: &mut Started) {
    let started = Instant::now();
    loop {
        let out = Command::new("xprop")
            .args(["-display", display, "-root", "_NET_SUPPORTING_WM_CHECK"])
            .stderr(Stdio::null())
            .output()
            .unwrap();
        if String::from_utf8_lossy(&out.stdout).contains("window id") {
            return;
        }
        if let Some(status) = wm.ended() {
            panic!("openbox ended ({status}):\n{}", wm.log());
        }
        assert!(
            started.elapsed() < DEADLINE,
            "openbox did not start within {DEADLINE:?}:\n{}",
            wm.log()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn lite_under_xvfb_looks_like_koompi() {
    let needs = [
        "Xvfb", "openbox", "tint2", "rofi", "nitrogen", "xterm", "xwd", "xprop",
    ];
    if !prereq::require("edition_screens lite", &needs) {
        return;
    }
    let colours = palette();
    let scratch = Scratch::new("lite");
    let home = scratch.home();
    // koompi-configs installs the Openbox theme system-wide; here it is the user's.
    copy_tree(
        &configs().join("openbox/themes/KOOMPI"),
        &home.join(".local/share/themes/KOOMPI"),
    );
    // Xvfb's screen is 1280x800 (common::Xvfb).
    let x = Xvfb::start();
    let display = x.display.clone();
    let program = |name: &str, args: &[&str]| {
        let mut cmd = Command::new(name);
        cmd.args(args);
        xdg_env(&mut cmd, &home);
        cmd.env("DISPLAY", &display);
        cmd
    };

    let mut openbox = Started::spawn("openbox", program("openbox", &[]));
    wait_for_wm(&display, &mut openbox);
    // As Lite's autostart does (nitrogen, then tint2).
    let wallpaper = scratch.wallpaper();
    let set = run_for(
        program(
            "nitrogen",
            &["--set-zoom-fill", wallpaper.to_str().unwrap()],
        ),
        Duration::from_secs(20),
    );
    assert_eq!(set.code, Some(0), "nitrogen:\n{}", set.out);
    let mut tint2 = Started::spawn("tint2", program("tint2", &[]));
    // An xterm with the palette's colours (Lite's own terminal, Alacritty, has no KOOMPI
    // config), placed at the left, and rofi's launcher.
    let xterm_x = 40;
    // A few lines at the top (left of rofi) and the prompt at the bottom (below it).
    let shell = "printf '\\n KOOMPI Lite\\n\\n Openbox, tint2, rofi\\n KOOMPI'\"'\"'s configs\\n\\n\\n\\n\\n\\n\\n\\n\\n\\n\\n\\n\\n'; \
                 PS1='koompi$ ' exec sh -i";
    let mut xterm = Started::spawn(
        "xterm",
        program(
            "xterm",
            &[
                "-fa",
                "Noto Sans Mono",
                "-fs",
                "10",
                "-bg",
                &show(colours["background"]),
                "-fg",
                &show(colours["text"]),
                "-cr",
                &show(colours["accent"]),
                "-b",
                "8",
                "-T",
                "Terminal",
                "-geometry",
                &format!("96x19+{xterm_x}+328"),
                "-e",
                "sh",
                "-c",
                shell,
            ],
        ),
    );
    // After the xterm has its frame, so that rofi is on top.
    std::thread::sleep(Duration::from_millis(1500));
    let mut rofi = Started::spawn("rofi", program("rofi", &["-show", "drun"]));

    let look = LiteLook::new(xterm_x);
    let img = settle(
        LITE_PNG,
        || xwd(&display),
        |img| look.check(img),
        &mut [&mut openbox, &mut tint2, &mut xterm, &mut rofi],
    );
    keep(&img, LITE_PNG);
}

// ------------------------------------------------------------------ KOOMPI Tiling (sway)

/// What of KOOMPI's hyprland.conf the sway standing in for Hyprland takes over: the gaps
/// between windows and at the screen's edges, the border width and colours.
struct HyprLook {
    gaps_in: usize,
    gaps_out: usize,
    border: usize,
    active: Rgb,
    inactive: Rgb,
}

impl HyprLook {
    fn read() -> HyprLook {
        let conf = read("hyprland/hyprland.conf");
        let colours = palette();
        let number = |key: &str| setting(&conf, key).parse::<usize>().unwrap();
        // `col.active_border = $koompi_accent`: the palette's `accent`.
        let colour = |key: &str| {
            let var = setting(&conf, key);
            let name = var.trim_start_matches("$koompi_").replace('_', "-");
            colours
                .get(&name)
                .copied()
                .unwrap_or_else(|| panic!("{key} = {var}: not a palette colour"))
        };
        HyprLook {
            gaps_in: number("gaps_in"),
            gaps_out: number("gaps_out"),
            border: number("border_size"),
            active: colour("col.active_border"),
            inactive: colour("col.inactive_border"),
        }
    }
}

/// waybar's base config: (at the top, height). The file is JSON with `//` comment lines.
fn waybar_bar(config: &str) -> (bool, usize) {
    let json: String = config
        .lines()
        .filter(|l| !l.trim_start().starts_with("//"))
        .collect::<Vec<_>>()
        .join("\n");
    let v: serde_json::Value = serde_json::from_str(&json).unwrap();
    let top = v["position"].as_str() == Some("top");
    (top, usize::try_from(v["height"].as_u64().unwrap()).unwrap())
}

/// The floating foot window (x, y, width, height of its content), in the lower half so the
/// logo of the wallpaper shows above it.
const FOOT: (usize, usize, usize, usize) = (240, 480, 800, 270);

/// What the Tiling picture must show.
struct TilingLook {
    wallpaper: Wallpaper,
    bar_top: bool,
    bar_height: usize,
    background: Rgb,
    accent: Rgb,
    border: usize,
    /// foot's colours 1-6 (red ... cyan) from foot.ini.
    signals: Vec<Rgb>,
}

impl TilingLook {
    fn new(hypr: &HyprLook) -> TilingLook {
        let colours = palette();
        let (bar_top, bar_height) = waybar_bar(&read("waybar/config"));
        let foot = read("foot/foot.ini");
        TilingLook {
            wallpaper: Wallpaper::load(),
            bar_top,
            bar_height,
            background: colours["background"],
            accent: colours["accent"],
            border: hypr.border,
            signals: (1..=6)
                .map(|i| hex(setting(&foot, &format!("regular{i}"))))
                .collect(),
        }
    }

    fn check(&self, img: &Image) -> Result<(), String> {
        if (img.width, img.height) != (WIDTH, HEIGHT) {
            return Err(format!("the picture is {img:?}, not {WIDTH}x{HEIGHT}"));
        }
        if img.colours() < 16 {
            return Err(format!("the picture has {} colours", img.colours()));
        }
        // Waybar: its edge row in the palette's background, and within a few rows of its
        // height a row of KOOMPI blue (style.css's border-bottom), then no more bar.
        let h = self.bar_height;
        let edge = if self.bar_top { 0 } else { HEIGHT - 1 };
        let s = img.row_share(edge, self.background, 0);
        if s < 0.8 {
            return Err(format!(
                "waybar: row {edge} is {:.0}% {} (80% wanted)",
                s * 100.0,
                show(self.background)
            ));
        }
        let near_edge: Vec<usize> = if self.bar_top {
            (h.saturating_sub(4)..h + 4).collect()
        } else {
            (HEIGHT - h - 4..HEIGHT - h + 4).collect()
        };
        let Some(line) = near_edge
            .iter()
            .copied()
            .find(|y| img.row_share(*y, self.accent, 0) > 0.95)
        else {
            return Err(format!(
                "waybar: no row of {} near {h} px from the edge",
                show(self.accent)
            ));
        };
        // foot's window: the rectangle its border (KOOMPI blue: it has the focus) draws below
        // the bar, the size the sway config gives it.
        let below = if self.bar_top {
            line + 2..HEIGHT
        } else {
            0..line - 2
        };
        let columns: Vec<usize> = (0..WIDTH)
            .filter(|x| img.column_run(*x, below.clone(), self.accent) >= 100)
            .collect();
        let (Some(&left), Some(&right)) = (columns.first(), columns.last()) else {
            return Err(format!(
                "foot: no window border in {} below the bar",
                show(self.accent)
            ));
        };
        let border_rows: Vec<usize> = below
            .clone()
            .filter(|y| img.at(left, *y) == self.accent)
            .collect();
        let (top, bottom) = (border_rows[0], border_rows[border_rows.len() - 1]);
        let (w, fh) = (right + 1 - left, bottom + 1 - top);
        let (_, _, want_w, want_h) = FOOT;
        if w.abs_diff(want_w) > 2 * self.border + 2 || fh.abs_diff(want_h) > 2 * self.border + 2 {
            return Err(format!(
                "foot: its window is {w}x{fh} at {left},{top}, not {want_w}x{want_h}"
            ));
        }
        let b = self.border;
        let (x0, y0, w, fh) = (left + b, top + b, w - 2 * b, fh - 2 * b);
        // The wallpaper: most of what the foot window leaves below the bar.
        let mut yes = 0usize;
        let mut all = 0usize;
        for y in below.step_by(4) {
            for x in (0..WIDTH).step_by(4) {
                if (left..=right).contains(&x) && (top..=bottom).contains(&y) {
                    continue;
                }
                all += 1;
                if near(
                    img.at(x, y),
                    self.wallpaper.expected(x, y, WIDTH, HEIGHT),
                    12,
                ) {
                    yes += 1;
                }
            }
        }
        let s = yes as f64 / all.max(1) as f64;
        if s < 0.9 {
            return Err(format!(
                "the wallpaper shows on {:.0}% of the screen around the window (90% wanted)",
                s * 100.0
            ));
        }
        // foot: its background the palette's (foot.ini's alpha lets the wallpaper through a
        // little), the colour test in foot.ini's colours.
        let s = img.share(y0..y0 + fh, x0..x0 + w, |_, _, p| {
            near(p, self.background, 6)
        });
        if s < 0.6 {
            return Err(format!(
                "foot: {:.0}% of its window is {} (60% wanted)",
                s * 100.0,
                show(self.background)
            ));
        }
        for c in &self.signals {
            let n = img.share(y0..y0 + fh, x0..x0 + w, |_, _, p| near(p, *c, 6));
            if n < 0.002 {
                return Err(format!("foot: no {} in its colour test", show(*c)));
            }
        }
        Ok(())
    }
}

/// A sway config standing in for KOOMPI's hyprland.conf: the screen, the wallpaper (sway
/// starts swaybg for it), the gaps and borders, Waybar, and foot with a colour test.
fn sway_config(hypr: &HyprLook, wallpaper: &Path, waybar_log: &Path) -> String {
    let (x, y, w, h) = FOOT;
    let (a, i) = (show(hypr.active), show(hypr.inactive));
    // The 16 colours, then foot's six signal colours by name, then a shell.
    let test = r#"printf '\n  KOOMPI Tiling: Waybar and foot with KOOMPI'"'"'s configs\n  (Sway stands in for Hyprland)\n\n  '; for i in 0 1 2 3 4 5 6 7; do printf '\033[4%dm    ' $i; done; printf '\033[0m\n  '; for i in 0 1 2 3 4 5 6 7; do printf '\033[10%dm    ' $i; done; printf '\033[0m\n\n  '; n=1; for c in red green yellow blue magenta cyan; do printf '\033[3%dm%s\033[0m  ' $n $c; n=$((n+1)); done; printf '\n\n'; PS1='koompi$ ' exec sh -i"#;
    format!(
        "output * resolution {WIDTH}x{HEIGHT} position 0 0\n\
         output * bg {wallpaper} fill\n\
         default_border pixel {border}\n\
         default_floating_border pixel {border}\n\
         gaps inner {inner}\n\
         gaps outer {outer}\n\
         client.focused {a} {a} #ffffff {a} {a}\n\
         client.unfocused {i} {i} #ffffff {i} {i}\n\
         for_window [app_id=\"foot\"] floating enable, resize set {w} {h}, move absolute position {x} {y}\n\
         exec waybar > {log} 2>&1\n\
         exec foot sh -c '{test}'\n",
        wallpaper = wallpaper.display(),
        border = hypr.border,
        inner = hypr.gaps_in * 2,
        outer = hypr.gaps_out.saturating_sub(hypr.gaps_in),
        log = waybar_log.display(),
        test = test.replace('\'', r"'\''"),
    )
}

/// A picture of sway's screen with grim, as the user sway runs as.
fn grim(scratch: &Path) -> Result<Image, String> {
    let runtime = scratch.join("runtime");
    let socket = fs::read_dir(&runtime)
        .map_err(|e| format!("{}: {e}", runtime.display()))?
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .find(|n| n.starts_with("wayland-") && !n.ends_with(".lock"))
        .ok_or("sway has no Wayland socket yet")?;
    let out = Command::new("grim")
        .args(["-t", "png", "-l", "1", "-"])
        .env("XDG_RUNTIME_DIR", &runtime)
        .env("WAYLAND_DISPLAY", &socket)
        .stdin(Stdio::null())
        .stderr(Stdio::piped())
        .output()
        .map_err(|e| format!("grim: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "grim: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    Image::from_png(&out.stdout)
}

#[test]
fn tiling_under_headless_sway_looks_like_koompi() {
    let needs = ["sway", "swaybg", "waybar", "foot", "grim", "setpriv"];
    if !prereq::require("edition_screens tiling", &needs) {
        return;
    }
    let scratch = Scratch::new("tiling");
    let hypr = HyprLook::read();
    // sway's home is the scratch home (common::sway_command); it reads only the config
    // given to it, waybar and foot read theirs from ~/.config.
    let home = scratch.home();
    let conf = home.join("sway.conf");
    let waybar_log = home.join("waybar.log");
    let wallpaper = home.join("koompi-default.png");
    fs::copy(scratch.wallpaper(), &wallpaper).unwrap();
    write(&conf, &sway_config(&hypr, &wallpaper, &waybar_log));
    // The base configs must be readable by the user sway runs as.
    if common::as_root() {
        common::chown_tree(&scratch.base());
    }
    let mut sway = Started::spawn("sway", sway_command(&home, &["-c", conf.to_str().unwrap()]));
    let look = TilingLook::new(&hypr);
    let img = settle(
        TILING_PNG,
        || grim(&home),
        |img| {
            look.check(img).map_err(|e| {
                format!(
                    "{e}\n--- waybar:\n{}",
                    fs::read_to_string(&waybar_log).unwrap_or_default()
                )
            })
        },
        &mut [&mut sway],
    );
    keep(&img, TILING_PNG);
}

// ------------------------------------------------------------------ the checks can fail

/// The checks refuse a blank screen and a screen with only the wallpaper (no panel, no
/// windows): what a start that failed leaves.
#[test]
fn the_checks_refuse_a_blank_screen_and_a_bare_wallpaper() {
    let wallpaper = Wallpaper::load();
    let mut bare = Image {
        width: WIDTH,
        height: HEIGHT,
        pixels: Vec::with_capacity(WIDTH * HEIGHT),
    };
    for y in 0..HEIGHT {
        for x in 0..WIDTH {
            bare.pixels.push(wallpaper.expected(x, y, WIDTH, HEIGHT));
        }
    }
    let blank = Image {
        width: WIDTH,
        height: HEIGHT,
        pixels: vec![[0, 0, 0]; WIDTH * HEIGHT],
    };
    let lite = LiteLook::new(40);
    let tiling = TilingLook::new(&HyprLook::read());
    for (img, says) in [(&blank, "colours"), (&bare, "tint2's panel")] {
        let e = lite.check(img).unwrap_err();
        assert!(e.contains(says), "{e}");
    }
    for (img, says) in [(&blank, "colours"), (&bare, "waybar")] {
        let e = tiling.check(img).unwrap_err();
        assert!(e.contains(says), "{e}");
    }
    // The bare wallpaper is what the wallpaper check accepts.
    assert!(wallpaper.share(&bare, 0..HEIGHT) > 0.99);
}
