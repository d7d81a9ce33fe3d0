//! Starting a run's computation: the [`Launcher`] seam between the executor (keys, store,
//! scheduling) and whatever trains. In production it is [`Worker`], a `repro-worker` process per
//! run; the scheduler's unit tests use a fake.

use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::SystemTime;

use anyhow::{Context, Result, bail};

use crate::pipeline::placement::Placement;
use crate::pipeline::progress::Progress;
use crate::pipeline::stage::{Outcome, PARENT_ENV, Task};
use crate::runtime;
use crate::store::atomic::write_atomic;
use crate::store::memo::Scratch;

/// Runs one task to its outcomes, one per run (a fused group's task has one per member, in
/// position order); every file it leaves in a run's out folder becomes that run's output.
pub trait Launcher: Sync {
    /// `log` is the run's log file (appended to, one section per attempt); `progress` receives
    /// the run's progress ticks.
    fn launch(
        &self,
        task: &Task,
        scratch: &Scratch,
        log: &Path,
        slot: &Placement,
        progress: &dyn Fn(&Progress),
    ) -> Result<Vec<Outcome>>;
}

/// The `repro-worker` binary beside `repro`: the task goes in as JSON, progress comes back as
/// lines on its stdout (each also written to the log with a timestamp), its stderr goes to the
/// log, its outcomes come back as a JSON array.
pub struct Worker;

impl Launcher for Worker {
    fn launch(
        &self,
        task: &Task,
        scratch: &Scratch,
        log_path: &Path,
        slot: &Placement,
        progress: &dyn Fn(&Progress),
    ) -> Result<Vec<Outcome>> {
        let task_path = scratch.root.join("task.json");
        let outcome_path = scratch.root.join("outcome.json");
        let _ = std::fs::remove_file(&outcome_path);
        write_atomic(&task_path, &serde_json::to_vec_pretty(task)?)?;
        let mut log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(log_path)
            .with_context(|| format!("cannot open the log {}", log_path.display()))?;
        writeln!(
            log,
            "=== attempt at {} on {}: {}",
            humantime::format_rfc3339_seconds(SystemTime::now()),
            runtime::hostname(),
            match scratch.resumed {
                Some(unit) => format!("resuming from checkpoint {unit}"),
                None => "from the start".into(),
            }
        )?;
        let this_attempt = log.metadata()?.len() as usize;
        // The engine's own lines (progress ticks) beside the worker's stderr; both append.
        let mut ticks_log = log.try_clone()?;
        let worker = runtime::probe::worker_path()?;
        let mut cmd = Command::new(&worker);
        slot.apply(&mut cmd);
        let mut child = cmd
            .arg("exec")
            .arg(&task_path)
            .arg(&outcome_path)
            .env(PARENT_ENV, std::process::id().to_string())
            .envs(task.settings.worker_env())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(log)
            .spawn()
            .with_context(|| format!("cannot start the worker {}", worker.display()))?;
        if let Some(out) = child.stdout.take() {
            for line in BufReader::new(out).lines() {
                let line = line?;
                let logged = match Progress::parse_line(&line) {
                    Some(Ok(tick)) => {
                        progress(&tick);
                        format!("progress {tick}")
                    }
                    Some(Err(unreadable)) => unreadable,
                    None => format!("stdout: {line}"),
                };
                let now = humantime::format_rfc3339_seconds(SystemTime::now());
                writeln!(ticks_log, "{now} {logged}")?;
            }
        }
        let status = child.wait()?;
        if !status.success() {
            let text = std::fs::read(log_path).unwrap_or_default();
            let text = String::from_utf8_lossy(text.get(this_attempt..).unwrap_or_default());
            // The worker's own `error: …` line says what went wrong; libtorch appends C++
            // backtraces after it, so the log's last lines are only a fallback.
            let summary = match text.lines().rfind(|l| l.starts_with("error: ")) {
                Some(line) => line.trim_start_matches("error: ").to_string(),
                None => {
                    let tail: Vec<&str> = text.lines().rev().take(5).collect();
                    tail.into_iter().rev().collect::<Vec<_>>().join(" | ")
                }
            };
            bail!("worker {status}: {summary} (log: {})", log_path.display());
        }
        let bytes =
            std::fs::read(&outcome_path).context("the worker finished without an outcome")?;
        let outcomes: Vec<Outcome> = serde_json::from_slice(&bytes)?;
        let runs = task.members.len().max(1);
        anyhow::ensure!(
            outcomes.len() == runs,
            "the worker reported {} outcomes for {runs} runs",
            outcomes.len()
        );
        Ok(outcomes)
    }
}
