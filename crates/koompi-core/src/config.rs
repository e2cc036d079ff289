//! Shell-style `KEY="value"` files, as snapper reads them.
//!
//! snapper's per-volume configs (`/etc/snapper/configs/root`) and `/etc/default/snapper` are
//! sysconfig files: one assignment per line, `#` comments, values in double quotes, single
//! quotes or bare. This module follows snapper's `AsciiFile`/`SysconfigFile` rules:
//!
//! * every line is trimmed; empty lines and lines starting with `#` are ignored;
//! * otherwise the line is `KEY=VALUE` with `KEY` matching `[A-Za-z_][A-Za-z0-9_]*`;
//! * `VALUE` is `"..."` (where `\"` and `\\` are escapes), `'...'` (literal), or a bare word
//!   without whitespace or quotes (possibly empty); after the value only whitespace or a
//!   `#` comment may follow;
//! * a later assignment to the same key wins.
//!
//! Anything else is a [`ConfigError::Syntax`] naming the 1-based line. The original lines are
//! kept so a file can later be rewritten without losing comments or layout.

/// Why a config file could not be read.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// A line that is neither empty, a comment, nor a valid assignment.
    #[error("line {line}: {message}")]
    Syntax { line: usize, message: String },
}

/// One variable: its key, its (last assigned) value, and the index of the line that
/// assigned it.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Var {
    key: String,
    value: String,
    line: usize,
}

/// The variables of a shell-style config file, in the order they first appear, together
/// with the file's original lines.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ShellVars {
    lines: Vec<String>,
    vars: Vec<Var>,
}

impl ShellVars {
    /// Parses the text of a config file.
    pub fn parse(text: &str) -> Result<ShellVars, ConfigError> {
        let mut out = ShellVars::default();
        for (index, raw) in text.lines().enumerate() {
            out.lines.push(raw.to_owned());
            let line = raw.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let (key, value) = parse_assignment(line).map_err(|message| ConfigError::Syntax {
                line: index + 1,
                message,
            })?;
            match out.vars.iter_mut().find(|var| var.key == key) {
                Some(var) => {
                    var.value = value;
                    var.line = index;
                }
                None => out.vars.push(Var {
                    key: key.to_owned(),
                    value,
                    line: index,
                }),
            }
        }
        Ok(out)
    }

    /// The value of `key`, if the file assigns it.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.vars
            .iter()
            .find(|var| var.key == key)
            .map(|var| var.value.as_str())
    }

    /// The keys, in the order they first appear in the file.
    pub fn keys(&self) -> impl Iterator<Item = &str> {
        self.vars.iter().map(|var| var.key.as_str())
    }

    /// `(key, value)` pairs, in the order the keys first appear in the file.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.vars
            .iter()
            .map(|var| (var.key.as_str(), var.value.as_str()))
    }

    /// The 1-based line number of the assignment that gives `key` its value.
    pub fn line_of(&self, key: &str) -> Option<usize> {
        self.vars
            .iter()
            .find(|var| var.key == key)
            .map(|var| var.line + 1)
    }

    /// The file's original lines, untrimmed and without line terminators.
    pub fn lines(&self) -> impl Iterator<Item = &str> {
        self.lines.iter().map(String::as_str)
    }

    /// The number of distinct keys.
    pub fn len(&self) -> usize {
        self.vars.len()
    }

    /// Whether the file assigns nothing.
    pub fn is_empty(&self) -> bool {
        self.vars.is_empty()
    }
}

/// Parses one trimmed, non-comment line into its key and value.
fn parse_assignment(line: &str) -> Result<(&str, String), String> {
    let Some((key, rest)) = line.split_once('=') else {
        return Err(format!("expected KEY=VALUE, found {line:?}"));
    };
    if !is_valid_key(key) {
        return Err(format!("invalid key {key:?}"));
    }
    let (value, after) = if let Some(inner) = rest.strip_prefix('"') {
        parse_double_quoted(inner)?
    } else if let Some(inner) = rest.strip_prefix('\'') {
        let Some(end) = inner.find('\'') else {
            return Err(format!("unterminated single quote in value of {key}"));
        };
        (inner[..end].to_owned(), &inner[end + 1..])
    } else {
        let end = rest.find(char::is_whitespace).unwrap_or(rest.len());
        let word = &rest[..end];
        if word.contains(['"', '\'', '\\']) {
            return Err(format!(
                "unquoted value of {key} may not contain quotes or backslashes"
            ));
        }
        (word.to_owned(), &rest[end..])
    };
    let after = after.trim_start();
    if !after.is_empty() && !after.starts_with('#') {
        return Err(format!("unexpected text after value of {key}: {after:?}"));
    }
    Ok((key, value))
}

/// Reads a double-quoted value whose opening quote has been consumed; returns the value
/// and the text after the closing quote.
fn parse_double_quoted(inner: &str) -> Result<(String, &str), String> {
    let mut value = String::new();
    let mut chars = inner.char_indices();
    while let Some((i, c)) = chars.next() {
        match c {
            '"' => return Ok((value, &inner[i + 1..])),
            '\\' => match chars.next() {
                Some((_, escaped @ ('"' | '\\'))) => value.push(escaped),
                Some((_, other)) => {
                    value.push('\\');
                    value.push(other);
                }
                None => break,
            },
            c => value.push(c),
        }
    }
    Err("unterminated double quote".to_owned())
}

/// `[A-Za-z_][A-Za-z0-9_]*`
fn is_valid_key(key: &str) -> bool {
    let mut chars = key.chars();
    match chars.next() {
        Some(c) if c.is_ascii_alphabetic() || c == '_' => {}
        _ => return false,
    }
    chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

#[cfg(test)]
mod tests {
    use super::*;

    const KOOMPI_CONFIG: &str = "# KOOMPI OS Snapper Configuration
SUBVOLUME=\"/\"
FSTYPE=\"btrfs\"
TIMELINE_CREATE=\"yes\"
TIMELINE_LIMIT_DAILY=\"5\"
NUMBER_LIMIT=\"10\"
NUMBER_LIMIT_IMPORTANT=\"5\"
";

    fn parse(text: &str) -> ShellVars {
        ShellVars::parse(text).expect("valid config")
    }

    fn syntax_error(text: &str) -> (usize, String) {
        match ShellVars::parse(text) {
            Err(ConfigError::Syntax { line, message }) => (line, message),
            Ok(vars) => panic!("{text:?} parsed as {vars:?}"),
        }
    }

    #[test]
    fn koompi_config() {
        let vars = parse(KOOMPI_CONFIG);
        assert_eq!(vars.get("SUBVOLUME"), Some("/"));
        assert_eq!(vars.get("FSTYPE"), Some("btrfs"));
        assert_eq!(vars.get("TIMELINE_CREATE"), Some("yes"));
        assert_eq!(vars.get("TIMELINE_LIMIT_DAILY"), Some("5"));
        assert_eq!(vars.get("NUMBER_LIMIT"), Some("10"));
        assert_eq!(vars.get("NUMBER_LIMIT_IMPORTANT"), Some("5"));
        assert_eq!(vars.get("TIMELINE_LIMIT_HOURLY"), None);
        assert_eq!(
            vars.keys().collect::<Vec<_>>(),
            [
                "SUBVOLUME",
                "FSTYPE",
                "TIMELINE_CREATE",
                "TIMELINE_LIMIT_DAILY",
                "NUMBER_LIMIT",
                "NUMBER_LIMIT_IMPORTANT"
            ]
        );
        assert_eq!(vars.len(), 6);
        assert_eq!(vars.line_of("SUBVOLUME"), Some(2));
        assert_eq!(
            vars.lines().collect::<Vec<_>>(),
            KOOMPI_CONFIG.lines().collect::<Vec<_>>()
        );
    }

    #[test]
    fn empty_and_comment_only() {
        let vars = parse("\n   \n# only a comment\n\t# indented comment\n");
        assert!(vars.is_empty());
        assert_eq!(vars.keys().count(), 0);
        assert_eq!(vars.lines().count(), 4);
        assert_eq!(parse(""), ShellVars::default());
    }

    #[test]
    fn value_forms() {
        let vars = parse(concat!(
            "DQ=\"hello world\"\n",
            "ESC=\"say \\\"hi\\\" \\\\ done\"\n",
            "OTHER_BACKSLASH=\"a\\nb\"\n",
            "SQ='it is \"literal\" \\\\'\n",
            "BARE=word\n",
            "EMPTY=\n",
            "EMPTY_DQ=\"\"\n",
            "EMPTY_SQ=''\n",
            "HASH_IN_DQ=\"a # not a comment\"\n",
            "HASH_WORD=#x\n",
            "EQ=\"a=b\"\n",
            "KHMER=\"សួស្តី\"\n",
            "_under_score9=1\n",
        ));
        assert_eq!(vars.get("DQ"), Some("hello world"));
        assert_eq!(vars.get("ESC"), Some("say \"hi\" \\ done"));
        assert_eq!(vars.get("OTHER_BACKSLASH"), Some("a\\nb"));
        assert_eq!(vars.get("SQ"), Some("it is \"literal\" \\\\"));
        assert_eq!(vars.get("BARE"), Some("word"));
        assert_eq!(vars.get("EMPTY"), Some(""));
        assert_eq!(vars.get("EMPTY_DQ"), Some(""));
        assert_eq!(vars.get("EMPTY_SQ"), Some(""));
        assert_eq!(vars.get("HASH_IN_DQ"), Some("a # not a comment"));
        assert_eq!(vars.get("HASH_WORD"), Some("#x"));
        assert_eq!(vars.get("EQ"), Some("a=b"));
        assert_eq!(vars.get("KHMER"), Some("សួស្តី"));
        assert_eq!(vars.get("_under_score9"), Some("1"));
    }

    #[test]
    fn surrounding_whitespace_and_comments() {
        let vars = parse(concat!(
            "   INDENTED=\"x\"   \n",
            "COMMENTED=\"y\" # trailing comment\n",
            "TIGHT=\"z\"#comment\n",
            "BARE=w   # comment\n",
            "SQ='v'\t# comment\n",
            "EMPTY= # comment\n",
            "CRLF=\"c\"\r\n",
        ));
        assert_eq!(vars.get("INDENTED"), Some("x"));
        assert_eq!(vars.get("COMMENTED"), Some("y"));
        assert_eq!(vars.get("TIGHT"), Some("z"));
        assert_eq!(vars.get("BARE"), Some("w"));
        assert_eq!(vars.get("SQ"), Some("v"));
        assert_eq!(vars.get("EMPTY"), Some(""));
        assert_eq!(vars.get("CRLF"), Some("c"));
    }

    #[test]
    fn later_duplicate_wins_but_keeps_first_position() {
        let vars = parse("A=\"1\"\nB=\"2\"\nA=\"3\"\n");
        assert_eq!(vars.get("A"), Some("3"));
        assert_eq!(vars.keys().collect::<Vec<_>>(), ["A", "B"]);
        assert_eq!(vars.line_of("A"), Some(3));
        assert_eq!(vars.iter().collect::<Vec<_>>(), [("A", "3"), ("B", "2")]);
    }

    #[test]
    fn missing_equals() {
        let (line, message) = syntax_error("# comment\nA=1\nJUSTAWORD\n");
        assert_eq!(line, 3);
        assert!(message.contains("KEY=VALUE"), "{message}");
    }

    #[test]
    fn bad_keys() {
        for text in [
            "1ABC=x",
            "=x",
            "KEY =x",
            "A-B=x",
            "export A=x",
            "KÉY=x",
            "A.B=\"x\"",
        ] {
            let (line, message) = syntax_error(text);
            assert_eq!(line, 1, "{text}");
            assert!(message.starts_with("invalid key"), "{text}: {message}");
        }
    }

    #[test]
    fn unterminated_quotes() {
        let (line, message) = syntax_error("A=\"1\"\n\nB=\"open\n");
        assert_eq!(line, 3);
        assert!(message.contains("unterminated double quote"), "{message}");

        let (line, message) = syntax_error("C='open");
        assert_eq!(line, 1);
        assert!(message.contains("unterminated single quote"), "{message}");

        // A trailing backslash escapes the closing quote.
        let (line, _) = syntax_error("D=\"ends with \\\"");
        assert_eq!(line, 1);
    }

    #[test]
    fn trailing_garbage() {
        for text in [
            "KEY=\"a\" b",
            "KEY='a' b",
            "KEY=a b",
            "KEY=\"a\"\"b\"",
            "KEY=\"a\"b",
        ] {
            let (line, message) = syntax_error(text);
            assert_eq!(line, 1, "{text}");
            assert!(message.contains("after value"), "{text}: {message}");
        }
    }

    #[test]
    fn quotes_inside_bare_word() {
        for text in ["KEY=a\"b\"", "KEY=a'b'", "KEY=a\\b"] {
            let (line, message) = syntax_error(text);
            assert_eq!(line, 1, "{text}");
            assert!(message.contains("unquoted value"), "{text}: {message}");
        }
    }

    #[test]
    fn error_message_format() {
        let err = ShellVars::parse("OK=1\nnope\n").expect_err("syntax error");
        let text = err.to_string();
        assert!(text.starts_with("line 2: "), "{text}");
        assert!(!text.contains('\n'), "{text:?}");
    }
}
