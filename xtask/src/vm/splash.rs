//! The boot splash as a user sees it: QEMU `screendump`s of the graphical console, taken
//! over QMP while the guest boots ([`Recorder`]), and what each frame shows ([`classify`]):
//! the KOOMPI Plymouth theme (its background gradient, the colours of
//! `branding/plymouth/koompi/koompi.script`, with the logo in the middle), a text console
//! (light glyphs on black: the firmware, GRUB, kernel or systemd messages), a blank screen,
//! or something else. [`judge`] turns a boot's frames into the scenario's verdict: the splash
//! was shown, and from its first frame to its last nothing else was.
//!
//! The frames are PNG files (QEMU's `screendump` with `"format": "png"`), decoded with the
//! `png` crate.

use std::fs;
use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use serde_json::{json, Value};

/// The theme's script: the background colours are read from it.
const THEME_SCRIPT: &str = include_str!("../../../branding/plymouth/koompi/koompi.script");
/// The theme's logo size in pixels (`logo.png`), drawn twice as large from 1600 px wide.
const LOGO: (usize, usize) = (384, 96);

/// A QMP connection to one QEMU process.
#[derive(Debug)]
struct Qmp {
    reader: BufReader<UnixStream>,
    writer: UnixStream,
}

impl Qmp {
    /// Connects to the QMP socket at `path` and leaves capabilities negotiation mode.
    fn connect(path: &Path) -> Result<Qmp> {
        let stream = UnixStream::connect(path)
            .with_context(|| format!("cannot connect to QMP at {}", path.display()))?;
        stream
            .set_read_timeout(Some(Duration::from_secs(10)))
            .context("cannot set a QMP read timeout")?;
        let writer = stream.try_clone().context("cannot clone the QMP socket")?;
        let mut q = Qmp {
            reader: BufReader::new(stream),
            writer,
        };
        let greeting = q.read()?;
        if greeting.get("QMP").is_none() {
            bail!("QMP greeted with {greeting}");
        }
        q.execute(json!({"execute": "qmp_capabilities"}))?;
        Ok(q)
    }

    fn read(&mut self) -> Result<Value> {
        let mut line = String::new();
        let n = self
            .reader
            .read_line(&mut line)
            .context("cannot read from QMP")?;
        if n == 0 {
            bail!("QMP closed the connection");
        }
        serde_json::from_str(&line).with_context(|| format!("QMP sent no JSON: {line:?}"))
    }

    /// Sends a command; its `return` value (events before it are skipped).
    fn execute(&mut self, command: Value) -> Result<Value> {
        let mut text = command.to_string();
        text.push('\n');
        self.writer
            .write_all(text.as_bytes())
            .context("cannot write to QMP")?;
        loop {
            let v = self.read()?;
            if let Some(r) = v.get("return") {
                return Ok(r.clone());
            }
            if let Some(e) = v.get("error") {
                bail!("QMP refused {command}: {e}");
            }
        }
    }
}

/// Resets the machine of the QMP socket `sock` (the rig then starts QEMU again).
pub fn reset(sock: &Path) -> Result<()> {
    let mut q = Qmp::connect(sock)?;
    q.execute(json!({"execute": "system_reset"}))?;
    Ok(())
}

/// Takes one screendump of the machine of `sock` into `path` (PNG).
pub fn screendump(sock: &Path, path: &Path) -> Result<()> {
    let mut q = Qmp::connect(sock)?;
    q.execute(json!({"execute": "screendump",
                     "arguments": {"filename": path.to_string_lossy(), "format": "png"}}))?;
    if !path.is_file() {
        bail!("QEMU wrote no screendump at {}", path.display());
    }
    Ok(())
}

/// QEMU's key code (`QKeyCode`) for `c` and whether Shift is held: letters, digits, space,
/// `\n` (Return) and a few punctuation marks.
fn qcode(c: char) -> Option<(String, bool)> {
    let plain = |s: &str| Some((s.to_string(), false));
    match c {
        'a'..='z' | '0'..='9' => plain(&c.to_string()),
        'A'..='Z' => Some((c.to_ascii_lowercase().to_string(), true)),
        ' ' => plain("spc"),
        '\n' => plain("ret"),
        '\t' => plain("tab"),
        '-' => plain("minus"),
        '.' => plain("dot"),
        '/' => plain("slash"),
        '_' => Some(("minus".into(), true)),
        _ => None,
    }
}

/// Types `text` on the machine's keyboard through QMP `send-key`, one key at a time.
pub fn type_text(sock: &Path, text: &str) -> Result<()> {
    let mut q = Qmp::connect(sock)?;
    for c in text.chars() {
        let (code, shift) = qcode(c).with_context(|| format!("no key for {c:?}"))?;
        let mut keys = Vec::new();
        if shift {
            keys.push(json!({"type": "qcode", "data": "shift"}));
        }
        keys.push(json!({"type": "qcode", "data": code}));
        q.execute(json!({"execute": "send-key", "arguments": {"keys": keys, "hold-time": 60}}))?;
        std::thread::sleep(Duration::from_millis(120));
    }
    Ok(())
}

/// Presses the keys of `combo` together (QEMU key codes, such as `["meta_l", "d"]`).
pub fn press(sock: &Path, combo: &[&str]) -> Result<()> {
    let mut q = Qmp::connect(sock)?;
    let keys: Vec<Value> = combo
        .iter()
        .map(|k| json!({"type": "qcode", "data": k}))
        .collect();
    q.execute(json!({"execute": "send-key", "arguments": {"keys": keys, "hold-time": 120}}))?;
    Ok(())
}

/// One screendump: when it was taken (from the recorder's start) and its file.
#[derive(Debug, Clone)]
pub struct Shot {
    pub at: Duration,
    pub path: PathBuf,
}

/// Takes a screendump every `interval` into a directory until stopped, reconnecting to the
/// QMP socket whenever QEMU is started again (the rig restarts it at each guest reset).
#[derive(Debug)]
pub struct Recorder {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<Vec<Shot>>>,
}

impl Recorder {
    /// Starts recording from the QMP socket `sock` into `dir` (emptied first).
    pub fn start(sock: &Path, dir: &Path, interval: Duration) -> Result<Recorder> {
        if dir.exists() {
            fs::remove_dir_all(dir).with_context(|| format!("cannot remove {}", dir.display()))?;
        }
        fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
        let stop = Arc::new(AtomicBool::new(false));
        let (sock, dir, flag) = (sock.to_path_buf(), dir.to_path_buf(), stop.clone());
        let thread = std::thread::spawn(move || record(&sock, &dir, interval, &flag));
        Ok(Recorder {
            stop,
            thread: Some(thread),
        })
    }

    /// Stops and returns the frames taken, in order.
    pub fn finish(mut self) -> Vec<Shot> {
        self.stop.store(true, Ordering::SeqCst);
        self.thread
            .take()
            .and_then(|t| t.join().ok())
            .unwrap_or_default()
    }
}

impl Drop for Recorder {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn record(sock: &Path, dir: &Path, interval: Duration, stop: &AtomicBool) -> Vec<Shot> {
    let start = Instant::now();
    let mut shots = Vec::new();
    let mut qmp: Option<Qmp> = None;
    while !stop.load(Ordering::SeqCst) {
        let next = Instant::now() + interval;
        if qmp.is_none() {
            qmp = Qmp::connect(sock).ok();
        }
        if let Some(q) = qmp.as_mut() {
            let path = dir.join(format!("frame-{:04}.png", shots.len()));
            let at = start.elapsed();
            let cmd = json!({"execute": "screendump",
                             "arguments": {"filename": path.to_string_lossy(), "format": "png"}});
            match q.execute(cmd) {
                Ok(_) if path.is_file() => shots.push(Shot { at, path }),
                // QEMU went away (a reset) or refused: connect again.
                _ => qmp = None,
            }
        }
        let now = Instant::now();
        std::thread::sleep(next.saturating_duration_since(now));
    }
    shots
}

/// A decoded frame: 8-bit RGB, row by row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Frame {
    pub width: usize,
    pub height: usize,
    pub rgb: Vec<u8>,
}

impl Frame {
    /// Reads a PNG file.
    pub fn load(path: &Path) -> Result<Frame> {
        let file =
            fs::File::open(path).with_context(|| format!("cannot open {}", path.display()))?;
        let mut decoder = png::Decoder::new(file);
        decoder.set_transformations(png::Transformations::normalize_to_color8());
        let mut reader = decoder
            .read_info()
            .with_context(|| format!("{} is not a PNG", path.display()))?;
        let mut buf = vec![0; reader.output_buffer_size()];
        let info = reader
            .next_frame(&mut buf)
            .with_context(|| format!("cannot decode {}", path.display()))?;
        let (w, h) = (info.width as usize, info.height as usize);
        let channels = match info.color_type {
            png::ColorType::Rgb => 3,
            png::ColorType::Rgba => 4,
            png::ColorType::Grayscale => 1,
            png::ColorType::GrayscaleAlpha => 2,
            png::ColorType::Indexed => bail!("{}: indexed colour after expansion", path.display()),
        };
        let mut rgb = Vec::with_capacity(w * h * 3);
        for y in 0..h {
            let row = &buf[y * info.line_size..y * info.line_size + w * channels];
            for px in row.chunks(channels) {
                match channels {
                    1 | 2 => rgb.extend_from_slice(&[px[0]; 3]),
                    _ => rgb.extend_from_slice(&px[..3]),
                }
            }
        }
        Ok(Frame {
            width: w,
            height: h,
            rgb,
        })
    }

    /// The pixel at (`x`, `y`), which must be inside the frame.
    pub fn pixel_at(&self, x: usize, y: usize) -> [u8; 3] {
        self.pixel(x, y)
    }

    fn pixel(&self, x: usize, y: usize) -> [u8; 3] {
        let i = (y * self.width + x) * 3;
        [self.rgb[i], self.rgb[i + 1], self.rgb[i + 2]]
    }
}

/// What a frame shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Look {
    /// The KOOMPI theme: its background gradient with the logo in the middle.
    Splash,
    /// Light glyphs on black: a text console.
    Text,
    /// One colour (or nearly): nothing drawn yet, or a mode switch.
    Blank,
    /// Anything else (the firmware's logo, text over the splash, another theme).
    Other,
}

/// The theme's background colours, top and bottom, from its script's
/// `Window.SetBackgroundTopColor(r, g, b)` and `...BottomColor`.
pub fn theme_colours() -> Result<([f64; 3], [f64; 3])> {
    let colour = |call: &str| -> Result<[f64; 3]> {
        let at = THEME_SCRIPT
            .find(call)
            .with_context(|| format!("koompi.script has no {call}"))?;
        let args = THEME_SCRIPT[at + call.len()..]
            .trim_start_matches('(')
            .split(')')
            .next()
            .unwrap_or_default();
        let v: Vec<f64> = args
            .split(',')
            .map(|a| a.trim().parse::<f64>())
            .collect::<Result<_, _>>()
            .with_context(|| format!("koompi.script: {call}({args}) is not three numbers"))?;
        match v[..] {
            [r, g, b] => Ok([r * 255.0, g * 255.0, b * 255.0]),
            _ => bail!("koompi.script: {call}({args}) is not three numbers"),
        }
    };
    Ok((
        colour("Window.SetBackgroundTopColor")?,
        colour("Window.SetBackgroundBottomColor")?,
    ))
}

/// How far a background pixel may be from the gradient (Plymouth dithers it).
const BACKGROUND_TOLERANCE: f64 = 12.0;
/// A pixel this far from the background is part of a drawing (the logo).
const DRAWN: f64 = 40.0;

/// What `f` shows, given the theme's background colours.
pub fn classify(f: &Frame, (top, bottom): ([f64; 3], [f64; 3])) -> Look {
    let (w, h) = (f.width, f.height);
    if w < 64 || h < 64 {
        return Look::Other;
    }
    let expected = |y: usize| -> [f64; 3] {
        let t = y as f64 / (h - 1) as f64;
        [0, 1, 2].map(|i| top[i] + (bottom[i] - top[i]) * t)
    };
    let dist = |p: [u8; 3], e: [f64; 3]| -> f64 {
        (0..3)
            .map(|i| (f64::from(p[i]) - e[i]).abs())
            .fold(0.0, f64::max)
    };
    // The logo's box and the progress bar below it are left out of the background; so is
    // the message line at the bottom (the theme's, 48 px from the bottom edge).
    let scale = if w >= 1600 { 2 } else { 1 };
    let (lw, lh) = (LOGO.0 * scale, LOGO.1 * scale);
    let lx = (w / 2).saturating_sub(lw / 2);
    let ly = (h / 2).saturating_sub(lh / 2 + 40);
    let busy = |x: usize, y: usize| {
        let in_logo_column = x + 8 >= lx && x <= lx + lw + 8;
        let in_logo_rows = y + 8 >= ly && y <= ly + lh + 48 + 16;
        (in_logo_column && in_logo_rows) || y + 64 >= h
    };
    let (mut bg_total, mut bg_match) = (0usize, 0usize);
    let (mut dark, mut light, mut total) = (0usize, 0usize, 0usize);
    let first = f.pixel(0, 0);
    let mut uniform = true;
    for y in (0..h).step_by(4) {
        for x in (0..w).step_by(4) {
            let p = f.pixel(x, y);
            total += 1;
            let max = p.iter().copied().max().unwrap_or(0);
            if max < 40 {
                dark += 1;
            } else if max > 120 {
                light += 1;
            }
            if p.iter().zip(first.iter()).any(|(a, b)| a.abs_diff(*b) > 8) {
                uniform = false;
            }
            if !busy(x, y) {
                bg_total += 1;
                if dist(p, expected(y)) <= BACKGROUND_TOLERANCE {
                    bg_match += 1;
                }
            }
        }
    }
    if uniform {
        return Look::Blank;
    }
    let background = bg_total > 0 && bg_match * 1000 >= bg_total * 995;
    if background {
        let (mut logo_total, mut logo_drawn) = (0usize, 0usize);
        for y in (ly..(ly + lh).min(h)).step_by(2) {
            for x in (lx..(lx + lw).min(w)).step_by(2) {
                logo_total += 1;
                if dist(f.pixel(x, y), expected(y)) > DRAWN {
                    logo_drawn += 1;
                }
            }
        }
        if logo_total > 0 && logo_drawn * 100 >= logo_total * 3 {
            return Look::Splash;
        }
        return Look::Other;
    }
    if dark * 100 >= total * 90 && light > 0 {
        return Look::Text;
    }
    Look::Other
}

/// The frames of one boot, classified.
#[derive(Debug, Clone)]
pub struct Seen {
    pub looks: Vec<(Duration, Look)>,
}

/// What the splash check found: the verdict's text and the frame to show.
#[derive(Debug, Clone)]
pub struct Verdict {
    pub summary: String,
    /// The index of the last splash frame (the one with the most progress).
    pub picture: usize,
}

/// The splash was shown (at least two frames), and from its first frame to its last every
/// frame is the splash (blank frames excepted: a mode switch); text before it (firmware,
/// GRUB, the initramfs before Plymouth starts) and after it (the login screen) is counted in
/// the summary, not judged.
pub fn judge(seen: &Seen) -> Result<Verdict> {
    let looks = &seen.looks;
    let splash: Vec<usize> = (0..looks.len())
        .filter(|&i| looks[i].1 == Look::Splash)
        .collect();
    let count = |range: std::ops::Range<usize>, look: Look| {
        looks[range].iter().filter(|(_, l)| *l == look).count()
    };
    let (Some(&first), Some(&last)) = (splash.first(), splash.last()) else {
        let kinds: Vec<String> = looks
            .iter()
            .map(|(at, l)| format!("{:.0}s:{l:?}", at.as_secs_f64()))
            .collect();
        bail!(
            "the KOOMPI splash was never on the screen in {} frames: {}",
            looks.len(),
            kinds.join(" ")
        );
    };
    if splash.len() < 2 {
        bail!(
            "the KOOMPI splash was on the screen in one frame only (at {:.0} s)",
            looks[first].0.as_secs_f64()
        );
    }
    let intruders: Vec<String> = looks[first..=last]
        .iter()
        .filter(|(_, l)| matches!(l, Look::Text | Look::Other))
        .map(|(at, l)| format!("{l:?} at {:.0} s", at.as_secs_f64()))
        .collect();
    if !intruders.is_empty() {
        bail!(
            "while the splash was up ({:.0}–{:.0} s) other screens came between: {}",
            looks[first].0.as_secs_f64(),
            looks[last].0.as_secs_f64(),
            intruders.join(", ")
        );
    }
    Ok(Verdict {
        summary: format!(
            "the KOOMPI splash in {} frames from {:.0} s to {:.0} s, nothing else between; before \
             it {} text and {} other frame(s) (firmware, GRUB, the initramfs), after it {} text \
             frame(s) (the login screen)",
            splash.len(),
            looks[first].0.as_secs_f64(),
            looks[last].0.as_secs_f64(),
            count(0..first, Look::Text),
            count(0..first, Look::Other),
            count(last + 1..looks.len(), Look::Text),
        ),
        picture: last,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(w: usize, h: usize, paint: impl Fn(usize, usize) -> [u8; 3]) -> Frame {
        let mut rgb = Vec::with_capacity(w * h * 3);
        for y in 0..h {
            for x in 0..w {
                rgb.extend_from_slice(&paint(x, y));
            }
        }
        Frame {
            width: w,
            height: h,
            rgb,
        }
    }

    /// The theme's gradient, with the logo drawn as a white box when `logo`, and a line of
    /// "text" at the top when `text`.
    fn splash(logo: bool, text: bool) -> Frame {
        let (top, bottom) = theme_colours().expect("colours");
        let (w, h) = (800, 600);
        frame(w, h, |x, y| {
            let t = y as f64 / (h - 1) as f64;
            let bg = [0, 1, 2].map(|i| (top[i] + (bottom[i] - top[i]) * t).round() as u8);
            let in_logo = (208..592).contains(&x) && (212..308).contains(&y) && x % 3 == 0;
            let in_text = text && y < 16 && x < 300 && x % 2 == 0;
            if (logo && in_logo) || in_text {
                [230, 230, 230]
            } else {
                bg
            }
        })
    }

    #[test]
    fn the_theme_colours_are_read_from_its_script() {
        let (top, bottom) = theme_colours().expect("colours");
        assert!(top
            .iter()
            .chain(bottom.iter())
            .all(|c| (0.0..=255.0).contains(c)));
        assert_ne!(top, bottom);
    }

    #[test]
    fn frames_are_told_apart() {
        let colours = theme_colours().expect("colours");
        assert_eq!(classify(&splash(true, false), colours), Look::Splash);
        assert_eq!(classify(&splash(false, false), colours), Look::Other);
        assert_eq!(classify(&splash(true, true), colours), Look::Other);
        let text = frame(800, 600, |x, y| {
            if y % 16 < 12 && y < 200 && x % 3 == 0 && x < 500 {
                [170, 170, 170]
            } else {
                [0, 0, 0]
            }
        });
        assert_eq!(classify(&text, colours), Look::Text);
        assert_eq!(
            classify(&frame(800, 600, |_, _| [0, 0, 0]), colours),
            Look::Blank
        );
    }

    #[test]
    fn the_verdict_wants_the_splash_and_nothing_between() {
        let at = |s: u64| Duration::from_secs(s);
        let seen = |looks: &[Look]| Seen {
            looks: looks
                .iter()
                .enumerate()
                .map(|(i, l)| (at(i as u64), *l))
                .collect(),
        };
        use Look::*;
        let v = judge(&seen(&[Text, Blank, Splash, Blank, Splash, Splash, Text])).expect("ok");
        assert_eq!(v.picture, 5);
        assert!(v.summary.contains("3 frames"), "{}", v.summary);
        assert!(judge(&seen(&[Text, Text, Blank])).is_err());
        assert!(judge(&seen(&[Text, Splash, Text])).is_err());
        let e = judge(&seen(&[Splash, Text, Splash])).expect_err("text between");
        assert!(format!("{e:#}").contains("Text at 1 s"), "{e:#}");
    }

    #[test]
    fn a_png_round_trips() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("f.png");
        let f = splash(true, false);
        let file = fs::File::create(&path).expect("create");
        let mut enc = png::Encoder::new(file, f.width as u32, f.height as u32);
        enc.set_color(png::ColorType::Rgb);
        enc.set_depth(png::BitDepth::Eight);
        enc.write_header()
            .expect("header")
            .write_image_data(&f.rgb)
            .expect("data");
        assert_eq!(Frame::load(&path).expect("load"), f);
    }
}
