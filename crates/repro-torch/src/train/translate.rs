//! The `translate` stage kind (docs/paper.md#e5 on the paper's own task, with E7/E8): IWSLT'14
//! De→En with fairseq's `transformer_iwslt_de_en` recipe and one Adam variant at one (lr, λ).
//!
//! The protocol, as fairseq-train runs it: the data of `data::iwslt` (prepare-iwslt14.sh, then
//! fairseq-preprocess's dictionaries); training pairs ordered by (source, target) length over a
//! seeded shuffle and cut into `batch_by_size` batches of at most `max_tokens` tokens (multiples of
//! 8 sentences) once, their order shuffled every epoch; the label-smoothed cross-entropy summed
//! over target tokens and divided by their number; the optimizer step per batch with the lr of
//! `StepSchedule` (fairseq's inverse_sqrt; ours is one update ahead during warm-up: update s runs
//! at α·(s+1)/warmup where fairseq's runs at α·s/warmup). Validation loss per epoch in eval mode;
//! after the last epoch the first `test_sentences` test sentences are translated by beam search
//! and scored with BLEU twice: as fairseq-generate reports it (tokenized) and by sacreBLEU's
//! defaults on the same text (`metrics::bleu`).
//!
//! Left as fairseq does differently: the shuffles use our seeded ChaCha8 streams, not numpy's;
//! sources are right-padded (fairseq left-pads; with padding masks and fairseq's positions the
//! model computes the same); the model is the last epoch's, not fairseq's checkpoint_best.
//!
//! Outputs: `metrics.jsonl` (one row per epoch; the BLEU columns in the last), `drown_out.jsonl`
//! (with `drown_out_every` > 0), `test.hyp.en` (the translations, BPE removed, one per line, in
//! test-set order), and the weights as safetensors at initialisation and at the end. Tokens/s and
//! epoch times go to the run record, so outputs stay bitwise stable.

use std::time::Instant;

use anyhow::{Context, Result};
use rand::SeedableRng;
use rand::seq::SliceRandom;
use rand_chacha::ChaCha8Rng;
use serde::Serialize;
use serde_json::json;
use tch::{Device, Kind, Tensor};

use super::common::{StepSchedule, adam_from_params, total_norm, trainable_by_name};
use super::epochs::EpochLog;
use super::lm::clip_grad_norm;
use super::progress::{Plan, Ticker};
use super::stage::{Stage, StageContext};
use super::vision::single_dataset;
use crate::libtorch::autocast_guard;
use crate::nn::beam_search::{BeamOptions, generate};
use crate::nn::transformer_mt::{TransformerMt, TransformerMtConfig};
use crate::optim::adam::Adam;
use crate::optim::drown_out::{DrownOut, DrownOutMean};
use repro_core::data::iwslt::{self, Bitext, Dictionary, Pair, batch_by_size, ordered_indices};
use repro_core::metrics::bleu::{BleuOptions, corpus_bleu};
use repro_core::pipeline::kinds::{TRANSLATE, TranslateParams};
use repro_core::pipeline::progress::{Samples, Unit};
use repro_core::pipeline::stage::{Outcome, StageDecl};
use repro_core::runtime::Autocast;

/// fairseq's `required_batch_size_multiple` default.
const BATCH_MULTIPLE: usize = 8;
/// fairseq's max_source_positions / max_target_positions for this architecture.
const MAX_POSITIONS: usize = 1024;
/// Sentences per beam-search batch (the translation README's `--batch-size 128`).
const GENERATE_BATCH: usize = 128;

/// The drown-out group (index into [`super::epochs::GROUPS`]) of a `TransformerMt` variable
/// (`encoder.layers.0.self_attn.k_proj.weight`, …).
fn group_of(name: &str) -> usize {
    if name.contains("layer_norm") {
        3
    } else if name.contains("attn") {
        1
    } else if name.contains(".fc") {
        2
    } else {
        0 // the token embeddings
    }
}

#[derive(Serialize)]
struct EpochRow {
    epoch: usize,
    lr: f64,
    train_loss: f64,
    train_nll: f64,
    valid_loss: f64,
    valid_nll: f64,
    valid_ppl: f64,
    weight_norm: f64,
    grad_norm: f64,
    #[serde(skip_serializing_if = "Option::is_none")]
    test_bleu: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    test_sacrebleu: Option<f64>,
    #[serde(flatten, skip_serializing_if = "Option::is_none")]
    drown_out: Option<DrownOut>,
}

/// One collated batch (fairseq's `LanguagePairDataset.collater`, sources right-padded).
pub struct Batch {
    /// `[B, S]` source ids ending in `</s>`, padded with `<pad>`.
    pub src: Tensor,
    /// `[B, T]` decoder input: `</s>` then the target without its final `</s>`.
    pub prev: Tensor,
    /// `[B, T]` target ids ending in `</s>`.
    pub target: Tensor,
    /// Target tokens, `</s>` included, padding not.
    pub ntokens: i64,
}

fn padded(rows: impl Iterator<Item = Vec<i64>>, width: usize) -> Vec<i64> {
    rows.flat_map(|mut r| {
        r.resize(width, Dictionary::PAD);
        r
    })
    .collect()
}

/// Collate `idx` of `pairs` onto `dev`.
pub fn collate(pairs: &[Pair], idx: &[usize], dev: Device) -> Batch {
    let s = idx.iter().map(|&i| pairs[i].src.len()).max().unwrap_or(1);
    let t = idx.iter().map(|&i| pairs[i].tgt.len()).max().unwrap_or(1);
    let b = idx.len() as i64;
    let tensor = |v: Vec<i64>, w: usize| Tensor::from_slice(&v).view([b, w as i64]).to_device(dev);
    let src = padded(idx.iter().map(|&i| pairs[i].src.clone()), s);
    let target = padded(idx.iter().map(|&i| pairs[i].tgt.clone()), t);
    let prev = padded(
        idx.iter().map(|&i| {
            let tgt = &pairs[i].tgt;
            std::iter::once(Dictionary::EOS)
                .chain(tgt[..tgt.len() - 1].iter().copied())
                .collect()
        }),
        t,
    );
    Batch {
        ntokens: idx.iter().map(|&i| pairs[i].tgt.len() as i64).sum(),
        src: tensor(src, s),
        prev: tensor(prev, t),
        target: tensor(target, t),
    }
}

/// fairseq's `label_smoothed_nll_loss`, summed over the non-pad target tokens:
/// (1 − ε − ε/(V−1))·nll + ε/(V−1)·Σ_v −log p_v. Returns (loss, nll), both sums.
pub fn label_smoothed_loss(logits: &Tensor, target: &Tensor, eps: f64) -> (Tensor, Tensor) {
    let v = logits.size()[logits.dim() - 1];
    let lprobs = logits.log_softmax(-1, Kind::Float).view([-1, v]);
    let target = target.view([-1, 1]);
    let pad = target.eq(Dictionary::PAD);
    let nll = lprobs
        .gather(1, &target, false)
        .neg()
        .masked_fill(&pad, 0.0)
        .sum(Kind::Float);
    let smooth = lprobs
        .sum_dim_intlist([-1i64].as_slice(), true, Kind::Float)
        .neg()
        .masked_fill(&pad, 0.0)
        .sum(Kind::Float);
    let eps_i = eps / (v - 1) as f64;
    let loss = &nll * (1.0 - eps - eps_i) + smooth * eps_i;
    (loss, nll)
}

/// Forward and loss sums of one batch under the run's autocast (the guard ends here: the
/// caller's `backward()` runs outside it, as in PyTorch).
fn batch_loss(
    model: &TransformerMt,
    b: &Batch,
    eps: f64,
    train: bool,
    autocast: Autocast,
) -> (Tensor, Tensor) {
    let _autocast = autocast_guard(b.src.device(), autocast);
    let logits = model.forward_t(&b.src, &b.prev, train);
    label_smoothed_loss(&logits, &b.target, eps)
}

/// Validation (loss, nll) per target token, eval mode.
fn evaluate(
    model: &TransformerMt,
    pairs: &[Pair],
    batches: &[Vec<usize>],
    eps: f64,
    autocast: Autocast,
    dev: Device,
) -> (f64, f64) {
    tch::no_grad(|| {
        let acc = || Tensor::zeros([], (Kind::Double, dev));
        let (mut loss, mut nll, mut n) = (acc(), acc(), 0i64);
        for idx in batches {
            let b = collate(pairs, idx, dev);
            let (l, m) = batch_loss(model, &b, eps, false, autocast);
            loss += l.to_kind(Kind::Double);
            nll += m.to_kind(Kind::Double);
            n += b.ntokens;
        }
        (
            loss.double_value(&[]) / n as f64,
            nll.double_value(&[]) / n as f64,
        )
    })
}

/// Beam-search translations of `pairs` (BPE removed), in their order.
pub fn translate(
    model: &TransformerMt,
    pairs: &[Pair],
    tgt_dict: &Dictionary,
    opts: &BeamOptions,
    dev: Device,
) -> Result<Vec<String>> {
    let mut order: Vec<usize> = (0..pairs.len()).collect();
    order.sort_by_key(|&i| pairs[i].src.len());
    let mut hyps = vec![String::new(); pairs.len()];
    for idx in order.chunks(GENERATE_BATCH) {
        let b = collate(pairs, idx, dev);
        let out = tch::no_grad(|| generate(model, &b.src, opts))?;
        for (&i, beams) in idx.iter().zip(out) {
            let best = beams.first().map(|h| h.tokens.as_slice()).unwrap_or(&[]);
            hyps[i] = iwslt::remove_bpe(&tgt_dict.decode(best));
        }
    }
    Ok(hyps)
}

/// The `translate` kind.
pub struct Translate;

impl Stage for Translate {
    type Params = TranslateParams;
    const DECL: &'static StageDecl = &TRANSLATE;
    /// Train one run: the setup, then per epoch the training pass, validation (and test BLEU after
    /// the last), its row and the checkpoint; a non-finite training loss ends the run as diverged.
    fn run(ctx: &StageContext, p: &TranslateParams) -> Result<Outcome> {
        tch::manual_seed(p.seed);
        let data = Data::prepare(ctx, p)?;
        let vs = tch::nn::VarStore::new(ctx.device);
        let model = TransformerMt::new(&vs.root(), model_config(p, &data.text))
            .context("the translate stage's model parameters")?;
        let mut resumed = ctx.resume()?;
        if resumed.is_none() {
            vs.save(ctx.out_dir.join("init.safetensors"))?;
        }
        let named = trainable_by_name(&vs);
        let params: Vec<Tensor> = named.iter().map(|(_, t)| t.shallow_clone()).collect();
        let group: Vec<usize> = named.iter().map(|(n, _)| group_of(n)).collect();
        let adam = p.adam();
        let mut opt = adam_from_params(&adam, params.iter().map(Tensor::shallow_clone).collect());
        let total = (data.batches.len() * p.epochs) as u64;
        let schedule = StepSchedule::new(p.lr_schedule, p.lr, p.warmup_steps, total);
        let every = adam.drown_out_every;
        let mut log = EpochLog::open(ctx, every, schedule.lr(0), resumed.as_mut(), &vs, &mut opt)?;
        let t = Trainer {
            p,
            model: &model,
            data: &data,
            params: &params,
            group: &group,
            schedule,
            autocast: ctx.precision.autocast,
            dev: ctx.device,
        };
        let per_epoch = data.batches.len() as u64;
        let plan = Plan::even(Unit::Epoch, p.epochs as u64, per_epoch, Samples::Tokens);
        let mut ticks = Ticker::new(ctx.progress, plan, log.first_epoch as u64);
        for epoch in log.first_epoch..p.epochs {
            let start = Instant::now();
            let (row, tokens, train_secs) = t.epoch(ctx, epoch, &mut opt, &mut log, &mut ticks)?;
            log.metrics.write(&row)?;
            log.last = json!({
                "epoch": epoch, "train_loss": row.train_loss, "valid_loss": row.valid_loss,
                "valid_ppl": row.valid_ppl, "weight_norm": row.weight_norm,
                "test_bleu": row.test_bleu, "test_sacrebleu": row.test_sacrebleu,
            });
            log.seconds.push(start.elapsed().as_secs_f64());
            log.tokens_per_s.push(tokens as f64 / train_secs);
            ticks.unit_end(epoch, &format!("valid loss {:.3}", row.valid_loss));
            if !row.train_loss.is_finite() {
                log.diverged_epoch = Some(epoch);
                break;
            }
            log.checkpoint(ctx, epoch, &vs, &opt)?;
        }
        let outcome = log.finish()?;
        vs.save(ctx.out_dir.join("final.safetensors"))?;
        let (de, en) = (data.text.src_dict.len(), data.text.tgt_dict.len());
        Ok(Outcome::with_metrics(outcome.into_iter().chain([
            ("train_pairs", json!(data.train.len())),
            ("batches_per_epoch", json!(data.batches.len())),
            ("vocab", json!({"de": de, "en": en})),
        ])))
    }
}

/// fairseq's `transformer_iwslt_de_en` with the sizes the parameters give.
fn model_config(p: &TranslateParams, text: &Bitext) -> TransformerMtConfig {
    TransformerMtConfig {
        d_model: p.d_model,
        ffn: p.ffn,
        heads: p.heads,
        encoder_layers: p.encoder_layers,
        decoder_layers: p.decoder_layers,
        dropout: p.dropout,
        share_decoder_input_output_embed: p.share_decoder_embeddings,
        ..TransformerMtConfig::iwslt_de_en(text.src_dict.len() as i64, text.tgt_dict.len() as i64)
    }
}

/// The prepared corpus, the training pairs this run uses and their batches.
struct Data {
    text: Bitext,
    /// The first `train_pairs` training pairs, without those longer than [`MAX_POSITIONS`].
    train: Vec<Pair>,
    /// Batches of training pairs (indices into `train`) by fairseq's `batch_by_size`.
    batches: Vec<Vec<usize>>,
    valid_batches: Vec<Vec<usize>>,
    /// How many test sentences BLEU is computed on.
    test_n: usize,
}

impl Data {
    fn prepare(ctx: &StageContext, p: &TranslateParams) -> Result<Data> {
        let ds = single_dataset(ctx)?;
        let prepared = iwslt::prepare(&ds.root, p.bpe_merges)
            .with_context(|| format!("preparing dataset `{}`", ds.name))?;
        let text = Bitext::new(&prepared);
        let mut train = text.train.clone();
        if p.train_pairs > 0 {
            train.truncate(p.train_pairs);
        }
        let before = train.len();
        train.retain(|q| q.src.len() <= MAX_POSITIONS && q.tgt.len() <= MAX_POSITIONS);
        if train.len() < before {
            tracing::warn!(
                "skipped {} training pairs longer than {MAX_POSITIONS} tokens",
                before - train.len()
            );
        }
        anyhow::ensure!(
            !train.is_empty(),
            "dataset `{}` has no training pairs",
            ds.name
        );
        let num_tokens = |q: &Pair| q.src.len().max(q.tgt.len());
        let mut shuffled: Vec<usize> = (0..train.len()).collect();
        shuffled.shuffle(&mut ChaCha8Rng::seed_from_u64(p.seed as u64));
        let batches = batch_by_size(
            &ordered_indices(&train, shuffled),
            |i| num_tokens(&train[i]),
            p.max_tokens,
            BATCH_MULTIPLE,
        );
        let valid_batches = batch_by_size(
            &ordered_indices(&text.valid, (0..text.valid.len()).collect()),
            |i| num_tokens(&text.valid[i]),
            p.max_tokens,
            BATCH_MULTIPLE,
        );
        let test_n = match p.test_sentences {
            0 => text.test.len(),
            n => n.min(text.test.len()),
        };
        Ok(Data {
            text,
            train,
            batches,
            valid_batches,
            test_n,
        })
    }
}

/// What an epoch reads besides the optimizer and the log.
struct Trainer<'a> {
    p: &'a TranslateParams,
    model: &'a TransformerMt,
    data: &'a Data,
    params: &'a [Tensor],
    /// The drown-out group of each parameter.
    group: &'a [usize],
    schedule: StepSchedule,
    autocast: Autocast,
    dev: Device,
}

impl Trainer<'_> {
    /// One pass over the training batches in the epoch's seeded order (clip, step at the
    /// schedule's lr, sample the diagnostic, tick), then validation and, after the last epoch,
    /// test BLEU; the row, the tokens (source and target) trained on and the pass's seconds.
    fn epoch(
        &self,
        ctx: &StageContext,
        epoch: usize,
        opt: &mut Adam,
        log: &mut EpochLog,
        ticks: &mut Ticker,
    ) -> Result<(EpochRow, i64, f64)> {
        let start = Instant::now();
        let (p, d) = (self.p, self.data);
        let mut order: Vec<usize> = (0..d.batches.len()).collect();
        order.shuffle(&mut ChaCha8Rng::seed_from_u64(
            (p.seed as u64).wrapping_mul(1_000_003) ^ (epoch as u64 + 1),
        ));
        let acc = || Tensor::zeros([], (Kind::Double, self.dev));
        let (mut loss_sum, mut nll_sum, mut grad_norm_sum) = (acc(), acc(), acc());
        let (mut ntokens, mut src_tokens) = (0i64, 0i64);
        let mut epoch_drown = DrownOutMean::default();
        for (k, &bi) in order.iter().enumerate() {
            let b = collate(&d.train, &d.batches[bi], self.dev);
            let (loss, nll) = batch_loss(self.model, &b, p.label_smoothing, true, self.autocast);
            opt.zero_grad();
            (&loss / b.ntokens as f64).backward();
            let grad_norm = clip_grad_norm(self.params, p.clip);
            log.lr = self.schedule.lr(log.step);
            opt.step(log.lr, p.weight_decay);
            log.step += 1;
            ntokens += b.ntokens;
            let src: i64 = d.batches[bi]
                .iter()
                .map(|&i| d.train[i].src.len() as i64)
                .sum();
            src_tokens += src;
            tch::no_grad(|| {
                loss_sum += loss.detach().to_kind(Kind::Double);
                nll_sum += nll.detach().to_kind(Kind::Double);
                grad_norm_sum += grad_norm.to_kind(Kind::Double);
            });
            log.sample_drown_out(opt, epoch, self.group, &mut epoch_drown)?;
            let per_token = || loss.double_value(&[]) / b.ntokens as f64;
            ticks.part(epoch, k as u64 + 1, (b.ntokens + src) as u64, per_token);
        }
        let train_secs = start.elapsed().as_secs_f64();
        let train_loss = loss_sum.double_value(&[]) / ntokens as f64;
        let eps = p.label_smoothing;
        let (valid_loss, valid_nll) = evaluate(
            self.model,
            &d.text.valid,
            &d.valid_batches,
            eps,
            self.autocast,
            self.dev,
        );
        // BLEU after the last epoch; a diverged run (training stops there) has none.
        let (test_bleu, test_sacrebleu) = match epoch + 1 == p.epochs && train_loss.is_finite() {
            true => self.test_bleu(ctx, epoch)?,
            false => (None, None),
        };
        let row = EpochRow {
            epoch,
            lr: log.lr,
            train_loss,
            train_nll: nll_sum.double_value(&[]) / ntokens as f64,
            valid_loss,
            valid_nll,
            valid_ppl: valid_nll.exp(),
            weight_norm: total_norm(self.params),
            grad_norm: grad_norm_sum.double_value(&[]) / d.batches.len() as f64,
            test_bleu,
            test_sacrebleu,
            drown_out: epoch_drown.take(),
        };
        Ok((row, ntokens + src_tokens, train_secs))
    }

    /// Beam-search the first `test_n` test sentences, write them to `test.hyp.en` and score
    /// them: (fairseq's tokenized BLEU, sacreBLEU's 13a); none without test sentences.
    fn test_bleu(&self, ctx: &StageContext, epoch: usize) -> Result<(Option<f64>, Option<f64>)> {
        let (p, d, n) = (self.p, self.data, self.data.test_n);
        if n == 0 {
            return Ok((None, None));
        }
        let msg = "translating the test set";
        ctx.progress
            .say(Unit::Epoch, epoch as u64, p.epochs as u64, msg);
        let beam = BeamOptions {
            beam: p.beam,
            len_penalty: p.len_penalty,
            max_len_b: p.max_len_b,
            ..BeamOptions::default()
        };
        let hyps = translate(
            self.model,
            &d.text.test[..n],
            &d.text.tgt_dict,
            &beam,
            self.dev,
        )?;
        let refs = vec![d.text.test_refs[..n].to_vec()];
        let tok = corpus_bleu(&hyps, &refs, &BleuOptions::fairseq_tokenized())?;
        let sacre = corpus_bleu(&hyps, &refs, &BleuOptions::sacrebleu())?;
        tracing::info!("test (tokenized): {}", tok.format());
        tracing::info!("test (sacreBLEU 13a): {}", sacre.format());
        let mut text = hyps.join("\n");
        text.push('\n');
        std::fs::write(ctx.out_dir.join("test.hyp.en"), text)?;
        Ok((Some(tok.score), Some(sacre.score)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn collates_fairseq_style() {
        let pairs = vec![
            Pair {
                src: vec![5, 6, 2],
                tgt: vec![7, 2],
            },
            Pair {
                src: vec![8, 2],
                tgt: vec![9, 10, 2],
            },
        ];
        let b = collate(&pairs, &[0, 1], Device::Cpu);
        assert_eq!(
            Vec::<i64>::try_from(b.src.view([-1])).unwrap(),
            [5, 6, 2, 8, 2, 1]
        );
        assert_eq!(
            Vec::<i64>::try_from(b.target.view([-1])).unwrap(),
            [7, 2, 1, 9, 10, 2]
        );
        assert_eq!(
            Vec::<i64>::try_from(b.prev.view([-1])).unwrap(),
            [2, 7, 1, 2, 9, 10]
        );
        assert_eq!(b.ntokens, 5);
    }

    #[test]
    fn label_smoothing_matches_its_formula() {
        tch::manual_seed(0);
        let logits = Tensor::randn([1, 3, 6], (Kind::Float, Device::Cpu));
        let target = Tensor::from_slice(&[4i64, 2, 1]).view([1, 3]);
        let (loss, nll) = label_smoothed_loss(&logits, &target, 0.1);
        let lp = logits.log_softmax(-1, Kind::Float);
        let (mut want_nll, mut want) = (0.0, 0.0);
        for (t, &y) in [4i64, 2].iter().enumerate() {
            let row: Vec<f32> = Vec::try_from(lp.get(0).get(t as i64)).unwrap();
            let n = -row[y as usize] as f64;
            let s: f64 = row.iter().map(|&x| -(x as f64)).sum();
            want_nll += n;
            want += (1.0 - 0.1 - 0.02) * n + 0.02 * s;
        }
        assert!((nll.double_value(&[]) - want_nll).abs() < 1e-5);
        assert!((loss.double_value(&[]) - want).abs() < 1e-5);
        assert_eq!(group_of("decoder.layers.0.self_attn_layer_norm.weight"), 3);
        assert_eq!(group_of("encoder.layers.1.self_attn.q_proj.weight"), 1);
        assert_eq!(group_of("decoder.layers.0.encoder_attn.k_proj.bias"), 1);
        assert_eq!(group_of("decoder.layers.0.fc2.weight"), 2);
        assert_eq!(group_of("encoder.embed_tokens.weight"), 0);
    }
}
