//! `repro report`: evaluate the claims on a profile's finished runs, print the tables and write
//! `report/<profile>/` (a cached stage: rendered again only when what it reads changed).

use std::io::IsTerminal;
use std::path::Path;

use anyhow::Result;
use serde_json::{Value, json};

use super::ctx::{Ctx, threads_for};
use repro_core::pipeline::executor::RunState;
use repro_core::pipeline::lockfile::LockFile;
use repro_core::runtime::DeviceChoice;
use repro_report::{Report, tables};

pub fn report_cmd(
    ctx: &Ctx,
    profile: &str,
    device: DeviceChoice,
    out: Option<&Path>,
    json: bool,
) -> Result<()> {
    let plan = ctx.plan(profile, &[])?;
    let device = ctx.device(device)?;
    let states = ctx.exec().states(&plan, &device, threads_for(&plan))?;
    let out_root = match out {
        Some(p) => p.to_path_buf(),
        None => ctx.base.join("report"),
    };
    let lock = LockFile::load(&ctx.lock_path)?;
    let r = repro_report::build(
        &ctx.pipeline,
        &ctx.store,
        &plan,
        &states,
        lock.profiles.get(profile),
        &out_root,
    )?;
    if json {
        println!("{}", serde_json::to_string_pretty(&report_json(&r))?);
        return Ok(());
    }
    // Colour only for a person at a terminal, and never when NO_COLOR is set (no-color.org).
    let colour = std::io::stdout().is_terminal() && std::env::var_os("NO_COLOR").is_none();
    if !ctx.quiet {
        for t in &r.experiment_tables {
            println!("{}\n", tables::terminal(t, false, ctx.width));
        }
    }
    println!("{}\n", tables::terminal(&r.claims_table, colour, ctx.width));
    let summary: Vec<String> = r
        .claims
        .iter()
        .map(|c| format!("{} {}", c.claim, c.verdict.text()))
        .collect();
    println!(
        "{}",
        tables::wrap_text(&format!("claims: {}", summary.join("; ")), ctx.width)
    );
    let pulled = states
        .iter()
        .filter(|(_, s)| matches!(s, RunState::Pulled { .. }))
        .count();
    println!(
        "report ({}, {} of {} runs read{}{}): {}",
        &r.key[..12],
        r.runs_read,
        r.runs_planned,
        if pulled > 0 {
            format!(", {pulled} of them pulled, made elsewhere")
        } else {
            String::new()
        },
        if r.cached { ", cached" } else { "" },
        r.dir.join("report.html").display()
    );
    Ok(())
}

/// `report --json`: the report's key and files, each claim's verdict, and each check's verdict,
/// measurement, per-arm means with their 95% intervals, and the claim's sentence.
fn report_json(r: &Report) -> Value {
    let claims: Vec<Value> = r
        .claims
        .iter()
        .map(|c| {
            json!({"claim": c.claim, "verdict": c.verdict.text(), "checks": c.checks,
                   "reproduced": c.reproduced, "diverged": c.diverged})
        })
        .collect();
    let checks: Vec<Value> = r
        .checks
        .iter()
        .map(|c| {
            let arms: Vec<Value> = c
                .groups
                .iter()
                .map(|g| json!({"arm": g.label, "mean": g.mean, "ci95": g.ci95, "seeds": g.seeds}))
                .collect();
            json!({
                "id": c.id, "claim": c.claim, "text": c.text, "experiment": c.experiment,
                "metric": c.metric, "test": c.test, "verdict": c.verdict.text(),
                "measured": c.measured, "note": c.note, "arms": arms,
                "statistics": c.statistics, "seeds": c.seeds,
            })
        })
        .collect();
    // Absolute, so a script reading them need not know where `repro` ran.
    let dir = std::path::absolute(&r.dir).unwrap_or_else(|_| r.dir.clone());
    json!({
        "profile": r.profile,
        "key": r.key,
        "cached": r.cached,
        "runs_read": r.runs_read,
        "runs_planned": r.runs_planned,
        "html": dir.join("report.html"),
        "markdown": dir.join("report.md"),
        "claims_json": dir.join("claims.json"),
        "dir": dir,
        "claims": claims,
        "checks": checks,
    })
}
