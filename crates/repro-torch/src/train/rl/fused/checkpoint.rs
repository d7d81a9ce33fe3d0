//! A fused group's checkpoint: every member's counters and random-stream positions, its actions
//! (replayed to rebuild its environment and memory), and the stacked networks and optimizer.

use anyhow::{Result, ensure};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use tch::Tensor;

use super::Group;
use crate::checkpoint::{COUNTERS, State};
use crate::train::rl::env_step;
use crate::train::stage::StageContext;

/// What a member's checkpoint holds besides its actions.
#[derive(Serialize, Deserialize)]
pub(super) struct MemberCounters {
    step: u64,
    updates: u64,
    explore_word_pos: String,
    sampler_word_pos: String,
    diverged_iteration: Option<usize>,
    last: Value,
}

/// The group's counters in a checkpoint.
#[derive(Serialize, Deserialize)]
pub(super) struct GroupCounters {
    iterations_done: usize,
    seconds: (f64, f64, f64),
    members: Vec<MemberCounters>,
}

impl Group<'_> {
    /// Networks, optimizer, counters and streams from the group's checkpoint, each member's
    /// environment and memory rebuilt by replaying its actions; the iteration to start at.
    pub(super) fn restore(&mut self, st: &mut State) -> Result<usize> {
        st.load_vars("online", &self.vs)?;
        st.load_vars("target", &self.target_vs)?;
        self.opt.load_state(st, "opt")?;
        let c: GroupCounters = st.get(COUNTERS)?;
        ensure!(
            c.members.len() == self.members.len(),
            "the checkpoint is of a group of {} runs, this one has {}",
            c.members.len(),
            self.members.len()
        );
        self.seconds = c.seconds;
        for (i, (m, mc)) in self.members.iter_mut().zip(c.members).enumerate() {
            (m.step, m.updates) = (mc.step, mc.updates);
            m.explore.set_word_pos(mc.explore_word_pos.parse()?);
            m.sampler.set_word_pos(mc.sampler_word_pos.parse()?);
            (m.diverged_iteration, m.last) = (mc.diverged_iteration, mc.last);
            m.stopped = m.diverged_iteration.is_some();
            let taken = st.tensor(&format!("actions.{i}"), tch::Device::Cpu)?;
            m.actions_taken = Vec::<u8>::try_from(&taken)?;
            ensure!(
                m.actions_taken.len() as u64 == m.step,
                "the checkpoint holds {} actions for {} steps of member {i}",
                m.actions_taken.len(),
                m.step
            );
            for &a in &m.actions_taken {
                env_step(&mut m.actor, &mut m.memory, a as usize);
            }
        }
        Ok(c.iterations_done)
    }

    /// The group's checkpoint after `iteration`.
    pub(super) fn checkpoint(&self, ctx: &StageContext, iteration: usize) -> Result<()> {
        let mut st = State::default();
        st.put_vars("online", &self.vs);
        st.put_vars("target", &self.target_vs);
        self.opt.save_state(&mut st, "opt")?;
        let mut members = Vec::new();
        for (i, m) in self.members.iter().enumerate() {
            st.put_tensor(
                format!("actions.{i}"),
                &Tensor::from_slice(&m.actions_taken),
            );
            members.push(MemberCounters {
                step: m.step,
                updates: m.updates,
                explore_word_pos: m.explore.get_word_pos().to_string(),
                sampler_word_pos: m.sampler.get_word_pos().to_string(),
                diverged_iteration: m.diverged_iteration,
                last: m.last.clone(),
            });
        }
        let c = GroupCounters {
            iterations_done: iteration + 1,
            seconds: self.seconds,
            members,
        };
        st.put(COUNTERS, &c)?;
        ctx.checkpoint(iteration as u64 + 1, st)
    }
}
