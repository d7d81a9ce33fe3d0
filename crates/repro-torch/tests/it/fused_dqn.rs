//! A fused group's DQN updates against solo runs' (train::rl::stacked against train::rl::dqn,
//! whose update crates/repro-torch/tests/it/rl.rs holds to PyTorch): the same members (each its
//! own seed's weights, variant, lr and λ) fed the same recorded batches, update by update, one of them
//! diverging half way, with the E8 diagnostic sampled on both sides. Measured here on CPU
//! (float32, 100 updates of MinAtar's network, batch 32): the members' TD losses within 2.8e-7,
//! their weights within 2.6e-6 and their E8 values within 1.5e-7 relative of their solo runs';
//! the bound asserted is 1e-5.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use repro_torch::nn::dqn::{QNetArch, build};
use repro_torch::nn::stacked_dqn::StackedQNet;
use repro_torch::optim::adam::{Adam, AdamConfig, Variant};
use repro_torch::optim::stacked::StackedAdam;
use repro_torch::train::common::trainable_by_name;
use repro_torch::train::rl::dqn::{DeviceBatch, update};
use repro_torch::train::rl::replay::Batch;
use repro_torch::train::rl::stacked::{StackedBatch, stacked_update};
use tch::nn::VarStore;
use tch::{Device, Kind, Tensor};

const SHAPE: [i64; 3] = [4, 10, 10];
const ACTIONS: i64 = 6;
const BATCH: usize = 32;

/// A member: seed, variant, lr, λ. Every member is in its variant's stable range (V5 with
/// αλ/d < 2): past it the update amplifies any rounding difference, which is the instability
/// E7 measures, not a disagreement of the two implementations.
const MEMBERS: [(i64, &str, f64, f64); 5] = [
    (0, "adam_l2", 1e-3, 0.0),
    (1, "adamw", 1e-3, 0.1),
    (2, "l2_in_m", 3e-4, 1e-2),
    (3, "adaptive_decoupled", 1e-3, 1e-2),
    (4, "adaptive_decoupled_stable", 3e-3, 10.0),
];

/// The member whose batches turn non-finite at update [`DIVERGES_AT`].
const DIVERGING: usize = 2;
const DIVERGES_AT: usize = 50;
/// The E8 diagnostic sampled every this many updates, on both sides.
const DROWN_EVERY: u64 = 10;

fn batch(rng: &mut ChaCha8Rng, poisoned: bool) -> Batch {
    let len = BATCH * (SHAPE[0] * SHAPE[1] * SHAPE[2]) as usize;
    let mut frames = || {
        (0..len)
            .map(|_| rng.random_range(0..2u8))
            .collect::<Vec<_>>()
    };
    let (states, next_states) = (frames(), frames());
    let rewards = (0..BATCH)
        .map(|_| match poisoned {
            true => f32::NAN,
            false => rng.random_range(-1..=1) as f32,
        })
        .collect();
    Batch {
        states,
        next_states,
        actions: (0..BATCH).map(|_| rng.random_range(0..ACTIONS)).collect(),
        rewards,
        terminals: (0..BATCH)
            .map(|_| f32::from(u8::from(rng.random_bool(0.1))))
            .collect(),
    }
}

/// The largest |a − b| / max|b| over `b`'s entries; infinite where either holds a non-finite
/// value (a NaN must not pass for agreement).
fn relative(a: &Tensor, b: &Tensor) -> f64 {
    let finite = |t: &Tensor| bool::try_from(t.isfinite().all()).unwrap();
    if !finite(a) || !finite(b) {
        return f64::INFINITY;
    }
    let scale = b.abs().max().double_value(&[]).max(1e-12);
    (a - b).abs().max().double_value(&[]) / scale
}

struct Solo {
    vs: VarStore,
    target_vs: VarStore,
    online: Box<dyn tch::nn::Module>,
    target: Box<dyn tch::nn::Module>,
    opt: Adam,
}

fn solo(seed: i64, variant: &str) -> Solo {
    tch::manual_seed(seed);
    let vs = VarStore::new(Device::Cpu);
    let online = build(QNetArch::MinAtar, &vs.root(), SHAPE, ACTIONS);
    let mut target_vs = VarStore::new(Device::Cpu);
    let target = build(QNetArch::MinAtar, &target_vs.root(), SHAPE, ACTIONS);
    target_vs.copy(&vs).unwrap();
    let params = trainable_by_name(&vs).into_iter().map(|(_, t)| t).collect();
    let cfg = AdamConfig {
        variant: Variant::parse(variant).unwrap(),
        eps: 1.5e-4,
        ..AdamConfig::default()
    };
    let mut opt = Adam::new(params, cfg);
    opt.track_drown_out_every(DROWN_EVERY);
    Solo {
        vs,
        target_vs,
        online,
        target,
        opt,
    }
}

#[test]
fn fused_updates_follow_each_members_solo_updates() {
    // One intra-op thread, on both sides and throughout: Adam turns a rounding difference in a
    // near-zero gradient into a whole step, so the two sides must reduce in one order. The
    // thread count is process-wide; every test of this binary that sets it sets 1.
    tch::set_num_threads(1);
    let mut solos: Vec<Solo> = MEMBERS.iter().map(|m| solo(m.0, m.1)).collect();
    let member_vs: Vec<&VarStore> = solos.iter().map(|s| &s.vs).collect();
    let copies: Vec<VarStore> = member_vs
        .iter()
        .map(|vs| {
            let mut c = VarStore::new(Device::Cpu);
            let _ = build(QNetArch::MinAtar, &c.root(), SHAPE, ACTIONS);
            c.copy(vs).unwrap();
            c
        })
        .collect();
    let gvs = VarStore::new(Device::Cpu);
    let online =
        StackedQNet::from_members(&gvs, QNetArch::MinAtar, SHAPE, ACTIONS, &copies).unwrap();
    let mut gtarget_vs = VarStore::new(Device::Cpu);
    let target =
        StackedQNet::from_members(&gtarget_vs, QNetArch::MinAtar, SHAPE, ACTIONS, &copies).unwrap();
    let variants: Vec<Variant> = MEMBERS
        .iter()
        .map(|m| Variant::parse(m.1).unwrap())
        .collect();
    let mut opt = StackedAdam::new(gvs.trainable_variables(), 0.9, 0.999, 1.5e-4, &variants);
    opt.track_drown_out_every(DROWN_EVERY);
    let lr: Vec<f64> = MEMBERS.iter().map(|m| m.2).collect();
    let wd: Vec<f64> = MEMBERS.iter().map(|m| m.3).collect();

    let mut rng = ChaCha8Rng::seed_from_u64(30);
    let (mut worst_loss, mut worst_weight, mut worst_e8) = (0f64, 0f64, 0f64);
    let mut e8_samples = 0;
    for t in 0..100 {
        let batches: Vec<Batch> = (0..MEMBERS.len())
            .map(|i| batch(&mut rng, i == DIVERGING && t >= DIVERGES_AT))
            .collect();
        let b = StackedBatch::new(&batches, SHAPE, Device::Cpu);
        let (loss, _, _) = stacked_update(&online, &target, &mut opt, &b, 0.99, (&lr, &wd));
        for (i, s) in solos.iter_mut().enumerate() {
            if i == DIVERGING && t >= DIVERGES_AT {
                continue;
            }
            let db = DeviceBatch::new(&batches[i], SHAPE, Device::Cpu);
            let (solo_loss, _, _) =
                update(&*s.online, &*s.target, &mut s.opt, &db, 0.99, lr[i], wd[i]);
            worst_loss = worst_loss.max(relative(&loss.get(i as i64), &solo_loss));
        }
        if (t as u64 + 1).is_multiple_of(DROWN_EVERY) {
            let fused = opt.drown_out();
            for (i, s) in solos.iter().enumerate() {
                let Some(solo) = s.opt.drown_out() else {
                    continue;
                };
                if i == DIVERGING && t >= DIVERGES_AT {
                    assert!(fused[i].is_none(), "a frozen member reports no diagnostic");
                    continue;
                }
                let f = fused[i].expect("a sampled step's diagnostic");
                for (a, b) in [
                    (f.l2_over_grad, solo.l2_over_grad),
                    (f.l2_share_of_m, solo.l2_share_of_m),
                    (f.cos_m_mg, solo.cos_m_mg),
                    (f.step_attenuation, solo.step_attenuation),
                    (f.past_stability_bound, solo.past_stability_bound),
                ] {
                    // 0/0 is NaN on both sides (λ = 0 has no l2 share).
                    if !(a.is_nan() && b.is_nan()) {
                        worst_e8 = worst_e8.max((a - b).abs() / b.abs().max(1e-12));
                    }
                }
                e8_samples += 1;
            }
        }
        if t == DIVERGES_AT {
            let l = loss.get(DIVERGING as i64).double_value(&[]);
            assert!(!l.is_finite(), "the poisoned member's loss is {l}");
            // What the fused loop does when it finds a member diverged.
            opt.freeze(DIVERGING);
        }
        if t % 10 == 9 {
            gtarget_vs.copy(&gvs).unwrap();
            for s in &mut solos {
                s.target_vs.copy(&s.vs).unwrap();
            }
        }
    }
    for (i, s) in solos.iter().enumerate() {
        let stacked: std::collections::BTreeMap<String, Tensor> =
            online.member_tensors(i).into_iter().collect();
        for (name, w) in s.vs.variables() {
            let f = &stacked[&name];
            if i == DIVERGING {
                assert!(
                    bool::try_from(f.isfinite().all()).unwrap(),
                    "the frozen member holds nothing non-finite ({name})"
                );
                continue;
            }
            worst_weight = worst_weight.max(relative(f, &w));
        }
    }
    eprintln!(
        "fused vs solo over 100 updates: loss {worst_loss:.2e}, weights {worst_weight:.2e}, \
         E8 {worst_e8:.2e} over {e8_samples} samples"
    );
    assert!(e8_samples >= 40, "only {e8_samples} E8 samples compared");
    assert!(
        worst_e8 <= 1e-5,
        "E8 diagnostics differ by {worst_e8:e} relative"
    );
    assert!(
        worst_loss <= 1e-5,
        "TD losses differ by {worst_loss:e} relative"
    );
    assert!(
        worst_weight <= 1e-5,
        "weights differ by {worst_weight:e} relative"
    );
    assert!(
        bool::try_from(loss_finite(&online)).unwrap(),
        "no NaN reaches the other members"
    );
}

fn loss_finite(net: &StackedQNet) -> Tensor {
    let x = Tensor::ones(
        [MEMBERS.len() as i64, 1, SHAPE[0], SHAPE[1], SHAPE[2]],
        (Kind::Float, Device::Cpu),
    );
    net.forward(&x).isfinite().all()
}
