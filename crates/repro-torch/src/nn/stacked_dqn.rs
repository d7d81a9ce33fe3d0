//! The DQN Q-networks of N independent runs ("members" of a fused group, issue 30) as one module
//! whose every variable has a leading run axis of size N: one batched kernel per layer where N
//! solo nets would launch N tiny ones. Member i's slice of each variable is, name for name and
//! shape for shape, the solo net's variable ([`super::dqn`]), so member i starts where its solo
//! run starts ([`StackedQNet::from_members`]) and saves the files a solo run saves
//! ([`StackedQNet::member_tensors`]).
//!
//! Layout: conv weights [N, Cout, Cin, k, k] and biases [N, Cout]; dense weights [N, out, in]
//! (each member's slice is the solo `Linear`'s [out, in]) and biases [N, out]. The convolutions
//! run as one grouped convolution (input [B, N·C, H, W], weight viewed [N·Cout, Cin, k, k],
//! `groups = N`; the Nature net's 'SAME' padding as the solo `SameConv` computes it). The dense
//! layers run as `baddbmm` on transposed activations, yᵀ = b + W·xᵀ with xᵀ [N, in, B], so the
//! weight gradient comes out of the batched matmul in the weight's own layout: x·Wᵀ made it
//! [N, in, out] and its transposed accumulation cost 1.6× the dense layers' CPU time (hidden
//! layer 1024 → 128, batch 32, N = 25: 12.8 ms against 8.3 ms). The flatten is per member over
//! [Cout, H′, W′], the solo net's order.
//!
//! Why a grouped convolution: measured on CPU (`examples/bench_stacked_qnet.rs`: MinAtar net,
//! input [C, 10, 10], batch 32, 6 actions, forward + backward of a scalar loss, 1 thread, best
//! CPU time of 15 interleaved repeats of 10 steps, on a shared 2-vCPU AMD EPYC VM) against
//! im2col (unfold) + one `baddbmm` ([N, 16, C·9] @ [N, C·9, B·64]), im2col with the weights
//! broadcast over the batch (`matmul` [N, 1, 16, C·9] @ [N, B, C·9, 64]) and, for reference,
//! N solo nets one after another (one autograd graph). ms per step, all N members:
//!
//! | oneDNN | C  | N   | grouped | im2col | im2col, broadcast | N solo nets |
//! |--------|----|-----|---------|--------|-------------------|-------------|
//! | on     | 4  | 1   | 0.96    | 0.91   | 0.91              | 0.80        |
//! | on     | 4  | 5   | 4.74    | 4.61   | 4.59              | 3.97        |
//! | on     | 4  | 25  | 25.2    | 25.1   | 26.7              | 24.0        |
//! | on     | 4  | 125 | 178     | 173    | 154               | 134         |
//! | off    | 4  | 1   | 1.11    | 0.95   | 0.94              | 0.92        |
//! | off    | 4  | 5   | 5.60    | 4.50   | 4.87              | 4.82        |
//! | off    | 4  | 25  | 28.0    | 24.0   | 26.1              | 25.7        |
//! | off    | 4  | 125 | 189     | 168    | 156               | 131         |
//! | on     | 10 | 1   | 1.06    | 1.14   | 1.16              | 0.87        |
//! | on     | 10 | 5   | 6.31    | 6.13   | 5.78              | 4.45        |
//! | on     | 10 | 25  | 31.2    | 34.3   | 34.8              | 25.8        |
//! | on     | 10 | 125 | 202     | 277    | 233               | 134         |
//! | off    | 10 | 1   | 1.31    | 1.32   | 1.25              | 1.10        |
//! | off    | 10 | 5   | 6.98    | 6.35   | 6.42              | 5.98        |
//! | off    | 10 | 25  | 34.8    | 33.8   | 35.6              | 32.1        |
//! | off    | 10 | 125 | 207     | 284    | 240               | 158         |
//!
//! (oneDNN off is the bitwise runs' setting.) No form wins everywhere: im2col is up to 20 %
//! faster at C = 4 without oneDNN, the grouped convolution up to 27 % faster at C = 10, and the
//! same grouped code timed twice in one run differed by up to 25 % at N = 125, so the spread
//! between the forms is of the order of this machine's noise. The grouped convolution is kept:
//! at most 24 % behind the best stacked form, one code path for both nets (no im2col buffer for
//! the Nature net's 8×8 kernels), and on a GPU it is cuDNN's grouped convolution. On one CPU
//! thread none of the stacked forms is faster than the N solo nets (whose working set is one
//! member's 0.5 MB hidden weight at a time): fusing pays on a GPU, where N tiny kernels become
//! one.

use anyhow::{Context, ensure};
use tch::nn;
use tch::{Kind, Tensor};

use super::dqn::QNetArch;

/// One convolution of the net: its VarStore name, channels, kernel, stride and padding rule.
#[derive(Debug, Clone, Copy)]
struct ConvSpec {
    name: &'static str,
    cin: i64,
    cout: i64,
    k: i64,
    stride: i64,
    /// TensorFlow/flax 'SAME' (the Nature CNN); otherwise no padding (MinAtar's).
    same: bool,
}

impl ConvSpec {
    /// 'SAME' padding before and after one spatial size, as `dqn::SameConv::pads`.
    fn pads(&self, size: i64) -> (i64, i64) {
        if !self.same {
            return (0, 0);
        }
        let out = (size + self.stride - 1) / self.stride;
        let total = ((out - 1) * self.stride + self.k - size).max(0);
        (total / 2, total - total / 2)
    }

    fn out_size(&self, size: i64) -> i64 {
        if self.same {
            (size + self.stride - 1) / self.stride
        } else {
            (size - self.k) / self.stride + 1
        }
    }
}

/// The solo net's layers: its convolutions and its two dense layers (name, in, out).
fn layers(
    arch: QNetArch,
    [c, h, w]: [i64; 3],
    actions: i64,
) -> (Vec<ConvSpec>, [(&'static str, i64, i64); 2]) {
    let conv = |name, cin, cout, k, stride, same| ConvSpec {
        name,
        cin,
        cout,
        k,
        stride,
        same,
    };
    let (convs, hidden_name, hidden) = match arch {
        QNetArch::MinAtar => (vec![conv("conv", c, 16, 3, 1, false)], "fc_hidden", 128),
        QNetArch::Nature => (
            vec![
                conv("conv1", c, 32, 8, 4, true),
                conv("conv2", 32, 64, 4, 2, true),
                conv("conv3", 64, 64, 3, 1, true),
            ],
            "fc",
            512,
        ),
    };
    let (oh, ow) = convs
        .iter()
        .fold((h, w), |(h, w), cv| (cv.out_size(h), cv.out_size(w)));
    let flat = convs.last().map_or(c, |cv| cv.cout) * oh * ow;
    (
        convs,
        [(hidden_name, flat, hidden), ("output", hidden, actions)],
    )
}

/// A stacked convolution: weight [N, Cout, Cin, k, k], bias [N, Cout].
#[derive(Debug)]
struct Conv {
    spec: ConvSpec,
    ws: Tensor,
    bs: Tensor,
}

/// A stacked dense layer: weight [N, out, in], bias [N, out].
#[derive(Debug)]
struct Dense {
    name: &'static str,
    ws: Tensor,
    bs: Tensor,
}

impl Dense {
    /// xᵀ [N, in, B] → yᵀ [N, out, B] = b + W·xᵀ (the module doc says why transposed).
    fn forward(&self, xt: &Tensor) -> Tensor {
        self.bs.unsqueeze(-1).baddbmm(&self.ws, xt, 1.0, 1.0)
    }
}

/// N members' Q-networks (MinAtar's or the Nature CNN) as one module with a leading run axis.
#[derive(Debug)]
pub struct StackedQNet {
    arch: QNetArch,
    n: i64,
    input: [i64; 3],
    convs: Vec<Conv>,
    hidden: Dense,
    output: Dense,
}

impl StackedQNet {
    /// The stacked variables live in `vs` (names as the solo net's, shapes with a leading N);
    /// their values are copied from the members' solo VarStores, each built by
    /// `nn::dqn::build(arch, &member.root(), input, actions)` under that member's own seed, so
    /// member i starts exactly where a solo run of it starts. Nothing here draws from libtorch's
    /// generators. Errors when there are no members, when a member's variables are not the solo
    /// net's (names and shapes), or when `vs` already holds one of the names.
    pub fn from_members(
        vs: &nn::VarStore,
        arch: QNetArch,
        input: [i64; 3],
        actions: i64,
        members: &[nn::VarStore],
    ) -> anyhow::Result<StackedQNet> {
        ensure!(
            !members.is_empty(),
            "a stacked Q-network needs at least one member"
        );
        let n = members.len() as i64;
        let (conv_specs, [hidden, output]) = layers(arch, input, actions);
        let expected = solo_shapes(&conv_specs, [hidden, output]);
        let member_vars: Vec<_> = members.iter().map(|m| m.variables()).collect();
        for (i, vars) in member_vars.iter().enumerate() {
            let mut names: Vec<&String> = vars.keys().collect();
            names.sort();
            let mut want: Vec<&String> = expected.iter().map(|(k, _)| k).collect();
            want.sort();
            ensure!(
                names == want,
                "member {i}: variables {names:?}, expected the solo {arch:?} net's {want:?} \
                 (built under the VarStore's root)"
            );
            for (name, shape) in &expected {
                let got = vars[name].size();
                ensure!(
                    &got == shape,
                    "member {i}: {name} has shape {got:?}, the solo net's is {shape:?}"
                );
            }
        }
        let existing = vs.variables();
        if let Some((name, _)) = expected.iter().find(|(k, _)| existing.contains_key(k)) {
            anyhow::bail!("the stacked VarStore already holds a variable {name}");
        }

        // A trainable variable [N, shape...] under `name`, member i's slice copied from its store.
        let stacked = |name: &str| -> anyhow::Result<Tensor> {
            let (layer, leaf) = name.rsplit_once('.').context("a layer.leaf name")?;
            let shape = &expected
                .iter()
                .find(|(k, _)| k == name)
                .context("a solo name")?
                .1;
            let dims: Vec<i64> = std::iter::once(n).chain(shape.iter().copied()).collect();
            let t = (vs.root() / layer).var(leaf, &dims, nn::Init::Const(0.0));
            tch::no_grad(|| {
                for (i, vars) in member_vars.iter().enumerate() {
                    t.get(i as i64).copy_(&vars[name]);
                }
            });
            Ok(t)
        };
        let convs = conv_specs
            .into_iter()
            .map(|spec| {
                Ok(Conv {
                    ws: stacked(&format!("{}.weight", spec.name))?,
                    bs: stacked(&format!("{}.bias", spec.name))?,
                    spec,
                })
            })
            .collect::<anyhow::Result<_>>()?;
        let dense = |name: &'static str| -> anyhow::Result<Dense> {
            Ok(Dense {
                name,
                ws: stacked(&format!("{name}.weight"))?,
                bs: stacked(&format!("{name}.bias"))?,
            })
        };
        Ok(StackedQNet {
            arch,
            n,
            input,
            convs,
            hidden: dense(hidden.0)?,
            output: dense(output.0)?,
        })
    }

    /// N, the number of members.
    pub fn members(&self) -> usize {
        self.n as usize
    }

    /// x: [N, B, C, H, W] uint8 (or float) → Q-values [N, B, A] float; member i's slice is its
    /// solo net's forward on x[i].
    pub fn forward(&self, x: &Tensor) -> Tensor {
        let size = x.size();
        let [c, h, w] = self.input;
        assert!(
            size.len() == 5 && size[0] == self.n && size[2..] == [c, h, w],
            "stacked Q-network input {size:?}, expected [{}, B, {c}, {h}, {w}]",
            self.n
        );
        let b = size[1];
        let x = x.to_kind(Kind::Float);
        let x = match self.arch {
            QNetArch::MinAtar => x,
            QNetArch::Nature => x / 255.0,
        };
        // [B, N·C, H, W]: member i's channels are the i-th group.
        let mut y = x.transpose(0, 1).reshape([b, self.n * c, h, w]);
        for conv in &self.convs {
            let s = conv.spec;
            let dims = y.size();
            let (top, bottom) = s.pads(dims[2]);
            let (left, right) = s.pads(dims[3]);
            if top + bottom + left + right > 0 {
                y = y.constant_pad_nd([left, right, top, bottom]);
            }
            y = y
                .conv2d(
                    &conv.ws.reshape([self.n * s.cout, s.cin, s.k, s.k]),
                    Some(conv.bs.reshape([self.n * s.cout])),
                    [s.stride, s.stride],
                    [0, 0],
                    [1, 1],
                    self.n,
                )
                .relu();
        }
        // [B, N, Cout·H′·W′] → [N, F, B], each member's flatten in the solo net's order.
        let y = y.reshape([b, self.n, -1]).permute([1, 2, 0]);
        let h = self.hidden.forward(&y).relu();
        self.output.forward(&h).transpose(1, 2).contiguous()
    }

    /// Member i's variables under the solo net's names and shapes (copies, detached), to save as
    /// that member's safetensors: the same file layout a solo run writes, loadable by the solo
    /// net.
    pub fn member_tensors(&self, i: usize) -> Vec<(String, Tensor)> {
        assert!(i < self.members(), "member {i} of {}", self.n);
        let i = i as i64;
        let convs = self.convs.iter().map(|c| (c.spec.name, &c.ws, &c.bs));
        let dense = [&self.hidden, &self.output]
            .into_iter()
            .map(|d| (d.name, &d.ws, &d.bs));
        convs
            .chain(dense)
            .flat_map(|(name, ws, bs)| {
                [
                    (format!("{name}.weight"), ws.get(i).detach().copy()),
                    (format!("{name}.bias"), bs.get(i).detach().copy()),
                ]
            })
            .collect()
    }
}

/// The solo net's variables: (name, shape) in layer order.
fn solo_shapes(convs: &[ConvSpec], dense: [(&str, i64, i64); 2]) -> Vec<(String, Vec<i64>)> {
    let convs = convs.iter().flat_map(|c| {
        [
            (format!("{}.weight", c.name), vec![c.cout, c.cin, c.k, c.k]),
            (format!("{}.bias", c.name), vec![c.cout]),
        ]
    });
    let dense = dense.into_iter().flat_map(|(name, cin, cout)| {
        [
            (format!("{name}.weight"), vec![cout, cin]),
            (format!("{name}.bias"), vec![cout]),
        ]
    });
    convs.chain(dense).collect()
}
