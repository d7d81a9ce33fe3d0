//! Which figures the report shows, chosen from the shape of each experiment's results:
//! per-epoch curves by arm (mean over seeds with a 95% CI band; Tₛ marked), final accuracy and
//! norm as bars with CIs, measured vs predicted norm growth (E2), a metric against a numeric
//! grid axis (label noise, λ, …), heatmaps over two numeric axes (lr × λ), generalization
//! metrics against the generalization gap (E3), and norm curves across datasets (E4). An
//! optimizer sweep (Adam variants × lr × λ, E5/E7/E8: [`super::sweep`] says what qualifies)
//! gets its own figures instead of the per-arm ones ([`sweep`]).

mod parts;
mod sweep;
#[cfg(test)]
mod tests;

use std::collections::BTreeMap;

use serde_json::Value;

use super::figures::{Bar, Chart, ColourScale, Figure, Panel, Series};
use super::observe::{ExperimentData, Inputs, Observation, arm_label, by_arm};
use super::sweep::Sweep;
pub use parts::Exhibit;
use parts::{label_of, mean_curve, wide_positive};
use repro_core::metrics::stats;
use repro_core::pipeline::claims::MetricRef;
use repro_core::pipeline::stage::Rows;

/// E2: the measured growth of Σ‖w‖² and its two predictions.
const GROWTH: &[(&str, &str)] = &[
    ("si_growth_measured", "measured Δ‖w‖²"),
    ("si_growth_pred_grad", "predicted Σα²‖∇f‖²"),
    ("si_growth_pred_step", "predicted Σ‖Δw‖²"),
];

/// The gap generalization metrics are plotted against (E3).
const GAP: &str = "gen_gap_acc";

pub fn exhibits(inputs: &Inputs) -> Vec<Exhibit> {
    let mut out = Vec::new();
    for e in inputs
        .experiments
        .iter()
        .filter(|e| !e.observations.is_empty())
    {
        if let Some(sw) = Sweep::detect(e) {
            out.extend(sweep::exhibits(&sw));
            continue;
        }
        match e.kind.results.rows {
            Rows::PerEpoch => {
                out.extend(curves(e));
                out.extend(final_bars(e));
                out.extend(growth(e));
                out.extend(trends(e));
                out.extend(heatmap(e));
            }
            Rows::PerUpstreamRun { .. } => out.extend(versus_gap(e)),
        }
    }
    out.extend(norm_across(inputs));
    out
}

/// The Tₛ marker when the arms include early or late weight decay at one switch epoch.
fn switch_marker(e: &ExperimentData) -> Vec<(f64, String)> {
    let switched = e.observations.iter().any(|o| {
        matches!(
            o.coords.get("schedule").and_then(Value::as_str),
            Some("early" | "late")
        )
    });
    let ts: Vec<f64> = e
        .observations
        .iter()
        .filter_map(|o| o.coords.get("switch_epoch").and_then(Value::as_f64))
        .collect();
    match ts.first() {
        Some(t) if switched && ts.iter().all(|x| x == t) => vec![(*t, format!("Tₛ = {t}"))],
        _ => Vec::new(),
    }
}

/// The per-epoch metrics the kind marks as curves, one panel each, one line per arm.
fn curves(e: &ExperimentData) -> Option<Exhibit> {
    let arms = by_arm(&e.observations, &e.arm_axes);
    let vlines = switch_marker(e);
    let panels: Vec<Panel> = e
        .kind
        .results
        .metrics
        .iter()
        .filter_map(|m| Some((m.name, m.curve?)))
        .map(|(m, (title, log_y))| Panel {
            title: title.to_string(),
            chart: Chart::Lines {
                x_label: e.row_unit().into(),
                y_label: label_of(e, m),
                log_x: false,
                log_y,
                whole_x: true,
                series: arms
                    .iter()
                    .map(|(c, obs)| mean_curve(e, obs, m, arm_label(c, &e.arm_axes)))
                    .collect(),
                vlines: vlines.clone(),
                zero_slot: false,
            },
        })
        .collect();
    if panels.is_empty() {
        return None;
    }
    let titles: Vec<String> = panels.iter().map(|p| p.title.to_lowercase()).collect();
    Some(Exhibit {
        id: format!("{}-curves", e.name),
        experiment: Some(e.name.clone()),
        caption: format!(
            "{}: {} per {} by arm (mean over seeds, 95% CI band where there are several).",
            e.name,
            titles.join(", "),
            e.row_unit()
        ),
        figure: Figure {
            title: format!("{}: training curves by arm", e.name),
            panels,
            columns: 2,
        },
    })
}

fn bars(e: &ExperimentData, metric: &str) -> Vec<Bar> {
    let m = MetricRef::parse(metric).ok();
    by_arm(&e.observations, &e.arm_axes)
        .into_iter()
        .map(|(c, obs)| {
            let values: Vec<f64> = m
                .as_ref()
                .map(|m| obs.iter().filter_map(|o| o.value(e.kind, m)).collect())
                .unwrap_or_default();
            let s = stats::summarize(&values).ok();
            Bar {
                label: arm_label(&c, &e.arm_axes),
                mean: s.map(|s| s.mean).unwrap_or(f64::NAN),
                ci: s.and_then(|s| s.ci95),
                values,
            }
        })
        .collect()
}

fn final_bars(e: &ExperimentData) -> Option<Exhibit> {
    // The vision kind's final accuracy and norm; a kind without accuracy has its own figures.
    e.kind.results.metric("test_acc")?;
    let panels = vec![
        Panel {
            title: "Final test accuracy".into(),
            chart: Chart::Bars {
                y_label: label_of(e, "test_acc"),
                bars: bars(e, "test_acc@final"),
            },
        },
        Panel {
            title: "Final total weight norm".into(),
            chart: Chart::Bars {
                y_label: label_of(e, "weight_norm"),
                bars: bars(e, "weight_norm@final"),
            },
        },
    ];
    Some(Exhibit {
        id: format!("{}-final", e.name),
        experiment: Some(e.name.clone()),
        caption: format!(
            "{}: final test accuracy and total weight norm by arm (bar: mean over seeds; \
             whisker: 95% CI; dots: seeds).",
            e.name
        ),
        figure: Figure {
            title: format!("{}: final accuracy and norm by arm", e.name),
            panels,
            columns: 2,
        },
    })
}

fn growth(e: &ExperimentData) -> Option<Exhibit> {
    e.kind.results.metric(GROWTH[0].0)?;
    let arms = by_arm(&e.observations, &e.arm_axes);
    let panels: Vec<Panel> = arms
        .iter()
        .take(8)
        .map(|(c, obs)| Panel {
            title: arm_label(c, &e.arm_axes),
            chart: Chart::Lines {
                x_label: e.row_unit().into(),
                y_label: format!("change of Σ‖w‖² in the {}", e.row_unit()),
                log_x: false,
                log_y: false,
                whole_x: true,
                series: GROWTH
                    .iter()
                    .map(|(m, label)| mean_curve(e, obs, m, label.to_string()))
                    .collect(),
                vlines: switch_marker(e),
                zero_slot: false,
            },
        })
        .collect();
    Some(Exhibit {
        id: format!("{}-growth", e.name),
        experiment: Some(e.name.clone()),
        caption: format!(
            "{}: E2, the measured growth of Σ‖w‖² of the BN-preceded weights per epoch \
             against the plain-SGD prediction Σα²‖∇f‖² and Σ‖Δw‖² of the actual steps. Both \
             assume each step is orthogonal to w; with momentum a step carries earlier \
             gradients, which are not, so the measured growth can exceed both.",
            e.name
        ),
        figure: Figure {
            title: format!("{}: measured vs predicted norm growth", e.name),
            panels,
            columns: 2,
        },
    })
}

/// Arm axes whose values are all numbers, with at least three distinct values.
fn numeric_axes(e: &ExperimentData) -> Vec<String> {
    e.arm_axes
        .iter()
        .filter(|a| {
            let mut v: Vec<f64> = Vec::new();
            for o in &e.observations {
                match o.coords.get(*a).and_then(Value::as_f64) {
                    Some(x) if !v.contains(&x) => v.push(x),
                    Some(_) => {}
                    None => return false,
                }
            }
            v.len() >= 3
        })
        .cloned()
        .collect()
}

/// Final metrics against a numeric axis, one series per value of the other arm axes.
fn trend_series(e: &ExperimentData, axis: &str, metric: &MetricRef) -> Vec<Series> {
    let others: Vec<String> = e.arm_axes.iter().filter(|a| *a != axis).cloned().collect();
    by_arm(&e.observations, &others)
        .into_iter()
        .map(|(c, obs)| {
            let mut at: BTreeMap<String, (f64, Vec<f64>)> = BTreeMap::new();
            for o in obs {
                if let (Some(x), Some(y)) = (
                    o.coords.get(axis).and_then(Value::as_f64),
                    o.value(e.kind, metric),
                ) {
                    at.entry(format!("{x:e}"))
                        .or_insert((x, Vec::new()))
                        .1
                        .push(y);
                }
            }
            // (x, mean, 95% CI) per x.
            type Point = (f64, f64, Option<(f64, f64)>);
            let mut pts: Vec<Point> = at
                .values()
                .filter_map(|(x, ys)| {
                    let s = stats::summarize(ys).ok()?;
                    Some((*x, s.mean, s.ci95))
                })
                .collect();
            pts.sort_by(|a, b| a.0.total_cmp(&b.0));
            let band: Option<Vec<(f64, f64, f64)>> = pts
                .iter()
                .map(|(x, _, ci)| ci.map(|(l, h)| (*x, l, h)))
                .collect();
            Series {
                label: if others.is_empty() {
                    metric.to_string()
                } else {
                    arm_label(&c, &others)
                },
                points: pts.iter().map(|(x, y, _)| (*x, *y)).collect(),
                band,
            }
        })
        .collect()
}

fn trends(e: &ExperimentData) -> Vec<Exhibit> {
    numeric_axes(e)
        .into_iter()
        .map(|axis| {
            let log_x = wide_positive(
                e.observations
                    .iter()
                    .filter_map(|o| o.coords.get(&axis).and_then(Value::as_f64)),
            );
            let panels = ["weight_norm@final", "test_acc@final"]
                .iter()
                .filter_map(|m| MetricRef::parse(m).ok())
                .filter(|m| e.kind.results.metric(&m.name).is_some())
                .map(|m| Panel {
                    title: format!("{} vs {axis}", m.name),
                    chart: Chart::Lines {
                        x_label: axis.clone(),
                        y_label: format!("final {}", label_of(e, &m.name)),
                        log_x,
                        log_y: false,
                        whole_x: false,
                        series: trend_series(e, &axis, &m),
                        vlines: Vec::new(),
                        zero_slot: false,
                    },
                })
                .collect();
            Exhibit {
                id: format!("{}-vs-{axis}", e.name),
                experiment: Some(e.name.clone()),
                caption: format!(
                    "{}: final weight norm and test accuracy against {axis} (mean over seeds, \
                     95% CI band).",
                    e.name
                ),
                figure: Figure {
                    title: format!("{}: final metrics vs {axis}", e.name),
                    panels,
                    columns: 2,
                },
            }
        })
        .collect()
}

/// The first table metric over two numeric axes (e.g. lr × λ), mean over seeds.
fn heatmap(e: &ExperimentData) -> Option<Exhibit> {
    let axes = numeric_axes(e);
    let [x_axis, y_axis] = axes.as_slice() else {
        return None;
    };
    if e.arm_axes.len() != 2 {
        return None;
    }
    let metric = MetricRef::parse(e.kind.results.metrics.iter().find_map(|m| m.table)?).ok()?;
    let values_of = |axis: &str| {
        let mut v: Vec<f64> = e
            .observations
            .iter()
            .filter_map(|o| o.coords.get(axis).and_then(Value::as_f64))
            .collect();
        v.sort_by(f64::total_cmp);
        v.dedup();
        v
    };
    let (xs, ys) = (values_of(x_axis), values_of(y_axis));
    let cell = |x: f64, y: f64| {
        let v: Vec<f64> = e
            .observations
            .iter()
            .filter(|o| {
                o.coords.get(x_axis).and_then(Value::as_f64) == Some(x)
                    && o.coords.get(y_axis).and_then(Value::as_f64) == Some(y)
            })
            .filter_map(|o| o.value(e.kind, &metric))
            .collect();
        stats::summarize(&v).ok().map(|s| s.mean)
    };
    let values = ys
        .iter()
        .rev()
        .map(|y| xs.iter().map(|x| cell(*x, *y)).collect())
        .collect();
    Some(Exhibit {
        id: format!("{}-heatmap", e.name),
        experiment: Some(e.name.clone()),
        caption: format!(
            "{}: {metric} over {x_axis} × {y_axis}, mean over seeds.",
            e.name
        ),
        figure: Figure {
            title: format!("{}: {metric}", e.name),
            panels: vec![Panel {
                title: format!("{metric} by {x_axis} and {y_axis}"),
                chart: Chart::Heatmap {
                    x_label: x_axis.clone(),
                    y_label: y_axis.clone(),
                    x_ticks: xs.iter().map(|x| format!("{x}")).collect(),
                    y_ticks: ys.iter().rev().map(|y| format!("{y}")).collect(),
                    values,
                    value_label: label_of(e, &metric.name),
                    scale: ColourScale::default(),
                    mark: None,
                },
            }],
            columns: 1,
        },
    })
}

fn versus_gap(e: &ExperimentData) -> Option<Exhibit> {
    let gap = MetricRef::parse(GAP).ok()?;
    let arms = by_arm(&e.observations, &e.arm_axes);
    let panels: Vec<Panel> = e
        .kind
        .results
        .metrics
        .iter()
        .filter(|m| m.table.is_some() && m.name != GAP)
        .map(|m| {
            let r = MetricRef {
                name: m.name.to_string(),
                reduce: None,
            };
            let series: Vec<Series> = arms
                .iter()
                .map(|(c, obs)| Series {
                    label: arm_label(c, &e.arm_axes),
                    points: obs
                        .iter()
                        .filter_map(|o| Some((o.value(e.kind, &gap)?, o.value(e.kind, &r)?)))
                        .collect(),
                    band: None,
                })
                .collect();
            let log_y = wide_positive(series.iter().flat_map(|s| s.points.iter().map(|p| p.1)));
            Panel {
                title: m.label.to_string(),
                chart: Chart::Scatter {
                    x_label: label_of(e, GAP),
                    y_label: m.label.to_string(),
                    log_x: false,
                    log_y,
                    series,
                },
            }
        })
        .collect();
    Some(Exhibit {
        id: format!("{}-vs-gap", e.name),
        experiment: Some(e.name.clone()),
        caption: format!(
            "{}: each generalization metric against the generalization gap (train − test \
             accuracy), one point per run, coloured by arm. A metric that works orders the \
             arms like the gap does (C4, C5).",
            e.name
        ),
        figure: Figure {
            title: format!("{}: metrics vs generalization gap", e.name),
            panels,
            columns: 3,
        },
    })
}

/// E4: norm growth of the no-weight-decay arm across experiments (datasets), relative to the
/// initial norm so different models compare.
fn norm_across(inputs: &Inputs) -> Option<Exhibit> {
    let mut series = Vec::new();
    for e in &inputs.experiments {
        if e.kind.results.rows != Rows::PerEpoch || !e.arm_axes.iter().any(|a| a == "schedule") {
            continue;
        }
        let obs: Vec<&Observation> = e
            .observations
            .iter()
            .filter(|o| o.coords.get("schedule").and_then(Value::as_str) == Some("none"))
            .collect();
        let mut s = mean_curve(e, &obs, "weight_norm", e.name.clone());
        let Some(&(_, first)) = s.points.first() else {
            continue;
        };
        if first <= 0.0 {
            continue;
        }
        for p in &mut s.points {
            p.1 /= first;
        }
        s.band = None;
        series.push(s);
    }
    (series.len() >= 2).then(|| Exhibit {
        id: "norm-across-datasets".into(),
        experiment: None,
        caption: "E4: total weight norm without weight decay, relative to the first epoch's, \
                  per experiment (dataset and model), mean over seeds."
            .into(),
        figure: Figure {
            title: "Norm growth without weight decay across datasets".into(),
            panels: vec![Panel {
                title: "no weight decay".into(),
                chart: Chart::Lines {
                    x_label: "epoch".into(),
                    y_label: "‖w‖ / ‖w‖ after epoch 1".into(),
                    log_x: false,
                    log_y: false,
                    whole_x: true,
                    series,
                    vlines: Vec::new(),
                    zero_slot: false,
                },
            }],
            columns: 1,
        },
    })
}
