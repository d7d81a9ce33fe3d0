//! Time loading `pipeline.yaml` (median of 200 `Pipeline::load`s) and refusing hostile files in
//! memory (median of 20 `Pipeline::parse`s each): a 128 KB alias bomb and nesting 100,000 deep,
//! in flow and in block style. `bench_spec_parse [PIPELINE]` (default `pipeline.yaml`).

use std::path::Path;
use std::time::{Duration, Instant};

use repro_core::pipeline::spec::Pipeline;
use repro_testkit::hostile;

/// Median, min and max of `n` timings of `f`, and its last result.
fn time<T>(n: usize, mut f: impl FnMut() -> T) -> (Duration, Duration, Duration, T) {
    let mut ts = Vec::with_capacity(n);
    let mut last = None;
    for _ in 0..n {
        let t = Instant::now();
        last = Some(f());
        ts.push(t.elapsed());
    }
    ts.sort();
    let last = last.expect("n > 0");
    (ts[n / 2], ts[0], ts[n - 1], last)
}

fn main() -> anyhow::Result<()> {
    let file = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "pipeline.yaml".into());
    let path = Path::new(&file);
    let (med, min, max, r) = time(200, || Pipeline::load(path));
    let p = r.map_err(|e| anyhow::anyhow!("{e}"))?;
    println!(
        "load {file} ({} bytes, {} experiments): median {med:.2?} (min {min:.2?}, max {max:.2?})",
        std::fs::metadata(path)?.len(),
        p.experiments.len()
    );
    for (name, text) in [
        ("alias bomb", hostile::alias_bomb(128 * 1024)),
        ("flow nesting 100,000 deep", hostile::deep_flow(100_000)),
        ("block nesting 100,000 deep", hostile::deep_block(100_000)),
    ] {
        let (med, min, max, r) = time(20, || Pipeline::parse(Path::new("pipeline.yaml"), &text));
        let e = r
            .err()
            .ok_or_else(|| anyhow::anyhow!("{name} was accepted"))?;
        println!(
            "refuse {name} ({} bytes): median {med:.2?} (min {min:.2?}, max {max:.2?})\n  {}",
            text.len(),
            e.to_string().lines().nth(1).unwrap_or_default()
        );
    }
    Ok(())
}
