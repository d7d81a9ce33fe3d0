//! `repro status` (the profile's runs: cached or to run, per experiment) and `repro verify`
//! (every stored object re-hashed, locked digests compared): read-only looks at the store.

use anyhow::Result;
use serde_json::{Value, json};
use tabled::Tabled;

use super::ctx::{Ctx, Failure, threads_for};
use super::term::grid_rows;
use repro_core::pipeline::executor::RunState;
use repro_core::pipeline::lockfile::LockFile;
use repro_core::pipeline::spec::Determinism;
use repro_core::pipeline::{datasets, verify};
use repro_core::runtime::DeviceChoice;
use repro_report::tables;

/// What `repro run` does with cached runs.
#[derive(Tabled)]
struct StatusRow {
    experiment: String,
    runs: usize,
    cached: usize,
    /// Made elsewhere, taken from a pulled publication.
    pulled: usize,
    to_run: usize,
}

/// `--json`: `{profile, store, records, experiments: [{experiment, runs, cached, pulled,
/// to_run}], totals: {runs, cached, pulled, to_run}}`.
pub(super) fn status_cmd(ctx: &Ctx, profile: &str, device: DeviceChoice, json: bool) -> Result<()> {
    let plan = ctx.plan(profile, &[])?;
    let device = ctx.device(device)?;
    let states = ctx.exec().states(&plan, &device, threads_for(&plan))?;
    let mut rows: Vec<StatusRow> = Vec::new();
    for (run, (_, s)) in plan.runs.iter().zip(&states) {
        if rows.last().is_none_or(|r| r.experiment != run.experiment) {
            rows.push(StatusRow {
                experiment: run.experiment.clone(),
                runs: 0,
                cached: 0,
                pulled: 0,
                to_run: 0,
            });
        }
        if let Some(r) = rows.last_mut() {
            r.runs += 1;
            match s {
                RunState::Cached { .. } => r.cached += 1,
                RunState::Pulled { .. } => r.pulled += 1,
                RunState::WillRun { .. } => r.to_run += 1,
            }
        }
    }
    let records = ctx.store.record_count();
    let count = |pick: fn(&RunState) -> bool| states.iter().filter(|(_, s)| pick(s)).count();
    let cached = count(|s| matches!(s, RunState::Cached { .. }));
    let pulled = count(|s| matches!(s, RunState::Pulled { .. }));
    if json {
        let experiments: Vec<Value> = rows
            .iter()
            .map(|r| {
                json!({"experiment": r.experiment, "runs": r.runs, "cached": r.cached,
                       "pulled": r.pulled, "to_run": r.to_run})
            })
            .collect();
        let doc = json!({
            "profile": profile,
            "store": ctx.store.root(),
            "records": records,
            "experiments": experiments,
            "totals": {"runs": states.len(), "cached": cached, "pulled": pulled,
                       "to_run": states.len() - cached - pulled},
        });
        println!("{}", serde_json::to_string_pretty(&doc)?);
        return Ok(());
    }
    println!("{}", tables::grid(grid_rows(&rows), ctx.width));
    println!(
        "profile {profile}: {} runs, {cached} cached{}; store {}: {records} run records",
        states.len(),
        if pulled > 0 {
            format!(", {pulled} pulled")
        } else {
            String::new()
        },
        ctx.store.root().display()
    );
    Ok(())
}

/// `--json`: `{ok, objects, locked_runs, dataset_files, extracted_files, problems: [..]}`, also
/// on a mismatch (exit 1 all the same).
pub(super) fn verify_cmd(
    ctx: &Ctx,
    profile: Option<String>,
    targets: &[String],
    json: bool,
) -> Result<()> {
    let lock = LockFile::load(&ctx.lock_path)?;
    let mut profiles = Vec::new();
    if let Some(p) = profile {
        let plan = ctx.plan(&p, targets)?;
        let generation_keys = plan
            .datasets
            .iter()
            .filter_map(|d| {
                datasets::generation_manifest(&ctx.pipeline.salt, d)
                    .map(|m| (d.name.clone(), m.key()))
            })
            .collect();
        // A target's upstream runs are checked with it: they are in the plan, and ran. Only
        // bitwise runs are locked.
        let runs = (!targets.is_empty()).then(|| {
            plan.runs
                .iter()
                .filter(|r| r.determinism == Determinism::Bitwise)
                .map(|r| r.id.clone())
                .collect()
        });
        profiles.push(verify::ProfileCheck {
            profile: p,
            generation_keys,
            runs,
        });
    }
    let v = verify::verify(&ctx.store, &lock, &ctx.datasets_dir, &profiles)?;
    if json {
        let doc = json!({
            "ok": v.problems.is_empty(),
            "objects": v.objects,
            "locked_runs": v.locked_runs,
            "dataset_files": v.dataset_files,
            "extracted_files": v.extracted_files,
            "problems": v.problems,
        });
        println!("{}", serde_json::to_string_pretty(&doc)?);
    }
    if !v.problems.is_empty() {
        for p in &v.problems {
            eprintln!("mismatch: {p}");
        }
        return Err(Failure::Work(format!(
            "verification failed: {} problem(s)",
            v.problems.len()
        ))
        .into());
    }
    if json {
        return Ok(());
    }
    println!(
        "verified {} objects, {} locked runs, {} dataset files, {} extracted files: all match",
        v.objects, v.locked_runs, v.dataset_files, v.extracted_files
    );
    Ok(())
}
