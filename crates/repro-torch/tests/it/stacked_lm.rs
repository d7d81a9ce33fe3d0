//! `repro_torch::nn::stacked_lm` (fused groups, issue 30) against N solo `TransformerLm`s: logits
//! and the gradients of Σ member losses equal each solo model's (pre-/post-LN, tied/untied,
//! dropout 0), parameter counts and `member_tensors` (names, shapes, bitwise initial values, and
//! loadable by the solo model after training-like changes), members' independence (a NaN in one
//! leaves the others bitwise unchanged), and dropout (train differs from eval, eval is
//! deterministic and the solo model's, each member draws its own masks).
//!
//! The global RNG is shared with the binary's other tests, running in parallel threads: no
//! assertion here depends on which random numbers a training pass draws.
//!
//! Agreement is measured as max |stacked − solo| / max |solo| per tensor (per member, per
//! variable); `cargo test … -- --nocapture` prints the worst seen.

use std::collections::HashMap;

use repro_torch::nn::param_count;
use repro_torch::nn::stacked_lm::{StackedLm, solo_shapes, stacked_lm_loss};
use repro_torch::nn::transformer_lm::{TransformerLm, TransformerLmConfig};
use tch::nn::VarStore;
use tch::{Device, Kind, Tensor};

const N: usize = 3;
const SEQ: i64 = 7;
const BATCH: i64 = 4;
const TOL: f64 = 1e-5;

fn cfg(norm_first: bool, tie_embeddings: bool, dropout: f64) -> TransformerLmConfig {
    TransformerLmConfig {
        vocab: 50,
        d_model: 16,
        heads: 2,
        layers: 2,
        ffn: 32,
        dropout,
        norm_first,
        tie_embeddings,
    }
}

/// Member i: a solo VarStore built under seed 100 + i, its LayerNorms and (zero-initialised)
/// biases moved off their initial values so the per-member affine and bias paths are exercised.
fn member(c: &TransformerLmConfig, i: usize) -> (VarStore, TransformerLm) {
    tch::manual_seed(100 + i as i64);
    let vs = VarStore::new(Device::Cpu);
    let m = TransformerLm::new(&vs.root(), c).unwrap();
    tch::no_grad(|| {
        let mut vars: Vec<_> = vs.variables().into_iter().collect();
        vars.sort_by(|a, b| a.0.cmp(&b.0));
        for (name, mut t) in vars {
            if name.contains("norm") || name.ends_with("bias") {
                let noise = Tensor::randn_like(&t) * 0.1;
                let _ = t.g_add_(&noise);
            }
        }
    });
    (vs, m)
}

fn members(c: &TransformerLmConfig) -> (Vec<VarStore>, Vec<TransformerLm>) {
    (0..N).map(|i| member(c, i)).unzip()
}

/// Per-member tokens [N, seq, batch] and targets [N, seq, batch].
fn batch(c: &TransformerLmConfig, seed: i64) -> (Tensor, Tensor) {
    tch::manual_seed(seed);
    let x = Tensor::randint(c.vocab, [N as i64, SEQ, BATCH], (Kind::Int64, Device::Cpu));
    let y = Tensor::randint(c.vocab, [N as i64, SEQ, BATCH], (Kind::Int64, Device::Cpu));
    (x, y)
}

/// max |a − b| / max |b|.
fn rel(a: &Tensor, b: &Tensor) -> f64 {
    assert_eq!(a.size(), b.size());
    let diff = (a - b).abs().max().double_value(&[]);
    let scale = b.abs().max().double_value(&[]).max(1e-30);
    diff / scale
}

fn grads(vs: &VarStore) -> HashMap<String, Tensor> {
    vs.variables()
        .into_iter()
        .map(|(n, t)| (n, t.grad().copy()))
        .collect()
}

fn zero_grads(vs: &VarStore) {
    for mut t in vs.trainable_variables() {
        t.zero_grad();
    }
}

/// Stacked logits and Σ-loss gradients against each solo model's; returns the worst relative
/// differences (logits, losses, gradients).
fn agrees_with_solo(norm_first: bool, tie: bool) -> (f64, f64, f64) {
    let c = cfg(norm_first, tie, 0.0);
    let (solo_vs, solo) = members(&c);
    let vs = VarStore::new(Device::Cpu);
    let stacked = StackedLm::from_members(&vs, &c, &solo_vs).unwrap();
    assert_eq!(stacked.members(), N);
    let (x, y) = batch(&c, 7);

    let logits = stacked.forward_t(&x, true);
    assert_eq!(logits.size(), [N as i64, SEQ, BATCH, c.vocab]);
    let losses = stacked_lm_loss(&logits, &y);
    assert_eq!(losses.size(), [N as i64]);
    losses.sum(Kind::Float).backward();
    let stacked_grads = grads(&vs);

    let (mut worst_logits, mut worst_loss, mut worst_grad) = (0f64, 0f64, 0f64);
    for i in 0..N {
        let xi = x.get(i as i64);
        let yi = y.get(i as i64);
        let solo_logits = solo[i].forward_t(&xi, true);
        let r = rel(&logits.get(i as i64), &solo_logits);
        assert!(
            r <= TOL,
            "member {i} logits differ by {r:e} (norm_first {norm_first}, tie {tie})"
        );
        worst_logits = worst_logits.max(r);
        // train::lm::lm_loss's computation.
        let solo_loss = solo_logits
            .view([-1, c.vocab])
            .cross_entropy_for_logits(&yi.view([-1]));
        let r = rel(&losses.get(i as i64), &solo_loss);
        assert!(r <= TOL, "member {i} loss differs by {r:e}");
        worst_loss = worst_loss.max(r);
        solo_loss.backward();
        let solo_grads = grads(&solo_vs[i]);
        assert_eq!(solo_grads.len(), stacked_grads.len());
        for (name, g) in &solo_grads {
            let sg = stacked_grads[name].get(i as i64);
            let r = rel(&sg, g);
            assert!(
                r <= TOL,
                "member {i} gradient of {name} differs by {r:e} (norm_first {norm_first}, tie \
                 {tie})"
            );
            worst_grad = worst_grad.max(r);
        }
    }
    eprintln!(
        "norm_first {norm_first} tie {tie}: worst relative difference logits {worst_logits:e}, \
         loss {worst_loss:e}, gradients {worst_grad:e}"
    );
    (worst_logits, worst_loss, worst_grad)
}

#[test]
fn logits_and_gradients_equal_the_solo_models() {
    let mut worst = (0f64, 0f64, 0f64);
    for (norm_first, tie) in [(false, false), (false, true), (true, false), (true, true)] {
        let w = agrees_with_solo(norm_first, tie);
        worst = (worst.0.max(w.0), worst.1.max(w.1), worst.2.max(w.2));
    }
    eprintln!(
        "overall worst: logits {:e}, loss {:e}, gradients {:e}",
        worst.0, worst.1, worst.2
    );
}

#[test]
fn parameters_and_member_tensors_are_the_solo_ones() {
    for (norm_first, tie) in [(false, false), (false, true), (true, false), (true, true)] {
        let c = cfg(norm_first, tie, 0.1);
        let (solo_vs, _) = members(&c);
        let vs = VarStore::new(Device::Cpu);
        let stacked = StackedLm::from_members(&vs, &c, &solo_vs).unwrap();
        // N × solo (a tied embedding counted once per member).
        assert_eq!(param_count(&vs), N as i64 * param_count(&solo_vs[0]));
        assert_eq!(
            vs.variables().contains_key("decoder.weight"),
            !tie,
            "tied stacks hold no decoder.weight"
        );
        // solo_shapes is the solo VarStore's layout.
        let solo_layout: HashMap<String, Vec<i64>> = solo_vs[0]
            .variables()
            .into_iter()
            .map(|(n, t)| (n, t.size()))
            .collect();
        let ours: HashMap<String, Vec<i64>> = solo_shapes(&c).into_iter().collect();
        assert_eq!(ours, solo_layout);
        // The stacked VarStore: the solo names, N-prefixed shapes.
        for (name, t) in vs.variables() {
            let mut want = vec![N as i64];
            want.extend(&solo_layout[&name]);
            assert_eq!(t.size(), want, "{name}");
        }
        for (i, solo) in solo_vs.iter().enumerate() {
            let tensors = stacked.member_tensors(i);
            assert_eq!(tensors.len(), solo_layout.len());
            let solo_vars = solo.variables();
            for (name, t) in &tensors {
                let s = &solo_vars[name];
                assert_eq!(t.size(), s.size(), "{name}");
                assert_eq!(t.kind(), s.kind(), "{name}");
                assert!(!t.requires_grad(), "{name} is a detached copy");
                assert!(
                    t.equal(s),
                    "member {i}'s {name} is not bitwise its initial value"
                );
            }
        }
    }
}

#[test]
fn member_tensors_load_into_the_solo_model() {
    for (norm_first, tie) in [(true, true), (false, false)] {
        let c = cfg(norm_first, tie, 0.0);
        let (solo_vs, _) = members(&c);
        let vs = VarStore::new(Device::Cpu);
        let stacked = StackedLm::from_members(&vs, &c, &solo_vs).unwrap();
        // Move every stacked weight, as training would.
        tch::manual_seed(3);
        tch::no_grad(|| {
            for (_, mut t) in stacked.variables() {
                let _ = t.g_add_(&(Tensor::randn_like(&t) * 0.01));
            }
        });
        let (x, _) = batch(&c, 9);
        let logits = stacked.forward_t(&x, false);
        let dir = tempfile::tempdir().unwrap();
        for (i, initial) in solo_vs.iter().enumerate() {
            let path = dir.path().join(format!("member{i}.safetensors"));
            let tensors = stacked.member_tensors(i);
            Tensor::write_safetensors(&tensors, &path).unwrap();
            let mut fresh = VarStore::new(Device::Cpu);
            let solo = TransformerLm::new(&fresh.root(), &c).unwrap();
            fresh.load(&path).unwrap();
            // The solo VarStore now holds member i's trained values, not its initial ones.
            let loaded = fresh.variables();
            for (name, t) in &tensors {
                assert!(loaded[name].equal(t), "member {i}'s {name} did not load");
                assert!(!t.equal(&initial.variables()[name]), "{name} did not move");
            }
            let r = rel(
                &logits.get(i as i64),
                &solo.forward_t(&x.get(i as i64), false),
            );
            assert!(r <= TOL, "member {i} reloaded solo logits differ by {r:e}");
        }
    }
}

#[test]
fn a_nan_member_leaves_the_others_bitwise_unchanged() {
    for (norm_first, tie) in [(true, true), (false, false)] {
        let c = cfg(norm_first, tie, 0.0);
        let (solo_vs, _) = members(&c);
        let vs = VarStore::new(Device::Cpu);
        let stacked = StackedLm::from_members(&vs, &c, &solo_vs).unwrap();
        let (x, y) = batch(&c, 11);
        let run = || {
            zero_grads(&vs);
            let logits = stacked.forward_t(&x, true);
            stacked_lm_loss(&logits, &y).sum(Kind::Float).backward();
            (logits, grads(&vs))
        };
        let (before, grads_before) = run();
        tch::no_grad(|| {
            let vars = vs.variables();
            for name in [
                "encoder.weight",
                "transformer_encoder.layers.0.linear1.weight",
            ] {
                let mut t = vars[name].get(1);
                let _ = t.fill_(f64::NAN);
            }
        });
        let (after, grads_after) = run();
        assert!(
            after.get(1).isnan().all().int64_value(&[]) == 1,
            "member 1 is NaN throughout"
        );
        for i in [0, 2] {
            assert!(
                after.get(i).equal(&before.get(i)),
                "member {i}'s logits changed"
            );
            for (name, g) in &grads_before {
                assert!(
                    grads_after[name].get(i).equal(&g.get(i)),
                    "member {i}'s gradient of {name} changed"
                );
            }
        }
    }
}

#[test]
fn dropout_acts_in_training_only() {
    let c = cfg(true, true, 0.3);
    let (solo_vs, solo) = members(&c);
    let vs = VarStore::new(Device::Cpu);
    let stacked = StackedLm::from_members(&vs, &c, &solo_vs).unwrap();
    let (x, _) = batch(&c, 13);
    let eval1 = stacked.forward_t(&x, false);
    let eval2 = stacked.forward_t(&x, false);
    assert!(eval1.equal(&eval2), "eval mode is deterministic");
    let train = stacked.forward_t(&x, true);
    for i in 0..N as i64 {
        let r = rel(&train.get(i), &eval1.get(i));
        assert!(r > 1e-3, "member {i}'s training output equals eval ({r:e})");
        // Eval mode is the solo model's eval mode.
        let r = rel(&eval1.get(i), &solo[i as usize].forward_t(&x.get(i), false));
        assert!(
            r <= TOL,
            "member {i}'s eval logits differ from solo by {r:e}"
        );
    }
}

/// Three identical members on identical tokens: eval outputs are bitwise equal across members,
/// training outputs differ (each member draws its own masks from the stack's one stream).
#[test]
fn members_draw_their_own_dropout_masks() {
    let c = cfg(false, false, 0.3);
    let (a, _) = member(&c, 0);
    let (b, _) = member(&c, 0);
    let (d, _) = member(&c, 0);
    let vs = VarStore::new(Device::Cpu);
    let stacked = StackedLm::from_members(&vs, &c, &[a, b, d]).unwrap();
    let (x, _) = batch(&c, 17);
    let x = x.get(0).unsqueeze(0).repeat([N as i64, 1, 1]);
    let eval = stacked.forward_t(&x, false);
    let train = stacked.forward_t(&x, true);
    for i in 1..N as i64 {
        assert!(eval.get(i).equal(&eval.get(0)), "identical members, eval");
        let r = rel(&train.get(i), &train.get(0));
        assert!(r > 1e-3, "member {i} drew member 0's masks ({r:e})");
    }
}

#[test]
fn mismatched_members_are_refused() {
    let c = cfg(true, true, 0.0);
    let vs = VarStore::new(Device::Cpu);
    assert!(StackedLm::from_members(&vs, &c, &[]).is_err());
    // A member of another config (untied: an extra decoder.weight).
    let (a, _) = member(&c, 0);
    let (b, _) = member(&cfg(true, false, 0.0), 1);
    let err = StackedLm::from_members(&VarStore::new(Device::Cpu), &c, &[a, b]).unwrap_err();
    assert!(err.to_string().contains("member 1"), "{err}");
    // A member of another width.
    let (a, _) = member(&c, 0);
    let (b, _) = member(
        &TransformerLmConfig {
            ffn: 24,
            ..c.clone()
        },
        1,
    );
    let err = StackedLm::from_members(&VarStore::new(Device::Cpu), &c, &[a, b]).unwrap_err();
    assert!(err.to_string().contains("linear1"), "{err}");
}

#[test]
fn loss_accepts_flat_or_shaped_targets() {
    let logits = Tensor::randn([N as i64, SEQ, BATCH, 5], (Kind::Float, Device::Cpu));
    let y = Tensor::randint(5, [N as i64, SEQ, BATCH], (Kind::Int64, Device::Cpu));
    let a = stacked_lm_loss(&logits, &y);
    let b = stacked_lm_loss(&logits, &y.view([N as i64, -1]));
    assert!(a.equal(&b));
    for i in 0..N as i64 {
        let solo = logits
            .get(i)
            .view([-1, 5])
            .cross_entropy_for_logits(&y.get(i).view([-1]));
        assert!(rel(&a.get(i), &solo) <= TOL);
    }
}
