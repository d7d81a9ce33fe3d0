//! Sgd against torch.optim.SGD itself (tests/python/sgd_reference.py), over a schedule whose
//! learning rate and weight decay change between steps, with fixed random gradients.

mod common;

use repro::optim::sgd::Sgd;
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
    let said = common::python::run_script("sgd_reference.py", &[&inp, &out]);
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
