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
pub mod replay;

use std::time::Instant;

use anyhow::Result;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::Serialize;
use serde_json::json;
use tch::nn::{Module, VarStore};
use tch::{Kind, Tensor};

use self::dqn::{DeviceBatch, FrameStack, linearly_decaying_epsilon, update};
use self::replay::Replay;
use super::{Stage, StageContext, adam_from_params, total_norm, trainable_by_name};
use crate::checkpoint::State;
use crate::games::{self, Env, EnvSpec};
use crate::nn::dqn::build;
use crate::optim::drown_out::{DrownOut, DrownOutMean};
use repro_core::metrics::JsonLines;
use repro_core::pipeline::kinds::{DQN, DqnParams};
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

impl Stage for Dqn {
    type Params = DqnParams;
    const DECL: &'static StageDecl = &DQN;
    fn run(ctx: &StageContext, p: &DqnParams) -> Result<Outcome> {
        run(ctx, p)
    }
}

/// Train one run.
pub fn run(ctx: &StageContext, p: &DqnParams) -> Result<Outcome> {
    let seed = p.seed;
    tch::manual_seed(seed);
    let dev = ctx.device;
    // One intra-op thread whatever the profile says: each op of these small nets is far too
    // little work for OpenMP (measured with examples/bench_dqn_update: 375 updates/s on one
    // thread, 43 on two with oneDNN off, 345 on two with it on). Parallel runs (`--jobs`) use
    // the cores instead.
    tch::set_num_threads(INTRA_OP_THREADS as i32);
    let mut streams = ChaCha8Rng::seed_from_u64(seed as u64);
    let spec = EnvSpec {
        suite: p.env,
        game: p.game.clone(),
        sticky_action_prob: p.sticky_action_prob,
        ramping: p.ramping,
        rom_dir: ctx.datasets.values().next().map(|d| d.root.clone()),
    };
    let history = p.history;
    let max_steps = p.max_episode_steps;
    let train_env_seed: u64 = streams.random();
    let mut actor = Actor::new(games::make(&spec, train_env_seed)?, history, max_steps);
    let eval_seed: u64 = streams.random();
    let mut explore = ChaCha8Rng::seed_from_u64(streams.random());
    let mut sampler = ChaCha8Rng::seed_from_u64(streams.random());

    let [c, h, w] = actor.env.frame_shape().map(|d| d as i64);
    let shape = [history as i64 * c, h, w];
    let actions = actor.env.num_actions();
    let arch = p.model;
    let vs = VarStore::new(dev);
    let online = build(arch, &vs.root(), shape, actions as i64);
    let mut target_vs = VarStore::new(dev);
    let target = build(arch, &target_vs.root(), shape, actions as i64);
    target_vs.copy(&vs)?;
    let mut resumed = ctx.resume()?;
    if resumed.is_none() {
        vs.save(ctx.out_dir.join("init.safetensors"))?;
    }

    let named = trainable_by_name(&vs);
    let mut opt = adam_from_params(&p.adam(), named.into_iter().map(|(_, t)| t).collect());
    let every = p.drown_out_every;
    let (lr, wd, gamma) = (p.lr, p.weight_decay, p.gamma);

    let frames = p.frames;
    let iteration_steps = p.iteration_steps;
    let eval_steps = p.eval_steps;
    let (min_replay, update_every, target_update) = (p.min_replay, p.update_every, p.target_update);
    let batch = p.batch_size;
    let (eps_end, eps_decay, eps_eval) = (p.epsilon_end, p.epsilon_decay_steps, p.epsilon_eval);
    let capacity = p.replay_capacity;
    anyhow::ensure!(
        capacity > history && min_replay as usize <= capacity && min_replay as usize >= batch,
        "replay_capacity {capacity}, min_replay {min_replay}, batch_size {batch}, history \
         {history}: need history < replay_capacity and batch_size ≤ min_replay ≤ replay_capacity"
    );
    let mut memory = Replay::new(capacity, history, actor.frame.len());

    let resuming = resumed.is_some();
    let mut metrics = JsonLines::open(&ctx.out_dir.join("metrics.jsonl"), resuming)?;
    let mut episodes = JsonLines::open(&ctx.out_dir.join("episodes.jsonl"), resuming)?;
    let iterations = frames.div_ceil(iteration_steps) as usize;
    let (mut step, mut updates) = (0u64, 0u64);
    let (mut env_secs, mut update_secs, mut eval_secs) = (0.0, 0.0, 0.0);
    let mut last = json!({});
    // Every training action, so a resumed run can rebuild the environment, the frame stack and
    // the replay memory by replaying them (all deterministic given the environment's seed)
    // instead of checkpointing them.
    let mut actions_taken: Vec<u8> = Vec::new();
    let mut first_iteration = 0;
    let mut diverged_iteration = None;
    if let Some(st) = &mut resumed {
        st.load_vars("online", &vs)?;
        st.load_vars("target", &target_vs)?;
        opt.load_state(st, "opt")?;
        first_iteration = st.get("iterations_done")?;
        (step, updates, last) = (st.get("step")?, st.get("updates")?, st.get("last")?);
        (env_secs, update_secs, eval_secs) = st.get("seconds")?;
        explore.set_word_pos(st.get::<String>("explore_word_pos")?.parse()?);
        sampler.set_word_pos(st.get::<String>("sampler_word_pos")?.parse()?);
        let taken = st.tensor("actions", tch::Device::Cpu)?;
        actions_taken = Vec::<u8>::try_from(&taken)?;
        anyhow::ensure!(
            actions_taken.len() as u64 == step,
            "the checkpoint holds {} actions for {step} steps",
            actions_taken.len()
        );
        for &a in &actions_taken {
            env_step(&mut actor, &mut memory, a as usize);
        }
    }

    for iteration in first_iteration..iterations {
        let zero = || Tensor::zeros([], (Kind::Double, dev));
        let (mut loss_sum, mut q_sum, mut grad_sum) = (zero(), zero(), zero());
        let (mut it_updates, mut returns) = (0u64, Vec::new());
        let mut drown = DrownOutMean::default();
        let end = frames.min(step + iteration_steps);
        let mut eps = 1.0;
        let finite_so_far =
            |loss_sum: &Tensor, q_sum: &Tensor| (loss_sum + q_sum).isfinite().int64_value(&[]) == 1;
        let mut diverged = false;
        while step < end && !diverged {
            let t0 = Instant::now();
            eps = linearly_decaying_epsilon(eps_decay, step, min_replay, eps_end);
            let a = act(
                &*online,
                (actor.stack.state(), shape, dev),
                eps,
                &mut explore,
                actions,
            );
            let s = env_step(&mut actor, &mut memory, a);
            actions_taken.push(a as u8);
            step += 1;
            if let Some(e) = s.ended {
                returns.push(e.0);
                episodes.write(&EpisodeRow::new("train", iteration, step, e))?;
            }
            env_secs += t0.elapsed().as_secs_f64();

            if memory.len() as u64 >= min_replay && step.is_multiple_of(update_every) {
                let t1 = Instant::now();
                let b = DeviceBatch::new(&memory.sample(batch, &mut sampler)?, shape, dev);
                let (loss, q, g) = update(&*online, &*target, &mut opt, &b, gamma, lr, wd);
                tch::no_grad(|| {
                    loss_sum += loss.to_kind(Kind::Double);
                    q_sum += q.to_kind(Kind::Double);
                    grad_sum += g.to_kind(Kind::Double);
                });
                updates += 1;
                it_updates += 1;
                diverged = it_updates.is_multiple_of(DIVERGENCE_CHECK_UPDATES)
                    && !finite_so_far(&loss_sum, &q_sum);
                if every > 0
                    && updates.is_multiple_of(every)
                    && let Some(d) = opt.drown_out()
                {
                    drown.add(d);
                }
                update_secs += t1.elapsed().as_secs_f64();
            }
            if step.is_multiple_of(target_update) {
                target_vs.copy(&vs)?;
            }
        }

        diverged = diverged || !finite_so_far(&loss_sum, &q_sum);

        let t2 = Instant::now();
        let eval = if diverged {
            Evaluation {
                episodes: Vec::new(),
                mean_return: None,
            }
        } else {
            // Each evaluation plays a fresh environment of its own seed.
            let eval_env = games::make(&spec, eval_seed.wrapping_add(2 * iteration as u64))?;
            evaluate(
                &*online,
                Actor::new(eval_env, history, max_steps),
                shape,
                dev,
                eval_steps,
                eps_eval,
                &mut ChaCha8Rng::seed_from_u64(eval_seed.wrapping_add(2 * iteration as u64 + 1)),
            )
        };
        eval_secs += t2.elapsed().as_secs_f64();
        for &e in &eval.episodes {
            episodes.write(&EpisodeRow::new("eval", iteration, step, e))?;
        }
        let mean_of =
            |t: &Tensor| (it_updates > 0).then(|| t.double_value(&[]) / it_updates as f64);
        let row = IterationRow {
            epoch: iteration,
            frames: step,
            train_return: mean(&returns),
            train_episodes: returns.len(),
            eval_return: eval.mean_return,
            eval_episodes: eval.episodes.len(),
            loss: mean_of(&loss_sum),
            q_mean: mean_of(&q_sum),
            epsilon: eps,
            updates,
            weight_norm: total_norm(opt.params()),
            grad_norm: mean_of(&grad_sum),
            drown_out: drown.take(),
        };
        // serde_json writes a non-finite f64 as null.
        metrics.write(&row)?;
        last = json!({
            "iteration": iteration, "frames": step, "train_return": row.train_return,
            "eval_return": row.eval_return,
        });
        if diverged {
            (ctx.progress)(
                iteration as u64 + 1,
                iterations as u64,
                "diverged (non-finite TD loss or Q)",
            );
            diverged_iteration = Some(iteration);
            break;
        }
        let mut st = State::default();
        st.put_vars("online", &vs);
        st.put_vars("target", &target_vs);
        opt.save_state(&mut st, "opt")?;
        st.put("iterations_done", &(iteration + 1))?;
        st.put("step", &step)?;
        st.put("updates", &updates)?;
        st.put("seconds", &(env_secs, update_secs, eval_secs))?;
        st.put("explore_word_pos", &explore.get_word_pos().to_string())?;
        st.put("sampler_word_pos", &sampler.get_word_pos().to_string())?;
        st.put_tensor("actions", &Tensor::from_slice(&actions_taken));
        (ctx.progress)(
            iteration as u64 + 1,
            iterations as u64,
            &format!("eval return {}", fmt_opt(row.eval_return)),
        );
        st.put("last", &last)?;
        ctx.checkpoint(iteration as u64 + 1, st)?;
    }
    metrics.finish()?;
    episodes.finish()?;
    vs.save(ctx.out_dir.join("final.safetensors"))?;
    Ok(Outcome::with_metrics([
        ("final", last),
        ("env_steps_per_s", json!(step as f64 / env_secs.max(1e-9))),
        (
            "updates_per_s",
            json!(updates as f64 / update_secs.max(1e-9)),
        ),
        ("eval_seconds", json!(eval_secs)),
        ("updates", json!(updates)),
        ("intra_op_threads", json!(INTRA_OP_THREADS)),
        ("diverged_iteration", json!(diverged_iteration)),
    ]))
}
