//! What the epoch-based Adam trainers (`lm`, `translate`) share around their own batches and
//! losses: the `metrics.jsonl` and `drown_out.jsonl` logs, the counters a checkpoint carries
//! (update step, current lr, epoch timings and throughput, the last summary row), sampling the
//! E8 diagnostic every `drown_out_every` updates, and the end-of-epoch checkpoint.

use std::path::Path;

use anyhow::Result;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use tch::nn::VarStore;

use super::stage::StageContext;
use crate::checkpoint::{COUNTERS, State};
use crate::optim::adam::Adam;
use crate::optim::drown_out::{DrownOut, DrownOutMean};
use repro_core::metrics::JsonLines;

/// Layer groups of the drown-out diagnostic; each trainer maps its variable names onto them.
pub const GROUPS: [&str; 4] = ["embeddings", "attention", "feedforward", "layernorm"];

#[derive(Serialize)]
struct DrownOutSample<'a> {
    step: u64,
    epoch: usize,
    group: &'a str,
    #[serde(flatten)]
    values: DrownOut,
}

/// The counters a checkpoint carries, saved and restored as one value.
#[derive(Serialize, Deserialize)]
pub struct Counters {
    epochs_done: usize,
    step: u64,
    lr: f64,
    last: Value,
    epoch_seconds: Vec<f64>,
    tokens_per_s: Vec<f64>,
}

/// A run's logs and the state that survives its checkpoints.
pub struct EpochLog {
    pub metrics: JsonLines,
    samples: Option<JsonLines>,
    every: u64,
    /// The epoch to start at (0, or the one after the checkpoint resumed from).
    pub first_epoch: usize,
    /// Updates taken so far, and the lr of the last one.
    pub step: u64,
    pub lr: f64,
    pub seconds: Vec<f64>,
    pub tokens_per_s: Vec<f64>,
    pub last: Value,
    pub diverged_epoch: Option<usize>,
}

impl EpochLog {
    /// Opens the logs (appending after a resume) and, when `resumed`, restores the model, the
    /// optimizer and the counters from it. `every` = 0 turns the drown-out samples off.
    pub fn open(
        ctx: &StageContext,
        every: u64,
        first_lr: f64,
        resumed: Option<&mut State>,
        vs: &VarStore,
        opt: &mut Adam,
    ) -> Result<EpochLog> {
        let mut log = EpochLog::create(&ctx.out_dir, every, first_lr, resumed.is_some())?;
        if let Some(st) = resumed {
            st.load_vars("model", vs)?;
            opt.load_state(st, "opt")?;
            log.restore(st.get(COUNTERS)?);
        }
        Ok(log)
    }

    /// The logs in `dir` (appended to when `resuming`) and the counters at their start.
    pub fn create(dir: &Path, every: u64, first_lr: f64, resuming: bool) -> Result<EpochLog> {
        let samples = if every > 0 {
            Some(JsonLines::open(&dir.join("drown_out.jsonl"), resuming)?)
        } else {
            None
        };
        Ok(EpochLog {
            metrics: JsonLines::open(&dir.join("metrics.jsonl"), resuming)?,
            samples,
            every,
            first_epoch: 0,
            step: 0,
            lr: first_lr,
            seconds: Vec::new(),
            tokens_per_s: Vec::new(),
            last: json!({}),
            diverged_epoch: None,
        })
    }

    /// The counters a checkpoint after `epoch` carries.
    pub fn counters(&self, epoch: usize) -> Counters {
        Counters {
            epochs_done: epoch + 1,
            step: self.step,
            lr: self.lr,
            last: self.last.clone(),
            epoch_seconds: self.seconds.clone(),
            tokens_per_s: self.tokens_per_s.clone(),
        }
    }

    /// The counters from a checkpoint: training goes on at the epoch after it.
    pub fn restore(&mut self, c: Counters) {
        (self.first_epoch, self.step, self.lr, self.last) = (c.epochs_done, c.step, c.lr, c.last);
        (self.seconds, self.tokens_per_s) = (c.epoch_seconds, c.tokens_per_s);
    }

    /// After an update: when the diagnostic is on and the step is a multiple of `every`, one
    /// sample over all parameters (also added to the epoch's `mean`) and one per layer group
    /// (`group[i]`: the [`GROUPS`] index of parameter i).
    pub fn sample_drown_out(
        &mut self,
        opt: &Adam,
        epoch: usize,
        group: &[usize],
        mean: &mut DrownOutMean,
    ) -> Result<()> {
        if !self.sample_due() {
            return Ok(());
        }
        let by_group = opt.drown_out_by_group(group, GROUPS.len());
        self.write_sample(epoch, opt.drown_out(), &by_group, mean)
    }

    /// Whether the diagnostic is on and the step just taken is one it samples.
    pub fn sample_due(&self) -> bool {
        self.samples.is_some() && self.step.is_multiple_of(self.every)
    }

    /// One sampled step's rows: `all` (also added to the epoch's `mean`), then each layer
    /// group's (`by_group[g]` for [`GROUPS`]`[g]`), absent ones skipped.
    pub fn write_sample(
        &mut self,
        epoch: usize,
        all: Option<DrownOut>,
        by_group: &[Option<DrownOut>],
        mean: &mut DrownOutMean,
    ) -> Result<()> {
        let step = self.step;
        let Some(out) = self.samples.as_mut() else {
            return Ok(());
        };
        if let Some(all) = all {
            mean.add(all);
            out.write(&DrownOutSample {
                step,
                epoch,
                group: "all",
                values: all,
            })?;
        }
        for (g, d) in by_group.iter().enumerate() {
            if let Some(d) = d {
                out.write(&DrownOutSample {
                    step,
                    epoch,
                    group: GROUPS[g],
                    values: *d,
                })?;
            }
        }
        Ok(())
    }

    /// The checkpoint after `epoch` (not after a divergence: a resumed run then replays the
    /// diverged epoch and stops).
    pub fn checkpoint(
        &self,
        ctx: &StageContext,
        epoch: usize,
        vs: &VarStore,
        opt: &Adam,
    ) -> Result<()> {
        let mut st = State::default();
        st.put_vars("model", vs);
        opt.save_state(&mut st, "opt")?;
        st.put(COUNTERS, &self.counters(epoch))?;
        ctx.checkpoint(epoch as u64 + 1, st)
    }

    /// Closes the logs; returns the outcome metrics every such stage reports.
    pub fn finish(self) -> Result<[(&'static str, Value); 4]> {
        self.metrics.finish()?;
        if let Some(s) = self.samples {
            s.finish()?;
        }
        Ok([
            ("final", self.last),
            ("epoch_seconds", json!(self.seconds)),
            ("tokens_per_s", json!(self.tokens_per_s)),
            ("diverged_epoch", json!(self.diverged_epoch)),
        ])
    }
}
