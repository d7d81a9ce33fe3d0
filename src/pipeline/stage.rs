//! Stage kinds: the unit of work an experiment names with `kind:`. Each kind declares its
//! parameters and an implementation version (part of every run key), and runs one resolved run
//! into an output folder that the executor then moves into the store.

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde_json::{Map, Value};

use super::params::ParamSpec;

/// An extracted dataset a run reads.
#[derive(Debug, Clone)]
pub struct DatasetView {
    pub name: String,
    /// The dataset's format, as declared in pipeline.yaml (e.g. `cifar10-binary`).
    pub format: String,
    /// Folder holding the extracted upstream layout.
    pub root: PathBuf,
}

/// Outputs of an upstream run, as verified object paths.
#[derive(Debug, Clone)]
pub struct UpstreamRun {
    pub run_id: String,
    pub params: Map<String, Value>,
    pub outputs: BTreeMap<String, PathBuf>,
}

/// Everything a stage may read while it runs.
pub struct StageContext<'a> {
    pub run_id: &'a str,
    pub params: &'a Map<String, Value>,
    pub datasets: &'a BTreeMap<String, DatasetView>,
    pub upstream: &'a [UpstreamRun],
    /// Empty folder for the outputs; every file left here becomes an output.
    pub out_dir: PathBuf,
    pub device: tch::Device,
    /// Reports progress (units done of a total) to the executor's progress bar.
    pub progress: &'a dyn Fn(u64, u64, &str),
}

/// What a finished stage reports besides its files.
#[derive(Debug, Default)]
pub struct StageOutcome {
    /// Summary metrics kept in the run record (the full series live in output files).
    pub metrics: Map<String, Value>,
}

/// A registered kind of stage.
pub trait StageKind: Sync {
    fn name(&self) -> &'static str;
    /// Bump when a change to the implementation changes results: it is part of every run key.
    fn version(&self) -> u32;
    fn params(&self) -> &'static [ParamSpec];
    /// Dataset formats this kind can read.
    fn dataset_formats(&self) -> &'static [&'static str];
    fn run(&self, ctx: &StageContext) -> anyhow::Result<StageOutcome>;
}

/// All stage kinds this build knows.
pub fn registry() -> &'static [&'static dyn StageKind] {
    static KINDS: &[&dyn StageKind] = &[&crate::train::vision::VisionStage];
    KINDS
}

/// Look a kind up by name.
pub fn kind(name: &str) -> Option<&'static dyn StageKind> {
    registry().iter().copied().find(|k| k.name() == name)
}

/// Dataset formats the readers understand.
pub const DATASET_FORMATS: &[&str] = &[
    "cifar10-binary",
    "cifar100-binary",
    "tinyimagenet-folder",
    "wikitext-tokens",
];
