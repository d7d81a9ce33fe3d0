//! The `sharpness` kind (docs/paper.md#e3): generalization and sharpness measures of the final
//! checkpoints of the `vision` runs an experiment `needs` (`train::sharpness`).

use serde::Deserialize;

use super::common::check_params;
use super::common::metric;
use crate::data::Format;
use crate::pipeline::params::{Lit, ParamSpec, ParamType};
use crate::pipeline::stage::{MetricDecl, Results, Rows, StageDecl};
use crate::runtime::PrecisionSupport;

/// E3's generalization metrics on the final checkpoints of the `vision` runs it `needs`
/// (`train::sharpness`): one row per upstream run.
pub static SHARPNESS: StageDecl = StageDecl {
    name: "sharpness",
    version: 2,
    params: SHARPNESS_PARAMS,
    check_params: check_params::<SharpnessParams>,
    dataset_formats: &[
        Format::Cifar10Binary,
        Format::Cifar100Binary,
        Format::TinyimagenetFolder,
    ],
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
    fusable: None,
};

/// The parameters of a `sharpness` run, as `SHARPNESS_PARAMS` declares them.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SharpnessParams {
    pub subset: usize,
    pub seed: u64,
    pub hessian_iters: usize,
    pub trace_probes: usize,
    pub epsilon: f64,
    pub ascent_steps: usize,
    pub per_layer: bool,
    pub chunk: usize,
}

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
