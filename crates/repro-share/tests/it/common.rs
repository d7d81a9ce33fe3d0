//! A store holding a few finished runs with real objects, and its publication.

use std::collections::BTreeMap;
use std::path::Path;

use repro_core::store::Store;
use repro_core::store::key::Manifest;
use repro_core::store::published::{FORMAT, Publication};
use repro_core::store::record::RunRecord;
use serde_json::{Map, json};

/// A store at `root` with `runs` finished runs of profile `smoke`, each with two outputs: a
/// `metrics.jsonl` of a few bytes and a `weights.bin` of `size` seeded bytes (all distinct), a
/// pipeline.yaml object, and the publication naming them.
pub fn store_with_runs(root: &Path, runs: usize, size: usize) -> (Store, Publication) {
    let store = Store::open(root).unwrap();
    let scratch = tempfile::tempdir_in(root).unwrap();
    let put = |name: &str, bytes: &[u8]| {
        let f = scratch.path().join(name);
        std::fs::write(&f, bytes).unwrap();
        store.put_file(&f).unwrap()
    };
    let mut ids = BTreeMap::new();
    for i in 0..runs {
        let run_id = format!("e1/seed={i}");
        let mut params = Map::new();
        params.insert("seed".into(), json!(i));
        let manifest = Manifest {
            salt: "test".into(),
            kind: "vision".into(),
            kind_version: 1,
            params,
            inputs: BTreeMap::new(),
            env: BTreeMap::from([("device".to_string(), json!("cpu"))]),
        };
        let key = manifest.key();
        // Seeded, distinct bytes: an xorshift stream per run.
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15 ^ (i as u64 + 1);
        let weights: Vec<u8> = (0..size)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                x as u8
            })
            .collect();
        let outputs = BTreeMap::from([
            (
                "metrics.jsonl".to_string(),
                put("m", format!("{{\"epoch\": 0, \"run\": {i}}}\n").as_bytes()),
            ),
            ("weights.bin".to_string(), put("w", &weights)),
        ]);
        store
            .write_record(&RunRecord {
                key: key.clone(),
                run_id: run_id.clone(),
                experiment: "e1".into(),
                manifest,
                outputs,
                metrics: Map::new(),
                environment: Map::new(),
                started: "2026-12-06T00:00:00Z".into(),
                finished: "2026-12-06T00:01:00Z".into(),
                seconds: 60.0,
                host: "test".into(),
            })
            .unwrap();
        ids.insert(run_id, key);
    }
    let pipeline = put("pipeline.yaml", b"version: 1\nsalt: test\n");
    let publication = Publication {
        format: FORMAT,
        profile: "smoke".into(),
        runs: ids,
        generated: BTreeMap::new(),
        report: None,
        pipeline,
        lock: None,
        repro: "test".into(),
    };
    (store, publication)
}
