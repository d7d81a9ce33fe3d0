//! fairseq's Transformer encoder-decoder (`TransformerModel`, arch `transformer_iwslt_de_en`, post-LN,
//! `normalize_before = False`) as fairseq 0.12 builds it, from tch ops; equal, weight for weight, to
//! the eager PyTorch reference in `tests/python/mt_reference.py`.
//!
//! Owns: the model ([`TransformerMt`]), its encoder output ([`EncoderOut`]), and incremental
//! decoding for generation ([`DecoderCache`], [`TransformerMt::decode_step`]). Beam search lives in
//! `super::beam_search`.
//!
//! Mirrored fairseq behaviour:
//! - **Embeddings.** `embed_tokens · √d` + `SinusoidalPositionalEmbedding` (sin and cos halves
//!   concatenated, not interleaved; row `pad` zero), positions `pad + 1 + cumsum(non-pad)` on non-pad
//!   tokens and `pad` on pads (`utils.make_positions`), so right padding never shifts positions; then
//!   dropout. No `layernorm_embedding`, no final encoder/decoder LayerNorm (post-LN).
//! - **Layers.** Encoder: `LN(x + drop(self_attn(x)))`, `LN(x + drop(fc2(drop_act(relu(fc1 x)))))`.
//!   Decoder: causal self-attention, encoder-decoder attention (`encoder_attn`, source padding mask),
//!   FFN, each post-LN. The encoder zeroes padded positions after the embedding, and the decoder
//!   passes a self-attention padding mask when `prev_output_tokens` holds pads, as fairseq does.
//! - **Attention.** `MultiheadAttention`: separate `q_proj`/`k_proj`/`v_proj`/`out_proj` with bias,
//!   q scaled by `head_dim^-½` before the product, masked scores −∞, softmax in float32.
//! - **Output.** Logits `x · decoder.embed_tokens.weightᵀ` (shared input/output embedding, no bias).
//! - **Initialisation** as fairseq's modules do it: `Embedding` N(0, d^-½) with the pad row zeroed;
//!   `MultiheadAttention.reset_parameters`: q/k/v weights Xavier-uniform with gain 1/√2, `out_proj`
//!   weight Xavier-uniform and bias 0, q/k/v biases left at `nn.Linear`'s U(±1/√d); `fc1`/`fc2` are
//!   plain `nn.Linear` in fairseq's layers (`build_fc1`), so U(±1/√fan_in) for weight and bias;
//!   LayerNorm 1/0, eps 1e-5.
//!
//! Variable names are fairseq's state-dict names (`encoder.embed_tokens.weight`,
//! `encoder.layers.{i}.self_attn.q_proj.weight`, `…self_attn_layer_norm`, `…fc1`, `…fc2`,
//! `…final_layer_norm`, `decoder.layers.{i}.encoder_attn.*`, `…encoder_attn_layer_norm`, …); the tied
//! `decoder.output_projection.weight` is not a separate variable.
//!
//! Layout is batch-first (`[B, T, d]`) throughout; fairseq's time-first layout is the same math.

use anyhow::Result;
use tch::nn::{self, Module};
use tch::{Kind, Tensor};

use super::layers::linear;

/// Shape and regularisation of a [`TransformerMt`].
#[derive(Debug, Clone, PartialEq)]
pub struct TransformerMtConfig {
    pub src_vocab: i64,
    pub tgt_vocab: i64,
    pub d_model: i64,
    /// Feed-forward hidden width (`encoder_ffn_embed_dim` = `decoder_ffn_embed_dim`).
    pub ffn: i64,
    pub heads: i64,
    pub encoder_layers: i64,
    pub decoder_layers: i64,
    pub dropout: f64,
    pub attention_dropout: f64,
    pub activation_dropout: f64,
    /// Output projection is `decoder.embed_tokens.weight` (the only supported setting).
    pub share_decoder_input_output_embed: bool,
    /// `max_source_positions` = `max_target_positions`.
    pub max_positions: i64,
    /// Padding index of both dictionaries.
    pub pad: i64,
}

impl TransformerMtConfig {
    /// fairseq's `transformer_iwslt_de_en`: d 512, ffn 1024, 4 heads, 6+6 layers, dropout 0.3,
    /// shared decoder input/output embedding, 1024 positions, pad 1.
    pub fn iwslt_de_en(src_vocab: i64, tgt_vocab: i64) -> TransformerMtConfig {
        TransformerMtConfig {
            src_vocab,
            tgt_vocab,
            d_model: 512,
            ffn: 1024,
            heads: 4,
            encoder_layers: 6,
            decoder_layers: 6,
            dropout: 0.3,
            attention_dropout: 0.0,
            activation_dropout: 0.0,
            share_decoder_input_output_embed: true,
            max_positions: 1024,
            pad: 1,
        }
    }
}

/// fairseq `MultiheadAttention` (self- or encoder-decoder attention).
#[derive(Debug)]
struct Attention {
    q_proj: nn::Linear,
    k_proj: nn::Linear,
    v_proj: nn::Linear,
    out_proj: nn::Linear,
    heads: i64,
    dropout: f64,
}

/// Xavier-uniform bound for a square [d, d] weight with `gain`.
fn xavier(d: i64, gain: f64) -> nn::Init {
    let b = gain * (6.0 / (2 * d) as f64).sqrt();
    nn::Init::Uniform { lo: -b, up: b }
}

impl Attention {
    fn new(p: nn::Path, d: i64, heads: i64, dropout: f64) -> Attention {
        let bound = 1.0 / (d as f64).sqrt();
        let proj = |name: &str, ws: nn::Init, bs: nn::Init| {
            nn::linear(
                &p / name,
                d,
                d,
                nn::LinearConfig {
                    ws_init: ws,
                    bs_init: Some(bs),
                    bias: true,
                },
            )
        };
        let default_bias = nn::Init::Uniform {
            lo: -bound,
            up: bound,
        };
        let g = 1.0 / 2f64.sqrt();
        Attention {
            k_proj: proj("k_proj", xavier(d, g), default_bias),
            v_proj: proj("v_proj", xavier(d, g), default_bias),
            q_proj: proj("q_proj", xavier(d, g), default_bias),
            out_proj: proj("out_proj", xavier(d, 1.0), nn::Init::Const(0.0)),
            heads,
            dropout,
        }
    }

    /// [B, T, d] → [B, H, T, hd].
    fn split(&self, x: &Tensor) -> Tensor {
        let (b, t, d) = x.size3().unwrap();
        x.view([b, t, self.heads, d / self.heads]).transpose(1, 2)
    }

    /// Projected keys and values of `kv` [B, S, d], each [B, H, S, hd].
    fn kv(&self, kv: &Tensor) -> (Tensor, Tensor) {
        (
            self.split(&self.k_proj.forward(kv)),
            self.split(&self.v_proj.forward(kv)),
        )
    }

    /// Query `x` [B, T, d] against projected k, v [B, H, S, hd]; `mask` is added to the scores
    /// (broadcast to [B, H, T, S]; 0 or −∞).
    fn attend(
        &self,
        x: &Tensor,
        k: &Tensor,
        v: &Tensor,
        mask: Option<&Tensor>,
        train: bool,
    ) -> Tensor {
        let (b, t, d) = x.size3().unwrap();
        let hd = d / self.heads;
        // fairseq scales q (with its bias) before the product.
        let q = self.split(&(self.q_proj.forward(x) * (hd as f64).powf(-0.5)));
        let mut scores = q.matmul(&k.transpose(-2, -1));
        if let Some(m) = mask {
            scores += m;
        }
        let attn = scores
            .softmax(-1, Kind::Float)
            .to_kind(v.kind())
            .dropout(self.dropout, train);
        let out = attn.matmul(v).transpose(1, 2).contiguous().view([b, t, d]);
        self.out_proj.forward(&out)
    }

    fn forward_t(&self, x: &Tensor, kv: &Tensor, mask: Option<&Tensor>, train: bool) -> Tensor {
        let (k, v) = self.kv(kv);
        self.attend(x, &k, &v, mask, train)
    }
}

/// LayerNorm as fairseq's (torch's): weight 1, bias 0, eps 1e-5.
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

/// The position-wise feed-forward block with its residual and post-LN.
#[derive(Debug)]
struct Ffn {
    fc1: nn::Linear,
    fc2: nn::Linear,
    final_layer_norm: nn::LayerNorm,
    dropout: f64,
    activation_dropout: f64,
}

impl Ffn {
    fn new(p: &nn::Path, cfg: &TransformerMtConfig) -> Ffn {
        Ffn {
            fc1: linear(p / "fc1", cfg.d_model, cfg.ffn),
            fc2: linear(p / "fc2", cfg.ffn, cfg.d_model),
            final_layer_norm: layer_norm(p / "final_layer_norm", cfg.d_model),
            dropout: cfg.dropout,
            activation_dropout: cfg.activation_dropout,
        }
    }

    fn forward_t(&self, x: &Tensor, train: bool) -> Tensor {
        let h = self
            .fc1
            .forward(x)
            .relu()
            .dropout(self.activation_dropout, train);
        let h = self.fc2.forward(&h).dropout(self.dropout, train);
        self.final_layer_norm.forward(&(x + h))
    }
}

#[derive(Debug)]
struct EncoderLayer {
    self_attn: Attention,
    self_attn_layer_norm: nn::LayerNorm,
    ffn: Ffn,
    dropout: f64,
}

impl EncoderLayer {
    fn new(p: nn::Path, cfg: &TransformerMtConfig) -> EncoderLayer {
        EncoderLayer {
            self_attn: Attention::new(
                &p / "self_attn",
                cfg.d_model,
                cfg.heads,
                cfg.attention_dropout,
            ),
            self_attn_layer_norm: layer_norm(&p / "self_attn_layer_norm", cfg.d_model),
            ffn: Ffn::new(&p, cfg),
            dropout: cfg.dropout,
        }
    }

    fn forward_t(&self, x: &Tensor, mask: &Tensor, train: bool) -> Tensor {
        let a = self
            .self_attn
            .forward_t(x, x, Some(mask), train)
            .dropout(self.dropout, train);
        let x = self.self_attn_layer_norm.forward(&(x + a));
        self.ffn.forward_t(&x, train)
    }
}

#[derive(Debug)]
struct DecoderLayer {
    self_attn: Attention,
    self_attn_layer_norm: nn::LayerNorm,
    encoder_attn: Attention,
    encoder_attn_layer_norm: nn::LayerNorm,
    ffn: Ffn,
    dropout: f64,
}

impl DecoderLayer {
    fn new(p: nn::Path, cfg: &TransformerMtConfig) -> DecoderLayer {
        let d = cfg.d_model;
        DecoderLayer {
            self_attn: Attention::new(&p / "self_attn", d, cfg.heads, cfg.attention_dropout),
            self_attn_layer_norm: layer_norm(&p / "self_attn_layer_norm", d),
            encoder_attn: Attention::new(&p / "encoder_attn", d, cfg.heads, cfg.attention_dropout),
            encoder_attn_layer_norm: layer_norm(&p / "encoder_attn_layer_norm", d),
            ffn: Ffn::new(&p, cfg),
            dropout: cfg.dropout,
        }
    }

    /// Self-attention over projected (k, v), then encoder attention over (ek, ev), then the FFN.
    #[allow(clippy::too_many_arguments)]
    fn forward_t(
        &self,
        x: &Tensor,
        kv: (&Tensor, &Tensor),
        self_mask: Option<&Tensor>,
        ekv: (&Tensor, &Tensor),
        enc_mask: &Tensor,
        train: bool,
    ) -> Tensor {
        let a = self
            .self_attn
            .attend(x, kv.0, kv.1, self_mask, train)
            .dropout(self.dropout, train);
        let x = self.self_attn_layer_norm.forward(&(x + a));
        let a = self
            .encoder_attn
            .attend(&x, ekv.0, ekv.1, Some(enc_mask), train)
            .dropout(self.dropout, train);
        let x = self.encoder_attn_layer_norm.forward(&(&x + a));
        self.ffn.forward_t(&x, train)
    }
}

/// The encoder's output: states and the source padding mask, batch-first.
#[derive(Debug)]
pub struct EncoderOut {
    /// [B, S, d].
    pub out: Tensor,
    /// [B, S] bool, true at padding.
    pub padding_mask: Tensor,
}

impl EncoderOut {
    /// Rows `new_order` (int64 [N]) of the batch (fairseq's `reorder_encoder_out`).
    pub fn reorder(&self, new_order: &Tensor) -> EncoderOut {
        EncoderOut {
            out: self.out.index_select(0, new_order),
            padding_mask: self.padding_mask.index_select(0, new_order),
        }
    }

    /// Each row repeated `beam` times consecutively: row b becomes rows b·beam .. b·beam + beam.
    pub fn repeat_beams(&self, beam: i64) -> EncoderOut {
        let b = self.out.size()[0];
        let order = Tensor::arange(b, (Kind::Int64, self.out.device()))
            .repeat_interleave_self_int(beam, 0, None);
        self.reorder(&order)
    }

    fn additive_mask(&self) -> Tensor {
        key_mask(&self.padding_mask, self.out.kind())
    }
}

/// Additive key mask [B, 1, 1, S] from a padding mask [B, S]: 0 at tokens, −∞ at padding.
fn key_mask(padding_mask: &Tensor, kind: Kind) -> Tensor {
    let (b, s) = padding_mask.size2().unwrap();
    Tensor::zeros([b, 1, 1, s], (kind, padding_mask.device()))
        .masked_fill(&padding_mask.view([b, 1, 1, s]), f64::NEG_INFINITY)
}

/// Incremental decoding state (fairseq's `incremental_state`): per decoder layer the self-attention
/// keys/values of the tokens fed so far, and the encoder-attention keys/values, projected once.
#[derive(Debug, Default)]
pub struct DecoderCache {
    /// Per layer (k, v), each [B, H, t, hd].
    self_kv: Vec<(Tensor, Tensor)>,
    /// Per layer (k, v), each [B, H, S, hd]; empty until the first step.
    enc_kv: Vec<(Tensor, Tensor)>,
    /// Tokens fed so far.
    steps: i64,
}

impl DecoderCache {
    pub fn new() -> DecoderCache {
        DecoderCache::default()
    }

    /// Tokens decoded so far.
    pub fn steps(&self) -> i64 {
        self.steps
    }

    /// Keep rows `new_order` (int64 [N]) of every cached tensor (fairseq's
    /// `reorder_incremental_state`); the encoder output must be reordered the same way.
    pub fn reorder(&mut self, new_order: &Tensor) {
        for (k, v) in self.self_kv.iter_mut().chain(self.enc_kv.iter_mut()) {
            *k = k.index_select(0, new_order);
            *v = v.index_select(0, new_order);
        }
    }
}

/// fairseq's `TransformerModel` (see the module doc).
#[derive(Debug)]
pub struct TransformerMt {
    cfg: TransformerMtConfig,
    encoder_embed: Tensor,
    encoder_layers: Vec<EncoderLayer>,
    decoder_embed: Tensor,
    decoder_layers: Vec<DecoderLayer>,
}

/// fairseq `Embedding`: N(0, d^-½), pad row zero.
fn embedding(p: nn::Path, vocab: i64, d: i64, pad: i64) -> Tensor {
    let w = p.var(
        "weight",
        &[vocab, d],
        nn::Init::Randn {
            mean: 0.0,
            stdev: (d as f64).powf(-0.5),
        },
    );
    tch::no_grad(|| {
        let _ = w.get(pad).zero_();
    });
    w
}

/// fairseq `SinusoidalPositionalEmbedding.get_embedding` rows for `positions` (int64, any shape):
/// `[.., d]` float32, `cat(sin, cos)` halves, row `pad` zero.
pub fn sinusoidal(positions: &Tensor, d: i64, pad: i64) -> Tensor {
    let device = positions.device();
    let half = d / 2;
    let step = 10000f64.ln() / (half - 1) as f64;
    let freq = (Tensor::arange(half, (Kind::Float, device)) * -step).exp();
    let angle = positions.to_kind(Kind::Float).unsqueeze(-1) * freq;
    let emb = Tensor::cat(&[angle.sin(), angle.cos()], -1);
    // Positions equal to pad (padding tokens) embed to zero.
    emb.masked_fill(&positions.eq(pad).unsqueeze(-1), 0.0)
}

/// fairseq `utils.make_positions`: `pad + cumsum(non-pad)` at non-pad tokens, `pad` at pads.
pub fn make_positions(tokens: &Tensor, pad: i64) -> Tensor {
    let mask = tokens.ne(pad).to_kind(Kind::Int64);
    mask.cumsum(1, Kind::Int64) * &mask + pad
}

impl TransformerMt {
    /// Build under `path` (variables named as fairseq's state dict); errors unless `d_model` is
    /// even, divisible by `heads`, and the sizes are positive.
    pub fn new(path: &nn::Path, cfg: TransformerMtConfig) -> Result<TransformerMt> {
        let d = cfg.d_model;
        anyhow::ensure!(
            d > 2 && d % 2 == 0,
            "d_model must be even and above 2 (sinusoidal half_dim − 1 > 0), got {d}"
        );
        anyhow::ensure!(
            cfg.heads > 0 && d % cfg.heads == 0,
            "d_model {d} is not divisible by heads {}",
            cfg.heads
        );
        for (name, v) in [
            ("src_vocab", cfg.src_vocab),
            ("tgt_vocab", cfg.tgt_vocab),
            ("ffn", cfg.ffn),
            ("encoder_layers", cfg.encoder_layers),
            ("decoder_layers", cfg.decoder_layers),
            ("max_positions", cfg.max_positions),
        ] {
            anyhow::ensure!(v > 0, "{name} must be positive, got {v}");
        }
        anyhow::ensure!(
            cfg.pad >= 0 && cfg.pad < cfg.src_vocab.min(cfg.tgt_vocab),
            "pad {} is outside the vocabularies",
            cfg.pad
        );
        anyhow::ensure!(
            cfg.share_decoder_input_output_embed,
            "only share_decoder_input_output_embed = true is supported (transformer_iwslt_de_en)"
        );
        for (name, p) in [
            ("dropout", cfg.dropout),
            ("attention_dropout", cfg.attention_dropout),
            ("activation_dropout", cfg.activation_dropout),
        ] {
            anyhow::ensure!((0.0..1.0).contains(&p), "{name} must be in [0, 1), got {p}");
        }
        let enc = path / "encoder";
        let encoder_embed = embedding(&enc / "embed_tokens", cfg.src_vocab, d, cfg.pad);
        let encoder_layers = (0..cfg.encoder_layers)
            .map(|i| EncoderLayer::new(&enc / "layers" / i, &cfg))
            .collect();
        let dec = path / "decoder";
        let decoder_embed = embedding(&dec / "embed_tokens", cfg.tgt_vocab, d, cfg.pad);
        let decoder_layers = (0..cfg.decoder_layers)
            .map(|i| DecoderLayer::new(&dec / "layers" / i, &cfg))
            .collect();
        Ok(TransformerMt {
            cfg,
            encoder_embed,
            encoder_layers,
            decoder_embed,
            decoder_layers,
        })
    }

    pub fn config(&self) -> &TransformerMtConfig {
        &self.cfg
    }

    /// Token embedding · √d + positions, then dropout.
    fn embed(&self, table: &Tensor, tokens: &Tensor, positions: &Tensor, train: bool) -> Tensor {
        let d = self.cfg.d_model;
        let x = Tensor::embedding(table, tokens, -1, false, false) * (d as f64).sqrt()
            + sinusoidal(positions, d, self.cfg.pad).to_kind(table.kind());
        x.dropout(self.cfg.dropout, train)
    }

    /// src [B, S] int64 (padded with `pad`, on either side) → encoder states and padding mask.
    pub fn encode(&self, src: &Tensor, train: bool) -> EncoderOut {
        let pad = self.cfg.pad;
        let padding_mask = src.eq(pad);
        let x = self.embed(&self.encoder_embed, src, &make_positions(src, pad), train);
        // fairseq zeroes padded positions after the embedding (they are zero already in eval).
        let keep = padding_mask.logical_not().unsqueeze(-1).to_kind(x.kind());
        let mut x = x * keep;
        let mask = key_mask(&padding_mask, x.kind());
        for layer in &self.encoder_layers {
            x = layer.forward_t(&x, &mask, train);
        }
        EncoderOut {
            out: x,
            padding_mask,
        }
    }

    /// Teacher-forced decoding: prev_output_tokens [B, T] → logits [B, T, tgt_vocab].
    pub fn decode(&self, enc: &EncoderOut, prev_output_tokens: &Tensor, train: bool) -> Tensor {
        let pad = self.cfg.pad;
        let (b, t) = prev_output_tokens.size2().unwrap();
        let device = prev_output_tokens.device();
        let mut x = self.embed(
            &self.decoder_embed,
            prev_output_tokens,
            &make_positions(prev_output_tokens, pad),
            train,
        );
        let kind = x.kind();
        let mut self_mask = Tensor::full([t, t], f64::NEG_INFINITY, (kind, device))
            .triu(1)
            .view([1, 1, t, t]);
        // fairseq adds a key padding mask only when the targets hold pads.
        let tgt_pad = prev_output_tokens.eq(pad);
        if tgt_pad.any().int64_value(&[]) != 0 {
            self_mask = self_mask.masked_fill(&tgt_pad.view([b, 1, 1, t]), f64::NEG_INFINITY);
        }
        let enc_mask = enc.additive_mask();
        for layer in &self.decoder_layers {
            let (k, v) = layer.self_attn.kv(&x);
            let (ek, ev) = layer.encoder_attn.kv(&enc.out);
            x = layer.forward_t(&x, (&k, &v), Some(&self_mask), (&ek, &ev), &enc_mask, train);
        }
        self.output_layer(&x)
    }

    /// Shared output projection: logits = x · embed_tokensᵀ.
    fn output_layer(&self, x: &Tensor) -> Tensor {
        x.matmul(&self.decoder_embed.tr())
    }

    /// src [B, S], prev_output_tokens [B, T] → logits [B, T, tgt_vocab].
    pub fn forward_t(&self, src: &Tensor, prev_output_tokens: &Tensor, train: bool) -> Tensor {
        let enc = self.encode(src, train);
        self.decode(&enc, prev_output_tokens, train)
    }

    /// One incremental step in eval mode: feed `last_tokens` [B] (int64, no padding) at position
    /// `cache.steps()`; returns float32 log-probabilities [B, tgt_vocab] of the next token. Equal to
    /// `log_softmax(decode(prefix))` at the prefix's last position.
    pub fn decode_step(
        &self,
        enc: &EncoderOut,
        cache: &mut DecoderCache,
        last_tokens: &Tensor,
    ) -> Tensor {
        let pad = self.cfg.pad;
        let tokens = last_tokens.view([-1, 1]);
        // Position of a prefix without pads: pad + 1 + index.
        let positions = Tensor::full_like(&tokens, pad + 1 + cache.steps);
        let mut x = self.embed(&self.decoder_embed, &tokens, &positions, false);
        if cache.enc_kv.is_empty() {
            cache.enc_kv = self
                .decoder_layers
                .iter()
                .map(|l| l.encoder_attn.kv(&enc.out))
                .collect();
        }
        let enc_mask = enc.additive_mask();
        for (i, layer) in self.decoder_layers.iter().enumerate() {
            let (k, v) = layer.self_attn.kv(&x);
            let (k, v) = match cache.self_kv.get(i) {
                Some((pk, pv)) => (Tensor::cat(&[pk, &k], 2), Tensor::cat(&[pv, &v], 2)),
                None => (k, v),
            };
            // The newest token attends to every cached one: no causal mask needed.
            let (ek, ev) = &cache.enc_kv[i];
            x = layer.forward_t(&x, (&k, &v), None, (ek, ev), &enc_mask, false);
            if i < cache.self_kv.len() {
                cache.self_kv[i] = (k, v);
            } else {
                cache.self_kv.push((k, v));
            }
        }
        cache.steps += 1;
        self.output_layer(&x.squeeze_dim(1))
            .log_softmax(-1, Kind::Float)
    }
}
