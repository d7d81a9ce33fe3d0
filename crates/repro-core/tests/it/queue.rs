//! The queue executor's shared loop (ledger, batching, polling, requeue, cancellation) through
//! a fake backend: no cluster, every job's fate scripted.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::sync::Mutex;

use anyhow::Result;
use repro_core::pipeline::executor::Silent;
use repro_core::pipeline::plan::Plan;
use repro_core::pipeline::queue::{Batch, Invocation, JobState, Queue, QueueBackend, QueueOptions};
use repro_core::runtime::Device;

use crate::fixture::setup;

/// Numbers jobs from 1; a job's state is `fate(run, times it was submitted)`.
struct FakeQueue {
    fate: fn(&str, usize) -> JobState,
    log: Mutex<Log>,
}

#[derive(Default)]
struct Log {
    /// (runs, job ids waited on) per submission.
    batches: Vec<(Vec<String>, BTreeSet<String>)>,
    /// Job → (run, job name, submission count of the run).
    jobs: BTreeMap<String, (String, String, usize)>,
    cancelled: Vec<String>,
    /// (job, the jobs it now waits on).
    repointed: Vec<(String, Vec<String>)>,
}

impl QueueBackend for FakeQueue {
    fn name(&self) -> &'static str {
        "fake"
    }

    fn submit(&self, dir: &Path, batch: &Batch, command: &str) -> Result<Vec<String>> {
        assert!(dir.join("logs").is_dir() && batch.runs_file.is_file());
        assert!(command.contains("exec-run --profile 'test'"), "{command}");
        let mut log = self.log.lock().unwrap();
        log.batches.push((batch.runs.clone(), batch.after.clone()));
        let mut ids = Vec::new();
        for run in &batch.runs {
            let id = (log.jobs.len() + 1).to_string();
            let times = 1 + log.jobs.values().filter(|(r, ..)| r == run).count();
            log.jobs
                .insert(id.clone(), (run.clone(), batch.job_name(), times));
            ids.push(id);
        }
        Ok(ids)
    }

    fn poll(&self, jobs: &BTreeSet<String>) -> Result<BTreeMap<String, (JobState, String)>> {
        let log = self.log.lock().unwrap();
        Ok(jobs
            .iter()
            .map(|j| match log.jobs.get(j) {
                Some((run, name, times)) => (j.clone(), ((self.fate)(run, *times), name.clone())),
                None => (j.clone(), (JobState::Unknown, String::new())),
            })
            .collect())
    }

    fn cancel(&self, job: &str) -> Result<()> {
        self.log.lock().unwrap().cancelled.push(job.to_string());
        Ok(())
    }

    fn set_dependencies(&self, job: &str, after: &[&str]) -> Result<()> {
        let after = after.iter().map(|a| a.to_string()).collect();
        self.log
            .lock()
            .unwrap()
            .repointed
            .push((job.to_string(), after));
        Ok(())
    }

    fn log_hint(&self, dir: &Path, job: &str) -> String {
        format!("log: {}", dir.join(job).display())
    }
}

fn queue_run(fate: fn(&str, usize) -> JobState, detach: bool) -> (Vec<usize>, Log) {
    let s = setup();
    let fake = FakeQueue {
        fate,
        log: Mutex::default(),
    };
    let exec = s.executor();
    let invocation = Invocation {
        repro: "/bin/repro".into(),
        pipeline: s.root.join("pipeline.yaml"),
        store: s.root.join("artifacts"),
        datasets: s.root.join("datasets"),
        lock: s.root.join("pipeline.lock"),
        device: "cpu".into(),
        fuse: None,
    };
    let opts = QueueOptions {
        max_requeue: 1,
        detach,
        cpus_per_run: 2,
    };
    let queue = Queue {
        exec: &exec,
        backend: &fake,
        opts: &opts,
        invocation: &invocation,
    };
    let plan = Plan::resolve(&s.pipeline, "test", &[]).unwrap();
    let summary = queue.run(&plan, &Device::Cpu, 1, &Silent).unwrap();
    let counts = vec![
        summary.ran.len(),
        summary.failed.len(),
        summary.skipped.len(),
    ];
    // The ledger remembers every run's current job.
    let ledger = std::fs::read_to_string(s.root.join("artifacts/fake/test.json")).unwrap();
    assert_eq!(ledger.matches("\"job\"").count(), 6, "{ledger}");
    (counts, fake.log.into_inner().unwrap())
}

#[test]
fn runs_go_in_array_jobs_waiting_on_exactly_their_upstream_jobs() {
    let (counts, log) = queue_run(
        |_, _| JobState::Live {
            pending_on_failed_dependency: false,
        },
        true,
    );
    assert_eq!(counts, [0, 0, 0], "detached: nothing has ended");
    // The training runs in one array job; each measurement alone, after its own training job
    // (whose id exists only once that array job was submitted).
    assert_eq!(log.batches.len(), 4);
    assert_eq!(log.batches[0].0.len(), 3);
    assert!(log.batches[0].1.is_empty());
    for (runs, after) in &log.batches[1..] {
        let job = after.iter().next().expect("waits on a job");
        assert_eq!(after.len(), 1);
        assert_eq!(runs[0].replace("measure", "train"), log.jobs[job].0);
    }
}

#[test]
fn a_killed_job_is_resubmitted_once_and_its_dependents_follow_it() {
    // Every training job is killed at its first submission and fails at its second; the
    // measurements wait on them until their dependency can never be satisfied.
    let fate = |run: &str, times: usize| match (run.starts_with("train"), times) {
        (true, 1) => JobState::Killed("TIMEOUT".into()),
        (true, _) => JobState::Failed("FAILED (NonZeroExitCode)".into()),
        (false, _) => JobState::Live {
            pending_on_failed_dependency: true,
        },
    };
    let (counts, log) = queue_run(fate, false);
    assert_eq!(counts, [0, 3, 3]);
    // Four submissions, then one resubmission per killed run (max_requeue 1), alone.
    assert_eq!(log.batches.len(), 7);
    assert!(log.batches[1..].iter().all(|(runs, _)| runs.len() == 1));
    // Each measurement was pointed at its training run's new job, then cancelled.
    assert_eq!(log.repointed.len(), 3);
    for (job, after) in &log.repointed {
        let (run, ..) = &log.jobs[job];
        let (upstream, _, times) = &log.jobs[&after[0]];
        assert_eq!(run.replace("measure", "train"), *upstream);
        assert_eq!(*times, 2);
    }
    assert_eq!(log.cancelled.len(), 3);
}
