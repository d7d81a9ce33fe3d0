//! `repro_torch::nn::transformer_lm` against its PyTorch reference (tests/python/lm_reference.py):
//! parameter counts (tied and untied), eval-mode logits of the same weights — saved by the
//! VarStore as safetensors, loaded with `load_state_dict(strict=True)` — for pre-LN and post-LN,
//! tied and untied; exact causality; output shape.

use repro_torch::nn::param_count;
use repro_torch::nn::transformer_lm::{TransformerLm, TransformerLmConfig};
use tch::nn::VarStore;
use tch::{Device, Kind, Tensor};

fn cfg(norm_first: bool, tie_embeddings: bool) -> TransformerLmConfig {
    TransformerLmConfig {
        vocab: 50,
        d_model: 32,
        heads: 4,
        layers: 2,
        ffn: 64,
        dropout: 0.2,
        norm_first,
        tie_embeddings,
    }
}

fn cfg_args(c: &TransformerLmConfig) -> Vec<String> {
    vec![
        c.vocab.to_string(),
        c.d_model.to_string(),
        c.heads.to_string(),
        c.layers.to_string(),
        c.ffn.to_string(),
        c.dropout.to_string(),
        (c.norm_first as u8).to_string(),
        (c.tie_embeddings as u8).to_string(),
    ]
}

fn tokens(seq: i64, batch: i64, vocab: i64) -> Tensor {
    Tensor::randint(vocab, [seq, batch], (Kind::Int64, Device::Cpu))
}

#[test]
fn parameter_counts_match_pytorch() {
    for (norm_first, tie) in [(false, false), (false, true), (true, false), (true, true)] {
        let c = cfg(norm_first, tie);
        let vs = VarStore::new(Device::Cpu);
        TransformerLm::new(&vs.root(), &c).unwrap();
        let ours = param_count(&vs);
        let mut args = vec!["count".to_string()];
        args.extend(cfg_args(&c));
        let out = repro_testkit::run_script("lm_reference.py", &args);
        let theirs: i64 = out.trim().parse().unwrap();
        assert_eq!(ours, theirs, "norm_first {norm_first} tie {tie}");
        // By hand: per layer 4d² + 4d (attention) + 2·d·ffn + ffn + d (feed-forward) + 4d (norms).
        let (v, d, f) = (c.vocab, c.d_model, c.ffn);
        let layer = 4 * d * d + 4 * d + 2 * d * f + f + d + 4 * d;
        let want = v * d
            + 2 * layer
            + if norm_first { 2 * d } else { 0 }
            + if tie { 0 } else { v * d }
            + v;
        assert_eq!(ours, want, "norm_first {norm_first} tie {tie}");
    }
}

fn forward_matches_pytorch(norm_first: bool, tie: bool) -> f64 {
    tch::manual_seed(11);
    let c = cfg(norm_first, tie);
    let dir = tempfile::tempdir().unwrap();
    let vs = VarStore::new(Device::Cpu);
    let m = TransformerLm::new(&vs.root(), &c).unwrap();
    // Move the LayerNorms and zero biases off their initial values so they are exercised.
    tch::no_grad(|| {
        for (name, mut t) in vs.variables() {
            if name.contains("norm") || name.ends_with("bias") {
                let noise = Tensor::randn_like(&t) * 0.1;
                let _ = t.g_add_(&noise);
            }
        }
    });
    let weights = dir.path().join("w.safetensors");
    vs.save(&weights).unwrap();
    let x = tokens(7, 3, c.vocab);
    let input = dir.path().join("x.npy");
    x.write_npy(&input).unwrap();
    let got = tch::no_grad(|| m.forward_t(&x, false));
    assert_eq!(got.size(), vec![7, 3, c.vocab]);
    let out = dir.path().join("out.npy");
    let mut args = vec!["forward".to_string()];
    args.extend(cfg_args(&c));
    args.extend([
        weights.display().to_string(),
        input.display().to_string(),
        out.display().to_string(),
    ]);
    repro_testkit::run_script("lm_reference.py", &args);
    let want = Tensor::read_npy(&out).unwrap();
    assert_eq!(got.size(), want.size());
    let scale = want.abs().max().double_value(&[]);
    let diff = (&got - &want).abs().max().double_value(&[]);
    eprintln!(
        "norm_first {norm_first} tie {tie}: max |diff| {diff:e}, scale {scale:e}, rel {:e}",
        diff / scale
    );
    assert!(
        diff <= 1e-5 * scale,
        "norm_first {norm_first} tie {tie}: max |diff| {diff:e} > 1e-5 × {scale:e}"
    );
    diff / scale
}

#[test]
fn eval_logits_match_pytorch_post_ln_untied_and_pre_ln_tied() {
    forward_matches_pytorch(false, false);
    forward_matches_pytorch(true, true);
}

#[test]
fn eval_logits_match_pytorch_post_ln_tied_and_pre_ln_untied() {
    forward_matches_pytorch(false, true);
    forward_matches_pytorch(true, false);
}

#[test]
fn changing_a_token_leaves_earlier_logits_exactly_unchanged() {
    tch::manual_seed(3);
    for norm_first in [false, true] {
        let c = cfg(norm_first, true);
        let vs = VarStore::new(Device::Cpu);
        let m = TransformerLm::new(&vs.root(), &c).unwrap();
        let x = tokens(9, 2, c.vocab);
        let base = tch::no_grad(|| m.forward_t(&x, false));
        for t in [1i64, 4, 8] {
            let y = x.copy();
            let changed = (y.int64_value(&[t, 0]) + 1) % c.vocab;
            let _ = y.narrow(0, t, 1).fill_(changed);
            let out = tch::no_grad(|| m.forward_t(&y, false));
            assert!(
                out.narrow(0, 0, t).equal(&base.narrow(0, 0, t)),
                "norm_first {norm_first}: position {t} changed earlier logits"
            );
            // The changed position itself does change.
            assert!(!out.narrow(0, t, 1).equal(&base.narrow(0, t, 1)));
        }
    }
}

#[test]
fn output_shape_and_dropout_only_in_train() {
    tch::manual_seed(5);
    let c = cfg(true, false);
    let vs = VarStore::new(Device::Cpu);
    let m = TransformerLm::new(&vs.root(), &c).unwrap();
    let x = tokens(5, 4, c.vocab);
    let (e1, e2, t1) = tch::no_grad(|| {
        (
            m.forward_t(&x, false),
            m.forward_t(&x, false),
            m.forward_t(&x, true),
        )
    });
    assert_eq!(e1.size(), vec![5, 4, c.vocab]);
    assert_eq!(t1.size(), vec![5, 4, c.vocab]);
    assert!(e1.equal(&e2), "eval is deterministic");
    assert!(!e1.equal(&t1), "train applies dropout");
}

#[test]
fn bad_configs_are_errors_naming_the_field() {
    let vs = VarStore::new(tch::Device::Cpu);
    let base = cfg(false, false);
    let bad = |c: TransformerLmConfig| {
        TransformerLm::new(&vs.root(), &c)
            .err()
            .map(|e| e.to_string())
    };
    let heads = bad(TransformerLmConfig {
        heads: 5,
        ..base.clone()
    })
    .unwrap();
    assert!(heads.contains("heads 5"), "{heads}");
    let vocab = bad(TransformerLmConfig {
        vocab: 0,
        ..base.clone()
    })
    .unwrap();
    assert!(vocab.contains("vocab"), "{vocab}");
    let drop = bad(TransformerLmConfig {
        dropout: 1.0,
        ..base
    })
    .unwrap();
    assert!(drop.contains("dropout"), "{drop}");
}
