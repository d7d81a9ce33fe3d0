//! DQN updates/s (`repro_torch::train::rl::dqn::update`) on a fixed random batch: the online net's
//! Q(s, a), the target net's max for the TD target, Huber loss, backward, the gradient norm
//! and an AdamW step (`optim::adam` V2). `scripts/bench.py` runs it beside
//! `scripts/bench_dqn_update.py` (the same update in PyTorch eager) and reports the ratio.
//!
//!   bench_dqn_update <minatar|nature> <C> <H> <W> <actions> <batch> <threads> <warmup> <steps> <repeats>
//!
//! Prints `params <trainable count>` first, then one line per repeat:
//! `updates/s <x> cpu_updates/s <y>` (per wall-clock second and per second of CPU time).
//! `BENCH_BITWISE=1` applies the bitwise runs' libtorch settings (oneDNN off) first.

mod common;

use anyhow::Context;
use repro_torch::nn::dqn::{QNetArch, build};
use repro_torch::nn::param_count;
use repro_torch::optim::adam::{Adam, AdamConfig, Variant};
use repro_torch::train::rl::dqn::{DeviceBatch, update};
use repro_torch::train::rl::replay::Batch;

/// The update's hyper-parameters: MinAtar's lr (docs/paper.md#e6), dopamine's Adam ε, a λ of ours.
const GAMMA: f64 = 0.99;
const LR: f64 = 2.5e-4;
const EPS: f64 = 1.5e-4;
const WEIGHT_DECAY: f64 = 1e-2;

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    anyhow::ensure!(
        args.len() == 10,
        "usage: bench_dqn_update <minatar|nature> <C> <H> <W> <actions> <batch> <threads> \
         <warmup> <steps> <repeats>"
    );
    let arch = QNetArch::parse(&args[0])?;
    let n: Vec<i64> = args[1..]
        .iter()
        .map(|s| {
            s.parse()
                .with_context(|| format!("expected an integer, got '{s}'"))
        })
        .collect::<anyhow::Result<_>>()?;
    let (shape, actions, batch, threads) = ([n[0], n[1], n[2]], n[3], n[4] as usize, n[5]);
    let (warmup, steps, repeats) = (n[6], n[7], n[8]);
    tch::set_num_threads(threads as i32);
    if std::env::var_os("BENCH_BITWISE").is_some() {
        repro_torch::libtorch::apply(&repro_core::runtime::RunSettings {
            device: repro_core::runtime::Device::Cpu,
            threads: threads as usize,
            bitwise: true,
            precision: Default::default(),
            fused: None,
        });
    }
    let device = common::device()?;
    tch::manual_seed(0);
    let online_vs = tch::nn::VarStore::new(device);
    let online = build(arch, &online_vs.root(), shape, actions);
    let target_vs = tch::nn::VarStore::new(device);
    let target = build(arch, &target_vs.root(), shape, actions);
    println!("params {}", param_count(&online_vs));

    // A fixed batch of random frames (0/1 for MinAtar, bytes for Atari), as the replay gives.
    let high = if arch == QNetArch::MinAtar { 2 } else { 256 };
    let len = batch * (shape[0] * shape[1] * shape[2]) as usize;
    let mut x: u64 = 1;
    let mut bytes = |k: usize| -> Vec<u8> {
        (0..k)
            .map(|_| {
                x = x
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                ((x >> 33) % high) as u8
            })
            .collect()
    };
    let host = Batch {
        states: bytes(len),
        next_states: bytes(len),
        actions: (0..batch).map(|i| (i as i64) % actions).collect(),
        rewards: (0..batch).map(|i| (i % 2) as f32).collect(),
        terminals: (0..batch).map(|i| f32::from(i % 10 == 0)).collect(),
    };
    let b = DeviceBatch::new(&host, shape, device);
    let mut opt = Adam::new(
        repro_torch::train::common::trainable_by_name(&online_vs)
            .into_iter()
            .map(|(_, t)| t)
            .collect(),
        AdamConfig {
            eps: EPS,
            variant: Variant::parse("adamw").expect("a variant"),
            ..Default::default()
        },
    );
    let mut step = || {
        let (loss, _, _) = update(&*online, &*target, &mut opt, &b, GAMMA, LR, WEIGHT_DECAY);
        loss.double_value(&[]) // the loop reads the loss back, as a training loop logging it would
    };
    for _ in 0..warmup {
        step();
    }
    for _ in 0..repeats {
        let (secs, cpu) = common::timed(device, || {
            for _ in 0..steps {
                step();
            }
        });
        println!(
            "updates/s {:.2} cpu_updates/s {:.2}",
            steps as f64 / secs,
            steps as f64 / cpu
        );
    }
    Ok(())
}
