//! The local executor: computes each run's key from its manifest, skips runs whose record and
//! objects are already in the store, and otherwise runs the stage under the key's lock, moving
//! its outputs into the store and writing the record last (so a crash leaves nothing visible).

use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, BufReader, IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Condvar, Mutex};
use std::time::{Instant, SystemTime};

use anyhow::{Context, Result, bail};
use indicatif::{MultiProgress, ProgressBar, ProgressStyle};

use super::datasets::{self, Prepared};
use super::lockfile::LockFile;
use super::placement::{self, Placement};
use super::plan::{Plan, RunNode};
use super::spec::{Determinism, Pipeline};
use super::stage::{Outcome, PROGRESS_PREFIX, Task, UpstreamRun};
use crate::data::DatasetView;
use crate::runtime::{self, Device, RunSettings};
use crate::store::Store;
use crate::store::atomic::write_atomic;
use crate::store::hash::FileDigests;
use crate::store::key::{Manifest, diff};
use crate::store::record::RunRecord;

/// How a run stands, for `plan` and `status`.
#[derive(Debug, Clone)]
pub enum RunState {
    /// Record and objects present.
    Cached { key: String },
    /// Would run, with the reasons.
    WillRun {
        key: Option<String>,
        reasons: Vec<String>,
    },
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
    pub quiet: bool,
    pub mirror: Option<String>,
    /// Runs executed at once (one worker process each).
    pub jobs: usize,
    /// GPUs to spread runs over (`CUDA_VISIBLE_DEVICES` per worker); empty: the device as is.
    pub gpus: Vec<usize>,
    /// Runs sharing one GPU at a time.
    pub runs_per_gpu: usize,
}

/// Shared state of the `--jobs` scheduling loops.
struct Sched {
    started: Vec<bool>,
    /// Finished successfully (ran or cached), with their records.
    done: BTreeMap<String, RunRecord>,
    /// Finished in any way (done, failed or skipped).
    finished: BTreeSet<String>,
    summary: Summary,
}

/// Prepared datasets: name → (view, file digests).
type Views = BTreeMap<String, (DatasetView, BTreeMap<String, String>)>;

/// What every scheduling loop reads.
struct RunCtx<'a> {
    plan: &'a Plan,
    opts: &'a RunOptions,
    views: &'a Views,
    say: &'a (dyn Fn(String) + Sync),
    multi: &'a MultiProgress,
    fancy: bool,
    overall: &'a Option<ProgressBar>,
}

/// What happened to each run.
#[derive(Debug, Default)]
pub struct Summary {
    pub cached: Vec<String>,
    pub ran: Vec<String>,
    pub failed: Vec<(String, String)>,
    pub skipped: Vec<(String, String)>,
}

pub struct Executor<'a> {
    pub pipeline: &'a Pipeline,
    pub store: &'a Store,
    pub datasets_dir: PathBuf,
    /// pipeline.lock: the digests of fetched files' first verified downloads pin them.
    pub lock_path: PathBuf,
}

impl Executor<'_> {
    fn settings(&self, run: &RunNode, device: &Device, threads: usize) -> RunSettings {
        RunSettings {
            device: device.clone(),
            threads,
            bitwise: run.determinism == Determinism::Bitwise,
            precision: run.precision,
        }
    }

    /// The manifest of a run given its inputs' digests.
    fn manifest(
        &self,
        run: &RunNode,
        inputs: BTreeMap<String, BTreeMap<String, String>>,
        settings: &RunSettings,
    ) -> Manifest {
        Manifest {
            salt: self.pipeline.salt.clone(),
            kind: run.kind.name.to_string(),
            kind_version: run.kind.version,
            params: run.params.clone(),
            inputs,
            env: settings.key_env(),
        }
    }

    /// Why a run would run, compared with the last run of the same id in this profile.
    fn reasons(&self, profile: &str, run_id: &str, m: &Manifest) -> Vec<String> {
        let prev = self
            .store
            .get_ref(profile, run_id)
            .and_then(|k| self.store.read_record(&k).ok().flatten());
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

    /// State of every run without doing any work (no fetch, no generation, no training).
    pub fn states(
        &self,
        plan: &Plan,
        device: &Device,
        threads: usize,
    ) -> Result<Vec<(String, RunState)>> {
        let locked = LockFile::load(&self.lock_path)?.datasets;
        let mut ds_ids = BTreeMap::new();
        for d in &plan.datasets {
            ds_ids.insert(
                d.name.clone(),
                datasets::identity(self.store, &self.pipeline.salt, d, &locked)?,
            );
        }
        // Run id → output digests of runs that are cached (None: will run).
        let mut keys: BTreeMap<String, Option<BTreeMap<String, String>>> = BTreeMap::new();
        let mut out = Vec::new();
        for run in &plan.runs {
            let settings = self.settings(run, device, threads);
            let mut inputs = BTreeMap::new();
            let mut pending = Vec::new();
            for d in &run.datasets {
                match ds_ids.get(d).cloned().flatten() {
                    Some(ids) => {
                        inputs.insert(format!("dataset:{d}"), ids);
                    }
                    None => pending.push(format!("dataset {d} not generated or fetched yet")),
                }
            }
            for u in &run.upstream {
                match keys.get(u).cloned().flatten() {
                    Some(digests) => {
                        inputs.insert(format!("run:{u}"), digests);
                    }
                    None => pending.push(format!("upstream {u} will run")),
                }
            }
            let state = if !pending.is_empty() {
                keys.insert(run.id.clone(), None);
                RunState::WillRun {
                    key: None,
                    reasons: pending,
                }
            } else {
                let m = self.manifest(run, inputs, &settings);
                let key = m.key();
                let record = self.store.read_record(&key)?;
                let damage = record
                    .as_ref()
                    .map(|r| self.store.damaged_outputs(r))
                    .unwrap_or_default();
                match record {
                    Some(r) if damage.is_empty() => {
                        keys.insert(run.id.clone(), Some(r.output_digests()));
                        RunState::Cached { key }
                    }
                    Some(_) => {
                        keys.insert(run.id.clone(), None);
                        RunState::WillRun {
                            reasons: damage.iter().map(|d| d.to_string()).collect(),
                            key: Some(key),
                        }
                    }
                    None => {
                        keys.insert(run.id.clone(), None);
                        RunState::WillRun {
                            reasons: self.reasons(&plan.profile, &run.id, &m),
                            key: Some(key),
                        }
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

    /// Fetch or generate the plan's datasets and nothing else (what a Slurm submission does on
    /// the machine it runs on, before any job starts).
    pub fn prepare_datasets(&self, plan: &Plan, mirror: Option<&str>, quiet: bool) -> Result<()> {
        let _shared = self.store.lock_shared()?;
        let say = |msg: String| {
            if !quiet {
                eprintln!("{msg}");
            }
        };
        self.datasets(
            plan,
            mirror,
            !quiet && std::io::stderr().is_terminal(),
            &say,
        )?;
        Ok(())
    }

    /// Prepare every dataset of the plan; the digests of files verified for the first time go
    /// into pipeline.lock at once, since they are what the runs reading them are keyed by.
    fn datasets(
        &self,
        plan: &Plan,
        mirror: Option<&str>,
        fancy: bool,
        say: &dyn Fn(String),
    ) -> Result<Views> {
        let locked = LockFile::load(&self.lock_path)?.datasets;
        let fetch = datasets::fetch_options(self.store, mirror, fancy);
        let mut views = BTreeMap::new();
        let mut first_seen = Vec::new();
        for d in &plan.datasets {
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
                say(format!(
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

    /// Prepare datasets, then run every run of the plan in order.
    pub fn run(&self, plan: &Plan, opts: &RunOptions) -> Result<Summary> {
        let _shared = self.store.lock_shared()?;
        let fancy = !opts.quiet && std::io::stderr().is_terminal();
        let multi = MultiProgress::new();
        let say = |msg: String| {
            if fancy {
                let _ = multi.println(msg);
            } else if !opts.quiet {
                eprintln!("{msg}");
            }
        };

        let views = self.datasets(plan, opts.mirror.as_deref(), fancy, &say)?;

        let overall = if fancy {
            let pb = multi.add(ProgressBar::new(plan.runs.len() as u64));
            pb.set_style(
                ProgressStyle::with_template("{prefix:>8} [{bar:30}] {pos}/{len} runs {elapsed}")
                    .unwrap_or_else(|_| ProgressStyle::default_bar()),
            );
            pb.set_prefix("overall");
            Some(pb)
        } else {
            None
        };
        let total = plan.runs.len();
        let sched = Mutex::new(Sched {
            started: vec![false; total],
            done: BTreeMap::new(),
            finished: BTreeSet::new(),
            summary: Summary::default(),
        });
        let wake = Condvar::new();
        let ctx = RunCtx {
            plan,
            opts,
            views: &views,
            say: &say,
            multi: &multi,
            fancy,
            overall: &overall,
        };
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        let slots = placement::slots(
            opts.jobs,
            &opts.gpus,
            opts.runs_per_gpu,
            opts.threads,
            cores,
        )?;
        std::thread::scope(|s| {
            for slot in slots.iter().take(total.max(1)) {
                let (ctx, sched, wake) = (&ctx, &sched, &wake);
                s.spawn(move || self.schedule(ctx, sched, wake, slot));
            }
        });
        if let Some(pb) = overall {
            pb.finish_and_clear();
        }
        if let Err(e) = self.store.save_stat() {
            tracing::warn!("{e:#}");
        }
        Ok(sched
            .into_inner()
            .unwrap_or_else(|e| e.into_inner())
            .summary)
    }

    /// One of `--jobs` scheduling loops: take the next run whose upstream runs are done, process
    /// it, repeat until every run has been taken.
    fn schedule(&self, ctx: &RunCtx, sched: &Mutex<Sched>, wake: &Condvar, slot: &Placement) {
        let runs = &ctx.plan.runs;
        let total = runs.len();
        loop {
            let (i, upstream) = {
                let mut st = sched.lock().unwrap_or_else(|e| e.into_inner());
                loop {
                    // Runs downstream of a failure are skipped, not waited for.
                    for (i, run) in runs.iter().enumerate() {
                        if st.started[i] {
                            continue;
                        }
                        let failed = run
                            .upstream
                            .iter()
                            .find(|u| st.finished.contains(*u) && !st.done.contains_key(*u));
                        if let Some(bad) = failed {
                            let why = format!("upstream {bad} did not finish");
                            (ctx.say)(format!("[{}/{total}] {} skipped: {why}", i + 1, run.id));
                            st.started[i] = true;
                            st.finished.insert(run.id.clone());
                            st.summary.skipped.push((run.id.clone(), why));
                            wake.notify_all();
                        }
                    }
                    let ready = (0..total).find(|&i| {
                        !st.started[i] && runs[i].upstream.iter().all(|u| st.done.contains_key(u))
                    });
                    if let Some(i) = ready {
                        st.started[i] = true;
                        let upstream: BTreeMap<String, RunRecord> = runs[i]
                            .upstream
                            .iter()
                            .map(|u| (u.clone(), st.done[u].clone()))
                            .collect();
                        break (i, upstream);
                    }
                    if st.started.iter().all(|s| *s) {
                        return;
                    }
                    st = wake.wait(st).unwrap_or_else(|e| e.into_inner());
                }
            };
            let run = &runs[i];
            let result = self.process(ctx, i, &upstream, slot);
            let mut st = sched.lock().unwrap_or_else(|e| e.into_inner());
            match result {
                Ok((r, true)) => {
                    st.summary.ran.push(run.id.clone());
                    st.done.insert(run.id.clone(), r);
                }
                Ok((r, false)) => {
                    st.summary.cached.push(run.id.clone());
                    st.done.insert(run.id.clone(), r);
                }
                Err(e) => {
                    (ctx.say)(format!("[{}/{total}] {} FAILED: {e:#}", i + 1, run.id));
                    st.summary.failed.push((run.id.clone(), format!("{e:#}")));
                }
            }
            st.finished.insert(run.id.clone());
            if let Some(pb) = ctx.overall {
                pb.inc(1);
            }
            wake.notify_all();
        }
    }

    /// Key one run, then skip it if cached or execute it; `Ok((record, ran))`.
    fn process(
        &self,
        ctx: &RunCtx,
        i: usize,
        upstream: &BTreeMap<String, RunRecord>,
        slot: &Placement,
    ) -> Result<(RunRecord, bool)> {
        let (run, opts, total, n) = (&ctx.plan.runs[i], ctx.opts, ctx.plan.runs.len(), i + 1);
        let settings = self.settings(run, &opts.device, opts.threads);
        let mut inputs = BTreeMap::new();
        let mut ds_views = BTreeMap::new();
        for d in &run.datasets {
            let (v, digests) = &ctx.views[d];
            inputs.insert(format!("dataset:{d}"), digests.clone());
            ds_views.insert(d.clone(), v.clone());
        }
        for (u, rec) in upstream {
            inputs.insert(format!("run:{u}"), rec.output_digests());
        }
        let m = self.manifest(run, inputs, &settings);
        let key = m.key();
        let forced = opts.force.contains(&run.id);
        let mut reasons = Vec::new();
        if !forced && let Some(r) = self.store.read_record(&key)? {
            let damage = self.store.damaged_outputs(&r);
            if damage.is_empty() {
                self.store.set_ref(&ctx.plan.profile, &run.id, &key)?;
                (ctx.say)(format!("[{n}/{total}] {} cached ({})", run.id, &key[..12]));
                return Ok((r, false));
            }
            let what: Vec<String> = damage.iter().map(|d| d.to_string()).collect();
            if opts.no_repair {
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
            {
                // Under the key's lock, and only what is still damaged then: another process
                // may have rebuilt the run meanwhile.
                let _lock = self.store.lock_key(&key)?;
                let damage = match self.store.read_record(&key)? {
                    Some(r) => self.store.damaged_outputs(&r),
                    None => Vec::new(),
                };
                for line in self.store.quarantine_damaged(&run.id, &damage)? {
                    (ctx.say)(line);
                }
            }
            reasons = what;
        }
        if forced {
            reasons = vec!["--force".to_string()];
        } else if reasons.is_empty() {
            reasons = self.reasons(&ctx.plan.profile, &run.id, &m);
        }
        (ctx.say)(format!(
            "[{n}/{total}] {} running ({}): {}",
            run.id,
            &key[..12],
            reasons.join("; ")
        ));
        let bar = ctx.fancy.then(|| {
            let pb = ctx.multi.add(ProgressBar::new(1));
            pb.set_style(
                ProgressStyle::with_template("{prefix:>8} [{bar:30}] {pos}/{len} {msg}")
                    .unwrap_or_else(|_| ProgressStyle::default_bar()),
            );
            pb.set_prefix(format!("{n}/{total}"));
            pb
        });
        let result = self.execute_one(
            run,
            m,
            &settings,
            &ds_views,
            upstream,
            forced,
            slot,
            &|pos, len, msg: &str| match &bar {
                Some(pb) => {
                    pb.set_length(len);
                    pb.set_position(pos);
                    pb.set_message(format!("{} {msg}", run.id));
                }
                None if !opts.quiet => eprintln!("[{n}/{total}] {} {pos}/{len} {msg}", run.id),
                None => {}
            },
        );
        if let Some(pb) = bar {
            pb.finish_and_clear();
        }
        let (r, ran) = result?;
        self.store.set_ref(&ctx.plan.profile, &run.id, &key)?;
        if ran {
            (ctx.say)(format!(
                "[{n}/{total}] {} done in {:.1} s",
                run.id, r.seconds
            ));
        } else {
            (ctx.say)(format!(
                "[{n}/{total}] {} cached (finished by another process)",
                run.id
            ));
        }
        Ok((r, ran))
    }

    /// Run one stage under its key lock and record it.
    #[allow(clippy::too_many_arguments)]
    fn execute_one(
        &self,
        run: &RunNode,
        manifest: Manifest,
        settings: &RunSettings,
        datasets: &BTreeMap<String, DatasetView>,
        upstream_records: &BTreeMap<String, RunRecord>,
        forced: bool,
        slot: &Placement,
        progress: &dyn Fn(u64, u64, &str),
    ) -> Result<(RunRecord, bool)> {
        let key = manifest.key();
        let _lock = self.store.lock_key(&key)?;
        // Another process may have finished (or repaired) this key while we waited for the lock.
        if !forced
            && let Some(r) = self.store.read_record(&key)?
            && self.store.damaged_outputs(&r).is_empty()
        {
            return Ok((r, false));
        }
        let mut upstream = Vec::new();
        for u in &run.upstream {
            let rec = &upstream_records[u];
            let mut outputs = BTreeMap::new();
            for (name, o) in &rec.outputs {
                outputs.insert(
                    name.clone(),
                    self.store
                        .verify_object(o)
                        .with_context(|| format!("input from {u}"))?,
                );
            }
            upstream.push(UpstreamRun {
                run_id: u.clone(),
                params: rec.manifest.params.clone(),
                outputs,
            });
        }
        // The work folder survives a killed attempt: the stage resumes from its checkpoints.
        let mut work = self.store.work(&key)?;
        if forced {
            work.remove()?;
            work = self.store.work(&key)?;
        }
        let resumed = work.prepare_attempt()?;
        let out_dir = work.out_dir();
        let task = Task {
            run_id: run.id.clone(),
            kind: run.kind.name.to_string(),
            params: run.params.clone(),
            datasets: datasets.clone(),
            upstream,
            out_dir: out_dir.clone(),
            checkpoints: Some(work.checkpoints().dir().to_path_buf()),
            // The slot's GPU is the worker's only visible one.
            settings: match (&settings.device, slot.gpu) {
                (Device::Cuda { capability, .. }, Some(_)) => RunSettings {
                    device: Device::Cuda {
                        index: 0,
                        capability: capability.clone(),
                    },
                    ..settings.clone()
                },
                _ => settings.clone(),
            },
        };
        let started = SystemTime::now();
        let t0 = Instant::now();
        let outcome = self.run_worker(&task, work.root(), &key, resumed, slot, progress)?;
        let seconds = t0.elapsed().as_secs_f64();
        let mut outputs = BTreeMap::new();
        for f in files_under(&out_dir)? {
            let rel = f.strip_prefix(&out_dir)?.to_string_lossy().into_owned();
            outputs.insert(rel, self.store.put_file(&f)?);
        }
        let record = RunRecord {
            key,
            run_id: run.id.clone(),
            experiment: run.experiment.clone(),
            manifest,
            outputs,
            metrics: outcome.metrics,
            environment: {
                let mut env = runtime::host_fingerprint();
                env.insert(
                    "libtorch_runtime".into(),
                    serde_json::Value::Object(outcome.environment),
                );
                env.insert("placement".into(), slot.describe());
                // What took effect: the kind's options, TF32 only on CUDA.
                env.insert(
                    "precision".into(),
                    serde_json::json!(settings.precision.on(&settings.device)),
                );
                env
            },
            started: humantime::format_rfc3339_seconds(started).to_string(),
            finished: humantime::format_rfc3339_seconds(SystemTime::now()).to_string(),
            seconds,
            host: runtime::hostname(),
        };
        self.store.write_record(&record)?;
        work.remove()?;
        Ok((record, true))
    }
}

impl Executor<'_> {
    /// Run one task in a worker process: progress lines on its stdout feed `progress`, its
    /// stderr goes to `artifacts/logs/<key>.log` (appended to, one section per attempt), its
    /// outcome comes back as JSON.
    fn run_worker(
        &self,
        task: &Task,
        work: &Path,
        key: &str,
        resumed: Option<u64>,
        slot: &Placement,
        progress: &dyn Fn(u64, u64, &str),
    ) -> Result<Outcome> {
        let task_path = work.join("task.json");
        let outcome_path = work.join("outcome.json");
        let _ = std::fs::remove_file(&outcome_path);
        write_atomic(&task_path, &serde_json::to_vec_pretty(task)?)?;
        let logs = self.store.root().join("logs");
        std::fs::create_dir_all(&logs)?;
        let log_path = logs.join(format!("{key}.log"));
        let mut log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log_path)?;
        writeln!(
            log,
            "=== attempt at {} on {}: {}",
            humantime::format_rfc3339_seconds(SystemTime::now()),
            runtime::hostname(),
            match resumed {
                Some(unit) => format!("resuming from checkpoint {unit}"),
                None => "from the start".into(),
            }
        )?;
        let this_attempt = log.metadata()?.len() as usize;
        let worker = runtime::probe::worker_path()?;
        let mut cmd = Command::new(&worker);
        slot.apply(&mut cmd);
        let mut child = cmd
            .arg("exec")
            .arg(&task_path)
            .arg(&outcome_path)
            .env(
                crate::pipeline::stage::PARENT_ENV,
                std::process::id().to_string(),
            )
            .envs(task.settings.worker_env())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(log)
            .spawn()
            .with_context(|| format!("cannot start the worker {}", worker.display()))?;
        if let Some(out) = child.stdout.take() {
            for line in BufReader::new(out).lines() {
                let line = line?;
                if let Some(rest) = line.strip_prefix(PROGRESS_PREFIX) {
                    let mut parts = rest.splitn(3, ' ');
                    let pos = parts.next().and_then(|p| p.parse().ok()).unwrap_or(0);
                    let len = parts.next().and_then(|p| p.parse().ok()).unwrap_or(0);
                    progress(pos, len, parts.next().unwrap_or(""));
                }
            }
        }
        let status = child.wait()?;
        if !status.success() {
            let text = std::fs::read(&log_path).unwrap_or_default();
            let text = String::from_utf8_lossy(text.get(this_attempt..).unwrap_or_default());
            // The worker's own `error: …` line says what went wrong; libtorch appends C++
            // backtraces after it, so the log's last lines are only a fallback.
            let summary = match text.lines().rfind(|l| l.starts_with("error: ")) {
                Some(line) => line.trim_start_matches("error: ").to_string(),
                None => {
                    let tail: Vec<&str> = text.lines().rev().take(5).collect();
                    tail.into_iter().rev().collect::<Vec<_>>().join(" | ")
                }
            };
            bail!("worker {status}: {summary} (log: {})", log_path.display());
        }
        let bytes =
            std::fs::read(&outcome_path).context("the worker finished without an outcome")?;
        Ok(serde_json::from_slice(&bytes)?)
    }
}

fn files_under(dir: &Path) -> Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    for e in walkdir::WalkDir::new(dir).sort_by_file_name() {
        let e = e?;
        if e.file_type().is_file() {
            out.push(e.into_path());
        }
    }
    Ok(out)
}
