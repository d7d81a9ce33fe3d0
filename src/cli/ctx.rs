//! What every subcommand works with: the loaded pipeline, the store and the paths beside it
//! (`Ctx`), the failure classes mapped to exit codes, and the threads a run gets.

use std::path::PathBuf;

use anyhow::Result;

use repro_core::pipeline::executor::Executor;
use repro_core::pipeline::plan::Plan;
use repro_core::pipeline::spec::Pipeline;
use repro_core::runtime::{Device, DeviceChoice};
use repro_core::store::Store;

/// Failure classes mapped to exit codes.
#[derive(Debug, thiserror::Error)]
pub enum Failure {
    #[error("{0}")]
    Usage(String),
    #[error("{0}")]
    Work(String),
}

pub(super) struct Ctx {
    pub pipeline: Pipeline,
    /// The folder of the pipeline file.
    pub base: PathBuf,
    pub store: Store,
    pub datasets_dir: PathBuf,
    pub lock_path: PathBuf,
    pub quiet: bool,
    /// Columns the printed tables may take; `None` with `--wide` (see `term::table_width`).
    pub width: Option<usize>,
    /// `--fuse N`: the fused group size in place of the profile's.
    pub fuse: Option<usize>,
}

impl Ctx {
    pub(super) fn exec(&self) -> Executor<'_> {
        Executor {
            pipeline: &self.pipeline,
            store: &self.store,
            datasets_dir: self.datasets_dir.clone(),
            lock_path: self.lock_path.clone(),
        }
    }
    pub(super) fn device(&self, choice: DeviceChoice) -> Result<Device> {
        repro_core::runtime::probe::resolve(choice, &self.store.cache_dir())
    }
    pub(super) fn plan(&self, profile: &str, targets: &[String]) -> Result<Plan> {
        Plan::resolve_fused(&self.pipeline, profile, targets, self.fuse)
            .map_err(|e| Failure::Usage(format!("{e:#}")).into())
    }
}

pub(super) fn threads_for(plan: &Plan) -> usize {
    threads_for_jobs(plan, 1)
}

/// Threads per run: the profile's, else the cores split over `jobs` runs at once.
pub(super) fn threads_for_jobs(plan: &Plan, jobs: usize) -> usize {
    plan.threads.unwrap_or_else(|| {
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        (cores / jobs.max(1)).max(1)
    })
}
