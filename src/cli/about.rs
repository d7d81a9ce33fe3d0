//! What the command says about itself: the `--version` text (crate version, git commit, the
//! libtorch the worker loads, cargo features), the examples under `--help`, and the shell
//! completions and man page generated from the clap definitions.

use std::io::Write;

use anyhow::Result;
use clap::CommandFactory;
use clap_complete::Shell;

use super::Cli;

/// `repro --help`'s examples: a comment line over each command, so clap's wrapping at narrow
/// terminals never splits a command from its words.
pub(super) const EXAMPLES: &str = "\
Examples:
  # What would run, and why; changes nothing
  repro plan --profile smoke
  # Run the smoke profile (minutes on a CPU), then its verdicts and report/smoke/
  repro run --profile smoke && repro report --profile smoke
  # Per-experiment counts as JSON
  repro status --profile cpu --json
  # Completions for bash
  repro completions bash > ~/.local/share/bash-completion/completions/repro";

pub(super) const RUN_EXAMPLES: &str = "\
Examples:
  # Every run of the profile; cached ones are skipped
  repro run --profile smoke
  # One experiment and what it depends on, two runs at once
  repro run --profile cpu --jobs 2 cifar10_resnet18
  # Spread over four GPUs, two runs on each
  repro run --profile reduced --gpus 0,1,2,3 --runs-per-gpu 2
  # One Slurm job per run; returns once they are submitted
  repro run --profile paper --yes --executor slurm --time 4:00:00 --detach";

pub(super) const PLAN_EXAMPLES: &str = "\
Examples:
  # Cached or will run, with the reason, for every run
  repro plan --profile smoke
  # One experiment and what it depends on
  repro plan --profile cpu cifar10_resnet18
  # One JSON object per run (resolved params, key, state)
  repro plan --profile paper --json | head -n 3";

pub(super) const REPORT_EXAMPLES: &str = "\
Examples:
  # The claims table; writes report/smoke/
  repro report --profile smoke
  # Every column at full width, e.g. for a pager
  repro report --profile cpu --wide | less -S
  # Claims, checks and paths as one JSON document
  repro report --profile cpu --json
  # One line per claim, as on a narrow terminal
  COLUMNS=80 repro report --profile cpu";

pub(super) const SHARE_EXAMPLES: &str = "\
Examples:
  # The lab publishes its finished paper profile (remotes: {lab: s3://bucket/repro} in pipeline.yaml)
  repro push --profile paper --remote lab
  # A reviewer, on any machine: fetch, check every byte, render the same report, training nothing
  repro pull --profile paper --remote https://example.org/repro-results
  repro verify --profile paper && repro report --profile paper
  # One bundle file instead of a remote
  repro export --profile paper paper.tar && repro import paper.tar";

pub(super) const VERIFY_EXAMPLES: &str = "\
Examples:
  # Re-hash every stored object and dataset file
  repro verify
  # Also compare the profile's locked run outputs
  repro verify --profile cpu
  # Only the locked runs of one experiment (e.g. rerun on a fresh store)
  repro verify --profile cpu cifar10_resnet18
  # Counts and problems as one JSON document
  repro verify --json";

/// The one-line version (`-V`): crate version, commit, libtorch, features.
fn short_version() -> String {
    format!(
        "{} (commit {}; libtorch {}; features: {})",
        env!("CARGO_PKG_VERSION"),
        env!("REPRO_GIT_COMMIT"),
        repro_core::runtime::libtorch_version(),
        env!("REPRO_FEATURES"),
    )
}

/// `--version`: the same, one fact a line, with where the libtorch is.
fn long_version() -> String {
    let dir = repro_core::runtime::libtorch_dir();
    let dir = if dir.as_os_str().is_empty() {
        "not found (build repro-worker: `make build`)".to_string()
    } else {
        dir.display().to_string()
    };
    format!(
        "{}\ncommit:   {}\nlibtorch: {} (the worker's, at {dir})\nfeatures: {}",
        env!("CARGO_PKG_VERSION"),
        env!("REPRO_GIT_COMMIT"),
        repro_core::runtime::libtorch_version(),
        env!("REPRO_FEATURES"),
    )
}

/// The clap command with the version texts, which are only known at run time (the libtorch
/// is the worker's, found on disk).
pub(super) fn command() -> clap::Command {
    let asked = std::env::args().any(|a| a == "-V" || a == "--version");
    let cmd = Cli::command();
    if !asked {
        // Reading the worker's libtorch costs a file read; only --version needs it.
        return cmd;
    }
    // clap keeps `&'static str`s; this runs once per process.
    let short: &'static str = Box::leak(short_version().into_boxed_str());
    let long: &'static str = Box::leak(long_version().into_boxed_str());
    cmd.version(short).long_version(long)
}

/// `repro completions SHELL`: the completion script on stdout.
pub(super) fn completions(shell: Shell) -> Result<()> {
    let mut cmd = Cli::command();
    let mut out = std::io::stdout().lock();
    clap_complete::generate(shell, &mut cmd, "repro", &mut out);
    out.flush()?;
    Ok(())
}

/// `repro man`: the man page (roff) on stdout.
pub(super) fn man() -> Result<()> {
    let mut out = std::io::stdout().lock();
    clap_mangen::Man::new(Cli::command()).render(&mut out)?;
    out.flush()?;
    Ok(())
}
