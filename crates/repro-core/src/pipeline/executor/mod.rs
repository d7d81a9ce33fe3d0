//! The local executor: keys every run of a plan ([`keys`]), prepares its datasets, and runs
//! what the store does not hold over `--jobs` placement slots ([`schedule`]), each run through
//! the store's memoize ([`attempt`]) with a [`Launcher`] (the worker process in production),
//! telling a [`Reporter`] what happens ([`events`]).

mod attempt;
pub mod events;
mod group;
pub mod keys;
pub mod launch;
pub mod schedule;

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::time::Instant;

use anyhow::Result;

use super::datasets::{self, Prepared};
use super::lockfile::LockFile;
use super::placement;
use super::plan::Plan;
use super::spec::Pipeline;
use crate::runtime::Device;
use crate::store::Store;
use crate::store::hash::FileDigests;
use attempt::{Runs, Views};
pub use events::{At, Reporter, RunEvent, Silent};
pub use launch::{Launcher, Worker};
pub use schedule::Summary;

/// How a run stands, for `plan` and `status`.
#[derive(Debug, Clone)]
pub enum RunState {
    /// Record and objects present.
    Cached { key: String },
    /// Not run on this machine, but the profile's pulled publication holds it, made with the
    /// same parameters and inputs elsewhere: taken as done (`run --force` runs it here). Its
    /// key is the published one; `made_with` says how its environment differs from this
    /// machine's ("device cuda→cpu").
    Pulled { key: String, made_with: Vec<String> },
    /// Would run, with the reasons.
    WillRun {
        key: Option<String>,
        reasons: Vec<String>,
    },
}

impl RunState {
    /// The key of the record that stands for the run: its own, or the pulled one.
    pub fn done_key(&self) -> Option<&str> {
        match self {
            RunState::Cached { key } | RunState::Pulled { key, .. } => Some(key),
            RunState::WillRun { .. } => None,
        }
    }
}

/// Options of one `repro run`.
pub struct RunOptions {
    pub device: Device,
    pub threads: usize,
    /// Run ids to rerun even when cached.
    pub force: BTreeSet<String>,
    /// A cached run with a corrupt or missing output fails instead of being rebuilt (its
    /// corrupt objects are left where they are).
    pub no_repair: bool,
    pub mirror: Option<String>,
    /// Runs executed at once (one worker process each).
    pub jobs: usize,
    /// GPUs to spread runs over (`CUDA_VISIBLE_DEVICES` per worker); empty: the device as is.
    pub gpus: Vec<usize>,
    /// Runs sharing one GPU at a time.
    pub runs_per_gpu: usize,
}

pub struct Executor<'a> {
    pub pipeline: &'a Pipeline,
    pub store: &'a Store,
    pub datasets_dir: PathBuf,
    /// pipeline.lock: the digests of fetched files' first verified downloads pin them.
    pub lock_path: PathBuf,
}

impl Executor<'_> {
    /// State of every run without doing any work (no fetch, no generation, no training).
    pub fn states(
        &self,
        plan: &Plan,
        device: &Device,
        threads: usize,
    ) -> Result<Vec<(String, RunState)>> {
        let locked = LockFile::load(&self.lock_path)?.datasets;
        let published = self.store.publication(&plan.profile)?;
        let mut ds_ids = BTreeMap::new();
        for d in &plan.datasets {
            ds_ids.insert(
                d.name.clone(),
                datasets::identity(self.store, &self.pipeline.salt, d, &locked)?,
            );
        }
        // Run id → output digests of runs that are cached (None: will run).
        let mut keys: BTreeMap<String, Option<keys::Digests>> = BTreeMap::new();
        let mut out = Vec::new();
        for run in &plan.runs {
            let settings = keys::settings(run, device, threads);
            let m = keys::manifest(
                &self.pipeline.salt,
                run,
                &settings,
                |d| ds_ids.get(d).cloned().flatten(),
                |u| keys.get(u).cloned().flatten(),
            );
            let state = match m {
                Err(pending) => {
                    keys.insert(run.id.clone(), None);
                    RunState::WillRun {
                        key: None,
                        reasons: pending,
                    }
                }
                Ok(m) => {
                    let key = m.key();
                    let record = self.store.read_record(&key)?;
                    let damage = record
                        .as_ref()
                        .map(|r| self.store.damaged_outputs(r))
                        .unwrap_or_default();
                    keys.insert(
                        run.id.clone(),
                        record
                            .as_ref()
                            .filter(|_| damage.is_empty())
                            .map(|r| r.output_digests()),
                    );
                    let pulled = match (&record, &published) {
                        (None, Some(p)) => keys::pulled(self.store, p, &run.id, &m),
                        _ => None,
                    };
                    if let Some((_, r, _)) = &pulled {
                        keys.insert(run.id.clone(), Some(r.output_digests()));
                    }
                    match record {
                        Some(_) if damage.is_empty() => RunState::Cached { key },
                        Some(_) => RunState::WillRun {
                            reasons: damage.iter().map(|d| d.to_string()).collect(),
                            key: Some(key),
                        },
                        None => match pulled {
                            Some((key, _, made_with)) => RunState::Pulled { key, made_with },
                            None => RunState::WillRun {
                                reasons: keys::reasons(self.store, &plan.profile, &run.id, &m),
                                key: Some(key),
                            },
                        },
                    }
                }
            };
            out.push((run.id.clone(), state));
        }
        {
            let stat = self.store.stat();
            tracing::info!(
                "outputs checked: {} file(s) re-hashed ({} bytes), the rest by unchanged stat",
                stat.hashed,
                stat.hashed_bytes
            );
        }
        // Only a cache: a read-only store still answers `plan` and `status`.
        if let Err(e) = self.store.save_stat() {
            tracing::debug!("{e:#}");
        }
        Ok(out)
    }

    /// Prepare datasets, then run every run of the plan that the store does not hold.
    pub fn run(
        &self,
        plan: &Plan,
        opts: &RunOptions,
        reporter: &dyn Reporter,
        launcher: &dyn Launcher,
    ) -> Result<Summary> {
        let _shared = self.store.lock_shared()?;
        // Runs a pulled publication holds are taken as they are (`--force` runs them here);
        // only the datasets of the others are prepared.
        let mut pulled = BTreeMap::new();
        if self.store.publication(&plan.profile)?.is_some() {
            for (id, state) in self.states(plan, &opts.device, opts.threads)? {
                if let RunState::Pulled { key, .. } = state
                    && !opts.force.contains(&id)
                    && let Some(r) = self.store.read_record(&key)?
                {
                    pulled.insert(id, r);
                }
            }
        }
        // A dataset only pulled runs read is not prepared; one no run reads (a dataset target)
        // or a run here reads is.
        let read_here = |d: &str| {
            let readers = plan
                .runs
                .iter()
                .filter(|r| r.datasets.iter().any(|x| x == d));
            readers.clone().next().is_none()
                || readers.into_iter().any(|r| !pulled.contains_key(&r.id))
        };
        let needed: BTreeSet<&str> = plan
            .datasets
            .iter()
            .map(|d| d.name.as_str())
            .filter(|d| read_here(d))
            .collect();
        let views = self.datasets(plan, &needed, opts.mirror.as_deref(), reporter)?;
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        let slots = placement::slots(
            opts.jobs,
            &opts.gpus,
            opts.runs_per_gpu,
            opts.threads,
            cores,
        )?;
        let runs = Runs {
            store: self.store,
            salt: &self.pipeline.salt,
            plan,
            views: &views,
            device: &opts.device,
            threads: opts.threads,
            force: &opts.force,
            pulled: &pulled,
            no_repair: opts.no_repair,
            reporter,
            launcher,
        };
        reporter.begin(plan.runs.len());
        let units = super::fuse::units(&plan.runs);
        let summary = schedule::schedule(
            &plan.runs,
            &units,
            &slots,
            reporter,
            &|unit, up, slot| match unit {
                [i] => Ok(vec![runs.process(*i, up, slot)?]),
                group => runs.process_group(group, up, slot),
            },
        );
        reporter.end();
        if let Err(e) = self.store.save_stat() {
            tracing::warn!("{e:#}");
        }
        let mut summary = summary;
        let (pulled_ids, cached) = summary
            .cached
            .into_iter()
            .partition(|id| pulled.contains_key(id));
        summary.cached = cached;
        summary.pulled = pulled_ids;
        Ok(summary)
    }

    /// Fetch or generate the plan's datasets and nothing else (what a Slurm submission does on
    /// the machine it runs on, before any job starts).
    pub fn prepare_datasets(
        &self,
        plan: &Plan,
        mirror: Option<&str>,
        reporter: &dyn Reporter,
    ) -> Result<()> {
        let _shared = self.store.lock_shared()?;
        let all = plan.datasets.iter().map(|d| d.name.as_str()).collect();
        self.datasets(plan, &all, mirror, reporter)?;
        Ok(())
    }

    /// Prepare every dataset of the plan; the digests of files verified for the first time go
    /// into pipeline.lock at once, since they are what the runs reading them are keyed by.
    fn datasets(
        &self,
        plan: &Plan,
        needed: &BTreeSet<&str>,
        mirror: Option<&str>,
        reporter: &dyn Reporter,
    ) -> Result<Views> {
        let locked = LockFile::load(&self.lock_path)?.datasets;
        let fetch = datasets::fetch_options(self.store, mirror, reporter.interactive());
        let mut views = BTreeMap::new();
        let mut first_seen = Vec::new();
        for d in plan
            .datasets
            .iter()
            .filter(|d| needed.contains(d.name.as_str()))
        {
            let t = Instant::now();
            let p = datasets::prepare(
                self.store,
                &self.datasets_dir,
                &self.pipeline.salt,
                d,
                &locked,
                &fetch,
            );
            // What earlier datasets verified is recorded even when a later one fails.
            let Prepared {
                view,
                digests,
                did_work,
                first_seen: seen,
            } = match p {
                Ok(p) => p,
                Err(e) => {
                    self.record_first_seen(&first_seen)?;
                    return Err(e);
                }
            };
            first_seen.extend(seen.into_iter().map(|(f, dg)| (d.name.clone(), f, dg)));
            if did_work {
                reporter.note(&format!(
                    "dataset {} ready ({:.1} s) at {}",
                    d.name,
                    t.elapsed().as_secs_f64(),
                    view.root.display()
                ));
            }
            views.insert(d.name.clone(), (view, digests));
        }
        self.record_first_seen(&first_seen)?;
        self.store.save_stat()?;
        Ok(views)
    }

    /// Write the digests of first verified downloads into pipeline.lock (re-read under a lock,
    /// so concurrent `repro run`s add to it rather than overwrite each other).
    fn record_first_seen(&self, seen: &[(String, String, FileDigests)]) -> Result<()> {
        if seen.is_empty() {
            return Ok(());
        }
        let _held = self.store.lock_named("pipeline-lock")?;
        let mut lock = LockFile::load(&self.lock_path)?;
        for (ds, file, d) in seen {
            let known = lock.datasets.get(ds).is_some_and(|m| m.contains_key(file));
            if !known {
                lock.record_dataset_file(ds, file, &d.sha256, &d.md5, d.size);
            }
        }
        lock.save(&self.lock_path)
    }
}
