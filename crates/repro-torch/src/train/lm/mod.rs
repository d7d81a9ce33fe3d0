//! The `lm` stage kind (docs/paper.md#e5, E7, E8): a causal Transformer language model on WikiText,
//! trained with one variant of the Adam family at one (lr, λ), under pytorch/examples'
//! word_language_model protocol: the splits batchified into contiguous streams, windows of
//! `bptt` tokens taken in order (no shuffling), cross-entropy over the vocabulary, the total
//! gradient norm clipped (`clip`), then the optimizer step; validation and test loss as its
//! `evaluate` computes them (Σ window length · mean loss / (rows − 1)).
//!
//! Outputs: `metrics.jsonl` (one row per epoch: train/valid/test loss and perplexity, weight and
//! gradient norms, the lr, and with `drown_out_every` > 0 the E8 means over the epoch's sampled
//! steps), `drown_out.jsonl` (with the diagnostic on: each sampled step, all parameters and each
//! layer group: embeddings, attention, feed-forward, LayerNorm), and the weights as safetensors at
//! initialisation and at the end.
//! Tokens/s and epoch times go to the run record, so outputs stay bitwise stable.
//!
//! A run whose training loss stops being finite is diverged: its epoch row is written (the
//! losses as null) and training stops there, recorded as `diverged_epoch`; such a run is a bad
//! hyper-parameter cell, not a missing one.
//!
//! `fused` trains several runs of one experiment as one stacked model (issue 30's fused groups).

use std::time::Instant;

use anyhow::{Context, Result};
use serde::Serialize;
use serde_json::json;
use tch::{Kind, Tensor};

use super::common::{StepSchedule, adam_from_params, total_norm, trainable_by_name};
use super::epochs::EpochLog;
use super::progress::{Plan, Ticker};
use super::stage::{Fused, MemberContext, Stage, StageContext};
use super::vision::single_dataset;
use crate::data::bptt::{batchify, get_batch};
use crate::libtorch::autocast_guard;
use crate::nn::transformer_lm::{TransformerLm, TransformerLmConfig};
use crate::optim::adam::Adam;
use crate::optim::drown_out::{DrownOut, DrownOutMean};
use repro_core::data::wikitext::Corpus;
use repro_core::pipeline::kinds::{LM, LmParams};
use repro_core::pipeline::progress::{Samples, Unit};
use repro_core::pipeline::stage::{Outcome, StageDecl};
use repro_core::runtime::Autocast;

pub mod fused;

/// The drown-out group (index into [`super::epochs::GROUPS`]) of a `TransformerLm` variable
/// (`transformer_encoder.layers.0.self_attn.…`).
pub fn group_of(name: &str) -> usize {
    if name.contains("self_attn") {
        1
    } else if name.contains(".linear") {
        2
    } else if name.contains("norm") {
        3
    } else {
        0 // encoder.weight, decoder.weight, decoder.bias
    }
}

#[derive(Serialize)]
struct EpochRow {
    epoch: usize,
    lr: f64,
    train_loss: f64,
    train_ppl: f64,
    valid_loss: f64,
    valid_ppl: f64,
    test_loss: f64,
    test_ppl: f64,
    weight_norm: f64,
    grad_norm: f64,
    #[serde(flatten, skip_serializing_if = "Option::is_none")]
    drown_out: Option<DrownOut>,
}

/// The first `n` ids (`n` = 0: all).
fn prefix(ids: &[i64], n: usize) -> &[i64] {
    if n == 0 {
        ids
    } else {
        &ids[..n.min(ids.len())]
    }
}

/// The `lm` kind.
pub struct Lm;

impl Stage for Lm {
    type Params = LmParams;
    const DECL: &'static StageDecl = &LM;
    /// Train one run: the setup, then per epoch the training pass, evaluation, its row and the
    /// checkpoint; a non-finite training loss ends the run as diverged.
    fn run(ctx: &StageContext, p: &LmParams) -> Result<Outcome> {
        tch::manual_seed(p.seed);
        let data = Splits::load(ctx, p)?;
        let vs = tch::nn::VarStore::new(ctx.device);
        let model = TransformerLm::new(&vs.root(), &model_config(p, data.vocab))
            .context("the lm stage's model parameters")?;
        let mut resumed = ctx.resume()?;
        if resumed.is_none() {
            vs.save(ctx.out_dir.join("init.safetensors"))?;
        }
        let named = trainable_by_name(&vs);
        let params: Vec<Tensor> = named.iter().map(|(_, t)| t.shallow_clone()).collect();
        let group: Vec<usize> = named.iter().map(|(n, _)| group_of(n)).collect();
        let adam = p.adam();
        let mut opt = adam_from_params(&adam, params.iter().map(Tensor::shallow_clone).collect());
        let rows = data.train.size()[0];
        let steps_per_epoch = ((rows - 1) + p.bptt - 1) / p.bptt;
        let total = steps_per_epoch as u64 * p.epochs as u64;
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
        };
        let per_epoch = steps_per_epoch as u64;
        let plan = Plan::even(Unit::Epoch, p.epochs as u64, per_epoch, Samples::Tokens);
        let mut ticks = Ticker::new(ctx.progress, plan, log.first_epoch as u64);
        for epoch in log.first_epoch..p.epochs {
            let start = Instant::now();
            let (row, train_secs) = t.epoch(epoch, &mut opt, &mut log, &mut ticks, start)?;
            log.metrics.write(&row)?;
            log.last = json!({
                "epoch": epoch, "train_ppl": row.train_ppl, "valid_ppl": row.valid_ppl,
                "test_ppl": row.test_ppl, "weight_norm": row.weight_norm,
            });
            log.seconds.push(start.elapsed().as_secs_f64());
            log.tokens_per_s
                .push(((rows - 1) * p.batch_size) as f64 / train_secs);
            ticks.unit_end(epoch, &format!("valid ppl {:.2}", row.valid_ppl));
            if !row.train_loss.is_finite() {
                log.diverged_epoch = Some(epoch);
                break;
            }
            log.checkpoint(ctx, epoch, &vs, &opt)?;
        }
        let outcome = log.finish()?;
        vs.save(ctx.out_dir.join("final.safetensors"))?;
        Ok(Outcome::with_metrics(outcome))
    }
}

impl Fused for Lm {
    fn run_fused(
        ctx: &StageContext,
        members: &[(MemberContext, LmParams)],
    ) -> Result<Vec<Outcome>> {
        fused::run(ctx, members)
    }
}

/// The model the parameters describe over a vocabulary of `vocab` words.
fn model_config(p: &LmParams, vocab: i64) -> TransformerLmConfig {
    TransformerLmConfig {
        vocab,
        d_model: p.d_model,
        heads: p.heads,
        layers: p.layers,
        ffn: p.ffn,
        dropout: p.dropout,
        norm_first: p.norm_first,
        tie_embeddings: p.tie_embeddings,
    }
}

/// The three splits batchified into streams on the device, and the vocabulary size.
struct Splits {
    train: Tensor,
    valid: Tensor,
    test: Tensor,
    vocab: i64,
}

impl Splits {
    fn load(ctx: &StageContext, p: &LmParams) -> Result<Splits> {
        let ds = single_dataset(ctx)?;
        let corpus = Corpus::load(&ds.root).with_context(|| format!("dataset `{}`", ds.name))?;
        let split = |name: &str, ids: &[i64], b: i64| -> Result<Tensor> {
            let t =
                batchify(ids, b).with_context(|| format!("the {name} split of `{}`", ds.name))?;
            anyhow::ensure!(
                t.size()[0] >= 2,
                "the {name} split of `{}` has {} tokens: too few for {b} streams (need 2 per \
                 stream)",
                ds.name,
                ids.len()
            );
            Ok(t.to_device(ctx.device))
        };
        Ok(Splits {
            train: split("train", prefix(&corpus.train, p.train_tokens), p.batch_size)?,
            valid: split("validation", &corpus.valid, p.eval_batch_size)?,
            test: split("test", &corpus.test, p.eval_batch_size)?,
            vocab: corpus.dictionary.len() as i64,
        })
    }
}

/// What an epoch reads besides the optimizer and the log.
struct Trainer<'a> {
    p: &'a LmParams,
    model: &'a TransformerLm,
    data: &'a Splits,
    params: &'a [Tensor],
    /// The drown-out group of each parameter.
    group: &'a [usize],
    schedule: StepSchedule,
    autocast: Autocast,
}

impl Trainer<'_> {
    /// One pass over the training stream in `bptt` windows (clip, step at the schedule's lr,
    /// sample the diagnostic, tick), then validation and test; the row and the training pass's
    /// seconds since `start`.
    fn epoch(
        &self,
        epoch: usize,
        opt: &mut Adam,
        log: &mut EpochLog,
        ticks: &mut Ticker,
        start: Instant,
    ) -> Result<(EpochRow, f64)> {
        let (p, d, vocab) = (self.p, self.data, self.data.vocab);
        let rows = d.train.size()[0];
        let acc = || Tensor::zeros([], (Kind::Double, d.train.device()));
        let (mut loss_sum, mut grad_norm_sum) = (acc(), acc());
        let mut epoch_drown = DrownOutMean::default();
        let mut i = 0;
        while i < rows - 1 {
            let (x, y) = get_batch(&d.train, i, p.bptt)?;
            let seq_len = x.size()[0];
            let loss = lm_loss(self.model, &x, &y, vocab, true, self.autocast);
            opt.zero_grad();
            loss.backward();
            let grad_norm = clip_grad_norm(self.params, p.clip);
            log.lr = self.schedule.lr(log.step);
            opt.step(log.lr, p.weight_decay);
            log.step += 1;
            tch::no_grad(|| {
                loss_sum += loss.to_kind(Kind::Double) * seq_len as f64;
                grad_norm_sum += grad_norm.to_kind(Kind::Double);
            });
            log.sample_drown_out(opt, epoch, self.group, &mut epoch_drown)?;
            let tokens = (seq_len * p.batch_size) as u64;
            ticks.part(epoch, (i / p.bptt) as u64 + 1, tokens, || {
                loss.double_value(&[])
            });
            i += p.bptt;
        }
        let train_secs = start.elapsed().as_secs_f64();
        let steps = ((rows - 1) + p.bptt - 1) / p.bptt;
        let train_loss = loss_sum.double_value(&[]) / (rows - 1) as f64;
        let valid_loss = evaluate(self.model, &d.valid, p.bptt, vocab, self.autocast);
        let test_loss = evaluate(self.model, &d.test, p.bptt, vocab, self.autocast);
        let row = EpochRow {
            epoch,
            lr: log.lr,
            train_loss,
            train_ppl: train_loss.exp(),
            valid_loss,
            valid_ppl: valid_loss.exp(),
            test_loss,
            test_ppl: test_loss.exp(),
            weight_norm: total_norm(self.params),
            grad_norm: grad_norm_sum.double_value(&[]) / steps as f64,
            drown_out: epoch_drown.take(),
        };
        Ok((row, train_secs))
    }
}

/// torch.nn.utils.clip_grad_norm_: scale every gradient by min(1, max / (‖g‖ + 1e-6)), ‖g‖ the
/// 2-norm of all gradients together, on the device (no host sync). Returns ‖g‖ before clipping.
/// `max` = 0 turns clipping off (the norm is still returned).
pub fn clip_grad_norm(params: &[Tensor], max: f64) -> Tensor {
    tch::no_grad(|| {
        let grads: Vec<Tensor> = params
            .iter()
            .map(Tensor::grad)
            .filter(Tensor::defined)
            .collect();
        let Some(first) = grads.first() else {
            return Tensor::zeros([], (Kind::Float, tch::Device::Cpu));
        };
        let norms: Vec<Tensor> = grads.iter().map(|g| g.norm()).collect();
        let total = Tensor::stack(&norms, 0).norm();
        if max > 0.0 {
            let coef = ((&total + 1e-6).reciprocal() * max)
                .clamp_max(1.0)
                .to_kind(first.kind());
            for g in &grads {
                let _ = g.shallow_clone().g_mul_(&coef);
            }
        }
        total
    })
}

/// Mean cross-entropy of one window, the forward pass and the loss under the run's autocast
/// (the guard ends here: the caller's `backward()` runs outside it, as in PyTorch).
pub fn lm_loss(
    model: &TransformerLm,
    x: &Tensor,
    y: &Tensor,
    vocab: i64,
    train: bool,
    autocast: Autocast,
) -> Tensor {
    let _autocast = autocast_guard(x.device(), autocast);
    model
        .forward_t(x, train)
        .view([-1, vocab])
        .cross_entropy_for_logits(y)
}

/// pytorch/examples' `evaluate`: Σ over windows of (window length · mean cross-entropy),
/// divided by (rows − 1); eval mode (no dropout).
pub fn evaluate(
    model: &TransformerLm,
    source: &Tensor,
    bptt: i64,
    vocab: i64,
    autocast: Autocast,
) -> f64 {
    evaluate_windows(source, bptt, |x, y| {
        lm_loss(model, x, y, vocab, false, autocast)
    })
    .double_value(&[])
}

/// The window loop of [`evaluate`], without gradients: Σ over `source`'s `bptt` windows of
/// (window length · `loss(x, y)`), in f64, divided by (rows − 1). `loss` gives one loss (a solo
/// model) or one per member (a stacked one), and so does the result.
pub fn evaluate_windows(
    source: &Tensor,
    bptt: i64,
    loss: impl Fn(&Tensor, &Tensor) -> Tensor,
) -> Tensor {
    tch::no_grad(|| {
        let rows = source.size()[0];
        let mut total: Option<Tensor> = None;
        let mut i = 0;
        while i < rows - 1 {
            let (x, y) = get_batch(source, i, bptt).expect("window start in range");
            let term = loss(&x, &y).to_kind(Kind::Double) * x.size()[0] as f64;
            total = Some(match total {
                Some(t) => t + term,
                None => term,
            });
            i += bptt;
        }
        total.expect("a split of at least 2 rows has a window") / (rows - 1) as f64
    })
}
