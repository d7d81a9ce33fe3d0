//! The runs a report read, as their records tell it: per run its state, key, device, libtorch,
//! determinism, wall time and finish date ([`RunFacts`]), whether its outputs are the ones
//! `pipeline.lock` pins for the profile ([`LockMatch`]), and the provenance summary over them
//! ([`Provenance`]). Everything here comes from the run records and the lock entry, and
//! [`Ledger::key_value`] puts what the page shows of them into the report's key, so a cached
//! report never shows stale dates or a stale lock headline.

use std::collections::BTreeMap;

use anyhow::{Context, Result};
use serde_json::{Value, json};

use repro_core::pipeline::executor::RunState;
use repro_core::pipeline::lockfile::LockedProfile;
use repro_core::pipeline::plan::Plan;
use repro_core::pipeline::spec::Determinism;
use repro_core::store::Store;
use repro_core::store::hash::sha256_bytes;
use repro_core::store::key::canonical_json;
use repro_core::store::record::RunRecord;

/// What one finished run's record says about where and how it ran.
#[derive(Debug, Clone, PartialEq)]
pub struct Finished {
    pub key: String,
    /// `cpu (AMD EPYC, 2 threads)` or `cuda:sm_90`: the key's device class, with the CPU model.
    pub device: String,
    /// The libtorch version the run's key holds.
    pub libtorch: String,
    /// The package version of the repro that ran it (the record's `repro_version`).
    pub repro_version: String,
    /// The determinism switches the key holds (`deterministic algorithms, MKL COMPATIBLE, …`).
    pub switches: String,
    /// Wall time of the run's last attempt, in seconds.
    pub seconds: f64,
    /// RFC 3339, as recorded.
    pub finished: String,
}

/// A run's outputs against the profile's entry in `pipeline.lock`.
#[derive(Debug, Clone, PartialEq)]
pub enum LockMatch {
    /// The run is not `determinism: bitwise`: the lock pins nothing for it.
    NotBitwise,
    /// Not finished: nothing to compare.
    NotFinished,
    /// Bitwise, but the lock has no entry for it.
    NotLocked,
    Matches,
    /// The output files whose digests differ from the lock's (or are missing on one side).
    Differs(Vec<String>),
}

#[derive(Debug, Clone, PartialEq)]
pub struct RunFacts {
    pub run_id: String,
    pub experiment: String,
    pub determinism: Determinism,
    pub finished: Option<Finished>,
    pub lock: LockMatch,
}

/// Every planned run of the profile, in plan order, and the lock entry they were compared with.
#[derive(Debug, Clone, Default)]
pub struct Ledger {
    pub runs: Vec<RunFacts>,
    /// sha256 of the profile's lock entry (canonical JSON of its runs); `None`: no entry.
    pub lock_digest: Option<String>,
}

/// The provenance box's values, summarised over the finished runs.
#[derive(Debug, Clone, PartialEq)]
pub struct Provenance {
    pub finished: usize,
    pub planned: usize,
    /// Each distinct value with the number of runs that have it.
    pub repro_versions: Vec<(String, usize)>,
    pub libtorch: Vec<(String, usize)>,
    pub devices: Vec<(String, usize)>,
    pub switches: Vec<(String, usize)>,
    /// The profile's declared modes (`bitwise`, `statistical`) with their run counts.
    pub modes: Vec<(String, usize)>,
    pub first_finished: Option<String>,
    pub last_finished: Option<String>,
    pub seconds: f64,
}

/// The lock headline's counts: bitwise runs compared, and those that do not match.
#[derive(Debug, Clone, PartialEq)]
pub struct LockSummary {
    pub compared: usize,
    pub matching: usize,
    /// Run id and why it does not match.
    pub mismatches: Vec<(String, String)>,
    /// Bitwise runs not finished, so not compared.
    pub unfinished: usize,
}

pub fn mode_text(d: Determinism) -> &'static str {
    match d {
        Determinism::Bitwise => "bitwise",
        Determinism::Statistical => "statistical",
    }
}

fn text(v: Option<&Value>) -> Option<String> {
    match v? {
        Value::String(s) => Some(s.clone()),
        Value::Null => None,
        other => Some(other.to_string()),
    }
}

/// What a record says about where and how its run ran.
pub fn finished(record: &RunRecord) -> Finished {
    let env = &record.manifest.env;
    let device = text(env.get("device")).unwrap_or_else(|| "unknown".into());
    let device = match (
        device.as_str(),
        text(record.environment.get("cpu_model")).filter(|m| !m.is_empty()),
        text(env.get("threads")),
    ) {
        ("cpu", Some(model), Some(t)) => format!("cpu ({model}, {t} threads)"),
        ("cpu", Some(model), None) => format!("cpu ({model})"),
        _ => device,
    };
    let mut switches = Vec::new();
    if env.get("deterministic_algorithms") == Some(&json!(true)) {
        switches.push("deterministic algorithms".to_string());
    }
    if let Some(m) = text(env.get("mkl_cbwr")).filter(|m| !m.is_empty()) {
        switches.push(format!("MKL {m}"));
    }
    match env.get("mkldnn") {
        Some(Value::Bool(false)) => switches.push("oneDNN off".into()),
        Some(Value::Bool(true)) => switches.push("oneDNN on".into()),
        _ => {}
    }
    if let Some(c) = text(env.get("cpu_capability")).filter(|c| !c.is_empty()) {
        switches.push(format!("ATen {c}"));
    }
    Finished {
        key: record.key.clone(),
        device,
        libtorch: text(env.get("libtorch")).unwrap_or_else(|| "unknown".into()),
        repro_version: text(record.environment.get("repro_version"))
            .unwrap_or_else(|| "unrecorded".into()),
        switches: switches.join(", "),
        seconds: record.seconds,
        finished: record.finished.clone(),
    }
}

/// Compare a finished bitwise run's output digests with the lock entry.
pub fn compare(
    run_id: &str,
    outputs: &BTreeMap<String, String>,
    lock: Option<&LockedProfile>,
) -> LockMatch {
    let Some(locked) = lock.and_then(|l| l.runs.get(run_id)) else {
        return LockMatch::NotLocked;
    };
    let differ: Vec<String> = locked
        .differences(outputs)
        .iter()
        .map(|d| d.name().to_string())
        .collect();
    if differ.is_empty() {
        LockMatch::Matches
    } else {
        LockMatch::Differs(differ)
    }
}

/// Read the record of every finished run of the plan and compare the bitwise ones with `lock`,
/// the profile's entry in `pipeline.lock`.
pub fn gather(
    store: &Store,
    plan: &Plan,
    states: &[(String, RunState)],
    lock: Option<&LockedProfile>,
) -> Result<Ledger> {
    let state: BTreeMap<&str, &RunState> = states.iter().map(|(id, s)| (id.as_str(), s)).collect();
    let mut runs = Vec::new();
    for run in &plan.runs {
        let record = match state.get(run.id.as_str()).and_then(|s| s.done_key()) {
            Some(key) => Some(
                store
                    .read_record(key)?
                    .with_context(|| format!("run {} ({key}) has no record", run.id))?,
            ),
            _ => None,
        };
        let lock_match = match (&record, run.determinism) {
            (_, Determinism::Statistical) => LockMatch::NotBitwise,
            (None, Determinism::Bitwise) => LockMatch::NotFinished,
            (Some(r), Determinism::Bitwise) => compare(&run.id, &r.output_digests(), lock),
        };
        runs.push(RunFacts {
            run_id: run.id.clone(),
            experiment: run.experiment.clone(),
            determinism: run.determinism,
            finished: record.as_ref().map(finished),
            lock: lock_match,
        });
    }
    let lock_digest = lock.map(|l| {
        let v = serde_json::to_value(&l.runs).unwrap_or(Value::Null);
        sha256_bytes(canonical_json(&v).as_bytes())
    });
    Ok(Ledger { runs, lock_digest })
}

/// Each distinct value in first-seen order, with how many times it occurs.
fn tally<'a>(values: impl IntoIterator<Item = &'a str>) -> Vec<(String, usize)> {
    let mut out: Vec<(String, usize)> = Vec::new();
    for v in values {
        match out.iter_mut().find(|(x, _)| x == v) {
            Some((_, n)) => *n += 1,
            None => out.push((v.to_string(), 1)),
        }
    }
    out
}

impl Ledger {
    fn done(&self) -> impl Iterator<Item = &Finished> {
        self.runs.iter().filter_map(|r| r.finished.as_ref())
    }

    pub fn provenance(&self) -> Provenance {
        let done: Vec<&Finished> = self.done().collect();
        Provenance {
            finished: done.len(),
            planned: self.runs.len(),
            repro_versions: tally(done.iter().map(|f| f.repro_version.as_str())),
            libtorch: tally(done.iter().map(|f| f.libtorch.as_str())),
            devices: tally(done.iter().map(|f| f.device.as_str())),
            switches: tally(done.iter().map(|f| f.switches.as_str())),
            modes: tally(self.runs.iter().map(|r| mode_text(r.determinism))),
            // RFC 3339 in UTC with a fixed width sorts as text.
            first_finished: done.iter().map(|f| f.finished.clone()).min(),
            last_finished: done.iter().map(|f| f.finished.clone()).max(),
            seconds: done.iter().map(|f| f.seconds).sum(),
        }
    }

    /// The lock headline's counts; `None` when no run of the profile is bitwise.
    pub fn lock_summary(&self) -> Option<LockSummary> {
        let bitwise: Vec<&RunFacts> = self
            .runs
            .iter()
            .filter(|r| r.determinism == Determinism::Bitwise)
            .collect();
        if bitwise.is_empty() {
            return None;
        }
        let mut s = LockSummary {
            compared: 0,
            matching: 0,
            mismatches: Vec::new(),
            unfinished: 0,
        };
        for r in bitwise {
            match &r.lock {
                LockMatch::NotFinished | LockMatch::NotBitwise => s.unfinished += 1,
                LockMatch::Matches => {
                    s.compared += 1;
                    s.matching += 1;
                }
                LockMatch::NotLocked => {
                    s.compared += 1;
                    s.mismatches
                        .push((r.run_id.clone(), "not in pipeline.lock".into()));
                }
                LockMatch::Differs(files) => {
                    s.compared += 1;
                    s.mismatches
                        .push((r.run_id.clone(), format!("differs in {}", files.join(", "))));
                }
            }
        }
        Some(s)
    }

    /// What the page shows of the records beyond their output digests (already key inputs),
    /// and the lock entry's digest: part of the report's key.
    pub fn key_value(&self) -> Value {
        let runs: Vec<Value> = self
            .runs
            .iter()
            .filter_map(|r| {
                let f = r.finished.as_ref()?;
                Some(json!([
                    r.run_id,
                    f.key,
                    f.device,
                    f.libtorch,
                    f.repro_version,
                    f.switches,
                    f.seconds,
                    f.finished
                ]))
            })
            .collect();
        let digest = sha256_bytes(canonical_json(&json!(runs)).as_bytes());
        json!({"records": digest, "pipeline_lock": self.lock_digest})
    }
}
