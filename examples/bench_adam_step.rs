//! Optimizer step time alone of the Adam family (`repro::optim::adam`, V1–V5, and V1 with the E8
//! drown-out diagnostic on) over a fixed parameter set with fixed random gradients, λ = 1e-2 and
//! lr = 1e-3. `scripts/bench_lm.sh` runs it beside `scripts/bench_adam_step.py` (torch.optim.Adam
//! on the same shapes) and reports ms/step and the ratio.
//!
//!   bench_adam_step <shapes> <threads> <warmup> <steps> <repeats>
//!
//! `shapes` is a comma-separated list of tensor shapes with dimensions joined by `x`, e.g.
//! `4000x1000,3000x1000,3000` (the same string is given to the Python side). Prints
//! `params <count> tensors <n>` first, then per repeat one line per row: `<row> ms <median> cpu_ms
//! <median>` (wall clock and the process's CPU time), the median over `steps` timed steps that follow `warmup` untimed ones of a fresh optimizer (fresh
//! moments, parameters reset to their initial values).

use std::time::Instant;

use anyhow::Context;
use repro::optim::adam::{Adam, AdamConfig, Variant};
use tch::{Device, Kind, Tensor};

const LR: f64 = 1e-3;
const WEIGHT_DECAY: f64 = 1e-2;

const USAGE: &str = "usage: bench_adam_step <shapes, e.g. 4000x1000,3000x1000,3000> <threads> \
                     <warmup> <steps> <repeats>";

fn int(name: &str, s: &str, min: i64) -> anyhow::Result<i64> {
    let v: i64 = s
        .parse()
        .with_context(|| format!("{name}: expected an integer ≥ {min}, got '{s}'"))?;
    anyhow::ensure!(v >= min, "{name}: expected an integer ≥ {min}, got {v}");
    Ok(v)
}

/// "4000x1000,3000" → [[4000, 1000], [3000]]; every dimension a positive integer.
fn parse_shapes(s: &str) -> anyhow::Result<Vec<Vec<i64>>> {
    let shapes: Vec<Vec<i64>> = s
        .split(',')
        .map(|shape| {
            shape
                .split('x')
                .map(|d| int(&format!("shapes: dimension in '{shape}'"), d.trim(), 1))
                .collect()
        })
        .collect::<anyhow::Result<_>>()?;
    Ok(shapes)
}

/// CPU time of this process (all threads), seconds.
fn cpu_secs() -> f64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: a valid pointer to a timespec; the clock id is a constant Linux supports.
    unsafe { libc::clock_gettime(libc::CLOCK_PROCESS_CPUTIME_ID, &mut ts) };
    ts.tv_sec as f64 + ts.tv_nsec as f64 * 1e-9
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
    tch::set_num_threads(int("threads", threads, 1)? as i32);
    let warmup = int("warmup", warmup, 0)? as usize;
    let steps = int("steps", steps, 1)? as usize;
    let repeats = int("repeats", repeats, 0)? as usize;

    tch::manual_seed(0);
    let opts = (Kind::Float, Device::Cpu);
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

    let rows: [(&str, Variant, bool); 6] = [
        ("v1", Variant::ADAM_L2, false),
        ("v2", Variant::ADAMW, false),
        ("v3", Variant::L2_IN_M, false),
        ("v4", Variant::L2_IN_V, false),
        ("v5", Variant::ADAPTIVE_DECOUPLED, false),
        ("v1_drown_out", Variant::ADAM_L2, true),
    ];
    for _ in 0..repeats {
        for (name, variant, drown) in rows {
            tch::no_grad(|| {
                for (p, p0) in params.iter().zip(&init) {
                    p.shallow_clone().copy_(p0);
                }
            });
            let mut opt = Adam::new(
                params.iter().map(|p| p.shallow_clone()).collect(),
                AdamConfig {
                    variant,
                    ..AdamConfig::default()
                },
            );
            opt.track_drown_out(drown);
            let (mut times, mut cpu_times) = (Vec::new(), Vec::new());
            for i in 0..warmup + steps {
                let (start, cpu_start) = (Instant::now(), cpu_secs());
                opt.step(LR, WEIGHT_DECAY);
                if drown {
                    // Read each step, as a per-step logger would (a host read; on CPU, cheap).
                    std::hint::black_box(opt.drown_out());
                }
                if i >= warmup {
                    times.push(start.elapsed().as_secs_f64() * 1e3);
                    cpu_times.push((cpu_secs() - cpu_start) * 1e3);
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
