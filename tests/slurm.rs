//! The Slurm executor against a real Slurm (slurmctld + slurmd + munged on localhost, brought up
//! by `scripts/slurm_local.sh`). Needs root and Debian's slurm-wlm, so it runs only with
//! `REPRO_SLURM_TEST=1` (`scripts/slurm_test.sh` sets it; `.ci/run` calls that).
//!
//! 1. The smoke profile through `--executor slurm` gives every digest pinned in pipeline.lock
//!    (the local run's), and submitting again submits nothing.
//! 2. A run longer than its `--time` is killed by the scheduler (TIMEOUT), resubmitted, resumes
//!    from its checkpoint and ends with the digests of an uninterrupted local run; a second
//!    submission while its job is queued or running does not duplicate it.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use common::{PIPELINE, Project, ok};

fn enabled() -> bool {
    let on = std::env::var("REPRO_SLURM_TEST").is_ok_and(|v| v == "1");
    if !on {
        eprintln!("skipped: set REPRO_SLURM_TEST=1 (scripts/slurm_test.sh) to run against Slurm");
    }
    on
}

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
    Command::new(env!("CARGO_BIN_EXE_repro"))
        .current_dir(dir)
        .args(args)
        .env("SLURM_CONF", conf)
        .env_remove("REPRO_PROFILE")
        .env_remove("REPRO_STORE")
        .output()
        .expect("spawn repro")
}

#[test]
fn smoke_profile_through_slurm_matches_the_lock() {
    if !enabled() {
        return;
    }
    let conf = cluster();
    let tmp = tempfile::tempdir().unwrap();
    let store = tmp.path().join("store");
    let datasets = tmp.path().join("datasets");
    let (s, d) = (store.to_str().unwrap(), datasets.to_str().unwrap());
    let base = ["--store", s, "--datasets", d];
    let t0 = std::time::Instant::now();
    let run = [
        &base[..],
        &["run", "--profile", "smoke", "--executor", "slurm"],
    ]
    .concat();
    let first = ok(repro(&repo(), &conf, &run));
    let secs = t0.elapsed().as_secs_f64();
    let jobs = first.matches(": submitted as job ").count();
    eprintln!("smoke profile through Slurm: {jobs} runs in {secs:.0} s");
    assert!(first.contains(" 0 failed, 0 skipped (slurm)"), "{first}");
    let verify = [&base[..], &["verify", "--profile", "smoke"]].concat();
    let v = ok(repro(&repo(), &conf, &verify));
    assert!(v.contains("all match"), "{v}");
    let again = ok(repro(&repo(), &conf, &run));
    assert!(
        again.contains("0 ran") && !again.contains("submitted as job"),
        "{again}"
    );
}

#[test]
fn a_job_killed_at_its_time_limit_resumes_from_its_checkpoint() {
    if !enabled() {
        return;
    }
    let conf = cluster();
    // One run of ~100 s on this machine (~0.08 s an epoch with its checkpoint), past a 1-minute
    // limit, which Slurm enforces 60–90 s after the start; up to 3 resubmissions finish it.
    let long = PIPELINE
        .replace("epochs: 2", "epochs: 1200")
        .replace("schedule: [none, early]", "schedule: [early]")
        .replace("seed: [0, 1]", "seed: [0]");
    let p = Project::new(&long);
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
        "the job was not killed at its limit (machine too fast?):\n{waited}"
    );
    assert!(waited.contains("1 ran, 0 cached, 0 failed"), "{waited}");
    let records = p.records();
    let slurm_rec = records
        .iter()
        .find(|r| r["manifest"]["kind"] == "vision")
        .expect("a vision record");
    let key = slurm_rec["key"].as_str().unwrap();
    let log = std::fs::read_to_string(p.store().join(format!("logs/{key}.log"))).unwrap();
    assert!(log.contains("resuming from checkpoint"), "{log}");

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
