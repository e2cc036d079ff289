//! What the user wants installed: the answers, from a TOML file or the command line.
//!
//! Every key of the file equals a long flag of `koompi-install` (`disk = "/dev/vdb"` is
//! `--disk /dev/vdb`), as coreos-installer does, so a fleet's answer file and one
//! person's command line are the same thing. Unknown keys and invalid values are refused
//! with one line naming the key, before anything is touched. Secrets are never answers:
//! `password-file` and `passphrase-file` name the file (or `-`, standard input) that holds
//! them, so the answers can be printed, logged and planned without leaking anything.

use std::fmt;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

/// The hostname when none is given.
pub const DEFAULT_HOSTNAME: &str = "koompi";
/// The locale when none is given.
pub const DEFAULT_LOCALE: &str = "en_US.UTF-8";
/// The console keyboard layout when none is given.
pub const DEFAULT_KEYBOARD: &str = "us";
/// The timezone when none is given (and none can be detected).
pub const DEFAULT_TIMEZONE: &str = "Asia/Phnom_Penh";
/// The user's login shell when none is given.
pub const DEFAULT_SHELL: &str = "/bin/bash";

/// The locales the installer offers first; any other well-formed UTF-8 locale is accepted
/// and checked against the target's list when it is generated.
pub const OFFERED_LOCALES: &[&str] = &[
    "en_US.UTF-8",
    "km_KH.UTF-8",
    "en_GB.UTF-8",
    "fr_FR.UTF-8",
    "th_TH.UTF-8",
    "vi_VN.UTF-8",
    "zh_CN.UTF-8",
];

/// The keyboard layouts the installer offers first (XKB names; `kh` is Khmer).
pub const OFFERED_KEYBOARDS: &[&str] = &["us", "kh", "fr", "gb", "th", "vn"];

/// User names the installer refuses: they belong to the system.
const RESERVED_USERS: &[&str] = &[
    "root",
    "bin",
    "daemon",
    "mail",
    "ftp",
    "http",
    "nobody",
    "dbus",
    "polkitd",
    "systemd-network",
    "systemd-resolve",
    "systemd-timesync",
    "systemd-coredump",
    "uuidd",
    "git",
    "avahi",
];

/// Which disk to install on: a device path, or a rule for fleets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DiskChoice {
    /// A device path (`/dev/sda`, `/dev/disk/by-id/...`).
    Path(String),
    /// The largest disk that is not removable, not USB, not the boot medium and not in
    /// use; refused when two such disks are equally large.
    LargestInternal,
}

/// A device path under /dev for `key`, or its one-line refusal.
fn check_device_path(key: &str, s: &str) -> Result<(), AnswerError> {
    let ok = s.starts_with("/dev/")
        && s.len() > "/dev/".len()
        && !s.split('/').any(|c| c == "..")
        && !s.chars().any(|c| c.is_control() || c.is_whitespace());
    if ok {
        Ok(())
    } else {
        Err(AnswerError::new(
            key,
            format!("`{s}` is not a device path under /dev"),
        ))
    }
}

impl DiskChoice {
    /// The rule's name in answer files.
    pub const LARGEST_INTERNAL: &'static str = "largest-internal";

    /// Reads `--disk`/`disk =`: a path under /dev, or a rule name.
    pub fn parse(s: &str) -> Result<DiskChoice, AnswerError> {
        if s == Self::LARGEST_INTERNAL {
            return Ok(DiskChoice::LargestInternal);
        }
        if !s.starts_with("/dev/") || s.len() <= "/dev/".len() {
            return Err(AnswerError::new(
                "disk",
                format!(
                    "`{s}` is neither a device path under /dev nor the rule `{}`",
                    Self::LARGEST_INTERNAL
                ),
            ));
        }
        if s.split('/').any(|c| c == "..") || s.chars().any(char::is_control) {
            return Err(AnswerError::new(
                "disk",
                format!("`{s}` is not a device path"),
            ));
        }
        Ok(DiskChoice::Path(s.to_string()))
    }
}

impl fmt::Display for DiskChoice {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DiskChoice::Path(p) => f.write_str(p),
            DiskChoice::LargestInternal => f.write_str(Self::LARGEST_INTERNAL),
        }
    }
}

impl Serialize for DiskChoice {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for DiskChoice {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        DiskChoice::parse(&s).map_err(|e| serde::de::Error::custom(e.why))
    }
}

/// Where the base system comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Source {
    /// A copy of the running live system's root image (no network needed).
    Offline,
    /// pacstrap from the package repositories.
    Online,
}

/// What happens when the install has finished.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Finish {
    /// Stay in the live system (the default at the keyboard).
    #[default]
    Stay,
    /// Reboot into the installed system.
    Reboot,
    /// Power off (a fleet's laptops are then put away).
    Poweroff,
}

/// Everything the user decides. Keys are the long flags of `koompi-install`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case", default)]
pub struct Answers {
    /// The target disk (`--disk`): a path or `largest-internal`.
    pub disk: Option<DiskChoice>,
    /// Install into this existing partition instead of the whole disk
    /// (`--root-partition`): it is erased, the disk's other partitions are kept (another
    /// system beside KOOMPI OS). The disk is the one holding it.
    pub root_partition: Option<String>,
    /// The EFI system partition to boot from with `root-partition` (`--esp-partition`);
    /// by default the disk's only one. It is never formatted: other systems boot from it.
    pub esp_partition: Option<String>,
    /// The machine's name (`--hostname`).
    pub hostname: String,
    /// The first user's login name (`--user`), an administrator (wheel).
    pub user: Option<String>,
    /// The first user's full name (`--full-name`).
    pub full_name: Option<String>,
    /// A file holding the user's password, or `-` for standard input (`--password-file`).
    pub password_file: Option<PathBuf>,
    /// The user's login shell (`--shell`).
    pub shell: String,
    /// Encrypt the root partition with LUKS2 (`--encrypt`).
    pub encrypt: bool,
    /// A file holding the encryption passphrase, or `-` (`--passphrase-file`).
    pub passphrase_file: Option<PathBuf>,
    /// The system locale (`--locale`).
    pub locale: String,
    /// The console keyboard layout (`--keyboard`).
    pub keyboard: String,
    /// The timezone (`--timezone`), `Area/City` or `UTC`.
    pub timezone: String,
    /// Where the base system comes from (`--source`); offline when the live image is
    /// there, online otherwise.
    pub source: Option<Source>,
    /// What to do when done (`--finish`).
    pub finish: Finish,
    /// Install without asking for the disk to be typed back (`--yes`).
    pub yes: bool,
}

impl Default for Answers {
    fn default() -> Self {
        Answers {
            disk: None,
            root_partition: None,
            esp_partition: None,
            hostname: DEFAULT_HOSTNAME.into(),
            user: None,
            full_name: None,
            password_file: None,
            shell: DEFAULT_SHELL.into(),
            encrypt: false,
            passphrase_file: None,
            locale: DEFAULT_LOCALE.into(),
            keyboard: DEFAULT_KEYBOARD.into(),
            timezone: DEFAULT_TIMEZONE.into(),
            source: None,
            finish: Finish::Stay,
            yes: false,
        }
    }
}

/// A refused answer: the key and why, as one line.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}{why}", key_prefix(key, *line))]
pub struct AnswerError {
    /// The key (equal to the flag without `--`); empty when the file itself is unreadable.
    pub key: String,
    /// The line of the answer file, when known.
    pub line: Option<usize>,
    pub why: String,
}

fn key_prefix(key: &str, line: Option<usize>) -> String {
    match (key.is_empty(), line) {
        (true, Some(l)) => format!("line {l}: "),
        (true, None) => String::new(),
        (false, Some(l)) => format!("line {l}, `{key}`: "),
        (false, None) => format!("`{key}`: "),
    }
}

impl AnswerError {
    pub fn new(key: &str, why: impl Into<String>) -> AnswerError {
        AnswerError {
            key: key.into(),
            line: None,
            why: why.into(),
        }
    }
}

impl Answers {
    /// Reads an answer file's text and checks every value ([`Answers::check`]).
    pub fn from_toml(text: &str) -> Result<Answers, AnswerError> {
        let answers: Answers = toml::from_str(text).map_err(|e| toml_error(text, &e))?;
        answers.check()?;
        Ok(answers)
    }

    /// The answers as an answer file (what the TUI saves for a fleet).
    pub fn to_toml(&self) -> String {
        toml::to_string(self).unwrap_or_default()
    }

    /// Checks every value; the first refusal, naming its key.
    pub fn check(&self) -> Result<(), AnswerError> {
        check_hostname(&self.hostname)?;
        if let Some(u) = &self.user {
            check_user(u)?;
        }
        if let Some(n) = &self.full_name {
            if n.contains(':') || n.chars().any(char::is_control) {
                return Err(AnswerError::new(
                    "full-name",
                    "must not contain `:` or control characters",
                ));
            }
        }
        if !self.shell.starts_with('/') || self.shell.chars().any(char::is_whitespace) {
            return Err(AnswerError::new(
                "shell",
                format!("`{}` is not an absolute path", self.shell),
            ));
        }
        check_locale(&self.locale)?;
        check_keyboard(&self.keyboard)?;
        check_timezone(&self.timezone)?;
        for (key, value) in [
            ("root-partition", &self.root_partition),
            ("esp-partition", &self.esp_partition),
        ] {
            if let Some(v) = value {
                check_device_path(key, v)?;
            }
        }
        if self.esp_partition.is_some() && self.root_partition.is_none() {
            return Err(AnswerError::new(
                "esp-partition",
                "given without `root-partition` (a whole-disk install makes its own)",
            ));
        }
        if self.root_partition.is_some() && self.disk == Some(DiskChoice::LargestInternal) {
            return Err(AnswerError::new(
                "root-partition",
                format!(
                    "cannot go with `disk = \"{}\"`: the partition names its disk",
                    DiskChoice::LARGEST_INTERNAL
                ),
            ));
        }
        if self.root_partition.is_some() && self.root_partition == self.esp_partition {
            return Err(AnswerError::new(
                "esp-partition",
                "is the root partition; the EFI system partition is another one",
            ));
        }
        if self.password_file.is_some() && self.user.is_none() {
            return Err(AnswerError::new(
                "password-file",
                "given without `user`: whose password is it?",
            ));
        }
        if self.passphrase_file.is_some() && !self.encrypt {
            return Err(AnswerError::new(
                "passphrase-file",
                "given without `encrypt = true`",
            ));
        }
        if self.password_file.is_some()
            && self.password_file == self.passphrase_file
            && self.password_file.as_deref() == Some(std::path::Path::new("-"))
        {
            return Err(AnswerError::new(
                "passphrase-file",
                "standard input can hold only one secret; give one of them as a file",
            ));
        }
        Ok(())
    }

    /// Checks that nothing is left to ask: an unattended install (`--yes`, an answer file
    /// found at boot) needs the disk, a user with a password, and a passphrase file when
    /// encrypting.
    pub fn check_unattended(&self) -> Result<(), AnswerError> {
        self.check()?;
        if self.disk.is_none() && self.root_partition.is_none() {
            return Err(AnswerError::new(
                "disk",
                format!(
                    "missing: name the disk (`/dev/...`) or `{}`",
                    DiskChoice::LARGEST_INTERNAL
                ),
            ));
        }
        let Some(user) = &self.user else {
            return Err(AnswerError::new(
                "user",
                "missing: the first user's login name",
            ));
        };
        if self.password_file.is_none() {
            return Err(AnswerError::new(
                "password-file",
                format!("missing: a file holding {user}'s password, or `-` for standard input"),
            ));
        }
        if self.encrypt && self.passphrase_file.is_none() {
            return Err(AnswerError::new(
                "passphrase-file",
                "missing: `encrypt = true` needs a file holding the passphrase",
            ));
        }
        Ok(())
    }
}

/// One line from a TOML or serde error: the line, the key and the message.
fn toml_error(text: &str, e: &toml::de::Error) -> AnswerError {
    let msg = e.message().trim().replace('\n', " ");
    let (line, key) = match e.span() {
        Some(span) => {
            let line_no = text[..span.start.min(text.len())].matches('\n').count() + 1;
            let line_text = text.lines().nth(line_no - 1).unwrap_or("");
            let key = line_text
                .split_once('=')
                .map(|(k, _)| k.trim().trim_matches('"').to_string())
                .filter(|k| !k.is_empty() && !k.contains(char::is_whitespace))
                .unwrap_or_default();
            (Some(line_no), key)
        }
        None => (None, String::new()),
    };
    AnswerError {
        key,
        line,
        why: msg,
    }
}

/// RFC 1123 host name label: 1–63 of `a-z`, `0-9`, `-`, not starting or ending with `-`.
pub fn check_hostname(h: &str) -> Result<(), AnswerError> {
    let bad = |why: String| Err(AnswerError::new("hostname", why));
    if h.is_empty() || h.len() > 63 {
        return bad(format!("`{h}` must be 1 to 63 characters long"));
    }
    if !h.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-') {
        return bad(format!(
            "`{h}` may hold only letters a-z, digits and `-` (no spaces or dots)"
        ));
    }
    if h.starts_with('-') || h.ends_with('-') {
        return bad(format!("`{h}` must not start or end with `-`"));
    }
    if h.bytes().any(|b| b.is_ascii_uppercase()) {
        return bad(format!(
            "`{h}` has capital letters; use `{}`",
            h.to_ascii_lowercase()
        ));
    }
    Ok(())
}

/// A login name: starts with a letter or `_`, then up to 31 of `a-z0-9_-`; not a
/// system account.
pub fn check_user(u: &str) -> Result<(), AnswerError> {
    let bad = |why: String| Err(AnswerError::new("user", why));
    let mut bytes = u.bytes();
    let first_ok = bytes
        .next()
        .is_some_and(|b| b.is_ascii_lowercase() || b == b'_');
    if !first_ok
        || u.len() > 32
        || !bytes.all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-')
    {
        return bad(format!(
            "`{u}` is not a login name: start with a letter a-z, then up to 31 of a-z, 0-9, \
             `_`, `-`"
        ));
    }
    if RESERVED_USERS.contains(&u) {
        return bad(format!("`{u}` belongs to the system; choose another name"));
    }
    Ok(())
}

/// `ll_CC.UTF-8` (with an optional `@modifier`): KOOMPI generates UTF-8 locales only.
pub fn check_locale(l: &str) -> Result<(), AnswerError> {
    let (base, modifier) = l.split_once('@').unwrap_or((l, ""));
    let ok = base.strip_suffix(".UTF-8").is_some_and(|lang| {
        let (ll, cc) = lang.split_once('_').unwrap_or((lang, ""));
        (2..=3).contains(&ll.len())
            && ll.bytes().all(|b| b.is_ascii_lowercase())
            && (cc.is_empty() || (cc.len() == 2 && cc.bytes().all(|b| b.is_ascii_uppercase())))
    }) && modifier.bytes().all(|b| b.is_ascii_alphanumeric());
    if ok {
        Ok(())
    } else {
        Err(AnswerError::new(
            "locale",
            format!(
                "`{l}` is not a UTF-8 locale such as {}",
                OFFERED_LOCALES[..2].join(" or ")
            ),
        ))
    }
}

/// An XKB layout name, optionally with a variant: `us`, `kh`, `fr(azerty)`.
pub fn check_keyboard(k: &str) -> Result<(), AnswerError> {
    let (layout, variant) = match k.split_once('(') {
        Some((l, v)) => match v.strip_suffix(')') {
            Some(v) => (l, v),
            None => ("", ""),
        },
        None => (k, "x"),
    };
    let word = |s: &str| {
        !s.is_empty()
            && s.bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-')
    };
    if word(layout) && word(variant) {
        Ok(())
    } else {
        Err(AnswerError::new(
            "keyboard",
            format!("`{k}` is not a keyboard layout such as `us` or `kh`"),
        ))
    }
}

/// `UTC` or `Area/City[/More]` of letters, digits, `_`, `-`, `+`; whether the zone exists
/// is checked in the target's zoneinfo.
pub fn check_timezone(t: &str) -> Result<(), AnswerError> {
    let part_ok = |p: &str| {
        !p.is_empty()
            && p != "."
            && p != ".."
            && p.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-' || b == b'+')
    };
    if t == "UTC" || (t.contains('/') && t.split('/').all(part_ok)) {
        Ok(())
    } else {
        Err(AnswerError::new(
            "timezone",
            format!("`{t}` is not a timezone such as `{DEFAULT_TIMEZONE}` or `UTC`"),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err(text: &str) -> String {
        Answers::from_toml(text).expect_err("refused").to_string()
    }

    #[test]
    fn a_full_answer_file_reads() {
        let a = Answers::from_toml(
            "disk = \"largest-internal\"\nhostname = \"lab-07\"\nuser = \"student\"\n\
             password-file = \"/run/pw\"\nencrypt = true\npassphrase-file = \"-\"\n\
             locale = \"km_KH.UTF-8\"\nkeyboard = \"kh\"\ntimezone = \"Asia/Phnom_Penh\"\n\
             source = \"offline\"\nfinish = \"poweroff\"\nyes = true\n",
        )
        .expect("valid");
        assert_eq!(a.disk, Some(DiskChoice::LargestInternal));
        assert_eq!(a.finish, Finish::Poweroff);
        a.check_unattended().expect("complete");
        // What is saved reads back the same.
        assert_eq!(Answers::from_toml(&a.to_toml()).expect("round trip"), a);
    }

    #[test]
    fn an_empty_file_is_the_defaults() {
        let a = Answers::from_toml("").expect("defaults");
        assert_eq!(a, Answers::default());
        assert_eq!(
            a.check_unattended().expect_err("no disk").to_string(),
            "`disk`: missing: name the disk (`/dev/...`) or `largest-internal`"
        );
    }

    #[test]
    fn unknown_keys_are_named_with_their_line() {
        let e = err("hostname = \"a\"\nhostnme = \"b\"\n");
        assert!(
            e.starts_with("line 2, `hostnme`: unknown field `hostnme`"),
            "{e}"
        );
        assert!(!e.contains('\n'), "{e}");
    }

    #[test]
    fn wrong_types_are_named_with_their_line() {
        let e = err("encrypt = \"yes\"\n");
        assert!(e.starts_with("line 1, `encrypt`: "), "{e}");
        assert!(!e.contains('\n'), "{e}");
        let e = err("disk = \"sda\"\n");
        assert!(e.contains("`disk`"), "{e}");
        assert!(e.contains("neither a device path"), "{e}");
        let e = err("finish = \"halt\"\n");
        assert!(
            e.starts_with("line 1, `finish`: unknown variant `halt`"),
            "{e}"
        );
    }

    #[test]
    fn invalid_values_are_refused_by_key() {
        for (text, key) in [
            ("hostname = \"Lab 7\"", "hostname"),
            ("hostname = \"Lab7\"", "hostname"),
            ("hostname = \"-lab\"", "hostname"),
            ("user = \"root\"", "user"),
            ("user = \"7up\"", "user"),
            ("locale = \"km_KH\"", "locale"),
            ("keyboard = \"US\"", "keyboard"),
            ("timezone = \"../../etc/passwd\"", "timezone"),
            ("shell = \"bash\"", "shell"),
            ("password-file = \"/p\"", "password-file"),
            ("passphrase-file = \"/p\"", "passphrase-file"),
            ("full-name = \"a:b\"", "full-name"),
        ] {
            let e = err(text);
            assert!(e.starts_with(&format!("`{key}`: ")), "{text}: {e}");
        }
    }

    #[test]
    fn good_values_pass() {
        check_hostname("koompi-lab-07").expect("hostname");
        check_user("student_1").expect("user");
        check_locale("km_KH.UTF-8").expect("locale");
        check_locale("sr_RS.UTF-8@latin").expect("locale with modifier");
        check_keyboard("fr(azerty)").expect("keyboard");
        check_timezone("America/Argentina/Buenos_Aires").expect("zone");
        check_timezone("UTC").expect("utc");
        for l in OFFERED_LOCALES {
            check_locale(l).expect("offered locale");
        }
        for k in OFFERED_KEYBOARDS {
            check_keyboard(k).expect("offered layout");
        }
    }

    #[test]
    fn stdin_holds_one_secret_only() {
        let e =
            err("user = \"a\"\npassword-file = \"-\"\nencrypt = true\npassphrase-file = \"-\"\n");
        assert!(e.starts_with("`passphrase-file`: standard input"), "{e}");
    }

    #[test]
    fn unattended_needs_a_password_and_a_passphrase() {
        let mut a = Answers {
            disk: Some(DiskChoice::Path("/dev/vdb".into())),
            user: Some("student".into()),
            ..Answers::default()
        };
        let e = a.check_unattended().expect_err("no password").to_string();
        assert!(e.starts_with("`password-file`: missing"), "{e}");
        a.password_file = Some("/pw".into());
        a.encrypt = true;
        let e = a.check_unattended().expect_err("no passphrase").to_string();
        assert!(e.starts_with("`passphrase-file`: missing"), "{e}");
    }
}
