//! IWSLT'14 German→English as fairseq prepares and binarizes it (format `iwslt14-de-en`):
//! `examples/translation/prepare-iwslt14.sh`, then `fairseq-preprocess` with separate
//! dictionaries, then `LanguagePairDataset` and `batch_by_size` batches.
//!
//! Layout: the extracted `de-en.tgz`, `<root>/de-en/train.tags.de-en.{de,en}` and
//! `<root>/de-en/IWSLT14.TED{,X}.*.de-en.{de,en}.xml` (see `generate::iwslt`).
//!
//! The script, step by step ([`prepare`]):
//! - train: drop the lines holding `<url>`, `<talkid>` or `<keywords>`; delete the `<title>`,
//!   `</title>`, `<description>`, `</description>` tags (their text stays); Moses-tokenize;
//!   clean-corpus-n with ratio 1.5, 1–175 words; lowercase. Every 23rd pair (1-based line numbers
//!   divisible by 23) is the validation set, the rest the training set.
//! - test: the `<seg id>` lines of dev2010, TEDX dev2012, tst2010, tst2011 and tst2012 in that
//!   order, the tags and the whitespace around them removed, `’` → `'`, Moses-tokenized,
//!   lowercased (no cleaning).
//! - joint BPE: 10,000 merges (the stage's `bpe_merges`) learned on train.de followed by train.en,
//!   applied to all six files.
//!
//! The prepared text is cached beside the extraction folder in the script's output layout
//! (`train.de` … `test.en`, `code`) with a `SHA256SUMS` file checked on every load; the
//! extraction folder is content-addressed, so the cache never goes stale, and a cache that fails
//! its sums is prepared again.
//!
//! [`Dictionary`] is fairseq's (`<s>` 0, `<pad>` 1, `</s>` 2, `<unk>` 3, then the training
//! symbols by count, ties by symbol, padded with `madeupwordNNNN` to a multiple of 8);
//! [`batch_by_size`] is `fairseq.data.data_utils.batch_by_size` with `max_tokens` and
//! `required_batch_size_multiple` 8.

use std::collections::HashMap;
use std::fs;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use sha2::{Digest, Sha256};

use super::text::bpe::Bpe;
use super::text::moses::{MosesTokenizer, clean_pair, lowercase};
use crate::store::atomic::{rename_durable, sync_dir, write_atomic};

/// The folder inside the archive.
pub const FOLDER: &str = "de-en";
/// The test sets the script concatenates, in its order.
pub const TEST_SETS: [&str; 5] = [
    "IWSLT14.TED.dev2010",
    "IWSLT14.TEDX.dev2012",
    "IWSLT14.TED.tst2010",
    "IWSLT14.TED.tst2011",
    "IWSLT14.TED.tst2012",
];
/// clean-corpus-n.perl's arguments in the script.
const CLEAN_RATIO: f64 = 1.5;
const CLEAN_MIN: usize = 1;
const CLEAN_MAX: usize = 175;
/// Every `VALID_EVERY`-th cleaned training pair is held out for validation.
const VALID_EVERY: usize = 23;
/// Version of the prepared cache's layout and of the steps above; part of its folder name.
const PREPARED_VERSION: u32 = 1;

/// One split of the prepared text: line-aligned German and English.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Split {
    pub de: Vec<String>,
    pub en: Vec<String>,
}

/// The script's output: BPE-segmented train/valid/test text and the BPE codes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Prepared {
    pub train: Split,
    pub valid: Split,
    pub test: Split,
    pub codes: String,
}

const SPLIT_FILES: [&str; 6] = [
    "train.de", "train.en", "valid.de", "valid.en", "test.de", "test.en",
];

/// The prepared text of the dataset extracted at `root`, from the cache or made (and cached).
pub fn prepare(root: &Path, bpe_merges: usize) -> Result<Prepared> {
    let cache = cache_dir(root, bpe_merges);
    if cache.is_dir() {
        match read_prepared(&cache) {
            Ok(p) => return Ok(p),
            Err(e) => {
                tracing::warn!("preparing again: the cache {} {e:#}", cache.display());
                fs::remove_dir_all(&cache)
                    .with_context(|| format!("removing the bad cache {}", cache.display()))?;
            }
        }
    }
    let prepared = prepare_uncached(root, bpe_merges)?;
    write_prepared(&cache, &prepared)
        .with_context(|| format!("writing the prepared text to {}", cache.display()))?;
    Ok(prepared)
}

fn cache_dir(root: &Path, bpe_merges: usize) -> PathBuf {
    let mut name = root.file_name().unwrap_or_default().to_os_string();
    name.push(format!(
        ".iwslt14.tokenized.de-en.bpe{bpe_merges}-v{PREPARED_VERSION}"
    ));
    root.with_file_name(name)
}

/// Run the script's steps on the extracted upstream files (no cache).
pub fn prepare_uncached(root: &Path, bpe_merges: usize) -> Result<Prepared> {
    let dir = root.join(FOLDER);
    if !dir.is_dir() {
        bail!(
            "{} is not an IWSLT'14 de-en extraction: expected the folder {FOLDER}/ from de-en.tgz",
            root.display()
        );
    }
    // German and English are independent until cleaning: one thread each.
    let (de, en) = std::thread::scope(|s| {
        let de = s.spawn(|| tokenized_sides(&dir, "de"));
        let en = tokenized_sides(&dir, "en");
        (de.join().expect("the German side does not panic"), en)
    });
    let ((train_de, test_de), (train_en, test_en)) = (de?, en?);
    if train_de.len() != train_en.len() {
        bail!(
            "train.tags.de-en.de has {} lines after filtering and train.tags.de-en.en {}: \
             the two sides must be line-aligned",
            train_de.len(),
            train_en.len()
        );
    }
    if test_de.len() != test_en.len() {
        bail!(
            "the German test sets have {} segments and the English ones {}: they must be aligned",
            test_de.len(),
            test_en.len()
        );
    }
    let (mut train, mut valid) = (Split::default(), Split::default());
    let cleaned = train_de
        .iter()
        .zip(&train_en)
        .filter_map(|(d, e)| clean_pair(d, e, CLEAN_RATIO, CLEAN_MIN, CLEAN_MAX));
    for (i, (d, e)) in cleaned.enumerate() {
        let split = if (i + 1) % VALID_EVERY == 0 {
            &mut valid
        } else {
            &mut train
        };
        split.de.push(lowercase(&d));
        split.en.push(lowercase(&e));
    }
    if train.de.is_empty() || valid.de.is_empty() || test_de.is_empty() {
        bail!(
            "{}: the prepared splits are empty or too small (train {}, valid {}, test {} pairs)",
            dir.display(),
            train.de.len(),
            valid.de.len(),
            test_de.len()
        );
    }
    let test = Split {
        de: test_de,
        en: test_en,
    };
    let bpe = Bpe::learn(
        train.de.iter().chain(&train.en).map(String::as_str),
        bpe_merges,
    )
    .context("learning the joint BPE on train.de + train.en")?;
    let apply = |lines: &[String]| lines.iter().map(|l| bpe.apply(l)).collect::<Vec<_>>();
    let seg = |s: &Split| Split {
        de: apply(&s.de),
        en: apply(&s.en),
    };
    Ok(Prepared {
        train: seg(&train),
        valid: seg(&valid),
        test: seg(&test),
        codes: bpe.to_codes(),
    })
}

/// The tokenized training lines (before cleaning) and the tokenized, lowercased test segments of
/// one language.
fn tokenized_sides(dir: &Path, lang: &str) -> Result<(Vec<String>, Vec<String>)> {
    let tok = MosesTokenizer::new(lang)?;
    let path = dir.join(format!("train.tags.de-en.{lang}"));
    let text = read_utf8(&path)?;
    let train = text
        .lines()
        .filter(|l| {
            !["<url>", "<talkid>", "<keywords>"]
                .iter()
                .any(|t| l.contains(t))
        })
        .map(|l| {
            let l = ["<title>", "</title>", "<description>", "</description>"]
                .iter()
                .fold(l.to_string(), |l, t| l.replace(t, ""));
            tok.tokenize(&l)
        })
        .collect();
    let mut test = Vec::new();
    for set in TEST_SETS {
        let path = dir.join(format!("{set}.de-en.{lang}.xml"));
        let text = read_utf8(&path)?;
        let before = test.len();
        for line in text.lines().filter(|l| l.contains("<seg id")) {
            let seg = strip_seg(line).replace('\u{2019}', "'");
            test.push(lowercase(&tok.tokenize(&seg)));
        }
        if test.len() == before {
            bail!("{} has no <seg id=…> lines", path.display());
        }
    }
    Ok((train, test))
}

/// The script's `sed -e 's/<seg id="[0-9]*">\s*//g' -e 's/\s*<\/seg>\s*//g'` on one line.
fn strip_seg(line: &str) -> String {
    static OPEN: std::sync::LazyLock<regex::Regex> =
        std::sync::LazyLock::new(|| regex::Regex::new(r#"<seg id="[0-9]*">\s*"#).unwrap());
    static CLOSE: std::sync::LazyLock<regex::Regex> =
        std::sync::LazyLock::new(|| regex::Regex::new(r"\s*</seg>\s*").unwrap());
    let line = OPEN.replace_all(line, "");
    CLOSE.replace_all(&line, "").into_owned()
}

fn read_utf8(path: &Path) -> Result<String> {
    let bytes = fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    String::from_utf8(bytes).map_err(|e| {
        let at = e.utf8_error().valid_up_to();
        let line = e.as_bytes()[..at].iter().filter(|&&b| b == b'\n').count() + 1;
        anyhow::anyhow!("{}:{line}: not valid UTF-8", path.display())
    })
}

fn write_prepared(dir: &Path, p: &Prepared) -> Result<()> {
    let parent = dir.parent().context("the cache folder has a parent")?;
    let tmp = parent.join(format!(
        ".{}.tmp-{}",
        dir.file_name().unwrap_or_default().to_string_lossy(),
        std::process::id()
    ));
    let _ = fs::remove_dir_all(&tmp);
    fs::create_dir_all(&tmp)?;
    let mut sums = String::new();
    let splits = [
        &p.train.de,
        &p.train.en,
        &p.valid.de,
        &p.valid.en,
        &p.test.de,
        &p.test.en,
    ];
    let mut write = |name: &str, text: &str| -> Result<()> {
        write_atomic(&tmp.join(name), text.as_bytes())?;
        sums.push_str(&format!("{}  {name}\n", hex::encode(Sha256::digest(text))));
        Ok(())
    };
    for (name, lines) in SPLIT_FILES.iter().zip(splits) {
        write(name, &join_lines(lines))?;
    }
    write("code", &p.codes)?;
    write_atomic(&tmp.join("SHA256SUMS"), sums.as_bytes())?;
    sync_dir(&tmp)?;
    // Another run may have prepared the same cache meanwhile: theirs is as good as ours.
    if let Err(e) = rename_durable(&tmp, dir) {
        let _ = fs::remove_dir_all(&tmp);
        if !dir.is_dir() {
            return Err(e.into());
        }
    }
    Ok(())
}

fn join_lines(lines: &[String]) -> String {
    let mut s = lines.join("\n");
    s.push('\n');
    s
}

fn read_prepared(dir: &Path) -> Result<Prepared> {
    let sums = fs::read_to_string(dir.join("SHA256SUMS")).context("has no SHA256SUMS")?;
    let mut files = HashMap::new();
    for line in sums.lines() {
        let (sum, name) = line
            .split_once("  ")
            .context("has a malformed SHA256SUMS")?;
        let text = read_utf8(&dir.join(name))?;
        if hex::encode(Sha256::digest(&text)) != sum {
            bail!("fails its SHA256SUMS at {name}");
        }
        files.insert(name.to_string(), text);
    }
    let mut take = |name: &str| -> Result<String> {
        files
            .remove(name)
            .with_context(|| format!("lacks {name} in SHA256SUMS"))
    };
    let lines = |s: String| s.lines().map(str::to_string).collect::<Vec<_>>();
    let mut split = |a: &str, b: &str| -> Result<Split> {
        Ok(Split {
            de: lines(take(a)?),
            en: lines(take(b)?),
        })
    };
    Ok(Prepared {
        train: split("train.de", "train.en")?,
        valid: split("valid.de", "valid.en")?,
        test: split("test.de", "test.en")?,
        codes: take("code")?,
    })
}

/// fairseq's `--remove-bpe` for subword-nmt output: `(line + " ").replace("@@ ", "").rstrip()`.
pub fn remove_bpe(line: &str) -> String {
    let mut s = format!("{line} ").replace("@@ ", "");
    s.truncate(s.trim_end().len());
    s
}

/// fairseq's `Dictionary` as `fairseq-preprocess` builds it (threshold 0, all words, padding
/// factor 8).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dictionary {
    symbols: Vec<String>,
    index: HashMap<String, i64>,
}

impl Dictionary {
    pub const BOS: i64 = 0;
    pub const PAD: i64 = 1;
    pub const EOS: i64 = 2;
    pub const UNK: i64 = 3;
    const SPECIAL: [&'static str; 4] = ["<s>", "<pad>", "</s>", "<unk>"];
    const PADDING_FACTOR: usize = 8;

    /// Count the words of `lines` (plus one `</s>` per line, as fairseq counts) and finalize.
    pub fn build<'a>(lines: impl IntoIterator<Item = &'a str>) -> Dictionary {
        let mut counts: HashMap<&str, u64> = HashMap::new();
        for line in lines {
            for w in line.split_whitespace() {
                *counts.entry(w).or_default() += 1;
            }
        }
        let mut words: Vec<(&str, u64)> = counts
            .into_iter()
            .filter(|(w, _)| !Self::SPECIAL.contains(w))
            .collect();
        // Count descending, ties by symbol: Counter(sorted(...)).most_common() in finalize.
        words.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(b.0)));
        let mut symbols: Vec<String> = Self::SPECIAL.iter().map(|s| s.to_string()).collect();
        symbols.extend(words.into_iter().map(|(w, _)| w.to_string()));
        let mut i = 0;
        while !symbols.len().is_multiple_of(Self::PADDING_FACTOR) {
            symbols.push(format!("madeupword{i:04}"));
            i += 1;
        }
        let index = symbols
            .iter()
            .enumerate()
            .map(|(i, s)| (s.clone(), i as i64))
            .collect();
        Dictionary { symbols, index }
    }

    pub fn len(&self) -> usize {
        self.symbols.len()
    }

    pub fn is_empty(&self) -> bool {
        self.symbols.is_empty()
    }

    /// `encode_line`: the words' ids (unknown words → `<unk>`), then `</s>`.
    pub fn encode(&self, line: &str) -> Vec<i64> {
        line.split_whitespace()
            .map(|w| self.index.get(w).copied().unwrap_or(Self::UNK))
            .chain([Self::EOS])
            .collect()
    }

    /// `string()`: the symbols of `ids` joined by spaces, stopping at `</s>`, pads skipped.
    pub fn decode(&self, ids: &[i64]) -> String {
        ids.iter()
            .take_while(|&&i| i != Self::EOS)
            .filter(|&&i| i != Self::PAD)
            .map(|&i| self.symbols.get(i as usize).map_or("<unk>", String::as_str))
            .collect::<Vec<_>>()
            .join(" ")
    }
}

/// One sentence pair as token ids, both ending in `</s>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pair {
    pub src: Vec<i64>,
    pub tgt: Vec<i64>,
}

/// The binarized dataset: dictionaries built on the training split, every split encoded, and the
/// test references as text (BPE removed) for BLEU.
pub struct Bitext {
    pub src_dict: Dictionary,
    pub tgt_dict: Dictionary,
    pub train: Vec<Pair>,
    pub valid: Vec<Pair>,
    pub test: Vec<Pair>,
    pub test_refs: Vec<String>,
}

impl Bitext {
    pub fn new(p: &Prepared) -> Bitext {
        let src_dict = Dictionary::build(p.train.de.iter().map(String::as_str));
        let tgt_dict = Dictionary::build(p.train.en.iter().map(String::as_str));
        let encode = |s: &Split| -> Vec<Pair> {
            s.de.iter()
                .zip(&s.en)
                .map(|(d, e)| Pair {
                    src: src_dict.encode(d),
                    tgt: tgt_dict.encode(e),
                })
                .collect()
        };
        Bitext {
            train: encode(&p.train),
            valid: encode(&p.valid),
            test: encode(&p.test),
            test_refs: p.test.en.iter().map(|l| remove_bpe(l)).collect(),
            src_dict,
            tgt_dict,
        }
    }
}

/// fairseq's `batch_by_size` as fairseq 0.12 runs it for a `LanguagePairDataset`
/// (`data_utils_fast.batch_by_size_vec`, num_tokens = max(source, target) length, no sentence
/// limit), ported step for step: a batch grows while (sentences × longest) stays within
/// `max_tokens`, and its end is only moved when its size is below `multiple` or a multiple of
/// it; on overflow the sentences since the last such end (the tail) open the next batch — or,
/// when the tail alone overflows too, close one of their own. The remainder is the last batch.
pub fn batch_by_size(
    order: &[usize],
    num_tokens: impl Fn(usize) -> usize,
    max_tokens: usize,
    multiple: usize,
) -> Vec<Vec<usize>> {
    let tokens: Vec<usize> = order.iter().map(|&i| num_tokens(i)).collect();
    // ends[k]: end (exclusive) of batch k; ends[count] is the end of the running batch. A
    // position closes at most two batches.
    let mut ends = vec![0usize; 2 * order.len() + 2];
    let mut count = 0;
    let (mut batch_start, mut batch_max, mut tail_max) = (0usize, 0usize, 0usize);
    for (pos, &n) in tokens.iter().enumerate() {
        tail_max = tail_max.max(n);
        let new_end = pos + 1;
        let mut new_max = batch_max.max(tail_max);
        let sentences = new_end - batch_start;
        let overflow = max_tokens > 0 && sentences * new_max > max_tokens;
        let size_matches = sentences < multiple || sentences.is_multiple_of(multiple);
        if overflow {
            let tail_tokens = tail_max * (new_end - ends[count]);
            if max_tokens > 0 && tail_tokens > max_tokens {
                count += 1;
                ends[count] = pos;
                tail_max = n;
            }
            batch_start = ends[count];
            count += 1;
            new_max = tail_max;
        }
        if overflow || size_matches {
            ends[count] = new_end;
            batch_max = new_max;
            tail_max = 0;
        }
    }
    if ends[count] != order.len() {
        count += 1;
    }
    // np.split(indices, ends[:count]): empty pieces included, as fairseq's are (never, in
    // practice: a piece is empty only when two ends coincide).
    let mut batches = Vec::with_capacity(count + 1);
    let mut start = 0;
    for &end in &ends[..count] {
        batches.push(order[start..end].to_vec());
        start = end;
    }
    batches.push(order[start..].to_vec());
    batches.retain(|b| !b.is_empty());
    batches
}

/// `LanguagePairDataset.ordered_indices` on a shuffled order: stable sort by target length, then
/// by source length (so source length first, target length second, `shuffled` order third).
pub fn ordered_indices(pairs: &[Pair], shuffled: Vec<usize>) -> Vec<usize> {
    let mut order = shuffled;
    order.sort_by_key(|&i| pairs[i].tgt.len());
    order.sort_by_key(|&i| pairs[i].src.len());
    order
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dictionary_orders_by_count_then_symbol_and_pads_to_eight() {
        let d = Dictionary::build(["b a c a", "b a x"]);
        // a:3, b:2, then c and x (1 each) by symbol; 4 specials + 4 words = 8, no padding.
        assert_eq!(d.len(), 8);
        assert_eq!(d.encode("a b c x zz"), vec![4, 5, 6, 7, Dictionary::UNK, 2]);
        let d = Dictionary::build(["a"]);
        assert_eq!(d.len(), 8);
        assert_eq!(d.decode(&[4, 1, 5, 2, 4]), "a madeupword0000");
    }

    #[test]
    fn batches_follow_fairseq_rule() {
        // Lengths 3 each, max_tokens 10: 3 sentences fit (9), the 4th would make 12.
        let order: Vec<usize> = (0..7).collect();
        let b = batch_by_size(&order, |_| 3, 10, 1);
        assert_eq!(b, vec![vec![0, 1, 2], vec![3, 4, 5], vec![6]]);
        // With multiple 2 a batch ends only at an even size: [0, 1] closes, 2 is the tail that
        // opens the next; the remainder [6] is a batch of its own (as batch_by_size_vec gives).
        let b = batch_by_size(&order, |_| 3, 10, 2);
        assert_eq!(b, vec![vec![0, 1], vec![2, 3], vec![4, 5], vec![6]]);
        // Growing lengths: the batch takes the longest one's length; [2, 2] then 4 would make
        // 3 × 4 = 12 > 10, and the tail [4] grows to [4, 4].
        let lens = [2, 2, 4, 4, 5];
        let b = batch_by_size(&(0..5).collect::<Vec<_>>(), |i| lens[i], 10, 1);
        assert_eq!(b, vec![vec![0, 1], vec![2, 3], vec![4]]);
        // A sentence longer than max_tokens (fairseq asserts there are none) still gets a batch.
        let b = batch_by_size(&[0, 1], |i| if i == 0 { 50 } else { 2 }, 10, 8);
        assert_eq!(b, vec![vec![0], vec![1]]);
    }

    #[test]
    fn removes_bpe_and_strips_seg_tags() {
        assert_eq!(remove_bpe("wir@@ k@@ lich gut@@"), "wirklich gut");
        assert_eq!(
            strip_seg(r#"<seg id="12">  Hallo Welt.  </seg> "#),
            "Hallo Welt."
        );
    }

    #[test]
    fn orders_by_source_then_target_length() {
        let p = |s: usize, t: usize| Pair {
            src: vec![0; s],
            tgt: vec![0; t],
        };
        let pairs = [p(3, 1), p(2, 5), p(2, 2), p(3, 1)];
        assert_eq!(ordered_indices(&pairs, vec![3, 0, 1, 2]), vec![2, 1, 3, 0]);
    }
}
