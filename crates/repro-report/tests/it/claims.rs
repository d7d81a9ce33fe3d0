//! Claim checks on contrived observations: checks that must pass do, checks that must fail do,
//! undecided ones say how many seeds would decide them, and profiles or missing runs that
//! cannot decide a check say so instead of giving a verdict.

use std::path::Path;

use repro_core::pipeline::claims::Role;
use repro_core::pipeline::kinds;
use repro_core::pipeline::spec::Pipeline;
use repro_report::observe::{ExperimentData, Inputs, Observation, Source, diverged_run};
use repro_report::verdict::{CheckResult, Verdict, evaluate, summarize_claims};
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
  e1_elsewhere:
    kind: vision
    datasets: [cifar10]
    grid: {schedule: [none, early], seed: [0, 1, 2]}
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
  - {id: two-experiments, claim: C9, text: early below none on both, experiments: [e1, e1_elsewhere],
     metric: weight_norm@final, test: {less: {a: {schedule: early}, b: {schedule: none}}}}
"#;

fn pipeline() -> Pipeline {
    Pipeline::parse(Path::new("test.yaml"), PIPELINE).unwrap_or_else(|e| panic!("{e}"))
}

/// An observation with per-epoch rows of the given metric values (one row per value).
fn obs(coords: Value, seed: i64, epochs: &[(&str, Vec<f64>)]) -> Observation {
    let n = epochs[0].1.len();
    let rows: Vec<Map<String, Value>> = (0..n)
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
        diverged: diverged_run(&Map::new(), &rows),
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
        kind: kinds::kind("vision").unwrap(),
        planned: observations.len(),
        observations,
        missing: Vec::new(),
        arm_axes: axes.iter().map(|s| s.to_string()).collect(),
        data: Vec::new(),
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

/// A profile that runs one of a check's experiments decides the check on that one: the line of
/// the experiment outside the profile says so, and its "not run" enters neither the check's
/// verdict nor the claim's. With none of them in the profile the check stays "not run".
#[test]
fn experiments_outside_the_profile_do_not_hold_back_the_verdict() {
    let r = run("paper", vec![e1([5.0, 5.2, 4.9], [9.0, 9.3, 8.8], 0.0)]);
    let lines: Vec<&CheckResult> = r.iter().filter(|c| c.id == "two-experiments").collect();
    assert_eq!(lines.len(), 2);
    assert_eq!(lines[0].verdict, Verdict::Reproduced);
    assert_eq!(
        (lines[1].verdict, lines[1].outside_profile),
        (Verdict::NotRun, true)
    );
    let c9 = summarize_claims(&r)
        .into_iter()
        .find(|c| c.claim == "C9")
        .unwrap();
    assert_eq!(
        (c9.verdict, c9.checks, c9.reproduced),
        (Verdict::Reproduced, 1, 1)
    );
    let table = repro_report::tables::claims_table(&r);
    let row = table
        .rows
        .iter()
        .find(|row| row[0].text() == "two-experiments")
        .unwrap();
    assert_eq!(row[4].text(), "reproduced");
    assert!(
        row[3].text().contains("not in this profile: e1_elsewhere"),
        "{}",
        row[3].text()
    );

    let r = run("paper", vec![noise(1.0)]);
    let c9 = summarize_claims(&r)
        .into_iter()
        .find(|c| c.claim == "C9")
        .unwrap();
    assert_eq!((c9.verdict, c9.checks), (Verdict::NotRun, 2));
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

// ---------------------------------------------------------------------------------------------
// `where`, `tune`, margins and one-sample tests (the Adam claims C7–C10). The vision kind stands
// in for the lm experiment: `schedule: always` plays AdamW, `none` plays Adam+l2, and `lr` ×
// `weight_decay` is the tuned grid.

const GRID: &str = r#"
datasets:
  cifar10:
    format: cifar10-binary
    files: [{name: c.tar.gz, urls: ["http://127.0.0.1:9/c.tar.gz"]}]
experiments:
  adam:
    kind: vision
    datasets: [cifar10]
    grid: {schedule: [none, always], lr: [0.01, 0.1], weight_decay: [0.0, 0.001, 0.01], seed: [0, 1, 2]}
profiles:
  paper: {}
claims:
  - {id: no-where, claim: C7, text: t, experiments: [adam], metric: test_loss@final,
     test: {less: {a: {schedule: always}, b: {schedule: none}}}}
  - {id: where-max, claim: C7, text: t, experiments: [adam], metric: test_loss@final,
     where: {weight_decay: max}, test: {less: {a: {schedule: always}, b: {schedule: none}}}}
  - {id: where-min, claim: C7, text: t, experiments: [adam], metric: test_loss@final,
     where: {weight_decay: min, lr: 0.1}, test: {less: {a: {schedule: always}, b: {schedule: none}}}}
  - {id: tuned, claim: C7, text: t, experiments: [adam], metric: test_loss@final,
     tune: {over: [lr, weight_decay], pick: min},
     test: {less: {a: {schedule: always}, b: {schedule: none}}}}
  - {id: tuned-by, claim: C7, text: t, experiments: [adam], metric: test_acc@final,
     tune: {over: [lr, weight_decay], pick: min, by: test_loss@final},
     test: {greater: {a: {schedule: always}, b: {schedule: none}}}}
  - {id: tuned-max, claim: C7, text: t, experiments: [adam], metric: test_acc@final,
     tune: {over: [lr, weight_decay], pick: max},
     test: {greater: {a: {schedule: always}, b: {schedule: none}}}}
  - {id: region-max, claim: C7, text: t, experiments: [adam], metric: test_acc@final,
     tune: {over: [lr, weight_decay], pick: max, good_within: 0.001},
     test: {greater: {a: {schedule: always}, b: {schedule: none}}}}
  - {id: region, claim: C7, text: t, experiments: [adam], metric: test_loss@final,
     tune: {over: [lr, weight_decay], pick: min, good_within: 0.1},
     test: {greater: {a: {schedule: always}, b: {schedule: none}}}}
  - {id: plain-less, claim: C7, text: t, experiments: [adam], metric: test_loss@final,
     where: {lr: 0.1, weight_decay: 0.0}, test: {less: {a: {schedule: always}, b: {schedule: none}}}}
  - {id: margin-less, claim: C7, text: t, experiments: [adam], metric: test_loss@final,
     where: {lr: 0.1, weight_decay: 0.0},
     test: {less: {a: {schedule: always}, b: {schedule: none}, margin: 0.05}}}
  - {id: plain-greater, claim: C7, text: t, experiments: [adam], metric: test_acc@final,
     where: {lr: 0.1, weight_decay: 0.0},
     test: {greater: {a: {schedule: always}, b: {schedule: none}}}}
  - {id: margin-greater, claim: C7, text: t, experiments: [adam], metric: test_acc@final,
     where: {lr: 0.1, weight_decay: 0.0},
     test: {greater: {a: {schedule: always}, b: {schedule: none}, margin: 0.05}}}
  - {id: share-above, claim: C10, text: t, experiments: [adam], metric: weight_norm@mean,
     where: {schedule: none, weight_decay: max}, tune: {over: [lr], pick: min, by: test_loss@min},
     test: {above: {value: 0.5}}}
  - {id: share-below, claim: C10, text: t, experiments: [adam], metric: weight_norm@mean,
     where: {schedule: none, weight_decay: max}, tune: {over: [lr], pick: min, by: test_loss@min},
     test: {below: {value: 0.5}}}
  - {id: share-unnarrowed, claim: C10, text: t, experiments: [adam], metric: weight_norm@mean,
     where: {schedule: none}, test: {above: {value: 0.5}}}
"#;

/// Metric values of one run (one value per epoch) at coordinates (schedule, lr, λ, seed).
type Cell = Vec<(&'static str, Vec<f64>)>;

/// The `adam` experiment with each run's metrics given by `f(schedule, lr, λ, seed)`.
fn grid(f: impl Fn(&str, f64, f64, i64) -> Cell) -> ExperimentData {
    let mut o = Vec::new();
    for schedule in ["none", "always"] {
        for lr in [0.01, 0.1] {
            for wd in [0.0, 0.001, 0.01] {
                for seed in 0..3 {
                    let mut ob = obs(
                        json!({"schedule": schedule, "lr": lr, "weight_decay": wd}),
                        seed,
                        &f(schedule, lr, wd, seed),
                    );
                    ob.run_id = format!("adam/{schedule},{lr},{wd},{seed}");
                    ob.source.sha256 = format!("{:064}", o.len());
                    o.push(ob);
                }
            }
        }
    }
    experiment("adam", &["schedule", "lr", "weight_decay"], o)
}

fn run_grid(data: ExperimentData) -> Vec<CheckResult> {
    let p = Pipeline::parse(Path::new("grid.yaml"), GRID).unwrap_or_else(|e| panic!("{e}"));
    let inputs = Inputs {
        profile: "paper".into(),
        experiments: vec![data],
        digests: Default::default(),
    };
    evaluate(&p, &inputs)
}

fn check<'a>(r: &'a [CheckResult], id: &str) -> &'a CheckResult {
    r.iter().find(|c| c.id == id).unwrap()
}

/// A seed-dependent jitter so that Welch's test has variance to work with.
fn jitter(seed: i64) -> f64 {
    [0.0, 0.004, -0.003][seed as usize]
}

#[test]
fn where_max_selects_the_largest_value_and_flips_with_the_data() {
    // At the largest λ AdamW is better; elsewhere it is much worse.
    let data = |good_at_max: bool| {
        grid(move |s, _lr, wd, seed| {
            let loss = match (s, wd == 0.01) {
                ("always", true) => {
                    if good_at_max {
                        1.0
                    } else {
                        2.0
                    }
                }
                ("none", true) => 1.5,
                ("always", false) => 3.0,
                _ => 0.5,
            } + jitter(seed);
            vec![("test_loss", vec![9.0, loss])]
        })
    };
    let r = run_grid(data(true));
    assert_eq!(check(&r, "no-where").verdict, Verdict::NotReproduced);
    let w = check(&r, "where-max");
    assert_eq!(w.verdict, Verdict::Reproduced, "{w:?}");
    // Two lr values × 3 seeds per arm, at λ = 0.01 only.
    assert_eq!(w.seeds, "6+6");
    assert!(
        w.groups[0].values.iter().all(|v| (v - 1.0).abs() < 0.01),
        "{w:?}"
    );
    assert!(
        w.measured
            .starts_with("where weight_decay=0.01 (max): always 1.000"),
        "{}",
        w.measured
    );
    assert!(w.test.contains("where weight_decay=max"), "{}", w.test);
    // claims.json records how the numbers were formed.
    let j = serde_json::to_value(w).unwrap();
    assert_eq!(j["where"], json!({"weight_decay": "max"}));
    assert!(j.get("tune").is_none(), "{j}");
    let t = serde_json::to_value(check(&r, "region")).unwrap();
    assert_eq!(
        t["tune"],
        json!({"over": ["lr", "weight_decay"], "pick": "min", "good_within": 0.1})
    );
    // Only the runs read are sources: 12 of the 36.
    assert_eq!(w.sources.len(), 12);
    assert_eq!(check(&r, "where-min").verdict, Verdict::NotReproduced);
    assert_eq!(check(&r, "where-min").seeds, "3+3");

    let r = run_grid(data(false));
    assert_eq!(check(&r, "where-max").verdict, Verdict::NotReproduced);
}

#[test]
fn where_max_follows_the_profiles_grid() {
    // A profile whose grid stops at λ = 0.001: `max` is 0.001 there, not a number in the YAML.
    let mut data = grid(|s, _lr, wd, seed| {
        let loss = if s == "always" && wd == 0.001 {
            1.0
        } else {
            2.0
        } + jitter(seed);
        vec![("test_loss", vec![loss])]
    });
    data.observations
        .retain(|o| o.coords["weight_decay"].as_f64() != Some(0.01));
    let r = run_grid(data);
    let w = check(&r, "where-max");
    assert!(
        w.measured.starts_with("where weight_decay=0.001 (max)"),
        "{}",
        w.measured
    );
    assert_eq!(w.verdict, Verdict::Reproduced);
}

#[test]
fn tune_keeps_each_arms_best_run_and_flips_with_the_data() {
    // AdamW: one excellent cell among bad ones; Adam+l2: uniformly mediocre. Averaged over the
    // grid AdamW loses, tuned it wins (or not, when its best cell is worse than Adam+l2's).
    let data = |best: f64| {
        grid(move |s, lr, wd, seed| {
            let loss = match s {
                "always" if lr == 0.1 && wd == 0.001 => best,
                "always" => 5.0,
                _ => 1.5,
            } + jitter(seed);
            let acc = 0.5 + loss / 100.0;
            vec![("test_loss", vec![loss]), ("test_acc", vec![acc])]
        })
    };
    let r = run_grid(data(1.0));
    assert_eq!(check(&r, "no-where").verdict, Verdict::NotReproduced);
    let t = check(&r, "tuned");
    assert_eq!(t.verdict, Verdict::Reproduced, "{t:?}");
    assert_eq!(t.seeds, "3+3");
    let want: Vec<f64> = (0..3).map(|s| 1.0 + jitter(s)).collect();
    assert_eq!(t.groups[0].values, want);
    assert!(
        t.measured
            .starts_with("best of lr, weight_decay by min test_loss@final: always 1.000"),
        "{}",
        t.measured
    );
    assert!(
        t.test
            .contains("best of lr, weight_decay by min test_loss@final")
    );
    // The metric is read from the run chosen by `by`: AdamW's best-loss cell, acc 0.51.
    let b = check(&r, "tuned-by");
    let want: Vec<f64> = (0..3).map(|s| 0.5 + (1.0 + jitter(s)) / 100.0).collect();
    assert_eq!(b.groups[0].values, want, "{b:?}");
    // …so AdamW's accuracy is *lower* here than Adam+l2's tuned 0.515: not reproduced.
    assert_eq!(b.verdict, Verdict::NotReproduced);
    // `pick: max` keeps the largest: AdamW's accuracy 0.55 of its bad-loss cells.
    let x = check(&r, "tuned-max");
    let want: Vec<f64> = (0..3).map(|s| 0.5 + (5.0 + jitter(s)) / 100.0).collect();
    assert_eq!(x.groups[0].values, want, "{x:?}");
    assert_eq!(x.verdict, Verdict::Reproduced);
    // …and with `good_within` counts cells at least the seed's best − 0.001: 5 of AdamW's 6,
    // none of Adam+l2's.
    let g = check(&r, "region-max");
    assert_eq!(g.groups[0].values, vec![5.0 / 6.0; 3], "{g:?}");
    assert_eq!(g.groups[1].values, vec![0.0; 3], "{g:?}");
    assert!(
        g.test.contains("test_acc@final ≥ seed's best − 0.001"),
        "{}",
        g.test
    );

    let r = run_grid(data(2.0));
    assert_eq!(check(&r, "tuned").verdict, Verdict::NotReproduced);
}

#[test]
fn tune_ties_go_to_the_smallest_coordinates() {
    // Every cell of an arm ties on loss; accuracy tells which run was kept.
    let r = run_grid(grid(|s, lr, wd, seed| {
        let acc = lr + wd * 10.0 + 0.001 * seed as f64;
        let loss = if s == "always" { 1.0 } else { 2.0 };
        vec![("test_loss", vec![loss]), ("test_acc", vec![acc])]
    }));
    let b = check(&r, "tuned-by");
    // lr = 0.01 and λ = 0 first: acc 0.01 + 0.001·seed.
    let want: Vec<f64> = (0..3).map(|s| 0.01 + 0.001 * s as f64).collect();
    assert_eq!(b.groups[0].values, want, "{b:?}");
}

#[test]
fn good_within_measures_the_good_region_with_diverged_cells_as_bad() {
    // AdamW's best cell (loss 1.0) is the best of every seed; `wide_a` more of its 6 cells are
    // within 0.1 of it (seed 2: one more, so the fractions vary across seeds), the rest at 3.0.
    // Adam+l2: one cell at 1.05, two diverged (NaN), `wide_b` at 1.08, the rest at 2.0.
    let data = |wide_a: usize, wide_b: usize| {
        grid(move |s, lr, wd, seed| {
            let i = [0.0, 0.001, 0.01].iter().position(|w| *w == wd).unwrap()
                + if lr == 0.1 { 3 } else { 0 };
            let loss = match s {
                "always" if i <= wide_a + (seed == 2) as usize => 1.0 + 0.01 * i as f64,
                "always" => 3.0,
                _ if i == 0 => 1.05,
                _ if i == 1 || i == 2 => f64::NAN,
                _ if i < 3 + wide_b => 1.08,
                _ => 2.0,
            };
            vec![("test_loss", vec![loss])]
        })
    };
    let r = run_grid(data(3, 0));
    let g = check(&r, "region");
    assert_eq!(
        g.groups[0].values,
        vec![4.0 / 6.0, 4.0 / 6.0, 5.0 / 6.0],
        "{g:?}"
    );
    // The NaN cells count as not good (1 of 6), not as absent (which would give 1 of 4).
    assert_eq!(g.groups[1].values, vec![1.0 / 6.0; 3], "{g:?}");
    assert_eq!(g.verdict, Verdict::Reproduced, "{g:?}");
    assert!(
        g.measured.starts_with(
            "fraction of (lr, weight_decay) cells with test_loss@final ≤ seed's best + 0.1: always 0.7222"
        ),
        "{}",
        g.measured
    );
    // AdamW's good region shrunk to its best cell (seed 2: two cells), Adam+l2's grown to 3 of
    // 6: the verdict flips.
    let r = run_grid(data(0, 2));
    let g = check(&r, "region");
    assert_eq!(
        g.groups[0].values,
        vec![1.0 / 6.0, 1.0 / 6.0, 2.0 / 6.0],
        "{g:?}"
    );
    assert_eq!(g.groups[1].values, vec![3.0 / 6.0; 3], "{g:?}");
    assert_eq!(g.verdict, Verdict::NotReproduced, "{g:?}");
}

#[test]
fn margins_make_less_and_greater_non_inferiority_tests() {
    // AdamW's loss 0.02 above Adam+l2's and its accuracy 0.02 below: significantly worse, but
    // within a margin of 0.05.
    let data = |gap: f64| {
        grid(move |s, _lr, _wd, seed| {
            let d = if s == "always" { gap } else { 0.0 };
            vec![
                ("test_loss", vec![1.0 + d + jitter(seed)]),
                ("test_acc", vec![0.9 - d + jitter(seed)]),
            ]
        })
    };
    let r = run_grid(data(0.02));
    assert_eq!(check(&r, "plain-less").verdict, Verdict::NotReproduced);
    let m = check(&r, "margin-less");
    assert_eq!(m.verdict, Verdict::Reproduced, "{m:?}");
    assert!(m.test.starts_with("always < none + 0.05"), "{}", m.test);
    assert!(m.measured.contains("(margin 0.05)"), "{}", m.measured);
    assert_eq!(check(&r, "plain-greater").verdict, Verdict::NotReproduced);
    let g = check(&r, "margin-greater");
    assert_eq!(g.verdict, Verdict::Reproduced, "{g:?}");
    assert!(g.test.starts_with("always > none − 0.05"), "{}", g.test);
    // 0.1 worse: beyond the margin, significantly.
    let r = run_grid(data(0.1));
    assert_eq!(check(&r, "margin-less").verdict, Verdict::NotReproduced);
    assert_eq!(check(&r, "margin-greater").verdict, Verdict::NotReproduced);
}

#[test]
fn one_sample_tests_need_one_value_per_seed_and_flip_with_the_data() {
    // At the largest λ under Adam+l2, the lr with the lowest loss has l2 share `share`; the
    // other lr (worse loss) has 1 − share, so tuning decides which is read.
    let data = |share: f64| {
        grid(move |s, lr, _wd, seed| {
            let best = lr == 0.1;
            let v = if best { share } else { 1.0 - share } + jitter(seed);
            let loss = if best { 1.0 } else { 2.0 } + if s == "none" { 0.0 } else { 5.0 };
            vec![
                ("weight_norm", vec![v - 0.01, v + 0.01]),
                ("test_loss", vec![loss + 1.0, loss]),
            ]
        })
    };
    let r = run_grid(data(0.8));
    let a = check(&r, "share-above");
    assert_eq!(a.verdict, Verdict::Reproduced, "{a:?}");
    assert_eq!(a.seeds, "3");
    let want: Vec<f64> = (0..3).map(|s| 0.8 + jitter(s)).collect();
    for (x, y) in a.groups[0].values.iter().zip(&want) {
        assert!((x - y).abs() < 1e-12, "{a:?}");
    }
    assert!(
        a.measured.starts_with(
            "where schedule=none, weight_decay=0.01 (max); best of lr by min test_loss@min: mean 0.8003"
        ),
        "{}",
        a.measured
    );
    assert!(
        a.measured.contains("vs 0.5000; t-test p = "),
        "{}",
        a.measured
    );
    assert_eq!(check(&r, "share-below").verdict, Verdict::NotReproduced);
    let u = check(&r, "share-unnarrowed");
    assert_eq!(u.verdict, Verdict::NotRun, "{u:?}");
    let note = u.note.as_deref().unwrap();
    assert!(
        note.contains("lr, weight_decay still vary") && note.contains("`where`"),
        "{note}"
    );

    let r = run_grid(data(0.2));
    assert_eq!(check(&r, "share-above").verdict, Verdict::NotReproduced);
    assert_eq!(check(&r, "share-below").verdict, Verdict::Reproduced);
}

/// The grid pipeline with one extra check; its validation errors, as text.
fn errors_with(check: &str) -> (String, String) {
    let text = format!("{GRID}{check}");
    let e = Pipeline::parse(Path::new("grid.yaml"), &text)
        .err()
        .unwrap_or_else(|| panic!("{check} should be rejected"));
    (text, e.to_string())
}

/// The 1-based line of the first line containing `needle` in the last check (`id: bad…`).
fn line_of(text: &str, needle: &str) -> usize {
    let start = text.lines().position(|l| l.contains("id: bad")).unwrap();
    start
        + text
            .lines()
            .skip(start)
            .position(|l| l.contains(needle))
            .unwrap()
        + 1
}

#[test]
fn typos_in_where_and_tune_are_located_with_the_valid_axes() {
    let (text, e) = errors_with(
        "  - id: bad-where\n    claim: C7\n    text: t\n    experiments: [adam]\n    metric: test_loss@final\n    where: {weight_decy: max}\n    test: {above: {value: 1}}\n",
    );
    let line = line_of(&text, "weight_decy");
    assert!(e.contains(&format!("grid.yaml:{line}:")), "{e}");
    assert!(
        e.contains("`weight_decy` is not a parameter of stage kind `vision`")
            && e.contains("weight_decay")
            && e.contains("grid axes of `adam`: schedule, lr, weight_decay"),
        "{e}"
    );

    let (text, e) = errors_with(
        "  - id: bad-over\n    claim: C7\n    text: t\n    experiments: [adam]\n    metric: test_loss@final\n    tune:\n      over: [lr, wd]\n      pick: min\n    test: {less: {a: {schedule: always}, b: {schedule: none}}}\n",
    );
    let line = line_of(&text, "over: [lr, wd]");
    assert!(e.contains(&format!("grid.yaml:{line}:")), "{e}");
    assert!(
        e.contains("`tune.over`: `wd` is not a parameter")
            && e.contains("grid axes of `adam`: schedule, lr, weight_decay"),
        "{e}"
    );
}

#[test]
fn inconsistent_where_and_tune_are_rejected_with_the_reason() {
    let cases = [
        // A value of the wrong type, and `max` on a named axis.
        ("where: {lr: fast}", "lr: fast", "or `max` / `min`"),
        (
            "where: {schedule: max}",
            "schedule: max",
            "expected one of none, always",
        ),
        // The arm asks for what `where` excludes.
        (
            "where: {schedule: none}",
            "schedule: none}",
            "the arm would be empty",
        ),
        // Tuning over a compared axis.
        (
            "tune: {over: [schedule], pick: min}",
            "over: [schedule]",
            "both tuned over and compared",
        ),
        (
            "tune: {over: [lr], pick: min, by: test_los@min}",
            "by: test_los",
            "writes no metric `test_los`",
        ),
        (
            "tune: {over: [lr], pick: min, good_within: -1}",
            "good_within: -1",
            "finite number ≥ 0",
        ),
        (
            "tune: {over: [lr], pick: best}",
            "pick: best",
            "expected `min` or `max`",
        ),
        (
            "tune: {over: [], pick: min}",
            "over: []",
            "at least one grid axis",
        ),
    ];
    for (field, needle, msg) in cases {
        let (text, e) = errors_with(&format!(
            "  - id: bad\n    claim: C7\n    text: t\n    experiments: [adam]\n    metric: test_loss@final\n    {field}\n    test: {{less: {{a: {{schedule: always}}, b: {{schedule: none}}}}}}\n"
        ));
        let line = line_of(&text, needle);
        assert!(
            e.contains(&format!("grid.yaml:{line}:")) && e.contains(msg),
            "{field}: want line {line} and {msg:?} in:\n{e}"
        );
    }
    let (_, e) = errors_with(
        "  - {id: bad, claim: C7, text: t, experiments: [adam], metric: test_loss@final,\n     test: {less: {a: {schedule: always}, b: {schedule: none}, margin: -0.1}}}\n",
    );
    assert!(e.contains("margin must be a finite number ≥ 0"), "{e}");
    let (_, e) = errors_with(
        "  - {id: bad, claim: C7, text: t, experiments: [adam], metric: test_loss@final,\n     tune: {over: [lr], pick: min, good_within: 0.1},\n     test: {rank_agreement: {with: test_acc@final, across: schedule, above: 0.5}}}\n",
    );
    assert!(e.contains("rank_agreement's `with`"), "{e}");
}

/// C7–C10 as they can be written for the `lm` experiment (`variant` × `lr` × `weight_decay`).
const LM: &str = r#"
datasets:
  wikitext2:
    format: wikitext-tokens
    files: [{name: w.zip, urls: ["http://127.0.0.1:9/w.zip"]}]
experiments:
  wt2:
    kind: lm
    datasets: [wikitext2]
    grid:
      variant: [adam_l2, adamw, l2_in_m, l2_in_v, adaptive_decoupled]
      lr: [0.001, 0.003]
      weight_decay: [0.0, 0.01, 0.1]
      seed: [0, 1, 2]
profiles:
  paper: {}
claims:
  - id: C7-tuned
    claim: C7
    text: Tuned over (lr, λ), AdamW's test perplexity matches or beats Adam+l2's.
    experiments: [wt2]
    metric: test_ppl@final
    tune: {over: [lr, weight_decay], pick: min, by: valid_loss@min}
    test: {less: {a: {variant: adamw}, b: {variant: adam_l2}, margin: 1.0}}
  - id: C7-region
    claim: C7
    text: AdamW's region of good (lr, λ) is wider than Adam+l2's.
    experiments: [wt2]
    metric: valid_loss@min
    tune: {over: [lr, weight_decay], pick: min, good_within: 0.05}
    test: {greater: {a: {variant: adamw}, b: {variant: adam_l2}}}
  - id: C8-in-m
    claim: C8
    text: l2 only in m degrades at large λ, unlike AdamW.
    experiments: [wt2]
    metric: valid_loss@min
    where: {weight_decay: max}
    tune: {over: [lr], pick: min}
    test: {greater: {a: {variant: l2_in_m}, b: {variant: adamw}}}
  - id: C8-in-v
    claim: C8
    text: l2 only in v keeps AdamW's wide region.
    experiments: [wt2]
    metric: valid_loss@min
    tune: {over: [lr, weight_decay], pick: min, good_within: 0.05}
    test: {greater: {a: {variant: l2_in_v}, b: {variant: adam_l2}}}
  - id: C9
    claim: C9
    text: The adaptive decoupled decay does not degrade like Adam+l2.
    experiments: [wt2]
    metric: valid_loss@min
    where: {weight_decay: max}
    tune: {over: [lr], pick: min}
    test: {less: {a: {variant: adaptive_decoupled}, b: {variant: adam_l2}}}
  - id: C10-share
    claim: C10
    text: Under Adam+l2 at large λ the l2 term dominates m.
    experiments: [wt2]
    metric: l2_share_of_m@mean
    where: {variant: adam_l2, weight_decay: max}
    tune: {over: [lr], pick: min, by: valid_loss@min}
    test: {above: {value: 0.5}}
"#;

#[test]
fn adam_claims_written_for_the_lm_kind_decide_on_contrived_runs() {
    // `coupled`: λ·w enters m (adam_l2, l2_in_m), so the loss grows with λ and l2 fills m.
    let run = |paper_like: bool| {
        let mut o = Vec::new();
        for v in [
            "adam_l2",
            "adamw",
            "l2_in_m",
            "l2_in_v",
            "adaptive_decoupled",
        ] {
            let coupled = paper_like && (v == "adam_l2" || v == "l2_in_m");
            for (k, lr) in [0.001, 0.003].into_iter().enumerate() {
                for wd in [0.0, 0.01, 0.1] {
                    for seed in 0..3 {
                        let noise = jitter(seed) * (1.0 + k as f64);
                        let loss = 4.0 + wd * if coupled { 10.0 } else { 0.2 } + 0.02 * k as f64;
                        let share = if coupled { 8.0 * wd } else { 0.0 } + noise;
                        o.push(obs(
                            json!({"variant": v, "lr": lr, "weight_decay": wd}),
                            seed,
                            &[
                                ("valid_loss", vec![loss + 1.0, loss + noise]),
                                ("test_ppl", vec![999.0, (loss + noise).exp()]),
                                ("l2_share_of_m", vec![share, share]),
                            ],
                        ));
                    }
                }
            }
        }
        let data = ExperimentData {
            kind: kinds::kind("lm").unwrap(),
            ..experiment("wt2", &["variant", "lr", "weight_decay"], o)
        };
        let p = Pipeline::parse(Path::new("lm.yaml"), LM).unwrap_or_else(|e| panic!("{e}"));
        let inputs = Inputs {
            profile: "paper".into(),
            experiments: vec![data],
            digests: Default::default(),
        };
        evaluate(&p, &inputs)
    };
    let r = run(true);
    for id in [
        "C7-tuned",
        "C7-region",
        "C8-in-m",
        "C8-in-v",
        "C9",
        "C10-share",
    ] {
        assert_eq!(
            check(&r, id).verdict,
            Verdict::Reproduced,
            "{:?}",
            check(&r, id)
        );
    }
    // Without the coupling every variant behaves alike: AdamW still matches Adam+l2, but no
    // region is wider, nothing degrades and l2 is no share of m.
    let r = run(false);
    assert_eq!(check(&r, "C7-tuned").verdict, Verdict::Reproduced);
    for id in ["C7-region", "C8-in-m", "C8-in-v", "C9", "C10-share"] {
        assert_ne!(
            check(&r, id).verdict,
            Verdict::Reproduced,
            "{:?}",
            check(&r, id)
        );
    }
}

/// E3 as C4/C5 read it: a sharpness experiment whose rows are nets (schedule × Tₛ), 12 per seed.
const SHARPNESS: &str = r#"
datasets:
  cifar10:
    format: cifar10-binary
    files: [{name: c.tar.gz, urls: ["http://127.0.0.1:9/c.tar.gz"]}]
experiments:
  e1:
    kind: vision
    datasets: [cifar10]
    grid: {schedule: [none, always, early, late], seed: [0, 1, 2]}
  sweep:
    kind: vision
    datasets: [cifar10]
    grid: {schedule: [early, late], switch_epoch: [10, 25, 100, 150], seed: [0, 1, 2]}
  sharp:
    kind: sharpness
    datasets: [cifar10]
    needs: [e1, sweep]
    grid: {seed: [0, 1, 2]}
profiles:
  paper: {}
claims:
  - {id: ranks, claim: C5, text: ranks like the gap, experiments: [sharp], metric: s_inv,
     test: {rank_agreement: {with: gen_gap_acc, across: [schedule, switch_epoch], above: 0.5}}}
  - {id: misranks, claim: C4, text: does not, experiments: [sharp], metric: lambda_max,
     test: {rank_agreement: {with: gen_gap_acc, across: [schedule, switch_epoch], below: 0.5}}}
"#;

#[test]
fn twelve_nets_per_seed_rank_with_the_known_tau() {
    let p = Pipeline::parse(Path::new("test.yaml"), SHARPNESS).unwrap_or_else(|e| panic!("{e}"));
    let mut nets: Vec<(&str, i64)> = ["none", "always", "early", "late"]
        .iter()
        .map(|s| (*s, 50))
        .collect();
    for s in ["early", "late"] {
        for t in [10, 25, 100, 150] {
            nets.push((s, t));
        }
    }
    assert_eq!(nets.len(), 12);
    let mut o = Vec::new();
    for seed in 0..3 {
        for (i, (schedule, t)) in nets.iter().enumerate() {
            let gap = 0.01 * i as f64 + 0.001 * seed as f64;
            // s_inv ranks like the gap except one adjacent pair swapped in seed 0: τ = 1 − 2/66
            // there and 1 in the other seeds. lambda_max ranks them backwards: τ = −1.
            let s_inv = match (seed, i) {
                (0, 3) => 4.0,
                (0, 4) => 3.0,
                _ => i as f64,
            };
            let mut row = Map::new();
            row.insert("gen_gap_acc".into(), json!(gap));
            row.insert("s_inv".into(), json!(s_inv));
            row.insert("lambda_max".into(), json!(-(i as f64)));
            let mut coords = Map::new();
            coords.insert("schedule".into(), json!(schedule));
            coords.insert("switch_epoch".into(), json!(t));
            coords.insert("seed".into(), json!(seed));
            o.push(Observation {
                run_id: format!("net-{schedule}-{t}-{seed}"),
                coords,
                seed,
                diverged: false,
                rows: vec![row],
                source: Source {
                    run_key: "k".repeat(64),
                    file: "sharpness.jsonl".into(),
                    sha256: format!("{seed:064}"),
                },
            });
        }
    }
    let data = ExperimentData {
        name: "sharp".into(),
        description: None,
        kind: kinds::kind("sharpness").unwrap(),
        planned: 3,
        observations: o,
        missing: Vec::new(),
        arm_axes: vec!["schedule".into(), "switch_epoch".into()],
        data: Vec::new(),
    };
    let inputs = Inputs {
        profile: "paper".into(),
        experiments: vec![data],
        digests: Default::default(),
    };
    let results = evaluate(&p, &inputs);
    let ranks = results.iter().find(|r| r.id == "ranks").unwrap();
    // One τ per seed, each over all 12 nets (not one per Tₛ stratum).
    assert_eq!(ranks.seeds, "3", "{ranks:?}");
    let want = (1.0 - 2.0 / 66.0 + 1.0 + 1.0) / 3.0;
    let got = ranks.statistics["tau_mean"];
    assert!((got - want).abs() < 1e-12, "τ mean {got}, expected {want}");
    assert_eq!(ranks.verdict, Verdict::Reproduced, "{ranks:?}");
    let mis = results.iter().find(|r| r.id == "misranks").unwrap();
    assert_eq!(mis.statistics["tau_mean"], -1.0, "{mis:?}");
    assert_eq!(mis.verdict, Verdict::Reproduced, "{mis:?}");
}

// ---------------------------------------------------------------------------------------------
// Divergence and the useful λ, on the `lm` kind (variant × lr × λ × 3 seeds). A run diverges as
// `train::lm` writes it: its last row's losses null (NaN becomes null in JSON).

const DIVERGE: &str = r#"
datasets:
  wikitext2:
    format: wikitext-tokens
    files: [{name: w.zip, urls: ["http://127.0.0.1:9/w.zip"]}]
experiments:
  wt2:
    kind: lm
    datasets: [wikitext2]
    grid:
      variant: [adam_l2, adamw, adaptive_decoupled]
      lr: [0.001, 0.003]
      weight_decay: [0.0, 0.01, 0.1]
      seed: [0, 1, 2]
profiles:
  paper: {}
claims:
  - {id: at-cell, claim: C9, text: t, experiments: [wt2], metric: valid_loss@min,
     where: {lr: 0.001, weight_decay: 0.1},
     test: {less: {a: {variant: adaptive_decoupled}, b: {variant: adam_l2}}}}
  - {id: tuned, claim: C7, text: t, experiments: [wt2], metric: valid_loss@min,
     tune: {over: [lr, weight_decay], pick: min},
     test: {less: {a: {variant: adamw}, b: {variant: adam_l2}}}}
  - {id: region, claim: C7, text: t, experiments: [wt2], metric: valid_loss@min,
     tune: {over: [lr, weight_decay], pick: min, good_within: 0.05},
     test: {greater: {a: {variant: adamw}, b: {variant: adam_l2}}}}
  - {id: trend, claim: C7, text: t, experiments: [wt2], metric: valid_loss@min,
     where: {variant: adam_l2}, tune: {over: [lr], pick: min},
     test: {increasing: {along: weight_decay}}}
  - id: useful
    claim: C8
    text: t
    experiments: [wt2]
    metric: valid_loss@min
    where:
      weight_decay: {useful: {of: {variant: adamw}, by: valid_loss@min, within: 0.05, worse: {variant: adam_l2}}}
    tune: {over: [lr], pick: min}
    test: {greater: {a: {variant: adam_l2}, b: {variant: adamw}}}
  - id: useful-share
    claim: C10
    text: t
    experiments: [wt2]
    metric: l2_share_of_m@mean
    where:
      variant: adam_l2
      weight_decay: {useful: {of: {variant: adamw}, by: valid_loss@min, within: 0.05}}
    tune: {over: [lr], pick: min, by: valid_loss@min}
    test: {above: {value: 0.5}}
"#;

/// What one run of the `wt2` grid does: the final validation loss and l2 share, or diverged.
enum Run {
    Loss(f64),
    Diverged,
}

/// The `wt2` experiment with run `f(variant, lr, λ, seed)`. A diverged run's best validation
/// loss before it blew up (1.0) is better than any real cell's, so reading it would show.
fn wt2(f: impl Fn(&str, f64, f64, i64) -> Run) -> ExperimentData {
    let mut o = Vec::new();
    for v in ["adam_l2", "adamw", "adaptive_decoupled"] {
        for lr in [0.001, 0.003] {
            for wd in [0.0, 0.01, 0.1] {
                for seed in 0..3 {
                    let share = 8.0 * wd + jitter(seed);
                    let epochs = match f(v, lr, wd, seed) {
                        Run::Loss(x) => vec![
                            ("train_loss", vec![6.0, x]),
                            ("valid_loss", vec![x + 1.0, x]),
                            ("l2_share_of_m", vec![share, share]),
                        ],
                        Run::Diverged => vec![
                            ("train_loss", vec![6.0, f64::NAN]),
                            ("valid_loss", vec![1.0, f64::NAN]),
                            ("l2_share_of_m", vec![share, f64::NAN]),
                        ],
                    };
                    let mut ob = obs(
                        json!({"variant": v, "lr": lr, "weight_decay": wd}),
                        seed,
                        &epochs,
                    );
                    ob.run_id = format!("wt2/{v},{lr},{wd},{seed}");
                    o.push(ob);
                }
            }
        }
    }
    ExperimentData {
        kind: kinds::kind("lm").unwrap(),
        ..experiment("wt2", &["variant", "lr", "weight_decay"], o)
    }
}

fn run_wt2(data: ExperimentData) -> Vec<CheckResult> {
    let p = Pipeline::parse(Path::new("diverge.yaml"), DIVERGE).unwrap_or_else(|e| panic!("{e}"));
    let inputs = Inputs {
        profile: "paper".into(),
        experiments: vec![data],
        digests: Default::default(),
    };
    evaluate(&p, &inputs)
}

#[test]
fn divergence_is_read_from_the_summary_or_the_last_training_loss() {
    let row = |loss: Value| {
        json!({"epoch": 0, "train_loss": loss})
            .as_object()
            .unwrap()
            .clone()
    };
    let none = Map::new();
    assert!(!diverged_run(&none, &[row(json!(4.0))]));
    assert!(diverged_run(&none, &[row(json!(4.0)), row(Value::Null)]));
    // A null earlier in the series is not where training stopped: the run went on.
    assert!(!diverged_run(&none, &[row(Value::Null), row(json!(4.0))]));
    for key in ["diverged_epoch", "diverged_iteration"] {
        let mut summary = Map::new();
        summary.insert(key.into(), json!(3));
        assert!(diverged_run(&summary, &[row(json!(4.0))]), "{key}");
        summary.insert(key.into(), Value::Null);
        assert!(!diverged_run(&summary, &[row(json!(4.0))]), "{key} null");
    }
    // A results row may carry it too (a stage without a run record, e.g. per iteration).
    let mut r = row(json!(4.0));
    r.insert("diverged_iteration".into(), json!(7));
    assert!(diverged_run(&none, &[r]));
}

#[test]
fn an_arm_diverged_in_every_seed_gets_the_diverged_verdict() {
    // At (lr 1e-3, λ 0.1) the adaptive decay diverges in `bad` seeds; Adam+l2 trains (4.5).
    let data = |bad: &'static [i64]| {
        wt2(move |v, lr, wd, seed| match v {
            "adaptive_decoupled" if lr == 0.001 && wd == 0.1 && bad.contains(&seed) => {
                Run::Diverged
            }
            "adaptive_decoupled" => Run::Loss(4.0 + jitter(seed)),
            _ => Run::Loss(4.5 + jitter(seed)),
        })
    };
    let r = run_wt2(data(&[0, 1, 2]));
    let c = check(&r, "at-cell");
    assert_eq!(c.verdict, Verdict::Diverged, "{c:?}");
    assert_eq!(Verdict::Diverged.text(), "diverged");
    assert_eq!(
        c.note.as_deref(),
        Some("adaptive_decoupled diverged at (lr 1e-3, λ 1e-1) in 3 of 3 seeds")
    );
    // Neither +∞ nor the loss before blowing up (1.0) entered the arm.
    assert!(c.groups[0].values.is_empty(), "{c:?}");
    assert_eq!(serde_json::to_value(c).unwrap()["verdict"], "diverged");
    let claims = summarize_claims(&r);
    let c9 = claims.iter().find(|s| s.claim == "C9").unwrap();
    assert_eq!((c9.verdict, c9.diverged), (Verdict::Diverged, 1));

    // One seed diverged: it is left out and named, the other two decide.
    let r = run_wt2(data(&[2]));
    let c = check(&r, "at-cell");
    assert_eq!(c.verdict, Verdict::Reproduced, "{c:?}");
    assert_eq!(c.seeds, "2+3");
    assert_eq!(c.groups[0].seeds, vec![0, 1]);
    assert!(
        c.measured
            .ends_with("; diverged, left out: adaptive_decoupled (lr 1e-3, λ 1e-1) seed 2"),
        "{}",
        c.measured
    );
}

#[test]
fn tuning_chooses_only_among_cells_where_no_seed_diverged() {
    // AdamW's best cell (lr 3e-3, λ 1e-2: 3.0) diverged in seed 1, so no seed may pick it: its
    // next best (lr 1e-3, λ 1e-2: 3.5) is read for every seed. Adam+l2 sits at 3.4, so the
    // verdict turns on the skip (reading 3.0 for seeds 0 and 2 would reproduce).
    let data = |adam_l2_dies: bool| {
        wt2(move |v, lr, wd, seed| match v {
            "adamw" if lr == 0.003 && wd == 0.01 && seed == 1 => Run::Diverged,
            "adamw" if lr == 0.003 && wd == 0.01 => Run::Loss(3.0),
            "adamw" if lr == 0.001 && wd == 0.01 => Run::Loss(3.5 + jitter(seed)),
            "adamw" => Run::Loss(5.0),
            "adam_l2" if adam_l2_dies && (wd == 0.1 || seed == 0) => Run::Diverged,
            _ => Run::Loss(3.4 + jitter(seed)),
        })
    };
    let r = run_wt2(data(false));
    let t = check(&r, "tuned");
    let want: Vec<f64> = (0..3).map(|s| 3.5 + jitter(s)).collect();
    assert_eq!(t.groups[0].values, want, "{t:?}");
    assert_eq!(t.verdict, Verdict::NotReproduced, "{t:?}");
    assert!(
        t.measured.contains(
            "cells with a diverged seed skipped: adamw (lr 3e-3, λ 1e-2) in 1 of 3 seeds"
        ),
        "{}",
        t.measured
    );

    // Every Adam+l2 cell has a diverged seed (seed 0 everywhere, all seeds at λ 0.1).
    let r = run_wt2(data(true));
    let t = check(&r, "tuned");
    assert_eq!(t.verdict, Verdict::Diverged, "{t:?}");
    let note = t.note.as_deref().unwrap();
    assert!(
        note.starts_with(
            "adam_l2 diverged in every cell it is tuned over: (lr 1e-3, λ 0) in 1 of 3 seeds, "
        ) && note.ends_with("(lr 3e-3, λ 1e-1) in 3 of 3 seeds"),
        "{note}"
    );
    assert_eq!(
        note.matches(" seeds").count(),
        6,
        "all six cells named: {note}"
    );
}

#[test]
fn a_trend_with_a_point_diverged_in_every_cell_is_diverged() {
    // Adam+l2 degrades with λ and diverges at every lr at λ 0.1: the trend has no value there,
    // and the explanation names the cells with every grid coordinate (no arm label says them).
    let r = run_wt2(wt2(|v, _lr, wd, seed| match v {
        "adam_l2" if wd == 0.1 => Run::Diverged,
        _ => Run::Loss(4.0 + wd * 10.0 + jitter(seed)),
    }));
    let t = check(&r, "trend");
    assert_eq!(t.verdict, Verdict::Diverged, "{t:?}");
    assert_eq!(
        t.note.as_deref(),
        Some(
            "diverged in every cell it is tuned over: (variant adam_l2, lr 1e-3, λ 1e-1) in 3 \
             of 3 seeds, (variant adam_l2, lr 3e-3, λ 1e-1) in 3 of 3 seeds"
        )
    );
}

#[test]
fn a_diverged_cell_counts_as_not_good_over_the_full_grid() {
    // Every AdamW cell is at 3.0 except (lr 1e-3, λ 0) in seed 0, which diverged after a best
    // epoch at 1.0: counted as not good (5 of 6), not as good (its pre-divergence loss is within
    // any tolerance) nor as absent (5 of 5). It is not the seed's best either: Adam+l2's cells at
    // 3.02 stay within 0.05 of 3.0.
    let r = run_wt2(wt2(|v, lr, wd, seed| match v {
        "adamw" if lr == 0.001 && wd == 0.0 && seed == 0 => Run::Diverged,
        "adamw" => Run::Loss(3.0),
        _ => Run::Loss(3.02),
    }));
    let g = check(&r, "region");
    assert_eq!(g.groups[0].values, vec![5.0 / 6.0, 1.0, 1.0], "{g:?}");
    assert_eq!(g.groups[1].values, vec![1.0; 3], "{g:?}");
    assert!(
        g.measured.ends_with("; 1 diverged run counted as not good"),
        "{}",
        g.measured
    );
}

/// AdamW's best loss over lr by (λ, seed) as `adamw`, Adam+l2's as `l2`; 5.0 elsewhere.
fn useful_grid(
    adamw: impl Fn(f64, i64) -> f64 + 'static,
    l2: impl Fn(f64, i64) -> f64 + 'static,
) -> ExperimentData {
    wt2(move |v, lr, wd, seed| {
        // The lr 3e-3 runs are worse by 0.5: the best over lr is the lr 1e-3 run.
        let worse_lr = if lr == 0.003 { 0.5 } else { 0.0 };
        Run::Loss(
            worse_lr
                + match v {
                    "adamw" => adamw(wd, seed),
                    "adam_l2" => l2(wd, seed),
                    _ => 5.0,
                },
        )
    })
}

#[test]
fn the_useful_lambda_is_the_largest_within_tolerance_per_seed() {
    // AdamW's best at λ (0, 1e-2, 1e-1) per seed: seed 0 (4.0, 4.03, 4.10) → 1e-2; seed 1
    // (4.0, 4.02, 4.04) → 1e-1; seed 2 (4.0, 4.06, 4.2) → 0, dropped.
    let adamw = |wd: f64, seed: i64| {
        let rise = [[0.0, 0.03, 0.10], [0.0, 0.02, 0.04], [0.0, 0.06, 0.2]][seed as usize];
        4.0 + rise[[0.0, 0.01, 0.1].iter().position(|w| *w == wd).unwrap()]
    };
    let r = run_wt2(useful_grid(adamw, |wd, seed| {
        4.0 + 10.0 * wd + jitter(seed)
    }));
    let u = check(&r, "useful");
    // Adam+l2 read at each seed's useful λ: seed 0 at 1e-2, seed 1 at 1e-1.
    assert_eq!(u.groups[0].seeds, vec![0, 1], "{u:?}");
    let want = [4.1 + jitter(0), 5.0 + jitter(1)];
    for (x, y) in u.groups[0].values.iter().zip(want) {
        assert!((x - y).abs() < 1e-9, "{u:?}");
    }
    assert_eq!(u.groups[1].values, vec![4.03, 4.04], "{u:?}");
    assert!(
        u.measured.starts_with(
            "where weight_decay = useful: 1e-2 (seed 0), 1e-1 (seed 1) by valid_loss@min of \
             variant=adamw within 0.05 (seed 2 dropped: its useful λ is 0) (adam_l2 worse \
             there: valid_loss@min 4.552 vs 4.035); best of lr by min valid_loss@min: adam_l2"
        ),
        "{}",
        u.measured
    );
    assert!(
        u.test.contains("weight_decay=useful by valid_loss@min"),
        "{}",
        u.test
    );
    // `of` chooses on AdamW's runs although `where` reads Adam+l2's: l2 share 8λ there.
    let s = check(&r, "useful-share");
    let want = [0.08 + jitter(0), 0.8 + jitter(1)];
    assert_eq!(s.groups[0].seeds, vec![0, 1], "{s:?}");
    for (x, y) in s.groups[0].values.iter().zip(want) {
        assert!((x - y).abs() < 1e-9, "{s:?}");
    }
}

#[test]
fn a_useful_lambda_of_zero_or_no_contrast_is_not_checkable_with_the_reason() {
    // AdamW is 0.2 worse at any λ > 0: its useful λ is 0 in every seed.
    let r = run_wt2(useful_grid(
        |wd, _| if wd == 0.0 { 4.0 } else { 4.2 },
        |wd, _| 4.0 + 10.0 * wd,
    ));
    for id in ["useful", "useful-share"] {
        let u = check(&r, id);
        assert_eq!(u.verdict, Verdict::NotCheckable, "{u:?}");
        assert_eq!(
            u.note.as_deref(),
            Some("not checkable: adamw's useful λ is 0 in every seed"),
            "{u:?}"
        );
        assert!(
            u.measured.contains("useful: none by valid_loss@min")
                && u.measured
                    .contains("(seeds 0, 1, 2 dropped: its useful λ is 0)"),
            "{}",
            u.measured
        );
    }
    // The report shows the reason beside the verdict word.
    let table = repro_report::tables::claims_table(&r);
    let row = table.rows.iter().find(|r| r[0].text() == "useful").unwrap();
    assert_eq!(row[4].text(), "not checkable");
    assert!(
        row[3]
            .text()
            .contains("adamw's useful λ is 0 in every seed"),
        "{}",
        row[3].text()
    );

    // Adam+l2 no worse than AdamW at the useful λ (here: better by 0.04): the contrast the
    // check is about is absent (AdamW's useful λ is 1e-2 in every seed). The check without `worse` is still read.
    let r = run_wt2(useful_grid(|wd, _| 4.0 + wd, |wd, _| 3.96 + wd));
    let u = check(&r, "useful");
    assert_eq!(u.verdict, Verdict::NotCheckable, "{u:?}");
    assert_eq!(
        u.note.as_deref(),
        Some(
            "not checkable: adam_l2 is not worse than adamw at the useful λ: valid_loss@min \
             3.970 vs 4.010"
        ),
        "{u:?}"
    );
    assert_ne!(check(&r, "useful-share").verdict, Verdict::NotCheckable);
}

#[test]
fn malformed_useful_selectors_are_located_with_the_reason() {
    let cases = [
        (
            "{of: {variant: adamw}, by: valid_loss@min, within: 0.05, tolerance: 1}",
            "tolerance",
            "unknown key `tolerance` in `useful`",
        ),
        (
            "{of: {variant: l2_in_m}, by: valid_loss@min, within: 0.05}",
            "l2_in_m",
            "no run of `wt2` has variant = \"l2_in_m\"; its grid has",
        ),
        (
            "{of: {variant: adamw}, by: valid_loss@min, within: 0.05, worse: {lr: 0.3}}",
            "lr: 0.3",
            "no run of `wt2` has lr = 0.3",
        ),
        (
            "{of: {variant: adamw}, by: valid_loss@min, within: lots}",
            "within: lots",
            "`useful.within` must be a finite number ≥ 0",
        ),
        (
            "{of: {variant: adamw}, by: valid_los@min, within: 0.05}",
            "by: valid_los",
            "writes no metric `valid_los`",
        ),
        (
            "{of: {variant: adamw}, by: valid_loss, within: 0.05}",
            "by: valid_loss,",
            "add a reducer",
        ),
        (
            "{of: {variant: adamw}, within: 0.05}",
            "{of:",
            "`useful` needs `by`",
        ),
    ];
    for (useful, needle, msg) in cases {
        let text = format!(
            "{DIVERGE}  - id: bad\n    claim: C8\n    text: t\n    experiments: [wt2]\n    metric: valid_loss@min\n    where:\n      weight_decay:\n        useful: {useful}\n    test: {{above: {{value: 1}}}}\n"
        );
        let e = Pipeline::parse(Path::new("diverge.yaml"), &text)
            .err()
            .unwrap_or_else(|| panic!("{useful} should be rejected"))
            .to_string();
        let line = line_of(&text, needle);
        assert!(
            e.contains(&format!("diverge.yaml:{line}:")) && e.contains(msg),
            "{useful}: want line {line} and {msg:?} in:\n{e}"
        );
    }
    // `useful` on a named axis.
    let text = format!(
        "{DIVERGE}  - id: bad\n    claim: C8\n    text: t\n    experiments: [wt2]\n    metric: valid_loss@min\n    where:\n      variant: {{useful: {{of: {{lr: 0.001}}, by: valid_loss@min, within: 0.05}}}}\n    test: {{above: {{value: 1}}}}\n"
    );
    let e = Pipeline::parse(Path::new("diverge.yaml"), &text)
        .err()
        .unwrap()
        .to_string();
    let line = line_of(&text, "variant: {useful");
    assert!(
        e.contains(&format!("diverge.yaml:{line}:")) && e.contains("`variant` is not numeric"),
        "{e}"
    );
}

/// PIPELINE with `role: …` added to the check `id`.
fn with_role(id: &str, role: &str) -> String {
    let needle = format!("{{id: {id}, ");
    assert!(PIPELINE.contains(&needle), "{id}");
    PIPELINE.replace(&needle, &format!("{{id: {id}, role: {role}, "))
}

#[test]
fn extension_and_finding_checks_are_reported_but_not_counted() {
    let text = with_role("higher", "finding");
    let p = Pipeline::parse(Path::new("roles.yaml"), &text).unwrap_or_else(|e| panic!("{e}"));
    let inputs = Inputs {
        profile: "paper".into(),
        experiments: vec![e1([5.0, 5.2, 4.9], [9.0, 9.3, 8.8], 0.0), noise(1.0)],
        digests: Default::default(),
    };
    let r = evaluate(&p, &inputs);
    // The finding still gets its own verdict, and says what it is …
    let higher = r.iter().find(|c| c.id == "higher").unwrap();
    assert_eq!(higher.verdict, Verdict::NotReproduced);
    assert_eq!(higher.role, Role::Finding);
    assert_eq!(higher.role.label(&higher.claim), "C2 (finding)");
    let rows = repro_report::tables::checks_table(&r).rows;
    assert!(
        format!("{rows:?}").contains("C2 (finding)"),
        "the checks table names the role: {rows:?}"
    );
    // … but C2's verdict is its one counted check's; with it counted, C2 was not reproduced.
    let c2 = summarize_claims(&r)
        .into_iter()
        .find(|c| c.claim == "C2")
        .unwrap();
    assert_eq!(
        (c2.verdict, c2.checks, c2.reproduced, c2.beside),
        (Verdict::Reproduced, 1, 1, 1)
    );
    let plain = run(
        "paper",
        vec![e1([5.0, 5.2, 4.9], [9.0, 9.3, 8.8], 0.0), noise(1.0)],
    );
    let c2 = summarize_claims(&plain)
        .into_iter()
        .find(|c| c.claim == "C2")
        .unwrap();
    assert_eq!((c2.verdict, c2.beside), (Verdict::NotReproduced, 0));
}

#[test]
fn roles_are_validated_with_their_line() {
    let text = with_role("trend", "findng");
    let Err(e) = Pipeline::parse(Path::new("roles.yaml"), &text) else {
        panic!("an unknown role is rejected");
    };
    let e = e.to_string();
    let line = text.lines().position(|l| l.contains("findng")).unwrap() + 1;
    assert!(e.contains(&format!("roles.yaml:{line}:")), "{e}");
    assert!(
        e.contains("findng") && e.contains("claim") && e.contains("extension"),
        "{e}"
    );
    // A claim whose every check is an extension or a finding would have no verdict.
    let text = with_role("trend", "extension");
    let Err(e) = Pipeline::parse(Path::new("roles.yaml"), &text) else {
        panic!("a claim without a counted check is rejected");
    };
    let e = e.to_string();
    assert!(
        e.contains("claim `C6` has only extension or finding checks"),
        "{e}"
    );
}
