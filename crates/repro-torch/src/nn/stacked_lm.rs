//! N independent [`TransformerLm`]s of one config ("members" of a fused group, issue 30) as one
//! module whose every parameter has a leading run axis of size N, so one batched kernel does what
//! N small ones did.
//!
//! Variables are stored in the caller's VarStore under the solo model's names
//! (`encoder.weight`, `transformer_encoder.layers.{l}.self_attn.in_proj_weight`, …) with the solo
//! shapes prefixed by N; [`StackedLm::from_members`] fills them from the members' solo VarStores
//! (each built by [`TransformerLm::new`] under the member's own seed), so member i starts exactly
//! where its solo run starts, and [`StackedLm::member_tensors`] gives member i back under the solo
//! names and shapes (what a solo run saves as safetensors).
//!
//! Member i's math is the solo model's, op for op where the stack allows:
//! - **Embedding.** One gather from the `[N·V, d]` view of `encoder.weight` at `token + i·V`
//!   (the solo `embedding`, exact), times √d, plus the same sinusoidal table.
//! - **Linears.** `baddbmm(bias[N,1,out], x[N,M,in], Wᵀ[N,in,out])` where the solo model does
//!   `addmm(bias, x[M,in], Wᵀ)` on its flattened `[seq·batch, in]` input: the same sums, a
//!   different GEMM (agreement to float rounding, not bitwise).
//! - **Attention.** The solo model's explicit math with N folded into the batch of the per-head
//!   product (`[N·batch·heads, seq, head_dim]`, member-major): `q·kᵀ / √head_dim + causal mask`,
//!   float softmax, dropout on the weights, `· v`, then `out_proj`.
//! - **LayerNorm.** `layer_norm` with a constant γ = 1, β = 0, then `bias[i] + x̂ · weight[i]`
//!   broadcast per member (the solo kernel's order: normalise, × γ, + β).
//! - **Tied embeddings** stay tied per member: the decoder's weight is the stacked
//!   `encoder.weight` itself (one variable); `decoder.bias` is its own.
//! - **Dropout** in the solo model's five places when `train`, drawn from one RNG stream for the
//!   whole stack: member i's masks are not the ones its solo run would draw, so bitwise (or even
//!   rounding-level) agreement with solo runs is only expected with dropout 0 or in eval mode.
//!   Each member still gets independent masks of the right rate.
//!
//! Members are independent: no op mixes values across the run axis (a NaN in one member leaves
//! the others' outputs and gradients bitwise unchanged; crates/repro-torch/tests/it/stacked_lm.rs
//! checks it).

use anyhow::{Context, ensure};
use tch::{Kind, Tensor, nn};

use super::transformer_lm::{TransformerLmConfig, causal_mask, positional_encoding};

/// LayerNorm epsilon (PyTorch's default, as the solo model's).
const LN_EPS: f64 = 1e-5;

/// The solo model's variables for `cfg`: names and shapes, in a fixed order (embedding, layers in
/// order, the final norm with pre-LN, the decoder). A tied model has no `decoder.weight`.
pub fn solo_shapes(cfg: &TransformerLmConfig) -> Vec<(String, Vec<i64>)> {
    let (v, d, f) = (cfg.vocab, cfg.d_model, cfg.ffn);
    let mut out = vec![("encoder.weight".to_string(), vec![v, d])];
    for l in 0..cfg.layers {
        let p = format!("transformer_encoder.layers.{l}");
        for (name, shape) in [
            ("self_attn.in_proj_weight", vec![3 * d, d]),
            ("self_attn.in_proj_bias", vec![3 * d]),
            ("self_attn.out_proj.weight", vec![d, d]),
            ("self_attn.out_proj.bias", vec![d]),
            ("linear1.weight", vec![f, d]),
            ("linear1.bias", vec![f]),
            ("linear2.weight", vec![d, f]),
            ("linear2.bias", vec![d]),
            ("norm1.weight", vec![d]),
            ("norm1.bias", vec![d]),
            ("norm2.weight", vec![d]),
            ("norm2.bias", vec![d]),
        ] {
            out.push((format!("{p}.{name}"), shape));
        }
    }
    if cfg.norm_first {
        out.push(("transformer_encoder.norm.weight".into(), vec![d]));
        out.push(("transformer_encoder.norm.bias".into(), vec![d]));
    }
    if !cfg.tie_embeddings {
        out.push(("decoder.weight".into(), vec![v, d]));
    }
    out.push(("decoder.bias".into(), vec![v]));
    out
}

/// x `[N, M, in]`, weight `[N, out, in]`, bias `[N, out]` → `[N, M, out]`: each member's
/// `x·Wᵀ + b` in one batched GEMM.
fn linear(x: &Tensor, weight: &Tensor, bias: &Tensor) -> Tensor {
    bias.unsqueeze(1)
        .baddbmm(x, &weight.transpose(1, 2), 1.0, 1.0)
}

/// Per-member LayerNorm over the last dim: weight and bias `[N, d]`.
#[derive(Debug)]
struct StackedNorm {
    weight: Tensor,
    bias: Tensor,
}

impl StackedNorm {
    /// x `[N, M, d]` → `[N, M, d]`: `layer_norm` with a constant γ = 1, β = 0 (libtorch's CPU
    /// kernel vectorises only its affine path; ×1 + 0 is exact), then `bias + x̂ · weight` per
    /// member in one `addcmul`.
    fn forward(&self, x: &Tensor) -> Tensor {
        let d = *x.size().last().unwrap();
        let opts = (x.kind(), x.device());
        let (one, zero) = (Tensor::ones([d], opts), Tensor::zeros([d], opts));
        let normed = x.layer_norm([d], Some(&one), Some(&zero), LN_EPS, true);
        self.bias
            .unsqueeze(1)
            .addcmul(&normed, &self.weight.unsqueeze(1))
    }
}

/// One `nn.TransformerEncoderLayer` (ReLU, batch_first = false) for all N members.
#[derive(Debug)]
struct StackedLayer {
    in_proj_weight: Tensor,
    in_proj_bias: Tensor,
    out_proj_weight: Tensor,
    out_proj_bias: Tensor,
    linear1_weight: Tensor,
    linear1_bias: Tensor,
    linear2_weight: Tensor,
    linear2_bias: Tensor,
    norm1: StackedNorm,
    norm2: StackedNorm,
}

/// Sizes one forward pass shares across its layers.
struct Dims {
    n: i64,
    seq: i64,
    batch: i64,
    d: i64,
    heads: i64,
    dropout: f64,
    norm_first: bool,
}

impl StackedLayer {
    /// Self-attention: x `[N, seq·batch, d]` (rows seq-major, as the solo `[seq, batch, d]`),
    /// mask `[seq, seq]` → `[N, seq·batch, d]`.
    fn self_attn(&self, x: &Tensor, mask: &Tensor, dims: &Dims, train: bool) -> Tensor {
        let Dims {
            n,
            seq: s,
            batch: b,
            d,
            heads: h,
            ..
        } = *dims;
        let hd = d / h;
        let qkv = linear(x, &self.in_proj_weight, &self.in_proj_bias);
        let parts = qkv.chunk(3, -1);
        // [N, S·B, d] → [N·B·H, S, hd] in one copy: member i's block is the solo model's
        // [B·H, S, hd] (torch's multi_head_attention_forward layout), made contiguous so the
        // member and head axes fold into one batch for `bmm` (a `matmul` on the 4-d transposed
        // view would copy each operand again).
        let split = |t: &Tensor| {
            t.view([n, s, b, h, hd])
                .permute([0, 2, 3, 1, 4])
                .contiguous()
                .view([n * b * h, s, hd])
        };
        let q = split(&parts[0]);
        let k = split(&parts[1]);
        let v = split(&parts[2]);
        let scores = q.bmm(&k.transpose(1, 2)) / (hd as f64).sqrt() + mask;
        let attn = scores.softmax(-1, Kind::Float).dropout(dims.dropout, train);
        // [N·B·H, S, hd] → [N, S, B·H, hd] → [N, S·B, d].
        let out = attn
            .bmm(&v)
            .view([n, b * h, s, hd])
            .transpose(1, 2)
            .contiguous()
            .view([n, s * b, d]);
        linear(&out, &self.out_proj_weight, &self.out_proj_bias)
    }

    fn sa(&self, x: &Tensor, mask: &Tensor, dims: &Dims, train: bool) -> Tensor {
        self.self_attn(x, mask, dims, train)
            .dropout(dims.dropout, train)
    }

    fn ff(&self, x: &Tensor, dims: &Dims, train: bool) -> Tensor {
        let hidden = linear(x, &self.linear1_weight, &self.linear1_bias)
            .relu()
            .dropout(dims.dropout, train);
        linear(&hidden, &self.linear2_weight, &self.linear2_bias).dropout(dims.dropout, train)
    }

    fn forward_t(&self, x: &Tensor, mask: &Tensor, dims: &Dims, train: bool) -> Tensor {
        if dims.norm_first {
            let x = x + self.sa(&self.norm1.forward(x), mask, dims, train);
            &x + self.ff(&self.norm2.forward(&x), dims, train)
        } else {
            let x = self.norm1.forward(&(x + self.sa(x, mask, dims, train)));
            self.norm2.forward(&(&x + self.ff(&x, dims, train)))
        }
    }
}

/// N members' [`TransformerLm`](super::transformer_lm::TransformerLm)s stacked on a leading run
/// axis (see the module doc).
#[derive(Debug)]
pub struct StackedLm {
    members: i64,
    cfg: TransformerLmConfig,
    /// The stacked variables under the solo names, in [`solo_shapes`]' order.
    vars: Vec<(String, Tensor)>,
    encoder: Tensor,
    layers: Vec<StackedLayer>,
    final_norm: Option<StackedNorm>,
    decoder_weight: Tensor,
    decoder_bias: Tensor,
}

impl StackedLm {
    /// Stacked variables in `vs` (the solo names, shapes with a leading N), their values copied
    /// from the members' solo VarStores (each built by `TransformerLm::new(&member.root(), cfg)`
    /// under the member's own seed), so member i starts exactly where a solo run starts. Tied
    /// embeddings stay tied per member. An error unless there is at least one member, `cfg` is
    /// valid, and every member holds exactly the solo variables of `cfg` (names and shapes).
    pub fn from_members(
        vs: &nn::VarStore,
        cfg: &TransformerLmConfig,
        members: &[nn::VarStore],
    ) -> anyhow::Result<StackedLm> {
        ensure!(
            !members.is_empty(),
            "a stacked LM needs at least one member"
        );
        let d = cfg.d_model;
        ensure!(
            d > 0 && d % 2 == 0,
            "d_model must be positive and even, got {d}"
        );
        ensure!(
            cfg.heads > 0 && d % cfg.heads == 0,
            "d_model {d} is not divisible by heads {}",
            cfg.heads
        );
        for (name, v) in [
            ("vocab", cfg.vocab),
            ("layers", cfg.layers),
            ("ffn", cfg.ffn),
        ] {
            ensure!(v > 0, "{name} must be positive, got {v}");
        }
        ensure!(
            (0.0..1.0).contains(&cfg.dropout),
            "dropout must be in [0, 1), got {}",
            cfg.dropout
        );
        let shapes = solo_shapes(cfg);
        let member_vars: Vec<_> = members.iter().map(nn::VarStore::variables).collect();
        for (i, vars) in member_vars.iter().enumerate() {
            ensure!(
                vars.len() == shapes.len(),
                "member {i} has {} variables, the config's solo model {}",
                vars.len(),
                shapes.len()
            );
            for (name, shape) in &shapes {
                let t = vars
                    .get(name)
                    .with_context(|| format!("member {i} has no variable `{name}`"))?;
                ensure!(
                    &t.size() == shape,
                    "member {i}'s `{name}` has shape {:?}, the config's {shape:?}",
                    t.size()
                );
            }
        }
        let mut vars = Vec::with_capacity(shapes.len());
        tch::no_grad(|| -> anyhow::Result<()> {
            for (name, _) in &shapes {
                let parts: Vec<Tensor> = member_vars
                    .iter()
                    .map(|m| m[name].to_device(vs.device()))
                    .collect();
                let stacked = Tensor::stack(&parts, 0);
                let mut path = vs.root();
                let mut segments: Vec<&str> = name.split('.').collect();
                let leaf = segments.pop().expect("a non-empty name");
                for seg in segments {
                    path = &path / seg;
                }
                let var = path
                    .f_var_copy(leaf, &stacked)
                    .with_context(|| format!("creating the stacked `{name}`"))?;
                vars.push((name.clone(), var));
            }
            Ok(())
        })?;
        let get = |name: &str| -> Tensor {
            vars.iter()
                .find(|(n, _)| n == name)
                .unwrap_or_else(|| panic!("stacked variable `{name}`"))
                .1
                .shallow_clone()
        };
        let layers = (0..cfg.layers)
            .map(|l| {
                let p = |s: &str| get(&format!("transformer_encoder.layers.{l}.{s}"));
                StackedLayer {
                    in_proj_weight: p("self_attn.in_proj_weight"),
                    in_proj_bias: p("self_attn.in_proj_bias"),
                    out_proj_weight: p("self_attn.out_proj.weight"),
                    out_proj_bias: p("self_attn.out_proj.bias"),
                    linear1_weight: p("linear1.weight"),
                    linear1_bias: p("linear1.bias"),
                    linear2_weight: p("linear2.weight"),
                    linear2_bias: p("linear2.bias"),
                    norm1: StackedNorm {
                        weight: p("norm1.weight"),
                        bias: p("norm1.bias"),
                    },
                    norm2: StackedNorm {
                        weight: p("norm2.weight"),
                        bias: p("norm2.bias"),
                    },
                }
            })
            .collect();
        let final_norm = cfg.norm_first.then(|| StackedNorm {
            weight: get("transformer_encoder.norm.weight"),
            bias: get("transformer_encoder.norm.bias"),
        });
        let encoder = get("encoder.weight");
        let decoder_weight = if cfg.tie_embeddings {
            encoder.shallow_clone()
        } else {
            get("decoder.weight")
        };
        let decoder_bias = get("decoder.bias");
        Ok(StackedLm {
            members: members.len() as i64,
            cfg: cfg.clone(),
            encoder,
            layers,
            final_norm,
            decoder_weight,
            decoder_bias,
            vars,
        })
    }

    /// N, the number of members.
    pub fn members(&self) -> usize {
        self.members as usize
    }

    /// The config every member shares.
    pub fn config(&self) -> &TransformerLmConfig {
        &self.cfg
    }

    /// The stacked variables (shallow clones of the VarStore's) under the solo names, in a fixed
    /// order: embedding, layers, final norm, decoder.
    pub fn variables(&self) -> Vec<(String, Tensor)> {
        self.vars
            .iter()
            .map(|(n, t)| (n.clone(), t.shallow_clone()))
            .collect()
    }

    /// tokens `[N, seq, batch]` int64 (each member its own batch) → logits
    /// `[N, seq, batch, vocab]`; causal mask; dropout only when `train` (one RNG stream for the
    /// stack, see the module doc).
    pub fn forward_t(&self, tokens: &Tensor, train: bool) -> Tensor {
        let (n, s, b) = tokens
            .size3()
            .expect("stacked LM tokens must be [members, seq, batch]");
        assert_eq!(
            n, self.members,
            "tokens have {n} members, the stack {}",
            self.members
        );
        let (v, d) = (self.cfg.vocab, self.cfg.d_model);
        let device = self.encoder.device();
        // Member i's token t is row i·V + t of the [N·V, d] table.
        let offsets = Tensor::arange(n, (Kind::Int64, device)).view([n, 1, 1]) * v;
        let rows = tokens + offsets;
        let x = Tensor::embedding(&self.encoder.view([n * v, d]), &rows, -1, false, false)
            * (d as f64).sqrt();
        let x =
            (x + positional_encoding(s, d, device).unsqueeze(1)).dropout(self.cfg.dropout, train);
        let dims = Dims {
            n,
            seq: s,
            batch: b,
            d,
            heads: self.cfg.heads,
            dropout: self.cfg.dropout,
            norm_first: self.cfg.norm_first,
        };
        let mask = causal_mask(s, device);
        let mut x = x.view([n, s * b, d]);
        for layer in &self.layers {
            x = layer.forward_t(&x, &mask, &dims, train);
        }
        if let Some(norm) = &self.final_norm {
            x = norm.forward(&x);
        }
        linear(&x, &self.decoder_weight, &self.decoder_bias).view([n, s, b, v])
    }

    /// Member i's variables under the solo names and shapes (detached copies), loadable by the
    /// solo `TransformerLm` (the same names and shapes a solo run's safetensors hold; a tied model
    /// has no `decoder.weight`), in [`solo_shapes`]' order.
    pub fn member_tensors(&self, i: usize) -> Vec<(String, Tensor)> {
        assert!(
            i < self.members(),
            "member {i} of a stack of {}",
            self.members
        );
        tch::no_grad(|| {
            self.vars
                .iter()
                .map(|(name, t)| (name.clone(), t.get(i as i64).detach().copy()))
                .collect()
        })
    }
}

/// Per-member mean cross-entropy: logits `[N, seq, batch, vocab]` (or any `[N, …, vocab]`),
/// targets `[N, seq·batch]` or `[N, seq, batch]` → `[N]` losses, member i's what
/// `train::lm::lm_loss` computes for its window (log-softmax in float, the mean of the target
/// negative log-likelihoods).
pub fn stacked_lm_loss(logits: &Tensor, targets: &Tensor) -> Tensor {
    let size = logits.size();
    let (n, vocab) = (size[0], *size.last().expect("logits have a vocab dim"));
    let rows = logits.numel() as i64 / (n * vocab);
    assert_eq!(
        targets.numel() as i64,
        n * rows,
        "targets {:?} do not match logits {size:?}",
        targets.size()
    );
    assert_eq!(targets.size()[0], n, "targets' leading dim is not N = {n}");
    logits
        .reshape([n * rows, vocab])
        .log_softmax(-1, Kind::Float)
        .nll_loss_nd(
            &targets.reshape([n * rows]),
            None::<Tensor>,
            tch::Reduction::None,
            -100,
        )
        .view([n, rows])
        .mean_dim(1, false, Kind::Float)
}
