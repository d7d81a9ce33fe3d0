//! What `repro push` and `repro export` share of a profile: the [`Publication`] of its finished
//! runs (or of some targets and everything upstream of them), the records of the datasets it
//! generated, and its report when the report is of exactly those runs.

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::{Context, Result};

use super::datasets::generation_manifest;
use super::executor::{Executor, RunState};
use super::lockfile::LockFile;
use super::plan::Plan;
use crate::store::published::{FORMAT, Publication};

/// A publication and what was left out of it, in words.
pub struct Shared {
    pub publication: Publication,
    /// Runs of the plan that have not finished (not shared).
    pub unfinished: Vec<String>,
    /// Why the report is not shared, when it is not.
    pub report_left_out: Option<String>,
}

/// The publication of `plan`'s finished runs (`states` from [`Executor::states`]); the report
/// goes with it when `with_report` and the profile's last report read exactly these runs'
/// outputs. `pipeline_file` is put in the store as an object, which the publication names.
pub fn publication(
    exec: &Executor,
    plan: &Plan,
    states: &[(String, RunState)],
    pipeline_file: &Path,
    with_report: bool,
) -> Result<Shared> {
    let store = exec.store;
    let mut runs = BTreeMap::new();
    let mut unfinished = Vec::new();
    for (id, state) in states {
        match state.done_key() {
            Some(key) => {
                runs.insert(id.clone(), key.to_string());
            }
            None => unfinished.push(id.clone()),
        }
    }
    let mut generated = BTreeMap::new();
    for d in &plan.datasets {
        if let Some(m) = generation_manifest(&exec.pipeline.salt, d)
            && store.read_record(&m.key())?.is_some()
        {
            generated.insert(d.name.clone(), m.key());
        }
    }
    let (report, report_left_out) = if with_report {
        report_of(exec, plan, &runs)?
    } else {
        (None, Some("only whole profiles carry their report".into()))
    };
    let scratch = store.scratch("publish-")?;
    let copy = scratch.path().join("pipeline.yaml");
    std::fs::copy(pipeline_file, &copy)
        .with_context(|| format!("cannot read {}", pipeline_file.display()))?;
    let pipeline = store.put_file(&copy)?;
    let lock = LockFile::load(&exec.lock_path)?
        .profiles
        .get(&plan.profile)
        .cloned();
    Ok(Shared {
        publication: Publication {
            format: FORMAT,
            profile: plan.profile.clone(),
            runs,
            generated,
            report,
            pipeline,
            lock,
            repro: env!("CARGO_PKG_VERSION").to_string(),
        },
        unfinished,
        report_left_out,
    })
}

/// The profile's last report when it read exactly the finished runs' outputs, else why not.
fn report_of(
    exec: &Executor,
    plan: &Plan,
    runs: &BTreeMap<String, String>,
) -> Result<(Option<String>, Option<String>)> {
    let store = exec.store;
    let stale = || {
        Ok((
            None,
            Some(format!(
                "the last report is not of these runs: run `repro report --profile {}` first",
                plan.profile
            )),
        ))
    };
    let Some(key) = store.get_ref(&plan.profile, "report") else {
        return stale();
    };
    let Some(report) = store.read_record(&key)? else {
        return stale();
    };
    for (id, key) in runs {
        let Some(r) = store.read_record(key)? else {
            return stale();
        };
        if report.manifest.inputs.get(&format!("run:{id}")) != Some(&r.output_digests()) {
            return stale();
        }
    }
    if report.manifest.inputs.len() != runs.len() || !store.damaged_outputs(&report).is_empty() {
        return stale();
    }
    Ok((Some(key), None))
}
