//! `data::wikitext` against pytorch/examples `word_language_model` (`data.py`'s Dictionary and
//! Corpus, `main.py`'s batchify and get_batch, run literally by `tests/python/wikitext_reference.py`)
//! on a generated corpus and on line-ending/whitespace edge cases, plus hand-checked ids and the
//! error messages.

use std::fs;
use std::path::{Path, PathBuf};

use repro_core::data::ArchiveKind;
use repro_core::data::extract::{ExtractLimits, extract};
use repro_core::data::generate;
use repro_core::data::wikitext::{Corpus, find_folder};
use repro_torch::data::bptt::{batchify, get_batch};
use serde_json::{Value, json};
use tch::Tensor;

fn ids(v: &Value) -> Vec<i64> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_i64().unwrap())
        .collect()
}

fn flat(t: &Tensor) -> Vec<i64> {
    Vec::<i64>::try_from(t.reshape([-1])).unwrap()
}

fn write_splits(dir: &Path, train: &[u8], valid: &[u8], test: &[u8]) -> PathBuf {
    let folder = dir.join("wikitext-2");
    fs::create_dir_all(&folder).unwrap();
    fs::write(folder.join("wiki.train.tokens"), train).unwrap();
    fs::write(folder.join("wiki.valid.tokens"), valid).unwrap();
    fs::write(folder.join("wiki.test.tokens"), test).unwrap();
    folder
}

/// Compare `corpus` read from `folder` with the Python reference.
fn check_against_python(folder: &Path, corpus: &Corpus, words: &[&str], bsz: i64, bptt: i64) {
    let out = repro_testkit::run_script(
        "wikitext_reference.py",
        &[
            folder.as_os_str().to_owned(),
            json!(words).to_string().into(),
            bsz.to_string().into(),
            bptt.to_string().into(),
        ],
    );
    let r: Value = serde_json::from_str(&out).unwrap();
    let d = &corpus.dictionary;
    assert_eq!(
        d.len() as u64,
        r["vocab"].as_u64().unwrap(),
        "vocabulary size"
    );
    for w in words {
        assert_eq!(d.index(w), r["index"][w].as_i64(), "index of {w:?}");
    }
    let first_words: Vec<&str> = r["first_words"]
        .as_array()
        .unwrap()
        .iter()
        .map(|w| w.as_str().unwrap())
        .collect();
    let n = first_words.len();
    assert_eq!(&d.words()[..n], first_words.as_slice(), "first words");
    for (name, split) in [
        ("train", &corpus.train),
        ("valid", &corpus.valid),
        ("test", &corpus.test),
    ] {
        let s = &r[name];
        assert_eq!(
            split.len() as u64,
            s["len"].as_u64().unwrap(),
            "{name} length"
        );
        let k = split.len().min(1000);
        assert_eq!(split[..k], ids(&s["first"]), "{name} first ids");
        assert_eq!(split[split.len() - k..], ids(&s["last"]), "{name} last ids");
        assert_eq!(
            split.iter().sum::<i64>(),
            s["sum"].as_i64().unwrap(),
            "{name} sum"
        );
    }
    let b = &r["batchify"];
    let src = batchify(&corpus.train, bsz).unwrap();
    assert_eq!(src.size(), ids(&b["shape"]), "batchify shape");
    assert!(src.is_contiguous());
    assert_eq!(src.kind(), tch::Kind::Int64);
    for e in b["elements"].as_array().unwrap() {
        let e = ids(e);
        assert_eq!(
            src.int64_value(&[e[0], e[1]]),
            e[2],
            "batchify[{}, {}]",
            e[0],
            e[1]
        );
    }
    let last = b["last"].as_i64().unwrap();
    for i in [0, last] {
        let p = &b["batches"][i.to_string()];
        let (data, target) = get_batch(&src, i, bptt).unwrap();
        assert_eq!(
            data.size(),
            ids(&p["data_shape"]),
            "get_batch({i}) data shape"
        );
        assert_eq!(flat(&data), ids(&p["data"]), "get_batch({i}) data");
        assert_eq!(target.size(), vec![ids(&p["target"]).len() as i64]);
        assert_eq!(flat(&target), ids(&p["target"]), "get_batch({i}) target");
    }
}

#[test]
fn generated_corpus_matches_pytorch_examples() {
    let dir = tempfile::tempdir().unwrap();
    let params = json!({"vocab": 400, "train_tokens": 30_000, "valid_tokens": 4_000,
                        "test_tokens": 4_000, "seed": 5});
    let archive = generate::generate(
        "wikitext2",
        params.as_object().unwrap(),
        &dir.path().join("archive"),
    )
    .unwrap();
    let root = dir.path().join("extracted");
    extract(
        &archive[0],
        ArchiveKind::Zip,
        &root,
        &ExtractLimits::default(),
    )
    .unwrap();
    let corpus = Corpus::load(&root).unwrap();
    assert!(corpus.train.len() > 30_000 && corpus.valid.len() > 4_000);
    let folder = find_folder(&root).unwrap();
    assert_eq!(folder, root.join("wikitext-2"));
    check_against_python(
        &folder,
        &corpus,
        &[
            "<eos>",
            "<unk>",
            "=",
            "the",
            ",",
            "@-@",
            ".",
            "no-such-word",
        ],
        20,
        35,
    );
}

#[test]
fn line_endings_and_whitespace_match_python() {
    let dir = tempfile::tempdir().unwrap();
    let folder = write_splits(
        dir.path(),
        " a b \r\n c\rd \r\r\n\n e\u{a0}f\u{1c}g\u{2003}h \u{85} i\t\x0bj\x0ck \n".as_bytes(),
        "\r x a \r".as_bytes(),
        " é ü a b".as_bytes(),
    );
    let corpus = Corpus::load(dir.path()).unwrap();
    check_against_python(&folder, &corpus, &["a", "é", "x", "<eos>", "f"], 3, 2);
}

#[test]
fn tiny_corpus_known_ids() {
    let dir = tempfile::tempdir().unwrap();
    write_splits(
        dir.path(),
        b" = Title = \n \n the cat <unk> sat . \n",
        b" the dog sat . \n\n",
        b" <unk> dog ran",
    );
    let c = Corpus::load(dir.path()).unwrap();
    let words = [
        "=", "Title", "<eos>", "the", "cat", "<unk>", "sat", ".", "dog", "ran",
    ];
    assert_eq!(c.dictionary.words(), words);
    assert_eq!(c.dictionary.index("dog"), Some(8)); // first seen in valid
    assert_eq!(c.dictionary.index("ran"), Some(9)); // first seen in test
    assert_eq!(c.dictionary.word(5), Some("<unk>"));
    assert_eq!(c.dictionary.index("cow"), None);
    assert_eq!(c.train, [0, 1, 0, 2, 2, 3, 4, 5, 6, 7, 2]);
    assert_eq!(c.valid, [3, 8, 6, 7, 2, 2]);
    assert_eq!(c.test, [5, 8, 9, 2]);

    let src = batchify(&c.train, 2).unwrap();
    assert_eq!(src.size(), [5, 2]);
    assert_eq!(flat(&src), [0, 3, 1, 4, 0, 5, 2, 6, 2, 7]);
    let (data, target) = get_batch(&src, 0, 3).unwrap();
    assert_eq!(data.size(), [3, 2]);
    assert_eq!(flat(&data), [0, 3, 1, 4, 0, 5]);
    assert_eq!(flat(&target), [1, 4, 0, 5, 2, 6]);
    let (data, target) = get_batch(&src, 3, 3).unwrap();
    assert_eq!(data.size(), [1, 2]);
    assert_eq!(flat(&data), [2, 6]);
    assert_eq!(flat(&target), [2, 7]);

    assert!(get_batch(&src, 4, 3).is_err());
    assert!(get_batch(&src, -1, 3).is_err());
    assert!(get_batch(&src, 0, 0).is_err());
    assert!(batchify(&c.train, 0).is_err());
    let err = batchify(&c.train, 12).unwrap_err().to_string();
    assert!(err.contains("11 ids") && err.contains("12"), "{err}");
}

#[test]
fn errors_name_the_file_and_line() {
    let dir = tempfile::tempdir().unwrap();

    let err = format!("{:#}", Corpus::load(dir.path()).unwrap_err());
    for f in ["wikitext-2", "wikitext-103", "wiki.train.tokens"] {
        assert!(err.contains(f), "{err}");
    }

    let folder = write_splits(dir.path(), b" a \n", b" b \n", b" c \n");
    let test = folder.join("wiki.test.tokens");
    fs::remove_file(&test).unwrap();
    let err = format!("{:#}", Corpus::load(dir.path()).unwrap_err());
    assert!(err.contains(&test.display().to_string()), "{err}");

    write_splits(dir.path(), b" a \n", b" b \n c \n d \xff e \n", b" c \n");
    let err = format!("{:#}", Corpus::load(dir.path()).unwrap_err());
    assert!(
        err.contains("wiki.valid.tokens") && err.contains("line 3") && err.contains("UTF-8"),
        "{err}"
    );

    fs::create_dir_all(dir.path().join("wikitext-103")).unwrap();
    let err = format!("{:#}", Corpus::load(dir.path()).unwrap_err());
    assert!(err.contains("ambiguous"), "{err}");
}
