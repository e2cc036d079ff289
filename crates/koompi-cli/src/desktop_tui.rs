//! The `koompi-desktop` menu on a terminal: the boxes of [`koompi_desktop::menu`], then the
//! chosen edition's plan and a yes/no.

use anyhow::{Context, Result};
use crossterm::event::{self, Event, KeyCode, KeyEventKind, KeyModifiers};
use ratatui::layout::Rect;
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Paragraph, Wrap};
use ratatui::Frame;

use koompi_desktop::catalog::Catalog;
use koompi_desktop::desktop::Observed;
use koompi_desktop::menu::{Key, Menu, MenuLine, Outcome};

use crate::install_tui::Screen;

/// Where the user is.
enum Page {
    Menu,
    /// The chosen edition and its plan's lines (or the error making it).
    Confirm(String, Vec<String>),
}

/// Shows the menu until an edition is chosen and confirmed (`Some(id)`) or the user quits.
pub fn run(
    catalog: &Catalog,
    seen: &Observed,
    plan: impl Fn(&str) -> Result<Vec<String>>,
) -> Result<Option<String>> {
    let mut menu = Menu::new(catalog);
    let installed: Vec<String> = seen.state.editions.iter().map(|e| e.id.clone()).collect();
    let mut page = Page::Menu;
    let mut screen = Screen::enter()?;
    loop {
        screen
            .terminal
            .draw(|f| match &page {
                Page::Menu => draw_menu(f, &menu, &installed),
                Page::Confirm(id, lines) => draw_confirm(f, catalog, id, lines),
            })
            .context("cannot draw on the terminal")?;
        let ev = event::read().context("cannot read the keyboard")?;
        let Some(key) = key_of(&ev) else {
            continue;
        };
        match &page {
            Page::Menu => match menu.handle(key) {
                Outcome::Continue => {}
                Outcome::Quit => return Ok(None),
                Outcome::Chosen(id) => {
                    let lines = plan(&id).unwrap_or_else(|e| {
                        vec![format!("Cannot plan it: {}", crate::one_line(&e))]
                    });
                    page = Page::Confirm(id, lines);
                }
            },
            Page::Confirm(id, _) => match key {
                Key::Char('y' | 'Y') | Key::Enter => return Ok(Some(id.clone())),
                Key::Char('n' | 'N' | 'q') | Key::Esc => page = Page::Menu,
                _ => {}
            },
        }
    }
}

/// The menu's key for a terminal event; Ctrl-C quits.
fn key_of(ev: &Event) -> Option<Key> {
    let Event::Key(k) = ev else {
        return None;
    };
    if k.kind == KeyEventKind::Release {
        return None;
    }
    if k.modifiers.contains(KeyModifiers::CONTROL) {
        return matches!(k.code, KeyCode::Char('c' | 'C')).then_some(Key::Char('q'));
    }
    Some(match k.code {
        KeyCode::Char(c) => Key::Char(c),
        KeyCode::Enter => Key::Enter,
        KeyCode::Esc => Key::Esc,
        KeyCode::Up | KeyCode::BackTab => Key::Up,
        KeyCode::Down | KeyCode::Tab => Key::Down,
        KeyCode::Left => Key::Left,
        KeyCode::Right => Key::Right,
        _ => return None,
    })
}

fn title() -> Line<'static> {
    Line::styled(
        " KOOMPI OS: choose your desktop",
        Style::default()
            .fg(Color::Cyan)
            .add_modifier(Modifier::BOLD),
    )
}

fn styled(l: &MenuLine) -> Line<'static> {
    let Some((a, b)) = l.selected else {
        return Line::raw(l.text.clone());
    };
    let chars: Vec<char> = l.text.chars().collect();
    let part = |r: std::ops::Range<usize>| chars[r].iter().collect::<String>();
    Line::from(vec![
        Span::raw(part(0..a)),
        Span::styled(
            part(a..b),
            Style::default().add_modifier(Modifier::REVERSED | Modifier::BOLD),
        ),
        Span::raw(part(b..chars.len())),
    ])
}

fn draw_menu(f: &mut Frame, menu: &Menu, installed: &[String]) {
    let area = f.area();
    let mut lines = vec![title(), Line::raw("")];
    lines.extend(menu.lines().iter().map(styled));
    lines.push(Line::raw(""));
    let mut about = menu.description();
    if menu
        .selected()
        .is_some_and(|id| installed.iter().any(|i| i == id))
    {
        about.push_str(" (installed)");
    }
    lines.push(Line::styled(about, Style::default().fg(Color::Yellow)));
    lines.push(Line::raw(""));
    lines.push(Line::styled(
        if menu.in_more() {
            "Arrows move · Enter or a number chooses · Esc goes back"
        } else {
            "Arrows move · Enter or a number chooses · q quits"
        },
        Style::default().fg(Color::DarkGray),
    ));
    f.render_widget(
        Paragraph::new(lines).wrap(Wrap { trim: false }),
        Rect::new(1, 0, area.width.saturating_sub(2), area.height),
    );
}

fn draw_confirm(f: &mut Frame, catalog: &Catalog, id: &str, plan: &[String]) {
    let area = f.area();
    let name = catalog
        .edition(id)
        .map(|e| e.name.clone())
        .unwrap_or_else(|_| id.to_string());
    let mut lines = vec![
        title(),
        Line::raw(""),
        Line::styled(
            format!("Install {name}?"),
            Style::default().add_modifier(Modifier::BOLD),
        ),
        Line::raw(""),
    ];
    lines.extend(plan.iter().map(|l| Line::raw(format!("  {l}"))));
    lines.push(Line::raw(""));
    lines.push(Line::raw(
        "A snapshot is taken first: `koompi-snapshot rollback` undoes it.",
    ));
    lines.push(Line::raw(""));
    lines.push(Line::styled(
        "y or Enter installs · n or Esc goes back",
        Style::default().fg(Color::DarkGray),
    ));
    f.render_widget(
        Paragraph::new(lines).wrap(Wrap { trim: false }),
        Rect::new(1, 0, area.width.saturating_sub(2), area.height),
    );
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use std::path::Path;

    fn catalog() -> Catalog {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../configs");
        Catalog::load(&dir.join("editions.toml")).unwrap()
    }

    use crate::install_tui::text_80x24 as screen;

    #[test]
    fn the_menu_fits_80x24_with_the_seed_boxes() {
        let c = catalog();
        let m = Menu::new(&c);
        let lines = screen(|f| draw_menu(f, &m, &["lite".to_string()]));
        assert!(lines[0].contains("choose your desktop"));
        assert_eq!(
            lines[2].trim(),
            "┌─ KOOMPI Editions ─────────────────────────┐"
        );
        assert_eq!(
            lines[9].trim(),
            "└───────────────────────────────────────────┘"
        );
        assert!(
            lines[11].starts_with(" KOOMPI Tiling: Modern tiling"),
            "{}",
            lines[11]
        );
        let mut m = m;
        m.handle(Key::Char('7'));
        let lines = screen(|f| draw_menu(f, &m, &[]));
        assert!(lines.iter().any(|l| l.contains("[5] Hyprland")));
        assert!(lines.iter().any(|l| l.contains("Esc goes back")));
    }

    #[test]
    fn the_confirmation_shows_the_plan() {
        let c = catalog();
        let plan = vec!["Packages to install (2): openbox tint2".to_string()];
        let lines = screen(|f| draw_confirm(f, &c, "lite", &plan));
        assert!(lines.iter().any(|l| l.contains("Install KOOMPI Lite?")));
        assert!(lines.iter().any(|l| l.contains("openbox tint2")));
    }
}
