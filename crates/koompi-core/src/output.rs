//! Output for people and for scripts.
//!
//! Every command prints a human table by default and JSON with `--json`. Logs never go to
//! stdout, so `--json` output can always be piped into a parser.

use comfy_table::{presets, ContentArrangement, Table};
use serde::Serialize;

/// Which form the output takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Human,
    Json,
}

impl Format {
    /// `Json` when `json` is set.
    pub fn from_flag(json: bool) -> Self {
        if json {
            Format::Json
        } else {
            Format::Human
        }
    }
}

/// Builds a plain table with a header row, sized to the terminal when there is one.
pub fn table<I, S>(header: I) -> Table
where
    I: IntoIterator<Item = S>,
    S: Into<comfy_table::Cell>,
{
    let mut t = Table::new();
    t.load_preset(presets::UTF8_HORIZONTAL_ONLY)
        .set_content_arrangement(ContentArrangement::Dynamic)
        .set_header(header);
    t
}

/// Lets only column `free` (free text) wrap, at word boundaries, and never narrower than
/// `min` characters (its longest unbreakable word, such as a name); every other column
/// keeps its content on one line (numbers, dates, names never break in the middle).
pub fn wrap_only(t: &mut Table, free: usize, min: usize) {
    use comfy_table::{ColumnConstraint, Width};
    let n = t.column_count();
    for i in 0..n {
        let constraint = if i == free {
            ColumnConstraint::LowerBoundary(Width::Fixed(u16::try_from(min).unwrap_or(u16::MAX)))
        } else {
            ColumnConstraint::ContentWidth
        };
        if let Some(c) = t.column_mut(i) {
            c.set_constraint(constraint);
        }
    }
}

/// Serializes `value` as pretty JSON with a trailing newline.
pub fn to_json<T: Serialize + ?Sized>(value: &T) -> String {
    match serde_json::to_string_pretty(value) {
        Ok(mut s) => {
            s.push('\n');
            s
        }
        // Serializing plain data structs cannot fail; keep the output valid JSON anyway.
        Err(e) => format!("{{\"error\": {:?}}}\n", e.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_is_pretty_and_terminated() {
        #[derive(Serialize)]
        struct S {
            a: u32,
        }
        assert_eq!(to_json(&S { a: 1 }), "{\n  \"a\": 1\n}\n");
    }

    #[test]
    fn table_has_header_and_rows() {
        let mut t = table(["#", "Name"]);
        t.add_row(vec!["1", "factory"]);
        let s = t.to_string();
        assert!(s.contains('#') && s.contains("factory"), "{s}");
    }
}
