//! Corpus BLEU, in the two variants the translation stage reports for test BLEU.
//!
//! This module owns BLEU scoring of detokenized or tokenized text: tokenization for scoring,
//! n-gram matching with clipped counts, the multi-reference rules, smoothing, the brevity
//! penalty, and sacreBLEU's one-line report format. It scores strings; producing them
//! (detokenizing, removing BPE) is the job of `data::text`.
//!
//! * [`BleuOptions::sacrebleu`] — sacreBLEU 2.5.1's `corpus_bleu` defaults: the `13a`
//!   tokenizer (mteval-v13a), `exp` smoothing, case-sensitive, 4-grams. Run on detokenized
//!   output against raw references, this is the comparable "sacreBLEU" number.
//! * [`BleuOptions::fairseq_tokenized`] — what `fairseq-generate` prints as `BLEU4`: on the
//!   tokenized (BPE-removed, not detokenized) hypothesis and reference, whitespace tokens, no
//!   smoothing, case-sensitive. The number most papers of the fairseq era quote.
//!
//! # sacreBLEU's rules, as implemented here
//! Each segment is (optionally) lowercased, right-stripped of whitespace and tokenized; tokens
//! are what Python's `str.split()` yields (Unicode whitespace plus U+001C–U+001F). With several
//! reference streams, a hypothesis n-gram's count is clipped by its largest count in any one
//! reference, and the segment's reference length is the one closest to the hypothesis length,
//! ties going to the shorter. Sums over segments give `counts`/`totals`/`sys_len`/`ref_len`; BP
//! is `exp(1 − ref_len/sys_len)` when `sys_len < ref_len` (0 when `sys_len` is 0), else 1. If no
//! n-gram matched at all the score is 0. Precisions (in percent) are: `exp` — a zero-match order
//! gets `100 / (2^k · total)` for its k-th zero; `floor(v)` — `100 · v / total`; `add-k(k)` —
//! `k` is added to counts and totals of orders ≥ 2; `none` — 0. An order with no hypothesis
//! n-grams stops the loop (its precision and the rest stay 0). The score is
//! `BP · exp(Σ log pₙ / N)` with log 0 taken as −9999999999, i.e. a zero precision gives 0.
//! [`Bleu::counts`]/[`Bleu::totals`] are the raw matches/totals: sacreBLEU's `add-k` reports
//! them with the `k` added, ours are without it.
//!
//! # Why fairseq's tokenized BLEU is sacreBLEU with `tokenize="none", smooth_method="none"`
//! `fairseq-generate` (with `--remove-bpe`) encodes the post-processed hypothesis and target
//! string with `Dictionary::encode_line`, which splits on whitespace (`\s+`) and maps each word
//! to an integer id (adding unseen words), so equal ids ⇔ equal words. `fairseq/scoring/bleu.py`
//! with `clib/libbleu` then sums per sentence: `predlen`/`reflen` (token counts, eos and pad
//! trimmed), and for n = 1..4 the number of hypothesis n-grams and the clipped matches (each
//! reference n-gram consumes one matching hypothesis occurrence, i.e. Σ min(hyp count, ref
//! count)). The score is `min(1, exp(1 − reflen/predlen)) · exp(Σ log pₙ / 4) · 100` with
//! `log 0 = −∞` — no smoothing, a single reference, no lowercasing. That is exactly sacreBLEU's
//! computation with the `none` tokenizer (whitespace split), `none` smoothing and one reference
//! stream (`crates/repro-core/tests/it/bleu.rs` checks our `fairseq_tokenized()` against sacreBLEU with those
//! options). Known differences, none of which arise for non-empty `--remove-bpe` output: fairseq
//! never matches the `<unk>` id in the reference; its right-trim never removes position 0, so an
//! empty hypothesis counts as one token (its eos); and it divides by zero on an empty corpus.
//! Its precisions are ratios multiplied by 100 afterwards, so the last bits of the score may
//! differ from ours, far below the reported two decimals.

use std::collections::HashMap;
use std::sync::LazyLock;

use anyhow::{Result, bail};
use regex::Regex;

/// How segments are split into tokens before n-gram matching.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tokenize {
    /// sacreBLEU's `13a` (mteval-v13a, WMT's tokenizer), its default.
    Tok13a,
    /// No tokenization: split on whitespace only (sacreBLEU's `none`; fairseq's BLEU4).
    None,
}

/// Smoothing of zero n-gram precisions (Chen & Cherry 2014), as sacreBLEU names them.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Smooth {
    /// `exp` (NIST, mteval-v13a): the k-th zero-match order gets precision 1/(2^k · total).
    Exp,
    /// `none`: a zero precision makes the score 0.
    None,
    /// `floor`: a zero-match order gets precision value/total (sacreBLEU's default value 0.1).
    Floor(f64),
    /// `add-k`: k added to matches and totals of orders ≥ 2 (sacreBLEU's default k = 1).
    AddK(f64),
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BleuOptions {
    pub tokenize: Tokenize,
    pub smooth: Smooth,
    pub lowercase: bool,
    /// Highest n-gram order (4).
    pub max_order: usize,
}

impl BleuOptions {
    /// sacreBLEU's `corpus_bleu` defaults: 13a, exp smoothing, case-sensitive, 4-grams.
    pub fn sacrebleu() -> Self {
        BleuOptions {
            tokenize: Tokenize::Tok13a,
            smooth: Smooth::Exp,
            lowercase: false,
            max_order: 4,
        }
    }

    /// fairseq-generate's `BLEU4`: whitespace tokens, no smoothing, case-sensitive, 4-grams.
    pub fn fairseq_tokenized() -> Self {
        BleuOptions {
            tokenize: Tokenize::None,
            smooth: Smooth::None,
            lowercase: false,
            max_order: 4,
        }
    }
}

impl Default for BleuOptions {
    fn default() -> Self {
        BleuOptions::sacrebleu()
    }
}

/// A corpus BLEU score and its sufficient statistics.
#[derive(Debug, Clone, PartialEq)]
pub struct Bleu {
    /// 0–100.
    pub score: f64,
    /// Clipped n-gram matches per order (1-grams first), without any add-k.
    pub counts: Vec<u64>,
    /// Hypothesis n-grams per order, without any add-k.
    pub totals: Vec<u64>,
    /// Smoothed precisions in percent, as they entered the score.
    pub precisions: Vec<f64>,
    /// Brevity penalty.
    pub bp: f64,
    pub sys_len: u64,
    pub ref_len: u64,
}

impl Bleu {
    /// `sys_len / ref_len`, 0 when `ref_len` is 0.
    pub fn ratio(&self) -> f64 {
        if self.ref_len == 0 {
            0.0
        } else {
            self.sys_len as f64 / self.ref_len as f64
        }
    }

    /// sacreBLEU's one-line format, e.g.
    /// `BLEU = 34.12 66.2/41.0/27.1/18.9 (BP = 0.995 ratio = 0.995 hyp_len = 2790 ref_len = 2804)`.
    pub fn format(&self) -> String {
        let prec: Vec<String> = self.precisions.iter().map(|p| format!("{p:.1}")).collect();
        format!(
            "BLEU = {:.2} {} (BP = {:.3} ratio = {:.3} hyp_len = {} ref_len = {})",
            self.score,
            prec.join("/"),
            self.bp,
            self.ratio(),
            self.sys_len,
            self.ref_len
        )
    }
}

/// Python's `str.isspace`: Unicode White_Space plus the ASCII separators U+001C–U+001F.
fn py_space(c: char) -> bool {
    c.is_whitespace() || ('\u{1c}'..='\u{1f}').contains(&c)
}

/// Python's `str.split()`.
fn py_split(s: &str) -> impl Iterator<Item = &str> {
    s.split(py_space).filter(|t| !t.is_empty())
}

static RE_13A: LazyLock<[(Regex, &'static str); 4]> = LazyLock::new(|| {
    let re = |p: &str| Regex::new(p).expect("13a regex");
    [
        // ASCII punctuation and symbols, except ' - . , (and digits/letters)
        (re(r"([\{-\~\[-\x60 -\&\(-\+:-@/])"), " ${1} "),
        // period and comma unless preceded by a digit
        (re(r"([^0-9])([\.,])"), "${1} ${2} "),
        // period and comma unless followed by a digit
        (re(r"([\.,])([^0-9])"), " ${1} ${2}"),
        // dash after a digit
        (re(r"([0-9])(-)"), "${1} ${2} "),
    ]
});

/// sacreBLEU's `13a` tokenizer on one line: tokens joined by single spaces.
pub fn tokenize_13a(line: &str) -> String {
    let mut s = line
        .replace("<skipped>", "")
        .replace("-\n", "")
        .replace('\n', " ");
    if s.contains('&') {
        s = s
            .replace("&quot;", "\"")
            .replace("&amp;", "&")
            .replace("&lt;", "<")
            .replace("&gt;", ">");
    }
    let mut s = format!(" {s} ");
    for (re, rep) in RE_13A.iter() {
        s = re.replace_all(&s, *rep).into_owned();
    }
    py_split(&s).collect::<Vec<_>>().join(" ")
}

/// A segment as sacreBLEU scores it: lowercased if asked, right-stripped, tokenized.
fn preprocess(seg: &str, opts: &BleuOptions) -> String {
    let lowered;
    let seg = if opts.lowercase {
        lowered = seg.to_lowercase();
        &lowered
    } else {
        seg
    };
    let seg = seg.trim_end_matches(py_space);
    match opts.tokenize {
        Tokenize::Tok13a => tokenize_13a(seg),
        Tokenize::None => seg.to_string(),
    }
}

fn ngram_counts<'a>(tokens: &'a [&'a str], max_order: usize) -> HashMap<&'a [&'a str], u64> {
    let mut m = HashMap::new();
    for n in 1..=max_order.min(tokens.len()) {
        for g in tokens.windows(n) {
            *m.entry(g).or_insert(0) += 1;
        }
    }
    m
}

/// The reference length closest to `hyp_len`, ties to the shorter.
fn closest_ref_len(hyp_len: usize, ref_lens: &[usize]) -> usize {
    let mut best: Option<(usize, usize)> = None; // (diff, len)
    for &r in ref_lens {
        let d = hyp_len.abs_diff(r);
        best = match best {
            Some((bd, bl)) if d > bd || (d == bd && r >= bl) => Some((bd, bl)),
            _ => Some((d, r)),
        };
    }
    best.map_or(0, |(_, l)| l)
}

/// Corpus BLEU of `hyps` (one per segment) against one or more reference streams, each as long
/// as `hyps`.
pub fn corpus_bleu<H, R>(hyps: &[H], refs: &[Vec<R>], opts: &BleuOptions) -> Result<Bleu>
where
    H: AsRef<str>,
    R: AsRef<str>,
{
    if hyps.is_empty() {
        bail!("BLEU of an empty corpus: no hypotheses");
    }
    if refs.is_empty() {
        bail!("BLEU needs at least one reference stream, got none");
    }
    for (i, r) in refs.iter().enumerate() {
        if r.len() != hyps.len() {
            bail!(
                "reference stream {i} has {} segments but there are {} hypotheses",
                r.len(),
                hyps.len()
            );
        }
    }
    if opts.max_order == 0 {
        bail!("BLEU max_order must be at least 1");
    }
    let order = opts.max_order;
    let mut counts = vec![0u64; order];
    let mut totals = vec![0u64; order];
    let (mut sys_len, mut ref_len) = (0u64, 0u64);

    for (i, hyp) in hyps.iter().enumerate() {
        let ref_lines: Vec<String> = refs
            .iter()
            .map(|s| preprocess(s[i].as_ref(), opts))
            .collect();
        let ref_toks: Vec<Vec<&str>> = ref_lines.iter().map(|l| py_split(l).collect()).collect();
        let mut ref_max: HashMap<&[&str], u64> = HashMap::new();
        for t in &ref_toks {
            for (g, c) in ngram_counts(t, order) {
                let e = ref_max.entry(g).or_insert(0);
                *e = (*e).max(c);
            }
        }
        let ref_lens: Vec<usize> = ref_toks.iter().map(Vec::len).collect();

        let hyp_line = preprocess(hyp.as_ref(), opts);
        let hyp_toks: Vec<&str> = py_split(&hyp_line).collect();
        sys_len += hyp_toks.len() as u64;
        ref_len += closest_ref_len(hyp_toks.len(), &ref_lens) as u64;
        for (g, c) in ngram_counts(&hyp_toks, order) {
            let n = g.len() - 1;
            totals[n] += c;
            if let Some(&rc) = ref_max.get(g) {
                counts[n] += c.min(rc);
            }
        }
    }
    Ok(score_from_stats(
        counts,
        totals,
        sys_len,
        ref_len,
        opts.smooth,
    ))
}

/// log, with log 0 floored as sacreBLEU does.
fn floored_log(x: f64) -> f64 {
    if x == 0.0 { -9999999999.0 } else { x.ln() }
}

/// The score from corpus statistics (sacreBLEU's `compute_bleu`, without effective order).
pub fn score_from_stats(
    counts: Vec<u64>,
    totals: Vec<u64>,
    sys_len: u64,
    ref_len: u64,
    smooth: Smooth,
) -> Bleu {
    let order = counts.len();
    let bp = if sys_len < ref_len {
        if sys_len > 0 {
            (1.0 - ref_len as f64 / sys_len as f64).exp()
        } else {
            0.0
        }
    } else {
        1.0
    };
    let mut precisions = vec![0.0f64; order];
    let mut bleu = Bleu {
        score: 0.0,
        counts,
        totals,
        precisions: Vec::new(),
        bp,
        sys_len,
        ref_len,
    };
    if bleu.counts.iter().all(|&c| c == 0) {
        bleu.precisions = precisions;
        return bleu;
    }
    let mut mteval = 1.0f64;
    for (n, precision) in precisions.iter_mut().enumerate() {
        let (mut c, mut t) = (bleu.counts[n] as f64, bleu.totals[n] as f64);
        if let Smooth::AddK(k) = smooth
            && n > 0
        {
            c += k;
            t += k;
        }
        if t == 0.0 {
            break;
        }
        if c == 0.0 {
            match smooth {
                Smooth::Exp => {
                    mteval *= 2.0;
                    *precision = 100.0 / (mteval * t);
                }
                Smooth::Floor(v) => *precision = 100.0 * v / t,
                Smooth::None | Smooth::AddK(_) => {}
            }
        } else {
            *precision = 100.0 * c / t;
        }
    }
    let sum = precisions.iter().fold(0.0, |a, &p| a + floored_log(p));
    bleu.score = bp * (sum / order as f64).exp();
    bleu.precisions = precisions;
    bleu
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn perfect_match_is_100() {
        let refs = vec![
            "The cat sat on the mat.".to_string(),
            "It's 3.5% (U.S.)".into(),
        ];
        for opts in [BleuOptions::sacrebleu(), BleuOptions::fairseq_tokenized()] {
            let b = corpus_bleu(&refs, std::slice::from_ref(&refs), &opts).unwrap();
            assert!((b.score - 100.0).abs() < 1e-9, "{}", b.format());
            assert_eq!(b.bp, 1.0);
            assert_eq!(b.counts, b.totals);
        }
    }

    #[test]
    fn no_match_is_0() {
        let b = corpus_bleu(&["a b c d"], &[vec!["e f g h"]], &BleuOptions::sacrebleu()).unwrap();
        assert_eq!(b.score, 0.0);
        assert_eq!(b.counts, vec![0; 4]);
        assert_eq!(b.totals, vec![4, 3, 2, 1]);
    }

    #[test]
    fn errors_are_clear() {
        let o = BleuOptions::sacrebleu();
        let e = corpus_bleu::<&str, &str>(&[], &[vec![]], &o).unwrap_err();
        assert!(e.to_string().contains("empty corpus"), "{e}");
        let e = corpus_bleu(&["a", "b"], &[vec!["a", "b"], vec!["a"]], &o).unwrap_err();
        assert!(
            e.to_string()
                .contains("reference stream 1 has 1 segments but there are 2 hypotheses"),
            "{e}"
        );
        let e = corpus_bleu::<_, &str>(&["a"], &[], &o).unwrap_err();
        assert!(e.to_string().contains("at least one reference"), "{e}");
    }

    #[test]
    fn closest_ref_ties_to_shorter() {
        assert_eq!(closest_ref_len(5, &[7, 3]), 3);
        assert_eq!(closest_ref_len(5, &[3, 7]), 3);
        assert_eq!(closest_ref_len(5, &[9, 6, 4]), 4);
        assert_eq!(closest_ref_len(5, &[9, 6]), 6);
    }

    #[test]
    fn tokenizer_13a_basics() {
        assert_eq!(tokenize_13a("Hello, world."), "Hello , world .");
        assert_eq!(tokenize_13a("3.5% of $1,000"), "3.5 % of $ 1,000");
        assert_eq!(tokenize_13a("don't"), "don't");
        assert_eq!(tokenize_13a("1990-2000 &amp; more"), "1990 - 2000 & more");
    }

    #[test]
    fn format_matches_sacrebleu_layout() {
        let b = score_from_stats(vec![6, 4, 2, 1], vec![8, 7, 6, 5], 8, 9, Smooth::Exp);
        let f = b.format();
        assert!(f.starts_with("BLEU = "), "{f}");
        assert!(f.ends_with("hyp_len = 8 ref_len = 9)"), "{f}");
    }
}
