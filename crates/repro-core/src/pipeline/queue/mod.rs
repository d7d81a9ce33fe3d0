//! Running a plan through a cluster's batch queue: every run that is not cached becomes a job
//! that executes `repro exec-run` (exactly that run, against the shared store) on a compute
//! node. What is the same for every queue lives here; what a queue's commands are is a
//! [`QueueBackend`] (Slurm: [`slurm`]), so a second backend is one file.
//!
//! - Runs of one experiment with the same upstream jobs go in one array job; DAG edges become
//!   job dependencies.
//! - Submissions are recorded in `<backend>/<profile>.json` (the ledger) under a store lock:
//!   submitting again skips finished runs and runs whose job is still queued or running.
//! - The engine then polls the queue (with backoff) until every job ended. A job the scheduler
//!   killed (timeout, node failure, preemption) is submitted again, up to `max_requeue` times,
//!   and resumes from its checkpoint; pending jobs that waited on it are pointed at the new job.
//!   Jobs waiting on a run that failed for good are cancelled and reported as skipped.

pub mod slurm;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};

use super::executor::{Executor, Reporter, RunState, Summary};
use super::plan::Plan;
use crate::store::atomic::write_atomic;

/// A batch queue's commands.
pub trait QueueBackend {
    /// Its folder under the store and its name in messages (`slurm`).
    fn name(&self) -> &'static str;
    /// Submit `batch` (an array job when it holds several runs) waiting on the jobs in
    /// `batch.after`; `command` is the job's command line without the index of its run in
    /// `batch.runs_file`, which the backend appends from its array-task variable. `dir` holds
    /// the scripts and logs. Returns the job id of each run, in order.
    fn submit(&self, dir: &Path, batch: &Batch, command: &str) -> Result<Vec<String>>;
    /// The states of `jobs`, with the names the queue knows them by; a job the queue no longer
    /// knows is [`JobState::Unknown`].
    fn poll(&self, jobs: &BTreeSet<String>) -> Result<BTreeMap<String, (JobState, String)>>;
    fn cancel(&self, job: &str) -> Result<()>;
    /// Make the pending `job` wait on `after` (after one of them was resubmitted).
    fn set_dependencies(&self, job: &str, after: &[&str]) -> Result<()>;
    /// Where a job's output is, in words.
    fn log_hint(&self, dir: &Path, job: &str) -> String;
}

/// Options of `repro run --executor <queue>` that hold for every backend.
#[derive(Debug, Clone, Default)]
pub struct QueueOptions {
    /// Resubmissions of a run the scheduler killed.
    pub max_requeue: u32,
    /// Submit and return without waiting.
    pub detach: bool,
    /// CPUs each job asks for: the profile's threads per run.
    pub cpus_per_run: usize,
}

/// How a job runs `repro` on the compute node: absolute paths on the shared filesystem.
#[derive(Debug, Clone)]
pub struct Invocation {
    pub repro: PathBuf,
    pub pipeline: PathBuf,
    pub store: PathBuf,
    pub datasets: PathBuf,
    /// The submitter's pipeline.lock (it pins fetched files the runs are keyed by).
    pub lock: PathBuf,
    pub device: String,
    /// `--fuse N` as the submitter was given it (the group size is in the members' keys).
    pub fuse: Option<usize>,
}

impl Invocation {
    /// The job's command line, shell-quoted, up to `--index`.
    fn command(&self, profile: &str, runs_file: &Path) -> String {
        let fuse = self.fuse.map_or(String::new(), |n| format!("--fuse {n} "));
        format!(
            "exec {} --pipeline {} --store {} --datasets {} --lock {} {fuse}exec-run --profile {} --device {} \\\n  --runs-file {}",
            sh(&self.repro),
            sh(&self.pipeline),
            sh(&self.store),
            sh(&self.datasets),
            sh(&self.lock),
            sh_str(profile),
            sh_str(&self.device),
            sh(runs_file),
        )
    }
}

/// A job's state as the queue reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JobState {
    /// Queued, running or on its way (includes the queue's own requeue).
    Live {
        pending_on_failed_dependency: bool,
    },
    Completed,
    /// Killed by the scheduler: worth submitting again.
    Killed(String),
    /// Failed for good (non-zero exit, cancelled, out of memory).
    Failed(String),
    /// The queue no longer knows it (purged).
    Unknown,
}

/// One submission: runs of one experiment that wait on the same jobs.
#[derive(Debug, Clone)]
pub struct Batch {
    pub experiment: String,
    pub runs: Vec<String>,
    /// Job ids it waits on.
    pub after: BTreeSet<String>,
    /// Waits on runs submitted in the same round (their job ids are known only then): alone.
    solo: bool,
    /// One run id per line, the job's input (written before submission).
    pub runs_file: PathBuf,
    /// File stem of the batch's script and runs file.
    pub tag: String,
    /// CPUs each of its jobs asks for.
    pub cpus_per_run: usize,
}

impl Batch {
    /// The job name of an experiment's jobs: a job id the ledger remembers counts only while it
    /// still names a job of ours (a cluster whose state was reset hands out the same ids again).
    pub fn job_name(&self) -> String {
        job_name(&self.experiment)
    }
}

fn job_name(experiment: &str) -> String {
    format!("repro:{experiment}")
}

/// What the store remembers of a run's job.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
struct Tracked {
    /// `123` or `123_4` (array task).
    job: String,
    /// Submissions after a scheduler kill so far.
    requeues: u32,
}

#[derive(Debug, Default, Serialize, Deserialize)]
struct Ledger {
    runs: BTreeMap<String, Tracked>,
}

/// Group the runs to submit (in plan order) into array jobs.
fn batches(plan: &Plan, submit: &[String], jobs: &BTreeMap<String, String>) -> Vec<Batch> {
    let mut out: Vec<Batch> = Vec::new();
    for run in plan.runs.iter().filter(|r| submit.contains(&r.id)) {
        let after: BTreeSet<String> = run
            .upstream
            .iter()
            .filter_map(|u| jobs.get(u).cloned())
            .collect();
        // An upstream submitted in this same round has no job id yet: it goes in an earlier
        // batch, so this run starts a batch of its own after it.
        let waits_on_batch = run
            .upstream
            .iter()
            .any(|u| submit.contains(u) && !jobs.contains_key(u));
        match out.last_mut() {
            Some(b)
                if b.experiment == run.experiment
                    && b.after == after
                    && !b.solo
                    && !waits_on_batch =>
            {
                b.runs.push(run.id.clone())
            }
            _ => out.push(Batch {
                experiment: run.experiment.clone(),
                runs: vec![run.id.clone()],
                after,
                solo: waits_on_batch,
                runs_file: PathBuf::new(),
                tag: String::new(),
                cpus_per_run: 1,
            }),
        }
    }
    out
}

/// A plan run through one queue backend.
pub struct Queue<'a> {
    pub exec: &'a Executor<'a>,
    pub backend: &'a dyn QueueBackend,
    pub opts: &'a QueueOptions,
    pub invocation: &'a Invocation,
}

impl Queue<'_> {
    /// `<backend>/<profile>/`: scripts, runs files and job logs.
    fn dir(&self, plan: &Plan) -> Result<PathBuf> {
        let dir = self
            .exec
            .store
            .queue_dir(self.backend.name())?
            .join(&plan.profile);
        std::fs::create_dir_all(dir.join("logs"))
            .with_context(|| format!("cannot create {}", dir.display()))?;
        Ok(dir)
    }

    fn ledger_path(&self, plan: &Plan) -> Result<PathBuf> {
        let dir = self.exec.store.queue_dir(self.backend.name())?;
        Ok(dir.join(format!("{}.json", plan.profile)))
    }

    fn load(&self, plan: &Plan) -> Result<Ledger> {
        let p = self.ledger_path(plan)?;
        match std::fs::read(&p) {
            Ok(b) => {
                serde_json::from_slice(&b).with_context(|| format!("{} is corrupt", p.display()))
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Ledger::default()),
            Err(e) => Err(e).with_context(|| format!("cannot read {}", p.display())),
        }
    }

    fn save(&self, plan: &Plan, l: &Ledger) -> Result<()> {
        Ok(write_atomic(
            &self.ledger_path(plan)?,
            &serde_json::to_vec_pretty(l)?,
        )?)
    }

    /// Write the runs file of `batch` and submit it; the job id of each run. A fused group is
    /// one job (its first run in the batch stands for it: `exec-run` trains the whole group),
    /// whose id every member of it gets.
    fn submit(&self, plan: &Plan, mut batch: Batch) -> Result<Vec<(String, String)>> {
        let mut stands_for: BTreeMap<String, String> = BTreeMap::new();
        let mut group_job: BTreeMap<String, String> = BTreeMap::new();
        let mut jobs = Vec::new();
        for id in &batch.runs {
            let group = plan
                .run(id)
                .and_then(|r| r.fused.as_ref())
                .map(|f| &f.group);
            match group {
                Some(g) if group_job.contains_key(g) => {
                    stands_for.insert(id.clone(), group_job[g].clone());
                }
                _ => {
                    if let Some(g) = group {
                        group_job.insert(g.clone(), id.clone());
                    }
                    stands_for.insert(id.clone(), id.clone());
                    jobs.push(id.clone());
                }
            }
        }
        let all = std::mem::replace(&mut batch.runs, jobs);
        let submitted: BTreeMap<String, String> =
            self.submit_jobs(plan, batch)?.into_iter().collect();
        Ok(all
            .into_iter()
            .map(|id| {
                let job = submitted[&stands_for[&id]].clone();
                (id, job)
            })
            .collect())
    }

    /// Write the runs file of `batch` and submit it, one array task per run; their job ids.
    fn submit_jobs(&self, plan: &Plan, mut batch: Batch) -> Result<Vec<(String, String)>> {
        let dir = self.dir(plan)?;
        batch.tag = format!(
            "{}-{}",
            batch.experiment,
            humantime::format_rfc3339_nanos(std::time::SystemTime::now())
        )
        .replace([':', '.'], "");
        batch.runs_file = dir.join(format!("{}.runs", batch.tag));
        batch.cpus_per_run = self.opts.cpus_per_run.max(1);
        write_atomic(
            &batch.runs_file,
            format!("{}\n", batch.runs.join("\n")).as_bytes(),
        )?;
        let command = self.invocation.command(&plan.profile, &batch.runs_file);
        let ids = self.backend.submit(&dir, &batch, &command)?;
        anyhow::ensure!(
            ids.len() == batch.runs.len(),
            "{} returned {} job ids for {} runs",
            self.backend.name(),
            ids.len(),
            batch.runs.len()
        );
        Ok(batch.runs.into_iter().zip(ids).collect())
    }

    /// Submit what is not finished or queued, then (unless detached) wait for it all.
    pub fn run(
        &self,
        plan: &Plan,
        device: &crate::runtime::Device,
        threads: usize,
        reporter: &dyn Reporter,
    ) -> Result<Summary> {
        let store = self.exec.store;
        let _submitting = store.lock_named(&format!("{}-{}", self.backend.name(), plan.profile))?;
        let mut ledger = self.load(plan)?;
        let states = self.exec.states(plan, device, threads)?;
        let mut summary = Summary::default();
        let live = self
            .backend
            .poll(&ledger.runs.values().map(|t| t.job.clone()).collect())?;
        let mut jobs: BTreeMap<String, String> = BTreeMap::new();
        let mut submit = Vec::new();
        for (id, state) in &states {
            match state {
                RunState::Cached { .. } => summary.cached.push(id.clone()),
                RunState::Pulled { .. } => summary.pulled.push(id.clone()),
                RunState::WillRun { .. } => match ledger.runs.get(id) {
                    Some(t)
                        if live.get(&t.job).is_some_and(|(state, name)| {
                            matches!(state, JobState::Live { .. })
                                && plan
                                    .runs
                                    .iter()
                                    .any(|r| &r.id == id && *name == job_name(&r.experiment))
                        }) =>
                    {
                        reporter.note(&format!("{id}: job {} already queued or running", t.job));
                        jobs.insert(id.clone(), t.job.clone());
                    }
                    _ => submit.push(id.clone()),
                },
            }
        }
        for b in batches(plan, &submit, &jobs) {
            // Upstream jobs of this round were submitted by earlier batches.
            let after = plan
                .runs
                .iter()
                .filter(|r| b.runs.contains(&r.id))
                .flat_map(|r| r.upstream.iter().filter_map(|u| jobs.get(u).cloned()))
                .collect();
            for (run, job) in self.submit(plan, Batch { after, ..b })? {
                reporter.note(&format!("{run}: submitted as job {job}"));
                jobs.insert(run.clone(), job.clone());
                // A submission by the user starts the resubmission count over.
                ledger.runs.insert(run, Tracked { job, requeues: 0 });
            }
            self.save(plan, &ledger)?;
        }
        drop(_submitting);
        if self.opts.detach {
            reporter.note(&format!(
                "{} job(s) submitted or queued; `repro run --executor {}` again (or `repro status`) to follow them",
                jobs.len(),
                self.backend.name()
            ));
            return Ok(summary);
        }
        let mut wait = Wait {
            queue: self,
            plan,
            jobs,
            ledger,
            summary,
            failed_for_good: BTreeSet::new(),
            reporter,
        };
        wait.until_all_ended()?;
        Ok(wait.summary)
    }
}

/// The polling loop after submission.
struct Wait<'a> {
    queue: &'a Queue<'a>,
    plan: &'a Plan,
    /// Run → its current job, while the job has not ended.
    jobs: BTreeMap<String, String>,
    ledger: Ledger,
    summary: Summary,
    failed_for_good: BTreeSet<String>,
    reporter: &'a dyn Reporter,
}

impl Wait<'_> {
    fn until_all_ended(&mut self) -> Result<()> {
        let mut seen: BTreeMap<String, JobState> = BTreeMap::new();
        let mut delay = Duration::from_secs(1);
        while !self.jobs.is_empty() {
            let t0 = Instant::now();
            let states = self
                .queue
                .backend
                .poll(&self.jobs.values().cloned().collect())?;
            let mut changed = false;
            for (run, job) in self.jobs.clone() {
                let state = states
                    .get(&job)
                    .map_or(JobState::Unknown, |(s, _)| s.clone());
                if seen.get(&run) != Some(&state) {
                    changed = true;
                    seen.insert(run.clone(), state.clone());
                }
                changed |= self.step(&run, &job, state)?;
            }
            if self.jobs.is_empty() {
                break;
            }
            delay = if changed {
                Duration::from_secs(1)
            } else {
                (delay.mul_f64(1.5)).min(Duration::from_secs(30))
            };
            std::thread::sleep(delay.saturating_sub(t0.elapsed()));
        }
        Ok(())
    }

    fn upstream(&self, run: &str) -> &[String] {
        self.plan
            .run(run)
            .map(|r| r.upstream.as_slice())
            .unwrap_or_default()
    }

    fn log_hint(&self, job: &str) -> String {
        match self.queue.dir(self.plan) {
            Ok(dir) => self.queue.backend.log_hint(&dir, job),
            Err(e) => format!("{e:#}"),
        }
    }

    fn fail(&mut self, run: &str, why: String) {
        self.reporter.note(&format!("{run}: FAILED: {why}"));
        self.summary.failed.push((run.to_string(), why));
        self.failed_for_good.insert(run.to_string());
        self.jobs.remove(run);
    }

    /// Act on one job's state; `true` when it was resubmitted.
    fn step(&mut self, run: &str, job: &str, state: JobState) -> Result<bool> {
        match state {
            JobState::Live {
                pending_on_failed_dependency,
            } => {
                let blocked = self
                    .upstream(run)
                    .iter()
                    .find(|u| self.failed_for_good.contains(*u))
                    .cloned();
                if let (true, Some(u)) = (pending_on_failed_dependency, blocked) {
                    let _ = self.queue.backend.cancel(job);
                    self.reporter
                        .note(&format!("{run}: job {job} cancelled: upstream {u} failed"));
                    let why = format!("upstream {u} failed");
                    self.summary.skipped.push((run.to_string(), why));
                    self.failed_for_good.insert(run.to_string());
                    self.jobs.remove(run);
                }
            }
            JobState::Completed | JobState::Unknown => {
                // The store, not the scheduler, says whether the run finished.
                let store = self.queue.exec.store;
                let done = store
                    .get_ref(&self.plan.profile, run)
                    .and_then(|k| store.read_record(&k).ok().flatten())
                    .is_some();
                if done {
                    self.reporter.note(&format!("{run}: job {job} done"));
                    self.summary.ran.push(run.to_string());
                    self.jobs.remove(run);
                } else {
                    let hint = self.log_hint(job);
                    self.fail(run, format!("job {job} ended without a record ({hint})"));
                }
            }
            JobState::Failed(why) => {
                let hint = self.log_hint(job);
                self.fail(run, format!("job {job} {why} ({hint})"));
            }
            JobState::Killed(how) => return self.requeue(run, job, &how),
        }
        Ok(false)
    }

    /// Submit a killed run again (it resumes from its checkpoint), unless it used up its
    /// resubmissions.
    fn requeue(&mut self, run: &str, job: &str, how: &str) -> Result<bool> {
        let requeues = self.ledger.runs.get(run).map_or(0, |t| t.requeues);
        if requeues >= self.queue.opts.max_requeue {
            let hint = self.log_hint(job);
            let why = format!("job {job} {how} after {requeues} resubmission(s) ({hint})");
            self.fail(run, why);
            return Ok(false);
        }
        let batch = Batch {
            experiment: self
                .plan
                .run(run)
                .map(|r| r.experiment.clone())
                .unwrap_or_default(),
            runs: vec![run.to_string()],
            after: self
                .upstream(run)
                .iter()
                .filter_map(|u| self.jobs.get(u).cloned())
                .collect(),
            solo: true,
            runs_file: PathBuf::new(),
            tag: String::new(),
            cpus_per_run: 1,
        };
        let (_, new) = self.queue.submit(self.plan, batch)?.remove(0);
        self.reporter.note(&format!(
            "{run}: job {job} {how}; resubmitted as {new} (resumes from its checkpoint)"
        ));
        self.ledger.runs.insert(
            run.to_string(),
            Tracked {
                job: new.clone(),
                requeues: requeues + 1,
            },
        );
        self.jobs.insert(run.to_string(), new);
        self.queue.save(self.plan, &self.ledger)?;
        self.repoint_dependents(run)?;
        Ok(true)
    }

    /// Point the pending jobs of runs downstream of `run` at the current jobs of their upstreams.
    fn repoint_dependents(&self, run: &str) -> Result<()> {
        for r in self
            .plan
            .runs
            .iter()
            .filter(|r| r.upstream.iter().any(|u| u == run))
        {
            let Some(job) = self.jobs.get(&r.id) else {
                continue;
            };
            let after: Vec<&str> = r
                .upstream
                .iter()
                .filter_map(|u| self.jobs.get(u).map(String::as_str))
                .collect();
            self.queue
                .backend
                .set_dependencies(job, &after)
                .with_context(|| {
                    format!("cannot point job {job} ({}) at the resubmitted {run}", r.id)
                })?;
        }
        Ok(())
    }
}

/// A path quoted for a job script.
pub fn sh(p: &Path) -> String {
    sh_str(&p.to_string_lossy())
}

/// A string quoted for a job script.
pub fn sh_str(s: &str) -> String {
    format!("'{}'", s.replace('\'', r"'\''"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoting_survives_quotes() {
        assert_eq!(sh_str("a'b"), r"'a'\''b'");
    }
}
