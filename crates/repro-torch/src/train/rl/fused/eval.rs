//! A fused group's evaluations (every member that did not diverge, stepped together with
//! batched greedy actions on a fresh environment of its own seed) and each member's row.

use std::time::Instant;

use anyhow::Result;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde_json::json;

use super::{Group, Pass};
use crate::games;
use crate::train::rl::stacked::greedy;
use crate::train::rl::{Actor, EpisodeRow, IterationRow, mean};

impl Group<'_> {
    /// The evaluations after an iteration (the members that did not diverge, in lockstep) and
    /// every member's row; the live members' mean evaluation return, for the tick.
    pub(super) fn finish_iteration(
        &mut self,
        iteration: usize,
        mut pass: Pass,
    ) -> Result<Option<f64>> {
        let t2 = Instant::now();
        let evals = self.evaluate(iteration)?;
        self.seconds.2 += t2.elapsed().as_secs_f64();
        let loss = Vec::<f64>::try_from(&pass.loss_sum.to_device(tch::Device::Cpu))?;
        let q = Vec::<f64>::try_from(&pass.q_sum.to_device(tch::Device::Cpu))?;
        let grad = Vec::<f64>::try_from(&pass.grad_sum.to_device(tch::Device::Cpu))?;
        let norms = self.opt.weight_norms();
        let mut eval_returns = Vec::new();
        for (i, m) in self.members.iter_mut().enumerate() {
            if m.diverged_iteration.is_some() {
                continue;
            }
            let (episodes, eval_return) = evals[i].clone().unwrap_or_default();
            for &e in &episodes {
                m.episodes
                    .write(&EpisodeRow::new("eval", iteration, m.step, e))?;
            }
            let n = pass.updates[i];
            let mean_of = |s: f64| (n > 0).then(|| s / n as f64);
            let diverged = pass.diverged[i];
            let row = IterationRow {
                epoch: iteration,
                frames: m.step,
                train_return: mean(&pass.returns[i]),
                train_episodes: pass.returns[i].len(),
                eval_return,
                eval_episodes: episodes.len(),
                loss: mean_of(loss[i]),
                q_mean: mean_of(q[i]),
                epsilon: pass.eps,
                updates: m.updates,
                weight_norm: diverged.unwrap_or(norms[i]),
                grad_norm: mean_of(grad[i]),
                drown_out: pass.drown[i].take(),
                diverged: diverged.is_some(),
            };
            m.metrics.write(&row)?;
            m.last = json!({
                "iteration": iteration, "frames": m.step, "train_return": row.train_return,
                "eval_return": row.eval_return,
            });
            if diverged.is_some() {
                m.diverged_iteration = Some(iteration);
            } else if let Some(r) = eval_return {
                eval_returns.push(r);
            }
        }
        Ok(mean(&eval_returns))
    }

    /// Each member's evaluation on a fresh environment of its own seed (as a solo run's), all
    /// stepped together with batched greedy forwards; `None` for members that diverged.
    #[allow(clippy::type_complexity)]
    fn evaluate(
        &self,
        iteration: usize,
    ) -> Result<Vec<Option<(Vec<(f64, u64, bool)>, Option<f64>)>>> {
        let p = self.members[0].p;
        let mut runs = Vec::new();
        for m in &self.members {
            if m.stopped {
                runs.push(None);
                continue;
            }
            let seed = m.eval_seed.wrapping_add(2 * iteration as u64);
            let actor = Actor::new(
                games::make(&self.spec, seed)?,
                p.history,
                p.max_episode_steps,
            );
            runs.push(Some((
                actor,
                ChaCha8Rng::seed_from_u64(seed.wrapping_add(1)),
                Vec::new(),
            )));
        }
        for _ in 0..p.eval_steps {
            let mut acts = vec![None; runs.len()];
            let mut states: Vec<Option<&[u8]>> = vec![None; runs.len()];
            for (i, r) in runs.iter_mut().enumerate() {
                let Some((actor, rng, _)) = r else { continue };
                if rng.random::<f64>() < p.epsilon_eval {
                    acts[i] = Some(rng.random_range(0..self.actions));
                } else {
                    states[i] = Some(actor.stack.state());
                }
            }
            if states.iter().any(Option::is_some) {
                let best = greedy(&self.online, &states, self.shape, self.dev);
                for (i, s) in states.iter().enumerate() {
                    if s.is_some() {
                        acts[i] = Some(best[i]);
                    }
                }
            }
            for (i, r) in runs.iter_mut().enumerate() {
                let (Some((actor, _, episodes)), Some(a)) = (r, acts[i]) else {
                    continue;
                };
                if let Some(e) = actor.step(a).ended {
                    episodes.push(e);
                }
            }
        }
        Ok(runs
            .into_iter()
            .map(|r| {
                r.map(|(actor, _, episodes)| {
                    let returns: Vec<f64> = episodes.iter().map(|e| e.0).collect();
                    let mean_return = mean(&returns).or((p.eval_steps > 0).then_some(actor.ret));
                    (episodes, mean_return)
                })
            })
            .collect())
    }
}
