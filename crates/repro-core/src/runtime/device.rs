//! Devices: the one asked for on the command line ([`DeviceChoice`]) and the one resolved
//! ([`Device`], whose class enters run keys).

use serde::{Deserialize, Serialize};

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
