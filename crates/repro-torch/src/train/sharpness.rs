//! The `sharpness` stage kind (docs/paper.md#e3, claims C4/C5): the generalization metrics of
//! [`crate::sharpness`] on the final checkpoint of every upstream `vision` run, measured on
//! a fixed training subset chosen by the seed, with BatchNorm in eval mode. Output:
//! `sharpness.jsonl`, one row per upstream run, with that run's generalization gap beside it.
//! Upstream runs are every run of the `needs` experiments with the same seed (E1's four
//! schedules and, where a profile runs it, the Tₛ sweep: ≥ 12 nets per seed to rank).

use std::collections::BTreeMap;

use anyhow::{Context, Result};
use rand::SeedableRng;
use rand::seq::SliceRandom;
use rand_chacha::ChaCha8Rng;
use serde_json::{Map, Value, json};
use tch::Tensor;

use super::common::{load_safetensors, trainable_by_name};
use super::progress::{Plan, Ticker};
use super::stage::{Stage, StageContext};
use super::vision::{evaluate, single_dataset, training_set};
use crate::data::images;
use crate::data::loader::{ImageSet, Normalize};
use crate::nn::build;
use crate::sharpness as sh;
use repro_core::metrics::JsonLines;
use repro_core::pipeline::kinds::{SHARPNESS, SharpnessParams, VisionParams};
use repro_core::pipeline::progress::{Samples, Unit};
use repro_core::pipeline::stage::{Outcome, StageDecl, UpstreamRun};
use repro_core::runtime::Precision;

/// The `sharpness` kind.
pub struct Sharpness;

impl Stage for Sharpness {
    type Params = SharpnessParams;
    const DECL: &'static StageDecl = &SHARPNESS;
    /// Measure every upstream run.
    fn run(ctx: &StageContext, p: &SharpnessParams) -> Result<Outcome> {
        let (train_all, test) = images::load(single_dataset(ctx)?)?;
        let mut out = JsonLines::create(&ctx.out_dir.join("sharpness.jsonl"))?;
        let mut upstream: Vec<&UpstreamRun> = ctx.upstream.iter().collect();
        upstream.sort_by(|a, b| a.run_id.cmp(&b.run_id));
        let n = upstream.len() as u64;
        let mut ticks = Ticker::new(
            ctx.progress,
            Plan::even(Unit::Run, n, 1, Samples::Images),
            0,
        );
        for (i, up) in upstream.iter().enumerate() {
            ticks.starting(i, &format!("measuring {}", up.run_id));
            let row = measure(ctx, p, up, &train_all, &test)
                .with_context(|| format!("measuring upstream run {}", up.run_id))?;
            out.write(&row)?;
            ticks.unit_end(i, &up.run_id);
        }
        out.finish()?;
        Ok(Outcome::default())
    }
}

fn output<'a>(up: &'a UpstreamRun, name: &str) -> Result<&'a std::path::Path> {
    up.outputs.get(name).map(|p| p.as_path()).with_context(|| {
        format!(
            "upstream run {} has no output `{name}` (is it a vision run?)",
            up.run_id
        )
    })
}

fn measure(
    ctx: &StageContext,
    p: &SharpnessParams,
    up: &UpstreamRun,
    train_all: &ImageSet,
    test: &ImageSet,
) -> Result<Value> {
    let up_p: VisionParams = serde_json::from_value(Value::Object(up.params.clone()))
        .context("the upstream run's parameters (is it a vision run?)")?;
    let dev = ctx.device;
    let seed = p.seed;
    let train = training_set(train_all.shallow_clone(), &up_p)?;
    let normalize = Normalize::fit(&train);

    let vs = tch::nn::VarStore::new(dev);
    let model = build(up_p.model, &vs.root(), train.classes, up_p.width);
    load_safetensors(&vs, output(up, "final.safetensors")?).context("loading the final weights")?;
    let init: BTreeMap<String, Tensor> = Tensor::read_safetensors(output(up, "init.safetensors")?)?
        .into_iter()
        .collect();

    let chunk = p.chunk;
    let (subset, batches) = fixed_subset(&train, p, &normalize, dev);
    let total = subset.labels.size()[0] as f64;
    let net = &*model.net;
    let loss = |i: usize| {
        let (x, y) = &batches[i];
        net.forward_t(x, false).cross_entropy_for_logits(y) * (y.size()[0] as f64 / total)
    };
    let obj = sh::Objective {
        chunks: batches.len(),
        loss: &loss,
    };

    let Weights {
        params,
        si,
        init_params,
        weights,
    } = Weights::of(&vs, &model.scale_invariant, &init)?;

    let iters = p.hessian_iters;
    let (trace, trace_se) = sh::hutchinson_trace(&obj, &params, p.trace_probes, seed)?;
    let mut layers = Map::new();
    let mut layer_sum = None;
    if p.per_layer {
        let mut sum = 0.0;
        for (name, w) in model.scale_invariant.iter().zip(&si) {
            let v = sh::scale_invariant_sharpness(&obj, std::slice::from_ref(w), iters, seed)?;
            layers.insert(name.clone(), json!(v));
            sum += v;
        }
        layer_sum = Some(sum);
    }
    let (train_loss, train_acc) =
        evaluate(net, &subset, &normalize, dev, chunk, Precision::default());
    let (test_loss, test_acc) = evaluate(net, test, &normalize, dev, chunk, Precision::default());
    let mut row = Map::new();
    row.insert("run_id".into(), json!(up.run_id));
    for axis in ["schedule", "switch_epoch", "seed", "label_noise"] {
        if let Some(v) = up.params.get(axis) {
            row.insert(axis.into(), v.clone());
        }
    }
    let metrics = json!({
        "train_loss": train_loss,
        "train_acc": train_acc,
        "test_loss": test_loss,
        "test_acc": test_acc,
        "gen_gap_acc": train_acc - test_acc,
        "gen_gap_loss": test_loss - train_loss,
        "lambda_max": sh::lambda_max(&obj, &params, iters, seed)?,
        "trace": trace,
        "trace_stderr": trace_se,
        "eps_sharpness": sh::eps_sharpness(
            &obj, &params, p.epsilon, p.ascent_steps)?,
        "frobenius_sum": sh::frobenius_sum(&weights),
        "log_spectral_product": sh::log_spectral_product(&weights, iters, seed),
        "dist_init": sh::distance(&params, &init_params)?,
        "s_inv": sh::scale_invariant_sharpness(&obj, &si, iters, seed)?,
        "s_inv_trace": sh::scale_invariant_trace(&obj, &si, p.trace_probes, seed)?,
        "s_inv_layer_sum": layer_sum,
        "s_inv_layers": layers,
    });
    if let Value::Object(m) = metrics {
        row.extend(m);
    }
    Ok(Value::Object(row))
}

/// The fixed subset a run is measured on: a seeded choice of `subset` training images (in their
/// order in the set), and its batches of `chunk` images.
fn fixed_subset(
    train: &ImageSet,
    p: &SharpnessParams,
    normalize: &Normalize,
    dev: tch::Device,
) -> (ImageSet, Vec<(Tensor, Tensor)>) {
    let n = train.labels.size()[0] as usize;
    let mut order: Vec<i64> = (0..n as i64).collect();
    order.shuffle(&mut ChaCha8Rng::seed_from_u64(p.seed));
    order.truncate(p.subset.min(n));
    order.sort_unstable();
    let subset = train.select(&Tensor::from_slice(&order));
    let batches = crate::data::loader::Loader::eval(&subset, p.chunk, normalize, dev).collect();
    (subset, batches)
}

/// The tensors the measures read, in `trainable_by_name`'s order.
struct Weights {
    /// Every trainable variable.
    params: Vec<Tensor>,
    /// The scale-invariant (BN-preceded) weights.
    si: Vec<Tensor>,
    /// Each variable's initial value, on its device.
    init_params: Vec<Tensor>,
    /// The matrices and convolution kernels (dimension ≥ 2).
    weights: Vec<Tensor>,
}

impl Weights {
    fn of(
        vs: &tch::nn::VarStore,
        scale_invariant: &[String],
        init: &BTreeMap<String, Tensor>,
    ) -> Result<Weights> {
        let named = trainable_by_name(vs);
        let params: Vec<Tensor> = named.iter().map(|(_, t)| t.shallow_clone()).collect();
        let by_name = |name: &String| {
            named
                .iter()
                .find(|(n, _)| n == name)
                .map(|(_, t)| t.shallow_clone())
                .with_context(|| format!("no parameter `{name}`"))
        };
        let si: Vec<Tensor> = scale_invariant.iter().map(by_name).collect::<Result<_>>()?;
        let init_params: Vec<Tensor> = named
            .iter()
            .map(|(n, t)| {
                init.get(n)
                    .map(|t0| t0.to_device(t.device()))
                    .with_context(|| format!("init.safetensors lacks `{n}`"))
            })
            .collect::<Result<_>>()?;
        let weights: Vec<Tensor> = named
            .iter()
            .filter(|(_, t)| t.dim() >= 2)
            .map(|(_, t)| t.shallow_clone())
            .collect();
        Ok(Weights {
            params,
            si,
            init_params,
            weights,
        })
    }
}
