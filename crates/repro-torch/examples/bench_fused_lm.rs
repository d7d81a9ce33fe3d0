//! The `lm` stage end to end (the training pass without clipping, as the experiment sets it; the
//! Adam variant's steps; E8 samples every 20 updates; validation and test loss after every epoch;
//! `metrics.jsonl`, `drown_out.jsonl` and the weights written), as one fused group of N members
//! against N solo runs: the real stage code (`Lm::run_fused` and `Lm::run`) at the `cpu`
//! profile's sizes (pipeline.yaml: `wikitext2_adam_variants` under profile `cpu`: d_model 64, ffn
//! 128, 2 heads, 1 layer, E8 every 20 updates, and the experiment's dropout 0.2, clip 0, pre-LN,
//! tied embeddings, constant lr, batch 20 × bptt 35, β (0.9, 0.999), ε 1e-8; the validation and
//! test batch the kind's default 10), members differing in seed, variant, λ and lr as a sweep's
//! do (the `cpu` grid's values, see [`params`]). The corpus is the `cpu` profile's: the project's
//! own generator (crates/repro-core/src/data/generate/wikitext.rs, `wikitext2` with vocab 2,000
//! and 100,000 / 10,000 / 10,000 training / validation / test tokens, seed 0) writes the
//! WikiText-2 zip, which is extracted as the engine extracts a dataset
//! (crates/repro-core/src/data/extract.rs) into a temporary folder before the clock starts.
//! One intra-op thread on CPU, as the `cpu` profile's workers run (`threads: 1`); oneDNN is left
//! at libtorch's default (the profile's bitwise mode turns it off), as in the other benches. Each
//! invocation is one process, so its peak resident memory (`VmHWM`) is that of what it ran alone.
//!
//!   bench_fused_lm fused <N> <epochs> [train_tokens]   one group of N members
//!   bench_fused_lm solo <N> <epochs> [train_tokens]    the first min(N, 5) of the N as solo
//!                                                      runs, one after another (a solo run's
//!                                                      rate does not depend on N)
//!
//! `train_tokens` (the kind's parameter of that name; default 0, all 100,000) trains on the
//! first tokens of the training split only, to shrink a run (`scripts/bench.py --size tiny`);
//! evaluation still reads the whole validation and test splits.
//!
//! Prints one JSON line: {"mode", "members", "epochs", "train_tokens", "seconds" (the whole run:
//! model set-up, training, evaluation, files; not the corpus's generation), "tokens_per_s"
//! (training tokens of all members together, per second of that whole run, so evaluation and
//! files included), "member_steps_per_s" (member updates, all members together, per second of the
//! whole run), "peak_rss_mib", "train_other_seconds" (of `seconds`, the training passes as the
//! stage timed them and the rest: evaluation, files, set-up)}. A diverged member counts the
//! epochs it trained. `scripts/bench.py --only fuse` runs both modes per N and reports the ratios.
//!
//! From the repository root, after `eval "$(scripts/setup.sh)"`:
//!
//!   cargo build --release -p repro-torch --example bench_fused_lm
//!   target/release/examples/bench_fused_lm fused 25 1
//!   target/release/examples/bench_fused_lm solo 25 1
//!
//! See also crates/repro-torch/examples/bench_fused_dqn.rs (the dqn twin) and
//! crates/repro-torch/examples/bench_stacked_lm.rs (one stacked training step alone).

mod common;

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Instant;

use anyhow::{Context, bail};
use serde_json::{Map, Value, json};

use repro_core::data::extract::{ExtractLimits, extract};
use repro_core::data::wikitext::Corpus;
use repro_core::data::{ArchiveKind, DatasetView, Format, generate};
use repro_core::pipeline::kinds::{LM, LmParams};
use repro_core::pipeline::progress::Progress;
use repro_core::pipeline::stage::Outcome;
use repro_torch::train::lm::Lm;
use repro_torch::train::progress::ProgressOut;
use repro_torch::train::{Fused, MemberContext, Stage, StageContext};

/// Solo runs timed at most: N solo workers on one core take N times one's time.
const SOLO_RUNS: usize = 5;

const USAGE: &str = "usage: bench_fused_lm fused|solo <members> <epochs> [train_tokens]";

/// The `cpu` profile's generated WikiText-2 (its `datasets.wikitext2.params`, the generator's
/// seed 0).
const DATASET_PARAMS: &str = r#"{
    "seed": 0, "vocab": 2000, "train_tokens": 100000, "valid_tokens": 10000, "test_tokens": 10000
}"#;

/// The `wikitext2_adam_variants` experiment's parameters under the `cpu` profile (pipeline.yaml:
/// the experiment block with the profile's overrides); the rest are the kind's defaults.
const EXPERIMENT_PARAMS: &str = r#"{
    "d_model": 64, "ffn": 128, "heads": 2, "layers": 1, "dropout": 0.2, "batch_size": 20,
    "bptt": 35, "clip": 0.0, "norm_first": true, "tie_embeddings": true,
    "lr_schedule": "constant", "beta1": 0.9, "beta2": 0.999, "eps": 1.0e-8,
    "drown_out_every": 20
}"#;

/// The `cpu` grid's coordinates (pipeline.yaml, profile `cpu`, `wikitext2_adam_variants`).
const VARIANTS: [&str; 5] = [
    "adam_l2",
    "adamw",
    "l2_in_m",
    "l2_out_of_m",
    "adaptive_decoupled_stable",
];
const WEIGHT_DECAYS: [f64; 4] = [0.0, 1e-3, 1e-2, 1e-1];
const LRS: [f64; 2] = [1e-3, 3e-3];

fn object(text: &str) -> Map<String, Value> {
    match serde_json::from_str(text).expect("a constant of this file") {
        Value::Object(m) => m,
        _ => unreachable!("a constant of this file is an object"),
    }
}

/// Member `i`'s parameters: the kind's defaults, the experiment's, and the sweep's coordinates
/// (seed i; variant, λ and lr each cycling through the `cpu` grid's, so that any 5 consecutive
/// members hold every variant and several λ and lr).
fn params(i: usize, epochs: u64, train_tokens: u64) -> anyhow::Result<LmParams> {
    let mut m = Map::new();
    for s in LM.params {
        if let Some(d) = s.default_value() {
            m.insert(s.name.into(), d);
        }
    }
    m.extend(object(EXPERIMENT_PARAMS));
    let set = json!({
        "epochs": epochs, "train_tokens": train_tokens,
        "variant": VARIANTS[i % VARIANTS.len()],
        "weight_decay": WEIGHT_DECAYS[i % WEIGHT_DECAYS.len()],
        "lr": LRS[i % LRS.len()],
        "seed": i,
    });
    m.extend(set.as_object().expect("an object").clone());
    serde_json::from_value(Value::Object(m)).context("the lm parameters")
}

/// The `cpu` profile's generated WikiText-2, extracted under `dir`, as a run sees it.
fn wikitext(dir: &Path) -> anyhow::Result<DatasetView> {
    let archive = generate::generate("wikitext2", &object(DATASET_PARAMS), &dir.join("archive"))
        .context("generating wikitext2")?;
    let file = archive.first().context("the generator wrote no archive")?;
    let root = dir.join("extracted");
    extract(file, ArchiveKind::Zip, &root, &ExtractLimits::default())
        .with_context(|| format!("extracting {}", file.display()))?;
    Ok(DatasetView {
        name: "wikitext2".into(),
        format: Format::WikitextTokens,
        root,
    })
}

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (mode, n, epochs, train_tokens) = match args.as_slice() {
        [m, n, e] => (m, n, e, None),
        [m, n, e, t] => (m, n, e, Some(t)),
        _ => bail!("{USAGE}"),
    };
    if mode != "fused" && mode != "solo" {
        bail!("mode: expected fused or solo, got '{mode}'\n{USAGE}");
    }
    let n = common::int("members", n, 1)? as usize;
    let epochs = common::int("epochs", epochs, 1)? as u64;
    let train_tokens = match train_tokens {
        Some(t) => common::int("train_tokens", t, 0)? as u64,
        None => 0,
    };
    let device = common::device()?;
    if device == tch::Device::Cpu {
        tch::set_num_threads(1);
    }
    let dir = tempfile::tempdir()?;
    let view = wikitext(&dir.path().join("data"))?;
    // What one member trains on per epoch, as the stage batchifies it (crates/repro-torch/src/
    // train/lm/mod.rs): `rows` = tokens / batch, (rows − 1) · batch tokens in ⌈(rows − 1) / bptt⌉
    // updates.
    let members: Vec<LmParams> = (0..n)
        .map(|i| params(i, epochs, train_tokens))
        .collect::<anyhow::Result<_>>()?;
    let p0 = &members[0];
    let corpus = Corpus::load(&view.root)?;
    let kept = match train_tokens {
        0 => corpus.train.len(),
        t => corpus.train.len().min(t as usize),
    } as i64;
    let rows = kept / p0.batch_size;
    anyhow::ensure!(
        rows >= 2,
        "{kept} training tokens: too few for batch {}",
        p0.batch_size
    );
    let epoch_tokens = ((rows - 1) * p0.batch_size) as f64;
    let epoch_steps = ((rows - 1 + p0.bptt - 1) / p0.bptt) as f64;
    drop(corpus);

    let datasets = BTreeMap::from([("wikitext2".to_string(), view)]);
    let emit = |_: &Progress| {};
    let params_map = Map::new();
    let ctx = |out: std::path::PathBuf| StageContext {
        run_id: "bench",
        params: &params_map,
        datasets: &datasets,
        upstream: &[],
        out_dir: out,
        device,
        precision: Default::default(),
        progress: ProgressOut {
            emit: &emit,
            every: std::time::Duration::from_secs(3600),
            started: Instant::now(),
        },
        checkpoints: None,
    };
    let runs_dir = dir.path().join("runs");
    let t0 = Instant::now();
    let outcomes: Vec<Outcome> = if mode == "fused" {
        let group: Vec<(MemberContext, LmParams)> = members
            .into_iter()
            .enumerate()
            .map(|(i, p)| {
                let out = runs_dir.join(format!("{i:03}"));
                std::fs::create_dir_all(&out)?;
                Ok((
                    MemberContext {
                        run_id: "bench",
                        out_dir: out,
                    },
                    p,
                ))
            })
            .collect::<anyhow::Result<_>>()?;
        Lm::run_fused(&ctx(runs_dir.clone()), &group)?
    } else {
        let mut out = Vec::new();
        for (i, p) in members.iter().enumerate().take(SOLO_RUNS) {
            let d = runs_dir.join(format!("{i:03}"));
            std::fs::create_dir_all(&d)?;
            out.push(Lm::run(&ctx(d), p)?);
        }
        out
    };
    common::sync(device);
    let seconds = t0.elapsed().as_secs_f64();

    // Epochs each member trained (its `tokens_per_s` holds one entry per epoch trained).
    let per_epoch = |o: &Outcome, k: &str| -> Vec<f64> {
        o.metrics[k]
            .as_array()
            .map(|a| a.iter().filter_map(Value::as_f64).collect())
            .unwrap_or_default()
    };
    let trained: f64 = outcomes
        .iter()
        .map(|o| per_epoch(o, "tokens_per_s").len() as f64)
        .sum();
    // Training seconds as the stage timed them: summed over solo runs, a group's once (its
    // members share the clock; the longest-lived member's entries cover every epoch).
    let train_secs = |o: &Outcome| -> f64 {
        per_epoch(o, "tokens_per_s")
            .iter()
            .map(|r| epoch_tokens / r)
            .sum()
    };
    let train = if mode == "fused" {
        outcomes.iter().map(train_secs).fold(0.0, f64::max)
    } else {
        outcomes.iter().map(train_secs).sum()
    };
    println!(
        "{}",
        json!({
            "mode": mode, "members": n, "epochs": epochs, "train_tokens": train_tokens,
            "seconds": seconds,
            "tokens_per_s": trained * epoch_tokens / seconds,
            "member_steps_per_s": trained * epoch_steps / seconds,
            "peak_rss_mib": common::peak_rss_mib(),
            "train_other_seconds": [train, seconds - train],
        })
    );
    Ok(())
}
