//! The store's promise, with faults injected: a corrupt or truncated object is never "cached" and
//! a rerun repairs it; an extracted dataset tree that differs from its archive is named by
//! `verify` and refused by `run`; a fetched file without a published digest is pinned by its
//! first verified download, and a different one is refused until `repro fetch --repin`.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;

use crate::common::{PIPELINE, Project, flip_byte, ok, text};

/// Every object of every record: sha256 → (owning run ids, size).
fn objects(p: &Project) -> BTreeMap<String, (BTreeSet<String>, u64)> {
    let mut out: BTreeMap<String, (BTreeSet<String>, u64)> = BTreeMap::new();
    for r in p.records() {
        for o in r["outputs"].as_object().unwrap().values() {
            let e = out
                .entry(o["sha256"].as_str().unwrap().to_string())
                .or_default();
            e.0.insert(r["run_id"].as_str().unwrap().to_string());
            e.1 = o["size"].as_u64().unwrap();
        }
    }
    out
}

fn ran(t: &str) -> usize {
    t.lines()
        .find_map(|l| l.strip_prefix("profile smoke: "))
        .and_then(|r| r.split(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no summary line in:\n{t}"))
}

/// The record of the report `repro report` printed: "report (KEY12, …".
fn report_record(p: &Project, out: &str) -> serde_json::Value {
    let prefix = out
        .lines()
        .find_map(|l| l.strip_prefix("report ("))
        .map(|r| &r[..12])
        .unwrap_or_else(|| panic!("no report line in:\n{out}"));
    p.records()
        .into_iter()
        .find(|r| r["key"].as_str().is_some_and(|k| k.starts_with(prefix)))
        .unwrap_or_else(|| panic!("no record of report {prefix}"))
}

/// Pick `n` objects spread over the sorted list (deterministic), from runs, dataset and report.
fn pick(all: &BTreeMap<String, (BTreeSet<String>, u64)>, n: usize) -> Vec<String> {
    let keys: Vec<&String> = all.keys().collect();
    (0..n).map(|i| keys[i * keys.len() / n].clone()).collect()
}

#[test]
fn corrupt_and_truncated_objects_are_rebuilt_and_equal_the_lock() {
    let p = Project::new(PIPELINE);
    ok(p.smoke(&["--quiet"]));
    ok(p.run(&["lock", "--profile", "smoke", "--device", "cpu"]));
    ok(p.run(&["report", "--profile", "smoke", "--device", "cpu"]));
    let before = objects(&p);
    // Run and dataset outputs first; the report's own objects are damaged below, once it has
    // been rendered from the rebuilt runs (whose new records re-key it).
    let of_runs: BTreeMap<String, (BTreeSet<String>, u64)> = before
        .iter()
        .filter(|(_, (owners, _))| owners.iter().any(|o| o != "report"))
        .map(|(s, v)| (s.clone(), v.clone()))
        .collect();
    let chosen = pick(&of_runs, 6);
    let owners: BTreeSet<String> = chosen
        .iter()
        .flat_map(|s| before[s].0.iter().cloned())
        .collect();
    assert!(owners.len() >= 3, "{owners:?}");
    for (i, sha) in chosen.iter().enumerate() {
        let size = before[sha].1 as usize;
        if i % 3 == 2 {
            // Truncated (a partial copy): a different size.
            let path = p.object(sha);
            flip_byte(&path, 0);
            let f = std::fs::OpenOptions::new().write(true).open(&path).unwrap();
            f.set_len(size as u64 / 2).unwrap();
        } else {
            flip_byte(&p.object(sha), size / 2); // same size
        }
    }

    // Nothing damaged is cached: plan says so, run --no-repair refuses and lists them.
    let t = ok(p.run(&["plan", "--profile", "smoke", "--device", "cpu"]));
    assert!(t.contains("corrupt"), "{t}");
    let o = p.smoke(&["--no-repair"]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    let t = text(&o);
    for run in owners.iter().filter(|r| r.starts_with("small/")) {
        assert!(
            t.contains(&format!("failed: {run}: cached run")),
            "{run}:\n{t}"
        );
    }
    for sha in &chosen {
        assert!(
            p.object(sha).exists(),
            "--no-repair must leave objects in place"
        );
    }

    // A plain run rebuilds exactly the owners (the dataset regenerates in place) and moves the
    // damaged copies to quarantine, naming each with its owners.
    let t = ok(p.smoke(&[]));
    let trained: BTreeSet<&String> = owners.iter().filter(|r| r.starts_with("small/")).collect();
    // The runs rebuilt, from their "[i/n] RUN running (key): why" lines.
    let rebuilt: BTreeSet<String> = t
        .lines()
        .filter_map(|l| {
            let (run, rest) = l.split_once("] ")?.1.split_once(' ')?;
            rest.starts_with("running").then(|| run.to_string())
        })
        .collect();
    assert_eq!(ran(&t), rebuilt.len(), "{t}");
    assert!(
        rebuilt.iter().all(|r| trained.contains(r)),
        "{rebuilt:?} ⊄ {trained:?}\n{t}"
    );
    // Every damaged run output is rebuilt once: by its run, or, for an object several runs
    // share (one seed's init weights under two schedules), by whichever of them runs first;
    // the others then find it intact and stay cached.
    for sha in &chosen {
        let runs: Vec<&String> = before[sha]
            .0
            .iter()
            .filter(|r| r.starts_with("small/"))
            .collect();
        assert!(
            runs.is_empty() || runs.iter().any(|r| rebuilt.contains(*r)),
            "{sha} (owned by {runs:?}) was not rebuilt:\n{t}"
        );
    }
    assert!(t.contains("moved to") && t.contains("(owned by "), "{t}");
    let quarantined = || {
        std::fs::read_dir(p.store().join("quarantine/objects"))
            .unwrap()
            .count()
    };
    assert_eq!(quarantined(), chosen.len(), "{t}");
    assert_eq!(
        objects(&p),
        before,
        "the rebuilt runs' outputs are the same bytes"
    );

    // The report, rendered from the rebuilt runs, then damaged: rendering it again moves the
    // damaged copies aside and writes them afresh.
    let t = ok(p.run(&["report", "--profile", "smoke", "--device", "cpu"]));
    let report = report_record(&p, &t);
    let mut damaged: Vec<String> = report["outputs"]
        .as_object()
        .unwrap()
        .values()
        .map(|o| o["sha256"].as_str().unwrap().to_string())
        .filter(|s| objects(&p)[s].0.iter().all(|o| o == "report"))
        .collect();
    damaged.sort();
    damaged.dedup();
    let damaged = [damaged[0].clone(), damaged[damaged.len() - 1].clone()];
    let good: Vec<Vec<u8>> = damaged
        .iter()
        .map(|s| std::fs::read(p.object(s)).unwrap())
        .collect();
    for sha in &damaged {
        flip_byte(&p.object(sha), 0);
    }
    let t = ok(p.run(&["report", "--profile", "smoke", "--device", "cpu"]));
    assert!(
        !t.contains("(cached)") && t.contains(&report["key"].as_str().unwrap()[..12]),
        "a damaged report must be rendered again under its key:\n{t}"
    );
    assert_eq!(quarantined(), chosen.len() + 2, "{t}");
    for (sha, bytes) in damaged.iter().zip(&good) {
        assert_eq!(&std::fs::read(p.object(sha)).unwrap(), bytes, "{sha}");
    }

    let t = ok(p.run(&["verify", "--profile", "smoke"]));
    assert!(t.contains("all match"), "{t}");
    let t = ok(p.smoke(&[]));
    assert!(t.contains("0 ran, 4 cached"), "{t}");
}

#[test]
fn a_forced_rerun_repairs_an_object_in_place_and_verify_flag_rehashes() {
    let p = Project::new(PIPELINE);
    ok(p.smoke(&["--quiet"]));
    let run = "small/schedule=early,seed=1";
    let rec = p.record(run);
    let sha = rec["outputs"]["final.safetensors"]["sha256"]
        .as_str()
        .unwrap();
    let path = p.object(sha);
    let good = std::fs::read(&path).unwrap();
    flip_byte(&path, good.len() / 3);
    ok(p.smoke(&["--force", run]));
    assert_eq!(
        std::fs::read(&path).unwrap(),
        good,
        "the rerun left the damage"
    );
    // `--verify` re-hashes everything (and finds all intact).
    let t = ok(p.smoke(&["--verify"]));
    assert!(t.contains("0 ran, 4 cached"), "{t}");
}

fn tree_file(p: &Project) -> PathBuf {
    let ds = p.path().join("datasets/cifar10");
    let tree = std::fs::read_dir(&ds)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .find(|p| p.join(".manifest.json").exists())
        .expect("an extracted tree with a manifest");
    tree.join("cifar-10-batches-bin/data_batch_1.bin")
}

#[test]
fn a_changed_extracted_dataset_file_is_named_and_refused() {
    let p = Project::new(PIPELINE);
    ok(p.smoke(&["--quiet"]));
    let t = ok(p.run(&["verify"]));
    assert!(!t.contains(" 0 extracted files"), "{t}");
    let file = tree_file(&p);
    flip_byte(&file, 100);
    let o = p.run(&["verify"]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    let tree_name = file
        .parent()
        .unwrap()
        .parent()
        .unwrap()
        .file_name()
        .unwrap();
    let named = format!(
        "{}/cifar-10-batches-bin/data_batch_1.bin: sha256",
        tree_name.to_string_lossy()
    );
    assert!(text(&o).contains(&named), "{}", text(&o));
    let records_before = p.records().len();
    let o = p.smoke(&["--force"]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    let t = text(&o);
    assert!(
        t.contains("refusing to train") && t.contains("cifar-10-batches-bin/data_batch_1.bin"),
        "{t}"
    );
    assert!(
        !t.contains("running ("),
        "a run started on a damaged tree:\n{t}"
    );
    assert_eq!(p.records().len(), records_before);
    // A file added to the tree is refused too; removing the tree re-extracts it.
    let tree = file.parent().unwrap().parent().unwrap().to_path_buf();
    std::fs::write(tree.join("extra.bin"), b"x").unwrap();
    let o = p.run(&["verify"]);
    assert!(text(&o).contains("extra.bin: added"), "{}", text(&o));
    std::fs::remove_dir_all(&tree).unwrap();
    ok(p.smoke(&["--quiet"]));
    ok(p.run(&["verify"]));
}

/// A pipeline whose `cifar10` is fetched with no digest in pipeline.yaml (read by `small`), and
/// whose `cifar10g` is generated (read by `other`); profile `gen` generates the file to serve.
const UNPINNED: &str = r#"version: 1
salt: test
datasets:
  cifar10:
    format: cifar10-binary
    files:
      - name: cifar-10-binary.tar.gz
        urls: [http://127.0.0.1:9/unreachable.tar.gz]
    generate:
      generator: cifar10
      params: {train_per_class: 10, test_per_class: 4, seed: 0}
  cifar10g:
    format: cifar10-binary
    files:
      - name: cifar-10-binary.tar.gz
    generate:
      generator: cifar10
      params: {train_per_class: 10, test_per_class: 4, seed: 5}
experiments:
  small:
    kind: vision
    datasets: [cifar10]
    determinism: bitwise
    params: {model: small_cnn, width: 0.125, epochs: 1, batch_size: 50, lr: 0.05, switch_epoch: 1}
    grid:
      schedule: [none]
      seed: [0]
  other:
    kind: vision
    datasets: [cifar10g]
    determinism: bitwise
    params: {model: small_cnn, width: 0.125, epochs: 1, batch_size: 50, lr: 0.05, switch_epoch: 1}
    grid:
      schedule: [none]
      seed: [0]
profiles:
  smoke:
    threads: 1
    datasets:
      cifar10g: {source: generate}
  gen:
    threads: 1
    datasets:
      cifar10: {source: generate, params: {seed: GENSEED}}
"#;

/// Generate a CIFAR-10 archive with `seed` through profile `gen`; returns its bytes.
fn generated_archive(p: &Project, seed: u64) -> Vec<u8> {
    std::fs::write(
        p.path().join("pipeline.yaml"),
        UNPINNED.replace("GENSEED", &seed.to_string()),
    )
    .unwrap();
    ok(p.run(&[
        "run",
        "--profile",
        "gen",
        "--device",
        "cpu",
        "--quiet",
        "cifar10",
    ]));
    let sha = p
        .records()
        .into_iter()
        .filter(|r| r["run_id"] == "dataset:cifar10")
        .find(|r| r["manifest"]["params"]["seed"] == seed)
        .expect("generated record")["outputs"]["cifar-10-binary.tar.gz"]["sha256"]
        .as_str()
        .unwrap()
        .to_string();
    std::fs::read(p.object(&sha)).unwrap()
}

fn keys(p: &Project) -> BTreeMap<String, String> {
    let t = ok(p.run(&["plan", "--profile", "smoke", "--device", "cpu", "--json"]));
    t.lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .map(|v| {
            (
                v["run"].as_str().unwrap().to_string(),
                v["key"].as_str().unwrap_or("").to_string(),
            )
        })
        .collect()
}

fn sha256(b: &[u8]) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(b))
}

#[test]
fn an_unpinned_file_is_pinned_by_its_first_download_until_repinned() {
    let p = Project::new(UNPINNED);
    let (a, b) = (generated_archive(&p, 1), generated_archive(&p, 2));
    std::fs::write(
        p.path().join("pipeline.yaml"),
        UNPINNED.replace("GENSEED", "0"),
    )
    .unwrap();
    let mirror = p.path().join("mirror");
    std::fs::create_dir_all(&mirror).unwrap();
    let served = mirror.join("cifar-10-binary.tar.gz");
    std::fs::write(&served, &a).unwrap();
    let m = mirror.to_str().unwrap();

    // No key before the first verified download; afterwards the lock's sha256 keys the runs.
    let t = ok(p.run(&["plan", "--profile", "smoke", "--device", "cpu"]));
    assert!(
        t.contains("dataset cifar10 not generated or fetched yet"),
        "{t}"
    );
    ok(p.smoke(&["--quiet", "--mirror", m]));
    let lock = std::fs::read_to_string(p.path().join("pipeline.lock")).unwrap();
    assert!(lock.contains(&sha256(&a)), "{lock}");
    let first = keys(&p);

    // Upstream now serves another file, and the local copy was replaced: refused, quarantined,
    // both digests printed; nothing runs on it.
    std::fs::write(&served, &b).unwrap();
    let local = p.path().join("datasets/cifar10/cifar-10-binary.tar.gz");
    std::fs::write(&local, &b).unwrap();
    let o = p.smoke(&["--force", "--mirror", m]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    let t = text(&o);
    assert!(t.contains(&sha256(&a)) && t.contains(&sha256(&b)), "{t}");
    assert!(t.contains("--repin cifar10"), "{t}");
    assert!(!local.exists(), "the refused file must leave datasets/");
    let q = p.store().join("quarantine");
    let rejected: Vec<PathBuf> = crate::common::files_under(&q);
    assert!(
        rejected.iter().any(|f| std::fs::read(f).unwrap() == b),
        "not quarantined: {rejected:?}"
    );
    let o = p.run(&["fetch", "cifar10", "--mirror", m]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert_eq!(keys(&p), first, "a refused file changed keys");

    // --repin accepts it: exactly the runs that read cifar10 get new keys.
    let t = ok(p.run(&["fetch", "--repin", "cifar10", "--mirror", m]));
    assert!(t.contains(&format!("repinned (was {})", sha256(&a))), "{t}");
    let second = keys(&p);
    for (id, key) in &first {
        if id.starts_with("small/") {
            assert_ne!(&second[id], key, "{id} reads cifar10: its key must change");
        } else {
            assert_eq!(&second[id], key, "{id} does not read cifar10");
        }
    }
    let t = ok(p.run(&["plan", "--profile", "smoke", "--device", "cpu"]));
    assert!(t.contains("input dataset:cifar10 changed"), "{t}");
}

#[test]
fn an_unusable_store_lock_is_named() {
    use std::os::unix::fs::PermissionsExt;
    let p = Project::new(PIPELINE);
    ok(p.run(&["plan", "--profile", "smoke", "--device", "cpu"])); // makes the store
    // A read-only store: root ignores permissions, so there the lock path is made unopenable.
    let root = unsafe { libc::geteuid() } == 0;
    let locks = p.store().join("locks");
    if root {
        std::fs::create_dir_all(locks.join("store.lock")).unwrap();
    } else {
        std::fs::set_permissions(&locks, std::fs::Permissions::from_mode(0o555)).unwrap();
    }
    let o = p.smoke(&["--quiet"]);
    if !root {
        std::fs::set_permissions(&locks, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(
        text(&o).contains("artifacts/locks/store.lock"),
        "{}",
        text(&o)
    );
}
