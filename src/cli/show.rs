//! `repro show RUN`: one run — its id, experiment, kind, resolved parameters, key, state (cached,
//! will run and why, or failed), outputs with their store paths and sizes, upstream runs and the
//! tail of its log — as text or, with `--json`, one JSON object.

use std::io::{Read, Seek, SeekFrom};
use std::path::Path;

use anyhow::Result;
use serde_json::{Value, json};

use super::ctx::Ctx;
use super::pick::{OneRun, one_run};
use repro_core::pipeline::executor::RunState;
use repro_core::pipeline::plan::show;
use repro_core::runtime::DeviceChoice;

/// How much of a log's end is read for its last lines.
const LOG_TAIL_BYTES: u64 = 64 * 1024;

pub(super) struct ShowArgs<'a> {
    pub profile: &'a str,
    pub device: DeviceChoice,
    pub json: bool,
    pub log_lines: usize,
    pub target: &'a str,
}

pub(super) fn show_cmd(ctx: &Ctx, a: &ShowArgs) -> Result<()> {
    let one = one_run(ctx, a.profile, a.device, a.target)?;
    let doc = describe(ctx, &one, a.log_lines)?;
    if a.json {
        println!("{doc}");
    } else {
        print!("{}", text(&doc));
    }
    Ok(())
}

/// The state's name, its key and reasons. A run with a key, no record and a log is `failed`: an
/// attempt started and left no record (it failed or was interrupted, unless it is running now).
fn state_fields(ctx: &Ctx, s: &RunState) -> (&'static str, Option<String>, Vec<String>) {
    match s {
        RunState::Cached { key } => ("cached", Some(key.clone()), Vec::new()),
        RunState::Pulled { key, made_with } => ("pulled", Some(key.clone()), made_with.clone()),
        RunState::WillRun { key, reasons } => {
            let attempted = key
                .as_deref()
                .and_then(|k| ctx.store.log_path(k).ok())
                .is_some_and(|p| p.is_file());
            let name = if attempted { "failed" } else { "will run" };
            (name, key.clone(), reasons.clone())
        }
    }
}

/// Everything `show` prints, as the JSON `--json` writes.
fn describe(ctx: &Ctx, one: &OneRun, log_lines: usize) -> Result<Value> {
    let node = one.node();
    let (state, key, reasons) = state_fields(ctx, one.state());
    let outputs: Vec<Value> = one
        .record
        .iter()
        .flat_map(|r| &r.outputs)
        .map(|(name, o)| {
            json!({"name": name, "size": o.size, "sha256": o.sha256,
                   "path": absolute(&ctx.store.object_path(&o.sha256))})
        })
        .collect();
    let upstream: Vec<Value> = node
        .upstream
        .iter()
        .map(|u| {
            let s = one
                .state_of(u)
                .map_or("unknown", |s| state_fields(ctx, s).0);
            json!({"run": u, "state": s})
        })
        .collect();
    let log = match key.as_deref() {
        Some(k) => Some(absolute(&ctx.store.log_path(k)?)).filter(|p| p.is_file()),
        None => None,
    };
    let tail = match &log {
        Some(p) => last_lines(p, log_lines)?,
        None => Vec::new(),
    };
    let finished = one.record.as_ref().map(|r| {
        json!({"started": r.started, "finished": r.finished, "seconds": r.seconds, "host": r.host})
    });
    Ok(json!({
        "run": node.id, "experiment": node.experiment, "profile": one.plan.profile,
        "kind": node.kind.name, "kind_version": node.kind.version,
        "params": node.params, "datasets": node.datasets, "upstream": upstream,
        "state": state, "key": key, "reasons": reasons, "record": finished,
        "outputs": outputs, "log": log, "log_tail": tail,
    }))
}

/// A path from the current folder, for scripts that run elsewhere.
fn absolute(p: &Path) -> std::path::PathBuf {
    std::path::absolute(p).unwrap_or_else(|_| p.to_path_buf())
}

/// The last `n` lines of a file, read from its end.
fn last_lines(path: &Path, n: usize) -> Result<Vec<String>> {
    let mut f = std::fs::File::open(path)?;
    let len = f.metadata()?.len();
    f.seek(SeekFrom::Start(len.saturating_sub(LOG_TAIL_BYTES)))?;
    let mut bytes = Vec::new();
    f.read_to_end(&mut bytes)?;
    let text = String::from_utf8_lossy(&bytes);
    let lines: Vec<&str> = text.lines().collect();
    Ok(lines[lines.len().saturating_sub(n)..]
        .iter()
        .map(|l| l.to_string())
        .collect())
}

/// The text rendering of [`describe`]'s document.
fn text(d: &Value) -> String {
    let s = |v: &Value| match v {
        Value::Null => "-".to_string(),
        v => show(v),
    };
    let mut out = String::new();
    let mut line = |label: &str, value: String| out.push_str(&format!("{label:<11} {value}\n"));
    line("run", s(&d["run"]));
    line("experiment", s(&d["experiment"]));
    line(
        "kind",
        format!("{} (version {})", s(&d["kind"]), d["kind_version"]),
    );
    line("profile", s(&d["profile"]));
    line("state", s(&d["state"]));
    line("key", s(&d["key"]));
    if let Some(r) = d["record"].as_object() {
        line(
            "finished",
            format!(
                "{} on {} after {:.1} s",
                s(&r["finished"]),
                s(&r["host"]),
                r["seconds"].as_f64().unwrap_or(0.0)
            ),
        );
    }
    for reason in d["reasons"].as_array().into_iter().flatten() {
        line("why", s(reason));
    }
    let list = |v: &Value| -> Vec<String> { v.as_array().into_iter().flatten().map(s).collect() };
    let datasets = list(&d["datasets"]);
    line(
        "datasets",
        if datasets.is_empty() {
            "-".into()
        } else {
            datasets.join(", ")
        },
    );
    let ups = d["upstream"].as_array().cloned().unwrap_or_default();
    line(
        "upstream",
        if ups.is_empty() {
            "-".into()
        } else {
            format!("{} run(s)", ups.len())
        },
    );
    for u in &ups {
        out.push_str(&format!("  {} ({})\n", s(&u["run"]), s(&u["state"])));
    }
    out.push_str("params\n");
    let params = d["params"].as_object().cloned().unwrap_or_default();
    let width = params.keys().map(String::len).max().unwrap_or(0);
    for (k, v) in &params {
        out.push_str(&format!("  {k:<width$}  {}\n", s(v)));
    }
    let outputs = d["outputs"].as_array().cloned().unwrap_or_default();
    if !outputs.is_empty() {
        out.push_str("outputs\n");
        let width = outputs
            .iter()
            .map(|o| s(&o["name"]).len())
            .max()
            .unwrap_or(0);
        for o in &outputs {
            out.push_str(&format!(
                "  {:<width$}  {:>12} bytes  {}\n",
                s(&o["name"]),
                s(&o["size"]),
                s(&o["path"])
            ));
        }
    }
    match d["log"].as_str() {
        Some(log) => {
            out.push_str(&format!("log         {log} (last lines)\n"));
            for l in list(&d["log_tail"]) {
                out.push_str(&format!("  | {l}\n"));
            }
        }
        None => out.push_str("log         -\n"),
    }
    out
}
