//! The report's tables: the claims table and one table per experiment (rows = arms, columns =
//! metrics as mean ± 95% CI half-width over seeds; an optimizer sweep, see [`super::sweep`],
//! gets one compact row per variant instead, and RL returns the IQM table of
//! [`super::returns`]), rendered for the terminal (tabled, colour only
//! when asked), Markdown, CSV (numbers unrounded, CI bounds in their own columns) and HTML.

use tabled::builder::Builder;
use tabled::settings::object::Columns;
use tabled::settings::{Modify, Style, Width};

use super::observe::{ExperimentData, Inputs, arm_label, by_arm};
use super::returns;
use super::sweep::{Sweep, grid_text};
use super::verdict::{CheckResult, Verdict, combine, counted, num};
use repro_core::metrics::bootstrap::Interval;
use repro_core::metrics::stats::{self, Summary};
use repro_core::pipeline::claims::MetricRef;

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

/// One table per experiment with finished runs.
pub fn experiment_tables(inputs: &Inputs) -> Vec<Table> {
    let mut out = Vec::new();
    for e in &inputs.experiments {
        if e.observations.is_empty() {
            continue;
        }
        if let Some(sw) = Sweep::detect(e) {
            out.push(sweep_table(&sw));
            continue;
        }
        if let Some(t) = returns::table(e) {
            out.push(t);
            continue;
        }
        let metrics: Vec<(String, MetricRef)> = e
            .kind
            .results
            .metrics
            .iter()
            .filter_map(|m| {
                let r = MetricRef::parse(m.table?).ok()?;
                Some((r.to_string(), r))
            })
            .collect();
        let arm_header = if e.arm_axes.is_empty() {
            "arm".to_string()
        } else {
            e.arm_axes.join(",")
        };
        let mut headers = vec![arm_header, "seeds".to_string()];
        headers.extend(metrics.iter().map(|(n, _)| n.clone()));
        let rows = by_arm(&e.observations, &e.arm_axes)
            .into_iter()
            .map(|(coords, obs)| {
                let mut row = vec![
                    Cell::Text(arm_label(&coords, &e.arm_axes)),
                    Cell::Text(obs.len().to_string()),
                ];
                for (_, m) in &metrics {
                    let v: Vec<f64> = obs.iter().filter_map(|o| o.value(e.kind, m)).collect();
                    row.push(Cell::Stat(stats::summarize(&v).ok()));
                }
                row
            })
            .collect();
        out.push(Table {
            id: e.name.clone(),
            title: table_title(e),
            headers,
            rows,
            note: None,
        });
    }
    out
}

pub(super) fn table_title(e: &ExperimentData) -> String {
    let mut title = e.name.clone();
    if !e.missing.is_empty() {
        title += &format!(" ({} of {} runs still to run)", e.missing.len(), e.planned);
    }
    title
}

/// An optimizer sweep's table, one row per variant: its runs and how many diverged, its best
/// (lr, λ) cell by mean score with the score and test perplexity there (mean ± CI over the
/// cell's seeds), and the best score over lr (per seed, then mean ± CI) at λ = 0 and at the
/// largest λ: what C7 compares.
fn sweep_table(sw: &Sweep) -> Table {
    let score = sw.score.to_string();
    // Test perplexity reduced as the kind's table declares it (`test_ppl@final` for `lm`).
    let test =
        sw.e.kind
            .results
            .metric("test_ppl")
            .and_then(|m| m.table)
            .and_then(|t| MetricRef::parse(t).ok());
    let largest = sw.lambdas.last().copied().filter(|l| *l > 0.0);
    let mut headers: Vec<String> = ["variant", "runs", "diverged", "best lr", "best λ"]
        .map(String::from)
        .to_vec();
    headers.push(format!("{score} at best"));
    if let Some(m) = &test {
        headers.push(format!("{m} at best"));
    }
    let has_zero = sw.lambdas.first() == Some(&0.0);
    if has_zero {
        headers.push(format!("{score} at λ = 0, best lr"));
    }
    if let Some(l) = largest {
        headers.push(format!("{score} at λ = {}, best lr", grid_text(l)));
    }
    let rows = sw
        .variants
        .iter()
        .map(|v| {
            let (runs, diverged) = sw.runs(v);
            let best = sw.best_cell(v);
            let text = |f: fn(&(f64, f64, Summary)) -> f64| {
                Cell::Text(best.as_ref().map_or("—".into(), |b| grid_text(f(b))))
            };
            let mut row = vec![
                Cell::Text(v.clone()),
                Cell::Text(runs.to_string()),
                Cell::Text(diverged.to_string()),
                text(|b| b.0),
                text(|b| b.1),
                Cell::Stat(best.as_ref().map(|b| b.2)),
            ];
            if let Some(m) = &test {
                let at = best
                    .as_ref()
                    .and_then(|(lr, l, _)| sw.cell_metric(v, *lr, *l, m));
                row.push(Cell::Stat(at));
            }
            if has_zero {
                row.push(Cell::Stat(sw.best_over_lr(v, 0.0)));
            }
            if let Some(l) = largest {
                row.push(Cell::Stat(sw.best_over_lr(v, l)));
            }
            row
        })
        .collect();
    Table {
        id: sw.e.name.clone(),
        title: table_title(sw.e),
        headers,
        rows,
        note: None,
    }
}

fn paint(v: Verdict, s: &str) -> String {
    let code = match v {
        Verdict::Reproduced => "32",
        Verdict::NotReproduced => "31",
        Verdict::Inconclusive => "33",
        Verdict::Diverged => "35",
        Verdict::NotRun | Verdict::NotCheckable => "2",
    };
    format!("\x1b[{code}m{s}\x1b[0m")
}

/// The table for a terminal; `colour` adds ANSI colours to verdicts.
pub fn terminal(t: &Table, colour: bool) -> String {
    let mut b = Builder::default();
    b.push_record(t.headers.clone());
    for r in &t.rows {
        b.push_record(r.iter().map(|c| match c {
            Cell::Verdict(v) if colour => paint(*v, v.text()),
            _ => c.text(),
        }));
    }
    let mut table = b.build();
    table.with(Style::sharp());
    if t.id == "claims" {
        table.with(Modify::new(Columns::new(2..3)).with(Width::wrap(28).keep_words(true)));
        table.with(Modify::new(Columns::new(3..4)).with(Width::wrap(72).keep_words(true)));
    }
    match &t.note {
        Some(n) => format!("{}\n{table}\n{n}", t.title),
        None => format!("{}\n{table}", t.title),
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

pub fn html(t: &Table) -> String {
    let mut s = String::from("<table>\n<thead><tr>");
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
                Cell::Text(_) => {
                    format!("<td>{}</td>", html_escape(&c.text()).replace('\n', "<br>"))
                }
            };
        }
        s += "</tr>\n";
    }
    s += "</tbody>\n</table>\n";
    if let Some(n) = &t.note {
        s += &format!("<p class=\"note\">{}</p>\n", html_escape(n));
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
