//! The compute runtime of this process: device choice, CPU threads, determinism switches, and
//! the environment fingerprint (the key-relevant part goes into run keys, all of it into records).

use std::collections::BTreeMap;
use std::os::raw::c_int;
use std::path::PathBuf;

use anyhow::{Result, bail};
use serde_json::{Map, Value, json};

unsafe extern "C" {
    fn repro_set_deterministic(on: c_int);
    fn repro_deterministic_algorithms() -> c_int;
    fn repro_set_mkldnn(on: c_int);
    fn repro_mkldnn_enabled() -> c_int;
}

/// CPU kernel family pinned for every run, so results do not depend on which vector extensions
/// a machine has (AVX-512 and AVX2 kernels round differently). Overridable, and part of the key.
pub const DEFAULT_CPU_CAPABILITY: &str = "avx2";

/// Set the process-wide environment libtorch reads once at first use. Call first thing in main,
/// before any tensor exists and before other threads start.
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

/// Where runs execute.
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

/// Resolve a choice against what this machine has.
pub fn resolve_device(choice: DeviceChoice) -> Result<tch::Device> {
    match choice {
        DeviceChoice::Cpu => Ok(tch::Device::Cpu),
        DeviceChoice::Auto => Ok(if tch::Cuda::is_available() {
            tch::Device::Cuda(0)
        } else {
            tch::Device::Cpu
        }),
        DeviceChoice::Cuda(i) => {
            if !tch::Cuda::is_available() {
                bail!(
                    "--device cuda:{i} was asked for, but CUDA is not available (libtorch {}, {} devices)",
                    libtorch_version(),
                    tch::Cuda::device_count()
                );
            }
            let n = tch::Cuda::device_count() as usize;
            if i >= n {
                bail!("--device cuda:{i} was asked for, but this machine has {n} CUDA device(s)");
            }
            Ok(tch::Device::Cuda(i))
        }
    }
}

/// Settings applied before a run starts; all of them are in its key.
#[derive(Debug, Clone, Copy)]
pub struct RunSettings {
    pub device: tch::Device,
    pub threads: usize,
    /// Bitwise runs turn off oneDNN on CPU (its kernel choice depends on the CPU model).
    pub bitwise: bool,
}

impl RunSettings {
    pub fn apply(&self) {
        tch::set_num_threads(self.threads as i32);
        // SAFETY: plain setters on libtorch's global context.
        unsafe {
            repro_set_deterministic(1);
            repro_set_mkldnn(c_int::from(!self.bitwise));
        }
        if self.device.is_cuda() {
            tch::Cuda::cudnn_set_benchmark(false);
        }
    }

    /// The environment that changes results, for the run key.
    pub fn key_env(&self) -> BTreeMap<String, Value> {
        let mut env = BTreeMap::new();
        env.insert("libtorch".into(), json!(libtorch_version()));
        env.insert("deterministic_algorithms".into(), json!(true));
        match self.device {
            tch::Device::Cuda(i) => {
                env.insert(
                    "device".into(),
                    json!(format!("cuda:{}", cuda_compute_capability(i))),
                );
            }
            _ => {
                env.insert("device".into(), json!("cpu"));
                // Reduction order in several CPU kernels depends on the thread count.
                env.insert("threads".into(), json!(self.threads));
                env.insert(
                    "cpu_capability".into(),
                    json!(std::env::var("ATEN_CPU_CAPABILITY").unwrap_or_default()),
                );
                env.insert(
                    "mkl_cbwr".into(),
                    json!(std::env::var("MKL_CBWR").unwrap_or_default()),
                );
                env.insert("mkldnn".into(), json!(!self.bitwise));
            }
        }
        env
    }
}

/// What determinism held during the run, read back from libtorch.
pub fn determinism_state() -> Map<String, Value> {
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
    m
}

/// The folder of the libtorch this process loaded (falls back to the one it was built against).
pub fn libtorch_dir() -> PathBuf {
    let maps = std::fs::read_to_string("/proc/self/maps").unwrap_or_default();
    maps.lines()
        .filter_map(|l| l.split_whitespace().nth(5))
        .find(|p| p.ends_with("/libtorch_cpu.so"))
        .and_then(|p| std::path::Path::new(p).parent().map(|d| d.to_path_buf()))
        .unwrap_or_else(|| PathBuf::from(option_env!("REPRO_LIBTORCH_LIB").unwrap_or("")))
}

/// Version of the loaded libtorch, e.g. `2.11.0+cu130`: from the Python package's `version.py`
/// or a standalone libtorch's `build-version`.
pub fn libtorch_version() -> String {
    let dir = libtorch_dir();
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

/// `sm_90`-style compute capability via nvidia-smi (tch does not expose device properties).
fn cuda_compute_capability(index: usize) -> String {
    let out = std::process::Command::new("nvidia-smi")
        .args([
            "--query-gpu=compute_cap",
            "--format=csv,noheader",
            &format!("--id={index}"),
        ])
        .output();
    match out {
        Ok(o) if o.status.success() => format!(
            "sm_{}",
            String::from_utf8_lossy(&o.stdout).trim().replace('.', "")
        ),
        _ => "sm_unknown".into(),
    }
}

/// The machine's name, for records.
pub fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|s| s.trim().to_string())
        .unwrap_or_else(|_| "unknown".into())
}

/// Everything about the environment worth keeping with a run record.
pub fn fingerprint(settings: &RunSettings) -> Map<String, Value> {
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
    m.insert("device".into(), json!(format!("{:?}", settings.device)));
    m.insert("cuda_available".into(), json!(tch::Cuda::is_available()));
    m.insert(
        "cudnn_available".into(),
        json!(tch::Cuda::cudnn_is_available()),
    );
    m.insert("determinism".into(), Value::Object(determinism_state()));
    for k in ["ATEN_CPU_CAPABILITY", "MKL_CBWR", "CUBLAS_WORKSPACE_CONFIG"] {
        m.insert(k.into(), json!(std::env::var(k).unwrap_or_default()));
    }
    m
}
