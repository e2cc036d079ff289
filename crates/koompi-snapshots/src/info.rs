//! Reading and writing snapper's `info.xml`.
//!
//! snapper keeps one `info.xml` next to every snapshot (`.snapshots/N/info.xml`). This module
//! turns that file into a [`SnapshotInfo`] and back, in the exact layout snapper 0.10 writes,
//! so that snapper, snap-pac and grub-btrfs can read what KOOMPI writes and vice versa.
//!
//! Reading follows snapper's own reader: the first occurrence of each element counts, unknown
//! elements are ignored (forward compatibility), `<pre_num>` is only read for `post`
//! snapshots and `<userdata>` entries with an empty key are dropped. Text values are kept
//! exactly as written (entities and CDATA resolved, line endings normalised as XML requires);
//! only the indentation between elements is not part of any value.

use std::collections::BTreeMap;

use chrono::NaiveDateTime;
use quick_xml::events::Event;
use quick_xml::Reader;

use crate::model::{Cleanup, SnapshotInfo, SnapshotType};

/// The date format snapper writes in `<date>` (UTC).
pub const DATE_FORMAT: &str = "%Y-%m-%d %H:%M:%S";

/// Why an `info.xml` could not be read.
#[derive(Debug, thiserror::Error)]
pub enum InfoError {
    /// The text is not well-formed XML.
    #[error("not XML: {0}")]
    NotXml(String),
    /// The document element is not `<snapshot>`.
    #[error("root element is <{0}>, not <snapshot>")]
    WrongRoot(String),
    /// A required element (`type`, `num`, `date`) is absent.
    #[error("missing <{0}>")]
    Missing(&'static str),
    /// `<type>` is not `single`, `pre` or `post`.
    #[error("invalid <type> {0:?}")]
    InvalidType(String),
    /// A numeric element (`num`, `uid`, `pre_num`) is not an unsigned 32-bit number.
    #[error("invalid <{element}> {value:?}")]
    InvalidNumber {
        element: &'static str,
        value: String,
    },
    /// `<date>` is not `YYYY-MM-DD HH:MM:SS`.
    #[error("invalid <date> {0:?}")]
    InvalidDate(String),
    /// Snapshot 0 is the live system and never has an `info.xml`.
    #[error("num 0 is invalid")]
    ZeroNum,
}

/// The single-valued children of `<snapshot>` this module knows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Field {
    Type,
    Num,
    Date,
    Uid,
    PreNum,
    Description,
    Cleanup,
}

impl Field {
    const ALL: [Field; 7] = [
        Field::Type,
        Field::Num,
        Field::Date,
        Field::Uid,
        Field::PreNum,
        Field::Description,
        Field::Cleanup,
    ];

    fn name(self) -> &'static str {
        match self {
            Field::Type => "type",
            Field::Num => "num",
            Field::Date => "date",
            Field::Uid => "uid",
            Field::PreNum => "pre_num",
            Field::Description => "description",
            Field::Cleanup => "cleanup",
        }
    }

    fn from_name(name: &[u8]) -> Option<Self> {
        Field::ALL
            .into_iter()
            .find(|field| field.name().as_bytes() == name)
    }

    fn index(self) -> usize {
        self as usize
    }
}

/// Where the text currently being read belongs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Target {
    /// Indentation, unknown elements, or a repeated field: dropped.
    Nowhere,
    Field(Field),
    UserKey,
    UserValue,
}

/// One `<userdata>` element while it is being read.
#[derive(Debug, Default)]
struct PendingUserdata {
    key: Option<String>,
    value: Option<String>,
}

/// Everything collected from the document before it is validated.
#[derive(Debug, Default)]
struct Collected {
    fields: [Option<String>; 7],
    userdata: BTreeMap<String, String>,
}

/// Reads the whole document into [`Collected`], checking well-formedness and the root.
fn collect(text: &str) -> Result<Collected, InfoError> {
    let mut reader = Reader::from_str(text);
    {
        let config = reader.config_mut();
        config.trim_text(false);
        config.check_end_names = true;
        config.expand_empty_elements = true;
    }

    let mut out = Collected::default();
    // Names of the open elements, outermost first.
    let mut stack: Vec<Vec<u8>> = Vec::new();
    let mut seen_root = false;
    // Text of the value element being read (a field, or a userdata key/value).
    let mut target = Target::Nowhere;
    let mut buffer = String::new();
    let mut pending: Option<PendingUserdata> = None;

    loop {
        let event = reader
            .read_event()
            .map_err(|e| InfoError::NotXml(one_line(&e.to_string())))?;
        match event {
            Event::Start(start) => {
                let name = start.name().as_ref().to_vec();
                match stack.len() {
                    0 => {
                        if seen_root {
                            return Err(not_xml("more than one root element"));
                        }
                        seen_root = true;
                        if name != b"snapshot" {
                            return Err(InfoError::WrongRoot(lossy(&name)));
                        }
                    }
                    1 => {
                        if name == b"userdata" {
                            pending = Some(PendingUserdata::default());
                        } else if let Some(field) = Field::from_name(&name) {
                            // snapper reads the first occurrence of an element only.
                            if out.fields[field.index()].is_none() {
                                target = Target::Field(field);
                                buffer.clear();
                            }
                        }
                    }
                    2 if stack[1] == b"userdata" => {
                        if let Some(pending) = &pending {
                            if name == b"key" && pending.key.is_none() {
                                target = Target::UserKey;
                                buffer.clear();
                            } else if name == b"value" && pending.value.is_none() {
                                target = Target::UserValue;
                                buffer.clear();
                            }
                        }
                    }
                    _ => {}
                }
                stack.push(name);
            }
            Event::End(_) => {
                // quick-xml has already checked that the name matches the open element.
                let depth = stack.len();
                let Some(name) = stack.pop() else {
                    return Err(not_xml("closing tag without an opening tag"));
                };
                match (depth, target) {
                    (2, Target::Field(field)) => {
                        out.fields[field.index()] = Some(std::mem::take(&mut buffer));
                        target = Target::Nowhere;
                    }
                    (3, Target::UserKey) => {
                        if let Some(pending) = &mut pending {
                            pending.key = Some(std::mem::take(&mut buffer));
                        }
                        target = Target::Nowhere;
                    }
                    (3, Target::UserValue) => {
                        if let Some(pending) = &mut pending {
                            pending.value = Some(std::mem::take(&mut buffer));
                        }
                        target = Target::Nowhere;
                    }
                    _ => {}
                }
                if depth == 2 && name == b"userdata" {
                    if let Some(done) = pending.take() {
                        let key = done.key.unwrap_or_default();
                        if !key.is_empty() {
                            out.userdata.insert(key, done.value.unwrap_or_default());
                        }
                    }
                }
            }
            Event::Empty(_) => {
                // Not produced: `expand_empty_elements` turns `<a/>` into Start + End.
            }
            Event::Text(raw) => {
                let raw = std::str::from_utf8(&raw)
                    .map_err(|e| InfoError::NotXml(one_line(&e.to_string())))?;
                if stack.is_empty() {
                    if !raw.chars().all(is_xml_space) {
                        return Err(not_xml("text outside the root element"));
                    }
                    continue;
                }
                if target != Target::Nowhere {
                    let normalised = normalise_newlines(raw);
                    let text = quick_xml::escape::unescape(&normalised)
                        .map_err(|e| InfoError::NotXml(one_line(&e.to_string())))?;
                    buffer.push_str(&text);
                } else {
                    // Still reject bad entities anywhere in the document.
                    quick_xml::escape::unescape(raw)
                        .map_err(|e| InfoError::NotXml(one_line(&e.to_string())))?;
                }
            }
            Event::CData(data) => {
                if stack.is_empty() {
                    return Err(not_xml("CDATA outside the root element"));
                }
                if target != Target::Nowhere {
                    let raw = std::str::from_utf8(&data)
                        .map_err(|e| InfoError::NotXml(one_line(&e.to_string())))?;
                    buffer.push_str(&normalise_newlines(raw));
                }
            }
            Event::Comment(_) | Event::Decl(_) | Event::PI(_) | Event::DocType(_) => {}
            Event::Eof => break,
        }
    }

    if let Some(open) = stack.last() {
        return Err(InfoError::NotXml(format!(
            "document ends inside <{}>",
            lossy(open)
        )));
    }
    if !seen_root {
        return Err(not_xml("no root element"));
    }
    Ok(out)
}

/// Parses the text of an `info.xml`.
pub fn parse(text: &str) -> Result<SnapshotInfo, InfoError> {
    let mut collected = collect(text)?;
    let mut take = |field: Field| collected.fields[field.index()].take();

    let kind_text = take(Field::Type).ok_or(InfoError::Missing("type"))?;
    let kind = SnapshotType::parse(kind_text.trim()).ok_or(InfoError::InvalidType(kind_text))?;

    let num_text = take(Field::Num).ok_or(InfoError::Missing("num"))?;
    let num = parse_number("num", num_text)?;
    if num == 0 {
        return Err(InfoError::ZeroNum);
    }

    let date_text = take(Field::Date).ok_or(InfoError::Missing("date"))?;
    let date = NaiveDateTime::parse_from_str(date_text.trim(), DATE_FORMAT)
        .map_err(|_| InfoError::InvalidDate(date_text))?;

    let uid = match take(Field::Uid) {
        Some(text) => parse_number("uid", text)?,
        None => 0,
    };

    // Like snapper, `<pre_num>` only means something for post snapshots.
    let pre_num_text = take(Field::PreNum);
    let pre_num = match (kind, pre_num_text) {
        (SnapshotType::Post, Some(text)) => Some(parse_number("pre_num", text)?),
        _ => None,
    };

    let description = take(Field::Description).unwrap_or_default();
    let cleanup = Cleanup::parse(&take(Field::Cleanup).unwrap_or_default());

    Ok(SnapshotInfo {
        num,
        kind,
        date,
        uid,
        pre_num,
        description,
        cleanup,
        userdata: collected.userdata,
    })
}

/// Writes `info` in snapper's layout: XML declaration, two-space indentation, elements in
/// snapper's order, optional elements left out the way snapper leaves them out, and a
/// trailing newline.
///
/// Text is escaped as libxml2 escapes it (`&`, `<`, `>` and carriage returns). Characters
/// that XML 1.0 cannot carry at all (C0 controls other than tab, line feed and carriage
/// return, and U+FFFE/U+FFFF) are replaced by U+FFFD so the file stays readable by snapper.
pub fn to_xml(info: &SnapshotInfo) -> String {
    let mut out = String::with_capacity(256);
    out.push_str("<?xml version=\"1.0\"?>\n<snapshot>\n");
    element(&mut out, 1, "type", info.kind.as_str());
    element(&mut out, 1, "num", &info.num.to_string());
    element(
        &mut out,
        1,
        "date",
        &info.date.format(DATE_FORMAT).to_string(),
    );
    if info.uid != 0 {
        element(&mut out, 1, "uid", &info.uid.to_string());
    }
    if info.kind == SnapshotType::Post {
        if let Some(pre_num) = info.pre_num {
            element(&mut out, 1, "pre_num", &pre_num.to_string());
        }
    }
    if !info.description.is_empty() {
        element(&mut out, 1, "description", &info.description);
    }
    if info.cleanup != Cleanup::None {
        element(&mut out, 1, "cleanup", info.cleanup.as_str());
    }
    for (key, value) in &info.userdata {
        out.push_str("  <userdata>\n");
        element(&mut out, 2, "key", key);
        element(&mut out, 2, "value", value);
        out.push_str("  </userdata>\n");
    }
    out.push_str("</snapshot>\n");
    out
}

/// Appends `<name>text</name>` (or `<name/>` when empty, as libxml2 writes it) on its own
/// line at `level` steps of two spaces.
fn element(out: &mut String, level: usize, name: &str, text: &str) {
    for _ in 0..level {
        out.push_str("  ");
    }
    out.push('<');
    out.push_str(name);
    if text.is_empty() {
        out.push_str("/>\n");
        return;
    }
    out.push('>');
    escape_into(out, text);
    out.push_str("</");
    out.push_str(name);
    out.push_str(">\n");
}

fn escape_into(out: &mut String, text: &str) {
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '\r' => out.push_str("&#13;"),
            '\t' | '\n' => out.push(c),
            c if (c as u32) < 0x20 || c == '\u{FFFE}' || c == '\u{FFFF}' => {
                out.push(char::REPLACEMENT_CHARACTER)
            }
            c => out.push(c),
        }
    }
}

fn parse_number(element: &'static str, text: String) -> Result<u32, InfoError> {
    // snapper reads numbers with `>>`, which skips surrounding whitespace.
    match text.trim().parse::<u32>() {
        Ok(n) => Ok(n),
        Err(_) => Err(InfoError::InvalidNumber {
            element,
            value: text,
        }),
    }
}

/// XML end-of-line handling: `\r\n` and lone `\r` become `\n` (a `&#13;` reference survives
/// because this runs before entities are resolved).
fn normalise_newlines(raw: &str) -> std::borrow::Cow<'_, str> {
    if raw.contains('\r') {
        std::borrow::Cow::Owned(raw.replace("\r\n", "\n").replace('\r', "\n"))
    } else {
        std::borrow::Cow::Borrowed(raw)
    }
}

fn is_xml_space(c: char) -> bool {
    matches!(c, ' ' | '\t' | '\n' | '\r')
}

fn not_xml(message: &str) -> InfoError {
    InfoError::NotXml(message.to_owned())
}

fn lossy(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// Keeps error messages on one line whatever the underlying error prints.
fn one_line(message: &str) -> String {
    message.split_whitespace().collect::<Vec<_>>().join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::NaiveDate;
    use proptest::prelude::*;

    const SNAPPER_EXAMPLE: &str = "<?xml version=\"1.0\"?>
<snapshot>
  <type>single</type>
  <num>1</num>
  <date>2026-11-21 23:15:21</date>
  <description>hello</description>
  <cleanup>number</cleanup>
  <userdata>
    <key>important</key>
    <value>yes</value>
  </userdata>
  <userdata>
    <key>name</key>
    <value>foo</value>
  </userdata>
</snapshot>
";

    fn date(y: i32, m: u32, d: u32, h: u32, min: u32, s: u32) -> NaiveDateTime {
        NaiveDate::from_ymd_opt(y, m, d)
            .and_then(|day| day.and_hms_opt(h, min, s))
            .expect("valid test date")
    }

    fn example_info() -> SnapshotInfo {
        SnapshotInfo {
            num: 1,
            kind: SnapshotType::Single,
            date: date(2026, 11, 21, 23, 15, 21),
            uid: 0,
            pre_num: None,
            description: "hello".into(),
            cleanup: Cleanup::Number,
            userdata: [("important", "yes"), ("name", "foo")]
                .into_iter()
                .map(|(k, v)| (k.to_owned(), v.to_owned()))
                .collect(),
        }
    }

    fn minimal(body: &str) -> String {
        format!("<?xml version=\"1.0\"?>\n<snapshot>\n{body}</snapshot>\n")
    }

    #[test]
    fn parses_snapper_example() {
        let info = parse(SNAPPER_EXAMPLE).expect("parse");
        assert_eq!(info, example_info());
        assert!(info.is_important());
        assert_eq!(info.name(), Some("foo"));
    }

    #[test]
    fn writes_snapper_layout_byte_for_byte() {
        assert_eq!(to_xml(&example_info()), SNAPPER_EXAMPLE);
    }

    #[test]
    fn writes_optional_elements_in_snapper_order() {
        let info = SnapshotInfo {
            num: 43,
            kind: SnapshotType::Post,
            date: date(2024, 1, 2, 3, 4, 5),
            uid: 1000,
            pre_num: Some(42),
            description: String::new(),
            cleanup: Cleanup::None,
            userdata: BTreeMap::new(),
        };
        assert_eq!(
            to_xml(&info),
            "<?xml version=\"1.0\"?>
<snapshot>
  <type>post</type>
  <num>43</num>
  <date>2024-01-02 03:04:05</date>
  <uid>1000</uid>
  <pre_num>42</pre_num>
</snapshot>
"
        );
    }

    #[test]
    fn round_trips_rich_record() {
        let info = SnapshotInfo {
            num: 1234,
            kind: SnapshotType::Post,
            date: date(1999, 12, 31, 23, 59, 59),
            uid: 1000,
            pre_num: Some(1233),
            description: "a < b && c > d \"quoted\" 'single' សួស្តី\n  second line ]]>".into(),
            cleanup: Cleanup::Number,
            userdata: [
                ("name", "ពិភពលោក"),
                ("important", "yes"),
                ("k&y", "<v>"),
                ("empty", ""),
                ("spaces", "  padded  "),
                ("cr", "a\r\nb\rc"),
            ]
            .into_iter()
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .collect(),
        };
        let xml = to_xml(&info);
        assert!(xml.contains("a &lt; b &amp;&amp; c &gt; d"));
        assert!(xml.contains("<value/>"));
        assert_eq!(parse(&xml).expect("parse"), info);
    }

    #[test]
    fn pre_snapshot_writes_no_pre_num() {
        let mut info = example_info();
        info.kind = SnapshotType::Pre;
        info.pre_num = Some(7);
        let xml = to_xml(&info);
        assert!(!xml.contains("pre_num"));
        assert_eq!(parse(&xml).expect("parse").pre_num, None);
    }

    #[test]
    fn resolves_entities_cdata_and_comments() {
        let xml = minimal(
            "  <type>pre</type>\n  <num> 7 </num>\n  <!-- a comment -->\n  <date>2020-02-29 12:00:00</date>\n  <uid>42</uid>\n  <pre_num>3</pre_num>\n  <description>&amp;&lt;&gt;&quot;&apos;&#65;&#x1780;<![CDATA[<raw & text>]]> end</description>\n",
        );
        let info = parse(&xml).expect("parse");
        assert_eq!(info.kind, SnapshotType::Pre);
        assert_eq!(info.num, 7);
        assert_eq!(info.uid, 42);
        assert_eq!(info.pre_num, None, "pre_num is only read for post");
        assert_eq!(info.description, "&<>\"'Aក<raw & text> end");
        assert_eq!(info.cleanup, Cleanup::None);
        assert!(info.userdata.is_empty());
    }

    #[test]
    fn keeps_value_whitespace_exactly() {
        let xml = minimal(
            "<type>single</type><num>2</num><date>2020-01-01 00:00:00</date><description>  two\n lines  </description>",
        );
        assert_eq!(parse(&xml).expect("parse").description, "  two\n lines  ");
    }

    #[test]
    fn ignores_unknown_elements_and_attributes() {
        let xml = minimal(
            "  <future attr=\"x\"><num>99</num><nested>text</nested></future>\n  <type>single</type>\n  <num>5</num>\n  <date>2020-01-01 00:00:00</date>\n  <future2/>\n  <userdata>\n    <key>a</key>\n    <extra>ignored</extra>\n    <value>b</value>\n  </userdata>\n  <userdata><value>no key</value></userdata>\n",
        );
        let info = parse(&xml).expect("parse");
        assert_eq!(info.num, 5);
        assert_eq!(info.userdata.len(), 1);
        assert_eq!(info.userdata.get("a").map(String::as_str), Some("b"));
    }

    #[test]
    fn first_occurrence_wins() {
        let xml = minimal(
            "<type>single</type><num>5</num><num>6</num><date>2020-01-01 00:00:00</date><description>first</description><description>second</description>",
        );
        let info = parse(&xml).expect("parse");
        assert_eq!(info.num, 5);
        assert_eq!(info.description, "first");
    }

    #[test]
    fn missing_required_elements() {
        let no_num = minimal("<type>single</type><date>2020-01-01 00:00:00</date>");
        let err = parse(&no_num).expect_err("no num");
        assert!(matches!(err, InfoError::Missing("num")));
        assert_eq!(err.to_string(), "missing <num>");

        let no_type = minimal("<num>1</num><date>2020-01-01 00:00:00</date>");
        assert_eq!(
            parse(&no_type).expect_err("no type").to_string(),
            "missing <type>"
        );

        let no_date = minimal("<type>single</type><num>1</num>");
        assert_eq!(
            parse(&no_date).expect_err("no date").to_string(),
            "missing <date>"
        );

        let empty_root = "<snapshot/>";
        assert!(matches!(
            parse(empty_root).expect_err("empty"),
            InfoError::Missing("type")
        ));
    }

    #[test]
    fn bad_values() {
        let bad_date = minimal("<type>single</type><num>1</num><date>yesterday</date>");
        let err = parse(&bad_date).expect_err("bad date");
        assert!(matches!(err, InfoError::InvalidDate(_)));
        assert_eq!(err.to_string(), "invalid <date> \"yesterday\"");

        let bad_type = minimal("<type>x</type><num>1</num><date>2020-01-01 00:00:00</date>");
        let err = parse(&bad_type).expect_err("bad type");
        assert!(matches!(err, InfoError::InvalidType(_)));
        assert_eq!(err.to_string(), "invalid <type> \"x\"");

        let bad_num = minimal("<type>single</type><num>-1</num><date>2020-01-01 00:00:00</date>");
        assert_eq!(
            parse(&bad_num).expect_err("bad num").to_string(),
            "invalid <num> \"-1\""
        );

        let zero = minimal("<type>single</type><num>0</num><date>2020-01-01 00:00:00</date>");
        let err = parse(&zero).expect_err("zero");
        assert!(matches!(err, InfoError::ZeroNum));
        assert_eq!(err.to_string(), "num 0 is invalid");

        let bad_uid = minimal(
            "<type>single</type><num>1</num><date>2020-01-01 00:00:00</date><uid>root</uid>",
        );
        assert!(matches!(
            parse(&bad_uid).expect_err("bad uid"),
            InfoError::InvalidNumber { element: "uid", .. }
        ));

        let bad_pre = minimal(
            "<type>post</type><num>2</num><date>2020-01-01 00:00:00</date><pre_num>x</pre_num>",
        );
        assert!(matches!(
            parse(&bad_pre).expect_err("bad pre_num"),
            InfoError::InvalidNumber {
                element: "pre_num",
                ..
            }
        ));
    }

    #[test]
    fn wrong_root() {
        let err = parse("<?xml version=\"1.0\"?>\n<foo><num>1</num></foo>\n").expect_err("root");
        assert!(matches!(err, InfoError::WrongRoot(_)));
        assert_eq!(err.to_string(), "root element is <foo>, not <snapshot>");
    }

    #[test]
    fn not_xml() {
        for text in [
            "",
            "   \n",
            "hello world",
            "<snapshot><type>single</type>",
            "<snapshot><type>single</num></snapshot>",
            "<snapshot><description>a & b</description></snapshot>",
            "<snapshot><description>&bogus;</description></snapshot>",
            "<snapshot></snapshot><snapshot></snapshot>",
            "<snapshot></snapshot> trailing",
            "{\"num\": 1}",
        ] {
            let err = parse(text).expect_err(text);
            assert!(matches!(err, InfoError::NotXml(_)), "{text:?} gave {err:?}");
            let message = err.to_string();
            assert!(message.starts_with("not XML: "), "{message}");
            assert!(!message.contains('\n'), "{message:?}");
        }
    }

    #[test]
    fn unrepresentable_characters_are_replaced() {
        let mut info = example_info();
        info.description = "bell\u{7}tab\tend".into();
        let parsed = parse(&to_xml(&info)).expect("parse");
        assert_eq!(parsed.description, "bell\u{FFFD}tab\tend");
    }

    fn arb_date() -> impl Strategy<Value = NaiveDateTime> {
        (
            1970i32..=9999,
            1u32..=12,
            1u32..=28,
            0u32..24,
            0u32..60,
            0u32..60,
        )
            .prop_map(|(y, m, d, h, min, s)| date(y, m, d, h, min, s))
    }

    fn arb_kind() -> impl Strategy<Value = SnapshotType> {
        prop_oneof![
            Just(SnapshotType::Single),
            Just(SnapshotType::Pre),
            Just(SnapshotType::Post),
        ]
    }

    proptest! {
        #[test]
        fn round_trip(
            num in 1u32..,
            kind in arb_kind(),
            date in arb_date(),
            uid in any::<u32>(),
            pre in proptest::option::of(any::<u32>()),
            description in "\\PC{0,40}",
            cleanup in "\\PC{0,12}",
            userdata in proptest::collection::btree_map(
                "[^,=\\p{C}]{1,16}",
                "\\PC{0,24}",
                0..5,
            ),
        ) {
            let info = SnapshotInfo {
                num,
                kind,
                date,
                uid,
                pre_num: if kind == SnapshotType::Post { pre } else { None },
                description,
                cleanup: Cleanup::parse(&cleanup),
                userdata,
            };
            let xml = to_xml(&info);
            prop_assert!(xml.ends_with("</snapshot>\n"));
            let parsed = parse(&xml);
            prop_assert!(parsed.is_ok(), "{:?}\n{}", parsed, xml);
            prop_assert_eq!(parsed.ok(), Some(info));
        }
    }
}
