//! The one run a target names, for `show` and `checkout`: its plan node (any spelling the plan's
//! target matching accepts), its state as `plan` computes it, and its record when finished.

use anyhow::Result;

use super::ctx::{Ctx, Failure, threads_for};
use repro_core::pipeline::executor::RunState;
use repro_core::pipeline::plan::{Plan, RunNode};
use repro_core::runtime::DeviceChoice;
use repro_core::store::record::RunRecord;

pub(super) struct OneRun {
    /// The target's plan: the run and everything upstream of it.
    pub plan: Plan,
    /// Every run of `plan` with its state, in plan order.
    pub states: Vec<(String, RunState)>,
    index: usize,
    /// The record, when the run is cached (record present, outputs intact).
    pub record: Option<RunRecord>,
}

impl OneRun {
    pub fn node(&self) -> &RunNode {
        &self.plan.runs[self.index]
    }
    pub fn state(&self) -> &RunState {
        &self.states[self.index].1
    }
    pub fn state_of(&self, id: &str) -> Option<&RunState> {
        self.states.iter().find(|(i, _)| i == id).map(|(_, s)| s)
    }
}

/// The run `target` names in `profile`; an experiment of several runs or a dataset is a usage
/// error that says what to name instead.
pub(super) fn one_run(
    ctx: &Ctx,
    profile: &str,
    device: DeviceChoice,
    target: &str,
) -> Result<OneRun> {
    let plan = ctx.plan(profile, &[target.to_string()])?;
    let Some(index) = plan
        .find(target)
        .and_then(|r| plan.runs.iter().position(|p| p.id == r.id))
    else {
        let own: Vec<&str> = plan
            .runs
            .iter()
            .filter(|r| r.experiment == target)
            .map(|r| r.id.as_str())
            .collect();
        let msg = match own.first() {
            Some(first) => format!(
                "`{target}` is an experiment of {} runs in profile `{profile}`; name one run, \
                 e.g. `{first}` (`repro plan --profile {profile} {target}` lists them)",
                own.len()
            ),
            None => format!("`{target}` is a dataset; name a run (`experiment/axis=value,…`)"),
        };
        return Err(Failure::Usage(msg).into());
    };
    let device = ctx.device(device)?;
    let states = ctx.exec().states(&plan, &device, threads_for(&plan))?;
    let record = match &states[index].1 {
        RunState::Cached { key } | RunState::Pulled { key, .. } => ctx.store.read_record(key)?,
        RunState::WillRun { .. } => None,
    };
    Ok(OneRun {
        plan,
        states,
        index,
        record,
    })
}
