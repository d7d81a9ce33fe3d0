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
