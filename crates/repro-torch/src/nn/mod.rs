//! Models, built with tch's `nn` modules: the architecture names ([`Arch`]), one entry point
//! ([`build`]) that returns the network together with the names of its scale-invariant weights
//! ([`Model`]); the layer constructors the networks share and the width multiplier's arithmetic
//! are [`layers`]'s.
//!
//! Variable names mirror the PyTorch reference modules (kuangliu/pytorch-cifar naming), so a
//! `VarStore` saved as safetensors loads into them with `load_state_dict` (see
//! `tests/python/models.py`).

pub mod beam_search;
pub mod densenet;
pub mod dqn;
pub mod layers;
pub mod resnet;
pub mod small_cnn;
pub mod stacked_dqn;
pub mod stacked_lm;
pub mod transformer_lm;
pub mod transformer_mt;

use tch::nn::{self, ModuleT};

/// Which network (`vision`'s `model`), defined with the kind's declaration.
pub use layers::channels;
pub use repro_core::pipeline::kinds::Arch;

/// A built network and what the optimiser needs to know about its weights.
pub struct Model {
    pub net: Box<dyn ModuleT + Send>,
    /// VarStore names (e.g. "layer1.0.conv1.weight") of the conv weights whose output is consumed
    /// only by BatchNorm, i.e. the scale-invariant ("BN-preceded", docs/paper.md#e1) weights,
    /// sorted.
    pub scale_invariant: Vec<String>,
}

/// Build under path `p` (names mirror the PyTorch reference module names so state_dicts match).
pub fn build(arch: Arch, p: &nn::Path, classes: i64, width: f64) -> Model {
    let mut si = Vec::new();
    let net: Box<dyn ModuleT + Send> = match arch {
        Arch::SmallCnn => Box::new(small_cnn::SmallCnn::new(p, classes, width, &mut si)),
        Arch::ResNet18 => Box::new(resnet::ResNet::new(
            p,
            resnet::BlockKind::Basic,
            [2, 2, 2, 2],
            classes,
            width,
            &mut si,
        )),
        Arch::ResNet50 => Box::new(resnet::ResNet::new(
            p,
            resnet::BlockKind::Bottleneck,
            [3, 4, 6, 3],
            classes,
            width,
            &mut si,
        )),
        Arch::DenseNet121 => Box::new(densenet::DenseNet::new(
            p,
            [6, 12, 24, 16],
            channels(32, width),
            classes,
            &mut si,
        )),
    };
    si.sort();
    si.dedup();
    Model {
        net,
        scale_invariant: si,
    }
}

/// Trainable parameter count of a VarStore.
pub fn param_count(vs: &nn::VarStore) -> i64 {
    vs.trainable_variables()
        .iter()
        .map(|t| t.numel() as i64)
        .sum()
}
