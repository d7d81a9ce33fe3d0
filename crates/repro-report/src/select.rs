//! What one check reads from an experiment once its `where:` and `tune:` are applied (the
//! Adam claims C7–C10): the observations narrowed to fixed coordinates (`max`/`min` resolved
//! against the experiment's observations, `useful` per seed in [`useful`]), then the tuned axes
//! collapsed per arm and seed into one point each, either the best run or the fraction of good
//! cells. The tests of `verdict` run on these points unchanged; without `where`/`tune` there is
//! one point per observation.
//!
//! Divergence (a cell = the coordinates of a run without its seed, e.g. one (variant, lr, λ)):
//! an untuned point of a diverged run has no value and is marked diverged; tuning to the best run
//! chooses only among cells where no seed diverged (a point whose arm has no such cell is marked
//! diverged); a good-region fraction counts a diverged run as not good, over the full grid. The
//! cells with a diverged run are listed so `verdict` can name them.

use std::cmp::Ordering;
use std::collections::BTreeMap;

use serde_json::{Map, Value};

use super::observe::{ExperimentData, Observation, same_value};
use repro_core::pipeline::claims::{ClaimSpec, MetricRef, Pick, TuneSpec, WhereValue};

mod useful;
use useful::better;

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
    /// Divergence left it without a value: its run diverged, or (tuned) every cell of its arm
    /// has a diverged seed.
    pub diverged: bool,
}

/// A cell of the runs read with at least one diverged run.
#[derive(Debug, Clone)]
pub struct DivergedCell {
    /// The cell's coordinates, `seed` excluded.
    pub coords: Map<String, Value>,
    /// The seeds whose run diverged, ascending.
    pub seeds: Vec<i64>,
    /// How many seeds the cell has.
    pub of: usize,
}

impl DivergedCell {
    pub fn every_seed(&self) -> bool {
        self.seeds.len() == self.of
    }
}

/// How the points were formed, which decides what a diverged run did to them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// One point per run: a diverged run's point was dropped.
    Runs,
    /// The best run per arm and seed: cells with a diverged seed were skipped.
    Best,
    /// The good-region fraction: a diverged run counted as not good.
    Region,
}

/// Why a check cannot be evaluated on this data.
#[derive(Debug, Clone, PartialEq)]
pub enum Unselectable {
    /// The data it needs is absent ("not run" with the reason).
    NotRun(String),
    /// The data is there but the check's question does not arise in it ("not checkable" with
    /// the reason: e.g. the useful λ is 0 in every seed). The how-line so far comes with it.
    NotCheckable { why: String, how: String },
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
    pub mode: Mode,
    /// Cells of `read` with a diverged run, in first-seen order.
    pub diverged: Vec<DivergedCell>,
}

/// Apply a check's `where` and `tune` to an experiment for metric `m`.
pub fn select<'a>(
    c: &ClaimSpec,
    data: &'a ExperimentData,
    m: &MetricRef,
) -> Result<Selection<'a>, Unselectable> {
    let mut how = Vec::new();
    let mut fixed: BTreeMap<String, Value> = BTreeMap::new();
    let mut shown = Vec::new();
    let mut per_seed = Vec::new();
    for (axis, v) in &c.where_ {
        match WhereValue::parse(v).map_err(|(_, msg)| Unselectable::NotRun(msg))? {
            WhereValue::Useful(u) => per_seed.push((axis, u)),
            WhereValue::Exact(_) | WhereValue::Extreme(_) => {
                let resolved = resolve(data, axis, v).map_err(Unselectable::NotRun)?;
                shown.push(match v.as_str() {
                    Some(w @ ("max" | "min")) if resolved != *v => {
                        format!("{axis}={} ({w})", show_value(&resolved))
                    }
                    _ => format!("{axis}={}", show_value(&resolved)),
                });
                fixed.insert(axis.clone(), resolved);
            }
        }
    }
    let mut read: Vec<&Observation> = data
        .observations
        .iter()
        .filter(|o| {
            fixed
                .iter()
                .all(|(k, v)| o.coords.get(k).is_some_and(|c| same_value(c, v)))
        })
        .collect();
    for (axis, u) in per_seed {
        match useful::choose(data, axis, &u, &fixed) {
            Ok(chosen) => {
                read.retain(|o| chosen.keeps(o));
                shown.push(chosen.words);
            }
            Err(useful::Refusal::NotRun(why)) => return Err(Unselectable::NotRun(why)),
            Err(useful::Refusal::NotCheckable { why, words }) => {
                shown.push(words);
                return Err(Unselectable::NotCheckable {
                    why,
                    how: format!("where {}", shown.join(", ")),
                });
            }
        }
    }
    if !shown.is_empty() {
        how.push(format!("where {}", shown.join(", ")));
        if read.is_empty() && !data.observations.is_empty() {
            return Err(Unselectable::NotRun(format!(
                "no finished run of `{}` has {}",
                data.name,
                shown.join(", ")
            )));
        }
    }
    let diverged = diverged_cells(&read);
    let (points, mode) = match &c.tune {
        None => (
            read.iter()
                .map(|o| Point {
                    coords: o.coords.clone(),
                    seed: o.seed,
                    value: (!o.diverged).then(|| o.value(data.kind, m)).flatten(),
                    run: Some(o),
                    diverged: o.diverged,
                })
                .collect(),
            Mode::Runs,
        ),
        Some(t) => {
            let by = match &t.by {
                Some(b) => MetricRef::parse(b).map_err(Unselectable::NotRun)?,
                None => m.clone(),
            };
            how.push(tune_words(t, &by));
            let mode = match t.good_within {
                None => Mode::Best,
                Some(_) => Mode::Region,
            };
            (tune(data, &read, t, m, &by), mode)
        }
    };
    let axes = varying(&points);
    Ok(Selection {
        points,
        read,
        axes,
        how: how.join("; "),
        mode,
        diverged,
    })
}

/// A run's cell: its coordinates without the seed, as a key.
fn cell_key(o: &Observation) -> String {
    let mut c = o.coords.clone();
    c.remove("seed");
    serde_json::to_string(&c).unwrap_or_default()
}

/// The cells of `read` with a diverged run, in first-seen order.
fn diverged_cells(read: &[&Observation]) -> Vec<DivergedCell> {
    let mut cells: Vec<(String, DivergedCell)> = Vec::new();
    for o in read {
        let key = cell_key(o);
        let i = match cells.iter().position(|(k, _)| *k == key) {
            Some(i) => i,
            None => {
                let mut coords = o.coords.clone();
                coords.remove("seed");
                cells.push((
                    key,
                    DivergedCell {
                        coords,
                        seeds: Vec::new(),
                        of: 0,
                    },
                ));
                cells.len() - 1
            }
        };
        let cell = &mut cells[i].1;
        cell.of += 1;
        if o.diverged {
            cell.seeds.push(o.seed);
        }
    }
    cells
        .into_iter()
        .filter_map(|(_, mut c)| {
            c.seeds.sort_unstable();
            (!c.seeds.is_empty()).then_some(c)
        })
        .collect()
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
        None => {
            // A cell where any seed diverged is no choice for any seed: its other seeds' numbers
            // come from a setting that does not reliably train.
            let tainted: Vec<String> = read
                .iter()
                .filter(|o| o.diverged)
                .map(|o| cell_key(o))
                .collect();
            groups
                .into_iter()
                .map(|(coords, cells)| {
                    let seed = cells[0].seed;
                    let mut best: Option<(&Observation, f64)> = None;
                    let mut eligible = 0;
                    for o in cells.iter().filter(|o| !tainted.contains(&cell_key(o))) {
                        eligible += 1;
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
                        diverged: eligible == 0,
                    }
                })
                .collect()
        }
        Some(x) => {
            // The best `by` value of each seed over every arm's cells (diverged runs excluded:
            // their best epoch before blowing up is no result).
            let mut best: BTreeMap<i64, f64> = BTreeMap::new();
            for o in read.iter().filter(|o| !o.diverged) {
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
                        // A diverged run is a bad cell, not an absent one: not good, and still
                        // counted in the denominator (the full grid). Missing and non-finite
                        // values are `None`: not good either.
                        let good = cells
                            .iter()
                            .filter(|o| {
                                !o.diverged
                                    && o.value(data.kind, by).is_some_and(|v| match t.pick {
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
                        diverged: false,
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
