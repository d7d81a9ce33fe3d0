//! The libtorch side of the runtime, used only inside the worker process: applying a run's
//! settings (threads, deterministic algorithms, oneDNN) and reporting what libtorch sees.

use std::ffi::{CStr, c_char, c_void};
use std::os::raw::c_int;

use serde_json::{Map, Value, json};

use super::{Device, RunSettings};

unsafe extern "C" {
    fn repro_set_deterministic(on: c_int);
    fn repro_deterministic_algorithms() -> c_int;
    fn repro_set_mkldnn(on: c_int);
    fn repro_mkldnn_enabled() -> c_int;
    fn repro_get_rng_state(
        index: c_int,
        out: *mut *mut c_void,
        err: *mut c_char,
        len: usize,
    ) -> c_int;
    fn repro_set_rng_state(
        index: c_int,
        state: *const c_void,
        err: *mut c_char,
        len: usize,
    ) -> c_int;
}

/// The tch device for a resolved device.
pub fn tch_device(d: &Device) -> tch::Device {
    match d {
        Device::Cpu => tch::Device::Cpu,
        Device::Cuda { index, .. } => tch::Device::Cuda(*index),
    }
}

/// Apply a run's settings to libtorch's global state.
pub fn apply(s: &RunSettings) {
    tch::set_num_threads(s.threads as i32);
    // SAFETY: plain setters on libtorch's global context.
    unsafe {
        repro_set_deterministic(1);
        repro_set_mkldnn(c_int::from(!s.bitwise));
    }
    if matches!(s.device, Device::Cuda { .. }) {
        tch::Cuda::cudnn_set_benchmark(false);
    }
}

/// The state of libtorch's default random generator of `device` (a uint8 tensor on the CPU),
/// for checkpoints.
pub fn rng_state(device: tch::Device) -> anyhow::Result<tch::Tensor> {
    let mut err = [0 as c_char; 512];
    let mut out: *mut c_void = std::ptr::null_mut();
    // SAFETY: the shim writes a heap-allocated at::Tensor into `out` on success (owned by the
    // returned Tensor from then on) and a NUL-terminated message into `err` on failure.
    unsafe {
        if repro_get_rng_state(
            generator_index(device),
            &mut out,
            err.as_mut_ptr(),
            err.len(),
        ) != 0
        {
            anyhow::bail!(
                "cannot read the random generator state of {device:?}: {}",
                CStr::from_ptr(err.as_ptr()).to_string_lossy()
            );
        }
        Ok(tch::Tensor::from_ptr(out.cast()))
    }
}

/// Restore a state [`rng_state`] returned.
pub fn set_rng_state(device: tch::Device, state: &tch::Tensor) -> anyhow::Result<()> {
    let mut err = [0 as c_char; 512];
    // SAFETY: `state.as_ptr()` is a live at::Tensor for the duration of the call.
    unsafe {
        if repro_set_rng_state(
            generator_index(device),
            state.as_ptr().cast(),
            err.as_mut_ptr(),
            err.len(),
        ) != 0
        {
            anyhow::bail!(
                "cannot restore the random generator state of {device:?}: {}",
                CStr::from_ptr(err.as_ptr()).to_string_lossy()
            );
        }
    }
    Ok(())
}

fn generator_index(device: tch::Device) -> c_int {
    match device {
        tch::Device::Cuda(i) => i as c_int,
        _ => -1,
    }
}

/// What determinism held during the run, read back from libtorch, and what it sees.
pub fn fingerprint() -> Map<String, Value> {
    // SAFETY: plain getters on libtorch's global context.
    let (det, mkldnn) = unsafe {
        (
            repro_deterministic_algorithms() != 0,
            repro_mkldnn_enabled() != 0,
        )
    };
    let mut m = Map::new();
    m.insert("deterministic_algorithms".into(), json!(det));
    m.insert("mkldnn".into(), json!(mkldnn));
    m.insert("threads".into(), json!(tch::get_num_threads()));
    m.insert("cuda_available".into(), json!(tch::Cuda::is_available()));
    m.insert(
        "cudnn_available".into(),
        json!(tch::Cuda::cudnn_is_available()),
    );
    m.insert("loaded_libtorch".into(), json!(loaded_libtorch_dir()));
    m
}

/// The folder of the libtorch this process actually loaded.
fn loaded_libtorch_dir() -> String {
    let maps = std::fs::read_to_string("/proc/self/maps").unwrap_or_default();
    maps.lines()
        .filter_map(|l| l.split_whitespace().nth(5))
        .find(|p| p.ends_with("/libtorch_cpu.so"))
        .and_then(|p| {
            std::path::Path::new(p)
                .parent()
                .map(|d| d.display().to_string())
        })
        .unwrap_or_default()
}

/// What this libtorch can run on: the answer to `repro-worker probe`.
pub fn probe() -> super::probe::Probe {
    let available = tch::Cuda::is_available();
    let count = if available {
        tch::Cuda::device_count() as usize
    } else {
        0
    };
    super::probe::Probe {
        cuda_available: available,
        device_count: count,
        capabilities: (0..count).map(compute_capability).collect(),
        libtorch_version: super::libtorch_version_at(std::path::Path::new(&loaded_libtorch_dir())),
    }
}

/// `sm_90`-style compute capability via nvidia-smi (tch does not expose device properties).
fn compute_capability(index: usize) -> String {
    let out = std::process::Command::new("nvidia-smi")
        .args([
            "--query-gpu=compute_cap",
            "--format=csv,noheader",
            &format!("--id={index}"),
        ])
        .output();
    match out {
        Ok(o) if o.status.success() => {
            format!(
                "sm_{}",
                String::from_utf8_lossy(&o.stdout).trim().replace('.', "")
            )
        }
        _ => "sm_unknown".into(),
    }
}
