//! A stacked optimizer's checkpoint: per parameter its moments and step count, the frozen set
//! and the members' variants (checked on load), and the E8 shadows while tracked.

use anyhow::Context as _;
use serde::{Deserialize, Serialize};

use super::{Moments, StackedAdam};
use crate::checkpoint::State;
use crate::optim::adam::Variant;

/// What [`StackedAdam::save_state`] saves besides tensors.
#[derive(Serialize, Deserialize)]
struct Counters {
    members: usize,
    /// Per parameter: its step count, `None` before its first step.
    steps: Vec<Option<u64>>,
    frozen: Vec<bool>,
    /// Per member: (l2_in_m, l2_in_v, decay mode), checked on load.
    variants: Vec<(bool, bool, String)>,
}

fn variant_key(v: &Variant) -> (bool, bool, String) {
    (v.l2_in_m, v.l2_in_v, format!("{:?}", v.decay))
}

impl StackedAdam {
    /// Save the moments, step counts, the frozen set and the variants into a checkpoint under
    /// `prefix`.
    pub fn save_state(&self, st: &mut State, prefix: &str) -> anyhow::Result<()> {
        let counters = Counters {
            members: self.members,
            steps: self
                .state
                .iter()
                .map(|s| s.as_ref().map(|s| s.step))
                .collect(),
            frozen: self.frozen.clone(),
            variants: self.variants.iter().map(variant_key).collect(),
        };
        st.put(&format!("{prefix}.counters"), &counters)?;
        for (i, s) in self.state.iter().enumerate() {
            if let Some(s) = s {
                st.put_tensor(format!("{prefix}.m.{i}"), &s.m);
                st.put_tensor(format!("{prefix}.v.{i}"), &s.v);
            }
        }
        if let Some(t) = &self.drown {
            t.save(st, prefix)?;
        }
        Ok(())
    }

    /// Restore what [`StackedAdam::save_state`] saved into an optimizer built like the saved one
    /// (same stacked parameters, members and variants). Takes the tensors out of `st`, as
    /// [`super::adam::Adam::load_state`] does.
    pub fn load_state(&mut self, st: &mut State, prefix: &str) -> anyhow::Result<()> {
        let c: Counters = st
            .get(&format!("{prefix}.counters"))
            .context("the checkpoint has no stacked optimizer state")?;
        anyhow::ensure!(
            c.members == self.members,
            "the checkpoint's optimizer has {} members, this one {}",
            c.members,
            self.members
        );
        anyhow::ensure!(
            c.steps.len() == self.params.len(),
            "the checkpoint's optimizer has {} parameters, this one {}",
            c.steps.len(),
            self.params.len()
        );
        let ours: Vec<_> = self.variants.iter().map(variant_key).collect();
        anyhow::ensure!(
            c.variants == ours,
            "the checkpoint's members have the variants {:?}, this optimizer's {:?}",
            c.variants,
            ours
        );
        anyhow::ensure!(
            c.frozen.len() == self.members,
            "the checkpoint's frozen set has {} members, this optimizer {}",
            c.frozen.len(),
            self.members
        );
        let mut state = Vec::with_capacity(self.params.len());
        for (i, step) in c.steps.into_iter().enumerate() {
            let p = &self.params[i];
            state.push(match step {
                Some(step) => {
                    let m = st.tensor(&format!("{prefix}.m.{i}"), p.device())?;
                    let v = st.tensor(&format!("{prefix}.v.{i}"), p.device())?;
                    for (name, t) in [("m", &m), ("v", &v)] {
                        anyhow::ensure!(
                            t.size() == p.size() && t.kind() == p.kind(),
                            "the checkpoint's {name} of parameter {i} is {:?} {:?}, \
                             the parameter {:?} {:?}",
                            t.kind(),
                            t.size(),
                            p.kind(),
                            p.size()
                        );
                    }
                    Some(Moments { step, m, v })
                }
                None => None,
            });
        }
        self.state = state;
        self.frozen = c.frozen;
        self.rebuild_frozen();
        if let Some(t) = self.drown.as_mut() {
            t.load(st, prefix, self.device)?;
        }
        Ok(())
    }
}
