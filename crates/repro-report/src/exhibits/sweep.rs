//! The figures of an Adam-variant × lr × λ sweep (docs/paper.md#e5, E7, E8; recognised by
//! [`Sweep::detect`]), in place of the generic per-arm figures, which at paper scale (5 × 3 ×
//! 10 arms) would be hundreds of lines or bars:
//!
//! 1. best validation perplexity over lr against λ, one line per variant (C7's picture), with
//!    the lr that wins at each λ beside it (how coupled lr and λ are);
//! 2. lr × λ heatmaps of the mean validation perplexity, one panel per variant, one shared log
//!    colour scale, the best cell outlined (C7's "region of good hyper-parameters");
//! 3. the E8 drown-out diagnostics against λ at the best lr of each λ (C10);
//! 4. training curves of each variant's best cell and of the best λ = 0 run.
//!
//! λ = 0 sits in a slot left of the log λ axis (a tick "0" behind a dashed break, unconnected
//! to the line). Variants keep one colour in every figure: the kind's declared order.

use super::parts::{Exhibit, label_of, mean_curve, wide_positive};
use crate::figures::{Chart, ColourScale, Figure, Panel, Series};
use crate::observe::Observation;
use crate::sweep::{Sweep, grid_text};
use repro_core::pipeline::claims::MetricRef;

/// The heatmaps' colour scale runs from the best cell of all panels to this many times its
/// perplexity (a default of ours); worse cells take the top colour and keep their printed
/// value, so the good region is not squeezed into one shade by a few blown-up cells.
pub const COLOUR_CAP: f64 = 3.0;

/// The E8 diagnostics, drawn against λ, and whether a y axis spanning two decades may be
/// logarithmic (not for the share, which lies in [0, 1] and is 0 where l2 stays out of m).
const DROWN_OUT: &[(&str, bool)] = &[("l2_share_of_m@mean", false), ("l2_over_grad@mean", true)];

const X_LABEL: &str = "weight decay λ";

/// In the best-lr panel, where variants often pick the same lr, line i of n is drawn at
/// y·DODGE^(i − (n−1)/2) so equal choices stay visible side by side (a few pixels).
const DODGE: f64 = 1.02;

pub fn exhibits(sw: &Sweep) -> Vec<Exhibit> {
    [
        best_over_lr(sw),
        heatmaps(sw),
        drown_out(sw),
        best_curves(sw),
    ]
    .into_iter()
    .flatten()
    .collect()
}

/// A series over λ from per-λ summaries: mean as the point (NaN breaks the line), the 95% CI as
/// the band where there is one.
fn over_lambda(
    sw: &Sweep,
    label: &str,
    at: impl Fn(f64) -> Option<repro_core::metrics::stats::Summary>,
) -> Series {
    let mut points = Vec::new();
    let mut band = Vec::new();
    for l in &sw.lambdas {
        let s = at(*l);
        points.push((*l, s.map_or(f64::NAN, |s| s.mean)));
        if let Some((lo, hi)) = s.and_then(|s| s.ci95) {
            band.push((*l, lo, hi));
        }
    }
    Series {
        label: label.to_string(),
        points,
        band: (!band.is_empty()).then_some(band),
    }
}

fn lines(x_label: &str, y_label: String, log_y: bool, series: Vec<Series>) -> Chart {
    Chart::Lines {
        x_label: x_label.to_string(),
        y_label,
        log_x: true,
        log_y,
        whole_x: false,
        series,
        vlines: Vec::new(),
        zero_slot: true,
    }
}

/// 1: per seed the best `valid_ppl@min` over lr, mean over seeds, against λ; and the best lr.
fn best_over_lr(sw: &Sweep) -> Option<Exhibit> {
    let e = sw.e;
    let ppl: Vec<Series> = sw
        .variants
        .iter()
        .map(|v| over_lambda(sw, v, |l| sw.best_over_lr(v, l)))
        .collect();
    let n = sw.variants.len();
    let lr: Vec<Series> = sw
        .variants
        .iter()
        .enumerate()
        .map(|(i, v)| {
            let dodge = DODGE.powf(i as f64 - (n as f64 - 1.0) / 2.0);
            Series {
                label: v.clone(),
                points: sw
                    .lambdas
                    .iter()
                    .map(|l| (*l, sw.best_lr(v, *l).map_or(f64::NAN, |lr| lr * dodge)))
                    .collect(),
                band: None,
            }
        })
        .collect();
    let mut panels = vec![Panel {
        title: "Best validation perplexity over lr".into(),
        chart: lines(
            X_LABEL,
            format!("{} (best over lr)", label_of(e, &sw.score.name)),
            true,
            ppl,
        ),
    }];
    if sw.lrs.len() > 1 {
        panels.push(Panel {
            title: "Learning rate that is best".into(),
            chart: lines(X_LABEL, "best lr (lowest mean)".into(), true, lr),
        });
    }
    let columns = panels.len();
    Some(Exhibit {
        id: format!("{}-best-over-lr", e.name),
        experiment: Some(e.name.clone()),
        caption: format!(
            "{}: for each variant, the best validation perplexity over the learning rates \
             {lrs} (per seed the minimum over lr of {score}, then the mean over seeds with a \
             95% CI band) against weight decay λ{right}. λ = 0 (plain Adam for every variant) \
             is drawn in the slot marked 0 left of the dashed break, as its own point with a \
             CI whisker. A λ where a seed diverged at every lr has no point.",
            e.name,
            lrs = sw
                .lrs
                .iter()
                .map(|x| grid_text(*x))
                .collect::<Vec<_>>()
                .join(", "),
            score = sw.score,
            right = if columns > 1 {
                "; right: the lr whose mean over seeds is lowest at each λ (lines offset by \
                 ±2% per variant so equal choices stay visible)"
            } else {
                ""
            },
        ),
        figure: Figure {
            title: format!("{}: best over lr vs weight decay", e.name),
            panels,
            columns,
        },
    })
}

/// The colour range shared by the heatmaps: the best cell to [`COLOUR_CAP`] × it, or to the
/// worst cell when that is nearer.
fn shared_range(cells: impl Iterator<Item = f64>) -> Option<(f64, f64)> {
    let (lo, hi) =
        cells
            .filter(|v| v.is_finite() && *v > 0.0)
            .fold(None, |acc: Option<(f64, f64)>, v| match acc {
                None => Some((v, v)),
                Some((lo, hi)) => Some((lo.min(v), hi.max(v))),
            })?;
    Some((lo, hi.min(lo * COLOUR_CAP)))
}

/// Cells named in a caption at most; the rest are counted.
const LISTED: usize = 6;

/// "adam_l2 lr 3e-3 λ 1e-1 (1 of 4 seeds)" for each cell with a diverged run, the first
/// [`LISTED`] of them, then how many more.
fn diverged_cells(sw: &Sweep) -> Vec<String> {
    let mut out = Vec::new();
    for v in &sw.variants {
        for l in &sw.lambdas {
            for lr in &sw.lrs {
                let runs = sw.cell(v, *lr, *l);
                let bad = runs.iter().filter(|o| sw.diverged(o)).count();
                if bad > 0 {
                    out.push(format!(
                        "{v} lr {} λ {} ({bad} of {} seeds)",
                        grid_text(*lr),
                        grid_text(*l),
                        runs.len()
                    ));
                }
            }
        }
    }
    if out.len() > LISTED {
        let more = out.len() - LISTED;
        out.truncate(LISTED);
        out.push(format!("{more} more"));
    }
    out
}

/// 2: lr × λ heatmaps of the mean score, one panel per variant, one colour scale.
fn heatmaps(sw: &Sweep) -> Option<Exhibit> {
    let e = sw.e;
    // Rows top to bottom: largest λ first, as a y axis reads.
    let rows: Vec<f64> = sw.lambdas.iter().rev().copied().collect();
    let grid = |v: &str| -> Vec<Vec<Option<f64>>> {
        rows.iter()
            .map(|l| {
                sw.lrs
                    .iter()
                    .map(|lr| sw.cell_score(v, *lr, *l).map(|s| s.mean))
                    .collect()
            })
            .collect()
    };
    let grids: Vec<(String, Vec<Vec<Option<f64>>>)> =
        sw.variants.iter().map(|v| (v.clone(), grid(v))).collect();
    let range = shared_range(
        grids
            .iter()
            .flat_map(|(_, g)| g.iter().flatten().flatten().copied()),
    );
    let panels: Vec<Panel> = grids
        .into_iter()
        .map(|(v, values)| {
            let mark = sw.best_cell(&v).and_then(|(lr, l, _)| {
                let r = rows.iter().position(|x| *x == l)?;
                Some((r, sw.lrs.iter().position(|x| *x == lr)?))
            });
            Panel {
                title: v,
                chart: Chart::Heatmap {
                    x_label: "learning rate".into(),
                    y_label: X_LABEL.into(),
                    x_ticks: sw.lrs.iter().map(|x| grid_text(*x)).collect(),
                    y_ticks: rows.iter().map(|x| grid_text(*x)).collect(),
                    values,
                    value_label: label_of(e, &sw.score.name),
                    scale: ColourScale { log: true, range },
                    mark,
                },
            }
        })
        .collect();
    if panels.is_empty() {
        return None;
    }
    let columns = panels.len().min(3);
    let diverged = diverged_cells(sw);
    let diverged = match diverged.is_empty() {
        true => " No run diverged.".to_string(),
        false => format!(" Diverged: {}.", diverged.join("; ")),
    };
    Some(Exhibit {
        id: format!("{}-heatmaps", e.name),
        experiment: Some(e.name.clone()),
        caption: format!(
            "{}: {} over learning rate × weight decay λ, mean over seeds, one panel per \
             variant, the best cell outlined. One log colour scale for all panels, from the \
             best cell to {COLOUR_CAP}× its perplexity (a default of ours); worse cells take \
             the top colour but print their value. Grey: not run, or a seed diverged \
             (training loss no longer finite, or no finite validation perplexity). A wide dark region is a forgiving optimizer \
             (C7).{diverged}",
            e.name, sw.score
        ),
        figure: Figure {
            title: format!("{}: {} by lr and λ", e.name, sw.score),
            panels,
            columns,
        },
    })
}

/// 3: the drown-out diagnostics against λ, at the best lr of each λ.
fn drown_out(sw: &Sweep) -> Option<Exhibit> {
    let e = sw.e;
    let metrics: Vec<(MetricRef, bool)> = DROWN_OUT
        .iter()
        .filter_map(|(m, log)| Some((MetricRef::parse(m).ok()?, *log)))
        .filter(|(m, _)| e.kind.results.metric(&m.name).is_some())
        .filter(|(m, _)| e.observations.iter().any(|o| o.value(e.kind, m).is_some()))
        .collect();
    if metrics.is_empty() {
        return None;
    }
    let panels: Vec<Panel> = metrics
        .iter()
        .map(|(m, may_log)| {
            let series: Vec<Series> = sw
                .variants
                .iter()
                .map(|v| over_lambda(sw, v, |l| sw.cell_metric(v, sw.best_lr(v, l)?, l, m)))
                .collect();
            let ys = series.iter().flat_map(|s| s.points.iter().map(|p| p.1));
            let log_y = *may_log && wide_positive(ys.filter(|y| y.is_finite() && *y > 0.0));
            Panel {
                title: label_of(e, &m.name),
                chart: lines(X_LABEL, format!("{m}"), log_y, series),
            }
        })
        .collect();
    let columns = panels.len();
    Some(Exhibit {
        id: format!("{}-drown-out", e.name),
        experiment: Some(e.name.clone()),
        caption: format!(
            "{}: E8 drown-out diagnostics (C10) against weight decay λ: the l2 share of Adam's \
             first moment ‖mʳ‖/(‖mᵍ‖+‖mʳ‖) and ‖λw‖/‖∇L‖, each the mean over the sampled steps \
             of training, for each variant at the lr with the lowest mean validation \
             perplexity at that λ (mean over seeds, 95% CI band). The share's axis is \
             linear; the ratio's is logarithmic when it spans two decades or more, and then \
             its zeros (λ = 0 has no l2 term) are not drawn.",
            e.name
        ),
        figure: Figure {
            title: format!("{}: does the l2 term drown out the gradient?", e.name),
            panels,
            columns,
        },
    })
}

/// 4: the kind's per-epoch curves for each variant's best cell, and for the best λ = 0 cell.
fn best_curves(sw: &Sweep) -> Option<Exhibit> {
    let e = sw.e;
    // (label, runs, description for the caption)
    let mut picked: Vec<(String, Vec<&Observation>, String)> = Vec::new();
    for v in &sw.variants {
        if let Some((lr, l, _)) = sw.best_cell(v) {
            let what = format!("{v} at lr {}, λ {}", grid_text(lr), grid_text(l));
            picked.push((v.clone(), sw.cell(v, lr, l), what));
        }
    }
    let zero = sw
        .variants
        .iter()
        .filter_map(|v| {
            let lr = sw.best_lr(v, 0.0)?;
            Some((v, lr, sw.cell_score(v, lr, 0.0)?.mean))
        })
        .min_by(|a, b| a.2.total_cmp(&b.2));
    if let Some((v, lr, _)) = zero {
        let what = format!("λ = 0: {v}'s runs at lr {}", grid_text(lr));
        picked.push(("λ = 0".into(), sw.cell(v, lr, 0.0), what));
    }
    if picked.is_empty() {
        return None;
    }
    let panels: Vec<Panel> = e
        .kind
        .results
        .metrics
        .iter()
        .filter_map(|m| Some((m.name, m.curve?)))
        .filter(|(m, _)| {
            picked
                .iter()
                .any(|(_, obs, _)| obs.iter().any(|o| !o.series(e.kind, m).is_empty()))
        })
        .map(|(m, (title, log_y))| Panel {
            title: title.to_string(),
            chart: Chart::Lines {
                x_label: e.row_unit().into(),
                y_label: label_of(e, m),
                log_x: false,
                log_y,
                whole_x: true,
                series: picked
                    .iter()
                    .map(|(label, obs, _)| mean_curve(e, obs, m, label.clone()))
                    .collect(),
                vlines: Vec::new(),
                zero_slot: false,
            },
        })
        .collect();
    if panels.is_empty() {
        return None;
    }
    let cells: Vec<&str> = picked.iter().map(|(_, _, w)| w.as_str()).collect();
    Some(Exhibit {
        id: format!("{}-curves", e.name),
        experiment: Some(e.name.clone()),
        caption: format!(
            "{}: training curves of each variant at its best (lr, λ) cell by mean {} and of \
             the best λ = 0 cell (plain Adam), mean over seeds with a 95% CI band: {}.",
            e.name,
            sw.score,
            cells.join("; ")
        ),
        figure: Figure {
            title: format!("{}: training curves of the best cells", e.name),
            panels,
            columns: 2,
        },
    })
}
