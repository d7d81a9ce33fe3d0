//! The HTML checks table: per check its claim's sentence (the `text` of `pipeline.yaml`'s
//! `claims:`), the test, its verdict, a dot-and-interval plot per experiment and metric
//! ([`super::interval`]), what was measured, the data and seeds, and links (under its id) to the
//! sections of the experiments it read.

use std::fmt::Write as _;

use super::super::tables::{Cell, Table, html_escape, html_text, verdict_class};
use super::super::verdict::CheckResult;
use super::interval::{self, Estimate};
use super::{anchor, experiment_anchor};
use repro_core::pipeline::spec::Pipeline;

/// The experiment a check line read: its name without a `per` split's `[axis=value]`.
pub fn experiment_of(c: &CheckResult) -> Option<&str> {
    let e = c.experiment.as_deref()?;
    Some(e.split_once('[').map_or(e, |(name, _)| name))
}

/// The links of a check's row: one per experiment of the profile it read, in order; the
/// Experiments heading when it read none (pending, or every experiment outside the profile).
fn links(lines: &[&CheckResult], shown: &[String]) -> String {
    let mut names: Vec<&str> = Vec::new();
    for c in lines {
        if let Some(e) = experiment_of(c).filter(|e| shown.iter().any(|s| s == e))
            && !names.contains(&e)
        {
            names.push(e);
        }
    }
    if names.is_empty() {
        return "<a href=\"#experiments\">no experiment here</a>".into();
    }
    let links: Vec<String> = names
        .iter()
        .map(|e| {
            format!(
                "<a href=\"#{}\">→&nbsp;{}</a>",
                experiment_anchor(e),
                html_escape(e)
            )
        })
        .collect();
    links.join("<br>")
}

fn text_cell(c: &Cell) -> String {
    html_text(&c.text())
}

/// The table: one row per row of `claims_table` (one per check id, in its order), with
/// `shown` the experiments that have a section on the page.
pub fn table(
    pipeline: &Pipeline,
    checks: &[CheckResult],
    claims_table: &Table,
    shown: &[String],
) -> String {
    let mut s = String::from(
        "<div class=\"scroll\"><table class=\"checks\">\n<thead><tr><th>check</th>\
         <th>claim</th><th>verdict</th><th>estimate</th><th>measured</th>\
         <th>data, seeds</th></tr></thead>\n<tbody>\n",
    );
    for row in &claims_table.rows {
        // claims_table's columns: check, claim, test, measured, verdict, data, seeds.
        let [id, claim, test, measured, verdict, data, seeds] = row.as_slice() else {
            continue;
        };
        let id = id.text();
        let lines: Vec<&CheckResult> = checks.iter().filter(|c| c.id == id).collect();
        let sentence = lines.first().map(|c| c.text.clone()).unwrap_or_default();
        let spec = pipeline.claims.iter().find(|c| c.id == id);
        let estimates: Vec<(&CheckResult, Option<Estimate>)> = lines
            .iter()
            .filter(|c| !c.outside_profile)
            .map(|c| {
                let e = spec.and_then(|sp| {
                    let test = sp.test.as_ref()?;
                    interval::estimate(test, sp.alpha, c)
                });
                (*c, e)
            })
            .collect();
        let verdict_cell = match verdict {
            Cell::Verdict(v) => format!(
                "<td class=\"verdict {}\">{}</td>",
                verdict_class(*v),
                html_escape(v.text())
            ),
            other => format!("<td>{}</td>", text_cell(other)),
        };
        let _ = writeln!(
            s,
            "<tr id=\"{}\"><td class=\"id\"><strong>{}</strong><br>\
             <span class=\"small\">{}</span><div class=\"small\">{}</div></td>\
             <td class=\"sentence\">{}<div class=\"small\">test: {}</div></td>{verdict_cell}\
             <td class=\"estimates\">{}</td><td class=\"measured\">{}</td>\
             <td class=\"small\">{}<br>seeds: {}</td></tr>",
            anchor("check", &id),
            html_escape(&id),
            text_cell(claim),
            links(&lines, shown),
            html_text(&sentence),
            text_cell(test),
            interval::cell(&estimates),
            text_cell(measured),
            text_cell(data),
            text_cell(seeds),
        );
    }
    s += "</tbody>\n</table></div>\n";
    let _ = writeln!(
        s,
        "<p class=\"note\">Estimate: the dot is what the test decides on (the difference of \
         the arms' means, or the mean over seeds), the line its two-sided 1 − 2α interval \
         (90% at the default α = 0.05; the plot's tooltip gives its numbers; none with one seed), the red dashed line the threshold the \
         claim puts it beyond (zero, the margin, or the value), the grey line zero. A check is \
         reproduced when the whole interval lies on the claimed side.</p>"
    );
    s
}
