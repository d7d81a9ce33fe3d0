//! `data::iwslt` against fairseq's `prepare-iwslt14.sh` run step for step with the Python ports
//! of its tools (`tests/python/iwslt_prepare_reference.py`: sacremoses, subword-nmt) on a
//! generated `de-en.tgz`, plus the cache, the dictionaries and the errors.

use std::fs;
use std::path::{Path, PathBuf};

use repro_core::data::ArchiveKind;
use repro_core::data::extract::{ExtractLimits, extract};
use repro_core::data::generate;
use repro_core::data::iwslt::{Bitext, Dictionary, prepare, prepare_uncached};
use serde_json::json;

const MERGES: usize = 300;

fn generated(dir: &Path, train_pairs: u64) -> PathBuf {
    let params = json!({"vocab": 150, "train_pairs": train_pairs, "test_pairs": 30, "seed": 3});
    let archive =
        generate::generate("iwslt14", params.as_object().unwrap(), &dir.join("archive")).unwrap();
    let root = dir.join("extracted");
    extract(
        &archive[0],
        ArchiveKind::TarGz,
        &root,
        &ExtractLimits::default(),
    )
    .unwrap();
    root
}

fn lines(path: &Path) -> Vec<String> {
    fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .lines()
        .map(str::to_string)
        .collect()
}

#[test]
fn prepared_text_equals_the_script_run_with_sacremoses_and_subword_nmt() {
    let dir = tempfile::tempdir().unwrap();
    let root = generated(dir.path(), 2_000);
    let ours = prepare_uncached(&root, MERGES).unwrap();
    let theirs = dir.path().join("reference");
    repro_testkit::run_script(
        "iwslt_prepare_reference.py",
        &[
            root.join("de-en").into_os_string(),
            theirs.clone().into_os_string(),
            MERGES.to_string().into(),
        ],
    );
    let splits = [
        ("train.de", &ours.train.de),
        ("train.en", &ours.train.en),
        ("valid.de", &ours.valid.de),
        ("valid.en", &ours.valid.en),
        ("test.de", &ours.test.de),
        ("test.en", &ours.test.en),
    ];
    for (name, got) in splits {
        let want = lines(&theirs.join(name));
        assert_eq!(got.len(), want.len(), "{name}: line counts differ");
        let bad: Vec<_> = got
            .iter()
            .zip(&want)
            .enumerate()
            .filter(|(_, (g, w))| g != w)
            .take(3)
            .collect();
        assert!(bad.is_empty(), "{name}: first differing lines {bad:#?}");
    }
    assert_eq!(ours.codes, fs::read_to_string(theirs.join("code")).unwrap());
    // The script's split: every 23rd cleaned pair is validation; 5 test sets of 30 segments.
    let cleaned = ours.train.de.len() + ours.valid.de.len();
    assert_eq!(ours.valid.de.len(), cleaned / 23);
    assert_eq!(ours.test.de.len(), 5 * 30);
    // Lowercased, BPE-segmented, the German verb-final order kept.
    assert!(ours.train.de.iter().all(|l| l.to_lowercase() == *l));
    assert!(ours.train.en.iter().any(|l| l.contains("@@ ")));
}

#[test]
fn cache_is_reused_and_a_corrupt_one_is_prepared_again() {
    let dir = tempfile::tempdir().unwrap();
    let root = generated(dir.path(), 300);
    let first = prepare(&root, 50).unwrap();
    let cache = dir
        .path()
        .join("extracted.iwslt14.tokenized.de-en.bpe50-v1");
    assert!(cache.join("SHA256SUMS").is_file());
    assert_eq!(lines(&cache.join("test.en")), first.test.en);
    // A cache that fails its sums is not trusted: the text is prepared again and rewritten.
    fs::write(cache.join("train.de"), "tampered\n").unwrap();
    let again = prepare(&root, 50).unwrap();
    assert_eq!(again, first);
    assert_eq!(lines(&cache.join("train.de")), first.train.de);
    // Another merge count is another cache.
    let other = prepare(&root, 20).unwrap();
    assert_ne!(other.codes, first.codes);
}

#[test]
fn bitext_encodes_with_fairseq_dictionaries() {
    let dir = tempfile::tempdir().unwrap();
    let root = generated(dir.path(), 300);
    let p = prepare_uncached(&root, 40).unwrap();
    let b = Bitext::new(&p);
    assert_eq!(b.src_dict.len() % 8, 0);
    assert_eq!(b.tgt_dict.len() % 8, 0);
    assert_eq!(b.train.len(), p.train.de.len());
    for (pair, (de, en)) in b.train.iter().zip(p.train.de.iter().zip(&p.train.en)) {
        assert_eq!(pair.src.last(), Some(&Dictionary::EOS));
        assert_eq!(pair.src.len(), de.split(' ').count() + 1);
        assert_eq!(b.tgt_dict.decode(&pair.tgt), *en);
        assert!(
            !pair.src.contains(&Dictionary::UNK),
            "a training word is unknown"
        );
    }
    assert_eq!(b.test_refs.len(), b.test.len());
    assert!(b.test_refs.iter().all(|r| !r.contains("@@")));
}

#[test]
fn missing_layout_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let err = prepare_uncached(dir.path(), 10).unwrap_err().to_string();
    assert!(err.contains("expected the folder de-en/"), "{err}");
    let root = generated(dir.path(), 100);
    fs::remove_file(root.join("de-en/IWSLT14.TED.tst2011.de-en.en.xml")).unwrap();
    let err = format!("{:#}", prepare_uncached(&root, 10).unwrap_err());
    assert!(err.contains("IWSLT14.TED.tst2011.de-en.en.xml"), "{err}");
}
