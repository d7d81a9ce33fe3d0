//! Optimizer step time alone of every optimizer of the pipeline (`repro_torch::optim::adam` V1–V5, V1
//! with the E8 drown-out diagnostic on, and `repro_torch::optim::sgd` with momentum 0.9) over a fixed
//! parameter set with fixed random gradients, λ = 1e-2 and lr = 1e-3. `scripts/bench.py` runs it
//! beside `scripts/bench_adam_step.py` (torch.optim on the same shapes) and reports the ratios.
//! `REPRO_BENCH_DEVICE` picks the device (examples/common).
//!
//!   bench_adam_step <shapes> <threads> <warmup> <steps> <repeats>
//!
//! `shapes` is a comma-separated list of tensor shapes with dimensions joined by `x`, e.g.
//! `4000x1000,3000x1000,3000` (the same string is given to the Python side). Prints
//! `params <count> tensors <n>` first, then per repeat one line per row: `<row> ms <median> cpu_ms
//! <median>` (wall clock and the process's CPU time), the median over `steps` timed steps that follow `warmup` untimed ones of a fresh optimizer (fresh
//! moments, parameters reset to their initial values).

mod common;

use anyhow::Context;
use repro_torch::optim::adam::{Adam, AdamConfig, Variant};
use repro_torch::optim::sgd::Sgd;
use tch::{Kind, Tensor};

const LR: f64 = 1e-3;
const WEIGHT_DECAY: f64 = 1e-2;

const USAGE: &str = "usage: bench_adam_step <shapes, e.g. 4000x1000,3000x1000,3000> <threads> \
                     <warmup> <steps> <repeats>";

/// "4000x1000,3000" → [[4000, 1000], [3000]]; every dimension a positive integer.
fn parse_shapes(s: &str) -> anyhow::Result<Vec<Vec<i64>>> {
    let shapes: Vec<Vec<i64>> = s
        .split(',')
        .map(|shape| {
            shape
                .split('x')
                .map(|d| common::int(&format!("shapes: dimension in '{shape}'"), d.trim(), 1))
                .collect()
        })
        .collect::<anyhow::Result<_>>()?;
    Ok(shapes)
}

fn median(mut xs: Vec<f64>) -> f64 {
    xs.sort_by(f64::total_cmp);
    let n = xs.len();
    if n % 2 == 1 {
        xs[n / 2]
    } else {
        (xs[n / 2 - 1] + xs[n / 2]) / 2.0
    }
}

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [shapes, threads, warmup, steps, repeats] = args.as_slice() else {
        anyhow::bail!("{USAGE}\n(got {} arguments, expected 5)", args.len());
    };
    let shapes = parse_shapes(shapes)?;
    tch::set_num_threads(common::int("threads", threads, 1)? as i32);
    let warmup = common::int("warmup", warmup, 0)? as usize;
    let steps = common::int("steps", steps, 1)? as usize;
    let repeats = common::int("repeats", repeats, 0)? as usize;

    let device = common::device()?;
    tch::manual_seed(0);
    let opts = (Kind::Float, device);
    let init: Vec<Tensor> = shapes.iter().map(|s| Tensor::randn(s, opts)).collect();
    let params: Vec<Tensor> = init
        .iter()
        .map(|t| t.copy().set_requires_grad(true))
        .collect();
    // Gradients: backward of Σ p·g leaves exactly g in p.grad (tch has no grad setter); they stay
    // fixed because nothing zeroes them.
    let grads: Vec<Tensor> = shapes.iter().map(|s| Tensor::randn(s, opts)).collect();
    let total = params
        .iter()
        .zip(&grads)
        .map(|(p, g)| (p * g).sum(Kind::Float))
        .reduce(|a, b| a + b)
        .context("shapes: expected at least one shape")?;
    total.backward();
    let count: i64 = params.iter().map(|p| p.numel() as i64).sum();
    println!("params {count} tensors {}", params.len());

    let rows: [(&str, Option<Variant>, bool); 7] = [
        ("v1", Some(Variant::ADAM_L2), false),
        ("v2", Some(Variant::ADAMW), false),
        ("v3", Some(Variant::L2_IN_M), false),
        ("v4", Some(Variant::L2_IN_V), false),
        ("v5", Some(Variant::ADAPTIVE_DECOUPLED), false),
        ("v1_drown_out", Some(Variant::ADAM_L2), true),
        ("sgd", None, false),
    ];
    /// The two optimizers behind one step call.
    enum Opt {
        Adam(Adam),
        Sgd(Sgd),
    }
    for _ in 0..repeats {
        for (name, variant, drown) in rows {
            tch::no_grad(|| {
                for (p, p0) in params.iter().zip(&init) {
                    p.shallow_clone().copy_(p0);
                }
            });
            let shallow = || params.iter().map(|p| p.shallow_clone()).collect();
            let mut opt = match variant {
                Some(variant) => {
                    let mut adam = Adam::new(
                        shallow(),
                        AdamConfig {
                            variant,
                            ..AdamConfig::default()
                        },
                    );
                    adam.track_drown_out(drown);
                    Opt::Adam(adam)
                }
                None => Opt::Sgd(Sgd::new(shallow(), 0.9)),
            };
            let (mut times, mut cpu_times) = (Vec::new(), Vec::new());
            for i in 0..warmup + steps {
                let (secs, cpu) = common::timed(device, || match &mut opt {
                    Opt::Adam(adam) => {
                        adam.step(LR, WEIGHT_DECAY);
                        if drown {
                            // Read each step, as a per-step logger would (a host read).
                            std::hint::black_box(adam.drown_out());
                        }
                    }
                    Opt::Sgd(sgd) => sgd.step(LR, WEIGHT_DECAY),
                });
                if i >= warmup {
                    times.push(secs * 1e3);
                    cpu_times.push(cpu * 1e3);
                }
            }
            println!(
                "{name} ms {:.3} cpu_ms {:.3}",
                median(times),
                median(cpu_times)
            );
        }
    }
    Ok(())
}
