//! The libtorch side of the runtime, used only inside the worker process: applying a run's
//! settings (threads, deterministic algorithms, oneDNN, TF32) and reporting what libtorch sees;
//! the bf16 autocast guard and the channels-last conversions the trainers use.

pub mod ops;

use std::ffi::{CStr, c_char, c_void};
use std::os::raw::c_int;

use serde_json::{Map, Value, json};

use repro_core::runtime::{Autocast, Device, RunSettings};

unsafe extern "C" {
    fn repro_set_deterministic(on: c_int);
    fn repro_deterministic_algorithms() -> c_int;
    fn repro_set_mkldnn(on: c_int);
    fn repro_mkldnn_enabled() -> c_int;
    fn repro_set_tf32(on: c_int);
    fn repro_tf32_cublas() -> c_int;
    fn repro_tf32_cudnn() -> c_int;
    fn repro_autocast_enter(cuda: c_int, prev_enabled: *mut c_int, prev_dtype: *mut c_int);
    fn repro_autocast_exit(cuda: c_int, prev_enabled: c_int, prev_dtype: c_int);
    fn repro_autocast_enabled(cuda: c_int) -> c_int;
    fn repro_channels_last(t: *const c_void) -> *mut c_void;
    fn repro_is_channels_last(t: *const c_void) -> c_int;
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
    // Explicit on every run, so a GPU run is fp32 unless its profile says `tf32: true`
    // (libtorch's own default has cuDNN TF32 on). A CPU run never turns it on: it has no
    // effect there and is not in the key.
    // SAFETY: plain setters on libtorch's global context.
    unsafe { repro_set_tf32(c_int::from(s.precision.on(&s.device).tf32)) };
}

/// Restores the autocast state on drop; see [`autocast_guard`].
pub struct AutocastGuard {
    /// (cuda, previously enabled, previous dtype) while a region is open.
    open: Option<(c_int, c_int, c_int)>,
}

/// Enter bf16 autocast on `device`'s type until the guard drops (nothing for `Autocast::Off`),
/// as `with torch.autocast(device_type, dtype=torch.bfloat16):` does. Hold it around the
/// forward pass and the loss, and drop it before `backward()`. Autocast state is per thread.
pub fn autocast_guard(device: tch::Device, mode: Autocast) -> AutocastGuard {
    if mode == Autocast::Off {
        return AutocastGuard { open: None };
    }
    let cuda = c_int::from(device.is_cuda());
    let (mut enabled, mut dtype) = (0, 0);
    // SAFETY: thread-local autocast switches; the out-pointers are live locals.
    unsafe { repro_autocast_enter(cuda, &mut enabled, &mut dtype) };
    AutocastGuard {
        open: Some((cuda, enabled, dtype)),
    }
}

impl Drop for AutocastGuard {
    fn drop(&mut self) {
        if let Some((cuda, enabled, dtype)) = self.open.take() {
            // SAFETY: undoes exactly what `autocast_guard` did on this thread.
            unsafe { repro_autocast_exit(cuda, enabled, dtype) };
        }
    }
}

/// Whether autocast is on for `device`'s type in this thread.
pub fn autocast_enabled(device: tch::Device) -> bool {
    // SAFETY: a thread-local getter.
    unsafe { repro_autocast_enabled(c_int::from(device.is_cuda())) != 0 }
}

/// `t.contiguous(memory_format=torch.channels_last)` for a 4-d tensor; other tensors come
/// back unchanged (a new handle to the same tensor).
pub fn channels_last(t: &tch::Tensor) -> tch::Tensor {
    // SAFETY: `t` is a live at::Tensor; the shim returns a heap-allocated one, owned from here.
    unsafe { tch::Tensor::from_ptr(repro_channels_last(t.as_ptr().cast()).cast()) }
}

/// Whether `t` is 4-d and contiguous in channels-last memory format.
pub fn is_channels_last(t: &tch::Tensor) -> bool {
    // SAFETY: `t` is a live at::Tensor for the duration of the call.
    unsafe { repro_is_channels_last(t.as_ptr().cast()) != 0 }
}

/// Put every 4-d variable of `vs` (the conv weights) in channels-last format in place, as
/// `model.to(memory_format=torch.channels_last)` does; the tensors keep their identity, so
/// handles taken before or after see the same storage.
pub fn vars_to_channels_last(vs: &tch::nn::VarStore) {
    for (_, mut v) in vs.variables() {
        if v.dim() == 4 {
            let cl = tch::no_grad(|| channels_last(&v.detach()));
            v.set_data(&cl);
        }
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
    // SAFETY: plain getters on libtorch's global context.
    let (tf32_cublas, tf32_cudnn) = unsafe { (repro_tf32_cublas() != 0, repro_tf32_cudnn() != 0) };
    m.insert("allow_tf32_cublas".into(), json!(tf32_cublas));
    m.insert("allow_tf32_cudnn".into(), json!(tf32_cudnn));
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
pub fn probe() -> repro_core::runtime::probe::Probe {
    let available = tch::Cuda::is_available();
    let count = if available {
        tch::Cuda::device_count() as usize
    } else {
        0
    };
    repro_core::runtime::probe::Probe {
        cuda_available: available,
        device_count: count,
        capabilities: (0..count).map(compute_capability).collect(),
        libtorch_version: repro_core::runtime::libtorch_version_at(std::path::Path::new(
            &loaded_libtorch_dir(),
        )),
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
