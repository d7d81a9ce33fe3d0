//! Fused groups (issue 30): tokens/s of one training step (forward in train mode, cross-entropy,
//! backward; no optimizer) of N members of the causal Transformer LM as one
//! `repro_torch::nn::stacked_lm::StackedLm` against the same N members stepped one after another
//! as solo `TransformerLm`s, at the `lm` kind's `cpu`-profile sizes (pipeline.yaml's
//! `wikitext2_adam_variants` under `cpu`: vocab 2000, d_model 64, ffn 128, 2 heads, 1 layer,
//! dropout 0.2, pre-LN, tied, batch 20, bptt 35).
//!
//!   bench_stacked_lm <threads> <warmup> <steps> <repeats> <members,…> [vocab]
//!
//! (`vocab` replaces the profile's 2000, e.g. to time the body without the decoder's weight.)
//!
//! e.g. `bench_stacked_lm 1 3 20 3 1,5,25`. One line per (N, repeat):
//! `members <N> solo_tokens/s <x> stacked_tokens/s <y> speedup <y/x> solo_cpu_tokens/s …
//! stacked_cpu_tokens/s … cpu_speedup …` (tokens = N · batch · bptt per step; first per
//! wall-clock second, then per second of the process's CPU time, user and system, which a loaded
//! machine disturbs less; `REPRO_BENCH_DEVICE` picks the device as for the other benches).
//!
//! On CPU the stacked step's logits and their gradients are N × [batch·bptt, vocab] floats
//! (140 MB at N = 25): glibc serves each from a fresh `mmap`, so every step page-faults them in
//! (system time); `MALLOC_MMAP_MAX_=0` (serve them from the heap) removes that cost.

mod common;

use repro_torch::nn::stacked_lm::{StackedLm, stacked_lm_loss};
use repro_torch::nn::transformer_lm::{TransformerLm, TransformerLmConfig};
use tch::nn::VarStore;
use tch::{Kind, Tensor};

const USAGE: &str =
    "usage: bench_stacked_lm <threads> <warmup> <steps> <repeats> <members,…> [vocab]";

/// The `cpu` profile's `lm` sizes (the generated WikiText-2's vocabulary is 2000 words).
fn cpu_profile() -> (TransformerLmConfig, i64, i64) {
    let cfg = TransformerLmConfig {
        vocab: 2000,
        d_model: 64,
        heads: 2,
        layers: 1,
        ffn: 128,
        dropout: 0.2,
        norm_first: true,
        tie_embeddings: true,
    };
    (cfg, 20, 35)
}

fn zero_grads(vs: &VarStore) {
    for mut t in vs.trainable_variables() {
        t.zero_grad();
    }
}

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (args, vocab) = match args.as_slice() {
        [rest @ .., vocab] if args.len() == 6 => (rest, Some(common::int("vocab", vocab, 1)?)),
        _ => (args.as_slice(), None),
    };
    let [threads, warmup, steps, repeats, members] = args else {
        anyhow::bail!("{USAGE}\n(got {} arguments, expected 5 or 6)", args.len());
    };
    let threads = common::int("threads", threads, 1)?;
    let warmup = common::int("warmup", warmup, 0)? as usize;
    let steps = common::int("steps", steps, 1)? as usize;
    let repeats = common::int("repeats", repeats, 0)? as usize;
    let members: Vec<i64> = members
        .split(',')
        .map(|s| common::int("members", s, 1))
        .collect::<anyhow::Result<_>>()?;
    tch::set_num_threads(threads as i32);
    let device = common::device()?;
    let (mut cfg, batch, bptt) = cpu_profile();
    cfg.vocab = vocab.unwrap_or(cfg.vocab);

    for &n in &members {
        let (solo_vs, solo): (Vec<VarStore>, Vec<TransformerLm>) = (0..n)
            .map(|i| {
                tch::manual_seed(i);
                let vs = VarStore::new(device);
                let m = TransformerLm::new(&vs.root(), &cfg).expect("the cpu profile's config");
                (vs, m)
            })
            .unzip();
        let vs = VarStore::new(device);
        let stacked = StackedLm::from_members(&vs, &cfg, &solo_vs)?;
        let x = Tensor::randint(cfg.vocab, [n, bptt, batch], (Kind::Int64, device));
        let y = Tensor::randint(cfg.vocab, [n, bptt, batch], (Kind::Int64, device));
        let solo_step = || {
            for (i, (m, mvs)) in solo.iter().zip(&solo_vs).enumerate() {
                zero_grads(mvs);
                let loss = m
                    .forward_t(&x.get(i as i64), true)
                    .view([-1, cfg.vocab])
                    .cross_entropy_for_logits(&y.get(i as i64).view([-1]));
                loss.backward();
            }
        };
        let stacked_step = || {
            zero_grads(&vs);
            let logits = stacked.forward_t(&x, true);
            stacked_lm_loss(&logits, &y).sum(Kind::Float).backward();
        };
        for _ in 0..warmup {
            solo_step();
            stacked_step();
        }
        let tokens = (steps as i64 * n * batch * bptt) as f64;
        for _ in 0..repeats {
            let (solo_secs, solo_cpu) =
                common::timed(device, || (0..steps).for_each(|_| solo_step()));
            let (stacked_secs, stacked_cpu) =
                common::timed(device, || (0..steps).for_each(|_| stacked_step()));
            println!(
                "members {n} solo_tokens/s {:.0} stacked_tokens/s {:.0} speedup {:.2} \
                 solo_cpu_tokens/s {:.0} stacked_cpu_tokens/s {:.0} cpu_speedup {:.2}",
                tokens / solo_secs,
                tokens / stacked_secs,
                solo_secs / stacked_secs,
                tokens / solo_cpu,
                tokens / stacked_cpu,
                solo_cpu / stacked_cpu
            );
        }
    }
    Ok(())
}
