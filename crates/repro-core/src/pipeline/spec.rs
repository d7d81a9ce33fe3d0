//! `pipeline.yaml`: its schema. [`Pipeline::load`] reads and checks a file (in
//! [`validate`](super::validate)); what it returns is a pipeline whose every name resolves.

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::Deserialize;
use serde_json::{Map, Value};

use super::claims::ClaimSpec;
use super::kinds;
use super::stage::{Rows, StageDecl};
use crate::data::generate::GenSpec;
use crate::data::{ArchiveKind, DatasetFile, Format};

pub use super::problem::{Problem, SpecErrors};

/// A validated pipeline.
#[derive(Debug, Clone)]
pub struct Pipeline {
    pub path: PathBuf,
    /// Mixed into every run key; change it to invalidate everything.
    pub salt: String,
    pub datasets: BTreeMap<String, DatasetSpec>,
    /// In file order.
    pub experiments: Vec<(String, ExperimentSpec)>,
    pub profiles: BTreeMap<String, ProfileSpec>,
    /// The paper's claims as checks, in file order (evaluated by `report`).
    pub claims: Vec<ClaimSpec>,
    /// Where settings the paper does not give come from (`provenance:`), in file order; labels
    /// only, listed by the report and covered by its key, never read by a run.
    pub provenance: Vec<Provenance>,
    /// The profile used when a command names none (`default_profile:`).
    pub default_profile: Option<DefaultProfile>,
    /// Where `repro push`/`pull` share results (`remotes:`), by name.
    pub remotes: BTreeMap<String, RemoteDecl>,
}

/// A remote of `remotes:`: a URL (`file://`, `s3://bucket/prefix`, `https://` read-only), or the
/// URL with an S3-compatible endpoint (MinIO, Ceph). Credentials never go here: they come from
/// each backend's own environment variables and files.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(
    untagged,
    expecting = "a remote is a URL (s3://bucket/prefix, file:///path, https://host/path) or {url: URL, endpoint: URL}"
)]
pub enum RemoteDecl {
    Url(String),
    Full(RemoteFull),
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RemoteFull {
    pub url: String,
    /// An S3-compatible server's endpoint, e.g. `https://minio.example.org:9000`.
    #[serde(default)]
    pub endpoint: Option<String>,
}

impl RemoteDecl {
    pub fn url(&self) -> &str {
        match self {
            RemoteDecl::Url(u) => u,
            RemoteDecl::Full(f) => &f.url,
        }
    }
    pub fn endpoint(&self) -> Option<&str> {
        match self {
            RemoteDecl::Url(_) => None,
            RemoteDecl::Full(f) => f.endpoint.as_deref(),
        }
    }
}

/// The URL schemes a remote may use.
pub const REMOTE_SCHEMES: &[&str] = &["file", "s3", "https", "http"];

/// `default_profile:`: the profile every subcommand and `make replicate` use when none is named,
/// chosen by what this machine has. A profile with `confirm: true` cannot be one.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DefaultProfile {
    /// Where the worker's libtorch sees a CUDA device.
    pub cuda: String,
    /// Everywhere else.
    pub cpu: String,
}

/// What a profile costs, as `repro run` states it before starting and the README's profile
/// table quotes it (docs/cost.md).
#[derive(Debug, Clone, Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct Cost {
    /// Wall-clock hours on `on`.
    pub hours: f64,
    /// The machine the hours are for, e.g. "one H100, runs one after another".
    pub on: String,
    pub basis: CostBasis,
    /// Where the number comes from: the timed run, or the model that estimated it.
    pub source: String,
}

/// "about 1.0 h on 2 CPU cores (measured)": what `repro run` and the README say.
impl std::fmt::Display for Cost {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let basis = match self.basis {
            CostBasis::Measured => "measured",
            CostBasis::Estimate => "estimate",
        };
        write!(
            f,
            "about {} on {} ({basis})",
            hours_text(self.hours),
            self.on
        )
    }
}

/// Hours for people: minutes under one hour, thousands separated above.
fn hours_text(h: f64) -> String {
    if h < 1.0 {
        return format!("{:.0} min", (h * 60.0).max(1.0));
    }
    if h < 100.0 {
        return format!("{h:.1} h");
    }
    let digits = (h.round() as u64).to_string();
    let mut grouped = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            grouped.push(',');
        }
        grouped.push(c);
    }
    format!("{grouped} h")
}

/// Whether a [`Cost`] was timed or estimated.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum CostBasis {
    Measured,
    Estimate,
}

/// One entry of `provenance:`: a setting and where it comes from (docs/paper.md#labels), e.g.
/// "Golatkar et al.'s recipe as recalled, unverified" or "a default of ours".
#[derive(Debug, Clone, Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct Provenance {
    pub setting: String,
    pub label: String,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DatasetSpec {
    #[serde(default)]
    pub description: Option<String>,
    pub format: Format,
    pub files: Vec<DatasetFile>,
    /// How to unpack; inferred from each file name when absent.
    #[serde(default)]
    pub extract: Option<ArchiveKind>,
    /// How the offline stand-in is generated (used where a profile says `source: generate`).
    #[serde(default)]
    pub generate: Option<GenSpec>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Determinism {
    /// Outputs are bit-identical for the same key; the lock pins their digests.
    Bitwise,
    /// Outputs vary within tolerance (e.g. nondeterministic GPU kernels); not pinned.
    #[default]
    Statistical,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExperimentSpec {
    pub kind: String,
    #[serde(default)]
    pub description: Option<String>,
    #[serde(default)]
    pub datasets: Vec<String>,
    /// Experiments whose runs this one reads (runs are matched on shared grid axes).
    #[serde(default)]
    pub needs: Vec<String>,
    #[serde(default)]
    pub params: Map<String, Value>,
    /// Axis name → values; the cartesian product gives the runs, in axis order.
    #[serde(default)]
    pub grid: Map<String, Value>,
    #[serde(default)]
    pub determinism: Determinism,
}

#[derive(Debug, Clone, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct ProfileSpec {
    #[serde(default)]
    pub description: Option<String>,
    /// What running the whole profile costs (stated before `repro run` starts it).
    #[serde(default)]
    pub cost: Option<Cost>,
    /// Runs only when named, with `--yes`: for profiles too costly to start by accident.
    #[serde(default)]
    pub confirm: bool,
    /// CPU threads per run (part of the key on CPU); default: the machine's cores divided among
    /// the runs executing at once (`--jobs`).
    #[serde(default)]
    pub threads: Option<usize>,
    /// Overrides every experiment's `determinism` in this profile (e.g. `bitwise` for smoke,
    /// whose outputs are locked, while full-scale runs keep oneDNN's faster CPU kernels).
    #[serde(default)]
    pub determinism: Option<Determinism>,
    /// Options that change numerics (bf16 autocast, channels-last, TF32); all off by default.
    /// Part of the key only where not the default (see [`crate::runtime::Precision`]).
    #[serde(default)]
    pub precision: crate::runtime::Precision,
    /// Runs of a fusable kind trained together as one stacked model, at most this many per
    /// group (`crate::pipeline::fuse`); default 1, every run alone. `repro --fuse N` overrides it.
    #[serde(default)]
    pub fuse: Option<usize>,
    #[serde(default)]
    pub datasets: BTreeMap<String, DatasetOverride>,
    #[serde(default)]
    pub experiments: Map<String, Value>,
}

#[derive(Debug, Clone, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct DatasetOverride {
    #[serde(default)]
    pub source: DatasetSource,
    /// Generator parameters overriding the dataset's `generate.params`.
    #[serde(default)]
    pub params: Map<String, Value>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum DatasetSource {
    #[default]
    Fetch,
    Generate,
}

/// A profile's changes to one experiment.
#[derive(Debug, Clone, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct ExperimentOverride {
    #[serde(default)]
    pub params: Map<String, Value>,
    #[serde(default)]
    pub grid: Map<String, Value>,
    /// Leave this experiment out of the profile.
    #[serde(default)]
    pub skip: bool,
}

impl Pipeline {
    pub fn experiment(&self, name: &str) -> Option<&ExperimentSpec> {
        self.experiments
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, e)| e)
    }
    /// A dependency cycle among experiments, as the names along it, if any.
    /// The kind whose parameters are an experiment's grid coordinates as its results carry
    /// them: its own for per-epoch results, its upstream experiment's for per-upstream-run
    /// results.
    pub fn coordinate_kind(&self, experiment: &str) -> Option<&'static StageDecl> {
        let e = self.experiment(experiment)?;
        let kind = kinds::kind(&e.kind)?;
        match kind.results.rows {
            Rows::PerEpoch => Some(kind),
            Rows::PerUpstreamRun { .. } => {
                let up = self.experiment(e.needs.first()?)?;
                kinds::kind(&up.kind)
            }
        }
    }

    pub fn find_cycle(&self) -> Option<Vec<String>> {
        fn visit<'a>(
            p: &'a Pipeline,
            n: &'a str,
            state: &mut BTreeMap<&'a str, u8>,
            stack: &mut Vec<&'a str>,
        ) -> Option<Vec<String>> {
            match state.get(n) {
                Some(1) => {
                    let start = stack.iter().position(|s| *s == n).unwrap_or(0);
                    let mut c: Vec<String> = stack[start..].iter().map(|s| s.to_string()).collect();
                    c.push(n.to_string());
                    return Some(c);
                }
                Some(_) => return None,
                None => {}
            }
            state.insert(n, 1);
            stack.push(n);
            for d in p
                .experiment(n)
                .map(|e| e.needs.as_slice())
                .unwrap_or_default()
            {
                if let Some(c) = visit(p, d, state, stack) {
                    return Some(c);
                }
            }
            stack.pop();
            state.insert(n, 2);
            None
        }
        let mut state = BTreeMap::new();
        self.experiments
            .iter()
            .find_map(|(n, _)| visit(self, n, &mut state, &mut Vec::new()))
    }
}

/// Names usable in run ids and file names.
pub fn valid_name(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

#[cfg(test)]
mod cost_tests {
    use super::hours_text;

    #[test]
    fn hours_read_as_people_write_them() {
        assert_eq!(hours_text(0.1), "6 min");
        assert_eq!(hours_text(1.03), "1.0 h");
        assert_eq!(hours_text(20.1), "20.1 h");
        assert_eq!(hours_text(5041.3), "5,041 h");
        assert_eq!(hours_text(123456.0), "123,456 h");
    }
}
