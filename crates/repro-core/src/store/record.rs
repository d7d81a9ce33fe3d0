//! Run records: `artifacts/runs/<key>.json`, one per finished run.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::key::Manifest;
use super::published::is_sha256;

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
    /// Parse a record fetched or imported under the name `key`: refused (the reason, in words)
    /// unless it says `key` is its key and its manifest hashes to `key`, so its parameters and
    /// inputs are the ones its name stands for, and every output is named by a sha256 (so none
    /// can become a path outside a store).
    pub fn parse_named(bytes: &[u8], key: &str) -> Result<RunRecord, String> {
        let r: RunRecord =
            serde_json::from_slice(bytes).map_err(|e| format!("not a run record: {e}"))?;
        if r.key != key {
            return Err(format!("the record says its key is {}, not {key}", r.key));
        }
        let made = r.manifest.key();
        if made != key {
            return Err(format!(
                "its manifest hashes to key {made}, not to the key {key} it is named by (its \
                 parameters or inputs were altered)"
            ));
        }
        if let Some((name, o)) = r.outputs.iter().find(|(_, o)| !is_sha256(&o.sha256)) {
            return Err(format!(
                "output {name} is not named by a sha256 ({:?})",
                o.sha256
            ));
        }
        Ok(r)
    }

    /// Output name → sha256: what downstream keys and the lock record of this run.
    pub fn output_digests(&self) -> BTreeMap<String, String> {
        self.outputs
            .iter()
            .map(|(k, o)| (k.clone(), o.sha256.clone()))
            .collect()
    }
}
