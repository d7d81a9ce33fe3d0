//! End to end: runs on generated data, cache hits and misses with their reasons, key stability
//! across processes, corrupted objects, concurrent processes on one store, kill -9 atomicity,
//! gc, lock and verify.

use std::collections::BTreeMap;
use std::time::Duration;

use crate::common::{PIPELINE, Project, flip_byte, ok, procs, text};

fn keys_of(plan_output: &str) -> BTreeMap<String, String> {
    plan_output
        .lines()
        .filter_map(|l| {
            let cells: Vec<&str> = l.split('│').map(str::trim).collect();
            (cells.len() > 4 && cells[1].starts_with("small/"))
                .then(|| (cells[1].to_string(), cells[3].to_string()))
        })
        .collect()
}

fn output_digests(p: &Project) -> BTreeMap<String, serde_json::Value> {
    p.records()
        .into_iter()
        .filter(|r| r["experiment"] == "small")
        .map(|r| {
            (
                r["run_id"].as_str().unwrap().to_string(),
                r["outputs"].clone(),
            )
        })
        .collect()
}

#[test]
fn run_then_cached_then_reason_for_a_change() {
    let p = Project::new(PIPELINE);
    let t = ok(p.smoke(&[]));
    assert!(t.contains("4 ran, 0 cached, 0 failed"), "{t}");
    // metrics series has one row per epoch with the logged fields
    let rec = p
        .records()
        .into_iter()
        .find(|r| r["run_id"] == "small/schedule=early,seed=0")
        .unwrap();
    assert_eq!(rec["manifest"]["params"]["schedule"], "early");
    let sha = rec["outputs"]["metrics.jsonl"]["sha256"]
        .as_str()
        .unwrap()
        .to_string();
    let metrics = std::fs::read_to_string(p.object(&sha)).unwrap();
    let rows: Vec<serde_json::Value> = metrics
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(rows.len(), 2);
    assert_eq!(rows[0]["wd_on"], true);
    assert_eq!(rows[1]["wd_on"], false);
    assert!(
        rec["outputs"]["final.safetensors"]["size"]
            .as_u64()
            .unwrap()
            > 1000
    );

    let t = ok(p.smoke(&[]));
    assert!(t.contains("0 ran, 4 cached"), "{t}");

    // Same inputs → same keys in another process.
    let a = keys_of(&ok(p.run(&[
        "plan",
        "--profile",
        "smoke",
        "--device",
        "cpu",
    ])));
    let b = keys_of(&ok(p.run(&[
        "plan",
        "--profile",
        "smoke",
        "--device",
        "cpu",
    ])));
    assert_eq!(a.len(), 4);
    assert_eq!(a, b);

    // A parameter change makes every run stale and says why.
    std::fs::write(
        p.path().join("pipeline.yaml"),
        PIPELINE.replace("lr: 0.05", "lr: 0.04"),
    )
    .unwrap();
    let t = ok(p.run(&["plan", "--profile", "smoke", "--device", "cpu"]));
    assert!(t.contains("parameter lr 0.05→0.04"), "{t}");
    assert!(t.contains("0 cached, 4 to run"), "{t}");
    // A changed generated dataset is an input change.
    std::fs::write(
        p.path().join("pipeline.yaml"),
        PIPELINE.replace("test_per_class: 5", "test_per_class: 6"),
    )
    .unwrap();
    ok(p.smoke(&["cifar10"]));
    let t = ok(p.run(&["plan", "--profile", "smoke", "--device", "cpu"]));
    assert!(t.contains("input dataset:cifar10 changed"), "{t}");
    // Only one target reruns with --force, dependencies stay cached.
    std::fs::write(p.path().join("pipeline.yaml"), PIPELINE).unwrap();
    let t = ok(p.smoke(&["--force", "small/schedule=none,seed=1"]));
    assert!(t.contains("1 ran, 0 cached"), "{t}");
}

#[test]
fn bitwise_reproducible_across_stores_and_locked() {
    let a = Project::new(PIPELINE);
    let b = Project::new(PIPELINE);
    ok(a.smoke(&["--quiet"]));
    // --jobs runs several workers at once; the bytes must not depend on it.
    ok(b.smoke(&["--quiet", "--jobs", "3"]));
    let (da, db) = (output_digests(&a), output_digests(&b));
    assert_eq!(da.len(), 4);
    assert_eq!(da, db, "the same runs in two stores gave different bytes");

    let t = ok(a.run(&["lock", "--profile", "smoke", "--device", "cpu"]));
    assert!(t.contains("locked 4 bitwise runs"), "{t}");
    let t = ok(a.run(&["verify", "--profile", "smoke"]));
    assert!(t.contains("4 locked runs"), "{t}");
    // The lock from one store verifies the other store's runs.
    std::fs::copy(
        a.path().join("pipeline.lock"),
        b.path().join("pipeline.lock"),
    )
    .unwrap();
    ok(b.run(&["verify", "--profile", "smoke"]));
    // A store that reran one run verifies that run alone against the lock; the whole profile
    // it cannot.
    let c = Project::new(PIPELINE);
    std::fs::copy(
        a.path().join("pipeline.lock"),
        c.path().join("pipeline.lock"),
    )
    .unwrap();
    ok(c.smoke(&["--quiet", "small/schedule=none,seed=1"]));
    let o = c.run(&["verify", "--profile", "smoke"]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(text(&o).contains("seed=0: locked for profile smoke but not in this store"));
    let t = ok(c.run(&["verify", "--profile", "smoke", "small/schedule=none,seed=1"]));
    assert!(t.contains("1 locked runs"), "{t}");
    // A tampered lock entry is a mismatch, exit 1.
    let lock = std::fs::read_to_string(a.path().join("pipeline.lock")).unwrap();
    let digest = da["small/schedule=none,seed=0"]["metrics.jsonl"]["sha256"]
        .as_str()
        .unwrap();
    std::fs::write(
        a.path().join("pipeline.lock"),
        lock.replace(digest, &"0".repeat(64)),
    )
    .unwrap();
    let o = a.run(&["verify", "--profile", "smoke"]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(text(&o).contains("not bitwise reproduced"), "{}", text(&o));
    // Named, the tampered run fails and an untouched one passes.
    let o = a.run(&["verify", "--profile", "smoke", "small/schedule=none,seed=0"]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    ok(a.run(&["verify", "--profile", "smoke", "small/schedule=none,seed=1"]));
}

#[test]
fn a_corrupt_generated_dataset_is_found_and_regenerated() {
    let p = Project::new(PIPELINE);
    ok(p.smoke(&["--quiet"]));
    ok(p.run(&["verify"]));
    // Corrupt the generated dataset archive: verify lists it, and a run that reads it refuses.
    let generated = p.record("dataset:cifar10");
    let sha = generated["outputs"]["cifar-10-binary.tar.gz"]["sha256"]
        .as_str()
        .unwrap()
        .to_string();
    let obj = p.object(&sha);
    flip_byte(&obj, std::fs::metadata(&obj).unwrap().len() as usize / 2);
    let o = p.run(&["verify"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        text(&o).contains(&sha) && text(&o).contains("corrupt"),
        "{}",
        text(&o)
    );
    // The next run regenerates it (the damaged copy goes to quarantine) and reruns nothing else.
    let good = p.record("dataset:cifar10")["outputs"].clone();
    let t = ok(p.smoke(&[]));
    assert!(
        t.contains("0 ran, 4 cached") && t.contains("moved to"),
        "{t}"
    );
    assert_eq!(p.record("dataset:cifar10")["outputs"], good);
    ok(p.run(&["verify"]));
}

#[test]
fn concurrent_processes_run_each_key_once() {
    let p = Project::new(PIPELINE);
    let spawn = || {
        p.cmd(&["run", "--profile", "smoke", "--device", "cpu"])
            .stderr(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .spawn()
            .unwrap()
    };
    let (a, b) = (spawn(), spawn());
    let (a, b) = (a.wait_with_output().unwrap(), b.wait_with_output().unwrap());
    let (ta, tb) = (ok(a), ok(b));
    let ran = |t: &str| {
        t.lines()
            .find_map(|l| {
                l.strip_prefix("profile smoke: ")
                    .and_then(|r| r.split(' ').next())
                    .and_then(|n| n.parse::<usize>().ok())
            })
            .unwrap()
    };
    assert_eq!(
        ran(&ta) + ran(&tb),
        4,
        "each key must run exactly once:\n{ta}\n{tb}"
    );
    assert_eq!(output_digests(&p).len(), 4);
    ok(p.run(&["verify"]));
}

#[test]
fn kill_9_leaves_no_partial_output() {
    // Long runs, so a worker that outlived the engine would still be found training.
    let p = Project::new(&PIPELINE.replace("epochs: 2", "epochs: 500"));
    let mut child = p
        .cmd(&["run", "--profile", "smoke", "--device", "cpu", "--quiet"])
        .spawn()
        .unwrap();
    // Kill once the first training run's worker exists (loading libtorch or training), so the
    // kill finds a worker to orphan and, 500 epochs from its end, no finished run.
    let deadline = std::time::Instant::now() + Duration::from_secs(600);
    while procs::workers_under(&p.store().join("work")).is_empty() {
        assert!(
            std::time::Instant::now() < deadline,
            "no worker started within 10 minutes"
        );
        assert!(
            child.try_wait().unwrap().is_none(),
            "the run ended before a worker was seen"
        );
        std::thread::sleep(Duration::from_millis(2));
    }
    child.kill().unwrap();
    child.wait().unwrap();
    // The run's worker process dies with the engine instead of training on as an orphan (a
    // worker still loading libtorch notices once it starts).
    let orphans = || -> Vec<String> {
        std::fs::read_dir("/proc")
            .unwrap()
            .flatten()
            .filter(|e| std::fs::read_link(e.path().join("cwd")).is_ok_and(|cwd| cwd == p.path()))
            .filter_map(|e| std::fs::read(e.path().join("cmdline")).ok())
            .map(|c| String::from_utf8_lossy(&c).replace('\0', " "))
            .filter(|c| c.contains("repro-worker"))
            .collect()
    };
    // Bounded by a minute, not sized to this machine: one loading libtorch under load is slow.
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while !orphans().is_empty() && std::time::Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(100));
    }
    let orphans = orphans();
    assert!(orphans.is_empty(), "orphaned workers: {orphans:?}");
    let runs = output_digests(&p);
    assert!(runs.len() < 4, "the kill came too late to test anything");
    // Whatever is recorded is complete and verifies; nothing half-written is visible.
    ok(p.run(&["verify"]));
    assert!(
        runs.is_empty(),
        "no 500-epoch run can have finished: {runs:?}"
    );
    // The store works on after the kill (shorter runs, to keep the test fast).
    std::fs::write(p.path().join("pipeline.yaml"), PIPELINE).unwrap();
    let t = ok(p.smoke(&["--quiet"]));
    assert!(t.contains("4 ran, 0 cached, 0 failed"), "{t}");
    ok(p.run(&["verify"]));
}

#[test]
fn gc_removes_only_unreferenced_objects() {
    let p = Project::new(PIPELINE);
    ok(p.smoke(&["--quiet"]));
    let t = ok(p.run(&["gc"]));
    assert!(t.contains("0 unreferenced objects"), "{t}");
    let orphan = p.store().join("objects/sha256/00/orphan");
    std::fs::create_dir_all(orphan.parent().unwrap()).unwrap();
    std::fs::write(&orphan, b"x").unwrap();
    let t = ok(p.run(&["gc"]));
    assert!(
        t.contains("would remove 00orphan") && orphan.exists(),
        "{t}"
    );
    let t = ok(p.run(&["gc", "--apply"]));
    assert!(t.contains("removed 1 objects") && !orphan.exists(), "{t}");
    ok(p.run(&["verify"]));
    let t = ok(p.smoke(&[]));
    assert!(t.contains("4 cached"), "{t}");
}
