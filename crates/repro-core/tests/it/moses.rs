//! `data::text::moses` against sacremoses 0.2.0 (`tests/python/moses_reference.py`), the Python
//! port of Moses' tokenizer.perl: a few thousand generated German and English lines, tokenized
//! by both and compared line by line; `lowercase` against Python's `str.lower()` on the
//! characters where Perl's `lc` and Python agree (ASCII, German, general Latin; no Σ, whose
//! word-final form only Python applies).

use repro_core::data::text::moses::{MosesTokenizer, lowercase};
use serde_json::{Value, json};

/// A small deterministic generator (SplitMix64), so the corpus is the same on every run.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
    fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
        items[self.below(items.len())]
    }
}

const DE_WORDS: &[&str] = &[
    "Müller",
    "Straße",
    "groß",
    "Größe",
    "über",
    "Übung",
    "Äpfel",
    "Öl",
    "schön",
    "heißt",
    "Das",
    "ist",
    "ein",
    "Haus",
    "und",
    "der",
    "die",
    "Mädchen",
    "Fußball",
    "weiß",
    "Bürgermeister",
    "Nord-Süd-Verbindung",
    "E-Mail",
    "geht's",
    "gibt's",
    "Kaffee",
    "Brötchen",
    "Ärger",
    "Zürich",
    "STRASSE",
    "Mai",
    "jährlich",
    "vielleicht",
    "Kinder",
    "Gemüse",
];
const EN_WORDS: &[&str] = &[
    "the",
    "house",
    "is",
    "red",
    "don't",
    "it's",
    "can't",
    "won't",
    "I'm",
    "we're",
    "they've",
    "you'll",
    "he'd",
    "John's",
    "students'",
    "1990's",
    "l'homme",
    "rock'n'roll",
    "O'Neill",
    "well-known",
    "state-of-the-art",
    "cannot",
    "gonna",
    "New",
    "York",
    "café",
    "naïve",
    "Zoë",
    "résumé",
    "TEXT",
    "and/or",
    "x-ray",
    "e-mail",
    "years",
    "'tis",
];
const DE_ABBREVIATIONS: &[&str] = &[
    "Dr.", "z.B.", "usw.", "bzw.", "ca.", "Nr.", "Hr.", "Fr.", "Prof.", "d.h.", "u.a.", "etc.",
    "Jan.", "Str.", "Abs.", "Art.", "vgl.", "S.", "Mio.", "Mrd.", "ggf.",
];
const EN_ABBREVIATIONS: &[&str] = &[
    "Dr.", "Mr.", "Mrs.", "Ms.", "Prof.", "St.", "U.S.", "e.g.", "i.e.", "etc.", "No.", "Art.",
    "pp.", "Jan.", "Feb.", "vs.", "Jr.", "Sen.", "A.", "J.", "Ph.D.", "a.m.",
];
const NUMBERS: &[&str] = &[
    "5",
    "1990",
    "5,300",
    "1.000.000",
    "3,14",
    "2.5",
    "1,000.50",
    "42%",
    "10-15",
    "0",
    "12:30",
    "1.",
    "3,",
    "½",
    "²",
    "٣",
    "7th",
    "No5",
];
const PUNCT: &[&str] = &[
    ".", ",", ";", ":", "!", "?", "...", "…", "..", "....", "-", "--", "—", "–", "(", ")", "[",
    "]", "{", "}", "<", ">", "&", "|", "/", "\\", "@", "#", "*", "+", "=", "~", "^", "_", "§", "°",
    "$", "€", "£", "¥", "¢", "\"", "'", "`", "``", "„", "“", "”", "‚", "‘", "’", "«", "»", "‹",
    "›", "😀", "👍🏽", "🇩🇪", "™", "©", "·", "•", "†", "×", "÷",
];
const SPECIAL: &[&str] = &[
    "http://www.example.com/path/to?x=1&y=2",
    "https://de.wikipedia.org/wiki/Straße",
    "www.ted.com",
    "jane.doe@example.org",
    "<b>bold</b>",
    "&amp;",
    "&#124;",
    "a|b",
    "[1]",
    "(siehe oben)",
    "\"quoted\"",
    "'single'",
    "„Zitat“",
    "“curly”",
    "‘x’",
    "Ha!",
    "what?!",
    "Ende.",
    "end.'",
    "x.\"",
    "(end.)",
    "DOTMULTI",
    "\u{a0}",
    "\u{2009}",
    "\u{200b}",
    "\u{1}",
    "\u{1f}",
    "\t",
    "\u{ad}",
    "İstanbul",
    "ΟΔΟΣ",
    "Москва",
    "東京",
    "ﬁ",
    "'s",
    "n't",
];

/// One random line in `lang`: 1 to 20 pieces from the word, abbreviation, number, punctuation and
/// special lists, joined mostly by single spaces, sometimes by none or by runs of spaces and tabs,
/// usually ending in a sentence-final mark.
fn line(rng: &mut Rng, lang: &str) -> String {
    let (words, abbrevs) = if lang == "de" {
        (DE_WORDS, DE_ABBREVIATIONS)
    } else {
        (EN_WORDS, EN_ABBREVIATIONS)
    };
    let mut out = String::new();
    if rng.below(8) == 0 {
        out.push_str(rng.pick(&[" ", "  ", "\t", "\"", "'", "``", "`", "„"]));
    }
    for i in 0..1 + rng.below(20) {
        if i > 0 {
            out.push_str(match rng.below(20) {
                0..=1 => "",
                2 => "  ",
                3 => "\t",
                4 => " \t  ",
                _ => " ",
            });
        }
        let piece = match rng.below(16) {
            0..=6 => rng.pick(words).to_string(),
            7 => rng.pick(words).to_uppercase(),
            8..=9 => rng.pick(abbrevs).to_string(),
            10 => rng.pick(NUMBERS).to_string(),
            11..=13 => rng.pick(PUNCT).to_string(),
            14 => rng.pick(SPECIAL).to_string(),
            _ => format!("{}{}", rng.pick(words), rng.pick(PUNCT)),
        };
        out.push_str(&piece);
    }
    out.push_str(match rng.below(12) {
        0..=4 => ".",
        5 => "?",
        6 => "!",
        7 => "...",
        8 => ".\"",
        9 => ".'",
        10 => " ",
        _ => "",
    });
    out
}

/// The first few indices where `ours` and `reference` differ, with the input, for the message.
fn mismatches(inputs: &[String], ours: &[String], reference: &[String]) -> Vec<String> {
    assert_eq!(ours.len(), reference.len(), "line counts");
    inputs
        .iter()
        .zip(ours.iter().zip(reference))
        .enumerate()
        .filter(|(_, (_, (a, b)))| a != b)
        .map(|(i, (input, (a, b)))| {
            format!("line {i}: input {input:?}\n  rust   {a:?}\n  python {b:?}")
        })
        .collect()
}

fn strings(v: &Value) -> Vec<String> {
    v.as_array()
        .expect("a JSON list")
        .iter()
        .map(|s| s.as_str().expect("a string").to_string())
        .collect()
}

/// Hand-written lines that exercise single rules, ahead of the generated ones.
fn fixed_lines() -> Vec<String> {
    [
        "",
        "   ",
        "Dr. Müller kommt z.B. morgen, usw.",
        "Mr. Smith doesn't like it's colour.",
        "See No. 5 and No. More and Art. 3.",
        "He said 'hi.'",
        "It costs $5,300.50 or 5.300,50 €.",
        "A,B,C,D,E 1,2,3 a,1 1,a ,x x,",
        "Wait... what.... really..",
        "(Hello) [world] {x} <y> a&b a|b",
        "\"Quoted\" and ``ticks'' and `single' here.",
        "U.S. policy vs. E.U. policy.",
        "Die Kinder spielen. Dann gehen sie.",
        "Ende. ende. ENDE.",
        "x. 5",
        "Art. 5 Art. x Art. Y",
        "'tis 'Twas 'n' rock'n'roll",
        "tab\there\r\nand\u{b}vertical\u{c}feed",
        "emoji 😀👍🏽🇩🇪 here.",
        "url http://example.com/a_b-c.html?q=1 end.",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect()
}

#[test]
fn tokenizer_and_lowercase_match_sacremoses() {
    let mut rng = Rng(20260302);
    let mut inputs = serde_json::Map::new();
    let mut lines_by_lang = Vec::new();
    for lang in ["de", "en"] {
        let mut lines = fixed_lines();
        lines.extend((0..2500).map(|_| line(&mut rng, lang)));
        inputs.insert(lang.to_string(), json!(lines));
        lines_by_lang.push((lang, lines));
    }
    // Lowercasing: German and English letters, ASCII and Latin-1/Latin Extended-A letters.
    let mut lower_lines: Vec<String> = lines_by_lang
        .iter()
        .flat_map(|(_, lines)| lines.iter().take(1000).cloned())
        .filter(|l| !l.contains(['Σ', 'İ']))
        .collect();
    let ascii: String = (0x20u8..0x7f).map(char::from).collect();
    let latin: String = ('\u{c0}'..='\u{17f}').collect();
    lower_lines.extend([ascii, latin, "ÄÖÜẞ ÀÉÎÕÇ".to_string()]);

    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("moses_input.json");
    let payload = json!({"tokenize": inputs, "lower": lower_lines});
    std::fs::write(&path, payload.to_string()).unwrap();
    let out = repro_testkit::run_script("moses_reference.py", &[path.as_os_str()]);
    let reference: Value = serde_json::from_str(&out).expect("reference output is JSON");

    let mut failures = Vec::new();
    for (lang, lines) in &lines_by_lang {
        let tok = MosesTokenizer::new(lang).unwrap();
        let ours: Vec<String> = lines.iter().map(|l| tok.tokenize(l)).collect();
        let bad = mismatches(lines, &ours, &strings(&reference["tokenize"][lang]));
        if !bad.is_empty() {
            failures.push(format!(
                "tokenizer -l {lang}: {} of {} lines differ; first ones:\n{}",
                bad.len(),
                lines.len(),
                bad[..bad.len().min(8)].join("\n")
            ));
        }
    }
    let ours: Vec<String> = lower_lines.iter().map(|l| lowercase(l)).collect();
    let bad = mismatches(&lower_lines, &ours, &strings(&reference["lower"]));
    if !bad.is_empty() {
        failures.push(format!(
            "lowercase: {} lines differ; first ones:\n{}",
            bad.len(),
            bad[..bad.len().min(8)].join("\n")
        ));
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}
