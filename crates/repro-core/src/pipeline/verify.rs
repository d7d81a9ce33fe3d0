//! `repro verify`, `repro lock` and the reachability `repro gc` needs: re-hashing every object
//! the run records and the lock reference, and comparing locked digests with the store.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use anyhow::{Result, bail};

use super::datasets::{generation_manifest, tree_stat};
use super::executor::{Executor, RunState};
use super::lockfile::{LockFile, LockedRun, OutputDiff};
use super::plan::Plan;
use super::spec::{DatasetSource, Determinism};
use crate::data::extract::{MANIFEST, MARKER, check_tree};
use crate::store::Store;
use crate::store::hash::digests_file;

/// Result of a verification.
#[derive(Debug, Default)]
pub struct Verification {
    pub objects: usize,
    pub locked_runs: usize,
    pub dataset_files: usize,
    /// Files of extracted dataset trees re-hashed against their manifests.
    pub extracted_files: usize,
    pub problems: Vec<String>,
}

/// A profile whose locked outputs `verify` compares with the store.
pub struct ProfileCheck {
    pub profile: String,
    /// The store key of every dataset the checked runs generate.
    pub generation_keys: BTreeMap<String, String>,
    /// Only these locked runs (a store that reran a few of them); `None`: every locked run.
    pub runs: Option<BTreeSet<String>>,
}

/// Re-hash every object of every run record, every fetched dataset file the lock pins and every
/// file of every extracted dataset tree (against the manifest written when it was extracted);
/// for `profiles`, compare the locked digests with what the store holds.
pub fn verify(
    store: &Store,
    lock: &LockFile,
    datasets_dir: &Path,
    profiles: &[ProfileCheck],
) -> Result<Verification> {
    let mut v = Verification::default();
    let mut seen = BTreeSet::new();
    for r in store.records()? {
        let r = match r {
            Ok(r) => r,
            Err(e) => {
                v.problems.push(format!("{e:#}"));
                continue;
            }
        };
        for (name, o) in &r.outputs {
            if seen.insert(o.sha256.clone()) {
                v.objects += 1;
                if let Err(e) = store.verify_object(o) {
                    v.problems.push(format!("{} output {name}: {e}", r.run_id));
                }
            }
        }
    }
    for (ds, files) in &lock.datasets {
        for (name, l) in files {
            let path = datasets_dir.join(ds).join(name);
            if !path.exists() {
                continue; // not fetched on this machine: nothing to check
            }
            v.dataset_files += 1;
            let d = digests_file(&path)?;
            if d.sha256 != l.sha256 {
                v.problems.push(format!(
                    "dataset file {}: sha256 {} but pipeline.lock has {}",
                    path.display(),
                    d.sha256,
                    l.sha256
                ));
            }
        }
    }
    verify_trees(store, datasets_dir, &mut v)?;
    for check in profiles {
        let (p, generation_keys) = (&check.profile, &check.generation_keys);
        let Some(locked) = lock.profiles.get(p) else {
            v.problems.push(format!(
                "pipeline.lock has no entry for profile {p}; run `repro lock --profile {p}`"
            ));
            continue;
        };
        for (ds, want) in &locked.generated {
            if check.runs.is_some() && !generation_keys.contains_key(ds) {
                continue; // not read by the runs checked
            }
            let rec = generation_keys
                .get(ds)
                .and_then(|k| store.read_record(k).ok().flatten());
            let got: Option<BTreeMap<String, String>> = rec.map(|r| r.output_digests());
            match got {
                None => v.problems.push(format!(
                    "generated dataset {ds}: not in this store; run `repro run --profile {p}` first"
                )),
                Some(got) if &got != want => v.problems.push(format!(
                    "generated dataset {ds}: files {got:?} differ from pipeline.lock's {want:?}"
                )),
                Some(_) => {}
            }
        }
        if let Some(runs) = &check.runs {
            for id in runs.iter().filter(|id| !locked.runs.contains_key(*id)) {
                v.problems.push(format!(
                    "{id}: not locked for profile {p} (only bitwise runs are); nothing to compare"
                ));
            }
        }
        let checked = |id: &String| check.runs.as_ref().is_none_or(|r| r.contains(id));
        for (id, l) in locked.runs.iter().filter(|(id, _)| checked(id)) {
            v.locked_runs += 1;
            let rec = store
                .get_ref(p, id)
                .and_then(|k| store.read_record(&k).ok().flatten());
            let Some(rec) = rec else {
                v.problems.push(format!("{id}: locked for profile {p} but not in this store; run `repro run --profile {p}` first"));
                continue;
            };
            for d in l.differences(&rec.output_digests()) {
                v.problems.push(match d {
                    OutputDiff::Missing { name } => {
                        format!("{id}: locked output {name} was not produced")
                    }
                    OutputDiff::Differs { name, got, want } => format!(
                        "{id}: output {name} is {got}, pipeline.lock has {want} (not bitwise reproduced)"
                    ),
                    OutputDiff::Unlocked { name } => {
                        format!("{id}: output {name} is not in pipeline.lock")
                    }
                });
            }
        }
    }
    Ok(v)
}

/// Re-hash every extracted tree under `datasets_dir/<dataset>/` against its manifest.
fn verify_trees(store: &Store, datasets_dir: &Path, v: &mut Verification) -> Result<()> {
    let Ok(dir) = std::fs::read_dir(datasets_dir) else {
        return Ok(()); // nothing fetched or generated on this machine
    };
    let mut trees = Vec::new();
    for ds in dir.flatten() {
        for tree in std::fs::read_dir(ds.path()).into_iter().flatten().flatten() {
            if tree.path().join(MARKER).is_file() {
                trees.push(tree.path());
            }
        }
    }
    trees.sort();
    for tree in trees {
        if !tree.join(MANIFEST).exists() {
            v.problems.push(format!(
                "extracted tree {}: no manifest (extracted by an older repro): the next \
                 `repro run` extracts it again",
                tree.display()
            ));
            continue;
        }
        let mut stat = tree_stat(store, &tree);
        stat.rehash = true;
        let problems = check_tree(&tree, &mut stat)?;
        v.extracted_files += stat.hashed;
        for p in problems {
            v.problems.push(format!(
                "extracted dataset file {}: {}",
                tree.join(&p.path).display(),
                p.what
            ));
        }
        // Fresh hashes spare the next `repro run` re-hashing the tree.
        let _ = stat.save();
    }
    Ok(())
}

/// Rewrite a profile's entry of the lock from the store; every bitwise run must have run.
pub fn lock_profile(
    exec: &Executor,
    plan: &Plan,
    lock: &mut LockFile,
    device: &crate::runtime::Device,
    threads: usize,
) -> Result<usize> {
    let mut entry = super::lockfile::LockedProfile::default();
    for d in &plan.datasets {
        if d.source == DatasetSource::Generate
            && let Some(m) = generation_manifest(&exec.pipeline.salt, d)
        {
            match exec.store.read_record(&m.key())? {
                Some(r) => {
                    entry.generated.insert(d.name.clone(), r.output_digests());
                }
                None => bail!(
                    "dataset {} has not been generated for profile {}; run `repro run --profile {}` first",
                    d.name,
                    plan.profile,
                    plan.profile
                ),
            }
        }
    }
    let states = exec.states(plan, device, threads)?;
    let mut missing = Vec::new();
    for (run, (id, state)) in plan.runs.iter().zip(states) {
        if run.determinism != Determinism::Bitwise {
            continue;
        }
        match state {
            RunState::Cached { key } | RunState::Pulled { key, .. } => {
                if let Some(r) = exec.store.read_record(&key)? {
                    entry.runs.insert(
                        id,
                        LockedRun {
                            key,
                            outputs: r.output_digests(),
                        },
                    );
                }
            }
            RunState::WillRun { .. } => missing.push(id),
        }
    }
    if !missing.is_empty() {
        bail!(
            "{} bitwise run(s) of profile {} are not in the store (e.g. {}); run `repro run --profile {}` first",
            missing.len(),
            plan.profile,
            missing[0],
            plan.profile
        );
    }
    let n = entry.runs.len();
    lock.profiles.insert(plan.profile.clone(), entry);
    Ok(n)
}
