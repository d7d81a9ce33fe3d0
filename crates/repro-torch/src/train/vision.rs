//! The `vision` stage kind (docs/paper.md#e1, E2, E4): an image classifier trained with SGD under a
//! weight-decay schedule. Outputs: `metrics.jsonl` (one row per epoch: losses, accuracies, the
//! norm statistics of [`super::norms`]), and the weights as safetensors at initialisation, at the
//! switch epoch Tₛ and at the end. Timings go to the run record, so outputs stay bitwise stable.

use std::time::Instant;

use anyhow::{Result, bail};
use serde::Serialize;
use serde_json::json;
use tch::nn::ModuleT;
use tch::{Kind, Tensor};

use super::norms::{EpochNorms, NormTracker};
use super::{Stage, StageContext, lr_at};
use crate::checkpoint::State;
use crate::data::images;
use crate::data::loader::{Augment, ImageSet, Loader, Normalize, with_label_noise};
use crate::libtorch::{autocast_guard, channels_last, vars_to_channels_last};
use crate::nn::build;
use crate::optim::sgd::Sgd;
use repro_core::data::DatasetView;
use repro_core::metrics::JsonLines;
use repro_core::pipeline::kinds::{VISION, VisionParams};
use repro_core::pipeline::stage::{Outcome, StageDecl};
use repro_core::runtime::Precision;

#[derive(Serialize)]
struct EpochRow {
    epoch: usize,
    lr: f64,
    wd_on: bool,
    train_loss: f64,
    train_acc: f64,
    test_loss: f64,
    test_acc: f64,
    #[serde(flatten)]
    norms: EpochNorms,
}

/// The one dataset a vision-like stage reads.
pub fn single_dataset<'a>(ctx: &'a StageContext) -> Result<&'a DatasetView> {
    match ctx.datasets.values().collect::<Vec<_>>().as_slice() {
        [ds] => Ok(ds),
        other => bail!(
            "stage `{}` reads one dataset, got {}",
            ctx.run_id,
            other.len()
        ),
    }
}

/// The training set a run with parameters `p` sees: the first `train_subset` images, with the
/// run's label noise applied (fixed for the whole run by its seed).
pub fn training_set(train: ImageSet, p: &VisionParams) -> Result<ImageSet> {
    let subset = p.train_subset as i64;
    let n = train.labels.size()[0];
    let n = if subset == 0 { n } else { subset.min(n) };
    let labels = train.labels.narrow(0, 0, n);
    let noise = p.label_noise;
    Ok(ImageSet {
        images: train.images.narrow(0, 0, n),
        labels: with_label_noise(&labels, train.classes, noise, p.seed)?,
        classes: train.classes,
    })
}

/// The `vision` kind.
pub struct Vision;

impl Stage for Vision {
    type Params = VisionParams;
    const DECL: &'static StageDecl = &VISION;
    fn run(ctx: &StageContext, p: &VisionParams) -> Result<Outcome> {
        run(ctx, p)
    }
}

/// Train one run.
pub fn run(ctx: &StageContext, p: &VisionParams) -> Result<Outcome> {
    let seed = p.seed;
    tch::manual_seed(seed as i64);
    let dev = ctx.device;
    let (train, test) = images::load(single_dataset(ctx)?)?;
    let train = training_set(train, p)?;
    let classes = train.classes;
    let n_train = train.labels.size()[0] as usize;
    let normalize = Normalize::fit(&train);

    let vs = tch::nn::VarStore::new(dev);
    let model = build(p.model, &vs.root(), classes, p.width);
    let prec = ctx.precision;
    if prec.channels_last {
        vars_to_channels_last(&vs);
    }
    let mut resumed = ctx.resume()?;
    if resumed.is_none() {
        save_weights(&vs, &ctx.out_dir.join("init.safetensors"))?;
    }
    let named = super::trainable_by_name(&vs);
    let si_index: Vec<usize> = model
        .scale_invariant
        .iter()
        .filter_map(|n| named.iter().position(|(m, _)| m == n))
        .collect();
    let mut tracker = NormTracker::new(
        named
            .iter()
            .map(|(n, t)| (n.clone(), t.shallow_clone()))
            .collect(),
        &model.scale_invariant,
    )?;
    let mut opt = Sgd::new(
        named.iter().map(|(_, t)| t.shallow_clone()).collect(),
        p.momentum,
    );

    let (lr0, decay, wd) = (p.lr, p.lr_decay, p.weight_decay);
    let schedule = p.schedule;
    let (switch, epochs) = (p.switch_epoch, p.epochs);
    let pad = p.crop_pad;
    let augment = p.augment.then_some(Augment { pad, flip: true });
    let loader = Loader::new(train, p.batch_size, augment, normalize.clone(), dev, seed);
    let mut metrics = JsonLines::open(&ctx.out_dir.join("metrics.jsonl"), resumed.is_some())?;
    let (mut seconds, mut images_per_s) = (Vec::new(), Vec::new());
    let mut last = json!({});
    let mut first_epoch = 0;
    if let Some(st) = &mut resumed {
        st.load_vars("model", &vs)?;
        opt.load_state(st, "opt")?;
        tracker.load_state(st, "norms")?;
        first_epoch = st.get("epochs_done")?;
        (seconds, images_per_s) = (st.get("epoch_seconds")?, st.get("images_per_s")?);
        last = st.get("last")?;
    }

    for epoch in first_epoch..epochs {
        let start = Instant::now();
        let lr = lr_at(lr0, decay, epoch);
        let wd_now = if schedule.active(epoch, switch) {
            wd
        } else {
            0.0
        };
        // Accumulate on the device and read once per epoch: no host sync per step.
        let acc = || Tensor::zeros([], (Kind::Double, dev));
        let (mut loss_sum, mut correct) = (acc(), acc());
        for (x, y) in loader.epoch(epoch) {
            let (logits, loss) = forward_loss(&*model.net, &x, &y, true, prec);
            opt.zero_grad();
            loss.backward();
            tracker.record_grads();
            tch::no_grad(|| {
                loss_sum += loss.to_kind(Kind::Double) * y.size()[0] as f64;
                correct += logits.argmax(-1, false).eq_tensor(&y).sum(Kind::Double);
            });
            opt.step(lr, wd_now);
            tracker.record_step(|k| {
                opt.momentum_buffer(si_index[k])
                    .expect("a momentum buffer exists after a step")
                    * lr
            });
        }
        let (test_loss, test_acc) = evaluate(&*model.net, &test, &normalize, dev, 500, prec);
        let row = EpochRow {
            epoch,
            lr,
            wd_on: wd_now > 0.0,
            train_loss: loss_sum.double_value(&[]) / n_train as f64,
            train_acc: correct.double_value(&[]) / n_train as f64,
            test_loss,
            test_acc,
            norms: tracker.finish_epoch(lr),
        };
        metrics.write(&row)?;
        last = json!({
            "epoch": epoch, "train_loss": row.train_loss, "train_acc": row.train_acc,
            "test_loss": test_loss, "test_acc": test_acc, "weight_norm": row.norms.weight_norm,
        });
        let secs = start.elapsed().as_secs_f64();
        seconds.push(secs);
        images_per_s.push(n_train as f64 / secs);
        if epoch + 1 == switch && switch < epochs {
            save_weights(&vs, &ctx.out_dir.join("switch.safetensors"))?;
        }
        let mut st = State::default();
        st.put_vars("model", &vs);
        opt.save_state(&mut st, "opt");
        tracker.save_state(&mut st, "norms")?;
        st.put("epochs_done", &(epoch + 1))?;
        st.put("epoch_seconds", &seconds)?;
        st.put("images_per_s", &images_per_s)?;
        st.put("last", &last)?;
        ctx.checkpoint(epoch as u64 + 1, st)?;
        (ctx.progress)(
            epoch as u64 + 1,
            epochs as u64,
            &format!("test acc {test_acc:.3}"),
        );
    }
    metrics.finish()?;
    save_weights(&vs, &ctx.out_dir.join("final.safetensors"))?;

    Ok(Outcome::with_metrics([
        ("final", last),
        ("epoch_seconds", json!(seconds)),
        ("images_per_s", json!(images_per_s)),
    ]))
}

/// The logits and mean cross-entropy of one batch under the run's precision: the batch in
/// channels-last format if asked, the forward pass and the loss under bf16 autocast if asked.
/// The guard ends here, so the caller's `backward()` runs outside autocast, as in PyTorch.
pub fn forward_loss(
    net: &dyn ModuleT,
    x: &Tensor,
    y: &Tensor,
    train: bool,
    prec: Precision,
) -> (Tensor, Tensor) {
    let x = if prec.channels_last {
        channels_last(x)
    } else {
        x.shallow_clone()
    };
    let _autocast = autocast_guard(x.device(), prec.autocast);
    let logits = net.forward_t(&x, train);
    let loss = logits.cross_entropy_for_logits(y);
    (logits, loss)
}

/// Save the model's variables as safetensors; channels-last weights are written in the
/// standard (NCHW-contiguous) layout, so files do not depend on the memory format.
pub fn save_weights(vs: &tch::nn::VarStore, path: &std::path::Path) -> Result<()> {
    let named: Vec<(String, Tensor)> = vs
        .variables()
        .into_iter()
        .map(|(n, t)| (n, t.contiguous()))
        .collect();
    Tensor::write_safetensors(&named, path)?;
    Ok(())
}

/// Mean loss and accuracy over a split, in eval mode, under the run's precision.
pub fn evaluate(
    net: &dyn ModuleT,
    set: &ImageSet,
    normalize: &Normalize,
    dev: tch::Device,
    batch: usize,
    prec: Precision,
) -> (f64, f64) {
    tch::no_grad(|| {
        let n = set.labels.size()[0];
        let (mut loss, mut correct) = (0.0, 0.0);
        for (x, y) in Loader::eval(set, batch, normalize, dev) {
            let (logits, batch_loss) = forward_loss(net, &x, &y, false, prec);
            let len = y.size()[0] as f64;
            loss += batch_loss.double_value(&[]) * len;
            correct += logits
                .argmax(-1, false)
                .eq_tensor(&y)
                .sum(Kind::Double)
                .double_value(&[]);
        }
        (loss / n as f64, correct / n as f64)
    })
}
