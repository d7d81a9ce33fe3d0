//! Run records: `artifacts/runs/<key>.json`, one per finished run.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::key::Manifest;

/// An output file of a run, by content.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ObjectRef {
    pub sha256: String,
    pub size: u64,
}

/// Everything known about one finished run.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RunRecord {
    pub key: String,
    pub run_id: String,
    pub experiment: String,
    pub manifest: Manifest,
    /// Output file name (relative to the run's output folder) → object.
    pub outputs: BTreeMap<String, ObjectRef>,
    /// Summary metrics the stage reported.
    #[serde(default)]
    pub metrics: Map<String, Value>,
    /// Full environment fingerprint (host, CPU, libtorch build, flags), beyond what is in the key.
    #[serde(default)]
    pub environment: Map<String, Value>,
    /// RFC 3339 times.
    pub started: String,
    pub finished: String,
    pub seconds: f64,
    pub host: String,
}

impl RunRecord {
    /// Output name → sha256: what downstream keys and the lock record of this run.
    pub fn output_digests(&self) -> BTreeMap<String, String> {
        self.outputs
            .iter()
            .map(|(k, o)| (k.clone(), o.sha256.clone()))
            .collect()
    }
}
