//! The compute runtime, seen from the control plane (no libtorch here, so `repro plan`,
//! `status` and `verify` start fast): device choice, the settings a run executes under, the
//! key-relevant environment, and the host fingerprint. The part that talks to libtorch lives in
//! [`torch`] and runs only inside the worker process.

pub mod ops;
pub mod probe;
pub mod torch;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

/// CPU kernel family pinned for every run, so results do not depend on which vector extensions
/// a machine has (AVX-512 and AVX2 kernels round differently). Overridable, and part of the key.
pub const DEFAULT_CPU_CAPABILITY: &str = "avx2";

/// Set the process-wide environment libtorch reads once at first use. Called first thing in
/// both binaries (the worker inherits it), before other threads start.
pub fn init_process_env() {
    let set_default = |k: &str, v: &str| {
        if std::env::var_os(k).is_none() {
            // SAFETY: called at the start of main while the process is single-threaded.
            unsafe { std::env::set_var(k, v) };
        }
    };
    set_default("ATEN_CPU_CAPABILITY", DEFAULT_CPU_CAPABILITY);
    // MKL's conditional numerical reproducibility: same code path on every AVX2 CPU.
    set_default("MKL_CBWR", "AVX2");
    // Required by cuBLAS for deterministic results; must be set before the first CUDA call.
    set_default("CUBLAS_WORKSPACE_CONFIG", ":4096:8");
}

/// Where runs execute, as asked on the command line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeviceChoice {
    Auto,
    Cpu,
    Cuda(usize),
}

impl std::str::FromStr for DeviceChoice {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "auto" => Ok(DeviceChoice::Auto),
            "cpu" => Ok(DeviceChoice::Cpu),
            "cuda" => Ok(DeviceChoice::Cuda(0)),
            _ => match s.strip_prefix("cuda:").map(str::parse) {
                Some(Ok(i)) => Ok(DeviceChoice::Cuda(i)),
                _ => Err(format!(
                    "invalid device {s:?}: expected auto, cpu, cuda or cuda:N"
                )),
            },
        }
    }
}

/// A resolved device: what runs execute on, and (for CUDA) the device class that enters keys.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "lowercase")]
pub enum Device {
    Cpu,
    Cuda { index: usize, capability: String },
}

/// Settings a run executes under; all of them are in its key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunSettings {
    pub device: Device,
    pub threads: usize,
    /// Bitwise runs turn off oneDNN on CPU (its kernel choice depends on the CPU model).
    pub bitwise: bool,
}

impl RunSettings {
    /// The environment that changes results, for the run key.
    pub fn key_env(&self) -> BTreeMap<String, Value> {
        let mut env = BTreeMap::new();
        env.insert("libtorch".into(), json!(libtorch_version()));
        env.insert("deterministic_algorithms".into(), json!(true));
        match &self.device {
            Device::Cuda { capability, .. } => {
                env.insert("device".into(), json!(format!("cuda:{capability}")));
            }
            Device::Cpu => {
                env.insert("device".into(), json!("cpu"));
                // Reduction order in several CPU kernels depends on the thread count.
                env.insert("threads".into(), json!(self.threads));
                env.insert(
                    "cpu_capability".into(),
                    json!(env_var("ATEN_CPU_CAPABILITY")),
                );
                env.insert("mkl_cbwr".into(), json!(env_var("MKL_CBWR")));
                env.insert("mkldnn".into(), json!(!self.bitwise));
            }
        }
        env
    }
}

fn env_var(k: &str) -> String {
    std::env::var(k).unwrap_or_default()
}

/// The libtorch folder the worker will load: the first `LD_LIBRARY_PATH` entry holding
/// `libtorch_cpu.so` (that is how another machine's libtorch is chosen), else the one the
/// binaries were built against (their RUNPATH).
pub fn libtorch_dir() -> PathBuf {
    let from_env = std::env::var("LD_LIBRARY_PATH").ok().and_then(|p| {
        p.split(':')
            .filter(|d| !d.is_empty())
            .map(PathBuf::from)
            .find(|d| d.join("libtorch_cpu.so").exists())
    });
    from_env.unwrap_or_else(|| PathBuf::from(option_env!("REPRO_LIBTORCH_LIB").unwrap_or("")))
}

/// Version of a libtorch folder, e.g. `2.11.0+cu130`: from the Python package's `version.py`
/// or a standalone libtorch's `build-version`.
pub fn libtorch_version_at(dir: &Path) -> String {
    let root = dir.join("..");
    if let Ok(text) = std::fs::read_to_string(root.join("version.py")) {
        for line in text.lines() {
            if let Some(v) = line.strip_prefix("__version__ = ") {
                return v.trim().trim_matches(['\'', '"']).to_string();
            }
        }
    }
    if let Ok(v) = std::fs::read_to_string(root.join("build-version")) {
        return v.trim().to_string();
    }
    "unknown".into()
}

/// Version of the libtorch runs will use (read once per process).
pub fn libtorch_version() -> String {
    static V: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    V.get_or_init(|| libtorch_version_at(&libtorch_dir()))
        .clone()
}

/// The machine's name, for records.
pub fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|s| s.trim().to_string())
        .unwrap_or_else(|_| "unknown".into())
}

/// What the host is, for run records (the worker adds what libtorch reports).
pub fn host_fingerprint() -> Map<String, Value> {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|t| {
            t.lines()
                .find(|l| l.starts_with("model name"))
                .map(|l| l.split(':').nth(1).unwrap_or("").trim().to_string())
        })
        .unwrap_or_default();
    let mut m = Map::new();
    m.insert("repro_version".into(), json!(env!("CARGO_PKG_VERSION")));
    m.insert("libtorch_version".into(), json!(libtorch_version()));
    m.insert(
        "libtorch_dir".into(),
        json!(libtorch_dir().display().to_string()),
    );
    m.insert("cpu_model".into(), json!(cpu));
    m.insert(
        "logical_cpus".into(),
        json!(
            std::thread::available_parallelism()
                .map(|n| n.get())
                .unwrap_or(1)
        ),
    );
    m.insert("os".into(), json!(std::env::consts::OS));
    m.insert("arch".into(), json!(std::env::consts::ARCH));
    for k in ["ATEN_CPU_CAPABILITY", "MKL_CBWR", "CUBLAS_WORKSPACE_CONFIG"] {
        m.insert(k.into(), json!(env_var(k)));
    }
    m
}
