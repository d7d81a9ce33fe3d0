//! Models, built with tch's `nn` modules: the architecture names ([`Arch`]), one entry point
//! ([`build`]) that returns the network together with the names of its scale-invariant weights
//! ([`Model`]), the width multiplier's arithmetic ([`channels`]), and the layer constructors the
//! networks share, initialised as PyTorch initialises them (tch's defaults differ: its
//! conv/linear weights use Kaiming-uniform with gain √2 and its BatchNorm weights U(0, 1)).
//!
//! Variable names mirror the PyTorch reference modules (kuangliu/pytorch-cifar naming), so a
//! `VarStore` saved as safetensors loads into them with `load_state_dict` (see
//! `tests/python/models.py`).

pub mod beam_search;
pub mod densenet;
pub mod dqn;
pub mod resnet;
pub mod small_cnn;
pub mod transformer_lm;
pub mod transformer_mt;

use tch::Tensor;
use tch::nn::{self, ModuleT};

/// Which network (`vision`'s `model`), defined with the kind's declaration.
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

/// Channels after the width multiplier: max(1, round(base * width)).
pub fn channels(base: i64, width: f64) -> i64 {
    ((base as f64 * width).round() as i64).max(1)
}

/// Trainable parameter count of a VarStore.
pub fn param_count(vs: &nn::VarStore) -> i64 {
    vs.trainable_variables()
        .iter()
        .map(|t| t.numel() as i64)
        .sum()
}

/// A bias-free conv, weights U(±1/√fan_in) as PyTorch's `Conv2d` (kaiming_uniform, a = √5).
/// Every conv in these nets feeds BatchNorm only, so its weight name goes into `si`.
pub(crate) fn conv(
    p: nn::Path,
    cin: i64,
    cout: i64,
    k: i64,
    stride: i64,
    padding: i64,
    si: &mut Vec<String>,
) -> nn::Conv2D {
    let bound = 1.0 / ((cin * k * k) as f64).sqrt();
    si.push(p.path("weight"));
    nn::conv2d(
        p,
        cin,
        cout,
        k,
        nn::ConvConfig {
            stride,
            padding,
            bias: false,
            ws_init: nn::Init::Uniform {
                lo: -bound,
                up: bound,
            },
            ..Default::default()
        },
    )
}

/// BatchNorm2d with PyTorch's defaults: weight 1, bias 0, eps 1e-5, momentum 0.1.
pub(crate) fn bn(p: nn::Path, c: i64) -> nn::BatchNorm {
    nn::batch_norm2d(
        p,
        c,
        nn::BatchNormConfig {
            ws_init: nn::Init::Const(1.0),
            bs_init: nn::Init::Const(0.0),
            ..Default::default()
        },
    )
}

/// Linear layer as PyTorch's `Linear`: weight and bias U(±1/√fan_in).
pub(crate) fn linear(p: nn::Path, cin: i64, cout: i64) -> nn::Linear {
    let bound = 1.0 / (cin as f64).sqrt();
    nn::linear(
        p,
        cin,
        cout,
        nn::LinearConfig {
            ws_init: nn::Init::Uniform {
                lo: -bound,
                up: bound,
            },
            bs_init: Some(nn::Init::Uniform {
                lo: -bound,
                up: bound,
            }),
            bias: true,
        },
    )
}

/// Global average pool to [N, C].
pub(crate) fn global_avg_pool(x: &Tensor) -> Tensor {
    x.adaptive_avg_pool2d([1, 1]).flatten(1, -1)
}

/// A true 2×2 average pool (tch's `avg_pool2d_default` sums: it passes divisor_override = 1).
pub(crate) fn avg_pool2(x: &Tensor) -> Tensor {
    x.avg_pool2d([2, 2], [2, 2], [0, 0], false, true, None)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arch_names_round_trip_and_errors_list_values() {
        for a in Arch::ALL {
            assert_eq!(Arch::parse(a.name()).unwrap(), a);
        }
        let e = Arch::parse("resnet34").unwrap_err().to_string();
        assert!(e.contains("resnet34") && e.contains("densenet121") && e.contains("small_cnn"));
    }

    #[test]
    fn channels_rounds_and_clamps() {
        assert_eq!(channels(64, 1.0), 64);
        assert_eq!(channels(64, 0.25), 16);
        assert_eq!(channels(32, 0.125), 4);
        assert_eq!(channels(10, 0.25), 3); // 2.5 rounds up
        assert_eq!(channels(16, 0.01), 1);
    }

    #[test]
    fn avg_pool2_averages() {
        let x = Tensor::from_slice(&[1f32, 2., 3., 4.]).view([1, 1, 2, 2]);
        let y = avg_pool2(&x);
        assert_eq!(y.double_value(&[0, 0, 0, 0]), 2.5);
    }
}
