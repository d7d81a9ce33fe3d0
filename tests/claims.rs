//! Claim checks on contrived observations: checks that must pass do, checks that must fail do,
//! undecided ones say how many seeds would decide them, and profiles or missing runs that
//! cannot decide a check say so instead of giving a verdict.

use std::path::Path;

use repro::pipeline::spec::Pipeline;
use repro::pipeline::stage;
use repro::report::observe::{ExperimentData, Inputs, Observation, Source};
use repro::report::verdict::{CheckResult, Verdict, evaluate, summarize_claims};
use serde_json::{Map, Value, json};

const PIPELINE: &str = r#"
datasets:
  cifar10:
    format: cifar10-binary
    files: [{name: c.tar.gz, urls: ["http://127.0.0.1:9/c.tar.gz"]}]
experiments:
  e1:
    kind: vision
    datasets: [cifar10]
    grid: {schedule: [none, early], seed: [0, 1, 2]}
  noise:
    kind: vision
    datasets: [cifar10]
    grid: {label_noise: [0.0, 0.5, 1.0], seed: [0, 1, 2]}
profiles:
  paper: {}
  smoke: {}
claims:
  - {id: lower, claim: C2, text: early below none, experiments: [e1], metric: weight_norm@final,
     test: {less: {a: {schedule: early}, b: {schedule: none}}}}
  - {id: higher, claim: C2, text: early above none, experiments: [e1], metric: weight_norm@final,
     test: {greater: {a: {schedule: early}, b: {schedule: none}}}}
  - {id: same-acc, claim: C1, text: about equal, experiments: [e1], metric: test_acc@final,
     test: {equivalent: {a: {schedule: early}, b: {schedule: none}, margin: 0.01}}}
  - {id: tail, claim: C3, text: tail mean, experiments: [e1], metric: "eff_lr_mean@tail:0.5",
     test: {greater: {a: {schedule: early}, b: {schedule: none}}}}
  - {id: trend, claim: C6, text: grows with noise, experiments: [noise], metric: weight_norm@final,
     test: {increasing: {along: label_noise}}}
  - {id: paper-only, claim: C1, text: decided at paper, experiments: [e1], metric: test_acc@final,
     test: {less: {a: {schedule: early}, b: {schedule: none}}}, decide_at: [paper]}
  - {id: later, claim: C7, text: needs NLP, pending: not in the pipeline yet}
"#;

fn pipeline() -> Pipeline {
    Pipeline::parse(Path::new("test.yaml"), PIPELINE).unwrap_or_else(|e| panic!("{e}"))
}

/// An observation with per-epoch rows of the given metric values (one row per value).
fn obs(coords: Value, seed: i64, epochs: &[(&str, Vec<f64>)]) -> Observation {
    let n = epochs[0].1.len();
    let rows = (0..n)
        .map(|i| {
            let mut r = Map::new();
            r.insert("epoch".into(), json!(i));
            for (k, v) in epochs {
                r.insert(k.to_string(), json!(v[i]));
            }
            r
        })
        .collect();
    let mut coords = coords.as_object().unwrap().clone();
    coords.insert("seed".into(), json!(seed));
    Observation {
        run_id: format!("run-{seed}"),
        coords,
        seed,
        rows,
        source: Source {
            run_key: "k".repeat(64),
            file: "metrics.jsonl".into(),
            sha256: format!("{seed:064}"),
        },
    }
}

fn experiment(name: &str, axes: &[&str], observations: Vec<Observation>) -> ExperimentData {
    ExperimentData {
        name: name.into(),
        description: None,
        kind: stage::kind("vision").unwrap(),
        planned: observations.len(),
        observations,
        missing: Vec::new(),
        arm_axes: axes.iter().map(|s| s.to_string()).collect(),
    }
}

/// e1 with norms `early` and `none` per seed (accuracies equal up to `acc_gap`).
fn e1(early: [f64; 3], none: [f64; 3], acc_gap: f64) -> ExperimentData {
    let mut o = Vec::new();
    for s in 0..3 {
        let acc = 0.9 + 0.001 * s as f64;
        o.push(obs(
            json!({"schedule": "early"}),
            s,
            &[
                ("weight_norm", vec![1.0, early[s as usize]]),
                ("test_acc", vec![0.5, acc + acc_gap]),
                ("eff_lr_mean", vec![100.0, 2.0 + s as f64 * 0.01]),
            ],
        ));
        o.push(obs(
            json!({"schedule": "none"}),
            s,
            &[
                ("weight_norm", vec![1.0, none[s as usize]]),
                ("test_acc", vec![0.5, acc]),
                ("eff_lr_mean", vec![0.0, 1.0 + s as f64 * 0.01]),
            ],
        ));
    }
    experiment("e1", &["schedule"], o)
}

fn noise(slope: f64) -> ExperimentData {
    let mut o = Vec::new();
    for s in 0..3 {
        for (i, p) in [0.0, 0.5, 1.0].iter().enumerate() {
            let norm = 10.0 + slope * i as f64 + 0.01 * s as f64;
            o.push(obs(
                json!({"label_noise": p}),
                s,
                &[("weight_norm", vec![norm])],
            ));
        }
    }
    experiment("noise", &["label_noise"], o)
}

fn run(profile: &str, exps: Vec<ExperimentData>) -> Vec<CheckResult> {
    let inputs = Inputs {
        profile: profile.into(),
        experiments: exps,
        digests: Default::default(),
    };
    evaluate(&pipeline(), &inputs)
}

fn verdict(r: &[CheckResult], id: &str) -> Verdict {
    r.iter().find(|c| c.id == id).unwrap().verdict
}

#[test]
fn clear_effects_decide_both_ways() {
    let r = run(
        "paper",
        vec![e1([5.0, 5.2, 4.9], [9.0, 9.3, 8.8], 0.0), noise(1.0)],
    );
    assert_eq!(verdict(&r, "lower"), Verdict::Reproduced);
    // The contrived opposite claim must fail.
    assert_eq!(verdict(&r, "higher"), Verdict::NotReproduced);
    assert_eq!(verdict(&r, "same-acc"), Verdict::Reproduced);
    // Tail mean over the last half (one epoch) sees 2.0 vs 1.0, not the first epoch's 100 vs 0.
    assert_eq!(verdict(&r, "tail"), Verdict::Reproduced);
    assert_eq!(verdict(&r, "trend"), Verdict::Reproduced);
    // Equal accuracies: no evidence either way, and no number of seeds would help.
    let eq = r.iter().find(|c| c.id == "paper-only").unwrap();
    assert_eq!((eq.verdict, eq.seeds_needed), (Verdict::Inconclusive, None));
    assert_eq!(verdict(&r, "later"), Verdict::NotRun);
    let lower = r.iter().find(|c| c.id == "lower").unwrap();
    assert_eq!(lower.seeds, "3+3");
    assert_eq!(
        lower.measured,
        "early 5.033 [4.654, 5.413] vs none 9.033 [8.408, 9.658]; Welch p = 4.335e-5"
    );
    assert!(lower.statistics["p"] < 0.01, "{lower:?}");
    assert_eq!(
        lower.sources.len(),
        3,
        "one metrics file per seed: {lower:?}"
    );
    let claims = summarize_claims(&r);
    let c2 = claims.iter().find(|c| c.claim == "C2").unwrap();
    assert_eq!(
        (c2.verdict, c2.checks, c2.reproduced),
        (Verdict::NotReproduced, 2, 1)
    );
}

#[test]
fn contrived_failures_fail() {
    // Accuracy 5 points apart: "about equal within 1 point" must fail; a falling trend must
    // fail "increases".
    let r = run(
        "paper",
        vec![e1([5.0, 5.2, 4.9], [9.0, 9.3, 8.8], 0.05), noise(-1.0)],
    );
    assert_eq!(verdict(&r, "same-acc"), Verdict::NotReproduced);
    assert_eq!(verdict(&r, "trend"), Verdict::NotReproduced);
}

#[test]
fn noisy_effects_are_inconclusive_with_seeds_needed() {
    let r = run(
        "paper",
        vec![e1([5.0, 9.0, 6.5], [6.0, 9.5, 7.0], 0.0), noise(1.0)],
    );
    let c = r.iter().find(|c| c.id == "lower").unwrap();
    assert_eq!(c.verdict, Verdict::Inconclusive, "{c:?}");
    let n = c.seeds_needed.expect("seeds needed");
    assert!(n > 3, "{n}");
}

#[test]
fn undecidable_profiles_and_missing_runs_give_no_verdict() {
    let r = run(
        "smoke",
        vec![e1([5.0, 5.2, 4.9], [9.0, 9.3, 8.8], 0.0), noise(1.0)],
    );
    let c = r.iter().find(|c| c.id == "paper-only").unwrap();
    assert_eq!(c.verdict, Verdict::NotCheckable);
    assert!(c.note.as_ref().unwrap().contains("decided at: paper"));
    assert!(!c.measured.is_empty(), "the numbers are still shown");

    let mut partial = e1([5.0, 5.2, 4.9], [9.0, 9.3, 8.8], 0.0);
    partial.missing.push("e1/schedule=none,seed=3".into());
    partial.planned += 1;
    let r = run("paper", vec![partial]);
    assert_eq!(verdict(&r, "lower"), Verdict::NotRun);
    // An experiment not in the profile at all.
    let t = r.iter().find(|c| c.id == "trend").unwrap();
    assert_eq!(t.verdict, Verdict::NotRun);
    assert!(t.note.as_ref().unwrap().contains("not part of profile"));
}

#[test]
fn one_seed_is_inconclusive() {
    let mut one = e1([5.0, 5.2, 4.9], [9.0, 9.3, 8.8], 0.0);
    one.observations.retain(|o| o.seed == 0);
    let r = run("paper", vec![one]);
    let c = r.iter().find(|c| c.id == "lower").unwrap();
    assert_eq!(c.verdict, Verdict::Inconclusive);
    assert_eq!(c.seeds, "1+1");
}
