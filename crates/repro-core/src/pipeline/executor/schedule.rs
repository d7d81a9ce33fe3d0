//! The `--jobs` scheduler: one loop per placement slot takes the next unit of work (a run, or a
//! fused group's members) whose upstream runs are done, processes it, and repeats; runs
//! downstream of a failure are skipped, not waited for. What processing a unit means is the
//! caller's (see `attempt` and `group`).

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Condvar, Mutex};

use anyhow::Result;

use super::events::{At, Reporter, RunEvent};
use crate::pipeline::placement::Placement;
use crate::pipeline::plan::RunNode;
use crate::store::record::RunRecord;

/// What happened to each run.
#[derive(Debug, Default)]
pub struct Summary {
    pub cached: Vec<String>,
    /// Taken from a pulled publication (made on another machine), not run here.
    pub pulled: Vec<String>,
    pub ran: Vec<String>,
    pub failed: Vec<(String, String)>,
    pub skipped: Vec<(String, String)>,
}

/// Processes a unit (plan indices) given its upstream runs' records, in a slot: each member's
/// `(record, ran)`, in the unit's order; an error fails them all.
pub type Process<'a> = dyn Fn(&[usize], &BTreeMap<String, RunRecord>, &Placement) -> Result<Vec<(RunRecord, bool)>>
    + Sync
    + 'a;

/// Shared state of the scheduling loops.
struct State {
    started: Vec<bool>,
    /// Finished successfully (ran or cached), with their records.
    done: BTreeMap<String, RunRecord>,
    /// Finished in any way (done, failed or skipped).
    finished: BTreeSet<String>,
    summary: Summary,
}

/// Process every unit of `runs` (each unit a list of plan indices, every run in exactly one;
/// in dependency order) over `slots`, one thread per slot.
pub fn schedule(
    runs: &[RunNode],
    units: &[Vec<usize>],
    slots: &[Placement],
    reporter: &dyn Reporter,
    process: &Process,
) -> Summary {
    let state = Mutex::new(State {
        started: vec![false; runs.len()],
        done: BTreeMap::new(),
        finished: BTreeSet::new(),
        summary: Summary::default(),
    });
    let wake = Condvar::new();
    std::thread::scope(|s| {
        for slot in slots.iter().take(units.len().max(1)) {
            let (state, wake) = (&state, &wake);
            s.spawn(move || run_slot(runs, units, slot, state, wake, reporter, process));
        }
    });
    state
        .into_inner()
        .unwrap_or_else(|e| e.into_inner())
        .summary
}

/// One slot's loop.
fn run_slot(
    runs: &[RunNode],
    units: &[Vec<usize>],
    slot: &Placement,
    state: &Mutex<State>,
    wake: &Condvar,
    reporter: &dyn Reporter,
    process: &Process,
) {
    let total = runs.len();
    let at = |i: usize| At {
        n: i + 1,
        total,
        run: &runs[i].id,
    };
    loop {
        let (unit, upstream) = {
            let mut st = state.lock().unwrap_or_else(|e| e.into_inner());
            loop {
                skip_downstream_of_failures(runs, &mut st, reporter);
                let ready = units.iter().find(|u| {
                    u.iter().all(|&i| !st.started[i])
                        && upstream_of(runs, u).all(|up| st.done.contains_key(up))
                });
                if let Some(u) = ready {
                    for &i in u {
                        st.started[i] = true;
                    }
                    let upstream: BTreeMap<String, RunRecord> = upstream_of(runs, u)
                        .map(|up| (up.clone(), st.done[up].clone()))
                        .collect();
                    break (u, upstream);
                }
                if st.started.iter().all(|s| *s) {
                    wake.notify_all();
                    return;
                }
                st = wake.wait(st).unwrap_or_else(|e| e.into_inner());
            }
        };
        let result = process(unit, &upstream, slot);
        let mut st = state.lock().unwrap_or_else(|e| e.into_inner());
        match result {
            Ok(records) => {
                for (&i, (r, ran)) in unit.iter().zip(records) {
                    let id = runs[i].id.clone();
                    if ran {
                        st.summary.ran.push(id.clone());
                    } else {
                        st.summary.cached.push(id.clone());
                    }
                    st.done.insert(id, r);
                }
            }
            Err(e) => {
                let error = format!("{e:#}");
                for &i in unit {
                    reporter.event(at(i), RunEvent::Failed { error: &error });
                    st.summary.failed.push((runs[i].id.clone(), error.clone()));
                }
            }
        }
        for &i in unit {
            st.finished.insert(runs[i].id.clone());
        }
        wake.notify_all();
    }
}

/// The upstream runs of a unit's members.
fn upstream_of<'a>(runs: &'a [RunNode], unit: &'a [usize]) -> impl Iterator<Item = &'a String> {
    unit.iter().flat_map(move |&i| runs[i].upstream.iter())
}

/// Mark as skipped every unstarted run with an upstream run that finished without a record.
fn skip_downstream_of_failures(runs: &[RunNode], st: &mut State, reporter: &dyn Reporter) {
    for (i, run) in runs.iter().enumerate() {
        if st.started[i] {
            continue;
        }
        let failed = run
            .upstream
            .iter()
            .find(|u| st.finished.contains(*u) && !st.done.contains_key(*u));
        if let Some(bad) = failed {
            let why = format!("upstream {bad} did not finish");
            let at = At {
                n: i + 1,
                total: runs.len(),
                run: &run.id,
            };
            reporter.event(at, RunEvent::Skipped { why: &why });
            st.started[i] = true;
            st.finished.insert(run.id.clone());
            st.summary.skipped.push((run.id.clone(), why));
        }
    }
}
