//! The compute runtime, seen from the control plane (no libtorch here, so `repro plan`,
//! `status` and `verify` start fast): device choice, the settings a run executes under, the
//! key-relevant environment, and the host fingerprint. The part that talks to libtorch lives in
//! the `repro-torch` crate and runs only inside the worker process.

pub mod device;
pub mod probe;

pub use device::{Device, DeviceChoice};

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
    // MKL's conditional numerical reproducibility: a fixed AVX2 code path on Intel CPUs. MKL
    // honours that branch only on Intel; elsewhere it silently takes AUTO. Bitwise runs use
    // COMPATIBLE instead ([`RunSettings::mkl_branch`]), the one branch every vendor runs.
    set_default("MKL_CBWR", "AVX2");
    // Required by cuBLAS for deterministic results; must be set before the first CUDA call.
    set_default("CUBLAS_WORKSPACE_CONFIG", ":4096:8");
}

/// Settings a run executes under; all of them are in its key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunSettings {
    pub device: Device,
    pub threads: usize,
    /// Bitwise runs turn off oneDNN on CPU (its kernel choice depends on the CPU model).
    pub bitwise: bool,
    /// The profile's numerics options, already reduced to what the run's kind applies
    /// ([`Precision::for_kind`]); absent in a task file = the default (fp32, NCHW, TF32 off).
    #[serde(default)]
    pub precision: Precision,
    /// The run is a member of a fused group (`crate::pipeline::fuse`): trained in a stacked
    /// model of `size` members at `position`. In the key, since a stacked kernel's rounding may
    /// depend on both; absent for a run trained alone, so solo keys are unchanged.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fused: Option<Fused>,
}

/// Where a run sits in its fused group.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Fused {
    /// Members in the group (≥ 2).
    pub size: usize,
    /// This run's place in it, from 0 (members are in run-id order).
    pub position: usize,
    /// The group's first member's run id: its name in plans and logs (not in the key).
    pub group: String,
}

/// A profile's options that change numerics (`profiles.<name>.precision`). The default — fp32,
/// NCHW, TF32 off — is the paper profile's setting; the key holds an option only when it is not the
/// default, so runs without a `precision:` block keep their keys.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Precision {
    /// bf16 autocast of the forward pass and the loss (the backward runs outside it), as
    /// `torch.autocast(device_type, dtype=torch.bfloat16)`; on CUDA and CPU alike.
    pub autocast: Autocast,
    /// Conv weights and input batches in channels-last (NHWC) memory format.
    pub channels_last: bool,
    /// Allow TF32 in cuBLAS matmuls and cuDNN convolutions. CUDA only: on CPU it has no effect
    /// and never enters the key. Off means both are set off explicitly on every CUDA run
    /// (libtorch's own default has cuDNN TF32 on).
    pub tf32: bool,
}

/// Which [`Precision`] options a stage kind applies; the others are dropped from its runs'
/// settings (so they neither change its keys nor claim an effect they do not have). TF32 is
/// process-wide and applies to every kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PrecisionSupport {
    pub autocast: bool,
    pub channels_last: bool,
}

impl Precision {
    /// The options a kind that supports `s` actually applies.
    pub fn for_kind(self, s: PrecisionSupport) -> Precision {
        Precision {
            autocast: if s.autocast {
                self.autocast
            } else {
                Autocast::Off
            },
            channels_last: self.channels_last && s.channels_last,
            tf32: self.tf32,
        }
    }

    /// What takes effect on `device`: TF32 only on CUDA.
    pub fn on(self, device: &Device) -> Precision {
        Precision {
            tf32: self.tf32 && matches!(device, Device::Cuda { .. }),
            ..self
        }
    }
}

/// `precision.autocast`: `off` or `bf16` (fp16 is not offered: it would need a gradient scaler).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Autocast {
    #[default]
    Off,
    Bf16,
}

impl<'de> Deserialize<'de> for Autocast {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl serde::de::Visitor<'_> for V {
            type Value = Autocast;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("off or bf16")
            }
            fn visit_bool<E: serde::de::Error>(self, b: bool) -> Result<Autocast, E> {
                match b {
                    false => Ok(Autocast::Off),
                    true => Err(E::custom(
                        "write `bf16` to turn autocast on; valid: off, bf16",
                    )),
                }
            }
            fn visit_str<E: serde::de::Error>(self, s: &str) -> Result<Autocast, E> {
                match s {
                    "off" => Ok(Autocast::Off),
                    "bf16" => Ok(Autocast::Bf16),
                    "fp16" | "float16" | "half" => Err(E::custom(format!(
                        "`{s}` is not supported (fp16 autocast needs a gradient scaler); valid: off, bf16"
                    ))),
                    _ => Err(E::custom(format!("unknown value `{s}`; valid: off, bf16"))),
                }
            }
        }
        d.deserialize_any(V)
    }
}

/// The MKL branch bitwise CPU runs use: SSE2 without the approximate rcpps/rsqrtps, the only
/// branch besides AUTO that MKL honours on non-Intel CPUs (on an AMD EPYC, `AVX2`, `AVX` and
/// `SSE4_2` gave AUTO's bytes for one sgemm and COMPATIBLE its own), so the locked smoke digests
/// are the same on Intel and AMD machines.
pub const BITWISE_MKL_BRANCH: &str = "COMPATIBLE";

impl RunSettings {
    /// The `MKL_CBWR` this run's worker starts with.
    pub fn mkl_branch(&self) -> String {
        if self.bitwise && self.device == Device::Cpu {
            BITWISE_MKL_BRANCH.into()
        } else {
            env_var("MKL_CBWR")
        }
    }

    /// Environment the engine sets on this run's worker process (read by MKL at its first call,
    /// so it must be there when the process starts).
    pub fn worker_env(&self) -> Vec<(&'static str, String)> {
        vec![("MKL_CBWR", self.mkl_branch())]
    }

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
                env.insert("mkl_cbwr".into(), json!(self.mkl_branch()));
                env.insert("mkldnn".into(), json!(!self.bitwise));
            }
        }
        // Only options that are not the default, so keys from before these options existed
        // stay valid: absent = fp32, NCHW, TF32 off.
        let p = self.precision.on(&self.device);
        if p.autocast != Autocast::Off {
            env.insert("autocast".into(), json!(p.autocast));
        }
        if p.channels_last {
            env.insert("channels_last".into(), json!(true));
        }
        if p.tf32 {
            env.insert("tf32".into(), json!(true));
        }
        if let Some(f) = &self.fused {
            env.insert(
                "fused".into(),
                json!({"size": f.size, "position": f.position}),
            );
        }
        env
    }
}

fn env_var(k: &str) -> String {
    std::env::var(k).unwrap_or_default()
}

/// The libtorch folder the worker will load: the first `LD_LIBRARY_PATH` entry holding
/// `libtorch_cpu.so` (that is how another machine's libtorch is chosen), else the one the worker
/// was built against (its RUNPATH; this process links no libtorch to ask).
pub fn libtorch_dir() -> PathBuf {
    let from_env = std::env::var("LD_LIBRARY_PATH").ok().and_then(|p| {
        p.split(':')
            .filter(|d| !d.is_empty())
            .map(PathBuf::from)
            .find(|d| d.join("libtorch_cpu.so").exists())
    });
    from_env
        .or_else(|| probe::worker_path().ok().and_then(|w| libtorch_runpath(&w)))
        .unwrap_or_default()
}

/// The RUNPATH entry of an ELF binary that holds `libtorch_cpu.so`.
pub fn libtorch_runpath(binary: &Path) -> Option<PathBuf> {
    let file = std::fs::File::open(binary).ok()?;
    // SAFETY: a read-only map; cargo and the linker replace a binary by writing a new file, so
    // the mapped one does not change under us.
    let map = unsafe { memmap2::Mmap::map(&file) }.ok()?;
    let elf = goblin::elf::Elf::parse(&map).ok()?;
    elf.runpaths
        .iter()
        .chain(&elf.rpaths)
        .flat_map(|p| p.split(':'))
        .map(PathBuf::from)
        .find(|d| d.join("libtorch_cpu.so").exists())
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

#[cfg(test)]
mod tests {
    use super::*;

    fn cpu(precision: Precision) -> RunSettings {
        RunSettings {
            device: Device::Cpu,
            threads: 2,
            bitwise: true,
            precision,
            fused: None,
        }
    }

    fn cuda(precision: Precision) -> RunSettings {
        RunSettings {
            device: Device::Cuda {
                index: 0,
                capability: "sm_90".into(),
            },
            ..cpu(precision)
        }
    }

    fn names(s: &RunSettings) -> Vec<String> {
        s.key_env().into_keys().collect()
    }

    #[test]
    fn bitwise_cpu_runs_pin_mkl_to_the_vendor_neutral_branch() {
        let bitwise = cpu(Precision::default());
        assert_eq!(bitwise.key_env()["mkl_cbwr"], json!("COMPATIBLE"));
        assert_eq!(
            bitwise.worker_env(),
            [("MKL_CBWR", "COMPATIBLE".to_string())]
        );
        // Other runs keep the process's branch (AVX2 unless the user set one), key and worker.
        let fast = RunSettings {
            bitwise: false,
            ..bitwise.clone()
        };
        let process = env_var("MKL_CBWR");
        assert_eq!(fast.key_env()["mkl_cbwr"], json!(process));
        assert_eq!(fast.worker_env(), [("MKL_CBWR", process)]);
        assert_ne!(fast.key_env(), bitwise.key_env());
    }

    #[test]
    fn default_precision_leaves_the_key_environment_as_before() {
        // Exactly the entries keys had before the precision options existed.
        assert_eq!(
            names(&cpu(Precision::default())),
            [
                "cpu_capability",
                "deterministic_algorithms",
                "device",
                "libtorch",
                "mkl_cbwr",
                "mkldnn",
                "threads"
            ]
        );
        assert_eq!(
            names(&cuda(Precision::default())),
            ["deterministic_algorithms", "device", "libtorch"]
        );
        // A task file written without the field reads back as the default.
        let mut v = serde_json::to_value(cpu(Precision::default())).unwrap();
        v.as_object_mut().unwrap().remove("precision");
        let back: RunSettings = serde_json::from_value(v).unwrap();
        assert_eq!(back, cpu(Precision::default()));
    }

    #[test]
    fn each_non_default_option_changes_the_key_and_tf32_only_on_cuda() {
        let base = cpu(Precision::default()).key_env();
        let bf16 = Precision {
            autocast: Autocast::Bf16,
            ..Precision::default()
        };
        let nhwc = Precision {
            channels_last: true,
            ..Precision::default()
        };
        let tf32 = Precision {
            tf32: true,
            ..Precision::default()
        };
        let e = cpu(bf16).key_env();
        assert_eq!(e.get("autocast"), Some(&json!("bf16")));
        assert_ne!(e, base);
        let e = cpu(nhwc).key_env();
        assert_eq!(e.get("channels_last"), Some(&json!(true)));
        assert_ne!(e, base);
        // TF32 does nothing on the CPU, so it must not split CPU keys.
        assert_eq!(cpu(tf32).key_env(), base);
        let g = cuda(tf32).key_env();
        assert_eq!(g.get("tf32"), Some(&json!(true)));
        assert_ne!(g, cuda(Precision::default()).key_env());
        // Settings travel to the worker as JSON: the options survive the trip.
        let all = Precision {
            autocast: Autocast::Bf16,
            channels_last: true,
            tf32: true,
        };
        let back: RunSettings =
            serde_json::from_str(&serde_json::to_string(&cuda(all)).unwrap()).unwrap();
        assert_eq!(back.precision, all);
    }

    #[test]
    fn kinds_drop_the_options_they_do_not_apply() {
        let all = Precision {
            autocast: Autocast::Bf16,
            channels_last: true,
            tf32: true,
        };
        let none = PrecisionSupport {
            autocast: false,
            channels_last: false,
        };
        assert_eq!(
            all.for_kind(none),
            Precision {
                tf32: true,
                ..Precision::default()
            }
        );
        let lm = PrecisionSupport {
            autocast: true,
            channels_last: false,
        };
        assert_eq!(all.for_kind(lm).autocast, Autocast::Bf16);
        assert!(!all.for_kind(lm).channels_last);
    }
}
