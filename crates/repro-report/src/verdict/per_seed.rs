//! The per-seed one-sample tests of `verdict`: a mean over seeds against a threshold, of the
//! check's metric itself (`above`/`below`) or of a Kendall τ computed per seed (`increasing`,
//! `rank_agreement`).

use std::collections::BTreeMap;

use super::result::{CheckResult, Group, POWER, Verdict, group, show};
use crate::numbers::num;
use crate::observe::arm_label;
use crate::select::{Point, Selection};
use repro_core::metrics::stats;
use repro_core::pipeline::claims::ClaimSpec;

/// Kendall τ between two numbers of each observation across the arms along `axes` (every
/// combination of their values), per seed (and per value of any other varying coordinate),
/// then the mean τ against `threshold` (above it when `up`, below it otherwise).
#[allow(clippy::too_many_arguments)]
pub(super) fn per_seed_tau(
    c: &ClaimSpec,
    sel: &Selection,
    axes: &[String],
    label: &str,
    threshold: f64,
    up: bool,
    r: &mut CheckResult,
    pair_of: impl Fn(&Point) -> Option<(f64, f64)>,
) {
    let strata: Vec<String> = sel
        .axes
        .iter()
        .filter(|a| !axes.contains(a))
        .cloned()
        .collect();
    let mut by_seed: BTreeMap<(i64, String), Vec<(f64, f64)>> = BTreeMap::new();
    for p in &sel.points {
        if let Some(xy) = pair_of(p) {
            let stratum = arm_label(&p.coords, &strata);
            by_seed.entry((p.seed, stratum)).or_default().push(xy);
        }
    }
    let mut g = Group {
        label: label.to_string(),
        seeds: Vec::new(),
        values: Vec::new(),
        mean: None,
        ci95: None,
    };
    for ((seed, _), xy) in &by_seed {
        let (x, y): (Vec<f64>, Vec<f64>) = xy.iter().copied().unzip();
        if let Ok(Some(tau)) = stats::kendall_tau_b(&x, &y) {
            g.seeds.push(*seed);
            g.values.push(tau);
        }
    }
    if let Ok(s) = stats::summarize(&g.values) {
        g.mean = Some(s.mean);
        g.ci95 = s.ci95;
    }
    r.measured = show(&g);
    r.seeds = g.values.len().to_string();
    r.groups = vec![g.clone()];
    if g.values.is_empty() {
        r.note = Some("no seed has two arms with distinct values to rank".into());
        r.verdict = Verdict::NotRun;
        return;
    }
    r.statistics
        .insert("tau_mean".into(), g.mean.unwrap_or(f64::NAN));
    mean_beyond(c, &g, threshold, up, "τ", r);
}

/// H₁: mean over seeds > `value` (`up`) or < `value`, one-sample t-test; needs exactly one
/// point per seed.
pub(super) fn one_sample(
    c: &ClaimSpec,
    sel: &Selection,
    value: f64,
    up: bool,
    r: &mut CheckResult,
) {
    let all: Vec<&Point> = sel.points.iter().collect();
    let g = group("mean".into(), &all);
    r.measured = show(&g);
    r.seeds = g.values.len().to_string();
    r.groups = vec![g.clone()];
    let mut per_seed: BTreeMap<i64, usize> = BTreeMap::new();
    for p in &sel.points {
        *per_seed.entry(p.seed).or_default() += 1;
    }
    if let Some((seed, n)) = per_seed.iter().find(|(_, n)| **n > 1) {
        let still = match sel.axes.len() {
            0 => "no coordinate tells them apart".to_string(),
            1 => format!("{} still varies", sel.axes[0]),
            _ => format!("{} still vary", sel.axes.join(", ")),
        };
        r.note = Some(format!(
            "{n} values for seed {seed}, one per seed needed: {still}; narrow with `where` or collapse with `tune`"
        ));
        r.verdict = Verdict::NotRun;
        return;
    }
    if g.values.is_empty() {
        r.note = Some("no finished run with a value".into());
        r.verdict = Verdict::NotRun;
        return;
    }
    r.measured += &format!(" vs {}", num(value));
    mean_beyond(c, &g, value, up, "the value", r);
}

/// The shared end of both tests: H₁ "mean of `g` > `threshold`" (`up`) or "< `threshold`" by a
/// one-sample t-test over seeds (signs flipped for "below"); at least 2 values needed. `what`
/// names the per-seed quantity in the notes.
fn mean_beyond(
    c: &ClaimSpec,
    g: &Group,
    threshold: f64,
    up: bool,
    what: &str,
    r: &mut CheckResult,
) {
    if g.values.len() < 2 {
        r.note = Some("one seed gives no variance estimate: at least 2 needed".into());
        r.verdict = Verdict::Inconclusive;
        return;
    }
    let sign = if up { 1.0 } else { -1.0 };
    let signed: Vec<f64> = g.values.iter().map(|v| sign * v).collect();
    let flipped: Vec<f64> = signed.iter().map(|v| -v).collect();
    let mean = g.mean.unwrap_or(f64::NAN);
    match (
        stats::t_greater(&signed, sign * threshold),
        stats::t_greater(&flipped, -sign * threshold),
    ) {
        (Ok(p), Ok(p_other)) => {
            r.statistics.insert("p".into(), p);
            r.measured += &format!("; t-test p = {}", num(p));
            r.verdict = if p < c.alpha {
                Verdict::Reproduced
            } else if p_other < c.alpha {
                r.note = Some(format!(
                    "significant in the opposite direction (p = {})",
                    num(p_other)
                ));
                Verdict::NotReproduced
            } else {
                if sign * mean > sign * threshold {
                    r.seeds_needed = stats::seeds_needed_one(&g.values, threshold, c.alpha, POWER)
                        .ok()
                        .flatten();
                } else {
                    r.note = Some("the observed mean lies on the other side".into());
                }
                Verdict::Inconclusive
            };
        }
        _ => {
            r.note = Some(format!("{what} is the same for every seed: read directly"));
            r.verdict = if sign * mean > sign * threshold {
                Verdict::Reproduced
            } else {
                Verdict::NotReproduced
            };
        }
    }
}
