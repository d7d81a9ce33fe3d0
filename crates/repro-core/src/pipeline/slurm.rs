//! The Slurm executor: every run that is not cached becomes a Slurm job that executes
//! `repro exec-run` (exactly that run, against the shared store) on a compute node.
//!
//! - Runs of one experiment with the same upstream jobs go in one array job (a runs file, one
//!   line per array task); DAG edges become `--dependency=afterok:<job>[_<task>]`.
//! - The pipeline file is snapshotted at submission, so editing it later changes nothing queued.
//! - Submissions are recorded in `slurm/<profile>.json` under a store lock: submitting again
//!   skips finished runs and runs whose job is still queued or running.
//! - The engine then polls `squeue` (with backoff) until every job ended. A job the scheduler
//!   killed (timeout, node failure, preemption) is submitted again, up to `max_requeue` times, and
//!   resumes from its checkpoint; pending jobs that waited on it are pointed at the new job.
//!   Jobs waiting on a run that failed for good are cancelled and reported as skipped.
//!
//! `sacct` needs slurmdbd, which small clusters lack, so only `squeue`/`scontrol` are used
//! (finished jobs stay visible for the cluster's `MinJobAge`).

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use serde::{Deserialize, Serialize};

use super::executor::{Executor, RunState, Summary};
use super::plan::Plan;
use crate::store::atomic::write_atomic;

/// `repro run --executor slurm` options.
#[derive(Debug, Clone, Default)]
pub struct SlurmOptions {
    pub partition: Option<String>,
    pub account: Option<String>,
    /// Wall-time limit per job (sbatch `--time`).
    pub time: Option<String>,
    pub gpus_per_run: u32,
    /// CPUs per job (`--cpus-per-task`): the profile's threads per run.
    pub cpus_per_run: usize,
    /// Passed to sbatch as they are.
    pub sbatch_args: Vec<String>,
    /// Resubmissions of a run the scheduler killed.
    pub max_requeue: u32,
    /// Submit and return without waiting.
    pub detach: bool,
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

/// A job's state as squeue reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
enum JobState {
    /// Queued, running or on its way (includes Slurm's own requeue).
    Live {
        pending_on_failed_dependency: bool,
    },
    Completed,
    /// Killed by the scheduler: worth submitting again.
    Killed(String),
    /// Failed for good (non-zero exit, cancelled, out of memory).
    Failed(String),
    /// squeue no longer knows it (purged after MinJobAge).
    Unknown,
}

fn classify(state: &str, reason: &str) -> JobState {
    match state {
        "COMPLETED" => JobState::Completed,
        "TIMEOUT" | "NODE_FAIL" | "PREEMPTED" | "BOOT_FAIL" | "DEADLINE" => {
            JobState::Killed(state.into())
        }
        "FAILED" | "CANCELLED" | "OUT_OF_MEMORY" | "SPECIAL_EXIT" | "REVOKED" => {
            JobState::Failed(format!("{state} ({reason})"))
        }
        _ => JobState::Live {
            pending_on_failed_dependency: reason == "DependencyNeverSatisfied",
        },
    }
}

/// Parse `squeue -h -r -t all -o '%i|%T|%r|%j'` lines: job → (state, job name).
fn parse_squeue(text: &str) -> BTreeMap<String, (JobState, String)> {
    text.lines()
        .filter_map(|l| {
            let mut f = l.trim().splitn(4, '|');
            let (id, state, reason) = (f.next()?, f.next()?, f.next().unwrap_or(""));
            let name = f.next().unwrap_or("").to_string();
            Some((id.to_string(), (classify(state, reason), name)))
        })
        .collect()
}

/// The job name of a run's job: a job id the ledger remembers counts only while it still
/// names a job of ours (a cluster whose state was reset hands out the same ids again).
fn job_name(experiment: &str) -> String {
    format!("repro:{experiment}")
}

fn squeue(jobs: &BTreeSet<String>) -> Result<BTreeMap<String, (JobState, String)>> {
    if jobs.is_empty() {
        return Ok(BTreeMap::new());
    }
    // squeue takes array ids; their tasks come back one per line with -r.
    let ids: BTreeSet<&str> = jobs
        .iter()
        .map(|j| j.split('_').next().unwrap_or(j))
        .collect();
    let out = Command::new("squeue")
        .args(["-h", "-r", "-t", "all", "-o", "%i|%T|%r|%j", "-j"])
        .arg(ids.into_iter().collect::<Vec<_>>().join(","))
        .output()
        .context("cannot run squeue: is Slurm installed and SLURM_CONF set?")?;
    let text = String::from_utf8_lossy(&out.stdout);
    if !out.status.success() && text.trim().is_empty() {
        // Every id purged: squeue says "Invalid job id specified".
        let err = String::from_utf8_lossy(&out.stderr);
        if !err.contains("Invalid job id") {
            bail!("squeue failed: {}", err.trim());
        }
    }
    let mut states = parse_squeue(&text);
    for j in jobs {
        states
            .entry(j.clone())
            .or_insert((JobState::Unknown, String::new()));
    }
    Ok(states)
}

fn sbatch(args: &[String], script: &Path) -> Result<String> {
    let out = Command::new("sbatch")
        .args(args)
        .arg(script)
        .output()
        .context("cannot run sbatch: is Slurm installed and SLURM_CONF set?")?;
    if !out.status.success() {
        bail!(
            "sbatch {} failed: {}",
            script.display(),
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    // --parsable prints `id` or `id;cluster`.
    let text = String::from_utf8_lossy(&out.stdout);
    let id = text.trim().split(';').next().unwrap_or("").to_string();
    anyhow::ensure!(
        !id.is_empty() && id.chars().all(|c| c.is_ascii_digit()),
        "sbatch printed {text:?}, not a job id"
    );
    Ok(id)
}

fn scontrol(args: &[&str]) -> Result<()> {
    let out = Command::new("scontrol").args(args).output()?;
    if !out.status.success() {
        bail!(
            "scontrol {} failed: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(())
}

/// One sbatch submission: runs of one experiment that wait on the same jobs.
struct Batch {
    experiment: String,
    runs: Vec<String>,
    after: BTreeSet<String>,
    /// Waits on runs submitted in the same round (their job ids are known only then): alone.
    solo: bool,
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
            }),
        }
    }
    out
}

pub struct Slurm<'a> {
    pub exec: &'a Executor<'a>,
    pub opts: &'a SlurmOptions,
    pub invocation: &'a Invocation,
}

impl Slurm<'_> {
    fn dir(&self, plan: &Plan) -> PathBuf {
        self.exec.store.root().join("slurm").join(&plan.profile)
    }

    fn ledger_path(&self, plan: &Plan) -> PathBuf {
        self.exec
            .store
            .root()
            .join("slurm")
            .join(format!("{}.json", plan.profile))
    }

    fn load(&self, plan: &Plan) -> Result<Ledger> {
        let p = self.ledger_path(plan);
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
            &self.ledger_path(plan),
            &serde_json::to_vec_pretty(l)?,
        )?)
    }

    /// Write the job script and the runs file of `batch`, submit it; returns the job id of each run.
    fn submit(&self, plan: &Plan, batch: &Batch) -> Result<Vec<(String, String)>> {
        let dir = self.dir(plan);
        std::fs::create_dir_all(dir.join("logs"))?;
        let tag = format!(
            "{}-{}",
            batch.experiment,
            humantime::format_rfc3339_nanos(std::time::SystemTime::now())
        )
        .replace([':', '.'], "");
        let runs_file = dir.join(format!("{tag}.runs"));
        write_atomic(
            &runs_file,
            format!("{}\n", batch.runs.join("\n")).as_bytes(),
        )?;
        let inv = self.invocation;
        let script = format!(
            "#!/bin/bash\n# repro: {} run(s) of experiment {} (profile {}); written by `repro run --executor slurm`.\n\
             exec {} --pipeline {} --store {} --datasets {} --lock {} exec-run --profile {} --device {} \\\n  --runs-file {} --index \"${{SLURM_ARRAY_TASK_ID:-0}}\"\n",
            batch.runs.len(),
            batch.experiment,
            plan.profile,
            sh(&inv.repro),
            sh(&inv.pipeline),
            sh(&inv.store),
            sh(&inv.datasets),
            sh(&inv.lock),
            sh_str(&plan.profile),
            sh_str(&inv.device),
            sh(&runs_file),
        );
        let script_path = dir.join(format!("{tag}.sh"));
        write_atomic(&script_path, script.as_bytes())?;
        let mut args = vec![
            "--parsable".to_string(),
            format!("--job-name={}", job_name(&batch.experiment)),
            // Log files named like the job ids the engine reports (see `log_hint`).
            if batch.runs.len() > 1 {
                format!("--output={}/logs/%A_%a.out", dir.display())
            } else {
                format!("--output={}/logs/%j.out", dir.display())
            },
            "--open-mode=append".into(),
            "--requeue".into(),
            format!("--cpus-per-task={}", self.opts.cpus_per_run.max(1)),
        ];
        if batch.runs.len() > 1 {
            args.push(format!("--array=0-{}", batch.runs.len() - 1));
        }
        if !batch.after.is_empty() {
            let ids: Vec<&str> = batch.after.iter().map(String::as_str).collect();
            args.push(format!("--dependency=afterok:{}", ids.join(":")));
        }
        if self.opts.gpus_per_run > 0 {
            args.push(format!("--gpus-per-task={}", self.opts.gpus_per_run));
        }
        for (flag, v) in [
            ("--partition", &self.opts.partition),
            ("--account", &self.opts.account),
            ("--time", &self.opts.time),
        ] {
            if let Some(v) = v {
                args.push(format!("{flag}={v}"));
            }
        }
        args.extend(self.opts.sbatch_args.iter().cloned());
        let id = sbatch(&args, &script_path)?;
        Ok(batch
            .runs
            .iter()
            .enumerate()
            .map(|(i, r)| {
                let job = if batch.runs.len() > 1 {
                    format!("{id}_{i}")
                } else {
                    id.clone()
                };
                (r.clone(), job)
            })
            .collect())
    }

    /// Submit what is not finished or queued, then (unless detached) wait for it all.
    pub fn run(
        &self,
        plan: &Plan,
        device: &crate::runtime::Device,
        threads: usize,
        say: &dyn Fn(String),
    ) -> Result<Summary> {
        let store = self.exec.store;
        std::fs::create_dir_all(store.root().join("slurm"))?;
        let _submitting = store.lock_named(&format!("slurm-{}", plan.profile))?;
        let mut ledger = self.load(plan)?;
        let states = self.exec.states(plan, device, threads)?;
        let mut summary = Summary::default();
        let live = squeue(&ledger.runs.values().map(|t| t.job.clone()).collect())?;
        let mut jobs: BTreeMap<String, String> = BTreeMap::new();
        let mut submit = Vec::new();
        for (id, state) in &states {
            match state {
                RunState::Cached { .. } => summary.cached.push(id.clone()),
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
                        say(format!("{id}: job {} already queued or running", t.job));
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
            let b = Batch { after, ..b };
            for (run, job) in self.submit(plan, &b)? {
                say(format!("{run}: submitted as job {job}"));
                jobs.insert(run.clone(), job.clone());
                // A submission by the user starts the resubmission count over.
                ledger.runs.insert(run, Tracked { job, requeues: 0 });
            }
            self.save(plan, &ledger)?;
        }
        drop(_submitting);
        if self.opts.detach {
            say(format!(
                "{} job(s) submitted or queued; `repro run --executor slurm` again (or `repro status`) to follow them",
                jobs.len()
            ));
            return Ok(summary);
        }
        self.wait(plan, jobs, ledger, summary, say)
    }

    /// Poll until every job in `jobs` (run → job) ended.
    fn wait(
        &self,
        plan: &Plan,
        mut jobs: BTreeMap<String, String>,
        mut ledger: Ledger,
        mut summary: Summary,
        say: &dyn Fn(String),
    ) -> Result<Summary> {
        let mut seen: BTreeMap<String, JobState> = BTreeMap::new();
        let mut delay = Duration::from_secs(1);
        let upstream: BTreeMap<&str, &[String]> = plan
            .runs
            .iter()
            .map(|r| (r.id.as_str(), r.upstream.as_slice()))
            .collect();
        let mut failed_for_good: BTreeSet<String> = BTreeSet::new();
        while !jobs.is_empty() {
            let t0 = Instant::now();
            let states = squeue(&jobs.values().cloned().collect())?;
            let mut changed = false;
            for (run, job) in jobs.clone() {
                let state = states
                    .get(&job)
                    .map_or(JobState::Unknown, |(s, _)| s.clone());
                if seen.get(&run) != Some(&state) {
                    changed = true;
                    seen.insert(run.clone(), state.clone());
                }
                match state {
                    JobState::Live {
                        pending_on_failed_dependency,
                    } => {
                        let blocked = upstream[run.as_str()]
                            .iter()
                            .find(|u| failed_for_good.contains(*u));
                        if let (true, Some(u)) = (pending_on_failed_dependency, blocked) {
                            let _ = Command::new("scancel").arg(&job).status();
                            say(format!("{run}: job {job} cancelled: upstream {u} failed"));
                            summary
                                .skipped
                                .push((run.clone(), format!("upstream {u} failed")));
                            failed_for_good.insert(run.clone());
                            jobs.remove(&run);
                        }
                    }
                    JobState::Completed | JobState::Unknown => {
                        // The store, not the scheduler, says whether the run finished.
                        let key = self.exec.store.get_ref(&plan.profile, &run);
                        let done = key
                            .and_then(|k| self.exec.store.read_record(&k).ok().flatten())
                            .is_some();
                        if done {
                            say(format!("{run}: job {job} done"));
                            summary.ran.push(run.clone());
                        } else {
                            let why = format!(
                                "job {job} ended without a record ({})",
                                self.log_hint(plan, &job)
                            );
                            say(format!("{run}: FAILED: {why}"));
                            summary.failed.push((run.clone(), why));
                            failed_for_good.insert(run.clone());
                        }
                        jobs.remove(&run);
                    }
                    JobState::Failed(why) => {
                        let why = format!("job {job} {why} ({})", self.log_hint(plan, &job));
                        say(format!("{run}: FAILED: {why}"));
                        summary.failed.push((run.clone(), why));
                        failed_for_good.insert(run.clone());
                        jobs.remove(&run);
                    }
                    JobState::Killed(how) => {
                        let t = ledger.runs.get(&run).cloned().unwrap_or(Tracked {
                            job: job.clone(),
                            requeues: 0,
                        });
                        if t.requeues >= self.opts.max_requeue {
                            let why = format!(
                                "job {job} {how} after {} resubmission(s) ({})",
                                t.requeues,
                                self.log_hint(plan, &job)
                            );
                            say(format!("{run}: FAILED: {why}"));
                            summary.failed.push((run.clone(), why));
                            failed_for_good.insert(run.clone());
                            jobs.remove(&run);
                            continue;
                        }
                        let after = upstream[run.as_str()]
                            .iter()
                            .filter_map(|u| jobs.get(u).cloned())
                            .collect();
                        let batch = Batch {
                            experiment: plan
                                .runs
                                .iter()
                                .find(|r| r.id == run)
                                .map(|r| r.experiment.clone())
                                .unwrap_or_default(),
                            runs: vec![run.clone()],
                            after,
                            solo: true,
                        };
                        let (_, new) = self.submit(plan, &batch)?.remove(0);
                        say(format!(
                            "{run}: job {job} {how}; resubmitted as {new} (resumes from its checkpoint)"
                        ));
                        ledger.runs.insert(
                            run.clone(),
                            Tracked {
                                job: new.clone(),
                                requeues: t.requeues + 1,
                            },
                        );
                        jobs.insert(run.clone(), new.clone());
                        self.save(plan, &ledger)?;
                        self.repoint_dependents(plan, &run, &jobs)?;
                        changed = true;
                    }
                }
            }
            if jobs.is_empty() {
                break;
            }
            delay = if changed {
                Duration::from_secs(1)
            } else {
                (delay.mul_f64(1.5)).min(Duration::from_secs(30))
            };
            std::thread::sleep(delay.saturating_sub(t0.elapsed()));
        }
        Ok(summary)
    }

    /// Point the pending jobs of runs downstream of `run` at the current jobs of their upstreams.
    fn repoint_dependents(
        &self,
        plan: &Plan,
        run: &str,
        jobs: &BTreeMap<String, String>,
    ) -> Result<()> {
        for r in plan
            .runs
            .iter()
            .filter(|r| r.upstream.iter().any(|u| u == run))
        {
            let Some(job) = jobs.get(&r.id) else { continue };
            let after: Vec<&str> = r
                .upstream
                .iter()
                .filter_map(|u| jobs.get(u).map(String::as_str))
                .collect();
            scontrol(&[
                "update",
                &format!("JobId={job}"),
                &format!("Dependency=afterok:{}", after.join(":")),
            ])
            .with_context(|| {
                format!("cannot point job {job} ({}) at the resubmitted {run}", r.id)
            })?;
        }
        Ok(())
    }

    fn log_hint(&self, plan: &Plan, job: &str) -> String {
        format!(
            "log: {}",
            self.dir(plan)
                .join("logs")
                .join(format!("{job}.out"))
                .display()
        )
    }
}

/// A path quoted for the job script.
fn sh(p: &Path) -> String {
    sh_str(&p.to_string_lossy())
}

fn sh_str(s: &str) -> String {
    format!("'{}'", s.replace('\'', r"'\''"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn squeue_states_are_classified() {
        let s: BTreeMap<String, JobState> = parse_squeue(
            "54_0|COMPLETED|None|repro:a\n54_1|TIMEOUT|TimeLimit|repro:a\n\
             55|PENDING|DependencyNeverSatisfied|repro:b|x\n56|RUNNING|None|repro:c\n\
             57|FAILED|NonZeroExitCode|repro:d\n58|NODE_FAIL|None|repro:e\n",
        )
        .into_iter()
        .map(|(id, (state, name))| {
            assert!(name.starts_with("repro:"), "{name}");
            (id, state)
        })
        .collect();
        assert_eq!(s["54_0"], JobState::Completed);
        assert_eq!(s["54_1"], JobState::Killed("TIMEOUT".into()));
        assert_eq!(
            s["55"],
            JobState::Live {
                pending_on_failed_dependency: true
            }
        );
        assert_eq!(
            s["56"],
            JobState::Live {
                pending_on_failed_dependency: false
            }
        );
        assert_eq!(s["57"], JobState::Failed("FAILED (NonZeroExitCode)".into()));
        assert_eq!(s["58"], JobState::Killed("NODE_FAIL".into()));
    }

    #[test]
    fn quoting_survives_quotes() {
        assert_eq!(sh_str("a'b"), r"'a'\''b'");
    }
}
