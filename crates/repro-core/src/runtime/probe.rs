//! Resolving `--device` without loading libtorch in the control plane: a machine without
//! `/dev/nvidiactl` has no usable GPU; otherwise the worker is asked once (`repro-worker probe`)
//! and its answer cached per worker binary and CUDA environment.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use serde::{Deserialize, Serialize};

use super::device::{Device, DeviceChoice};
use crate::store::atomic::write_atomic;

/// What the worker's libtorch can run on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Probe {
    pub cuda_available: bool,
    pub device_count: usize,
    pub capabilities: Vec<String>,
    pub libtorch_version: String,
}

/// The worker binary: `REPRO_WORKER`, else `repro-worker` beside the running executable.
pub fn worker_path() -> Result<PathBuf> {
    if let Some(p) = std::env::var_os("REPRO_WORKER") {
        return Ok(PathBuf::from(p));
    }
    let exe = std::env::current_exe().context("cannot find the running executable")?;
    Ok(exe.with_file_name("repro-worker"))
}

/// Resolve a device choice; `cache_dir` holds the cached probe.
pub fn resolve(choice: DeviceChoice, cache_dir: &Path) -> Result<Device> {
    let no_gpu_here = !Path::new("/dev/nvidiactl").exists();
    match choice {
        DeviceChoice::Cpu => Ok(Device::Cpu),
        DeviceChoice::Auto if no_gpu_here => Ok(Device::Cpu),
        DeviceChoice::Auto => {
            let p = probe(cache_dir)?;
            Ok(match p.capabilities.first() {
                Some(cap) if p.cuda_available => Device::Cuda {
                    index: 0,
                    capability: cap.clone(),
                },
                _ => Device::Cpu,
            })
        }
        DeviceChoice::Cuda(i) => {
            if no_gpu_here {
                bail!(
                    "--device cuda:{i} was asked for, but this machine has no NVIDIA device (/dev/nvidiactl is missing)"
                );
            }
            let p = probe(cache_dir)?;
            if !p.cuda_available {
                bail!(
                    "--device cuda:{i} was asked for, but libtorch {} reports CUDA unavailable",
                    p.libtorch_version
                );
            }
            match p.capabilities.get(i) {
                Some(cap) => Ok(Device::Cuda {
                    index: i,
                    capability: cap.clone(),
                }),
                None => bail!(
                    "--device cuda:{i} was asked for, but this machine has {} CUDA device(s)",
                    p.device_count
                ),
            }
        }
    }
}

#[derive(Serialize, Deserialize)]
struct Cached {
    fingerprint: String,
    probe: Probe,
}

/// Ask the worker what it can run on, once per worker binary and CUDA environment.
fn probe(cache_dir: &Path) -> Result<Probe> {
    let worker = worker_path()?;
    let meta = std::fs::metadata(&worker)
        .with_context(|| format!("cannot find the worker binary {}", worker.display()))?;
    let fingerprint = format!(
        "{}|{}|{:?}|{}|{}",
        worker.display(),
        meta.len(),
        meta.modified().ok(),
        std::env::var("LD_LIBRARY_PATH").unwrap_or_default(),
        std::env::var("CUDA_VISIBLE_DEVICES").unwrap_or_default()
    );
    let cache = cache_dir.join("probe.json");
    if let Ok(bytes) = std::fs::read(&cache)
        && let Ok(c) = serde_json::from_slice::<Cached>(&bytes)
        && c.fingerprint == fingerprint
    {
        return Ok(c.probe);
    }
    let out = std::process::Command::new(&worker)
        .arg("probe")
        .output()
        .with_context(|| format!("cannot run {}", worker.display()))?;
    if !out.status.success() {
        bail!(
            "{} probe failed: {}",
            worker.display(),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let p: Probe = serde_json::from_slice(&out.stdout)
        .context("the worker's probe answer is not valid JSON")?;
    let _ = write_atomic(
        &cache,
        &serde_json::to_vec(&Cached {
            fingerprint,
            probe: p.clone(),
        })?,
    );
    Ok(p)
}
