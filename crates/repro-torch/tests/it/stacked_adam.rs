//! `StackedAdam`, the Adam family of a fused group (issue 30), against the solo `Adam` member by
//! member: the same updates for a group mixing all seven named variants with their own α and λ
//! schedules, freezing a diverged member without touching the others, per-member gradient norms
//! and clipping against the solo `clip_grad_norm`, and the checkpoint round trip.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use repro_torch::checkpoint::State;
use repro_torch::optim::adam::{Adam, AdamConfig, AdamVariant, Variant};
use repro_torch::optim::stacked::StackedAdam;
use repro_torch::train::common::total_norm;
use repro_torch::train::lm::clip_grad_norm;
use tch::{Kind, Tensor};

/// One member per named variant, in the order of `AdamVariant::ALL`.
const N: usize = 7;
/// Per-member shapes: conv-like, a matrix, vectors.
const SHAPES: &[&[i64]] = &[&[16, 4, 3, 3], &[10, 6], &[5], &[3]];
/// Parameter left out of the loss at some steps: after `clear_grads` it has no gradient there and
/// is skipped by both optimizers, so its step count falls behind the others'.
const SOMETIMES: usize = 2;
/// Parameter that never receives a gradient.
const NO_GRAD: usize = 3;
const BETAS: (f64, f64) = (0.9, 0.999);
const EPS: f64 = 1e-8;

/// Member i's base α and λ: λ = 0 for Adam with l2 (plain Adam), and αλ = 1 with gradients scaled
/// by 1e-2 (so k = αλ/d is far past V5's bound of 2) for the implicit adaptive decay.
const LR: [f64; N] = [1e-3, 3e-3, 2e-3, 1e-3, 5e-3, 2e-3, 1e-2];
const WD: [f64; N] = [0.0, 0.1, 1e-2, 0.1, 0.5, 5e-2, 100.0];
const GRAD_SCALE: [f64; N] = [1.0, 0.5, 2.0, 1.0, 1.0, 0.3, 1e-2];

fn variants() -> Vec<Variant> {
    AdamVariant::ALL.into_iter().map(Variant::from).collect()
}

/// Member i's α and λ at step t (from 0): a linear warm-up over 10 steps, a cosine to 0.1 of the
/// base until step 80, then constant (the cached coefficients are then reused); λ off for every
/// member at steps 40–45 and doubled at steps 60–69.
fn schedule(t: usize) -> (Vec<f64>, Vec<f64>) {
    let f = if t < 10 {
        (t + 1) as f64 / 10.0
    } else if t < 80 {
        let x = (t - 10) as f64 / 70.0;
        0.1 + 0.9 * 0.5 * (1.0 + (std::f64::consts::PI * x).cos())
    } else {
        0.1
    };
    let g = match t {
        40..=45 => 0.0,
        60..=69 => 2.0,
        _ => 1.0,
    };
    (
        LR.iter().map(|lr| lr * f).collect(),
        WD.iter().map(|wd| wd * g).collect(),
    )
}

fn in_loss(t: usize, p: usize) -> bool {
    p != NO_GRAD && !(p == SOMETIMES && t % 7 == 3)
}

fn stacked_shape(s: &[i64]) -> Vec<i64> {
    std::iter::once(N as i64).chain(s.iter().copied()).collect()
}

struct Data {
    init: Vec<Tensor>,
    /// `grads[t][p]`: stacked `[N, …]`.
    grads: Vec<Vec<Tensor>>,
}

/// Standard normal draws from `rng` (Box–Muller), as a float32 tensor of `shape`. A generator of
/// our own, not torch's global one, which the tests running beside these draw from too.
fn randn(rng: &mut ChaCha8Rng, shape: &[i64]) -> Tensor {
    let count: i64 = shape.iter().product();
    let values: Vec<f32> = (0..count)
        .map(|_| {
            let (u, v): (f64, f64) = (1.0 - rng.random::<f64>(), rng.random::<f64>());
            ((-2.0 * u.ln()).sqrt() * (std::f64::consts::TAU * v).cos()) as f32
        })
        .collect();
    Tensor::from_slice(&values).reshape(shape)
}

/// Seeded initial values and per-step gradients, member i's scaled by `GRAD_SCALE[i]`.
fn data(steps: usize, seed: u64) -> Data {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let scale = Tensor::from_slice(&GRAD_SCALE).to_kind(Kind::Float);
    let init = SHAPES
        .iter()
        .map(|s| randn(&mut rng, &stacked_shape(s)))
        .collect();
    let grads = (0..steps)
        .map(|_| {
            SHAPES
                .iter()
                .map(|s| {
                    let mut b = vec![1i64; s.len() + 1];
                    b[0] = N as i64;
                    randn(&mut rng, &stacked_shape(s)) * scale.view(b.as_slice())
                })
                .collect()
        })
        .collect();
    Data { init, grads }
}

fn leaves(init: &[Tensor]) -> Vec<Tensor> {
    init.iter()
        .map(|p| p.detach().copy().set_requires_grad(true))
        .collect()
}

/// Gradients equal to `grads` (backward of Σ p·g) for the parameters in the loss at step t.
fn backward(params: &[Tensor], grads: &[Tensor], t: usize) {
    let loss = (0..params.len())
        .filter(|&p| in_loss(t, p))
        .map(|p| (&params[p] * &grads[p]).sum(Kind::Float))
        .reduce(|a, b| a + b)
        .unwrap();
    loss.backward();
}

fn stacked(params: &[Tensor]) -> StackedAdam {
    StackedAdam::new(
        params.iter().map(Tensor::shallow_clone).collect(),
        BETAS.0,
        BETAS.1,
        EPS,
        &variants(),
    )
}

/// The group over steps `from..to` of `d`, calling `after(t, opt)` after each step.
fn run_group(
    opt: &mut StackedAdam,
    params: &[Tensor],
    d: &Data,
    steps: std::ops::Range<usize>,
    mut after: impl FnMut(usize, &mut StackedAdam),
) {
    for t in steps {
        opt.clear_grads();
        backward(params, &d.grads[t], t);
        let (lr, wd) = schedule(t);
        opt.step(&lr, &wd);
        after(t, opt);
    }
}

fn rel_diff(a: &Tensor, b: &Tensor) -> f64 {
    let scale = b.abs().max().double_value(&[]).max(1e-30);
    (a - b).abs().max().double_value(&[]) / scale
}

fn bits(t: &Tensor) -> Vec<u32> {
    let v = Vec::<f32>::try_from(&t.detach().contiguous().view([-1])).unwrap();
    v.into_iter().map(f32::to_bits).collect()
}

/// Asserts `a` and `b` are bitwise equal, saying how many entries differ when not.
#[track_caller]
fn assert_bitwise(a: &Tensor, b: &Tensor, what: &str) {
    let (a, b) = (bits(a), bits(b));
    assert_eq!(a.len(), b.len(), "{what}: sizes");
    let differ = a.iter().zip(&b).filter(|(x, y)| x != y).count();
    assert_eq!(differ, 0, "{what}: {differ} of {} entries differ", a.len());
}

fn all_finite(t: &Tensor) -> bool {
    t.isfinite().all().int64_value(&[]) == 1
}

/// Every member of a group mixing all seven variants, each with its own α and λ schedule
/// (λ = 0 for adam_l2; αλ = 1 at k = αλ/d ≈ 100 for the implicit adaptive decay), over 100 steps of
/// seeded random gradients on a conv-like, a matrix and a vector parameter (one of them skipped at
/// some steps, one never stepped), equals the solo `Adam` with that member's config fed the same
/// gradients: parameters and both moments to a relative difference ≤ 1e-5 (max |Δ| over the tensor
/// / max |solo|). Measured on CPU (torch 2.11, float32): 0 for every member, parameter and moment —
/// the stacked kernels round as the solo ones to the last bit.
#[test]
fn stacked_members_match_solo_adam() {
    const STEPS: usize = 100;
    let d = data(STEPS, 31);
    let params = leaves(&d.init);
    let mut opt = stacked(&params);
    assert_eq!(opt.members(), N);
    run_group(&mut opt, &params, &d, 0..STEPS, |_, _| {});

    let mut worst = 0f64;
    let mut worst_at = String::new();
    for (i, variant) in variants().into_iter().enumerate() {
        let solo_params: Vec<Tensor> = leaves(
            &d.init
                .iter()
                .map(|p| p.get(i as i64))
                .collect::<Vec<Tensor>>(),
        );
        let mut solo = Adam::new(
            solo_params.iter().map(Tensor::shallow_clone).collect(),
            AdamConfig {
                beta1: BETAS.0,
                beta2: BETAS.1,
                eps: EPS,
                variant,
            },
        );
        for t in 0..STEPS {
            solo.clear_grads();
            let g: Vec<Tensor> = d.grads[t].iter().map(|g| g.get(i as i64)).collect();
            backward(&solo_params, &g, t);
            let (lr, wd) = schedule(t);
            solo.step(lr[i], wd[i]);
        }
        for (p, solo_p) in solo_params.iter().enumerate() {
            assert_eq!(opt.steps(p), solo.steps(p), "steps of parameter {p}");
            let ours = opt.params()[p].get(i as i64);
            let mut pairs = vec![("w", ours.detach(), solo_p.detach())];
            match (opt.moments(p), solo.moments(p)) {
                (Some((m, v)), Some((sm, sv))) => {
                    pairs.push(("m", m.get(i as i64), sm.shallow_clone()));
                    pairs.push(("v", v.get(i as i64), sv.shallow_clone()));
                }
                (None, None) => {
                    assert_eq!(p, NO_GRAD);
                    assert!(
                        ours.equal(&d.init[p].get(i as i64)),
                        "unstepped parameter moved"
                    );
                }
                (a, b) => panic!(
                    "parameter {p}: stacked state {} solo {}",
                    a.is_some(),
                    b.is_some()
                ),
            }
            for (what, a, b) in pairs {
                assert!(all_finite(&a), "{} {what}{p} not finite", variant.name());
                let r = rel_diff(&a, &b);
                if r > worst || worst_at.is_empty() {
                    worst = worst.max(r);
                    worst_at = format!("{} {what}{p}", variant.name());
                }
            }
        }
    }
    assert!(
        opt.steps(SOMETIMES) < opt.steps(0),
        "the skipped steps were not exercised"
    );
    eprintln!("stacked vs solo Adam: max relative difference {worst:e} ({worst_at})");
    assert!(
        worst <= 1e-5,
        "max relative difference {worst:e} at {worst_at}"
    );
}

/// A member whose gradients turn NaN (and Inf) from step K on, frozen right after step K: the
/// other members stay bitwise equal to the same group without the NaN, and no NaN or Inf remains
/// in any parameter, moment or gradient, though the frozen member keeps getting NaN gradients.
#[test]
fn freezing_a_diverged_member_leaves_the_others_bitwise_unchanged() {
    const STEPS: usize = 40;
    const K: usize = 15;
    const BAD: usize = 4; // adaptive_decoupled
    let clean = data(STEPS, 47);
    let mut poisoned = data(STEPS, 47);
    for t in K..STEPS {
        for (p, g) in poisoned.grads[t].iter_mut().enumerate() {
            let value = if p == 0 { f64::INFINITY } else { f64::NAN };
            let _ = g.get(BAD as i64).fill_(value);
        }
    }

    let ref_params = leaves(&clean.init);
    let mut reference = stacked(&ref_params);
    run_group(&mut reference, &ref_params, &clean, 0..STEPS, |_, _| {});

    let params = leaves(&poisoned.init);
    let mut opt = stacked(&params);
    run_group(&mut opt, &params, &poisoned, 0..STEPS, |t, opt| {
        if t == K {
            let w = opt.params()[1].get(BAD as i64);
            assert!(!all_finite(&w), "the NaN gradient did not reach the member");
            opt.freeze(BAD);
        }
    });

    let mut expected_frozen = [false; N];
    expected_frozen[BAD] = true;
    assert_eq!(opt.frozen(), expected_frozen);
    for (p, w) in opt.params().iter().enumerate() {
        assert!(all_finite(w), "parameter {p} has a non-finite value");
        let g = w.grad();
        if g.defined() {
            assert!(
                all_finite(&g),
                "the gradient of parameter {p} is not finite"
            );
        }
        assert_eq!(w.get(BAD as i64).abs().max().double_value(&[]), 0.0);
        if let Some((m, v)) = opt.moments(p) {
            assert!(all_finite(m) && all_finite(v), "moments of {p} not finite");
            let (rm, rv) = reference.moments(p).unwrap();
            for i in (0..N).filter(|&i| i != BAD) {
                let i = i as i64;
                assert_bitwise(&m.get(i), &rm.get(i), &format!("m of {p}, member {i}"));
                assert_bitwise(&v.get(i), &rv.get(i), &format!("v of {p}, member {i}"));
            }
        }
        for i in (0..N).filter(|&i| i != BAD) {
            let i = i as i64;
            let r = &reference.params()[p];
            assert_bitwise(&w.get(i), &r.get(i), &format!("w of {p}, member {i}"));
        }
    }
    let norms = opt.weight_norms();
    assert_eq!(norms[BAD], 0.0);
    assert!(norms.iter().all(|n| n.is_finite()));
}

/// Per-member gradient norms and clipping against the solo `clip_grad_norm` (torch's
/// clip_grad_norm_) run on each member's unstacked gradients and against f64 sums by hand (to
/// 1e-6 relative), members below the threshold left bitwise unchanged; per-member weight norms
/// against the solo `total_norm` (to 1e-12).
#[test]
fn per_member_grad_norms_and_clipping_match_solo() {
    let d = data(1, 53);
    // Spread the members' norms over two orders of magnitude.
    let spread: Vec<f64> = (0..N).map(|i| 0.2 * ((i + 1) * (i + 1)) as f64).collect();
    let spread_t = Tensor::from_slice(&spread).to_kind(Kind::Float);
    let grads: Vec<Tensor> = d.grads[0]
        .iter()
        .map(|g| {
            let mut b = vec![1i64; g.dim()];
            b[0] = N as i64;
            g * spread_t.view(b.as_slice())
        })
        .collect();
    let params = leaves(&d.init);
    let mut opt = stacked(&params);
    opt.clear_grads();
    backward(&params, &grads, 0);
    assert!(!params[NO_GRAD].grad().defined());
    let before: Vec<Tensor> = params
        .iter()
        .map(|p| {
            let g = p.grad();
            if g.defined() { g.copy() } else { g }
        })
        .collect();

    // By hand, in f64.
    let by_hand: Vec<f64> = (0..N as i64)
        .map(|i| {
            before
                .iter()
                .filter(|g| g.defined())
                .map(|g| {
                    g.get(i)
                        .to_kind(Kind::Double)
                        .square()
                        .sum(Kind::Double)
                        .double_value(&[])
                })
                .sum::<f64>()
                .sqrt()
        })
        .collect();
    let norms = Vec::<f32>::try_from(&opt.grad_norms()).unwrap();
    assert_eq!(norms.len(), N);
    for i in 0..N {
        let r = (norms[i] as f64 - by_hand[i]).abs() / by_hand[i];
        assert!(
            r <= 1e-6,
            "member {i}: norm {} by hand {}",
            norms[i],
            by_hand[i]
        );
    }

    let max_norm = (by_hand[2] + by_hand[3]) / 2.0;
    assert!(by_hand.iter().any(|&n| n < max_norm) && by_hand.iter().any(|&n| n > max_norm));
    let returned = Vec::<f32>::try_from(&opt.clip_grad_norms(max_norm)).unwrap();
    assert_eq!(returned, norms, "clip returns the norms before clipping");

    for i in 0..N {
        let solo: Vec<Tensor> = leaves(
            &d.init
                .iter()
                .map(|p| p.get(i as i64))
                .collect::<Vec<Tensor>>(),
        );
        let g: Vec<Tensor> = grads.iter().map(|g| g.get(i as i64)).collect();
        backward(&solo, &g, 0);
        let solo_norm = clip_grad_norm(&solo, max_norm).double_value(&[]);
        let r = (norms[i] as f64 - solo_norm).abs() / solo_norm;
        assert!(
            r <= 1e-6,
            "member {i}: stacked norm {} solo {solo_norm}",
            norms[i]
        );
        for (p, (w, s)) in params.iter().zip(&solo).enumerate() {
            if p == NO_GRAD {
                assert!(!w.grad().defined());
                continue;
            }
            let ours = w.grad().get(i as i64);
            let r = rel_diff(&ours, &s.grad());
            assert!(
                r <= 1e-6,
                "member {i} parameter {p}: clipped grads differ by {r:e}"
            );
            if by_hand[i] < max_norm {
                assert_bitwise(
                    &ours,
                    &before[p].get(i as i64),
                    &format!("member {i} clipped"),
                );
            } else {
                let ratio = ours.abs().sum(Kind::Double).double_value(&[])
                    / before[p]
                        .get(i as i64)
                        .abs()
                        .sum(Kind::Double)
                        .double_value(&[]);
                assert!(
                    (ratio - max_norm / by_hand[i]).abs() < 1e-5,
                    "member {i}: {ratio}"
                );
            }
        }
    }

    let weight_norms = opt.weight_norms();
    for (i, norm) in weight_norms.iter().enumerate() {
        let solo: Vec<Tensor> = params.iter().map(|p| p.get(i as i64)).collect();
        let expected = total_norm(&solo);
        assert!(
            (norm - expected).abs() <= 1e-12 * expected,
            "member {i}: {norm} vs {expected}"
        );
    }
}

/// Saving after 10 steps (a member frozen at step 5), loading into a fresh optimizer over the
/// saved parameters and stepping on 10 more steps is bitwise equal to the same 20 steps without the
/// round trip; a checkpoint of other variants is refused. (The saved group is not stepped after
/// saving: on CPU `State::put_tensor` keeps the tensor itself, as a trainer's checkpoint written to
/// disk at once may.)
#[test]
fn save_and_load_round_trip_is_bitwise() {
    const STEPS: usize = 20;
    const SAVE_AT: usize = 10;
    let freeze_at_5 = |t: usize, opt: &mut StackedAdam| {
        if t == 5 {
            opt.freeze(1);
        }
    };
    let d = data(STEPS, 59);
    let params = leaves(&d.init);
    let mut whole = stacked(&params);
    run_group(&mut whole, &params, &d, 0..STEPS, freeze_at_5);

    let first_params = leaves(&d.init);
    let mut first = stacked(&first_params);
    run_group(&mut first, &first_params, &d, 0..SAVE_AT, freeze_at_5);
    let mut st = State::default();
    first.save_state(&mut st, "opt").unwrap();

    let mut wrong = StackedAdam::new(
        leaves(&first_params)
            .iter()
            .map(Tensor::shallow_clone)
            .collect(),
        BETAS.0,
        BETAS.1,
        EPS,
        &[Variant::ADAMW; N],
    );
    let err = wrong.load_state(&mut State::default(), "opt").unwrap_err();
    assert!(
        format!("{err:#}").contains("no stacked optimizer state"),
        "{err:#}"
    );
    let mut other = State::default();
    first.save_state(&mut other, "opt").unwrap();
    let err = wrong.load_state(&mut other, "opt").unwrap_err();
    assert!(format!("{err:#}").contains("variants"), "{err:#}");

    let resumed = leaves(&first_params);
    drop(first);
    let mut opt = stacked(&resumed);
    opt.load_state(&mut st, "opt").unwrap();
    assert_eq!(opt.frozen(), whole.frozen());
    run_group(&mut opt, &resumed, &d, SAVE_AT..STEPS, |_, _| {});

    for p in 0..SHAPES.len() {
        assert_eq!(opt.steps(p), whole.steps(p));
        assert_bitwise(&opt.params()[p], &whole.params()[p], &format!("w{p}"));
        match (whole.moments(p), opt.moments(p)) {
            (Some((m, v)), Some((m2, v2))) => {
                assert_bitwise(m2, m, &format!("m{p}"));
                assert_bitwise(v2, v, &format!("v{p}"));
            }
            (None, None) => assert_eq!(p, NO_GRAD),
            _ => panic!("state of parameter {p} differs"),
        }
    }
}
