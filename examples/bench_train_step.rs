//! One training step's throughput (images/s) of a model of the pipeline: forward, cross-entropy,
//! backward, SGD step with momentum and weight decay, on random data. `scripts/bench.sh` runs it
//! beside `scripts/bench_train_step.py` (the same model in PyTorch eager) and reports the ratio.
//!
//!   bench_train_step <arch> <classes> <width> <image size> <batch> <threads> <warmup> <steps> <repeats>
//!
//! Prints one line per repeat: `images/s <x>`.

use std::time::Instant;

use repro::nn::{Arch, build};
use repro::optim::sgd::Sgd;
use tch::{Device, Kind, Tensor};

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [
        arch,
        classes,
        width,
        size,
        batch,
        threads,
        warmup,
        steps,
        repeats,
    ] = args.as_slice()
    else {
        anyhow::bail!(
            "usage: bench_train_step <arch> <classes> <width> <image size> <batch> <threads> \
             <warmup> <steps> <repeats>"
        );
    };
    let (classes, size, batch): (i64, i64, i64) = (classes.parse()?, size.parse()?, batch.parse()?);
    let (warmup, steps, repeats): (usize, usize, usize) =
        (warmup.parse()?, steps.parse()?, repeats.parse()?);
    tch::set_num_threads(threads.parse()?);
    tch::manual_seed(0);
    let vs = tch::nn::VarStore::new(Device::Cpu);
    let model = build(Arch::parse(arch)?, &vs.root(), classes, width.parse()?);
    let mut opt = Sgd::new(vs.trainable_variables(), 0.9);
    let x = Tensor::randn([batch, 3, size, size], (Kind::Float, Device::Cpu));
    let y = Tensor::randint(classes, [batch], (Kind::Int64, Device::Cpu));
    let mut step = || {
        let loss = model.net.forward_t(&x, true).cross_entropy_for_logits(&y);
        opt.zero_grad();
        loss.backward();
        opt.step(0.01, 5e-4);
    };
    for _ in 0..warmup {
        step();
    }
    for _ in 0..repeats {
        let start = Instant::now();
        for _ in 0..steps {
            step();
        }
        let secs = start.elapsed().as_secs_f64();
        println!("images/s {:.2}", (steps as i64 * batch) as f64 / secs);
    }
    Ok(())
}
