//! `repro plan`: every run of a profile with cached / will-run and the reason (and its fused
//! group, if any), as a table or, with `--json`, one JSON object per line with each run's
//! resolved parameters.

use std::collections::BTreeMap;

use anyhow::Result;
use serde_json::json;
use tabled::Tabled;

use super::ctx::{Ctx, threads_for};
use super::term::grid_rows;
use repro_core::pipeline::executor::RunState;
use repro_core::runtime::DeviceChoice;
use repro_report::tables;

#[derive(Tabled)]
struct PlanRow {
    run: String,
    state: String,
    key: String,
    reason: String,
}

pub(super) fn plan_cmd(
    ctx: &Ctx,
    profile: &str,
    device: DeviceChoice,
    json: bool,
    targets: &[String],
) -> Result<()> {
    let plan = ctx.plan(profile, targets)?;
    let device = ctx.device(device)?;
    let states = ctx.exec().states(&plan, &device, threads_for(&plan))?;
    if json {
        let nodes: BTreeMap<&str, _> = plan.runs.iter().map(|r| (r.id.as_str(), r)).collect();
        for (id, s) in &states {
            let (state, key, reasons) = match s {
                RunState::Cached { key } => ("cached", Some(key.clone()), Vec::new()),
                RunState::Pulled { key, made_with } => {
                    ("pulled", Some(key.clone()), made_with.clone())
                }
                RunState::WillRun { key, reasons } => ("will run", key.clone(), reasons.clone()),
            };
            let node = nodes[id.as_str()];
            let line = json!({
                "run": id, "experiment": node.experiment, "kind": node.kind.name,
                "params": node.params, "datasets": node.datasets, "upstream": node.upstream,
                "state": state, "key": key, "reasons": reasons, "fused": node.fused,
            });
            println!("{line}");
        }
        return Ok(());
    }
    let mut rows = Vec::new();

    for d in &plan.datasets {
        rows.push(PlanRow {
            run: format!("dataset:{}", d.name),
            state: format!("{:?}", d.source).to_lowercase(),
            key: String::new(),
            reason: String::new(),
        });
    }
    let mut will = 0;
    for (id, s) in &states {
        let node = plan.run(id).expect("states are of the plan's runs");
        let mut row = match s {
            RunState::Cached { key } => PlanRow {
                run: id.clone(),
                state: "cached".into(),
                key: key[..12].into(),
                reason: String::new(),
            },
            RunState::Pulled { key, made_with } => PlanRow {
                run: id.clone(),
                state: "pulled".into(),
                key: key[..12].into(),
                reason: made_elsewhere(made_with),
            },
            RunState::WillRun { key, reasons } => {
                will += 1;
                PlanRow {
                    run: id.clone(),
                    state: "will run".into(),
                    key: key
                        .as_deref()
                        .map(|k| k[..12].to_string())
                        .unwrap_or_else(|| "pending".into()),
                    reason: reasons.join("; "),
                }
            }
        };
        if let Some(f) = &node.fused {
            row.state = format!("{} · fused {}/{}", row.state, f.position + 1, f.size);
        }
        rows.push(row);
    }
    println!("{}", tables::grid(grid_rows(&rows), ctx.width));
    let pulled = states
        .iter()
        .filter(|(_, s)| matches!(s, RunState::Pulled { .. }))
        .count();
    println!(
        "profile {profile}: {} runs, {} cached, {}{will} to run",
        states.len(),
        states.len() - will - pulled,
        if pulled > 0 {
            format!("{pulled} pulled, ")
        } else {
            String::new()
        }
    );
    let groups = repro_core::pipeline::fuse::units(&plan.runs);
    let fused: Vec<&Vec<usize>> = groups.iter().filter(|u| u.len() > 1).collect();
    if !fused.is_empty() {
        let members: usize = fused.iter().map(|u| u.len()).sum();
        println!(
            "{members} of them in {} fused groups (one worker each, at most {} runs; `fused i/n`: \
             member i of n)",
            fused.len(),
            fused.iter().map(|u| u.len()).max().unwrap_or(0)
        );
    }
    Ok(())
}

/// A pulled run's reason column: how the machine that made it differs from this one.
fn made_elsewhere(made_with: &[String]) -> String {
    if made_with.is_empty() {
        "pulled, made as here".into()
    } else {
        format!("pulled, made with {}", made_with.join(", "))
    }
}
