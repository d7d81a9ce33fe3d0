//! `report.html`: one self-contained page (inline CSS and SVG, no network) a reviewer can read
//! on a laptop or a phone and pass on. Its order: the headline (lock match, generated data), a
//! contents list linking every section, the verdicts by claim, the checks table
//! ([`claims`]: each check's sentence, verdict, dot-and-interval plot from [`interval`], link to
//! its experiment), the defaults of ours, each experiment with its table and figures, and the
//! provenance ([`provenance`]: code versions, libtorch, device, determinism, dates, compute and
//! the per-run table). Tables scroll inside their own box, so the page never scrolls sideways.

pub mod claims;
pub mod interval;
pub mod provenance;

use std::fmt::Write as _;

use super::exhibits::Exhibit;
use super::tables::{self, html_escape, html_text, verdict_class};
use super::verdict::Verdict;
use super::write::{self, Document};

/// An element id: `prefix-name` with every character outside `[A-Za-z0-9_-]` as `-`.
pub fn anchor(prefix: &str, name: &str) -> String {
    let name: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '-'
            }
        })
        .collect();
    format!("{prefix}-{name}")
}

/// The id of an experiment's section.
pub fn experiment_anchor(name: &str) -> String {
    anchor("exp", name)
}

const CSS: &str = "*{box-sizing:border-box}\
body{font-family:system-ui,-apple-system,'Segoe UI',sans-serif;max-width:1200px;margin:0 auto;\
padding:1em;color:#1f2328;line-height:1.45}\
h1{font-size:1.6em;margin:.4em 0}h2{border-bottom:1px solid #d8dee4;padding-bottom:.2em;\
margin-top:1.8em}h2 a.top{font-size:.6em;font-weight:normal;margin-left:.6em}\
p,li,dd{overflow-wrap:break-word}li code,dd code,p code{overflow-wrap:anywhere}\
a{color:#0969da}\
.scroll{overflow-x:auto;max-width:100%;margin:1em 0;-webkit-overflow-scrolling:touch}\
table{border-collapse:collapse;font-size:14px}.scroll>table{margin:0}\
th,td{border:1px solid #d0d7de;padding:4px 8px;text-align:left;vertical-align:top}\
th{background:#f6f8fa;position:sticky;top:0}\
td.num{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap}\
.checks td.id{min-width:9em;max-width:13em;overflow-wrap:anywhere}\
.checks td.sentence{min-width:14em;max-width:22em}.checks td.measured{min-width:16em;\
max-width:24em;font-size:13px}.checks td.estimates{width:180px}\
.small{font-size:12px;color:#57606a}table.runs td{white-space:nowrap}\
.verdict{font-weight:bold;white-space:nowrap}.ok{color:#1a7f37}.fail{color:#cf222e}\
.unsure{color:#9a6700}.diverged{color:#8250df}.notrun,.notcheckable{color:#6e7781}\
.estimate{margin-bottom:4px}.estimate span{display:block;font-size:12px;color:#57606a;\
overflow-wrap:anywhere}\
svg.est line.zero{stroke:#8c959f;stroke-width:1}\
svg.est line.threshold{stroke:#cf222e;stroke-width:1.2;stroke-dasharray:3 2}\
svg.est line.ci{stroke:#24292f;stroke-width:2}svg.est circle{fill:#24292f}\
svg.est circle.ok{fill:#1a7f37}svg.est circle.fail{fill:#cf222e}\
svg.est circle.unsure{fill:#9a6700}svg.est circle.diverged{fill:#8250df}\
svg.est circle.notrun,svg.est circle.notcheckable{fill:#8c959f}\
figure{margin:1.5em 0}figure svg{max-width:100%;height:auto}\
figcaption{color:#444;font-size:14px}p.note{color:#444;font-size:14px}\
code{background:#f6f8fa;padding:0 3px;border-radius:3px;font-size:.92em}\
summary{cursor:pointer;color:#444;padding:.3em 0}\
nav.toc{background:#f6f8fa;border:1px solid #d0d7de;border-radius:6px;padding:.4em 1em;\
margin:1em 0}nav.toc h2{border:0;margin:.3em 0;font-size:1.1em}nav.toc ol{margin:.2em 0;\
padding-left:1.4em}\
@media(min-width:800px){nav.toc ol ol{columns:2}}\
.headline{padding:.5em .8em;border-left:4px solid #8c959f;background:#f6f8fa}\
.headline.lock-ok{border-color:#1a7f37;background:#dafbe1}\
.headline.lock-fail{border-color:#cf222e;background:#ffebe9}\
dl.provenance{display:grid;grid-template-columns:max-content 1fr;gap:.35em 1em;\
background:#f6f8fa;border:1px solid #d0d7de;border-radius:6px;padding:.8em 1em}\
dl.provenance dt{font-weight:bold}dl.provenance dd{margin:0}\
@media(max-width:600px){body{padding:.6em}dl.provenance{grid-template-columns:1fr}\
dl.provenance dd{margin-bottom:.4em}table{font-size:13px}}";

/// A second-level heading with its id and a link back to the contents.
fn h2(id: &str, title: &str) -> String {
    format!(
        "<h2 id=\"{id}\">{}<a class=\"top\" href=\"#contents\">contents ↑</a></h2>\n",
        html_escape(title)
    )
}

/// The contents list: every section, the experiments nested under theirs.
fn contents(doc: &Document, exhibits: &[Exhibit], defaults: bool) -> String {
    let mut s = String::from(
        "<nav class=\"toc\" id=\"contents\"><h2>Contents</h2>\n<ol>\n\
         <li><a href=\"#verdicts\">Verdicts by claim</a></li>\n\
         <li><a href=\"#checks\">Checks</a></li>\n",
    );
    if defaults {
        s += "<li><a href=\"#defaults\">Defaults of ours</a></li>\n";
    }
    s += "<li><a href=\"#experiments\">Experiments</a>\n<ol>\n";
    for e in &doc.inputs.experiments {
        let _ = writeln!(
            s,
            "<li><a href=\"#{}\">{}</a></li>",
            experiment_anchor(&e.name),
            html_escape(&e.name)
        );
    }
    s += "</ol></li>\n";
    if exhibits.iter().any(|x| x.experiment.is_none()) {
        s += "<li><a href=\"#across\">Across experiments</a></li>\n";
    }
    s + "<li><a href=\"#provenance\">Provenance</a>\n<ol>\n\
         <li><a href=\"#section-runs\">Runs</a></li>\n\
         <li><a href=\"#digests\">Output digests</a></li>\n</ol></li>\n</ol>\n</nav>\n"
}

fn verdicts(doc: &Document) -> String {
    let mut s = h2("verdicts", "Verdicts by claim");
    s += "<div class=\"scroll\"><table><thead><tr><th>claim</th><th>verdict</th>\
          <th>checks reproduced</th><th>data</th></tr></thead><tbody>\n";
    for c in doc.claims {
        let _ = writeln!(
            s,
            "<tr><td>{}</td><td class=\"verdict {}\">{}</td><td>{}</td><td>{}</td></tr>",
            html_escape(&c.claim),
            verdict_class(c.verdict),
            c.verdict.text(),
            html_escape(&write::counts(c)),
            html_escape(&write::claim_data(c))
        );
    }
    s += "</tbody></table></div>\n";
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
    s
}

fn defaults_section(doc: &Document) -> String {
    let defaults = write::defaults(doc);
    let provenance = write::provenance(doc);
    let mut s = h2("defaults", "Defaults of ours");
    if !defaults.is_empty() {
        s += "<ul>\n";
        for (ids, d) in &defaults {
            let _ = writeln!(s, "<li>{} ({})</li>", html_text(d), html_escape(ids));
        }
        s += "</ul>\n";
    }
    if !provenance.is_empty() {
        let _ = writeln!(s, "<p>{}</p>\n<ul>", html_escape(write::PROVENANCE_INTRO));
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
    s
}

fn figure(s: &mut String, x: &Exhibit, svg: &str) {
    let _ = writeln!(
        s,
        "<figure id=\"{}\">\n{}\n<figcaption>{}</figcaption>\n</figure>",
        anchor("fig", &x.id),
        write::strip_xml_declaration(svg),
        html_escape(&x.caption)
    );
}

fn experiments(doc: &Document, exhibits: &[Exhibit], svgs: &[String]) -> String {
    let mut s = h2("experiments", "Experiments");
    for e in &doc.inputs.experiments {
        let _ = writeln!(
            s,
            "<section id=\"{}\">\n<h3>{}</h3>",
            experiment_anchor(&e.name),
            html_escape(&e.name)
        );
        if let Some(d) = &e.description {
            let _ = writeln!(s, "<p>{}</p>", html_text(d.trim()));
        }
        match doc.experiment_tables.iter().find(|t| t.id == e.name) {
            Some(t) => s += &tables::html(t),
            None => s += "<p>No finished runs.</p>\n",
        }
        for (x, svg) in exhibits.iter().zip(svgs) {
            if x.experiment.as_deref() == Some(&e.name) {
                figure(&mut s, x, svg);
            }
        }
        s += "</section>\n";
    }
    if exhibits.iter().any(|x| x.experiment.is_none()) {
        s += &h2("across", "Across experiments");
        for (x, svg) in exhibits.iter().zip(svgs) {
            if x.experiment.is_none() {
                figure(&mut s, x, svg);
            }
        }
    }
    s
}

fn provenance_section(doc: &Document) -> String {
    let mut s = h2("provenance", "Provenance");
    s += "<p>What the run records read say about the runs; every value below comes from them \
          (and the report's own code version), so the report is cached on them.</p>\n";
    s += &provenance::provenance_box(
        &doc.ledger.provenance(),
        doc.profile,
        doc.key,
        env!("REPRO_REPORT_CODE"),
    );
    s += &provenance::runs_table(doc.ledger);
    s += "<details id=\"digests\"><summary>Output digests: every number comes from these run \
          outputs (sha256); <code>claims.json</code> lists them per check</summary>\n<ul>\n";
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
    s + "</ul>\n</details>\n"
}

/// The page. `svgs[i]` is `exhibits[i]` drawn as SVG.
pub fn page(doc: &Document, exhibits: &[Exhibit], svgs: &[String]) -> String {
    let title = format!("Replication report: profile {}", doc.profile);
    let mut s = format!(
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
         <title>{0}</title>\n<style>{CSS}</style>\n</head>\n<body>\n<h1>{0}</h1>\n",
        html_escape(&title)
    );
    let _ = writeln!(s, "<p>{}.</p>", html_escape(write::PAPER));
    let _ = writeln!(s, "<p>{}</p>", html_text(&write::profile_description(doc)));
    let _ = writeln!(s, "<p>{}</p>", html_text(&write::runs_line(doc)));
    if let Some(h) = provenance::lock_headline(doc.ledger, doc.profile) {
        s += &h;
    }
    if let Some(n) = write::mechanism_notice(doc) {
        let _ = writeln!(
            s,
            "<p class=\"headline\"><strong>{}</strong></p>",
            html_escape(&n)
        );
    }
    let has_defaults = !write::defaults(doc).is_empty() || !write::provenance(doc).is_empty();
    s += &contents(doc, exhibits, has_defaults);
    s += &verdicts(doc);
    s += &h2("checks", "Checks");
    let shown: Vec<String> = doc
        .inputs
        .experiments
        .iter()
        .map(|e| e.name.clone())
        .collect();
    s += &claims::table(doc.pipeline, doc.checks, doc.claims_table, &shown);
    let _ = writeln!(
        s,
        "<details><summary>By experiment and metric ({} checks)</summary>",
        doc.checks_table.rows.len()
    );
    s += &tables::html(doc.checks_table);
    s += "</details>\n";
    if has_defaults {
        s += &defaults_section(doc);
    }
    s += &experiments(doc, exhibits, svgs);
    s += &provenance_section(doc);
    s + "</body>\n</html>\n"
}
