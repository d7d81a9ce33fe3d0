//! The returns table on a contrived `dqn` experiment: two games × two variants × λ {0, 0.1} ×
//! five seeds, each seed's score planted in every row so the `@tail` reduction returns it.

use serde_json::{Map, Value, json};

use super::*;
use crate::tables;
use repro_core::metrics::stats;

const REPS: usize = 2000;

fn row(v: Value) -> Map<String, Value> {
    v.as_object().unwrap().clone()
}

fn obs(coords: Map<String, Value>, seed: i64, score: f64) -> Observation {
    let rows = (0..5)
        .map(|it| row(json!({"epoch": it, "eval_return": score, "train_return": score / 2.0})))
        .collect();
    Observation::contrived(coords, seed, rows)
}

/// Seed scores: an outlier in the last seed, which an IQM of five ignores.
fn scores(game: &str, variant: &str, lambda: f64) -> [f64; 5] {
    let base = match (game, variant, lambda > 0.0) {
        ("breakout", "adam_l2", true) => 2.0,
        ("breakout", _, _) => 10.0,
        (_, "adam_l2", true) => 5.0,
        _ => 40.0,
    };
    [base, base + 1.0, base + 2.0, base + 3.0, base + 100.0]
}

fn dqn_experiment(games: &[&str]) -> ExperimentData {
    let kind = repro_core::pipeline::kinds::kind("dqn").expect("the dqn kind");
    let mut observations = Vec::new();
    for game in games {
        for variant in ["adam_l2", "adamw"] {
            for lambda in [0.0, 0.1] {
                for (seed, s) in scores(game, variant, lambda).into_iter().enumerate() {
                    let coords = row(json!({"game": game, "variant": variant,
                                            "weight_decay": lambda, "seed": seed}));
                    observations.push(obs(coords, seed as i64, s));
                }
            }
        }
    }
    let mut arm_axes = vec!["variant".to_string(), "weight_decay".to_string()];
    if games.len() > 1 {
        arm_axes.insert(0, "game".into());
    }
    ExperimentData {
        name: "rl".into(),
        description: None,
        kind,
        observations,
        missing: Vec::new(),
        planned: games.len() * 20,
        arm_axes,
        data: Vec::new(),
    }
}

fn interval(c: &Cell) -> Interval {
    match c {
        Cell::Interval(Some(i)) => *i,
        other => panic!("not an interval: {other:?}"),
    }
}

#[test]
fn one_row_per_variant_and_lambda_with_a_column_per_game_and_the_aggregate() {
    let t = table_with(&dqn_experiment(&["breakout", "asterix"]), REPS).unwrap();
    assert_eq!(
        t.headers,
        [
            "variant,weight_decay",
            "seeds",
            "breakout: eval_return@tail:0.2 IQM [95% CI]",
            "asterix: eval_return@tail:0.2 IQM [95% CI]",
            "all games: normalized eval_return@tail:0.2 IQM [95% CI]",
        ]
    );
    let labels: Vec<String> = t.rows.iter().map(|r| r[0].text()).collect();
    assert_eq!(
        labels,
        [
            "variant=adam_l2,weight_decay=0.0",
            "variant=adam_l2,weight_decay=0.1",
            "variant=adamw,weight_decay=0.0",
            "variant=adamw,weight_decay=0.1",
        ]
    );
    assert_eq!(t.rows[0][1].text(), "5");
    // adam_l2 at λ = 0.1 on breakout: 2, 3, 4, 5, 102 → IQM 4 (the mean would be 23.2).
    let b = interval(&t.rows[1][2]);
    assert_eq!(b.point, 4.0);
    assert_eq!(b.point, stats::iqm(&[2.0, 3.0, 4.0, 5.0, 102.0]).unwrap());
    assert!(b.lo <= b.point && b.point <= b.hi && b.lo >= 2.0 && b.hi <= 102.0);
    // The same interval as the bootstrap module gives for those scores and the fixed seed.
    let direct = bootstrap::stratified_bootstrap_ci(
        &[vec![2.0, 3.0, 4.0, 5.0, 102.0]],
        Aggregate::Iqm,
        REPS,
        DEFAULT_CONFIDENCE,
        BOOTSTRAP_SEED,
    )
    .unwrap();
    assert_eq!(b, direct);
    assert_eq!(interval(&t.rows[1][3]).point, 7.0);
}

#[test]
fn the_aggregate_pools_min_max_normalized_scores_stratified_by_game() {
    let e = dqn_experiment(&["breakout", "asterix"]);
    let t = table_with(&e, REPS).unwrap();
    // Per game, the lowest and highest run scores of the experiment.
    let (b_lo, b_hi) = (2.0, 110.0);
    let (a_lo, a_hi) = (5.0, 140.0);
    let norm = |xs: [f64; 5], lo: f64, hi: f64| -> Vec<f64> {
        xs.iter().map(|x| (x - lo) / (hi - lo)).collect()
    };
    let expected = [
        norm(scores("breakout", "adam_l2", 0.1), b_lo, b_hi),
        norm(scores("asterix", "adam_l2", 0.1), a_lo, a_hi),
    ];
    let want = bootstrap::stratified_bootstrap_ci(
        &expected,
        Aggregate::Iqm,
        REPS,
        DEFAULT_CONFIDENCE,
        BOOTSTRAP_SEED,
    )
    .unwrap();
    let got = interval(&t.rows[1][4]);
    assert_eq!(got, want);
    let pooled: Vec<f64> = expected.concat();
    assert!((got.point - stats::iqm(&pooled).unwrap()).abs() < 1e-12);
    // Decoupled decay keeps its returns: its aggregate lies above adam_l2's at λ = 0.1.
    assert!(interval(&t.rows[3][4]).point > got.point);
    // The note says how, and that the normalization is a default of ours.
    let note = t.note.as_deref().unwrap();
    assert!(note.contains("default of ours") && note.contains("2000 replicates"));
}

#[test]
fn an_arm_missing_a_game_has_no_aggregate() {
    let mut e = dqn_experiment(&["breakout", "asterix"]);
    e.observations
        .retain(|o| !(o.coords["variant"] == "adamw" && o.coords["game"] == "asterix"));
    let t = table_with(&e, REPS).unwrap();
    assert_eq!(t.rows[2][3].text(), "—");
    assert_eq!(t.rows[2][4].text(), "—");
    assert!(matches!(t.rows[0][4], Cell::Interval(Some(_))));
}

#[test]
fn one_game_has_no_aggregate_column_and_the_csv_splits_intervals() {
    let t = table_with(&dqn_experiment(&["breakout"]), REPS).unwrap();
    assert_eq!(t.headers.len(), 3);
    let csv = tables::csv(&t).unwrap();
    let header = csv.lines().next().unwrap();
    assert!(header.contains("breakout: eval_return@tail:0.2 IQM [95% CI]_point"));
    assert!(header.contains("_ci_low") && header.contains("_ci_high"));
    let first = csv.lines().nth(1).unwrap();
    assert!(
        first.contains(",12,"),
        "IQM of 10, 11, 12, 13, 110 is 12: {first}"
    );
    assert!(tables::markdown(&t).contains("rliable"));
    assert!(tables::html(&t).contains("<p class=\"note\">"));
}

#[test]
fn experiments_without_games_are_not_rl_tables() {
    let mut e = dqn_experiment(&["breakout"]);
    for o in &mut e.observations {
        o.coords.remove("game");
    }
    assert!(table(&e).is_none());
    // Through the report's table list, the RL experiment gets this table.
    let inputs = crate::observe::Inputs {
        profile: "test".into(),
        experiments: vec![dqn_experiment(&["breakout", "asterix"])],
        digests: Default::default(),
    };
    let t = crate::per_experiment::tables(&inputs);
    assert!(t[0].headers[4].starts_with("all games"));
}

#[test]
fn one_seed_shows_its_score_without_an_interval() {
    let mut e = dqn_experiment(&["breakout"]);
    e.observations.retain(|o| o.seed == 0);
    let t = table_with(&e, REPS).unwrap();
    assert_eq!(t.rows[1][1].text(), "1");
    assert_eq!(t.rows[1][2].text(), "2.000");
}

#[test]
fn a_game_without_spread_leaves_no_aggregate() {
    let mut e = dqn_experiment(&["breakout", "asterix"]);
    e.observations.retain(|o| {
        o.seed == 0 && o.coords["variant"] == "adamw" && o.coords["weight_decay"] == 0.0
    });
    e.arm_axes = vec!["game".into()];
    let t = table_with(&e, REPS).unwrap();
    assert_eq!(t.rows.len(), 1);
    assert_eq!(t.rows[0][2].text(), "10.00");
    assert_eq!(t.rows[0][4].text(), "—");
}
