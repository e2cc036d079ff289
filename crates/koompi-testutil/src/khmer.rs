//! The Khmer shaping references of `data/khmer/` (issue 13), read by the host test
//! (`tests/khmer_shaping.rs`) and by the VM rig's `base-edition` scenario, which shapes the
//! same words with the fonts of a booted guest.
//!
//! A reference is what `hb-shape` printed for each word of `words.txt` with one font file,
//! made by `make-reference.sh` and reviewed by eye in docs/images/khmer-sample.png: `# key:
//! value` lines (the font's sha256, the hb-shape options, the font's dotted-circle glyph)
//! and `word<TAB>glyph=cluster|...` lines.

use std::collections::BTreeMap;
use std::io;
use std::path::{Path, PathBuf};

use crate::prereq::{KHMER_OS, NOTO_SANS_KHMER};

/// The fonts with a reference: the reference's name and the font's paths (Debian's first,
/// then Arch's, `|`-separated).
pub const FONTS: [(&str, &str); 2] = [("noto-sans-khmer", NOTO_SANS_KHMER), ("khmer-os", KHMER_OS)];

/// `data/khmer/` of this crate.
pub fn data_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("data/khmer")
}

/// A parsed reference file.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Reference {
    /// The `# key: value` lines.
    pub meta: BTreeMap<String, String>,
    /// Each word and its shaping (`glyph=cluster|...`), in the file's order.
    pub words: Vec<(String, String)>,
}

impl Reference {
    /// `data/khmer/reference-<slug>.txt`.
    pub fn load(slug: &str) -> io::Result<Reference> {
        let path = data_dir().join(format!("reference-{slug}.txt"));
        Ok(Reference::parse(&std::fs::read_to_string(path)?))
    }

    /// Parses a reference's text.
    pub fn parse(text: &str) -> Reference {
        let mut r = Reference::default();
        for line in text.lines() {
            if let Some(comment) = line.strip_prefix("# ") {
                if let Some((k, v)) = comment.split_once(": ") {
                    r.meta.insert(k.to_string(), v.to_string());
                }
            } else if let Some((word, shaped)) = line.split_once('\t') {
                r.words.push((word.to_string(), shaped.to_string()));
            }
        }
        r
    }

    /// A `# key: value` of the header, or "" when missing.
    fn get(&self, key: &str) -> &str {
        self.meta.get(key).map(String::as_str).unwrap_or_default()
    }

    /// The hb-shape options the reference was made with.
    pub fn options(&self) -> &str {
        self.get("hb-shape-options")
    }

    /// The sha256 of the font file the reference was made from.
    pub fn font_sha256(&self) -> &str {
        self.get("font-sha256")
    }

    /// The font's name for the dotted circle (U+25CC), e.g. `uni25CC`.
    pub fn dotted_circle(&self) -> &str {
        self.get("dotted-circle")
            .split(' ')
            .next()
            .unwrap_or_default()
    }
}

/// The words of `words.txt`, in order (the first tab-separated field of each line that is
/// neither blank nor a `#` comment).
pub fn words() -> io::Result<Vec<String>> {
    Ok(parse_words(&std::fs::read_to_string(
        data_dir().join("words.txt"),
    )?))
}

/// The words of a `words.txt` text.
pub fn parse_words(text: &str) -> Vec<String> {
    text.lines()
        .filter(|l| !l.trim().is_empty() && !l.starts_with('#'))
        .filter_map(|l| l.split('\t').next())
        .map(str::to_string)
        .collect()
}

/// One line of hb-shape's output without its brackets: `glyph=cluster|...`.
pub fn unbracket(line: &str) -> &str {
    line.trim().trim_start_matches('[').trim_end_matches(']')
}

/// The glyph names of a shaping that are missing (`.notdef`, `gid0`) or mark a broken
/// cluster (the font's dotted circle).
pub fn broken<'a>(shaped: &'a str, dotted_circle: &str) -> Vec<&'a str> {
    shaped
        .split('|')
        .map(|g| g.split('=').next().unwrap_or(g))
        .filter(|name| *name == ".notdef" || *name == "gid0" || *name == dotted_circle)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_reference_parses_and_broken_glyphs_are_found() {
        let r = Reference::parse(
            "# font-sha256: ab\n# dotted-circle: uni25CC (glyph id 360)\n# hb-shape-options: \
             --script=khmr\nក\tuni1780=0\n",
        );
        assert_eq!(r.font_sha256(), "ab");
        assert_eq!(r.dotted_circle(), "uni25CC");
        assert_eq!(r.options(), "--script=khmr");
        assert_eq!(r.words, vec![("ក".to_string(), "uni1780=0".to_string())]);
        assert_eq!(
            broken("uni25CC=0|uni1780=0|.notdef=1|gid0=2", "uni25CC"),
            vec!["uni25CC", ".notdef", "gid0"]
        );
        assert_eq!(unbracket("[uni1780=0]\n"), "uni1780=0");
        assert_eq!(parse_words("# c\nក\tka\n\nខ\n"), vec!["ក", "ខ"]);
    }
}
