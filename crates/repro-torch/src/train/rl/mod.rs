//! The `dqn` stage kind (docs/paper.md#e6): DQN (Mnih et al. 2015, as dopamine runs it) on a
//! MinAtar game or an Atari game, its Q-network trained with one variant of the Adam family at one
//! (lr, λ), λ on every Q-network parameter.
//!
//! The protocol is dopamine's: ε-greedy acting with `linearly_decaying_epsilon` (1 while the
//! replay memory fills to `min_replay`), one update every `update_every` agent steps once it
//! has, the target network copied every `target_update` agent steps, rewards clipped to
//! [−1, 1] for learning (returns are reported unclipped), training in iterations of
//! `iteration_steps` agent steps each followed by an evaluation of `eval_steps` steps at
//! ε_eval on an environment of its own. An episode that reaches `max_episode_steps` is cut
//! (truncated: not terminal, never bootstrapped from) and the next starts.
//!
//! Outputs: `metrics.jsonl` (one row per iteration; its `epoch` field is the iteration, so the
//! claims and the report treat iterations as epochs): agent steps so far, mean training return
//! of the episodes that ended in the iteration, evaluation return, mean TD loss, mean Q(s, a),
//! ε, weight and gradient norms, and with `drown_out_every` > 0 the E8 means; `episodes.jsonl`
//! (every episode: phase, iteration, return, length, truncated); the Q-network's weights at
//! initialisation and at the end. Environment steps/s and updates/s go to the run record.
//!
//! A run whose TD loss or mean Q(s, a) stops being finite is diverged (docs/paper.md#e7: a result,
//! not a failure): training stops in that iteration (checked every [`DIVERGENCE_CHECK_UPDATES`]
//! updates and at its end), its row is written with nulls where a value is not finite and without
//! an evaluation (a non-finite network's greedy actions mean nothing), no checkpoint follows it
//! (a resumed run replays the iteration and diverges again), and the run record's
//! `diverged_iteration` names it (null for a run that did not diverge).
//!
//! Randomness: `seed` seeds the initialisation (libtorch) and, through one ChaCha8 stream, the
//! training environment, the evaluation environments, exploration and replay sampling.

pub mod dqn;
pub mod fused;
pub mod replay;
pub mod stacked;

use std::time::Instant;

use anyhow::Result;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use tch::nn::{Module, VarStore};
use tch::{Kind, Tensor};

use self::dqn::{DeviceBatch, FrameStack, linearly_decaying_epsilon, update};
use self::replay::Replay;
use super::common::{adam_from_params, total_norm, trainable_by_name};
use super::progress::{Plan, Ticker};
use super::stage::{Stage, StageContext};
use crate::checkpoint::{COUNTERS, State};
use crate::games::{self, Env, EnvSpec};
use crate::nn::dqn::build;
use crate::optim::adam::Adam;
use crate::optim::drown_out::{DrownOut, DrownOutMean};
use repro_core::metrics::JsonLines;
use repro_core::pipeline::kinds::{DQN, DqnParams};
use repro_core::pipeline::progress::{Samples, Unit};
use repro_core::pipeline::stage::{Outcome, StageDecl};

#[derive(Serialize)]
struct IterationRow {
    epoch: usize,
    frames: u64,
    train_return: Option<f64>,
    train_episodes: usize,
    eval_return: Option<f64>,
    eval_episodes: usize,
    loss: Option<f64>,
    q_mean: Option<f64>,
    epsilon: f64,
    updates: u64,
    weight_norm: f64,
    grad_norm: Option<f64>,
    #[serde(flatten, skip_serializing_if = "Option::is_none")]
    drown_out: Option<DrownOut>,
    /// Not written: whether training stopped in this iteration.
    #[serde(skip)]
    diverged: bool,
}

#[derive(Serialize)]
struct EpisodeRow<'a> {
    phase: &'a str,
    iteration: usize,
    /// Agent steps of training when the episode ended.
    frames: u64,
    #[serde(rename = "return")]
    ret: f64,
    length: u64,
    truncated: bool,
}

impl<'a> EpisodeRow<'a> {
    fn new(
        phase: &'a str,
        iteration: usize,
        frames: u64,
        (ret, length, truncated): Episode,
    ) -> Self {
        EpisodeRow {
            phase,
            iteration,
            frames,
            ret,
            length,
            truncated,
        }
    }
}

/// Intra-op threads of a dqn run, whatever the profile says (see `run`).
const INTRA_OP_THREADS: usize = 1;

/// Updates between checks of the iteration's TD loss and Q sums for divergence: each check
/// waits for the device, so not every update; few enough that a diverged run stops soon.
const DIVERGENCE_CHECK_UPDATES: u64 = 1000;

/// An ended episode: (return, length, truncated).
type Episode = (f64, u64, bool);

/// An environment with the frame stack the agent acts on and the running episode's tallies.
struct Actor {
    env: Box<dyn Env>,
    stack: FrameStack,
    /// The current observation, and the one before the last step (the one it acted on).
    frame: Vec<u8>,
    prev: Vec<u8>,
    ret: f64,
    length: u64,
    max_steps: u64,
}

/// How one agent step ended.
struct Stepped {
    reward: f32,
    terminal: bool,
    /// The episode is over (terminal or cut at `max_steps`): (return, length, truncated).
    ended: Option<Episode>,
}

impl Actor {
    fn new(mut env: Box<dyn Env>, history: usize, max_steps: u64) -> Actor {
        let [c, h, w] = env.frame_shape();
        let mut frame = vec![0; c * h * w];
        env.reset();
        env.frame(&mut frame);
        let mut stack = FrameStack::new(history, frame.len());
        stack.reset(&frame);
        Actor {
            env,
            stack,
            prev: frame.clone(),
            frame,
            ret: 0.0,
            length: 0,
            max_steps,
        }
    }

    /// The network's input shape with `history` frames, [history·C, H, W], and its actions.
    fn shape(&self, history: usize) -> ([i64; 3], usize) {
        let [c, h, w] = self.env.frame_shape().map(|d| d as i64);
        ([history as i64 * c, h, w], self.env.num_actions())
    }

    fn step(&mut self, action: usize) -> Stepped {
        let s = self.env.step(action);
        self.ret += s.reward as f64;
        self.length += 1;
        let truncated =
            !s.terminal && (s.truncated || (self.max_steps > 0 && self.length >= self.max_steps));
        let ended = (s.terminal || truncated).then_some((self.ret, self.length, truncated));
        if ended.is_some() {
            self.env.reset();
            (self.ret, self.length) = (0.0, 0);
        }
        std::mem::swap(&mut self.prev, &mut self.frame);
        self.env.frame(&mut self.frame);
        if ended.is_some() {
            self.stack.reset(&self.frame);
        } else {
            self.stack.push(&self.frame);
        }
        Stepped {
            reward: s.reward,
            terminal: s.terminal,
            ended,
        }
    }
}

/// One training step of the environment: act, and store the transition (reward clipped to
/// [−1, 1] for learning). The training loop and a resumed run's replay both go through here.
fn env_step(actor: &mut Actor, memory: &mut Replay, action: usize) -> Stepped {
    let s = actor.step(action);
    let ended = s.ended.is_some();
    memory.add(
        &actor.prev,
        action,
        s.reward.clamp(-1.0, 1.0),
        s.terminal,
        ended,
    );
    s
}

/// ε-greedy: a uniform action with probability ε, else the first action of largest Q. The
/// state (one of shape [history·C, H, W]) goes to `device` only for a greedy action.
fn act(
    net: &dyn Module,
    (state, [c, h, w], device): (&[u8], [i64; 3], tch::Device),
    eps: f64,
    rng: &mut ChaCha8Rng,
    actions: usize,
) -> usize {
    if rng.random::<f64>() < eps {
        return rng.random_range(0..actions);
    }
    let x = Tensor::from_slice(state)
        .view([1, c, h, w])
        .to_device(device);
    tch::no_grad(|| net.forward(&x).argmax(1, false).int64_value(&[0]) as usize)
}

/// What an evaluation phase saw: the episodes that ended, and their mean return (the unfinished
/// episode's return when none ended within the budget).
struct Evaluation {
    episodes: Vec<Episode>,
    mean_return: Option<f64>,
}

/// `steps` agent steps at ε = `eps` on a fresh environment, without learning.
fn evaluate(
    net: &dyn Module,
    mut actor: Actor,
    shape: [i64; 3],
    device: tch::Device,
    steps: u64,
    eps: f64,
    rng: &mut ChaCha8Rng,
) -> Evaluation {
    let actions = actor.env.num_actions();
    let mut episodes = Vec::new();
    for _ in 0..steps {
        let a = act(net, (actor.stack.state(), shape, device), eps, rng, actions);
        if let Some(e) = actor.step(a).ended {
            episodes.push(e);
        }
    }
    let returns: Vec<f64> = episodes.iter().map(|e| e.0).collect();
    let mean_return = mean(&returns).or((steps > 0).then_some(actor.ret));
    Evaluation {
        episodes,
        mean_return,
    }
}

fn mean(x: &[f64]) -> Option<f64> {
    (!x.is_empty()).then(|| x.iter().sum::<f64>() / x.len() as f64)
}

fn fmt_opt(x: Option<f64>) -> String {
    x.map_or("–".to_string(), |x| format!("{x:.2}"))
}

/// The `dqn` kind.
pub struct Dqn;

/// A run's iterations, and the progress plan that counts them.
fn iteration_plan(p: &DqnParams) -> (usize, Plan) {
    let iterations = p.frames.div_ceil(p.iteration_steps) as usize;
    let plan = Plan {
        unit: Unit::Iteration,
        total: iterations as u64,
        per_unit: p.iteration_steps,
        total_parts: p.frames,
        samples: Samples::EnvSteps,
    };
    (iterations, plan)
}

/// The game a run plays (its ROMs from the one dataset an Atari run reads).
fn env_spec(ctx: &StageContext, p: &DqnParams) -> EnvSpec {
    EnvSpec {
        suite: p.env,
        game: p.game.clone(),
        sticky_action_prob: p.sticky_action_prob,
        ramping: p.ramping,
        rom_dir: ctx.datasets.values().next().map(|d| d.root.clone()),
    }
}

/// What a run draws from its seed, through one ChaCha8 stream in this order: the training
/// environment, the evaluation seed, the exploration and the replay-sampling streams.
struct Seeded {
    actor: Actor,
    eval_seed: u64,
    explore: ChaCha8Rng,
    sampler: ChaCha8Rng,
}

impl Seeded {
    fn new(spec: &EnvSpec, p: &DqnParams) -> Result<Seeded> {
        let mut streams = ChaCha8Rng::seed_from_u64(p.seed as u64);
        let train_env_seed: u64 = streams.random();
        let actor = Actor::new(
            games::make(spec, train_env_seed)?,
            p.history,
            p.max_episode_steps,
        );
        let eval_seed: u64 = streams.random();
        let explore = ChaCha8Rng::seed_from_u64(streams.random());
        let sampler = ChaCha8Rng::seed_from_u64(streams.random());
        Ok(Seeded {
            actor,
            eval_seed,
            explore,
            sampler,
        })
    }
}

/// The counters a checkpoint carries, saved and restored as one value (the RNG word positions
/// as decimal strings: u128 does not fit JSON numbers).
#[derive(Serialize, Deserialize)]
struct Counters {
    iterations_done: usize,
    step: u64,
    updates: u64,
    /// Seconds spent acting, updating and evaluating.
    seconds: (f64, f64, f64),
    explore_word_pos: String,
    sampler_word_pos: String,
    last: Value,
}

impl Stage for Dqn {
    type Params = DqnParams;
    const DECL: &'static StageDecl = &DQN;
    /// Train one run: the setup (replaying a resumed run's actions), then per iteration the
    /// training steps, an evaluation on a fresh environment, its row and the checkpoint; a
    /// non-finite TD loss or Q ends the run as diverged, without an evaluation.
    fn run(ctx: &StageContext, p: &DqnParams) -> Result<Outcome> {
        let (mut a, mut resumed) = Agent::new(ctx, p)?;
        let resuming = resumed.is_some();
        let mut metrics = JsonLines::open(&ctx.out_dir.join("metrics.jsonl"), resuming)?;
        let mut episodes = JsonLines::open(&ctx.out_dir.join("episodes.jsonl"), resuming)?;
        let (iterations, plan) = iteration_plan(p);
        let (mut first_iteration, mut last) = (0, json!({}));
        if let Some(st) = &mut resumed {
            (first_iteration, last) = a.restore(st)?;
        }
        let mut diverged_iteration = None;
        let mut ticks = Ticker::new(ctx.progress, plan, first_iteration as u64);
        for iteration in first_iteration..iterations {
            let pass = a.train(iteration, &mut episodes, &mut ticks)?;
            let row = a.finish_iteration(iteration, pass, &mut episodes)?;
            // serde_json writes a non-finite f64 as null.
            metrics.write(&row)?;
            last = json!({
                "iteration": iteration, "frames": a.step, "train_return": row.train_return,
                "eval_return": row.eval_return,
            });
            if row.diverged {
                ticks.unit_end(iteration, "diverged (non-finite TD loss or Q)");
                diverged_iteration = Some(iteration);
                break;
            }
            ticks.unit_end(
                iteration,
                &format!("eval return {}", fmt_opt(row.eval_return)),
            );
            a.checkpoint(ctx, iteration, &last)?;
        }
        metrics.finish()?;
        episodes.finish()?;
        a.vs.save(ctx.out_dir.join("final.safetensors"))?;
        let (env_secs, update_secs, eval_secs) = a.seconds;
        Ok(Outcome::with_metrics([
            ("final", last),
            ("env_steps_per_s", json!(a.step as f64 / env_secs.max(1e-9))),
            (
                "updates_per_s",
                json!(a.updates as f64 / update_secs.max(1e-9)),
            ),
            ("eval_seconds", json!(eval_secs)),
            ("updates", json!(a.updates)),
            ("intra_op_threads", json!(INTRA_OP_THREADS)),
            ("diverged_iteration", json!(diverged_iteration)),
        ]))
    }
}

/// The agent of one run: the training environment, the networks and optimizer, the replay
/// memory and the random streams, with the counters a checkpoint carries.
struct Agent<'p> {
    p: &'p DqnParams,
    spec: EnvSpec,
    actor: Actor,
    eval_seed: u64,
    explore: ChaCha8Rng,
    sampler: ChaCha8Rng,
    shape: [i64; 3],
    actions: usize,
    dev: tch::Device,
    vs: VarStore,
    target_vs: VarStore,
    online: Box<dyn Module>,
    target: Box<dyn Module>,
    opt: Adam,
    memory: Replay,
    /// Every training action, so a resumed run can rebuild the environment, the frame stack
    /// and the replay memory by replaying them (all deterministic given the environment's
    /// seed) instead of checkpointing them.
    actions_taken: Vec<u8>,
    step: u64,
    updates: u64,
    /// Seconds spent acting, updating and evaluating.
    seconds: (f64, f64, f64),
}

/// What an iteration's training steps accumulated (sums on the device).
struct Pass {
    loss_sum: Tensor,
    q_sum: Tensor,
    grad_sum: Tensor,
    updates: u64,
    returns: Vec<f64>,
    drown: DrownOutMean,
    /// ε of the last step.
    eps: f64,
    diverged: bool,
    /// The TD loss of the last update (detached), read only when a progress tick is due.
    last_loss: Option<Tensor>,
}

impl<'p> Agent<'p> {
    /// The environment and random streams from the seed, the networks (the initial weights
    /// saved on a fresh start), the optimizer and an empty replay memory, with the checkpoint
    /// to resume from if there is one.
    fn new(ctx: &StageContext, p: &'p DqnParams) -> Result<(Agent<'p>, Option<State>)> {
        tch::manual_seed(p.seed);
        let dev = ctx.device;
        // One intra-op thread whatever the profile says: each op of these small nets is far too
        // little work for OpenMP (measured with examples/bench_dqn_update: 375 updates/s on one
        // thread, 43 on two with oneDNN off, 345 on two with it on). Parallel runs (`--jobs`)
        // use the cores instead.
        tch::set_num_threads(INTRA_OP_THREADS as i32);
        let spec = env_spec(ctx, p);
        let Seeded {
            actor,
            eval_seed,
            explore,
            sampler,
        } = Seeded::new(&spec, p)?;
        let (shape, actions) = actor.shape(p.history);
        let vs = VarStore::new(dev);
        let online = build(p.model, &vs.root(), shape, actions as i64);
        let mut target_vs = VarStore::new(dev);
        let target = build(p.model, &target_vs.root(), shape, actions as i64);
        target_vs.copy(&vs)?;
        let resumed = ctx.resume()?;
        if resumed.is_none() {
            vs.save(ctx.out_dir.join("init.safetensors"))?;
        }
        let named = trainable_by_name(&vs);
        let opt = adam_from_params(&p.adam(), named.into_iter().map(|(_, t)| t).collect());
        let (capacity, history, batch) = (p.replay_capacity, p.history, p.batch_size);
        let min_replay = p.min_replay;
        anyhow::ensure!(
            capacity > history && min_replay as usize <= capacity && min_replay as usize >= batch,
            "replay_capacity {capacity}, min_replay {min_replay}, batch_size {batch}, history \
             {history}: need history < replay_capacity and batch_size ≤ min_replay ≤ \
             replay_capacity"
        );
        let memory = Replay::new(capacity, history, actor.frame.len());
        let agent = Agent {
            p,
            spec,
            actor,
            eval_seed,
            explore,
            sampler,
            shape,
            actions,
            dev,
            vs,
            target_vs,
            online,
            target,
            opt,
            memory,
            actions_taken: Vec::new(),
            step: 0,
            updates: 0,
            seconds: (0.0, 0.0, 0.0),
        };
        Ok((agent, resumed))
    }

    /// Restore networks, optimizer, counters and random streams from a checkpoint and replay
    /// its actions; returns the iteration to start at and the last summary.
    fn restore(&mut self, st: &mut State) -> Result<(usize, Value)> {
        st.load_vars("online", &self.vs)?;
        st.load_vars("target", &self.target_vs)?;
        self.opt.load_state(st, "opt")?;
        let c: Counters = st.get(COUNTERS)?;
        (self.step, self.updates, self.seconds) = (c.step, c.updates, c.seconds);
        self.explore.set_word_pos(c.explore_word_pos.parse()?);
        self.sampler.set_word_pos(c.sampler_word_pos.parse()?);
        let taken = st.tensor("actions", tch::Device::Cpu)?;
        self.actions_taken = Vec::<u8>::try_from(&taken)?;
        anyhow::ensure!(
            self.actions_taken.len() as u64 == self.step,
            "the checkpoint holds {} actions for {} steps",
            self.actions_taken.len(),
            self.step
        );
        for &a in &self.actions_taken {
            env_step(&mut self.actor, &mut self.memory, a as usize);
        }
        Ok((c.iterations_done, c.last))
    }

    /// Save the checkpoint after `iteration`, with the last summary `last`.
    fn checkpoint(&self, ctx: &StageContext, iteration: usize, last: &Value) -> Result<()> {
        let mut st = State::default();
        st.put_vars("online", &self.vs);
        st.put_vars("target", &self.target_vs);
        self.opt.save_state(&mut st, "opt")?;
        st.put_tensor("actions", &Tensor::from_slice(&self.actions_taken));
        let c = Counters {
            iterations_done: iteration + 1,
            step: self.step,
            updates: self.updates,
            seconds: self.seconds,
            explore_word_pos: self.explore.get_word_pos().to_string(),
            sampler_word_pos: self.sampler.get_word_pos().to_string(),
            last: last.clone(),
        };
        st.put(COUNTERS, &c)?;
        ctx.checkpoint(iteration as u64 + 1, st)
    }

    /// The iteration's training steps: act ε-greedily, store the transition, update every
    /// `update_every` steps once the memory holds `min_replay`, copy the target network every
    /// `target_update` steps, tick; stops early when the TD loss or Q sums stop being finite.
    fn train(
        &mut self,
        iteration: usize,
        episodes: &mut JsonLines,
        ticks: &mut Ticker,
    ) -> Result<Pass> {
        let p = self.p;
        let zero = || Tensor::zeros([], (Kind::Double, self.dev));
        let mut pass = Pass {
            loss_sum: zero(),
            q_sum: zero(),
            grad_sum: zero(),
            updates: 0,
            returns: Vec::new(),
            drown: DrownOutMean::default(),
            eps: 1.0,
            diverged: false,
            last_loss: None,
        };
        let first = iteration as u64 * p.iteration_steps;
        let end = p.frames.min(self.step + p.iteration_steps);
        while self.step < end && !pass.diverged {
            let t0 = Instant::now();
            pass.eps = linearly_decaying_epsilon(
                p.epsilon_decay_steps,
                self.step,
                p.min_replay,
                p.epsilon_end,
            );
            let state = (self.actor.stack.state(), self.shape, self.dev);
            let a = act(
                &*self.online,
                state,
                pass.eps,
                &mut self.explore,
                self.actions,
            );
            let s = env_step(&mut self.actor, &mut self.memory, a);
            self.actions_taken.push(a as u8);
            self.step += 1;
            if let Some(e) = s.ended {
                pass.returns.push(e.0);
                episodes.write(&EpisodeRow::new("train", iteration, self.step, e))?;
            }
            self.seconds.0 += t0.elapsed().as_secs_f64();
            if self.memory.len() as u64 >= p.min_replay && self.step.is_multiple_of(p.update_every)
            {
                self.update(&mut pass)?;
            }
            if self.step.is_multiple_of(p.target_update) {
                self.target_vs.copy(&self.vs)?;
            }
            let last_loss = pass.last_loss.as_ref();
            let loss = || last_loss.map_or(f64::NAN, |l| l.double_value(&[]));
            ticks.part(iteration, self.step - first, 1, loss);
        }
        pass.diverged = pass.diverged || !finite_so_far(&pass);
        Ok(pass)
    }

    /// One DQN update on a sampled batch, its sums added to `pass`.
    fn update(&mut self, pass: &mut Pass) -> Result<()> {
        let p = self.p;
        let t1 = Instant::now();
        let sample = self.memory.sample(p.batch_size, &mut self.sampler)?;
        let b = DeviceBatch::new(&sample, self.shape, self.dev);
        let (online, target) = (&*self.online, &*self.target);
        let (loss, q, g) = update(
            online,
            target,
            &mut self.opt,
            &b,
            p.gamma,
            p.lr,
            p.weight_decay,
        );
        tch::no_grad(|| {
            pass.loss_sum += loss.to_kind(Kind::Double);
            pass.q_sum += q.to_kind(Kind::Double);
            pass.grad_sum += g.to_kind(Kind::Double);
        });
        pass.last_loss = Some(loss);
        self.updates += 1;
        pass.updates += 1;
        pass.diverged =
            pass.updates.is_multiple_of(DIVERGENCE_CHECK_UPDATES) && !finite_so_far(pass);
        let every = p.drown_out_every;
        if every > 0
            && self.updates.is_multiple_of(every)
            && let Some(d) = self.opt.drown_out()
        {
            pass.drown.add(d);
        }
        self.seconds.1 += t1.elapsed().as_secs_f64();
        Ok(())
    }

    /// The evaluation after an iteration (none after a divergence) and the iteration's row.
    fn finish_iteration(
        &mut self,
        iteration: usize,
        mut pass: Pass,
        episodes: &mut JsonLines,
    ) -> Result<IterationRow> {
        let p = self.p;
        let t2 = Instant::now();
        let eval = if pass.diverged {
            Evaluation {
                episodes: Vec::new(),
                mean_return: None,
            }
        } else {
            // Each evaluation plays a fresh environment of its own seed.
            let seed = self.eval_seed.wrapping_add(2 * iteration as u64);
            let actor = Actor::new(
                games::make(&self.spec, seed)?,
                p.history,
                p.max_episode_steps,
            );
            let mut rng = ChaCha8Rng::seed_from_u64(seed.wrapping_add(1));
            let (net, eps) = (&*self.online, p.epsilon_eval);
            evaluate(
                net,
                actor,
                self.shape,
                self.dev,
                p.eval_steps,
                eps,
                &mut rng,
            )
        };
        self.seconds.2 += t2.elapsed().as_secs_f64();
        for &e in &eval.episodes {
            episodes.write(&EpisodeRow::new("eval", iteration, self.step, e))?;
        }
        let n = pass.updates;
        let mean_of = |t: &Tensor| (n > 0).then(|| t.double_value(&[]) / n as f64);
        Ok(IterationRow {
            epoch: iteration,
            frames: self.step,
            train_return: mean(&pass.returns),
            train_episodes: pass.returns.len(),
            eval_return: eval.mean_return,
            eval_episodes: eval.episodes.len(),
            loss: mean_of(&pass.loss_sum),
            q_mean: mean_of(&pass.q_sum),
            epsilon: pass.eps,
            updates: self.updates,
            weight_norm: total_norm(self.opt.params()),
            grad_norm: mean_of(&pass.grad_sum),
            drown_out: pass.drown.take(),
            diverged: pass.diverged,
        })
    }
}

/// Whether the TD loss and Q sums so far are finite (waits for the device).
fn finite_so_far(pass: &Pass) -> bool {
    (&pass.loss_sum + &pass.q_sum).isfinite().int64_value(&[]) == 1
}
