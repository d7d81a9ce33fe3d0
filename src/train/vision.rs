//! The `vision` stage kind: image classification with SGD and a weight-decay schedule on the
//! CIFAR binary datasets. Writes the initial and final weights (safetensors) and one metrics row
//! per epoch (`metrics.jsonl`); timings go to the run record, so outputs stay bitwise stable.

use std::time::Instant;

use anyhow::{Context, Result, bail};
use rand::SeedableRng;
use rand::seq::SliceRandom;
use rand_chacha::ChaCha8Rng;
use serde::Serialize;
use serde_json::json;
use tch::nn::{self, ModuleT, OptimizerConfig};
use tch::{Kind, Tensor};

use super::StageContext;
use super::{WdSchedule, lr_at};
use crate::data::cifar::{CifarVariant, read_cifar};
use crate::metrics::JsonLines;
use crate::nn::{Arch, build};
use crate::pipeline::params::Params;
use crate::pipeline::stage::Outcome;

#[derive(Serialize)]
struct EpochRow {
    epoch: usize,
    lr: f64,
    wd_on: bool,
    train_loss: f64,
    train_acc: f64,
    test_loss: f64,
    test_acc: f64,
    weight_norm: f64,
    grad_norm: f64,
}

/// Train one run.
pub fn run(ctx: &StageContext) -> Result<Outcome> {
    let p = Params(ctx.params);
    let Some(ds) = ctx.datasets.values().next() else {
        bail!("the vision stage needs one dataset")
    };
    let variant = || match ds.format.as_str() {
        "cifar10-binary" => Ok(CifarVariant::Cifar10),
        "cifar100-binary" => Ok(CifarVariant::Cifar100),
        f => Err(anyhow::anyhow!("the vision stage cannot read format {f}")),
    };
    let seed = p.int("seed")?;
    tch::manual_seed(seed);
    let dev = ctx.device;
    let train = read_cifar(&ds.root, variant()?, true).context("reading the training split")?;
    let test = read_cifar(&ds.root, variant()?, false).context("reading the test split")?;
    let classes = train.classes as i64;
    let subset = p.usize("train_subset")?;
    let n_train = if subset == 0 {
        train.len
    } else {
        subset.min(train.len)
    };
    let to_tensor = |images: &[u8], n: usize| {
        Tensor::from_slice(&images[..n * 3072])
            .view([n as i64, 3, 32, 32])
            .to_kind(Kind::Float)
            / 255.0
    };
    let x_train = to_tensor(&train.images, n_train);
    let y_train = Tensor::from_slice(&train.labels[..n_train]).to_kind(Kind::Int64);
    // Per-channel normalisation with statistics of the training images used.
    let mean = x_train.mean_dim([0i64, 2, 3].as_slice(), true, Kind::Float);
    let std = x_train.std_dim([0i64, 2, 3].as_slice(), false, true);
    let x_train = ((x_train - &mean) / &std).to_device(dev);
    let y_train = y_train.to_device(dev);
    let x_test = ((to_tensor(&test.images, test.len) - &mean) / &std).to_device(dev);
    let y_test = Tensor::from_slice(&test.labels)
        .to_kind(Kind::Int64)
        .to_device(dev);

    let vs = nn::VarStore::new(dev);
    let width = p.int("width")?;
    let net = match p.str("model")? {
        "small_cnn" => build(Arch::SmallCnn, &vs.root(), classes, width as f64).net,
        m => bail!("unknown model {m}"),
    };
    vs.save(ctx.out_dir.join("init.safetensors"))?;

    let (lr0, decay, wd) = (
        p.float("lr")?,
        p.float("lr_decay")?,
        p.float("weight_decay")?,
    );
    let schedule = WdSchedule::parse(p.str("schedule")?)?;
    let switch = p.usize("switch_epoch")?;
    let epochs = p.usize("epochs")?;
    let batch = p.usize("batch_size")?;
    let augment = p.bool("augment")?;
    let mut opt = nn::Sgd {
        momentum: p.float("momentum")?,
        dampening: 0.0,
        wd: 0.0,
        nesterov: false,
    }
    .build(&vs, lr0)?;
    let mut metrics = JsonLines::create(&ctx.out_dir.join("metrics.jsonl"))?;
    let mut seconds = Vec::new();
    let mut images_per_s = Vec::new();
    let mut last = json!({});

    let params = vs.trainable_variables();
    for epoch in 0..epochs {
        let start = Instant::now();
        let lr = lr_at(lr0, decay, epoch);
        let wd_on = schedule.active(epoch, switch);
        opt.set_lr(lr);
        opt.set_weight_decay(if wd_on { wd } else { 0.0 });
        let mut rng = ChaCha8Rng::seed_from_u64((seed as u64) << 20 | epoch as u64);
        let mut order: Vec<i64> = (0..n_train as i64).collect();
        order.shuffle(&mut rng);
        // Accumulate on the device and read once per epoch: no host sync per step.
        let acc = || Tensor::zeros([], (Kind::Double, dev));
        let (mut loss_sum, mut correct, mut grad_sq, mut steps) = (acc(), acc(), acc(), 0usize);
        for chunk in order.chunks(batch) {
            let idx = Tensor::from_slice(chunk).to_device(dev);
            let mut x = x_train.index_select(0, &idx);
            if augment {
                x = augment_batch(&x, &mut rng);
            }
            let y = y_train.index_select(0, &idx);
            let logits = net.forward_t(&x, true);
            let loss = logits.cross_entropy_for_logits(&y);
            opt.zero_grad();
            loss.backward();
            tch::no_grad(|| {
                for v in &params {
                    grad_sq += v.grad().square().sum(Kind::Double);
                }
                loss_sum += loss.to_kind(Kind::Double) * chunk.len() as f64;
                correct += logits.argmax(-1, false).eq_tensor(&y).sum(Kind::Double);
            });
            opt.step();
            steps += 1;
        }
        let (loss_sum, correct, grad_sq) = (
            loss_sum.double_value(&[]),
            correct.double_value(&[]),
            grad_sq.double_value(&[]),
        );
        let (test_loss, test_acc) = evaluate(net.as_ref(), &x_test, &y_test, 500);
        let weight_norm = tch::no_grad(|| {
            params
                .iter()
                .map(|v| v.square().sum(Kind::Float).double_value(&[]))
                .sum::<f64>()
        })
        .sqrt();
        let row = EpochRow {
            epoch,
            lr,
            wd_on,
            train_loss: loss_sum / n_train as f64,
            train_acc: correct / n_train as f64,
            test_loss,
            test_acc,
            weight_norm,
            grad_norm: (grad_sq / steps.max(1) as f64).sqrt(),
        };
        metrics.write(&row)?;
        last = serde_json::to_value(&row)?;
        let secs = start.elapsed().as_secs_f64();
        seconds.push(secs);
        images_per_s.push(n_train as f64 / secs);
        (ctx.progress)(
            epoch as u64 + 1,
            epochs as u64,
            &format!("test acc {test_acc:.3}"),
        );
    }
    metrics.finish()?;
    vs.save(ctx.out_dir.join("checkpoint.safetensors"))?;

    let mut outcome = Outcome::default();
    if let serde_json::Value::Object(m) = last {
        outcome
            .metrics
            .insert("final".into(), serde_json::Value::Object(m));
    }
    outcome
        .metrics
        .insert("epoch_seconds".into(), json!(seconds));
    outcome
        .metrics
        .insert("images_per_s".into(), json!(images_per_s));
    Ok(outcome)
}

/// Random 4-pixel zero-pad crop and horizontal flip, per image, drawn from `rng`.
fn augment_batch(x: &Tensor, rng: &mut ChaCha8Rng) -> Tensor {
    use rand::Rng;
    let n = x.size()[0];
    let padded = x.constant_pad_nd([4, 4, 4, 4]);
    let crops: Vec<Tensor> = (0..n)
        .map(|i| {
            let (dy, dx) = (rng.random_range(0..=8), rng.random_range(0..=8));
            let img = padded.get(i).narrow(1, dy, 32).narrow(2, dx, 32);
            if rng.random_bool(0.5) {
                img.flip([2])
            } else {
                img
            }
        })
        .collect();
    Tensor::stack(&crops, 0)
}

/// Mean loss and accuracy over a split, in eval mode.
fn evaluate(net: &dyn ModuleT, x: &Tensor, y: &Tensor, batch: i64) -> (f64, f64) {
    tch::no_grad(|| {
        let n = x.size()[0];
        let (mut loss, mut correct) = (0.0, 0i64);
        let mut start = 0;
        while start < n {
            let len = batch.min(n - start);
            let logits = net.forward_t(&x.narrow(0, start, len), false);
            let yb = y.narrow(0, start, len);
            loss += logits.cross_entropy_for_logits(&yb).double_value(&[]) * len as f64;
            correct += logits
                .argmax(-1, false)
                .eq_tensor(&yb)
                .sum(Kind::Int64)
                .int64_value(&[]);
            start += len;
        }
        (loss / n as f64, correct as f64 / n as f64)
    })
}
