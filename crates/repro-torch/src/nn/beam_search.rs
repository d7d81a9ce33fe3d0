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
            mask(&lprobs, step, max_len, opts.min_len, vocab);
            let flat = if step == 0 {
                // All beams are identical: search beam 0 only.
                lprobs.view([bsz, k, vocab]).select(1, 0)
            } else {
                (lprobs + cum.unsqueeze(1)).view([bsz, k * vocab])
            };
            let n = flat.size()[1];
            let c = (2 * k).min(n - 1);
            let (cand_scores, cand_idx) = flat.topk(c, 1, true, true);
            let cands = Candidates {
                scores: Vec::<f32>::try_from(cand_scores.to_device(tch::Device::Cpu).view([-1]))?,
                idx: Vec::<i64>::try_from(cand_idx.to_device(tch::Device::Cpu).view([-1]))?,
                c: c as usize,
                k: k as usize,
                vocab,
            };
            let mut next = Next::with_capacity(rows);
            for s in 0..bsz as usize {
                if !done[s] {
                    let len_penalty = ((step + 1) as f64).powf(opts.len_penalty);
                    cands.finalize(s, &tokens, &mut finalized[s], len_penalty);
                    done[s] = finalized[s].len() == k as usize || step == max_len;
                }
                cands.continue_beams(s, done[s], &mut next)?;
            }
            if done.iter().all(|&d| d) {
                break;
            }
            let Next {
                order: new_order,
                tok: new_tok,
                cum: new_cum,
            } = next;
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

/// Mask a step's log-probabilities in place: never PAD; only EOS at the last step; no EOS before
/// `min_len`.
fn mask(lprobs: &Tensor, step: i64, max_len: i64, min_len: i64, vocab: i64) {
    let _ = lprobs.narrow(1, PAD, 1).fill_(f64::NEG_INFINITY);
    if step >= max_len {
        let _ = lprobs.narrow(1, 0, EOS).fill_(f64::NEG_INFINITY);
        let _ = lprobs
            .narrow(1, EOS + 1, vocab - EOS - 1)
            .fill_(f64::NEG_INFINITY);
    } else if step < min_len {
        let _ = lprobs.narrow(1, EOS, 1).fill_(f64::NEG_INFINITY);
    }
}

/// A step's top `c` candidates per sentence (scores and flat indices beam·vocab + token).
struct Candidates {
    scores: Vec<f32>,
    idx: Vec<i64>,
    c: usize,
    k: usize,
    vocab: i64,
}

/// The rows the next step continues: which row each extends, with which token, at what score.
struct Next {
    order: Vec<i64>,
    tok: Vec<i64>,
    cum: Vec<f32>,
}

impl Next {
    fn with_capacity(rows: usize) -> Next {
        Next {
            order: Vec::with_capacity(rows),
            tok: Vec::with_capacity(rows),
            cum: Vec::with_capacity(rows),
        }
    }
}

impl Candidates {
    /// Candidate j of sentence s: (row it extends, token, cumulative score).
    fn get(&self, s: usize, j: usize) -> (usize, i64, f32) {
        let idx = self.idx[s * self.c + j];
        let beam = idx / self.vocab;
        (
            s * self.k + beam as usize,
            idx % self.vocab,
            self.scores[s * self.c + j],
        )
    }

    fn is_eos(tok: i64, score: f32) -> bool {
        tok == EOS && score != f32::NEG_INFINITY
    }

    /// Finalize the EOS candidates among sentence s's top k (until it has k hypotheses), their
    /// scores divided by `len_penalty` (length^α).
    fn finalize(
        &self,
        s: usize,
        tokens: &[Vec<i64>],
        finalized: &mut Vec<Hypothesis>,
        len_penalty: f64,
    ) {
        for j in 0..self.k.min(self.c) {
            let (row, tok, score) = self.get(s, j);
            if Candidates::is_eos(tok, score) && finalized.len() < self.k {
                finalized.push(Hypothesis {
                    tokens: tokens[row].clone(),
                    score: score as f64 / len_penalty,
                });
            }
        }
    }

    /// Push sentence s's k continuations: its best k non-EOS candidates, or placeholder rows
    /// (computed, never read) once it is done.
    fn continue_beams(&self, s: usize, done: bool, next: &mut Next) -> Result<()> {
        if done {
            for r in 0..self.k {
                next.order.push((s * self.k + r) as i64);
                next.tok.push(EOS);
                next.cum.push(0f32);
            }
            return Ok(());
        }
        let mut taken = 0;
        for j in 0..self.c {
            let (row, tok, score) = self.get(s, j);
            if Candidates::is_eos(tok, score) {
                continue;
            }
            next.order.push(row as i64);
            next.tok.push(tok);
            next.cum.push(score);
            taken += 1;
            if taken == self.k {
                break;
            }
        }
        anyhow::ensure!(taken == self.k, "fewer than beam non-EOS candidates");
        Ok(())
    }
}
