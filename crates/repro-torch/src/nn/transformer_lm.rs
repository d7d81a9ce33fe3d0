//! A causal Transformer language model: pytorch/examples' word_language_model `TransformerModel`
//! with a causal mask, built from tch ops and equal, weight for weight, to the PyTorch reference in
//! `tests/python/lm_reference.py`.
//!
//! Forward, for tokens `[seq, batch]`:
//! `encoder(tokens) · √d_model` → + sinusoidal positional encoding → dropout → `layers` ×
//! `torch.nn.TransformerEncoderLayer(d_model, heads, ffn, dropout, activation=relu,
//! batch_first=False, norm_first)` under a causal mask (0 on and below the diagonal, −∞ above) →
//! (pre-LN only) a final LayerNorm → `decoder` linear → logits `[seq, batch, vocab]`.
//!
//! Choices, named:
//! - **Final LayerNorm.** With `norm_first` (pre-LN) the stack ends in a LayerNorm, as
//!   `nn.TransformerEncoder(layer, layers, norm=nn.LayerNorm(d_model))` has
//!   (`transformer_encoder.norm.*`); post-LN has none (each layer already ends in `norm2`).
//! - **Logits, not log-probabilities.** pytorch/examples returns `log_softmax` of the decoder;
//!   this returns the decoder's output (apply `log_softmax(-1)` for the same thing).
//! - **Positional encoding.** pytorch/examples' `PositionalEncoding` (`pe[:, 0::2] = sin(pos · div)`,
//!   `pe[:, 1::2] = cos(pos · div)`, `div = exp(arange(0, d, 2) · −ln(10000)/d)`, float32),
//!   computed on the fly for the input's length (at most `max_len` = 5000). It is not in the
//!   VarStore: the reference registers `pe` with `persistent=False`, so state_dicts hold only
//!   parameters. `d_model` must be even (pytorch/examples fails on odd too).
//! - **Tied embeddings.** The decoder's weight is the VarStore variable `encoder.weight` itself
//!   (one variable, counted once); `decoder.bias` stays its own. A tied state_dict therefore lacks
//!   `decoder.weight`; the reference fills it from `encoder.weight` (the same tensor) on loading.
//! - **Initialisation** (PyTorch's defaults per module): `encoder.weight` and an untied
//!   `decoder.weight` U(−0.1, 0.1), `decoder.bias` 0 (pytorch/examples `init_weights`);
//!   `self_attn.in_proj_weight` Xavier-uniform (fan_in d, fan_out 3d), `in_proj_bias` and
//!   `out_proj.bias` 0, `out_proj.weight` U(±1/√d) (`nn.MultiheadAttention._reset_parameters`);
//!   `linear1`/`linear2` `nn.Linear`'s U(±1/√fan_in) for weight and bias; LayerNorms weight 1,
//!   bias 0, eps 1e-5. Each layer is drawn independently (PyTorch's `nn.TransformerEncoder`
//!   deep-copies one layer, so its layers start identical; the distribution is the same).
//! - **Dropout** (only when `train`): after the positional encoding, on the attention weights, after
//!   attention, inside the feed-forward (after the ReLU) and after it — the five places
//!   `TransformerEncoderLayer` and `PositionalEncoding` apply it.
//!
//! Variable names mirror the reference module (`encoder`, `transformer_encoder.layers.{i}.self_attn.
//! in_proj_weight`, `…in_proj_bias`, `…out_proj.{weight,bias}`, `…linear1`, `…linear2`, `…norm1`,
//! `…norm2`, `transformer_encoder.norm`, `decoder`), so a VarStore saved as safetensors loads with
//! `load_state_dict(strict=True)`.

use tch::nn::{self, Module};
use tch::{Kind, Tensor};

use super::layers::linear;

/// Longest sequence the positional encoding covers (pytorch/examples' `max_len`).
pub const MAX_LEN: i64 = 5000;

/// Shape and regularisation of a [`TransformerLm`].
#[derive(Debug, Clone, PartialEq)]
pub struct TransformerLmConfig {
    pub vocab: i64,
    pub d_model: i64,
    pub heads: i64,
    pub layers: i64,
    /// Feed-forward hidden width (`dim_feedforward`).
    pub ffn: i64,
    pub dropout: f64,
    /// Pre-LN when true, post-LN when false.
    pub norm_first: bool,
    /// Decoder weight is the embedding weight.
    pub tie_embeddings: bool,
}

/// `nn.MultiheadAttention` (batch_first = false, with biases), self-attention only.
#[derive(Debug)]
struct SelfAttention {
    in_proj_weight: Tensor,
    in_proj_bias: Tensor,
    out_proj: nn::Linear,
    heads: i64,
    dropout: f64,
}

impl SelfAttention {
    fn new(p: nn::Path, d: i64, heads: i64, dropout: f64) -> SelfAttention {
        let xavier = (6.0 / (d + 3 * d) as f64).sqrt();
        let in_proj_weight = p.var(
            "in_proj_weight",
            &[3 * d, d],
            nn::Init::Uniform {
                lo: -xavier,
                up: xavier,
            },
        );
        let in_proj_bias = p.var("in_proj_bias", &[3 * d], nn::Init::Const(0.0));
        let bound = 1.0 / (d as f64).sqrt();
        let out_proj = nn::linear(
            &p / "out_proj",
            d,
            d,
            nn::LinearConfig {
                ws_init: nn::Init::Uniform {
                    lo: -bound,
                    up: bound,
                },
                bs_init: Some(nn::Init::Const(0.0)),
                bias: true,
            },
        );
        SelfAttention {
            in_proj_weight,
            in_proj_bias,
            out_proj,
            heads,
            dropout,
        }
    }

    /// x [S, B, d], mask [S, S] (added to the scores) → [S, B, d].
    fn forward_t(&self, x: &Tensor, mask: &Tensor, train: bool) -> Tensor {
        let (s, b, d) = x.size3().unwrap();
        let h = self.heads;
        let hd = d / h;
        let qkv = x.linear(&self.in_proj_weight, Some(&self.in_proj_bias));
        let parts = qkv.chunk(3, -1);
        // [S, B, d] → [B·H, S, hd], as torch's multi_head_attention_forward reshapes.
        let split = |t: &Tensor| t.contiguous().view([s, b * h, hd]).transpose(0, 1);
        let q = split(&parts[0]);
        let k = split(&parts[1]);
        let v = split(&parts[2]);
        let scores = q.matmul(&k.transpose(-2, -1)) / (hd as f64).sqrt() + mask;
        let attn = scores.softmax(-1, Kind::Float).dropout(self.dropout, train);
        let out = attn.matmul(&v).transpose(0, 1).contiguous().view([s, b, d]);
        self.out_proj.forward(&out)
    }
}

/// `nn.TransformerEncoderLayer` with ReLU, batch_first = false.
#[derive(Debug)]
struct EncoderLayer {
    self_attn: SelfAttention,
    linear1: nn::Linear,
    linear2: nn::Linear,
    norm1: nn::LayerNorm,
    norm2: nn::LayerNorm,
    dropout: f64,
    norm_first: bool,
}

impl EncoderLayer {
    fn new(p: nn::Path, cfg: &TransformerLmConfig) -> EncoderLayer {
        let d = cfg.d_model;
        EncoderLayer {
            self_attn: SelfAttention::new(&p / "self_attn", d, cfg.heads, cfg.dropout),
            linear1: linear(&p / "linear1", d, cfg.ffn),
            linear2: linear(&p / "linear2", cfg.ffn, d),
            norm1: layer_norm(&p / "norm1", d),
            norm2: layer_norm(&p / "norm2", d),
            dropout: cfg.dropout,
            norm_first: cfg.norm_first,
        }
    }

    fn sa(&self, x: &Tensor, mask: &Tensor, train: bool) -> Tensor {
        self.self_attn
            .forward_t(x, mask, train)
            .dropout(self.dropout, train)
    }

    fn ff(&self, x: &Tensor, train: bool) -> Tensor {
        let hidden = self.linear1.forward(x).relu().dropout(self.dropout, train);
        self.linear2.forward(&hidden).dropout(self.dropout, train)
    }

    fn forward_t(&self, x: &Tensor, mask: &Tensor, train: bool) -> Tensor {
        if self.norm_first {
            let x = x + self.sa(&self.norm1.forward(x), mask, train);
            &x + self.ff(&self.norm2.forward(&x), train)
        } else {
            let x = self.norm1.forward(&(x + self.sa(x, mask, train)));
            self.norm2.forward(&(&x + self.ff(&x, train)))
        }
    }
}

/// LayerNorm as PyTorch's: weight 1, bias 0, eps 1e-5.
fn layer_norm(p: nn::Path, d: i64) -> nn::LayerNorm {
    nn::layer_norm(
        p,
        vec![d],
        nn::LayerNormConfig {
            eps: 1e-5,
            ws_init: nn::Init::Const(1.0),
            bs_init: nn::Init::Const(0.0),
            ..Default::default()
        },
    )
}

/// The causal Transformer language model (see the module doc).
#[derive(Debug)]
pub struct TransformerLm {
    encoder: Tensor,
    layers: Vec<EncoderLayer>,
    final_norm: Option<nn::LayerNorm>,
    decoder_weight: Tensor,
    decoder_bias: Tensor,
    d_model: i64,
    dropout: f64,
}

impl TransformerLm {
    /// Build under `path`; an error (naming the field) unless `d_model` is positive, even and
    /// divisible by `heads`, and `vocab`, `layers` and `ffn` are positive.
    pub fn new(path: &nn::Path, cfg: &TransformerLmConfig) -> anyhow::Result<TransformerLm> {
        let d = cfg.d_model;
        anyhow::ensure!(
            d > 0 && d % 2 == 0,
            "d_model must be positive and even, got {d}"
        );
        anyhow::ensure!(
            cfg.heads > 0 && d % cfg.heads == 0,
            "d_model {d} is not divisible by heads {}",
            cfg.heads
        );
        for (name, v) in [
            ("vocab", cfg.vocab),
            ("layers", cfg.layers),
            ("ffn", cfg.ffn),
        ] {
            anyhow::ensure!(v > 0, "{name} must be positive, got {v}");
        }
        anyhow::ensure!(
            (0.0..1.0).contains(&cfg.dropout),
            "dropout must be in [0, 1), got {}",
            cfg.dropout
        );
        let u01 = nn::Init::Uniform { lo: -0.1, up: 0.1 };
        let encoder = (path / "encoder").var("weight", &[cfg.vocab, d], u01);
        let stack = path / "transformer_encoder";
        let layers = (0..cfg.layers)
            .map(|i| EncoderLayer::new(&stack / "layers" / i, cfg))
            .collect();
        let final_norm = cfg.norm_first.then(|| layer_norm(&stack / "norm", d));
        let dec = path / "decoder";
        let decoder_weight = if cfg.tie_embeddings {
            encoder.shallow_clone()
        } else {
            dec.var("weight", &[cfg.vocab, d], u01)
        };
        let decoder_bias = dec.var("bias", &[cfg.vocab], nn::Init::Const(0.0));
        Ok(TransformerLm {
            encoder,
            layers,
            final_norm,
            decoder_weight,
            decoder_bias,
            d_model: d,
            dropout: cfg.dropout,
        })
    }

    /// tokens [seq, batch] (int64) → logits [seq, batch, vocab]; causal mask; dropout only when
    /// `train`.
    pub fn forward_t(&self, tokens: &Tensor, train: bool) -> Tensor {
        let (s, _b) = tokens.size2().unwrap();
        let device = self.encoder.device();
        let x = Tensor::embedding(&self.encoder, tokens, -1, false, false)
            * (self.d_model as f64).sqrt();
        let x = (x + positional_encoding(s, self.d_model, device).unsqueeze(1))
            .dropout(self.dropout, train);
        let mask = causal_mask(s, device);
        let mut x = x;
        for layer in &self.layers {
            x = layer.forward_t(&x, &mask, train);
        }
        if let Some(norm) = &self.final_norm {
            x = norm.forward(&x);
        }
        x.linear(&self.decoder_weight, Some(&self.decoder_bias))
    }
}

/// pytorch/examples' sinusoidal table, rows 0..len: [len, d] float32.
pub fn positional_encoding(len: i64, d: i64, device: tch::Device) -> Tensor {
    assert!(
        len <= MAX_LEN,
        "sequence length {len} exceeds the positional encoding's max_len {MAX_LEN}"
    );
    let opts = (Kind::Float, device);
    let position = Tensor::arange(len, opts).unsqueeze(1);
    let div_term = (Tensor::arange_start_step(0, d, 2, (Kind::Int64, device)).to_kind(Kind::Float)
        * (-(10000f64.ln()) / d as f64))
        .exp();
    let angle = &position * &div_term;
    // Interleave: [len, d/2, 2] with sin at even columns, cos at odd.
    Tensor::stack(&[angle.sin(), angle.cos()], -1).view([len, d])
}

/// [len, len] float: 0 on and below the diagonal, −∞ above (torch's
/// `generate_square_subsequent_mask`).
pub fn causal_mask(len: i64, device: tch::Device) -> Tensor {
    Tensor::full([len, len], f64::NEG_INFINITY, (Kind::Float, device)).triu(1)
}
