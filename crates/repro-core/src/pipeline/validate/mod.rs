//! Reading `pipeline.yaml` into a [`Pipeline`] and checking it: YAML bounds first
//! ([`yaml_guard`](super::yaml_guard)), then each section with serde, then the checks across
//! sections (datasets ↔ formats, experiments ↔ kinds and their parameters, profiles, and the
//! claims in [`claims`]), every problem reported at once as `FILE:LINE:COL: message` before any
//! work starts.

mod claims;

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use serde::de::DeserializeOwned;

use serde_json::{Map, Value};

use super::claims::ClaimSpec;
use super::kinds;
use super::params::describe;
use super::problem::{Checker, Problem, SpecErrors};
use super::spec::{
    DatasetSource, DatasetSpec, ExperimentOverride, ExperimentSpec, Pipeline, ProfileSpec,
    Provenance, REMOTE_SCHEMES, RemoteDecl, valid_name,
};
use super::stage::StageDecl;
use super::yaml_guard;
use crate::data::generate;

const TOP_KEYS: &[&str] = &[
    "version",
    "salt",
    "datasets",
    "experiments",
    "profiles",
    "claims",
    "provenance",
    "default_profile",
    "remotes",
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

        let default_profile = match top.get("default_profile") {
            None => None,
            Some(v) => ck.parse("default_profile", v),
        };
        let remotes: BTreeMap<String, RemoteDecl> = section(&mut ck, top, "remotes");
        for (name, r) in &remotes {
            let scheme = r.url().split_once("://").map(|(s, _)| s);
            if !scheme.is_some_and(|s| REMOTE_SCHEMES.contains(&s)) {
                ck.at(
                    &format!("remotes.{name}"),
                    format!(
                        "remote URL {:?} has no known scheme; valid: {}",
                        r.url(),
                        REMOTE_SCHEMES
                            .iter()
                            .map(|s| format!("{s}://"))
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                );
            }
            if r.endpoint().is_some() && scheme != Some("s3") {
                ck.at(
                    &format!("remotes.{name}.endpoint"),
                    "an endpoint is for s3:// remotes (an S3-compatible server) only",
                );
            }
        }
        let p = Pipeline {
            remotes,
            default_profile,
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

    /// Semantic checks across sections.
    fn check(&self, ck: &mut Checker) {
        for (name, d) in &self.datasets {
            let path = format!("datasets.{name}");
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
            let Some(kind) = kinds::kind(&e.kind) else {
                let known: Vec<_> = kinds::ALL.iter().map(|k| k.name).collect();
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
                    Some(d) if !kind.dataset_formats.contains(&d.format) => ck.at(
                        &format!("{path}.datasets[{i}]"),
                        format!(
                            "stage kind `{}` cannot read format `{}` (it reads {})",
                            kind.name,
                            d.format,
                            kind.dataset_formats
                                .iter()
                                .map(|f| f.name())
                                .collect::<Vec<_>>()
                                .join(", ")
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

        if let Some(d) = &self.default_profile {
            for (field, name) in [("cuda", &d.cuda), ("cpu", &d.cpu)] {
                let at = format!("default_profile.{field}");
                match self.profiles.get(name) {
                    None => ck.at(
                        &at,
                        format!(
                            "profile `{name}` is not declared under `profiles:`; declared: {}",
                            self.profiles.keys().cloned().collect::<Vec<_>>().join(", ")
                        ),
                    ),
                    Some(p) if p.confirm => ck.at(
                        &at,
                        format!(
                            "a default profile cannot be `{name}`: it has `confirm: true` and runs only when named"
                        ),
                    ),
                    Some(_) => {}
                }
            }
        }
        for (pname, prof) in &self.profiles {
            let path = format!("profiles.{pname}");
            if let Some(c) = &prof.cost
                && !(c.hours.is_finite() && c.hours > 0.0)
            {
                ck.at(
                    &format!("{path}.cost.hours"),
                    "hours must be a positive number",
                );
            }
            if prof.fuse == Some(0) {
                ck.at(
                    &format!("{path}.fuse"),
                    "fuse must be at least 1 (1: every run alone)",
                );
            }
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
                if let Some(kind) = kinds::kind(&e.kind) {
                    check_params(ck, &ep, kind, &o.params, &o.grid, false);
                }
            }
        }
        claims::check(self, &mut |path, msg| ck.at(path, msg));
    }
}

/// Check parameter names, types and grid axes against a kind's schema.
fn check_params(
    ck: &mut Checker,
    path: &str,
    kind: &StageDecl,
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
