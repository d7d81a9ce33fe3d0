//! Training: the stage implementations (run inside the worker process), the context they run
//! in, and the learning-rate and weight-decay schedules they share: `vision` (with the norm
//! statistics of `norms`), `sharpness`, `lm` (language modelling with the Adam family), `rl`
//! (DQN on MinAtar and Atari with the Adam family) and `translate` (IWSLT'14 De→En with the
//! Adam family).

pub mod checkpoint;
pub mod epochs;
pub mod lm;
pub mod norms;
pub mod rl;
pub mod sharpness;
pub mod translate;
pub mod vision;

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde_json::{Map, Value};
use tch::{Kind, Tensor};

use crate::optim::adam::{Adam, AdamConfig, Variant};
use repro_core::data::DatasetView;
use repro_core::pipeline::params::Params;
use repro_core::pipeline::stage::{Outcome, UpstreamRun};

/// Everything a stage may read while it runs.
pub struct StageContext<'a> {
    pub run_id: &'a str,
    pub params: &'a Map<String, Value>,
    pub datasets: &'a BTreeMap<String, DatasetView>,
    pub upstream: &'a [UpstreamRun],
    /// Empty folder for the outputs; every file left here becomes an output.
    pub out_dir: PathBuf,
    pub device: tch::Device,
    /// The profile's precision options this kind applies (see [`repro_core::runtime::Precision`]).
    pub precision: repro_core::runtime::Precision,
    /// Reports progress (units done of a total) to the executor's progress bar.
    pub progress: &'a dyn Fn(u64, u64, &str),
    /// Where the run's checkpoints go (see [`checkpoint`]); `None`: the stage does not save any.
    pub checkpoints: Option<repro_core::store::work::Checkpoints>,
}

/// Run the implementation of stage kind `kind`.
pub fn run_stage(kind: &str, ctx: &StageContext) -> anyhow::Result<Outcome> {
    match kind {
        "vision" => vision::run(ctx),
        "sharpness" => sharpness::run(ctx),
        "lm" => lm::run(ctx),
        "dqn" => rl::run(ctx),
        "translate" => translate::run(ctx),
        _ => anyhow::bail!("this build has no implementation of stage kind `{kind}`"),
    }
}

/// The trainable variables of `vs` by name, sorted: one fixed order for optimizer state, norm
/// statistics and the sharpness metrics.
pub fn trainable_by_name(vs: &tch::nn::VarStore) -> Vec<(String, tch::Tensor)> {
    let mut named: Vec<(String, tch::Tensor)> = vs
        .variables()
        .into_iter()
        .filter(|(_, t)| t.requires_grad())
        .collect();
    named.sort_by(|a, b| a.0.cmp(&b.0));
    named
}

/// The Adam-family optimizer a stage's parameters name (`variant`, `beta1`, `beta2`, `eps`,
/// `drown_out_every`) over `params`.
pub fn adam_from_params(p: &Params, params: Vec<Tensor>) -> anyhow::Result<Adam> {
    use anyhow::Context;
    let variant = Variant::parse(p.str("variant")?)
        .with_context(|| format!("unknown Adam variant {:?}", p.str("variant")))?;
    let mut opt = Adam::new(
        params,
        AdamConfig {
            beta1: p.float("beta1")?,
            beta2: p.float("beta2")?,
            eps: p.float("eps")?,
            variant,
        },
    );
    opt.track_drown_out_every(p.int("drown_out_every")? as u64);
    Ok(opt)
}

/// Load every variable of `vs` from a safetensors file (store objects have no extension, so
/// `VarStore::load`, which picks the format by extension, cannot read them). A missing name or
/// a shape mismatch is an error naming it.
pub fn load_safetensors(vs: &tch::nn::VarStore, path: &std::path::Path) -> anyhow::Result<()> {
    use anyhow::Context;
    let saved: BTreeMap<String, tch::Tensor> = tch::Tensor::read_safetensors(path)
        .with_context(|| format!("reading {}", path.display()))?
        .into_iter()
        .collect();
    for (name, mut var) in vs.variables() {
        let src = saved
            .get(&name)
            .with_context(|| format!("{} has no tensor `{name}`", path.display()))?;
        anyhow::ensure!(
            src.size() == var.size(),
            "{}: `{name}` has shape {:?}, the model expects {:?}",
            path.display(),
            src.size(),
            var.size()
        );
        tch::no_grad(|| var.copy_(src));
    }
    Ok(())
}

/// ‖w‖₂ over all parameters.
pub fn total_norm(params: &[Tensor]) -> f64 {
    tch::no_grad(|| {
        let sq: Vec<Tensor> = params
            .iter()
            .map(|p| p.to_kind(Kind::Double).square().sum(Kind::Double))
            .collect();
        Tensor::stack(&sq, 0)
            .sum(Kind::Double)
            .sqrt()
            .double_value(&[])
    })
}

/// When weight decay is applied, by epoch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WdSchedule {
    None,
    Always,
    /// On for epochs `< switch_epoch`.
    Early,
    /// On from `switch_epoch`.
    Late,
}

impl WdSchedule {
    pub fn parse(s: &str) -> anyhow::Result<WdSchedule> {
        Ok(match s {
            "none" => WdSchedule::None,
            "always" => WdSchedule::Always,
            "early" => WdSchedule::Early,
            "late" => WdSchedule::Late,
            _ => anyhow::bail!("unknown schedule {s:?}: expected none, always, early or late"),
        })
    }

    pub fn active(self, epoch: usize, switch_epoch: usize) -> bool {
        match self {
            WdSchedule::None => false,
            WdSchedule::Always => true,
            WdSchedule::Early => epoch < switch_epoch,
            WdSchedule::Late => epoch >= switch_epoch,
        }
    }
}

/// Exponential learning-rate decay per epoch: lr₀ · rate^epoch.
pub fn lr_at(lr0: f64, rate: f64, epoch: usize) -> f64 {
    lr0 * rate.powi(epoch as i32)
}

/// A per-step learning rate: linear warm-up over `warmup` steps (step s < warmup gets
/// α·(s+1)/warmup), then constant, cosine to 0 at the last step, or fairseq's inverse square root
/// (α·√warmup/√(s+1), steps counted from 1; warm-up 0 counts as 1).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct StepSchedule {
    pub lr: f64,
    pub warmup: u64,
    pub total: u64,
    pub shape: ScheduleShape,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ScheduleShape {
    Constant,
    Cosine,
    InverseSqrt,
}

impl StepSchedule {
    /// `shape` is one of constant, cosine, inverse_sqrt; `total` is the number of steps.
    pub fn parse(shape: &str, lr: f64, warmup: u64, total: u64) -> anyhow::Result<StepSchedule> {
        let shape = match shape {
            "constant" => ScheduleShape::Constant,
            "cosine" => ScheduleShape::Cosine,
            "inverse_sqrt" => ScheduleShape::InverseSqrt,
            _ => anyhow::bail!(
                "unknown lr_schedule {shape:?}: expected constant, cosine or inverse_sqrt"
            ),
        };
        Ok(StepSchedule {
            lr,
            warmup,
            total,
            shape,
        })
    }

    /// The learning rate of step `step` (0-based).
    pub fn lr(&self, step: u64) -> f64 {
        if step < self.warmup {
            return self.lr * (step + 1) as f64 / self.warmup as f64;
        }
        match self.shape {
            ScheduleShape::Constant => self.lr,
            ScheduleShape::Cosine => {
                let span = self.total.saturating_sub(self.warmup).max(1) as f64;
                let t = ((step - self.warmup) as f64 / span).min(1.0);
                self.lr * 0.5 * (1.0 + (std::f64::consts::PI * t).cos())
            }
            ScheduleShape::InverseSqrt => {
                self.lr * (self.warmup.max(1) as f64).sqrt() / ((step + 1) as f64).sqrt()
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schedules_switch_at_ts() {
        let on: Vec<bool> = (0..4).map(|e| WdSchedule::Early.active(e, 2)).collect();
        assert_eq!(on, [true, true, false, false]);
        let on: Vec<bool> = (0..4).map(|e| WdSchedule::Late.active(e, 2)).collect();
        assert_eq!(on, [false, false, true, true]);
        assert!(!WdSchedule::None.active(0, 2) && WdSchedule::Always.active(9, 2));
        assert!((lr_at(0.1, 0.97, 2) - 0.1 * 0.97 * 0.97).abs() < 1e-15);
    }

    #[test]
    fn step_schedules() {
        let close = |a: f64, b: f64| assert!((a - b).abs() < 1e-15, "{a} vs {b}");
        let s = StepSchedule::parse("constant", 1.0, 4, 100).unwrap();
        let warm: Vec<f64> = (0..5).map(|t| s.lr(t)).collect();
        assert_eq!(warm, [0.25, 0.5, 0.75, 1.0, 1.0]);
        let s = StepSchedule::parse("cosine", 2.0, 0, 10).unwrap();
        close(s.lr(0), 2.0);
        close(s.lr(5), 1.0);
        close(s.lr(10), 0.0);
        // fairseq: continuous at the end of warm-up, then α·√W/√step.
        let s = StepSchedule::parse("inverse_sqrt", 1.0, 4, 100).unwrap();
        close(s.lr(3), 1.0);
        close(s.lr(15), 0.5);
        let err = StepSchedule::parse("linear", 1.0, 0, 1).unwrap_err();
        assert!(err.to_string().contains("constant, cosine or inverse_sqrt"));
    }
}
