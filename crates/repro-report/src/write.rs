//! The report's files: `report.md`, `claims.json` (verdicts with the data and the digests every
//! number came from), `claims.md` (the verdicts alone, for a README), one CSV per table, each
//! figure as PNG and SVG, and `report.html`, one self-contained page (figures inline as SVG, no
//! network) that opens from disk. No timestamps or host names: the same inputs give the same
//! bytes.

use std::fmt::Write as _;

use anyhow::Result;
use serde_json::json;

use super::exhibits::{self, Exhibit};
use super::figures;
use super::observe::{Inputs, Origin};
use super::tables::{self, Table, html_escape, html_text, verdict_class};
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
        html(doc, &exhibits, &svgs).into_bytes(),
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
fn counts(c: &ClaimSummary) -> String {
    let mut s = format!("{} of {}", c.reproduced, c.checks);
    if c.diverged > 0 {
        s += &format!(", {} diverged", c.diverged);
    }
    if c.beside > 0 {
        s += &format!("; {} extension/finding not counted", c.beside);
    }
    s
}

fn runs_line(doc: &Document) -> String {
    let planned: usize = doc.inputs.experiments.iter().map(|e| e.planned).sum();
    format!(
        "{} of {planned} runs of profile `{}` finished and read; report key `{}`.",
        doc.inputs.digests.len(),
        doc.profile,
        &doc.key[..16]
    )
}

fn profile_description(doc: &Document) -> String {
    doc.pipeline
        .profiles
        .get(doc.profile)
        .and_then(|p| p.description.clone())
        .unwrap_or_default()
        .trim()
        .to_string()
}

/// Every `provenance:` entry of the pipeline as (setting, label), trimmed.
fn provenance(doc: &Document) -> Vec<(String, String)> {
    doc.pipeline
        .provenance
        .iter()
        .map(|p| (p.setting.trim().to_string(), p.label.trim().to_string()))
        .collect()
}

const PROVENANCE_INTRO: &str = "Where the experiments' settings come from, for those the \
                                paper's readable text does not give (docs/paper.md in the \
                                repository says why):";

/// Every distinct "default of ours" the checks rely on, with the checks relying on it.
fn defaults(doc: &Document) -> Vec<(String, String)> {
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
fn mechanism_notice(doc: &Document) -> Option<String> {
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
fn claim_data(c: &ClaimSummary) -> String {
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

const CSS: &str = "body{font-family:sans-serif;max-width:1100px;margin:2em auto;padding:0 1em;\
color:#222;line-height:1.45}table{border-collapse:collapse;margin:1em 0;font-size:14px}\
th,td{border:1px solid #ccc;padding:4px 8px;text-align:left;vertical-align:top}\
th{background:#f4f4f4}td.num{text-align:right;font-variant-numeric:tabular-nums;\
white-space:nowrap}.verdict{font-weight:bold;white-space:nowrap}.ok{color:#1a7f37}\
.fail{color:#cf222e}.unsure{color:#9a6700}.diverged{color:#8250df}.notrun,.notcheckable{color:#6e7781}\
figure{margin:1.5em 0}figure svg{max-width:100%;height:auto}figcaption{color:#444;\
font-size:14px}p.note{color:#444;font-size:14px}code{background:#f4f4f4;padding:0 3px}summary{cursor:pointer;color:#444}";

fn html(doc: &Document, exhibits: &[Exhibit], svgs: &[String]) -> String {
    let mut s = String::new();
    let title = format!("Replication report: profile {}", doc.profile);
    let _ = write!(
        s,
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <title>{}</title>\n<style>{CSS}</style>\n</head>\n<body>\n<h1>{}</h1>\n",
        html_escape(&title),
        html_escape(&title)
    );
    let _ = writeln!(s, "<p>{}.</p>", html_escape(PAPER));
    let _ = writeln!(s, "<p>{}</p>", html_escape(&profile_description(doc)));
    let _ = writeln!(s, "<p>{}</p>", html_text(&runs_line(doc)));
    if let Some(n) = mechanism_notice(doc) {
        let _ = writeln!(s, "<p><strong>{}</strong></p>", html_escape(&n));
    }
    let _ = writeln!(
        s,
        "<h2>Verdicts by claim</h2>\n<table><thead><tr><th>claim</th><th>verdict</th>\
         <th>checks reproduced</th><th>data</th></tr></thead><tbody>"
    );
    for c in doc.claims {
        let _ = writeln!(
            s,
            "<tr><td>{}</td><td class=\"verdict {}\">{}</td><td>{}</td><td>{}</td></tr>",
            html_escape(&c.claim),
            verdict_class(c.verdict),
            c.verdict.text(),
            counts(c),
            claim_data(c)
        );
    }
    s += "</tbody></table>\n";
    let legend: Vec<String> = Verdict::ALL
        .iter()
        .map(|v| {
            format!(
                "<span class=\"verdict {}\">{}</span>: {}",
                verdict_class(*v),
                v.text(),
                html_escape(v.meaning())
            )
        })
        .collect();
    let _ = writeln!(s, "<p class=\"note\">Verdicts: {}.</p>", legend.join("; "));
    s += "<h2>Checks</h2>\n";
    s += &tables::html(doc.claims_table);
    let _ = writeln!(
        s,
        "<details><summary>By experiment and metric ({} checks)</summary>",
        doc.checks_table.rows.len()
    );
    s += &tables::html(doc.checks_table);
    s += "</details>\n";
    let defaults = defaults(doc);
    let provenance = provenance(doc);
    if !defaults.is_empty() || !provenance.is_empty() {
        s += "<h3>Defaults of ours</h3>\n";
    }
    if !defaults.is_empty() {
        s += "<ul>\n";
        for (ids, d) in &defaults {
            let _ = writeln!(s, "<li>{} ({})</li>", html_text(d), html_escape(ids));
        }
        s += "</ul>\n";
    }
    if !provenance.is_empty() {
        let _ = writeln!(s, "<p>{}</p>\n<ul>", html_escape(PROVENANCE_INTRO));
        for (setting, label) in &provenance {
            let _ = writeln!(
                s,
                "<li>{} — <em>{}</em></li>",
                html_text(setting),
                html_text(label)
            );
        }
        s += "</ul>\n";
    }
    s += "<h2>Experiments</h2>\n";
    let figure = |s: &mut String, i: usize| {
        let _ = writeln!(
            s,
            "<figure id=\"{}\">\n{}\n<figcaption>{}</figcaption>\n</figure>",
            exhibits[i].id,
            strip_xml_declaration(&svgs[i]),
            html_escape(&exhibits[i].caption)
        );
    };
    for e in &doc.inputs.experiments {
        let _ = writeln!(s, "<h3 id=\"{}\">{}</h3>", e.name, html_escape(&e.name));
        if let Some(d) = &e.description {
            let _ = writeln!(s, "<p>{}</p>", html_text(d.trim()));
        }
        match doc.experiment_tables.iter().find(|t| t.id == e.name) {
            Some(t) => s += &tables::html(t),
            None => s += "<p>No finished runs.</p>\n",
        }
        for (i, _) in exhibits
            .iter()
            .enumerate()
            .filter(|(_, x)| x.experiment.as_deref() == Some(&e.name))
        {
            figure(&mut s, i);
        }
    }
    if exhibits.iter().any(|x| x.experiment.is_none()) {
        s += "<h2>Across experiments</h2>\n";
        for (i, _) in exhibits
            .iter()
            .enumerate()
            .filter(|(_, x)| x.experiment.is_none())
        {
            figure(&mut s, i);
        }
    }
    s += "<h2>Provenance</h2>\n<p>Every number comes from these run outputs (sha256); \
          <code>claims.json</code> lists them per check.</p>\n<ul>\n";
    for (run, files) in &doc.inputs.digests {
        for (f, d) in files.iter().filter(|(f, _)| f.ends_with(".jsonl")) {
            let _ = writeln!(
                s,
                "<li><code>{}</code> {}: <code>{d}</code></li>",
                html_escape(run.trim_start_matches("run:")),
                html_escape(f)
            );
        }
    }
    s + "</ul>\n</body>\n</html>\n"
}

/// An SVG document without its `<?xml …?>` line, for inlining into HTML.
fn strip_xml_declaration(svg: &str) -> &str {
    match svg.find("<svg") {
        Some(i) => &svg[i..],
        None => svg,
    }
}
