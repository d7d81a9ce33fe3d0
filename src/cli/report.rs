//! `repro report`: evaluate the claims on a profile's finished runs, print the tables and write
//! `report/<profile>/` (a cached stage: rendered again only when what it reads changed).

use std::io::IsTerminal;
use std::path::Path;

use anyhow::Result;

use super::ctx::{Ctx, threads_for};
use repro_core::pipeline::lockfile::LockFile;
use repro_core::runtime::DeviceChoice;
use repro_report::tables;

pub fn report_cmd(
    ctx: &Ctx,
    profile: &str,
    device: DeviceChoice,
    out: Option<&Path>,
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
    // Colour only for a person at a terminal, and never when NO_COLOR is set (no-color.org).
    let colour = std::io::stdout().is_terminal() && std::env::var_os("NO_COLOR").is_none();
    if !ctx.quiet {
        for t in &r.experiment_tables {
            println!("{}\n", tables::terminal(t, false));
        }
    }
    println!("{}\n", tables::terminal(&r.claims_table, colour));
    let summary: Vec<String> = r
        .claims
        .iter()
        .map(|c| format!("{} {}", c.claim, c.verdict.text()))
        .collect();
    println!("claims: {}", summary.join("; "));
    println!(
        "report ({}, {} of {} runs read{}): {}",
        &r.key[..12],
        r.runs_read,
        r.runs_planned,
        if r.cached { ", cached" } else { "" },
        r.dir.join("report.html").display()
    );
    Ok(())
}
