//! A small VGG-style CNN for 32×32 images: three conv3×3–BN–ReLU blocks of c, 2c and 4c channels
//! with c = channels(32, width) (the first two blocks followed by 2×2 max-pool), global average
//! pool, linear classifier. The engine's first, cheap model; the paper's ResNets and DenseNet
//! live beside it. Its three conv weights each feed only their BN, so all are scale-invariant.

use tch::Tensor;
use tch::nn::{self, ModuleT};

use super::layers::{bn, channels, conv, global_avg_pool, linear};

#[derive(Debug)]
struct Block {
    conv: nn::Conv2D,
    bn: nn::BatchNorm,
}

impl Block {
    fn new(p: nn::Path, cin: i64, cout: i64, si: &mut Vec<String>) -> Block {
        Block {
            conv: conv(&p / "conv", cin, cout, 3, 1, 1, si),
            bn: bn(&p / "bn", cout),
        }
    }

    fn forward_t(&self, x: &Tensor, train: bool) -> Tensor {
        x.apply(&self.conv).apply_t(&self.bn, train).relu()
    }
}

/// The network; variables b1.conv, b1.bn, …, b3.bn, fc.
#[derive(Debug)]
pub struct SmallCnn {
    blocks: [Block; 3],
    fc: nn::Linear,
}

impl SmallCnn {
    pub fn new(p: &nn::Path, classes: i64, width: f64, si: &mut Vec<String>) -> SmallCnn {
        let w = channels(32, width);
        SmallCnn {
            blocks: [
                Block::new(p / "b1", 3, w, si),
                Block::new(p / "b2", w, 2 * w, si),
                Block::new(p / "b3", 2 * w, 4 * w, si),
            ],
            fc: linear(p / "fc", 4 * w, classes),
        }
    }
}

impl ModuleT for SmallCnn {
    fn forward_t(&self, x: &Tensor, train: bool) -> Tensor {
        let x = self.blocks[0].forward_t(x, train).max_pool2d_default(2);
        let x = self.blocks[1].forward_t(&x, train).max_pool2d_default(2);
        let x = self.blocks[2].forward_t(&x, train);
        global_avg_pool(&x).apply(&self.fc)
    }
}

/// Parameters of the small CNN, by the architecture's arithmetic (tested against the built net).
pub fn small_cnn_param_count(classes: i64, width: f64) -> i64 {
    let w = channels(32, width);
    // Bias-free conv plus its BN's weight and bias.
    let conv = |cin: i64, cout: i64| cin * cout * 9 + 2 * cout;
    conv(3, w) + conv(w, 2 * w) + conv(2 * w, 4 * w) + 4 * w * classes + classes
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::nn::{Arch, build, param_count};

    #[test]
    fn shapes_parameter_count_and_scale_invariant_names() {
        let vs = nn::VarStore::new(tch::Device::Cpu);
        let m = build(Arch::SmallCnn, &vs.root(), 10, 0.25);
        let y = m.net.forward_t(
            &Tensor::zeros([2, 3, 32, 32], (tch::Kind::Float, tch::Device::Cpu)),
            false,
        );
        assert_eq!(y.size(), vec![2, 10]);
        assert_eq!(param_count(&vs), small_cnn_param_count(10, 0.25));
        assert_eq!(
            vs.root().sub("b1").sub("conv").path("weight"),
            "b1.conv.weight"
        );
        assert_eq!(
            m.scale_invariant,
            ["b1.conv.weight", "b2.conv.weight", "b3.conv.weight"]
        );
        // Width 0.25 → 8, 16, 32 channels.
        assert_eq!(vs.variables()["b3.conv.weight"].size(), vec![32, 16, 3, 3]);
    }
}
