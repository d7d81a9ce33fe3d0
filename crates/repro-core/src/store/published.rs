//! A publication: what a profile's results are, as shared through a remote or a bundle — the key
//! of every run record by run id, the generated datasets' and the report's record keys, the
//! `pipeline.yaml` they were made with (an object) and the profile's `pipeline.lock` entry.
//!
//! `repro push` writes one to the remote (`published/<profile>.json`, last, after every record
//! and object it names); `repro pull` and `repro import` write the one they brought into the
//! store at the same path. Only a pulled publication lets runs made on another machine (another
//! device, thread count or libtorch: another key) stand for this machine's
//! (`RunState::Pulled`); the store's refs never do.

use std::collections::BTreeMap;

use anyhow::{Context, Result, bail};
use serde::{Deserialize, Serialize};

use super::Store;
use super::atomic::write_atomic;
use super::record::ObjectRef;
use crate::pipeline::lockfile::LockedProfile;

/// The publication format this repro writes and reads.
pub const FORMAT: u32 = 1;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Publication {
    pub format: u32,
    pub profile: String,
    /// Run id → the key of its record.
    pub runs: BTreeMap<String, String>,
    /// Generated dataset → the key of its generation record.
    #[serde(default)]
    pub generated: BTreeMap<String, String>,
    /// The key of the profile's report record, when it was published with the runs.
    #[serde(default)]
    pub report: Option<String>,
    /// The `pipeline.yaml` the runs were made with, as an object of the store.
    pub pipeline: ObjectRef,
    /// The profile's `pipeline.lock` entry where it had one.
    #[serde(default)]
    pub lock: Option<LockedProfile>,
    /// The repro version that published it.
    pub repro: String,
}

/// Relative paths shared by a store, a remote and a bundle: a remote is laid out as a store is.
pub mod layout {
    pub fn record(key: &str) -> String {
        format!("runs/{key}.json")
    }
    pub fn object(sha256: &str) -> String {
        let (a, b) = sha256.split_at(2.min(sha256.len()));
        format!("objects/sha256/{a}/{b}")
    }
    pub fn publication(profile: &str) -> String {
        format!("published/{profile}.json")
    }
}

/// Whether `s` is a lowercase sha256 in hex (a key or an object name): what makes a remote's or
/// a bundle's names safe to turn into paths.
pub fn is_sha256(s: &str) -> bool {
    s.len() == 64
        && s.bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

impl Publication {
    /// Parse and check a publication read from `origin` (a remote path, a bundle member): every
    /// key and digest must be a sha256, so none can name a path outside a store.
    pub fn parse(bytes: &[u8], origin: &str) -> Result<Publication> {
        let p: Publication = serde_json::from_slice(bytes)
            .with_context(|| format!("{origin}: not a repro publication"))?;
        if p.format != FORMAT {
            bail!(
                "{origin}: publication format {} is not supported (this repro reads {FORMAT})",
                p.format
            );
        }
        let valid_profile = !p.profile.is_empty()
            && p.profile
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
        if !valid_profile {
            bail!("{origin}: profile name {:?} is not valid", p.profile);
        }
        for key in p.record_keys() {
            if !is_sha256(key) {
                bail!("{origin}: {key:?} is not a record key (64 lowercase hex digits)");
            }
        }
        if !is_sha256(&p.pipeline.sha256) {
            bail!("{origin}: the pipeline object's digest is not a sha256");
        }
        Ok(p)
    }

    /// Every record the publication names: runs, generated datasets, the report.
    pub fn record_keys(&self) -> Vec<&str> {
        let mut keys: Vec<&str> = self
            .runs
            .values()
            .chain(self.generated.values())
            .chain(self.report.iter())
            .map(String::as_str)
            .collect();
        keys.sort_unstable();
        keys.dedup();
        keys
    }

    pub fn to_json(&self) -> Vec<u8> {
        serde_json::to_vec_pretty(self).unwrap_or_default()
    }
}

impl Store {
    /// The publication of `profile` pulled or imported into this store, if any.
    pub fn publication(&self, profile: &str) -> Result<Option<Publication>> {
        let path = self.root().join(layout::publication(profile));
        match std::fs::read(&path) {
            Ok(b) => Publication::parse(&b, &path.display().to_string()).map(Some),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e).with_context(|| format!("cannot read {}", path.display())),
        }
    }

    /// The profiles with a pulled or imported publication in this store.
    pub fn published_profiles(&self) -> Result<Vec<String>> {
        let dir = self.root().join("published");
        let mut out = Vec::new();
        let entries = match std::fs::read_dir(&dir) {
            Ok(d) => d,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(out),
            Err(e) => return Err(e).with_context(|| format!("cannot list {}", dir.display())),
        };
        for e in entries {
            let name = e
                .with_context(|| format!("cannot list {}", dir.display()))?
                .file_name();
            if let Some(profile) = name.to_str().and_then(|n| n.strip_suffix(".json")) {
                out.push(profile.to_string());
            }
        }
        out.sort();
        Ok(out)
    }

    /// Record a pulled or imported publication (after every record it names is in the store),
    /// and point the profile's refs at its runs, so `verify` and "what changed" read them.
    pub fn write_publication(&self, p: &Publication) -> Result<()> {
        for (id, key) in &p.runs {
            self.set_ref(&p.profile, id, key)?;
        }
        if let Some(key) = &p.report {
            self.set_ref(&p.profile, "report", key)?;
        }
        let path = self.root().join(layout::publication(&p.profile));
        write_atomic(&path, &p.to_json())
            .with_context(|| format!("cannot write {}", path.display()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Publication {
        Publication {
            format: FORMAT,
            profile: "smoke".into(),
            runs: BTreeMap::from([("e/seed=0".into(), "a".repeat(64))]),
            generated: BTreeMap::from([("d".into(), "b".repeat(64))]),
            report: Some("a".repeat(64)),
            pipeline: ObjectRef {
                sha256: "c".repeat(64),
                size: 3,
            },
            lock: None,
            repro: "0.1.0".into(),
        }
    }

    #[test]
    fn round_trips_and_names_each_record_once() {
        let p = sample();
        assert_eq!(Publication::parse(&p.to_json(), "x").unwrap(), p);
        assert_eq!(p.record_keys(), vec!["a".repeat(64), "b".repeat(64)]);
    }

    #[test]
    fn refuses_keys_that_could_be_paths_and_other_formats() {
        let mut p = sample();
        p.runs.insert("e/seed=1".into(), "../../etc/passwd".into());
        let e = format!(
            "{:#}",
            Publication::parse(&p.to_json(), "remote").unwrap_err()
        );
        assert!(
            e.contains("remote") && e.contains("not a record key"),
            "{e}"
        );
        let mut p = sample();
        p.format = 2;
        let e = format!(
            "{:#}",
            Publication::parse(&p.to_json(), "remote").unwrap_err()
        );
        assert!(e.contains("format 2"), "{e}");
        let mut p = sample();
        p.profile = "../x".into();
        assert!(Publication::parse(&p.to_json(), "remote").is_err());
    }

    #[test]
    fn a_written_publication_is_read_back_and_sets_the_refs() {
        let dir = tempfile::tempdir().unwrap();
        let s = Store::open(dir.path()).unwrap();
        assert!(s.publication("smoke").unwrap().is_none());
        let p = sample();
        s.write_publication(&p).unwrap();
        assert_eq!(s.publication("smoke").unwrap(), Some(p));
        assert_eq!(s.get_ref("smoke", "e/seed=0"), Some("a".repeat(64)));
        assert_eq!(s.get_ref("smoke", "report"), Some("a".repeat(64)));
        assert_eq!(s.published_profiles().unwrap(), vec!["smoke".to_string()]);
    }

    #[test]
    fn gc_keeps_the_pipeline_object_of_a_publication() {
        let dir = tempfile::tempdir().unwrap();
        let s = Store::open(dir.path()).unwrap();
        let f = dir.path().join("pipeline.yaml");
        std::fs::write(&f, b"version: 1\n").unwrap();
        let mut p = sample();
        p.pipeline = s.put_file(&f).unwrap();
        let none = std::collections::BTreeSet::new();
        assert_eq!(
            s.unreferenced(&none).unwrap().len(),
            1,
            "no publication yet"
        );
        s.write_publication(&p).unwrap();
        assert!(s.unreferenced(&none).unwrap().is_empty());
    }
}
