//! The stage kinds this build knows, as the engine needs them: name, implementation version
//! and parameter schema. Kept apart from the implementations (in `train`, run by the worker) so
//! the `repro` binary links no libtorch and starts in milliseconds.

use super::params::{Lit, ParamSpec, ParamType};
use super::stage::StageDecl;

/// Every kind, for lookup by name.
pub static ALL: &[&StageDecl] = &[&VISION];

/// Image classification with SGD and a weight-decay schedule (`train::vision`).
pub static VISION: StageDecl = StageDecl {
    name: "vision",
    version: 1,
    params: VISION_PARAMS,
    dataset_formats: &["cifar10-binary", "cifar100-binary"],
};

/// Defaults are the paper profile's (SPEC.md §4 E1): SGD momentum 0.9, batch 128, lr₀ 0.1 ×0.97
/// per epoch, 200 epochs, λ 5e-4, Tₛ 50 (a default of ours).
static VISION_PARAMS: &[ParamSpec] = &[
    ParamSpec {
        name: "model",
        ty: ParamType::Choice(&["small_cnn"]),
        default: Lit::Str("small_cnn"),
        doc: "network architecture",
    },
    ParamSpec {
        name: "width",
        ty: ParamType::int(1, 4096),
        default: Lit::Int(32),
        doc: "channels of the first block",
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
        doc: "4-px pad random crop + horizontal flip",
    },
];
