//! The worker process (`repro-worker`): the only place libtorch is loaded. The engine starts one
//! per run or fused group (`repro-worker exec TASK.json OUTCOME.json`), which isolates libtorch's global state
//! (seeds, threads, determinism switches) per run and keeps a crash from taking the engine down;
//! `repro-worker probe` reports what devices this libtorch can use.

use std::io::Write;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::Path;

use anyhow::{Context, Result, anyhow};

use crate::libtorch;
use crate::train::progress::ProgressOut;
use crate::train::{StageContext, run_stage};
use repro_core::pipeline::progress::Progress;
use repro_core::pipeline::stage::{Outcome, PARENT_ENV, Task};
use repro_core::store::atomic::write_atomic;

/// Entry point of the worker binary; returns the exit code.
pub fn main() -> i32 {
    die_with_parent();
    repro_core::runtime::init_process_env();
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args
        .iter()
        .map(String::as_str)
        .collect::<Vec<_>>()
        .as_slice()
    {
        ["probe"] => probe(),
        ["exec", task, outcome] => exec(Path::new(task), Path::new(outcome)),
        _ => {
            eprintln!(
                "usage: repro-worker probe | repro-worker exec TASK.json OUTCOME.json\n(started by `repro run`; not meant to be run by hand)"
            );
            return 2;
        }
    };
    match result {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("error: {e:#}");
            1
        }
    }
}

/// A worker whose engine was killed (kill -9, power loss of the session) must not train on as
/// an orphan: ask the kernel to kill it when its parent goes.
fn die_with_parent() {
    // SAFETY: prctl with PR_SET_PDEATHSIG only sets a signal number; getppid has no preconditions.
    unsafe {
        libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
        // The engine may have died while this process was still loading libtorch, before the
        // request took effect; it was then re-parented (to init or a subreaper).
        let engine = std::env::var(PARENT_ENV)
            .ok()
            .and_then(|p| p.parse::<i32>().ok());
        if engine.is_some_and(|pid| pid != libc::getppid()) {
            libc::_exit(1);
        }
    }
}

fn probe() -> Result<()> {
    println!("{}", serde_json::to_string(&libtorch::probe())?);
    Ok(())
}

fn exec(task_path: &Path, outcome_path: &Path) -> Result<()> {
    let task: Task = serde_json::from_slice(
        &std::fs::read(task_path)
            .with_context(|| format!("cannot read {}", task_path.display()))?,
    )
    .with_context(|| format!("{} is not a valid task", task_path.display()))?;
    libtorch::apply(&task.settings);
    let emit = |tick: &Progress| {
        let mut out = std::io::stdout().lock();
        let _ = writeln!(out, "{}", tick.to_line());
        let _ = out.flush();
    };
    let ctx = StageContext {
        run_id: &task.run_id,
        params: &task.params,
        datasets: &task.datasets,
        upstream: &task.upstream,
        out_dir: task.out_dir.clone(),
        device: libtorch::tch_device(&task.settings.device),
        precision: task.settings.precision,
        progress: ProgressOut::from_env(&emit)?,
        checkpoints: task
            .checkpoints
            .clone()
            .map(repro_core::store::work::Checkpoints::new),
    };
    // tch turns some libtorch errors into panics; report them as the run's failure.
    let run = || run_stage(&task.kind, &ctx, &task.members);
    let mut outcomes: Vec<Outcome> = catch_unwind(AssertUnwindSafe(run))
        .map_err(|p| anyhow!("stage panicked: {}", panic_message(&p)))??;
    for o in &mut outcomes {
        o.environment = libtorch::fingerprint();
    }
    write_atomic(outcome_path, &serde_json::to_vec(&outcomes)?)?;
    Ok(())
}

fn panic_message(p: &Box<dyn std::any::Any + Send>) -> String {
    p.downcast_ref::<String>()
        .cloned()
        .or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string()))
        .unwrap_or_else(|| "unknown panic".into())
}
