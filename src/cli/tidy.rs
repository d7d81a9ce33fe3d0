//! `repro tidy`: every finished run of a profile as one long CSV, a row per run × step × metric
//! (`experiment,run,kind,step_unit,step,metric,value,params`), for pandas and R. The rows are
//! what the report reads ([`repro_report::observe::gather`]); no second parser of results files.

use std::io::Write;
use std::path::Path;

use anyhow::{Context, Result};
use serde_json::{Map, Value};

use super::ctx::{Ctx, threads_for};
use repro_core::pipeline::stage::Rows;
use repro_core::runtime::DeviceChoice;
use repro_report::observe::{self, ExperimentData};

const HEADER: [&str; 8] = [
    "experiment",
    "run",
    "kind",
    "step_unit",
    "step",
    "metric",
    "value",
    "params",
];

/// The row keys that count steps, in the order looked for.
const STEP_KEYS: [&str; 2] = ["epoch", "iteration"];

pub(super) fn tidy_cmd(
    ctx: &Ctx,
    profile: &str,
    device: DeviceChoice,
    out: Option<&Path>,
) -> Result<()> {
    let plan = ctx.plan(profile, &[])?;
    let device = ctx.device(device)?;
    let states = ctx.exec().states(&plan, &device, threads_for(&plan))?;
    let inputs = observe::gather(&ctx.pipeline, &ctx.store, &plan, &states)?;
    let mut buf = Vec::new();
    let rows = write_rows(&mut buf, &inputs.experiments)?;
    match out {
        Some(path) => {
            repro_core::store::atomic::write_atomic(path, &buf)
                .with_context(|| format!("cannot write {}", path.display()))?;
            if !ctx.quiet {
                eprintln!("{}: {rows} rows", path.display());
            }
        }
        None => std::io::stdout().write_all(&buf)?,
    }
    Ok(())
}

/// The CSV of `experiments` into `w`; returns the number of data rows.
pub(super) fn write_rows(w: impl Write, experiments: &[ExperimentData]) -> Result<usize> {
    let mut csv = csv::Writer::from_writer(w);
    csv.write_record(HEADER)?;
    let mut n = 0;
    for exp in experiments {
        let results = &exp.kind.results;
        for obs in &exp.observations {
            let params = Value::Object(obs.coords.clone()).to_string();
            for row in &obs.rows {
                let (unit, step) = step_of(results.rows, row);
                for metric in results.metrics {
                    let Some(value) = value_of(exp, row, metric.name) else {
                        continue;
                    };
                    csv.write_record([
                        exp.name.as_str(),
                        obs.run_id.as_str(),
                        exp.kind.name,
                        unit,
                        step.as_str(),
                        metric.name,
                        value.as_str(),
                        params.as_str(),
                    ])?;
                    n += 1;
                }
            }
        }
    }
    csv.flush()?;
    Ok(n)
}

/// Per-epoch rows count by their `epoch` (or `iteration`); a per-upstream-run row describes a
/// trained network at its end: `final`, no step.
fn step_of(rows: Rows, row: &Map<String, Value>) -> (&'static str, String) {
    if let Rows::PerUpstreamRun { .. } = rows {
        return ("final", String::new());
    }
    STEP_KEYS
        .iter()
        .find_map(|k| row.get(*k).map(|v| (*k, v.to_string())))
        .unwrap_or(("row", String::new()))
}

/// A metric's value in one row: the number, empty for a written null or non-finite number (a
/// diverged epoch; NaN to pandas), none when the row does not have it.
fn value_of(exp: &ExperimentData, row: &Map<String, Value>, name: &str) -> Option<String> {
    let results = &exp.kind.results;
    match results.value(row, name) {
        Some(v) => Some(v.to_string()),
        None if row.contains_key(name) => Some(String::new()),
        None => None,
    }
}
