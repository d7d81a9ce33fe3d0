//! What the stage implementations share: the trainable variables in one order, the Adam-family
//! optimizer from a kind's parameters, loading safetensors into a model, the total weight norm,
//! and the learning-rate and weight-decay schedules.

use std::collections::BTreeMap;

use tch::{Kind, Tensor};

use crate::optim::adam::{Adam, AdamConfig};
use repro_core::pipeline::kinds::AdamParams;

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
pub fn adam_from_params(p: &AdamParams, params: Vec<Tensor>) -> Adam {
    let mut opt = Adam::new(
        params,
        AdamConfig {
            beta1: p.beta1,
            beta2: p.beta2,
            eps: p.eps,
            variant: p.variant.into(),
        },
    );
    opt.track_drown_out_every(p.drown_out_every);
    opt
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

/// When weight decay is applied, by epoch (defined with the kind's declaration).
pub use repro_core::pipeline::kinds::WdSchedule;

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

/// The shape after warm-up (the `lr_schedule` parameter, defined with the kinds' declarations).
pub use repro_core::pipeline::kinds::LrSchedule as ScheduleShape;

impl StepSchedule {
    /// `total` is the number of steps.
    pub fn new(shape: ScheduleShape, lr: f64, warmup: u64, total: u64) -> StepSchedule {
        StepSchedule {
            lr,
            warmup,
            total,
            shape,
        }
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
        let s = StepSchedule::new(ScheduleShape::Constant, 1.0, 4, 100);
        let warm: Vec<f64> = (0..5).map(|t| s.lr(t)).collect();
        assert_eq!(warm, [0.25, 0.5, 0.75, 1.0, 1.0]);
        let s = StepSchedule::new(ScheduleShape::Cosine, 2.0, 0, 10);
        close(s.lr(0), 2.0);
        close(s.lr(5), 1.0);
        close(s.lr(10), 0.0);
        // fairseq: continuous at the end of warm-up, then α·√W/√step.
        let s = StepSchedule::new(ScheduleShape::InverseSqrt, 1.0, 4, 100);
        close(s.lr(3), 1.0);
        close(s.lr(15), 0.5);
        let err = ScheduleShape::parse("linear").unwrap_err();
        assert!(err.to_string().contains("constant, cosine, inverse_sqrt"));
    }
}
