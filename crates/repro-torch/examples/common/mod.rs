//! What the benchmark examples share: the device they run on, the clocks they read, their peak
//! memory and parsing their integer arguments.
//!
//! `REPRO_BENCH_DEVICE` picks the device (`cpu`, the default, or `cuda` / `cuda:N`); its Python
//! twins read the same variable (`scripts/bench_common.py`), so `scripts/bench.py --device cuda`
//! moves both sides of every row at once.

#![allow(dead_code)] // each example uses part of this

use std::time::Instant;

use anyhow::Context;

use tch::Device;

/// The device named by `REPRO_BENCH_DEVICE`; an error names the variable and the valid values.
pub fn device() -> anyhow::Result<Device> {
    let v = std::env::var("REPRO_BENCH_DEVICE").unwrap_or_else(|_| "cpu".into());
    let d = match v.as_str() {
        "cpu" => Device::Cpu,
        "cuda" => Device::Cuda(0),
        s => match s.strip_prefix("cuda:").map(str::parse) {
            Some(Ok(i)) => Device::Cuda(i),
            _ => anyhow::bail!("REPRO_BENCH_DEVICE: expected cpu, cuda or cuda:N, got '{v}'"),
        },
    };
    anyhow::ensure!(
        d == Device::Cpu || tch::Cuda::is_available(),
        "REPRO_BENCH_DEVICE={v}, but libtorch sees no CUDA device"
    );
    Ok(d)
}

/// Wait for the device's queued kernels, so that a clock read after it covers them.
pub fn sync(device: Device) {
    if let Device::Cuda(i) = device {
        tch::Cuda::synchronize(i as i64);
    }
}

/// CPU time of this process (all threads), seconds.
pub fn cpu_secs() -> f64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime only writes the timespec it is given.
    unsafe { libc::clock_gettime(libc::CLOCK_PROCESS_CPUTIME_ID, &mut ts) };
    ts.tv_sec as f64 + ts.tv_nsec as f64 * 1e-9
}

/// Wall and CPU seconds of `f` on `device`, with the device synchronised before and after.
pub fn timed(device: Device, f: impl FnOnce()) -> (f64, f64) {
    sync(device);
    let (start, cpu_start) = (Instant::now(), cpu_secs());
    f();
    sync(device);
    (start.elapsed().as_secs_f64(), cpu_secs() - cpu_start)
}

/// Peak resident memory of this process (`VmHWM`), MiB; NaN where /proc does not say.
pub fn peak_rss_mib() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let kib = status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok());
    kib.unwrap_or(f64::NAN) / 1024.0
}

/// An integer command-line argument of at least `min`; the error names the argument.
pub fn int(name: &str, s: &str, min: i64) -> anyhow::Result<i64> {
    let v: i64 = s
        .parse()
        .with_context(|| format!("{name}: expected an integer ≥ {min}, got '{s}'"))?;
    anyhow::ensure!(v >= min, "{name}: expected an integer ≥ {min}, got {v}");
    Ok(v)
}
