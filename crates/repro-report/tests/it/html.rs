//! report.html on a contrived profile: the contents list and every other `#link` land on an
//! element of the page, each check's row carries its claim's sentence and a link to its
//! experiment's section, no Markdown backtick survives outside `<code>`, the provenance box has
//! each of its fields, and the lock headline counts a run whose outputs differ from
//! pipeline.lock as a mismatch (and names it).

use std::collections::BTreeMap;
use std::path::Path;

use repro_core::pipeline::kinds;
use repro_core::pipeline::lockfile::{LockedProfile, LockedRun};
use repro_core::pipeline::spec::{Determinism, Pipeline};
use repro_report::html;
use repro_report::ledger::{self, Finished, Ledger, LockMatch, RunFacts};
use repro_report::observe::{ExperimentData, Inputs, Observation, Source};
use repro_report::tables::{checks_table, claims_table};
use repro_report::verdict::{evaluate, summarize_claims};
use repro_report::write::Document;
use serde_json::{Map, Value, json};

const PIPELINE: &str = r#"
datasets:
  cifar10:
    format: cifar10-binary
    files: [{name: c.tar.gz, urls: ["http://127.0.0.1:9/c.tar.gz"]}]
experiments:
  e1:
    kind: vision
    description: Schedules of WD on `vision` with `lr` 0.1.
    datasets: [cifar10]
    grid: {schedule: [none, early], seed: [0, 1, 2]}
  elsewhere:
    kind: vision
    datasets: [cifar10]
    grid: {schedule: [none, early], seed: [0, 1, 2]}
profiles:
  smoke: {determinism: bitwise}
claims:
  - {id: lower, claim: C2, text: "Early WD keeps the norm `weight_norm` below none's.",
     experiments: [e1], metric: weight_norm@final,
     test: {less: {a: {schedule: early}, b: {schedule: none}}}}
  - {id: same-acc, claim: C1, text: Early WD matches no WD in accuracy., experiments: [e1],
     metric: test_acc@final,
     test: {equivalent: {a: {schedule: early}, b: {schedule: none}, margin: 0.01}}}
  - {id: away, claim: C9, text: Only on an experiment outside the profile.,
     experiments: [elsewhere], metric: weight_norm@final,
     test: {less: {a: {schedule: early}, b: {schedule: none}}}}
  - {id: later, claim: C7, text: Needs a task not in the pipeline., pending: not in the pipeline yet}
"#;

fn pipeline() -> Pipeline {
    Pipeline::parse(Path::new("test.yaml"), PIPELINE).unwrap_or_else(|e| panic!("{e}"))
}

fn obs(schedule: &str, seed: i64, norm: f64, acc: f64) -> Observation {
    let mut row = Map::new();
    row.insert("epoch".into(), json!(0));
    row.insert("weight_norm".into(), json!(norm));
    row.insert("test_acc".into(), json!(acc));
    let mut coords = json!({"schedule": schedule}).as_object().unwrap().clone();
    coords.insert("seed".into(), json!(seed));
    Observation {
        run_id: format!("e1/schedule={schedule},seed={seed}"),
        coords,
        seed,
        rows: vec![row],
        source: Source {
            run_key: "k".repeat(64),
            file: "metrics.jsonl".into(),
            sha256: format!("{seed:064}"),
        },
        diverged: false,
    }
}

fn inputs() -> Inputs {
    let mut o = Vec::new();
    for s in 0..3 {
        o.push(obs("early", s, 5.0 + 0.1 * s as f64, 0.9));
        o.push(obs("none", s, 9.0 + 0.2 * s as f64, 0.9 + 0.001 * s as f64));
    }
    let e1 = ExperimentData {
        name: "e1".into(),
        description: Some("Schedules of WD on `vision` with `lr` 0.1.".into()),
        kind: kinds::kind("vision").unwrap(),
        planned: o.len(),
        observations: o,
        missing: Vec::new(),
        arm_axes: vec!["schedule".into()],
        data: Vec::new(),
    };
    let digests = (0..6)
        .map(|i| {
            (
                format!("run:e1/r{i}"),
                BTreeMap::from([("metrics.jsonl".to_string(), format!("{i:064}"))]),
            )
        })
        .collect();
    Inputs {
        profile: "smoke".into(),
        experiments: vec![e1],
        digests,
    }
}

fn finished(i: usize) -> Finished {
    Finished {
        key: format!("{i:x}").repeat(64)[..64].to_string(),
        device: "cpu (AMD EPYC, 2 threads)".into(),
        libtorch: "2.11.0+cu130".into(),
        repro_version: "0.1.0".into(),
        switches: "deterministic algorithms, MKL COMPATIBLE, oneDNN off".into(),
        seconds: 900.0,
        finished: format!("2026-12-05T0{i}:30:00Z"),
    }
}

/// Three finished bitwise runs, the second differing from the lock in `metrics.jsonl`, and one
/// not finished.
fn ledger() -> Ledger {
    let run = |i: usize, lock: LockMatch, done: bool| RunFacts {
        run_id: format!("e1/schedule=early,seed={i}"),
        experiment: "e1".into(),
        determinism: Determinism::Bitwise,
        finished: done.then(|| finished(i + 1)),
        lock,
    };
    Ledger {
        runs: vec![
            run(0, LockMatch::Matches, true),
            run(1, LockMatch::Differs(vec!["metrics.jsonl".into()]), true),
            run(2, LockMatch::Matches, true),
            run(3, LockMatch::NotFinished, false),
        ],
        lock_digest: Some("ab".repeat(32)),
    }
}

fn page_with(ledger: &Ledger) -> String {
    let p = pipeline();
    let inputs = inputs();
    let checks = evaluate(&p, &inputs);
    let claims = summarize_claims(&checks);
    let doc = Document {
        pipeline: &p,
        profile: "smoke",
        key: &"f".repeat(64),
        inputs: &inputs,
        checks: &checks,
        claims: &claims,
        claims_table: &claims_table(&checks),
        checks_table: &checks_table(&checks),
        experiment_tables: &[],
        ledger,
    };
    html::page(&doc, &[], &[])
}

fn page() -> String {
    page_with(&ledger())
}

/// Every value of `attr="…"` in the page.
fn values<'a>(page: &'a str, attr: &str) -> Vec<&'a str> {
    let pat = format!("{attr}=\"");
    page.match_indices(&pat)
        .map(|(i, _)| {
            let rest = &page[i + pat.len()..];
            &rest[..rest.find('"').unwrap()]
        })
        .collect()
}

/// The `<tr …>…</tr>` that opens with `id="…"`.
fn row<'a>(page: &'a str, id: &str) -> &'a str {
    let start = page
        .find(&format!("<tr id=\"{id}\""))
        .unwrap_or_else(|| panic!("no row {id}"));
    let end = start + page[start..].find("</tr>").unwrap();
    &page[start..end]
}

#[test]
fn every_link_lands_on_an_element_and_the_contents_list_every_section() {
    let page = page();
    let ids = values(&page, "id");
    let links: Vec<&str> = values(&page, "href")
        .into_iter()
        .filter_map(|h| h.strip_prefix('#'))
        .collect();
    assert!(links.len() > 10, "{links:?}");
    for l in &links {
        assert!(ids.contains(l), "#{l} has no element with that id");
    }
    let nav = &page[page.find("<nav").unwrap()..page.find("</nav>").unwrap()];
    for section in [
        "verdicts",
        "checks",
        "experiments",
        "exp-e1",
        "provenance",
        "section-runs",
    ] {
        assert!(
            nav.contains(&format!("href=\"#{section}\"")),
            "contents lack {section}"
        );
    }
    let mut sorted = ids.clone();
    sorted.sort();
    sorted.dedup();
    assert_eq!(sorted.len(), ids.len(), "duplicate ids: {ids:?}");
}

#[test]
fn each_check_row_has_its_sentence_its_verdict_and_a_link_to_its_section() {
    let page = page();
    let ids = values(&page, "id");
    for (check, sentence, section) in [
        (
            "lower",
            "Early WD keeps the norm <code>weight_norm</code> below none's.",
            "exp-e1",
        ),
        ("same-acc", "Early WD matches no WD in accuracy.", "exp-e1"),
        // Outside the profile and pending: the Experiments heading says none is here.
        (
            "away",
            "Only on an experiment outside the profile.",
            "experiments",
        ),
        ("later", "Needs a task not in the pipeline.", "experiments"),
    ] {
        let r = row(&page, &format!("check-{check}"));
        assert!(r.contains(sentence), "{check}: no sentence in {r}");
        assert!(r.contains("class=\"verdict "), "{check}: no verdict in {r}");
        let links: Vec<&str> = values(r, "href");
        assert!(
            links.contains(&format!("#{section}").as_str()),
            "{check}: {links:?}"
        );
        assert!(links.iter().all(|l| ids.contains(&&l[1..])));
    }
    // A decided two-arm check draws its estimate with an interval and its threshold.
    let lower = row(&page, "check-lower");
    for part in [
        "<svg class=\"est\"",
        "class=\"ci\"",
        "class=\"threshold\"",
        "dot ok",
    ] {
        assert!(lower.contains(part), "{part} missing in {lower}");
    }
}

#[test]
fn no_backtick_survives_outside_code() {
    let page = page();
    assert!(
        page.contains("<code>vision</code>"),
        "the description's code spans"
    );
    let mut outside = String::new();
    let mut rest = page.as_str();
    while let Some(i) = rest.find("<code>") {
        outside += &rest[..i];
        let end = rest[i..].find("</code>").expect("closed code") + i;
        rest = &rest[end + "</code>".len()..];
    }
    outside += rest;
    let at: Vec<&str> = outside
        .match_indices('`')
        .map(|(i, _)| &outside[i.saturating_sub(40)..(i + 40).min(outside.len())])
        .collect();
    assert!(at.is_empty(), "backticks outside <code>: {at:#?}");
}

#[test]
fn the_provenance_box_has_each_field() {
    let page = page();
    let start = page
        .find("<dl class=\"provenance\">")
        .expect("a provenance box");
    let dl = &page[start..start + page[start..].find("</dl>").unwrap()];
    for (term, value) in [
        ("Code", "<code>0.1.0</code> (3 runs)"),
        ("Code", "report code version <code>"),
        ("libtorch", "<code>2.11.0+cu130</code>"),
        ("Device", "<code>cpu (AMD EPYC, 2 threads)</code>"),
        ("Determinism", "bitwise (4 of 4 planned runs)"),
        ("Determinism", "MKL COMPATIBLE"),
        (
            "Dates",
            "first run finished 2026-12-05 01:30 UTC, last run finished 2026-12-05 03:30 UTC",
        ),
        ("Compute", "0.750 device-hours"),
        ("Report key", &"f".repeat(64)),
    ] {
        let dt = format!("<dt>{term}</dt><dd>");
        let at = dl.find(&dt).unwrap_or_else(|| panic!("no {term} in {dl}"));
        let dd = &dl[at..at + dl[at..].find("</dd>").unwrap()];
        assert!(dd.contains(value), "{term}: {value:?} not in {dd}");
    }
    // The per-run table lists every planned run, folded.
    let runs = &page[page
        .find("<details id=\"section-runs\"")
        .expect("runs table")..];
    for i in 0..4 {
        assert!(runs.contains(&format!("e1/schedule=early,seed={i}")));
    }
    assert!(runs.contains("<summary>Runs (3 of 4 finished)</summary>"));
}

#[test]
fn the_lock_headline_counts_a_differing_run_as_a_mismatch() {
    let page = page();
    let h = &page[page.find("<p class=\"headline").expect("a headline")..];
    let h = &h[..h.find("</p>").unwrap()];
    assert!(h.contains("lock-fail"), "{h}");
    assert!(h.contains("2 of 3 runs match pipeline.lock"), "{h}");
    assert!(
        h.contains("<code>e1/schedule=early,seed=1</code> (differs in metrics.jsonl)"),
        "{h}"
    );
    assert!(h.contains("1 bitwise runs not finished"), "{h}");

    // And from digests: one output changed is a mismatch, a run absent from the lock too.
    let mut lock = LockedProfile::default();
    let outputs = BTreeMap::from([
        ("metrics.jsonl".to_string(), "a".repeat(64)),
        ("final.safetensors".to_string(), "b".repeat(64)),
    ]);
    lock.runs.insert(
        "r".into(),
        LockedRun {
            key: "k".into(),
            outputs: outputs.clone(),
        },
    );
    assert_eq!(
        ledger::compare("r", &outputs, Some(&lock)),
        LockMatch::Matches
    );
    let mut changed = outputs.clone();
    changed.insert("metrics.jsonl".into(), "c".repeat(64));
    assert_eq!(
        ledger::compare("r", &changed, Some(&lock)),
        LockMatch::Differs(vec!["metrics.jsonl".into()])
    );
    assert_eq!(
        ledger::compare("s", &outputs, Some(&lock)),
        LockMatch::NotLocked
    );
    assert_eq!(ledger::compare("r", &outputs, None), LockMatch::NotLocked);

    // All matching reads as such.
    let mut all = ledger();
    all.runs[1].lock = LockMatch::Matches;
    all.runs.pop();
    let page = page_with(&all);
    assert!(page.contains("headline lock-ok\"><strong>3 of 3 runs match pipeline.lock"));

    // No entry for the profile: said so, not "0 of N".
    let mut unlocked = ledger();
    unlocked.lock_digest = None;
    let page = page_with(&unlocked);
    assert!(
        page.contains("pipeline.lock has no entry for profile <code>smoke</code>"),
        "{}",
        &page[page.find("<p class=\"headline").unwrap()..][..300]
    );
    assert!(!page.contains("runs match pipeline.lock"));
}

#[test]
fn what_the_page_shows_of_the_records_and_the_lock_is_in_the_key() {
    let base = ledger().key_value();
    let mut later = ledger();
    later.runs[0].finished.as_mut().unwrap().finished = "2027-01-01T00:00:00Z".into();
    assert_ne!(later.key_value(), base, "a rerun's date re-keys the report");
    let mut slower = ledger();
    slower.runs[2].finished.as_mut().unwrap().seconds = 901.0;
    assert_ne!(slower.key_value(), base);
    let mut relocked = ledger();
    relocked.lock_digest = Some("cd".repeat(32));
    assert_ne!(
        relocked.key_value(),
        base,
        "a new lock entry re-keys the report"
    );
    assert_eq!(ledger().key_value(), base);
    let _: Value = base;
}
