//! Khmer text renders correctly (issue 13): HarfBuzz's `hb-shape` shapes the words of
//! `data/khmer/words.txt` (coeng subscripts, two stacked coengs with a vowel, the ro
//! subscript, pre-base and split vowels) with the installed Noto Sans Khmer and Khmer OS
//! fonts. No word may shape to `.notdef` (a missing glyph) or to the font's dotted circle
//! (how HarfBuzz marks a broken cluster), and where the font file is the one the reference
//! was made from (its sha256 is in the reference), every glyph and cluster must be the
//! reference's, reviewed by eye in docs/images/khmer-sample.png. Another version of a font
//! (Arch's noto-fonts, ttf-khmer) is held to the first two rules only, and the test says so.

#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};
use std::process::Command;

use koompi_testutil::khmer::{broken, unbracket, words, Reference, FONTS};
use koompi_testutil::prereq::{self, NOTO_SANS_KHMER};

/// hb-shape's `glyph=cluster|...` for `text` in `font`, without the brackets.
fn shape(font: &Path, options: &str, text: &str) -> String {
    let out = Command::new("hb-shape")
        .env("LC_ALL", "C.UTF-8")
        .arg(format!("--font-file={}", font.display()))
        .args(options.split_whitespace())
        .arg(format!("--text={text}"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "hb-shape: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    unbracket(&String::from_utf8(out.stdout).unwrap()).to_string()
}

fn sha256(file: &Path) -> String {
    let out = koompi_testutil::sh("sha256sum", &[file.to_str().unwrap()]);
    out.split_whitespace().next().unwrap().to_string()
}

/// The installed font of `alternatives`, or `None` after saying why (a failure under
/// KOOMPI_PRIVILEGED_TESTS=1, where .ci/run has installed it).
fn installed(alternatives: &str) -> Option<PathBuf> {
    let found = alternatives
        .split('|')
        .map(PathBuf::from)
        .find(|p| p.is_file());
    if found.is_none() {
        let first = alternatives.split('|').next().unwrap_or(alternatives);
        let line = format!(
            "khmer_shaping: {first} not installed: {}",
            prereq::install_hint(&[alternatives])
        );
        if koompi_testutil::privileged_required() {
            prereq::fail(&line);
        }
        eprintln!("SKIP {line}");
    }
    found
}

#[test]
fn khmer_words_shape_with_every_glyph_and_no_broken_cluster() {
    if !prereq::require_programs("khmer_shaping", &["hb-shape", "sha256sum"]) {
        return;
    }
    let words = words().unwrap();
    assert!(words.len() >= 10, "words.txt: {words:?}");
    for (slug, alternatives) in FONTS {
        let Some(font) = installed(alternatives) else {
            continue;
        };
        let r = Reference::load(slug).unwrap();
        let listed: Vec<&String> = r.words.iter().map(|(w, _)| w).collect();
        assert_eq!(
            listed,
            words.iter().collect::<Vec<_>>(),
            "{slug}: reference out of date"
        );
        let (options, dotted) = (r.options(), r.dotted_circle());
        let exact = sha256(&font) == r.font_sha256();
        for (word, expected) in &r.words {
            let shaped = shape(&font, options, word);
            let bad = broken(&shaped, dotted);
            assert!(bad.is_empty(), "{slug}: {word} shapes to {bad:?}: {shaped}");
            if exact {
                assert_eq!(&shaped, expected, "{slug}: {word}");
            }
        }
        eprintln!(
            "khmer shaping: {} ({}): {} words, no .notdef, no dotted circle{}",
            font.display(),
            slug,
            words.len(),
            if exact {
                "; glyphs and clusters equal to the reference"
            } else {
                "; another version of the font than the reference's: glyphs not compared"
            }
        );
    }
}

/// The check sees what it looks for: a coeng with no base consonant is a broken cluster,
/// which HarfBuzz draws with the dotted circle.
#[test]
fn a_broken_cluster_is_seen() {
    if !prereq::require_programs("khmer_shaping", &["hb-shape"]) {
        return;
    }
    let Some(font) = installed(NOTO_SANS_KHMER) else {
        return;
    };
    let r = Reference::load("noto-sans-khmer").unwrap();
    let dotted = r.dotted_circle();
    let shaped = shape(&font, r.options(), "\u{17D2}\u{1780}");
    assert_eq!(broken(&shaped, dotted), vec![dotted], "{shaped}");
}
