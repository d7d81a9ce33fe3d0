//! The claim statistics against scipy on fixed samples: the 95% t interval, Welch's one-sided
//! test, TOST, the one-sample t-test and Kendall's τ-b (with ties); and the rliable-style
//! aggregates: the IQM against `scipy.stats.trim_mean(x, 0.25)`, the stratified bootstrap's
//! intervals replayed through numpy/scipy (tests/python/bootstrap_reference.py), its coverage,
//! and that resampled runs stay within their task.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use repro_core::metrics::bootstrap::{
    Aggregate, Interval, bootstrap_indices, interval_from_indices, stratified_bootstrap_ci,
};
use repro_core::metrics::stats::{iqm, kendall_tau_b, summarize, t_greater, tost, welch_less};
use serde_json::{Value, json};

fn close(a: f64, b: f64, what: &str) {
    assert!(
        (a - b).abs() <= 1e-9 * b.abs().max(1e-12),
        "{what}: repro {a} vs scipy {b}"
    );
}

#[test]
fn matches_scipy() {
    let cases = json!([
        {"a": [93.1, 93.4, 92.8], "b": [94.0, 94.3, 93.9], "margin": 0.5},
        {"a": [0.71, 0.69, 0.74, 0.70, 0.72], "b": [0.70, 0.73, 0.69], "margin": 0.05},
        {"a": [10.0, 12.5, 9.0, 11.0], "b": [3.0, 2.5, 4.1, 3.3], "margin": 1.0, "thr": 10.5},
        {"a": [1.0, 1.1], "b": [1.05, 1.02, 1.2, 0.9, 1.0, 1.1], "margin": 0.2,
         "x": [0.0, 0.2, 0.2, 0.4, 0.6, 0.6, 1.0], "y": [3.0, 2.0, 5.0, 5.0, 4.0, 7.0, 6.5]},
        {"a": [1.0, 2.0, 3.0], "b": [2.0, 2.5, 2.9], "margin": 0.3,
         "x": [0.01, 0.2, 0.05, 0.3], "y": [9.0, 1.0, 3.0, 1.0]},
    ]);
    let out = repro_testkit::run_script("stats_reference.py", &[cases.to_string()]);
    let reference: Vec<Value> = serde_json::from_str(&out).unwrap();
    for (c, r) in cases.as_array().unwrap().iter().zip(&reference) {
        let v = |k: &str| -> Vec<f64> {
            c[k].as_array()
                .unwrap()
                .iter()
                .map(|x| x.as_f64().unwrap())
                .collect()
        };
        let (a, b, m) = (v("a"), v("b"), c["margin"].as_f64().unwrap());
        let s = summarize(&a).unwrap();
        let (lo, hi) = s.ci95.unwrap();
        close(s.mean, r["mean"].as_f64().unwrap(), "mean");
        close(lo, r["ci"][0].as_f64().unwrap(), "ci low");
        close(hi, r["ci"][1].as_f64().unwrap(), "ci high");
        let w = welch_less(&a, &b).unwrap();
        close(w.t, r["t"].as_f64().unwrap(), "t");
        close(w.df, r["df"].as_f64().unwrap(), "df");
        close(w.p_less, r["p_less"].as_f64().unwrap(), "p");
        close(
            tost(&a, &b, m).unwrap(),
            r["tost"].as_f64().unwrap(),
            "tost",
        );
        let thr = c["thr"].as_f64().unwrap_or(0.0);
        close(
            t_greater(&a, thr).unwrap(),
            r["one"].as_f64().unwrap(),
            "one-sample t",
        );
        if let Some(tau) = r["tau"].as_f64() {
            let x: Vec<f64> = v("x");
            let y: Vec<f64> = v("y");
            close(
                kendall_tau_b(&x, &y).unwrap().unwrap(),
                tau,
                "kendall tau-b",
            );
        }
    }
}

#[test]
fn a_claim_that_must_fail_does() {
    // "a < b" on data where a is clearly larger: p near 1, never significant.
    let w = welch_less(&[10.0, 10.2, 9.9], &[5.0, 5.1, 4.8]).unwrap();
    assert!(w.p_less > 0.99, "{w:?}");
    // "a ≈ b within 0.1" on means 5 apart: TOST cannot reject non-equivalence.
    assert!(tost(&[10.0, 10.2, 9.9], &[5.0, 5.1, 4.8], 0.1).unwrap() > 0.99);
}

/// |a − b| ≤ 1e-12 · max(1, |b|).
fn near(a: f64, b: f64, what: &str) {
    assert!(
        (a - b).abs() <= 1e-12 * b.abs().max(1.0),
        "{what}: repro {a} vs reference {b}"
    );
}

/// N(mean, sd²) draws by Box–Muller.
fn normals(rng: &mut ChaCha8Rng, n: usize, mean: f64, sd: f64) -> Vec<f64> {
    (0..n)
        .map(|_| {
            let (u, v): (f64, f64) = (1.0 - rng.random::<f64>(), rng.random());
            mean + sd * (-2.0 * u.ln()).sqrt() * (std::f64::consts::TAU * v).cos()
        })
        .collect()
}

fn f64s(v: &Value) -> Vec<f64> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_f64().unwrap())
        .collect()
}

fn name(a: Aggregate) -> &'static str {
    match a {
        Aggregate::Iqm => "iqm",
        Aggregate::Mean => "mean",
        Aggregate::Median => "median",
    }
}

/// The scores replicate `ix` resamples.
fn resampled(scores: &[Vec<f64>], ix: &[Vec<usize>]) -> Vec<Vec<f64>> {
    scores
        .iter()
        .zip(ix)
        .map(|(t, i)| i.iter().map(|&j| t[j]).collect())
        .collect()
}

#[test]
fn aggregates_and_intervals_match_numpy_and_scipy() {
    let mut rng = ChaCha8Rng::seed_from_u64(11);
    // IQM: every n from 1 to 13 (trim 0, 1, 2 or 3 each side), negatives, ties, a larger n.
    let mut iqm_cases: Vec<Vec<f64>> = (1..=13).map(|n| normals(&mut rng, n, -1.0, 5.0)).collect();
    iqm_cases.extend((1..=13).map(|n| (0..n).map(|i| ((i * 7) % 3) as f64 - 1.0).collect()));
    iqm_cases.push(vec![2.0, 2.0, 2.0, -2.0, 2.0, 1e6, -1e6, 2.0]);
    iqm_cases.push(normals(&mut rng, 1001, 3.0, 100.0));

    let equal: Vec<Vec<f64>> = (0..5)
        .map(|t| normals(&mut rng, 10, t as f64, 1.0 + t as f64))
        .collect();
    let unequal: Vec<Vec<f64>> = [3, 7, 5, 12]
        .iter()
        .enumerate()
        .map(|(t, &n)| normals(&mut rng, n, -2.0 * t as f64, 3.0))
        .collect();
    let ties: Vec<Vec<f64>> = (0..4)
        .map(|t| (0..6).map(|j| ((t + j * 5) % 4) as f64).collect())
        .collect();
    let mut runs: Vec<(Vec<Vec<f64>>, Aggregate, f64, usize)> = Vec::new();
    for agg in [Aggregate::Iqm, Aggregate::Mean, Aggregate::Median] {
        runs.push((equal.clone(), agg, 0.95, 2000));
        runs.push((unequal.clone(), agg, 0.9, 1500));
        runs.push((ties.clone(), agg, 0.95, 1000));
    }
    // One task: the plain bootstrap of the IQM over runs; one run: a degenerate interval.
    runs.push((
        vec![normals(&mut rng, 8, 50.0, 20.0)],
        Aggregate::Iqm,
        0.95,
        2000,
    ));
    runs.push((vec![vec![4.25]], Aggregate::Iqm, 0.95, 50));
    runs.push((vec![vec![1.0, 9.0], vec![3.0]], Aggregate::Mean, 0.5, 999));

    let mut cases = Vec::new();
    let mut draws = Vec::new();
    for (k, (scores, agg, conf, reps)) in runs.iter().enumerate() {
        let sizes: Vec<usize> = scores.iter().map(Vec::len).collect();
        let idx = bootstrap_indices(&sizes, *reps, 100 + k as u64);
        cases.push(json!({"scores": scores, "aggregate": name(*agg),
                          "confidence": conf, "indices": idx}));
        draws.push(idx);
    }
    let input = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(
        input.path(),
        json!({"iqm": iqm_cases, "bootstrap": cases}).to_string(),
    )
    .unwrap();
    let out = repro_testkit::run_script("bootstrap_reference.py", &[input.path()]);
    let reference: Value = serde_json::from_str(&out).unwrap();

    for (x, r) in iqm_cases.iter().zip(f64s(&reference["iqm"])) {
        near(
            iqm(x).unwrap(),
            r,
            &format!("iqm of {} values {x:?}", x.len()),
        );
    }
    let results = reference["bootstrap"].as_array().unwrap();
    assert_eq!(results.len(), runs.len());
    for (k, ((scores, agg, conf, reps), r)) in runs.iter().zip(results).enumerate() {
        let what = format!("case {k} ({agg:?}, {} task(s))", scores.len());
        for (i, (ix, want)) in draws[k].iter().zip(f64s(&r["replicates"])).enumerate() {
            let got = agg.of(&resampled(scores, ix)).unwrap();
            near(got, want, &format!("{what}, replicate {i}"));
        }
        let ci = interval_from_indices(scores, *agg, &draws[k], *conf).unwrap();
        near(
            ci.point,
            r["point"].as_f64().unwrap(),
            &format!("{what}: point"),
        );
        near(ci.lo, r["lo"].as_f64().unwrap(), &format!("{what}: lo"));
        near(ci.hi, r["hi"].as_f64().unwrap(), &format!("{what}: hi"));
        let streamed = stratified_bootstrap_ci(scores, *agg, *reps, *conf, 100 + k as u64);
        assert_eq!(streamed.unwrap(), ci, "{what}: streamed vs explicit draws");
    }
}

#[test]
fn intervals_bracket_the_estimate_and_shrink_with_more_runs() {
    // Overlapping tasks (well-separated ones make the pooled IQM's spread jumpy at few runs);
    // widths averaged over a few data sets, which should roughly halve as runs quadruple.
    let mut rng = ChaCha8Rng::seed_from_u64(3);
    for agg in [Aggregate::Iqm, Aggregate::Mean, Aggregate::Median] {
        let mut widths = Vec::new();
        for runs in [5, 20, 80] {
            let mut total = 0.0;
            for set in 0..5 {
                let scores: Vec<Vec<f64>> = (0..5)
                    .map(|t| normals(&mut rng, runs, t as f64, 2.0))
                    .collect();
                let Interval { point, lo, hi } =
                    stratified_bootstrap_ci(&scores, agg, 2000, 0.95, set).unwrap();
                assert!(
                    lo <= point && point <= hi,
                    "{agg:?}, {runs} runs: {lo} {point} {hi}"
                );
                total += hi - lo;
            }
            widths.push(total / 5.0);
        }
        assert!(
            widths[0] > 1.4 * widths[1] && widths[1] > 1.4 * widths[2],
            "{agg:?}: mean widths {widths:?} should roughly halve as runs quadruple"
        );
    }
}

#[test]
fn intervals_cover_the_true_aggregate() {
    // 3 tasks × 10 runs from N(0|5|10, 2²): every aggregate's true value is 5 (the pooled
    // mixture is symmetric about 5). The percentile interval undercovers a little at 10 runs.
    let mut rng = ChaCha8Rng::seed_from_u64(5);
    let trials = 300;
    for agg in [Aggregate::Iqm, Aggregate::Mean, Aggregate::Median] {
        let mut covered = 0;
        for trial in 0..trials {
            let scores: Vec<Vec<f64>> = (0..3)
                .map(|t| normals(&mut rng, 10, 5.0 * t as f64, 2.0))
                .collect();
            let ci = stratified_bootstrap_ci(&scores, agg, 1000, 0.95, trial).unwrap();
            covered += usize::from(ci.lo <= 5.0 && 5.0 <= ci.hi);
        }
        let rate = covered as f64 / trials as f64;
        assert!((0.86..=0.99).contains(&rate), "{agg:?}: coverage {rate}");
    }
}

#[test]
fn resampled_runs_stay_within_their_task() {
    // Disjoint ranges per task, unequal run counts.
    let mut rng = ChaCha8Rng::seed_from_u64(9);
    let ranges = [0.0, 10.0, 100.0];
    let sizes = [4, 6, 9];
    let scores: Vec<Vec<f64>> = ranges
        .iter()
        .zip(sizes)
        .map(|(&lo, n)| (0..n).map(|_| lo + rng.random::<f64>()).collect())
        .collect();
    let draws = bootstrap_indices(&sizes, 2000, 1);
    for ix in &draws {
        for (t, task) in resampled(&scores, ix).iter().enumerate() {
            assert!(ix[t].len() == sizes[t] && ix[t].iter().all(|&j| j < sizes[t]));
            let lo = ranges[t];
            let mean = task.iter().sum::<f64>() / task.len() as f64;
            assert!(
                (lo..lo + 1.0).contains(&mean),
                "a task mean left its range: {mean}"
            );
        }
    }
    // The pooled 19 values keep 4, 6 and 9 per task, so the IQM (sorted positions 4..15) is 6
    // values of task 1 and 5 of task 2 in every replicate.
    let iqm_range = (60.0 + 500.0) / 11.0..(66.0 + 505.0) / 11.0;
    let mean_range = 110.0 / 3.0..113.0 / 3.0;
    for (agg, range) in [
        (Aggregate::Iqm, iqm_range),
        (Aggregate::Mean, mean_range),
        (Aggregate::Median, 10.0..11.0),
    ] {
        for ix in &draws {
            let v = agg.of(&resampled(&scores, ix)).unwrap();
            assert!(
                range.contains(&v),
                "{agg:?} replicate {v} outside {range:?}"
            );
        }
        let ci = stratified_bootstrap_ci(&scores, agg, 2000, 0.95, 1).unwrap();
        for v in [ci.point, ci.lo, ci.hi] {
            assert!(range.contains(&v), "{agg:?}: {ci:?} outside {range:?}");
        }
    }
}
