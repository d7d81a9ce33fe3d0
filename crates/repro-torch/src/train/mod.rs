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

use crate::optim::adam::{Adam, AdamConfig};
use repro_core::data::DatasetView;
use repro_core::pipeline::kinds::{AdamParams, KindName};
use repro_core::pipeline::stage::{Outcome, StageDecl, UpstreamRun};

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

/// A stage kind's implementation, paired with its declaration by type: the declaration in
/// repro-core's `kinds`, the parameter struct declared beside it, and `run`.
pub trait Stage {
    /// The kind's parameters (`kinds::X::XParams`), deserialized once from the resolved map.
    type Params: serde::de::DeserializeOwned;
    /// The kind's declaration.
    const DECL: &'static StageDecl;
    /// Run one stage.
    fn run(ctx: &StageContext, p: &Self::Params) -> anyhow::Result<Outcome>;
}

/// What the worker runs for one kind: its declaration and its typed entry point.
#[derive(Clone, Copy)]
pub struct Implementation {
    pub decl: &'static StageDecl,
    pub run: fn(&StageContext) -> anyhow::Result<Outcome>,
}

/// The implementation of every kind: an exhaustive match, so a kind declared in
/// `repro_core::pipeline::kinds::KindName` without one here does not compile.
pub fn implementation(kind: KindName) -> Implementation {
    fn of<S: Stage>() -> Implementation {
        Implementation {
            decl: S::DECL,
            run: run_typed::<S>,
        }
    }
    match kind {
        KindName::Vision => of::<vision::Vision>(),
        KindName::Sharpness => of::<sharpness::Sharpness>(),
        KindName::Lm => of::<lm::Lm>(),
        KindName::Dqn => of::<rl::Dqn>(),
        KindName::Translate => of::<translate::Translate>(),
    }
}

/// Deserialize the run's parameters into the kind's struct and run it.
fn run_typed<S: Stage>(ctx: &StageContext) -> anyhow::Result<Outcome> {
    use anyhow::Context;
    let p: S::Params = serde_json::from_value(Value::Object(ctx.params.clone()))
        .with_context(|| format!("the parameters of a `{}` run", S::DECL.name))?;
    S::run(ctx, &p)
}

/// Run the implementation of stage kind `kind`.
pub fn run_stage(kind: &str, ctx: &StageContext) -> anyhow::Result<Outcome> {
    let name = KindName::parse(kind)
        .map_err(|e| anyhow::anyhow!("this build has no implementation of stage kind: {e}"))?;
    (implementation(name).run)(ctx)
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

    #[test]
    fn every_kind_has_its_implementation() {
        for kind in KindName::ALL {
            let imp = implementation(kind);
            assert!(std::ptr::eq(imp.decl, kind.decl()), "{}", kind.name());
        }
    }
}
