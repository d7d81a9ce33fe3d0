//! The `repro` command line: argument parsing (clap) and one function per subcommand, each a
//! thin layer over the pipeline, store and report libraries. Exit codes: 0 success, 1 work or
//! verification failed, 2 bad usage or invalid pipeline.

use std::collections::BTreeSet;
use std::io::IsTerminal;
use std::path::{Path, PathBuf};

use anyhow::Result;
use clap::{Parser, Subcommand};
use tabled::settings::Style;
use tabled::{Table, Tabled};

use repro_core::pipeline::executor::RunState;
use repro_core::pipeline::lockfile::LockFile;
use repro_core::pipeline::spec::{Determinism, Pipeline};
use repro_core::pipeline::{datasets, verify};
use repro_core::runtime::DeviceChoice;
use repro_core::store::Store;

mod ctx;
mod plan;
mod progress;
mod queue;
mod report;
mod run;

use ctx::{Ctx, Failure, threads_for};
use queue::{ExecutorKind, QueueArgs};
use run::{Parallel, RunFlags, run_cmd};

#[derive(Parser, Debug)]
#[command(
    name = "repro",
    version,
    about = "Replicate 'Understanding Decoupled and Early Weight Decay' as a content-addressed pipeline"
)]
pub struct Cli {
    /// The pipeline file.
    #[arg(
        long,
        global = true,
        default_value = "pipeline.yaml",
        env = "REPRO_PIPELINE"
    )]
    pipeline: PathBuf,
    /// The store (objects, run records); default: `artifacts/` beside the pipeline file.
    #[arg(long, global = true, env = "REPRO_STORE")]
    store: Option<PathBuf>,
    /// Where datasets are downloaded and extracted; default: `datasets/` beside the pipeline file.
    #[arg(long, global = true, env = "REPRO_DATASETS")]
    datasets: Option<PathBuf>,
    /// The lock file (dataset digests, locked outputs); default: `pipeline.lock` beside the
    /// pipeline file.
    #[arg(long, global = true, env = "REPRO_LOCK")]
    lock: Option<PathBuf>,
    /// Only errors and the final summary; no progress bars.
    #[arg(long, short, global = true)]
    quiet: bool,
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand, Debug)]
enum Cmd {
    /// Show every run with cached / will-run and the reason; changes nothing.
    Plan {
        #[arg(long, default_value = "paper", env = "REPRO_PROFILE")]
        profile: String,
        #[arg(long, default_value = "auto")]
        device: DeviceChoice,
        /// One JSON object per run (id, experiment, kind, resolved params, upstream, state, key,
        /// reasons) instead of the table, for scripts such as scripts/cost_model.py.
        #[arg(long)]
        json: bool,
        /// Experiments, run ids or datasets (default: all).
        targets: Vec<String>,
    },
    /// Run targets and their dependencies; cached runs are skipped. A run is cached when its
    /// record exists and every output is intact (stat unchanged since it was verified, else
    /// re-hashed); a corrupt output is moved to quarantine/ and its run rebuilt.
    Run {
        #[arg(long, default_value = "paper", env = "REPRO_PROFILE")]
        profile: String,
        /// Rerun the targets (not their dependencies) even when cached.
        #[arg(long)]
        force: bool,
        /// Re-hash every output of cached runs instead of trusting unchanged stats.
        #[arg(long)]
        verify: bool,
        /// Fail the runs whose cached outputs are corrupt or missing instead of rebuilding them.
        #[arg(long)]
        no_repair: bool,
        #[command(flatten)]
        parallel: Parallel,
        #[arg(long, default_value = "auto")]
        device: DeviceChoice,
        /// A folder or base URL holding dataset files, tried before upstream.
        #[arg(long)]
        mirror: Option<String>,
        /// Where runs execute: `local` (worker processes on this machine) or `slurm` (one Slurm
        /// job per run, against this store on a shared filesystem).
        #[arg(long, value_enum, default_value = "local")]
        executor: ExecutorKind,
        #[command(flatten)]
        queue: QueueArgs,
        targets: Vec<String>,
    },
    /// Internal: run exactly one run of a runs file against the store (what a Slurm job does);
    /// its upstream runs must be finished.
    #[command(hide = true)]
    ExecRun {
        #[arg(long)]
        profile: String,
        #[arg(long, default_value = "auto")]
        device: DeviceChoice,
        /// One run id per line.
        #[arg(long)]
        runs_file: PathBuf,
        /// The line to run (a Slurm array task id).
        #[arg(long, default_value_t = 0)]
        index: usize,
    },
    /// Summarise the store and the profile's runs.
    Status {
        #[arg(long, default_value = "paper", env = "REPRO_PROFILE")]
        profile: String,
        #[arg(long, default_value = "auto")]
        device: DeviceChoice,
    },
    /// Re-hash every object the run records and the lock reference; compare locked digests.
    Verify {
        /// Also compare this profile's locked run outputs (default: only re-hash).
        #[arg(long)]
        profile: Option<String>,
        /// With --profile: compare only the locked runs these targets (experiments or run ids)
        /// name, e.g. a few runs rerun on a fresh store.
        #[arg(requires = "profile")]
        targets: Vec<String>,
    },
    /// Download datasets (all declared ones by default) and check their digests.
    Fetch {
        #[arg(long)]
        mirror: Option<String>,
        /// Accept a new file for these datasets' files that pipeline.yaml gives no digest for:
        /// forget the sha256 pipeline.lock recorded at their first verified download and pin
        /// what is fetched now (the runs that read them get new keys).
        #[arg(long, value_name = "DATASET")]
        repin: Vec<String>,
        #[arg(value_name = "DATASET")]
        names: Vec<String>,
    },
    /// List objects no run record or lock entry refers to; `--apply` deletes them.
    Gc {
        #[arg(long)]
        apply: bool,
    },
    /// Evaluate the claims on the profile's finished runs; print the tables and write
    /// report/<profile>/ (report.md, report.html, claims.json, CSVs, figures).
    Report {
        #[arg(long, default_value = "paper", env = "REPRO_PROFILE")]
        profile: String,
        #[arg(long, default_value = "auto")]
        device: DeviceChoice,
        /// Folder the report folders go in (default: `report/` beside the pipeline file).
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// Rewrite the profile's entry of pipeline.lock from the store.
    Lock {
        #[arg(long, default_value = "smoke", env = "REPRO_PROFILE")]
        profile: String,
        #[arg(long, default_value = "auto")]
        device: DeviceChoice,
    },
}

/// Parse arguments, run, and return the exit code.
pub fn main() -> i32 {
    let cli = match Cli::try_parse() {
        Ok(c) => c,
        Err(e) => {
            let _ = e.print();
            return if e.use_stderr() { 2 } else { 0 };
        }
    };
    let filter = tracing_subscriber::EnvFilter::try_from_env("REPRO_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .try_init();
    match dispatch(cli) {
        Ok(()) => 0,
        Err(e) => {
            if let Some(spec) = e.downcast_ref::<repro_core::pipeline::spec::SpecErrors>() {
                eprint!("error: {spec}");
                return 2;
            }
            match e.downcast_ref::<Failure>() {
                Some(Failure::Usage(_)) => {
                    eprintln!("error: {e:#}");
                    2
                }
                _ => {
                    eprintln!("error: {e:#}");
                    1
                }
            }
        }
    }
}

fn dispatch(cli: Cli) -> Result<()> {
    let pipeline = Pipeline::load(&cli.pipeline)?;
    let pipeline_path = cli.pipeline.clone();
    let base = cli
        .pipeline
        .parent()
        .map(Path::to_path_buf)
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or_else(|| PathBuf::from("."));
    let store = Store::open(&cli.store.unwrap_or_else(|| base.join("artifacts")))?;
    let mut ctx = Ctx {
        datasets_dir: cli.datasets.unwrap_or_else(|| base.join("datasets")),
        lock_path: cli.lock.unwrap_or_else(|| base.join("pipeline.lock")),
        base,
        pipeline,
        store,
        quiet: cli.quiet,
    };
    match cli.cmd {
        Cmd::Plan {
            profile,
            device,
            json,
            targets,
        } => plan::plan_cmd(&ctx, &profile, device, json, &targets),
        Cmd::Run {
            profile,
            force,
            verify,
            no_repair,
            parallel,
            device,
            mirror,
            executor,
            queue,
            targets,
        } => match queue.backend(executor) {
            None => {
                if verify {
                    ctx.store.set_rehash(true);
                }
                let flags = RunFlags { force, no_repair };
                run_cmd(&ctx, &profile, flags, &parallel, device, mirror, &targets)
            }
            Some(backend) => {
                if force {
                    return Err(Failure::Usage(format!(
                        "--force is not supported with --executor {}: run the targets with \
                         --force locally, or remove their records",
                        backend.name()
                    ))
                    .into());
                }
                queue::queue_cmd(
                    &ctx,
                    &pipeline_path,
                    &profile,
                    device,
                    mirror,
                    backend.as_ref(),
                    &queue.options(),
                    &targets,
                )
            }
        },
        Cmd::ExecRun {
            profile,
            device,
            runs_file,
            index,
        } => queue::exec_run_cmd(&ctx, &profile, device, &runs_file, index),
        Cmd::Status { profile, device } => status_cmd(&ctx, &profile, device),
        Cmd::Verify { profile, targets } => verify_cmd(&ctx, profile, &targets),
        Cmd::Fetch {
            mirror,
            repin,
            names,
        } => fetch_cmd(&ctx, mirror, &repin, &names),
        Cmd::Gc { apply } => gc_cmd(&ctx, apply),
        Cmd::Report {
            profile,
            device,
            out,
        } => report::report_cmd(&ctx, &profile, device, out.as_deref()),
        Cmd::Lock { profile, device } => lock_cmd(&ctx, &profile, device),
    }
}

/// What `repro run` does with cached runs.
#[derive(Tabled)]
struct StatusRow {
    experiment: String,
    runs: usize,
    cached: usize,
    to_run: usize,
}

fn status_cmd(ctx: &Ctx, profile: &str, device: DeviceChoice) -> Result<()> {
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
                to_run: 0,
            });
        }
        if let Some(r) = rows.last_mut() {
            r.runs += 1;
            match s {
                RunState::Cached { .. } => r.cached += 1,
                RunState::WillRun { .. } => r.to_run += 1,
            }
        }
    }
    println!("{}", Table::new(&rows).with(Style::sharp()));
    let records = ctx.store.record_count();
    println!(
        "profile {profile}: {} runs, {} cached; store {}: {records} run records",
        states.len(),
        states
            .iter()
            .filter(|(_, s)| matches!(s, RunState::Cached { .. }))
            .count(),
        ctx.store.root().display()
    );
    Ok(())
}

fn verify_cmd(ctx: &Ctx, profile: Option<String>, targets: &[String]) -> Result<()> {
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
    println!(
        "verified {} objects, {} locked runs, {} dataset files, {} extracted files: all match",
        v.objects, v.locked_runs, v.dataset_files, v.extracted_files
    );
    Ok(())
}

fn fetch_cmd(ctx: &Ctx, mirror: Option<String>, repin: &[String], names: &[String]) -> Result<()> {
    let mut names: Vec<String> = if names.is_empty() && repin.is_empty() {
        ctx.pipeline.datasets.keys().cloned().collect()
    } else {
        names.to_vec()
    };
    for r in repin {
        if !names.contains(r) {
            names.push(r.clone());
        }
    }
    let fancy = !ctx.quiet && std::io::stderr().is_terminal();
    let opts = datasets::fetch_options(&ctx.store, mirror.as_deref(), fancy);
    let _held = ctx.store.lock_named("pipeline-lock")?;
    let mut lock = LockFile::load(&ctx.lock_path)?;
    let mut failures = Vec::new();
    for name in &names {
        let Some(spec) = ctx.pipeline.datasets.get(name) else {
            return Err(Failure::Usage(format!(
                "dataset `{name}` is not declared in {}",
                ctx.pipeline.path.display()
            ))
            .into());
        };
        let repinning = repin.contains(name);
        for f in &spec.files {
            let locked = lock.datasets.get(name).and_then(|m| m.get(&f.name));
            let (pins, from_lock) = if repinning {
                // pipeline.yaml's own digests still hold; only the lock's are forgotten.
                (f.clone(), false)
            } else {
                datasets::effective_pins(f, locked)
            };
            let was = locked.map(|l| l.sha256.clone());
            match repro_core::data::fetch::fetch_file(&pins, &ctx.datasets_dir.join(name), &opts) {
                Ok(got) => {
                    let changed = was.as_ref().filter(|w| **w != got.sha256);
                    println!(
                        "{name}/{}: ok ({} bytes, sha256 {}){}",
                        f.name,
                        got.size,
                        got.sha256,
                        match changed {
                            Some(w) => format!("; repinned (was {w})"),
                            None => String::new(),
                        }
                    );
                    lock.record_dataset_file(name, &f.name, &got.sha256, &got.md5, got.size);
                }
                Err(e) => {
                    eprintln!("{name}/{}: {e:#}", f.name);
                    if from_lock {
                        eprintln!(
                            "  (pipeline.lock pinned this file's sha256 at its first verified \
                             download; to accept a new file, put it in {} and run `repro fetch \
                             --repin {name}`)",
                            ctx.datasets_dir.join(name).display()
                        );
                    }
                    failures.push(format!("{name}/{}", f.name));
                }
            }
        }
    }
    lock.save(&ctx.lock_path)?;
    if !failures.is_empty() {
        return Err(Failure::Work(format!("could not fetch: {}", failures.join(", "))).into());
    }
    Ok(())
}

fn gc_cmd(ctx: &Ctx, apply: bool) -> Result<()> {
    let lock = LockFile::load(&ctx.lock_path)?;
    let keep: BTreeSet<String> = lock.digests().cloned().collect();
    let found = ctx.store.gc(&keep, apply)?;
    let verb = if apply { "removed" } else { "would remove" };
    for key in &found.finished_work {
        println!("{verb} work folder of finished run {key}");
    }
    for key in &found.interrupted_work {
        println!("kept work folder of interrupted run {key} (the next run resumes from it)");
    }
    for (sha, size) in &found.objects {
        println!("{verb} {sha} ({size} bytes)");
    }
    let (n, bytes) = (found.objects.len(), found.bytes());
    if apply {
        println!("removed {n} objects, {bytes} bytes");
    } else {
        println!("{n} unreferenced objects, {bytes} bytes; run `repro gc --apply` to remove them");
    }
    Ok(())
}

fn lock_cmd(ctx: &Ctx, profile: &str, device: DeviceChoice) -> Result<()> {
    let plan = ctx.plan(profile, &[])?;
    let device = ctx.device(device)?;
    let mut lock = LockFile::load(&ctx.lock_path)?;
    let n = verify::lock_profile(&ctx.exec(), &plan, &mut lock, &device, threads_for(&plan))
        .map_err(|e| Failure::Work(format!("{e:#}")))?;
    lock.save(&ctx.lock_path)?;
    println!(
        "locked {n} bitwise runs of profile {profile} in {}",
        ctx.lock_path.display()
    );
    Ok(())
}
