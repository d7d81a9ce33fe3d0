//! RL returns as docs/paper.md#e6 reports them (a choice of ours): IQM over seeds with bootstrap
//! confidence intervals. An experiment is one when every observation has a string `game` coordinate
//! and its kind writes `eval_return` (the `dqn` kind); it gets this table instead of the per-arm
//! one.
//!
//! One row per arm other than the game (variant × λ × …). Per game: the interquartile mean of
//! the runs' scores (`eval_return` reduced as the kind's table declares, `@tail:0.2`) with its
//! 95% bootstrap percentile interval, rliable's method ([`repro_core::metrics::bootstrap`]). With
//! several games, one more column aggregates them as rliable does, the IQM of all runs pooled
//! with the resampling stratified by game, over scores normalized per game by the lowest and
//! highest run score of the experiment on that game: a default of ours, since MinAtar publishes
//! no random or human reference scores to normalize by.

use std::collections::BTreeMap;

use super::observe::{ExperimentData, Observation, arm_label, by_arm};
use super::tables::{Cell, Table};
use repro_core::metrics::bootstrap::{self, Aggregate, DEFAULT_CONFIDENCE, DEFAULT_REPS, Interval};
use repro_core::pipeline::claims::MetricRef;

pub const GAME: &str = "game";
pub const SCORE_METRIC: &str = "eval_return";
/// Fixed, so a report is a function of its inputs.
const BOOTSTRAP_SEED: u64 = 0;

fn game_of(o: &Observation) -> Option<&str> {
    o.coords.get(GAME).and_then(|v| v.as_str())
}

/// The returns table of `e`, when it is an RL experiment (the rule in the module doc).
pub fn table(e: &ExperimentData) -> Option<Table> {
    table_with(e, DEFAULT_REPS)
}

pub(crate) fn table_with(e: &ExperimentData, reps: usize) -> Option<Table> {
    if e.observations.is_empty() || !e.observations.iter().all(|o| game_of(o).is_some()) {
        return None;
    }
    let score = MetricRef::parse(e.kind.results.metric(SCORE_METRIC)?.table?).ok()?;
    let mut games: Vec<&str> = Vec::new();
    for o in &e.observations {
        let g = game_of(o).unwrap_or_default();
        if !games.contains(&g) {
            games.push(g);
        }
    }
    let scored = |o: &Observation| o.value(e.kind, &score);
    // Per game, the range of every run's score: what the normalized column divides by.
    let mut range: BTreeMap<&str, (f64, f64)> = BTreeMap::new();
    for o in &e.observations {
        if let (Some(g), Some(s)) = (game_of(o), scored(o)) {
            let r = range.entry(g).or_insert((s, s));
            *r = (r.0.min(s), r.1.max(s));
        }
    }
    let interval = |scores: &[Vec<f64>]| -> Option<Interval> {
        bootstrap::stratified_bootstrap_ci(
            scores,
            Aggregate::Iqm,
            reps,
            DEFAULT_CONFIDENCE,
            BOOTSTRAP_SEED,
        )
        .ok()
    };
    let axes: Vec<String> = e.arm_axes.iter().filter(|a| *a != GAME).cloned().collect();
    let aggregate = games.len() > 1;
    let rows = by_arm(&e.observations, &axes)
        .into_iter()
        .map(|(coords, obs)| {
            let per_game: Vec<Vec<f64>> = games
                .iter()
                .map(|g| {
                    obs.iter()
                        .filter(|o| game_of(o) == Some(g))
                        .filter_map(|o| scored(o))
                        .collect()
                })
                .collect();
            let mut row = vec![
                Cell::Text(arm_label(&coords, &axes)),
                Cell::Text(seeds_text(&per_game)),
            ];
            row.extend(
                per_game
                    .iter()
                    .map(|s| Cell::Interval(interval(std::slice::from_ref(s)))),
            );
            if aggregate {
                // A game some arm lacks leaves the arm without an aggregate: IQMs over
                // different sets of games are not comparable.
                let normalized: Option<Vec<Vec<f64>>> = games
                    .iter()
                    .zip(&per_game)
                    .map(|(g, s)| {
                        // No spread on a game (one run, or all equal): nothing to normalize by.
                        let (lo, hi) = *range.get(g)?;
                        (!s.is_empty() && hi > lo)
                            .then(|| s.iter().map(|x| (x - lo) / (hi - lo)).collect())
                    })
                    .collect();
                row.push(Cell::Interval(normalized.and_then(|n| interval(&n))));
            }
            row
        })
        .collect();
    let arm_header = if axes.is_empty() {
        "arm".to_string()
    } else {
        axes.join(",")
    };
    let mut headers = vec![arm_header, "seeds".to_string()];
    headers.extend(games.iter().map(|g| format!("{g}: {score} IQM [95% CI]")));
    if aggregate {
        headers.push(format!("all games: normalized {score} IQM [95% CI]"));
    }
    let mut note = format!(
        "IQM over seeds (scipy's trim_mean(x, 0.25)) with a stratified bootstrap percentile \
         interval, {reps} replicates (rliable's method and default)."
    );
    if aggregate {
        note += " Normalized: each run's score as (x − lowest) / (highest − lowest) over this \
                 experiment's runs on its game, a default of ours (MinAtar publishes no random \
                 or human reference scores); none where every run on a game scored the same.";
    }
    Some(Table {
        id: e.name.clone(),
        title: e.title(),
        headers,
        rows,
        note: Some(note),
    })
}

/// Seeds per game: `5`, or `2–3` when games differ.
fn seeds_text(per_game: &[Vec<f64>]) -> String {
    let min = per_game.iter().map(Vec::len).min().unwrap_or(0);
    let max = per_game.iter().map(Vec::len).max().unwrap_or(0);
    if min == max {
        min.to_string()
    } else {
        format!("{min}–{max}")
    }
}

#[cfg(test)]
mod tests;
