//! The `translate` kind (docs/paper.md#e5, the paper's own NLP task): IWSLT'14 German→English with
//! fairseq's `transformer_iwslt_de_en` recipe and one variant of the Adam family
//! (`train::translate`). Defaults are the recipe's (fairseq's examples/translation README: Adam β
//! (0.9, 0.98), lr 5e-4, inverse-sqrt schedule with 4,000 warm-up updates, dropout 0.3, label
//! smoothing 0.1, max 4,096 tokens per batch, no clipping; generation with beam 5, length penalty
//! 1); the rest are defaults of ours, named as such in each parameter's doc.

use serde::Deserialize;

use super::common::{AdamParams, AdamVariant, LrSchedule, SeqModel, check_params, metric};
use crate::data::Format;
use crate::pipeline::params::{Lit, ParamSpec, ParamType};
use crate::pipeline::stage::{MetricDecl, Results, Rows, StageDecl};
use crate::runtime::PrecisionSupport;

/// fairseq's Transformer encoder-decoder trained with one Adam variant at one (lr, λ).
pub static TRANSLATE: StageDecl = StageDecl {
    name: "translate",
    version: 2,
    params: TRANSLATE_PARAMS,
    check_params: check_params::<TranslateParams>,
    dataset_formats: &[Format::Iwslt14DeEn],
    results: Results {
        file: "metrics.jsonl",
        rows: Rows::PerEpoch,
        metrics: TRANSLATE_METRICS,
    },
    precision: PrecisionSupport {
        autocast: true,
        channels_last: false,
    },
    fusable: None,
};

/// The parameters of a `translate` run, as `TRANSLATE_PARAMS` declares them.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TranslateParams {
    pub model: SeqModel,
    pub d_model: i64,
    pub ffn: i64,
    pub heads: i64,
    pub encoder_layers: i64,
    pub decoder_layers: i64,
    pub dropout: f64,
    pub share_decoder_embeddings: bool,
    pub bpe_merges: usize,
    pub max_tokens: usize,
    pub epochs: usize,
    pub label_smoothing: f64,
    pub clip: f64,
    pub variant: AdamVariant,
    pub lr: f64,
    pub weight_decay: f64,
    pub beta1: f64,
    pub beta2: f64,
    pub eps: f64,
    pub lr_schedule: LrSchedule,
    pub warmup_steps: u64,
    pub train_pairs: usize,
    pub beam: i64,
    pub len_penalty: f64,
    pub max_len_b: i64,
    pub test_sentences: usize,
    pub drown_out_every: u64,
    pub seed: i64,
}

impl TranslateParams {
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

/// The per-epoch columns of `metrics.jsonl`; the BLEU columns are in the last row only.
static TRANSLATE_METRICS: &[MetricDecl] = &[
    metric(
        "valid_loss",
        "validation label-smoothed loss (nats per target token)",
        Some("valid_loss@min"),
    )
    .curve("Validation loss", false),
    metric(
        "valid_nll",
        "validation cross-entropy without smoothing (nats per target token)",
        Some("valid_nll@min"),
    ),
    metric("valid_ppl", "validation perplexity exp(valid_nll)", None)
        .curve("Validation perplexity", true),
    metric(
        "train_loss",
        "training label-smoothed loss in the epoch (nats per target token)",
        None,
    )
    .curve("Training loss", false),
    metric("train_nll", "training cross-entropy in the epoch", None),
    metric(
        "test_bleu",
        "test BLEU as fairseq-generate reports it (tokenized, BPE removed, beam search)",
        Some("test_bleu@final"),
    ),
    metric(
        "test_sacrebleu",
        "test BLEU by sacreBLEU's defaults (13a, exp smoothing) on the same text",
        Some("test_sacrebleu@final"),
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

const fn int(name: &'static str, lo: i64, hi: i64, default: i64, doc: &'static str) -> ParamSpec {
    ParamSpec {
        name,
        ty: ParamType::int(lo, hi),
        default: Lit::Int(default),
        doc,
    }
}

const fn float(name: &'static str, lo: f64, hi: f64, default: f64, doc: &'static str) -> ParamSpec {
    ParamSpec {
        name,
        ty: ParamType::float(lo, hi),
        default: Lit::Float(default),
        doc,
    }
}

static TRANSLATE_PARAMS: &[ParamSpec] = &[
    ParamSpec {
        name: "model",
        ty: ParamType::Choice(SeqModel::NAMES),
        default: Lit::Str("transformer"),
        doc: "architecture: fairseq's post-LN Transformer encoder-decoder",
    },
    int(
        "d_model",
        2,
        65_536,
        512,
        "embedding and model width (transformer_iwslt_de_en: 512)",
    ),
    int(
        "ffn",
        1,
        1_048_576,
        1024,
        "feed-forward width (transformer_iwslt_de_en: 1024)",
    ),
    int(
        "heads",
        1,
        1024,
        4,
        "attention heads (transformer_iwslt_de_en: 4)",
    ),
    int(
        "encoder_layers",
        1,
        1024,
        6,
        "encoder layers (transformer_iwslt_de_en: 6)",
    ),
    int(
        "decoder_layers",
        1,
        1024,
        6,
        "decoder layers (transformer_iwslt_de_en: 6)",
    ),
    float(
        "dropout",
        0.0,
        0.99,
        0.3,
        "dropout (the recipe's --dropout 0.3)",
    ),
    ParamSpec {
        name: "share_decoder_embeddings",
        ty: ParamType::Bool,
        default: Lit::Bool(true),
        doc: "decoder output projection = decoder input embedding (the recipe's \
              --share-decoder-input-output-embed)",
    },
    int(
        "bpe_merges",
        1,
        1_000_000,
        10_000,
        "joint BPE merge operations (prepare-iwslt14.sh: 10000)",
    ),
    int(
        "max_tokens",
        1,
        i64::MAX,
        4096,
        "tokens per batch, as fairseq counts them (--max-tokens 4096)",
    ),
    int(
        "epochs",
        1,
        10_000,
        50,
        "passes over the training set (fairseq stops by hand; 50 is a default of ours)",
    ),
    float(
        "label_smoothing",
        0.0,
        0.99,
        0.1,
        "label smoothing ε (the recipe's 0.1)",
    ),
    float(
        "clip",
        0.0,
        1e6,
        0.0,
        "max total gradient norm, 0 = off (the recipe's --clip-norm 0.0)",
    ),
    ParamSpec {
        name: "variant",
        ty: ParamType::Choice(AdamVariant::NAMES),
        default: Lit::Str("adamw"),
        doc: "where λ·w enters Adam (docs/paper.md#e7); fairseq's `adam` is the decoupled adamw",
    },
    float(
        "lr",
        0.0,
        100.0,
        5e-4,
        "peak learning rate α (the recipe's 5e-4)",
    ),
    float(
        "weight_decay",
        0.0,
        100.0,
        0.0,
        "λ, entering as the variant says (the recipe uses 1e-4 with decoupled Adam)",
    ),
    float("beta1", 0.0, 0.999_999, 0.9, "Adam β₁ (the recipe's 0.9)"),
    float(
        "beta2",
        0.0,
        0.999_999_999,
        0.98,
        "Adam β₂ (the recipe's 0.98)",
    ),
    float("eps", 0.0, 1.0, 1e-8, "Adam ε (fairseq's default 1e-8)"),
    ParamSpec {
        name: "lr_schedule",
        ty: ParamType::Choice(LrSchedule::NAMES),
        default: Lit::Str("inverse_sqrt"),
        doc: "after warm-up: fairseq's inverse_sqrt (the recipe's), constant, or cosine to 0",
    },
    int(
        "warmup_steps",
        0,
        i64::MAX,
        4000,
        "linear warm-up updates (the recipe's 4000)",
    ),
    int(
        "train_pairs",
        0,
        i64::MAX,
        0,
        "train on the first N training pairs (0: all)",
    ),
    int(
        "beam",
        1,
        1024,
        5,
        "beam width for the test BLEU (the recipe's 5)",
    ),
    float(
        "len_penalty",
        0.0,
        100.0,
        1.0,
        "length penalty: scores divided by length^this (fairseq's 1)",
    ),
    int(
        "max_len_b",
        1,
        1_000_000,
        200,
        "longest hypothesis, in tokens (fairseq-generate's max_len_b 200, max_len_a 0)",
    ),
    int(
        "test_sentences",
        0,
        i64::MAX,
        0,
        "translate the first N test sentences for BLEU (0: all)",
    ),
    int(
        "drown_out_every",
        0,
        i64::MAX,
        0,
        "E8 diagnostic every N updates (0: off; costs about one more Adam step per sample)",
    ),
    int(
        "seed",
        0,
        i64::MAX,
        0,
        "seeds initialisation, dropout and the batch order",
    ),
];
