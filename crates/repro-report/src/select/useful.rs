//! Resolving `where: {AXIS: {useful: …}}` on the runs (docs/paper.md#c10: "at a useful λ", our
//! reading; the schema is `pipeline::claims::UsefulSpec`). Per seed, among the non-diverged runs
//! of the arm `of` (the other `where` entries applied, except on the axes `of` fixes itself):
//! the best `by` value at each value of the axis, best over every other axis; the seed's best
//! over the axis; the useful value, the largest whose best is within `within` of it. Seeds whose
//! useful value is 0 are dropped; with `worse`, that arm must be worse than `of` there, on
//! average over the seeds, or the check is not checkable.

use std::collections::BTreeMap;

use serde_json::{Map, Value};

use crate::numbers::num;
use crate::observe::{ExperimentData, Observation, arm_label, same_value};
use crate::sweep::grid_text;
use repro_core::pipeline::claims::{Arm, MetricRef, Pick, UsefulSpec, arm_words};

/// The value of the axis each kept seed reads, and the selector in words.
#[derive(Debug)]
pub struct Chosen {
    axis: String,
    by_seed: BTreeMap<i64, Value>,
    /// `weight_decay = useful: 1e-3 (seed 0), 3e-4 (seed 1) by valid_loss@min of variant=adamw
    /// within 0.05`, with the seeds dropped and the `worse` contrast when there are.
    pub words: String,
}

impl Chosen {
    /// Whether an observation lies at its seed's useful value.
    pub fn keeps(&self, o: &Observation) -> bool {
        match (self.by_seed.get(&o.seed), o.coords.get(&self.axis)) {
            (Some(want), Some(got)) => same_value(want, got),
            _ => false,
        }
    }
}

/// Why no useful value could be read.
#[derive(Debug)]
pub enum Refusal {
    NotRun(String),
    /// `words`: the selector as far as it got, for the measured line.
    NotCheckable {
        why: String,
        words: String,
    },
}

/// How the axis is named in sentences: λ for weight decay, else its name.
fn symbol(axis: &str) -> &str {
    if axis == "weight_decay" { "λ" } else { axis }
}

/// An arm by its values where those are names (`adamw`), else `k=v`.
fn arm_name(a: &Arm) -> String {
    let coords: Map<String, Value> = a.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
    let axes: Vec<String> = a.keys().cloned().collect();
    arm_label(&coords, &axes)
}

/// Per seed, the best `by` value at each axis value, as (axis value, as the runs spell it,
/// best), over the non-diverged runs of `arm` with the other fixed coordinates.
fn best_per_value(
    data: &ExperimentData,
    axis: &str,
    arm: &Arm,
    fixed: &BTreeMap<String, Value>,
    by: &MetricRef,
    pick: Pick,
) -> BTreeMap<i64, Vec<(f64, Value, f64)>> {
    let mut out: BTreeMap<i64, Vec<(f64, Value, f64)>> = BTreeMap::new();
    let fits = |o: &&Observation| {
        o.in_arm(arm)
            && fixed
                .iter()
                .filter(|(k, _)| !arm.contains_key(*k) && *k != axis)
                .all(|(k, v)| o.coords.get(k).is_some_and(|c| same_value(c, v)))
    };
    for o in data
        .observations
        .iter()
        .filter(fits)
        .filter(|o| !o.diverged)
    {
        let (Some(xv), Some(v)) = (o.coords.get(axis), o.value(data.kind, by)) else {
            continue;
        };
        let Some(x) = xv.as_f64() else { continue };
        let row = out.entry(o.seed).or_default();
        match row.iter_mut().find(|(y, _, _)| *y == x) {
            Some((_, _, b)) if better(pick, v, *b) => *b = v,
            Some(_) => {}
            None => row.push((x, xv.clone(), v)),
        }
    }
    out
}

/// The useful value of each seed of `u.of`, or why there is none.
pub fn choose(
    data: &ExperimentData,
    axis: &str,
    u: &UsefulSpec,
    fixed: &BTreeMap<String, Value>,
) -> Result<Chosen, Refusal> {
    let by = MetricRef::parse(&u.by).map_err(Refusal::NotRun)?;
    let of_name = arm_name(&u.of);
    let sym = symbol(axis);
    let seeds: Vec<i64> = {
        let mut s: Vec<i64> = data
            .observations
            .iter()
            .filter(|o| o.in_arm(&u.of))
            .map(|o| o.seed)
            .collect();
        s.sort_unstable();
        s.dedup();
        s
    };
    if seeds.is_empty() {
        return Err(Refusal::NotRun(format!(
            "no finished run of `{}` has {} (the `useful` {sym}'s `of`)",
            data.name,
            arm_words(&u.of)
        )));
    }
    let table = best_per_value(data, axis, &u.of, fixed, &by, u.pick);
    let mut by_seed: BTreeMap<i64, Value> = BTreeMap::new();
    let mut at_zero = Vec::new();
    let mut all_diverged = Vec::new();
    for seed in &seeds {
        let Some(row) = table.get(seed).filter(|r| !r.is_empty()) else {
            all_diverged.push(*seed);
            continue;
        };
        let best = row
            .iter()
            .map(|(_, _, b)| *b)
            .reduce(|a, b| if better(u.pick, b, a) { b } else { a })
            .unwrap_or(f64::NAN);
        let tol = u.within.tolerance(best);
        let useful = row
            .iter()
            .filter(|(_, _, b)| match u.pick {
                Pick::Min => *b <= best + tol,
                Pick::Max => *b >= best - tol,
            })
            .max_by(|a, b| a.0.total_cmp(&b.0));
        match useful {
            Some((x, _, _)) if *x == 0.0 => at_zero.push(*seed),
            Some((_, xv, _)) => {
                by_seed.insert(*seed, xv.clone());
            }
            None => all_diverged.push(*seed),
        }
    }
    let listed: Vec<String> = by_seed
        .iter()
        .map(|(s, v)| format!("{} (seed {s})", show(v)))
        .collect();
    let mut words = format!(
        "{axis} = useful: {} {}",
        if listed.is_empty() {
            "none".to_string()
        } else {
            listed.join(", ")
        },
        u.words()
    );
    let mut dropped = Vec::new();
    if !at_zero.is_empty() {
        dropped.push(format!(
            "{} dropped: its useful {sym} is 0",
            seeds_text(&at_zero)
        ));
    }
    if !all_diverged.is_empty() {
        dropped.push(format!(
            "{} dropped: every run of {of_name} diverged or has no {by}",
            seeds_text(&all_diverged)
        ));
    }
    if !dropped.is_empty() {
        words += &format!(" ({})", dropped.join("; "));
    }
    if by_seed.is_empty() {
        let why = if all_diverged.is_empty() {
            format!("{of_name}'s useful {sym} is 0 in every seed")
        } else if at_zero.is_empty() {
            format!("every run of {of_name} diverged or has no {by}, in every seed")
        } else {
            format!("no seed has a useful {sym} of {of_name} above 0")
        };
        return Err(Refusal::NotCheckable { why, words });
    }
    if let Some(worse) = &u.worse {
        let worse_table = best_per_value(data, axis, worse, fixed, &by, u.pick);
        if !data.observations.iter().any(|o| o.in_arm(worse)) {
            return Err(Refusal::NotRun(format!(
                "no finished run of `{}` has {} (the `useful` {sym}'s `worse`)",
                data.name,
                arm_words(worse)
            )));
        }
        let at = |t: &BTreeMap<i64, Vec<(f64, Value, f64)>>, seed: i64, x: &Value| {
            t.get(&seed)?
                .iter()
                .find(|(_, xv, _)| same_value(xv, x))
                .map(|(_, _, b)| *b)
        };
        let n = by_seed.len() as f64;
        let of_mean = by_seed
            .iter()
            .filter_map(|(s, x)| at(&table, *s, x))
            .sum::<f64>()
            / n;
        // A `worse` arm that diverged at every other coordinate there is as bad as it gets.
        let worst = match u.pick {
            Pick::Min => f64::INFINITY,
            Pick::Max => f64::NEG_INFINITY,
        };
        let worse_mean = by_seed
            .iter()
            .map(|(s, x)| at(&worse_table, *s, x).unwrap_or(worst))
            .sum::<f64>()
            / n;
        let worse_name = arm_name(worse);
        let contrast = format!("{by} {} vs {}", num(worse_mean), num(of_mean));
        if !better(u.pick, of_mean, worse_mean) {
            return Err(Refusal::NotCheckable {
                why: format!(
                    "{worse_name} is not worse than {of_name} at the useful {sym}: {contrast}"
                ),
                words,
            });
        }
        words += &format!(" ({worse_name} worse there: {contrast})");
    }
    Ok(Chosen {
        axis: axis.to_string(),
        by_seed,
        words,
    })
}

fn show(v: &Value) -> String {
    match v {
        Value::Number(n) => n.as_f64().map(grid_text).unwrap_or_else(|| n.to_string()),
        Value::String(s) => s.clone(),
        _ => v.to_string(),
    }
}

/// `seed 2`, `seeds 0, 2`.
fn seeds_text(seeds: &[i64]) -> String {
    let list: Vec<String> = seeds.iter().map(i64::to_string).collect();
    match seeds {
        [_] => format!("seed {}", list[0]),
        _ => format!("seeds {}", list.join(", ")),
    }
}

/// Whether `x` is strictly better than `y` under `pick`.
pub(super) fn better(pick: Pick, x: f64, y: f64) -> bool {
    match pick {
        Pick::Min => x < y,
        Pick::Max => x > y,
    }
}
