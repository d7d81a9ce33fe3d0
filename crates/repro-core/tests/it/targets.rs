//! Target selection: run ids in any parameter order and value spelling, near-name suggestions
//! for a target that names nothing, and the upward search for pipeline.yaml.

use std::path::{Path, PathBuf};

use repro_core::pipeline::locate::{LocateError, PIPELINE_FILE, locate};
use repro_core::pipeline::plan::Plan;
use repro_core::pipeline::spec::Pipeline;

const PIPELINE: &str = r#"
datasets:
  cifar10: {format: cifar10-binary, files: [{name: c.tar.gz}]}
experiments:
  cifar10_resnet18:
    kind: vision
    datasets: [cifar10]
    grid: {lr: [0.1, 0.05], seed: [0, 1]}
  cifar10_resnet18_sharpness:
    kind: sharpness
    datasets: [cifar10]
    needs: [cifar10_resnet18]
    grid: {seed: [0, 1]}
  cifar100_resnet50:
    kind: vision
    datasets: [cifar10]
    grid: {schedule: [none, early]}
profiles:
  smoke: {}
"#;

fn pipeline() -> Pipeline {
    Pipeline::parse(Path::new("pipeline.yaml"), PIPELINE).unwrap()
}

fn ids(plan: &Plan) -> Vec<&str> {
    plan.runs.iter().map(|r| r.id.as_str()).collect()
}

#[test]
fn a_run_id_matches_in_any_order_and_spelling() {
    let p = pipeline();
    let exact = Plan::resolve(&p, "smoke", &["cifar10_resnet18/lr=0.1,seed=1".into()]).unwrap();
    assert_eq!(ids(&exact), ["cifar10_resnet18/lr=0.1,seed=1"]);
    for spelling in [
        "cifar10_resnet18/seed=1,lr=0.1",
        "cifar10_resnet18/seed=1,lr=0.10",
        "cifar10_resnet18/lr=1e-1,seed=1",
    ] {
        let plan = Plan::resolve(&p, "smoke", &[spelling.into()]).unwrap();
        assert_eq!(ids(&plan), ids(&exact), "{spelling}");
        assert_eq!(
            plan.find(spelling).map(|r| r.id.as_str()),
            Some("cifar10_resnet18/lr=0.1,seed=1")
        );
    }
    // Choice values are strings; a downstream run id pulls in its upstream runs.
    let plan = Plan::resolve(&p, "smoke", &["cifar100_resnet50/schedule=early".into()]).unwrap();
    assert_eq!(ids(&plan), ["cifar100_resnet50/schedule=early"]);
    let plan = Plan::resolve(&p, "smoke", &["cifar10_resnet18_sharpness/seed=0".into()]).unwrap();
    assert_eq!(plan.runs.len(), 3, "{:?}", ids(&plan));
}

#[test]
fn a_near_miss_is_no_match() {
    let p = pipeline();
    let plan = Plan::resolve(&p, "smoke", &[]).unwrap();
    for wrong in [
        "cifar10_resnet18/lr=0.1",                  // an axis missing
        "cifar10_resnet18/lr=0.1,seed=1,seed=1",    // an axis twice
        "cifar10_resnet18/lr=0.1,seed=2",           // no such grid point
        "cifar10_resnet18/lr=0.1,sed=1",            // no such axis
        "cifar100_resnet50/schedule=0.1",           // not a value of the choice
        "cifar10_resnet18_sharpness/lr=0.1,seed=1", // another experiment's point
    ] {
        assert!(plan.find(wrong).is_none(), "{wrong} matched");
        assert!(
            Plan::resolve(&p, "smoke", &[wrong.into()]).is_err(),
            "{wrong}"
        );
    }
}

#[test]
fn a_mistyped_target_gets_the_nearest_names() {
    let p = pipeline();
    let err = |t: &str| {
        Plan::resolve(&p, "smoke", &[t.into()])
            .err()
            .map(|e| e.to_string())
            .unwrap_or_else(|| panic!("{t} was accepted"))
    };
    let e = err("cifar10_resnet81");
    assert!(
        e.starts_with("no target `cifar10_resnet81`; did you mean `cifar10_resnet18`"),
        "{e}"
    );
    // A dataset is a target too.
    assert!(err("cifar01").contains("`cifar10`"), "{}", err("cifar01"));
    // A wrong grid point of a right experiment: its own run ids are suggested.
    let e = err("cifar10_resnet18/lr=0.1,seed=7");
    assert!(e.contains("`cifar10_resnet18/lr=0.1,seed=1`"), "{e}");
    assert!(!e.contains("cifar100"), "{e}");
    // At most three suggestions; nothing near gets the rules instead.
    let suggested = e.split("did you mean").nth(1).unwrap_or_default();
    assert_eq!(suggested.matches("`cifar10_resnet18/").count(), 3, "{e}");
    let e = err("zzz");
    assert!(!e.contains("did you mean"), "{e}");
    assert!(e.contains("run ids `experiment/axis=value,…`"), "{e}");
}

#[test]
fn pipeline_yaml_is_found_in_the_nearest_folder_above() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let deep = root.join("a/b/c");
    std::fs::create_dir_all(&deep).unwrap();
    assert!(matches!(
        locate(None, &deep),
        Err(LocateError::NotFound(at)) if at == deep
    ));
    std::fs::write(root.join(PIPELINE_FILE), "").unwrap();
    assert_eq!(locate(None, &deep).unwrap(), root.join(PIPELINE_FILE));
    std::fs::write(root.join("a").join(PIPELINE_FILE), "").unwrap();
    assert_eq!(
        locate(None, &deep).unwrap(),
        root.join("a").join(PIPELINE_FILE)
    );
    // In the folder itself it keeps its short name, as messages have always shown it.
    assert_eq!(locate(None, root).unwrap(), PathBuf::from(PIPELINE_FILE));

    let missing = root.join("nope.yaml");
    let e = locate(Some(&missing), root).unwrap_err();
    assert_eq!(
        e.to_string(),
        format!("{}: no such file", missing.display())
    );
    assert!(matches!(
        locate(Some(&deep), root),
        Err(LocateError::Folder(_))
    ));
    let none = LocateError::NotFound(deep.clone()).to_string();
    assert_eq!(
        none,
        format!(
            "no pipeline.yaml in {} or any folder above it (give one with --pipeline FILE)",
            deep.display()
        )
    );
}
