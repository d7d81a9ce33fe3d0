//! Sgd against torch.optim.SGD itself (tests/python/sgd_reference.py), and the Adam family against
//! torch.optim.Adam / AdamW and the formulas of docs/paper.md#e7 (tests/python/adam_reference.py),
//! over schedules whose learning rate and weight decay change between steps, with fixed random
//! gradients.

use repro_torch::optim::adam::{Adam, AdamConfig, DecayMode, Variant};
use repro_torch::optim::sgd::Sgd;
use std::collections::HashMap;
use tch::{Kind, Tensor};

const SHAPES: &[&[i64]] = &[&[7], &[5, 3], &[4, 3, 3, 3], &[2, 6, 1, 5], &[1]];
/// Parameter that never receives a gradient: both sides skip it.
const NO_GRAD: usize = 4;
/// Parameter left out of the loss at some steps: its gradient stays zeroed by `zero_grad`, so it
/// still decays and rides its momentum, as in torch with `zero_grad(set_to_none=False)` (the
/// reference gets a zero gradient for those steps).
const SOMETIMES: usize = 1;

fn schedule() -> Vec<(f64, f64)> {
    // lr decays, weight decay switches on and off (including λ = 0 steps), as the paper's
    // schedules do per epoch.
    vec![
        (0.1, 5e-4),
        (0.1, 5e-4),
        (0.1, 0.0),
        (0.05, 0.0),
        (0.05, 1e-2),
        (0.02, 1e-2),
        (0.02, 0.0),
        (0.01, 5e-4),
        (0.3, 0.1),
        (0.001, 0.0),
        (0.01, 5e-3),
        (0.01, 5e-3),
    ]
}

fn in_loss(t: usize, i: usize) -> bool {
    i != NO_GRAD && !(i == SOMETIMES && (t == 3 || t == 7))
}

fn rel_diff(a: &Tensor, b: &Tensor) -> f64 {
    let scale = b.abs().max().double_value(&[]).max(1e-30);
    (a - b).abs().max().double_value(&[]) / scale
}

fn check(kind: Kind, momentum: f64, tol: f64) {
    tch::manual_seed(17);
    let sched = schedule();
    let init: Vec<Tensor> = SHAPES
        .iter()
        .map(|s| Tensor::randn(*s, (kind, tch::Device::Cpu)))
        .collect();
    let grads: Vec<Vec<Tensor>> = (0..sched.len())
        .map(|_| {
            SHAPES
                .iter()
                .map(|s| Tensor::randn(*s, (kind, tch::Device::Cpu)))
                .collect()
        })
        .collect();

    // Inputs for the reference.
    let dir = tempfile::tempdir().unwrap();
    let (inp, out) = (dir.path().join("in.npz"), dir.path().join("out.npz"));
    let flat: Vec<f64> = sched.iter().flat_map(|&(a, b)| [a, b]).collect();
    let mut named: Vec<(String, Tensor)> = vec![
        ("momentum".into(), Tensor::from(momentum)),
        (
            "schedule".into(),
            Tensor::from_slice(&flat).reshape([sched.len() as i64, 2]),
        ),
    ];
    for (i, p) in init.iter().enumerate() {
        named.push((format!("p{i}"), p.shallow_clone()));
    }
    for (t, gs) in grads.iter().enumerate() {
        for (i, g) in gs.iter().enumerate() {
            if in_loss(t, i) {
                named.push((format!("g{t}_{i}"), g.shallow_clone()));
            } else if i != NO_GRAD {
                named.push((format!("g{t}_{i}"), g.zeros_like()));
            }
        }
    }
    Tensor::write_npz(&named, &inp).unwrap();
    let said = repro_testkit::run_script("sgd_reference.py", &[&inp, &out]);
    assert!(said.starts_with("ok"), "{said}");
    let reference: HashMap<String, Tensor> = Tensor::read_npz(&out).unwrap().into_iter().collect();

    // Ours: gradients enter through backward of Σ p·g, which makes p.grad exactly g; zero_grad
    // between steps (accumulation would show).
    let params: Vec<Tensor> = init
        .iter()
        .map(|p| p.copy().set_requires_grad(true))
        .collect();
    let mut opt = Sgd::new(params.iter().map(|p| p.shallow_clone()).collect(), momentum);
    assert!(opt.momentum_buffer(0).is_none());
    for (t, &(lr, wd)) in sched.iter().enumerate() {
        opt.zero_grad();
        let loss = (0..params.len())
            .filter(|&i| in_loss(t, i))
            .map(|i| (&params[i] * &grads[t][i]).sum(kind))
            .reduce(|a, b| a + b)
            .unwrap();
        loss.backward();
        opt.step(lr, wd);
    }

    for (i, p) in params.iter().enumerate() {
        let r = &reference[&format!("p{i}")];
        assert_eq!(p.kind(), r.kind());
        assert_eq!(p.size(), r.size());
        let d = rel_diff(&p.detach(), r);
        assert!(d <= tol, "param {i} ({kind:?}): rel diff {d:e} > {tol:e}");
        match (opt.momentum_buffer(i), reference.get(&format!("buf{i}"))) {
            (Some(b), Some(r)) => {
                let d = rel_diff(b, r);
                assert!(d <= tol, "buffer {i} ({kind:?}): rel diff {d:e} > {tol:e}");
            }
            (None, None) => assert_eq!(i, NO_GRAD),
            (ours, theirs) => {
                // torch keeps no buffer when momentum is 0; ours always does (the training loop
                // reads it), and then it equals the last step's direction.
                assert!(
                    momentum == 0.0 && ours.is_some() && theirs.is_none(),
                    "buffer {i}: ours {} torch {}",
                    ours.is_some(),
                    theirs.is_some()
                );
            }
        }
    }
    // The parameter without a gradient is untouched; the others moved.
    assert!(params[NO_GRAD].equal(&init[NO_GRAD]));
    assert!(!params[0].detach().equal(&init[0]));
}

#[test]
fn matches_torch_sgd_float32() {
    check(Kind::Float, 0.9, 1e-6);
}

#[test]
fn matches_torch_sgd_float64() {
    check(Kind::Double, 0.9, 1e-13);
}

#[test]
fn matches_torch_sgd_without_momentum() {
    check(Kind::Float, 0.0, 1e-6);
}

#[test]
fn first_step_buffer_is_the_decayed_gradient_and_then_accumulates() {
    // Hand-computed: w = 2, g = 1, λ = 0.5, μ = 0.9, lr = 0.1.
    let w = Tensor::from_slice(&[2.0f64]).set_requires_grad(true);
    let mut opt = Sgd::new(vec![w.shallow_clone()], 0.9);
    (&w * 1.0).sum(Kind::Double).backward();
    opt.step(0.1, 0.5);
    // d = 1 + 0.5·2 = 2; buf = 2; w = 2 − 0.2 = 1.8
    assert_eq!(opt.momentum_buffer(0).unwrap().double_value(&[0]), 2.0);
    assert!((w.double_value(&[0]) - 1.8).abs() < 1e-15);
    opt.zero_grad();
    (&w * 1.0).sum(Kind::Double).backward();
    opt.step(0.1, 0.0);
    // d = 1; buf = 0.9·2 + 1 = 2.8; w = 1.8 − 0.28 = 1.52
    assert!((opt.momentum_buffer(0).unwrap().double_value(&[0]) - 2.8).abs() < 1e-15);
    assert!((w.double_value(&[0]) - 1.52).abs() < 1e-15);
    // zero_grad really zeroes: a step on a zeroed gradient only rides the momentum.
    opt.zero_grad();
    assert_eq!(w.grad().double_value(&[0]), 0.0);
    opt.step(0.1, 0.0);
    // buf = 0.9·2.8 = 2.52; w = 1.52 − 0.252 = 1.268
    assert!((w.double_value(&[0]) - 1.268).abs() < 1e-14);
}

// ---------------------------------------------------------------------------------------------
// Adam family (docs/paper.md#e7)

/// 22 steps: lr from 1e-1 down to 1e-4, λ on and off (λ = 0 steps), large λ at times.
fn adam_schedule() -> Vec<(f64, f64)> {
    vec![
        (1e-3, 1e-2),
        (1e-3, 1e-2),
        (1e-3, 0.0),
        (1e-2, 0.0),
        (1e-2, 0.1),
        (1e-2, 0.5),
        (5e-2, 0.5),
        (5e-2, 0.0),
        (1e-1, 5e-4),
        (1e-1, 1e-2),
        (3e-2, 1e-2),
        (3e-2, 0.0),
        (1e-2, 0.2),
        (1e-2, 0.2),
        (3e-3, 0.0),
        (3e-3, 5e-2),
        (1e-3, 5e-2),
        (1e-3, 1.0),
        (3e-4, 1.0),
        (3e-4, 0.0),
        (1e-4, 1e-2),
        (1e-4, 1e-2),
    ]
}

struct AdamData {
    kind: Kind,
    sched: Vec<(f64, f64)>,
    init: Vec<Tensor>,
    grads: Vec<Vec<Tensor>>,
}

fn adam_data(kind: Kind) -> AdamData {
    tch::manual_seed(23);
    let sched = adam_schedule();
    let init = SHAPES
        .iter()
        .map(|s| Tensor::randn(*s, (kind, tch::Device::Cpu)))
        .collect();
    let grads = (0..sched.len())
        .map(|_| {
            SHAPES
                .iter()
                .map(|s| Tensor::randn(*s, (kind, tch::Device::Cpu)))
                .collect()
        })
        .collect();
    AdamData {
        kind,
        sched,
        init,
        grads,
    }
}

/// Run tests/python/adam_reference.py on `data`; the keys are described there.
fn adam_reference(data: &AdamData, betas: (f64, f64), eps: f64) -> HashMap<String, Tensor> {
    let dir = tempfile::tempdir().unwrap();
    let (inp, out) = (dir.path().join("in.npz"), dir.path().join("out.npz"));
    let flat: Vec<f64> = data.sched.iter().flat_map(|&(a, b)| [a, b]).collect();
    let mut named: Vec<(String, Tensor)> = vec![
        ("betas".into(), Tensor::from_slice(&[betas.0, betas.1])),
        ("eps".into(), Tensor::from(eps)),
        (
            "schedule".into(),
            Tensor::from_slice(&flat).reshape([data.sched.len() as i64, 2]),
        ),
    ];
    for (i, p) in data.init.iter().enumerate() {
        named.push((format!("p{i}"), p.shallow_clone()));
    }
    for (t, gs) in data.grads.iter().enumerate() {
        for (i, g) in gs.iter().enumerate() {
            if in_loss(t, i) {
                named.push((format!("g{t}_{i}"), g.shallow_clone()));
            } else if i != NO_GRAD {
                named.push((format!("g{t}_{i}"), g.zeros_like()));
            }
        }
    }
    Tensor::write_npz(&named, &inp).unwrap();
    let said = repro_testkit::run_script("adam_reference.py", &[&inp, &out]);
    assert!(said.starts_with("ok"), "{said}");
    Tensor::read_npz(&out).unwrap().into_iter().collect()
}

/// Ours over `data`: gradients through backward of Σ p·g, zero_grad between steps.
fn adam_run(data: &AdamData, cfg: AdamConfig) -> (Vec<Tensor>, Adam) {
    let params: Vec<Tensor> = data
        .init
        .iter()
        .map(|p| p.copy().set_requires_grad(true))
        .collect();
    let mut opt = Adam::new(params.iter().map(|p| p.shallow_clone()).collect(), cfg);
    for (t, &(lr, wd)) in data.sched.iter().enumerate() {
        opt.zero_grad();
        let loss = (0..params.len())
            .filter(|&i| in_loss(t, i))
            .map(|i| (&params[i] * &data.grads[t][i]).sum(data.kind))
            .reduce(|a, b| a + b)
            .unwrap();
        loss.backward();
        opt.step(lr, wd);
    }
    let params = params.iter().map(|p| p.detach()).collect();
    (params, opt)
}

/// Max relative difference (as `rel_diff`, per tensor) of params and moments against
/// `reference` keys `{prefix}_p{i}`, `{prefix}_m{i}`, `{prefix}_v{i}`; checks that state exists on
/// exactly the same params. Compares in the reference's dtype.
fn adam_max_diff(
    params: &[Tensor],
    opt: &Adam,
    reference: &HashMap<String, Tensor>,
    prefix: &str,
) -> f64 {
    let mut worst = 0f64;
    for (i, p) in params.iter().enumerate() {
        let r = &reference[&format!("{prefix}_p{i}")];
        assert_eq!(p.size(), r.size());
        worst = worst.max(rel_diff(&p.to_kind(r.kind()), r));
        match (
            opt.moments(i),
            reference.get(&format!("{prefix}_m{i}")),
            reference.get(&format!("{prefix}_v{i}")),
        ) {
            (Some((m, v)), Some(rm), Some(rv)) => {
                worst = worst.max(rel_diff(&m.to_kind(rm.kind()), rm));
                worst = worst.max(rel_diff(&v.to_kind(rv.kind()), rv));
            }
            (None, None, None) => assert_eq!(i, NO_GRAD, "{prefix}: no state for param {i}"),
            (ours, theirs, _) => panic!(
                "{prefix} param {i}: state ours {} reference {}",
                ours.is_some(),
                theirs.is_some()
            ),
        }
    }
    worst
}

fn adam_cfg(betas: (f64, f64), eps: f64, variant: Variant) -> AdamConfig {
    AdamConfig {
        beta1: betas.0,
        beta2: betas.1,
        eps,
        variant,
    }
}

/// V1 against torch.optim.Adam and V2 against torch.optim.AdamW in `kind` (≤ `tol`); in float64
/// also V3–V5, `l2_out_of_m` and `adaptive_decoupled_stable` against the formula reference, and the
/// reference's V1/V2 against torch (which checks the reference itself); in float32 the last two
/// against the formulas evaluated in float32. Measured on CPU (torch 2.11): V1/V2 equal torch's to
/// the last bit in both dtypes, V3–V5 and the last two within ~6e-16 of the float64 formulas; the
/// tolerances leave room for other CPUs' kernels.
fn check_adam_family(kind: Kind, betas: (f64, f64), eps: f64, tol: f64) {
    let data = adam_data(kind);
    let reference = adam_reference(&data, betas, eps);
    let pairs: &[(Variant, &str)] = if kind == Kind::Double {
        &[
            (Variant::ADAM_L2, "torch_adam"),
            (Variant::ADAMW, "torch_adamw"),
            (Variant::ADAM_L2, "ref_v1"),
            (Variant::ADAMW, "ref_v2"),
            (Variant::L2_IN_M, "ref_v3"),
            (Variant::L2_IN_V, "ref_v4"),
            (Variant::ADAPTIVE_DECOUPLED, "ref_v5"),
            (Variant::L2_OUT_OF_M, "ref_l2_out_of_m"),
            (
                Variant::ADAPTIVE_DECOUPLED_STABLE,
                "ref_adaptive_decoupled_stable",
            ),
        ]
    } else {
        &[
            (Variant::ADAM_L2, "torch_adam"),
            (Variant::ADAMW, "torch_adamw"),
            (Variant::L2_OUT_OF_M, "refin_l2_out_of_m"),
            (
                Variant::ADAPTIVE_DECOUPLED_STABLE,
                "refin_adaptive_decoupled_stable",
            ),
        ]
    };
    for &(variant, prefix) in pairs {
        let (params, opt) = adam_run(&data, adam_cfg(betas, eps, variant));
        let d = adam_max_diff(&params, &opt, &reference, prefix);
        println!(
            "{} vs {prefix} ({kind:?}, betas {betas:?}, eps {eps:e}): max rel diff {d:e}",
            variant.name()
        );
        assert!(
            d <= tol,
            "{} vs {prefix} ({kind:?}): rel diff {d:e} > {tol:e}",
            variant.name()
        );
        // The parameter without a gradient is untouched and has taken no step.
        assert!(params[NO_GRAD].equal(&data.init[NO_GRAD]));
        assert_eq!(opt.steps(NO_GRAD), 0);
        assert_eq!(opt.steps(0), data.sched.len() as u64);
        assert_eq!(opt.steps(SOMETIMES), data.sched.len() as u64);
    }
    // The reference's own V1/V2 agree with torch: the formulas are what torch computes.
    if kind == Kind::Double {
        for (ours, theirs) in [("ref_v1", "torch_adam"), ("ref_v2", "torch_adamw")] {
            for i in (0..SHAPES.len()).filter(|&i| i != NO_GRAD) {
                let d = rel_diff(
                    &reference[&format!("{ours}_p{i}")],
                    &reference[&format!("{theirs}_p{i}")],
                );
                assert!(d <= tol, "{ours} vs {theirs} param {i}: {d:e}");
            }
        }
    }
}

#[test]
fn adam_and_adamw_match_torch_float32() {
    check_adam_family(Kind::Float, (0.9, 0.999), 1e-8, 1e-6);
}

#[test]
fn adam_family_matches_torch_and_formulas_float64() {
    check_adam_family(Kind::Double, (0.9, 0.999), 1e-8, 1e-12);
}

#[test]
fn adam_and_adamw_match_torch_fairseq_betas_float32() {
    // fairseq's transformer settings: β = (0.9, 0.98), ε = 1e-9.
    check_adam_family(Kind::Float, (0.9, 0.98), 1e-9, 1e-6);
}

#[test]
fn adam_family_matches_torch_and_formulas_fairseq_betas_float64() {
    check_adam_family(Kind::Double, (0.9, 0.98), 1e-9, 1e-12);
}

#[test]
fn adam_variants_differ_at_large_weight_decay() {
    // Confusing two variants (a swapped flag, decay mode ignored) must fail here: on the same data
    // with λ = 0.5 every pair of the five ends far apart.
    let mut data = adam_data(Kind::Double);
    data.sched = vec![(1e-2, 0.5); 20];
    let variants = [
        Variant::ADAM_L2,
        Variant::ADAMW,
        Variant::L2_IN_M,
        Variant::L2_IN_V,
        Variant::ADAPTIVE_DECOUPLED,
    ];
    let finals: Vec<Tensor> = variants
        .iter()
        .map(|&v| {
            let (params, _) = adam_run(&data, adam_cfg((0.9, 0.999), 1e-8, v));
            Tensor::cat(
                &params.iter().map(|p| p.flatten(0, -1)).collect::<Vec<_>>(),
                0,
            )
        })
        .collect();
    let start = Tensor::cat(
        &data
            .init
            .iter()
            .map(|p| p.flatten(0, -1))
            .collect::<Vec<_>>(),
        0,
    );
    for a in 0..variants.len() {
        for b in a + 1..variants.len() {
            // Difference of the two trajectories relative to how far they moved.
            let moved = (&finals[a] - &start).abs().max().double_value(&[]);
            let d = (&finals[a] - &finals[b]).abs().max().double_value(&[]) / moved;
            println!("{} vs {}: {d:.3}", variants[a].name(), variants[b].name());
            // V3 and V5 differ only by the lag of r inside m (V3 averages past r, V5 applies
            // this step's r with the same denominator; equal at t = 1): close by design, still
            // apart by well over any rounding (measured 0.018).
            let margin = if a == 2 && b == 4 { 5e-3 } else { 0.05 };
            assert!(
                d > margin,
                "{} and {} are too close: {d:e}",
                variants[a].name(),
                variants[b].name()
            );
        }
    }
}

#[test]
fn adam_first_step_by_hand() {
    // w = 2, g = 4, λ = 0.5 (r = 1), α = 0.1, ε = 0: at t = 1, m̂ = g + a·r and √v̂ = |g + b·r|.
    // (V3 and V5 coincide at the first step for any g: both give 1 + r/|g| in units of α.)
    let cases = [
        (Variant::ADAM_L2, 1.9, 0.5, 0.025),              // u = 5/5
        (Variant::ADAMW, 1.8, 0.4, 0.016),                // w·(1 − 0.05) − 0.1·4/4
        (Variant::L2_IN_M, 1.875, 0.5, 0.016),            // u = 5/4
        (Variant::L2_IN_V, 1.82, 0.4, 0.025),             // 2 − 0.1 − 0.1·4/5
        (Variant::ADAPTIVE_DECOUPLED, 1.875, 0.4, 0.016), // 2 − 0.1·0.5·2/4 − 0.1
        (Variant::L2_OUT_OF_M, 1.9, 0.4, 0.025),          // 2 − 0.1·0.5·2/5 − 0.1·4/5
        // 2/(1 + 0.1·0.5/4) − 0.1·4/4
        (
            Variant::ADAPTIVE_DECOUPLED_STABLE,
            2.0 / 1.0125 - 0.1,
            0.4,
            0.016,
        ),
    ];
    for (variant, w1, m1, v1) in cases {
        let w = Tensor::from_slice(&[2.0f64]).set_requires_grad(true);
        let mut opt = Adam::new(
            vec![w.shallow_clone()],
            adam_cfg((0.9, 0.999), 0.0, variant),
        );
        assert!(opt.moments(0).is_none());
        (&w * 4.0).sum(Kind::Double).backward();
        opt.step(0.1, 0.5);
        let (m, v) = opt.moments(0).unwrap();
        let name = variant.name();
        assert!(
            (w.double_value(&[0]) - w1).abs() < 1e-12,
            "{name}: w {}",
            w.double_value(&[0])
        );
        assert!((m.double_value(&[0]) - m1).abs() < 1e-12, "{name}: m");
        assert!((v.double_value(&[0]) - v1).abs() < 1e-12, "{name}: v");
    }
}

#[test]
fn adam_variant_names_parse_and_round_trip() {
    let all = [
        ("v1", "adam_l2", Variant::ADAM_L2),
        ("v2", "adamw", Variant::ADAMW),
        ("v3", "l2_in_m", Variant::L2_IN_M),
        ("v4", "l2_in_v", Variant::L2_IN_V),
        ("v5", "adaptive_decoupled", Variant::ADAPTIVE_DECOUPLED),
        ("", "l2_out_of_m", Variant::L2_OUT_OF_M),
        (
            "",
            "adaptive_decoupled_stable",
            Variant::ADAPTIVE_DECOUPLED_STABLE,
        ),
    ];
    for (short, long, v) in all {
        if !short.is_empty() {
            assert_eq!(Variant::parse(short), Some(v));
        }
        assert_eq!(Variant::parse(long), Some(v));
        assert_eq!(Variant::parse(&long.to_uppercase()), Some(v));
        assert_eq!(v.name(), long);
    }
    assert_eq!(
        Variant::names().collect::<Vec<_>>(),
        all.iter().map(|(_, long, _)| *long).collect::<Vec<_>>()
    );
    // Every kind that takes a `variant` offers exactly the named variants.
    for kind in ["lm", "translate", "dqn"] {
        let decl = repro_core::pipeline::kinds::kind(kind).unwrap();
        let spec = decl.params.iter().find(|p| p.name == "variant").unwrap();
        let repro_core::pipeline::params::ParamType::Choice(choices) = spec.ty else {
            panic!("{kind}: `variant` is not a choice");
        };
        assert_eq!(
            choices.to_vec(),
            Variant::names().collect::<Vec<_>>(),
            "{kind}"
        );
    }
    assert_eq!(
        Variant::parse(""),
        None,
        "no variant has an empty short name"
    );
    assert_eq!(Variant::parse("v6"), None);
    assert_eq!(Variant::parse("adam"), None);
    let odd = Variant {
        l2_in_m: true,
        l2_in_v: true,
        decay: DecayMode::Plain,
    };
    assert_eq!(odd.name(), "custom");
    assert_eq!(Variant::ADAMW.decay, DecayMode::Plain);
}

#[test]
fn drown_out_by_hand() {
    // Two params, float64, α = 0 so w stays put: A: w = [2, 0], g = [0, 1]; B: w = [2], g = [1].
    // Step 1, λ = 0.5: r = [1, 0, 1], g = [0, 1, 1] (flattened).
    //   ‖r‖/‖g‖ = 1; m^g = 0.1·[0, 1, 1], m^r = 0.1·[1, 0, 1] → share 1/2;
    //   V1: m = m^g + m^r = 0.1·[1, 1, 2] → cos = 3/(√6·√2); V2: m = m^g → cos = 1.
    // Step 2, λ = 0, same g: ‖r‖/‖g‖ = 0; m^g = 0.19·[0, 1, 1], m^r = 0.09·[1, 0, 1]
    //   → share = 0.09/0.28; V1: m = [0.09, 0.19, 0.28] → cos = 0.47/(√0.1226·√2).
    let close = |a: f64, b: f64, what: &str| assert!((a - b).abs() < 1e-12, "{what}: {a} vs {b}");
    for (variant, cos1, cos2) in [
        (
            Variant::ADAM_L2,
            3.0 / 12f64.sqrt(),
            0.47 / (0.1226f64.sqrt() * 2f64.sqrt()),
        ),
        (Variant::ADAMW, 1.0, 1.0),
    ] {
        let a = Tensor::from_slice(&[2.0f64, 0.0]).set_requires_grad(true);
        let b = Tensor::from_slice(&[2.0f64]).set_requires_grad(true);
        let mut opt = Adam::new(
            vec![a.shallow_clone(), b.shallow_clone()],
            adam_cfg((0.9, 0.999), 1e-8, variant),
        );
        let ga = Tensor::from_slice(&[0.0f64, 1.0]);
        let backward = |opt: &mut Adam| {
            opt.zero_grad();
            ((&a * &ga).sum(Kind::Double) + b.sum(Kind::Double)).backward();
        };
        assert!(opt.drown_out().is_none());
        // Off by default: nothing computed.
        backward(&mut opt);
        opt.step(0.0, 0.5);
        assert!(opt.drown_out().is_none());

        let mut opt = Adam::new(
            vec![a.shallow_clone(), b.shallow_clone()],
            adam_cfg((0.9, 0.999), 1e-8, variant),
        );
        opt.track_drown_out(true);
        assert!(opt.drown_out().is_none());
        backward(&mut opt);
        opt.step(0.0, 0.5);
        let d = opt.drown_out().unwrap();
        close(d.l2_over_grad, 1.0, "l2_over_grad 1");
        close(d.l2_share_of_m, 0.5, "share 1");
        close(d.cos_m_mg, cos1, "cos 1");
        // Per group, A = group 0, B = group 2 (group 1 has no parameter): A alone has r = [1, 0],
        // g = [0, 1], m^g = 0.1·[0, 1], m^r = 0.1·[1, 0]; B alone r = g = [1].
        let groups = opt.drown_out_by_group(&[0, 2], 3);
        assert!(
            groups[1].is_none(),
            "a group without parameters has no diagnostic"
        );
        let (ga_d, gb_d) = (groups[0].unwrap(), groups[2].unwrap());
        close(ga_d.l2_over_grad, 1.0, "group A l2_over_grad");
        close(gb_d.l2_over_grad, 1.0, "group B l2_over_grad");
        close(ga_d.l2_share_of_m, 0.5, "group A share");
        close(gb_d.l2_share_of_m, 0.5, "group B share");
        let (cos_a, cos_b) = if variant == Variant::ADAM_L2 {
            (0.5f64.sqrt(), 1.0)
        } else {
            (1.0, 1.0)
        };
        close(ga_d.cos_m_mg, cos_a, "group A cos");
        close(gb_d.cos_m_mg, cos_b, "group B cos");
        backward(&mut opt);
        opt.step(0.0, 0.0);
        let d = opt.drown_out().unwrap();
        close(d.l2_over_grad, 0.0, "l2_over_grad 2");
        close(d.l2_share_of_m, 0.09 / 0.28, "share 2");
        close(d.cos_m_mg, cos2, "cos 2");
        assert!(
            a.equal(&Tensor::from_slice(&[2.0f64, 0.0])),
            "α = 0 moved w"
        );
        opt.track_drown_out(false);
        assert!(opt.drown_out().is_none());
        assert!(opt.drown_out_by_group(&[0, 0], 1)[0].is_none());
    }
}

#[test]
fn drown_out_sampled_every_n_steps_equals_every_step() {
    // Sampling every 2nd step must give, at step 2, exactly what tracking every step gives: the
    // shadows move on unsampled steps too.
    let make = || {
        let w = Tensor::from_slice(&[1.0f64, -2.0, 0.5]).set_requires_grad(true);
        (
            w.shallow_clone(),
            Adam::new(vec![w], adam_cfg((0.9, 0.999), 1e-8, Variant::ADAM_L2)),
        )
    };
    let (w1, mut every1) = make();
    let (w2, mut every2) = make();
    every1.track_drown_out(true);
    every2.track_drown_out_every(2);
    let grads = [[0.3f64, -0.1, 0.2], [-0.2, 0.4, 0.1]];
    for (t, g) in grads.iter().enumerate() {
        for (w, opt) in [(&w1, &mut every1), (&w2, &mut every2)] {
            opt.zero_grad();
            (w * Tensor::from_slice(g)).sum(Kind::Double).backward();
            opt.step(1e-2, 0.1);
        }
        if t == 0 {
            assert!(every2.drown_out().is_none(), "step 1 is not sampled");
        }
    }
    assert_eq!(every1.drown_out(), every2.drown_out());
    assert!(every2.drown_out().unwrap().l2_share_of_m > 0.0);
}

#[test]
fn adaptive_decoupled_stable_stays_finite_where_v5_overflows() {
    // Gradients ×1e-6 make √v̂ ≈ 1e-6, so with αλ = 1e-5 the adaptive decay's k = αλ/d is about
    // 10 on most coordinates: V5 multiplies w by 1 − k ≈ −9 per step (past its bound k < 2), the
    // implicit decay by 1/(1 + k) ≈ 1/11.
    tch::manual_seed(5);
    let n = 64;
    let init = Tensor::randn([n], (Kind::Float, tch::Device::Cpu));
    let grads: Vec<Tensor> = (0..100)
        .map(|_| Tensor::randn([n], (Kind::Float, tch::Device::Cpu)) * 1e-6)
        .collect();
    let (lr, wd) = (1e-3, 1e-2);
    let run = |variant: Variant| {
        let w = init.copy().set_requires_grad(true);
        let mut opt = Adam::new(
            vec![w.shallow_clone()],
            adam_cfg((0.9, 0.999), 1e-8, variant),
        );
        opt.track_drown_out(true);
        let mut past_at_first_step = f64::NAN;
        for (t, g) in grads.iter().enumerate() {
            opt.zero_grad();
            (&w * g).sum(Kind::Float).backward();
            opt.step(lr, wd);
            if t == 0 {
                past_at_first_step = opt.drown_out().unwrap().past_stability_bound;
            }
        }
        (w.detach(), past_at_first_step)
    };
    let norm = |w: &Tensor| w.norm().double_value(&[]);
    let (v5, v5_past) = run(Variant::ADAPTIVE_DECOUPLED);
    let (stable, stable_past) = run(Variant::ADAPTIVE_DECOUPLED_STABLE);
    let finite = |w: &Tensor| w.isfinite().all().int64_value(&[]) == 1;
    println!(
        "‖w₀‖ {:.3e}; after 100 steps: V5 ‖w‖ {:.3e} (finite: {}), stable ‖w‖ {:.3e}; past the \
         bound at step 1: V5 {v5_past}, stable {stable_past}",
        norm(&init),
        norm(&v5),
        finite(&v5),
        norm(&stable)
    );
    assert!(
        !finite(&v5) || norm(&v5) > 1e30,
        "V5 did not blow up: ‖w‖ = {:e}",
        norm(&v5)
    );
    assert!(
        v5_past > 0.5,
        "V5: only {v5_past} of the coordinates past k = 2"
    );
    assert!(finite(&stable), "the implicit decay left w non-finite");
    assert!(
        norm(&stable) < 0.01 * norm(&init),
        "the implicit decay did not shrink w: ‖w‖ {:e} from {:e}",
        norm(&stable),
        norm(&init)
    );
    assert_eq!(stable_past, 0.0, "the implicit decay has no bound to pass");
}
