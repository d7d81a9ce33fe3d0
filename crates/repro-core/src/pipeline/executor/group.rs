//! One fused group ([`crate::pipeline::fuse`]), start to end: key every member as a solo run
//! is keyed (its key records the group's size and its position), take the members from the
//! store when every one is there (or pulled), or else train the group in one worker through
//! the store's `memoize_group` and write a record per member. Every member stays a run: its
//! own key, record, outputs, ref and events.

use std::collections::BTreeMap;

use anyhow::{Context, Result};

use super::attempt::{Cache, Runs, computed};
use super::events::{At, RunEvent};
use super::keys;
use crate::pipeline::placement::Placement;
use crate::pipeline::progress::Progress;
use crate::pipeline::stage::Member;
use crate::runtime;
use crate::store::memo::Job;
use crate::store::record::RunRecord;

impl Runs<'_> {
    /// The members `unit` (plan indices, in position order) of one group: `Ok` with each
    /// member's `(record, ran)`; an error fails every member.
    pub fn process_group(
        &self,
        unit: &[usize],
        upstream: &BTreeMap<String, RunRecord>,
        slot: &Placement,
    ) -> Result<Vec<(RunRecord, bool)>> {
        let runs: Vec<_> = unit.iter().map(|&i| &self.plan.runs[i]).collect();
        let at = |k: usize| At {
            n: unit[k] + 1,
            total: self.plan.runs.len(),
            run: &runs[k].id,
        };
        let mut keyed = Vec::new();
        let mut done: Vec<Option<RunRecord>> = Vec::new();
        let mut reasons = Vec::new();
        for (k, run) in runs.iter().enumerate() {
            let (settings, m) = self.keyed(run, upstream)?;
            let key = m.key();
            let forced = self.force.contains(&run.id);
            let (record, why) = match self.pulled.get(&run.id) {
                Some(r) if !forced => (Some(r.clone()), Vec::new()),
                _ => match self.cached(run, &key, forced)? {
                    Cache::Intact(r) => (Some(*r), Vec::new()),
                    Cache::Run(why) => (None, why),
                    Cache::New => (
                        None,
                        keys::reasons(self.store, &self.plan.profile, &run.id, &m),
                    ),
                },
            };
            if let Some(r) = &record {
                let event = match self.pulled.contains_key(&run.id) {
                    true => RunEvent::Pulled { key: &r.key },
                    false => RunEvent::Cached { key: &r.key },
                };
                self.reporter.event(at(k), event);
            }
            done.push(record);
            reasons.push(why);
            keyed.push((settings, m, key, forced));
        }
        if done.iter().all(Option::is_some) {
            return Ok(done.into_iter().flatten().map(|r| (r, false)).collect());
        }
        for (k, (_, _, key, _)) in keyed.iter().enumerate() {
            if done[k].is_none() {
                let event = RunEvent::Started {
                    key,
                    reasons: &reasons[k],
                };
                self.reporter.event(at(k), event);
            }
        }
        let host = runtime::hostname();
        let leader = runs[0];
        let (settings, _, first_key, _) = &keyed[0];
        let log = self.store.log_path(first_key)?;
        let mut task = self.task(leader, upstream, settings, slot)?;
        let members: Vec<_> = keyed
            .iter()
            .zip(&runs)
            .map(|((_, m, _, forced), run)| {
                let job = Job {
                    run_id: &run.id,
                    experiment: &run.experiment,
                    // A pulled member is trained again with its group: its record here is new.
                    force: *forced,
                    resumable: true,
                    host: &host,
                };
                (m.clone(), job)
            })
            .collect();
        let computing: Vec<usize> = (0..runs.len()).filter(|&k| done[k].is_none()).collect();
        let progress = |tick: &Progress| {
            for &k in &computing {
                self.reporter.event(at(k), RunEvent::Progress(tick));
            }
        };
        let memos = self.store.memoize_group(members, |scratch| {
            task.out_dir = scratch.scratch.out.clone();
            task.checkpoints = scratch.scratch.checkpoints.clone();
            task.members = runs
                .iter()
                .zip(&scratch.member_out)
                .map(|(run, out)| Member {
                    run_id: run.id.clone(),
                    params: run.params.clone(),
                    out_dir: out.clone(),
                })
                .collect();
            let outcomes = self
                .launcher
                .launch(&task, &scratch.scratch, &log, slot, &progress)
                .with_context(|| format!("the fused group of {} runs", runs.len()))?;
            Ok(outcomes
                .into_iter()
                .zip(&keyed)
                .map(|(o, (settings, ..))| computed(o, settings, slot))
                .collect())
        })?;
        let mut out = Vec::new();
        for (k, memo) in memos.into_iter().enumerate() {
            for line in &memo.quarantined {
                self.reporter.note(line);
            }
            if let Some(r) = done[k].take() {
                out.push((r, false));
                continue;
            }
            self.store
                .set_ref(&self.plan.profile, &runs[k].id, &keyed[k].2)?;
            if k > 0 && memo.computed {
                // The group's log is every member's (`repro show` reads it by key).
                let own = self.store.log_path(&keyed[k].2)?;
                std::fs::copy(&log, &own).with_context(|| {
                    format!("cannot copy {} to {}", log.display(), own.display())
                })?;
            }
            let event = match memo.computed {
                true => RunEvent::Done {
                    seconds: memo.record.seconds,
                },
                false => RunEvent::CachedByOther,
            };
            self.reporter.event(at(k), event);
            out.push((memo.record, memo.computed));
        }
        Ok(out)
    }
}
