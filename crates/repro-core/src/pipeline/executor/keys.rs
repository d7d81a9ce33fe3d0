//! A run's key: the one place its manifest is assembled (for `plan`/`status` before any work,
//! and for `run` once its inputs exist), and why a run whose key is not in the store would run.

use std::collections::BTreeMap;

use crate::pipeline::plan::RunNode;
use crate::pipeline::spec::Determinism;
use crate::runtime::{Device, RunSettings};
use crate::store::Store;
use crate::store::key::{Manifest, diff};
use crate::store::published::Publication;
use crate::store::record::RunRecord;

/// Output file → sha256.
pub type Digests = BTreeMap<String, String>;

/// The settings a run executes with on `device` with `threads`.
pub fn settings(run: &RunNode, device: &Device, threads: usize) -> RunSettings {
    RunSettings {
        device: device.clone(),
        threads,
        bitwise: run.determinism == Determinism::Bitwise,
        precision: run.precision,
        fused: run.fused.clone(),
    }
}

/// The manifest of `run`, given the digests of its datasets and of its upstream runs' outputs
/// (`None` where they are not known yet). `Err` lists what is missing, in words.
pub fn manifest(
    salt: &str,
    run: &RunNode,
    settings: &RunSettings,
    dataset: impl Fn(&str) -> Option<Digests>,
    upstream: impl Fn(&str) -> Option<Digests>,
) -> Result<Manifest, Vec<String>> {
    let mut inputs = BTreeMap::new();
    let mut missing = Vec::new();
    for d in &run.datasets {
        match dataset(d) {
            Some(ids) => {
                inputs.insert(format!("dataset:{d}"), ids);
            }
            None => missing.push(format!("dataset {d} not generated or fetched yet")),
        }
    }
    for u in &run.upstream {
        match upstream(u) {
            Some(digests) => {
                inputs.insert(format!("run:{u}"), digests);
            }
            None => missing.push(format!("upstream {u} will run")),
        }
    }
    if !missing.is_empty() {
        return Err(missing);
    }
    Ok(Manifest {
        salt: salt.to_string(),
        kind: run.kind.name.to_string(),
        kind_version: run.kind.version,
        params: run.params.clone(),
        inputs,
        env: settings.key_env(),
    })
}

/// Why a run would run, compared with the last run of the same id in this profile.
pub fn reasons(store: &Store, profile: &str, run_id: &str, m: &Manifest) -> Vec<String> {
    let prev = store
        .get_ref(profile, run_id)
        .and_then(|k| store.read_record(&k).ok().flatten());
    match prev {
        None => vec!["never run".into()],
        Some(p) if p.manifest.key() == m.key() => {
            vec!["its record is missing from the store".into()]
        }
        Some(p) => {
            let d = diff(&p.manifest, m);
            if d.is_empty() {
                vec!["key changed".into()]
            } else {
                d
            }
        }
    }
}

/// The published run that stands for `run_id` on this machine, whose manifest `m` is: the
/// publication's record for it, intact, made with the same salt, stage, parameters and inputs
/// (only its environment may differ). With its key and how that environment differs.
pub fn pulled(
    store: &Store,
    published: &Publication,
    run_id: &str,
    m: &Manifest,
) -> Option<(String, RunRecord, Vec<String>)> {
    let key = published.runs.get(run_id)?;
    let r = store.read_record(key).ok()??;
    let p = &r.manifest;
    let same_run = p.salt == m.salt
        && p.kind == m.kind
        && p.kind_version == m.kind_version
        && p.params == m.params
        && p.inputs == m.inputs;
    if !same_run || r.key != *key || p.key() != *key || !store.damaged_outputs(&r).is_empty() {
        return None;
    }
    let made_with = diff(p, m);
    Some((key.clone(), r, made_with))
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use serde_json::{Map, json};

    use super::*;
    use crate::store::published::FORMAT;
    use crate::store::record::ObjectRef;

    fn manifest(lr: f64, device: &str) -> Manifest {
        let mut params = Map::new();
        params.insert("lr".into(), json!(lr));
        Manifest {
            salt: "s".into(),
            kind: "vision".into(),
            kind_version: 3,
            params,
            inputs: BTreeMap::from([(
                "dataset:d".to_string(),
                BTreeMap::from([("f".to_string(), "0".repeat(64))]),
            )]),
            env: BTreeMap::from([("device".to_string(), json!(device))]),
        }
    }

    /// A store holding one finished run made on `device`, and a publication naming it.
    fn published(dir: &std::path::Path, device: &str) -> (Store, Publication, ObjectRef) {
        let store = Store::open(dir).unwrap();
        let f = dir.join("out");
        std::fs::write(&f, b"weights").unwrap();
        let out = store.put_file(&f).unwrap();
        let m = manifest(0.1, device);
        let key = m.key();
        store
            .write_record(&RunRecord {
                key: key.clone(),
                run_id: "e/seed=0".into(),
                experiment: "e".into(),
                manifest: m,
                outputs: BTreeMap::from([("w".to_string(), out.clone())]),
                metrics: Map::new(),
                environment: Map::new(),
                started: String::new(),
                finished: String::new(),
                seconds: 1.0,
                host: "elsewhere".into(),
            })
            .unwrap();
        let p = Publication {
            format: FORMAT,
            profile: "p".into(),
            runs: BTreeMap::from([("e/seed=0".to_string(), key)]),
            generated: BTreeMap::new(),
            report: None,
            pipeline: out.clone(),
            lock: None,
            repro: "test".into(),
        };
        (store, p, out)
    }

    #[test]
    fn a_published_run_stands_for_this_machines_only_with_the_same_parameters_and_inputs() {
        let dir = tempfile::tempdir().unwrap();
        let (store, p, out) = published(dir.path(), "cuda");
        // Same run, another device: taken, and the difference said.
        let (key, r, made_with) = pulled(&store, &p, "e/seed=0", &manifest(0.1, "cpu")).unwrap();
        assert_eq!(key, p.runs["e/seed=0"]);
        assert_eq!(r.host, "elsewhere");
        assert_eq!(made_with, vec!["device cuda→cpu".to_string()]);
        // Another parameter, another input, another run id: not the same run.
        assert!(pulled(&store, &p, "e/seed=0", &manifest(0.2, "cpu")).is_none());
        let mut other_input = manifest(0.1, "cpu");
        other_input.inputs.insert(
            "run:up".into(),
            BTreeMap::from([("x".into(), "1".repeat(64))]),
        );
        assert!(pulled(&store, &p, "e/seed=0", &other_input).is_none());
        assert!(pulled(&store, &p, "e/seed=1", &manifest(0.1, "cpu")).is_none());
        // A damaged output: never served.
        let obj = store.object_path(&out.sha256);
        std::fs::set_permissions(&obj, std::fs::Permissions::from_mode(0o644)).unwrap();
        std::fs::write(&obj, b"weighTs").unwrap();
        assert!(pulled(&store, &p, "e/seed=0", &manifest(0.1, "cpu")).is_none());
    }

    #[test]
    fn a_record_that_does_not_hash_to_its_key_is_not_taken() {
        let dir = tempfile::tempdir().unwrap();
        let (store, p, _) = published(dir.path(), "cuda");
        let key = &p.runs["e/seed=0"];
        let mut r = store.read_record(key).unwrap().unwrap();
        r.manifest.kind_version = 4; // edited after it was keyed
        store.write_record(&r).unwrap();
        let mut local = manifest(0.1, "cpu");
        local.kind_version = 4;
        assert!(pulled(&store, &p, "e/seed=0", &local).is_none());
    }
}
