//! Q-networks of the DQN stage (docs/paper.md#e6): MinAtar's (one 3×3 conv of 16 channels, a hidden
//! layer of 128, as in the `minatar` package's examples/dqn.py) and the Nature CNN (Mnih et al.
//! 2015) as dopamine builds it. Both take uint8 observations, N × C × H × W, and return N × A
//! action values.
//!
//! MinAtar's net is initialised as PyTorch initialises `Conv2d`/`Linear` (that example is PyTorch).
//! The Nature CNN follows dopamine's JAX network: 'SAME' padding (flax's default, so 84 → 21 → 11
//! → 11 and a 7744-wide flatten), weights from variance_scaling(1/√3, fan_in, uniform), zero
//! biases, and pixels divided by 255.

use tch::nn::{self, Module};
use tch::{Kind, Tensor};

use super::layers::linear;

/// Which Q-network (`dqn`'s `model`), defined with the kind's declaration.
pub use repro_core::pipeline::kinds::QNetArch;

/// A Q-network over observations of shape `input` = [C, H, W] with `actions` outputs, its
/// variables under `p` (names as the PyTorch twins in tests/python/models.py).
pub fn build(arch: QNetArch, p: &nn::Path, input: [i64; 3], actions: i64) -> Box<dyn Module> {
    match arch {
        QNetArch::MinAtar => Box::new(MinAtarNet::new(p, input, actions)),
        QNetArch::Nature => Box::new(NatureNet::new(p, input, actions)),
    }
}

/// conv(C→16, 3×3, stride 1, no padding) → ReLU → linear(16·(H−2)·(W−2) → 128) → ReLU →
/// linear(128 → A). The observation's 0/1 bytes are the input as they are.
#[derive(Debug)]
pub struct MinAtarNet {
    conv: nn::Conv2D,
    fc_hidden: nn::Linear,
    output: nn::Linear,
}

impl MinAtarNet {
    pub fn new(p: &nn::Path, [c, h, w]: [i64; 3], actions: i64) -> MinAtarNet {
        let bound = 1.0 / ((c * 9) as f64).sqrt();
        let uniform = nn::Init::Uniform {
            lo: -bound,
            up: bound,
        };
        let conv = nn::conv2d(
            p / "conv",
            c,
            16,
            3,
            nn::ConvConfig {
                ws_init: uniform,
                bs_init: uniform,
                ..Default::default()
            },
        );
        let flat = 16 * (h - 2) * (w - 2);
        MinAtarNet {
            conv,
            fc_hidden: linear(p / "fc_hidden", flat, 128),
            output: linear(p / "output", 128, actions),
        }
    }
}

impl Module for MinAtarNet {
    fn forward(&self, x: &Tensor) -> Tensor {
        x.to_kind(Kind::Float)
            .apply(&self.conv)
            .relu()
            .flatten(1, -1)
            .apply(&self.fc_hidden)
            .relu()
            .apply(&self.output)
    }
}

/// One convolution with TensorFlow/flax 'SAME' padding: out = ⌈in / stride⌉, the total padding
/// split with the extra pixel at the bottom/right.
#[derive(Debug)]
struct SameConv {
    conv: nn::Conv2D,
    k: i64,
    stride: i64,
}

impl SameConv {
    fn new(p: nn::Path, cin: i64, cout: i64, k: i64, stride: i64) -> SameConv {
        let conv = nn::conv2d(
            p,
            cin,
            cout,
            k,
            nn::ConvConfig {
                stride,
                ws_init: dopamine_init(cin * k * k),
                bs_init: nn::Init::Const(0.0),
                ..Default::default()
            },
        );
        SameConv { conv, k, stride }
    }

    fn pads(&self, size: i64) -> (i64, i64) {
        let out = (size + self.stride - 1) / self.stride;
        let total = ((out - 1) * self.stride + self.k - size).max(0);
        (total / 2, total - total / 2)
    }

    fn out_size(&self, size: i64) -> i64 {
        (size + self.stride - 1) / self.stride
    }

    fn forward(&self, x: &Tensor) -> Tensor {
        let size = x.size();
        let (top, bottom) = self.pads(size[2]);
        let (left, right) = self.pads(size[3]);
        x.constant_pad_nd([left, right, top, bottom])
            .apply(&self.conv)
    }
}

/// dopamine's `variance_scaling(scale=1/√3, mode='fan_in', distribution='uniform')`:
/// U(±√(3·scale/fan_in)).
fn dopamine_init(fan_in: i64) -> nn::Init {
    let bound = (3.0 / 3f64.sqrt() / fan_in as f64).sqrt();
    nn::Init::Uniform {
        lo: -bound,
        up: bound,
    }
}

/// The Nature CNN: conv 32 8×8/4 → conv 64 4×4/2 → conv 64 3×3/1 (ReLU after each, 'SAME') →
/// dense 512 → ReLU → dense A, on pixels / 255.
#[derive(Debug)]
pub struct NatureNet {
    convs: [SameConv; 3],
    fc: nn::Linear,
    output: nn::Linear,
}

impl NatureNet {
    pub fn new(p: &nn::Path, [c, h, w]: [i64; 3], actions: i64) -> NatureNet {
        let convs = [
            SameConv::new(p / "conv1", c, 32, 8, 4),
            SameConv::new(p / "conv2", 32, 64, 4, 2),
            SameConv::new(p / "conv3", 64, 64, 3, 1),
        ];
        let (oh, ow) = convs
            .iter()
            .fold((h, w), |(h, w), cv| (cv.out_size(h), cv.out_size(w)));
        let dense = |p: nn::Path, cin: i64, cout: i64| {
            nn::linear(
                p,
                cin,
                cout,
                nn::LinearConfig {
                    ws_init: dopamine_init(cin),
                    bs_init: Some(nn::Init::Const(0.0)),
                    bias: true,
                },
            )
        };
        NatureNet {
            fc: dense(p / "fc", 64 * oh * ow, 512),
            output: dense(p / "output", 512, actions),
            convs,
        }
    }
}

impl Module for NatureNet {
    fn forward(&self, x: &Tensor) -> Tensor {
        let x = self
            .convs
            .iter()
            .fold(x.to_kind(Kind::Float) / 255.0, |x, c| c.forward(&x).relu());
        x.flatten(1, -1).apply(&self.fc).relu().apply(&self.output)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_padding_matches_tensorflows_arithmetic() {
        let vs = nn::VarStore::new(tch::Device::Cpu);
        let c = SameConv::new(vs.root() / "c", 1, 1, 4, 2);
        // TF: out = ceil(21 / 2) = 11, total = (11 − 1)·2 + 4 − 21 = 3 → 1 before, 2 after.
        assert_eq!(c.pads(21), (1, 2));
        assert_eq!(c.out_size(21), 11);
        let c = SameConv::new(vs.root() / "d", 1, 1, 8, 4);
        assert_eq!((c.pads(84), c.out_size(84)), ((2, 2), 21));
    }

    #[test]
    fn parse_names_the_valid_networks() {
        assert_eq!(QNetArch::parse("nature").unwrap(), QNetArch::Nature);
        let e = QNetArch::parse("impala").unwrap_err().to_string();
        assert!(e.contains("minatar, nature"));
    }
}
