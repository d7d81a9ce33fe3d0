//! The layer constructors the networks share, initialised as PyTorch initialises them (tch's
//! defaults differ: its conv/linear weights use Kaiming-uniform with gain √2 and its BatchNorm
//! weights U(0, 1)), and the width multiplier's arithmetic ([`channels`]).

use tch::Tensor;
use tch::nn;

/// Channels after the width multiplier: max(1, round(base * width)).
pub fn channels(base: i64, width: f64) -> i64 {
    ((base as f64 * width).round() as i64).max(1)
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
