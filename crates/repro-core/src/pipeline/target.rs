//! What a target names: an experiment, a run id or a dataset. A run id matches whatever the order
//! of its `axis=value` pairs and however a value is spelled, as long as the kind's parameter
//! normalisation gives the same value (`exp/seed=0,lr=0.10` ≡ `exp/lr=0.1,seed=0`); a target
//! that names nothing gets up to three near names as suggestions.

use serde_json::Value;

use super::plan::RunNode;
use super::spec::Pipeline;

/// How many suggestions an unknown target gets at most.
const MAX_SUGGESTIONS: usize = 3;
/// Jaro-Winkler similarity below which a name is no suggestion.
const SIMILARITY_CUTOFF: f64 = 0.8;

/// The experiment and `axis=value` pairs of a run id; `None` when it is a bare name, or a pair
/// has no `=`.
fn split_run_id(id: &str) -> Option<(&str, Vec<(&str, &str)>)> {
    let (experiment, point) = id.split_once('/')?;
    let pairs = point
        .split(',')
        .map(|pair| pair.split_once('='))
        .collect::<Option<Vec<_>>>()?;
    Some((experiment, pairs))
}

/// Whether the written value `text` of parameter `axis` means `value` for `run`'s kind: read as
/// a JSON scalar (else as a string) and normalised by the kind's schema.
fn same_value(run: &RunNode, axis: &str, text: &str, value: &Value) -> bool {
    let Some(spec) = run.kind.params.iter().find(|s| s.name == axis) else {
        return false;
    };
    let parsed = serde_json::from_str::<Value>(text)
        .ok()
        .filter(|v| !v.is_array() && !v.is_object());
    parsed
        .into_iter()
        .chain([Value::String(text.to_string())])
        .filter_map(|v| spec.check(&v).ok())
        .any(|v| &v == value)
}

/// Whether `target` names `run`: its id exactly, or the same experiment and grid point written
/// in another order or spelling.
pub fn names_run(target: &str, run: &RunNode) -> bool {
    if target == run.id {
        return true;
    }
    let (Some((t_exp, t_pairs)), Some((_, r_pairs))) =
        (split_run_id(target), split_run_id(&run.id))
    else {
        return false;
    };
    if t_exp != run.experiment || t_pairs.len() != r_pairs.len() {
        return false;
    }
    let mut axes: Vec<&str> = t_pairs.iter().map(|(a, _)| *a).collect();
    axes.sort_unstable();
    axes.dedup();
    axes.len() == t_pairs.len()
        && t_pairs.iter().all(|(axis, text)| {
            r_pairs.iter().any(|(a, _)| a == axis)
                && run
                    .params
                    .get(*axis)
                    .is_some_and(|v| same_value(run, axis, text, v))
        })
}

/// The run `target` names among `runs`.
pub fn find_run<'a>(runs: &'a [RunNode], target: &str) -> Option<&'a RunNode> {
    runs.iter()
        .find(|r| r.id == target)
        .or_else(|| runs.iter().find(|r| names_run(target, r)))
}

/// Up to three names among `candidates` nearest to `target` (Jaro-Winkler, best first).
pub fn nearest<'a>(target: &str, candidates: impl IntoIterator<Item = &'a str>) -> Vec<&'a str> {
    let mut scored: Vec<(f64, &str)> = candidates
        .into_iter()
        .map(|c| (strsim::jaro_winkler(target, c), c))
        .filter(|(s, _)| *s >= SIMILARITY_CUTOFF)
        .collect();
    scored.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(b.1)));
    scored.dedup_by(|a, b| a.1 == b.1);
    scored
        .into_iter()
        .take(MAX_SUGGESTIONS)
        .map(|(_, c)| c)
        .collect()
}

/// The error for a target that names nothing, with the near names: among the experiments and
/// datasets for a bare name, among the run ids of `runs` for a run id (those of its experiment
/// when that part is right) — or, with none near, what targets are.
pub fn unknown_target(p: &Pipeline, runs: &[RunNode], profile: &str, target: &str) -> String {
    let candidates: Vec<&str> = match target.split_once('/') {
        None => p
            .experiments
            .iter()
            .map(|(name, _)| name.as_str())
            .chain(p.datasets.keys().map(String::as_str))
            .collect(),
        Some((experiment, _)) => {
            let own = runs.iter().filter(|r| r.experiment == experiment);
            let pool: Vec<&RunNode> = if own.clone().next().is_some() {
                own.collect()
            } else {
                runs.iter().collect()
            };
            pool.into_iter().map(|r| r.id.as_str()).collect()
        }
    };
    let near = nearest(target, candidates);
    let what = "targets are experiments, run ids `experiment/axis=value,…` (in any order) and \
                datasets; `repro plan` lists the run ids";
    if near.is_empty() {
        return format!("no target `{target}` in profile `{profile}`: {what}");
    }
    let quoted: Vec<String> = near.iter().map(|n| format!("`{n}`")).collect();
    let list = match quoted.split_last() {
        Some((last, rest)) if !rest.is_empty() => format!("{} or {last}", rest.join(", ")),
        _ => quoted.join(""),
    };
    format!("no target `{target}`; did you mean {list}? ({what})")
}
