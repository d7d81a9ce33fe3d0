//! The report's tables: what a table is ([`Table`] of [`Cell`]s), the claims and checks tables
//! (the experiments' tables are [`super::per_experiment`]'s), and their renderings: the
//! terminal's in [`terminal`] (fitted to a width), Markdown, CSV (numbers unrounded, CI bounds
//! in their own columns) and HTML.

mod terminal;

pub use terminal::{CLAIMS_TABLE_MIN_WIDTH, grid, terminal, wrap_text};

use super::numbers::num;
use super::verdict::{CheckResult, Verdict, combine, counted};
use repro_core::metrics::bootstrap::Interval;
use repro_core::metrics::stats::Summary;

/// One cell: text, or a statistic over seeds.
#[derive(Debug, Clone)]
pub enum Cell {
    Text(String),
    Stat(Option<Summary>),
    /// A bootstrap estimate: `point [lo, hi]`, the point alone when the interval is empty.
    Interval(Option<Interval>),
    Verdict(Verdict),
}

impl Cell {
    pub fn text(&self) -> String {
        match self {
            Cell::Text(s) => s.clone(),
            Cell::Verdict(v) => v.text().to_string(),
            Cell::Stat(None) => "—".into(),
            Cell::Stat(Some(s)) => match s.ci95 {
                Some((lo, hi)) => format!("{} ± {}", num(s.mean), num((hi - lo) / 2.0)),
                None => num(s.mean),
            },
            Cell::Interval(None) => "—".into(),
            // A single run per task resamples to itself: no interval to show.
            Cell::Interval(Some(i)) if i.lo == i.hi => num(i.point),
            Cell::Interval(Some(i)) => format!("{} [{}, {}]", num(i.point), num(i.lo), num(i.hi)),
        }
    }
}

#[derive(Debug, Clone)]
pub struct Table {
    /// File stem of its CSV.
    pub id: String,
    pub title: String,
    pub headers: Vec<String>,
    pub rows: Vec<Vec<Cell>>,
    /// How the numbers were computed, shown under the table.
    pub note: Option<String>,
}

fn measured_text(c: &CheckResult) -> String {
    let measured = match (&c.note, c.measured.is_empty()) {
        (Some(n), true) => n.clone(),
        (Some(n), false) => format!("{} ({n})", c.measured),
        (None, _) => c.measured.clone(),
    };
    match c.seeds_needed {
        Some(n) => format!("{measured}; ~{n} seeds per arm would decide it"),
        None => measured,
    }
}

/// Every check on every experiment and metric: what was measured and its verdict.
pub fn checks_table(checks: &[CheckResult]) -> Table {
    let rows = checks
        .iter()
        .map(|c| {
            vec![
                Cell::Text(c.id.clone()),
                Cell::Text(c.role.label(&c.claim)),
                Cell::Text(c.experiment.clone().unwrap_or_default()),
                Cell::Text(c.metric.clone().unwrap_or_default()),
                Cell::Text(c.test.clone()),
                Cell::Text(measured_text(c)),
                Cell::Verdict(c.verdict),
                Cell::Text(c.data_label()),
                Cell::Text(c.seeds.clone()),
            ]
        })
        .collect();
    Table {
        id: "checks".into(),
        title: "Checks by experiment and metric".into(),
        headers: [
            "check",
            "claim",
            "experiment",
            "metric",
            "test",
            "measured",
            "verdict",
            "data",
            "seeds",
        ]
        .map(String::from)
        .to_vec(),
        rows,
        note: None,
    }
}

/// One row per check: its comparison, what was measured on each experiment and metric (checks
/// on experiments outside the profile folded into one line), the combined verdict, seeds.
pub fn claims_table(checks: &[CheckResult]) -> Table {
    let mut ids: Vec<&str> = Vec::new();
    for c in checks {
        if !ids.contains(&c.id.as_str()) {
            ids.push(&c.id);
        }
    }
    let rows = ids
        .into_iter()
        .map(|id| {
            let of: Vec<&CheckResult> = checks.iter().filter(|c| c.id == id).collect();
            let mut lines = Vec::new();
            let mut absent = Vec::new();
            // A reason every line of the check shares ("this profile cannot decide it") is said
            // once per check, not once per line; reasons that differ stay on their lines.
            let shared_note = of
                .iter()
                .all(|c| c.verdict == Verdict::NotCheckable && c.note == of[0].note)
                .then(|| of[0].note.clone())
                .flatten();
            for c in &of {
                let text = if shared_note.is_some() {
                    c.measured.clone()
                } else {
                    measured_text(c)
                };
                match (&c.experiment, &c.metric) {
                    (Some(e), _) if c.outside_profile => {
                        if !absent.contains(e) {
                            absent.push(e.clone());
                        }
                    }
                    (Some(e), Some(m)) => lines.push(format!("{e} {m}: {text}")),
                    _ => lines.push(text),
                }
            }
            if !absent.is_empty() {
                lines.push(format!("not in this profile: {}", absent.join(", ")));
            }
            lines.extend(shared_note);
            let mut seeds: Vec<&str> = of.iter().map(|c| c.seeds.as_str()).collect();
            seeds.retain(|s| !s.is_empty());
            seeds.dedup();
            let verdicts: Vec<Verdict> = counted(of.iter().copied())
                .into_iter()
                .map(|c| c.verdict)
                .collect();
            let mut data: Vec<String> = of.iter().map(|c| c.data_label()).collect();
            data.retain(|d| !d.is_empty());
            data.dedup();
            vec![
                Cell::Text(id.to_string()),
                Cell::Text(of[0].role.label(&of[0].claim)),
                Cell::Text(of[0].test.clone()),
                Cell::Text(lines.join("\n")),
                Cell::Verdict(combine(&verdicts)),
                Cell::Text(data.join("\n")),
                Cell::Text(seeds.join(", ")),
            ]
        })
        .collect();
    Table {
        id: "claims".into(),
        title: "Claims".into(),
        headers: [
            "check", "claim", "test", "measured", "verdict", "data", "seeds",
        ]
        .map(String::from)
        .to_vec(),
        rows,
        note: None,
    }
}

fn md_escape(s: &str) -> String {
    s.replace('|', "\\|").replace('\n', "<br>")
}

pub fn markdown(t: &Table) -> String {
    let mut s = format!("| {} |\n", t.headers.join(" | "));
    s += &format!("|{}\n", "---|".repeat(t.headers.len()));
    for r in &t.rows {
        let cells: Vec<String> = r
            .iter()
            .map(|c| match c {
                Cell::Verdict(v) => format!("**{}**", v.text()),
                _ => md_escape(&c.text()),
            })
            .collect();
        s += &format!("| {} |\n", cells.join(" | "));
    }
    if let Some(n) = &t.note {
        s += &format!("\n{}\n", md_escape(n));
    }
    s
}

/// CSV with statistics as `NAME_mean,NAME_ci_low,NAME_ci_high` and bootstrap estimates as
/// `NAME_point,NAME_ci_low,NAME_ci_high` (unrounded).
pub fn csv(t: &Table) -> anyhow::Result<String> {
    let mut w = ::csv::Writer::from_writer(Vec::new());
    let first = t.rows.first();
    let mut header = Vec::new();
    for (i, h) in t.headers.iter().enumerate() {
        match first.and_then(|r| r.get(i)) {
            Some(Cell::Stat(_)) => {
                header.extend(["mean", "ci_low", "ci_high"].map(|x| format!("{h}_{x}")))
            }
            Some(Cell::Interval(_)) => {
                header.extend(["point", "ci_low", "ci_high"].map(|x| format!("{h}_{x}")))
            }
            _ => header.push(h.clone()),
        }
    }
    w.write_record(&header)?;
    for r in &t.rows {
        let mut rec = Vec::new();
        // An estimate and its interval bounds, each empty when absent.
        let estimate =
            |x: [Option<f64>; 3]| x.map(|v| v.map(|v| v.to_string()).unwrap_or_default());
        for c in r {
            match c {
                Cell::Stat(s) => {
                    let ci = s.and_then(|s| s.ci95);
                    rec.extend(estimate([
                        s.map(|s| s.mean),
                        ci.map(|c| c.0),
                        ci.map(|c| c.1),
                    ]));
                }
                Cell::Interval(i) => rec.extend(estimate([
                    i.map(|i| i.point),
                    i.map(|i| i.lo),
                    i.map(|i| i.hi),
                ])),
                Cell::Verdict(v) => rec.push(v.text().to_string()),
                Cell::Text(s) => rec.push(s.clone()),
            }
        }
        w.write_record(&rec)?;
    }
    Ok(String::from_utf8(w.into_inner()?)?)
}

pub fn html_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// Escaped text with `code` spans (as the Markdown report writes names) set in `<code>`.
pub fn html_text(s: &str) -> String {
    let mut out = String::new();
    for (i, part) in html_escape(s).split('`').enumerate() {
        if i % 2 == 1 {
            out += &format!("<code>{part}</code>");
        } else {
            out += part;
        }
    }
    out.replace('\n', "<br>")
}

/// The table in a box that scrolls sideways on its own (a narrow screen never scrolls the
/// page), with `code` spans of its text set as `<code>`.
pub fn html(t: &Table) -> String {
    let mut s = String::from("<div class=\"scroll\"><table>\n<thead><tr>");
    for h in &t.headers {
        s += &format!("<th>{}</th>", html_escape(h));
    }
    s += "</tr></thead>\n<tbody>\n";
    for r in &t.rows {
        s += "<tr>";
        for c in r {
            s += &match c {
                Cell::Verdict(v) => format!(
                    "<td class=\"verdict {}\">{}</td>",
                    verdict_class(*v),
                    html_escape(v.text())
                ),
                Cell::Stat(_) | Cell::Interval(_) => {
                    format!("<td class=\"num\">{}</td>", html_escape(&c.text()))
                }
                Cell::Text(_) => format!("<td>{}</td>", html_text(&c.text())),
            };
        }
        s += "</tr>\n";
    }
    s += "</tbody>\n</table></div>\n";
    if let Some(n) = &t.note {
        s += &format!("<p class=\"note\">{}</p>\n", html_text(n));
    }
    s
}

pub fn verdict_class(v: Verdict) -> &'static str {
    match v {
        Verdict::Reproduced => "ok",
        Verdict::NotReproduced => "fail",
        Verdict::Inconclusive => "unsure",
        Verdict::Diverged => "diverged",
        Verdict::NotRun => "notrun",
        Verdict::NotCheckable => "notcheckable",
    }
}
