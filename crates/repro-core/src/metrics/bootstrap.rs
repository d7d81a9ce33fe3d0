//! Stratified bootstrap confidence intervals for aggregate RL returns, as rliable computes them
//! (`rliable.library.get_interval_estimates` with its `StratifiedBootstrap`, the percentile
//! method): each replicate resamples the runs (seeds) of every task (game) with replacement,
//! independently per task, so a resampled run never crosses into another task; the aggregate
//! of the resampled (tasks × runs) scores is one replicate, and the interval is numpy's
//! linearly interpolated percentiles of the replicates (`np.percentile(reps, [2.5, 97.5])` for
//! 95%). The point estimate is the aggregate of the original scores.
//!
//! Unlike rliable, tasks may have different numbers of runs: each task resamples its own runs.
//! With one task this is the plain (non-stratified) bootstrap over runs.
//!
//! Draws come from ChaCha8 seeded by the caller, so an interval is a pure function of its inputs.
//! [`bootstrap_indices`] returns the draws themselves and [`interval_from_indices`] computes an
//! interval from given draws, so the tests can replay them through numpy and scipy.

use anyhow::{Result, bail};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::Serialize;

use super::stats::iqm_in_place;

/// rliable's default number of bootstrap replicates (`get_interval_estimates(reps=50000)`).
pub const DEFAULT_REPS: usize = 50_000;
/// rliable's default interval size (`confidence_interval_size=0.95`).
pub const DEFAULT_CONFIDENCE: f64 = 0.95;

/// The aggregate of a (tasks × runs) score matrix, as rliable's `metrics` module defines it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Aggregate {
    /// Interquartile mean of all scores pooled (`aggregate_iqm`:
    /// `scipy.stats.trim_mean(scores, 0.25, axis=None)`). With unequal run counts, a task with
    /// more runs weighs more.
    Iqm,
    /// Mean of the per-task mean scores (`aggregate_mean`); every task weighs the same.
    Mean,
    /// Median of the per-task mean scores (`aggregate_median`; `np.median`, the average of the
    /// two middle task means for an even number of tasks).
    Median,
}

/// A point estimate with its bootstrap percentile interval.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Interval {
    /// The aggregate of the original scores.
    pub point: f64,
    pub lo: f64,
    pub hi: f64,
}

impl Aggregate {
    /// The aggregate of `scores` (one vector of run scores per task).
    pub fn of(self, scores: &[Vec<f64>]) -> Result<f64> {
        check_scores(scores)?;
        let (mut values, bounds) = flatten(scores);
        Ok(self.of_flat(&mut values, &bounds))
    }

    /// The aggregate of checked scores laid out flat, task `t` at `values[bounds[t]..bounds[t + 1]]`;
    /// `values` may be reordered.
    fn of_flat(self, values: &mut [f64], bounds: &[usize]) -> f64 {
        match self {
            Aggregate::Iqm => iqm_in_place(values),
            Aggregate::Mean | Aggregate::Median => {
                let mut means: Vec<f64> = bounds
                    .windows(2)
                    .map(|w| values[w[0]..w[1]].iter().sum::<f64>() / (w[1] - w[0]) as f64)
                    .collect();
                if self == Aggregate::Mean {
                    means.iter().sum::<f64>() / means.len() as f64
                } else {
                    means.sort_unstable_by(f64::total_cmp);
                    let k = means.len();
                    if k % 2 == 1 {
                        means[k / 2]
                    } else {
                        (means[k / 2 - 1] + means[k / 2]) / 2.0
                    }
                }
            }
        }
    }
}

/// Interval of `aggregate` over `scores` (one vector of run scores per task) from `reps`
/// stratified bootstrap replicates drawn from ChaCha8 seeded with `seed`; `confidence` in (0, 1),
/// e.g. [`DEFAULT_CONFIDENCE`], with [`DEFAULT_REPS`] replicates as rliable's default.
/// Identical to [`interval_from_indices`] on [`bootstrap_indices`]`(runs, reps, seed)`, without
/// holding every replicate's draws at once.
pub fn stratified_bootstrap_ci(
    scores: &[Vec<f64>],
    aggregate: Aggregate,
    reps: usize,
    confidence: f64,
    seed: u64,
) -> Result<Interval> {
    check_scores(scores)?;
    check_reps(reps)?;
    check_confidence(confidence)?;
    let (original, bounds) = flatten(scores);
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut idx = Vec::with_capacity(original.len());
    let mut buf = vec![0.0; original.len()];
    let mut stats = Vec::with_capacity(reps);
    for _ in 0..reps {
        idx.clear();
        draw_replicate(scores, &mut rng, &mut idx);
        for (b, &i) in buf.iter_mut().zip(&idx) {
            *b = original[i];
        }
        stats.push(aggregate.of_flat(&mut buf, &bounds));
    }
    finish(original, &bounds, aggregate, stats, confidence)
}

/// The draws [`stratified_bootstrap_ci`] makes for tasks with `runs[t]` runs each:
/// `indices[r][t][j]` is the run of task `t` that stands in for its run `j` in replicate `r`
/// (uniform over `0..runs[t]`, with replacement). Holds reps × Σ runs indices; for tests and
/// inspection.
pub fn bootstrap_indices(runs: &[usize], reps: usize, seed: u64) -> Vec<Vec<Vec<usize>>> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    (0..reps)
        .map(|_| {
            runs.iter()
                .map(|&n| (0..n).map(|_| draw(&mut rng, n)).collect())
                .collect()
        })
        .collect()
}

/// The interval of `aggregate` over `scores` whose bootstrap replicates resample with
/// `indices` (shaped as [`bootstrap_indices`] returns: replicate × task × run, each index a run
/// of that same task): the point estimate on `scores`, and `np.percentile` (linear) of the
/// replicates' aggregates at 100·(1 − confidence)/2 and 100·(1 + confidence)/2.
pub fn interval_from_indices(
    scores: &[Vec<f64>],
    aggregate: Aggregate,
    indices: &[Vec<Vec<usize>>],
    confidence: f64,
) -> Result<Interval> {
    check_scores(scores)?;
    check_reps(indices.len())?;
    check_confidence(confidence)?;
    let (original, bounds) = flatten(scores);
    let mut buf = vec![0.0; original.len()];
    let mut stats = Vec::with_capacity(indices.len());
    for (r, rep) in indices.iter().enumerate() {
        if rep.len() != scores.len() {
            bail!(
                "bootstrap: replicate {r} has indices for {} task(s), the scores have {}",
                rep.len(),
                scores.len()
            );
        }
        let mut k = 0;
        for (t, (task_idx, task)) in rep.iter().zip(scores).enumerate() {
            if task_idx.len() != task.len() {
                bail!(
                    "bootstrap: replicate {r}, task {t}: {} index(es) for {} run(s)",
                    task_idx.len(),
                    task.len()
                );
            }
            for &i in task_idx {
                if i >= task.len() {
                    bail!(
                        "bootstrap: replicate {r}, task {t}: run index {i} out of range \
                         ({} run(s))",
                        task.len()
                    );
                }
                buf[k] = task[i];
                k += 1;
            }
        }
        stats.push(aggregate.of_flat(&mut buf, &bounds));
    }
    finish(original, &bounds, aggregate, stats, confidence)
}

/// `np.percentile(x, q)` with numpy's default (`method="linear"`) for `q` in [0, 100]: the
/// virtual index q/100 · (n − 1) between the sorted values, interpolated as numpy's `_lerp`.
/// Sorts `x`.
pub fn percentile(x: &mut [f64], q: f64) -> Result<f64> {
    if x.is_empty() {
        bail!("percentile: no values");
    }
    if let Some(v) = x.iter().find(|v| !v.is_finite()) {
        bail!("percentile: non-finite value {v}");
    }
    if !(0.0..=100.0).contains(&q) {
        bail!("percentile: q must be in [0, 100], got {q}");
    }
    x.sort_unstable_by(f64::total_cmp);
    Ok(percentile_sorted(x, q))
}

fn percentile_sorted(x: &[f64], q: f64) -> f64 {
    let n = x.len();
    let q = q / 100.0;
    // numpy's _compute_virtual_index(n, q, alpha, beta) for "linear", term for term.
    const ALPHA: f64 = 1.0;
    const BETA: f64 = 1.0;
    let virtual_index = n as f64 * q + (ALPHA + q * (1.0 - ALPHA - BETA)) - 1.0;
    if virtual_index >= (n - 1) as f64 {
        return x[n - 1];
    }
    if virtual_index < 0.0 {
        return x[0];
    }
    let below = virtual_index.floor();
    let gamma = virtual_index - below;
    let (a, b) = (x[below as usize], x[below as usize + 1]);
    let diff = b - a;
    if gamma >= 0.5 {
        b - diff * (1.0 - gamma)
    } else {
        a + diff * gamma
    }
}

fn finish(
    mut original: Vec<f64>,
    bounds: &[usize],
    aggregate: Aggregate,
    mut stats: Vec<f64>,
    confidence: f64,
) -> Result<Interval> {
    let point = aggregate.of_flat(&mut original, bounds);
    stats.sort_unstable_by(f64::total_cmp);
    Ok(Interval {
        point,
        lo: percentile_sorted(&stats, 100.0 * (1.0 - confidence) / 2.0),
        hi: percentile_sorted(&stats, 100.0 * (1.0 + confidence) / 2.0),
    })
}

/// One replicate's draws for every task, appended to `idx` as flat indices into the flattened
/// scores.
fn draw_replicate(scores: &[Vec<f64>], rng: &mut ChaCha8Rng, idx: &mut Vec<usize>) {
    let mut start = 0;
    for task in scores {
        let n = task.len();
        idx.extend((0..n).map(|_| start + draw(rng, n)));
        start += n;
    }
}

/// A uniform run index in 0..n (through u64, so the stream does not depend on usize's width).
fn draw(rng: &mut ChaCha8Rng, n: usize) -> usize {
    rng.random_range(0..n as u64) as usize
}

fn flatten(scores: &[Vec<f64>]) -> (Vec<f64>, Vec<usize>) {
    let mut bounds = Vec::with_capacity(scores.len() + 1);
    bounds.push(0);
    for task in scores {
        bounds.push(bounds.last().unwrap() + task.len());
    }
    (scores.concat(), bounds)
}

fn check_scores(scores: &[Vec<f64>]) -> Result<()> {
    if scores.is_empty() {
        bail!("bootstrap: no tasks (scores must hold one vector of run scores per task)");
    }
    for (t, task) in scores.iter().enumerate() {
        if task.is_empty() {
            bail!("bootstrap: task {t} has no runs");
        }
        if let Some((j, v)) = task.iter().enumerate().find(|(_, v)| !v.is_finite()) {
            bail!("bootstrap: task {t}, run {j}: non-finite score {v}");
        }
    }
    Ok(())
}

fn check_reps(reps: usize) -> Result<()> {
    if reps == 0 {
        bail!("bootstrap: reps must be at least 1 (rliable's default is {DEFAULT_REPS})");
    }
    Ok(())
}

fn check_confidence(confidence: f64) -> Result<()> {
    if !(confidence > 0.0 && confidence < 1.0) {
        bail!("bootstrap: confidence must be in (0, 1), e.g. 0.95; got {confidence}");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scores() -> Vec<Vec<f64>> {
        vec![
            vec![1.0, 2.0, 4.0],
            vec![10.0, 12.0],
            vec![-3.0, 0.5, 7.0, 9.0],
        ]
    }

    #[test]
    fn bad_input_is_an_error() {
        let msg = |r: Result<Interval>| r.unwrap_err().to_string();
        let ci = |s: &[Vec<f64>], reps, c| stratified_bootstrap_ci(s, Aggregate::Iqm, reps, c, 0);
        assert!(msg(ci(&[], 10, 0.95)).contains("no tasks"));
        assert!(msg(ci(&[vec![1.0], vec![]], 10, 0.95)).contains("task 1 has no runs"));
        assert!(msg(ci(&[vec![1.0, f64::NAN]], 10, 0.95)).contains("task 0, run 1: non-finite"));
        assert!(msg(ci(&scores(), 0, 0.95)).contains("reps"));
        for c in [0.0, 1.0, -0.5, 95.0, f64::NAN] {
            assert!(msg(ci(&scores(), 10, c)).contains("confidence"), "{c}");
        }
        let s = scores();
        let mut bad = bootstrap_indices(&[3, 2, 4], 2, 0);
        bad[1][2][0] = 4;
        let e = interval_from_indices(&s, Aggregate::Mean, &bad, 0.95).unwrap_err();
        assert!(
            e.to_string().contains("replicate 1, task 2: run index 4"),
            "{e}"
        );
        let short = bootstrap_indices(&[3, 2], 2, 0);
        assert!(interval_from_indices(&s, Aggregate::Mean, &short, 0.95).is_err());
        let wrong = bootstrap_indices(&[3, 3, 4], 2, 0);
        assert!(interval_from_indices(&s, Aggregate::Mean, &wrong, 0.95).is_err());
        assert!(percentile(&mut [], 50.0).is_err());
        assert!(percentile(&mut [1.0], 101.0).is_err());
    }

    #[test]
    fn streaming_equals_the_explicit_draws() {
        let s = scores();
        for agg in [Aggregate::Iqm, Aggregate::Mean, Aggregate::Median] {
            let idx = bootstrap_indices(&[3, 2, 4], 300, 7);
            let a = interval_from_indices(&s, agg, &idx, 0.9).unwrap();
            let b = stratified_bootstrap_ci(&s, agg, 300, 0.9, 7).unwrap();
            assert_eq!(a, b, "{agg:?}");
            assert_eq!(a.point, agg.of(&s).unwrap());
        }
        let c = stratified_bootstrap_ci(&s, Aggregate::Iqm, 300, 0.9, 8).unwrap();
        assert_ne!(
            c,
            stratified_bootstrap_ci(&s, Aggregate::Iqm, 300, 0.9, 7).unwrap()
        );
    }

    #[test]
    fn aggregates() {
        let s = scores();
        // Pooled: -3, 0.5, 1, 2, 4, 7, 9, 10, 12 → trim 2 each side → 1, 2, 4, 7, 9.
        assert_eq!(Aggregate::Iqm.of(&s).unwrap(), 23.0 / 5.0);
        // Task means 7/3, 11, 13.5/4.
        assert_eq!(Aggregate::Median.of(&s).unwrap(), 3.375);
        let mean = (7.0 / 3.0 + 11.0 + 3.375) / 3.0;
        assert!((Aggregate::Mean.of(&s).unwrap() - mean).abs() < 1e-12);
        assert_eq!(
            Aggregate::Median.of(&s[..2]).unwrap(),
            (7.0 / 3.0 + 11.0) / 2.0
        );
    }

    #[test]
    fn percentile_is_numpys_linear() {
        let mut x = [4.0, 1.0, 3.0, 2.0];
        assert_eq!(percentile(&mut x, 0.0).unwrap(), 1.0);
        assert_eq!(percentile(&mut x, 100.0).unwrap(), 4.0);
        assert_eq!(percentile(&mut x, 50.0).unwrap(), 2.5);
        assert_eq!(percentile(&mut x, 25.0).unwrap(), 1.75);
        assert_eq!(percentile(&mut [7.0], 2.5).unwrap(), 7.0);
    }
}
