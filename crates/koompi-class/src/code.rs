//! The join code: the secret a teacher shows and a student types to join a class.
//!
//! A code is a number below 10^12 (log2(10^12) = 39.86 bits), drawn from the OS's CSPRNG,
//! shown two ways that mean the same number: five words from [`WORDS`] (base 256, the first
//! word is one of the first 233) such as `bamboo-lemon-mango-river-owl`, or twelve digits
//! grouped `123-456-789-012`. The code never goes on the wire: the handshake proves it
//! ([`crate::join`]), the teacher's rate limit stops online guessing, and the key derivation
//! (PBKDF2) slows an offline search of a recorded handshake (docs/decisions.md, 70-71).
//!
//! [`JoinCode::parse`] is lenient about what a child types: case, spaces, dashes, dots or
//! commas between words, Khmer digits (០-៩) for digits, and one wrong, missing or extra letter
//! in a word (the list's words are at least three edits apart, so one slip cannot turn a word
//! into another). Its error names the bad word in one line.

use std::fmt;

/// How many words a code has.
pub const WORD_COUNT: usize = 5;
/// How many digits a code has.
pub const DIGIT_COUNT: usize = 12;
/// Codes are below this (10^12): the digit form's range, which five words also cover.
pub const CODE_LIMIT: u64 = 1_000_000_000_000;
/// The code's entropy in bits: log2(10^12).
pub const CODE_BITS: f64 = 39.86;

/// The 256 code words: common, concrete English nouns a Cambodian pupil meets in the first
/// English lessons, 3 to 7 lowercase letters, no two sharing their first three letters and
/// every two at least three edits apart (no homophone or one-letter pair such as cat/hat).
/// Sorted; a word's index is its value. Changing the list changes every code: never reorder.
pub const WORDS: [&str; 256] = [
    "acid", "adult", "album", "anchor", "angel", "animal", "answer", "ant", "apple", "army",
    "arrow", "artist", "attic", "autumn", "avocado", "baby", "bacon", "badge", "balloon", "bamboo",
    "banana", "basket", "beach", "bed", "berry", "blossom", "blue", "boat", "bottle", "brick",
    "brush", "bubble", "buffalo", "butter", "cabbage", "cake", "camera", "candle", "captain",
    "carpet", "cereal", "chair", "cheese", "chicken", "cinema", "circle", "city", "clock",
    "coconut", "coffee", "comb", "cookie", "corner", "cotton", "cousin", "crown", "cup", "cushion",
    "daisy", "dance", "dentist", "desk", "diamond", "dinner", "doctor", "dog", "dolphin", "domino",
    "donkey", "dragon", "drum", "eagle", "ear", "elbow", "empty", "energy", "engine", "eraser",
    "evening", "family", "feather", "fish", "flag", "flower", "forest", "fossil", "friend",
    "fruit", "funny", "future", "galaxy", "garden", "gecko", "ghost", "gift", "glass", "glove",
    "gold", "gorilla", "grape", "guava", "guitar", "hammer", "harbor", "hero", "hill", "hippo",
    "holiday", "horse", "hotel", "iceberg", "igloo", "insect", "island", "ivory", "jaguar",
    "jasmine", "jeans", "jelly", "jigsaw", "juice", "kayak", "kernel", "kidney", "king", "kitten",
    "knee", "koala", "ladder", "lamp", "lantern", "laptop", "lemon", "library", "lizard",
    "lobster", "lotus", "lunch", "lychee", "magnet", "mammal", "mango", "marble", "meadow",
    "melody", "metal", "mirror", "monsoon", "moon", "morning", "mother", "muffin", "music",
    "napkin", "nectar", "needle", "night", "number", "oasis", "ocean", "octopus", "office",
    "omelet", "onion", "opera", "orange", "orchid", "ostrich", "owl", "palm", "panda", "paper",
    "parcel", "peanut", "pencil", "piano", "picnic", "pigeon", "pillow", "pirate", "pizza",
    "pocket", "pony", "popcorn", "potato", "prince", "pumpkin", "puppy", "purple", "queen",
    "quilt", "rabbit", "raccoon", "radish", "rain", "rescue", "ribbon", "riddle", "river", "robot",
    "sailor", "salad", "saucer", "scarf", "school", "season", "seven", "ship", "sister", "skate",
    "sketch", "sky", "sleep", "smile", "snail", "snow", "sofa", "soldier", "spider", "spring",
    "squid", "sticker", "stone", "street", "sugar", "sunset", "swan", "sweater", "tablet",
    "tadpole", "taxi", "teapot", "temple", "thumb", "today", "tongue", "tooth", "tractor",
    "trumpet", "tulip", "tuna", "turkey", "uncle", "unicorn", "valley", "velvet", "violin",
    "volcano", "walnut", "whale", "wheel", "window", "yogurt", "yoyo", "zebra", "zipper",
];

/// Why what was typed is not a code. Each message is one line a student can act on.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CodeError {
    #[error("the code is empty: type the {WORD_COUNT} words (or {DIGIT_COUNT} digits) the teacher shows")]
    Empty,
    #[error(
        "\"{word}\" (word {position}) is not one of the code words: check the teacher's screen"
    )]
    UnknownWord { word: String, position: usize },
    #[error("a code has {WORD_COUNT} words; this has {0}")]
    WordCount(usize),
    #[error("a code has {DIGIT_COUNT} digits; this has {0}")]
    DigitCount(usize),
    #[error("\"{0}\" mixes digits and letters: type either the words or the digits")]
    Mixed(String),
    #[error("\"{0}\" cannot be the first word of a code: check the teacher's screen")]
    OutOfRange(String),
    #[error("no random numbers from the system: {0}")]
    Random(String),
}

/// A join code. Its `Debug` does not show it (it must not land in logs).
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct JoinCode(u64);

impl fmt::Debug for JoinCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("JoinCode(<secret>)")
    }
}

impl JoinCode {
    /// A fresh code from the OS's CSPRNG, uniform below [`CODE_LIMIT`] (rejection sampling
    /// of 40-bit numbers).
    pub fn generate() -> Result<Self, CodeError> {
        loop {
            let mut bytes = [0u8; 8];
            getrandom::fill(&mut bytes[3..]).map_err(|e| CodeError::Random(e.to_string()))?;
            if let Some(code) = Self::from_value(u64::from_be_bytes(bytes)) {
                return Ok(code);
            }
        }
    }

    /// The code with this value, if it is below [`CODE_LIMIT`].
    pub fn from_value(value: u64) -> Option<Self> {
        (value < CODE_LIMIT).then_some(Self(value))
    }

    /// The code's number.
    pub fn value(&self) -> u64 {
        self.0
    }

    /// The word form, lowercase, joined with dashes: `bamboo-lemon-mango-river-owl`.
    pub fn words(&self) -> String {
        let bytes = self.0.to_be_bytes();
        bytes[3..]
            .iter()
            .map(|b| WORDS[usize::from(*b)])
            .collect::<Vec<_>>()
            .join("-")
    }

    /// The digit form, grouped by three: `012-345-678-901`.
    pub fn digits(&self) -> String {
        let s = format!("{:012}", self.0);
        let groups: Vec<&str> = (0..4).map(|i| &s[i * 3..i * 3 + 3]).collect();
        groups.join("-")
    }

    /// The bytes the key derivation takes: the twelve digits, whichever form was typed.
    pub fn secret(&self) -> String {
        format!("{:012}", self.0)
    }

    /// Reads a code as typed: words or digits, any case, separated by spaces, dashes,
    /// underscores, dots or commas (digits may also run together), Khmer digits allowed, one
    /// slipped letter per word forgiven.
    pub fn parse(input: &str) -> Result<Self, CodeError> {
        // What a phone shows after scanning the QR code (`crate::qr`), pasted whole.
        let trimmed = input.trim();
        let input = trimmed
            .get(..13)
            .filter(|p| p.eq_ignore_ascii_case("koompi class:"))
            .map_or(trimmed, |_| &trimmed[13..]);
        let normal: String = input
            .chars()
            .map(|c| match c {
                '\u{17E0}'..='\u{17E9}' => char::from(b'0' + (u32::from(c) - 0x17E0) as u8),
                '-' | '_' | '.' | ',' | '\u{2013}' | '\u{2014}' => ' ',
                c => c.to_ascii_lowercase(),
            })
            .collect();
        let tokens: Vec<&str> = normal.split_whitespace().collect();
        if tokens.is_empty() {
            return Err(CodeError::Empty);
        }
        if tokens.iter().all(|t| t.chars().all(|c| c.is_ascii_digit())) {
            let digits: String = tokens.concat();
            if digits.len() != DIGIT_COUNT {
                return Err(CodeError::DigitCount(digits.len()));
            }
            let value = digits
                .parse::<u64>()
                .map_err(|_| CodeError::DigitCount(digits.len()))?;
            return Self::from_value(value).ok_or(CodeError::DigitCount(digits.len()));
        }
        if let Some(t) = tokens
            .iter()
            .find(|t| t.chars().any(|c| c.is_ascii_digit()))
        {
            return Err(CodeError::Mixed((*t).to_string()));
        }
        if tokens.len() != WORD_COUNT {
            return Err(CodeError::WordCount(tokens.len()));
        }
        let mut value = 0u64;
        for (i, token) in tokens.iter().enumerate() {
            let index = word_index(token).ok_or_else(|| CodeError::UnknownWord {
                word: (*token).to_string(),
                position: i + 1,
            })?;
            value = value << 8 | index as u64;
        }
        Self::from_value(value).ok_or_else(|| CodeError::OutOfRange(tokens[0].to_string()))
    }
}

/// The index of the list word `token` is, or is one slip (one letter wrong, missing or extra)
/// away from.
pub fn word_index(token: &str) -> Option<usize> {
    if let Ok(i) = WORDS.binary_search(&token) {
        return Some(i);
    }
    let mut near = WORDS
        .iter()
        .enumerate()
        .filter(|(_, w)| edit_distance(token, w) <= 1);
    match (near.next(), near.next()) {
        (Some((i, _)), None) => Some(i),
        _ => None,
    }
}

/// Levenshtein distance (bytes), for forgiving one slipped letter.
pub fn edit_distance(a: &str, b: &str) -> usize {
    let b = b.as_bytes();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.bytes().enumerate() {
        let mut prev = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let cur = row[j + 1];
            row[j + 1] = (prev + usize::from(ca != *cb)).min(row[j] + 1).min(cur + 1);
            prev = cur;
        }
    }
    row[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn the_list_is_sorted_distinct_and_unambiguous() {
        for pair in WORDS.windows(2) {
            assert!(pair[0] < pair[1], "{} before {}", pair[0], pair[1]);
        }
        for (i, a) in WORDS.iter().enumerate() {
            assert!((3..=7).contains(&a.len()), "{a}");
            assert!(a.bytes().all(|c| c.is_ascii_lowercase()), "{a}");
            for b in &WORDS[i + 1..] {
                assert_ne!(a[..3], b[..3], "{a} and {b} share their start");
                assert!(edit_distance(a, b) >= 3, "{a} and {b} are too close");
            }
        }
    }

    #[test]
    fn the_entropy_is_what_the_docs_say() {
        assert!(((CODE_LIMIT as f64).log2() - CODE_BITS).abs() < 0.01);
        assert!(256f64.powi(WORD_COUNT as i32) >= CODE_LIMIT as f64);
    }

    #[test]
    fn lenient_parsing() -> Result<(), CodeError> {
        let code = JoinCode::from_value(123_456_789_012).ok_or(CodeError::Empty)?;
        let words = code.words();
        assert_eq!(JoinCode::parse(&words)?, code);
        assert_eq!(
            JoinCode::parse(&words.to_uppercase().replace('-', "  "))?,
            code
        );
        assert_eq!(JoinCode::parse(" 123 456-789.012 ")?, code);
        assert_eq!(JoinCode::parse("123456789012")?, code);
        assert_eq!(JoinCode::parse("១២៣-៤៥៦-៧៨៩-០១២")?, code);
        assert_eq!(code.digits(), "123-456-789-012");
        // One slipped letter per word is forgiven.
        let slipped = words
            .replacen("ocean", "ocan", 1)
            .replacen("apple", "aple", 1);
        assert_eq!(JoinCode::parse(&slipped)?, code);
        Ok(())
    }

    #[test]
    fn errors_name_the_bad_word() {
        let err = JoinCode::parse("apple banana zzzz ocean mango").err();
        assert_eq!(
            err.map(|e| e.to_string()),
            Some(
                "\"zzzz\" (word 3) is not one of the code words: check the teacher's screen".into()
            )
        );
        assert_eq!(
            JoinCode::parse("apple banana"),
            Err(CodeError::WordCount(2))
        );
        assert_eq!(JoinCode::parse("12345"), Err(CodeError::DigitCount(5)));
        assert_eq!(JoinCode::parse(" - "), Err(CodeError::Empty));
        assert_eq!(
            JoinCode::parse("apple 12 ocean"),
            Err(CodeError::Mixed("12".into()))
        );
        // zipper is word 255: no code starts above word 232.
        assert!(matches!(
            JoinCode::parse("zipper apple apple apple apple"),
            Err(CodeError::OutOfRange(_))
        ));
        assert!(!format!("{:?}", JoinCode::from_value(7)).contains('7'));
    }

    #[test]
    fn generated_codes_differ() -> Result<(), CodeError> {
        let a = JoinCode::generate()?;
        let b = JoinCode::generate()?;
        assert!(a.value() < CODE_LIMIT);
        assert_ne!(a, b, "two 40-bit draws agreeing: the CSPRNG is not used");
        Ok(())
    }

    proptest! {
        #[test]
        fn both_forms_round_trip(value in 0..CODE_LIMIT) {
            let code = JoinCode::from_value(value).ok_or(CodeError::Empty);
            prop_assert!(code.is_ok());
            let code = code.map_err(|e| TestCaseError::fail(e.to_string()))?;
            prop_assert_eq!(JoinCode::parse(&code.words()), Ok(code));
            prop_assert_eq!(JoinCode::parse(&code.digits()), Ok(code));
            prop_assert_eq!(code.words().split('-').count(), WORD_COUNT);
        }

        #[test]
        fn a_slipped_letter_never_reads_as_another_word(i in 0usize..256, pos in 0usize..7, c in b'a'..=b'z') {
            let word = WORDS[i];
            let mut typo = word.as_bytes().to_vec();
            let pos = pos % typo.len();
            typo[pos] = c;
            let typo = String::from_utf8(typo).map_err(|e| TestCaseError::fail(e.to_string()))?;
            prop_assert_eq!(word_index(&typo), Some(i));
        }
    }
}
