//! Synthetic WikiText-2 / WikiText-103 in the upstream token-level zip layout:
//! `wikitext-2-v1.zip` with `wikitext-2/wiki.{test,valid,train}.tokens` (and `wikitext-103-v1.zip`
//! with `wikitext-103/`).
//!
//! Text follows the upstream conventions: every line starts with a space and ends with " \n"
//! (blank lines are " \n"); articles start with ` = Title = ` and sections with ` = = Heading = = `,
//! each surrounded by blank lines; paragraphs are single lines of space-separated tokens ending
//! sentences with ` . `; rare words are `<unk>`; numbers and compounds use ` @,@ `, ` @.@ `,
//! ` @-@ `.
//!
//! Content: a fixed vocabulary of `vocab` types (function words, punctuation, `<unk>`, numbers and
//! generated pseudo-words, some capitalised) drawn from a Zipf(1) distribution mixed with a seeded
//! sparse first-order Markov chain (each word has three preferred successors, taken with
//! probability 3/4), so that a bigram model beats a unigram one by a wide margin. Token counts are
//! approximate: a split stops at the first paragraph end at or beyond its target.

use rand::RngCore;

use super::archive::ZipOut;
use super::draws::{Params, below, below_u64, between, stream};

/// Tokens that only appear through the document structure or number/compound constructs.
const STRUCTURAL: [&str; 5] = ["=", "@-@", "@,@", "@.@", "."];
/// Number tokens (used by number constructs only).
const NUMBERS: [&str; 20] = [
    "1", "2", "3", "4", "5", "6", "7", "8", "9", "10", "12", "15", "20", "30", "50", "100", "000",
    "500", "1990", "2000",
];
/// Most frequent sampled tokens, in Zipf rank order; generated words follow.
const FUNCTION_WORDS: [&str; 28] = [
    "the", ",", "of", "and", "in", "to", "a", "<unk>", "was", "The", "'s", "is", "for", "on", "as",
    "with", "by", "he", "at", "from", "his", "that", "it", "an", "were", "which", "(", ")",
];
/// Rank of the first token allowed in headings (skips punctuation and function words).
const FIRST_HEADING_RANK: usize = FUNCTION_WORDS.len();
/// Preferred successors per word and their relative weights.
const SUCCESSOR_WEIGHTS: [u32; 3] = [4, 2, 1];

const CONSONANTS: &[u8] = b"bcdfghklmnprstvz";
const VOWELS: &[u8] = b"aeiou";

/// Pseudo-word `n` (n ≥ 0): bijective base-80 numeral over consonant-vowel syllables, at least
/// two syllables (so never equal to a short function word).
fn pseudo_word(n: usize) -> String {
    let syllables = CONSONANTS.len() * VOWELS.len();
    let mut k = n + syllables + 1; // skip the one-syllable words
    let mut out = Vec::new();
    while k > 0 {
        k -= 1;
        let s = k % syllables;
        out.push(VOWELS[s % VOWELS.len()]);
        out.push(CONSONANTS[s / VOWELS.len()]);
        k /= syllables;
    }
    out.reverse();
    String::from_utf8(out).unwrap_or_default()
}

/// The sampled vocabulary: rank-ordered tokens, their Zipf cumulative weights and successors.
struct Language {
    words: Vec<String>,
    /// Cumulative Zipf weights, `cumulative[r]` = sum of weights of ranks `0..=r`.
    cumulative: Vec<u64>,
    successors: Vec<[u32; 3]>,
}

impl Language {
    fn new(vocab: usize, chain: &mut impl RngCore) -> Language {
        let sampled = vocab - STRUCTURAL.len() - NUMBERS.len();
        let mut words: Vec<String> = FUNCTION_WORDS.iter().map(|w| w.to_string()).collect();
        let mut n = 0;
        while words.len() < sampled {
            let mut w = pseudo_word(n);
            if n % 6 == 5 {
                // Proper nouns: capitalised, still unique (all other pseudo-words are lowercase).
                w[..1].make_ascii_uppercase();
            }
            words.push(w);
            n += 1;
        }
        words.truncate(sampled);
        let mut cumulative = Vec::with_capacity(sampled);
        let mut total = 0u64;
        for rank in 0..sampled as u64 {
            total += (1u64 << 40) / (rank + 1);
            cumulative.push(total);
        }
        let mut language = Language {
            words,
            cumulative,
            successors: Vec::new(),
        };
        language.successors = (0..sampled)
            .map(|_| {
                let mut s = [0u32; 3];
                for slot in &mut s {
                    *slot = language.zipf(chain) as u32;
                }
                s
            })
            .collect();
        language
    }

    fn zipf(&self, rng: &mut impl RngCore) -> usize {
        let total = self.cumulative.last().copied().unwrap_or(1);
        let u = below_u64(rng, total);
        self.cumulative.partition_point(|&c| c <= u)
    }

    /// Next word after `prev`: a preferred successor with probability 3/4, else a Zipf draw.
    fn next(&self, rng: &mut impl RngCore, prev: usize) -> usize {
        if below(rng, 4) < 3 {
            let total: u32 = SUCCESSOR_WEIGHTS.iter().sum();
            let mut u = below(rng, total);
            for (i, w) in SUCCESSOR_WEIGHTS.iter().enumerate() {
                if u < *w {
                    return self.successors[prev][i] as usize;
                }
                u -= w;
            }
        }
        self.zipf(rng)
    }

    /// A heading word (no punctuation or function words).
    fn heading_word(&self, rng: &mut impl RngCore) -> &str {
        let r = loop {
            let r = self.zipf(rng);
            if r >= FIRST_HEADING_RANK || self.words.len() <= FIRST_HEADING_RANK {
                break r;
            }
        };
        &self.words[r]
    }
}

/// Accumulates lines in the upstream style and counts tokens.
struct Writer {
    text: String,
    tokens: usize,
}

impl Writer {
    fn line(&mut self, tokens: &[&str]) {
        self.text.push(' ');
        for t in tokens {
            self.text.push_str(t);
            self.text.push(' ');
        }
        self.text.push('\n');
        self.tokens += tokens.len();
    }

    fn blank(&mut self) {
        self.text.push_str(" \n");
    }

    fn heading(&mut self, level: usize, words: &[&str]) {
        let mut tokens = vec!["="; level];
        tokens.extend_from_slice(words);
        tokens.extend(std::iter::repeat_n("=", level));
        self.line(&tokens);
        self.blank();
    }
}

fn paragraph<'a>(lang: &'a Language, rng: &mut impl RngCore, state: &mut usize) -> Vec<&'a str> {
    let mut out: Vec<&str> = Vec::new();
    for _ in 0..between(rng, 3, 8) {
        for _ in 0..between(rng, 6, 28) {
            match below(rng, 64) {
                0 => {
                    // Number with a thousands separator: "1 @,@ 000".
                    out.extend([NUMBERS[below(rng, 9) as usize], "@,@", "000"]);
                    continue;
                }
                1 => {
                    // Decimal: "3 @.@ 5".
                    out.extend([
                        NUMBERS[below(rng, 9) as usize],
                        "@.@",
                        NUMBERS[below(rng, 9) as usize],
                    ]);
                    continue;
                }
                2 => {
                    out.push(NUMBERS[below(rng, NUMBERS.len() as u32) as usize]);
                    continue;
                }
                3 if !out.is_empty() => {
                    // Compound: the chain continues across the hyphen.
                    out.push("@-@");
                }
                _ => {}
            }
            *state = lang.next(rng, *state);
            out.push(&lang.words[*state]);
        }
        out.push(".");
    }
    out
}

/// One split: articles until at least `target` tokens.
fn split_text(lang: &Language, rng: &mut impl RngCore, target: usize) -> String {
    let mut w = Writer {
        text: String::new(),
        tokens: 0,
    };
    let mut state = 0usize;
    'articles: loop {
        w.blank();
        let title: Vec<&str> = (0..between(rng, 1, 4))
            .map(|_| lang.heading_word(rng))
            .collect();
        w.heading(1, &title);
        let sections = between(rng, 0, 4);
        for section in 0..=sections {
            if section > 0 {
                let level = between(rng, 2, 3) as usize;
                let heading: Vec<&str> = (0..between(rng, 1, 3))
                    .map(|_| lang.heading_word(rng))
                    .collect();
                w.heading(level, &heading);
            }
            for _ in 0..between(rng, 1, 3) {
                let p = paragraph(lang, rng, &mut state);
                w.line(&p);
                w.blank();
                if w.tokens >= target {
                    break 'articles;
                }
            }
        }
    }
    w.text
}

fn generate_wikitext(p: &Params, generator: &str, folder: &str) -> anyhow::Result<Vec<u8>> {
    let seed = p.get("seed");
    let lang = Language::new(p.usize("vocab"), &mut stream(generator, "chain", seed, 0));
    let mut zip = ZipOut::new();
    zip.dir(&format!("{folder}/"))?;
    for (split, param) in [
        ("test", "test_tokens"),
        ("valid", "valid_tokens"),
        ("train", "train_tokens"),
    ] {
        let text = split_text(
            &lang,
            &mut stream(generator, split, seed, 0),
            p.usize(param),
        );
        zip.file(
            &format!("{folder}/wiki.{split}.tokens"),
            text.as_bytes(),
            true,
        )?;
    }
    Ok(zip.finish()?)
}

pub(super) fn generate_wikitext2(p: &Params) -> anyhow::Result<Vec<u8>> {
    generate_wikitext(p, "wikitext2", "wikitext-2")
}

pub(super) fn generate_wikitext103(p: &Params) -> anyhow::Result<Vec<u8>> {
    generate_wikitext(p, "wikitext103", "wikitext-103")
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;
    use std::io::Read;

    use serde_json::{Map, Value, json};

    use super::super::generate;

    fn map(v: Value) -> Map<String, Value> {
        match v {
            Value::Object(m) => m,
            _ => unreachable!(),
        }
    }

    fn read_zip(path: &std::path::Path) -> (Vec<String>, BTreeMap<String, String>) {
        let mut zip = zip::ZipArchive::new(std::fs::File::open(path).unwrap()).unwrap();
        let names: Vec<String> = zip.file_names().map(str::to_string).collect();
        let mut files = BTreeMap::new();
        for name in names.iter().filter(|n| !n.ends_with('/')) {
            let mut text = String::new();
            zip.by_name(name)
                .unwrap()
                .read_to_string(&mut text)
                .unwrap();
            files.insert(name.clone(), text);
        }
        (names, files)
    }

    /// Cross-entropy (nats/token) on `valid` of an add-one unigram and of a bigram interpolated
    /// with it, both estimated on `train`.
    fn unigram_bigram_ce(train: &str, valid: &str) -> (f64, f64) {
        let train: Vec<&str> = train.split_whitespace().collect();
        let valid: Vec<&str> = valid.split_whitespace().collect();
        let mut uni: BTreeMap<&str, f64> = BTreeMap::new();
        let mut bi: BTreeMap<(&str, &str), f64> = BTreeMap::new();
        for w in &train {
            *uni.entry(w).or_default() += 1.0;
        }
        for pair in train.windows(2) {
            *bi.entry((pair[0], pair[1])).or_default() += 1.0;
        }
        let types = uni.len() as f64 + 1.0;
        let n = train.len() as f64;
        let p_uni = |w: &str| (uni.get(w).copied().unwrap_or(0.0) + 1.0) / (n + types);
        let mut ce_uni = 0.0;
        let mut ce_bi = 0.0;
        for pair in valid.windows(2) {
            let pu = p_uni(pair[1]);
            let prev = uni.get(pair[0]).copied().unwrap_or(0.0);
            let pb = if prev > 0.0 {
                bi.get(&(pair[0], pair[1])).copied().unwrap_or(0.0) / prev
            } else {
                0.0
            };
            ce_uni -= pu.ln();
            ce_bi -= (0.7 * pb + 0.3 * pu).ln();
        }
        let m = (valid.len() - 1) as f64;
        (ce_uni / m, ce_bi / m)
    }

    #[test]
    fn wikitext_format_and_structure() {
        let dir = tempfile::tempdir().unwrap();
        let params = map(
            json!({"vocab": 500, "train_tokens": 30000, "valid_tokens": 5000, "test_tokens": 3000}),
        );
        let paths = generate("wikitext2", &params, dir.path()).unwrap();
        assert_eq!(paths, [dir.path().join("wikitext-2-v1.zip")]);
        let (names, files) = read_zip(&paths[0]);
        assert_eq!(
            names,
            [
                "wikitext-2/",
                "wikitext-2/wiki.test.tokens",
                "wikitext-2/wiki.valid.tokens",
                "wikitext-2/wiki.train.tokens"
            ]
        );
        let mut types = std::collections::BTreeSet::new();
        for (name, text) in &files {
            assert!(
                text.starts_with(" \n = "),
                "{name} starts {:?}",
                &text[..10]
            );
            assert!(text.ends_with(" \n"));
            for line in text.lines() {
                assert!(
                    line.starts_with(' ') && line.ends_with(' '),
                    "{name}: {line:?}"
                );
                assert!(!line.contains("  "), "{name}: double space in {line:?}");
            }
            assert!(text.contains(" <unk> "), "{name} has no <unk>");
            assert!(
                text.lines()
                    .any(|l| l.starts_with(" = ") && !l.starts_with(" = = ") && l.ends_with(" = "))
            );
            types.extend(text.split_whitespace());
        }
        assert!(types.len() <= 500, "{} types exceed vocab", types.len());
        let train = &files["wikitext-2/wiki.train.tokens"];
        for sep in [" @-@ ", " @,@ ", " @.@ "] {
            assert!(train.contains(sep), "no {sep:?}");
        }
        assert!(train.lines().any(|l| l.starts_with(" = = ")));
        let count = train.split_whitespace().count();
        assert!((30000..33000).contains(&count), "{count} train tokens");
        let valid = &files["wikitext-2/wiki.valid.tokens"];
        let (uni, bi) = unigram_bigram_ce(train, valid);
        eprintln!("valid cross-entropy: unigram {uni:.3} nats, bigram {bi:.3} nats");
        assert!(
            bi < uni - 0.8,
            "bigram {bi} should clearly beat unigram {uni}"
        );
    }

    const WIKITEXT103_SMALL_SHA256: &str =
        "b87d7e483694956c33478f2a86bf9774756bf5feb8d57e90fa0b8d611b444ed4";

    #[test]
    fn wikitext103_folder_and_determinism() {
        let params = map(
            json!({"vocab": 200, "train_tokens": 2000, "valid_tokens": 500, "test_tokens": 500, "seed": 9}),
        );
        let a = tempfile::tempdir().unwrap();
        let b = tempfile::tempdir().unwrap();
        let pa = generate("wikitext103", &params, a.path()).unwrap();
        let pb = generate("wikitext103", &params, b.path()).unwrap();
        assert_eq!(pa, [a.path().join("wikitext-103-v1.zip")]);
        let bytes = std::fs::read(&pa[0]).unwrap();
        assert_eq!(bytes, std::fs::read(&pb[0]).unwrap());
        // Locks the output format: must change exactly when GENERATOR_VERSION is bumped.
        assert_eq!(
            crate::store::hash::sha256_bytes(&bytes),
            WIKITEXT103_SMALL_SHA256
        );
        let (names, _) = read_zip(&pa[0]);
        assert_eq!(names[0], "wikitext-103/");
        assert!(names.contains(&"wikitext-103/wiki.train.tokens".to_string()));
    }

    #[test]
    fn pseudo_words_are_unique() {
        let words: std::collections::BTreeSet<String> =
            (0..20_000).map(super::pseudo_word).collect();
        assert_eq!(words.len(), 20_000);
        assert_eq!(super::pseudo_word(0), "baba");
    }
}
