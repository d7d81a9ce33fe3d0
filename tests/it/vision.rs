//! End to end on generated data: the `vision` stage's metrics, checkpoints and norm statistics
//! under each weight-decay schedule, the `sharpness` stage on their final checkpoints, and the
//! Tiny-ImageNet folder format through DenseNet-121.

use crate::common::{Project, ok};
use serde_json::Value;

const PIPELINE: &str = r#"version: 1
salt: test
datasets:
  cifar10:
    format: cifar10-binary
    files: [{name: cifar-10-binary.tar.gz, md5: c32a1d4ab5d03f1284b67883e8d87530}]
    generate: {generator: cifar10, params: {train_per_class: 12, test_per_class: 4, seed: 0}}
  tiny:
    format: tinyimagenet-folder
    files: [{name: tiny-imagenet-200.zip, md5: 90528d7ca1a48142e341f4ef8d21d0de}]
    extract: zip
    generate:
      generator: tinyimagenet
      params: {classes: 4, train_per_class: 6, val_per_class: 2, test_images: 2, seed: 0}
experiments:
  e1:
    kind: vision
    datasets: [cifar10]
    determinism: bitwise
    params: {model: resnet18, width: 0.0625, epochs: 3, batch_size: 40, lr: 0.05, switch_epoch: 2}
    grid: {schedule: [none, early]}
  e3:
    kind: sharpness
    datasets: [cifar10]
    needs: [e1]
    params: {subset: 60, hessian_iters: 4, trace_probes: 3, ascent_steps: 2, chunk: 30}
  tiny:
    kind: vision
    datasets: [tiny]
    params: {model: densenet121, width: 0.125, epochs: 1, batch_size: 8, crop_pad: 8}
profiles:
  smoke:
    threads: 1
    datasets:
      cifar10: {source: generate}
      tiny: {source: generate}
"#;

/// Every number a kind declares for claims and the report is in each row its runs write (a
/// declaration that drifts from the writer would leave claims reading nothing).
fn has_declared_metrics(kind: &str, rows: &[Value]) {
    let results = &repro_core::pipeline::kinds::kind(kind).unwrap().results;
    for row in rows {
        for m in results.metrics {
            let v = results.value(row.as_object().unwrap(), m.name);
            assert!(v.is_some(), "{kind} row lacks `{}`: {row}", m.name);
        }
    }
}

fn f(v: &Value) -> f64 {
    v.as_f64().unwrap_or_else(|| panic!("not a number: {v}"))
}

#[test]
fn schedules_norms_checkpoints_and_sharpness() {
    let p = Project::new(PIPELINE);
    let t = ok(p.smoke(&["--quiet"]));
    assert!(t.contains("4 ran, 0 cached, 0 failed"), "{t}");

    // Weight decay follows the schedule; Tₛ = 2 of 3 epochs.
    let early = p.rows("e1/schedule=early", "metrics.jsonl");
    let none = p.rows("e1/schedule=none", "metrics.jsonl");
    let wd: Vec<bool> = early
        .iter()
        .map(|r| r["wd_on"].as_bool().unwrap())
        .collect();
    assert_eq!(wd, [true, true, false]);
    assert!(none.iter().all(|r| r["wd_on"] == false));
    has_declared_metrics("vision", &early);
    for run in [&early, &none] {
        for r in run.iter() {
            // Every BN-preceded conv of ResNet-18 is tracked (20 of them).
            let layers = r["scale_invariant"].as_array().unwrap();
            assert_eq!(layers.len(), 20, "{r}");
            let sq: f64 = layers.iter().map(|l| f(&l["norm"]).powi(2)).sum();
            assert!((sq - f(&r["si_norm_sq"])).abs() < 1e-3 * sq);
            let acc = f(&r["test_acc"]);
            assert!((0.0..=1.0).contains(&acc));
        }
        // The series chains: each epoch's measured growth is the change of Σ‖w‖².
        for w in run.windows(2) {
            let d = f(&w[1]["si_norm_sq"]) - f(&w[0]["si_norm_sq"]);
            assert!((d - f(&w[1]["si_growth_measured"])).abs() < 1e-3 * f(&w[1]["si_norm_sq"]));
        }
    }
    // Same seed, same initial weights; without WD the scale-invariant norm only grows, and with
    // WD in the first epochs it ends below.
    assert_eq!(
        std::fs::read(p.output("e1/schedule=early", "init.safetensors")).unwrap(),
        std::fs::read(p.output("e1/schedule=none", "init.safetensors")).unwrap()
    );
    assert!(none.iter().all(|r| f(&r["si_growth_measured"]) > 0.0));
    assert!(f(&early[2]["si_norm_sq"]) < f(&none[2]["si_norm_sq"]));
    // Checkpoints: the switch epoch only where Tₛ falls inside the run's schedule.
    let rec = p.record("e1/schedule=early");
    for name in [
        "init.safetensors",
        "switch.safetensors",
        "final.safetensors",
    ] {
        assert!(
            rec["outputs"][name]["size"].as_u64().unwrap() > 10_000,
            "{name}"
        );
    }

    // Sharpness: one row per upstream run, with the metrics E3 needs.
    let sh = p.rows("e3", "sharpness.jsonl");
    has_declared_metrics("sharpness", &sh);
    let ids: Vec<&str> = sh.iter().map(|r| r["run_id"].as_str().unwrap()).collect();
    assert_eq!(ids, ["e1/schedule=early", "e1/schedule=none"]);
    for r in &sh {
        for k in [
            "lambda_max",
            "trace",
            "eps_sharpness",
            "frobenius_sum",
            "log_spectral_product",
            "dist_init",
            "s_inv",
        ] {
            assert!(f(&r[k]).is_finite(), "{k} in {r}");
        }
        assert!(f(&r["dist_init"]) > 0.0 && f(&r["s_inv"]) > 0.0, "{r}");
        assert_eq!(r["s_inv_layers"].as_object().unwrap().len(), 20);
        let gap = f(&r["train_acc"]) - f(&r["test_acc"]);
        assert!((gap - f(&r["gen_gap_acc"])).abs() < 1e-12);
    }

    // Tiny-ImageNet: 64×64 JPEGs decoded through the folder layout into DenseNet-121.
    let tiny = p.rows("tiny", "metrics.jsonl");
    assert_eq!(tiny.len(), 1);
    assert!(f(&tiny[0]["train_loss"]).is_finite());
}
