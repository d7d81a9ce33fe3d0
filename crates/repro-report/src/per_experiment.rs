//! One table per experiment with finished runs: an optimizer sweep (see [`super::sweep`]) gets
//! one compact row per variant, RL returns the IQM table of [`super::returns`], and every other
//! experiment one row per arm with its kind's table metrics as mean ± 95% CI half-width over
//! seeds.

use super::observe::{Inputs, arm_label, by_arm};
use super::returns;
use super::sweep::{Sweep, grid_text};
use super::tables::{Cell, Table};
use repro_core::metrics::stats::{self, Summary};
use repro_core::pipeline::claims::MetricRef;

/// One table per experiment with finished runs.
pub fn tables(inputs: &Inputs) -> Vec<Table> {
    let mut out = Vec::new();
    for e in &inputs.experiments {
        if e.observations.is_empty() {
            continue;
        }
        if let Some(sw) = Sweep::detect(e) {
            out.push(sweep_table(&sw));
            continue;
        }
        if let Some(t) = returns::table(e) {
            out.push(t);
            continue;
        }
        let metrics: Vec<(String, MetricRef)> = e
            .kind
            .results
            .metrics
            .iter()
            .filter_map(|m| {
                let r = MetricRef::parse(m.table?).ok()?;
                Some((r.to_string(), r))
            })
            .collect();
        let arm_header = if e.arm_axes.is_empty() {
            "arm".to_string()
        } else {
            e.arm_axes.join(",")
        };
        let mut headers = vec![arm_header, "seeds".to_string()];
        headers.extend(metrics.iter().map(|(n, _)| n.clone()));
        let rows = by_arm(&e.observations, &e.arm_axes)
            .into_iter()
            .map(|(coords, obs)| {
                let mut row = vec![
                    Cell::Text(arm_label(&coords, &e.arm_axes)),
                    Cell::Text(obs.len().to_string()),
                ];
                for (_, m) in &metrics {
                    let v: Vec<f64> = obs.iter().filter_map(|o| o.value(e.kind, m)).collect();
                    row.push(Cell::Stat(stats::summarize(&v).ok()));
                }
                row
            })
            .collect();
        out.push(Table {
            id: e.name.clone(),
            title: e.title(),
            headers,
            rows,
            note: None,
        });
    }
    out
}

/// An optimizer sweep's table, one row per variant: its runs and how many diverged, its best
/// (lr, λ) cell by mean score with the score and test perplexity there (mean ± CI over the
/// cell's seeds), and the best score over lr (per seed, then mean ± CI) at λ = 0 and at the
/// largest λ: what C7 compares.
fn sweep_table(sw: &Sweep) -> Table {
    let score = sw.score.to_string();
    // Test perplexity reduced as the kind's table declares it (`test_ppl@final` for `lm`).
    let test =
        sw.e.kind
            .results
            .metric("test_ppl")
            .and_then(|m| m.table)
            .and_then(|t| MetricRef::parse(t).ok());
    let largest = sw.lambdas.last().copied().filter(|l| *l > 0.0);
    let mut headers: Vec<String> = ["variant", "runs", "diverged", "best lr", "best λ"]
        .map(String::from)
        .to_vec();
    headers.push(format!("{score} at best"));
    if let Some(m) = &test {
        headers.push(format!("{m} at best"));
    }
    let has_zero = sw.lambdas.first() == Some(&0.0);
    if has_zero {
        headers.push(format!("{score} at λ = 0, best lr"));
    }
    if let Some(l) = largest {
        headers.push(format!("{score} at λ = {}, best lr", grid_text(l)));
    }
    let rows = sw
        .variants
        .iter()
        .map(|v| {
            let (runs, diverged) = sw.runs(v);
            let best = sw.best_cell(v);
            let text = |f: fn(&(f64, f64, Summary)) -> f64| {
                Cell::Text(best.as_ref().map_or("—".into(), |b| grid_text(f(b))))
            };
            let mut row = vec![
                Cell::Text(v.clone()),
                Cell::Text(runs.to_string()),
                Cell::Text(diverged.to_string()),
                text(|b| b.0),
                text(|b| b.1),
                Cell::Stat(best.as_ref().map(|b| b.2)),
            ];
            if let Some(m) = &test {
                let at = best
                    .as_ref()
                    .and_then(|(lr, l, _)| sw.cell_metric(v, *lr, *l, m));
                row.push(Cell::Stat(at));
            }
            if has_zero {
                row.push(Cell::Stat(sw.best_over_lr(v, 0.0)));
            }
            if let Some(l) = largest {
                row.push(Cell::Stat(sw.best_over_lr(v, l)));
            }
            row
        })
        .collect();
    Table {
        id: sw.e.name.clone(),
        title: sw.e.title(),
        headers,
        rows,
        note: None,
    }
}
