//! Plan-time validation of the `claims:` section: every name a check uses (experiments,
//! metrics, arm coordinates, `where` keys and values, `tune` axes and metric, thresholds) is
//! checked against the stage kinds' declared parameters and results, each problem reported at
//! its YAML path so the pipeline's error says `FILE:LINE:COL`.

use std::collections::BTreeSet;

use serde_json::Value;

use crate::pipeline::claims::{
    Arm, ClaimSpec, MetricRef, REDUCERS, TestSpec, TuneSpec, UsefulSpec, WhereValue,
};
use crate::pipeline::kinds;
use crate::pipeline::params::{self, ParamSpec, ParamType};
use crate::pipeline::spec::{ExperimentSpec, Pipeline, valid_name};
use crate::pipeline::stage::{Rows, StageDecl};

/// A claim's verdict combines its `role: claim` checks: a claim with none would have no verdict.
fn counted_check_per_claim(p: &Pipeline, at: &mut dyn FnMut(&str, String)) {
    let mut first: Vec<(&str, usize)> = Vec::new();
    for (i, c) in p.claims.iter().enumerate() {
        if !first.iter().any(|(claim, _)| *claim == c.claim) {
            first.push((&c.claim, i));
        }
    }
    for (claim, i) in first {
        if !p
            .claims
            .iter()
            .any(|c| c.claim == claim && c.role.is_claim())
        {
            at(
                &format!("claims[{i}].role"),
                format!(
                    "claim `{claim}` has only extension or finding checks; at least one of its checks needs `role: claim` (the default) for the claim to have a verdict"
                ),
            );
        }
    }
}

/// Check every claim against the pipeline; `at(yaml_path, message)` records a problem.
pub fn check(p: &Pipeline, at: &mut dyn FnMut(&str, String)) {
    let mut ids = BTreeSet::new();
    counted_check_per_claim(p, at);
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
                    "claim `{}` needs a `test:` (less, greater, equivalent, increasing, decreasing, rank_agreement, above, below) or a `pending:` reason",
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
            let Some(kind) = kinds::kind(&exp.kind) else {
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
            check_where(p, e, kind, c, &path, at);
            for (j, axis) in c.per.iter().enumerate() {
                if let Err(msg) = check_axis(p, e, kind, axis) {
                    at(&format!("{path}.per[{j}]"), msg);
                }
            }
            if let Some(t) = &c.tune {
                check_tune(p, e, kind, t, test, &format!("{path}.tune"), at);
            }
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
) -> Result<&'static ParamSpec, String> {
    if axis == "seed" {
        return Err("`seed` is the replicate axis; arms are compared across seeds".into());
    }
    let coord = p.coordinate_kind(experiment).ok_or_else(|| {
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
        let grid = grid_axes(p, experiment);
        let grid = if grid.is_empty() {
            String::new()
        } else {
            format!(" (grid axes of `{experiment}`: {})", grid.join(", "))
        };
        format!(
            "`{axis}` is not a parameter of stage kind `{}`; valid: {}{grid}",
            coord.name,
            valid.join(", ")
        )
    })
}

/// The experiment whose grid gives an experiment's coordinates, with its name: itself, or for a
/// kind with a row per upstream run (sharpness) the experiment it needs.
fn grid_source<'a>(p: &'a Pipeline, experiment: &'a str) -> Option<(&'a str, &'a ExperimentSpec)> {
    let e = p.experiment(experiment)?;
    let name = match kinds::kind(&e.kind).map(|k| k.results.rows) {
        Some(Rows::PerUpstreamRun { .. }) => e.needs.first()?.as_str(),
        _ => experiment,
    };
    Some((name, p.experiment(name)?))
}

/// The grid axes (seed excluded) of an experiment's coordinates, over its declaration and
/// every profile's override, in first-seen order: the likely intended ones in an error.
fn grid_axes(p: &Pipeline, experiment: &str) -> Vec<String> {
    let Some((name, e)) = grid_source(p, experiment) else {
        return Vec::new();
    };
    let mut out: Vec<String> = Vec::new();
    let overrides = p.profiles.values().filter_map(|prof| {
        prof.experiments
            .get(name)?
            .get("grid")?
            .as_object()
            .map(|g| g.keys())
    });
    for k in e.grid.keys().chain(overrides.flatten()) {
        if k != "seed" && !out.contains(k) {
            out.push(k.clone());
        }
    }
    out
}

/// Coordinate equality as observations use it: numbers by value (`1` selects `1.0`).
fn same_value(a: &Value, b: &Value) -> bool {
    match (a.as_f64(), b.as_f64()) {
        (Some(x), Some(y)) => x == y,
        _ => a == b,
    }
}

/// Whether `max`/`min` may stand for a value of this axis (numeric axes only).
fn numeric(spec: &ParamSpec) -> bool {
    matches!(spec.ty, ParamType::Int { .. } | ParamType::Float { .. })
}

/// `where:` keys are coordinates of the experiment, values of the axis's type (or `max`/`min`
/// or a `useful` selector on a numeric axis), and do not contradict the test's arms.
fn check_where(
    p: &Pipeline,
    experiment: &str,
    kind: &StageDecl,
    c: &ClaimSpec,
    path: &str,
    at: &mut dyn FnMut(&str, String),
) {
    for (axis, v) in &c.where_ {
        let wp = format!("{path}.where.{axis}");
        let spec = match check_axis(p, experiment, kind, axis) {
            Err(msg) => {
                at(&wp, format!("`where`: {msg}"));
                continue;
            }
            Ok(spec) => spec,
        };
        let value = match WhereValue::parse(v) {
            Ok(value) => value,
            Err((sub, msg)) => {
                let sub = if sub.is_empty() {
                    sub
                } else {
                    format!(".{sub}")
                };
                at(&format!("{wp}{sub}"), format!("`where.{axis}`: {msg}"));
                continue;
            }
        };
        match value {
            WhereValue::Extreme(_) if numeric(spec) => continue,
            WhereValue::Useful(u) => {
                check_useful(p, experiment, kind, axis, spec, &u, &wp, at);
                continue;
            }
            WhereValue::Extreme(_) | WhereValue::Exact(_) => {}
        }
        let extreme = matches!(v.as_str(), Some("max" | "min"));
        if let Err(msg) = spec.check(v) {
            let hint = if numeric(spec) {
                ", or `max` / `min` (its largest / smallest value in the runs)"
            } else if extreme {
                " (`max` / `min` stand for a value only on a numeric axis)"
            } else {
                ""
            };
            at(&wp, format!("`where.{axis}`: {msg}{hint}"));
            continue;
        }
        if let Some(
            TestSpec::Less { a, b, .. }
            | TestSpec::Greater { a, b, .. }
            | TestSpec::Equivalent { a, b, .. },
        ) = &c.test
        {
            for (name, arm) in [("a", a), ("b", b)] {
                if let Some(x) = arm.get(axis)
                    && !same_value(x, v)
                {
                    at(
                        &wp,
                        format!(
                            "`where.{axis}` keeps only {} but arm `{name}` asks for {}: the arm would be empty",
                            params::describe(v),
                            params::describe(x)
                        ),
                    );
                }
            }
        }
    }
}

/// A `useful` selector: on a numeric axis, its arms made of grid values of the experiment
/// (an arm naming a value no profile runs would select nothing), its `by` a declared metric.
#[allow(clippy::too_many_arguments)]
fn check_useful(
    p: &Pipeline,
    experiment: &str,
    kind: &StageDecl,
    axis: &str,
    spec: &ParamSpec,
    u: &UsefulSpec,
    wp: &str,
    at: &mut dyn FnMut(&str, String),
) {
    if !numeric(spec) {
        at(
            wp,
            format!(
                "`where.{axis}`: `useful` picks the largest good value of a numeric axis; `{axis}` is not numeric"
            ),
        );
    }
    for (name, arm) in [("of", Some(&u.of)), ("worse", u.worse.as_ref())] {
        for (k, v) in arm.into_iter().flatten() {
            let ap = format!("{wp}.useful.{name}.{k}");
            if k == axis {
                at(
                    &ap,
                    format!("`useful.{name}` cannot fix `{axis}`, the axis it chooses a value of"),
                );
                continue;
            }
            if let Err(msg) = check_axis(p, experiment, kind, k) {
                at(&ap, format!("`useful.{name}`: {msg}"));
                continue;
            }
            let values = grid_values(p, experiment, k);
            if !values.iter().any(|g| same_value(g, v)) {
                let listed: Vec<String> = values.iter().map(params::describe).collect();
                let listed = if listed.is_empty() {
                    format!("`{k}` is not a grid axis of `{experiment}`")
                } else {
                    format!("its grid has {}", listed.join(", "))
                };
                at(
                    &ap,
                    format!(
                        "`useful.{name}`: no run of `{experiment}` has {k} = {}; {listed}",
                        params::describe(v)
                    ),
                );
            }
        }
    }
    if let Err(msg) = check_metric(kind, &u.by) {
        at(&format!("{wp}.useful.by"), format!("`useful.by`: {msg}"));
    }
}

/// Every value an axis takes in the experiment's grid, over its declaration and every
/// profile's override (a scalar grid entry is one value).
fn grid_values(p: &Pipeline, experiment: &str, axis: &str) -> Vec<Value> {
    let Some((name, e)) = grid_source(p, experiment) else {
        return Vec::new();
    };
    let overrides = p.profiles.values().filter_map(|prof| {
        prof.experiments
            .get(name)?
            .get("grid")?
            .as_object()?
            .get(axis)
    });
    let mut out: Vec<Value> = Vec::new();
    for g in e.grid.get(axis).into_iter().chain(overrides) {
        let many = match g {
            Value::Array(a) => a.clone(),
            v => vec![v.clone()],
        };
        for v in many {
            if !out.iter().any(|x| same_value(x, &v)) {
                out.push(v);
            }
        }
    }
    out
}

/// `tune:` collapses grid axes that the test does not compare, by a metric of the kind.
fn check_tune(
    p: &Pipeline,
    experiment: &str,
    kind: &StageDecl,
    t: &TuneSpec,
    test: &TestSpec,
    path: &str,
    at: &mut dyn FnMut(&str, String),
) {
    if t.over.is_empty() {
        at(
            &format!("{path}.over"),
            "`tune.over` needs at least one grid axis to collapse, e.g. [lr, weight_decay]".into(),
        );
    }
    // Axes the test itself reads, which tuning would erase.
    let mut compared: Vec<(String, &str)> = Vec::new();
    match test {
        TestSpec::Less { a, b, .. }
        | TestSpec::Greater { a, b, .. }
        | TestSpec::Equivalent { a, b, .. } => {
            compared.extend(a.keys().map(|k| (k.clone(), "arm `a`")));
            compared.extend(b.keys().map(|k| (k.clone(), "arm `b`")));
        }
        TestSpec::Increasing { along } | TestSpec::Decreasing { along } => {
            compared.push((along.clone(), "`along`"))
        }
        TestSpec::RankAgreement { across, .. } => {
            compared.extend(across.iter().map(|a| (a.clone(), "`across`")))
        }
        TestSpec::Above { .. } | TestSpec::Below { .. } => {}
    }
    for (j, axis) in t.over.iter().enumerate() {
        let op = format!("{path}.over[{j}]");
        if let Err(msg) = check_axis(p, experiment, kind, axis) {
            at(&op, format!("`tune.over`: {msg}"));
            continue;
        }
        if let Some((_, by)) = compared.iter().find(|(k, _)| k == axis) {
            at(
                &op,
                format!(
                    "`{axis}` is both tuned over and compared by the test's {by}: collapse it or compare it, not both"
                ),
            );
        }
        if t.over[..j].contains(axis) {
            at(&op, format!("`{axis}` is listed twice in `tune.over`"));
        }
    }
    if let Some(by) = &t.by
        && let Err(msg) = check_metric(kind, by)
    {
        at(&format!("{path}.by"), format!("`tune.by`: {msg}"));
    }
    if let Some(x) = t.good_within {
        if !(x.is_finite() && x >= 0.0) {
            at(
                &format!("{path}.good_within"),
                format!("`tune.good_within` must be a finite number ≥ 0, got {x}"),
            );
        }
        if matches!(test, TestSpec::RankAgreement { .. }) {
            at(
                &format!("{path}.good_within"),
                "`good_within` turns the metric into a fraction of good cells, which no one run has: \
                 rank_agreement's `with` metric cannot be read from it; drop `good_within` or use another test"
                    .into(),
            );
        }
    }
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
        TestSpec::Less { a, b, margin } | TestSpec::Greater { a, b, margin } => {
            let tag = if matches!(test, TestSpec::Less { .. }) {
                "less"
            } else {
                "greater"
            };
            arm(&format!("{tag}.a"), a, at);
            arm(&format!("{tag}.b"), b, at);
            if let Some(m) = margin
                && !(m.is_finite() && *m >= 0.0)
            {
                at(
                    &format!("{path}.{tag}.margin"),
                    format!("margin must be a finite number ≥ 0 (0: a plain ordering), got {m}"),
                );
            }
        }
        TestSpec::Above { value } | TestSpec::Below { value } => {
            if !value.is_finite() {
                let tag = if matches!(test, TestSpec::Above { .. }) {
                    "above"
                } else {
                    "below"
                };
                at(
                    &format!("{path}.{tag}.value"),
                    format!("the threshold must be a finite number, got {value}"),
                );
            }
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
        TestSpec::Decreasing { along } => {
            if let Err(msg) = check_axis(p, experiment, kind, along) {
                at(&format!("{path}.decreasing.along"), msg);
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
            if across.is_empty() {
                at(
                    &format!("{rp}.across"),
                    "name at least one axis to rank across".into(),
                );
            }
            for (i, axis) in across.iter().enumerate() {
                if let Err(msg) = check_axis(p, experiment, kind, axis) {
                    let at_path = if across.len() == 1 {
                        format!("{rp}.across")
                    } else {
                        format!("{rp}.across[{i}]")
                    };
                    at(&at_path, msg);
                }
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
