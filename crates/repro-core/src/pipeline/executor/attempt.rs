//! One run, start to end: key it, take it from the store when an intact record is there, or
//! else compute it through the store's memoize (under the key's lock, resumable in its work
//! folder) by handing a [`Task`] to the [`Launcher`], and point the profile's ref at its key.

use std::collections::{BTreeMap, BTreeSet};

use anyhow::{Context, Result, bail};

use super::events::{At, Reporter, RunEvent};
use super::keys::{self, Digests};
use super::launch::Launcher;
use crate::data::DatasetView;
use crate::pipeline::placement::Placement;
use crate::pipeline::plan::{Plan, RunNode};
use crate::pipeline::progress::Progress;
use crate::pipeline::stage::{Outcome, Task, UpstreamRun};
use crate::runtime::{self, Device, RunSettings};
use crate::store::Store;
use crate::store::memo::{Computed, Job, Scratch};
use crate::store::record::RunRecord;

/// Prepared datasets: name → (view, file digests).
pub type Views = BTreeMap<String, (DatasetView, Digests)>;

/// What every run of one `repro run` shares.
pub struct Runs<'a> {
    pub store: &'a Store,
    pub salt: &'a str,
    pub plan: &'a Plan,
    pub views: &'a Views,
    pub device: &'a Device,
    pub threads: usize,
    pub force: &'a BTreeSet<String>,
    /// Run id → the pulled record that stands for it (not run here).
    pub pulled: &'a BTreeMap<String, RunRecord>,
    pub no_repair: bool,
    pub reporter: &'a dyn Reporter,
    pub launcher: &'a dyn Launcher,
}

impl Runs<'_> {
    /// Run `i` of the plan: `Ok((record, ran))`.
    pub fn process(
        &self,
        i: usize,
        upstream: &BTreeMap<String, RunRecord>,
        slot: &Placement,
    ) -> Result<(RunRecord, bool)> {
        let run = &self.plan.runs[i];
        let at = At {
            n: i + 1,
            total: self.plan.runs.len(),
            run: &run.id,
        };
        if let Some(r) = self.pulled.get(&run.id) {
            self.reporter.event(at, RunEvent::Pulled { key: &r.key });
            return Ok((r.clone(), false));
        }
        let (settings, m) = self.keyed(run, upstream)?;
        let key = m.key();
        let forced = self.force.contains(&run.id);
        let reasons = match self.cached(run, &key, forced)? {
            Cache::Intact(r) => {
                self.reporter.event(at, RunEvent::Cached { key: &key });
                return Ok((*r, false));
            }
            Cache::Run(reasons) => reasons,
            Cache::New => keys::reasons(self.store, &self.plan.profile, &run.id, &m),
        };
        self.reporter.event(
            at,
            RunEvent::Started {
                key: &key,
                reasons: &reasons,
            },
        );
        let job = Job {
            run_id: &run.id,
            experiment: &run.experiment,
            force: forced,
            resumable: true,
            host: &runtime::hostname(),
        };
        let progress = |tick: &Progress| self.reporter.event(at, RunEvent::Progress(tick));
        let memo = self.store.memoize(m, job, |scratch| {
            let attempt = Attempt {
                run,
                upstream,
                settings: &settings,
                key: &key,
                slot,
            };
            self.compute(&attempt, scratch, &progress)
        })?;
        for line in &memo.quarantined {
            self.reporter.note(line);
        }
        self.store.set_ref(&self.plan.profile, &run.id, &key)?;
        let event = match memo.computed {
            true => RunEvent::Done {
                seconds: memo.record.seconds,
            },
            false => RunEvent::CachedByOther,
        };
        self.reporter.event(at, event);
        Ok((memo.record, memo.computed))
    }

    /// The settings and manifest of `run`, given its upstream runs' records.
    pub(super) fn keyed(
        &self,
        run: &RunNode,
        upstream: &BTreeMap<String, RunRecord>,
    ) -> Result<(RunSettings, crate::store::key::Manifest)> {
        let settings = keys::settings(run, self.device, self.threads);
        let m = keys::manifest(
            self.salt,
            run,
            &settings,
            |d| self.views.get(d).map(|(_, digests)| digests.clone()),
            |u| upstream.get(u).map(RunRecord::output_digests),
        )
        .map_err(|missing| anyhow::anyhow!("cannot key {}: {}", run.id, missing.join("; ")))?;
        Ok((settings, m))
    }

    /// What the store holds for `key`: an intact record (its ref set), a damaged one (the
    /// damage as the reasons to run; an error with `--no-repair`), or nothing.
    pub(super) fn cached(&self, run: &RunNode, key: &str, forced: bool) -> Result<Cache> {
        if forced {
            return Ok(Cache::Run(vec!["--force".to_string()]));
        }
        let Some(r) = self.store.read_record(key)? else {
            return Ok(Cache::New);
        };
        let damage = self.store.damaged_outputs(&r);
        if damage.is_empty() {
            self.store.set_ref(&self.plan.profile, &run.id, key)?;
            return Ok(Cache::Intact(Box::new(r)));
        }
        if self.no_repair {
            bail!(
                "cached run {} is damaged: {} (run without --no-repair to rebuild it)",
                &key[..12],
                damage
                    .iter()
                    .map(|d| format!(
                        "{d}: {}",
                        self.store.object_path(&d.object.sha256).display()
                    ))
                    .collect::<Vec<_>>()
                    .join("; ")
            );
        }
        Ok(Cache::Run(damage.iter().map(|d| d.to_string()).collect()))
    }

    /// Hand a run to the launcher in `scratch` (called under the key's lock).
    fn compute(
        &self,
        a: &Attempt,
        scratch: &Scratch,
        progress: &dyn Fn(&Progress),
    ) -> Result<Computed> {
        let task = Task {
            out_dir: scratch.out.clone(),
            checkpoints: scratch.checkpoints.clone(),
            ..self.task(a.run, a.upstream, a.settings, a.slot)?
        };
        let log = self.store.log_path(a.key)?;
        let outcome = self
            .launcher
            .launch(&task, scratch, &log, a.slot, progress)?
            .pop()
            .context("the worker reported no outcome")?;
        Ok(computed(outcome, a.settings, a.slot))
    }

    /// The task of `run` (its out folder and checkpoints still to be set).
    pub(super) fn task(
        &self,
        run: &RunNode,
        upstream_records: &BTreeMap<String, RunRecord>,
        settings: &RunSettings,
        slot: &Placement,
    ) -> Result<Task> {
        let mut upstream = Vec::new();
        for u in &run.upstream {
            let rec = &upstream_records[u];
            let mut outputs = BTreeMap::new();
            for (name, o) in &rec.outputs {
                let path = self
                    .store
                    .verify_object(o)
                    .with_context(|| format!("input from {u}"))?;
                outputs.insert(name.clone(), path);
            }
            upstream.push(UpstreamRun {
                run_id: u.clone(),
                params: rec.manifest.params.clone(),
                outputs,
            });
        }
        Ok(Task {
            run_id: run.id.clone(),
            kind: run.kind.name.to_string(),
            params: run.params.clone(),
            datasets: run
                .datasets
                .iter()
                .map(|d| (d.clone(), self.views[d].0.clone()))
                .collect(),
            upstream,
            out_dir: Default::default(),
            checkpoints: None,
            settings: on_slot(settings, slot),
            members: Vec::new(),
        })
    }
}

/// What the store holds for a run's key.
pub(super) enum Cache {
    Intact(Box<RunRecord>),
    /// A damaged record, or `--force`: why it runs.
    Run(Vec<String>),
    New,
}

/// A run's outcome as its record keeps it: the worker's metrics, and the host, the libtorch
/// the worker saw, the slot and the precision that took effect.
pub(super) fn computed(outcome: Outcome, settings: &RunSettings, slot: &Placement) -> Computed {
    let mut environment = runtime::host_fingerprint();
    environment.insert(
        "libtorch_runtime".into(),
        serde_json::Value::Object(outcome.environment),
    );
    environment.insert("placement".into(), slot.describe());
    // What took effect: the kind's options, TF32 only on CUDA.
    environment.insert(
        "precision".into(),
        serde_json::json!(settings.precision.on(&settings.device)),
    );
    Computed {
        metrics: outcome.metrics,
        environment,
    }
}

/// One run being computed: what its task is built from.
struct Attempt<'a> {
    run: &'a RunNode,
    upstream: &'a BTreeMap<String, RunRecord>,
    settings: &'a RunSettings,
    key: &'a str,
    slot: &'a Placement,
}

/// The settings as the worker sees them: a slot's GPU is its only visible one.
fn on_slot(settings: &RunSettings, slot: &Placement) -> RunSettings {
    match (&settings.device, slot.gpu) {
        (Device::Cuda { capability, .. }, Some(_)) => RunSettings {
            device: Device::Cuda {
                index: 0,
                capability: capability.clone(),
            },
            ..settings.clone()
        },
        _ => settings.clone(),
    }
}
