//! The optimizer sweep of docs/paper.md#e5 (E7, E8) as the report sees it: an experiment whose arms
//! are Adam variants × learning rate × weight decay λ (× seeds). This module owns the rule that
//! recognises one, how a diverged run counts, and the reductions the sweep's figures
//! (`exhibits::sweep`) and its compact table (`tables`) share: the mean over seeds of one (variant,
//! lr, λ) cell, the per-seed best over lr at each λ, the best lr at each λ and the best cell of a
//! variant.
//!
//! The rule (data-driven, not by kind name): every arm axis is one of `variant`, `lr` and
//! `weight_decay`; `weight_decay` varies; every observation has a string `variant` and numeric
//! `lr` and `weight_decay` (a fixed one is still a coordinate); and the kind writes `valid_ppl`,
//! scored as `valid_ppl@min` (lower is better). The `lm` kind's grid is one; an Adam grid over
//! another kind would become one by declaring its score here.

use serde_json::Value;

use super::observe::{ExperimentData, Observation};
use repro_core::metrics::stats::{self, Summary};
use repro_core::pipeline::claims::{MetricRef, Reduce};
use repro_core::pipeline::params::ParamType;

pub const VARIANT: &str = "variant";
pub const LR: &str = "lr";
pub const LAMBDA: &str = "weight_decay";
/// The score a cell is judged by, lower is better: the best validation perplexity over epochs
/// (early stopping, as pytorch/examples' word-LM keeps its best-validation model).
pub const SCORE_METRIC: &str = "valid_ppl";

/// A recognised sweep and its grid.
pub struct Sweep<'a> {
    pub e: &'a ExperimentData,
    /// In the kind's declared order of the `variant` choice (the palette order), then any
    /// others in first-seen order; only those with observations.
    pub variants: Vec<String>,
    /// Ascending.
    pub lrs: Vec<f64>,
    /// Ascending (0 first when present).
    pub lambdas: Vec<f64>,
    pub score: MetricRef,
}

fn number(o: &Observation, axis: &str) -> Option<f64> {
    o.coords.get(axis).and_then(Value::as_f64)
}

fn variant_of(o: &Observation) -> Option<&str> {
    o.coords.get(VARIANT).and_then(Value::as_str)
}

/// Distinct values, ascending.
fn distinct(values: impl Iterator<Item = f64>) -> Vec<f64> {
    let mut v: Vec<f64> = values.collect();
    v.sort_by(f64::total_cmp);
    v.dedup();
    v
}

impl<'a> Sweep<'a> {
    /// The sweep view of `e`, when it is one (the rule in the module doc).
    pub fn detect(e: &'a ExperimentData) -> Option<Sweep<'a>> {
        let allowed = [VARIANT, LR, LAMBDA];
        let axes_ok = e.arm_axes.iter().all(|a| allowed.contains(&a.as_str()))
            && e.arm_axes.iter().any(|a| a == LAMBDA);
        let coords_ok = e.observations.iter().all(|o| {
            variant_of(o).is_some() && number(o, LR).is_some() && number(o, LAMBDA).is_some()
        });
        if !axes_ok || !coords_ok || e.observations.is_empty() {
            return None;
        }
        e.kind.results.metric(SCORE_METRIC)?;
        let declared: &[&str] = e
            .kind
            .params
            .iter()
            .find(|p| p.name == VARIANT)
            .and_then(|p| match p.ty {
                ParamType::Choice(c) => Some(c),
                _ => None,
            })
            .unwrap_or(&[]);
        let seen: Vec<&str> = e.observations.iter().filter_map(variant_of).collect();
        let mut variants: Vec<String> = declared
            .iter()
            .filter(|v| seen.contains(v))
            .map(|v| v.to_string())
            .collect();
        for v in seen {
            if !variants.iter().any(|x| x == v) {
                variants.push(v.to_string());
            }
        }
        Some(Sweep {
            e,
            variants,
            lrs: distinct(e.observations.iter().filter_map(|o| number(o, LR))),
            lambdas: distinct(e.observations.iter().filter_map(|o| number(o, LAMBDA))),
            score: MetricRef {
                name: SCORE_METRIC.to_string(),
                reduce: Some(Reduce::Min),
            },
        })
    }

    /// The runs of one cell (all seeds).
    pub fn cell(&self, variant: &str, lr: f64, lambda: f64) -> Vec<&'a Observation> {
        self.e
            .observations
            .iter()
            .filter(|o| {
                variant_of(o) == Some(variant)
                    && number(o, LR) == Some(lr)
                    && number(o, LAMBDA) == Some(lambda)
            })
            .collect()
    }

    /// A run's score for the sweep's figures and table; a diverged run
    /// ([`Observation::diverged`], or one with no finite validation perplexity at all) scores
    /// +∞, so it never wins a minimum and poisons any mean it would enter: its best epoch before
    /// blowing up is not a result of the cell (a bad cell, not a missing one). Claim checks do
    /// not use this: they drop diverged runs and say so (`verdict`).
    pub fn score_of(&self, o: &Observation) -> f64 {
        if o.diverged {
            return f64::INFINITY;
        }
        o.value(self.e.kind, &self.score).unwrap_or(f64::INFINITY)
    }

    /// Whether a run diverged (see [`Sweep::score_of`]).
    pub fn diverged(&self, o: &Observation) -> bool {
        self.score_of(o) == f64::INFINITY
    }

    /// Mean and CI over seeds of a cell's score; None without runs or when a seed diverged.
    pub fn cell_score(&self, variant: &str, lr: f64, lambda: f64) -> Option<Summary> {
        let scores: Vec<f64> = self
            .cell(variant, lr, lambda)
            .iter()
            .map(|o| self.score_of(o))
            .collect();
        finite_summary(&scores)
    }

    /// Mean and CI over a cell's seeds of another metric (its finite values only).
    pub fn cell_metric(
        &self,
        variant: &str,
        lr: f64,
        lambda: f64,
        m: &MetricRef,
    ) -> Option<Summary> {
        let v: Vec<f64> = self
            .cell(variant, lr, lambda)
            .iter()
            .filter_map(|o| o.value(self.e.kind, m))
            .collect();
        stats::summarize(&v).ok()
    }

    /// Per seed, the best score over lr at this λ (+∞ where every lr of the seed diverged),
    /// as (seed, score) by ascending seed.
    pub fn best_over_lr_by_seed(&self, variant: &str, lambda: f64) -> Vec<(i64, f64)> {
        let mut by_seed: Vec<(i64, f64)> = Vec::new();
        for o in self
            .e
            .observations
            .iter()
            .filter(|o| variant_of(o) == Some(variant) && number(o, LAMBDA) == Some(lambda))
        {
            let s = self.score_of(o);
            match by_seed.iter_mut().find(|(seed, _)| *seed == o.seed) {
                Some((_, best)) => *best = best.min(s),
                None => by_seed.push((o.seed, s)),
            }
        }
        by_seed.sort_by_key(|(seed, _)| *seed);
        by_seed
    }

    /// Mean and CI over seeds of the best score over lr at this λ; None without runs or when a
    /// seed diverged at every lr.
    pub fn best_over_lr(&self, variant: &str, lambda: f64) -> Option<Summary> {
        let scores: Vec<f64> = self
            .best_over_lr_by_seed(variant, lambda)
            .into_iter()
            .map(|(_, s)| s)
            .collect();
        finite_summary(&scores)
    }

    /// The lr whose cell has the lowest mean score at this λ (the smaller lr on a tie).
    pub fn best_lr(&self, variant: &str, lambda: f64) -> Option<f64> {
        self.lrs
            .iter()
            .filter_map(|lr| Some((*lr, self.cell_score(variant, *lr, lambda)?.mean)))
            .min_by(|a, b| a.1.total_cmp(&b.1))
            .map(|(lr, _)| lr)
    }

    /// The variant's (lr, λ) cell with the lowest mean score, with its summary.
    pub fn best_cell(&self, variant: &str) -> Option<(f64, f64, Summary)> {
        let cells = self.lambdas.iter().flat_map(|l| {
            self.lrs
                .iter()
                .filter_map(move |lr| Some((*lr, *l, self.cell_score(variant, *lr, *l)?)))
        });
        cells.min_by(|a, b| a.2.mean.total_cmp(&b.2.mean))
    }

    /// The runs of a variant and how many of them diverged.
    pub fn runs(&self, variant: &str) -> (usize, usize) {
        let of: Vec<&Observation> = self
            .e
            .observations
            .iter()
            .filter(|o| variant_of(o) == Some(variant))
            .collect();
        let diverged = of.iter().filter(|o| self.diverged(o)).count();
        (of.len(), diverged)
    }
}

/// The summary of `x`, None when it is empty or holds a non-finite value.
fn finite_summary(x: &[f64]) -> Option<Summary> {
    if x.iter().any(|v| !v.is_finite()) {
        return None;
    }
    stats::summarize(x).ok()
}

/// A grid value as short text: `0`, `3e-4`, `1e-1`, `2.5e-5` (exponent form below 1, so lr
/// and λ ticks read alike), `3`, `10` from 1 up.
pub fn grid_text(x: f64) -> String {
    if x == 0.0 {
        return "0".into();
    }
    let plain = format!("{x}");
    if (1.0..1e4).contains(&x.abs()) && plain.len() <= 6 {
        return plain;
    }
    let s = format!("{x:e}");
    match s.split_once('e') {
        Some((m, e)) if m.len() > 4 => {
            let m = format!("{:.2}", m.parse::<f64>().unwrap_or(x));
            format!("{}e{e}", m.trim_end_matches('0').trim_end_matches('.'))
        }
        _ => s,
    }
}
