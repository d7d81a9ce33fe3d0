//! `pipeline.lock`: committed, human-diffable YAML pinning dataset digests (including the sha256
//! first seen for md5-only datasets) and, per profile, the digests of generated datasets and of
//! the outputs of every run declared `determinism: bitwise`.

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::{Context, Result, bail};
use serde::{Deserialize, Serialize};

use crate::store::atomic::write_atomic;

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LockFile {
    pub version: u32,
    /// Dataset → file → digests of the verified upstream file.
    #[serde(default)]
    pub datasets: BTreeMap<String, BTreeMap<String, LockedFile>>,
    #[serde(default)]
    pub profiles: BTreeMap<String, LockedProfile>,
}

impl LockFile {
    /// Record a verified upstream file's digests (the first verified download of an md5-only
    /// dataset is where its sha256 comes from).
    pub fn record_dataset_file(
        &mut self,
        dataset: &str,
        name: &str,
        sha256: &str,
        md5: &str,
        size: u64,
    ) {
        self.datasets
            .entry(dataset.to_string())
            .or_default()
            .insert(
                name.to_string(),
                LockedFile {
                    sha256: sha256.into(),
                    md5: Some(md5.into()),
                    size,
                },
            );
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LockedFile {
    pub sha256: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub md5: Option<String>,
    pub size: u64,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LockedProfile {
    /// Generated dataset → file → sha256.
    #[serde(default)]
    pub generated: BTreeMap<String, BTreeMap<String, String>>,
    /// Run id → key and output digests.
    #[serde(default)]
    pub runs: BTreeMap<String, LockedRun>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LockedRun {
    /// The key the outputs were locked under (informational: another machine may have another).
    pub key: String,
    pub outputs: BTreeMap<String, String>,
}

/// How one output of a run differs from what the lock pins for it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OutputDiff {
    /// Locked, but the run did not produce it.
    Missing { name: String },
    /// Produced with another digest.
    Differs {
        name: String,
        got: String,
        want: String,
    },
    /// Produced, but the lock does not name it.
    Unlocked { name: String },
}

impl OutputDiff {
    pub fn name(&self) -> &str {
        match self {
            OutputDiff::Missing { name }
            | OutputDiff::Differs { name, .. }
            | OutputDiff::Unlocked { name } => name,
        }
    }
}

impl LockedRun {
    /// Every way a run's output digests (name → sha256) differ from the locked ones, in name
    /// order; empty when the run reproduced them bit for bit.
    pub fn differences(&self, actual: &BTreeMap<String, String>) -> Vec<OutputDiff> {
        let names: std::collections::BTreeSet<&String> =
            actual.keys().chain(self.outputs.keys()).collect();
        names
            .into_iter()
            .filter_map(|n| match (actual.get(n), self.outputs.get(n)) {
                (None, Some(_)) => Some(OutputDiff::Missing { name: n.clone() }),
                (Some(_), None) => Some(OutputDiff::Unlocked { name: n.clone() }),
                (Some(got), Some(want)) if got != want => Some(OutputDiff::Differs {
                    name: n.clone(),
                    got: got.clone(),
                    want: want.clone(),
                }),
                _ => None,
            })
            .collect()
    }
}

const HEADER: &str = "# pipeline.lock: written by `repro lock` and `repro fetch`; checked by `repro verify`.\n# Commit it. Digests are sha256 unless named.\n";

impl LockFile {
    /// Read the lock; a missing file is an empty lock.
    pub fn load(path: &Path) -> Result<LockFile> {
        match std::fs::read_to_string(path) {
            Ok(text) => {
                let l: LockFile = serde_yaml::from_str(&text).map_err(|e| {
                    let at = e
                        .location()
                        .map(|l| format!(":{}:{}", l.line(), l.column()))
                        .unwrap_or_default();
                    anyhow::anyhow!("{}{at}: not a valid lock file: {e}", path.display())
                })?;
                if l.version != 1 {
                    bail!(
                        "{}: lock version {} is not supported (expected 1)",
                        path.display(),
                        l.version
                    );
                }
                Ok(l)
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(LockFile {
                version: 1,
                ..Default::default()
            }),
            Err(e) => Err(e).with_context(|| format!("cannot read {}", path.display())),
        }
    }

    pub fn save(&self, path: &Path) -> Result<()> {
        let body = serde_yaml::to_string(self)?;
        write_atomic(path, format!("{HEADER}{body}").as_bytes())
            .with_context(|| format!("cannot write {}", path.display()))
    }

    /// Every digest the lock refers to (for `gc`).
    pub fn digests(&self) -> impl Iterator<Item = &String> {
        let ds = self
            .datasets
            .values()
            .flat_map(|f| f.values().map(|l| &l.sha256));
        let prof = self.profiles.values().flat_map(|p| {
            p.generated
                .values()
                .flat_map(|f| f.values())
                .chain(p.runs.values().flat_map(|r| r.outputs.values()))
        });
        ds.chain(prof)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_rejects_garbage() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("pipeline.lock");
        assert_eq!(LockFile::load(&p).unwrap().version, 1);
        let mut l = LockFile {
            version: 1,
            ..Default::default()
        };
        l.profiles.entry("smoke".into()).or_default().runs.insert(
            "a/seed=0".into(),
            LockedRun {
                key: "k".into(),
                outputs: BTreeMap::from([("m".into(), "d".into())]),
            },
        );
        l.save(&p).unwrap();
        assert_eq!(LockFile::load(&p).unwrap(), l);
        std::fs::write(&p, "version: 1\nbogus: 2\n").unwrap();
        let e = LockFile::load(&p).unwrap_err().to_string();
        assert!(e.contains("pipeline.lock") && e.contains("bogus"), "{e}");
    }

    #[test]
    fn a_run_differs_from_its_lock_by_each_missing_changed_or_unlocked_output() {
        let digests = |pairs: &[(&str, &str)]| -> BTreeMap<String, String> {
            pairs
                .iter()
                .map(|(n, d)| (n.to_string(), d.to_string()))
                .collect()
        };
        let locked = LockedRun {
            key: "k".into(),
            outputs: digests(&[("a", "1"), ("b", "2"), ("c", "3")]),
        };
        assert!(locked.differences(&locked.outputs).is_empty());
        let got = locked.differences(&digests(&[("a", "1"), ("b", "9"), ("d", "4")]));
        assert_eq!(
            got,
            vec![
                OutputDiff::Differs {
                    name: "b".into(),
                    got: "9".into(),
                    want: "2".into()
                },
                OutputDiff::Missing { name: "c".into() },
                OutputDiff::Unlocked { name: "d".into() },
            ]
        );
        assert_eq!(
            got.iter().map(OutputDiff::name).collect::<Vec<_>>(),
            ["b", "c", "d"]
        );
    }
}
