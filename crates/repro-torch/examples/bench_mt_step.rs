//! One training step's throughput (target tokens/s, fairseq's "wps") of fairseq's Transformer
//! encoder-decoder (`repro_torch::nn::transformer_mt`) on a fixed random batch: forward, fairseq's
//! label-smoothed cross-entropy (ε 0.1, summed and divided by the target tokens), backward, and
//! an AdamW step (`optim::adam` V2) with the IWSLT recipe's β (0.9, 0.98), lr 5e-4 and λ 1e-4.
//! `scripts/bench.py` runs it beside `scripts/bench_mt_step.py` (the same model in PyTorch eager,
//! tests/python/mt_reference.py) and reports the ratio. Dropout is off on both sides: the
//! reference model has none.
//!
//!   bench_mt_step <src_vocab> <tgt_vocab> <d_model> <ffn> <heads> <enc_layers> <dec_layers>
//!                 <batch> <src_len> <tgt_len> <threads> <warmup> <steps> <repeats>
//!
//! The first seven arguments are mt_reference.py's config, in its order. Prints `params <count>`
//! first, then one line per repeat: `tokens/s <x> cpu_tokens/s <y>` (tokens = batch · tgt_len per
//! step; per wall-clock second and per second of the process's CPU time).

mod common;

use repro_torch::nn::param_count;
use repro_torch::nn::transformer_mt::{TransformerMt, TransformerMtConfig};
use repro_torch::optim::adam::{Adam, AdamConfig, Variant};
use repro_torch::train::translate::label_smoothed_loss;
use tch::{Kind, Tensor};

/// The IWSLT recipe's settings (fairseq's examples/translation README).
const LR: f64 = 5e-4;
const WEIGHT_DECAY: f64 = 1e-4;
const LABEL_SMOOTHING: f64 = 0.1;

const USAGE: &str = "usage: bench_mt_step <src_vocab> <tgt_vocab> <d_model> <ffn> <heads> \
                     <enc_layers> <dec_layers> <batch> <src_len> <tgt_len> <threads> <warmup> \
                     <steps> <repeats>";

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    anyhow::ensure!(
        args.len() == 14,
        "{USAGE}\n(got {} arguments, expected 14)",
        args.len()
    );
    let names = [
        "src_vocab",
        "tgt_vocab",
        "d_model",
        "ffn",
        "heads",
        "enc_layers",
        "dec_layers",
        "batch",
        "src_len",
        "tgt_len",
        "threads",
        "warmup",
        "steps",
        "repeats",
    ];
    let mut v = [0i64; 14];
    for (i, (name, a)) in names.iter().zip(&args).enumerate() {
        v[i] = common::int(name, a, if i >= 11 { 0 } else { 1 })?;
    }
    let [
        src_vocab,
        tgt_vocab,
        d_model,
        ffn,
        heads,
        enc,
        dec,
        batch,
        src_len,
        tgt_len,
        threads,
        warmup,
        steps,
        repeats,
    ] = v;
    anyhow::ensure!(
        src_vocab > 4 && tgt_vocab > 4,
        "vocabularies need more than the 4 specials"
    );
    tch::set_num_threads(threads as i32);
    let device = common::device()?;
    tch::manual_seed(0);
    let vs = tch::nn::VarStore::new(device);
    let cfg = TransformerMtConfig {
        d_model,
        ffn,
        heads,
        encoder_layers: enc,
        decoder_layers: dec,
        dropout: 0.0,
        ..TransformerMtConfig::iwslt_de_en(src_vocab, tgt_vocab)
    };
    let model = TransformerMt::new(&vs.root(), cfg)?;
    println!("params {}", param_count(&vs));
    let params = vs.trainable_variables();
    let mut opt = Adam::new(
        params.iter().map(|p| p.shallow_clone()).collect(),
        AdamConfig {
            variant: Variant::ADAMW,
            beta2: 0.98,
            ..AdamConfig::default()
        },
    );
    // Ids from 4 up: no padding and no specials, the same batch shape on both sides.
    let src = Tensor::randint_low(4, src_vocab, [batch, src_len], (Kind::Int64, device));
    let prev = Tensor::randint_low(4, tgt_vocab, [batch, tgt_len], (Kind::Int64, device));
    let target = Tensor::randint_low(4, tgt_vocab, [batch, tgt_len], (Kind::Int64, device));
    let ntokens = (batch * tgt_len) as f64;
    let mut step = || {
        opt.zero_grad();
        let logits = model.forward_t(&src, &prev, true);
        let (loss, _) = label_smoothed_loss(&logits, &target, LABEL_SMOOTHING);
        (loss / ntokens).backward();
        opt.step(LR, WEIGHT_DECAY);
    };
    for _ in 0..warmup {
        step();
    }
    for _ in 0..repeats {
        let (secs, cpu) = common::timed(device, || (0..steps).for_each(|_| step()));
        let tokens = steps as f64 * ntokens;
        println!(
            "tokens/s {:.2} cpu_tokens/s {:.2}",
            tokens / secs,
            tokens / cpu
        );
    }
    Ok(())
}
