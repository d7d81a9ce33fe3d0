//! README.md's generated blocks, each held to what it is generated from: the profile table to
//! pipeline.yaml, the `cpu` results to the published report (docs/results/cpu/), and the smoke
//! excerpt and figure to a smoke report (report/smoke/, so that test waits for a smoke run: `make
//! docs` and `.ci/run` run it after one). A block that drifted fails its test; with
//! `REPRO_UPDATE_DOCS=1` (`make docs`) the test rewrites it instead.

use std::path::{Path, PathBuf};
use std::sync::Mutex;

use repro_core::pipeline::plan::Plan;
use repro_core::pipeline::spec::Pipeline;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn read(p: &Path) -> String {
    std::fs::read_to_string(p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

fn updating() -> bool {
    std::env::var_os("REPRO_UPDATE_DOCS").is_some_and(|v| v == "1")
}

/// README.md with `name`'s block holding `body`; `None` if it already does.
fn with_block(readme: &str, name: &str, body: &str) -> Option<String> {
    let begin = readme
        .find(&format!("<!-- {name} begin"))
        .unwrap_or_else(|| panic!("README.md has no `<!-- {name} begin` marker"));
    let start = begin + readme[begin..].find("-->\n").expect("unterminated marker") + 4;
    let end = readme
        .find(&format!("<!-- {name} end -->"))
        .unwrap_or_else(|| panic!("README.md has no `<!-- {name} end -->` marker"));
    let want = format!("\n{}\n\n", body.trim());
    (readme[start..end] != want).then(|| format!("{}{want}{}", &readme[..start], &readme[end..]))
}

/// Fail when `name`'s block is not `body`, or rewrite it under `REPRO_UPDATE_DOCS=1`.
fn ensure_block(name: &str, body: &str) {
    static README: Mutex<()> = Mutex::new(());
    let _one_writer = README.lock().unwrap_or_else(|e| e.into_inner());
    let path = root().join("README.md");
    let Some(updated) = with_block(&read(&path), name, body) else {
        return;
    };
    if updating() {
        std::fs::write(&path, updated).unwrap();
    } else {
        panic!(
            "README.md's `{name}` block is stale; run `make docs` (or this test with \
             REPRO_UPDATE_DOCS=1). It should read:\n{body}"
        );
    }
}

/// The profile table: every profile's runs and stated cost, cheapest first, with the defaults
/// and the profiles that need confirmation marked.
fn profile_table(p: &Pipeline) -> String {
    let mut rows: Vec<(f64, String)> = Vec::new();
    for (name, spec) in &p.profiles {
        let runs = Plan::resolve(p, name, &[]).expect("plan").runs.len();
        let mut notes = Vec::new();
        if let Some(d) = &p.default_profile {
            if d.cpu == *name {
                notes.push("the default without CUDA".to_string());
            }
            if d.cuda == *name {
                notes.push("the default with CUDA".to_string());
            }
        }
        if spec.confirm {
            notes.push("runs only with `--yes` (`YES=1`)".to_string());
        }
        let (hours, cost) = match &spec.cost {
            Some(c) => (c.hours, format!("{c} | {}", c.source)),
            None => (f64::INFINITY, "not measured yet | ".to_string()),
        };
        rows.push((
            hours,
            format!("| `{name}` | {runs} | {cost} | {} |", notes.join("; ")),
        ));
    }
    rows.sort_by(|a, b| a.0.total_cmp(&b.0));
    let mut out = String::from("| profile | runs | cost | source | |\n|---|---|---|---|---|\n");
    for (_, row) in rows {
        out.push_str(&row);
        out.push('\n');
    }
    out
}

#[test]
fn readme_profile_table_is_pipeline_yamls() {
    let p = Pipeline::load(&root().join("pipeline.yaml")).expect("pipeline.yaml");
    ensure_block("profiles", &profile_table(&p));
}

#[test]
fn a_stale_block_is_found_and_a_current_one_left_alone() {
    let readme = "a\n<!-- x begin: made by y -->\n\nold\n\n<!-- x end -->\nb\n";
    let updated = with_block(readme, "x", "new").expect("old ≠ new");
    assert_eq!(
        updated,
        "a\n<!-- x begin: made by y -->\n\nnew\n\n<!-- x end -->\nb\n"
    );
    assert_eq!(with_block(&updated, "x", "new"), None);
}

/// The `cpu` results block is the published report's verdicts by claim (claims.md up to its
/// list of checks, which docs/results/cpu/ holds).
#[test]
fn readme_results_are_the_published_cpu_verdicts() {
    let claims = read(&root().join("docs/results/cpu/claims.md"));
    let head = &claims[..claims
        .find("\n### Checks")
        .expect("claims.md has ### Checks")];
    ensure_block("results:cpu", head);
}

/// The smoke excerpt: the `cifar10_resnet18` table of report/smoke/report.md and its curves.
#[test]
#[ignore = "needs report/smoke/ from a smoke run: `make docs` and .ci/run run it after one"]
fn readme_smoke_excerpt_is_the_smoke_reports() {
    let report = root().join("report/smoke");
    let md = read(&report.join("report.md"));
    let section = &md[md
        .find("\n### cifar10_resnet18\n")
        .expect("report.md has a cifar10_resnet18 section")..];
    let table: Vec<&str> = section
        .lines()
        .skip_while(|l| !l.starts_with('|'))
        .take_while(|l| l.starts_with('|'))
        .collect();
    assert!(
        table.len() > 2,
        "no table in report.md's cifar10_resnet18 section"
    );
    let figure = "docs/smoke-cifar10_resnet18-curves.png";
    ensure_block(
        "smoke",
        &format!(
            "{}\n\n![The smoke report's cifar10_resnet18 curves by schedule]({figure})",
            table.join("\n")
        ),
    );
    let made = std::fs::read(report.join("figures/cifar10_resnet18-curves.png")).unwrap();
    if std::fs::read(root().join(figure)).ok().as_deref() != Some(&made[..]) {
        assert!(
            updating(),
            "{figure} is not report/smoke's figure; run `make docs`"
        );
        std::fs::write(root().join(figure), made).unwrap();
    }
}
