//! Beam search as fairseq 0.12's `SequenceGenerator` (with `search.BeamSearch`) runs it under
//! `fairseq-generate`'s defaults for IWSLT (`--beam 5`, `--lenpen 1`, `max_len_a 0`,
//! `max_len_b 200`, `min_len 1`, no unk penalty), over a batch of sentences × beams with the
//! incremental decoder of `super::transformer_mt`. Checked against the full-recompute Python
//! reference in `tests/python/mt_reference.py`.
//!
//! Mirrored rules, per step (`step` = tokens generated so far):
//! - Decoding starts from EOS (fairseq's decoder start symbol); dictionary ids bos 0, pad 1, eos 2,
//!   unk 3.
//! - Log-probs with pad set to −∞; at `step >= max_len` only EOS is allowed, else before `min_len`
//!   EOS is forbidden. `max_len = min(⌊max_len_a · S + max_len_b⌋, max_positions − 1)` with S the
//!   padded source width.
//! - Candidates: top `min(2·beam, n − 1)` of cumulative scores over beam × vocab (at step 0 only
//!   beam 0, since all beams are equal; n is then the vocabulary).
//! - Of the first `beam` candidates, those ending in EOS (with a finite score) are finalized, in
//!   candidate order, while the sentence has fewer than `beam` hypotheses; the score is the
//!   cumulative log-prob divided by `length^len_penalty`, length counting the EOS.
//! - A sentence is done once it has `beam` finalized hypotheses, or at `max_len`; its hypotheses
//!   are returned sorted by score, best first.
//! - Otherwise the first `beam` non-EOS candidates (in candidate order) become the new beams.
//!
//! Differences that do not change results: finished sentences stay in the batch (their rows are
//! computed and ignored) instead of being pruned; per-candidate bookkeeping runs on the host.

use anyhow::Result;
use tch::{Kind, Tensor};

use super::transformer_mt::{DecoderCache, TransformerMt};

/// fairseq dictionary ids.
pub const BOS: i64 = 0;
pub const PAD: i64 = 1;
pub const EOS: i64 = 2;
pub const UNK: i64 = 3;

/// Generation options; `Default` names fairseq-generate's IWSLT settings.
#[derive(Debug, Clone, PartialEq)]
pub struct BeamOptions {
    pub beam: i64,
    pub len_penalty: f64,
    pub max_len_a: f64,
    pub max_len_b: i64,
    pub min_len: i64,
}

impl Default for BeamOptions {
    fn default() -> BeamOptions {
        BeamOptions {
            beam: 5,
            len_penalty: 1.0,
            max_len_a: 0.0,
            max_len_b: 200,
            min_len: 1,
        }
    }
}

/// A finished hypothesis: tokens without the final EOS, length-normalised score.
#[derive(Debug, Clone, PartialEq)]
pub struct Hypothesis {
    pub tokens: Vec<i64>,
    pub score: f64,
}

/// Beam search over src [B, S] (int64, pad-padded); per sentence `beam` hypotheses, best first.
pub fn generate(
    model: &TransformerMt,
    src: &Tensor,
    opts: &BeamOptions,
) -> Result<Vec<Vec<Hypothesis>>> {
    anyhow::ensure!(opts.beam >= 1, "beam must be at least 1, got {}", opts.beam);
    let (bsz, src_len) = src.size2()?;
    let cfg = model.config();
    anyhow::ensure!(
        cfg.pad == PAD,
        "beam search assumes fairseq's pad id {PAD}, the model has {}",
        cfg.pad
    );
    let k = opts.beam;
    let vocab = cfg.tgt_vocab;
    anyhow::ensure!(
        vocab > EOS + 1,
        "target vocabulary {vocab} is too small for fairseq's special tokens"
    );
    let max_len = ((opts.max_len_a * src_len as f64 + opts.max_len_b as f64) as i64)
        .min(cfg.max_positions - 1);
    let device = src.device();
    tch::no_grad(|| {
        let enc = model.encode(src, false).repeat_beams(k);
        let mut cache = DecoderCache::new();
        let rows = (bsz * k) as usize;
        // Per row: tokens generated so far (without the start EOS).
        let mut tokens: Vec<Vec<i64>> = vec![Vec::new(); rows];
        let mut cum = Tensor::zeros([bsz * k], (Kind::Float, device));
        let mut last = Tensor::full([bsz * k], EOS, (Kind::Int64, device));
        let mut finalized: Vec<Vec<Hypothesis>> = vec![Vec::new(); bsz as usize];
        let mut done = vec![false; bsz as usize];
        for step in 0..=max_len {
            let lprobs = model.decode_step(&enc, &mut cache, &last);
            let _ = lprobs.narrow(1, PAD, 1).fill_(f64::NEG_INFINITY);
            if step >= max_len {
                let _ = lprobs.narrow(1, 0, EOS).fill_(f64::NEG_INFINITY);
                let _ = lprobs
                    .narrow(1, EOS + 1, vocab - EOS - 1)
                    .fill_(f64::NEG_INFINITY);
            } else if step < opts.min_len {
                let _ = lprobs.narrow(1, EOS, 1).fill_(f64::NEG_INFINITY);
            }
            let flat = if step == 0 {
                // All beams are identical: search beam 0 only.
                lprobs.view([bsz, k, vocab]).select(1, 0)
            } else {
                (lprobs + cum.unsqueeze(1)).view([bsz, k * vocab])
            };
            let n = flat.size()[1];
            let c = (2 * k).min(n - 1);
            let (cand_scores, cand_idx) = flat.topk(c, 1, true, true);
            let cs = Vec::<f32>::try_from(cand_scores.to_device(tch::Device::Cpu).view([-1]))?;
            let ci = Vec::<i64>::try_from(cand_idx.to_device(tch::Device::Cpu).view([-1]))?;
            let mut new_order = Vec::with_capacity(rows);
            let mut new_tok = Vec::with_capacity(rows);
            let mut new_cum = Vec::with_capacity(rows);
            for s in 0..bsz as usize {
                let cand = |j: usize| {
                    let idx = ci[s * c as usize + j];
                    let beam = idx / vocab;
                    (
                        s * k as usize + beam as usize,
                        idx % vocab,
                        cs[s * c as usize + j],
                    )
                };
                let is_eos = |tok: i64, score: f32| tok == EOS && score != f32::NEG_INFINITY;
                if !done[s] {
                    for j in 0..(k.min(c) as usize) {
                        let (row, tok, score) = cand(j);
                        if is_eos(tok, score) && (finalized[s].len() as i64) < k {
                            let len = (step + 1) as f64;
                            finalized[s].push(Hypothesis {
                                tokens: tokens[row].clone(),
                                score: score as f64 / len.powf(opts.len_penalty),
                            });
                        }
                    }
                    if finalized[s].len() as i64 == k || step == max_len {
                        done[s] = true;
                    }
                }
                if done[s] {
                    // Placeholder rows: computed, never read.
                    for r in 0..k as usize {
                        new_order.push((s * k as usize + r) as i64);
                        new_tok.push(EOS);
                        new_cum.push(0f32);
                    }
                    continue;
                }
                let mut taken = 0;
                for j in 0..c as usize {
                    let (row, tok, score) = cand(j);
                    if is_eos(tok, score) {
                        continue;
                    }
                    new_order.push(row as i64);
                    new_tok.push(tok);
                    new_cum.push(score);
                    taken += 1;
                    if taken == k {
                        break;
                    }
                }
                anyhow::ensure!(taken == k, "fewer than beam non-EOS candidates");
            }
            if done.iter().all(|&d| d) {
                break;
            }
            tokens = new_order
                .iter()
                .zip(&new_tok)
                .map(|(&r, &t)| {
                    let mut v = tokens[r as usize].clone();
                    v.push(t);
                    v
                })
                .collect();
            let order = Tensor::from_slice(&new_order).to_device(device);
            cache.reorder(&order);
            cum = Tensor::from_slice(&new_cum).to_device(device);
            last = Tensor::from_slice(&new_tok).to_device(device);
        }
        for hyps in &mut finalized {
            // Stable sort, best first (fairseq sorts finalized hypotheses by score).
            hyps.sort_by(|a, b| b.score.total_cmp(&a.score));
        }
        Ok(finalized)
    })
}
