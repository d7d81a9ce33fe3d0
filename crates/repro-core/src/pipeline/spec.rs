//! `pipeline.yaml`: its schema, and loading with validation that reports every problem at once,
//! each as `FILE:LINE:COL: message`, before any work starts.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::{Map, Value};

use super::claims::{self, ClaimSpec};
use super::params::describe;
use super::stage::{self, DATASET_FORMATS};
use super::yaml_guard;
use super::yaml_pos::{PosIndex, child};
use crate::data::generate::{self, GenSpec};
use crate::data::{ArchiveKind, DatasetFile};

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
    pub format: String,
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
    /// CPU threads per run (part of the key on CPU); default: all cores.
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

/// One validation problem with its position.
#[derive(Debug, Clone)]
pub struct Problem {
    pub line: usize,
    pub col: usize,
    pub message: String,
}

/// Every problem found in a pipeline file.
#[derive(Debug)]
pub struct SpecErrors {
    pub file: PathBuf,
    pub problems: Vec<Problem>,
}

impl fmt::Display for SpecErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let n = self.problems.len();
        writeln!(
            f,
            "{} has {n} problem{}:",
            self.file.display(),
            if n == 1 { "" } else { "s" }
        )?;
        for p in &self.problems {
            writeln!(
                f,
                "{}:{}:{}: {}",
                self.file.display(),
                p.line,
                p.col,
                p.message
            )?;
        }
        Ok(())
    }
}

impl std::error::Error for SpecErrors {}

/// Collects problems, locating each by its YAML path.
struct Checker<'a> {
    pos: &'a PosIndex,
    problems: Vec<Problem>,
}

impl Checker<'_> {
    fn at(&mut self, path: &str, message: impl Into<String>) {
        let p = self
            .pos
            .nearest(path)
            .unwrap_or(super::yaml_pos::Pos { line: 1, col: 1 });
        self.problems.push(Problem {
            line: p.line,
            col: p.col,
            message: message.into(),
        });
    }

    fn at_key(&mut self, path: &str, message: impl Into<String>) {
        match self.pos.key(path) {
            Some(p) => self.problems.push(Problem {
                line: p.line,
                col: p.col,
                message: message.into(),
            }),
            None => self.at(path, message),
        }
    }

    /// Deserialize one section with serde, turning its error into a located problem.
    fn parse<T: DeserializeOwned>(&mut self, path: &str, v: &serde_yaml::Value) -> Option<T> {
        match serde_path_to_error::deserialize::<_, T>(v.clone()) {
            Ok(t) => Some(t),
            Err(e) => {
                let mut full = path.to_string();
                for seg in e.path().iter() {
                    use serde_path_to_error::Segment::*;
                    match seg {
                        Seq { index } => full = format!("{full}[{index}]"),
                        Map { key } => full = child(&full, key),
                        Enum { variant } => full = child(&full, variant),
                        Unknown => {}
                    }
                }
                let msg = e.inner().to_string();
                // serde names unknown fields in the message; point at that key when we can.
                let unknown = msg
                    .strip_prefix("unknown field `")
                    .and_then(|r| r.split('`').next());
                match unknown {
                    Some(k) => {
                        // The path ends at the unknown key when serde read it as a map key.
                        let key_path = match e.path().iter().next_back() {
                            Some(serde_path_to_error::Segment::Map { key }) if key == k => {
                                full.clone()
                            }
                            _ => child(&full, k),
                        };
                        self.at_key(&key_path, format!("{key_path}: {msg}"))
                    }
                    None => self.at(
                        &full,
                        format!(
                            "{}: {msg}",
                            if full.is_empty() {
                                "(top level)"
                            } else {
                                &full
                            }
                        ),
                    ),
                }
                None
            }
        }
    }
}

const TOP_KEYS: &[&str] = &[
    "version",
    "salt",
    "datasets",
    "experiments",
    "profiles",
    "claims",
    "provenance",
];

impl Pipeline {
    /// Read and validate a pipeline file.
    pub fn load(path: &Path) -> Result<Pipeline, SpecErrors> {
        let fail = |problem| SpecErrors {
            file: path.to_path_buf(),
            problems: vec![problem],
        };
        let bytes = std::fs::read(path).map_err(|e| {
            fail(Problem {
                line: 1,
                col: 1,
                message: format!("cannot read: {e}"),
            })
        })?;
        Pipeline::parse(path, yaml_guard::decode(&bytes).map_err(fail)?)
    }

    /// Validate pipeline text; `path` is used for messages.
    pub fn parse(path: &Path, text: &str) -> Result<Pipeline, SpecErrors> {
        let fail = |problems| SpecErrors {
            file: path.to_path_buf(),
            problems,
        };
        let yaml_error = |e: serde_yaml::Error| {
            let (line, col) = e
                .location()
                .map(|l| (l.line(), l.column()))
                .unwrap_or((1, 1));
            fail(vec![Problem {
                line,
                col,
                message: format!("not valid YAML: {e}"),
            }])
        };
        // Depth, aliases and expansion are bounded before serde_yaml builds a tree.
        let pos = yaml_guard::check(text).map_err(|p| fail(vec![p]))?;
        let mut root: serde_yaml::Value = serde_yaml::from_str(text).map_err(yaml_error)?;
        // Anchors and `<<:` merge keys let profiles share settings without repeating them.
        root.apply_merge().map_err(yaml_error)?;
        let mut ck = Checker {
            pos: &pos,
            problems: Vec::new(),
        };
        let Some(top) = root.as_mapping() else {
            ck.at(
                "",
                "the top level must be a mapping with keys datasets, experiments, profiles, claims",
            );
            return Err(fail(ck.problems));
        };
        for k in top.keys() {
            let name = k.as_str().unwrap_or("<non-string key>");
            if !TOP_KEYS.contains(&name) {
                ck.at_key(
                    name,
                    format!(
                        "unknown top-level key `{name}`; valid keys: {}",
                        TOP_KEYS.join(", ")
                    ),
                );
            }
        }
        match top.get("version").map(|v| v.as_u64()) {
            None | Some(Some(1)) => {}
            Some(_) => ck.at("version", "version must be 1"),
        }
        let salt = match top.get("salt") {
            None => String::new(),
            Some(serde_yaml::Value::String(s)) => s.clone(),
            Some(_) => {
                ck.at("salt", "salt must be a string");
                String::new()
            }
        };

        let datasets: BTreeMap<String, DatasetSpec> = section(&mut ck, top, "datasets");
        let experiments: Vec<(String, ExperimentSpec)> = section(&mut ck, top, "experiments");
        let profiles: BTreeMap<String, ProfileSpec> = section(&mut ck, top, "profiles");
        let claims: Vec<ClaimSpec> = match top.get("claims") {
            None => Vec::new(),
            Some(v) => ck.parse("claims", v).unwrap_or_default(),
        };
        let provenance: Vec<Provenance> = match top.get("provenance") {
            None => Vec::new(),
            Some(v) => ck.parse("provenance", v).unwrap_or_default(),
        };
        for (i, p) in provenance.iter().enumerate() {
            if p.setting.trim().is_empty() || p.label.trim().is_empty() {
                ck.at(
                    &format!("provenance[{i}]"),
                    "a provenance entry needs a non-empty `setting` and `label`",
                );
            }
        }

        let p = Pipeline {
            path: path.to_path_buf(),
            salt,
            datasets,
            experiments,
            profiles,
            claims,
            provenance,
        };
        p.check(&mut ck);
        if ck.problems.is_empty() {
            Ok(p)
        } else {
            ck.problems
                .sort_by(|a, b| (a.line, a.col, &a.message).cmp(&(b.line, b.col, &b.message)));
            // A check applied to several experiments reports the same problem once.
            ck.problems
                .dedup_by(|a, b| (a.line, a.col, &a.message) == (b.line, b.col, &b.message));
            Err(fail(ck.problems))
        }
    }

    pub fn experiment(&self, name: &str) -> Option<&ExperimentSpec> {
        self.experiments
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, e)| e)
    }

    /// Semantic checks across sections.
    fn check(&self, ck: &mut Checker) {
        for (name, d) in &self.datasets {
            let path = format!("datasets.{name}");
            if !DATASET_FORMATS.contains(&d.format.as_str()) {
                ck.at(
                    &format!("{path}.format"),
                    format!(
                        "unknown format `{}`; valid: {}",
                        d.format,
                        DATASET_FORMATS.join(", ")
                    ),
                );
            }
            if d.files.is_empty() {
                ck.at(
                    &format!("{path}.files"),
                    "a dataset needs at least one file",
                );
            }
            for (i, f) in d.files.iter().enumerate() {
                let fp = format!("{path}.files[{i}]");
                if f.name.is_empty() || f.name.contains('/') || f.name.starts_with('.') {
                    ck.at(
                        &format!("{fp}.name"),
                        format!(
                            "file name {:?} must be a plain name (no `/`, not hidden)",
                            f.name
                        ),
                    );
                }
                for (what, digest, len) in [("md5", &f.md5, 32), ("sha256", &f.sha256, 64)] {
                    if let Some(d) = digest
                        && (d.len() != len || !d.bytes().all(|b| b.is_ascii_hexdigit()))
                    {
                        ck.at(
                            &format!("{fp}.{what}"),
                            format!("{what} must be {len} hex digits, got {d:?}"),
                        );
                    }
                }
            }
            if let Some(g) = &d.generate
                && let Err(errs) = generate::validate(&g.generator, &g.params)
            {
                for e in errs {
                    ck.at(&format!("{path}.generate"), e);
                }
            }
        }

        let names: BTreeSet<&str> = self.experiments.iter().map(|(n, _)| n.as_str()).collect();
        for (name, e) in &self.experiments {
            let path = format!("experiments.{name}");
            if !valid_name(name) {
                ck.at_key(
                    &path,
                    format!("experiment name {name:?} may use only letters, digits, `_` and `-`"),
                );
            }
            let Some(kind) = stage::kind(&e.kind) else {
                let known: Vec<_> = stage::registry().iter().map(|k| k.name).collect();
                ck.at(
                    &format!("{path}.kind"),
                    format!(
                        "unknown stage kind `{}`; known kinds: {}",
                        e.kind,
                        known.join(", ")
                    ),
                );
                continue;
            };
            for (i, ds) in e.datasets.iter().enumerate() {
                match self.datasets.get(ds) {
                    None => ck.at(
                        &format!("{path}.datasets[{i}]"),
                        format!("dataset `{ds}` is not declared under `datasets:`"),
                    ),
                    Some(d) if !kind.dataset_formats.contains(&d.format.as_str()) => ck.at(
                        &format!("{path}.datasets[{i}]"),
                        format!(
                            "stage kind `{}` cannot read format `{}` (it reads {})",
                            kind.name,
                            d.format,
                            kind.dataset_formats.join(", ")
                        ),
                    ),
                    Some(_) => {}
                }
            }
            for (i, n) in e.needs.iter().enumerate() {
                if !names.contains(n.as_str()) {
                    ck.at(
                        &format!("{path}.needs[{i}]"),
                        format!("experiment `{n}` is not declared under `experiments:`"),
                    );
                }
            }
            check_params(ck, &path, kind, &e.params, &e.grid, true);
        }
        if let Some(cycle) = self.find_cycle() {
            ck.at(
                &format!("experiments.{}.needs", cycle[0]),
                format!(
                    "experiments depend on each other in a cycle: {}",
                    cycle.join(" → ")
                ),
            );
        }

        for (pname, prof) in &self.profiles {
            let path = format!("profiles.{pname}");
            if prof.threads == Some(0) {
                ck.at(&format!("{path}.threads"), "threads must be at least 1");
            }
            for (ds, o) in &prof.datasets {
                let dp = format!("{path}.datasets.{ds}");
                match self.datasets.get(ds) {
                    None => ck.at_key(
                        &dp,
                        format!("dataset `{ds}` is not declared under `datasets:`"),
                    ),
                    Some(d) => {
                        if o.source == DatasetSource::Generate {
                            match &d.generate {
                                None => ck.at(&dp, format!("dataset `{ds}` has no `generate:` section to generate it from")),
                                Some(g) => {
                                    let mut params = g.params.clone();
                                    params.extend(o.params.clone());
                                    if let Err(errs) = generate::validate(&g.generator, &params) {
                                        for e in errs {
                                            ck.at(&format!("{dp}.params"), e);
                                        }
                                    }
                                }
                            }
                        } else if !o.params.is_empty() {
                            ck.at(
                                &format!("{dp}.params"),
                                "params apply only with `source: generate`",
                            );
                        }
                    }
                }
            }
            for (ename, v) in &prof.experiments {
                let ep = format!("{path}.experiments.{ename}");
                let Some(e) = self.experiment(ename) else {
                    ck.at_key(
                        &ep,
                        format!("experiment `{ename}` is not declared under `experiments:`"),
                    );
                    continue;
                };
                let Some(o) = ck.parse::<ExperimentOverride>(&ep, &yaml_of(v)) else {
                    continue;
                };
                if let Some(kind) = stage::kind(&e.kind) {
                    check_params(ck, &ep, kind, &o.params, &o.grid, false);
                }
            }
        }
        claims::check(self, &mut |path, msg| ck.at(path, msg));
    }

    /// A dependency cycle among experiments, as the names along it, if any.
    fn find_cycle(&self) -> Option<Vec<String>> {
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

/// Check parameter names, types and grid axes against a kind's schema.
fn check_params(
    ck: &mut Checker,
    path: &str,
    kind: &stage::StageDecl,
    params: &Map<String, Value>,
    grid: &Map<String, Value>,
    full: bool,
) {
    let schema = kind.params;
    let valid: Vec<&str> = schema.iter().map(|s| s.name).collect();
    let find = |n: &str| schema.iter().find(|s| s.name == n);
    for (k, v) in params {
        match find(k) {
            None => ck.at_key(
                &format!("{path}.params.{k}"),
                format!(
                    "stage kind `{}` has no parameter `{k}`; valid: {}",
                    kind.name,
                    valid.join(", ")
                ),
            ),
            Some(s) => {
                if let Err(e) = s.check(v) {
                    ck.at(
                        &format!("{path}.params.{k}"),
                        format!("parameter `{k}`: {e}"),
                    );
                }
            }
        }
    }
    for (axis, values) in grid {
        let ap = format!("{path}.grid.{axis}");
        let Some(s) = find(axis) else {
            ck.at_key(
                &ap,
                format!(
                    "grid axis `{axis}` is not a parameter of stage kind `{}`; valid: {}",
                    kind.name,
                    valid.join(", ")
                ),
            );
            continue;
        };
        match values.as_array() {
            None => ck.at(
                &ap,
                format!(
                    "grid axis `{axis}` must be a list of values, got {}",
                    describe(values)
                ),
            ),
            Some(a) if a.is_empty() => ck.at(
                &ap,
                format!("grid axis `{axis}` is empty: it would give no runs"),
            ),
            Some(a) => {
                let mut seen = BTreeSet::new();
                for (i, v) in a.iter().enumerate() {
                    match s.check(v) {
                        Err(e) => ck.at(&format!("{ap}[{i}]"), format!("grid axis `{axis}`: {e}")),
                        Ok(n) if !seen.insert(n.to_string()) => ck.at(
                            &format!("{ap}[{i}]"),
                            format!("grid axis `{axis}` repeats the value {n}"),
                        ),
                        Ok(_) => {}
                    }
                }
            }
        }
    }
    if full {
        for s in schema {
            if s.default_value().is_none()
                && !params.contains_key(s.name)
                && !grid.contains_key(s.name)
            {
                ck.at(
                    path,
                    format!(
                        "stage kind `{}` needs parameter `{}` ({})",
                        kind.name, s.name, s.doc
                    ),
                );
            }
        }
    }
}

/// Deserialize every entry of a top-level mapping section, in file order.
fn section<C: FromIterator<(String, T)>, T: DeserializeOwned>(
    ck: &mut Checker,
    top: &serde_yaml::Mapping,
    name: &str,
) -> C {
    let mut out = Vec::new();
    match top.get(name) {
        None | Some(serde_yaml::Value::Null) => {}
        Some(serde_yaml::Value::Mapping(m)) => {
            for (k, v) in m {
                let Some(key) = k.as_str() else {
                    ck.at(name, format!("keys under `{name}` must be strings"));
                    continue;
                };
                let path = format!("{name}.{key}");
                if let Some(t) = ck.parse::<T>(&path, v) {
                    out.push((key.to_string(), t));
                }
            }
        }
        Some(_) => ck.at(
            name,
            format!("`{name}` must be a mapping of name → definition"),
        ),
    }
    out.into_iter().collect()
}

fn yaml_of(v: &Value) -> serde_yaml::Value {
    serde_yaml::to_value(v).unwrap_or(serde_yaml::Value::Null)
}

/// Names usable in run ids and file names.
pub fn valid_name(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}
