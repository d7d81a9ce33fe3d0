//! Kill -9 resume: real smoke-profile runs of every training kind (vision, lm, translate, dqn)
//! are killed at random moments, the whole process group (engine and worker: a power loss) or
//! the worker alone (the engine then reports the failure), and started again until they finish.
//! Each attempt resumes from the run's newest checkpoint, and the final outputs must equal the
//! digests pinned in pipeline.lock for an uninterrupted run, bit for bit.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use repro::pipeline::lockfile::LockFile;

/// A run to kill: its id, the longest wait before a kill (shorter than an uninterrupted run, so
/// that most kills land), and how many kills it gets.
struct Target {
    run: &'static str,
    max_wait: Duration,
    kills: usize,
}

const TARGETS: &[Target] = &[
    Target {
        run: "cifar10_label_noise/label_noise=0.0,seed=0",
        max_wait: Duration::from_millis(4500),
        kills: 7,
    },
    Target {
        run: "cifar10_resnet18/schedule=early,seed=0",
        max_wait: Duration::from_millis(5000),
        kills: 5,
    },
    Target {
        run: "wikitext2_adam_variants/variant=adamw,weight_decay=0.0,lr=0.003,seed=0",
        max_wait: Duration::from_millis(1600),
        kills: 4,
    },
    Target {
        run: "iwslt14_adam_variants/variant=adamw,weight_decay=0.1,lr=0.003,seed=0",
        max_wait: Duration::from_millis(1200),
        kills: 3,
    },
    Target {
        run: "minatar_dqn_adam_variants/game=breakout,variant=adamw,weight_decay=0.0,seed=0",
        max_wait: Duration::from_millis(6000),
        kills: 7,
    },
];

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn start(store: &Path, datasets: &Path, run: &str) -> Child {
    use std::os::unix::process::CommandExt;
    Command::new(env!("CARGO_BIN_EXE_repro"))
        .current_dir(repo())
        .args([
            "run",
            "--profile",
            "smoke",
            "--device",
            "cpu",
            "--quiet",
            run,
        ])
        .env("REPRO_STORE", store)
        .env("REPRO_DATASETS", datasets)
        .env_remove("REPRO_PROFILE")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        // Its own process group, so one signal reaches the engine and its worker together.
        .process_group(0)
        .spawn()
        .expect("spawn repro")
}

/// The pids of the `repro-worker` processes in process group `pgid`.
fn workers_in(pgid: u32) -> Vec<i32> {
    let mut out = Vec::new();
    for e in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = e.file_name().to_string_lossy().parse::<i32>() else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(e.path().join("stat")) else {
            continue;
        };
        // pid (comm) state ppid pgrp …; comm may hold spaces, so split after the last ')'.
        let Some((head, rest)) = stat.rsplit_once(')') else {
            continue;
        };
        let fields: Vec<&str> = rest.split_whitespace().collect();
        if head.contains("(repro-worker") && fields.get(2) == Some(&pgid.to_string().as_str()) {
            out.push(pid);
        }
    }
    out
}

fn wait_until(child: &mut Child, deadline: Instant) -> Option<std::process::ExitStatus> {
    loop {
        if let Some(s) = child.try_wait().unwrap() {
            return Some(s);
        }
        if Instant::now() >= deadline {
            return None;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

fn stderr_of(child: &mut Child) -> String {
    use std::io::Read;
    let mut s = String::new();
    if let Some(mut e) = child.stderr.take() {
        let _ = e.read_to_string(&mut s);
    }
    s
}

/// How one attempt ended.
enum Attempt {
    Finished,
    Killed,
}

/// Start `t.run`; with `kill`, kill it (see the module doc) unless it finishes first.
fn attempt(t: &Target, store: &Path, datasets: &Path, rng: &mut ChaCha8Rng, kill: bool) -> Attempt {
    let mut child = start(store, datasets, t.run);
    let pgid = child.id();
    let finished = |child: &mut Child, s: std::process::ExitStatus| {
        let err = stderr_of(child);
        assert!(
            s.success(),
            "{}: an attempt failed without a kill:\n{err}",
            t.run
        );
        Attempt::Finished
    };
    if !kill {
        let s = child.wait().unwrap();
        return finished(&mut child, s);
    }
    // Half the kills come at a random moment of the attempt, half at a random moment shortly
    // after it saved a new checkpoint (so that later checkpoints get resumed from too).
    let wait = rng.random_range(Duration::from_millis(300)..t.max_wait);
    let deadline = if rng.random_bool(0.5) {
        Instant::now() + wait
    } else {
        let before = latest(store);
        let give_up = Instant::now() + 3 * t.max_wait;
        while latest(store) == before && Instant::now() < give_up {
            if child.try_wait().unwrap().is_some() {
                break;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        Instant::now() + wait / 4
    };
    if let Some(s) = wait_until(&mut child, deadline) {
        return finished(&mut child, s);
    }
    // Every other kill takes only the worker (when one is running): the engine must survive it
    // and report the failure with the log's path.
    let workers = workers_in(pgid);
    if rng.random_bool(0.5) && !workers.is_empty() {
        for pid in workers {
            // SAFETY: sending a signal has no memory-safety preconditions.
            unsafe { libc::kill(pid, libc::SIGKILL) };
        }
        let s = child.wait().unwrap();
        let err = stderr_of(&mut child);
        if s.success() {
            return Attempt::Finished; // the worker had just finished
        }
        assert!(
            err.contains("failed: ") && err.contains(".log)"),
            "{}: the failure names the log:\n{err}",
            t.run
        );
        return Attempt::Killed;
    }
    // SAFETY: as above; the negative pid names the process group.
    unsafe { libc::kill(-(pgid as i32), libc::SIGKILL) };
    child.wait().unwrap();
    Attempt::Killed
}

#[test]
fn killed_runs_resume_to_the_locked_digests() {
    let lock = LockFile::load(&repo().join("pipeline.lock")).unwrap();
    let locked = &lock.profiles["smoke"].runs;
    let tmp = tempfile::tempdir().unwrap();
    let (store, datasets) = (tmp.path().join("store"), tmp.path().join("datasets"));
    let mut rng = ChaCha8Rng::seed_from_u64(20261202);
    let (mut kills, mut resumes) = (0, BTreeMap::<&str, Vec<u64>>::new());
    for t in TARGETS {
        // Smoke runs are short, so a run is done several times over (its record dropped in
        // between) until it has taken its kills.
        let mut hits = 0;
        while hits < t.kills {
            forget(&store, t.run);
            for tries in 0.. {
                assert!(
                    tries < 4 * t.kills + 8,
                    "{}: no end after {tries} attempts",
                    t.run
                );
                match attempt(t, &store, &datasets, &mut rng, hits < t.kills) {
                    Attempt::Finished => break,
                    Attempt::Killed => hits += 1,
                }
            }
            let rec = records(&store)
                .into_iter()
                .find(|r| r["run_id"] == t.run)
                .unwrap_or_else(|| panic!("{}: no record", t.run));
            let outputs: BTreeMap<String, String> = rec["outputs"]
                .as_object()
                .unwrap()
                .iter()
                .map(|(k, v)| (k.clone(), v["sha256"].as_str().unwrap().to_string()))
                .collect();
            assert_eq!(
                outputs, locked[t.run].outputs,
                "{}: outputs after {hits} kills differ from the uninterrupted run's",
                t.run
            );
            let key = rec["key"].as_str().unwrap();
            assert!(
                !store.join("work").join(key).exists(),
                "{}: the work folder outlived the record",
                t.run
            );
            // What each attempt resumed from, as the run's log says.
            let log = std::fs::read_to_string(store.join("logs").join(format!("{key}.log")));
            resumes.insert(
                t.run,
                log.unwrap()
                    .lines()
                    .filter_map(|l| l.rsplit_once("resuming from checkpoint "))
                    .map(|(_, n)| n.parse().unwrap())
                    .collect(),
            );
        }
        kills += hits;
    }
    eprintln!("{kills} kills; checkpoints resumed from, per run: {resumes:?}");
    assert!(kills >= 20, "only {kills} kills landed");
    for (run, from) in &resumes {
        // The lm and translate smoke runs are a few seconds long: their kills mostly land
        // before the first checkpoint, so for them only the digests are required.
        if !run.starts_with("wikitext2") && !run.starts_with("iwslt14") {
            assert!(
                !from.is_empty(),
                "{run}: no attempt resumed from a checkpoint"
            );
        }
    }
    // The store verifies: nothing half-written became visible.
    let out = Command::new(env!("CARGO_BIN_EXE_repro"))
        .current_dir(repo())
        .args(["verify"])
        .env("REPRO_STORE", &store)
        .env("REPRO_DATASETS", &datasets)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Drop the record of `run`, so the next attempt runs it again from the start.
fn forget(store: &Path, run: &str) {
    for r in std::fs::read_dir(store.join("runs"))
        .into_iter()
        .flatten()
        .flatten()
    {
        let rec: serde_json::Value =
            serde_json::from_slice(&std::fs::read(r.path()).unwrap()).unwrap();
        if rec["run_id"] == run {
            std::fs::remove_file(r.path()).unwrap();
        }
    }
}

/// Every run's newest checkpoint pointer, to notice when an attempt saves one.
fn latest(store: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(store.join("work"))
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| std::fs::read_to_string(e.path().join("checkpoints/LATEST")).ok())
        .collect();
    v.sort();
    v
}

fn records(store: &Path) -> Vec<serde_json::Value> {
    std::fs::read_dir(store.join("runs"))
        .unwrap()
        .flatten()
        .map(|e| serde_json::from_slice(&std::fs::read(e.path()).unwrap()).unwrap())
        .collect()
}
