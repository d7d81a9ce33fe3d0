//! How `repro run` shows the executor's events: on a terminal an overall bar and one bar per
//! running run (its position, throughput, last loss, elapsed and ETA from the worker's ticks),
//! with each event's line printed above them; otherwise plain lines on stderr, a run's progress
//! every [`PLAIN_EVERY`] and at each epoch's end (`--quiet`: none).

use std::collections::BTreeMap;
use std::io::IsTerminal;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use indicatif::{MultiProgress, ProgressBar, ProgressStyle};

use repro_core::pipeline::executor::{At, Reporter, RunEvent};
use repro_core::pipeline::progress::Progress;

/// How often a run's progress becomes a plain line without a terminal (besides unit ends): the
/// worker ticks far more often, which a log of stderr does not need.
const PLAIN_EVERY: Duration = Duration::from_secs(30);

/// A run's bar length: ticks give a fraction, whatever the unit.
const BAR_STEPS: u64 = 1000;

pub struct Terminal {
    quiet: bool,
    /// Bars, not lines: stderr is a terminal and not `--quiet`.
    fancy: bool,
    multi: MultiProgress,
    overall: Mutex<Option<ProgressBar>>,
    /// Bars of the runs in progress, by plan position.
    bars: Mutex<BTreeMap<usize, ProgressBar>>,
    /// Without a terminal: which progress ticks become lines.
    plain: Mutex<Thinning>,
}

impl Terminal {
    pub fn new(quiet: bool) -> Terminal {
        Terminal {
            quiet,
            fancy: !quiet && std::io::stderr().is_terminal(),
            multi: MultiProgress::new(),
            overall: Mutex::new(None),
            bars: Mutex::new(BTreeMap::new()),
            plain: Mutex::new(Thinning::new(PLAIN_EVERY)),
        }
    }

    fn say(&self, line: String) {
        if self.fancy {
            let _ = self.multi.println(line);
        } else if !self.quiet {
            eprintln!("{line}");
        }
    }

    fn bar(&self, template: &str, len: u64) -> ProgressBar {
        let pb = self.multi.add(ProgressBar::new(len));
        pb.set_style(
            ProgressStyle::with_template(template).unwrap_or_else(|_| ProgressStyle::default_bar()),
        );
        pb
    }

    /// Whether run `n`'s tick becomes a plain line now.
    fn plain_due(&self, n: usize, tick: &Progress) -> bool {
        let mut plain = self.plain.lock().unwrap_or_else(|e| e.into_inner());
        plain.due(n, Instant::now(), tick.unit_end)
    }

    /// The run's bar is done with; the overall bar counts it.
    fn finished(&self, n: usize) {
        self.plain
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .forget(n);
        if let Some(pb) = self
            .bars
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&n)
        {
            pb.finish_and_clear();
        }
        if let Some(pb) = &*self.overall.lock().unwrap_or_else(|e| e.into_inner()) {
            pb.inc(1);
        }
    }
}

impl Reporter for Terminal {
    fn begin(&self, runs: usize) {
        if self.fancy {
            let pb = self.bar(
                "{prefix:>8} [{bar:30}] {pos}/{len} runs {elapsed}",
                runs as u64,
            );
            pb.set_prefix("overall");
            *self.overall.lock().unwrap_or_else(|e| e.into_inner()) = Some(pb);
        }
    }

    fn note(&self, line: &str) {
        self.say(line.to_string());
    }

    fn event(&self, at: At, event: RunEvent) {
        let (n, total, run) = (at.n, at.total, at.run);
        match event {
            RunEvent::Cached { key } => {
                self.say(format!("[{n}/{total}] {run} cached ({})", &key[..12]));
                self.finished(n);
            }
            RunEvent::Pulled { key } => {
                self.say(format!("[{n}/{total}] {run} pulled ({})", &key[..12]));
                self.finished(n);
            }
            RunEvent::CachedByOther => {
                self.say(format!(
                    "[{n}/{total}] {run} cached (finished by another process)"
                ));
                self.finished(n);
            }
            RunEvent::Started { key, reasons } => {
                self.say(format!(
                    "[{n}/{total}] {run} running ({}): {}",
                    &key[..12],
                    reasons.join("; ")
                ));
                if self.fancy {
                    let template = "{prefix:>8} [{bar:30}] {percent:>3}% {wide_msg}";
                    let pb = self.bar(template, BAR_STEPS);
                    pb.set_prefix(format!("{n}/{total}"));
                    pb.set_message(format!("{run} starting"));
                    self.bars
                        .lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .insert(n, pb);
                }
            }
            RunEvent::Progress(tick) => {
                let bars = self.bars.lock().unwrap_or_else(|e| e.into_inner());
                match bars.get(&n) {
                    Some(pb) => {
                        pb.set_position((tick.fraction() * BAR_STEPS as f64) as u64);
                        pb.set_message(format!("{run} {tick}"));
                    }
                    None if !self.quiet && self.plain_due(n, tick) => {
                        eprintln!("[{n}/{total}] {run} {tick}")
                    }
                    None => {}
                }
            }
            RunEvent::Done { seconds } => {
                self.finished(n);
                self.say(format!("[{n}/{total}] {run} done in {seconds:.1} s"));
            }
            RunEvent::Failed { error } => {
                self.finished(n);
                self.say(format!("[{n}/{total}] {run} FAILED: {error}"));
            }
            RunEvent::Skipped { why } => {
                self.finished(n);
                self.say(format!("[{n}/{total}] {run} skipped: {why}"));
            }
        }
    }

    fn end(&self) {
        if let Some(pb) = self
            .overall
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take()
        {
            pb.finish_and_clear();
        }
    }

    fn interactive(&self) -> bool {
        self.fancy
    }
}

/// Thins a stream of ticks per run: a run's first tick, every unit end, and otherwise at most
/// one tick per `every`.
struct Thinning {
    every: Duration,
    /// When each run's last line went out, by plan position.
    last: BTreeMap<usize, Instant>,
}

impl Thinning {
    fn new(every: Duration) -> Thinning {
        Thinning {
            every,
            last: BTreeMap::new(),
        }
    }

    /// Whether run `n`'s tick at `now` is shown (and if so, the clock restarts).
    fn due(&mut self, n: usize, now: Instant, unit_end: bool) -> bool {
        let due = unit_end
            || self
                .last
                .get(&n)
                .is_none_or(|&t| now.saturating_duration_since(t) >= self.every);
        if due {
            self.last.insert(n, now);
        }
        due
    }

    fn forget(&mut self, n: usize) {
        self.last.remove(&n);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_lines_come_every_interval_and_at_unit_ends() {
        let mut thin = Thinning::new(Duration::from_secs(30));
        let t0 = Instant::now();
        let at = |s: u64| t0 + Duration::from_secs(s);
        // Ticks every 2 s of run 1; an epoch ends at 41 s.
        let shown: Vec<u64> = (0..40)
            .map(|i| 2 * i + 1)
            .filter(|&s| thin.due(1, at(s), s == 41))
            .collect();
        assert_eq!(shown, [1, 31, 41, 71]);
        // Each run has its own clock, and a finished run's is dropped.
        assert!(thin.due(2, at(72), false));
        assert!(!thin.due(2, at(73), false));
        thin.forget(2);
        assert!(thin.due(2, at(74), false));
    }
}
