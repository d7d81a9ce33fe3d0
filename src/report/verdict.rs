//! Claim checks evaluated on a profile's observations: per check and experiment, the numbers
//! compared, the statistic, and a verdict: reproduced, not reproduced, inconclusive (with the
//! seeds a decision would need), not run, or not checkable at this profile.

use std::collections::BTreeMap;

use serde::Serialize;
use serde_json::Value;

use super::observe::{ExperimentData, Inputs, Observation, Source, arm_label};
use crate::metrics::stats::{self, Summary};
use crate::pipeline::claims::{Arm, ClaimSpec, MetricRef, TestSpec};
use crate::pipeline::spec::Pipeline;

/// Power assumed when saying how many seeds would decide an inconclusive check.
pub const POWER: f64 = 0.8;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    Reproduced,
    NotReproduced,
    Inconclusive,
    NotRun,
    NotCheckable,
}

impl Verdict {
    pub fn text(self) -> &'static str {
        match self {
            Verdict::Reproduced => "reproduced",
            Verdict::NotReproduced => "not reproduced",
            Verdict::Inconclusive => "inconclusive",
            Verdict::NotRun => "not run",
            Verdict::NotCheckable => "not checkable at this profile",
        }
    }
}

/// The numbers of one side of a comparison.
#[derive(Debug, Clone, Serialize)]
pub struct Group {
    pub label: String,
    pub seeds: Vec<i64>,
    pub values: Vec<f64>,
    pub mean: Option<f64>,
    pub ci95: Option<(f64, f64)>,
}

/// One check on one experiment and metric.
#[derive(Debug, Clone, Serialize)]
pub struct CheckResult {
    pub id: String,
    pub claim: String,
    pub text: String,
    pub experiment: Option<String>,
    pub metric: Option<String>,
    /// The comparison in words (`early < none`).
    pub test: String,
    pub verdict: Verdict,
    /// The measurement in one line, with its statistic.
    pub measured: String,
    /// Seeds per side (`3+3`, or `3` for per-seed statistics).
    pub seeds: String,
    pub groups: Vec<Group>,
    /// p-values, t, df, τ… by name.
    pub statistics: BTreeMap<String, f64>,
    pub seeds_needed: Option<usize>,
    /// Why the verdict is what it is, when that is not obvious from the numbers.
    pub note: Option<String>,
    pub defaults: Option<String>,
    /// The artifacts every number above came from.
    pub sources: Vec<Source>,
}

/// One paper claim, over its checks.
#[derive(Debug, Clone, Serialize)]
pub struct ClaimSummary {
    pub claim: String,
    pub verdict: Verdict,
    pub checks: usize,
    pub reproduced: usize,
}

/// Evaluate every check of the pipeline on one profile's inputs.
pub fn evaluate(p: &Pipeline, inputs: &Inputs) -> Vec<CheckResult> {
    let mut out = Vec::new();
    for c in &p.claims {
        let base = CheckResult {
            id: c.id.clone(),
            claim: c.claim.clone(),
            text: c.text.trim().to_string(),
            experiment: None,
            metric: None,
            test: c.test.as_ref().map(describe).unwrap_or_default(),
            verdict: Verdict::NotRun,
            measured: String::new(),
            seeds: String::new(),
            groups: Vec::new(),
            statistics: BTreeMap::new(),
            seeds_needed: None,
            note: c.pending.as_ref().map(|s| s.trim().to_string()),
            defaults: c.defaults.as_ref().map(|s| s.trim().to_string()),
            sources: Vec::new(),
        };
        let Some(test) = c.test.as_ref().filter(|_| c.pending.is_none()) else {
            out.push(base);
            continue;
        };
        for e in &c.experiments {
            for m in &c.metric {
                let mut r = base.clone();
                r.experiment = Some(e.clone());
                r.metric = Some(m.clone());
                match (inputs.experiment(e), MetricRef::parse(m)) {
                    (None, _) => {
                        r.note = Some(format!(
                            "experiment `{e}` is not part of profile `{}`",
                            inputs.profile
                        ))
                    }
                    (Some(_), Err(err)) => r.note = Some(err),
                    (Some(data), Ok(metric)) => check(c, test, data, &metric, &mut r),
                }
                if !decides(c, &inputs.profile) {
                    r.note = Some(format!(
                        "profile `{}` cannot decide it (decided at: {})",
                        inputs.profile,
                        c.decide_at.join(", ")
                    ));
                    r.verdict = Verdict::NotCheckable;
                    r.seeds_needed = None;
                }
                out.push(r);
            }
        }
    }
    out
}

fn decides(c: &ClaimSpec, profile: &str) -> bool {
    c.decide_at.is_empty() || c.decide_at.iter().any(|p| p == profile)
}

/// The comparison in words.
pub fn describe(t: &TestSpec) -> String {
    let arm = |a: &Arm| {
        let coords: serde_json::Map<String, Value> =
            a.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
        let axes: Vec<String> = a.keys().cloned().collect();
        arm_label(&coords, &axes)
    };
    match t {
        TestSpec::Less { a, b } => format!("{} < {}", arm(a), arm(b)),
        TestSpec::Greater { a, b } => format!("{} > {}", arm(a), arm(b)),
        TestSpec::Equivalent { a, b, margin } => format!("{} ≈ {} (±{margin})", arm(a), arm(b)),
        TestSpec::Increasing { along } => format!("increases with {along}"),
        TestSpec::RankAgreement {
            with,
            across,
            above,
            below,
        } => match (above, below) {
            (Some(t), _) => format!("ranks {across} like {with} (τ > {t})"),
            (_, Some(t)) => format!("does not rank {across} like {with} (τ < {t})"),
            _ => format!("ranks {across} like {with}"),
        },
    }
}

/// Numbers with four significant digits, in scientific notation when very large or small.
pub fn num(x: f64) -> String {
    if !x.is_finite() {
        return x.to_string();
    }
    let a = x.abs();
    if a != 0.0 && !(1e-3..1e5).contains(&a) {
        format!("{x:.3e}")
    } else {
        let digits = if a == 0.0 {
            3
        } else {
            (3 - a.log10().floor() as i32).clamp(0, 6) as usize
        };
        format!("{x:.digits$}")
    }
}

fn group(label: String, obs: &[&Observation], kind: &ExperimentData, m: &MetricRef) -> Group {
    let mut seeds = Vec::new();
    let mut values = Vec::new();
    for o in obs {
        if let Some(v) = o.value(kind.kind, m) {
            seeds.push(o.seed);
            values.push(v);
        }
    }
    let s: Option<Summary> = stats::summarize(&values).ok();
    Group {
        label,
        seeds,
        values,
        mean: s.map(|s| s.mean),
        ci95: s.and_then(|s| s.ci95),
    }
}

fn show(g: &Group) -> String {
    match (g.mean, g.ci95) {
        (Some(m), Some((lo, hi))) => format!("{} {} [{}, {}]", g.label, num(m), num(lo), num(hi)),
        (Some(m), None) => format!("{} {}", g.label, num(m)),
        _ => format!("{} (no values)", g.label),
    }
}

fn check(
    c: &ClaimSpec,
    test: &TestSpec,
    data: &ExperimentData,
    m: &MetricRef,
    r: &mut CheckResult,
) {
    let mut sources: Vec<Source> = data.observations.iter().map(|o| o.source.clone()).collect();
    sources.sort();
    sources.dedup();
    r.sources = sources;
    let missing = (!data.missing.is_empty()).then(|| {
        format!(
            "{} of {} runs of `{}` have not finished (first: {})",
            data.missing.len(),
            data.planned,
            data.name,
            data.missing[0]
        )
    });
    match test {
        TestSpec::Less { a, b } => pair(c, data, m, a, b, Side::Less, r),
        TestSpec::Greater { a, b } => pair(c, data, m, a, b, Side::Greater, r),
        TestSpec::Equivalent { a, b, margin } => equivalent(c, data, m, a, b, *margin, r),
        TestSpec::Increasing { along } => {
            let label = format!("τ({along}, {m})");
            per_seed_tau(c, data, along, &label, 0.0, true, r, |o| {
                Some((o.coords.get(along)?.as_f64()?, o.value(data.kind, m)?))
            })
        }
        TestSpec::RankAgreement {
            with,
            above,
            below,
            across,
        } => {
            let reference = MetricRef::parse(with).unwrap_or(MetricRef {
                name: with.clone(),
                reduce: None,
            });
            let (threshold, up) = match (above, below) {
                (Some(t), _) => (*t, true),
                (_, Some(t)) => (*t, false),
                _ => (0.0, true),
            };
            let label = format!("τ({m}, {with})");
            per_seed_tau(c, data, across, &label, threshold, up, r, |o| {
                Some((o.value(data.kind, m)?, o.value(data.kind, &reference)?))
            })
        }
    }
    if let Some(why) = missing {
        r.note = Some(why);
        r.verdict = Verdict::NotRun;
        r.seeds_needed = None;
    }
}

#[derive(Clone, Copy, PartialEq)]
enum Side {
    Less,
    Greater,
}

fn arm_group(data: &ExperimentData, arm: &Arm, m: &MetricRef) -> Group {
    let obs: Vec<&Observation> = data.observations.iter().filter(|o| o.in_arm(arm)).collect();
    let coords: serde_json::Map<String, Value> =
        arm.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
    let axes: Vec<String> = arm.keys().cloned().collect();
    group(arm_label(&coords, &axes), &obs, data, m)
}

/// Too few values on a side for statistics: the verdict stays "not run" (none) or
/// "inconclusive" (one seed).
fn too_few(groups: &[&Group], r: &mut CheckResult) -> bool {
    if let Some(g) = groups.iter().find(|g| g.values.is_empty()) {
        r.note = Some(format!("no finished run of arm `{}`", g.label));
        r.verdict = Verdict::NotRun;
        return true;
    }
    if groups.iter().any(|g| g.values.len() < 2) {
        r.note = Some("one seed per arm gives no variance estimate: at least 2 needed".into());
        r.verdict = Verdict::Inconclusive;
        return true;
    }
    false
}

fn pair(
    c: &ClaimSpec,
    data: &ExperimentData,
    m: &MetricRef,
    a: &Arm,
    b: &Arm,
    side: Side,
    r: &mut CheckResult,
) {
    let (ga, gb) = (arm_group(data, a, m), arm_group(data, b, m));
    // Neutral wording: the test column states the claim, this says what was seen.
    r.measured = format!("{} vs {}", show(&ga), show(&gb));
    r.seeds = format!("{}+{}", ga.values.len(), gb.values.len());
    r.groups = vec![ga.clone(), gb.clone()];
    if too_few(&[&ga, &gb], r) {
        return;
    }
    // H₁ as "x < y" in both cases.
    let (x, y) = match side {
        Side::Less => (&ga.values, &gb.values),
        Side::Greater => (&gb.values, &ga.values),
    };
    match stats::welch_less(x, y) {
        Ok(w) => {
            let p_other = 1.0 - w.p_less;
            r.statistics.insert("t".into(), w.t);
            r.statistics.insert("df".into(), w.df);
            r.statistics.insert("p".into(), w.p_less);
            r.measured += &format!("; Welch p = {}", num(w.p_less));
            r.verdict = if w.p_less < c.alpha {
                Verdict::Reproduced
            } else if p_other < c.alpha {
                r.note = Some(format!(
                    "significant in the opposite direction (p = {})",
                    num(p_other)
                ));
                Verdict::NotReproduced
            } else {
                let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len() as f64;
                if mean(x) < mean(y) {
                    r.seeds_needed = stats::seeds_needed(x, y, c.alpha, POWER).ok().flatten();
                } else {
                    r.note = Some("the observed difference points the other way".into());
                }
                Verdict::Inconclusive
            };
        }
        Err(_) => {
            // Both sides constant across seeds: the ordering is exact or absent.
            let (mx, my) = (x[0], y[0]);
            r.note = Some("no variance across seeds: the ordering is read directly".into());
            r.verdict = if mx < my {
                Verdict::Reproduced
            } else {
                Verdict::NotReproduced
            };
        }
    }
}

fn equivalent(
    c: &ClaimSpec,
    data: &ExperimentData,
    m: &MetricRef,
    a: &Arm,
    b: &Arm,
    margin: f64,
    r: &mut CheckResult,
) {
    let (ga, gb) = (arm_group(data, a, m), arm_group(data, b, m));
    r.seeds = format!("{}+{}", ga.values.len(), gb.values.len());
    r.groups = vec![ga.clone(), gb.clone()];
    r.measured = format!("{} vs {}", show(&ga), show(&gb));
    if too_few(&[&ga, &gb], r) {
        return;
    }
    let (x, y) = (&ga.values, &gb.values);
    let diff = ga.mean.unwrap_or(f64::NAN) - gb.mean.unwrap_or(f64::NAN);
    r.statistics.insert("difference".into(), diff);
    r.measured = format!(
        "{} − {} = {} (margin ±{})",
        ga.label,
        gb.label,
        num(diff),
        num(margin)
    );
    match stats::tost(x, y, margin) {
        Ok(p) => {
            r.statistics.insert("p".into(), p);
            r.measured += &format!("; TOST p = {}", num(p));
            // Non-equivalence shown: the difference lies beyond the margin, significantly.
            let above = stats::welch_shifted(y, x, -margin).map(|w| w.p_less);
            let below = stats::welch_shifted(x, y, -margin).map(|w| w.p_less);
            let beyond = [above, below].into_iter().flatten().fold(1.0, f64::min);
            r.verdict = if p < c.alpha {
                Verdict::Reproduced
            } else if beyond < c.alpha {
                r.note = Some(format!(
                    "the difference exceeds the margin significantly (p = {})",
                    num(beyond)
                ));
                Verdict::NotReproduced
            } else {
                r.seeds_needed = stats::seeds_needed_equivalence(x, y, margin, c.alpha, POWER)
                    .ok()
                    .flatten();
                if r.seeds_needed.is_none() {
                    r.note = Some("the observed difference is outside the margin".into());
                }
                Verdict::Inconclusive
            };
        }
        Err(_) => {
            r.note = Some("no variance across seeds: the difference is read directly".into());
            r.verdict = if diff.abs() < margin {
                Verdict::Reproduced
            } else {
                Verdict::NotReproduced
            };
        }
    }
}

/// Kendall τ between two numbers of each observation across the arms along `axis`, per seed
/// (and per value of any other varying coordinate), then the mean τ against `threshold`
/// (above it when `up`, below it otherwise).
#[allow(clippy::too_many_arguments)]
fn per_seed_tau(
    c: &ClaimSpec,
    data: &ExperimentData,
    axis: &str,
    label: &str,
    threshold: f64,
    up: bool,
    r: &mut CheckResult,
    pair_of: impl Fn(&Observation) -> Option<(f64, f64)>,
) {
    let strata: Vec<String> = data
        .arm_axes
        .iter()
        .filter(|a| *a != axis)
        .cloned()
        .collect();
    let mut by_seed: BTreeMap<(i64, String), Vec<(f64, f64)>> = BTreeMap::new();
    for o in &data.observations {
        if let Some(xy) = pair_of(o) {
            let stratum = arm_label(&o.coords, &strata);
            by_seed.entry((o.seed, stratum)).or_default().push(xy);
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
    if g.values.len() < 2 {
        r.note = Some("one seed gives no variance estimate: at least 2 needed".into());
        r.verdict = Verdict::Inconclusive;
        return;
    }
    // H₁: mean τ beyond the threshold on the claimed side; flip signs for "below".
    let sign = if up { 1.0 } else { -1.0 };
    let signed: Vec<f64> = g.values.iter().map(|t| sign * t).collect();
    let mean = g.mean.unwrap_or(f64::NAN);
    match (
        stats::t_greater(&signed, sign * threshold),
        stats::t_greater(
            &signed.iter().map(|v| -v).collect::<Vec<_>>(),
            -sign * threshold,
        ),
    ) {
        (Ok(p), Ok(p_other)) => {
            r.statistics.insert("p".into(), p);
            r.statistics.insert("tau_mean".into(), mean);
            r.measured += &format!("; t-test p = {}", num(p));
            r.verdict = if p < c.alpha {
                Verdict::Reproduced
            } else if p_other < c.alpha {
                Verdict::NotReproduced
            } else {
                r.seeds_needed = stats::seeds_needed_one(&g.values, threshold, c.alpha, POWER)
                    .ok()
                    .flatten();
                Verdict::Inconclusive
            };
        }
        _ => {
            r.note = Some("τ is the same for every seed: read directly".into());
            r.statistics.insert("tau_mean".into(), mean);
            r.verdict = if sign * mean > sign * threshold {
                Verdict::Reproduced
            } else {
                Verdict::NotReproduced
            };
        }
    }
}

/// One verdict over several: reproduced when every one is, not reproduced when any is not,
/// inconclusive when any is undecided, otherwise not run / not checkable.
pub fn combine(verdicts: &[Verdict]) -> Verdict {
    let any = |v: Verdict| verdicts.contains(&v);
    if any(Verdict::NotReproduced) {
        Verdict::NotReproduced
    } else if !verdicts.is_empty() && verdicts.iter().all(|v| *v == Verdict::Reproduced) {
        Verdict::Reproduced
    } else if any(Verdict::Inconclusive) {
        Verdict::Inconclusive
    } else if any(Verdict::NotRun) {
        Verdict::NotRun
    } else if any(Verdict::NotCheckable) {
        Verdict::NotCheckable
    } else {
        Verdict::Inconclusive
    }
}

/// Claim-level verdicts over each claim's checks, claims in file order.
pub fn summarize_claims(checks: &[CheckResult]) -> Vec<ClaimSummary> {
    let mut order: Vec<&str> = Vec::new();
    for c in checks {
        if !order.contains(&c.claim.as_str()) {
            order.push(&c.claim);
        }
    }
    order
        .into_iter()
        .map(|claim| {
            let of: Vec<Verdict> = checks
                .iter()
                .filter(|c| c.claim == claim)
                .map(|c| c.verdict)
                .collect();
            ClaimSummary {
                claim: claim.to_string(),
                verdict: combine(&of),
                checks: of.len(),
                reproduced: of.iter().filter(|v| **v == Verdict::Reproduced).count(),
            }
        })
        .collect()
}
