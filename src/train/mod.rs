//! Training: the stage implementations (run inside the worker process), the context they run
//! in, and the learning-rate and weight-decay schedules they share: `vision` (with the norm
//! statistics of `norms`) and `sharpness` now; language modelling and RL plug in beside them.

pub mod norms;
pub mod sharpness;
pub mod vision;

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde_json::{Map, Value};

use crate::pipeline::stage::{DatasetView, Outcome, UpstreamRun};

/// Everything a stage may read while it runs.
pub struct StageContext<'a> {
    pub run_id: &'a str,
    pub params: &'a Map<String, Value>,
    pub datasets: &'a BTreeMap<String, DatasetView>,
    pub upstream: &'a [UpstreamRun],
    /// Empty folder for the outputs; every file left here becomes an output.
    pub out_dir: PathBuf,
    pub device: tch::Device,
    /// Reports progress (units done of a total) to the executor's progress bar.
    pub progress: &'a dyn Fn(u64, u64, &str),
}

/// Run the implementation of stage kind `kind`.
pub fn run_stage(kind: &str, ctx: &StageContext) -> anyhow::Result<Outcome> {
    match kind {
        "vision" => vision::run(ctx),
        "sharpness" => sharpness::run(ctx),
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
}
