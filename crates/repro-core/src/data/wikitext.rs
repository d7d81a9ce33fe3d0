//! WikiText-2 / WikiText-103 at word level, read exactly as pytorch/examples
//! `word_language_model/data.py` reads it (format `wikitext-tokens`).
//!
//! Layout: the extracted token-level zip, `<root>/wikitext-2/wiki.{train,valid,test}.tokens` or
//! `<root>/wikitext-103/wiki.{train,valid,test}.tokens` (see `generate::wikitext`).
//!
//! The protocol, replicated literally:
//! - Each split is tokenized in file order, train, then valid, then test. Every line of the file,
//!   blank lines included, becomes `line.split() + ['<eos>']`.
//! - [`Dictionary`] indices are given in order of first appearance over that whole sequence: a word
//!   first seen in valid or test gets a new index then, exactly as `data.py` adds words from every
//!   split it tokenizes. `data.py` reads each file twice (first adding every word, then looking
//!   them up); since indices never change once given, one pass that adds and looks up at once gives
//!   the same ids. `<unk>` is an ordinary word (the data already contains it); `<eos>` gets its
//!   index the first time a line ends.
//! - Lines are split as Python's text mode does (`\n`, `\r\n` and a lone `\r` end a line; a last
//!   line without terminator still counts) and words as `str.split()` does (runs of characters for
//!   which `str.isspace()` holds: Unicode `White_Space` plus the separators U+001C..U+001F).
//! - Files are UTF-8; anything else is an error naming the file and line (`data.py` opens them with
//!   `encoding="utf8"`).
//!
//! Its `batchify` and `get_batch`, which build tensors, are `repro_torch::data::bptt`.

use std::collections::HashMap;
use std::fs::File;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};

/// The end-of-line token appended to every line.
pub const EOS: &str = "<eos>";
/// Folders holding the split files, looked for under the dataset root in this order.
pub const FOLDERS: [&str; 2] = ["wikitext-2", "wikitext-103"];
/// The split files, in the order they are tokenized.
pub const SPLITS: [&str; 3] = ["wiki.train.tokens", "wiki.valid.tokens", "wiki.test.tokens"];

/// Word ↔ index, indices in order of first appearance (`data.py`'s `Dictionary`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Dictionary {
    word2idx: HashMap<String, i64>,
    idx2word: Vec<String>,
}

impl Dictionary {
    /// An empty dictionary.
    pub fn new() -> Self {
        Self::default()
    }

    /// The index of `word`, adding it at the end if new (`add_word`). Allocates only for new words.
    pub fn add_word(&mut self, word: &str) -> i64 {
        if let Some(&i) = self.word2idx.get(word) {
            return i;
        }
        let i = self.idx2word.len() as i64;
        self.idx2word.push(word.to_string());
        self.word2idx.insert(word.to_string(), i);
        i
    }

    /// The index of `word`, if known.
    pub fn index(&self, word: &str) -> Option<i64> {
        self.word2idx.get(word).copied()
    }

    /// The word at `index`, if any.
    pub fn word(&self, index: i64) -> Option<&str> {
        usize::try_from(index)
            .ok()
            .and_then(|i| self.idx2word.get(i))
            .map(String::as_str)
    }

    /// Words in index order (`idx2word`).
    pub fn words(&self) -> &[String] {
        &self.idx2word
    }

    /// Number of words (`len(dictionary)`, the model's vocabulary size).
    pub fn len(&self) -> usize {
        self.idx2word.len()
    }

    /// Whether no word was added yet.
    pub fn is_empty(&self) -> bool {
        self.idx2word.is_empty()
    }
}

/// The three splits as ids into one shared dictionary (`data.py`'s `Corpus`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Corpus {
    pub dictionary: Dictionary,
    pub train: Vec<i64>,
    pub valid: Vec<i64>,
    pub test: Vec<i64>,
}

impl Corpus {
    /// Read the corpus extracted under `root` (`root/wikitext-2/` or `root/wikitext-103/`).
    pub fn load(root: &Path) -> Result<Corpus> {
        Corpus::from_folder(&find_folder(root)?)
    }

    /// Read `wiki.{train,valid,test}.tokens` from `dir` itself.
    pub fn from_folder(dir: &Path) -> Result<Corpus> {
        let mut dictionary = Dictionary::new();
        let [train, valid, test] = SPLITS.map(|name| dir.join(name));
        let train = tokenize(&train, &mut dictionary)?;
        let valid = tokenize(&valid, &mut dictionary)?;
        let test = tokenize(&test, &mut dictionary)?;
        Ok(Corpus {
            dictionary,
            train,
            valid,
            test,
        })
    }
}

/// The folder under `root` holding the split files: the one of [`FOLDERS`] that exists.
pub fn find_folder(root: &Path) -> Result<PathBuf> {
    let found: Vec<PathBuf> = FOLDERS
        .iter()
        .map(|f| root.join(f))
        .filter(|p| p.is_dir())
        .collect();
    match found.as_slice() {
        [one] => Ok(one.clone()),
        [] => bail!(
            "no WikiText folder under {}: looked for {} holding {}",
            root.display(),
            FOLDERS
                .map(|f| root.join(f).display().to_string())
                .join(" and "),
            SPLITS.join(", ")
        ),
        _ => bail!(
            "ambiguous WikiText root {}: both {} exist",
            root.display(),
            found
                .iter()
                .map(|p| p.display().to_string())
                .collect::<Vec<_>>()
                .join(" and ")
        ),
    }
}

/// Python's `str.isspace()` for one character.
fn is_python_space(c: char) -> bool {
    c.is_whitespace() || ('\u{1c}'..='\u{1f}').contains(&c)
}

/// Append the ids of one line's words and `<eos>`.
fn push_line(line: &str, dictionary: &mut Dictionary, ids: &mut Vec<i64>) {
    for word in line.split(is_python_space).filter(|w| !w.is_empty()) {
        ids.push(dictionary.add_word(word));
    }
    ids.push(dictionary.add_word(EOS));
}

/// Tokenize one file into ids, adding new words to `dictionary` (`Corpus.tokenize`).
///
/// An empty file gives no ids (where `data.py`'s `torch.cat` of no lines would raise).
pub fn tokenize(path: &Path, dictionary: &mut Dictionary) -> Result<Vec<i64>> {
    let file = File::open(path).with_context(|| format!("opening {}", path.display()))?;
    let size = file.metadata().map(|m| m.len()).unwrap_or(0);
    let mut reader = BufReader::with_capacity(1 << 20, file);
    // About one token per 5.5 bytes in WikiText; a hint only.
    let mut ids = Vec::with_capacity((size / 5) as usize);
    let mut chunk = Vec::new();
    let mut line_no = 0usize;
    loop {
        chunk.clear();
        let n = reader
            .read_until(b'\n', &mut chunk)
            .with_context(|| format!("reading {} after line {line_no}", path.display()))?;
        if n == 0 {
            break;
        }
        line_no += 1;
        let text = std::str::from_utf8(&chunk).map_err(|e| {
            anyhow::anyhow!(
                "{}: line {line_no}: invalid UTF-8 at byte {} of the line",
                path.display(),
                e.valid_up_to() + 1
            )
        })?;
        let body = text.strip_suffix('\n').unwrap_or(text);
        // A lone `\r` also ends a line (Python's universal newlines); `\r\n` ends one line.
        let body = body.strip_suffix('\r').unwrap_or(body);
        for line in body.split('\r') {
            push_line(line, dictionary, &mut ids);
        }
    }
    Ok(ids)
}
