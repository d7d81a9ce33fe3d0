//! The Slurm executor against a real Slurm (slurmctld + slurmd + munged on localhost, brought up
//! by `scripts/slurm_local.sh`). Needs root and Debian's slurm-wlm, so these tests are ignored
//! by a plain `cargo test`: `scripts/slurm_test.sh` runs them (`--ignored`), and `.ci/run` calls
//! that.
//!
//! 1. Part of the smoke profile through `--executor slurm` (`SLURM_TARGETS`: the sharpness stage,
//!    which waits on its four upstream vision runs, so an array job and an `afterok` edge) gives
//!    the digests pinned in pipeline.lock (the local run's), and submitting again submits
//!    nothing. The whole profile runs locally in CI; Slurm runs the same `repro exec-run` for
//!    every kind, so a subset is enough here.
//! 2. A run that outlives its `--time` (its worker frozen after its first checkpoint, so on any
//!    machine) is killed by the scheduler (TIMEOUT), resubmitted, resumes from its checkpoint and
//!    ends with the digests of an uninterrupted local run; a second submission while its job
//!    runs does not duplicate it.
//!
//! A failing test cancels its jobs; `scripts/slurm_test.sh` stops the cluster it started.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use crate::common::{PIPELINE, Project, ok, procs};

/// The smoke targets the first test submits (with what they wait on).
const SLURM_TARGETS: &[&str] = &["cifar10_resnet18_sharpness"];

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Start the local cluster (idempotent); returns SLURM_CONF.
fn cluster() -> String {
    let out = Command::new(repo().join("scripts/slurm_local.sh"))
        .arg("start")
        // A job the scheduler requeues waits this long before it runs again.
        .env("REPRO_SLURM_CRED_EXPIRE", "10")
        .output()
        .expect("run scripts/slurm_local.sh");
    assert!(
        out.status.success(),
        "the local Slurm did not start:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    text.lines()
        .find_map(|l| l.strip_prefix("export SLURM_CONF="))
        .expect("slurm_local.sh prints SLURM_CONF")
        .trim()
        .to_string()
}

fn repro(dir: &Path, conf: &str, args: &[&str]) -> Output {
    Command::new(crate::common::repro_bin())
        .current_dir(dir)
        .args(args)
        .env("SLURM_CONF", conf)
        .env_remove("REPRO_PROFILE")
        .env_remove("REPRO_STORE")
        .output()
        .expect("spawn repro")
}

/// On a failing test, cancels the jobs its store's ledgers name and kills its workers, so that
/// nothing keeps running (or stays frozen) after it.
struct JobsOf {
    store: PathBuf,
    conf: String,
}

impl Drop for JobsOf {
    fn drop(&mut self) {
        if !std::thread::panicking() {
            return;
        }
        let mut jobs = Vec::new();
        for e in std::fs::read_dir(self.store.join("slurm"))
            .into_iter()
            .flatten()
            .flatten()
        {
            let ledger: Option<serde_json::Value> = std::fs::read(e.path())
                .ok()
                .and_then(|b| serde_json::from_slice(&b).ok());
            if let Some(runs) = ledger.as_ref().and_then(|l| l["runs"].as_object()) {
                jobs.extend(
                    runs.values()
                        .filter_map(|t| t["job"].as_str().map(String::from)),
                );
            }
        }
        for (pid, _) in procs::workers_under(&self.store.join("work")) {
            procs::signal(pid, libc::SIGKILL);
        }
        if jobs.is_empty() {
            return;
        }
        eprintln!("cancelling the test's jobs {jobs:?}");
        let _ = Command::new("scancel")
            .args(&jobs)
            .env("SLURM_CONF", &self.conf)
            .status();
        // Gone before the temporary store is removed (a minute at most: KillWait is 5 s).
        for _ in 0..60 {
            let listed = Command::new("squeue")
                .args(["-h", "-o", "%i", "-j", &jobs.join(",")])
                .env("SLURM_CONF", &self.conf)
                .output()
                .map(|o| !o.stdout.is_empty())
                .unwrap_or(false);
            if !listed {
                break;
            }
            std::thread::sleep(std::time::Duration::from_secs(1));
        }
    }
}

/// Wait for the (only) worker of a run under `work` (`<store>/work`) and let it run in slices of
/// a few milliseconds, frozen in between, until its first checkpoint exists; return it frozen
/// (its pid and work folder). The run is never unobserved for more than a slice, so it cannot
/// finish before the freeze, however fast the machine.
fn freeze_after_first_checkpoint(work: &Path) -> (i32, PathBuf) {
    use std::time::{Duration, Instant};
    // Queueing, the job's start and libtorch's loading take seconds here; ten minutes is for a
    // loaded machine, not a guess at its speed.
    let deadline = Instant::now() + Duration::from_secs(600);
    let (pid, dir) = loop {
        if let Some(w) = procs::workers_under(work).into_iter().next() {
            break w;
        }
        assert!(
            Instant::now() < deadline,
            "no worker started under {} within 10 minutes",
            work.display()
        );
        std::thread::sleep(Duration::from_millis(2));
    };
    let t0 = Instant::now();
    let mut slices = 0;
    loop {
        assert!(
            !procs::freeze(&[pid]).is_empty(),
            "the worker {pid} ended before its first checkpoint could be seen ({slices} slices)"
        );
        if dir.join("checkpoints/LATEST").exists() {
            eprintln!(
                "worker {pid} frozen after its first checkpoint ({slices} slices of 5 ms, {:.1} s)",
                t0.elapsed().as_secs_f64()
            );
            return (pid, dir);
        }
        assert!(
            Instant::now() < deadline,
            "the worker {pid} saved no checkpoint within 10 minutes"
        );
        procs::signal(pid, libc::SIGCONT);
        std::thread::sleep(Duration::from_millis(5));
        slices += 1;
    }
}

#[test]
#[ignore = "needs a local Slurm: scripts/slurm_test.sh runs it"]
fn smoke_targets_through_slurm_match_the_lock() {
    let conf = cluster();
    let tmp = tempfile::tempdir().unwrap();
    let store = tmp.path().join("store");
    let datasets = tmp.path().join("datasets");
    let (s, d) = (store.to_str().unwrap(), datasets.to_str().unwrap());
    let base = ["--store", s, "--datasets", d];
    let _jobs = JobsOf {
        store: store.clone(),
        conf: conf.clone(),
    };
    let t0 = std::time::Instant::now();
    let run = [
        &base[..],
        &["run", "--profile", "smoke", "--executor", "slurm"],
        SLURM_TARGETS,
    ]
    .concat();
    let first = ok(repro(&repo(), &conf, &run));
    let secs = t0.elapsed().as_secs_f64();
    let jobs = first.matches(": submitted as job ").count();
    eprintln!("smoke targets {SLURM_TARGETS:?} through Slurm: {jobs} runs in {secs:.0} s");
    assert!(first.contains(" 0 failed, 0 skipped (slurm)"), "{first}");
    let verify = [&base[..], &["verify", "--profile", "smoke"], SLURM_TARGETS].concat();
    let v = ok(repro(&repo(), &conf, &verify));
    assert!(v.contains("all match"), "{v}");
    let again = ok(repro(&repo(), &conf, &run));
    assert!(
        again.contains("0 ran") && !again.contains("submitted as job"),
        "{again}"
    );
}

/// Epochs of the time-limit test's run: a few, as its length does not make it outlive the limit.
const EPOCHS: u64 = 10;

#[test]
#[ignore = "needs a local Slurm: scripts/slurm_test.sh runs it"]
fn a_job_killed_at_its_time_limit_resumes_from_its_checkpoint() {
    let conf = cluster();
    // One short run under a 1-minute limit (Slurm enforces it 60–90 s after the start). It
    // outlives the limit by construction, not by length: the test freezes its worker (SIGSTOP)
    // right after the first checkpoint, so only the scheduler's kill ends that attempt. Slurm
    // sends SIGCONT and SIGTERM at the limit (SIGKILL after KillWait), and the job is TIMEOUT.
    let long = PIPELINE
        .replace("epochs: 2", &format!("epochs: {EPOCHS}"))
        .replace("schedule: [none, early]", "schedule: [early]")
        .replace("seed: [0, 1]", "seed: [0]");
    let p = Project::new(&long);
    let _jobs = JobsOf {
        store: p.store(),
        conf: conf.clone(),
    };
    let submit = [
        "run",
        "--profile",
        "smoke",
        "--executor",
        "slurm",
        "--time",
        "1",
    ];
    let first = ok(repro(
        p.path(),
        &conf,
        &[&submit[..], &["--detach"]].concat(),
    ));
    assert!(first.contains("submitted as job"), "{first}");
    let (worker, work) = freeze_after_first_checkpoint(&p.store().join("work"));
    // Its job is running (frozen), so a second submission must find it and submit nothing.
    let second = ok(repro(
        p.path(),
        &conf,
        &[&submit[..], &["--detach"]].concat(),
    ));
    assert!(
        second.contains("already queued or running") && !second.contains("submitted as job"),
        "a second submission duplicated the job:\n{second}"
    );
    let waited = ok(repro(p.path(), &conf, &submit));
    assert!(
        waited.contains("TIMEOUT; resubmitted as"),
        "the frozen job was not killed at its time limit:\n{waited}"
    );
    assert!(waited.contains("1 ran, 0 cached, 0 failed"), "{waited}");
    assert!(
        !procs::workers_under(&p.store().join("work"))
            .iter()
            .any(|(pid, _)| *pid == worker),
        "the frozen worker {worker} outlived its job"
    );
    let records = p.records();
    let slurm_rec = records
        .iter()
        .find(|r| r["manifest"]["kind"] == "vision")
        .expect("a vision record");
    let key = slurm_rec["key"].as_str().unwrap();
    assert_eq!(
        work.file_name().unwrap(),
        key,
        "the frozen worker ran another key"
    );
    let log = std::fs::read_to_string(p.store().join(format!("logs/{key}.log"))).unwrap();
    // The attempt after the kill resumed mid-run, from the checkpoint the frozen one saved.
    let from: Vec<u64> = log
        .lines()
        .filter_map(|l| l.rsplit_once("resuming from checkpoint "))
        .map(|(_, n)| n.trim().parse().unwrap())
        .collect();
    eprintln!("attempts after the TIMEOUT resumed from checkpoints {from:?} of {EPOCHS}");
    assert!(
        !from.is_empty() && from.iter().all(|&n| (1..EPOCHS).contains(&n)),
        "{log}"
    );

    // The same run uninterrupted, locally, in another store.
    let local = p.path().join("local-store");
    ok(repro(
        p.path(),
        &conf,
        &[
            "--store",
            local.to_str().unwrap(),
            "run",
            "--profile",
            "smoke",
            "--quiet",
        ],
    ));
    let local_rec: serde_json::Value = {
        let f = std::fs::read_dir(local.join("runs"))
            .unwrap()
            .flatten()
            .map(|e| e.path())
            .find(|p| {
                let r: serde_json::Value =
                    serde_json::from_slice(&std::fs::read(p).unwrap()).unwrap();
                r["manifest"]["kind"] == "vision"
            })
            .unwrap();
        serde_json::from_slice(&std::fs::read(f).unwrap()).unwrap()
    };
    assert_eq!(slurm_rec["key"], local_rec["key"]);
    assert_eq!(slurm_rec["outputs"], local_rec["outputs"]);
}
