//! `repro_torch::nn::transformer_mt` and `repro_torch::nn::beam_search` against the eager PyTorch reference
//! (tests/python/mt_reference.py) with the same weights (VarStore saved as safetensors, loaded with
//! `load_state_dict(strict=True)`): parameter counts (iwslt_de_en by formula and by the reference),
//! eval logits of a padded batch, padded-vs-unpadded equivalence, incremental decoding against full
//! decoding, beam search hypotheses (beam 5 and greedy), and a tiny model that learns to translate.

use repro_torch::nn::beam_search::{BeamOptions, EOS, Hypothesis, PAD, generate};
use repro_torch::nn::param_count;
use repro_torch::nn::transformer_mt::{DecoderCache, TransformerMt, TransformerMtConfig};
use tch::nn::{OptimizerConfig, VarStore};
use tch::{Device, Kind, Tensor};

fn small_cfg() -> TransformerMtConfig {
    TransformerMtConfig {
        src_vocab: 24,
        tgt_vocab: 20,
        d_model: 32,
        ffn: 64,
        heads: 4,
        encoder_layers: 2,
        decoder_layers: 2,
        ..TransformerMtConfig::iwslt_de_en(24, 20)
    }
}

fn cfg_args(c: &TransformerMtConfig) -> Vec<String> {
    [
        c.src_vocab,
        c.tgt_vocab,
        c.d_model,
        c.ffn,
        c.heads,
        c.encoder_layers,
        c.decoder_layers,
    ]
    .iter()
    .map(|v| v.to_string())
    .collect()
}

/// Random model with LayerNorms and biases moved off their initial values, saved for Python.
fn random_model(seed: i64, dir: &std::path::Path) -> (VarStore, TransformerMt, std::path::PathBuf) {
    tch::manual_seed(seed);
    let vs = VarStore::new(Device::Cpu);
    let m = TransformerMt::new(&vs.root(), small_cfg()).unwrap();
    tch::no_grad(|| {
        for (name, mut t) in vs.variables() {
            if name.contains("layer_norm") || name.ends_with("bias") {
                let noise = Tensor::randn_like(&t) * 0.1;
                let _ = t.g_add_(&noise);
            }
        }
    });
    let path = dir.join("w.safetensors");
    vs.save(&path).unwrap();
    (vs, m, path)
}

/// Rows of random non-special tokens (ids ≥ 4) of the given lengths, right-padded with PAD.
fn padded(lengths: &[i64], vocab: i64) -> Tensor {
    let width = *lengths.iter().max().unwrap();
    let rows: Vec<Tensor> = lengths
        .iter()
        .map(|&l| {
            let t = Tensor::randint_low(4, vocab, [l], (Kind::Int64, Device::Cpu));
            Tensor::cat(
                &[
                    t,
                    Tensor::full([width - l], PAD, (Kind::Int64, Device::Cpu)),
                ],
                0,
            )
        })
        .collect();
    Tensor::stack(&rows, 0)
}

fn max_diff(a: &Tensor, b: &Tensor) -> f64 {
    assert_eq!(a.size(), b.size());
    (a - b).abs().max().double_value(&[])
}

#[test]
fn iwslt_parameter_count_matches_formula_and_reference() {
    let c = TransformerMtConfig::iwslt_de_en(8848, 6632);
    let vs = VarStore::new(Device::Cpu);
    TransformerMt::new(&vs.root(), c.clone()).unwrap();
    let ours = param_count(&vs);
    let (d, f) = (c.d_model, c.ffn);
    let attn = 4 * (d * d + d);
    let ffn = d * f + f + f * d + d;
    let enc_layer = attn + ffn + 2 * 2 * d;
    let dec_layer = 2 * attn + ffn + 3 * 2 * d;
    let want = (c.src_vocab + c.tgt_vocab) * d + 6 * enc_layer + 6 * dec_layer;
    assert_eq!(want, 39_469_056);
    assert_eq!(ours, want);
    let mut args = vec!["count".to_string()];
    args.extend(cfg_args(&c));
    let theirs: i64 = repro_testkit::run_script("mt_reference.py", &args)
        .trim()
        .parse()
        .unwrap();
    assert_eq!(ours, theirs);
    // fairseq's names, which the trainer groups by.
    let names: Vec<String> = vs.variables().into_keys().collect();
    for n in [
        "encoder.embed_tokens.weight",
        "encoder.layers.5.self_attn.q_proj.weight",
        "encoder.layers.0.self_attn_layer_norm.bias",
        "encoder.layers.0.fc1.weight",
        "encoder.layers.0.final_layer_norm.weight",
        "decoder.embed_tokens.weight",
        "decoder.layers.5.encoder_attn.out_proj.bias",
        "decoder.layers.0.encoder_attn_layer_norm.weight",
        "decoder.layers.0.fc2.bias",
    ] {
        assert!(names.iter().any(|x| x == n), "missing {n}");
    }
    assert_eq!(names.len(), 2 + 6 * 16 + 6 * 26);
}

#[test]
fn config_errors() {
    let vs = VarStore::new(Device::Cpu);
    let mut c = small_cfg();
    c.heads = 5;
    let e = TransformerMt::new(&vs.root(), c).unwrap_err().to_string();
    assert!(e.contains("heads"), "{e}");
    let mut c = small_cfg();
    c.d_model = 33;
    c.heads = 3;
    let e = TransformerMt::new(&vs.root(), c).unwrap_err().to_string();
    assert!(e.contains("even"), "{e}");
}

#[test]
fn eval_logits_of_a_padded_batch_match_pytorch() {
    let dir = tempfile::tempdir().unwrap();
    let (_vs, m, weights) = random_model(5, dir.path());
    let c = small_cfg();
    let src = padded(&[7, 4, 1], c.src_vocab);
    let prev = padded(&[5, 5, 3], c.tgt_vocab);
    let _ = prev.narrow(1, 0, 1).fill_(EOS);
    let got = tch::no_grad(|| m.forward_t(&src, &prev, false));
    assert_eq!(got.size(), vec![3, 5, c.tgt_vocab]);
    let (sp, pp, op) = (
        dir.path().join("src.npy"),
        dir.path().join("prev.npy"),
        dir.path().join("out.npy"),
    );
    src.write_npy(&sp).unwrap();
    prev.write_npy(&pp).unwrap();
    let mut args = vec!["forward".to_string()];
    args.extend(cfg_args(&c));
    for p in [&weights, &sp, &pp, &op] {
        args.push(p.display().to_string());
    }
    repro_testkit::run_script("mt_reference.py", &args);
    let want = Tensor::read_npy(&op).unwrap();
    let diff = max_diff(&got, &want);
    eprintln!(
        "max |diff| {diff:e}, scale {:e}",
        want.abs().max().double_value(&[])
    );
    assert!(diff <= 1e-4, "max |diff| {diff:e}");
    // Dropout acts only in training.
    let t1 = m.forward_t(&src, &prev, true);
    assert!(max_diff(&t1, &got) > 1e-3);
}

#[test]
fn right_padding_gives_the_unpadded_outputs() {
    let dir = tempfile::tempdir().unwrap();
    let (_vs, m, _) = random_model(6, dir.path());
    let c = small_cfg();
    let src = padded(&[6, 3, 2], c.src_vocab);
    let prev = padded(&[4, 2, 3], c.tgt_vocab);
    let lens_s = [6, 3, 2];
    let lens_t = [4, 2, 3];
    tch::no_grad(|| {
        let batch = m.forward_t(&src, &prev, false);
        for b in 0..3 {
            let s = src.get(b).narrow(0, 0, lens_s[b as usize]).unsqueeze(0);
            let p = prev.get(b).narrow(0, 0, lens_t[b as usize]).unsqueeze(0);
            let alone = m.forward_t(&s, &p, false).squeeze_dim(0);
            let part = batch.get(b).narrow(0, 0, lens_t[b as usize]);
            let diff = max_diff(&part, &alone);
            assert!(diff < 1e-5, "row {b}: {diff:e}");
        }
        // Padding does change the outputs if it is not masked: a sanity check that it's exercised.
        let enc = m.encode(&src, false);
        assert_eq!(enc.padding_mask.sum(Kind::Int64).int64_value(&[]), 3 + 4);
    });
}

#[test]
fn decode_step_equals_full_decoding_and_reorders() {
    let dir = tempfile::tempdir().unwrap();
    let (_vs, m, _) = random_model(7, dir.path());
    let c = small_cfg();
    let src = padded(&[5, 3], c.src_vocab);
    let mut tgt = padded(&[6, 6], c.tgt_vocab);
    let _ = tgt.narrow(1, 0, 1).fill_(EOS);
    tch::no_grad(|| {
        let enc = m.encode(&src, false);
        let mut cache = DecoderCache::new();
        for t in 0..6 {
            let step = m.decode_step(&enc, &mut cache, &tgt.select(1, t));
            let full = m
                .decode(&enc, &tgt.narrow(1, 0, t + 1), false)
                .select(1, t)
                .log_softmax(-1, Kind::Float);
            let diff = max_diff(&step, &full);
            assert!(diff < 1e-5, "step {t}: {diff:e}");
        }
        // Reorder: swap the rows of cache, encoder output and prefix; the next step follows.
        let order = Tensor::from_slice(&[1i64, 0]);
        cache.reorder(&order);
        let enc2 = enc.reorder(&order);
        tgt = tgt.index_select(0, &order);
        let next = Tensor::from_slice(&[4i64, 5]);
        let step = m.decode_step(&enc2, &mut cache, &next);
        let full = m
            .decode(&enc2, &Tensor::cat(&[tgt, next.unsqueeze(1)], 1), false)
            .select(1, 6)
            .log_softmax(-1, Kind::Float);
        assert!(max_diff(&step, &full) < 1e-5);
    });
}

fn reference_hypotheses(
    weights: &std::path::Path,
    src: &Tensor,
    opts: &BeamOptions,
    dir: &std::path::Path,
) -> Vec<Vec<Hypothesis>> {
    let sp = dir.join("gen_src.npy");
    src.write_npy(&sp).unwrap();
    let mut args = vec!["generate".to_string()];
    args.extend(cfg_args(&small_cfg()));
    args.extend([
        weights.display().to_string(),
        sp.display().to_string(),
        opts.beam.to_string(),
        opts.len_penalty.to_string(),
        opts.max_len_a.to_string(),
        opts.max_len_b.to_string(),
        opts.min_len.to_string(),
    ]);
    let out = repro_testkit::run_script("mt_reference.py", &args);
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    v.as_array()
        .unwrap()
        .iter()
        .map(|sent| {
            sent.as_array()
                .unwrap()
                .iter()
                .map(|h| Hypothesis {
                    tokens: h["tokens"]
                        .as_array()
                        .unwrap()
                        .iter()
                        .map(|t| t.as_i64().unwrap())
                        .collect(),
                    score: h["score"].as_f64().unwrap(),
                })
                .collect()
        })
        .collect()
}

/// The reference's hypotheses for a model drawn under `seed`. Callers run alone
/// ([`crate::alone::alone`]): with another test drawing from the generator beside them, the
/// model and the sources differed from run to run, so a rare draw could put two beams within
/// rounding of each other (a likely cause of the one failure seen among many passes).
fn beam_matches_reference(seed: i64, opts: BeamOptions) {
    let dir = tempfile::tempdir().unwrap();
    let (_vs, m, weights) = random_model(seed, dir.path());
    let src = padded(&[6, 3, 5, 1], small_cfg().src_vocab);
    let got = generate(&m, &src, &opts).unwrap();
    let want = reference_hypotheses(&weights, &src, &opts, dir.path());
    assert_eq!(got.len(), want.len());
    let mut eos_finished = 0;
    for (s, (g, w)) in got.iter().zip(&want).enumerate() {
        assert_eq!(g.len(), opts.beam as usize, "sentence {s}");
        assert_eq!(g.len(), w.len(), "sentence {s}");
        for (i, (gh, wh)) in g.iter().zip(w).enumerate() {
            assert_eq!(gh.tokens, wh.tokens, "sentence {s} hypothesis {i}");
            assert!(
                (gh.score - wh.score).abs() < 1e-4,
                "sentence {s} hypothesis {i}: {} vs {}",
                gh.score,
                wh.score
            );
            if (gh.tokens.len() as i64) < opts.max_len_b {
                eos_finished += 1;
            }
        }
        assert!(g.windows(2).all(|p| p[0].score >= p[1].score));
    }
    eprintln!("{opts:?}: {eos_finished} hypotheses ended before max_len");
}

#[test]
fn beam5_matches_reference() {
    if !crate::alone::alone("mt_model::beam5_matches_reference") {
        return;
    }
    // Short max_len exercises the forced-EOS step; the default exercises EOS finalization.
    beam_matches_reference(
        8,
        BeamOptions {
            max_len_b: 6,
            ..Default::default()
        },
    );
    beam_matches_reference(9, BeamOptions::default());
}

#[test]
fn greedy_matches_reference() {
    if !crate::alone::alone("mt_model::greedy_matches_reference") {
        return;
    }
    beam_matches_reference(
        10,
        BeamOptions {
            beam: 1,
            ..Default::default()
        },
    );
    beam_matches_reference(
        11,
        BeamOptions {
            beam: 1,
            len_penalty: 0.5,
            max_len_b: 9,
            min_len: 3,
            ..Default::default()
        },
    );
}

#[test]
fn tiny_model_learns_its_training_pairs() {
    tch::manual_seed(0);
    // One thread, as every test of this binary sets: the thread count is process-wide, and a
    // test comparing two computations (fused_dqn) must not see it change between them.
    tch::set_num_threads(1);
    let cfg = TransformerMtConfig {
        src_vocab: 12,
        tgt_vocab: 12,
        d_model: 32,
        ffn: 64,
        heads: 4,
        encoder_layers: 1,
        decoder_layers: 1,
        dropout: 0.0,
        ..TransformerMtConfig::iwslt_de_en(12, 12)
    };
    let vs = VarStore::new(Device::Cpu);
    let m = TransformerMt::new(&vs.root(), cfg).unwrap();
    // Copy and reverse tasks over tokens 4..11 (reverse marked by a leading 11 in the source).
    let pairs: Vec<(Vec<i64>, Vec<i64>)> = vec![
        (vec![4, 5, 6], vec![4, 5, 6]),
        (vec![7, 8, 9, 10], vec![7, 8, 9, 10]),
        (vec![5, 9], vec![5, 9]),
        (vec![11, 4, 5, 6], vec![6, 5, 4]),
        (vec![11, 7, 8, 9, 10], vec![10, 9, 8, 7]),
        (vec![11, 6, 10, 4], vec![4, 10, 6]),
    ];
    let pad_rows = |rows: Vec<Vec<i64>>| {
        let w = rows.iter().map(Vec::len).max().unwrap();
        let flat: Vec<i64> = rows
            .iter()
            .flat_map(|r| {
                r.iter()
                    .copied()
                    .chain(std::iter::repeat_n(PAD, w - r.len()))
            })
            .collect();
        Tensor::from_slice(&flat).view([rows.len() as i64, w as i64])
    };
    // fairseq's batches: source + EOS; target = tokens + EOS; prev = EOS + tokens.
    let src = pad_rows(
        pairs
            .iter()
            .map(|(s, _)| [s.clone(), vec![EOS]].concat())
            .collect(),
    );
    let tgt = pad_rows(
        pairs
            .iter()
            .map(|(_, t)| [t.clone(), vec![EOS]].concat())
            .collect(),
    );
    let prev = pad_rows(
        pairs
            .iter()
            .map(|(_, t)| [vec![EOS], t.clone()].concat())
            .collect(),
    );
    let mut opt = tch::nn::Adam::default().build(&vs, 3e-3).unwrap();
    let mut loss_v = f64::NAN;
    for _ in 0..300 {
        let logits = m.forward_t(&src, &prev, true);
        let loss = logits
            .view([-1, 12])
            .log_softmax(-1, Kind::Float)
            .g_nll_loss(&tgt.view([-1]), None::<Tensor>, tch::Reduction::Mean, PAD);
        opt.backward_step(&loss);
        loss_v = loss.double_value(&[]);
    }
    eprintln!("final loss {loss_v}");
    let hyps = generate(&m, &src, &BeamOptions::default()).unwrap();
    for ((s, t), h) in pairs.iter().zip(&hyps) {
        assert_eq!(&h[0].tokens, t, "source {s:?}");
    }
}
