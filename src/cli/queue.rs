//! `repro run --executor <queue>` and the `repro exec-run` its jobs run: the command-line side
//! of [`repro_core::pipeline::queue`]. A queue backend adds here its `ExecutorKind` variant, its
//! options struct and its arm in [`QueueArgs::backend`].

use std::path::Path;

use anyhow::{Context, Result};

use super::ctx::{Ctx, Failure, threads_for};
use super::run::{Parallel, RunFlags, report_summary, run_cmd};
use repro_core::pipeline::queue::slurm::Slurm;
use repro_core::pipeline::queue::{Invocation, Queue, QueueBackend, QueueOptions};
use repro_core::runtime::DeviceChoice;

/// Where `repro run` executes its runs.
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum ExecutorKind {
    /// Worker processes on this machine.
    Local,
    /// One Slurm job per run, against this store on a shared filesystem.
    Slurm,
}

/// Options of the queue executors (ignored by the local executor).
#[derive(clap::Args, Debug, Clone)]
pub(super) struct QueueArgs {
    /// Resubmissions of a run the scheduler killed (timeout, node failure, preemption).
    #[arg(long, default_value_t = 3, help_heading = "Queue executors")]
    max_requeue: u32,
    /// Submit and return; run the same command again to follow the jobs (it submits nothing twice).
    #[arg(long, help_heading = "Queue executors")]
    detach: bool,
    #[command(flatten)]
    slurm: SlurmArgs,
}

impl QueueArgs {
    /// The queue backend `kind` names, configured from its options; `None` for `local`.
    pub(super) fn backend(&self, kind: ExecutorKind) -> Option<Box<dyn QueueBackend>> {
        match kind {
            ExecutorKind::Local => None,
            ExecutorKind::Slurm => Some(Box::new(self.slurm.backend())),
        }
    }

    pub(super) fn options(&self) -> QueueOptions {
        QueueOptions {
            max_requeue: self.max_requeue,
            detach: self.detach,
            cpus_per_run: 1,
        }
    }
}

/// `repro run --executor slurm` options.
#[derive(clap::Args, Debug, Clone)]
struct SlurmArgs {
    /// Slurm partition (sbatch --partition).
    #[arg(long, help_heading = "Slurm")]
    partition: Option<String>,
    /// Slurm account (sbatch --account).
    #[arg(long, help_heading = "Slurm")]
    account: Option<String>,
    /// Wall-time limit of each job (sbatch --time, e.g. 4:00:00); a job killed at the limit is
    /// resubmitted and resumes from its checkpoint.
    #[arg(long, help_heading = "Slurm")]
    time: Option<String>,
    /// GPUs per job (sbatch --gpus-per-task).
    #[arg(long, default_value_t = 0, help_heading = "Slurm")]
    gpus_per_run: u32,
    /// Passed to sbatch as is; repeat for several (e.g. --sbatch-arg=--qos=long).
    #[arg(
        long = "sbatch-arg",
        allow_hyphen_values = true,
        help_heading = "Slurm"
    )]
    sbatch_args: Vec<String>,
}

impl SlurmArgs {
    fn backend(&self) -> Slurm {
        Slurm {
            partition: self.partition.clone(),
            account: self.account.clone(),
            time: self.time.clone(),
            gpus_per_run: self.gpus_per_run,
            sbatch_args: self.sbatch_args.clone(),
        }
    }
}

/// `repro run --executor <queue>`: prepare the datasets here (the login node has the network),
/// then submit every run that is not cached as a job of `backend` and follow them.
#[allow(clippy::too_many_arguments)]
pub(super) fn queue_cmd(
    ctx: &Ctx,
    pipeline_path: &Path,
    profile: &str,
    device: DeviceChoice,
    mirror: Option<String>,
    backend: &dyn QueueBackend,
    opts: &QueueOptions,
    targets: &[String],
) -> Result<()> {
    let plan = ctx.plan(profile, targets)?;
    // Keys are computed for the nodes' device; `auto` there resolves like here only if the
    // nodes match, so a GPU job needs --device cuda (or auto on a GPU login node).
    let dev = ctx.device(device)?;
    let threads = threads_for(&plan);
    let reporter = super::progress::Terminal::new(ctx.quiet);
    ctx.exec()
        .prepare_datasets(&plan, mirror.as_deref(), &reporter)?;
    // The jobs read a snapshot of the pipeline file, so editing it later changes nothing queued.
    let text = std::fs::read(pipeline_path)
        .with_context(|| format!("cannot read {}", pipeline_path.display()))?;
    let digest = repro_core::store::hash::sha256_bytes(&text);
    let snapshot = ctx
        .store
        .queue_dir(backend.name())?
        .join(profile)
        .join(format!("pipeline-{}.yaml", &digest[..12]));
    repro_core::store::atomic::write_atomic(&snapshot, &text)?;
    let abs = |p: &Path| std::path::absolute(p).unwrap_or_else(|_| p.to_path_buf());
    let invocation = Invocation {
        repro: std::env::current_exe().context("cannot locate the repro binary")?,
        pipeline: abs(&snapshot),
        store: abs(ctx.store.root()),
        datasets: abs(&ctx.datasets_dir),
        lock: abs(&ctx.lock_path),
        device: device_arg(device),
        fuse: ctx.fuse,
    };
    let exec = ctx.exec();
    let opts = QueueOptions {
        cpus_per_run: threads,
        ..opts.clone()
    };
    let queue = Queue {
        exec: &exec,
        backend,
        opts: &opts,
        invocation: &invocation,
    };
    let summary = queue.run(&plan, &dev, threads, &reporter)?;
    report_summary(ctx, profile, backend.name(), &summary)
}

/// `repro exec-run`: the one run on line `index` of `runs_file`, its upstream runs cached.
pub(super) fn exec_run_cmd(
    ctx: &Ctx,
    profile: &str,
    device: DeviceChoice,
    runs_file: &Path,
    index: usize,
) -> Result<()> {
    let text = std::fs::read_to_string(runs_file)
        .with_context(|| format!("cannot read {}", runs_file.display()))?;
    let run = text.lines().nth(index).with_context(|| {
        format!(
            "{} has {} runs: no line {index}",
            runs_file.display(),
            text.lines().count()
        )
    })?;
    let plan = ctx.plan(profile, &[run.to_string()])?;
    let dev = ctx.device(device)?;
    let threads = threads_for(&plan);
    // The run's fused group (which the plan brought along) is trained with it.
    let group = plan
        .run(run)
        .and_then(|r| r.fused.as_ref())
        .map(|f| &f.group);
    let peer = |id: &str| {
        plan.run(id)
            .and_then(|r| r.fused.as_ref())
            .is_some_and(|f| Some(&f.group) == group)
    };
    for (id, state) in ctx.exec().states(&plan, &dev, threads)? {
        if id != run && !peer(&id) && state.done_key().is_none() {
            return Err(Failure::Work(format!(
                "upstream run {id} of {run} is not finished: its job must succeed first"
            ))
            .into());
        }
    }
    run_cmd(
        ctx,
        profile,
        RunFlags::default(),
        &Parallel::one(),
        device,
        None,
        &[run.to_string()],
    )
}

/// `--device` as a job passes it on: what was asked for here.
fn device_arg(choice: DeviceChoice) -> String {
    match choice {
        DeviceChoice::Auto => "auto".into(),
        DeviceChoice::Cpu => "cpu".into(),
        DeviceChoice::Cuda(i) => format!("cuda:{i}"),
    }
}
