//! One training step's throughput (images/s) of a model of the pipeline: forward, cross-entropy,
//! backward, SGD step with momentum and weight decay, on random data. `scripts/bench.py` runs it
//! beside `scripts/bench_train_step.py` (the same model in PyTorch eager) and reports the ratio.
//!
//!   bench_train_step <arch> <classes> <width> <image size> <batch> <threads> <warmup> <steps> <repeats>
//!
//! Prints one line per repeat: `images/s <x> cpu_images/s <y>` (per wall-clock second and per
//! second of CPU time). `REPRO_BENCH_DEVICE` picks the device (examples/common).

mod common;

use repro_torch::nn::{Arch, build};
use repro_torch::optim::sgd::Sgd;
use tch::{Kind, Tensor};

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
    let device = common::device()?;
    tch::manual_seed(0);
    let vs = tch::nn::VarStore::new(device);
    let model = build(Arch::parse(arch)?, &vs.root(), classes, width.parse()?);
    let mut opt = Sgd::new(vs.trainable_variables(), 0.9);
    let x = Tensor::randn([batch, 3, size, size], (Kind::Float, device));
    let y = Tensor::randint(classes, [batch], (Kind::Int64, device));
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
        let (secs, cpu) = common::timed(device, || (0..steps).for_each(|_| step()));
        let images = (steps as i64 * batch) as f64;
        println!(
            "images/s {:.2} cpu_images/s {:.2}",
            images / secs,
            images / cpu
        );
    }
    Ok(())
}
