//! What one check reads from an experiment once its `where:` and `tune:` are applied (the
//! Adam claims C7–C10): the observations narrowed to fixed coordinates (`max`/`min` resolved
//! against the experiment's observations), then the tuned axes collapsed per arm and seed into
//! one point each, either the best run or the fraction of good cells. The tests of `verdict`
//! run on these points unchanged; without `where`/`tune` there is one point per observation.

use std::cmp::Ordering;
use std::collections::BTreeMap;

use serde_json::{Map, Value};

use super::observe::{ExperimentData, Observation, same_value};
use crate::pipeline::claims::{ClaimSpec, MetricRef, Pick, TuneSpec};

/// One replicate value of one arm, as the test sees it.
#[derive(Debug, Clone)]
pub struct Point<'a> {
    /// Coordinates, the tuned axes removed; `seed` included.
    pub coords: Map<String, Value>,
    pub seed: i64,
    /// The check's metric (`None`: absent, not finite, or no good-region best for the seed).
    pub value: Option<f64>,
    /// The run it was read from; none for a good-region fraction, which is no one run's.
    pub run: Option<&'a Observation>,
}

impl Point<'_> {
    /// Whether it belongs to an arm (`{schedule: early}`).
    pub fn in_arm(&self, arm: &BTreeMap<String, Value>) -> bool {
        arm.iter()
            .all(|(k, v)| self.coords.get(k).is_some_and(|c| same_value(c, v)))
    }
}

/// A check's view of one experiment.
#[derive(Debug, Clone)]
pub struct Selection<'a> {
    pub points: Vec<Point<'a>>,
    /// The observations left by `where`: every number of the check comes from these.
    pub read: Vec<&'a Observation>,
    /// Coordinates that still vary across the points, `seed` excluded, in first-seen order.
    pub axes: Vec<String>,
    /// How the points were formed, for the "measured" line (`where weight_decay=0.1 (max); …`);
    /// empty without `where`/`tune`.
    pub how: String,
}

/// Apply a check's `where` and `tune` to an experiment for metric `m`. An error is a reason
/// the check cannot run on this data (it reports "not run" with it).
pub fn select<'a>(
    c: &ClaimSpec,
    data: &'a ExperimentData,
    m: &MetricRef,
) -> Result<Selection<'a>, String> {
    let mut how = Vec::new();
    let mut fixed: BTreeMap<String, Value> = BTreeMap::new();
    let mut shown = Vec::new();
    for (axis, v) in &c.where_ {
        let resolved = resolve(data, axis, v)?;
        shown.push(match v.as_str() {
            Some(w @ ("max" | "min")) if resolved != *v => {
                format!("{axis}={} ({w})", show_value(&resolved))
            }
            _ => format!("{axis}={}", show_value(&resolved)),
        });
        fixed.insert(axis.clone(), resolved);
    }
    let read: Vec<&Observation> = data
        .observations
        .iter()
        .filter(|o| {
            fixed
                .iter()
                .all(|(k, v)| o.coords.get(k).is_some_and(|c| same_value(c, v)))
        })
        .collect();
    if !shown.is_empty() {
        how.push(format!("where {}", shown.join(", ")));
        if read.is_empty() && !data.observations.is_empty() {
            return Err(format!(
                "no finished run of `{}` has {}",
                data.name,
                shown.join(", ")
            ));
        }
    }
    let points = match &c.tune {
        None => read
            .iter()
            .map(|o| Point {
                coords: o.coords.clone(),
                seed: o.seed,
                value: o.value(data.kind, m),
                run: Some(o),
            })
            .collect(),
        Some(t) => {
            let by = match &t.by {
                Some(b) => MetricRef::parse(b)?,
                None => m.clone(),
            };
            how.push(tune_words(t, &by));
            tune(data, &read, t, m, &by)
        }
    };
    let axes = varying(&points);
    Ok(Selection {
        points,
        read,
        axes,
        how: how.join("; "),
    })
}

/// `max`/`min` on an axis whose observations carry numbers: the largest/smallest of them.
fn resolve(data: &ExperimentData, axis: &str, v: &Value) -> Result<Value, String> {
    let Some(w) = v.as_str().filter(|w| matches!(*w, "max" | "min")) else {
        return Ok(v.clone());
    };
    let present: Vec<&Value> = data
        .observations
        .iter()
        .filter_map(|o| o.coords.get(axis))
        .collect();
    // A string axis may have a value literally called "max".
    if present.is_empty() || present.iter().any(|x| x.is_string()) {
        return Ok(v.clone());
    }
    let pick = if w == "max" { f64::max } else { f64::min };
    let best = present
        .iter()
        .filter_map(|x| x.as_f64())
        .reduce(pick)
        .ok_or_else(|| format!("`where.{axis}: {w}`: `{axis}` has no numeric values"))?;
    // Return the coordinate as the runs spell it (an integer axis stays an integer).
    Ok(present
        .into_iter()
        .find(|x| x.as_f64() == Some(best))
        .cloned()
        .unwrap_or(Value::from(best)))
}

fn show_value(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        _ => v.to_string(),
    }
}

/// The tuning in words, for the test column and the measured line.
pub fn tune_words(t: &TuneSpec, by: &MetricRef) -> String {
    let over = t.over.join(", ");
    match t.good_within {
        None => format!("best of {over} by {} {by}", t.pick.word()),
        Some(x) => match t.pick {
            Pick::Min => format!("fraction of ({over}) cells with {by} ≤ seed's best + {x}"),
            Pick::Max => format!("fraction of ({over}) cells with {by} ≥ seed's best − {x}"),
        },
    }
}

/// Order of two coordinate values: numbers by value, before strings, strings by text.
fn cmp_value(a: Option<&Value>, b: Option<&Value>) -> Ordering {
    match (a.and_then(Value::as_f64), b.and_then(Value::as_f64)) {
        (Some(x), Some(y)) => x.total_cmp(&y),
        (Some(_), None) => Ordering::Less,
        (None, Some(_)) => Ordering::Greater,
        (None, None) => {
            show_value(a.unwrap_or(&Value::Null)).cmp(&show_value(b.unwrap_or(&Value::Null)))
        }
    }
}

/// Whether `x` is strictly better than `y` under `pick`.
fn better(pick: Pick, x: f64, y: f64) -> bool {
    match pick {
        Pick::Min => x < y,
        Pick::Max => x > y,
    }
}

/// Collapse the `over` axes: one point per arm (coordinates without `over`) and seed.
fn tune<'a>(
    data: &'a ExperimentData,
    read: &[&'a Observation],
    t: &TuneSpec,
    m: &MetricRef,
    by: &MetricRef,
) -> Vec<Point<'a>> {
    // Cells of each arm and seed, in first-seen order of the arms, each arm's cells sorted by
    // their `over` coordinates so ties are broken the same way whatever order runs were read.
    let mut groups: Vec<(Map<String, Value>, Vec<&Observation>)> = Vec::new();
    for o in read {
        let mut key = o.coords.clone();
        for a in &t.over {
            key.remove(a);
        }
        match groups.iter_mut().find(|(k, _)| *k == key) {
            Some((_, cells)) => cells.push(o),
            None => groups.push((key, vec![o])),
        }
    }
    for (_, cells) in &mut groups {
        cells.sort_by(|x, y| {
            t.over
                .iter()
                .map(|a| cmp_value(x.coords.get(a), y.coords.get(a)))
                .find(|o| o.is_ne())
                .unwrap_or(Ordering::Equal)
        });
    }
    match t.good_within {
        None => groups
            .into_iter()
            .map(|(coords, cells)| {
                let seed = cells[0].seed;
                let mut best: Option<(&Observation, f64)> = None;
                for o in cells {
                    if let Some(v) = o.value(data.kind, by)
                        && best.is_none_or(|(_, b)| better(t.pick, v, b))
                    {
                        best = Some((o, v));
                    }
                }
                Point {
                    coords,
                    seed,
                    value: best.and_then(|(o, _)| o.value(data.kind, m)),
                    run: best.map(|(o, _)| o),
                }
            })
            .collect(),
        Some(x) => {
            // The best `by` value of each seed over every arm's cells.
            let mut best: BTreeMap<i64, f64> = BTreeMap::new();
            for o in read {
                if let Some(v) = o.value(data.kind, by) {
                    let b = best.entry(o.seed).or_insert(v);
                    if better(t.pick, v, *b) {
                        *b = v;
                    }
                }
            }
            groups
                .into_iter()
                .map(|(coords, cells)| {
                    let seed = cells[0].seed;
                    let value = best.get(&seed).map(|&b| {
                        let good = cells
                            .iter()
                            .filter(|o| {
                                // Missing and non-finite values are `None`: not good.
                                o.value(data.kind, by).is_some_and(|v| match t.pick {
                                    Pick::Min => v <= b + x,
                                    Pick::Max => v >= b - x,
                                })
                            })
                            .count();
                        good as f64 / cells.len() as f64
                    });
                    Point {
                        coords,
                        seed,
                        value,
                        run: None,
                    }
                })
                .collect()
        }
    }
}

/// Coordinates whose value differs between points, `seed` excluded, in first-seen order.
pub fn varying(points: &[Point]) -> Vec<String> {
    let Some(first) = points.first() else {
        return Vec::new();
    };
    first
        .coords
        .keys()
        .filter(|k| {
            *k != "seed"
                && points
                    .iter()
                    .any(|p| p.coords.get(*k) != first.coords.get(*k))
        })
        .cloned()
        .collect()
}
