//! The report's files: `report.md`, `claims.json` (verdicts with the data and the digests every
//! number came from), `claims.md` (the verdicts alone, for a README), one CSV per table, each
//! figure as PNG and SVG, and `report.html` ([`super::html`]: one self-contained page that opens
//! from disk). No host names and no time of rendering: the only dates are the run records' (which
//! the report's key covers, see [`super::ledger`]), so the same inputs give the same bytes.

use std::fmt::Write as _;

use anyhow::Result;
use serde_json::json;

use super::exhibits::{self, Exhibit};
use super::figures;
use super::ledger::Ledger;
use super::observe::{Inputs, Origin};
use super::tables::{self, Table};
use super::verdict::{CheckResult, ClaimSummary, Verdict};
use repro_core::pipeline::spec::Pipeline;

pub const PAPER: &str = "Bjorck, Weinberger, Gomes, “Understanding Decoupled and Early Weight \
                         Decay”, AAAI 2021 (arXiv 2012.13841)";

/// What the documents are made of.
pub struct Document<'a> {
    pub pipeline: &'a Pipeline,
    pub profile: &'a str,
    pub key: &'a str,
    pub inputs: &'a Inputs,
    pub checks: &'a [CheckResult],
    pub claims: &'a [ClaimSummary],
    pub claims_table: &'a Table,
    pub checks_table: &'a Table,
    pub experiment_tables: &'a [Table],
    /// The runs read, from their records, and their match with `pipeline.lock`.
    pub ledger: &'a Ledger,
}

/// Every file of the report as (relative path, bytes).
pub fn files(doc: &Document) -> Result<Vec<(String, Vec<u8>)>> {
    let exhibits = exhibits::exhibits(doc.inputs);
    let mut out = Vec::new();
    let mut svgs = Vec::new();
    for e in &exhibits {
        let svg = figures::render_svg(&e.figure)?;
        out.push((
            format!("figures/{}.png", e.id),
            figures::render_png(&e.figure)?,
        ));
        out.push((format!("figures/{}.svg", e.id), svg.clone().into_bytes()));
        svgs.push(svg);
    }
    let all = [doc.claims_table, doc.checks_table]
        .into_iter()
        .chain(doc.experiment_tables);
    for t in all {
        out.push((format!("tables/{}.csv", t.id), tables::csv(t)?.into_bytes()));
    }
    out.push(("claims.json".into(), claims_json(doc)?));
    out.push((
        "claims.md".into(),
        verdicts_markdown(doc, "###").into_bytes(),
    ));
    out.push(("report.md".into(), markdown(doc, &exhibits).into_bytes()));
    out.push((
        "report.html".into(),
        super::html::page(doc, &exhibits, &svgs).into_bytes(),
    ));
    Ok(out)
}

fn claims_json(doc: &Document) -> Result<Vec<u8>> {
    let v = json!({
        "paper": PAPER,
        "profile": doc.profile,
        "report_key": doc.key,
        "claims": doc.claims,
        "checks": doc.checks,
        "inputs": doc.inputs.digests,
    });
    let mut bytes = serde_json::to_vec_pretty(&v)?;
    bytes.push(b'\n');
    Ok(bytes)
}

/// `2 of 5`, with `, 1 diverged` when a check lost an arm to divergence and `; 3 beside` for
/// extension and finding checks, which the claim's verdict does not count.
pub(crate) fn counts(c: &ClaimSummary) -> String {
    let mut s = format!("{} of {}", c.reproduced, c.checks);
    if c.diverged > 0 {
        s += &format!(", {} diverged", c.diverged);
    }
    if c.beside > 0 {
        s += &format!("; {} extension/finding not counted", c.beside);
    }
    s
}

pub(crate) fn runs_line(doc: &Document) -> String {
    let planned: usize = doc.inputs.experiments.iter().map(|e| e.planned).sum();
    format!(
        "{} of {planned} runs of profile `{}` finished and read; report key `{}`.",
        doc.inputs.digests.len(),
        doc.profile,
        &doc.key[..16]
    )
}

pub(crate) fn profile_description(doc: &Document) -> String {
    doc.pipeline
        .profiles
        .get(doc.profile)
        .and_then(|p| p.description.clone())
        .unwrap_or_default()
        .trim()
        .to_string()
}

/// Every `provenance:` entry of the pipeline as (setting, label), trimmed.
pub(crate) fn provenance(doc: &Document) -> Vec<(String, String)> {
    doc.pipeline
        .provenance
        .iter()
        .map(|p| (p.setting.trim().to_string(), p.label.trim().to_string()))
        .collect()
}

pub(crate) const PROVENANCE_INTRO: &str = "Where the experiments' settings come from, for those the \
                                paper's readable text does not give (docs/paper.md in the \
                                repository says why):";

/// Every distinct "default of ours" the checks rely on, with the checks relying on it.
pub(crate) fn defaults(doc: &Document) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = Vec::new();
    for c in doc.checks {
        let Some(d) = &c.defaults else { continue };
        match out.iter_mut().find(|(_, x)| x == d) {
            Some((ids, _)) => {
                if !ids.split(", ").any(|i| i == c.id) {
                    ids.push_str(&format!(", {}", c.id));
                }
            }
            None => out.push((c.id.clone(), d.clone())),
        }
    }
    out
}

/// The headline a profile whose verdicts rest on generated data must carry, naming the data.
pub(crate) fn mechanism_notice(doc: &Document) -> Option<String> {
    let mut names: Vec<&str> = doc
        .checks
        .iter()
        .filter(|c| c.is_decided())
        .flat_map(|c| &c.data)
        .filter(|d| d.origin == Origin::Generated)
        .map(|d| d.name.as_str())
        .collect();
    names.sort();
    names.dedup();
    (!names.is_empty()).then(|| {
        format!(
            "Mechanism checks on generated data: the verdicts whose data say \"generated\" were \
             decided on data generated offline in the upstream formats ({}), not on the paper's \
             datasets. They say whether the paper's mechanisms show on data built to be \
             learnable, not whether its numbers hold.",
            names.join(", ")
        )
    })
}

/// `generated, simulated`: where a claim's decided, counted checks got their data.
pub(crate) fn claim_data(c: &ClaimSummary) -> String {
    let words: Vec<&str> = c.data.iter().map(|o| o.text()).collect();
    words.join(", ")
}

/// The verdicts: the notice, the verdict of each claim, the legend and the table of checks,
/// under headings of level `h` (`##`). `claims.md` holds them under `###`, for a README to embed
/// in a section of its own.
fn verdicts_markdown(doc: &Document, h: &str) -> String {
    let mut s = String::new();
    if let Some(n) = mechanism_notice(doc) {
        let _ = writeln!(s, "**{n}**\n");
    }
    let _ = writeln!(s, "{h} Verdicts by claim\n");
    let _ = writeln!(
        s,
        "| claim | verdict | checks reproduced | data |\n|---|---|---|---|"
    );
    for c in doc.claims {
        let _ = writeln!(
            s,
            "| {} | **{}** | {} | {} |",
            c.claim,
            c.verdict.text(),
            counts(c),
            claim_data(c)
        );
    }
    let legend: Vec<String> = Verdict::ALL
        .iter()
        .map(|v| format!("**{}**: {}", v.text(), v.meaning()))
        .collect();
    let _ = writeln!(s, "\nVerdicts: {}.", legend.join("; "));
    let _ = writeln!(s, "\n{h} Checks\n");
    s += &tables::markdown(doc.claims_table);
    s
}

fn markdown(doc: &Document, exhibits: &[Exhibit]) -> String {
    let mut s = String::new();
    let _ = writeln!(s, "# Replication report: profile `{}`\n", doc.profile);
    let _ = writeln!(s, "{PAPER}.\n");
    let _ = writeln!(s, "{}\n", profile_description(doc));
    let _ = writeln!(s, "{}\n", runs_line(doc));
    s += &verdicts_markdown(doc, "##");
    let _ = writeln!(s, "\n### By experiment and metric\n");
    s += &tables::markdown(doc.checks_table);
    let _ = writeln!(s, "\n### What each check says\n");
    let mut seen = Vec::new();
    for c in doc.checks {
        if seen.contains(&&c.id) {
            continue;
        }
        seen.push(&c.id);
        let _ = writeln!(s, "- **{}** ({}): {}", c.id, c.role.label(&c.claim), c.text);
    }
    let defaults = defaults(doc);
    let provenance = provenance(doc);
    if !defaults.is_empty() || !provenance.is_empty() {
        let _ = writeln!(s, "\n### Defaults of ours\n");
        for (ids, d) in &defaults {
            let _ = writeln!(s, "- {d} ({ids})");
        }
    }
    if !provenance.is_empty() {
        let _ = writeln!(s, "\n{PROVENANCE_INTRO}\n");
        for (setting, label) in &provenance {
            let _ = writeln!(s, "- {setting} — *{label}*");
        }
    }
    let _ = writeln!(s, "\n## Experiments\n");
    for e in &doc.inputs.experiments {
        let _ = writeln!(s, "### {}\n", e.name);
        if let Some(d) = &e.description {
            let _ = writeln!(s, "{}\n", d.trim());
        }
        match doc.experiment_tables.iter().find(|t| t.id == e.name) {
            Some(t) => s += &tables::markdown(t),
            None => {
                let _ = writeln!(s, "No finished runs.");
            }
        }
        s += "\n";
        for x in exhibits
            .iter()
            .filter(|x| x.experiment.as_deref() == Some(&e.name))
        {
            let _ = writeln!(s, "![{}](figures/{}.png)\n\n*{}*\n", x.id, x.id, x.caption);
        }
    }
    let across: Vec<&Exhibit> = exhibits.iter().filter(|x| x.experiment.is_none()).collect();
    if !across.is_empty() {
        let _ = writeln!(s, "## Across experiments\n");
        for x in across {
            let _ = writeln!(s, "![{}](figures/{}.png)\n\n*{}*\n", x.id, x.id, x.caption);
        }
    }
    let _ = writeln!(
        s,
        "## Provenance\n\nEvery number above comes from these run outputs (sha256); \
         `claims.json` lists them per check.\n"
    );
    for (run, files) in &doc.inputs.digests {
        for (f, d) in files.iter().filter(|(f, _)| f.ends_with(".jsonl")) {
            let _ = writeln!(s, "- `{}` {f}: `{}`", run.trim_start_matches("run:"), d);
        }
    }
    s
}

/// An SVG document without its `<?xml …?>` line, for inlining into HTML.
pub(crate) fn strip_xml_declaration(svg: &str) -> &str {
    match svg.find("<svg") {
        Some(i) => &svg[i..],
        None => svg,
    }
}
