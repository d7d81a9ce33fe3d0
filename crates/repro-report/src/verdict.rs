//! Claim checks evaluated on a profile's observations: per check and experiment, the numbers
//! compared, the statistic, and a verdict: reproduced, not reproduced, inconclusive (with the
//! seeds a decision would need), diverged (an arm the check compares has no run that trained),
//! not run, or not checkable (at this profile, or on this data, with the reason). The
//! observations a check reads are first narrowed and collapsed by its `where`/`tune`
//! (`select`); the tests live in `two_arms` and `per_seed`, divergence in `diverged`.

use std::collections::BTreeMap;

use serde::Serialize;
use serde_json::Value;

use super::observe::{ExperimentData, Inputs, Origin, Source, arm_label};
use super::select::{Unselectable, select, tune_words};
use repro_core::pipeline::claims::{ClaimSpec, MetricRef, TestSpec, WhereValue};
use repro_core::pipeline::spec::Pipeline;

mod diverged;
mod per_seed;
mod result;
mod two_arms;
use per_seed::{one_sample, per_seed_tau};
use result::arm_text;
pub use result::{CheckResult, Group, POWER, Verdict, counted};
use two_arms::{Side, equivalent, pair};

/// One paper claim, over its checks.
#[derive(Debug, Clone, Serialize)]
pub struct ClaimSummary {
    pub claim: String,
    pub verdict: Verdict,
    pub checks: usize,
    pub reproduced: usize,
    /// Checks whose verdict is `diverged`.
    pub diverged: usize,
    /// Extension and finding checks of the claim: reported, not counted above.
    pub beside: usize,
    /// Where the data of its decided, counted checks came from; `generated` marks the verdict
    /// as a mechanism check on generated data.
    pub data: Vec<Origin>,
}

/// Evaluate every check of the pipeline on one profile's inputs.
pub fn evaluate(p: &Pipeline, inputs: &Inputs) -> Vec<CheckResult> {
    let mut out = Vec::new();
    for c in &p.claims {
        let base = CheckResult {
            id: c.id.clone(),
            claim: c.claim.clone(),
            role: c.role,
            text: c.text.trim().to_string(),
            experiment: None,
            metric: None,
            test: c.test.as_ref().map(|t| describe(c, t)).unwrap_or_default(),
            where_: c.where_.clone(),
            tune: c.tune.clone(),
            verdict: Verdict::NotRun,
            measured: String::new(),
            seeds: String::new(),
            groups: Vec::new(),
            statistics: BTreeMap::new(),
            seeds_needed: None,
            note: c.pending.as_ref().map(|s| s.trim().to_string()),
            defaults: c.defaults.as_ref().map(|s| s.trim().to_string()),
            data: Vec::new(),
            sources: Vec::new(),
            outside_profile: false,
        };
        let Some(test) = c.test.as_ref().filter(|_| c.pending.is_none()) else {
            out.push(base);
            continue;
        };
        for e in &c.experiments {
            let parts = inputs.experiment(e).map(|data| split_per(data, &c.per));
            for m in &c.metric {
                let mut r = base.clone();
                r.experiment = Some(e.clone());
                r.metric = Some(m.clone());
                let Some(parts) = &parts else {
                    r.note = Some(format!(
                        "experiment `{e}` is not part of profile `{}`",
                        inputs.profile
                    ));
                    r.outside_profile = true;
                    out.push(decided(c, &inputs.profile, r));
                    continue;
                };
                for data in parts {
                    let mut r = r.clone();
                    r.experiment = Some(data.name.clone());
                    match MetricRef::parse(m) {
                        Err(err) => r.note = Some(err),
                        Ok(metric) => check(c, test, data, &metric, &mut r),
                    }
                    out.push(decided(c, &inputs.profile, r));
                }
            }
        }
    }
    out
}

/// An experiment's data split by the values of the `per` axes (in first-seen order), each part
/// named `experiment[axis=value]`; the whole experiment when `per` is empty.
fn split_per(data: &ExperimentData, per: &[String]) -> Vec<ExperimentData> {
    if per.is_empty() {
        return vec![data.clone()];
    }
    let mut parts: Vec<(String, ExperimentData)> = Vec::new();
    for o in &data.observations {
        let label = arm_label(&o.coords, per);
        let i = match parts.iter().position(|(l, _)| *l == label) {
            Some(i) => i,
            None => {
                let mut part = data.clone();
                part.name = format!("{}[{label}]", data.name);
                part.observations.clear();
                part.arm_axes.retain(|a| !per.contains(a));
                parts.push((label, part));
                parts.len() - 1
            }
        };
        parts[i].1.observations.push(o.clone());
    }
    parts.into_iter().map(|(_, p)| p).collect()
}

/// A result with the profile's say applied: a profile outside `decide_at` cannot decide it.
fn decided(c: &ClaimSpec, profile: &str, mut r: CheckResult) -> CheckResult {
    if !decides(c, profile) {
        r.note = Some(format!(
            "not checkable at this profile: `{profile}` cannot decide it (decided at: {})",
            c.decide_at.join(", ")
        ));
        r.verdict = Verdict::NotCheckable;
        r.seeds_needed = None;
    }
    r
}

fn decides(c: &ClaimSpec, profile: &str) -> bool {
    c.decide_at.is_empty() || c.decide_at.iter().any(|p| p == profile)
}

/// The check's comparison in words, then what it reads: `adamw < adam_l2 + 0.05 (best of lr,
/// weight_decay by min valid_loss@min)`, `mean > 0.5 (where variant=adam_l2, weight_decay=max;
/// …)`.
pub fn describe(c: &ClaimSpec, t: &TestSpec) -> String {
    let mut how = Vec::new();
    if !c.where_.is_empty() {
        let fixed: Vec<String> = c
            .where_
            .iter()
            .map(|(k, v)| match (WhereValue::parse(v), v) {
                (Ok(WhereValue::Useful(u)), _) => format!("{k}=useful {}", u.words()),
                (_, Value::String(s)) => format!("{k}={s}"),
                _ => format!("{k}={v}"),
            })
            .collect();
        how.push(format!("where {}", fixed.join(", ")));
    }
    if let Some(tn) = &c.tune {
        let by = match (&tn.by, c.metric.as_slice()) {
            (Some(b), _) => b.clone(),
            (None, [m]) => m.clone(),
            (None, _) => "each metric".into(),
        };
        let by = MetricRef::parse(&by).unwrap_or(MetricRef {
            name: by,
            reduce: None,
        });
        how.push(tune_words(tn, &by));
    }
    let test = describe_test(t);
    if how.is_empty() {
        test
    } else {
        format!("{test} ({})", how.join("; "))
    }
}

/// The comparison alone in words (`early < none`).
pub fn describe_test(t: &TestSpec) -> String {
    let arm = arm_text;
    let plus = |m: &Option<f64>, sign: char| match m {
        Some(m) if *m != 0.0 => format!(" {sign} {m}"),
        _ => String::new(),
    };
    match t {
        TestSpec::Less { a, b, margin } => format!("{} < {}{}", arm(a), arm(b), plus(margin, '+')),
        TestSpec::Greater { a, b, margin } => {
            format!("{} > {}{}", arm(a), arm(b), plus(margin, '−'))
        }
        TestSpec::Equivalent { a, b, margin } => format!("{} ≈ {} (±{margin})", arm(a), arm(b)),
        TestSpec::Above { value } => format!("mean > {value}"),
        TestSpec::Below { value } => format!("mean < {value}"),
        TestSpec::Increasing { along } => format!("increases with {along}"),
        TestSpec::Decreasing { along } => format!("decreases with {along}"),
        TestSpec::RankAgreement {
            with,
            across,
            above,
            below,
        } => {
            let across = across.join(" × ");
            match (above, below) {
                (Some(t), _) => format!("ranks {across} like {with} (τ > {t})"),
                (_, Some(t)) => format!("does not rank {across} like {with} (τ < {t})"),
                _ => format!("ranks {across} like {with}"),
            }
        }
    }
}

fn check(
    c: &ClaimSpec,
    test: &TestSpec,
    data: &ExperimentData,
    m: &MetricRef,
    r: &mut CheckResult,
) {
    r.data = data.data.clone();
    let missing = (!data.missing.is_empty()).then(|| {
        format!(
            "{} of {} runs of `{}` have not finished (first: {})",
            data.missing.len(),
            data.planned,
            data.name,
            data.missing[0]
        )
    });
    let sel = match select(c, data, m) {
        Ok(sel) => sel,
        Err(Unselectable::NotRun(why)) => {
            r.note = Some(why);
            r.verdict = Verdict::NotRun;
            return;
        }
        Err(Unselectable::NotCheckable { why, how }) => {
            // The choice that found the question absent read the whole experiment.
            let mut sources: Vec<Source> =
                data.observations.iter().map(|o| o.source.clone()).collect();
            sources.sort();
            sources.dedup();
            r.sources = sources;
            r.measured = how;
            r.note = Some(format!("not checkable: {why}"));
            r.verdict = Verdict::NotCheckable;
            // Runs still to come could change the choice: not run until they are in.
            if let Some(why) = missing {
                r.note = Some(why);
                r.verdict = Verdict::NotRun;
            }
            return;
        }
    };
    let mut sources: Vec<Source> = sel.read.iter().map(|o| o.source.clone()).collect();
    sources.sort();
    sources.dedup();
    r.sources = sources;
    let margin = |m: &Option<f64>| m.unwrap_or(0.0);
    match test {
        TestSpec::Less { a, b, margin: d } => pair(c, &sel, a, b, Side::Less, margin(d), r),
        TestSpec::Greater { a, b, margin: d } => pair(c, &sel, a, b, Side::Greater, margin(d), r),
        TestSpec::Equivalent { a, b, margin } => equivalent(c, &sel, a, b, *margin, r),
        TestSpec::Above { value } => one_sample(c, &sel, *value, true, r),
        TestSpec::Below { value } => one_sample(c, &sel, *value, false, r),
        TestSpec::Increasing { along } | TestSpec::Decreasing { along } => {
            let up = matches!(test, TestSpec::Increasing { .. });
            let label = format!("τ({along}, {m})");
            per_seed_tau(
                c,
                &sel,
                std::slice::from_ref(along),
                &label,
                0.0,
                up,
                r,
                |p| Some((p.coords.get(along)?.as_f64()?, p.value?)),
            )
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
            per_seed_tau(c, &sel, across, &label, threshold, up, r, |p| {
                Some((p.value?, p.run?.value(data.kind, &reference)?))
            })
        }
    }
    if let Some(why) = diverged::dead(test, &sel, &data.arm_axes) {
        r.note = Some(why);
        r.verdict = Verdict::Diverged;
        r.seeds_needed = None;
    }
    if let Some(skipped) = diverged::named(test, &sel, &data.arm_axes) {
        r.measured = match r.measured.is_empty() {
            true => skipped,
            false => format!("{}; {skipped}", r.measured),
        };
    }
    if !sel.how.is_empty() && !r.measured.is_empty() {
        r.measured = format!("{}: {}", sel.how, r.measured);
    }
    if let Some(why) = missing {
        r.note = Some(why);
        r.verdict = Verdict::NotRun;
        r.seeds_needed = None;
    }
}

/// One verdict over several: reproduced when every one is, not reproduced when any is not,
/// inconclusive when any is undecided, diverged when any check lost an arm to divergence
/// (a finding, unlike what follows), otherwise not run / not checkable.
pub fn combine(verdicts: &[Verdict]) -> Verdict {
    let any = |v: Verdict| verdicts.contains(&v);
    if any(Verdict::NotReproduced) {
        Verdict::NotReproduced
    } else if !verdicts.is_empty() && verdicts.iter().all(|v| *v == Verdict::Reproduced) {
        Verdict::Reproduced
    } else if any(Verdict::Inconclusive) {
        Verdict::Inconclusive
    } else if any(Verdict::Diverged) {
        Verdict::Diverged
    } else if any(Verdict::NotRun) {
        Verdict::NotRun
    } else if any(Verdict::NotCheckable) {
        Verdict::NotCheckable
    } else {
        Verdict::Inconclusive
    }
}

/// Claim-level verdicts over each claim's counted (`role: claim`) checks, claims in file order.
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
            let of: Vec<Verdict> = counted(
                checks
                    .iter()
                    .filter(|c| c.claim == claim && c.role.is_claim()),
            )
            .into_iter()
            .map(|c| c.verdict)
            .collect();
            let beside = checks
                .iter()
                .filter(|c| c.claim == claim && !c.role.is_claim())
                .count();
            let mut data: Vec<Origin> = checks
                .iter()
                .filter(|c| c.claim == claim && c.role.is_claim() && c.is_decided())
                .flat_map(|c| c.data.iter().map(|d| d.origin))
                .collect();
            data.sort();
            data.dedup();
            ClaimSummary {
                claim: claim.to_string(),
                verdict: combine(&of),
                checks: of.len(),
                reproduced: of.iter().filter(|v| **v == Verdict::Reproduced).count(),
                diverged: of.iter().filter(|v| **v == Verdict::Diverged).count(),
                beside,
                data,
            }
        })
        .collect()
}
