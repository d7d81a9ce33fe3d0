//! The executor's scheduling through a fake launcher (no worker, no libtorch): every run once and
//! then from the store, downstream of a failure skipped, `--jobs` as the bound on concurrent
//! runs, a GPU slot per concurrent run, `--force`, and the events a reporter sees.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::sync::Mutex;
use std::time::Duration;

use anyhow::{Result, bail};
use repro_core::pipeline::executor::{At, Launcher, Reporter, RunEvent, RunOptions};
use repro_core::pipeline::placement::Placement;
use repro_core::pipeline::plan::Plan;
use repro_core::pipeline::progress::{Progress, Unit};
use repro_core::pipeline::stage::{Outcome, Task};
use repro_core::runtime::Device;
use repro_core::store::memo::Scratch;

use crate::fixture::{Setup, setup};

/// Writes one output per run, optionally fails some runs, and records what it saw.
#[derive(Default)]
struct Fake {
    fail: BTreeSet<String>,
    hold: Duration,
    seen: Mutex<Seen>,
}

#[derive(Default)]
struct Seen {
    launched: Vec<String>,
    running: usize,
    most_at_once: usize,
    /// Run id → the slot's GPU, and the ids running beside it when it started.
    placed: BTreeMap<String, (Option<usize>, Vec<String>)>,
    running_ids: Vec<String>,
    upstream_inputs: BTreeMap<String, Vec<String>>,
}

impl Launcher for Fake {
    fn launch(
        &self,
        task: &Task,
        scratch: &Scratch,
        _log: &Path,
        slot: &Placement,
        progress: &dyn Fn(&Progress),
    ) -> Result<Vec<Outcome>> {
        {
            let mut s = self.seen.lock().unwrap();
            s.launched.push(task.run_id.clone());
            s.running += 1;
            s.most_at_once = s.most_at_once.max(s.running);
            let beside = s.running_ids.clone();
            s.placed.insert(task.run_id.clone(), (slot.gpu, beside));
            s.running_ids.push(task.run_id.clone());
            let ups = task.upstream.iter().map(|u| u.run_id.clone()).collect();
            s.upstream_inputs.insert(task.run_id.clone(), ups);
        }
        progress(&Progress::at(Unit::Epoch, 1, 2, "halfway"));
        std::thread::sleep(self.hold);
        {
            let mut s = self.seen.lock().unwrap();
            s.running -= 1;
            s.running_ids.retain(|r| r != &task.run_id);
        }
        if self.fail.contains(&task.run_id) {
            bail!("made to fail");
        }
        if task.members.is_empty() {
            std::fs::write(scratch.out.join("result.txt"), &task.run_id)?;
            return Ok(vec![Outcome::with_metrics([("ok", serde_json::json!(1))])]);
        }
        // A fused group: each member's output in its own folder.
        let mut outcomes = Vec::new();
        for (i, m) in task.members.iter().enumerate() {
            std::fs::write(m.out_dir.join("result.txt"), &m.run_id)?;
            outcomes.push(Outcome::with_metrics([("position", serde_json::json!(i))]));
        }
        Ok(outcomes)
    }
}

/// Collects every event as a line.
#[derive(Default)]
struct Events(Mutex<Vec<String>>);

impl Reporter for Events {
    fn note(&self, _line: &str) {}
    fn event(&self, at: At, event: RunEvent) {
        let what = match event {
            RunEvent::Cached { .. } | RunEvent::CachedByOther => "cached",
            RunEvent::Pulled { .. } => "pulled",
            RunEvent::Started { .. } => "started",
            RunEvent::Progress { .. } => "progress",
            RunEvent::Done { .. } => "done",
            RunEvent::Failed { .. } => "failed",
            RunEvent::Skipped { .. } => "skipped",
        };
        self.0.lock().unwrap().push(format!("{what} {}", at.run));
    }
}

impl Events {
    fn count(&self, what: &str) -> usize {
        let prefix = format!("{what} ");
        self.0
            .lock()
            .unwrap()
            .iter()
            .filter(|e| e.starts_with(&prefix))
            .count()
    }
}

fn options(jobs: usize, gpus: Vec<usize>) -> RunOptions {
    RunOptions {
        device: Device::Cpu,
        threads: 1,
        force: BTreeSet::new(),
        no_repair: false,
        mirror: None,
        jobs,
        gpus,
        runs_per_gpu: 1,
    }
}

trait RunLocally {
    fn run(&self, opts: &RunOptions, launcher: &Fake, events: &Events) -> Vec<usize>;
}

impl RunLocally for Setup {
    fn run(&self, opts: &RunOptions, launcher: &Fake, events: &Events) -> Vec<usize> {
        let exec = self.executor();
        let plan = Plan::resolve(&self.pipeline, "test", &[]).unwrap();
        let s = exec.run(&plan, opts, events, launcher).unwrap();
        vec![s.ran.len(), s.cached.len(), s.failed.len(), s.skipped.len()]
    }
}

#[test]
fn every_run_once_then_from_the_store_and_force_reruns() {
    let s = setup();
    let fake = Fake::default();
    let events = Events::default();
    assert_eq!(s.run(&options(1, vec![]), &fake, &events), [6, 0, 0, 0]);
    // Each measurement read the training run of its own seed, as a verified store object.
    let seen = fake.seen.lock().unwrap();
    assert_eq!(seen.launched.len(), 6);
    assert_eq!(seen.upstream_inputs["measure/seed=1"], ["train/seed=1"]);
    drop(seen);
    assert_eq!((events.count("started"), events.count("done")), (6, 6));
    assert_eq!(events.count("progress"), 6);

    let again = Fake::default();
    assert_eq!(s.run(&options(1, vec![]), &again, &events), [0, 6, 0, 0]);
    assert!(again.seen.lock().unwrap().launched.is_empty());

    let mut forced = options(1, vec![]);
    forced.force.insert("train/seed=2".into());
    let third = Fake::default();
    assert_eq!(s.run(&forced, &third, &events), [1, 5, 0, 0]);
    assert_eq!(third.seen.lock().unwrap().launched, ["train/seed=2"]);
}

#[test]
fn a_failure_skips_only_what_depends_on_it() {
    let s = setup();
    let fake = Fake {
        fail: BTreeSet::from(["train/seed=1".to_string()]),
        ..Fake::default()
    };
    let events = Events::default();
    // 2 training + 2 measurements ran, 1 failed, its measurement skipped.
    assert_eq!(s.run(&options(2, vec![]), &fake, &events), [4, 0, 1, 1]);
    assert!(
        !fake
            .seen
            .lock()
            .unwrap()
            .launched
            .contains(&"measure/seed=1".to_string())
    );
    assert_eq!((events.count("failed"), events.count("skipped")), (1, 1));
    // The failed run left no record: a second run tries it again and then its measurement.
    let fixed = Fake::default();
    assert_eq!(s.run(&options(2, vec![]), &fixed, &events), [2, 4, 0, 0]);
}

#[test]
fn jobs_bound_the_runs_at_once() {
    for jobs in [1, 3] {
        let s = setup();
        let fake = Fake {
            hold: Duration::from_millis(150),
            ..Fake::default()
        };
        s.run(&options(jobs, vec![]), &fake, &Events::default());
        assert_eq!(
            fake.seen.lock().unwrap().most_at_once,
            jobs,
            "--jobs {jobs}"
        );
    }
}

#[test]
fn concurrent_runs_get_their_own_gpu() {
    let s = setup();
    let fake = Fake {
        hold: Duration::from_millis(150),
        ..Fake::default()
    };
    s.run(&options(1, vec![3, 5]), &fake, &Events::default());
    let seen = fake.seen.lock().unwrap();
    // Two GPU slots: two runs at once, each on one of the listed cards, never the same one.
    assert_eq!(seen.most_at_once, 2);
    for (run, (gpu, beside)) in &seen.placed {
        assert!(matches!(gpu, Some(3) | Some(5)), "{run} on {gpu:?}");
        for other in beside {
            assert_ne!(seen.placed[other].0, *gpu, "{run} and {other} share a GPU");
        }
    }
}
