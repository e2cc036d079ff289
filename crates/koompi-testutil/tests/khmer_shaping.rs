//! Khmer text renders correctly (issue 13): HarfBuzz's `hb-shape` shapes the words of
//! `data/khmer/words.txt` (coeng subscripts, two stacked coengs with a vowel, the ro
//! subscript, pre-base and split vowels) with the installed Noto Sans Khmer and Khmer OS
//! fonts. No word may shape to `.notdef` (a missing glyph) or to the font's dotted circle
//! (how HarfBuzz marks a broken cluster), and where the font file is the one the reference
//! was made from (its sha256 is in the reference), every glyph and cluster must be the
//! reference's, reviewed by eye in docs/images/khmer-sample.png. Another version of a font
//! (Arch's noto-fonts, ttf-khmer) is held to the first two rules only, and the test says so.

#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use koompi_testutil::prereq::{self, KHMER_OS, NOTO_SANS_KHMER};

fn data() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("data/khmer")
}

/// A reference file: its `# key: value` lines and its `word<TAB>shaping` lines.
struct Reference {
    meta: BTreeMap<String, String>,
    words: Vec<(String, String)>,
}

fn reference(slug: &str) -> Reference {
    let text = std::fs::read_to_string(data().join(format!("reference-{slug}.txt"))).unwrap();
    let mut meta = BTreeMap::new();
    let mut words = Vec::new();
    for line in text.lines() {
        if let Some(comment) = line.strip_prefix("# ") {
            if let Some((k, v)) = comment.split_once(": ") {
                meta.insert(k.to_string(), v.to_string());
            }
        } else if let Some((word, shaped)) = line.split_once('\t') {
            words.push((word.to_string(), shaped.to_string()));
        }
    }
    Reference { meta, words }
}

/// The words to shape, in words.txt's order.
fn words() -> Vec<String> {
    std::fs::read_to_string(data().join("words.txt"))
        .unwrap()
        .lines()
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(|l| l.split('\t').next().unwrap().to_string())
        .collect()
}

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
    let s = String::from_utf8(out.stdout).unwrap();
    s.trim()
        .trim_start_matches('[')
        .trim_end_matches(']')
        .to_string()
}

fn sha256(file: &Path) -> String {
    let out = koompi_testutil::sh("sha256sum", &[file.to_str().unwrap()]);
    out.split_whitespace().next().unwrap().to_string()
}

/// The glyph names of a shaping that are missing or mark a broken cluster.
fn broken<'a>(shaped: &'a str, dotted_circle: &str) -> Vec<&'a str> {
    shaped
        .split('|')
        .map(|g| g.split('=').next().unwrap_or(g))
        .filter(|name| *name == ".notdef" || *name == "gid0" || *name == dotted_circle)
        .collect()
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

const FONTS: [(&str, &str); 2] = [("noto-sans-khmer", NOTO_SANS_KHMER), ("khmer-os", KHMER_OS)];

#[test]
fn khmer_words_shape_with_every_glyph_and_no_broken_cluster() {
    if !prereq::require_programs("khmer_shaping", &["hb-shape", "sha256sum"]) {
        return;
    }
    let words = words();
    assert!(words.len() >= 10, "words.txt: {words:?}");
    for (slug, alternatives) in FONTS {
        let Some(font) = installed(alternatives) else {
            continue;
        };
        let r = reference(slug);
        let listed: Vec<&String> = r.words.iter().map(|(w, _)| w).collect();
        assert_eq!(
            listed,
            words.iter().collect::<Vec<_>>(),
            "{slug}: reference out of date"
        );
        let options = &r.meta["hb-shape-options"];
        let dotted = r.meta["dotted-circle"].split(' ').next().unwrap();
        let exact = sha256(&font) == r.meta["font-sha256"];
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
    let r = reference("noto-sans-khmer");
    let dotted = r.meta["dotted-circle"].split(' ').next().unwrap();
    let shaped = shape(&font, &r.meta["hb-shape-options"], "\u{17D2}\u{1780}");
    assert_eq!(broken(&shaped, dotted), vec![dotted], "{shaped}");
}
