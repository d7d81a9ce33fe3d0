//! The `dqn` kind (docs/paper.md#e6, E7, E8): DQN on MinAtar or Atari with the Adam family of
//! `optim::adam` (`train::rl`). Defaults are dopamine's DQN on Atari (the paper says dopamine's
//! defaults) with JAX dopamine's Adam (lr 6.25e-5, ε 1.5e-4; Adam is a choice of ours); MinAtar's
//! own defaults are set in pipeline.yaml, each named there. The rest are defaults of ours, named in
//! each doc.

use serde::Deserialize;

use super::common::{ADAM_FUSABLE, AdamParams, AdamVariant, QNetArch, Suite, check_params, metric};
use crate::data::Format;
use crate::pipeline::params::{Lit, ParamSpec, ParamType};
use crate::pipeline::stage::{MetricDecl, Results, Rows, StageDecl};
use crate::runtime::PrecisionSupport;

/// DQN with one Adam variant at one (lr, λ) on one game (`train::rl`).
pub static DQN: StageDecl = StageDecl {
    name: "dqn",
    version: 2,
    params: DQN_PARAMS,
    check_params: check_params::<DqnParams>,
    // MinAtar needs no data; Atari reads its ROMs from the one dataset it names.
    dataset_formats: &[Format::AtariRoms],
    results: Results {
        file: "metrics.jsonl",
        rows: Rows::PerEpoch,
        metrics: DQN_METRICS,
    },
    // The DQN networks stay in fp32 and NCHW whatever the profile says.
    precision: PrecisionSupport {
        autocast: false,
        channels_last: false,
    },
    fusable: Some(&ADAM_FUSABLE),
};

/// The parameters of a `dqn` run, as `DQN_PARAMS` declares them.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DqnParams {
    pub env: Suite,
    pub game: String,
    pub sticky_action_prob: f64,
    pub ramping: bool,
    pub frames: u64,
    pub iteration_steps: u64,
    pub eval_steps: u64,
    pub epsilon_eval: f64,
    pub epsilon_end: f64,
    pub epsilon_decay_steps: u64,
    pub replay_capacity: usize,
    pub min_replay: u64,
    pub batch_size: usize,
    pub update_every: u64,
    pub target_update: u64,
    pub gamma: f64,
    pub history: usize,
    pub model: QNetArch,
    pub max_episode_steps: u64,
    pub variant: AdamVariant,
    pub lr: f64,
    pub weight_decay: f64,
    pub beta1: f64,
    pub beta2: f64,
    pub eps: f64,
    pub drown_out_every: u64,
    pub seed: i64,
}

impl DqnParams {
    /// The optimizer's parameters.
    pub fn adam(&self) -> AdamParams {
        AdamParams {
            variant: self.variant,
            beta1: self.beta1,
            beta2: self.beta2,
            eps: self.eps,
            drown_out_every: self.drown_out_every,
        }
    }
}

/// The per-iteration columns of `metrics.jsonl` (`train::rl`; `epoch` is the iteration).
static DQN_METRICS: &[MetricDecl] = &[
    metric(
        "eval_return",
        "evaluation return (ε_eval, mean over episodes)",
        Some("eval_return@tail:0.2"),
    )
    .curve("Evaluation return", false),
    metric(
        "train_return",
        "training return (mean over the iteration's episodes)",
        Some("train_return@final"),
    )
    .curve("Training return", false),
    metric("loss", "TD loss (Huber), mean over the iteration", None).curve("TD loss", true),
    metric("q_mean", "mean Q(s, a) of the sampled batches", None),
    metric("epsilon", "ε of the last training step", None),
    metric("frames", "agent steps so far", None),
    metric("updates", "updates so far", None),
    metric(
        "weight_norm",
        "total weight norm ‖w‖₂",
        Some("weight_norm@final"),
    )
    .curve("Total weight norm", true),
    metric("grad_norm", "mean gradient norm ‖∇L‖₂", None),
    metric(
        "l2_over_grad",
        "‖λw‖/‖∇L‖, mean over sampled updates",
        Some("l2_over_grad@mean"),
    )
    .curve("‖λw‖/‖∇L‖", false),
    metric(
        "l2_share_of_m",
        "l2 share of m: ‖mʳ‖/(‖mᵍ‖+‖mʳ‖)",
        Some("l2_share_of_m@mean"),
    ),
    metric("cos_m_mg", "cos(m, mᵍ), mean over sampled updates", None),
    metric(
        "step_attenuation",
        "‖m̂ᵍ/d‖/‖m̂ᵍ/dᵍ‖: the loss gradient's step under Adam's denominator d against one of g \
         alone (1: not drowned out), mean over sampled updates",
        Some("step_attenuation@mean"),
    ),
    metric(
        "past_stability_bound",
        "fraction of coordinates past the variant's stability bound (docs/paper.md#e7), mean \
         over sampled updates",
        Some("past_stability_bound@mean"),
    ),
];

static DQN_PARAMS: &[ParamSpec] = &[
    ParamSpec {
        name: "env",
        ty: ParamType::Choice(Suite::NAMES),
        default: Lit::Required,
        doc: "environment suite: minatar (built in) or atari (needs the `atari` cargo feature)",
    },
    ParamSpec {
        name: "game",
        ty: ParamType::Str,
        default: Lit::Required,
        doc: "MinAtar: asterix, breakout, freeway, seaquest, space_invaders; Atari: a ROM name \
              (pong, breakout, …)",
    },
    ParamSpec {
        name: "sticky_action_prob",
        ty: ParamType::float(0.0, 1.0),
        default: Lit::Float(0.25),
        doc: "probability that the previous action repeats (dopamine's 0.25; MinAtar's is 0.1)",
    },
    ParamSpec {
        name: "ramping",
        ty: ParamType::Bool,
        default: Lit::Bool(true),
        doc: "MinAtar's difficulty ramping (its default: on); ignored by Atari",
    },
    ParamSpec {
        name: "frames",
        ty: ParamType::int(1, i64::MAX),
        default: Lit::Int(50_000_000),
        doc: "agent steps of training (dopamine: 200 iterations × 250k)",
    },
    ParamSpec {
        name: "iteration_steps",
        ty: ParamType::int(1, i64::MAX),
        default: Lit::Int(250_000),
        doc: "agent steps of training per iteration, one metrics row each (dopamine's 250k)",
    },
    ParamSpec {
        name: "eval_steps",
        ty: ParamType::int(0, i64::MAX),
        default: Lit::Int(125_000),
        doc: "agent steps of evaluation after each iteration (dopamine's 125k; 0: none)",
    },
    ParamSpec {
        name: "epsilon_eval",
        ty: ParamType::float(0.0, 1.0),
        default: Lit::Float(0.001),
        doc: "ε while evaluating (dopamine's 0.001)",
    },
    ParamSpec {
        name: "epsilon_end",
        ty: ParamType::float(0.0, 1.0),
        default: Lit::Float(0.01),
        doc: "ε after the decay (dopamine's ε_train 0.01)",
    },
    ParamSpec {
        name: "epsilon_decay_steps",
        ty: ParamType::int(1, i64::MAX),
        default: Lit::Int(250_000),
        doc: "agent steps over which ε falls linearly from 1, after min_replay (dopamine's 250k)",
    },
    ParamSpec {
        name: "replay_capacity",
        ty: ParamType::int(2, i64::MAX),
        default: Lit::Int(1_000_000),
        doc: "steps the replay memory holds (dopamine's 1M; one frame each, stacks shared)",
    },
    ParamSpec {
        name: "min_replay",
        ty: ParamType::int(1, i64::MAX),
        default: Lit::Int(20_000),
        doc: "steps stored before learning starts (dopamine's 20k; ε is 1 until then)",
    },
    ParamSpec {
        name: "batch_size",
        ty: ParamType::int(1, 65_536),
        default: Lit::Int(32),
        doc: "transitions per update (dopamine's 32)",
    },
    ParamSpec {
        name: "update_every",
        ty: ParamType::int(1, 1_000_000),
        default: Lit::Int(4),
        doc: "agent steps per update (dopamine's 4)",
    },
    ParamSpec {
        name: "target_update",
        ty: ParamType::int(1, i64::MAX),
        default: Lit::Int(8000),
        doc: "agent steps between copies of the online network to the target (dopamine's 8000)",
    },
    ParamSpec {
        name: "gamma",
        ty: ParamType::float(0.0, 1.0),
        default: Lit::Float(0.99),
        doc: "discount γ (dopamine's 0.99)",
    },
    ParamSpec {
        name: "history",
        ty: ParamType::int(1, 64),
        default: Lit::Int(4),
        doc: "frames per state (dopamine's stack of 4; MinAtar's DQN uses 1)",
    },
    ParamSpec {
        name: "model",
        ty: ParamType::Choice(QNetArch::NAMES),
        default: Lit::Str("nature"),
        doc: "Q-network: the Nature CNN (dopamine's) or MinAtar's conv 16 + FC 128",
    },
    ParamSpec {
        name: "max_episode_steps",
        ty: ParamType::int(0, i64::MAX),
        default: Lit::Int(27_000),
        doc: "agent steps after which an episode is cut (dopamine's 27k = 108k frames; 0: none)",
    },
    ParamSpec {
        name: "variant",
        ty: ParamType::Choice(AdamVariant::NAMES),
        default: Lit::Str("adam_l2"),
        doc: "where λ·w enters Adam (docs/paper.md#e7: V1 adam_l2 … V5 adaptive_decoupled, \
              l2_out_of_m, adaptive_decoupled_stable)",
    },
    ParamSpec {
        name: "lr",
        ty: ParamType::float(0.0, 100.0),
        default: Lit::Float(6.25e-5),
        doc: "learning rate α (JAX dopamine's Adam: 6.25e-5)",
    },
    ParamSpec {
        name: "weight_decay",
        ty: ParamType::float(0.0, 100.0),
        default: Lit::Float(0.0),
        doc: "λ on every Q-network parameter, entering as the variant says (0: plain Adam)",
    },
    ParamSpec {
        name: "beta1",
        ty: ParamType::float(0.0, 0.999_999),
        default: Lit::Float(0.9),
        doc: "Adam β₁ (optax's default, as dopamine uses it)",
    },
    ParamSpec {
        name: "beta2",
        ty: ParamType::float(0.0, 0.999_999_999),
        default: Lit::Float(0.999),
        doc: "Adam β₂ (optax's default, as dopamine uses it)",
    },
    ParamSpec {
        name: "eps",
        ty: ParamType::float(0.0, 1.0),
        default: Lit::Float(1.5e-4),
        doc: "Adam ε (JAX dopamine's 1.5e-4)",
    },
    ParamSpec {
        name: "drown_out_every",
        ty: ParamType::int(0, i64::MAX),
        default: Lit::Int(0),
        doc: "E8 diagnostic (docs/paper.md#e8): sample ‖λw‖/‖∇L‖, the l2 share of m, cos(m, mᵍ), \
              the step attenuation and the fraction past the stability bound every N updates \
              (0: off)",
    },
    ParamSpec {
        name: "seed",
        ty: ParamType::int(0, i64::MAX),
        default: Lit::Int(0),
        doc: "seeds initialisation, the environments, exploration and replay sampling",
    },
];
