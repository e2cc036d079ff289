//! The desktop menu as the build prompt draws it, as a pure state machine.
//!
//! ```text
//! ┌─ KOOMPI Editions ─────────────────────────┐
//! │  [1] KOOMPI Tiling   (Hyprland + configs) │
//! │  [2] KOOMPI Terminal (Pure CLI)           │
//! │  [3] KOOMPI Lite     (Openbox)            │
//! └───────────────────────────────────────────┘
//! ┌─ Community Desktops ──────────────────────┐
//! │  [4] KDE  [5] GNOME  [6] XFCE  [7] More   │
//! └───────────────────────────────────────────┘
//! ```
//!
//! The boxes are built from the catalog (KOOMPI editions, then community ones, then
//! "More", which opens a third box with the rest). [`Menu::handle`] turns keys into moves
//! and a choice; [`Menu::lines`] gives the text with the selected entry's columns, which
//! the terminal front end highlights. Nothing here reads a terminal.

use crate::catalog::{Catalog, Group};

/// The inner width of the boxes (between the vertical bars).
const INNER: usize = 43;

/// A key, as the front end passes it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Key {
    Up,
    Down,
    Left,
    Right,
    Enter,
    Esc,
    Char(char),
}

/// What a key led to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Continue,
    Quit,
    /// The edition ID chosen.
    Chosen(String),
}

/// One line of the menu, with the selected entry's character columns when it is on it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MenuLine {
    pub text: String,
    pub selected: Option<(usize, usize)>,
}

/// The menu's state.
#[derive(Debug, Clone)]
pub struct Menu {
    /// (id, name, summary) of the KOOMPI and community editions, then "More".
    main: Vec<Entry>,
    more: Vec<Entry>,
    in_more: bool,
    cursor: usize,
}

#[derive(Debug, Clone)]
struct Entry {
    /// `None`: the "More" entry.
    id: Option<String>,
    name: String,
    summary: String,
    group: Group,
    description: String,
}

impl Menu {
    /// The menu of `catalog`'s editions.
    pub fn new(catalog: &Catalog) -> Menu {
        let entry = |e: &crate::catalog::Edition| Entry {
            id: Some(e.id.clone()),
            name: e.name.clone(),
            summary: e.summary.clone(),
            group: e.group,
            description: e.description.clone(),
        };
        let mut main: Vec<Entry> = catalog
            .editions
            .iter()
            .filter(|e| e.group == Group::Koompi)
            .chain(
                catalog
                    .editions
                    .iter()
                    .filter(|e| e.group == Group::Community),
            )
            .map(entry)
            .collect();
        let more: Vec<Entry> = catalog
            .editions
            .iter()
            .filter(|e| e.group == Group::More)
            .map(entry)
            .collect();
        if !more.is_empty() {
            main.push(Entry {
                id: None,
                name: "More".into(),
                summary: "More".into(),
                group: Group::Community,
                description: more
                    .iter()
                    .map(|e| e.name.as_str())
                    .collect::<Vec<_>>()
                    .join(", "),
            });
        }
        Menu {
            main,
            more,
            in_more: false,
            cursor: 0,
        }
    }

    fn entries(&self) -> &[Entry] {
        if self.in_more {
            &self.more
        } else {
            &self.main
        }
    }

    /// Whether the "More" box is open.
    pub fn in_more(&self) -> bool {
        self.in_more
    }

    /// The selected entry's edition ID (`None` on "More").
    pub fn selected(&self) -> Option<&str> {
        self.entries()
            .get(self.cursor)
            .and_then(|e| e.id.as_deref())
    }

    /// One sentence about the selected entry.
    pub fn description(&self) -> String {
        self.entries()
            .get(self.cursor)
            .map(|e| format!("{}: {}", e.name, e.description))
            .unwrap_or_default()
    }

    fn pick(&mut self) -> Outcome {
        match self.entries().get(self.cursor) {
            Some(Entry { id: Some(id), .. }) => Outcome::Chosen(id.clone()),
            Some(Entry { id: None, .. }) => {
                self.in_more = true;
                self.cursor = 0;
                Outcome::Continue
            }
            None => Outcome::Continue,
        }
    }

    /// Handles one key.
    pub fn handle(&mut self, key: Key) -> Outcome {
        let n = self.entries().len();
        match key {
            Key::Up | Key::Left if self.cursor > 0 => self.cursor -= 1,
            Key::Down | Key::Right if self.cursor + 1 < n => self.cursor += 1,
            Key::Enter | Key::Char(' ') => return self.pick(),
            Key::Char(c @ '1'..='9') => {
                let i = (c as usize) - ('1' as usize);
                if i < n {
                    self.cursor = i;
                    return self.pick();
                }
            }
            Key::Esc | Key::Char('q') if self.in_more => {
                self.in_more = false;
                self.cursor = self.main.len().saturating_sub(1);
            }
            Key::Esc | Key::Char('q') => return Outcome::Quit,
            Key::Char('k') => return self.handle(Key::Up),
            Key::Char('j') => return self.handle(Key::Down),
            _ => {}
        }
        Outcome::Continue
    }

    /// The boxes, line by line.
    pub fn lines(&self) -> Vec<MenuLine> {
        let mut out = Vec::new();
        let sel = |box_more: bool, i: usize| box_more == self.in_more && i == self.cursor;
        // The KOOMPI box: one edition per line.
        let koompi: Vec<(usize, &Entry)> = self
            .main
            .iter()
            .enumerate()
            .filter(|(_, e)| e.group == Group::Koompi)
            .collect();
        if !koompi.is_empty() {
            out.push(top("KOOMPI Editions"));
            for (i, e) in koompi {
                let label = format!("[{}] {:<15} ({})", i + 1, e.name, e.summary);
                let text = framed(&format!("  {label}"));
                let span = sel(false, i).then(|| (3, 3 + label.chars().count()));
                out.push(MenuLine {
                    text,
                    selected: span,
                });
            }
            out.push(bottom());
        }
        let community: Vec<(usize, &Entry)> = self
            .main
            .iter()
            .enumerate()
            .filter(|(_, e)| e.group != Group::Koompi)
            .collect();
        if !community.is_empty() {
            out.push(top("Community Desktops"));
            out.extend(row_box(&community, |i| sel(false, i)));
            out.push(bottom());
        }
        if self.in_more {
            out.push(top("More Desktops"));
            let more: Vec<(usize, &Entry)> = self.more.iter().enumerate().collect();
            out.extend(row_box(&more, |i| sel(true, i)));
            out.push(bottom());
        }
        out
    }
}

/// Entries side by side (`[n] Label` two spaces apart), wrapped to the box.
fn row_box(entries: &[(usize, &Entry)], is_sel: impl Fn(usize) -> bool) -> Vec<MenuLine> {
    let mut lines = Vec::new();
    let mut text = String::from("  ");
    let mut selected = None;
    for (k, (i, e)) in entries.iter().enumerate() {
        let number = if e.group == Group::More { k + 1 } else { i + 1 };
        let label = format!("[{number}] {}", e.summary);
        let len = text.chars().count();
        if len > 2 && len + label.chars().count() > INNER - 1 {
            lines.push(MenuLine {
                text: framed(text.trim_end()),
                selected: selected.take(),
            });
            text = String::from("  ");
        }
        let start = text.chars().count() + 1;
        if is_sel(*i) {
            selected = Some((start, start + label.chars().count()));
        }
        text.push_str(&label);
        text.push_str("  ");
    }
    lines.push(MenuLine {
        text: framed(text.trim_end()),
        selected,
    });
    lines
}

fn top(title: &str) -> MenuLine {
    let head = format!("┌─ {title} ");
    let fill = (INNER + 2).saturating_sub(head.chars().count() + 1);
    MenuLine {
        text: format!("{head}{}┐", "─".repeat(fill)),
        selected: None,
    }
}

fn bottom() -> MenuLine {
    MenuLine {
        text: format!("└{}┘", "─".repeat(INNER)),
        selected: None,
    }
}

fn framed(inner: &str) -> String {
    let pad = INNER.saturating_sub(inner.chars().count());
    format!("│{inner}{}│", " ".repeat(pad))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use std::path::Path;

    fn menu() -> Menu {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../configs");
        Menu::new(&Catalog::load(&dir.join("editions.toml")).unwrap())
    }

    /// The build prompt's drawing, character for character.
    const SEED: &str = "\
┌─ KOOMPI Editions ─────────────────────────┐
│  [1] KOOMPI Tiling   (Hyprland + configs) │
│  [2] KOOMPI Terminal (Pure CLI)           │
│  [3] KOOMPI Lite     (Openbox)            │
└───────────────────────────────────────────┘
┌─ Community Desktops ──────────────────────┐
│  [4] KDE  [5] GNOME  [6] XFCE  [7] More   │
└───────────────────────────────────────────┘";

    #[test]
    fn draws_the_seed_menu_exactly() {
        let m = menu();
        let text: Vec<String> = m.lines().into_iter().map(|l| l.text).collect();
        assert_eq!(text.join("\n"), SEED);
        let first = &m.lines()[1];
        let (a, b) = first.selected.unwrap();
        let chars: Vec<char> = first.text.chars().collect();
        assert_eq!(
            chars[a..b].iter().collect::<String>(),
            "[1] KOOMPI Tiling   (Hyprland + configs)"
        );
    }

    #[test]
    fn keys_move_choose_and_open_more() {
        let mut m = menu();
        assert_eq!(m.handle(Key::Char('3')), Outcome::Chosen("lite".into()));
        assert_eq!(m.handle(Key::Down), Outcome::Continue);
        assert_eq!(m.selected(), Some("kde"));
        assert_eq!(m.handle(Key::Char('7')), Outcome::Continue);
        assert!(m.in_more());
        let lines = m.lines();
        let more: Vec<&str> = lines.iter().skip(8).map(|l| l.text.as_str()).collect();
        assert_eq!(
            more,
            [
                "┌─ More Desktops ───────────────────────────┐",
                "│  [1] Cinnamon  [2] MATE  [3] i3  [4] Sway │",
                "│  [5] Hyprland                             │",
                "└───────────────────────────────────────────┘",
            ]
        );
        let sel = lines
            .iter()
            .find_map(|l| l.selected.map(|s| (l, s)))
            .unwrap();
        let chars: Vec<char> = sel.0.text.chars().collect();
        assert_eq!(
            chars[sel.1 .0..sel.1 .1].iter().collect::<String>(),
            "[1] Cinnamon"
        );
        assert_eq!(m.handle(Key::Char('5')), Outcome::Chosen("hyprland".into()));
        assert_eq!(m.handle(Key::Esc), Outcome::Continue);
        assert!(!m.in_more());
        assert_eq!(m.selected(), None, "back on More");
        assert_eq!(m.handle(Key::Char('q')), Outcome::Quit);
    }

    #[test]
    fn every_line_is_45_columns() {
        let mut m = menu();
        m.handle(Key::Char('7'));
        for l in m.lines() {
            assert_eq!(l.text.chars().count(), INNER + 2, "{}", l.text);
        }
    }
}
