//! Kill -9 resume: real smoke-profile runs of every training kind (vision, lm, translate, dqn —
//! the smoke profile's lm and dqn runs are fused pairs, so those two are groups' workers) are
//! killed, the whole process group (engine and worker: a power loss) or the worker alone (the
//! engine then reports the failure), and started again until they finish. Kills alternate
//! between a random moment of an attempt and right after it saved a new checkpoint; either way
//! the attempt is frozen (SIGSTOP) before the kill is decided, so a kill that lands is known to
//! have landed, and whether a checkpoint was there to resume from is known too. Each attempt
//! resumes from the run's newest checkpoint, every run provably resumes from one, and the final
//! outputs must equal the digests pinned in pipeline.lock for an uninterrupted run, bit for bit.
//! Nothing depends on the machine's speed: random moments start within `max_wait` and move
//! earlier whenever an attempt ends before its kill, and checkpoints are waited for.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::common::procs;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use repro_core::pipeline::lockfile::LockFile;

/// A run to kill: its id, the longest wait before a kill at a random moment to start with (about
/// an uninterrupted run here; it shrinks on a machine where attempts end before it), and how
/// many kills it gets.
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
    Command::new(crate::common::repro_bin())
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
fn workers_in(pgid: i32) -> Vec<i32> {
    procs::all()
        .into_iter()
        .filter(|p| p.pgrp == pgid && p.worker_dir().is_some())
        .map(|p| p.pid)
        .collect()
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
    /// Killed; `with_checkpoint`: the run had a checkpoint and no record when the kill landed, so
    /// a later attempt resumes from it; `after_record`: the run was recorded, and its work folder
    /// may be left for `repro gc`.
    Killed {
        with_checkpoint: bool,
        after_record: bool,
    },
}

/// When an attempt is killed.
#[derive(Clone, Copy, Debug)]
enum When {
    /// At a random moment, up to `span` after its start.
    Random,
    /// Right after it saved a new checkpoint (so that later checkpoints get resumed from too).
    AfterCheckpoint,
}

/// Start `t.run`; with `when`, kill it then (see the module doc) unless it finishes first.
/// `span` bounds random moments and shrinks when an attempt ends before its moment.
fn attempt(
    t: &Target,
    store: &Path,
    datasets: &Path,
    rng: &mut ChaCha8Rng,
    when: Option<When>,
    span: &mut Duration,
) -> Attempt {
    let mut child = start(store, datasets, t.run);
    let pgid = child.id() as i32;
    let finished = |child: &mut Child, s: std::process::ExitStatus| {
        let err = stderr_of(child);
        assert!(
            s.success(),
            "{}: an attempt failed without a kill:\n{err}",
            t.run
        );
        Attempt::Finished
    };
    let Some(when) = when else {
        let s = child.wait().unwrap();
        return finished(&mut child, s);
    };
    match when {
        When::Random => {
            let wait = rng.random_range(*span / 15..*span);
            if let Some(s) = wait_until(&mut child, Instant::now() + wait) {
                // A faster machine than the span was sized on: aim earlier next time.
                *span = span.mul_f64(2.0 / 3.0);
                return finished(&mut child, s);
            }
        }
        When::AfterCheckpoint => {
            let before = latest(store);
            // Ten minutes is for a loaded machine, not a guess at its speed.
            let give_up = Instant::now() + Duration::from_secs(600);
            while latest(store) == before {
                if let Some(s) = child.try_wait().unwrap() {
                    return finished(&mut child, s); // it resumed from its last checkpoint
                }
                assert!(
                    Instant::now() < give_up,
                    "{}: no new checkpoint within 10 minutes",
                    t.run
                );
                std::thread::sleep(Duration::from_millis(2));
            }
        }
    }
    // Frozen, the attempt cannot end while the kill is decided.
    procs::freeze_group(pgid);
    if let Some(s) = child.try_wait().unwrap() {
        return finished(&mut child, s);
    }
    let after_record = has_record(store, t.run);
    let with_checkpoint = !latest(store).is_empty() && !after_record;
    // Every other kill takes only the worker (when one is running): the engine must survive it
    // and report the failure with the log's path.
    let workers = workers_in(pgid);
    if rng.random_bool(0.5) && !workers.is_empty() {
        for pid in workers {
            procs::signal(pid, libc::SIGKILL);
        }
        procs::signal(-pgid, libc::SIGCONT);
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
        return Attempt::Killed {
            with_checkpoint,
            after_record,
        };
    }
    procs::signal(-pgid, libc::SIGKILL);
    child.wait().unwrap();
    Attempt::Killed {
        with_checkpoint,
        after_record,
    }
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
        // between) until it has taken its kills, one of them with a checkpoint to resume from.
        let (mut hits, mut proved, mut span) = (0, false, t.max_wait);
        let (t0, mut attempts) = (Instant::now(), 0);
        for cycle in 0.. {
            if hits >= t.kills && proved {
                eprintln!(
                    "{}: {hits} kills in {attempts} attempts, {cycle} runs, {:.0} s (random moments up to {:.2} s)",
                    t.run,
                    t0.elapsed().as_secs_f64(),
                    span.as_secs_f64()
                );
                break;
            }
            assert!(
                cycle < 3 * t.kills + 10,
                "{}: {hits} kills landed in {cycle} runs",
                t.run
            );
            forget(&store, t.run);
            let mut after_record = false;
            for tries in 0.. {
                assert!(
                    tries < 4 * t.kills + 8,
                    "{}: no end after {tries} attempts",
                    t.run
                );
                let kill = hits < t.kills || !proved;
                // Odd kills come after a checkpoint, and the last ones until one with a
                // checkpoint landed.
                let when = if hits % 2 == 1 || (!proved && hits + 1 >= t.kills) {
                    When::AfterCheckpoint
                } else {
                    When::Random
                };
                let when = kill.then_some(when);
                attempts += 1;
                match attempt(t, &store, &datasets, &mut rng, when, &mut span) {
                    Attempt::Finished => break,
                    Attempt::Killed {
                        with_checkpoint,
                        after_record: recorded,
                    } => {
                        hits += 1;
                        proved |= with_checkpoint;
                        after_record |= recorded;
                    }
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
            let work = work_folder(&store, key);
            if work.exists() {
                // Only a kill between the record and the folder's removal leaves it, and
                // `repro gc` knows it for the leftover of a finished run.
                assert!(
                    after_record,
                    "{}: the work folder outlived the record",
                    t.run
                );
                let gc = repro(&store, &datasets, &["gc"]);
                let folder = work.file_name().unwrap().to_string_lossy();
                assert!(
                    gc.contains(&format!(
                        "would remove work folder of finished run {folder}"
                    )),
                    "{}: gc does not know the leftover work folder:\n{gc}",
                    t.run
                );
                std::fs::remove_dir_all(&work).unwrap();
            }
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
        assert!(
            !from.is_empty(),
            "{run}: no attempt resumed from a checkpoint"
        );
    }
    // The store verifies: nothing half-written became visible.
    repro(&store, &datasets, &["verify"]);
}

/// `repro ARGS` on the store; asserts success and returns stdout and stderr.
fn repro(store: &Path, datasets: &Path, args: &[&str]) -> String {
    let out = Command::new(crate::common::repro_bin())
        .current_dir(repo())
        .args(args)
        .env("REPRO_STORE", store)
        .env("REPRO_DATASETS", datasets)
        .env_remove("REPRO_PROFILE")
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "repro {args:?} failed:\n{text}");
    text
}

/// The work folder of the run with `key`: its own, or its fused group's (whose `members.json`
/// lists it); the run's own path when there is none.
fn work_folder(store: &Path, key: &str) -> PathBuf {
    let group = std::fs::read_dir(store.join("work"))
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.path())
        .find(|d| {
            std::fs::read_to_string(d.join("members.json"))
                .is_ok_and(|m| m.contains(&format!("\"{key}\"")))
        });
    group.unwrap_or_else(|| store.join("work").join(key))
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

/// Whether `run` has a record.
fn has_record(store: &Path, run: &str) -> bool {
    std::fs::read_dir(store.join("runs"))
        .into_iter()
        .flatten()
        .flatten()
        .any(|r| {
            std::fs::read(r.path())
                .ok()
                .and_then(|b| serde_json::from_slice::<serde_json::Value>(&b).ok())
                .is_some_and(|rec| rec["run_id"] == run)
        })
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
