//! What the kinds' declarations share: the constructor of a plain metric declaration, the small
//! enums of choice parameters (defined once with [`crate::choice`], their wire names being what the schemas' `Choice`
//! lists and the worker's types both come from), the check of a parameter map against a
//! kind's parameter struct, and the fused groups of the Adam-family kinds.

use serde_json::{Map, Value};

use crate::pipeline::stage::{Fusable, MetricDecl};

pub const fn metric(
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

pub fn number(row: &Map<String, Value>, k: &str) -> Option<f64> {
    row.get(k).and_then(Value::as_f64)
}

/// Train minus test accuracy of an epoch row (train accuracy as measured during the epoch).
pub fn vision_gap(row: &Map<String, Value>) -> Option<f64> {
    Some(number(row, "train_acc")? - number(row, "test_acc")?)
}

pub use crate::choice::UnknownChoice;
pub(crate) use crate::choice::choice;

choice! {
    /// A `vision` network (`nn::build`): the CIFAR variants (3×3 stem, no max-pool).
    pub enum Arch ("architecture") {
        SmallCnn = "small_cnn",
        ResNet18 = "resnet18",
        ResNet50 = "resnet50",
        DenseNet121 = "densenet121",
    }
}

choice! {
    /// Where λ·w enters Adam (docs/paper.md#e7: V1 adam_l2 … V5 adaptive_decoupled, then
    /// l2_out_of_m and adaptive_decoupled_stable); `optim::adam::Variant` holds each one's flags.
    pub enum AdamVariant ("Adam variant") {
        AdamL2 = "adam_l2",
        AdamW = "adamw",
        L2InM = "l2_in_m",
        L2InV = "l2_in_v",
        AdaptiveDecoupled = "adaptive_decoupled",
        L2OutOfM = "l2_out_of_m",
        AdaptiveDecoupledStable = "adaptive_decoupled_stable",
    }
}

/// The Adam family's variant names, shared by the lm, translate and dqn kinds.
pub const VARIANTS: &[&str] = AdamVariant::NAMES;

choice! {
    /// When weight decay is applied, by epoch (`vision`'s `schedule`).
    pub enum WdSchedule ("schedule") {
        None = "none",
        Always = "always",
        /// On for epochs `< switch_epoch`.
        Early = "early",
        /// On from `switch_epoch`.
        Late = "late",
    }
}

impl WdSchedule {
    /// Whether weight decay is on in `epoch` (0-based) with Tₛ = `switch_epoch`.
    pub fn active(self, epoch: usize, switch_epoch: usize) -> bool {
        match self {
            WdSchedule::None => false,
            WdSchedule::Always => true,
            WdSchedule::Early => epoch < switch_epoch,
            WdSchedule::Late => epoch >= switch_epoch,
        }
    }
}

choice! {
    /// The per-step learning rate after warm-up (`lr_schedule` of lm and translate).
    pub enum LrSchedule ("lr_schedule") {
        Constant = "constant",
        Cosine = "cosine",
        InverseSqrt = "inverse_sqrt",
    }
}

choice! {
    /// The sequence models of lm (pytorch/examples' TransformerModel) and translate (fairseq's
    /// transformer_iwslt_de_en): one architecture each, named so pipelines say which.
    pub enum SeqModel ("model") {
        Transformer = "transformer",
    }
}

choice! {
    /// A DQN Q-network (`nn::dqn`): MinAtar's small one or dopamine's Nature CNN.
    pub enum QNetArch ("Q-network") {
        MinAtar = "minatar",
        Nature = "nature",
    }
}

choice! {
    /// A suite of games for DQN (`games::make`).
    pub enum Suite ("suite") {
        MinAtar = "minatar",
        Atari = "atari",
    }
}

/// Whether a resolved parameter map deserializes into the kind's parameter struct `P`
/// (`StageDecl::check_params`).
pub fn check_params<P: serde::de::DeserializeOwned>(
    params: &Map<String, Value>,
) -> Result<(), String> {
    serde_json::from_value::<P>(Value::Object(params.clone()))
        .map(|_| ())
        .map_err(|e| e.to_string())
}

/// What the Adam-family kinds (lm, translate, dqn) give their optimizer besides the per-step
/// lr and λ.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct AdamParams {
    pub variant: AdamVariant,
    pub beta1: f64,
    pub beta2: f64,
    pub eps: f64,
    /// Sample the E8 drown-out diagnostic every this many steps (0: off).
    pub drown_out_every: u64,
}

/// The fused groups of the kinds trained with the Adam family (`dqn`, `lm`): members differ in seed,
/// learning rate, weight decay and variant, which a stacked optimizer carries per member.
pub static ADAM_FUSABLE: Fusable = Fusable {
    member_axes: &["seed", "lr", "weight_decay", "variant"],
};
