//! The `dqn` kind trained as a fused group (`repro_core::pipeline::fuse`): N runs that differ
//! only in seed, lr, λ and Adam variant, as one stacked Q-network ([`StackedQNet`], a leading
//! run axis) with one stacked optimizer ([`StackedAdam`], per-member lr, λ and variant flags).
//! Each member is still its own run, stepped in lockstep with the others: its own environments,
//! random streams, replay memory, episodes, metrics rows and weights, written to its own folder
//! exactly as a solo run writes them (see the parent module for the protocol and the files).
//!
//! What is shared is only the work: one batched greedy forward per step for every member that
//! acts greedily, one batched update (one sampled batch per member, stacked), one evaluation
//! loop. Member i's initial weights are a solo run's (built under its own seed, then stacked)
//! and every random draw comes from its own streams in the solo order, so a member follows its
//! solo run until the first action a rounding difference of the stacked kernels changes.
//!
//! A member whose TD loss or Q stops being finite is diverged as a solo run would be: its row
//! for that iteration is written with nulls, its weights as they were saved, then it is frozen
//! (weights and moments zeroed, lr 0) and stops acting, while the others go on. The group's
//! checkpoint (after each iteration) holds every member's state; a killed group resumes all
//! members from it.

use std::time::Instant;

use anyhow::{Result, ensure};
use rand::Rng;
use rand_chacha::ChaCha8Rng;
use serde_json::{Value, json};
use tch::nn::VarStore;
use tch::{Kind, Tensor};

use super::dqn::linearly_decaying_epsilon;
use super::replay::{Batch, Replay};
use super::stacked::{StackedBatch, greedy, stacked_update};
use super::{
    Actor, DIVERGENCE_CHECK_UPDATES, Dqn, EpisodeRow, INTRA_OP_THREADS, Seeded, env_spec, env_step,
    fmt_opt, iteration_plan,
};
use crate::checkpoint::State;

mod checkpoint;
mod eval;
use crate::games::EnvSpec;
use crate::nn::dqn::build;
use crate::nn::stacked_dqn::StackedQNet;
use crate::optim::adam::Variant;
use crate::optim::drown_out::DrownOutMean;
use crate::optim::stacked::StackedAdam;
use crate::train::progress::Ticker;
use crate::train::stage::{Fused, MemberContext, StageContext};
use repro_core::metrics::JsonLines;
use repro_core::pipeline::kinds::DqnParams;
use repro_core::pipeline::stage::Outcome;

/// One member: a solo run's environment, streams, replay memory and files.
struct Member<'a> {
    p: &'a DqnParams,
    out: &'a MemberContext<'a>,
    actor: Actor,
    eval_seed: u64,
    explore: ChaCha8Rng,
    sampler: ChaCha8Rng,
    memory: Replay,
    actions_taken: Vec<u8>,
    step: u64,
    updates: u64,
    metrics: JsonLines,
    episodes: JsonLines,
    /// The iteration it diverged in: it writes no rows after it.
    diverged_iteration: Option<usize>,
    /// It diverged (in this iteration or before): it no longer acts or learns.
    stopped: bool,
    last: Value,
}

/// An iteration's training sums, per member ([N] on the device, f64).
struct Pass {
    loss_sum: Tensor,
    q_sum: Tensor,
    grad_sum: Tensor,
    /// 1 for members that learn, 0 for frozen ones: their sums stay as they were.
    live: Tensor,
    updates: Vec<u64>,
    returns: Vec<Vec<f64>>,
    eps: f64,
    /// Members found diverged in this iteration, with their weight norm when found.
    diverged: Vec<Option<f64>>,
    /// Each member's E8 samples of the iteration.
    drown: Vec<DrownOutMean>,
}

struct Group<'a> {
    members: Vec<Member<'a>>,
    spec: EnvSpec,
    shape: [i64; 3],
    actions: usize,
    dev: tch::Device,
    vs: VarStore,
    target_vs: VarStore,
    online: StackedQNet,
    target: StackedQNet,
    opt: StackedAdam,
    lr: Vec<f64>,
    weight_decay: Vec<f64>,
    /// Seconds spent acting, updating and evaluating (the whole group's).
    seconds: (f64, f64, f64),
}

impl Fused for Dqn {
    fn run_fused(
        ctx: &StageContext,
        members: &[(MemberContext, DqnParams)],
    ) -> Result<Vec<Outcome>> {
        let (mut g, resumed) = Group::new(ctx, members)?;
        let mut first_iteration = 0;
        if let Some(mut st) = resumed {
            first_iteration = g.restore(&mut st)?;
        }
        let (iterations, plan) = iteration_plan(g.members[0].p);
        let mut ticks = Ticker::new(ctx.progress, plan, first_iteration as u64);
        for iteration in first_iteration..iterations {
            if g.members.iter().all(|m| m.diverged_iteration.is_some()) {
                break;
            }
            let pass = g.train(iteration, &mut ticks)?;
            let returns = g.finish_iteration(iteration, pass)?;
            ticks.unit_end(iteration, &format!("eval return {}", fmt_opt(returns)));
            g.checkpoint(ctx, iteration)?;
        }
        g.finish()
    }
}

impl<'a> Group<'a> {
    /// Every member as a solo run starts (its seed's weights, environment and streams), the
    /// stacked networks and optimizer, and the group's checkpoint if there is one.
    fn new(
        ctx: &StageContext,
        members: &'a [(MemberContext<'a>, DqnParams)],
    ) -> Result<(Group<'a>, Option<State>)> {
        let p0 = &members[0].1;
        for (m, p) in members {
            ensure!(
                p.env == p0.env
                    && p.game == p0.game
                    && p.model == p0.model
                    && p.history == p0.history
                    && p.frames == p0.frames
                    && p.drown_out_every == p0.drown_out_every
                    && (p.beta1, p.beta2, p.eps) == (p0.beta1, p0.beta2, p0.eps),
                "run {} cannot share a fused group with {}: groups differ only in seed, lr, \
                 weight_decay and variant",
                m.run_id,
                members[0].0.run_id
            );
        }
        let dev = ctx.device;
        tch::set_num_threads(INTRA_OP_THREADS as i32);
        let resumed = ctx.resume()?;
        let spec = env_spec(ctx, p0);
        let mut solo_nets = Vec::new();
        let mut group = Vec::new();
        let (mut shape, mut actions) = ([0; 3], 0);
        for (out, p) in members {
            // Each member's draws in a solo run's order: its weights, then its streams.
            tch::manual_seed(p.seed);
            let Seeded {
                actor,
                eval_seed,
                explore,
                sampler,
            } = Seeded::new(&spec, p)?;
            (shape, actions) = actor.shape(p.history);
            let vs = VarStore::new(dev);
            build(p.model, &vs.root(), shape, actions as i64);
            if resumed.is_none() {
                vs.save(out.out_dir.join("init.safetensors"))?;
            }
            solo_nets.push(vs);
            let memory = Replay::new(p.replay_capacity, p.history, actor.frame.len());
            group.push(Member {
                p,
                out,
                actor,
                eval_seed,
                explore,
                sampler,
                memory,
                actions_taken: Vec::new(),
                step: 0,
                updates: 0,
                metrics: JsonLines::open(&out.out_dir.join("metrics.jsonl"), resumed.is_some())?,
                episodes: JsonLines::open(&out.out_dir.join("episodes.jsonl"), resumed.is_some())?,
                diverged_iteration: None,
                stopped: false,
                last: json!({}),
            });
        }
        let vs = VarStore::new(dev);
        let online = StackedQNet::from_members(&vs, p0.model, shape, actions as i64, &solo_nets)?;
        let target_vs = VarStore::new(dev);
        let target =
            StackedQNet::from_members(&target_vs, p0.model, shape, actions as i64, &solo_nets)?;
        let variants: Vec<Variant> = members.iter().map(|(_, p)| p.variant.into()).collect();
        let mut opt = StackedAdam::new(
            vs.trainable_variables(),
            p0.beta1,
            p0.beta2,
            p0.eps,
            &variants,
        );
        opt.track_drown_out_every(p0.drown_out_every);
        let g = Group {
            lr: members.iter().map(|(_, p)| p.lr).collect(),
            weight_decay: members.iter().map(|(_, p)| p.weight_decay).collect(),
            members: group,
            spec,
            shape,
            actions,
            dev,
            vs,
            target_vs,
            online,
            target,
            opt,
            seconds: (0.0, 0.0, 0.0),
        };
        Ok((g, resumed))
    }

    /// The iteration's training steps, every live member in lockstep.
    fn train(&mut self, iteration: usize, ticks: &mut Ticker) -> Result<Pass> {
        let p = self.members[0].p;
        let n = self.members.len();
        let zeros = || Tensor::zeros([n as i64], (Kind::Double, self.dev));
        let live: Vec<f64> = self
            .members
            .iter()
            .map(|m| f64::from(u8::from(!m.stopped)))
            .collect();
        let mut pass = Pass {
            loss_sum: zeros(),
            q_sum: zeros(),
            grad_sum: zeros(),
            live: Tensor::from_slice(&live).to_device(self.dev),
            updates: vec![0; n],
            returns: vec![Vec::new(); n],
            eps: 1.0,
            diverged: vec![None; n],
            drown: (0..n).map(|_| DrownOutMean::default()).collect(),
        };
        let first = iteration as u64 * p.iteration_steps;
        let start = self.step();
        let end = p.frames.min(start + p.iteration_steps);
        let mut last_loss: Option<Tensor> = None;
        for step in start..end {
            if !self.any_live() {
                break;
            }
            let t0 = Instant::now();
            pass.eps =
                linearly_decaying_epsilon(p.epsilon_decay_steps, step, p.min_replay, p.epsilon_end);
            let acts = self.act(pass.eps);
            for (i, m) in self.members.iter_mut().enumerate() {
                let Some(a) = acts[i] else { continue };
                let s = env_step(&mut m.actor, &mut m.memory, a);
                m.actions_taken.push(a as u8);
                m.step += 1;
                if let Some(e) = s.ended {
                    pass.returns[i].push(e.0);
                    m.episodes
                        .write(&EpisodeRow::new("train", iteration, m.step, e))?;
                }
            }
            self.seconds.0 += t0.elapsed().as_secs_f64();
            let step = step + 1;
            let memory = self.members[0].memory.len() as u64;
            if memory >= p.min_replay && step.is_multiple_of(p.update_every) {
                last_loss = Some(self.update(&mut pass)?);
            }
            if step.is_multiple_of(p.target_update) {
                self.target_vs.copy(&self.vs)?;
            }
            let loss = || {
                last_loss.as_ref().map_or(f64::NAN, |l| {
                    (l * &pass.live).sum(Kind::Double).double_value(&[])
                }) / self.live_count().max(1) as f64
            };
            ticks.part(iteration, step - first, self.live_count() as u64, loss);
        }
        self.check_divergence(&mut pass)?;
        Ok(pass)
    }

    /// The agent step count: every live member's (they step together).
    fn step(&self) -> u64 {
        self.members
            .iter()
            .filter(|m| !m.stopped)
            .map(|m| m.step)
            .max()
            .unwrap_or(0)
    }

    fn any_live(&self) -> bool {
        self.live_count() > 0
    }

    fn live_count(&self) -> usize {
        self.members.iter().filter(|m| !m.stopped).count()
    }

    /// ε-greedy actions of the live members (`None` for the others), each drawing from its own
    /// exploration stream as a solo run does; the greedy ones from one batched forward.
    fn act(&mut self, eps: f64) -> Vec<Option<usize>> {
        let mut acts: Vec<Option<usize>> = vec![None; self.members.len()];
        let mut wants_greedy = vec![false; self.members.len()];
        for (i, m) in self.members.iter_mut().enumerate() {
            if m.stopped {
                continue;
            }
            if m.explore.random::<f64>() < eps {
                acts[i] = Some(m.explore.random_range(0..self.actions));
            } else {
                wants_greedy[i] = true;
            }
        }
        if wants_greedy.iter().any(|&g| g) {
            let states: Vec<Option<&[u8]>> = self
                .members
                .iter()
                .zip(&wants_greedy)
                .map(|(m, &g)| g.then(|| m.actor.stack.state()))
                .collect();
            let best = greedy(&self.online, &states, self.shape, self.dev);
            for (i, g) in wants_greedy.iter().enumerate() {
                if *g {
                    acts[i] = Some(best[i]);
                }
            }
        }
        acts
    }

    /// One batched update: a batch from each live member's memory (zeros for frozen ones),
    /// their sums added to `pass`; every [`DIVERGENCE_CHECK_UPDATES`] updates, the check.
    fn update(&mut self, pass: &mut Pass) -> Result<Tensor> {
        let p = self.members[0].p;
        let t1 = Instant::now();
        let mut batches = Vec::new();
        for m in &mut self.members {
            let b = match m.stopped {
                false => m.memory.sample(p.batch_size, &mut m.sampler)?,
                true => empty_batch(p.batch_size, m.actor.frame.len() * p.history),
            };
            batches.push(b);
        }
        let b = StackedBatch::new(&batches, self.shape, self.dev);
        let rates = (self.lr.as_slice(), self.weight_decay.as_slice());
        let (loss, q, g) = stacked_update(
            &self.online,
            &self.target,
            &mut self.opt,
            &b,
            p.gamma,
            rates,
        );
        tch::no_grad(|| {
            pass.loss_sum += loss.to_kind(Kind::Double) * &pass.live;
            pass.q_sum += q.to_kind(Kind::Double) * &pass.live;
            pass.grad_sum += g.to_kind(Kind::Double) * &pass.live;
        });
        for (i, m) in self.members.iter_mut().enumerate() {
            if !m.stopped {
                m.updates += 1;
                pass.updates[i] += 1;
            }
        }
        let every = p.drown_out_every;
        let leader_updates = self
            .members
            .iter()
            .filter(|m| !m.stopped)
            .map(|m| m.updates)
            .max();
        if every > 0 && leader_updates.is_some_and(|u| u.is_multiple_of(every)) {
            for (i, d) in self.opt.drown_out().into_iter().enumerate() {
                if let (Some(d), false) = (d, self.members[i].stopped) {
                    pass.drown[i].add(d);
                }
            }
        }
        let due = pass.updates.iter().max().copied().unwrap_or(0);
        self.seconds.1 += t1.elapsed().as_secs_f64();
        if due.is_multiple_of(DIVERGENCE_CHECK_UPDATES) {
            self.check_divergence(pass)?;
        }
        Ok(loss)
    }

    /// Members whose sums stopped being finite: their weights saved as their final ones, their
    /// weight norm kept for the row, then frozen (they act and learn no more).
    fn check_divergence(&mut self, pass: &mut Pass) -> Result<()> {
        let sums = (&pass.loss_sum + &pass.q_sum)
            .isfinite()
            .to_device(tch::Device::Cpu);
        let finite = Vec::<bool>::try_from(&sums)?;
        let norms = self.opt.weight_norms();
        let mut live = Vec::new();
        for (i, m) in self.members.iter_mut().enumerate() {
            if !finite[i] && !m.stopped {
                pass.diverged[i] = Some(norms[i]);
                m.stopped = true;
                save_final(&self.online, i, m)?;
                self.opt.freeze(i);
            }
            live.push(f64::from(u8::from(!m.stopped)));
        }
        // Frozen members add nothing more to their sums.
        pass.live = Tensor::from_slice(&live).to_device(self.dev);
        Ok(())
    }

    /// Every member's final weights (a diverged one's were saved when it diverged) and outcome.
    fn finish(self) -> Result<Vec<Outcome>> {
        let (env_secs, update_secs, eval_secs) = self.seconds;
        let steps: u64 = self.members.iter().map(|m| m.step).sum();
        let n = self.members.len();
        let mut out = Vec::new();
        for (i, m) in self.members.into_iter().enumerate() {
            if m.diverged_iteration.is_none() {
                save_final(&self.online, i, &m)?;
            }
            m.metrics.finish()?;
            m.episodes.finish()?;
            out.push(Outcome::with_metrics([
                ("final", m.last),
                ("env_steps_per_s", json!(m.step as f64 / env_secs.max(1e-9))),
                (
                    "updates_per_s",
                    json!(m.updates as f64 / update_secs.max(1e-9)),
                ),
                ("eval_seconds", json!(eval_secs)),
                ("updates", json!(m.updates)),
                ("intra_op_threads", json!(INTRA_OP_THREADS)),
                ("diverged_iteration", json!(m.diverged_iteration)),
                ("fused_members", json!(n)),
                (
                    "group_env_steps_per_s",
                    json!(steps as f64 / env_secs.max(1e-9)),
                ),
            ]));
        }
        Ok(out)
    }
}

/// Member `i`'s weights as its `final.safetensors`, under the solo names.
fn save_final(online: &StackedQNet, i: usize, m: &Member) -> Result<()> {
    Tensor::write_safetensors(
        &online.member_tensors(i),
        m.out.out_dir.join("final.safetensors"),
    )?;
    Ok(())
}

/// A frozen member's stand-in batch: zeros (its network is zeros too, so nothing is non-finite).
fn empty_batch(batch: usize, state_len: usize) -> Batch {
    Batch {
        states: vec![0; batch * state_len],
        actions: vec![0; batch],
        rewards: vec![0.0; batch],
        next_states: vec![0; batch * state_len],
        terminals: vec![0.0; batch],
    }
}
