//! `scripts/gpu-check.sh --device cpu`: the GPU check's dry path runs every step of the real one
//! (benchmark rows, a ResNet-18 epoch through `repro run`, 1/2/4 runs at once, TFLOP/s) at tiny
//! sizes, and its tables hold what the steps measured.

use std::path::Path;
use std::process::Command;

fn gpu_check(args: &[&str]) -> std::process::Output {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    Command::new("bash")
        .arg(root.join("scripts/gpu-check.sh"))
        .args(args)
        .env("REPRO_PYTHON", repro_testkit::python())
        .output()
        .expect("bash runs")
}

#[test]
fn dry_path_measures_every_step() {
    let out = tempfile::tempdir().unwrap();
    let o = gpu_check(&[
        "--device",
        "cpu",
        "--repeats",
        "1",
        "--out",
        out.path().to_str().unwrap(),
    ]);
    let log = crate::common::ok(o);
    let md = std::fs::read_to_string(out.path().join("gpu-check.md")).expect("gpu-check.md");
    let json: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(out.path().join("gpu-check.json")).expect("gpu-check.json"),
    )
    .unwrap();

    // The benchmark rows: every group measured, each ratio the quotient of its two sides.
    for group in ["vision", "lm", "mt", "optim", "rl", "fuse"] {
        let rows = json["bench"][group]
            .as_array()
            .unwrap_or_else(|| panic!("{group}: {log}"));
        assert!(!rows.is_empty(), "{group}");
        for r in rows {
            let (ours, theirs) = (
                r["repro"].as_f64().unwrap(),
                r["baseline"].as_f64().unwrap(),
            );
            assert!(ours > 0.0 && theirs > 0.0, "{r}");
            let ratio = r["ratio_median"].as_f64().unwrap();
            // Times and memory are better lower: their ratios are baseline ÷ ours.
            let expect = if r["unit"] == "ms" || r["unit"] == "MiB" {
                theirs / ours
            } else {
                ours / theirs
            };
            assert!((ratio - expect).abs() < 1e-9 * expect, "{r}");
        }
    }
    // The epoch: two epochs of one real run, timed by the trainer.
    let epoch = &json["epoch"];
    assert_eq!(
        epoch["epoch_seconds"].as_array().unwrap().len(),
        2,
        "{epoch}"
    );
    assert!(epoch["images_per_s"][1].as_f64().unwrap() > 0.0);
    // Runs at once: 1, 2 and 4, each total the sum of its runs.
    for (n, runs) in [("2", 2), ("4", 4)] {
        let c = &json["concurrent"][n];
        let per: Vec<f64> = c["per_run"]
            .as_array()
            .unwrap()
            .iter()
            .map(|x| x.as_f64().unwrap())
            .collect();
        assert_eq!(per.len(), runs, "{c}");
        let total = c["total_images_per_s"].as_f64().unwrap();
        assert!(
            (total - per.iter().sum::<f64>()).abs() < 1e-6 * total,
            "{c}"
        );
    }
    // FLOPs per training image of ResNet-18 at width 1/8, counted by PyTorch: forward + backward
    // is about 3× the forward's 2·MACs, far from zero and from the full width's ~1.7 GFLOP.
    let flops = json["train_flops_per_image"].as_f64().unwrap();
    assert!(flops > 1e7 && flops < 2e8, "{flops}");
    for heading in [
        "## Benchmark rows on cpu",
        "## One paper-profile epoch of ResNet-18",
        "## Runs at once on one device",
        "## Achieved TFLOP/s",
    ] {
        assert!(md.contains(heading), "{heading} missing:\n{md}");
    }
}

#[test]
fn bad_arguments_are_refused_with_the_valid_ones() {
    let o = gpu_check(&["--device", "tpu"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        crate::common::text(&o).contains("expected cuda or cpu, got 'tpu'"),
        "{}",
        crate::common::text(&o)
    );
    let o = gpu_check(&["--bogus"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(crate::common::text(&o).contains("unknown argument '--bogus'"));
}
