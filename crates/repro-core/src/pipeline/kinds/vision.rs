//! The `vision` kind (docs/paper.md#e1, E2, E4): image classification with SGD and a
//! weight-decay schedule (`train::vision`).

use serde::Deserialize;

use super::common::{Arch, WdSchedule, check_params, metric, vision_gap};
use crate::data::Format;
use crate::pipeline::params::{Lit, ParamSpec, ParamType};
use crate::pipeline::stage::{MetricDecl, Results, Rows, StageDecl};
use crate::runtime::PrecisionSupport;

/// Image classification with SGD and a weight-decay schedule (`train::vision`).
pub static VISION: StageDecl = StageDecl {
    name: "vision",
    version: 2,
    params: VISION_PARAMS,
    check_params: check_params::<VisionParams>,
    dataset_formats: &[
        Format::Cifar10Binary,
        Format::Cifar100Binary,
        Format::TinyimagenetFolder,
    ],
    results: Results {
        file: "metrics.jsonl",
        rows: Rows::PerEpoch,
        metrics: VISION_METRICS,
    },
    precision: PrecisionSupport {
        autocast: true,
        channels_last: true,
    },
    fusable: None,
};

/// The parameters of a `vision` run, as `VISION_PARAMS` declares them (`train::vision` reads
/// these fields; a generic test holds the two together).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VisionParams {
    pub model: Arch,
    pub width: f64,
    pub epochs: usize,
    pub batch_size: usize,
    pub lr: f64,
    pub lr_decay: f64,
    pub momentum: f64,
    pub weight_decay: f64,
    pub schedule: WdSchedule,
    pub switch_epoch: usize,
    pub seed: u64,
    pub train_subset: usize,
    pub augment: bool,
    pub crop_pad: i64,
    pub label_noise: f64,
}

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
        ty: ParamType::Choice(Arch::NAMES),
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
        ty: ParamType::Choice(WdSchedule::NAMES),
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
