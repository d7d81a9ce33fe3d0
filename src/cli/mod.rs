//! The `repro` command line: argument parsing (clap) and one function per subcommand, each a
//! thin layer over the pipeline, store and report libraries. Exit codes: 0 success, 1 work or
//! verification failed, 2 bad usage or invalid pipeline.

use std::path::{Path, PathBuf};

use anyhow::Result;
use clap::{FromArgMatches, Parser, Subcommand};

use repro_core::pipeline::locate::locate;
use repro_core::pipeline::spec::Pipeline;
use repro_core::runtime::DeviceChoice;
use repro_core::store::Store;

mod about;
mod checkout;
mod ctx;
mod dag;
mod inspect;
mod maintain;
mod pick;
mod plan;
mod profile;
mod progress;
mod queue;
mod report;
mod run;
mod share;
mod show;
mod term;
mod tidy;

use ctx::{Ctx, Failure};
use inspect::{status_cmd, verify_cmd};
use maintain::{fetch_cmd, gc_cmd, lock_cmd};
use profile::Selection;
use queue::{ExecutorKind, QueueArgs};
use run::{Parallel, RunFlags, run_cmd};

#[derive(Parser, Debug)]
#[command(
    name = "repro",
    version,
    about = "Replicate 'Understanding Decoupled and Early Weight Decay' as a content-addressed pipeline",
    after_help = about::EXAMPLES
)]
pub struct Cli {
    /// The pipeline file; default: the nearest `pipeline.yaml` in this folder or a folder above
    /// it.
    #[arg(long, global = true, env = "REPRO_PIPELINE", value_name = "FILE")]
    pipeline: Option<PathBuf>,
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
    /// Print tables with every column at full width instead of wrapping them to the terminal
    /// (`$COLUMNS`, else the terminal's width, else 100 columns when piped).
    #[arg(long, global = true)]
    wide: bool,
    /// Train up to N runs of a fusable kind (dqn) together as one stacked model, in place of
    /// the profile's `fuse` (1: every run alone). Part of the runs' keys: give `plan`,
    /// `status` and `report` the same N as `run`.
    #[arg(long, global = true, env = "REPRO_FUSE", value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
    fuse: Option<u64>,
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand, Debug)]
enum Cmd {
    /// Show every run with cached / will-run and the reason; changes nothing.
    #[command(after_help = about::PLAN_EXAMPLES)]
    Plan {
        #[command(flatten)]
        on: Selection,
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
    #[command(after_help = about::RUN_EXAMPLES)]
    Run {
        #[command(flatten)]
        on: Selection,
        /// Rerun the targets (not their dependencies) even when cached.
        #[arg(long)]
        force: bool,
        /// Start a profile that asks for confirmation (`confirm: true`, the paper's), after its
        /// runs and cost are printed.
        #[arg(long, short = 'y')]
        yes: bool,
        /// Re-hash every output of cached runs instead of trusting unchanged stats.
        #[arg(long)]
        verify: bool,
        /// Fail the runs whose cached outputs are corrupt or missing instead of rebuilding them.
        #[arg(long)]
        no_repair: bool,
        #[command(flatten)]
        parallel: Parallel,
        /// A folder or base URL holding dataset files, tried before upstream.
        #[arg(long)]
        mirror: Option<String>,
        /// Where runs execute: `local` (worker processes on this machine) or `slurm` (one Slurm
        /// job per run, against this store on a shared filesystem).
        #[arg(long, value_enum, default_value = "local")]
        executor: ExecutorKind,
        #[command(flatten)]
        queue: QueueArgs,
        /// Experiments, run ids or datasets to run, with what they depend on (default: all).
        targets: Vec<String>,
    },
    /// Internal: run exactly one run of a runs file against the store (what a Slurm job does);
    /// its upstream runs must be finished.
    #[command(hide = true)]
    ExecRun {
        /// The profile the runs file was written for.
        #[arg(long)]
        profile: String,
        /// Where runs execute (keys differ by device): auto (CUDA when found, else the CPU),
        /// cpu, cuda or cuda:N.
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
        #[command(flatten)]
        on: Selection,
        /// One JSON document on stdout: per-experiment runs, cached and to-run counts, totals.
        #[arg(long)]
        json: bool,
    },
    /// Re-hash every object the run records and the lock reference; compare locked digests.
    #[command(after_help = about::VERIFY_EXAMPLES)]
    Verify {
        /// Also compare this profile's locked run outputs (default: only re-hash).
        #[arg(long)]
        profile: Option<String>,
        /// With --profile: compare only the locked runs these targets (experiments or run ids)
        /// name, e.g. a few runs rerun on a fresh store.
        #[arg(requires = "profile")]
        targets: Vec<String>,
        /// One JSON document on stdout: the counts and the problems found (exit 1 all the same).
        #[arg(long)]
        json: bool,
    },
    /// Download datasets (all declared ones by default) and check their digests.
    Fetch {
        /// A folder or base URL holding dataset files, tried before upstream.
        #[arg(long)]
        mirror: Option<String>,
        /// Accept a new file for these datasets' files that pipeline.yaml gives no digest for:
        /// forget the sha256 pipeline.lock recorded at their first verified download and pin
        /// what is fetched now (the runs that read them get new keys).
        #[arg(long, value_name = "DATASET")]
        repin: Vec<String>,
        /// Datasets to fetch (default: every declared one).
        #[arg(value_name = "DATASET")]
        names: Vec<String>,
    },
    /// List objects no run record or lock entry refers to; `--apply` deletes them.
    Gc {
        /// Delete what is listed (default: only list it).
        #[arg(long)]
        apply: bool,
    },
    /// Evaluate the claims on the profile's finished runs; print the tables and write
    /// report/<profile>/ (report.md, report.html, claims.json, CSVs, figures).
    #[command(after_help = about::REPORT_EXAMPLES)]
    Report {
        #[command(flatten)]
        on: Selection,
        /// Folder the report folders go in (default: `report/` beside the pipeline file).
        #[arg(long)]
        out: Option<PathBuf>,
        /// One JSON document on stdout instead of the tables: claims, checks (verdict,
        /// measured, per-arm means and 95% intervals), the report key and its files.
        #[arg(long)]
        json: bool,
    },
    /// Rewrite the profile's entry of pipeline.lock from the store.
    Lock {
        #[command(flatten)]
        on: Selection,
    },
    /// One run: its parameters, key, state (cached, will run and why, failed), outputs with
    /// their store paths, upstream runs and the end of its log.
    Show {
        #[command(flatten)]
        on: Selection,
        /// One JSON object instead of the text.
        #[arg(long)]
        json: bool,
        /// How many lines of the end of its log to print.
        #[arg(long, default_value_t = 20, value_name = "N")]
        log_lines: usize,
        /// A run id, `experiment/axis=value,…` with its pairs in any order.
        run: String,
    },
    /// Put a finished run's outputs in DIR under their own names (hard links to the store
    /// objects where possible, else copies); .safetensors files carry the run in their metadata.
    Checkout {
        #[command(flatten)]
        on: Selection,
        /// Replace files in DIR that differ from the run's outputs.
        #[arg(long)]
        force: bool,
        /// A run id, `experiment/axis=value,…` with its pairs in any order.
        run: String,
        /// The folder to put the outputs in (created).
        dir: PathBuf,
    },
    /// Every finished run × step × metric of a profile as one long CSV
    /// (experiment,run,kind,step_unit,step,metric,value,params), for pandas.
    Tidy {
        #[command(flatten)]
        on: Selection,
        /// Write the CSV to FILE (atomically) instead of stdout.
        #[arg(long, value_name = "FILE")]
        out: Option<PathBuf>,
    },
    /// The plan's graph: datasets and runs with what each reads, as text or Graphviz DOT.
    Dag {
        #[command(flatten)]
        on: Selection,
        /// Graphviz DOT (`repro dag --dot | dot -Tsvg > plan.svg`) instead of the text.
        #[arg(long)]
        dot: bool,
        /// Experiments, run ids or datasets, with what they depend on (default: all).
        targets: Vec<String>,
    },
    /// Copy the profile's finished runs (records and objects), its generated datasets and its
    /// report to a remote, skipping objects already there; the publication goes last.
    #[command(after_help = about::SHARE_EXAMPLES)]
    Push {
        #[command(flatten)]
        on: Selection,
        /// A remote's name (pipeline.yaml's or your config's `remotes:`) or URL: file://PATH,
        /// s3://BUCKET/PREFIX; default: the only remote declared.
        #[arg(long, env = "REPRO_REMOTE")]
        remote: Option<String>,
        /// Experiments or run ids to push, with their upstream runs (default: the profile).
        targets: Vec<String>,
    },
    /// Bring a profile's published runs from a remote into the store, each object checked
    /// against its sha256; `verify` and `report` then read them, training nothing.
    #[command(after_help = about::SHARE_EXAMPLES)]
    Pull {
        #[command(flatten)]
        on: Selection,
        /// A remote's name or URL: file://PATH, s3://BUCKET/PREFIX, https://HOST/PATH
        /// (read-only); default: the only remote declared.
        #[arg(long, env = "REPRO_REMOTE")]
        remote: Option<String>,
        /// Experiments or run ids to pull, with their upstream runs (default: the profile).
        targets: Vec<String>,
    },
    /// Write the profile's finished runs, generated datasets, report, pipeline.yaml and lock
    /// entry to one tar file with a manifest of every digest (for Zenodo or a paper's page).
    Export {
        #[command(flatten)]
        on: Selection,
        /// The tar file to write.
        file: PathBuf,
        /// Experiments or run ids to export, with their upstream runs (default: the profile).
        targets: Vec<String>,
    },
    /// Read a bundle from `repro export` into the store; every digest is checked before
    /// anything enters it.
    Import {
        /// The tar file to read.
        file: PathBuf,
    },
    /// Print a shell completion script, e.g. `repro completions bash >
    /// ~/.local/share/bash-completion/completions/repro`.
    Completions {
        /// The shell to complete for.
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
    /// Print the man page (roff), e.g. `repro man > ~/.local/share/man/man1/repro.1`.
    Man,
}

/// Parse arguments, run, and return the exit code.
pub fn main() -> i32 {
    let parsed = about::command()
        .try_get_matches()
        .and_then(|m| Cli::from_arg_matches(&m));
    let cli = match parsed {
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
    // Neither needs a pipeline file.
    let done = match cli.cmd {
        Cmd::Completions { shell } => about::completions(shell),
        Cmd::Man => about::man(),
        _ => dispatch(cli),
    };
    match done {
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
    let cwd = std::env::current_dir()?;
    let pipeline_path =
        locate(cli.pipeline.as_deref(), &cwd).map_err(|e| Failure::Usage(e.to_string()))?;
    let pipeline = Pipeline::load(&pipeline_path)?;
    let base = pipeline_path
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
        width: term::table_width(cli.wide),
        fuse: cli.fuse.map(|n| n as usize),
    };
    match cli.cmd {
        Cmd::Plan { on, json, targets } => {
            let profile = ctx.pick_profile(&on)?;
            plan::plan_cmd(&ctx, &profile, on.device, json, &targets)
        }
        Cmd::Run {
            on,
            force,
            yes,
            verify,
            no_repair,
            parallel,
            mirror,
            executor,
            queue,
            targets,
        } => {
            let chosen = ctx.profile(&on)?;
            let device = on.device;
            ctx.before_running(&chosen, &ctx.plan(&chosen.name, &targets)?, yes)?;
            let profile = chosen.name;
            match queue.backend(executor) {
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
            }
        }
        Cmd::ExecRun {
            profile,
            device,
            runs_file,
            index,
        } => queue::exec_run_cmd(&ctx, &profile, device, &runs_file, index),
        Cmd::Status { on, json } => status_cmd(&ctx, &ctx.pick_profile(&on)?, on.device, json),
        Cmd::Verify {
            profile,
            targets,
            json,
        } => verify_cmd(&ctx, profile, &targets, json),
        Cmd::Fetch {
            mirror,
            repin,
            names,
        } => fetch_cmd(&ctx, mirror, &repin, &names),
        Cmd::Gc { apply } => gc_cmd(&ctx, apply),
        Cmd::Report { on, out, json } => {
            let profile = ctx.pick_profile(&on)?;
            report::report_cmd(&ctx, &profile, on.device, out.as_deref(), json)
        }
        Cmd::Lock { on } => lock_cmd(&ctx, &ctx.pick_profile(&on)?, on.device),
        Cmd::Show {
            on,
            json,
            log_lines,
            run,
        } => {
            let profile = ctx.pick_profile(&on)?;
            let args = show::ShowArgs {
                profile: &profile,
                device: on.device,
                json,
                log_lines,
                target: &run,
            };
            show::show_cmd(&ctx, &args)
        }
        Cmd::Checkout {
            on,
            force,
            run,
            dir,
        } => {
            let profile = ctx.pick_profile(&on)?;
            let args = checkout::CheckoutArgs {
                profile: &profile,
                device: on.device,
                target: &run,
                dir: &dir,
                force,
            };
            checkout::checkout_cmd(&ctx, &args)
        }
        Cmd::Tidy { on, out } => {
            let profile = ctx.pick_profile(&on)?;
            tidy::tidy_cmd(&ctx, &profile, on.device, out.as_deref())
        }
        Cmd::Dag { on, dot, targets } => {
            let plan = ctx.plan(&ctx.pick_profile(&on)?, &targets)?;
            print!(
                "{}",
                if dot {
                    dag::dot(&plan)
                } else {
                    dag::text(&plan)
                }
            );
            Ok(())
        }
        Cmd::Push {
            on,
            remote,
            targets,
        } => share::push_cmd(&ctx, &on, remote.as_deref(), &targets),
        Cmd::Pull {
            on,
            remote,
            targets,
        } => share::pull_cmd(&ctx, &on, remote.as_deref(), &targets),
        Cmd::Export { on, file, targets } => share::export_cmd(&ctx, &on, &file, &targets),
        Cmd::Import { file } => share::import_cmd(&ctx, &file),
        // `main` answers these before a pipeline is loaded.
        Cmd::Completions { shell } => about::completions(shell),
        Cmd::Man => about::man(),
    }
}
