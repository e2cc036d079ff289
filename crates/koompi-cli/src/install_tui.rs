//! The interactive installer on the terminal: koompi-install's [`Wizard`] drawn with
//! ratatui on crossterm.
//!
//! Every screen fits an 80x24 console: a title bar ("KOOMPI OS installer — step N of 14:
//! Name"), the step's body (wrapped, never cut: a list that does not fit scrolls with
//! its cursor), a refused value in one line, and the keys that work. The terminal is put
//! back (raw mode off, the normal screen, the cursor shown) on every way out: the user
//! quitting or confirming, an error, a panic.

use std::io::{stdout, Stdout};
use std::sync::Arc;

use anyhow::{Context, Result};
use crossterm::event::{self, Event, KeyCode, KeyEventKind, KeyModifiers};
use crossterm::{cursor, execute, terminal};
use ratatui::backend::CrosstermBackend;
use ratatui::layout::{Position, Rect};
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::Line;
use ratatui::widgets::Paragraph;
use ratatui::{Frame, Terminal};

use koompi_install::answers::Answers;
use koompi_install::facts::Machine;
use koompi_install::wizard::{Hidden, Input, Outcome, Row, Setting, View, Wizard};

/// The confirmed answers, the password and the passphrase.
pub type Confirmed = (Answers, Option<String>, Option<String>);

/// Asks every question on this terminal, starting from `defaults`; the summary shows
/// `plan_text` of the answers. `None` when the user quits (nothing was decided).
pub fn run(
    machine: &Machine,
    defaults: Answers,
    plan_text: impl Fn(&Answers) -> Result<String>,
) -> Result<Option<Confirmed>> {
    let plan_text = &plan_text;
    let mut wizard = Wizard::new(
        Setting::of(machine),
        defaults,
        Box::new(move |a: &Answers| plan_text(a).map_err(|e| crate::one_line(&e))),
    );
    let mut screen = Screen::enter()?;
    loop {
        screen
            .terminal
            .draw(|f| draw(f, &wizard.view()))
            .context("cannot draw on the terminal")?;
        let ev = event::read().context("cannot read the keyboard")?;
        let Some(input) = input_of(&ev) else {
            continue;
        };
        match wizard.handle(input) {
            Outcome::Continue => {}
            Outcome::Quit => return Ok(None),
            Outcome::Confirmed {
                answers,
                password,
                passphrase,
            } => {
                return Ok(Some((
                    *answers,
                    password.map(Hidden::into_string),
                    passphrase.map(Hidden::into_string),
                )))
            }
        }
    }
}

/// The wizard's key for a terminal event; Ctrl-C is [`Input::Quit`].
fn input_of(ev: &Event) -> Option<Input> {
    let Event::Key(k) = ev else {
        return None;
    };
    if k.kind == KeyEventKind::Release {
        return None;
    }
    if k.modifiers.contains(KeyModifiers::CONTROL) {
        return matches!(k.code, KeyCode::Char('c' | 'C')).then_some(Input::Quit);
    }
    Some(match k.code {
        KeyCode::Char(c) => Input::Char(c),
        KeyCode::Backspace => Input::Backspace,
        KeyCode::Enter => Input::Enter,
        KeyCode::Esc => Input::Esc,
        KeyCode::Up | KeyCode::BackTab => Input::Up,
        KeyCode::Down => Input::Down,
        KeyCode::Tab => Input::Tab,
        _ => return None,
    })
}

type Hook = Arc<dyn Fn(&std::panic::PanicHookInfo<'_>) + Send + Sync>;

/// The terminal in raw mode on the alternate screen, put back when dropped and before a
/// panic's message is printed.
pub(crate) struct Screen {
    pub(crate) terminal: Terminal<CrosstermBackend<Stdout>>,
    previous_hook: Hook,
}

/// Puts the terminal back as it was; safe to call more than once.
fn restore() {
    let _ = terminal::disable_raw_mode();
    let _ = execute!(stdout(), terminal::LeaveAlternateScreen, cursor::Show);
}

impl Screen {
    pub(crate) fn enter() -> Result<Screen> {
        terminal::enable_raw_mode().context("cannot put the terminal in raw mode")?;
        let terminal = Terminal::new(CrosstermBackend::new(stdout()))
            .inspect_err(|_| restore())
            .context("cannot use the terminal")?;
        let previous_hook: Hook = std::panic::take_hook().into();
        let hook = previous_hook.clone();
        std::panic::set_hook(Box::new(move |info| {
            restore();
            hook(info);
        }));
        // From here on a failure drops the screen, which puts everything back.
        let screen = Screen {
            terminal,
            previous_hook,
        };
        // (Terminal::clear would ask the terminal where its cursor is, and wait.)
        execute!(
            stdout(),
            terminal::EnterAlternateScreen,
            terminal::Clear(terminal::ClearType::All)
        )
        .context("cannot switch to the terminal's alternate screen")?;
        Ok(screen)
    }
}

impl Drop for Screen {
    fn drop(&mut self) {
        restore();
        if !std::thread::panicking() {
            let previous = self.previous_hook.clone();
            let _ = std::panic::take_hook();
            std::panic::set_hook(Box::new(move |info| previous(info)));
        }
    }
}

impl std::fmt::Debug for Screen {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Screen { .. }")
    }
}

/// `text` in lines of at most `width` characters, broken between words (a word longer
/// than a line is broken where it must); continuation lines start with `indent`.
fn wrap(text: &str, width: usize, indent: &str) -> Vec<String> {
    let ind = indent.chars().count();
    let width = width.max(ind + 1);
    let mut lines = Vec::new();
    let mut line = String::new();
    let mut len = 0;
    // No word on the line yet (only the indent).
    let mut fresh = true;
    for word in text.split(' ') {
        let mut word: Vec<char> = word.chars().collect();
        loop {
            let sep = usize::from(!fresh);
            if len + sep + word.len() <= width {
                if !fresh {
                    line.push(' ');
                }
                line.extend(word.iter());
                len += sep + word.len();
                fresh = false;
                break;
            }
            if fresh {
                // A word longer than a whole line.
                let rest = word.split_off(width - len);
                line.extend(word.iter());
                word = rest;
            }
            lines.push(std::mem::replace(&mut line, indent.to_string()));
            len = ind;
            fresh = true;
        }
    }
    lines.push(line);
    lines
}

/// One line of the body: its text, its style, and where a text cursor goes in it.
struct VLine {
    text: String,
    style: Style,
    cursor: Option<usize>,
    /// The line the view must keep on screen (the list's cursor, the focused field).
    current: bool,
}

impl VLine {
    fn plain(text: String, style: Style) -> VLine {
        VLine {
            text,
            style,
            cursor: None,
            current: false,
        }
    }
}

const GREY: Color = Color::DarkGray;

/// The rows of a view, but the plan, as lines of `width`.
fn lines_of(row: &Row, width: usize) -> Vec<VLine> {
    let many = |text: &str, indent: &str, style: Style| -> Vec<VLine> {
        wrap(text, width, indent)
            .into_iter()
            .map(|t| VLine::plain(t, style))
            .collect()
    };
    match row {
        Row::Text(t) => many(t, "", Style::default()),
        Row::Note(t) => many(t, "", Style::default().fg(Color::Cyan)),
        Row::Blank => vec![VLine::plain(String::new(), Style::default())],
        Row::Choice {
            text,
            current,
            focused,
            refused,
        } => {
            let (line, style) = match refused {
                Some(why) => (format!("  {text}  [{why}]"), Style::default().fg(GREY)),
                None if *current && *focused => (
                    format!("> {text}"),
                    Style::default().add_modifier(Modifier::REVERSED | Modifier::BOLD),
                ),
                None if *current => (
                    format!("> {text}"),
                    Style::default().add_modifier(Modifier::BOLD),
                ),
                None => (format!("  {text}"), Style::default()),
            };
            let mut v = many(&line, "    ", style);
            if *current && refused.is_none() {
                if let Some(first) = v.first_mut() {
                    first.current = true;
                }
            }
            v
        }
        Row::Field {
            label,
            value,
            focused,
        } => {
            let marker = if *focused { "> " } else { "  " };
            let text = format!("{marker}{label:<11} {value}");
            let style = if *focused {
                Style::default().add_modifier(Modifier::BOLD)
            } else {
                Style::default()
            };
            let mut v = many(&text, "              ", style);
            if *focused {
                if let Some(last) = v.last_mut() {
                    last.current = true;
                    last.cursor = Some(last.text.chars().count().min(width.saturating_sub(1)));
                }
            }
            v
        }
        Row::Plan { .. } => Vec::new(),
    }
}

/// The plan's lines from `scroll` on, wrapped, as many as fit in `height`; the last says
/// so when more follow.
fn plan_lines(lines: &[String], scroll: usize, width: usize, height: usize) -> Vec<VLine> {
    let style = Style::default().fg(Color::Yellow);
    let mut out: Vec<VLine> = Vec::new();
    let mut shown = scroll.min(lines.len());
    for l in lines.iter().skip(scroll) {
        let w = wrap(l, width, "        ");
        if out.len() + w.len() > height.saturating_sub(1) {
            break;
        }
        out.extend(w.into_iter().map(|t| VLine::plain(t, style)));
        shown += 1;
    }
    if shown < lines.len() {
        out.push(VLine::plain(
            format!(
                "  ↓ {} more line{} of the plan (↑↓ scroll)",
                lines.len() - shown,
                if lines.len() - shown == 1 { "" } else { "s" }
            ),
            Style::default().fg(GREY),
        ));
    } else if scroll > 0 {
        out.push(VLine::plain(
            "  (end of the plan; ↑ scrolls back)".into(),
            Style::default().fg(GREY),
        ));
    }
    out
}

/// Draws `view` on the whole frame.
pub(crate) fn draw(f: &mut Frame, view: &View) {
    let area = f.area();
    if area.width < 20 || area.height < 8 {
        f.render_widget(Paragraph::new("The terminal is too small."), area);
        return;
    }
    let width = area.width as usize;
    let inner = width - 2;
    let title = format!(" {}", view.title());
    f.render_widget(
        Paragraph::new(format!("{title:<width$}"))
            .style(Style::default().add_modifier(Modifier::REVERSED | Modifier::BOLD)),
        Rect::new(area.x, area.y, area.width, 1),
    );
    let help = format!(" {}", view.help);
    f.render_widget(
        Paragraph::new(help).style(Style::default().fg(GREY)),
        Rect::new(area.x, area.bottom() - 1, area.width, 1),
    );
    let error: Vec<String> = view
        .error
        .as_deref()
        .map(|e| wrap(&format!("! {e}"), inner, "  "))
        .unwrap_or_default();
    let error: Vec<String> = error.into_iter().take(3).collect();
    let err_rows = error.len() as u16;
    for (i, e) in error.iter().enumerate() {
        f.render_widget(
            Paragraph::new(e.as_str())
                .style(Style::default().fg(Color::Red).add_modifier(Modifier::BOLD)),
            Rect::new(
                area.x + 1,
                area.bottom() - 1 - err_rows + i as u16,
                area.width - 1,
                1,
            ),
        );
    }
    // The body: between a blank line under the title and one above the error or help.
    let top = area.y + 2;
    let height = (area.height - 4 - err_rows) as usize;
    let mut lines: Vec<VLine> = Vec::new();
    let fixed: usize = view.rows.iter().map(|r| lines_of(r, inner).len()).sum();
    for row in &view.rows {
        match row {
            Row::Plan {
                lines: plan,
                scroll,
            } => {
                let room = height.saturating_sub(fixed).max(3);
                lines.extend(plan_lines(plan, *scroll, inner, room));
            }
            other => lines.extend(lines_of(other, inner)),
        }
    }
    // A body too long scrolls so that its current line shows, near the middle; the first
    // and last lines then say how much is hidden.
    let first = if lines.len() > height {
        let current = lines.iter().position(|l| l.current).unwrap_or(0);
        current.saturating_sub(height / 2).min(lines.len() - height)
    } else {
        0
    };
    let last = (first + height).min(lines.len());
    for (y, i) in (first..last).enumerate() {
        let l = &lines[i];
        let above = y == 0 && first > 0;
        let below = i + 1 == last && last < lines.len();
        let (text, style) = if above {
            (format!("  ↑ {} more", first + 1), Style::default().fg(GREY))
        } else if below {
            (
                format!("  ↓ {} more", lines.len() - i),
                Style::default().fg(GREY),
            )
        } else {
            (l.text.clone(), l.style)
        };
        let rect = Rect::new(area.x + 1, top + y as u16, area.width - 2, 1);
        f.render_widget(Paragraph::new(Line::styled(text, style)), rect);
        if let (Some(c), false) = (l.cursor, above || below) {
            f.set_cursor_position(Position::new(rect.x + c as u16, rect.y));
        }
    }
}

/// What `draw` puts on an 80x24 terminal, as 24 lines of text (for the TUI tests).
#[cfg(test)]
pub(crate) fn text_80x24(draw: impl Fn(&mut Frame)) -> Vec<String> {
    let mut t = Terminal::new(ratatui::backend::TestBackend::new(80, 24)).expect("terminal");
    t.draw(|f| draw(f)).expect("draw");
    let buf = t.backend().buffer().clone();
    (0..24)
        .map(|y| {
            (0..80)
                .map(|x| buf[(x, y)].symbol().to_string())
                .collect::<String>()
                .trim_end()
                .to_string()
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use koompi_install::answers::DiskChoice;
    use koompi_install::disks::Disk;
    use koompi_install::wizard::{Step, Wizard, STEPS};

    use super::*;

    const GIB: u64 = 1024 * 1024 * 1024;

    fn disk(path: &str, size: u64, model: Option<&str>) -> Disk {
        Disk {
            path: path.into(),
            size,
            kind: "disk".into(),
            model: model.map(String::from),
            removable: false,
            transport: None,
            read_only: false,
            mountpoints: vec![],
            labels: vec![],
            partitions: vec![],
        }
    }

    /// A laptop booted from the KOOMPI stick: an SSD, the stick, an SD card.
    fn setting() -> Setting {
        let mut stick = disk("/dev/sda", 15 * GIB, Some("Cruzer Blade"));
        stick.removable = true;
        stick.transport = Some("usb".into());
        stick.labels = vec!["KOOMPI_202612".into()];
        stick.mountpoints = vec!["/run/archiso/bootmnt".into()];
        let mut card = disk("/dev/mmcblk0", 30 * GIB, None);
        card.mountpoints = vec!["/media/photos".into()];
        let mut ssd = disk(
            "/dev/nvme0n1",
            238 * GIB,
            Some("SAMSUNG MZVLB256HAHQ-000L7"),
        );
        // Windows, and room left for KOOMPI OS.
        let part =
            |n: u32, parttype: &str, fstype: Option<&str>, size| koompi_install::disks::Part {
                path: format!("/dev/nvme0n1p{n}"),
                parttype: Some(parttype.into()),
                fstype: fstype.map(String::from),
                size,
                ..Default::default()
            };
        ssd.partitions = vec![
            part(
                1,
                "c12a7328-f81f-11d2-ba4b-00a0c93ec93b",
                Some("vfat"),
                260 << 20,
            ),
            part(2, "e3c9e316-0b5c-4db8-817d-f92df00215ae", None, 16 << 20),
            part(
                3,
                "ebd0a0a2-b9e5-4433-87c0-68b6b72699c7",
                Some("ntfs"),
                120 * GIB,
            ),
            part(4, "0fc63daf-8483-4772-8e79-3d69d8477de4", None, 117 * GIB),
        ];
        Setting {
            disks: vec![stick, ssd, card],
            live_label: Some("KOOMPI_202612".into()),
            // As where the plan below was made: no live image, an online install.
            live: false,
            uefi: true,
        }
    }

    /// What `koompi-install --dry-run` printed for such a disk.
    const PLAN: &str = include_str!("../tests/install_tui_plan.txt");

    fn wizard() -> Wizard<'static> {
        Wizard::new(
            setting(),
            Answers::default(),
            Box::new(|a: &Answers| {
                let Some(DiskChoice::Path(d)) = &a.disk else {
                    return Err("no disk".into());
                };
                Ok(PLAN.replace("/dev/nvme0n1", d))
            }),
        )
    }

    fn text(w: &mut Wizard, s: &str) {
        for c in s.chars() {
            w.handle(Input::Char(c));
        }
    }

    /// The wizard moved to `step` along the usual answers.
    fn at(step: Step) -> Wizard<'static> {
        let mut w = wizard();
        while w.step() < step {
            match w.step() {
                Step::User => {
                    text(&mut w, "dara");
                    w.handle(Input::Enter);
                    text(&mut w, "Dara Sok");
                    w.handle(Input::Enter);
                    for _ in 0..2 {
                        text(&mut w, "pw");
                        w.handle(Input::Enter);
                    }
                    w.handle(Input::Enter);
                }
                _ => {
                    w.handle(Input::Enter);
                }
            }
            assert!(w.error().is_none(), "{:?}", w.error());
        }
        assert_eq!(w.step(), step);
        w
    }

    /// The screen as 24 lines of text.
    fn screen(w: &Wizard) -> Vec<String> {
        text_80x24(|f| draw(f, &w.view()))
    }

    /// Words with single spaces.
    fn squash(s: &str) -> String {
        s.split_whitespace().collect::<Vec<_>>().join(" ")
    }

    /// Every word of every row (but the plan) is on the screen, in order.
    fn assert_nothing_cut(w: &Wizard, lines: &[String]) {
        let all = squash(&lines.join(" "));
        for row in w.view().rows {
            let t = match row {
                Row::Text(t) | Row::Note(t) => t,
                Row::Choice { text, refused, .. } => match refused {
                    Some(r) => format!("{text} [{r}]"),
                    None => text,
                },
                Row::Field { label, value, .. } => format!("{label} {value}"),
                Row::Blank | Row::Plan { .. } => continue,
            };
            assert!(
                all.contains(&squash(&t)),
                "`{t}` is cut:\n{}",
                lines.join("\n")
            );
        }
    }

    #[test]
    fn each_screen_fits_80x24_with_its_title() {
        for step in Step::ALL {
            let w = at(step);
            let lines = screen(&w);
            assert_eq!(
                lines[0],
                format!(
                    " KOOMPI OS installer — step {} of {STEPS}: {}",
                    step.number(),
                    step.name()
                )
            );
            assert!(lines[23].contains("Enter"), "{}", lines[23]);
            assert!(lines[23].contains("Esc back"), "{}", lines[23]);
            assert!(lines[23].contains("Ctrl-C quit"), "{}", lines[23]);
            assert_nothing_cut(&w, &lines);
        }
    }

    #[test]
    fn the_disk_screen_greys_what_cannot_be_chosen() {
        let lines = screen(&at(Step::Disk));
        let text = lines.join("\n");
        assert!(
            text.contains("> /dev/nvme0n1, 238 GiB, SAMSUNG MZVLB256HAHQ-000L7"),
            "{text}"
        );
        assert!(
            text.contains("  /dev/sda, 15 GiB, Cruzer Blade (removable)  [the boot medium]"),
            "{text}"
        );
        assert!(text.contains("/dev/mmcblk0, 30 GiB  [in use]"), "{text}");
    }

    #[test]
    fn the_summary_shows_the_plan_and_asks_for_the_disk() {
        let mut w = at(Step::Summary);
        let lines = screen(&w);
        let text = lines.join("\n");
        let first = PLAN.lines().next().expect("a line");
        assert!(squash(&text).contains(first), "{text}");
        assert!(
            text.contains("User dara (Dara Sok) · hostname koompi"),
            "{text}"
        );
        assert!(
            squash(&text).contains(
                "To erase /dev/nvme0n1 and install, type its size (238 GiB) or its model \
                 (SAMSUNG MZVLB256HAHQ-000L7):"
            ),
            "{text}"
        );
        assert!(text.contains("more lines of the plan"), "{text}");
        assert!(lines.iter().any(|l| l.starts_with(" > Confirm")), "{text}");
        assert_nothing_cut(&w, &lines);
        // Scrolled to the end, the last line of the plan shows.
        for _ in 0..200 {
            w.handle(Input::Down);
        }
        let text = screen(&w).join("\n");
        let last = PLAN.lines().last().expect("a line").trim();
        assert!(text.contains(last), "{text}");
        // A wrong answer: one line, the screen stays.
        text_in(&mut w, "240 GB");
        w.handle(Input::Enter);
        let lines = screen(&w);
        assert!(
            lines[22].starts_with(" ! to confirm, type 238 GiB or SAMSUNG"),
            "{lines:?}"
        );
    }

    fn text_in(w: &mut Wizard, s: &str) {
        text(w, s)
    }

    #[test]
    fn a_bad_hostname_shows_one_error_line() {
        let mut w = at(Step::Network);
        for _ in 0..6 {
            w.handle(Input::Backspace);
        }
        text(&mut w, "Lab 7");
        w.handle(Input::Enter);
        assert_eq!(w.step(), Step::Network);
        let lines = screen(&w);
        let errors: Vec<&String> = lines.iter().filter(|l| l.starts_with(" ! ")).collect();
        assert_eq!(errors.len(), 1, "{lines:#?}");
        assert!(
            errors[0].starts_with(" ! `hostname`: `Lab 7` may hold only letters a-z"),
            "{lines:#?}"
        );
        assert!(
            lines.iter().any(|l| l.contains("> Hostname    Lab 7")),
            "{lines:#?}"
        );
    }

    #[test]
    fn a_long_list_scrolls_with_its_cursor() {
        let mut s = setting();
        for i in 0..30 {
            s.disks
                .push(disk(&format!("/dev/sd{i:02}"), 20 * GIB, None));
        }
        let mut w = Wizard::new(
            s,
            Answers::default(),
            Box::new(|_: &Answers| Ok(String::new())),
        );
        for _ in 0..4 {
            w.handle(Input::Enter);
        }
        assert_eq!(w.step(), Step::Disk);
        let lines = screen(&w);
        assert!(
            lines.iter().any(|l| l.starts_with(" > /dev/nvme0n1")),
            "{lines:#?}"
        );
        assert!(lines.iter().any(|l| l.contains("↓ ")), "{lines:#?}");
        for _ in 0..40 {
            w.handle(Input::Down);
        }
        let lines = screen(&w);
        assert!(
            lines.iter().any(|l| l.starts_with(" > /dev/sd29")),
            "{lines:#?}"
        );
        assert!(lines.iter().any(|l| l.contains("↑ ")), "{lines:#?}");
    }

    #[test]
    fn wrapping_keeps_every_word() {
        assert_eq!(wrap("a bb ccc", 4, ""), ["a bb", "ccc"]);
        assert_eq!(
            wrap("abcdefghij", 4, "  "),
            ["abcd", "  ef", "  gh", "  ij"]
        );
        assert_eq!(wrap("", 10, ""), [""]);
        for l in wrap(&"word ".repeat(50), 78, "    ") {
            assert!(l.chars().count() <= 78);
        }
    }

    #[test]
    fn keys_become_inputs() {
        use crossterm::event::KeyEvent;
        let key = |code, m| Event::Key(KeyEvent::new(code, m));
        assert_eq!(
            input_of(&key(KeyCode::Char('c'), KeyModifiers::CONTROL)),
            Some(Input::Quit)
        );
        assert_eq!(
            input_of(&key(KeyCode::Char('x'), KeyModifiers::NONE)),
            Some(Input::Char('x'))
        );
        assert_eq!(
            input_of(&key(KeyCode::Char('x'), KeyModifiers::CONTROL)),
            None
        );
        assert_eq!(
            input_of(&key(KeyCode::BackTab, KeyModifiers::SHIFT)),
            Some(Input::Up)
        );
        assert_eq!(input_of(&Event::FocusGained), None);
    }

    /// docs/images holds three screens as text; they are these.
    #[test]
    fn the_screens_in_the_docs_are_current() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/images");
        let mut summary = at(Step::Summary);
        text(&mut summary, "238 GiB");
        let mut beside = at(Step::Partitioning);
        beside.handle(Input::Down);
        beside.handle(Input::Down);
        for (name, w) in [
            ("install-disk.txt", at(Step::Disk)),
            ("install-partitions.txt", beside),
            ("install-summary.txt", summary),
        ] {
            let shot = screen(&w).join("\n") + "\n";
            let path = dir.join(name);
            if std::env::var_os("KOOMPI_BLESS").is_some() {
                std::fs::create_dir_all(&dir).expect("mkdir");
                std::fs::write(&path, &shot).expect("write");
            }
            let saved = std::fs::read_to_string(&path).unwrap_or_default();
            assert_eq!(
                saved,
                shot,
                "{} is not current: run the test with KOOMPI_BLESS=1",
                path.display()
            );
        }
    }
}
