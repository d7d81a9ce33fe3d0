//! End to end through `repro run` on generated data: the translate stage with the two newest Adam
//! variants writes the E8 columns `step_attenuation` and `past_stability_bound` with finite values,
//! and a dqn run pushed past AdamW's stability bound (αλ = 50 > 2) stops at the iteration its
//! TD loss stops being finite, records `diverged_iteration` and still succeeds.

use crate::common::{Project, ok};
use serde_json::Value;

const PIPELINE: &str = r#"version: 1
salt: test
datasets:
  iwslt14:
    format: iwslt14-de-en
    files: [{name: de-en.tgz, urls: [http://127.0.0.1:9/unreachable.tgz]}]
    extract: tar.gz
    generate: {generator: iwslt14, params: {seed: 0}}
experiments:
  mt:
    kind: translate
    datasets: [iwslt14]
    params:
      {bpe_merges: 100, d_model: 16, ffn: 32, heads: 2, encoder_layers: 1, decoder_layers: 1,
       max_tokens: 400, epochs: 2, warmup_steps: 20, lr: 3.0e-3, weight_decay: 0.1, beam: 2,
       max_len_b: 10, test_sentences: 4, drown_out_every: 5}
    grid:
      variant: [l2_out_of_m, adaptive_decoupled_stable]
  dqn:
    kind: dqn
    params:
      {env: minatar, game: breakout, model: minatar, history: 1, frames: 3000,
       iteration_steps: 1000, eval_steps: 100, replay_capacity: 3000, min_replay: 1500,
       batch_size: 8, epsilon_decay_steps: 1000, target_update: 200, drown_out_every: 10,
       variant: adamw}
    grid:
      # α·λ = 50: every update multiplies w by 1 − αλ = −49 (docs/paper.md#e7, V2's bound αλ < 2).
      lr: [1.0, 2.5e-4]
      weight_decay: [50.0]
profiles:
  smoke:
    threads: 1
    datasets:
      iwslt14: {source: generate, params: {vocab: 60, train_pairs: 300, test_pairs: 4}}
"#;

fn number(row: &Value, column: &str) -> f64 {
    row[column]
        .as_f64()
        .unwrap_or_else(|| panic!("`{column}` is not a number: {row}"))
}

#[test]
fn e8_columns_and_dqn_divergence() {
    let p = Project::new(PIPELINE);
    ok(p.smoke(&["--quiet"]));

    for variant in ["l2_out_of_m", "adaptive_decoupled_stable"] {
        let rows = p.rows(&format!("mt/variant={variant}"), "metrics.jsonl");
        assert_eq!(rows.len(), 2, "{variant}: one row per epoch");
        for row in &rows {
            let att = number(row, "step_attenuation");
            let past = number(row, "past_stability_bound");
            println!(
                "{variant} epoch {}: attenuation {att} past {past}",
                row["epoch"]
            );
            assert!(att.is_finite() && att > 0.0, "{variant}: attenuation {att}");
            assert!((0.0..=1.0).contains(&past), "{variant}: past {past}");
            if variant == "adaptive_decoupled_stable" {
                assert_eq!(past, 0.0, "the implicit decay has no bound to pass");
            }
        }
        let samples = p.rows(&format!("mt/variant={variant}"), "drown_out.jsonl");
        assert!(samples
            .iter()
            .all(|s| s["step_attenuation"].is_number() && s["past_stability_bound"].is_number()));
    }

    // Past the bound: iteration 0 has no update yet (min_replay 1500), iteration 1 blows up.
    let id = |lr: &str| format!("dqn/lr={lr},weight_decay=50.0");
    let rows = p.rows(&id("1.0"), "metrics.jsonl");
    assert_eq!(
        rows.len(),
        2,
        "training stops at the diverged iteration: {rows:?}"
    );
    assert!(rows[0]["eval_return"].is_number());
    assert!(
        rows[1]["loss"].is_null() && rows[1]["q_mean"].is_null(),
        "{}",
        rows[1]
    );
    assert!(
        rows[1]["eval_return"].is_null(),
        "no evaluation of a diverged network"
    );
    assert_eq!(p.record(&id("1.0"))["metrics"]["diverged_iteration"], 1);
    // Inside the bound (αλ = 0.0125): all three iterations, not diverged.
    let rows = p.rows(&id("0.00025"), "metrics.jsonl");
    assert_eq!(rows.len(), 3);
    assert!(rows.iter().skip(1).all(|r| number(r, "loss").is_finite()));
    assert!(p.record(&id("0.00025"))["metrics"]["diverged_iteration"].is_null());
}
