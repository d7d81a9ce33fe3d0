//! A small VGG-style CNN for 32×32 images: three conv–BN–ReLU blocks of width w, 2w, 4w (the
//! first two followed by 2×2 max-pool), global average pool, linear classifier. The engine's
//! first real model; the paper's ResNets and DenseNet live beside it.

use tch::nn::{self, ModuleT};

fn block(p: nn::Path, cin: i64, cout: i64) -> nn::SequentialT {
    let conv = nn::ConvConfig {
        padding: 1,
        bias: false,
        ..Default::default()
    };
    nn::seq_t()
        .add(nn::conv2d(&p / "conv", cin, cout, 3, conv))
        .add(nn::batch_norm2d(&p / "bn", cout, Default::default()))
        .add_fn(|x| x.relu())
}

/// The network; `width` is the first block's channel count.
pub fn small_cnn(p: &nn::Path, classes: i64, width: i64) -> impl ModuleT + use<> {
    nn::seq_t()
        .add(block(p / "b1", 3, width))
        .add_fn(|x| x.max_pool2d_default(2))
        .add(block(p / "b2", width, 2 * width))
        .add_fn(|x| x.max_pool2d_default(2))
        .add(block(p / "b3", 2 * width, 4 * width))
        .add_fn(|x| x.adaptive_avg_pool2d([1, 1]).flatten(1, -1))
        .add(nn::linear(p / "fc", 4 * width, classes, Default::default()))
}

/// Parameters of `small_cnn`, by the architecture's arithmetic (tested against the built net).
pub fn small_cnn_param_count(classes: i64, w: i64) -> i64 {
    let conv = |cin: i64, cout: i64| cin * cout * 9 + 2 * cout;
    conv(3, w) + conv(w, 2 * w) + conv(2 * w, 4 * w) + 4 * w * classes + classes
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shapes_and_parameter_count() {
        let vs = nn::VarStore::new(tch::Device::Cpu);
        let net = small_cnn(&vs.root(), 10, 8);
        let y = net.forward_t(
            &tch::Tensor::zeros([2, 3, 32, 32], (tch::Kind::Float, tch::Device::Cpu)),
            false,
        );
        assert_eq!(y.size(), vec![2, 10]);
        let n: i64 = vs
            .trainable_variables()
            .iter()
            .map(|t| t.numel() as i64)
            .sum();
        assert_eq!(n, small_cnn_param_count(10, 8));
    }
}
