//! Fused groups: several runs of one experiment trained by one worker as one stacked model
//! (parameters with a leading run axis), which a small model needs to fill a GPU. Which runs
//! share a group is a pure function of the profile's runs and the group size — never of timing
//! or of the targets named — so `plan` shows the groups, a member's key is the same whatever a
//! command selects, and a rerun regroups identically:
//!
//! runs of a fusable kind (`StageDecl::fusable`) are bucketed by experiment and by everything
//! but the member axes (every other parameter, datasets, upstream
//! runs); each bucket, in run-id order, is cut into chunks of `size`; a chunk of two or more is a
//! group, a chunk of one stays a solo run. A member's key records its group's size and its
//! position (see [`crate::runtime::Fused`]): a stacked kernel's rounding may depend on both,
//! not on the other members' values.

use std::collections::BTreeMap;

use serde_json::{Map, Value};

use super::plan::RunNode;
use crate::runtime::Fused;

/// Put the runs of fusable kinds into groups of at most `size` (1: none), setting each
/// member's [`RunNode::fused`].
pub fn assign(runs: &mut [RunNode], size: usize) {
    for r in runs.iter_mut() {
        r.fused = None;
    }
    if size < 2 {
        return;
    }
    let mut buckets: BTreeMap<String, Vec<usize>> = BTreeMap::new();
    for (i, r) in runs.iter().enumerate() {
        let Some(f) = r.kind.fusable else { continue };
        let shared: Map<String, Value> = r
            .params
            .iter()
            .filter(|(k, _)| !f.member_axes.contains(&k.as_str()))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        let bucket = serde_json::json!([r.experiment, shared, r.datasets, r.upstream]).to_string();
        buckets.entry(bucket).or_default().push(i);
    }
    for mut members in buckets.into_values() {
        members.sort_by(|&a, &b| runs[a].id.cmp(&runs[b].id));
        for chunk in members.chunks(size).filter(|c| c.len() > 1) {
            let leader = runs[chunk[0]].id.clone();
            for (position, &i) in chunk.iter().enumerate() {
                runs[i].fused = Some(Fused {
                    size: chunk.len(),
                    position,
                    group: leader.clone(),
                });
            }
        }
    }
}

/// The plan's runs as units of work: a solo run alone, a group as its members in position
/// order (at the place of its first member in the plan's order).
pub fn units(runs: &[RunNode]) -> Vec<Vec<usize>> {
    let mut out: Vec<Vec<usize>> = Vec::new();
    let mut group_at: BTreeMap<&str, usize> = BTreeMap::new();
    for (i, r) in runs.iter().enumerate() {
        match &r.fused {
            None => out.push(vec![i]),
            Some(f) => match group_at.get(f.group.as_str()) {
                Some(&u) => out[u].push(i),
                None => {
                    group_at.insert(&f.group, out.len());
                    out.push(vec![i]);
                }
            },
        }
    }
    for u in &mut out {
        u.sort_by_key(|&i| runs[i].fused.as_ref().map_or(0, |f| f.position));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pipeline::plan::Plan;
    use crate::pipeline::spec::Pipeline;

    const PIPE: &str = r#"
experiments:
  rl:
    kind: dqn
    params: {env: minatar, game: breakout, frames: 100}
    grid: {seed: [0, 1, 2, 3, 4], lr: [0.001, 0.01], history: [1, 2]}
  other_game:
    kind: dqn
    params: {env: minatar, game: freeway, frames: 100}
    grid: {seed: [0]}
  vision:
    kind: vision
    grid: {seed: [0, 1]}
profiles:
  paper: {fuse: 4}
  solo: {}
"#;

    fn plan(profile: &str, targets: &[&str], fuse: Option<usize>) -> Plan {
        let p = Pipeline::parse("pipeline.yaml".as_ref(), PIPE).unwrap();
        let targets: Vec<String> = targets.iter().map(|s| s.to_string()).collect();
        Plan::resolve_fused(&p, profile, &targets, fuse).unwrap()
    }

    #[test]
    fn groups_are_chunks_of_runs_that_differ_only_in_member_axes() {
        let plan = plan("paper", &[], None);
        let units = units(&plan.runs);
        // 10 runs per history value → chunks of 4, 4, 2 (each unit at its first member's place
        // in the plan, where history varies fastest); a lone run of another experiment and the
        // runs of a kind that cannot be fused stay alone.
        let sizes: Vec<usize> = units.iter().map(Vec::len).collect();
        assert_eq!(sizes, [4, 4, 4, 4, 2, 2, 1, 1, 1], "{units:?}");
        for u in units.iter().filter(|u| u.len() > 1) {
            let first = &plan.runs[u[0]];
            for (pos, &i) in u.iter().enumerate() {
                let r = &plan.runs[i];
                let f = r.fused.as_ref().unwrap();
                assert_eq!((f.size, f.position), (u.len(), pos));
                assert_eq!(f.group, first.id);
                assert_eq!(r.params["history"], first.params["history"]);
            }
            let ids: Vec<&str> = u.iter().map(|&i| plan.runs[i].id.as_str()).collect();
            assert!(ids.is_sorted(), "members in run-id order: {ids:?}");
        }
        let alone = |e: &str| {
            plan.runs
                .iter()
                .filter(|r| r.experiment == e)
                .all(|r| r.fused.is_none())
        };
        assert!(alone("other_game") && alone("vision"));
    }

    #[test]
    fn a_target_brings_its_whole_group_and_the_grouping_does_not_change() {
        let all = plan("paper", &[], None);
        let one = plan("paper", &["rl/seed=3,lr=0.01,history=2"], None);
        assert_eq!(one.runs.len(), 4, "the target's group, whole");
        for r in &one.runs {
            let same = all.runs.iter().find(|a| a.id == r.id).unwrap();
            assert_eq!(r.fused, same.fused);
        }
    }

    #[test]
    fn the_override_wins_and_one_means_solo() {
        assert!(
            plan("paper", &[], Some(1))
                .runs
                .iter()
                .all(|r| r.fused.is_none())
        );
        assert!(
            plan("solo", &[], None)
                .runs
                .iter()
                .all(|r| r.fused.is_none())
        );
        let ten = plan("solo", &[], Some(10));
        assert_eq!(units(&ten.runs).iter().filter(|u| u.len() == 10).count(), 2);
        // A target brings nothing more without groups.
        assert_eq!(
            plan("solo", &["rl/seed=3,lr=0.01,history=2"], None)
                .runs
                .len(),
            1
        );
    }
}
