//! Planning: a profile applied to the pipeline gives concrete runs (grid points with fully
//! resolved parameters) and the datasets they read, in dependency order, narrowed to targets.

use std::collections::BTreeSet;

use anyhow::{Context, Result, bail};
use serde_json::{Map, Value};

use super::fuse;
use super::kinds;
use super::spec::{DatasetSource, DatasetSpec, Determinism, ExperimentOverride, Pipeline};
use super::stage::StageDecl;
use super::target;
use crate::runtime::{Fused, Precision};

/// A dataset as a profile uses it.
#[derive(Debug, Clone)]
pub struct DatasetNode {
    pub name: String,
    pub spec: DatasetSpec,
    pub source: DatasetSource,
    /// Generator parameters after the profile's overrides (when generated).
    pub gen_params: Map<String, Value>,
}

/// One concrete run.
#[derive(Clone)]
pub struct RunNode {
    /// `experiment` or `experiment/axis=value,axis=value`.
    pub id: String,
    pub experiment: String,
    pub kind: &'static StageDecl,
    /// Kind defaults ← experiment params ← profile params ← grid point; normalised.
    pub params: Map<String, Value>,
    pub datasets: Vec<String>,
    /// Run ids this run reads, all earlier in the plan.
    pub upstream: Vec<String>,
    pub determinism: Determinism,
    /// The profile's precision options that this run's kind applies.
    pub precision: Precision,
    /// Its fused group, when it is trained in one ([`super::fuse`]).
    pub fused: Option<Fused>,
}

/// Runs of a profile in dependency order.
pub struct Plan {
    pub profile: String,
    pub threads: Option<usize>,
    pub datasets: Vec<DatasetNode>,
    pub runs: Vec<RunNode>,
}

impl Plan {
    /// Resolve `profile` and keep only what `targets` (experiments, run ids or datasets) need;
    /// no targets means everything. Runs are fused as the profile's `fuse` says.
    pub fn resolve(p: &Pipeline, profile: &str, targets: &[String]) -> Result<Plan> {
        Plan::resolve_fused(p, profile, targets, None)
    }

    /// [`Plan::resolve`] with the group size `fuse` (`repro --fuse N`) in place of the
    /// profile's. A target brings its whole fused group: the groups are cut from all of the
    /// profile's runs, so naming fewer runs does not change any run's key.
    pub fn resolve_fused(
        p: &Pipeline,
        profile: &str,
        targets: &[String],
        fuse: Option<usize>,
    ) -> Result<Plan> {
        let prof = p.profiles.get(profile).with_context(|| {
            let known: Vec<&str> = p.profiles.keys().map(String::as_str).collect();
            format!(
                "profile `{profile}` is not declared in {}; declared: {}",
                p.path.display(),
                known.join(", ")
            )
        })?;
        let mut runs: Vec<RunNode> = Vec::new();
        for (name, exp) in topo_order(p) {
            let ov: ExperimentOverride = match prof.experiments.get(name) {
                Some(v) => serde_json::from_value(v.clone())
                    .with_context(|| format!("profile {profile}, experiment {name}"))?,
                None => ExperimentOverride::default(),
            };
            if ov.skip {
                continue;
            }
            let kind = kinds::kind(&exp.kind)
                .with_context(|| format!("unknown stage kind {}", exp.kind))?;
            let mut base = Map::new();
            for s in kind.params {
                if let Some(d) = s.default_value() {
                    base.insert(s.name.to_string(), d);
                }
            }
            for (k, v) in exp.params.iter().chain(ov.params.iter()) {
                base.insert(k.clone(), normalise(kind, k, v)?);
            }
            let mut grid = exp.grid.clone();
            for (k, v) in &ov.grid {
                grid.insert(k.clone(), v.clone());
            }
            for point in cartesian(&grid) {
                let mut params = base.clone();
                let mut id_parts = Vec::new();
                for (axis, v) in &point {
                    let v = normalise(kind, axis, v)?;
                    id_parts.push(format!("{axis}={}", show(&v)));
                    params.insert(axis.clone(), v);
                }
                let id = if id_parts.is_empty() {
                    name.to_string()
                } else {
                    format!("{name}/{}", id_parts.join(","))
                };
                let mut upstream = Vec::new();
                for need in &exp.needs {
                    let need_axes: BTreeSet<&String> = p
                        .experiment(need)
                        .map(|e| e.grid.keys().collect())
                        .unwrap_or_default();
                    let shared: Vec<&String> = point
                        .iter()
                        .map(|(a, _)| a)
                        .filter(|a| need_axes.contains(a))
                        .collect();
                    let matching: Vec<String> = runs
                        .iter()
                        .filter(|r| {
                            &r.experiment == need
                                && shared.iter().all(|a| r.params.get(*a) == params.get(*a))
                        })
                        .map(|r| r.id.clone())
                        .collect();
                    if matching.is_empty() {
                        bail!(
                            "run {id} needs experiment `{need}`, which has no matching runs in profile `{profile}`"
                        );
                    }
                    upstream.extend(matching);
                }
                runs.push(RunNode {
                    id,
                    experiment: name.to_string(),
                    kind,
                    params,
                    datasets: exp.datasets.clone(),
                    upstream,
                    determinism: prof.determinism.unwrap_or(exp.determinism),
                    precision: prof.precision.for_kind(kind.precision),
                    fused: None,
                });
            }
        }

        fuse::assign(&mut runs, fuse.or(prof.fuse).unwrap_or(1));
        let keep = select(p, profile, &runs, targets)?;
        runs.retain(|r| keep.runs.contains(&r.id));
        let mut ds_names: BTreeSet<String> = runs
            .iter()
            .flat_map(|r| r.datasets.iter().cloned())
            .collect();
        ds_names.extend(keep.datasets);
        let datasets = ds_names
            .into_iter()
            .map(|name| {
                let spec = p.datasets[&name].clone();
                let ov = prof.datasets.get(&name).cloned().unwrap_or_default();
                let mut gen_params = spec
                    .generate
                    .as_ref()
                    .map(|g| g.params.clone())
                    .unwrap_or_default();
                gen_params.extend(ov.params);
                DatasetNode {
                    name,
                    spec,
                    source: ov.source,
                    gen_params,
                }
            })
            .collect();
        Ok(Plan {
            profile: profile.to_string(),
            threads: prof.threads,
            datasets,
            runs,
        })
    }

    pub fn run(&self, id: &str) -> Option<&RunNode> {
        self.runs.iter().find(|r| r.id == id)
    }

    /// The run a target names, in any spelling [`target::names_run`] accepts.
    pub fn find(&self, target: &str) -> Option<&RunNode> {
        target::find_run(&self.runs, target)
    }
}

struct Selection {
    runs: BTreeSet<String>,
    datasets: BTreeSet<String>,
}

/// Targets (as [`target`] matches them) and everything upstream of them.
fn select(p: &Pipeline, profile: &str, runs: &[RunNode], targets: &[String]) -> Result<Selection> {
    let mut sel = Selection {
        runs: BTreeSet::new(),
        datasets: BTreeSet::new(),
    };
    if targets.is_empty() {
        sel.runs = runs.iter().map(|r| r.id.clone()).collect();
        return Ok(sel);
    }
    let mut todo: Vec<String> = Vec::new();
    for t in targets {
        let by_exp: Vec<String> = runs
            .iter()
            .filter(|r| &r.experiment == t)
            .map(|r| r.id.clone())
            .collect();
        if !by_exp.is_empty() {
            todo.extend(by_exp);
        } else if let Some(r) = target::find_run(runs, t) {
            todo.push(r.id.clone());
        } else if p.datasets.contains_key(t) {
            sel.datasets.insert(t.clone());
        } else if p.experiment(t).is_some() {
            bail!("experiment `{t}` has no runs in profile `{profile}` (skipped?)");
        } else {
            bail!("{}", target::unknown_target(p, runs, profile, t));
        }
    }
    while let Some(id) = todo.pop() {
        if sel.runs.insert(id.clone())
            && let Some(r) = runs.iter().find(|r| r.id == id)
        {
            todo.extend(r.upstream.iter().cloned());
            if let Some(f) = &r.fused {
                let group = runs
                    .iter()
                    .filter(|o| o.fused.as_ref().is_some_and(|g| g.group == f.group));
                todo.extend(group.map(|o| o.id.clone()));
            }
        }
    }
    Ok(sel)
}

/// Experiments with every `needs` before its dependents (the spec was checked for cycles).
fn topo_order(p: &Pipeline) -> Vec<(&str, &super::spec::ExperimentSpec)> {
    let mut done: BTreeSet<&str> = BTreeSet::new();
    let mut out = Vec::new();
    while out.len() < p.experiments.len() {
        let before = out.len();
        for (n, e) in &p.experiments {
            if !done.contains(n.as_str()) && e.needs.iter().all(|d| done.contains(d.as_str())) {
                done.insert(n);
                out.push((n.as_str(), e));
            }
        }
        if out.len() == before {
            break; // a cycle; validation reports it
        }
    }
    out
}

fn normalise(kind: &StageDecl, name: &str, v: &Value) -> Result<Value> {
    let spec = kind
        .params
        .iter()
        .find(|s| s.name == name)
        .with_context(|| format!("unknown parameter {name}"))?;
    spec.check(v)
        .map_err(|e| anyhow::anyhow!("parameter {name}: {e}"))
}

/// A value as written in run ids.
pub fn show(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        _ => v.to_string(),
    }
}

/// Grid points in axis order; the last axis varies fastest. No axes → one empty point.
fn cartesian(grid: &Map<String, Value>) -> Vec<Vec<(String, Value)>> {
    let mut points: Vec<Vec<(String, Value)>> = vec![Vec::new()];
    for (axis, values) in grid {
        let values = values.as_array().cloned().unwrap_or_default();
        points = points
            .into_iter()
            .flat_map(|pt| {
                values.iter().map(move |v| {
                    let mut pt = pt.clone();
                    pt.push((axis.clone(), v.clone()));
                    pt
                })
            })
            .collect();
    }
    points
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const PIPE: &str = r#"
datasets:
  c: {format: cifar10-binary, files: [{name: c.tar.gz}]}
experiments:
  a:
    kind: vision
    datasets: [c]
    params: {epochs: 7}
    grid: {schedule: [none, early], seed: [0, 1]}
  b:
    kind: vision
    datasets: [c]
    needs: [a]
    grid: {seed: [0, 1]}
profiles:
  paper: {}
  small:
    determinism: bitwise
    experiments:
      a: {params: {epochs: 2, lr: 1}, grid: {seed: [5]}}
      b: {skip: true}
"#;

    #[test]
    fn a_profile_precision_reaches_only_the_kinds_that_apply_it() {
        let text = r#"
datasets:
  c: {format: cifar10-binary, files: [{name: c.tar.gz}]}
experiments:
  a: {kind: vision, datasets: [c]}
  s: {kind: sharpness, datasets: [c], needs: [a]}
profiles:
  paper: {}
  fast:
    precision: {autocast: bf16, channels_last: true, tf32: true}
"#;
        let p = Pipeline::parse(std::path::Path::new("pipeline.yaml"), text).unwrap();
        let paper = Plan::resolve(&p, "paper", &[]).unwrap();
        assert!(
            paper
                .runs
                .iter()
                .all(|r| r.precision == Precision::default())
        );
        let fast = Plan::resolve(&p, "fast", &[]).unwrap();
        let all = Precision {
            autocast: crate::runtime::Autocast::Bf16,
            channels_last: true,
            tf32: true,
        };
        assert_eq!(fast.run("a").unwrap().precision, all);
        // Sharpness applies neither autocast nor channels-last; TF32 is process-wide.
        assert_eq!(
            fast.run("s").unwrap().precision,
            Precision {
                tf32: true,
                ..Precision::default()
            }
        );
    }

    #[test]
    fn profiles_grids_and_upstream_matching() {
        let p = Pipeline::parse(std::path::Path::new("pipeline.yaml"), PIPE).unwrap();
        let plan = Plan::resolve(&p, "paper", &[]).unwrap();
        assert_eq!(plan.runs.len(), 6);
        let b0 = plan.run("b/seed=0").unwrap();
        assert_eq!(
            b0.upstream,
            vec!["a/schedule=none,seed=0", "a/schedule=early,seed=0"]
        );
        // Defaults fill in what the experiment does not set; experiment params override them.
        assert_eq!(
            plan.run("a/schedule=none,seed=1").unwrap().params["epochs"],
            json!(7)
        );
        assert_eq!(b0.params["epochs"], json!(200));

        let small = Plan::resolve(&p, "small", &[]).unwrap();
        let ids: Vec<&str> = small.runs.iter().map(|r| r.id.as_str()).collect();
        assert_eq!(ids, ["a/schedule=none,seed=5", "a/schedule=early,seed=5"]);
        assert_eq!(
            small.runs[0].params["lr"],
            json!(1.0),
            "ints given for floats are normalised"
        );
        assert_eq!(small.runs[0].params["epochs"], json!(2));
        // The profile's determinism overrides the experiments' (statistical by default).
        assert_eq!(plan.runs[0].determinism, Determinism::Statistical);
        assert_eq!(small.runs[0].determinism, Determinism::Bitwise);

        // A target pulls in its upstream runs, and nothing else.
        let t = Plan::resolve(&p, "paper", &["b/seed=1".into()]).unwrap();
        let ids: Vec<&str> = t.runs.iter().map(|r| r.id.as_str()).collect();
        assert_eq!(
            ids,
            [
                "a/schedule=none,seed=1",
                "a/schedule=early,seed=1",
                "b/seed=1"
            ]
        );
        assert_eq!(t.datasets.len(), 1);
        assert!(Plan::resolve(&p, "paper", &["zzz".into()]).is_err());
    }

    #[test]
    fn cartesian_order() {
        let g = json!({"schedule": ["a", "b"], "seed": [0, 1, 2]});
        let pts = cartesian(g.as_object().unwrap());
        assert_eq!(pts.len(), 6);
        assert_eq!(
            pts[1],
            vec![
                ("schedule".to_string(), json!("a")),
                ("seed".to_string(), json!(1))
            ]
        );
    }
}
