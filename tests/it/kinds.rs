//! Every stage kind at toy scale through `repro run`: each declared metric (written or derived)
//! has a finite value in the results its runs write (the last row of a per-epoch file, every row
//! of a per-upstream-run one), so a declaration that drifts from its writer fails here whatever
//! the kind. A kind of `kinds::ALL` with no experiment
//! below fails too: adding a kind means adding it here.

use crate::common::{Project, ok};
use repro_core::pipeline::kinds;
use repro_core::pipeline::stage::Rows;

const PIPELINE: &str = r#"version: 1
salt: test
datasets:
  cifar10:
    format: cifar10-binary
    files: [{name: cifar-10-binary.tar.gz, md5: c32a1d4ab5d03f1284b67883e8d87530}]
    generate: {generator: cifar10, params: {train_per_class: 4, test_per_class: 2, seed: 0}}
  wikitext2:
    format: wikitext-tokens
    files: [{name: wikitext-2-v1.zip, md5: 542ccefacc6c27f945fb54453812b3cd}]
    extract: zip
    generate:
      generator: wikitext2
      params: {vocab: 100, train_tokens: 800, valid_tokens: 200, test_tokens: 200, seed: 1}
  iwslt14:
    format: iwslt14-de-en
    files: [{name: de-en.tgz, urls: [http://127.0.0.1:9/unreachable.tgz]}]
    extract: tar.gz
    generate: {generator: iwslt14, params: {seed: 0}}
experiments:
  vision:
    kind: vision
    datasets: [cifar10]
    params: {model: small_cnn, width: 0.125, epochs: 2, batch_size: 20, switch_epoch: 1}
  sharpness:
    kind: sharpness
    datasets: [cifar10]
    needs: [vision]
    params: {subset: 20, hessian_iters: 2, trace_probes: 2, ascent_steps: 1, chunk: 20}
  lm:
    kind: lm
    datasets: [wikitext2]
    params:
      {d_model: 8, heads: 2, layers: 1, ffn: 16, epochs: 2, batch_size: 4, eval_batch_size: 2,
       bptt: 8, weight_decay: 0.1, drown_out_every: 3}
  translate:
    kind: translate
    datasets: [iwslt14]
    params:
      {bpe_merges: 50, d_model: 8, ffn: 16, heads: 2, encoder_layers: 1, decoder_layers: 1,
       max_tokens: 400, epochs: 2, warmup_steps: 5, weight_decay: 0.1, beam: 2, max_len_b: 5,
       test_sentences: 2, drown_out_every: 3}
  dqn:
    kind: dqn
    params:
      {env: minatar, game: breakout, model: minatar, history: 1, frames: 400,
       iteration_steps: 200, eval_steps: 50, replay_capacity: 400, min_replay: 50,
       batch_size: 8, epsilon_decay_steps: 100, target_update: 50, update_every: 2,
       weight_decay: 0.01, drown_out_every: 5}
profiles:
  smoke:
    threads: 1
    datasets:
      cifar10: {source: generate}
      wikitext2: {source: generate}
      iwslt14: {source: generate, params: {vocab: 40, train_pairs: 60, test_pairs: 2}}
"#;

#[test]
fn every_kind_writes_every_declared_metric() {
    let p = Project::new(PIPELINE);
    ok(p.smoke(&["--quiet"]));
    for kind in kinds::ALL {
        // Each experiment above is named after its kind and has no grid: its run id is its name.
        let results = &kind.results;
        let rows = p.rows(kind.name, results.file);
        // Per-epoch files: the last row has every metric (a test score such as translate's
        // BLEU comes after the last epoch only). Per-upstream-run files: every row does.
        let checked = match results.rows {
            Rows::PerEpoch => &rows[rows.len().saturating_sub(1)..],
            Rows::PerUpstreamRun { .. } => &rows[..],
        };
        assert!(!checked.is_empty(), "{}: no rows", kind.name);
        for row in checked {
            let row = row.as_object().unwrap();
            for m in results.metrics {
                assert!(
                    results.value(row, m.name).is_some(),
                    "{}: a row of {} lacks a finite `{}`: {row:?}",
                    kind.name,
                    results.file,
                    m.name
                );
            }
        }
    }
}
