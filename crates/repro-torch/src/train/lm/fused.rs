//! The `lm` kind trained as a fused group (`repro_core::pipeline::fuse`): N runs that differ only
//! in seed, lr, λ and Adam variant, as one [`StackedLm`] (a leading run axis) with one
//! [`StackedAdam`] (per-member lr, λ and variant flags). Each member is still its own run: its
//! own `metrics.jsonl`, `drown_out.jsonl` and weights, written to its own folder as a solo run
//! writes them (see the parent module for the protocol and the files).
//!
//! The protocol reads the training stream in order, with no shuffling, so every member reads the
//! same windows: a window is read once and broadcast over the run axis. Member i starts from its
//! solo run's weights (built under its own seed, then stacked) and steps with its own lr
//! schedule, clipping and variant, so without dropout it follows its solo run to float rounding
//! (crates/repro-torch/tests/it/fused_lm.rs). Dropout masks come from one random stream for the
//! whole stack ([`crate::nn::stacked_lm`]): with dropout a member is another draw of its solo
//! run, bitwise reproducible under the same grouping.
//!
//! A member whose training loss over an epoch is not finite is diverged at that epoch's end, as
//! a solo run is: its row is written (the losses as null), its weights saved as its final ones,
//! then it is frozen ([`StackedAdam::freeze`]) while the others go on. The group's checkpoint
//! (after each epoch) holds every member's counters with the stacked model and optimizer; a
//! killed group resumes all members from it.

use std::time::Instant;

use anyhow::{Context, Result, ensure};
use serde::{Deserialize, Serialize};
use serde_json::json;
use tch::nn::VarStore;
use tch::{Kind, Tensor};

use super::{EpochRow, Splits, evaluate_windows, group_of, model_config};
use crate::checkpoint::{COUNTERS, State};
use crate::data::bptt::get_batch;
use crate::libtorch::autocast_guard;
use crate::nn::stacked_lm::{StackedLm, stacked_lm_loss};
use crate::nn::transformer_lm::TransformerLm;
use crate::optim::adam::Variant;
use crate::optim::drown_out::DrownOutMean;
use crate::optim::stacked::StackedAdam;
use crate::train::common::StepSchedule;
use crate::train::epochs::{Counters, EpochLog, GROUPS};
use crate::train::progress::{Plan, Ticker};
use crate::train::stage::{MemberContext, StageContext};
use repro_core::pipeline::kinds::LmParams;
use repro_core::pipeline::progress::{Samples, Unit};
use repro_core::pipeline::stage::Outcome;
use repro_core::runtime::Autocast;

/// One member: its parameters, folder, logs and counters, and its lr schedule.
struct Member<'a> {
    p: &'a LmParams,
    out: &'a MemberContext<'a>,
    log: EpochLog,
    schedule: StepSchedule,
    /// It diverged: it no longer learns and writes no more rows.
    stopped: bool,
}

/// A fused group's checkpoint counters: each member's, in position order.
#[derive(Serialize, Deserialize)]
struct GroupCounters {
    members: Vec<Counters>,
}

/// Train `members` as one stacked model (see the module doc); one outcome per member.
pub(super) fn run(
    ctx: &StageContext,
    members: &[(MemberContext, LmParams)],
) -> Result<Vec<Outcome>> {
    let Some((first, p0)) = members.first() else {
        anyhow::bail!("a fused group needs at least one member");
    };
    for (m, p) in members {
        let mut same = p.clone();
        (same.seed, same.lr, same.weight_decay, same.variant) =
            (p0.seed, p0.lr, p0.weight_decay, p0.variant);
        ensure!(
            same == *p0,
            "run {} cannot share a fused group with {}: groups differ only in seed, lr, \
             weight_decay and variant",
            m.run_id,
            first.run_id
        );
    }
    let data = Splits::load(ctx, p0)?;
    let cfg = model_config(p0, data.vocab);
    let mut solo = Vec::new();
    for (_, p) in members {
        // Each member's weights drawn as its solo run draws them.
        tch::manual_seed(p.seed);
        let vs = VarStore::new(ctx.device);
        TransformerLm::new(&vs.root(), &cfg).context("the lm stage's model parameters")?;
        solo.push(vs);
    }
    let vs = VarStore::new(ctx.device);
    let model = StackedLm::from_members(&vs, &cfg, &solo)?;
    let mut resumed = ctx.resume()?;
    if resumed.is_none() {
        for ((m, _), member_vs) in members.iter().zip(&solo) {
            member_vs.save(m.out_dir.join("init.safetensors"))?;
        }
    }
    drop(solo);
    let named = model.variables();
    let group: Vec<usize> = named.iter().map(|(n, _)| group_of(n)).collect();
    let variants: Vec<Variant> = members.iter().map(|(_, p)| p.variant.into()).collect();
    let params = named.into_iter().map(|(_, t)| t).collect();
    let mut opt = StackedAdam::new(params, p0.beta1, p0.beta2, p0.eps, &variants);
    opt.track_drown_out_every(p0.drown_out_every);
    let rows = data.train.size()[0];
    let steps_per_epoch = ((rows - 1) + p0.bptt - 1) / p0.bptt;
    let total = steps_per_epoch as u64 * p0.epochs as u64;
    let mut group_members = Vec::new();
    for (m, p) in members {
        let schedule = StepSchedule::new(p.lr_schedule, p.lr, p.warmup_steps, total);
        let log = EpochLog::create(
            &m.out_dir,
            p.drown_out_every,
            schedule.lr(0),
            resumed.is_some(),
        )?;
        group_members.push(Member {
            p,
            out: m,
            log,
            schedule,
            stopped: false,
        });
    }
    let mut g = Group {
        members: group_members,
        model,
        vs,
        opt,
        data,
        group,
        autocast: ctx.precision.autocast,
    };
    if let Some(st) = resumed.as_mut() {
        g.restore(st)?;
    }
    let first_epoch = g.members[0].log.first_epoch;
    let plan = Plan::even(
        Unit::Epoch,
        p0.epochs as u64,
        steps_per_epoch as u64,
        Samples::Tokens,
    );
    let mut ticks = Ticker::new(ctx.progress, plan, first_epoch as u64);
    for epoch in first_epoch..p0.epochs {
        if g.members.iter().all(|m| m.stopped) {
            break;
        }
        let start = Instant::now();
        let sums = g.train_epoch(epoch, &mut ticks)?;
        let train_secs = start.elapsed().as_secs_f64();
        g.finish_epoch(epoch, sums, start, train_secs)?;
        let live = g.members.iter().filter(|m| !m.stopped).count();
        ticks.unit_end(
            epoch,
            &format!("{live} of {} members learning", g.members.len()),
        );
        g.checkpoint(ctx, epoch)?;
    }
    g.finish()
}

/// The members and what they share.
struct Group<'a> {
    members: Vec<Member<'a>>,
    model: StackedLm,
    vs: VarStore,
    opt: StackedAdam,
    data: Splits,
    /// The drown-out group of each stacked parameter.
    group: Vec<usize>,
    autocast: Autocast,
}

/// An epoch's per-member training sums (`[N]` f64 on the device).
struct Sums {
    loss: Tensor,
    grad_norm: Tensor,
    drown: Vec<DrownOutMean>,
}

impl Group<'_> {
    fn n(&self) -> i64 {
        self.members.len() as i64
    }

    /// 1 for members that learn, 0 for stopped ones (their sums stay as they were).
    fn live_mask(&self) -> Tensor {
        let live: Vec<f64> = self
            .members
            .iter()
            .map(|m| f64::from(u8::from(!m.stopped)))
            .collect();
        Tensor::from_slice(&live).to_device(self.data.train.device())
    }

    /// One pass over the training stream: every live member steps on every window (members
    /// step together, so their step counts agree). The pass's sums, for their rows.
    fn train_epoch(&mut self, epoch: usize, ticks: &mut Ticker) -> Result<Sums> {
        let p = self.members[0].p;
        let rows = self.data.train.size()[0];
        let acc = || Tensor::zeros([self.n()], (Kind::Double, self.data.train.device()));
        let mut sums = Sums {
            loss: acc(),
            grad_norm: acc(),
            drown: (0..self.members.len())
                .map(|_| DrownOutMean::default())
                .collect(),
        };
        let live = self.live_mask();
        let live_count = self.members.iter().filter(|m| !m.stopped).count();
        let wd: Vec<f64> = self.members.iter().map(|m| m.p.weight_decay).collect();
        let mut i = 0;
        while i < rows - 1 {
            let (x, y) = get_batch(&self.data.train, i, p.bptt)?;
            let seq_len = x.size()[0];
            let lr: Vec<f64> = self
                .members
                .iter()
                .map(|m| m.schedule.lr(m.log.step))
                .collect();
            let (losses, grad_norms) = fused_step(
                &self.model,
                &mut self.opt,
                (&x, &y),
                p.clip,
                (&lr, &wd),
                self.autocast,
            );
            tch::no_grad(|| {
                sums.loss += losses.to_kind(Kind::Double) * &live * seq_len as f64;
                sums.grad_norm += grad_norms.to_kind(Kind::Double) * &live;
            });
            for (m, lr) in self.members.iter_mut().zip(&lr) {
                if !m.stopped {
                    m.log.lr = *lr;
                    m.log.step += 1;
                }
            }
            self.sample_drown_out(epoch, &mut sums.drown)?;
            let tokens = (seq_len * p.batch_size) as u64 * live_count as u64;
            ticks.part(epoch, (i / p.bptt) as u64 + 1, tokens, || {
                (&losses * &live).sum(Kind::Double).double_value(&[]) / live_count.max(1) as f64
            });
            i += p.bptt;
        }
        Ok(sums)
    }

    /// The live members' E8 samples when the step just taken is one the diagnostic samples.
    fn sample_drown_out(&mut self, epoch: usize, means: &mut [DrownOutMean]) -> Result<()> {
        let Some(leader) = self.members.iter().find(|m| !m.stopped) else {
            return Ok(());
        };
        if !leader.log.sample_due() {
            return Ok(());
        }
        let all = self.opt.drown_out();
        let by_group = self.opt.drown_out_by_group(&self.group, GROUPS.len());
        for (i, m) in self.members.iter_mut().enumerate() {
            if !m.stopped {
                m.log
                    .write_sample(epoch, all[i], &by_group[i], &mut means[i])?;
            }
        }
        Ok(())
    }
}

impl Group<'_> {
    /// Validation and test, each member's row, the divergence check, the epoch's timings.
    fn finish_epoch(
        &mut self,
        epoch: usize,
        sums: Sums,
        start: Instant,
        train_secs: f64,
    ) -> Result<()> {
        let p = self.members[0].p;
        let rows = self.data.train.size()[0];
        let steps = ((rows - 1) + p.bptt - 1) / p.bptt;
        let host =
            |t: &Tensor| Vec::<f64>::try_from(&t.to_device(tch::Device::Cpu)).expect("[N] f64");
        let train_loss: Vec<f64> = host(&sums.loss)
            .iter()
            .map(|l| l / (rows - 1) as f64)
            .collect();
        let grad_norm: Vec<f64> = host(&sums.grad_norm)
            .iter()
            .map(|g| g / steps as f64)
            .collect();
        let valid = evaluate(&self.model, &self.data.valid, p.bptt, self.autocast);
        let test = evaluate(&self.model, &self.data.test, p.bptt, self.autocast);
        let weight_norm = self.opt.weight_norms();
        let seconds = start.elapsed().as_secs_f64();
        let tokens_per_s = ((rows - 1) * p.batch_size) as f64 / train_secs;
        for (i, (m, mut drown)) in self.members.iter_mut().zip(sums.drown).enumerate() {
            if m.stopped {
                continue;
            }
            let row = EpochRow {
                epoch,
                lr: m.log.lr,
                train_loss: train_loss[i],
                train_ppl: train_loss[i].exp(),
                valid_loss: valid[i],
                valid_ppl: valid[i].exp(),
                test_loss: test[i],
                test_ppl: test[i].exp(),
                weight_norm: weight_norm[i],
                grad_norm: grad_norm[i],
                drown_out: drown.take(),
            };
            m.log.metrics.write(&row)?;
            m.log.last = json!({
                "epoch": epoch, "train_ppl": row.train_ppl, "valid_ppl": row.valid_ppl,
                "test_ppl": row.test_ppl, "weight_norm": row.weight_norm,
            });
            m.log.seconds.push(seconds);
            m.log.tokens_per_s.push(tokens_per_s);
            if !row.train_loss.is_finite() {
                m.log.diverged_epoch = Some(epoch);
                m.stopped = true;
                save_member(&self.model, i, m)?;
                self.opt.freeze(i);
            }
        }
        Ok(())
    }

    /// The group's checkpoint after `epoch`: the stacked model and optimizer, every member's
    /// counters.
    fn checkpoint(&self, ctx: &StageContext, epoch: usize) -> Result<()> {
        let mut st = State::default();
        st.put_vars("model", &self.vs);
        self.opt.save_state(&mut st, "opt")?;
        let c = GroupCounters {
            members: self.members.iter().map(|m| m.log.counters(epoch)).collect(),
        };
        st.put(COUNTERS, &c)?;
        ctx.checkpoint(epoch as u64 + 1, st)
    }

    /// The stacked model, optimizer (with its frozen set) and every member's counters from the
    /// group's checkpoint.
    fn restore(&mut self, st: &mut State) -> Result<()> {
        st.load_vars("model", &self.vs)?;
        self.opt.load_state(st, "opt")?;
        let c: GroupCounters = st.get(COUNTERS)?;
        ensure!(
            c.members.len() == self.members.len(),
            "the checkpoint is of a group of {} runs, this one has {}",
            c.members.len(),
            self.members.len()
        );
        for (m, counters) in self.members.iter_mut().zip(c.members) {
            m.log.restore(counters);
            m.stopped = m.log.diverged_epoch.is_some();
        }
        Ok(())
    }

    /// Every member's final weights (a diverged one's were saved when it diverged), its logs
    /// closed, its outcome.
    fn finish(self) -> Result<Vec<Outcome>> {
        let n = self.members.len();
        let mut out = Vec::new();
        for (i, m) in self.members.into_iter().enumerate() {
            if !m.stopped {
                save_member(&self.model, i, &m)?;
            }
            let mut metrics = m.log.finish()?.to_vec();
            metrics.push(("fused_members", json!(n)));
            out.push(Outcome::with_metrics(metrics));
        }
        Ok(out)
    }
}

/// Member `i`'s weights as its `final.safetensors`, under the solo names.
fn save_member(model: &StackedLm, i: usize, m: &Member) -> Result<()> {
    Tensor::write_safetensors(
        &model.member_tensors(i),
        m.out.out_dir.join("final.safetensors"),
    )?;
    Ok(())
}

/// One update of every member on the window `(x, y)` (`[seq, batch]` tokens, `[seq·batch]`
/// targets, read once for all): the stacked forward and per-member losses under `autocast`,
/// one backward of their sum (member i's gradient is its own loss's), each member's gradient
/// clipped to `clip` (0: off), then the step at `lr[i]`, `weight_decay[i]`. Returns the `[N]`
/// losses and the `[N]` gradient norms before clipping; no host sync.
pub fn fused_step(
    model: &StackedLm,
    opt: &mut StackedAdam,
    (x, y): (&Tensor, &Tensor),
    clip: f64,
    (lr, weight_decay): (&[f64], &[f64]),
    autocast: Autocast,
) -> (Tensor, Tensor) {
    let n = model.members() as i64;
    let (seq, batch) = x.size2().expect("a [seq, batch] window");
    let losses = {
        let _autocast = autocast_guard(x.device(), autocast);
        let logits = model.forward_t(&x.unsqueeze(0).expand([n, seq, batch], false), true);
        stacked_lm_loss(&logits, &y.unsqueeze(0).expand([n, seq * batch], false))
    };
    opt.clear_grads();
    losses.sum(Kind::Float).backward();
    let grad_norms = opt.clip_grad_norms(clip);
    opt.step(lr, weight_decay);
    (losses.detach(), grad_norms)
}

/// Each member's loss on `source` as the solo [`super::evaluate`] computes it (its window loop,
/// [`super::evaluate_windows`]); eval mode (no dropout).
pub fn evaluate(model: &StackedLm, source: &Tensor, bptt: i64, autocast: Autocast) -> Vec<f64> {
    let n = model.members() as i64;
    let total = evaluate_windows(source, bptt, |x, y| {
        let (seq, batch) = x.size2().expect("a [seq, batch] window");
        let _autocast = autocast_guard(x.device(), autocast);
        let logits = model.forward_t(&x.unsqueeze(0).expand([n, seq, batch], false), false);
        stacked_lm_loss(&logits, &y.unsqueeze(0).expand([n, seq * batch], false))
    });
    Vec::<f64>::try_from(&total.to_device(tch::Device::Cpu)).expect("an [N] f64 tensor")
}
