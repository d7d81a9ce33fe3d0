//! The stage kinds this build knows, as the engine needs them: name, implementation version
//! and parameter schema. Kept apart from the implementations (in `train`, run by the worker) so
//! the `repro` binary links no libtorch and starts in milliseconds.

mod lm;
mod rl;
mod translate;

use crate::runtime::PrecisionSupport;
use serde_json::{Map, Value};

use super::params::{Lit, ParamSpec, ParamType};
use super::stage::{MetricDecl, Results, Rows, StageDecl};

const fn metric(
    name: &'static str,
    label: &'static str,
    table: Option<&'static str>,
) -> MetricDecl {
    MetricDecl {
        name,
        label,
        table,
        derived: None,
        curve: None,
    }
}

fn number(row: &Map<String, Value>, k: &str) -> Option<f64> {
    row.get(k).and_then(Value::as_f64)
}

/// Train minus test accuracy of an epoch row (train accuracy as measured during the epoch).
fn vision_gap(row: &Map<String, Value>) -> Option<f64> {
    Some(number(row, "train_acc")? - number(row, "test_acc")?)
}

/// Every kind, for lookup by name.
pub static ALL: &[&StageDecl] = &[
    &VISION,
    &SHARPNESS,
    &lm::LM,
    &rl::DQN,
    &translate::TRANSLATE,
];

/// Image classification with SGD and a weight-decay schedule (`train::vision`).
pub static VISION: StageDecl = StageDecl {
    name: "vision",
    version: 2,
    params: VISION_PARAMS,
    dataset_formats: &["cifar10-binary", "cifar100-binary", "tinyimagenet-folder"],
    results: Results {
        file: "metrics.jsonl",
        rows: Rows::PerEpoch,
        metrics: VISION_METRICS,
    },
    precision: PrecisionSupport {
        autocast: true,
        channels_last: true,
    },
};

/// The per-epoch columns of `metrics.jsonl` (`train::vision`).
static VISION_METRICS: &[MetricDecl] = &[
    metric(
        "test_acc",
        "test accuracy (fraction)",
        Some("test_acc@final"),
    )
    .curve("Test accuracy", false),
    metric(
        "train_acc",
        "train accuracy in the epoch (fraction)",
        Some("train_acc@final"),
    ),
    metric("test_loss", "test loss (cross-entropy, nats)", None),
    metric("train_loss", "train loss in the epoch (nats)", None),
    MetricDecl {
        name: "gen_gap_acc",
        label: "train − test accuracy (fraction)",
        table: None,
        derived: Some(vision_gap),
        curve: None,
    },
    metric(
        "weight_norm",
        "total weight norm ‖w‖₂",
        Some("weight_norm@final"),
    )
    .curve("Total weight norm", true),
    metric(
        "eff_lr_mean",
        "mean α/‖w‖², BN-preceded weights",
        Some("eff_lr_mean@tail:0.2"),
    )
    .curve("Effective step α/‖w‖²", true),
    metric(
        "rel_update_mean",
        "mean ‖Δw‖/‖w‖ per step, BN-preceded",
        Some("rel_update_mean@tail:0.2"),
    )
    .curve("Relative update ‖Δw‖/‖w‖", true),
    metric("si_norm_sq", "Σ‖w‖² of BN-preceded weights", None),
    metric(
        "si_growth_measured",
        "measured change of Σ‖w‖² in the epoch",
        None,
    ),
    metric(
        "si_growth_pred_grad",
        "predicted growth Σα²‖∇f‖² in the epoch",
        None,
    ),
    metric(
        "si_growth_pred_step",
        "predicted growth Σ‖Δw‖² in the epoch",
        None,
    ),
    metric("grad_norm", "gradient norm ‖∇f‖₂", None),
    metric("lr", "learning rate α", None),
];

/// Defaults are the paper profile's (docs/paper.md#e1): SGD momentum 0.9, batch 128, lr₀ 0.1 ×0.97
/// per epoch, 200 epochs, λ 5e-4 (Golatkar et al.'s recipe as recalled, unverified; lr₀ the least
/// certain), Tₛ 50 (a default of ours).
static VISION_PARAMS: &[ParamSpec] = &[
    ParamSpec {
        name: "model",
        ty: ParamType::Choice(&["small_cnn", "resnet18", "resnet50", "densenet121"]),
        default: Lit::Str("resnet18"),
        doc: "network architecture (CIFAR variants: 3×3 stem, no max-pool)",
    },
    ParamSpec {
        name: "width",
        ty: ParamType::float(0.0, 64.0),
        default: Lit::Float(1.0),
        doc: "channel multiplier (1 = the paper's width)",
    },
    ParamSpec {
        name: "epochs",
        ty: ParamType::int(1, 10_000),
        default: Lit::Int(200),
        doc: "training epochs",
    },
    ParamSpec {
        name: "batch_size",
        ty: ParamType::int(1, 65_536),
        default: Lit::Int(128),
        doc: "images per SGD step",
    },
    ParamSpec {
        name: "lr",
        ty: ParamType::float(0.0, 100.0),
        default: Lit::Float(0.1),
        doc: "initial learning rate",
    },
    ParamSpec {
        name: "lr_decay",
        ty: ParamType::float(0.0, 1.0),
        default: Lit::Float(0.97),
        doc: "per-epoch lr factor",
    },
    ParamSpec {
        name: "momentum",
        ty: ParamType::float(0.0, 1.0),
        default: Lit::Float(0.9),
        doc: "SGD momentum",
    },
    ParamSpec {
        name: "weight_decay",
        ty: ParamType::float(0.0, 1.0),
        default: Lit::Float(5e-4),
        doc: "λ, added to the gradient while on",
    },
    ParamSpec {
        name: "schedule",
        ty: ParamType::Choice(&["none", "always", "early", "late"]),
        default: Lit::Str("always"),
        doc: "when weight decay is on",
    },
    ParamSpec {
        name: "switch_epoch",
        ty: ParamType::int(0, 10_000),
        default: Lit::Int(50),
        doc: "Tₛ: early is on before it, late from it",
    },
    ParamSpec {
        name: "seed",
        ty: ParamType::int(0, i64::MAX),
        default: Lit::Int(0),
        doc: "seeds init, shuffling and augmentation",
    },
    ParamSpec {
        name: "train_subset",
        ty: ParamType::int(0, i64::MAX),
        default: Lit::Int(0),
        doc: "use the first N training images (0: all)",
    },
    ParamSpec {
        name: "augment",
        ty: ParamType::Bool,
        default: Lit::Bool(true),
        doc: "zero-pad random crop + horizontal flip",
    },
    ParamSpec {
        name: "crop_pad",
        ty: ParamType::int(0, 64),
        default: Lit::Int(4),
        doc: "padding of the random crop (4 px for CIFAR)",
    },
    ParamSpec {
        name: "label_noise",
        ty: ParamType::float(0.0, 1.0),
        default: Lit::Float(0.0),
        doc: "fraction of training labels replaced by uniform random ones (E4)",
    },
];

/// E3's generalization metrics on the final checkpoints of the `vision` runs it `needs`
/// (`train::sharpness`): one row per upstream run.
pub static SHARPNESS: StageDecl = StageDecl {
    name: "sharpness",
    version: 2,
    params: SHARPNESS_PARAMS,
    dataset_formats: &["cifar10-binary", "cifar100-binary", "tinyimagenet-folder"],
    results: Results {
        file: "sharpness.jsonl",
        rows: Rows::PerUpstreamRun {
            coordinates: &["schedule", "switch_epoch", "seed", "label_noise"],
        },
        metrics: SHARPNESS_METRICS,
    },
    // Sharpness measures run in fp32 and NCHW whatever the profile says.
    precision: PrecisionSupport {
        autocast: false,
        channels_last: false,
    },
};

/// The columns of `sharpness.jsonl` (`train::sharpness`), one row per upstream run.
static SHARPNESS_METRICS: &[MetricDecl] = &[
    metric(
        "gen_gap_acc",
        "train − test accuracy (fraction)",
        Some("gen_gap_acc"),
    ),
    metric("gen_gap_loss", "test − train loss (nats)", None),
    metric("test_acc", "test accuracy (fraction)", None),
    metric("train_acc", "train accuracy, eval mode (fraction)", None),
    metric("test_loss", "test loss (nats)", None),
    metric("train_loss", "train loss, eval mode (nats)", None),
    metric("lambda_max", "Hessian λ_max", Some("lambda_max")),
    metric("trace", "Hessian trace (Hutchinson)", Some("trace")),
    metric(
        "eps_sharpness",
        "ε-sharpness (Keskar, %)",
        Some("eps_sharpness"),
    ),
    metric("frobenius_sum", "Σ‖W‖²_F", Some("frobenius_sum")),
    metric(
        "log_spectral_product",
        "Σ log‖W‖₂",
        Some("log_spectral_product"),
    ),
    metric("dist_init", "‖w − w₀‖₂", Some("dist_init")),
    metric("s_inv", "S_inv = λ_max·‖w‖²", Some("s_inv")),
    metric(
        "s_inv_trace",
        "tr(H)·‖w‖² (BN-preceded weights)",
        Some("s_inv_trace"),
    ),
    metric(
        "s_inv_layer_sum",
        "Σ_l λ_max(H_ll)·‖W_l‖² (null without per_layer)",
        Some("s_inv_layer_sum"),
    ),
];

/// Defaults of ours (docs/paper.md#e3: 20 power iterations, 100 probes, 5k samples, Keskar's
/// ε = 1e-3); the paper's settings could not be read.
static SHARPNESS_PARAMS: &[ParamSpec] = &[
    ParamSpec {
        name: "subset",
        ty: ParamType::int(1, i64::MAX),
        default: Lit::Int(5000),
        doc: "training images the loss is measured on",
    },
    ParamSpec {
        name: "seed",
        ty: ParamType::int(0, i64::MAX),
        default: Lit::Int(0),
        doc: "chooses the subset and the random probes",
    },
    ParamSpec {
        name: "hessian_iters",
        ty: ParamType::int(1, 10_000),
        default: Lit::Int(20),
        doc: "power iterations for λ_max",
    },
    ParamSpec {
        name: "trace_probes",
        ty: ParamType::int(2, 100_000),
        default: Lit::Int(100),
        doc: "Rademacher probes for the Hutchinson trace (2 or more: the standard error needs two)",
    },
    ParamSpec {
        name: "epsilon",
        ty: ParamType::float(0.0, 1.0),
        default: Lit::Float(1e-3),
        doc: "box size of ε-sharpness (Keskar et al.)",
    },
    ParamSpec {
        name: "ascent_steps",
        ty: ParamType::int(1, 10_000),
        default: Lit::Int(10),
        doc: "projected ascent steps of ε-sharpness",
    },
    ParamSpec {
        name: "per_layer",
        ty: ParamType::Bool,
        default: Lit::Bool(true),
        doc: "also S_inv of each BN-preceded layer",
    },
    ParamSpec {
        name: "chunk",
        ty: ParamType::int(1, 65_536),
        default: Lit::Int(500),
        doc: "images per Hessian-vector-product chunk (bounds memory)",
    },
];
