//! One training step's throughput (tokens/s) of the causal Transformer LM
//! (`repro_torch::nn::transformer_lm`) on a fixed random token batch: forward, cross-entropy over the
//! vocabulary, backward, gradient clipping to total norm 0.25 (pytorch/examples' `--clip`), and
//! an AdamW step (`optim::adam` V2). `scripts/bench.py` runs it beside `scripts/bench_lm_step.py`
//! (the same model in PyTorch eager) and reports the ratio.
//!
//!   bench_lm_step <vocab> <d_model> <heads> <layers> <ffn> <dropout> <norm_first 0|1> <tie 0|1>
//!                 <batch> <bptt> <threads> <warmup> <steps> <repeats>
//!
//! The first eight arguments are tests/python/lm_reference.py's config, in its order. Prints
//! `params <trainable count>` first (the shell script checks it against PyTorch's before timing),
//! then one line per repeat: `tokens/s <x> cpu_tokens/s <y>` (tokens = batch · bptt per step; x per
//! wall-clock second, y per second of the process's CPU time, which on a shared machine with one
//! thread is nearly independent of the load).

mod common;

use anyhow::Context;
use repro_torch::nn::param_count;
use repro_torch::nn::transformer_lm::{TransformerLm, TransformerLmConfig};
use repro_torch::optim::adam::{Adam, AdamConfig, Variant};
use tch::{Kind, Tensor};

/// pytorch/examples word_language_model's `--clip` default.
const CLIP: f64 = 0.25;
/// Our defaults for the AdamW step (the paper gives none for this benchmark): torch.optim.AdamW's
/// lr and weight decay.
const LR: f64 = 1e-3;
const WEIGHT_DECAY: f64 = 1e-2;

const USAGE: &str = "usage: bench_lm_step <vocab> <d_model> <heads> <layers> <ffn> <dropout> \
                     <norm_first 0|1> <tie 0|1> <batch> <bptt> <threads> <warmup> <steps> <repeats>";

fn flag(name: &str, s: &str) -> anyhow::Result<bool> {
    match s {
        "0" => Ok(false),
        "1" => Ok(true),
        _ => anyhow::bail!("{name}: expected 0 or 1, got '{s}'"),
    }
}

/// torch.nn.utils.clip_grad_norm_(params, max_norm, foreach=False) written out with the same ops:
/// per-gradient 2-norms, the 2-norm of their stack, coef = min(max_norm / (total + 1e-6), 1),
/// every gradient multiplied by it (always, so no host read of the norm, as torch).
fn clip_grad_norm(params: &[Tensor], max_norm: f64) {
    tch::no_grad(|| {
        let grads: Vec<Tensor> = params
            .iter()
            .map(|p| p.grad())
            .filter(|g| g.defined())
            .collect();
        if grads.is_empty() {
            return;
        }
        let norms: Vec<Tensor> = grads.iter().map(|g| g.norm()).collect();
        let total = Tensor::stack(&norms, 0).norm();
        let coef = (Tensor::scalar_tensor(max_norm, (total.kind(), total.device()))
            / (total + 1e-6))
            .clamp_max(1.0);
        for g in grads {
            let _ = g.shallow_clone().g_mul_(&coef);
        }
    });
}

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [
        vocab,
        d_model,
        heads,
        layers,
        ffn,
        dropout,
        norm_first,
        tie,
        batch,
        bptt,
        threads,
        warmup,
        steps,
        repeats,
    ] = args.as_slice()
    else {
        anyhow::bail!("{USAGE}\n(got {} arguments, expected 14)", args.len());
    };
    let cfg = TransformerLmConfig {
        vocab: common::int("vocab", vocab, 1)?,
        d_model: common::int("d_model", d_model, 1)?,
        heads: common::int("heads", heads, 1)?,
        layers: common::int("layers", layers, 1)?,
        ffn: common::int("ffn", ffn, 1)?,
        dropout: dropout
            .parse()
            .with_context(|| format!("dropout: expected a number in [0, 1), got '{dropout}'"))?,
        norm_first: flag("norm_first", norm_first)?,
        tie_embeddings: flag("tie", tie)?,
    };
    let (batch, bptt) = (
        common::int("batch", batch, 1)?,
        common::int("bptt", bptt, 1)?,
    );
    let threads = common::int("threads", threads, 1)?;
    let warmup = common::int("warmup", warmup, 0)? as usize;
    let steps = common::int("steps", steps, 1)? as usize;
    let repeats = common::int("repeats", repeats, 0)? as usize;

    tch::set_num_threads(threads as i32);
    let device = common::device()?;
    tch::manual_seed(0);
    let vs = tch::nn::VarStore::new(device);
    let model = TransformerLm::new(&vs.root(), &cfg)?;
    println!("params {}", param_count(&vs));
    let params = vs.trainable_variables();
    let mut opt = Adam::new(
        params.iter().map(|p| p.shallow_clone()).collect(),
        AdamConfig {
            variant: Variant::ADAMW,
            ..AdamConfig::default()
        },
    );
    let data = Tensor::randint(cfg.vocab, [bptt, batch], (Kind::Int64, device));
    let targets = Tensor::randint(cfg.vocab, [bptt * batch], (Kind::Int64, device));
    let mut step = || {
        opt.zero_grad();
        let logits = model.forward_t(&data, true);
        let loss = logits
            .view([-1, cfg.vocab])
            .cross_entropy_for_logits(&targets);
        loss.backward();
        clip_grad_norm(&params, CLIP);
        opt.step(LR, WEIGHT_DECAY);
    };
    for _ in 0..warmup {
        step();
    }
    for _ in 0..repeats {
        let (secs, cpu) = common::timed(device, || (0..steps).for_each(|_| step()));
        let tokens = (steps as i64 * batch * bptt) as f64;
        println!(
            "tokens/s {:.2} cpu_tokens/s {:.2}",
            tokens / secs,
            tokens / cpu
        );
    }
    Ok(())
}
