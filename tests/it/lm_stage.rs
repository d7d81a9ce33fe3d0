//! End to end on a generated WikiText-2: the `lm` stage against pytorch/examples' training
//! protocol run in PyTorch itself (tests/python/lm_train_reference.py, from the stage's own
//! initial weights, dropout 0), V1/V2 at λ = 0 being the same plain Adam to the bit, the drown-out
//! diagnostic's columns and layer groups, and learning well below the unigram perplexity.

use std::collections::HashMap;
use std::path::PathBuf;

use crate::common::{Project, ok};
use serde_json::Value;

const PIPELINE: &str = r#"version: 1
salt: test
datasets:
  wikitext2:
    format: wikitext-tokens
    files: [{name: wikitext-2-v1.zip, md5: 542ccefacc6c27f945fb54453812b3cd}]
    extract: zip
    generate:
      generator: wikitext2
      params: {vocab: 200, train_tokens: 4000, valid_tokens: 800, test_tokens: 800, seed: 3}
experiments:
  lm:
    kind: lm
    datasets: [wikitext2]
    determinism: bitwise
    params:
      {d_model: 16, heads: 2, layers: 1, ffn: 32, dropout: 0.0, epochs: 3, batch_size: 8,
       eval_batch_size: 4, bptt: 16, lr: 0.003, norm_first: true, tie_embeddings: true,
       drown_out_every: 5}
    grid:
      variant: [adam_l2, adamw]
      weight_decay: [0.0, 0.1]
profiles:
  smoke:
    threads: 1
    datasets:
      wikitext2: {source: generate}
"#;

fn f(v: &Value) -> f64 {
    v.as_f64().unwrap_or_else(|| panic!("not a number: {v}"))
}

/// The folder holding the generated corpus's split files.
fn corpus_dir(p: &Project) -> PathBuf {
    walkdir::WalkDir::new(p.path().join("datasets"))
        .into_iter()
        .filter_map(Result::ok)
        .find(|e| e.file_name() == "wiki.train.tokens")
        .map(|e| e.path().parent().unwrap().to_path_buf())
        .expect("the generated corpus is extracted under datasets/")
}

/// Perplexity of the validation split under the training split's unigram distribution (add-one
/// smoothed over the vocabulary): the baseline a language model has to beat.
fn unigram_ppl(dir: &std::path::Path) -> f64 {
    let corpus = repro_core::data::wikitext::Corpus::from_folder(dir).unwrap();
    let v = corpus.dictionary.len();
    let mut counts: HashMap<i64, f64> = HashMap::new();
    for id in &corpus.train {
        *counts.entry(*id).or_default() += 1.0;
    }
    let total = corpus.train.len() as f64 + v as f64;
    let nll: f64 = corpus
        .valid
        .iter()
        .map(|id| -((counts.get(id).copied().unwrap_or(0.0) + 1.0) / total).ln())
        .sum();
    (nll / corpus.valid.len() as f64).exp()
}

#[test]
fn lm_stage_matches_pytorch_and_tracks_drown_out() {
    let p = Project::new(PIPELINE);
    ok(p.smoke(&["--quiet"]));
    let id = |v: &str, wd: &str| format!("lm/variant={v},weight_decay={wd}");
    let run = |v: &str, wd: &str| p.rows(&id(v, wd), "metrics.jsonl");

    // Every declared metric is in every row (the diagnostic is on).
    let results = &repro_core::pipeline::kinds::kind("lm").unwrap().results;
    for (v, wd) in [("adam_l2", "0.1"), ("adamw", "0.1"), ("adam_l2", "0.0")] {
        let r = run(v, wd);
        assert_eq!(r.len(), 3, "{v} {wd}: one row per epoch");
        for row in &r {
            for m in results.metrics {
                assert!(
                    results.value(row.as_object().unwrap(), m.name).is_some(),
                    "{v} {wd}: row lacks `{}`: {row}",
                    m.name
                );
            }
        }
    }

    // λ = 0: Adam+l2 and AdamW are both plain Adam, to the bit (same init, same data order).
    let digest = |v: &str, name: &str| p.record(&id(v, "0.0"))["outputs"][name]["sha256"].clone();
    assert_eq!(
        digest("adam_l2", "final.safetensors"),
        digest("adamw", "final.safetensors")
    );
    assert_eq!(
        digest("adam_l2", "metrics.jsonl"),
        digest("adamw", "metrics.jsonl")
    );

    // PyTorch itself, from the same initial weights, on the same corpus and batches.
    let dir = corpus_dir(&p);
    let mut worst: f64 = 0.0;
    for (variant, optimizer, wd) in [
        ("adam_l2", "adam", 0.1),
        ("adamw", "adamw", 0.1),
        ("adam_l2", "adam", 0.0),
    ] {
        let wd_s = if wd == 0.0 { "0.0" } else { "0.1" };
        let init = p.output(&id(variant, wd_s), "init.safetensors");
        let cfg = serde_json::json!({
            "d_model": 16, "heads": 2, "layers": 1, "ffn": 32, "norm_first": true,
            "tie_embeddings": true, "optimizer": optimizer, "lr": 0.003, "weight_decay": wd,
            "betas": [0.9, 0.999], "eps": 1e-8, "epochs": 3, "batch_size": 8,
            "eval_batch_size": 4, "bptt": 16, "clip": 0.25,
        });
        let out = repro_testkit::run_script(
            "lm_train_reference.py",
            &[
                dir.to_str().unwrap(),
                init.to_str().unwrap(),
                &cfg.to_string(),
            ],
        );
        let theirs: Vec<Value> = out
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        let ours = run(variant, wd_s);
        assert_eq!(theirs.len(), ours.len());
        for (epoch, (a, b)) in ours.iter().zip(&theirs).enumerate() {
            for k in ["train_loss", "valid_loss", "test_loss", "weight_norm"] {
                let (x, y) = (f(&a[k]), f(&b[k]));
                worst = worst.max((x - y).abs() / y.abs());
                assert!(
                    (x - y).abs() <= 1e-6 * y.abs(),
                    "{variant} λ {wd} epoch {epoch} {k}: repro {x} vs PyTorch {y}"
                );
            }
        }
    }

    eprintln!("largest relative difference from PyTorch: {worst:.2e}");

    // Learning: well below the unigram baseline, and perplexity = exp(loss).
    let unigram = unigram_ppl(&dir);
    let plain = run("adamw", "0.0");
    let last = plain.last().unwrap();
    assert!(
        f(&last["valid_ppl"]) < 0.8 * unigram,
        "valid ppl {} vs unigram {unigram}",
        last["valid_ppl"]
    );
    assert!((f(&last["valid_ppl"]) - f(&last["valid_loss"]).exp()).abs() < 1e-9 * unigram);

    // E8: λ = 0 has no l2 term; λ = 0.1 under Adam+l2 puts l2 into m, AdamW keeps it out.
    assert_eq!(f(&plain[0]["l2_over_grad"]), 0.0);
    assert_eq!(f(&plain[0]["l2_share_of_m"]), 0.0);
    assert!((f(&plain[0]["cos_m_mg"]) - 1.0).abs() < 1e-6);
    let l2 = run("adam_l2", "0.1");
    let decoupled = run("adamw", "0.1");
    assert!(f(&l2[2]["l2_share_of_m"]) > 0.0 && f(&l2[2]["l2_over_grad"]) > 0.0);
    assert!(f(&l2[2]["cos_m_mg"]) < f(&decoupled[2]["cos_m_mg"]));
    let samples = p.rows(&id("adam_l2", "0.1"), "drown_out.jsonl");
    let groups: std::collections::BTreeSet<&str> = samples
        .iter()
        .map(|s| s["group"].as_str().unwrap())
        .collect();
    assert_eq!(
        groups.into_iter().collect::<Vec<_>>(),
        ["all", "attention", "embeddings", "feedforward", "layernorm"]
    );
    assert!(
        samples
            .iter()
            .all(|s| (f(&s["step"]) as u64).is_multiple_of(5))
    );
    assert!(
        p.record(&id("adamw", "0.1"))["metrics"]["tokens_per_s"][0]
            .as_f64()
            .unwrap()
            > 0.0
    );
}

#[test]
fn too_small_a_split_is_an_error_naming_it() {
    let pipeline = PIPELINE
        .replace("batch_size: 8,", "batch_size: 65536,")
        .replace("variant: [adam_l2, adamw]", "variant: [adamw]")
        .replace("weight_decay: [0.0, 0.1]", "weight_decay: [0.0]");
    let p = Project::new(&pipeline);
    let out = p.smoke(&["--quiet"]);
    assert!(!out.status.success());
    let text = crate::common::text(&out);
    assert!(text.contains("train split of `wikitext2`"), "{text}");
}
