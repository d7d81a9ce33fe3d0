//! Moses' `tokenizer.perl`, `lowercase.perl` and `clean-corpus-n.perl`, as fairseq's
//! `examples/translation/prepare-iwslt14.sh` runs them (`tokenizer.perl -threads 8 -l $l`,
//! `lowercase.perl`, `clean-corpus-n.perl -ratio 1.5 ... 1 175`).
//!
//! This module owns the line-level text rules only; reading and writing corpora is the caller's.
//! The tokenizer follows sacremoses 0.2.0 (the Python port of `tokenizer.perl`) rule for rule,
//! including its character classes: `moses_uniprops.txt` holds the exact Perl Unicode property
//! tables sacremoses uses (a Basic-Multilingual-Plane snapshot, so they are not the `regex`
//! crate's current `\p{..}` classes), and `nonbreaking_prefix.{de,en}` the Moses prefix lists.

use std::collections::HashSet;
use std::sync::LazyLock;

use anyhow::bail;
use regex::{Captures, Regex};

const UNIPROPS: &str = include_str!("moses_uniprops.txt");
const PREFIXES_DE: &str = include_str!("nonbreaking_prefix.de");
const PREFIXES_EN: &str = include_str!("nonbreaking_prefix.en");

/// The languages [`MosesTokenizer::new`] accepts.
pub const LANGUAGES: [&str; 2] = ["de", "en"];

/// One Perl Unicode property as sorted inclusive code-point ranges.
struct CharSet(Vec<(u32, u32)>);

impl CharSet {
    fn load(name: &str) -> Self {
        let mut ranges = Vec::new();
        for line in UNIPROPS.lines().filter(|l| !l.starts_with('#')) {
            let mut fields = line.split_whitespace();
            if fields.next() != Some(name) {
                continue;
            }
            for range in fields {
                let (a, b) = range
                    .split_once('-')
                    .expect("moses_uniprops.txt: FIRST-LAST");
                let hex = |s: &str| u32::from_str_radix(s, 16).expect("moses_uniprops.txt: hex");
                ranges.push((hex(a), hex(b)));
            }
        }
        assert!(!ranges.is_empty(), "moses_uniprops.txt lacks {name}");
        ranges.sort_unstable();
        CharSet(ranges)
    }

    fn contains(&self, c: char) -> bool {
        let c = c as u32;
        let i = self.0.partition_point(|&(_, last)| last < c);
        self.0.get(i).is_some_and(|&(first, _)| first <= c)
    }

    /// The body of a regex bracket class (`[` and `]` not included).
    fn class(&self) -> String {
        self.0
            .iter()
            .map(|&(a, b)| format!("\\x{{{a:X}}}-\\x{{{b:X}}}"))
            .collect()
    }
}

static IS_N: LazyLock<CharSet> = LazyLock::new(|| CharSet::load("IsN"));
static IS_ALNUM: LazyLock<CharSet> = LazyLock::new(|| CharSet::load("IsAlnum"));
static IS_ALPHA: LazyLock<CharSet> = LazyLock::new(|| CharSet::load("IsAlpha"));
static IS_LOWER: LazyLock<CharSet> = LazyLock::new(|| CharSet::load("IsLower"));

fn re(pattern: &str) -> Regex {
    Regex::new(pattern).unwrap_or_else(|e| panic!("moses regex {pattern:?}: {e}"))
}

/// Whitespace as Python's `\s` sees it: Unicode White_Space plus the separators U+1C..U+1F.
static SPACES: LazyLock<Regex> = LazyLock::new(|| re(r"[\s\x1C-\x1F]+"));
/// The remaining ASCII control characters, deleted.
static ASCII_JUNK: LazyLock<Regex> = LazyLock::new(|| re(r"[\x00-\x1F]"));
/// Anything outside IsAlnum, whitespace and `.'`,-` is padded with spaces.
static PAD_NOT_ALNUM: LazyLock<Regex> =
    LazyLock::new(|| re(&format!(r"([^{}\s.'`,\-])", IS_ALNUM.class())));
/// Runs of two or more dots, protected as `DOT..DOTMULTI` while periods are split.
static MULTIDOT: LazyLock<Regex> = LazyLock::new(|| re(r"\.{2,}"));
static MULTIDOT_MARKER: LazyLock<Regex> = LazyLock::new(|| re(r"(?:DOT)+MULTI"));
/// Commas are split off unless they sit between digits (5,300).
static COMMA_AFTER_NON_DIGIT: LazyLock<Regex> =
    LazyLock::new(|| re(&format!(r"([^{}]),", IS_N.class())));
static COMMA_BEFORE_NON_DIGIT: LazyLock<Regex> =
    LazyLock::new(|| re(&format!(r",([^{}])", IS_N.class())));
static COMMA_FINAL_AFTER_DIGIT: LazyLock<Regex> =
    LazyLock::new(|| re(&format!(r"([{}]),$", IS_N.class())));
/// English apostrophes, in order: both sides non-letters, opening quote, closing quote,
/// contraction (`don't` -> `don 't`), and the numeric possessive (`1990's` -> `1990 's`).
static EN_APOSTROPHES: LazyLock<[(Regex, &str); 5]> = LazyLock::new(|| {
    let (alpha, num) = (IS_ALPHA.class(), IS_N.class());
    [
        (re(&format!(r"([^{alpha}])'([^{alpha}])")), "${1} ' ${2}"),
        (
            re(&format!(r"([^{alpha}{num}])'([{alpha}])")),
            "${1} ' ${2}",
        ),
        (re(&format!(r"([{alpha}])'([^{alpha}])")), "${1} ' ${2}"),
        (re(&format!(r"([{alpha}])'([{alpha}])")), "${1} '${2}"),
        (re(&format!(r"([{num}])'(s)")), "${1} '${2}"),
    ]
});
/// A sentence-final `.'` is split as ` . ' ` (keeping sacremoses' trailing space).
static TRAILING_DOT_APOSTROPHE: LazyLock<Regex> = LazyLock::new(|| re(r"\.' ?$"));

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Lang {
    De,
    En,
}

/// tokenizer.perl -l LANG with its defaults (escaping on, no -a aggressive hyphen splitting,
/// no -penn).
#[derive(Debug, Clone)]
pub struct MosesTokenizer {
    lang: Lang,
    /// Prefixes after which a period never ends a sentence (`Dr`, `z.B`, ...).
    prefixes: HashSet<String>,
    /// Prefixes that keep their period only before a number (`No. 5`, `Art. 3`).
    numeric_only: HashSet<String>,
}

impl MosesTokenizer {
    /// `lang`: "de" or "en" (anything else: an error naming the valid languages).
    pub fn new(lang: &str) -> anyhow::Result<Self> {
        let (lang, list) = match lang {
            "de" => (Lang::De, PREFIXES_DE),
            "en" => (Lang::En, PREFIXES_EN),
            other => bail!(
                "Moses tokenizer: unsupported language {other:?} (valid: {})",
                LANGUAGES.join(", ")
            ),
        };
        // As sacremoses reads the lists: stripped non-empty lines not starting with '#'; a
        // line "WORD #NUMERIC_ONLY#" stays in the list as written and adds WORD (the text
        // before its last space) to the numeric-only set.
        let prefixes: HashSet<String> = list
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty() && !l.starts_with('#'))
            .map(String::from)
            .collect();
        static NUMERIC_ONLY: LazyLock<Regex> = LazyLock::new(|| re(r"\s#NUMERIC_ONLY#"));
        let numeric_only = prefixes
            .iter()
            .filter(|p| NUMERIC_ONLY.is_match(p))
            .map(|p| p.rsplit_once(' ').map_or("", |(head, _)| head).to_string())
            .collect();
        Ok(Self {
            lang,
            prefixes,
            numeric_only,
        })
    }

    /// One line in, one tokenized line out (tokens joined by single spaces, no trailing
    /// newline). As in tokenizer.perl, a line ending in `.'` keeps a trailing space.
    pub fn tokenize(&self, line: &str) -> String {
        // Whitespace runs become one space, control characters go, ends are trimmed.
        let text = SPACES.replace_all(line, " ");
        let text = ASCII_JUNK.replace_all(&text, "");
        let text = text.trim_matches(' ');
        // Special characters are split off.
        let text = PAD_NOT_ALNUM.replace_all(text, " ${1} ");
        // Dot runs are hidden from the period rules: k dots -> " " + "DOT"*k + "MULTI",
        // plus a space unless the run ends the line.
        let len = text.len();
        let text = MULTIDOT.replace_all(&text, |c: &Captures| {
            let m = c.get(0).expect("whole match");
            let tail = if m.end() < len { " " } else { "" };
            format!(" {}MULTI{tail}", "DOT".repeat(m.len()))
        });
        // Commas, except between digits.
        let text = COMMA_AFTER_NON_DIGIT.replace_all(&text, "${1} , ");
        let text = COMMA_BEFORE_NON_DIGIT.replace_all(&text, " , ${1}");
        let mut text = COMMA_FINAL_AFTER_DIGIT
            .replace_all(&text, "${1} , ")
            .into_owned();
        // Apostrophes: English rules; German splits every apostrophe off.
        match self.lang {
            Lang::En => {
                for (regex, rep) in EN_APOSTROPHES.iter() {
                    text = regex.replace_all(&text, *rep).into_owned();
                }
            }
            Lang::De => text = text.replace('\'', " ' "),
        }
        // Sentence periods, then whitespace is normalised again.
        let text = self.split_periods(&text);
        let text = SPACES.replace_all(&text, " ");
        let text = TRAILING_DOT_APOSTROPHE.replace(text.trim_matches(' '), " . ' ");
        let text = MULTIDOT_MARKER.replace_all(&text, |c: &Captures| {
            let m = c.get(0).expect("whole match");
            ".".repeat((m.len() - "MULTI".len()) / "DOT".len())
        });
        escape_xml(&text)
    }

    /// A token `X.` becomes `X .` unless the period is not a sentence end: X contains a period
    /// and a letter (`z.B.`, `U.S.`), X is a (non-numeric-only) prefix, or the next token starts
    /// with a lowercase letter; a numeric-only prefix keeps its period before an ASCII digit.
    fn split_periods(&self, text: &str) -> String {
        let tokens: Vec<&str> = text.split_whitespace().collect();
        let mut out = Vec::with_capacity(tokens.len());
        for (i, &token) in tokens.iter().enumerate() {
            let next = tokens.get(i + 1).copied();
            let split = match token.strip_suffix('.') {
                Some(prefix) if !prefix.is_empty() => {
                    let keep = (prefix.contains('.')
                        && prefix.chars().any(|c| IS_ALPHA.contains(c)))
                        || (self.prefixes.contains(prefix) && !self.numeric_only.contains(prefix))
                        || next
                            .and_then(|n| n.chars().next())
                            .is_some_and(|c| IS_LOWER.contains(c))
                        || (self.numeric_only.contains(prefix)
                            && next.is_some_and(|n| n.starts_with(|c: char| c.is_ascii_digit())));
                    (!keep).then_some(prefix)
                }
                _ => None,
            };
            match split {
                Some(prefix) => out.push(format!("{prefix} .")),
                None => out.push(token.to_string()),
            }
        }
        out.join(" ")
    }
}

/// Moses' XML escaping of the characters it reserves: `& | < > ' " [ ]`.
fn escape_xml(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '|' => out.push_str("&#124;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '\'' => out.push_str("&apos;"),
            '"' => out.push_str("&quot;"),
            '[' => out.push_str("&#91;"),
            ']' => out.push_str("&#93;"),
            c => out.push(c),
        }
    }
    out
}

/// lowercase.perl (Perl's `lc` on the whole line, Unicode-aware).
///
/// Each character takes its full lowercase mapping on its own, as Perl's `lc` does; unlike
/// Python's `str.lower()` (and Rust's `str::to_lowercase`) there is no word-final sigma rule,
/// so `Σ` always becomes `σ`.
pub fn lowercase(line: &str) -> String {
    line.chars().flat_map(char::to_lowercase).collect()
}

/// The longest word clean-corpus-n.perl keeps (its `-max-word-length` default), in characters.
pub const MAX_WORD_LENGTH: usize = 1000;

/// clean-corpus-n.perl -ratio RATIO ... MIN MAX on one sentence pair: None when the script drops
/// the pair, else the two lines as the script writes them (whitespace collapsed and trimmed).
///
/// Per side: `|` is deleted (the script does so unless the corpus' first line has one, i.e. is
/// factored; Moses-tokenized text has none, it is escaped as `&#124;`), whitespace runs become
/// one space and the ends are trimmed. The pair is dropped when either side is then empty, has
/// more than `max` or fewer than `min` words, when either word count exceeds `ratio` times the
/// other, or when either side has a word longer than [`MAX_WORD_LENGTH`] characters.
pub fn clean_pair(
    src: &str,
    tgt: &str,
    ratio: f64,
    min: usize,
    max: usize,
) -> Option<(String, String)> {
    fn normalise(line: &str) -> String {
        let line = line.replace('|', "");
        line.split_whitespace().collect::<Vec<_>>().join(" ")
    }
    let (src, tgt) = (normalise(src), normalise(tgt));
    if src.is_empty() || tgt.is_empty() {
        return None;
    }
    let words = |s: &str| s.split(' ').count();
    let (sc, tc) = (words(&src), words(&tgt));
    if sc > max || tc > max || sc < min || tc < min {
        return None;
    }
    if sc as f64 / tc as f64 > ratio || tc as f64 / sc as f64 > ratio {
        return None;
    }
    let too_long = |s: &str| s.split(' ').any(|w| w.chars().count() > MAX_WORD_LENGTH);
    if too_long(&src) || too_long(&tgt) {
        return None;
    }
    Some((src, tgt))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_language_is_an_error_naming_the_valid_ones() {
        let err = MosesTokenizer::new("fr").unwrap_err().to_string();
        assert!(err.contains("\"fr\"") && err.contains("de, en"), "{err}");
        assert!(MosesTokenizer::new("de").is_ok() && MosesTokenizer::new("en").is_ok());
    }

    #[test]
    fn tokenizes_a_few_known_lines() {
        let en = MosesTokenizer::new("en").unwrap();
        assert_eq!(
            en.tokenize("Dr. Smith doesn't pay $5,300."),
            "Dr. Smith doesn &apos;t pay $ 5,300 ."
        );
        assert_eq!(
            en.tokenize("  a|b <c> & \"d\" [e]... "),
            "a &#124; b &lt; c &gt; &amp; &quot; d &quot; &#91; e &#93; ..."
        );
        assert_eq!(
            en.tokenize("See No. 5 and No. More."),
            "See No. 5 and No . More ."
        );
        assert_eq!(en.tokenize("He said 'hi.'"), "He said &apos; hi . &apos; ");
        let de = MosesTokenizer::new("de").unwrap();
        assert_eq!(
            de.tokenize("Das ist z.B. Herrn Müllers Haus, usw."),
            "Das ist z.B. Herrn Müllers Haus , usw."
        );
        assert_eq!(de.tokenize("Geht's?"), "Geht &apos; s ?");
    }

    #[test]
    fn lowercase_is_per_character() {
        assert_eq!(lowercase("ÄÖÜ STRASSE ẞ İ"), "äöü strasse ß i\u{307}");
        assert_eq!(lowercase("ΟΔΟΣ"), "οδοσ");
    }

    #[test]
    fn clean_pair_normalises_kept_pairs() {
        assert_eq!(
            clean_pair("  a \t b  ", "c  d\u{a0}", 1.5, 1, 175),
            Some(("a b".to_string(), "c d".to_string()))
        );
        assert_eq!(
            clean_pair("a|b c", "d e", 1.5, 1, 175),
            Some(("ab c".into(), "d e".into()))
        );
    }

    #[test]
    fn clean_pair_drops_empty_sides() {
        assert_eq!(clean_pair("   ", "a", 1.5, 0, 175), None);
        assert_eq!(clean_pair("a", "\t", 1.5, 0, 175), None);
        assert_eq!(clean_pair("|", "a", 1.5, 0, 175), None);
    }

    #[test]
    fn clean_pair_drops_by_length() {
        let long = ["w"; 176].join(" ");
        assert_eq!(clean_pair(&long, &long, 1.5, 1, 175), None);
        let at_max = ["w"; 175].join(" ");
        assert!(clean_pair(&at_max, &at_max, 1.5, 1, 175).is_some());
        assert_eq!(clean_pair("a", "b", 1.5, 2, 175), None);
        assert!(clean_pair("a b", "c d", 1.5, 2, 175).is_some());
        assert_eq!(clean_pair("a b", "c", 9.0, 2, 175), None);
    }

    #[test]
    fn clean_pair_drops_by_ratio_either_way() {
        assert!(clean_pair("a b c", "d e", 1.5, 1, 175).is_some()); // 1.5 is not > 1.5
        assert_eq!(clean_pair("a b c d", "e f", 1.5, 1, 175), None);
        assert_eq!(clean_pair("e f", "a b c d", 1.5, 1, 175), None);
    }

    #[test]
    fn clean_pair_drops_overlong_words() {
        let word = "ä".repeat(MAX_WORD_LENGTH);
        assert!(clean_pair(&word, "x", 1.5, 1, 175).is_some());
        let word = "ä".repeat(MAX_WORD_LENGTH + 1);
        assert_eq!(clean_pair(&word, "x", 1.5, 1, 175), None);
        assert_eq!(clean_pair("x", &word, 1.5, 1, 175), None);
    }
}
