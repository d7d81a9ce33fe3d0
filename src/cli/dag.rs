//! `repro dag`: the plan's graph — datasets, runs and what each reads — as layered text per
//! experiment (grids of more than a few runs collapsed to their axes and counts) or, with
//! `--dot`, Graphviz DOT with one node per dataset and run (`dot -Tsvg`).

use std::fmt::Write as _;

use repro_core::pipeline::plan::{Plan, RunNode};

/// Experiments with more runs than this are shown by their axes, not run by run.
const LIST_AT_MOST: usize = 6;

/// A dataset's node name, as run records name it as an input.
fn dataset_node(name: &str) -> String {
    format!("dataset:{name}")
}

/// The experiments of the plan in plan order (dependencies first), each with its runs.
fn by_experiment(plan: &Plan) -> Vec<(&str, Vec<&RunNode>)> {
    let mut out: Vec<(&str, Vec<&RunNode>)> = Vec::new();
    for r in &plan.runs {
        match out.iter_mut().find(|(e, _)| *e == r.experiment) {
            Some((_, runs)) => runs.push(r),
            None => out.push((&r.experiment, vec![r])),
        }
    }
    out
}

/// The grid point of a run id (`schedule=none,seed=0`), or the id when it has none.
fn point(r: &RunNode) -> &str {
    r.id.split_once('/').map_or(r.id.as_str(), |(_, p)| p)
}

/// Layered text: the datasets, then each experiment with its kind, run count and inputs.
pub(super) fn text(plan: &Plan) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "datasets");
    for d in &plan.datasets {
        let source = format!("{:?}", d.source).to_lowercase();
        let _ = writeln!(out, "  {} ({source})", d.name);
    }
    for (exp, runs) in by_experiment(plan) {
        let mut inputs: Vec<String> = runs[0].datasets.clone();
        let mut needs: Vec<&str> = Vec::new();
        for r in &runs {
            for u in &r.upstream {
                let e = u.split_once('/').map_or(u.as_str(), |(e, _)| e);
                if !needs.contains(&e) {
                    needs.push(e);
                }
            }
        }
        inputs.extend(needs.iter().map(|n| n.to_string()));
        let reads = if inputs.is_empty() {
            String::new()
        } else {
            format!(" ← {}", inputs.join(", "))
        };
        let _ = writeln!(
            out,
            "{exp} [{}, {} run{}]{reads}",
            runs[0].kind.name,
            runs.len(),
            if runs.len() == 1 { "" } else { "s" }
        );
        if runs.len() > LIST_AT_MOST {
            let _ = writeln!(out, "  {}", axes(&runs));
            continue;
        }
        for r in runs.iter().filter(|r| r.id != r.experiment) {
            let ups: Vec<&str> = r.upstream.iter().map(String::as_str).collect();
            if ups.is_empty() {
                let _ = writeln!(out, "  {}", point(r));
            } else {
                let _ = writeln!(out, "  {} ← {}", point(r), ups.join(", "));
            }
        }
    }
    out
}

/// `lr × 3, seed × 4`: each axis of the runs' ids with its number of values.
fn axes(runs: &[&RunNode]) -> String {
    let mut axes: Vec<(&str, Vec<&str>)> = Vec::new();
    for r in runs {
        for pair in point(r).split(',') {
            let (axis, value) = pair.split_once('=').unwrap_or((pair, ""));
            match axes.iter_mut().find(|(a, _)| *a == axis) {
                Some((_, values)) if !values.contains(&value) => values.push(value),
                Some(_) => {}
                None => axes.push((axis, vec![value])),
            }
        }
    }
    axes.iter()
        .map(|(a, v)| format!("{a} × {}", v.len()))
        .collect::<Vec<_>>()
        .join(", ")
}

/// A DOT string literal.
fn quoted(s: &str) -> String {
    format!("\"{}\"", s.replace('\\', "\\\\").replace('"', "\\\""))
}

/// Graphviz DOT: a node per dataset (a cylinder) and per run (a box, labelled by its grid
/// point, clustered by experiment), an edge from every input to the run reading it.
pub(super) fn dot(plan: &Plan) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "digraph {} {{",
        quoted(&format!("plan {}", plan.profile))
    );
    let _ = writeln!(out, "  rankdir=LR;");
    let _ = writeln!(out, "  node [shape=box, fontname=\"Helvetica\"];");
    for d in &plan.datasets {
        let _ = writeln!(
            out,
            "  {} [shape=cylinder, label={}];",
            quoted(&dataset_node(&d.name)),
            quoted(&d.name)
        );
    }
    for (i, (exp, runs)) in by_experiment(plan).into_iter().enumerate() {
        let _ = writeln!(out, "  subgraph cluster_{i} {{");
        let _ = writeln!(out, "    label={};", quoted(exp));
        for r in runs {
            let _ = writeln!(out, "    {} [label={}];", quoted(&r.id), quoted(point(r)));
        }
        let _ = writeln!(out, "  }}");
    }
    for r in &plan.runs {
        for d in &r.datasets {
            let _ = writeln!(out, "  {} -> {};", quoted(&dataset_node(d)), quoted(&r.id));
        }
        for u in &r.upstream {
            let _ = writeln!(out, "  {} -> {};", quoted(u), quoted(&r.id));
        }
    }
    out.push_str("}\n");
    out
}
