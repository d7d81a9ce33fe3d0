//! CIFAR DenseNet-121 (kuangliu/pytorch-cifar `DenseNet121`): growth rate k (32 times the width
//! multiplier), dense blocks of 6-12-24-16 layers, each BN-ReLU-conv1×1(4k)-BN-ReLU-conv3×3(k)
//! with its output concatenated in front of its input; transitions BN-ReLU-conv1×1 (compression
//! 0.5)-avgpool2; a 3×3 stem conv of 2k channels without max-pool; final BN-ReLU, global
//! average pool (adaptive, so 32×32 and 64×64 inputs both work) and a linear classifier.
//!
//! Scale invariance: every conv weight is scale-invariant. A dense layer's conv1 feeds only its
//! bn2; every other conv (stem, dense conv2, transition) feeds, through concatenation and 2×2
//! average pooling only — both act channel by channel and commute with a positive scale — the
//! per-channel BatchNorms of all later layers, the next transition and the final BN. Nothing
//! else reads them, so scaling such a weight changes nothing after those BNs (with batch
//! statistics). The linear classifier is not scale-invariant.

use tch::Tensor;
use tch::nn::{self, ModuleT};

use super::layers::{avg_pool2, bn, conv, global_avg_pool, linear};

#[derive(Debug)]
struct DenseLayer {
    bn1: nn::BatchNorm,
    conv1: nn::Conv2D,
    bn2: nn::BatchNorm,
    conv2: nn::Conv2D,
}

impl DenseLayer {
    fn new(p: &nn::Path, cin: i64, growth: i64, si: &mut Vec<String>) -> DenseLayer {
        DenseLayer {
            bn1: bn(p / "bn1", cin),
            conv1: conv(p / "conv1", cin, 4 * growth, 1, 1, 0, si),
            bn2: bn(p / "bn2", 4 * growth),
            conv2: conv(p / "conv2", 4 * growth, growth, 3, 1, 1, si),
        }
    }

    fn forward_t(&self, x: &Tensor, train: bool) -> Tensor {
        let out = x
            .apply_t(&self.bn1, train)
            .relu()
            .apply(&self.conv1)
            .apply_t(&self.bn2, train)
            .relu()
            .apply(&self.conv2);
        Tensor::cat(&[&out, x], 1)
    }
}

#[derive(Debug)]
struct Transition {
    bn: nn::BatchNorm,
    conv: nn::Conv2D,
}

impl Transition {
    fn forward_t(&self, x: &Tensor, train: bool) -> Tensor {
        avg_pool2(&x.apply_t(&self.bn, train).relu().apply(&self.conv))
    }
}

/// The network.
#[derive(Debug)]
pub struct DenseNet {
    conv1: nn::Conv2D,
    dense: Vec<Vec<DenseLayer>>,
    trans: Vec<Transition>,
    bn: nn::BatchNorm,
    linear: nn::Linear,
}

impl DenseNet {
    /// `blocks` dense layers per block, growth rate `growth`, compression 0.5.
    pub fn new(
        p: &nn::Path,
        blocks: [usize; 4],
        growth: i64,
        classes: i64,
        si: &mut Vec<String>,
    ) -> DenseNet {
        let mut c = 2 * growth;
        let conv1 = conv(p / "conv1", 3, c, 3, 1, 1, si);
        let mut dense = Vec::new();
        let mut trans = Vec::new();
        for (b, &n) in blocks.iter().enumerate() {
            let dp = p / format!("dense{}", b + 1);
            let mut layers = Vec::new();
            for i in 0..n {
                layers.push(DenseLayer::new(&(&dp / i), c, growth, si));
                c += growth;
            }
            dense.push(layers);
            if b + 1 < blocks.len() {
                let tp = p / format!("trans{}", b + 1);
                let out = c / 2; // floor(c * 0.5)
                trans.push(Transition {
                    bn: bn(&tp / "bn", c),
                    conv: conv(&tp / "conv", c, out, 1, 1, 0, si),
                });
                c = out;
            }
        }
        DenseNet {
            conv1,
            dense,
            trans,
            bn: bn(p / "bn", c),
            linear: linear(p / "linear", c, classes),
        }
    }
}

impl ModuleT for DenseNet {
    fn forward_t(&self, x: &Tensor, train: bool) -> Tensor {
        let mut out = x.apply(&self.conv1);
        for (b, layers) in self.dense.iter().enumerate() {
            for l in layers {
                out = l.forward_t(&out, train);
            }
            if let Some(t) = self.trans.get(b) {
                out = t.forward_t(&out, train);
            }
        }
        global_avg_pool(&out.apply_t(&self.bn, train).relu()).apply(&self.linear)
    }
}
