//! The `claims:` section of `pipeline.yaml`: the paper's claims (docs/paper.md#claims) as machine
//! checks. Each check names the experiments it reads, the metric (`test_acc@final`), the comparison
//! and the profiles that can decide it, and optionally which runs it reads (`where:`) and how a
//! tuned hyper-parameter grid is collapsed first (`tune:`, for the Adam claims C7–C10); everything
//! it names is checked against the stage kinds' declared parameters and results before any work
//! starts (`super::validate`). Evaluation lives in `report`.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};

mod arm;
mod useful;
pub use arm::{Arm, Pick};
pub use useful::{UsefulSpec, WhereValue, Within, arm_words};

/// One check of one paper claim.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ClaimSpec {
    /// Unique id of this check (`C2-early-below-none`).
    pub id: String,
    /// The paper claim it checks (`C2`); checks of one claim are summarised together.
    pub claim: String,
    /// The paper's proposition as the project words it (docs/paper.md#claims); shown in the report.
    pub text: String,
    /// Experiments it is checked on, each separately.
    #[serde(default)]
    pub experiments: Vec<String>,
    /// One metric or a list (each checked separately): `NAME@REDUCER` for per-epoch results.
    #[serde(default, deserialize_with = "one_or_many")]
    pub metric: Vec<String>,
    /// Written `{less: {a: …, b: …}}` (a one-key map, not a YAML tag).
    #[serde(default, with = "serde_yaml::with::singleton_map")]
    pub test: Option<TestSpec>,
    /// `where: {variant: adam_l2, weight_decay: max}`: only observations with these
    /// coordinates are read. On a numeric axis the value may be `max` or `min`, the largest or
    /// smallest value of that axis among the experiment's observations (so one check fits every
    /// profile's grid), or `{useful: …}`, a value per seed chosen on the runs ([`UsefulSpec`]).
    /// Applied before `tune`; read through [`WhereValue::parse`].
    #[serde(default, rename = "where", skip_serializing_if = "BTreeMap::is_empty")]
    pub where_: Arm,
    /// `per: [game]`: check each value of these grid axes separately, as if each were an
    /// experiment of its own (returns of different games are on different scales, so arms are
    /// never pooled across them).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub per: Vec<String>,
    /// Collapse hyper-parameter axes before the test (see [`TuneSpec`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tune: Option<TuneSpec>,
    /// Profiles whose runs can decide it; elsewhere it reports "not checkable at this profile".
    /// Empty: every profile.
    #[serde(default)]
    pub decide_at: Vec<String>,
    /// One-sided level of the tests.
    #[serde(default = "default_alpha")]
    pub alpha: f64,
    /// The defaults of ours this check relies on (margins, thresholds), shown in the report.
    #[serde(default)]
    pub defaults: Option<String>,
    /// Why it cannot be checked yet (e.g. its experiments are not in the pipeline); reports
    /// "not run" with this reason.
    #[serde(default)]
    pub pending: Option<String>,
    /// What the check is to its claim: the claim itself (the default), an extension to a task
    /// the paper did not run, or a finding beside it. Only `claim` checks count in the claim's
    /// verdict; the others are reported with theirs.
    #[serde(default, skip_serializing_if = "Role::is_claim")]
    pub role: Role,
}

/// `role:` of a check (docs/paper.md#claims).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// Tests the paper's claim as published; counted in the claim's verdict.
    #[default]
    Claim,
    /// The claim carried to a task or setting the paper did not run; shown, not counted.
    Extension,
    /// A measurement beside the claim (e.g. a reconstruction's behaviour); shown, not counted.
    Finding,
}

impl Role {
    pub fn is_claim(&self) -> bool {
        *self == Role::Claim
    }

    /// `C8`, or `C8 (finding)` for a check that is not counted in its claim's verdict.
    pub fn label(&self, claim: &str) -> String {
        match self {
            Role::Claim => claim.to_string(),
            Role::Extension => format!("{claim} (extension)"),
            Role::Finding => format!("{claim} (finding)"),
        }
    }
}

fn default_alpha() -> f64 {
    0.05
}

fn one_or_many<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum OneOrMany {
        One(String),
        Many(Vec<String>),
    }
    Ok(match OneOrMany::deserialize(d)? {
        OneOrMany::One(s) => vec![s],
        OneOrMany::Many(v) => v,
    })
}

/// `tune: {over: [lr, weight_decay], pick: min, by: valid_loss@min, good_within: 0.1}`:
/// collapse the axes `over`, per remaining coordinates (arm) and seed, before the test.
///
/// Without `good_within` the arm and seed keep the one run whose `by` value is smallest
/// (`pick: min`) or largest (`max`) among its runs that differ only in the `over` axes, and the
/// check's metric is read from that run: "the best over the grid", as a practitioner tuning lr
/// and λ would pick. Runs without a finite `by` value are never picked; ties go to the run with
/// the smallest `over` coordinates, compared in the order of `over` (numbers by value).
///
/// With `good_within: X` the value of an arm and seed is instead the fraction of its cells
/// (runs differing only in the `over` axes) whose `by` value is at most X worse than the best
/// `by` value of that seed over all arms: the width of the region of good hyper-parameters. A
/// cell whose `by` value is missing, NaN or infinite counts as not good (a diverged run is a bad
/// run, not an absent one); a seed with no finite `by` value anywhere has no best and so no
/// fraction.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct TuneSpec {
    /// The grid axes collapsed (e.g. `[lr]` or `[lr, weight_decay]`).
    pub over: Vec<String>,
    /// Which `by` value is best.
    pub pick: Pick,
    /// The metric the choice is made on (`valid_loss@min`); default: the check's own metric.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub by: Option<String>,
    /// Replace the best run by the fraction of cells within this distance of the best.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub good_within: Option<f64>,
}

/// The comparison a check makes.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum TestSpec {
    /// mean(a) < mean(b) + margin: Welch's one-sided test (`margin` > 0: non-inferiority,
    /// "a matches or beats b" for a metric where lower is better).
    Less {
        a: Arm,
        b: Arm,
        /// Default 0: a plain ordering.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        margin: Option<f64>,
    },
    /// mean(a) > mean(b) − margin: Welch's one-sided test.
    Greater {
        a: Arm,
        b: Arm,
        /// Default 0: a plain ordering.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        margin: Option<f64>,
    },
    /// |mean(a) − mean(b)| < margin: TOST.
    Equivalent { a: Arm, b: Arm, margin: f64 },
    /// The metric increases along a grid axis: Kendall τ per seed, its mean above 0.
    Increasing { along: String },
    /// The metric decreases along a grid axis: Kendall τ per seed, its mean below 0.
    Decreasing { along: String },
    /// The metric orders the arms along `across` like `with` does: Kendall τ per seed, its
    /// mean above `above` (or below `below`). `across` is one axis or a list: the nets ranked
    /// are every combination of their values (`[schedule, switch_epoch]`: each schedule at each
    /// switch epoch), per seed and per value of any other varying coordinate.
    RankAgreement {
        with: String,
        #[serde(deserialize_with = "one_or_many")]
        across: Vec<String>,
        #[serde(default)]
        above: Option<f64>,
        #[serde(default)]
        below: Option<f64>,
    },
    /// The mean over seeds exceeds `value`: one-sample t-test. Needs one value per seed after
    /// `where` and `tune`.
    Above { value: f64 },
    /// The mean over seeds is below `value`: one-sample t-test, one value per seed.
    Below { value: f64 },
}

/// How a per-epoch series becomes one number per run.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Reduce {
    Final,
    Max,
    Min,
    Mean,
    /// Mean over the last fraction of epochs.
    Tail(f64),
    /// The value at one epoch (0-based).
    Epoch(u64),
}

/// A parsed metric reference: `weight_norm@final`, `eff_lr_mean@tail:0.2`, `lambda_max`.
#[derive(Debug, Clone, PartialEq)]
pub struct MetricRef {
    pub name: String,
    pub reduce: Option<Reduce>,
}

/// The reducers a per-epoch metric reference may name after `@`, as error messages list them.
pub const REDUCERS: &str = "final, max, min, mean, tail:FRACTION, epoch:N";

impl MetricRef {
    pub fn parse(s: &str) -> Result<MetricRef, String> {
        let (name, reduce) = match s.split_once('@') {
            None => (s, None),
            Some((n, r)) => (n, Some(parse_reduce(r)?)),
        };
        if name.is_empty() {
            return Err(format!("metric {s:?} has no name"));
        }
        Ok(MetricRef {
            name: name.to_string(),
            reduce,
        })
    }
}

fn parse_reduce(r: &str) -> Result<Reduce, String> {
    let bad = || format!("unknown reducer `{r}`; valid: {REDUCERS}");
    Ok(match r {
        "final" => Reduce::Final,
        "max" => Reduce::Max,
        "min" => Reduce::Min,
        "mean" => Reduce::Mean,
        _ => match r.split_once(':') {
            Some(("tail", f)) => match f.parse::<f64>() {
                Ok(f) if f > 0.0 && f <= 1.0 => Reduce::Tail(f),
                _ => return Err(format!("tail fraction must be in (0, 1], got `{f}`")),
            },
            Some(("epoch", n)) => Reduce::Epoch(n.parse().map_err(|_| bad())?),
            _ => return Err(bad()),
        },
    })
}

impl fmt::Display for MetricRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.name)?;
        match self.reduce {
            None => Ok(()),
            Some(Reduce::Final) => write!(f, "@final"),
            Some(Reduce::Max) => write!(f, "@max"),
            Some(Reduce::Min) => write!(f, "@min"),
            Some(Reduce::Mean) => write!(f, "@mean"),
            Some(Reduce::Tail(x)) => write!(f, "@tail:{x}"),
            Some(Reduce::Epoch(n)) => write!(f, "@epoch:{n}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metric_refs_parse_and_print_back() {
        for s in [
            "test_acc@final",
            "eff_lr_mean@tail:0.2",
            "weight_norm@epoch:49",
            "lambda_max",
        ] {
            assert_eq!(MetricRef::parse(s).unwrap().to_string(), s);
        }
        assert!(MetricRef::parse("x@tail:0").is_err());
        assert!(MetricRef::parse("x@tail:1.5").is_err());
        assert!(
            MetricRef::parse("x@last")
                .unwrap_err()
                .contains("valid: final")
        );
        assert!(MetricRef::parse("@final").is_err());
    }
}
