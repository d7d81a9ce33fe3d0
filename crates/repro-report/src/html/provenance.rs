//! Where the report's numbers come from, as the run records and `pipeline.lock` say: the lock
//! headline of a bitwise profile ("N of N runs match pipeline.lock"), the provenance box (code
//! versions, libtorch, device, determinism, dates, compute), the per-run table and the output
//! digests, both folded in `<details>` so they add no screens.

use std::fmt::Write as _;

use super::super::ledger::{Ledger, LockMatch, Provenance};
use super::super::tables::html_escape;
use super::anchor;

/// `2026-12-05T07:44:49Z` → `2026-12-05 07:44 UTC`; anything else as recorded.
pub fn date(rfc3339: &str) -> String {
    match humantime::parse_rfc3339(rfc3339) {
        Ok(t) => {
            let s = humantime::format_rfc3339_seconds(t).to_string();
            format!("{} {} UTC", &s[..10], &s[11..16])
        }
        Err(_) => rfc3339.to_string(),
    }
}

/// Wall time in a unit that reads: `42 s`, `3.5 min`, `2.1 h`.
pub fn duration(seconds: f64) -> String {
    if seconds < 90.0 {
        format!("{seconds:.0} s")
    } else if seconds < 5400.0 {
        format!("{:.1} min", seconds / 60.0)
    } else {
        format!("{:.1} h", seconds / 3600.0)
    }
}

/// `2.11.0 (50 runs)`, or each value with its count when the runs differ.
fn counted(values: &[(String, usize)]) -> String {
    if values.is_empty() {
        return "— (no finished run)".into();
    }
    let parts: Vec<String> = values
        .iter()
        .map(|(v, n)| {
            format!(
                "<code>{}</code> ({n} run{})",
                html_escape(v),
                if *n == 1 { "" } else { "s" }
            )
        })
        .collect();
    parts.join("; ")
}

/// Mismatching runs the headline names; the runs table lists the rest.
const NAMED: usize = 10;

/// The headline of a profile with bitwise runs: how many match the lock, naming those that do
/// not. `None` when no run is bitwise.
pub fn lock_headline(ledger: &Ledger, profile: &str) -> Option<String> {
    let s = ledger.lock_summary()?;
    let profile = html_escape(profile);
    if ledger.lock_digest.is_none() {
        return Some(format!(
            "<p class=\"headline lock-fail\"><strong>pipeline.lock has no entry for profile \
             <code>{profile}</code></strong>: its {} bitwise runs were not compared \
             (<code>repro lock --profile {profile}</code> writes one).</p>\n",
            s.compared + s.unfinished
        ));
    }
    let class = if s.mismatches.is_empty() && s.compared > 0 {
        "lock-ok"
    } else {
        "lock-fail"
    };
    let mut h = format!(
        "<p class=\"headline {class}\"><strong>{} of {} runs match pipeline.lock</strong> \
         (profile <code>{profile}</code>, bitwise: their output digests compared with the \
         lock's entry for the profile)",
        s.matching, s.compared,
    );
    if s.unfinished > 0 {
        let _ = write!(
            h,
            "; {} bitwise runs not finished, not compared",
            s.unfinished
        );
    }
    h += ".";
    if !s.mismatches.is_empty() {
        h += " Not matching: ";
        let names: Vec<String> = s
            .mismatches
            .iter()
            .take(NAMED)
            .map(|(id, why)| format!("<code>{}</code> ({})", html_escape(id), html_escape(why)))
            .collect();
        h += &names.join(", ");
        if s.mismatches.len() > NAMED {
            let _ = write!(
                h,
                " and {} more (the <a href=\"#section-runs\">runs table</a> lists each)",
                s.mismatches.len() - NAMED
            );
        }
        h += ".";
    }
    h += "</p>\n";
    Some(h)
}

/// The provenance box: each value labelled with exactly what it is.
pub fn provenance_box(p: &Provenance, profile: &str, report_key: &str, code: &str) -> String {
    let mut s = String::from("<dl class=\"provenance\">\n");
    let mut row = |term: &str, value: String| {
        let _ = writeln!(s, "<dt>{term}</dt><dd>{value}</dd>");
    };
    row(
        "Code",
        format!(
            "runs made by repro {} (the package version each run record carries; the records \
             hold no commit); report code version <code>{}</code> (digest of the sources of \
             the report and the crates it uses, part of the report key)",
            counted(&p.repro_versions),
            html_escape(&code[..code.len().min(12)])
        ),
    );
    row(
        "libtorch",
        format!("{} (as each run's key holds it)", counted(&p.libtorch)),
    );
    row("Device", counted(&p.devices));
    let modes: Vec<String> = p
        .modes
        .iter()
        .map(|(m, n)| format!("{m} ({n} of {} planned runs)", p.planned))
        .collect();
    row(
        "Determinism",
        format!(
            "profile <code>{}</code>: {}; switches in the runs' keys: {}",
            html_escape(profile),
            modes.join(", "),
            counted(&p.switches)
        ),
    );
    row(
        "Dates",
        match (&p.first_finished, &p.last_finished) {
            (Some(a), Some(b)) => format!(
                "first run finished {}, last run finished {}",
                date(a),
                date(b)
            ),
            _ => "— (no finished run)".into(),
        },
    );
    row(
        "Compute",
        format!(
            "{:.3} device-hours: the sum of the wall times of the {} runs read ({}; a \
             resumed run counts its last attempt)",
            p.seconds / 3600.0,
            p.finished,
            duration(p.seconds)
        ),
    );
    row(
        "Report key",
        format!("<code>{}</code>", html_escape(report_key)),
    );
    s + "</dl>\n"
}

fn lock_text(l: &LockMatch) -> String {
    match l {
        LockMatch::NotBitwise => "not locked (statistical)".into(),
        LockMatch::NotFinished => "—".into(),
        LockMatch::NotLocked => "not in pipeline.lock".into(),
        LockMatch::Matches => "matches".into(),
        LockMatch::Differs(files) => format!("differs: {}", files.join(", ")),
    }
}

/// Every planned run: id, state, key prefix, device, wall time, finish date, lock.
pub fn runs_table(ledger: &Ledger) -> String {
    let done = ledger.runs.iter().filter(|r| r.finished.is_some()).count();
    let mut s = format!(
        "<details id=\"{}\"><summary>Runs ({done} of {} finished)</summary>\n\
         <div class=\"scroll\"><table class=\"runs\">\n<thead><tr><th>run</th><th>state</th><th>key</th>\
         <th>device</th><th>wall time</th><th>finished</th><th>pipeline.lock</th></tr></thead>\n\
         <tbody>\n",
        anchor("section", "runs"),
        ledger.runs.len()
    );
    for r in &ledger.runs {
        let (state, key, device, wall, when) = match &r.finished {
            Some(f) => (
                "finished",
                format!("<code>{}</code>", &f.key[..f.key.len().min(12)]),
                html_escape(&f.device),
                duration(f.seconds),
                date(&f.finished),
            ),
            None => ("not run", "—".into(), "—".into(), "—".into(), "—".into()),
        };
        let _ = writeln!(
            s,
            "<tr><td><code>{}</code></td><td>{state}</td><td>{key}</td><td>{device}</td>\
             <td class=\"num\">{wall}</td><td>{when}</td><td>{}</td></tr>",
            html_escape(&r.run_id),
            html_escape(&lock_text(&r.lock))
        );
    }
    s + "</tbody>\n</table></div>\n</details>\n"
}
