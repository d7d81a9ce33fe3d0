//! `repro run` on this machine: how runs go side by side (`--jobs`, `--gpus`), the options the
//! executor gets, and the summary it ends with.

use std::collections::BTreeSet;

use anyhow::Result;

use super::ctx::{Ctx, Failure, threads_for_jobs};
use super::progress;
use repro_core::pipeline::executor::{RunOptions, Summary, Worker};
use repro_core::runtime::{Device, DeviceChoice};

/// How the local executor runs runs side by side.
#[derive(clap::Args, Debug, Clone)]
pub(super) struct Parallel {
    /// Runs executed at once, each in its own worker process. On the CPU, a profile without a
    /// fixed `threads:` gives each run cores/N threads (on the CPU the thread count is part of
    /// the key); each run is pinned to its own cores when they fit. Default: as many runs as
    /// the cores hold when the profile fixes `threads:` (2 for `cpu` on 2 cores), else 1.
    #[arg(long)]
    jobs: Option<usize>,
    /// GPUs to spread runs over, e.g. 0,1,2,3 (each worker sees one as CUDA_VISIBLE_DEVICES);
    /// runs at once = GPUs × --runs-per-gpu, whatever --jobs says.
    #[arg(long, value_parser = parse_gpu_list)]
    gpus: Option<GpuList>,
    /// Small runs packed on one GPU at a time.
    #[arg(long, default_value_t = 1)]
    runs_per_gpu: usize,
}

/// `--gpus 0,1,…` (one value holding a list, which clap cannot infer for a bare Vec).
#[derive(Debug, Clone)]
pub(super) struct GpuList(Vec<usize>);

pub(super) fn parse_gpu_list(s: &str) -> Result<GpuList, String> {
    repro_core::pipeline::placement::parse_gpus(s).map(GpuList)
}

impl Parallel {
    pub(super) fn one() -> Parallel {
        Parallel {
            jobs: Some(1),
            gpus: None,
            runs_per_gpu: 1,
        }
    }
}

#[derive(Debug, Clone, Copy, Default)]
pub(super) struct RunFlags {
    /// Rerun the targets even when cached.
    pub force: bool,
    /// Fail damaged cached runs instead of rebuilding them.
    pub no_repair: bool,
}

pub(super) fn run_cmd(
    ctx: &Ctx,
    profile: &str,
    flags: RunFlags,
    parallel: &Parallel,
    device: DeviceChoice,
    mirror: Option<String>,
    targets: &[String],
) -> Result<()> {
    let plan = ctx.plan(profile, targets)?;
    let gpus = parallel.gpus.clone().map(|g| g.0).unwrap_or_default();
    let jobs = if gpus.is_empty() {
        parallel.jobs.unwrap_or_else(|| jobs_that_fit(&plan))
    } else {
        gpus.len() * parallel.runs_per_gpu
    };
    if jobs == 0 {
        return Err(Failure::Usage("--jobs and --runs-per-gpu must be at least 1".into()).into());
    }
    if jobs > 1 && std::env::var_os("OMP_WAIT_POLICY").is_none() {
        // Several workers share the cores: OpenMP threads that spin while waiting then burn
        // the CPU the other workers need. Passive waiting changes
        // scheduling only, never results.
        // SAFETY: no other thread exists yet in this process.
        unsafe { std::env::set_var("OMP_WAIT_POLICY", "PASSIVE") };
    }
    let device = ctx.device(device)?;
    let threads = threads_for_jobs(&plan, if gpus.is_empty() { jobs } else { 1 });
    if !gpus.is_empty() && !matches!(device, Device::Cuda { .. }) {
        return Err(Failure::Usage(format!(
            "--gpus needs a CUDA device; this one resolved to {device:?} (pass --device cuda)"
        ))
        .into());
    }
    // --force applies to the targets themselves, not to what they depend on.
    let force: BTreeSet<String> = if !flags.force {
        BTreeSet::new()
    } else if targets.is_empty() {
        plan.runs.iter().map(|r| r.id.clone()).collect()
    } else {
        plan.runs
            .iter()
            .filter(|r| targets.iter().any(|t| t == &r.id || t == &r.experiment))
            .map(|r| r.id.clone())
            .collect()
    };
    let opts = RunOptions {
        jobs,
        gpus,
        runs_per_gpu: parallel.runs_per_gpu,
        device,
        threads,
        force,
        no_repair: flags.no_repair,
        mirror,
    };
    let reporter = progress::Terminal::new(ctx.quiet);
    let summary = ctx.exec().run(&plan, &opts, &reporter, &Worker)?;
    report_summary(ctx, profile, "", &summary)
}

/// Runs at once when `--jobs` is not given: the cores over the profile's fixed threads per run
/// (a profile without them gives one run all the cores).
fn jobs_that_fit(plan: &repro_core::pipeline::plan::Plan) -> usize {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    plan.threads.map_or(1, |t| (cores / t.max(1)).max(1))
}

/// The last lines of `repro run`: counts, then each failure with its log; exit 1 on failures.
pub(super) fn report_summary(
    ctx: &Ctx,
    profile: &str,
    executor: &str,
    summary: &Summary,
) -> Result<()> {
    let via = if executor.is_empty() {
        String::new()
    } else {
        format!(" ({executor})")
    };
    println!(
        "profile {profile}: {} ran, {} cached, {}{} failed, {} skipped{via}; store: {}",
        summary.ran.len(),
        summary.cached.len(),
        if summary.pulled.is_empty() {
            String::new()
        } else {
            format!("{} pulled, ", summary.pulled.len())
        },
        summary.failed.len(),
        summary.skipped.len(),
        ctx.store.root().display()
    );
    if !summary.failed.is_empty() {
        for (id, e) in &summary.failed {
            eprintln!("failed: {id}: {e}");
        }
        return Err(Failure::Work(format!("{} run(s) failed", summary.failed.len())).into());
    }
    Ok(())
}
