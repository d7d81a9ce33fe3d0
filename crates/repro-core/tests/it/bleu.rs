//! Corpus BLEU (crates/repro-core/src/metrics/bleu.rs) against sacreBLEU 2.5.1 (tests/python/bleu_reference.py) on
//! the fixed corpus in crates/repro-core/tests/data/bleu: 300 English-like segments with MT-style errors (dropped,
//! inserted, swapped words, synonyms, case changes, tokenized periods, empty hypotheses, one
//! segment of Greek/Chinese/symbols), a second paraphrased reference stream, and a 5-segment
//! sparse corpus with no 4-gram match so the smoothing methods differ. Every option set must give
//! sacreBLEU's score to two decimals and its statistics exactly; and the 13a tokenizer must
//! reproduce sacreBLEU's on tricky strings.

use std::path::PathBuf;

use repro_core::metrics::bleu::{Bleu, BleuOptions, Smooth, Tokenize, corpus_bleu, tokenize_13a};
use serde_json::{Value, json};

fn data(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data/bleu")
        .join(name)
}

/// One segment a line, every line ended by "\n" (as the Python side reads them).
fn lines(name: &str) -> Vec<String> {
    let text = std::fs::read_to_string(data(name)).expect("read test data");
    let body = text.strip_suffix('\n').expect("file ends with a newline");
    body.split('\n').map(str::to_string).collect()
}

struct Case {
    name: &'static str,
    hyp: &'static str,
    refs: &'static [&'static str],
    opts: BleuOptions,
}

fn opts(tokenize: Tokenize, smooth: Smooth, lowercase: bool) -> BleuOptions {
    BleuOptions {
        tokenize,
        smooth,
        lowercase,
        max_order: 4,
    }
}

fn cases() -> Vec<Case> {
    use Smooth::{AddK, Exp, Floor};
    use Tokenize::Tok13a;
    let one: &'static [&'static str] = &["ref.txt"];
    let two: &'static [&'static str] = &["ref.txt", "ref2.txt"];
    let sparse: &'static [&'static str] = &["sparse_ref.txt"];
    let mut v = Vec::new();
    for (corpus, hyp, refs) in [
        ("1 ref", "hyp.txt", one),
        ("2 refs", "hyp.txt", two),
        ("sparse", "sparse_hyp.txt", sparse),
    ] {
        let sets: [(&'static str, BleuOptions); 8] = [
            ("13a+exp (sacrebleu default)", BleuOptions::sacrebleu()),
            ("13a+floor 0.1", opts(Tok13a, Floor(0.1), false)),
            ("13a+floor 0.3", opts(Tok13a, Floor(0.3), false)),
            ("13a+add-k 1", opts(Tok13a, AddK(1.0), false)),
            ("13a+add-k 0.5", opts(Tok13a, AddK(0.5), false)),
            (
                "none+none (fairseq tokenized)",
                BleuOptions::fairseq_tokenized(),
            ),
            ("13a+exp lowercase", opts(Tok13a, Exp, true)),
            ("none+exp lowercase", opts(Tokenize::None, Exp, true)),
        ];
        for (name, o) in sets {
            let name: &'static str = Box::leak(format!("{corpus}: {name}").into_boxed_str());
            v.push(Case {
                name,
                hyp,
                refs,
                opts: o,
            });
        }
    }
    v
}

fn py_smooth(s: Smooth) -> (&'static str, Value) {
    match s {
        Smooth::Exp => ("exp", Value::Null),
        Smooth::None => ("none", Value::Null),
        Smooth::Floor(v) => ("floor", json!(v)),
        Smooth::AddK(k) => ("add-k", json!(k)),
    }
}

fn u64s(v: &Value) -> Vec<u64> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_f64().unwrap() as u64)
        .collect()
}

fn check(c: &Case, b: &Bleu, r: &Value) {
    let want = r["score"].as_f64().unwrap();
    let n = c.name;
    assert!(
        (b.score - want).abs() < 0.005 && format!("{:.2}", b.score) == format!("{want:.2}"),
        "{n}: BLEU {} vs sacreBLEU {want}",
        b.score
    );
    assert_eq!(b.counts, u64s(&r["raw_counts"]), "{n}: counts");
    assert_eq!(b.totals, u64s(&r["raw_totals"]), "{n}: totals");
    assert_eq!(b.sys_len, r["sys_len"].as_u64().unwrap(), "{n}: sys_len");
    assert_eq!(b.ref_len, r["ref_len"].as_u64().unwrap(), "{n}: ref_len");
    // sacreBLEU's reported counts/totals: ours, with add-k's k on orders ≥ 2 when it applied.
    let (sc, st) = (&r["counts"], &r["totals"]);
    let k = match c.opts.smooth {
        Smooth::AddK(k) if b.counts.iter().any(|&x| x > 0) => k,
        _ => 0.0,
    };
    for i in 0..4 {
        let add = if i > 0 { k } else { 0.0 };
        assert_eq!(
            b.counts[i] as f64 + add,
            sc[i].as_f64().unwrap(),
            "{n}: counts[{i}]"
        );
        assert_eq!(
            b.totals[i] as f64 + add,
            st[i].as_f64().unwrap(),
            "{n}: totals[{i}]"
        );
        let p = r["precisions"][i].as_f64().unwrap();
        assert!(
            (b.precisions[i] - p).abs() <= 1e-9 * p.abs().max(1.0),
            "{n}: precision {i}"
        );
    }
    assert!((b.bp - r["bp"].as_f64().unwrap()).abs() < 1e-12, "{n}: bp");
    assert_eq!(b.format(), r["format"].as_str().unwrap(), "{n}: format");
}

#[test]
fn matches_sacrebleu() {
    let cases = cases();
    let spec: Vec<Value> = cases
        .iter()
        .map(|c| {
            let (smooth, value) = py_smooth(c.opts.smooth);
            json!({
                "hyp": data(c.hyp),
                "refs": c.refs.iter().map(|r| data(r)).collect::<Vec<_>>(),
                "tokenize": match c.opts.tokenize { Tokenize::Tok13a => "13a", Tokenize::None => "none" },
                "smooth": smooth,
                "smooth_value": value,
                "lowercase": c.opts.lowercase,
            })
        })
        .collect();
    let out = repro_testkit::run_script("bleu_reference.py", &[json!({"cases": spec}).to_string()]);
    let reference: Value = serde_json::from_str(&out).unwrap();
    let reference = reference["cases"].as_array().unwrap();
    assert_eq!(reference.len(), cases.len());
    let mut scores = Vec::new();
    for (c, r) in cases.iter().zip(reference) {
        let hyps = lines(c.hyp);
        let refs: Vec<Vec<String>> = c.refs.iter().map(|r| lines(r)).collect();
        let b = corpus_bleu(&hyps, &refs, &c.opts).unwrap();
        check(c, &b, r);
        scores.push((c.name, b.score));
    }
    // The option sets are not all the same number: the comparison can tell them apart.
    let distinct: std::collections::BTreeSet<String> =
        scores.iter().map(|(_, s)| format!("{s:.2}")).collect();
    assert!(distinct.len() >= 10, "too few distinct scores: {scores:?}");
}

#[test]
fn fairseq_tokenized_is_sacrebleu_none_none() {
    let f = BleuOptions::fairseq_tokenized();
    assert_eq!(f.tokenize, Tokenize::None);
    assert_eq!(f.smooth, Smooth::None);
    assert!(!f.lowercase);
    assert_eq!(f.max_order, 4);
    let s = BleuOptions::sacrebleu();
    assert_eq!(
        (s.tokenize, s.smooth, s.lowercase),
        (Tokenize::Tok13a, Smooth::Exp, false)
    );
}

#[test]
fn a_wrong_hypothesis_changes_the_score() {
    let hyps = lines("hyp.txt");
    let refs = vec![lines("ref.txt")];
    let base = corpus_bleu(&hyps, &refs, &BleuOptions::sacrebleu()).unwrap();
    let mut worse = hyps.clone();
    worse[3] = "completely unrelated words here".into();
    let w = corpus_bleu(&worse, &refs, &BleuOptions::sacrebleu()).unwrap();
    assert!(w.score < base.score - 0.01, "{} vs {}", w.score, base.score);
}

#[test]
fn tokenizer_13a_matches_sacrebleu() {
    let strings: Vec<&str> = vec![
        "Hello, world.",
        "don't",
        "I can't, won't... do it!",
        "The U.S. economy grew 3.5% in 2019.",
        "$1,000.50 and 1.000,50",
        "He said \"yes\".",
        "'single quotes'",
        "state-of-the-art",
        "1990-2000",
        "pages 3-5, not 3 - 5",
        "-5 degrees",
        "x-1-y",
        "(brackets) [square] {curly}",
        "a/b\\c",
        "e-mail: me@example.com",
        "50% off!!!",
        "&quot;quoted&quot; &amp; &lt;tag&gt;",
        "&amp;quot;",
        "AT&T",
        "<skipped> text",
        "line-\nbreak",
        "two\nlines",
        "tab\tseparated",
        "   leading and trailing   ",
        "",
        " ",
        "...",
        ".,.,",
        "1.2.3",
        "a.b.c",
        "3.",
        ".5",
        ",5",
        "5,",
        "Mr. Smith's dog",
        "It's 5 o'clock.",
        "e.g. i.e. etc.",
        "Zürich café naïve",
        "«Καλημέρα» — 北京…",
        "10:30 a.m.",
        "#hashtag @user",
        "a~b^c_d`e|f",
        "x=y+z*2",
        "100 km/h",
        "¿Qué? ¡Sí!",
        "em—dash and en–dash",
        "non\u{a0}breaking space",
        "sep\u{1f}unit",
        "2-3-4",
        "A-B",
        "9-",
        "-",
    ];
    assert!(strings.len() >= 50);
    let out = repro_testkit::run_script(
        "bleu_reference.py",
        &[json!({ "tok13a": strings }).to_string()],
    );
    let r: Value = serde_json::from_str(&out).unwrap();
    for (s, want) in strings.iter().zip(r["tok13a"].as_array().unwrap()) {
        assert_eq!(tokenize_13a(s), want.as_str().unwrap(), "13a of {s:?}");
    }
}
