//! What the report reads: every finished run of a profile, as observations (one per run, or
//! one per upstream run for stages that write a row per upstream run), each with its grid
//! coordinates, its seed, its result rows and the digest of the file they came from, and
//! whether the run diverged ([`diverged_run`], the one place that rule lives); and per
//! experiment where its data came from ([`DataSource`]: generated, fetched or simulated).

use std::collections::BTreeMap;

use anyhow::{Context, Result};
use serde::Serialize;
use serde_json::{Map, Value};

use repro_core::pipeline::claims::{MetricRef, Reduce};
use repro_core::pipeline::executor::RunState;
use repro_core::pipeline::kinds::KindName;
use repro_core::pipeline::plan::Plan;
use repro_core::pipeline::plan::RunNode;
use repro_core::pipeline::spec::{DatasetSource, Pipeline};
use repro_core::pipeline::stage::{Rows, StageDecl};
use repro_core::store::Store;

/// Where a number came from.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub struct Source {
    /// The run whose output file holds it.
    pub run_key: String,
    pub file: String,
    pub sha256: String,
}

/// Where the data behind a run came from. A verdict on generated data tests the paper's
/// mechanism on data built to be learnable, not the paper's numbers: the report says which.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Origin {
    /// Written offline by `data::generate` in the upstream format.
    Generated,
    /// The real dataset, fetched and checked against its pinned digest.
    Upstream,
    /// No dataset: the runs simulate their environment (MinAtar's games are code).
    Simulated,
}

/// One dataset (or simulated environment) the runs of an experiment read.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub struct DataSource {
    /// The dataset's name, or the environment a dataset-free run simulates.
    pub name: String,
    pub origin: Origin,
    /// Archive file → sha256, as the runs' keys hold them (none when simulated).
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub sha256: BTreeMap<String, String>,
}

impl Origin {
    pub fn text(self) -> &'static str {
        match self {
            Origin::Generated => "generated",
            Origin::Upstream => "upstream",
            Origin::Simulated => "simulated",
        }
    }
}

impl DataSource {
    /// `cifar10 (generated)`, `cifar10 89f433c24d82`, `minatar (simulated)`.
    pub fn label(&self) -> String {
        match self.origin {
            Origin::Generated => format!("{} (generated)", self.name),
            Origin::Simulated => format!("{} (simulated)", self.name),
            Origin::Upstream => {
                let digest = self
                    .sha256
                    .values()
                    .next()
                    .map_or("", |d| &d[..d.len().min(12)]);
                format!("{} {digest}", self.name).trim_end().to_string()
            }
        }
    }
}

/// The data a finished run read: every `dataset:NAME` input of its key, with the profile's
/// source of that dataset; a run that reads none simulates its `env` (or its experiment).
fn data_sources(
    plan: &Plan,
    run: &RunNode,
    inputs: &BTreeMap<String, BTreeMap<String, String>>,
) -> Vec<DataSource> {
    let mut out: Vec<DataSource> = inputs
        .iter()
        .filter_map(|(input, files)| {
            let name = input.strip_prefix("dataset:")?;
            let generated = plan
                .datasets
                .iter()
                .any(|d| d.name == name && d.source == DatasetSource::Generate);
            Some(DataSource {
                name: name.to_string(),
                origin: if generated {
                    Origin::Generated
                } else {
                    Origin::Upstream
                },
                sha256: files.clone(),
            })
        })
        .collect();
    if out.is_empty() {
        let env = run.params.get("env").and_then(Value::as_str);
        out.push(DataSource {
            name: env.unwrap_or(&run.experiment).to_string(),
            origin: Origin::Simulated,
            sha256: BTreeMap::new(),
        });
    }
    out
}

/// One trained network's results.
#[derive(Debug, Clone)]
pub struct Observation {
    /// The run the numbers describe (for per-upstream-run results: the upstream run).
    pub run_id: String,
    /// Its parameters / grid coordinates, `seed` included.
    pub coords: Map<String, Value>,
    pub seed: i64,
    /// Per-epoch rows, or the one row describing it.
    pub rows: Vec<Map<String, Value>>,
    pub source: Source,
    /// Whether training blew up ([`diverged_run`]): its numbers are no result of its cell, so
    /// claim checks never compare them (see `verdict`).
    pub diverged: bool,
}

/// The summary keys in which a stage records where training stopped being finite: `lm` and
/// `translate` per epoch (`train::epochs`), `dqn` per iteration.
pub const DIVERGED_KEYS: [&str; 2] = ["diverged_epoch", "diverged_iteration"];

/// The per-epoch column whose null in the last row marks a run that stopped on a non-finite
/// training loss (`train::lm` writes that epoch's row with its losses null and stops).
pub const DIVERGENCE_COLUMN: &str = "train_loss";

/// Whether a run diverged: its summary (the run record's metrics, or a results row) records a
/// non-null `diverged_epoch` / `diverged_iteration`, or its last row's training loss is present
/// but not a finite number. The record's summary is a function of the outputs the report's key
/// covers (the stage writes the diverged epoch's row and stops), so reading it keeps the key
/// honest.
pub fn diverged_run(summary: &Map<String, Value>, rows: &[Map<String, Value>]) -> bool {
    let recorded = |m: &Map<String, Value>| {
        DIVERGED_KEYS
            .iter()
            .any(|k| m.get(*k).is_some_and(|v| !v.is_null()))
    };
    let loss_blew_up = rows
        .last()
        .and_then(|r| r.get(DIVERGENCE_COLUMN))
        .is_some_and(|v| !v.as_f64().is_some_and(f64::is_finite));
    recorded(summary) || rows.iter().any(recorded) || loss_blew_up
}

/// One experiment of the profile and what of it has finished.
#[derive(Debug, Clone)]
pub struct ExperimentData {
    pub name: String,
    pub description: Option<String>,
    pub kind: &'static StageDecl,
    pub observations: Vec<Observation>,
    /// Runs of the profile not (yet) in the store.
    pub missing: Vec<String>,
    pub planned: usize,
    /// Coordinates that vary across the observations (the arms), seed excluded, in order.
    pub arm_axes: Vec<String>,
    /// What the finished runs read, sorted.
    pub data: Vec<DataSource>,
}

impl ExperimentData {
    /// What one row of its per-epoch results counts, as an x axis names it: the `dqn` kind
    /// writes a row per training iteration in its `epoch` field, the others one per epoch.
    /// An exhaustive match, so a new kind says what its rows count.
    pub fn row_unit(&self) -> &'static str {
        match KindName::parse(self.kind.name) {
            Ok(KindName::Dqn) => "iteration",
            Ok(KindName::Vision | KindName::Lm | KindName::Translate | KindName::Sharpness)
            | Err(_) => "epoch",
        }
    }

    /// The title of its table: its name, and how many of its runs are still to run.
    pub fn title(&self) -> String {
        let mut title = self.name.clone();
        if !self.missing.is_empty() {
            title += &format!(
                " ({} of {} runs still to run)",
                self.missing.len(),
                self.planned
            );
        }
        title
    }
}

/// Everything the report reads for one profile.
#[derive(Debug, Clone)]
pub struct Inputs {
    pub profile: String,
    pub experiments: Vec<ExperimentData>,
    /// `run:ID` → output file → sha256, of every finished run read: the report's key inputs.
    pub digests: BTreeMap<String, BTreeMap<String, String>>,
}

impl Inputs {
    pub fn experiment(&self, name: &str) -> Option<&ExperimentData> {
        self.experiments.iter().find(|e| e.name == name)
    }
}

/// Read every finished run of the plan (`states` from `Executor::states`).
pub fn gather(
    pipeline: &Pipeline,
    store: &Store,
    plan: &Plan,
    states: &[(String, RunState)],
) -> Result<Inputs> {
    let state: BTreeMap<&str, &RunState> = states.iter().map(|(id, s)| (id.as_str(), s)).collect();
    let mut experiments: Vec<ExperimentData> = Vec::new();
    let mut digests = BTreeMap::new();
    for run in &plan.runs {
        let i = match experiments.iter().position(|e| e.name == run.experiment) {
            Some(i) => i,
            None => {
                experiments.push(ExperimentData {
                    name: run.experiment.clone(),
                    description: pipeline
                        .experiment(&run.experiment)
                        .and_then(|e| e.description.clone()),
                    kind: run.kind,
                    observations: Vec::new(),
                    missing: Vec::new(),
                    planned: 0,
                    arm_axes: Vec::new(),
                    data: Vec::new(),
                });
                experiments.len() - 1
            }
        };
        let exp = &mut experiments[i];
        exp.planned += 1;
        let Some(key) = state.get(run.id.as_str()).and_then(|s| s.done_key()) else {
            exp.missing.push(run.id.clone());
            continue;
        };
        let record = store
            .read_record(key)?
            .with_context(|| format!("run {} ({key}) has no record", run.id))?;
        digests.insert(format!("run:{}", run.id), record.output_digests());
        for d in data_sources(plan, run, &record.manifest.inputs) {
            if let Err(at) = exp.data.binary_search(&d) {
                exp.data.insert(at, d);
            }
        }
        let file = run.kind.results.file;
        let Some(obj) = record.outputs.get(file) else {
            anyhow::bail!("run {} has no output {file}", run.id);
        };
        let path = store
            .verify_object(obj)
            .with_context(|| format!("{file} of run {}", run.id))?;
        let text = std::fs::read_to_string(&path)
            .with_context(|| format!("cannot read {}", path.display()))?;
        let mut rows = Vec::new();
        for (n, line) in text
            .lines()
            .enumerate()
            .filter(|(_, l)| !l.trim().is_empty())
        {
            let row: Map<String, Value> = serde_json::from_str(line)
                .with_context(|| format!("{file} of run {}, line {}", run.id, n + 1))?;
            rows.push(row);
        }
        let source = Source {
            run_key: key.to_string(),
            file: file.to_string(),
            sha256: obj.sha256.clone(),
        };
        match run.kind.results.rows {
            Rows::PerEpoch => exp.observations.push(Observation {
                run_id: run.id.clone(),
                seed: run.params.get("seed").and_then(Value::as_i64).unwrap_or(0),
                coords: run.params.clone(),
                diverged: diverged_run(&record.metrics, &rows),
                rows,
                source,
            }),
            Rows::PerUpstreamRun { coordinates } => {
                for row in rows {
                    let coords: Map<String, Value> = coordinates
                        .iter()
                        .filter_map(|c| row.get(*c).map(|v| (c.to_string(), v.clone())))
                        .collect();
                    exp.observations.push(Observation {
                        run_id: row
                            .get("run_id")
                            .and_then(Value::as_str)
                            .unwrap_or(&run.id)
                            .to_string(),
                        seed: coords.get("seed").and_then(Value::as_i64).unwrap_or(0),
                        coords,
                        // The row describes an upstream run; the summary is this stage's.
                        diverged: diverged_run(&Map::new(), std::slice::from_ref(&row)),
                        rows: vec![row],
                        source: source.clone(),
                    });
                }
            }
        }
    }
    for e in &mut experiments {
        e.arm_axes = varying_axes(&e.observations);
    }
    Ok(Inputs {
        profile: plan.profile.clone(),
        experiments,
        digests,
    })
}

/// Coordinates whose value differs between observations, `seed` excluded, in first-seen order.
fn varying_axes(obs: &[Observation]) -> Vec<String> {
    let Some(first) = obs.first() else {
        return Vec::new();
    };
    first
        .coords
        .keys()
        .filter(|k| *k != "seed" && obs.iter().any(|o| o.coords.get(*k) != first.coords.get(*k)))
        .cloned()
        .collect()
}

/// Whether two coordinate values are equal (numbers by value: `1` selects `1.0`).
pub fn same_value(a: &Value, b: &Value) -> bool {
    match (a.as_f64(), b.as_f64()) {
        (Some(x), Some(y)) => x == y,
        _ => a == b,
    }
}

#[cfg(test)]
impl Observation {
    /// A contrived observation for the report's unit tests: run id from the coordinates, a
    /// placeholder source, diverged as its rows say.
    pub(crate) fn contrived(
        coords: Map<String, Value>,
        seed: i64,
        rows: Vec<Map<String, Value>>,
    ) -> Observation {
        Observation {
            run_id: format!("run-{}", serde_json::to_string(&coords).unwrap_or_default()),
            coords,
            seed,
            diverged: diverged_run(&Map::new(), &rows),
            rows,
            source: Source {
                run_key: "k".into(),
                file: "metrics.jsonl".into(),
                sha256: "0".repeat(64),
            },
        }
    }
}

impl Observation {
    /// Whether it belongs to an arm (`{schedule: early}`).
    pub fn in_arm(&self, arm: &BTreeMap<String, Value>) -> bool {
        arm.iter()
            .all(|(k, v)| self.coords.get(k).is_some_and(|c| same_value(c, v)))
    }

    /// A metric reduced to one number (`None` when absent or not finite).
    pub fn value(&self, kind: &StageDecl, m: &MetricRef) -> Option<f64> {
        let series: Vec<f64> = self
            .rows
            .iter()
            .filter_map(|r| kind.results.value(r, &m.name))
            .collect();
        let mean = |x: &[f64]| (!x.is_empty()).then(|| x.iter().sum::<f64>() / x.len() as f64);
        match m.reduce {
            None | Some(Reduce::Final) => {
                // The last row, only if it has the value (a missing last value is not the
                // value of an earlier epoch).
                self.rows
                    .last()
                    .and_then(|r| kind.results.value(r, &m.name))
            }
            Some(Reduce::Max) => series.iter().copied().reduce(f64::max),
            Some(Reduce::Min) => series.iter().copied().reduce(f64::min),
            Some(Reduce::Mean) => mean(&series),
            Some(Reduce::Tail(f)) => {
                let n = ((series.len() as f64) * f).ceil().max(1.0) as usize;
                mean(&series[series.len().saturating_sub(n)..])
            }
            Some(Reduce::Epoch(e)) => self
                .rows
                .iter()
                .find(|r| r.get("epoch").and_then(Value::as_u64) == Some(e))
                .and_then(|r| kind.results.value(r, &m.name)),
        }
    }

    /// A per-epoch series as (epoch, value) points.
    pub fn series(&self, kind: &StageDecl, name: &str) -> Vec<(f64, f64)> {
        self.rows
            .iter()
            .enumerate()
            .filter_map(|(i, r)| {
                let x = r.get("epoch").and_then(Value::as_f64).unwrap_or(i as f64);
                kind.results.value(r, name).map(|y| (x, y))
            })
            .collect()
    }
}

/// The label of an arm from its coordinates on the varying axes: `schedule=early,seed=0`, or
/// when one axis varies its value if that is a name (`early`), else `label_noise=0.5`.
pub fn arm_label(coords: &Map<String, Value>, axes: &[String]) -> String {
    let show = |v: &Value| match v {
        Value::String(s) => s.clone(),
        _ => v.to_string(),
    };
    match axes {
        [] => "all".to_string(),
        [a] => match coords.get(a) {
            Some(Value::String(s)) => s.clone(),
            Some(v) => format!("{a}={v}"),
            None => String::new(),
        },
        _ => axes
            .iter()
            .map(|a| format!("{a}={}", coords.get(a).map(show).unwrap_or_default()))
            .collect::<Vec<_>>()
            .join(","),
    }
}

/// Observations grouped by arm (coordinates on `axes`), arms in first-seen order.
pub fn by_arm<'a>(
    obs: &'a [Observation],
    axes: &[String],
) -> Vec<(Map<String, Value>, Vec<&'a Observation>)> {
    let mut out: Vec<(Map<String, Value>, Vec<&Observation>)> = Vec::new();
    for o in obs {
        let key: Map<String, Value> = axes
            .iter()
            .filter_map(|a| o.coords.get(a).map(|v| (a.clone(), v.clone())))
            .collect();
        match out.iter_mut().find(|(k, _)| *k == key) {
            Some((_, v)) => v.push(o),
            None => out.push((key, vec![o])),
        }
    }
    out
}
