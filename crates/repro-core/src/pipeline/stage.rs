//! Stage kinds as the engine sees them: each kind declares its parameters and an implementation
//! version (part of every run key). The engine hands a run (or a fused group of runs, its
//! [`Member`]s) to the worker process as a [`Task`] and gets an [`Outcome`] per run back (with [`super::progress`] ticks on the worker's stdout while it
//! runs); the implementations live in `train` and run only there.

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::params::ParamSpec;
use crate::data::{DatasetView, Format};
use crate::runtime::{PrecisionSupport, RunSettings};

/// The declaration of a kind of stage.
#[derive(Debug)]
pub struct StageDecl {
    pub name: &'static str,
    /// Bump when a change to the implementation changes results: it is part of every run key.
    pub version: u32,
    pub params: &'static [ParamSpec],
    /// Whether a resolved parameter map (every declared parameter set) deserializes into the
    /// kind's parameter struct, the type its implementation reads (`kinds::common::check_params`
    /// of that struct); tests hold the schema and the struct together with it.
    pub check_params: fn(&Map<String, Value>) -> Result<(), String>,
    /// Dataset formats this kind can read.
    pub dataset_formats: &'static [Format],
    /// The results table its runs write, as claims and the report read it.
    pub results: Results,
    /// Which of a profile's `precision` options its implementation applies; the rest are
    /// dropped from its runs' settings and keys.
    pub precision: PrecisionSupport,
    /// Whether its implementation can train several runs as one stacked model (a fused group,
    /// `profiles.<name>.fuse`), and which runs may share one; `None`: every run alone.
    pub fusable: Option<&'static Fusable>,
}

/// Which runs of a fusable kind may be trained together: runs of one experiment whose
/// parameters agree except on `member_axes` (the scalars a stacked model carries per member).
#[derive(Debug)]
pub struct Fusable {
    pub member_axes: &'static [&'static str],
}

/// A JSON-lines output of a stage: which file, what a row is, which numbers it holds.
#[derive(Debug)]
pub struct Results {
    pub file: &'static str,
    pub rows: Rows,
    pub metrics: &'static [MetricDecl],
}

/// What one row of a results file stands for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rows {
    /// One row per epoch of this run: claims reduce the series (`test_acc@final`).
    PerEpoch,
    /// One row per upstream run, carrying that run's `coordinates` (`schedule`, `seed`, …).
    PerUpstreamRun {
        coordinates: &'static [&'static str],
    },
}

/// Computes a derived metric from one results row.
pub type Derive = fn(&serde_json::Map<String, Value>) -> Option<f64>;

/// A number claims and the report can name.
#[derive(Debug)]
pub struct MetricDecl {
    pub name: &'static str,
    /// Axis label, with units.
    pub label: &'static str,
    /// Shown as a column of the experiment's table in the report, reduced like this
    /// (`test_acc@final`, `eff_lr_mean@tail:0.2`, `lambda_max`).
    pub table: Option<&'static str>,
    /// Computed by the report from other columns (e.g. a generalization gap), not written.
    pub derived: Option<Derive>,
    /// Drawn per epoch in the report's training-curves figure: (panel title, log y).
    pub curve: Option<(&'static str, bool)>,
}

impl MetricDecl {
    /// The same metric, drawn per epoch in a panel titled `title`.
    pub const fn curve(self, title: &'static str, log_y: bool) -> MetricDecl {
        MetricDecl {
            curve: Some((title, log_y)),
            ..self
        }
    }
}

impl Results {
    pub fn metric(&self, name: &str) -> Option<&MetricDecl> {
        self.metrics.iter().find(|m| m.name == name)
    }

    /// The value of a metric in one row: the written number or the derived one.
    pub fn value(&self, row: &serde_json::Map<String, Value>, name: &str) -> Option<f64> {
        match self.metric(name)?.derived {
            Some(f) => f(row),
            None => row.get(name).and_then(Value::as_f64),
        }
        .filter(|v| v.is_finite())
    }
}

/// Outputs of an upstream run, as verified object paths.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct UpstreamRun {
    pub run_id: String,
    pub params: Map<String, Value>,
    pub outputs: BTreeMap<String, PathBuf>,
}

/// One run, as handed to the worker.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Task {
    pub run_id: String,
    pub kind: String,
    pub params: Map<String, Value>,
    pub datasets: BTreeMap<String, DatasetView>,
    pub upstream: Vec<UpstreamRun>,
    /// Empty folder for the outputs; every file left here becomes an output.
    pub out_dir: PathBuf,
    /// The run's checkpoint folder: training stages save their state there at epoch
    /// boundaries and resume from its newest checkpoint.
    #[serde(default)]
    pub checkpoints: Option<PathBuf>,
    pub settings: RunSettings,
    /// A fused group's members, in position order (empty: one run, the task's own). For a group,
    /// `run_id` and `params` are its first member's, `out_dir` holds one folder per member
    /// (each [`Member::out_dir`]) and `checkpoints` is the group's; the worker writes one
    /// [`Outcome`] per member.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub members: Vec<Member>,
}

/// One run of a fused group, as handed to the worker.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Member {
    pub run_id: String,
    pub params: Map<String, Value>,
    /// Its own empty folder for its outputs, inside the group's `out_dir`.
    pub out_dir: PathBuf,
}

/// What a finished run reports besides its files.
#[derive(Debug, Default, Serialize, Deserialize)]
pub struct Outcome {
    /// Summary metrics kept in the run record (the full series live in output files).
    pub metrics: Map<String, Value>,
    /// What libtorch reported during the run (determinism that held, devices).
    pub environment: Map<String, Value>,
}

impl Outcome {
    /// An outcome with these summary metrics (the environment is filled in by the worker).
    pub fn with_metrics<'a>(metrics: impl IntoIterator<Item = (&'a str, Value)>) -> Outcome {
        Outcome {
            metrics: metrics
                .into_iter()
                .map(|(k, v)| (k.to_string(), v))
                .collect(),
            environment: Map::new(),
        }
    }
}

/// The engine's pid, passed so the worker can tell whether its engine is still there.
pub const PARENT_ENV: &str = "REPRO_ENGINE_PID";
