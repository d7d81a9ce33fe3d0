//! What the executor tells its caller while it works: one [`RunEvent`] per step of a run and
//! free-form notes (datasets prepared, objects quarantined). The executor only emits them; the
//! CLI renders them (progress bars on a terminal, plain lines otherwise) and tests collect them.

use crate::pipeline::progress::Progress;

/// Which run an event is about: its position in the plan (1-based) and its id.
#[derive(Debug, Clone, Copy)]
pub struct At<'a> {
    pub n: usize,
    pub total: usize,
    pub run: &'a str,
}

/// One step of one run.
#[derive(Debug, Clone, Copy)]
pub enum RunEvent<'a> {
    /// Its record was in the store: nothing to do.
    Cached { key: &'a str },
    /// A pulled publication holds it, made elsewhere with the same parameters and inputs.
    Pulled { key: &'a str },
    /// Another process finished it while this one waited for the key's lock.
    CachedByOther,
    /// It starts (or resumes) computing, for these reasons.
    Started { key: &'a str, reasons: &'a [String] },
    /// The worker's progress tick (position, throughput, last loss, elapsed, ETA).
    Progress(&'a Progress),
    /// It finished and its record is written.
    Done { seconds: f64 },
    /// It failed; its downstream runs will be skipped.
    Failed { error: &'a str },
    /// Not started, since an upstream run did not finish.
    Skipped { why: &'a str },
}

/// Receives the executor's events; called from its scheduling threads.
pub trait Reporter: Sync {
    /// Before anything else, with the number of runs planned.
    fn begin(&self, _runs: usize) {}
    /// A line about the work around the runs.
    fn note(&self, line: &str);
    fn event(&self, at: At, event: RunEvent);
    /// After the last run.
    fn end(&self) {}
    /// Whether downloads may draw their own progress bars (an interactive terminal).
    fn interactive(&self) -> bool {
        false
    }
}

/// Says nothing.
pub struct Silent;

impl Reporter for Silent {
    fn note(&self, _line: &str) {}
    fn event(&self, _at: At, _event: RunEvent) {}
}
