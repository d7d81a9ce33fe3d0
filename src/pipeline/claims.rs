//! The `claims:` section of `pipeline.yaml`: the paper's claims (SPEC.md §3) as machine checks.
//! Each check names the experiments it reads, the metric (`test_acc@final`), the comparison and
//! the profiles that can decide it; everything it names is checked against the stage kinds'
//! declared parameters and results before any work starts. Evaluation lives in `report`.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::spec::{Pipeline, valid_name};
use super::stage::{self, Rows, StageDecl};

/// One check of one paper claim.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ClaimSpec {
    /// Unique id of this check (`C2-early-below-none`).
    pub id: String,
    /// The paper claim it checks (`C2`); checks of one claim are summarised together.
    pub claim: String,
    /// The paper's proposition, as SPEC.md states it.
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

/// Grid coordinates selecting one arm (`{schedule: early}`); seeds are the replicates.
pub type Arm = BTreeMap<String, Value>;

/// The comparison a check makes.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum TestSpec {
    /// mean(a) < mean(b): Welch's one-sided test.
    Less { a: Arm, b: Arm },
    /// mean(a) > mean(b): Welch's one-sided test.
    Greater { a: Arm, b: Arm },
    /// |mean(a) − mean(b)| < margin: TOST.
    Equivalent { a: Arm, b: Arm, margin: f64 },
    /// The metric increases along a grid axis: Kendall τ per seed, its mean above 0.
    Increasing { along: String },
    /// The metric orders the arms along `across` like `with` does: Kendall τ per seed, its
    /// mean above `above` (or below `below`).
    RankAgreement {
        with: String,
        across: String,
        #[serde(default)]
        above: Option<f64>,
        #[serde(default)]
        below: Option<f64>,
    },
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

const REDUCERS: &str = "final, max, min, mean, tail:FRACTION, epoch:N";

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

/// The kind whose parameters are an experiment's grid coordinates as its results carry them:
/// its own for per-epoch results, its upstream experiment's for per-upstream-run results.
pub fn coordinate_kind(p: &Pipeline, experiment: &str) -> Option<&'static StageDecl> {
    let e = p.experiment(experiment)?;
    let kind = stage::kind(&e.kind)?;
    match kind.results.rows {
        Rows::PerEpoch => Some(kind),
        Rows::PerUpstreamRun { .. } => {
            let up = p.experiment(e.needs.first()?)?;
            stage::kind(&up.kind)
        }
    }
}

/// Check every claim against the pipeline; `at(yaml_path, message)` records a problem.
pub fn check(p: &Pipeline, at: &mut dyn FnMut(&str, String)) {
    let mut ids = BTreeSet::new();
    for (i, c) in p.claims.iter().enumerate() {
        let path = format!("claims[{i}]");
        if !valid_name(&c.id.replace('.', "_")) {
            at(
                &format!("{path}.id"),
                format!(
                    "claim id {:?} may use only letters, digits, `_`, `-` and `.`",
                    c.id
                ),
            );
        } else if !ids.insert(c.id.clone()) {
            at(
                &format!("{path}.id"),
                format!("duplicate claim id `{}`", c.id),
            );
        }
        for (j, prof) in c.decide_at.iter().enumerate() {
            if !p.profiles.contains_key(prof) {
                let known: Vec<&str> = p.profiles.keys().map(String::as_str).collect();
                at(
                    &format!("{path}.decide_at[{j}]"),
                    format!(
                        "profile `{prof}` is not declared; declared: {}",
                        known.join(", ")
                    ),
                );
            }
        }
        if !(c.alpha > 0.0 && c.alpha < 0.5) {
            at(
                &format!("{path}.alpha"),
                format!("alpha must be in (0, 0.5), got {}", c.alpha),
            );
        }
        if c.pending.is_some() {
            continue;
        }
        let Some(test) = &c.test else {
            at(
                &path,
                format!(
                    "claim `{}` needs a `test:` (less, greater, equivalent, increasing, rank_agreement) or a `pending:` reason",
                    c.id
                ),
            );
            continue;
        };
        if c.experiments.is_empty() {
            at(&path, format!("claim `{}` names no `experiments:`", c.id));
        }
        if c.metric.is_empty() {
            at(&path, format!("claim `{}` names no `metric:`", c.id));
        }
        for (j, e) in c.experiments.iter().enumerate() {
            let ep = format!("{path}.experiments[{j}]");
            let Some(exp) = p.experiment(e) else {
                at(
                    &ep,
                    format!("experiment `{e}` is not declared under `experiments:`"),
                );
                continue;
            };
            let Some(kind) = stage::kind(&exp.kind) else {
                continue;
            };
            for (k, m) in c.metric.iter().enumerate() {
                let mp = if c.metric.len() == 1 {
                    format!("{path}.metric")
                } else {
                    format!("{path}.metric[{k}]")
                };
                if let Err(msg) = check_metric(kind, m) {
                    at(&mp, msg);
                }
            }
            check_test(p, e, kind, test, &format!("{path}.test"), at);
        }
    }
}

/// A metric reference valid for a kind's results.
fn check_metric(kind: &StageDecl, m: &str) -> Result<MetricRef, String> {
    let r = MetricRef::parse(m)?;
    if kind.results.metric(&r.name).is_none() {
        let known: Vec<&str> = kind.results.metrics.iter().map(|m| m.name).collect();
        return Err(format!(
            "stage kind `{}` writes no metric `{}`; it writes: {}",
            kind.name,
            r.name,
            known.join(", ")
        ));
    }
    match (kind.results.rows, r.reduce) {
        (Rows::PerEpoch, None) => Err(format!(
            "`{m}` is a per-epoch series: add a reducer, e.g. `{m}@final` ({REDUCERS})"
        )),
        (Rows::PerUpstreamRun { .. }, Some(_)) => Err(format!(
            "`{m}`: stage kind `{}` writes one value per run; drop the `@…` reducer",
            kind.name
        )),
        _ => Ok(r),
    }
}

/// Grid coordinates a check may select on, with their parameter schemas.
fn check_axis(
    p: &Pipeline,
    experiment: &str,
    kind: &StageDecl,
    axis: &str,
) -> Result<&'static super::params::ParamSpec, String> {
    if axis == "seed" {
        return Err("`seed` is the replicate axis; arms are compared across seeds".into());
    }
    let coord = coordinate_kind(p, experiment).ok_or_else(|| {
        format!("experiment `{experiment}` has no upstream experiment to take coordinates from")
    })?;
    if let Rows::PerUpstreamRun { coordinates } = kind.results.rows
        && !coordinates.contains(&axis)
    {
        return Err(format!(
            "`{axis}` is not a coordinate of `{}` results; they carry {}",
            kind.name,
            coordinates.join(", ")
        ));
    }
    coord.params.iter().find(|s| s.name == axis).ok_or_else(|| {
        let valid: Vec<&str> = coord.params.iter().map(|s| s.name).collect();
        format!(
            "`{axis}` is not a parameter of stage kind `{}`; valid: {}",
            coord.name,
            valid.join(", ")
        )
    })
}

fn check_test(
    p: &Pipeline,
    experiment: &str,
    kind: &StageDecl,
    test: &TestSpec,
    path: &str,
    at: &mut dyn FnMut(&str, String),
) {
    let arm = |name: &str, a: &Arm, at: &mut dyn FnMut(&str, String)| {
        if a.is_empty() {
            at(
                &format!("{path}.{name}"),
                "an arm needs at least one coordinate, e.g. {schedule: early}".into(),
            );
        }
        for (axis, v) in a {
            let ap = format!("{path}.{name}.{axis}");
            match check_axis(p, experiment, kind, axis) {
                Err(msg) => at(&ap, msg),
                Ok(spec) => {
                    if let Err(msg) = spec.check(v) {
                        at(&ap, format!("`{axis}`: {msg}"));
                    }
                }
            }
        }
    };
    match test {
        TestSpec::Less { a, b } | TestSpec::Greater { a, b } => {
            let tag = if matches!(test, TestSpec::Less { .. }) {
                "less"
            } else {
                "greater"
            };
            arm(&format!("{tag}.a"), a, at);
            arm(&format!("{tag}.b"), b, at);
        }
        TestSpec::Equivalent { a, b, margin } => {
            arm("equivalent.a", a, at);
            arm("equivalent.b", b, at);
            if !(margin.is_finite() && *margin > 0.0) {
                at(
                    &format!("{path}.equivalent.margin"),
                    format!("margin must be a positive number, got {margin}"),
                );
            }
        }
        TestSpec::Increasing { along } => {
            if let Err(msg) = check_axis(p, experiment, kind, along) {
                at(&format!("{path}.increasing.along"), msg);
            }
        }
        TestSpec::RankAgreement {
            with,
            across,
            above,
            below,
        } => {
            let rp = format!("{path}.rank_agreement");
            if let Err(msg) = check_metric(kind, with) {
                at(&format!("{rp}.with"), msg);
            }
            if let Err(msg) = check_axis(p, experiment, kind, across) {
                at(&format!("{rp}.across"), msg);
            }
            match (above, below) {
                (Some(t), None) | (None, Some(t)) if (-1.0..=1.0).contains(t) => {}
                (Some(_), None) | (None, Some(_)) => at(
                    &rp,
                    "the τ threshold must be in [-1, 1] (Kendall τ's range)".into(),
                ),
                _ => at(
                    &rp,
                    "give exactly one of `above: τ` or `below: τ`".to_string(),
                ),
            }
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
