//! Finding pipeline.yaml above the current folder, forgiving targets, and the commands that look
//! at runs: `show`, `checkout`, `tidy` and `dag`.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use crate::common::{PIPELINE, Project, ok, text};
use repro_core::pipeline::kinds;

/// The JSON object `repro show --json` prints.
fn show(p: &Project, run: &str) -> serde_json::Value {
    let t = ok(p.run(&[
        "show",
        "--profile",
        "smoke",
        "--device",
        "cpu",
        "--json",
        run,
    ]));
    serde_json::from_str(t.lines().last().unwrap_or_default()).expect("show --json is JSON")
}

#[test]
fn pipeline_yaml_is_found_above_and_missing_ones_are_named() {
    let p = Project::new(PIPELINE);
    let deeper = p.path().join("notes/deeper");
    std::fs::create_dir_all(&deeper).unwrap();
    let o = p
        .cmd(&[
            "plan",
            "--profile",
            "smoke",
            "--device",
            "cpu",
            "small/seed=1,schedule=early",
        ])
        .current_dir(&deeper)
        .output()
        .unwrap();
    let t = ok(o);
    assert!(t.contains("small/schedule=early,seed=1"), "{t}");
    assert!(t.contains("1 runs"), "only the target: {t}");
    // The store stays beside the pipeline file found.
    assert!(p.store().is_dir());
    assert!(!deeper.join("artifacts").exists());

    let empty = tempfile::tempdir().unwrap();
    if !empty
        .path()
        .ancestors()
        .any(|d| d.join("pipeline.yaml").is_file())
    {
        let o = p.cmd(&["plan"]).current_dir(empty.path()).output().unwrap();
        assert_eq!(o.status.code(), Some(2), "{}", text(&o));
        let t = text(&o);
        assert!(t.contains("no pipeline.yaml in "), "{t}");
        assert!(
            t.contains("or any folder above it (give one with --pipeline FILE)"),
            "{t}"
        );
        assert!(!t.contains(":1:1"), "{t}");
    }
    let o = p.run(&["--pipeline", "nope.yaml", "plan"]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(text(&o).contains("nope.yaml: no such file"), "{}", text(&o));
    assert!(!text(&o).contains(":1:1"), "{}", text(&o));
}

#[test]
fn a_mistyped_target_gets_a_suggestion() {
    let p = Project::new(PIPELINE);
    let o = p.run(&["plan", "--profile", "smoke", "--device", "cpu", "smal"]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(
        text(&o).contains("no target `smal`; did you mean `small`?"),
        "{}",
        text(&o)
    );
    let o = p.run(&["show", "--profile", "smoke", "--device", "cpu", "small"]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(
        text(&o).contains("is an experiment of 4 runs"),
        "{}",
        text(&o)
    );
}

/// The statements of a DOT graph: node ids and edges; panics on any line that is neither.
fn parse_dot(dot: &str) -> (BTreeSet<String>, BTreeSet<(String, String)>) {
    let q = r#""((?:[^"\\]|\\.)*)""#;
    let node = regex::Regex::new(&format!(r"^{q} \[.*\];$")).unwrap();
    let edge = regex::Regex::new(&format!(r"^{q} -> {q};$")).unwrap();
    let mut lines = dot.lines().map(str::trim);
    assert!(
        lines
            .next()
            .is_some_and(|l| l.starts_with("digraph ") && l.ends_with('{')),
        "{dot}"
    );
    let (mut nodes, mut edges, mut depth) = (BTreeSet::new(), BTreeSet::new(), 1);
    for l in lines {
        if let Some(c) = edge.captures(l) {
            edges.insert((c[1].to_string(), c[2].to_string()));
        } else if let Some(c) = node.captures(l) {
            nodes.insert(c[1].to_string());
        } else if l.starts_with("subgraph cluster_") && l.ends_with('{') {
            depth += 1;
        } else if l == "}" {
            depth -= 1;
        } else {
            assert!(
                l.starts_with("rankdir=") || l.starts_with("node [") || l.starts_with("label="),
                "not DOT this writes: {l}"
            );
        }
    }
    assert_eq!(depth, 0, "unbalanced braces:\n{dot}");
    (nodes, edges)
}

#[test]
fn dag_as_dot_has_every_run_dataset_and_edge_of_the_plan() {
    let p = Project::new(&PIPELINE.replace(
        "profiles:",
        "  later:\n    kind: vision\n    datasets: [cifar10]\n    needs: [small]\n    grid: {seed: [0, 1]}\nprofiles:",
    ));
    let dot = ok(p.run(&["dag", "--profile", "smoke", "--dot"]));
    let (nodes, edges) = parse_dot(&dot);
    let plan: Vec<serde_json::Value> =
        ok(p.run(&["plan", "--profile", "smoke", "--device", "cpu", "--json"]))
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
    let mut want_nodes: BTreeSet<String> = ["dataset:cifar10".to_string()].into();
    let mut want_edges = BTreeSet::new();
    for r in &plan {
        let id = r["run"].as_str().unwrap().to_string();
        for d in r["datasets"].as_array().unwrap() {
            want_edges.insert((format!("dataset:{}", d.as_str().unwrap()), id.clone()));
        }
        for u in r["upstream"].as_array().unwrap() {
            want_edges.insert((u.as_str().unwrap().to_string(), id.clone()));
        }
        want_nodes.insert(id);
    }
    assert_eq!(nodes, want_nodes);
    assert_eq!(edges, want_edges);
    assert_eq!(want_nodes.len(), 7);
    assert_eq!(
        edges.len(),
        6 + 2 * 2,
        "each later run reads the small runs of its seed"
    );
    let t = ok(p.run(&["dag", "--profile", "smoke"]));
    assert!(t.contains("later [vision, 2 runs] ← cifar10, small"), "{t}");
    assert!(
        t.contains("seed=0 ← small/schedule=none,seed=0, small/schedule=early,seed=0"),
        "{t}"
    );
}

#[test]
fn a_finished_run_is_shown_checked_out_and_tidied() {
    let p = Project::new(PIPELINE);
    let id = "small/schedule=none,seed=0";
    ok(p.smoke(&["small/seed=0,schedule=none"]));
    let record = p.record(id);

    let s = show(&p, "small/seed=0,schedule=none");
    assert_eq!(s["run"], id);
    assert_eq!(s["state"], "cached");
    assert_eq!(s["key"], record["key"]);
    assert_eq!(s["params"]["schedule"], "none");
    let outputs: BTreeMap<&str, &str> = s["outputs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| (o["name"].as_str().unwrap(), o["path"].as_str().unwrap()))
        .collect();
    assert_eq!(outputs.len(), record["outputs"].as_object().unwrap().len());
    assert!(Path::new(outputs["metrics.jsonl"]).is_file());
    assert!(!s["log_tail"].as_array().unwrap().is_empty(), "{s}");
    let other = show(&p, "small/schedule=early,seed=1");
    assert_eq!(other["state"], "will run");
    assert!(other["outputs"].as_array().unwrap().is_empty());
    let t = ok(p.run(&["show", "--profile", "smoke", "--device", "cpu", id]));
    assert!(t.contains("state       cached"), "{t}");

    // checkout: the files under their names, weights carrying the run, the store untouched.
    let dir = p.path().join("out");
    let dir_arg = dir.to_str().unwrap();
    let checkout = |extra: &[&str]| {
        let mut args = vec![
            "checkout",
            "--profile",
            "smoke",
            "--device",
            "cpu",
            id,
            dir_arg,
        ];
        args.extend_from_slice(extra);
        p.run(&args)
    };
    ok(checkout(&[]));
    let metrics = std::fs::read(dir.join("metrics.jsonl")).unwrap();
    assert_eq!(
        metrics,
        std::fs::read(p.output(id, "metrics.jsonl")).unwrap()
    );
    let weights = std::fs::read(dir.join("final.safetensors")).unwrap();
    let (_, meta) = safetensors::SafeTensors::read_metadata(&weights).unwrap();
    let meta = meta.metadata().clone().unwrap();
    assert_eq!(meta["repro.run_id"], id);
    assert_eq!(meta["repro.key"], record["key"].as_str().unwrap());
    assert_eq!(meta["repro.kind"], "vision");
    let params: serde_json::Value = serde_json::from_str(&meta["repro.params"]).unwrap();
    assert_eq!(params["seed"], 0);
    let stored = std::fs::read(p.output(id, "final.safetensors")).unwrap();
    assert_ne!(stored, weights);
    assert_eq!(
        safetensors::SafeTensors::read_metadata(&stored)
            .unwrap()
            .1
            .metadata(),
        &None,
        "the store object stays as the worker wrote it"
    );
    assert!(ok(checkout(&[])).contains("metrics.jsonl: up to date"));
    std::fs::remove_file(dir.join("metrics.jsonl")).unwrap();
    std::fs::write(dir.join("metrics.jsonl"), "mine").unwrap();
    let o = checkout(&[]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(text(&o).contains("--force"), "{}", text(&o));
    assert_eq!(std::fs::read(dir.join("metrics.jsonl")).unwrap(), b"mine");
    ok(checkout(&["--force"]));
    assert_eq!(std::fs::read(dir.join("metrics.jsonl")).unwrap(), metrics);

    // tidy: a row per epoch × metric of the finished run, its values those of metrics.jsonl.
    let csv_path = p.path().join("tidy.csv");
    ok(p.run(&[
        "tidy",
        "--profile",
        "smoke",
        "--device",
        "cpu",
        "--out",
        csv_path.to_str().unwrap(),
    ]));
    let mut reader = csv::Reader::from_path(&csv_path).unwrap();
    assert_eq!(
        reader.headers().unwrap(),
        vec![
            "experiment",
            "run",
            "kind",
            "step_unit",
            "step",
            "metric",
            "value",
            "params"
        ]
    );
    let rows: Vec<csv::StringRecord> = reader.records().map(Result::unwrap).collect();
    assert!(rows.iter().all(|r| &r[1] == id), "only the finished run");
    let vision = kinds::kind("vision").unwrap();
    for row in p.rows(id, "metrics.jsonl") {
        let row = row.as_object().unwrap();
        let epoch = row["epoch"].to_string();
        for m in vision.results.metrics {
            let got: Vec<&csv::StringRecord> = rows
                .iter()
                .filter(|r| r[4] == epoch && &r[5] == m.name)
                .collect();
            match vision.results.value(row, m.name) {
                Some(v) => {
                    assert_eq!(got.len(), 1, "{} at epoch {epoch}", m.name);
                    assert_eq!(got[0][6].parse::<f64>().unwrap(), v, "{}", m.name);
                    assert_eq!(&got[0][3], "epoch");
                }
                None => assert!(got.iter().all(|r| r[6].is_empty()), "{}", m.name),
            }
        }
    }
    assert!(rows.iter().any(|r| &r[5] == "test_acc"));
    let params: serde_json::Value = serde_json::from_str(&rows[0][7]).unwrap();
    assert_eq!(params["schedule"], "none");
}
