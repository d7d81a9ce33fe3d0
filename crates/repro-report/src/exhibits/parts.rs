//! What every exhibit is built from: the [`Exhibit`] (a figure with its place and caption) and
//! the helpers the per-experiment and sweep exhibits share.

use std::collections::BTreeMap;

use crate::figures::{Figure, Series};
use crate::observe::{ExperimentData, Observation};
use repro_core::metrics::stats;

/// A figure with where it belongs and what it shows.
pub struct Exhibit {
    /// File stem: `figures/<id>.png`.
    pub id: String,
    /// The experiment it belongs to; `None` for figures across experiments.
    pub experiment: Option<String>,
    pub caption: String,
    pub figure: Figure,
}

/// The label of `metric` as `e`'s kind declares it (the name where it declares none).
pub(super) fn label_of(e: &ExperimentData, metric: &str) -> String {
    e.kind
        .results
        .metric(metric)
        .map(|m| m.label.to_string())
        .unwrap_or_else(|| metric.to_string())
}

/// Whether `values` are all positive and span two decades or more (a log axis reads them).
pub(super) fn wide_positive(values: impl Iterator<Item = f64>) -> bool {
    let v: Vec<f64> = values.collect();
    let (lo, hi) = v
        .iter()
        .fold((f64::INFINITY, 0.0f64), |(l, h), x| (l.min(*x), h.max(*x)));
    !v.is_empty() && lo > 0.0 && hi / lo >= 100.0
}

/// Mean over observations at each epoch, with a 95% CI band where two or more seeds agree on
/// the epoch. x is epochs completed (row `epoch` + 1), so weight decay switching at Tₛ sits
/// at x = Tₛ.
pub(super) fn mean_curve(
    e: &ExperimentData,
    obs: &[&Observation],
    metric: &str,
    label: String,
) -> Series {
    let mut at: BTreeMap<i64, Vec<f64>> = BTreeMap::new();
    for o in obs {
        for (x, y) in o.series(e.kind, metric) {
            at.entry(x as i64 + 1).or_default().push(y);
        }
    }
    let mut points = Vec::new();
    let mut band = Vec::new();
    for (x, ys) in &at {
        if let Ok(s) = stats::summarize(ys) {
            points.push((*x as f64, s.mean));
            if let Some((lo, hi)) = s.ci95 {
                band.push((*x as f64, lo, hi));
            }
        }
    }
    let band = (band.len() == points.len() && !band.is_empty()).then_some(band);
    Series {
        label,
        points,
        band,
    }
}
