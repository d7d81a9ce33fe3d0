//! The `lm` kind (docs/paper.md#e5, E7, E8): word-level language modelling on WikiText (an
//! extension from the project's brief, not in the paper) with the Adam family of `optim::adam`
//! (`train::lm`). Defaults are pytorch/examples' word_language_model where it has one (model size,
//! bptt, batches, clipping, epochs) and torch.optim.Adam's for the optimizer; the rest are defaults
//! of ours, named as such in each parameter's doc.

use serde::Deserialize;

use super::common::{
    ADAM_FUSABLE, AdamParams, AdamVariant, LrSchedule, SeqModel, check_params, metric,
};
use crate::data::Format;
use crate::pipeline::params::{Lit, ParamSpec, ParamType};
use crate::pipeline::stage::{MetricDecl, Results, Rows, StageDecl};
use crate::runtime::PrecisionSupport;

/// Causal Transformer LM trained with one Adam variant at one (lr, λ) (`train::lm`).
pub static LM: StageDecl = StageDecl {
    name: "lm",
    version: 2,
    params: LM_PARAMS,
    check_params: check_params::<LmParams>,
    dataset_formats: &[Format::WikitextTokens],
    results: Results {
        file: "metrics.jsonl",
        rows: Rows::PerEpoch,
        metrics: LM_METRICS,
    },
    // No convolutions: channels-last does not apply.
    precision: PrecisionSupport {
        autocast: true,
        channels_last: false,
    },
    fusable: Some(&ADAM_FUSABLE),
};

/// The parameters of an `lm` run, as `LM_PARAMS` declares them.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LmParams {
    pub model: SeqModel,
    pub d_model: i64,
    pub heads: i64,
    pub layers: i64,
    pub ffn: i64,
    pub dropout: f64,
    pub norm_first: bool,
    pub tie_embeddings: bool,
    pub epochs: usize,
    pub batch_size: i64,
    pub eval_batch_size: i64,
    pub bptt: i64,
    pub clip: f64,
    pub variant: AdamVariant,
    pub lr: f64,
    pub weight_decay: f64,
    pub beta1: f64,
    pub beta2: f64,
    pub eps: f64,
    pub lr_schedule: LrSchedule,
    pub warmup_steps: u64,
    pub train_tokens: usize,
    pub drown_out_every: u64,
    pub seed: i64,
}

impl LmParams {
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

/// The per-epoch columns of `metrics.jsonl` (`train::lm`). The drown-out columns are written
/// when `drown_out_every` > 0 (means over the epoch's sampled steps, all parameters together).
static LM_METRICS: &[MetricDecl] = &[
    metric("valid_ppl", "validation perplexity", Some("valid_ppl@min"))
        .curve("Validation perplexity", true),
    metric("valid_loss", "validation loss (nats per token)", None),
    metric("test_ppl", "test perplexity", Some("test_ppl@final")),
    metric("test_loss", "test loss (nats per token)", None),
    metric("train_ppl", "training perplexity in the epoch", None)
        .curve("Training perplexity", true),
    metric(
        "train_loss",
        "training loss in the epoch (nats per token)",
        None,
    ),
    metric(
        "weight_norm",
        "total weight norm ‖w‖₂",
        Some("weight_norm@final"),
    )
    .curve("Total weight norm", true),
    metric(
        "grad_norm",
        "mean gradient norm ‖∇L‖₂ before clipping",
        None,
    ),
    metric(
        "l2_over_grad",
        "‖λw‖/‖∇L‖, mean over sampled steps",
        Some("l2_over_grad@mean"),
    )
    .curve("‖λw‖/‖∇L‖", false),
    metric(
        "l2_share_of_m",
        "l2 share of m: ‖mʳ‖/(‖mᵍ‖+‖mʳ‖)",
        Some("l2_share_of_m@mean"),
    )
    .curve("l2 share of Adam's m", false),
    metric("cos_m_mg", "cos(m, mᵍ), mean over sampled steps", None),
    metric(
        "step_attenuation",
        "‖m̂ᵍ/d‖/‖m̂ᵍ/dᵍ‖: the loss gradient's step under Adam's denominator d against one of g \
         alone (1: not drowned out), mean over sampled steps",
        Some("step_attenuation@mean"),
    ),
    metric(
        "past_stability_bound",
        "fraction of coordinates past the variant's stability bound (docs/paper.md#e7), mean \
         over sampled steps",
        Some("past_stability_bound@mean"),
    ),
    metric("lr", "learning rate α at the epoch's last step", None),
];

static LM_PARAMS: &[ParamSpec] = &[
    ParamSpec {
        name: "model",
        ty: ParamType::Choice(SeqModel::NAMES),
        default: Lit::Str("transformer"),
        doc: "architecture: pytorch/examples' TransformerModel with a causal mask",
    },
    ParamSpec {
        name: "d_model",
        ty: ParamType::int(2, 65_536),
        default: Lit::Int(200),
        doc: "embedding and model width (pytorch/examples' emsize 200); even, divisible by heads",
    },
    ParamSpec {
        name: "heads",
        ty: ParamType::int(1, 1024),
        default: Lit::Int(2),
        doc: "attention heads (pytorch/examples' nhead 2)",
    },
    ParamSpec {
        name: "layers",
        ty: ParamType::int(1, 1024),
        default: Lit::Int(2),
        doc: "Transformer layers (pytorch/examples' nlayers 2)",
    },
    ParamSpec {
        name: "ffn",
        ty: ParamType::int(1, 1_048_576),
        default: Lit::Int(200),
        doc: "feed-forward width (pytorch/examples' nhid 200)",
    },
    ParamSpec {
        name: "dropout",
        ty: ParamType::float(0.0, 0.99),
        default: Lit::Float(0.2),
        doc: "dropout probability (pytorch/examples' 0.2)",
    },
    ParamSpec {
        name: "norm_first",
        ty: ParamType::Bool,
        default: Lit::Bool(false),
        doc: "pre-LN (true) or post-LN (false, nn.TransformerEncoderLayer's and pytorch/examples')",
    },
    ParamSpec {
        name: "tie_embeddings",
        ty: ParamType::Bool,
        default: Lit::Bool(false),
        doc: "decoder weight = embedding weight (pytorch/examples' --tied, off by default)",
    },
    ParamSpec {
        name: "epochs",
        ty: ParamType::int(1, 10_000),
        default: Lit::Int(40),
        doc: "passes over the training stream (pytorch/examples' 40)",
    },
    ParamSpec {
        name: "batch_size",
        ty: ParamType::int(1, 65_536),
        default: Lit::Int(20),
        doc: "parallel streams of the training set (pytorch/examples' 20)",
    },
    ParamSpec {
        name: "eval_batch_size",
        ty: ParamType::int(1, 65_536),
        default: Lit::Int(10),
        doc: "parallel streams of the validation and test sets (pytorch/examples' 10)",
    },
    ParamSpec {
        name: "bptt",
        ty: ParamType::int(1, 5000),
        default: Lit::Int(35),
        doc: "tokens per window (pytorch/examples' 35)",
    },
    ParamSpec {
        name: "clip",
        ty: ParamType::float(0.0, 1e6),
        default: Lit::Float(0.25),
        doc: "max total gradient norm before the optimizer step, 0 = off (pytorch/examples' 0.25)",
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
        default: Lit::Float(1e-3),
        doc: "peak learning rate α (torch.optim.Adam's default 1e-3)",
    },
    ParamSpec {
        name: "weight_decay",
        ty: ParamType::float(0.0, 100.0),
        default: Lit::Float(0.0),
        doc: "λ, entering as the variant says (0: plain Adam for every variant)",
    },
    ParamSpec {
        name: "beta1",
        ty: ParamType::float(0.0, 0.999_999),
        default: Lit::Float(0.9),
        doc: "Adam β₁ (torch's default)",
    },
    ParamSpec {
        name: "beta2",
        ty: ParamType::float(0.0, 0.999_999_999),
        default: Lit::Float(0.999),
        doc: "Adam β₂ (torch's default)",
    },
    ParamSpec {
        name: "eps",
        ty: ParamType::float(0.0, 1.0),
        default: Lit::Float(1e-8),
        doc: "Adam ε, added outside the square root (torch's default)",
    },
    ParamSpec {
        name: "lr_schedule",
        ty: ParamType::Choice(LrSchedule::NAMES),
        default: Lit::Str("constant"),
        doc: "after warm-up: constant (default of ours), cosine to 0 at the last step, or \
              fairseq's inverse_sqrt (α·√warmup/√step)",
    },
    ParamSpec {
        name: "warmup_steps",
        ty: ParamType::int(0, i64::MAX),
        default: Lit::Int(0),
        doc: "linear warm-up from α/warmup to α over these steps (default 0: none)",
    },
    ParamSpec {
        name: "train_tokens",
        ty: ParamType::int(0, i64::MAX),
        default: Lit::Int(0),
        doc: "train on the first N tokens of the training split (0: all)",
    },
    ParamSpec {
        name: "drown_out_every",
        ty: ParamType::int(0, i64::MAX),
        default: Lit::Int(0),
        doc: "E8 diagnostic (docs/paper.md#e8): sample ‖λw‖/‖∇L‖, the l2 share of m, cos(m, mᵍ), \
              the step attenuation and the fraction past the stability bound every N steps (0: \
              off; on, the shadow EMAs cost about one more Adam step per step)",
    },
    ParamSpec {
        name: "seed",
        ty: ParamType::int(0, i64::MAX),
        default: Lit::Int(0),
        doc: "seeds initialisation and dropout",
    },
];
