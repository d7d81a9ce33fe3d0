//! The `vision` stage kind (docs/paper.md#e1, E2, E4): an image classifier trained with SGD under a
//! weight-decay schedule. Outputs: `metrics.jsonl` (one row per epoch: losses, accuracies, the
//! norm statistics of [`super::norms`]), and the weights as safetensors at initialisation, at the
//! switch epoch Tₛ and at the end. Timings go to the run record, so outputs stay bitwise stable.

use std::time::Instant;

use anyhow::{Result, bail};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use tch::nn::ModuleT;
use tch::{Kind, Tensor};

use super::common::{lr_at, trainable_by_name};
use super::norms::{EpochNorms, NormTracker};
use super::progress::{Plan, Ticker};
use super::stage::{Stage, StageContext};
use crate::checkpoint::{COUNTERS, State};
use crate::data::images;
use crate::data::loader::{Augment, ImageSet, Loader, Normalize, with_label_noise};
use crate::libtorch::{autocast_guard, channels_last, vars_to_channels_last};
use crate::nn::{Model, build};
use crate::optim::sgd::Sgd;
use repro_core::data::DatasetView;
use repro_core::metrics::JsonLines;
use repro_core::pipeline::kinds::{VISION, VisionParams};
use repro_core::pipeline::progress::{Samples, Unit};
use repro_core::pipeline::stage::{Outcome, StageDecl};
use repro_core::runtime::Precision;

/// The counters a checkpoint carries, saved and restored as one value.
#[derive(Serialize, Deserialize, Default)]
struct Counters {
    epochs_done: usize,
    epoch_seconds: Vec<f64>,
    images_per_s: Vec<f64>,
    /// The last epoch's summary (the outcome's `final`).
    last: Value,
}

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
    /// Train one run: the setup, then per epoch the training pass, its row, the weights at Tₛ and
    /// the checkpoint.
    fn run(ctx: &StageContext, p: &VisionParams) -> Result<Outcome> {
        let (mut t, mut resumed) = Trainer::new(ctx, p)?;
        let mut metrics = JsonLines::open(&ctx.out_dir.join("metrics.jsonl"), resumed.is_some())?;
        let mut c = match &mut resumed {
            Some(st) => t.restore(st)?,
            None => Counters {
                last: json!({}),
                ..Counters::default()
            },
        };
        let per_epoch = t.loader.batches_per_epoch() as u64;
        let plan = Plan::even(Unit::Epoch, p.epochs as u64, per_epoch, Samples::Images);
        let mut ticks = Ticker::new(ctx.progress, plan, c.epochs_done as u64);
        for epoch in c.epochs_done..p.epochs {
            let start = Instant::now();
            let row = t.epoch(epoch, ctx.precision, &mut ticks);
            metrics.write(&row)?;
            c.last = json!({
                "epoch": epoch, "train_loss": row.train_loss, "train_acc": row.train_acc,
                "test_loss": row.test_loss, "test_acc": row.test_acc,
                "weight_norm": row.norms.weight_norm,
            });
            let secs = start.elapsed().as_secs_f64();
            c.epoch_seconds.push(secs);
            c.images_per_s.push(t.n_train as f64 / secs);
            c.epochs_done = epoch + 1;
            if epoch + 1 == p.switch_epoch && p.switch_epoch < p.epochs {
                save_weights(&t.vs, &ctx.out_dir.join("switch.safetensors"))?;
            }
            t.checkpoint(ctx, &c)?;
            ticks.unit_end(epoch, &format!("test acc {:.3}", row.test_acc));
        }
        metrics.finish()?;
        save_weights(&t.vs, &ctx.out_dir.join("final.safetensors"))?;
        Ok(Outcome::with_metrics([
            ("final", c.last),
            ("epoch_seconds", json!(c.epoch_seconds)),
            ("images_per_s", json!(c.images_per_s)),
        ]))
    }
}

/// A run's network, optimizer, norm statistics and data between epochs.
struct Trainer<'p> {
    p: &'p VisionParams,
    vs: tch::nn::VarStore,
    model: Model,
    opt: Sgd,
    tracker: NormTracker,
    /// Index into the optimizer's parameters of each scale-invariant weight.
    si_index: Vec<usize>,
    loader: Loader,
    test: ImageSet,
    normalize: Normalize,
    n_train: usize,
}

impl<'p> Trainer<'p> {
    /// Data, model (its initial weights saved on a fresh start), optimizer and norm tracker,
    /// with the checkpoint to resume from if there is one (libtorch's generators restored after
    /// the model's initialisation drew from them).
    fn new(ctx: &StageContext, p: &'p VisionParams) -> Result<(Trainer<'p>, Option<State>)> {
        tch::manual_seed(p.seed as i64);
        let dev = ctx.device;
        let (train, test) = images::load(single_dataset(ctx)?)?;
        let train = training_set(train, p)?;
        let n_train = train.labels.size()[0] as usize;
        let normalize = Normalize::fit(&train);
        let vs = tch::nn::VarStore::new(dev);
        let model = build(p.model, &vs.root(), train.classes, p.width);
        if ctx.precision.channels_last {
            vars_to_channels_last(&vs);
        }
        let resumed = ctx.resume()?;
        if resumed.is_none() {
            save_weights(&vs, &ctx.out_dir.join("init.safetensors"))?;
        }
        let named = trainable_by_name(&vs);
        let si_index: Vec<usize> = model
            .scale_invariant
            .iter()
            .filter_map(|n| named.iter().position(|(m, _)| m == n))
            .collect();
        let tracker = NormTracker::new(
            named
                .iter()
                .map(|(n, t)| (n.clone(), t.shallow_clone()))
                .collect(),
            &model.scale_invariant,
        )?;
        let opt = Sgd::new(
            named.iter().map(|(_, t)| t.shallow_clone()).collect(),
            p.momentum,
        );
        let augment = p.augment.then_some(Augment {
            pad: p.crop_pad,
            flip: true,
        });
        let loader = Loader::new(train, p.batch_size, augment, normalize.clone(), dev, p.seed);
        let t = Trainer {
            p,
            vs,
            model,
            opt,
            tracker,
            si_index,
            loader,
            test,
            normalize,
            n_train,
        };
        Ok((t, resumed))
    }

    /// Restore the model, optimizer and norm sums from a checkpoint; returns its counters.
    fn restore(&mut self, st: &mut State) -> Result<Counters> {
        st.load_vars("model", &self.vs)?;
        self.opt.load_state(st, "opt")?;
        self.tracker.load_state(st, "norms")?;
        st.get(COUNTERS)
    }

    /// Save the checkpoint after an epoch, with the counters `c`.
    fn checkpoint(&self, ctx: &StageContext, c: &Counters) -> Result<()> {
        let mut st = State::default();
        st.put_vars("model", &self.vs);
        self.opt.save_state(&mut st, "opt");
        self.tracker.save_state(&mut st, "norms")?;
        st.put(COUNTERS, c)?;
        ctx.checkpoint(c.epochs_done as u64, st)
    }

    /// One epoch of SGD at the epoch's lr and λ (λ while the schedule has weight decay on),
    /// then the test set; losses and accuracies accumulate on the device and are read once (a
    /// batch's loss also when a progress tick is due).
    fn epoch(&mut self, epoch: usize, prec: Precision, ticks: &mut Ticker) -> EpochRow {
        let p = self.p;
        let lr = lr_at(p.lr, p.lr_decay, epoch);
        let wd_now = if p.schedule.active(epoch, p.switch_epoch) {
            p.weight_decay
        } else {
            0.0
        };
        let dev = self.vs.device();
        let acc = || Tensor::zeros([], (Kind::Double, dev));
        let (mut loss_sum, mut correct) = (acc(), acc());
        for (i, (x, y)) in self.loader.epoch(epoch).enumerate() {
            let (logits, loss) = forward_loss(&*self.model.net, &x, &y, true, prec);
            self.opt.zero_grad();
            loss.backward();
            self.tracker.record_grads();
            tch::no_grad(|| {
                loss_sum += loss.to_kind(Kind::Double) * y.size()[0] as f64;
                correct += logits.argmax(-1, false).eq_tensor(&y).sum(Kind::Double);
            });
            self.opt.step(lr, wd_now);
            let (opt, si_index) = (&self.opt, &self.si_index);
            self.tracker.record_step(|k| {
                opt.momentum_buffer(si_index[k])
                    .expect("a momentum buffer exists after a step")
                    * lr
            });
            let n = y.size()[0] as u64;
            ticks.part(epoch, i as u64 + 1, n, || loss.double_value(&[]));
        }
        let net = &*self.model.net;
        let (test_loss, test_acc) = evaluate(net, &self.test, &self.normalize, dev, 500, prec);
        EpochRow {
            epoch,
            lr,
            wd_on: wd_now > 0.0,
            train_loss: loss_sum.double_value(&[]) / self.n_train as f64,
            train_acc: correct.double_value(&[]) / self.n_train as f64,
            test_loss,
            test_acc,
            norms: self.tracker.finish_epoch(lr),
        }
    }
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
