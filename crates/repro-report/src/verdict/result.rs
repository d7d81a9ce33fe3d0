//! What a check's evaluation produces: its [`Verdict`], the [`Group`]s of per-seed values it
//! compared, the [`CheckResult`] line, and the helpers the tests of `verdict` share to build and
//! show them.

use std::collections::BTreeMap;

use serde::Serialize;
use serde_json::Value;

use crate::numbers::num;
use crate::observe::{DataSource, Source, arm_label};
use crate::select::Point;
use repro_core::metrics::stats::{self, Summary};
use repro_core::pipeline::claims::{Arm, Role, TuneSpec};

/// Power assumed when saying how many seeds would decide an inconclusive check.
pub const POWER: f64 = 0.8;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    Reproduced,
    NotReproduced,
    Inconclusive,
    /// An arm the check compares diverged in every seed at the cells it reads: no number to
    /// compare, and a finding in itself (the setting does not train).
    Diverged,
    NotRun,
    /// The profile cannot decide it, or the data do not pose its question (the note says which).
    NotCheckable,
}

impl Verdict {
    /// Every verdict, in the order the report's legend lists them.
    pub const ALL: [Verdict; 6] = [
        Verdict::Reproduced,
        Verdict::NotReproduced,
        Verdict::Inconclusive,
        Verdict::Diverged,
        Verdict::NotRun,
        Verdict::NotCheckable,
    ];

    pub fn text(self) -> &'static str {
        match self {
            Verdict::Reproduced => "reproduced",
            Verdict::NotReproduced => "not reproduced",
            Verdict::Inconclusive => "inconclusive",
            Verdict::Diverged => "diverged",
            Verdict::NotRun => "not run",
            Verdict::NotCheckable => "not checkable",
        }
    }

    /// What the verdict means, for the report's legend.
    pub fn meaning(self) -> &'static str {
        match self {
            Verdict::Reproduced => "the test supports the claim at the check's level",
            Verdict::NotReproduced => "the data contradict the claim significantly",
            Verdict::Inconclusive => {
                "neither; the seeds per arm that would decide it are given where they can be"
            }
            Verdict::Diverged => {
                "an arm the check compares diverged in every seed at the cells it reads \
                 (diverged runs never enter a comparison)"
            }
            Verdict::NotRun => "runs the check needs have not finished",
            Verdict::NotCheckable => {
                "this profile cannot decide it, or the data do not pose its question; the reason \
                 is given"
            }
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
    /// Counted in the claim's verdict only when `claim`.
    #[serde(skip_serializing_if = "Role::is_claim")]
    pub role: Role,
    pub text: String,
    pub experiment: Option<String>,
    pub metric: Option<String>,
    /// The comparison in words (`early < none`), with its `where`/`tune`.
    pub test: String,
    /// The check's `where:` as written (`max`/`min` unresolved; the measured line resolves
    /// them), so a reader of claims.json sees which runs the numbers were formed from.
    #[serde(rename = "where", skip_serializing_if = "BTreeMap::is_empty")]
    pub where_: Arm,
    /// The check's `tune:`, as written.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tune: Option<TuneSpec>,
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
    /// The data the runs it read were trained on: generated, upstream (with digests) or
    /// simulated. A verdict on generated data is a mechanism check, and says so.
    pub data: Vec<DataSource>,
    /// The artifacts every number above came from.
    pub sources: Vec<Source>,
    /// The experiment is not part of the profile: the line says so and its verdict ("not run")
    /// does not enter the check's or the claim's while another experiment of it is in the
    /// profile (a `cpu` profile that runs CIFAR-10 alone decides E1's checks on it).
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub outside_profile: bool,
}

/// The lines a verdict combines: those whose experiment is in the profile, or all of them when
/// none is (so a check none of whose experiments runs stays "not run" / "not checkable").
pub fn counted<'a>(lines: impl IntoIterator<Item = &'a CheckResult>) -> Vec<&'a CheckResult> {
    let all: Vec<&CheckResult> = lines.into_iter().collect();
    if all.iter().all(|c| c.outside_profile) {
        return all;
    }
    all.into_iter().filter(|c| !c.outside_profile).collect()
}

impl CheckResult {
    /// Whether the runs gave it a verdict of their own (not "not run" / "not checkable").
    pub fn is_decided(&self) -> bool {
        !matches!(self.verdict, Verdict::NotRun | Verdict::NotCheckable)
    }

    /// `cifar10 (generated)`, joined; empty when it read no runs.
    pub fn data_label(&self) -> String {
        let labels: Vec<String> = self.data.iter().map(DataSource::label).collect();
        labels.join(", ")
    }
}

/// An arm's coordinates in words (`schedule=early`).
pub(super) fn arm_text(a: &Arm) -> String {
    let coords: serde_json::Map<String, Value> =
        a.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
    let axes: Vec<String> = a.keys().cloned().collect();
    arm_label(&coords, &axes)
}

pub(super) fn group(label: String, points: &[&Point]) -> Group {
    let mut seeds = Vec::new();
    let mut values = Vec::new();
    for p in points {
        if let Some(v) = p.value {
            seeds.push(p.seed);
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

pub(super) fn show(g: &Group) -> String {
    match (g.mean, g.ci95) {
        (Some(m), Some((lo, hi))) => format!("{} {} [{}, {}]", g.label, num(m), num(lo), num(hi)),
        (Some(m), None) => format!("{} {}", g.label, num(m)),
        _ => format!("{} (no values)", g.label),
    }
}
