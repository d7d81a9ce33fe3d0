//! CIFAR ResNet-18 and ResNet-50 (kuangliu/pytorch-cifar): a 3×3 stride-1 stem conv of 64
//! channels without max-pool, four stages of BasicBlocks [2,2,2,2] or Bottlenecks (expansion 4)
//! [3,4,6,3] at widths 64,128,256,512 (times the width multiplier), BatchNorm after every
//! bias-free conv, a conv1×1+BN projection shortcut when the shape changes, global average pool
//! and a linear classifier. Every conv feeds only its BatchNorm, so every conv weight (shortcuts
//! included) is scale-invariant; the linear layer is not.

use tch::Tensor;
use tch::nn::{self, ModuleT};

use super::layers::{bn, channels, conv, global_avg_pool, linear};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BlockKind {
    /// Two 3×3 convs; expansion 1.
    Basic,
    /// 1×1, 3×3 (strided), 1×1 to 4× the planes; expansion 4.
    Bottleneck,
}

impl BlockKind {
    fn expansion(self) -> i64 {
        match self {
            BlockKind::Basic => 1,
            BlockKind::Bottleneck => 4,
        }
    }
}

/// Conv followed by its BatchNorm.
#[derive(Debug)]
struct ConvBn {
    conv: nn::Conv2D,
    bn: nn::BatchNorm,
}

impl ConvBn {
    #[allow(clippy::too_many_arguments)]
    fn new(
        p: &nn::Path,
        conv_name: &str,
        bn_name: &str,
        cin: i64,
        cout: i64,
        k: i64,
        stride: i64,
        si: &mut Vec<String>,
    ) -> ConvBn {
        ConvBn {
            conv: conv(p / conv_name, cin, cout, k, stride, k / 2, si),
            bn: bn(p / bn_name, cout),
        }
    }

    fn forward_t(&self, x: &Tensor, train: bool) -> Tensor {
        x.apply(&self.conv).apply_t(&self.bn, train)
    }
}

/// One residual block: its conv–BN pairs in order (ReLU between them), and the shortcut.
#[derive(Debug)]
struct Block {
    layers: Vec<ConvBn>,
    shortcut: Option<ConvBn>,
}

impl Block {
    fn new(
        p: &nn::Path,
        kind: BlockKind,
        cin: i64,
        planes: i64,
        stride: i64,
        si: &mut Vec<String>,
    ) -> Block {
        let cout = kind.expansion() * planes;
        let layers = match kind {
            BlockKind::Basic => vec![
                ConvBn::new(p, "conv1", "bn1", cin, planes, 3, stride, si),
                ConvBn::new(p, "conv2", "bn2", planes, planes, 3, 1, si),
            ],
            BlockKind::Bottleneck => vec![
                ConvBn::new(p, "conv1", "bn1", cin, planes, 1, 1, si),
                ConvBn::new(p, "conv2", "bn2", planes, planes, 3, stride, si),
                ConvBn::new(p, "conv3", "bn3", planes, cout, 1, 1, si),
            ],
        };
        let shortcut = (stride != 1 || cin != cout)
            .then(|| ConvBn::new(&(p / "shortcut"), "0", "1", cin, cout, 1, stride, si));
        Block { layers, shortcut }
    }

    fn forward_t(&self, x: &Tensor, train: bool) -> Tensor {
        let mut out = x.shallow_clone();
        for (i, l) in self.layers.iter().enumerate() {
            if i > 0 {
                out = out.relu();
            }
            out = l.forward_t(&out, train);
        }
        let skip = match &self.shortcut {
            Some(s) => s.forward_t(x, train),
            None => x.shallow_clone(),
        };
        (out + skip).relu()
    }
}

/// The network.
#[derive(Debug)]
pub struct ResNet {
    stem: ConvBn,
    blocks: Vec<Block>,
    linear: nn::Linear,
}

impl ResNet {
    /// `blocks` per stage; stage widths 64·2^i scaled by `width` (see [`channels`]).
    pub fn new(
        p: &nn::Path,
        kind: BlockKind,
        blocks: [usize; 4],
        classes: i64,
        width: f64,
        si: &mut Vec<String>,
    ) -> ResNet {
        let mut cin = channels(64, width);
        let stem = ConvBn::new(p, "conv1", "bn1", 3, cin, 3, 1, si);
        let mut all = Vec::new();
        for (stage, &n) in blocks.iter().enumerate() {
            let planes = channels(64 << stage, width);
            let lp = p / format!("layer{}", stage + 1);
            for i in 0..n {
                let stride = if stage > 0 && i == 0 { 2 } else { 1 };
                all.push(Block::new(&(&lp / i), kind, cin, planes, stride, si));
                cin = kind.expansion() * planes;
            }
        }
        ResNet {
            stem,
            blocks: all,
            linear: linear(p / "linear", cin, classes),
        }
    }
}

impl ModuleT for ResNet {
    fn forward_t(&self, x: &Tensor, train: bool) -> Tensor {
        let mut out = self.stem.forward_t(x, train).relu();
        for b in &self.blocks {
            out = b.forward_t(&out, train);
        }
        global_avg_pool(&out).apply(&self.linear)
    }
}
