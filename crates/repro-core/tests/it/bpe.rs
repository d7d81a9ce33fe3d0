//! `data::text::bpe` against subword-nmt 0.3.8 (`learn_bpe`/`apply_bpe` run by
//! `tests/python/bpe_reference.py`) on a generated Zipf-distributed de/en-like corpus: the learned
//! merge lists (identical codes files), byte-identical segmentation with subword-nmt's
//! own codes, the codes file round trip and its parse errors.

use std::fs;
use std::path::Path;
use std::time::Instant;

use rand::distr::{Distribution, weighted::WeightedIndex};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use repro_core::data::text::bpe::Bpe;

const ONSETS: &[&str] = &[
    "b", "d", "f", "g", "h", "k", "l", "m", "n", "p", "r", "s", "t", "w", "z", "sch", "st", "th",
    "sp", "tr", "gr", "br", "ch", "pf", "kr", "fl", "",
];
const VOWELS: &[&str] = &[
    "a", "e", "i", "o", "u", "ä", "ö", "ü", "ei", "au", "ie", "ea", "ou", "ee", "eu",
];
const CODAS: &[&str] = &[
    "", "", "n", "r", "s", "t", "ng", "ch", "ck", "nd", "st", "ß", "ll", "rt", "tz", "m",
];
const SUFFIXES: &[&str] = &[
    "", "", "", "en", "er", "ung", "ing", "ed", "s", "lich", "heit", "ly", "tion", "e", "es",
];
const PUNCT: &[&str] = &[
    ",", ".", "!", "?", "&quot;", "&apos;", "&apos;s", "-", ":", ";", "(", ")", "@-@", "...",
];

fn pick<'a>(rng: &mut ChaCha8Rng, xs: &[&'a str]) -> &'a str {
    xs[rng.random_range(0..xs.len())]
}

fn make_word(rng: &mut ChaCha8Rng) -> String {
    let syllables = rng.random_range(1..=3);
    let mut w = String::new();
    for _ in 0..syllables {
        w.push_str(pick(rng, ONSETS));
        w.push_str(pick(rng, VOWELS));
        w.push_str(pick(rng, CODAS));
    }
    w.push_str(pick(rng, SUFFIXES));
    if rng.random_bool(0.1) {
        let mut c = w.chars();
        let first: String = c.next().unwrap().to_uppercase().collect();
        w = first + c.as_str();
    }
    w
}

/// A Zipf-ish vocabulary (words, punctuation, numbers) and `n` lines drawn from it.
fn corpus(seed: u64, n: usize) -> Vec<String> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut vocab: Vec<String> = PUNCT.iter().map(|s| s.to_string()).collect();
    for _ in 0..3000 {
        if rng.random_bool(0.05) {
            vocab.push(rng.random_range(0..100_000u32).to_string());
        } else {
            vocab.push(make_word(&mut rng));
        }
    }
    vocab.extend(["a", "I", "ü", "1", "x"].map(String::from)); // one-character words
    let weights: Vec<f64> = (0..vocab.len()).map(|r| 1.0 / (r as f64 + 2.7)).collect();
    let zipf = WeightedIndex::new(&weights).unwrap();
    (0..n)
        .map(|_| {
            let len = rng.random_range(3..25);
            let words: Vec<&str> = (0..len)
                .map(|_| vocab[zipf.sample(&mut rng)].as_str())
                .collect();
            words.join(" ")
        })
        .collect()
}

/// Lines the learner never saw: new words, characters absent from training, and the whitespace
/// cases `process_line` handles (leading/trailing spaces, runs of spaces, empty lines).
fn held_out() -> Vec<String> {
    let mut lines = corpus(7, 300);
    lines.extend(
        [
            "",
            " ",
            "   ",
            "  leading spaces",
            "trailing spaces  ",
            "double  space and   triple",
            "naïve Ωmega 😀 façade Œuvre ёлка",
            "x y z ü ß",
            "schön schöner am schönsten .",
            "\t tab",
            "ab\u{a0}cd non-breaking",
            "</w> a</w> @@ @@@",
        ]
        .map(String::from),
    );
    lines
}

fn write_lines(path: &Path, lines: &[String]) {
    let mut s = String::new();
    for l in lines {
        s.push_str(l);
        s.push('\n');
    }
    fs::write(path, s).unwrap();
}

fn python_learn(dir: &Path, corpus: &Path, n: usize) -> String {
    let codes = dir.join(format!("codes.{n}"));
    repro_testkit::run_script(
        "bpe_reference.py",
        &[
            "learn".as_ref(),
            corpus.as_os_str(),
            n.to_string().as_ref(),
            codes.as_os_str(),
        ],
    );
    fs::read_to_string(codes).unwrap()
}

fn python_apply(dir: &Path, codes: &str, corpus: &Path) -> Vec<String> {
    let codes_path = dir.join("codes.apply");
    fs::write(&codes_path, codes).unwrap();
    let out = dir.join("applied");
    repro_testkit::run_script(
        "bpe_reference.py",
        &[
            "apply".as_ref(),
            codes_path.as_os_str(),
            corpus.as_os_str(),
            out.as_os_str(),
        ],
    );
    let text = fs::read_to_string(out).unwrap();
    text.strip_suffix('\n')
        .unwrap_or(&text)
        .split('\n')
        .map(String::from)
        .collect()
}

/// (b): subword-nmt's codes, applied by Rust and by apply_bpe.py, must give identical lines.
fn check_apply_exact(dir: &Path, codes: &str, lines: &[String], what: &str) {
    let path = dir.join("apply_input");
    write_lines(&path, lines);
    let want = python_apply(dir, codes, &path);
    assert_eq!(want.len(), lines.len(), "{what}: apply_bpe line count");
    let bpe = Bpe::from_codes(codes).unwrap();
    let start = Instant::now();
    let got: Vec<String> = lines.iter().map(|l| bpe.apply(l)).collect();
    let secs = start.elapsed().as_secs_f64();
    eprintln!(
        "{what}: applied {} lines in {secs:.3}s ({:.0} lines/s)",
        lines.len(),
        lines.len() as f64 / secs
    );
    for (k, (g, w)) in got.iter().zip(&want).enumerate() {
        assert_eq!(
            g,
            w,
            "{what}: line {} ({:?}) differs from apply_bpe.py",
            k + 1,
            lines[k]
        );
    }
}

/// (a): the merges learned in Rust must be learn_bpe.py's codes file, byte for byte.
fn check_learn_exact(dir: &Path, corpus_path: &Path, lines: &[String], n: usize) -> String {
    let py_codes = python_learn(dir, corpus_path, n);
    let start = Instant::now();
    let rs = Bpe::learn(lines.iter().map(String::as_str), n).unwrap();
    eprintln!("learn {n}: Rust {:.2}s", start.elapsed().as_secs_f64());
    let py = Bpe::from_codes(&py_codes).unwrap();
    assert_eq!(py.merges().len(), n, "learn_bpe stopped early");
    if let Some(k) = (0..n).find(|&k| rs.merges().get(k) != py.merges().get(k)) {
        panic!(
            "learn {n}: merge {} is {:?} in Rust, {:?} in learn_bpe.py",
            k + 1,
            rs.merges().get(k),
            py.merges().get(k)
        );
    }
    assert_eq!(rs.to_codes(), py_codes, "learn {n}: codes files differ");
    py_codes
}

#[test]
fn bpe_agrees_with_subword_nmt() {
    let dir = tempfile::tempdir().unwrap();
    let lines = corpus(2026, 4000);
    let corpus_path = dir.path().join("train.txt");
    write_lines(&corpus_path, &lines);
    let mut all = lines.clone();
    all.extend(held_out());

    for n in [500, 2000] {
        let py_codes = check_learn_exact(dir.path(), &corpus_path, &lines, n);
        check_apply_exact(dir.path(), &py_codes, &all, &format!("apply {n}"));
        // (c) subword-nmt's file survives from_codes → to_codes byte for byte.
        let bpe = Bpe::from_codes(&py_codes).unwrap();
        assert_eq!(
            bpe.to_codes(),
            py_codes,
            "to_codes of subword-nmt's codes ({n})"
        );
    }
}

#[test]
fn codes_round_trip() {
    let lines = corpus(11, 1500);
    let bpe = Bpe::learn(lines.iter().map(String::as_str), 300).unwrap();
    assert_eq!(bpe.merges().len(), 300);
    let codes = bpe.to_codes();
    assert!(codes.starts_with("#version: 0.2\n"));
    assert_eq!(codes.lines().count(), 301);
    let back = Bpe::from_codes(&codes).unwrap();
    assert_eq!(back.merges(), bpe.merges());
    assert_eq!(back.to_codes(), codes);
    for l in lines.iter().take(200) {
        assert_eq!(back.apply(l), bpe.apply(l));
    }
    // Without the header (version 0.1 files are not supported, but a bare list parses) and
    // with CRLF line ends.
    let bare = Bpe::from_codes("e r</w>\r\nt h\n\n").unwrap();
    assert_eq!(
        bare.merges(),
        &[
            ("e".to_string(), "r</w>".to_string()),
            ("t".to_string(), "h".to_string())
        ]
    );
    assert_eq!(bare.apply("the  after x\n"), "th@@ e a@@ f@@ t@@ er x\n");
}

#[test]
fn malformed_codes_name_the_line() {
    let err = |text: &str| format!("{:#}", Bpe::from_codes(text).unwrap_err());
    let e = err("#version: 0.2\na b\nc\nd e\n");
    assert!(
        e.contains("line 3") && e.contains("two subword units"),
        "{e}"
    );
    let e = err("a b\nc d e\n");
    assert!(e.contains("line 2") && e.contains("\"c d e\""), "{e}");
    let e = err("#version: 0.2\na b\n\nc d\n");
    assert!(e.contains("line 3"), "{e}");
    let e = err("#version: 0.1\na b\n");
    assert!(e.contains("line 1") && e.contains("version 0.2"), "{e}");
}
