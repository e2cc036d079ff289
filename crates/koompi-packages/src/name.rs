//! What a user types as a package target: validated, then classified.
//!
//! Every name given to `koompi install`, `remove` or `info` ends up as an argument of pacman,
//! paru or flatpak. A name that starts with `-` would be read as an option, and one with shell
//! syntax in it is a mistake or an attack (through a script or a copied command line), so such
//! names are refused here with a one-line message, before any program runs.
//!
//! The kinds of target:
//!
//! - a pacman or AUR package name, Arch's rules: lowercase letters, digits and `@ . _ + -`,
//!   not starting with `-` or `.`, at most 255 characters (`firefox`, `lib32-mesa`, `gtk+`);
//! - the same, qualified with a repository: `extra/firefox`, `aur/paru`;
//! - a Flatpak application ID, reverse DNS as flatpak checks it: at least three elements
//!   separated by `.`, each `[A-Za-z_][A-Za-z0-9_]*`, where only the last element may also
//!   contain `-` (`org.gnome.Calculator`, `com.visualstudio.code`), at most 255 characters.
//!
//! Both kinds can be spelled alike: `org.gnome.calculator` is a valid package name and a valid
//! application ID. The rule: a name with no `/` and three or more dot-separated elements is a
//! Flatpak ID when it is a valid one and either has an uppercase letter (package names never
//! do) or starts with one of the well-known reverse-DNS prefixes `org.`, `com.`, `io.`,
//! `net.`, `dev.`, `app.`. Anything else is a package name, checked with Arch's rules; an
//! uppercase letter outside a Flatpak ID is refused with "package names are lowercase".

use std::fmt;

/// The longest package name or application ID accepted.
pub const MAX_LEN: usize = 255;

/// Prefixes that make an all-lowercase dotted name a Flatpak application ID.
pub const FLATPAK_PREFIXES: [&str; 6] = ["org.", "com.", "io.", "net.", "dev.", "app."];

/// Characters that mean shell syntax; never part of a valid target.
const SHELL_CHARS: &str = "$;|&`<>(){}*?!'\"\\[]~#";

/// What a validated name refers to.
#[derive(Debug, Clone, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Target {
    /// A pacman or AUR package, optionally from a named repository (`extra/firefox`).
    Package { repo: Option<String>, name: String },
    /// A Flatpak application ID (`org.gnome.Calculator`).
    FlatpakApp { id: String },
}

impl Target {
    /// The package name or application ID, without a repository.
    pub fn name(&self) -> &str {
        match self {
            Target::Package { name, .. } => name,
            Target::FlatpakApp { id } => id,
        }
    }
}

impl fmt::Display for Target {
    /// The target as the user would type it; [`classify`] of this text gives the same target.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Target::Package {
                repo: Some(repo),
                name,
            } => write!(f, "{repo}/{name}"),
            Target::Package { repo: None, name } => f.write_str(name),
            Target::FlatpakApp { id } => f.write_str(id),
        }
    }
}

/// Why a name was refused. Each message is one line (the name is shown escaped).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NameError {
    #[error("empty package name: give a name such as `firefox` or `org.gnome.Calculator`")]
    Empty,
    #[error("{0:?} looks like an option, not a package name (names cannot start with `-`)")]
    LooksLikeOption(String),
    #[error("{input:?} contains {}: package names cannot contain spaces or control characters", describe(*.ch))]
    Whitespace { input: String, ch: char },
    #[error("{input:?} contains `{ch}`: package names cannot contain shell syntax")]
    ShellSyntax { input: String, ch: char },
    #[error("{input:?}: package names are lowercase (did you mean {suggestion:?}?)")]
    Uppercase { input: String, suggestion: String },
    #[error("{input:?} contains {}, which is not allowed in a package name (a-z, 0-9 and @ . _ + -)", describe(*.ch))]
    InvalidChar { input: String, ch: char },
    #[error("{0:?}: a package name cannot start with `.`")]
    StartsWithDot(String),
    #[error("name is {len} characters long; the limit is {MAX_LEN}")]
    TooLong { len: usize },
    #[error("{input:?}: {reason} (write REPO/NAME, e.g. `extra/firefox`)")]
    BadRepo { input: String, reason: &'static str },
    #[error("{input:?} is not a valid Flatpak application ID: {reason}")]
    BadFlatpakId { input: String, reason: String },
}

/// How a character is named in a message: visible ones quoted, others by name or code.
fn describe(ch: char) -> String {
    match ch {
        ' ' => "a space".to_string(),
        '\n' => "a newline".to_string(),
        '\t' => "a tab".to_string(),
        '\r' => "a carriage return".to_string(),
        c if c.is_whitespace() || c.is_control() => format!("the character U+{:04X}", c as u32),
        c => format!("`{c}`"),
    }
}

/// Keeps error messages short when someone pastes a whole paragraph.
fn shown(s: &str) -> String {
    const KEEP: usize = 80;
    if s.chars().count() <= KEEP {
        s.to_string()
    } else {
        let mut t: String = s.chars().take(KEEP).collect();
        t.push_str("...");
        t
    }
}

/// Validates `s` and says what it names. See the module documentation for the rules.
pub fn classify(s: &str) -> Result<Target, NameError> {
    check_common(s)?;
    if looks_like_flatpak(s) {
        match validate_flatpak_id(s) {
            Ok(()) => return Ok(Target::FlatpakApp { id: s.to_string() }),
            // An uppercase letter says "Flatpak ID" for sure: explain what is wrong with it.
            Err(e) if s.chars().any(|c| c.is_ascii_uppercase()) => return Err(e),
            // All lowercase with a reverse-DNS prefix: it may still be a package name.
            Err(_) => {}
        }
    }
    match s.split_once('/') {
        Some((repo, name)) => {
            if name.contains('/') {
                return Err(NameError::BadRepo {
                    input: shown(s),
                    reason: "more than one `/`",
                });
            }
            validate_repo_name(s, repo)?;
            validate_package_name(name).map_err(|e| rename_input(e, s))?;
            Ok(Target::Package {
                repo: Some(repo.to_string()),
                name: name.to_string(),
            })
        }
        None => {
            validate_package_name(s)?;
            Ok(Target::Package {
                repo: None,
                name: s.to_string(),
            })
        }
    }
}

/// Whether `s` has the shape that [`classify`] tries as a Flatpak ID first.
fn looks_like_flatpak(s: &str) -> bool {
    !s.contains('/')
        && s.split('.').count() >= 3
        && (s.chars().any(|c| c.is_ascii_uppercase())
            || FLATPAK_PREFIXES.iter().any(|p| s.starts_with(p)))
}

/// The refusals that apply to every kind of name: empty, option-like, whitespace, control
/// characters, shell syntax, too long.
fn check_common(s: &str) -> Result<(), NameError> {
    if s.is_empty() {
        return Err(NameError::Empty);
    }
    if s.starts_with('-') {
        return Err(NameError::LooksLikeOption(shown(s)));
    }
    for ch in s.chars() {
        if ch.is_whitespace() || ch.is_control() {
            return Err(NameError::Whitespace {
                input: shown(s),
                ch,
            });
        }
        if SHELL_CHARS.contains(ch) {
            return Err(NameError::ShellSyntax {
                input: shown(s),
                ch,
            });
        }
    }
    let len = s.chars().count();
    if len > MAX_LEN {
        return Err(NameError::TooLong { len });
    }
    Ok(())
}

/// Checks a bare package name (no repository) against Arch's rules.
pub fn validate_package_name(name: &str) -> Result<(), NameError> {
    check_common(name)?;
    if name.starts_with('.') {
        return Err(NameError::StartsWithDot(shown(name)));
    }
    if name.chars().any(|c| c.is_ascii_uppercase()) {
        return Err(NameError::Uppercase {
            input: shown(name),
            suggestion: shown(&name.to_lowercase()),
        });
    }
    if let Some(ch) = name.chars().find(|c| !is_package_char(*c)) {
        return Err(NameError::InvalidChar {
            input: shown(name),
            ch,
        });
    }
    Ok(())
}

fn is_package_char(c: char) -> bool {
    c.is_ascii_lowercase() || c.is_ascii_digit() || "@._+-".contains(c)
}

/// A repository name as it appears in `pacman.conf` sections: `[a-z0-9_-]`, not starting
/// with `-`.
fn validate_repo_name(input: &str, repo: &str) -> Result<(), NameError> {
    if repo.is_empty() {
        return Err(NameError::BadRepo {
            input: shown(input),
            reason: "the repository name before `/` is empty",
        });
    }
    if repo.starts_with('-') {
        return Err(NameError::LooksLikeOption(shown(input)));
    }
    if repo.chars().any(|c| c.is_ascii_uppercase()) {
        return Err(NameError::BadRepo {
            input: shown(input),
            reason: "repository names are lowercase",
        });
    }
    if !repo
        .chars()
        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '-')
    {
        return Err(NameError::BadRepo {
            input: shown(input),
            reason: "a repository name has only a-z, 0-9, `_` and `-`",
        });
    }
    Ok(())
}

/// Errors about the name part of `repo/name` show the whole input.
fn rename_input(e: NameError, whole: &str) -> NameError {
    let whole = shown(whole);
    match e {
        NameError::Empty => NameError::BadRepo {
            input: whole,
            reason: "the package name after `/` is empty",
        },
        NameError::LooksLikeOption(_) => NameError::LooksLikeOption(whole),
        NameError::StartsWithDot(_) => NameError::StartsWithDot(whole),
        NameError::Uppercase { .. } => NameError::Uppercase {
            suggestion: whole.to_lowercase(),
            input: whole,
        },
        NameError::InvalidChar { ch, .. } => NameError::InvalidChar { input: whole, ch },
        other => other,
    }
}

/// Checks a Flatpak application ID as flatpak does (see the module documentation).
pub fn validate_flatpak_id(id: &str) -> Result<(), NameError> {
    check_common(id)?;
    let bad = |reason: String| NameError::BadFlatpakId {
        input: shown(id),
        reason,
    };
    let elements: Vec<&str> = id.split('.').collect();
    if elements.len() < 3 {
        return Err(bad(
            "it needs at least three parts separated by `.`".to_string()
        ));
    }
    let last = elements.len() - 1;
    for (i, element) in elements.iter().enumerate() {
        let mut chars = element.chars();
        let Some(first) = chars.next() else {
            return Err(bad(
                "it has an empty part (two dots in a row, or a dot at either end)".to_string(),
            ));
        };
        if !(first.is_ascii_alphabetic() || first == '_' || (i == last && first == '-')) {
            return Err(bad(format!(
                "part {element:?} must start with a letter or `_`"
            )));
        }
        for c in chars {
            if c == '-' && i != last {
                return Err(bad("only the last part may contain `-`".to_string()));
            }
            if !(c.is_ascii_alphanumeric() || c == '_' || c == '-') {
                return Err(bad(format!(
                    "{} is not allowed (letters, digits, `_`, and `-` in the last part)",
                    describe(c)
                )));
            }
        }
    }
    Ok(())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn pkg(name: &str) -> Target {
        Target::Package {
            repo: None,
            name: name.to_string(),
        }
    }

    fn flat(id: &str) -> Target {
        Target::FlatpakApp { id: id.to_string() }
    }

    #[test]
    fn plain_package_names() {
        for n in [
            "firefox",
            "lib32-mesa",
            "gtk+",
            "python3.12",
            "r",
            "0ad",
            "libc++",
            "a@b_c",
            "koompi-tools",
            "python-foo.bar.baz",
            "firefox-i18n-km",
        ] {
            assert_eq!(classify(n), Ok(pkg(n)), "{n}");
        }
    }

    #[test]
    fn repo_qualified() {
        assert_eq!(
            classify("extra/firefox"),
            Ok(Target::Package {
                repo: Some("extra".into()),
                name: "firefox".into()
            })
        );
        assert_eq!(
            classify("core-testing/linux").unwrap().to_string(),
            "core-testing/linux"
        );
        assert_eq!(classify("aur/paru").unwrap().name(), "paru");
    }

    #[test]
    fn flatpak_ids() {
        for id in [
            "org.gnome.Calculator",
            "com.visualstudio.code",
            "org.mozilla.firefox",
            "io.github.Faugus.faugus-launcher",
            "net.lutris.Lutris",
            "dev.zed.Zed",
            "app.drey.Dialect",
            "com.github.tchx84.Flatseal",
            "Org.Example.App",
            "x.y.Z",
            "org._7zip.App",
        ] {
            assert_eq!(classify(id), Ok(flat(id)), "{id}");
        }
    }

    #[test]
    fn ambiguous_lowercase_dotted_names() {
        // Well-known prefix: an application ID.
        assert_eq!(
            classify("org.gnome.calculator"),
            Ok(flat("org.gnome.calculator"))
        );
        // No prefix, no uppercase: a package name.
        assert_eq!(classify("foo.bar.baz"), Ok(pkg("foo.bar.baz")));
        // Only two parts: a package name even with a prefix.
        assert_eq!(classify("org.gnome"), Ok(pkg("org.gnome")));
        // A prefix, but not a valid ID (a part starts with a digit): still a package name.
        assert_eq!(classify("org.7zip.cli"), Ok(pkg("org.7zip.cli")));
        // With a repository it is always a package.
        assert_eq!(
            classify("extra/org.gnome.calculator"),
            Ok(Target::Package {
                repo: Some("extra".into()),
                name: "org.gnome.calculator".into()
            })
        );
    }

    #[test]
    fn refusals() {
        assert_eq!(classify(""), Err(NameError::Empty));
        assert!(matches!(
            classify("-Syu"),
            Err(NameError::LooksLikeOption(_))
        ));
        assert!(matches!(
            classify("--help"),
            Err(NameError::LooksLikeOption(_))
        ));
        assert!(matches!(
            classify("extra/-x"),
            Err(NameError::LooksLikeOption(_))
        ));
        assert!(matches!(
            classify("-x/foo"),
            Err(NameError::LooksLikeOption(_))
        ));
        assert!(matches!(
            classify("fire fox"),
            Err(NameError::Whitespace { ch: ' ', .. })
        ));
        assert!(matches!(
            classify("firefox\n"),
            Err(NameError::Whitespace { ch: '\n', .. })
        ));
        assert!(matches!(
            classify("a\u{7}b"),
            Err(NameError::Whitespace { .. })
        ));
        for (s, c) in [
            ("$(reboot)", '$'),
            ("foo;rm", ';'),
            ("a|b", '|'),
            ("a&", '&'),
            ("`x`", '`'),
            ("a>b", '>'),
            ("a<b", '<'),
            ("fire*", '*'),
            ("fire?", '?'),
            ("!x", '!'),
            ("it's", '\''),
            ("\"x\"", '"'),
            ("a\\b", '\\'),
            ("{a,b}", '{'),
        ] {
            assert_eq!(
                classify(s),
                Err(NameError::ShellSyntax {
                    input: s.to_string(),
                    ch: c
                }),
                "{s}"
            );
        }
        assert!(matches!(
            classify(".hidden"),
            Err(NameError::StartsWithDot(_))
        ));
        assert!(matches!(
            classify("foo:bar"),
            Err(NameError::InvalidChar { ch: ':', .. })
        ));
        assert!(matches!(classify("ស្រី"), Err(NameError::InvalidChar { .. })));
        assert!(matches!(
            classify(&"a".repeat(256)),
            Err(NameError::TooLong { len: 256 })
        ));
        assert!(classify(&"a".repeat(255)).is_ok());
        assert!(matches!(classify("a/b/c"), Err(NameError::BadRepo { .. })));
        assert!(matches!(
            classify("/firefox"),
            Err(NameError::BadRepo { .. })
        ));
        assert!(matches!(classify("extra/"), Err(NameError::BadRepo { .. })));
        assert!(matches!(
            classify("Extra/firefox"),
            Err(NameError::BadRepo { .. })
        ));
        assert!(matches!(
            classify("ex.tra/firefox"),
            Err(NameError::BadRepo { .. })
        ));
    }

    #[test]
    fn uppercase_is_refused_with_a_suggestion() {
        let e = classify("Firefox").unwrap_err();
        assert_eq!(
            e,
            NameError::Uppercase {
                input: "Firefox".into(),
                suggestion: "firefox".into()
            }
        );
        assert_eq!(
            e.to_string(),
            "\"Firefox\": package names are lowercase (did you mean \"firefox\"?)"
        );
        let e = classify("extra/Firefox").unwrap_err();
        assert!(e.to_string().contains("package names are lowercase"), "{e}");
        assert!(e.to_string().contains("extra/firefox"), "{e}");
        // Two parts only: not an application ID, so uppercase is a package-name error.
        assert!(matches!(
            classify("Gnome.Calculator"),
            Err(NameError::Uppercase { .. })
        ));
    }

    #[test]
    fn bad_flatpak_ids_explain_why() {
        let e = classify("org.Foo.7zip").unwrap_err();
        assert!(matches!(e, NameError::BadFlatpakId { .. }), "{e:?}");
        assert!(e.to_string().contains("\"7zip\""), "{e}");
        let e = classify("org.my-app.Thing").unwrap_err();
        assert!(e.to_string().contains("only the last part"), "{e}");
        let e = classify("org..Thing").unwrap_err();
        assert!(e.to_string().contains("empty part"), "{e}");
        assert!(validate_flatpak_id("org.gnome").is_err());
        assert!(validate_flatpak_id("org.gnome.Calculator").is_ok());
    }

    #[test]
    fn messages_are_one_line() {
        for s in ["a\nb", "-\n", "x;\ny", "Foo\nBar", &"long ".repeat(100)] {
            let e = classify(s).unwrap_err().to_string();
            assert!(!e.contains('\n'), "{e:?}");
            assert!(e.len() < 300, "{e}");
        }
    }

    #[test]
    fn target_serializes_for_json() {
        let v = serde_json::to_value(classify("extra/firefox").unwrap()).unwrap();
        assert_eq!(
            v,
            serde_json::json!({"kind": "package", "repo": "extra", "name": "firefox"})
        );
        let v = serde_json::to_value(classify("org.gnome.Calculator").unwrap()).unwrap();
        assert_eq!(
            v,
            serde_json::json!({"kind": "flatpak_app", "id": "org.gnome.Calculator"})
        );
    }

    fn shell_char() -> impl Strategy<Value = char> {
        prop::sample::select("$;|&`<>(){}*?!'\"\\ \n\t".chars().collect::<Vec<_>>())
    }

    proptest! {
        /// Whatever is accepted prints back to exactly what was typed, and classifies again
        /// to the same target.
        #[test]
        fn prop_accepted_names_round_trip(s in "[a-zA-Z0-9@._+/-]{0,40}") {
            if let Ok(t) = classify(&s) {
                prop_assert_eq!(t.to_string(), s.clone());
                prop_assert_eq!(classify(&t.to_string()), Ok(t));
            }
        }

        /// Arbitrary text: never a panic, and anything accepted round-trips.
        #[test]
        fn prop_any_text(s in any::<String>()) {
            if let Ok(t) = classify(&s) {
                prop_assert_eq!(t.to_string(), s);
            }
        }

        /// Valid Arch package names are always accepted as packages (when they do not carry a
        /// reverse-DNS prefix, which may make them application IDs).
        #[test]
        fn prop_valid_package_names_accepted(
            s in "[a-z0-9@_+][a-z0-9@._+-]{0,60}",
            repo in proptest::option::of("[a-z0-9_][a-z0-9_-]{0,12}"),
        ) {
            prop_assume!(!FLATPAK_PREFIXES.iter().any(|p| s.starts_with(p)));
            let typed = match &repo {
                Some(r) => format!("{r}/{s}"),
                None => s.clone(),
            };
            prop_assert_eq!(classify(&typed), Ok(Target::Package { repo, name: s }));
        }

        /// Nothing with shell syntax or whitespace in it is ever accepted, wherever it is.
        #[test]
        fn prop_shell_syntax_never_accepted(
            before in "[a-zA-Z0-9._/-]{0,20}",
            ch in shell_char(),
            after in "[a-zA-Z0-9._/-]{0,20}",
        ) {
            let s = format!("{before}{ch}{after}");
            prop_assert!(classify(&s).is_err(), "accepted {:?}", s);
        }

        /// Valid application IDs are accepted as such.
        #[test]
        fn prop_valid_flatpak_ids(
            parts in prop::collection::vec("[A-Za-z_][A-Za-z0-9_]{0,10}", 2..5),
            last in "[A-Z][A-Za-z0-9_-]{0,10}",
        ) {
            let id = format!("{}.{last}", parts.join("."));
            prop_assert_eq!(classify(&id), Ok(Target::FlatpakApp { id: id.clone() }));
        }
    }
}
