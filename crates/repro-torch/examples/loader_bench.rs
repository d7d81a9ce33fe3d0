//! Loader throughput: a full augmented epoch (crop + flip, normalise) over a synthetic
//! CIFAR-sized set, 50,000 × 3 × 32 × 32 uint8, batch 128, on the CPU.
//!
//!     cargo run --release --example loader_bench [-- EPOCHS]
//!
//! Prints `loader images/s <n>`: the median over EPOCHS (default 3) epochs, batches consumed
//! and dropped as they arrive (the loader alone, no model).

use repro_torch::data::loader::{Augment, ImageSet, Loader, Normalize};
use std::time::Instant;
use tch::{Device, Kind, Tensor};

fn main() {
    let epochs: usize = std::env::args()
        .nth(1)
        .map(|a| a.parse().expect("EPOCHS is a number"))
        .unwrap_or(3);
    let n = 50_000;
    tch::manual_seed(0);
    let set = ImageSet {
        images: Tensor::randint(256, [n, 3, 32, 32], (Kind::Uint8, Device::Cpu)),
        labels: Tensor::randint(10, [n], (Kind::Int64, Device::Cpu)),
        classes: 10,
    };
    set.validate().expect("a valid set");
    let normalize = Normalize::fit(&set);
    let loader = Loader::new(set, 128, Some(Augment::CIFAR), normalize, Device::Cpu, 0);
    let mut rates = Vec::new();
    for epoch in 0..epochs {
        let start = Instant::now();
        let mut seen = 0;
        for (x, _y) in loader.epoch(epoch) {
            seen += x.size()[0];
        }
        assert_eq!(seen, n);
        let rate = n as f64 / start.elapsed().as_secs_f64();
        eprintln!("epoch {epoch}: {rate:.0} images/s");
        rates.push(rate);
    }
    rates.sort_by(f64::total_cmp);
    println!("loader images/s {:.0}", rates[rates.len() / 2]);
}
