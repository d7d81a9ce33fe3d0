//! The progress half of the engine↔worker protocol: a [`Progress`] tick (where a run is, how
//! fast it goes, its last training loss, elapsed and ETA) as the worker prints it on stdout
//! after [`PROGRESS_PREFIX`] as JSON, how the engine reads such a line back (and the older
//! `POS LEN MESSAGE` form), the one plain-text rendering the CLI and the run's log share, and the
//! ETA as a pure function of the work done and the seconds it took.

use std::fmt::{self, Display};

use serde::{Deserialize, Serialize};

/// The line prefix the worker uses on stdout to report progress: `progress {JSON}` (a
/// [`Progress`]), or `progress POS LEN MESSAGE` from workers before the JSON form.
pub const PROGRESS_PREFIX: &str = "progress ";

/// The environment variable that sets the worker's tick interval in milliseconds (default
/// [`DEFAULT_EVERY_MS`]; 0 ticks after every batch).
pub const EVERY_MS_ENV: &str = "REPRO_PROGRESS_EVERY_MS";

/// The worker's tick interval when [`EVERY_MS_ENV`] is unset.
pub const DEFAULT_EVERY_MS: u64 = 2000;

/// What a run's outer loop counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Unit {
    Epoch,
    /// A DQN iteration (`iteration_steps` agent steps and an evaluation).
    Iteration,
    /// An upstream run measured (`sharpness`).
    Run,
    /// A worker's units before the JSON form named them.
    Step,
}

impl Unit {
    fn name(self) -> &'static str {
        match self {
            Unit::Epoch => "epoch",
            Unit::Iteration => "iteration",
            Unit::Run => "run",
            Unit::Step => "step",
        }
    }
}

/// What a unit is made of, and what its throughput counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Samples {
    /// Batches of images (vision): images per second.
    Images,
    /// Windows or batches of tokens (lm, translate): tokens per second.
    Tokens,
    /// Agent steps (dqn): environment steps per second.
    EnvSteps,
}

impl Samples {
    /// The name of one part of a unit (a batch, an agent step).
    fn part(self) -> &'static str {
        match self {
            Samples::Images | Samples::Tokens => "batch",
            Samples::EnvSteps => "step",
        }
    }

    /// The throughput's unit.
    fn per_s(self) -> &'static str {
        match self {
            Samples::Images => "img/s",
            Samples::Tokens => "tok/s",
            Samples::EnvSteps => "env steps/s",
        }
    }
}

/// Where the unit in progress is: `pos` of its `len` parts (batches, agent steps) done.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Within {
    pub pos: u64,
    pub len: u64,
}

/// Samples per second over the window since the previous tick.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Rate {
    pub per_s: f64,
    pub of: Samples,
}

/// One progress tick of a run: the worker sends one at most every [`EVERY_MS_ENV`] inside a
/// unit and one at each unit's end. Optional fields are left out of the JSON when unknown, and
/// absent ones read as unknown, so either side can add fields.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Progress {
    pub unit: Unit,
    /// Units finished, of `total`.
    pub done: u64,
    pub total: u64,
    /// The position inside unit `done + 1` (none at a unit's end).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub within: Option<Within>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rate: Option<Rate>,
    /// The training loss of the last batch (or DQN update) before the tick; null when not finite.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub loss: Option<f64>,
    /// Seconds since this attempt of the run started (a resumed run counts from its resume).
    #[serde(default)]
    pub elapsed_s: f64,
    /// Seconds left at this attempt's pace so far ([`eta`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub eta_s: Option<f64>,
    /// Sent at the end of a unit (its row written): renderers that thin ticks out keep these.
    #[serde(default)]
    pub unit_end: bool,
    /// What the unit's end says (`test acc 0.412`) or the phase the run is in.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub message: String,
}

impl Progress {
    /// A tick with only a position (`done` of `total` units) and a message.
    pub fn at(unit: Unit, done: u64, total: u64, message: &str) -> Progress {
        Progress {
            unit,
            done,
            total,
            within: None,
            rate: None,
            loss: None,
            elapsed_s: 0.0,
            eta_s: None,
            unit_end: false,
            message: message.to_string(),
        }
    }

    /// The line the worker prints for this tick (without a newline).
    pub fn to_line(&self) -> String {
        // A struct of numbers, enums and a string always serializes.
        let json = serde_json::to_string(self).unwrap_or_default();
        format!("{PROGRESS_PREFIX}{json}")
    }

    /// A worker's stdout line as a tick: `None` for a line that is not about progress. A
    /// progress line that cannot be read is an error naming it.
    pub fn parse_line(line: &str) -> Option<Result<Progress, String>> {
        let rest = line.strip_prefix(PROGRESS_PREFIX)?;
        if rest.starts_with('{') {
            return Some(
                serde_json::from_str(rest)
                    .map_err(|e| format!("unreadable progress line `{line}`: {e}")),
            );
        }
        // The form before JSON: `POS LEN MESSAGE`.
        let mut parts = rest.splitn(3, ' ');
        let number = |p: Option<&str>| p.and_then(|p| p.parse::<u64>().ok());
        let (Some(done), Some(total)) = (number(parts.next()), number(parts.next())) else {
            return Some(Err(format!(
                "unreadable progress line `{line}`: expected JSON or `POS LEN MESSAGE`"
            )));
        };
        let message = parts.next().unwrap_or("");
        Some(Ok(Progress {
            unit_end: true,
            ..Progress::at(Unit::Step, done, total, message)
        }))
    }

    /// How far the run is, from 0 to 1, counting the parts of the unit in progress where known.
    pub fn fraction(&self) -> f64 {
        let units = match self.within {
            Some(w) if w.len > 0 && !self.unit_end => {
                self.done as f64 + w.pos as f64 / w.len as f64
            }
            _ => self.done as f64,
        };
        (units / self.total.max(1) as f64).clamp(0.0, 1.0)
    }
}

/// The plain-text line of a tick, shared by the CLI (without a terminal) and the run's log:
/// `epoch 3/10 · batch 120/391 · 412 img/s · loss 1.234 · elapsed 1:02 · ETA 3:10 · MESSAGE`.
impl Display for Progress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let unit = self.unit.name();
        let mut parts = Vec::new();
        match self.within {
            Some(w) if !self.unit_end => {
                let part = self.rate.map_or("batch", |r| r.of.part());
                let n = (self.done + 1).min(self.total.max(1));
                parts.push(format!(
                    "{unit} {n}/{} · {part} {}/{}",
                    self.total, w.pos, w.len
                ));
            }
            _ if self.unit_end => parts.push(format!("{unit} {}/{} done", self.done, self.total)),
            _ => parts.push(format!("{unit} {}/{}", self.done, self.total)),
        }
        if let Some(r) = self.rate {
            parts.push(format!("{} {}", rate(r.per_s), r.of.per_s()));
        }
        if let Some(loss) = self.loss {
            parts.push(format!("loss {loss:.4}"));
        }
        parts.push(format!("elapsed {}", clock(self.elapsed_s)));
        parts.push(format!(
            "ETA {}",
            self.eta_s.map_or_else(|| "?".to_string(), clock)
        ));
        if !self.message.is_empty() {
            parts.push(self.message.clone());
        }
        write!(f, "{}", parts.join(" · "))
    }
}

/// A throughput with about three significant figures: `412`, `12.3k`, `1.25M`, `3.4`.
fn rate(x: f64) -> String {
    match x {
        x if !x.is_finite() => "?".into(),
        x if x >= 1e6 => format!("{:.3}M", x / 1e6),
        x if x >= 1e4 => format!("{:.1}k", x / 1e3),
        x if x >= 100.0 => format!("{x:.0}"),
        x => format!("{x:.1}"),
    }
}

/// Seconds as `m:ss` or `h:mm:ss`.
pub fn clock(seconds: f64) -> String {
    let s = if seconds.is_finite() {
        seconds.max(0.0).round() as u64
    } else {
        0
    };
    let (h, m, s) = (s / 3600, s / 60 % 60, s % 60);
    match h {
        0 => format!("{m}:{s:02}"),
        h => format!("{h}:{m:02}:{s:02}"),
    }
}

/// Seconds left for a run with `total` parts of work when `now` are done, `seconds` after
/// this attempt started with `start` done: the rest at this attempt's average pace (a resumed
/// run's earlier attempts are not counted). `None` before this attempt did any work.
pub fn eta(start: u64, now: u64, total: u64, seconds: f64) -> Option<f64> {
    let done = now.checked_sub(start).filter(|&d| d > 0)?;
    let left = total.saturating_sub(now);
    Some(seconds * left as f64 / done as f64)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tick() -> Progress {
        Progress {
            within: Some(Within { pos: 120, len: 391 }),
            rate: Some(Rate {
                per_s: 412.4,
                of: Samples::Images,
            }),
            loss: Some(1.23456),
            elapsed_s: 62.0,
            eta_s: Some(190.0),
            ..Progress::at(Unit::Epoch, 2, 10, "")
        }
    }

    #[test]
    fn a_tick_round_trips_through_its_line() {
        let t = Progress {
            message: "test acc 0.412".into(),
            ..tick()
        };
        let line = t.to_line();
        assert!(line.starts_with("progress {"), "{line}");
        assert_eq!(Progress::parse_line(&line), Some(Ok(t)));
        // Fields left out read as unknown: an older or newer worker's tick still parses.
        let minimal = r#"progress {"unit":"iteration","done":1,"total":4}"#;
        let p = Progress::parse_line(minimal).unwrap().unwrap();
        assert_eq!(p, Progress::at(Unit::Iteration, 1, 4, ""));
    }

    #[test]
    fn the_older_form_still_parses_and_junk_is_named() {
        let p = Progress::parse_line("progress 3 10 test acc 0.5")
            .unwrap()
            .unwrap();
        assert_eq!(
            (p.done, p.total, p.message.as_str()),
            (3, 10, "test acc 0.5")
        );
        assert!(Progress::parse_line("loss 1.0").is_none());
        let err = Progress::parse_line("progress {\"unit\":\"fortnight\"}").unwrap();
        assert!(err.unwrap_err().contains("fortnight"));
        let err = Progress::parse_line("progress x y").unwrap().unwrap_err();
        assert!(err.contains("`progress x y`"), "{err}");
    }

    #[test]
    fn the_plain_line_has_every_field() {
        let line = tick().to_string();
        assert_eq!(
            line,
            "epoch 3/10 · batch 120/391 · 412 img/s · loss 1.2346 · elapsed 1:02 · ETA 3:10"
        );
        let end = Progress {
            within: None,
            unit_end: true,
            message: "test acc 0.412".into(),
            eta_s: Some(4000.0),
            ..tick()
        };
        assert_eq!(
            end.to_string(),
            "epoch 2/10 done · 412 img/s · loss 1.2346 · elapsed 1:02 · ETA 1:06:40 · test acc 0.412"
        );
        let dqn = Progress {
            unit: Unit::Iteration,
            rate: Some(Rate {
                per_s: 23456.0,
                of: Samples::EnvSteps,
            }),
            eta_s: None,
            ..tick()
        };
        let line = dqn.to_string();
        assert!(
            line.starts_with("iteration 3/10 · step 120/391 · 23.5k env steps/s"),
            "{line}"
        );
        assert!(line.ends_with("ETA ?"), "{line}");
    }

    #[test]
    fn eta_from_a_fixed_sequence_of_ticks() {
        // (seconds since the attempt started, parts done) at a steady 10 parts/s, of 1000.
        let ticks = [(2.0, 20), (4.0, 40), (10.0, 100), (50.0, 500)];
        let etas: Vec<f64> = ticks
            .iter()
            .map(|&(s, done)| eta(0, done, 1000, s).unwrap())
            .collect();
        assert_eq!(etas, [98.0, 96.0, 90.0, 50.0]);
        // A resumed attempt paces itself on its own work: 600 of 1000 were done before it.
        assert_eq!(eta(600, 700, 1000, 20.0), Some(60.0));
        // No work yet in this attempt: no estimate; all done: nothing left.
        assert_eq!(eta(600, 600, 1000, 20.0), None);
        assert_eq!(eta(0, 1000, 1000, 20.0), Some(0.0));
        assert_eq!(clock(3725.4), "1:02:05");
        assert_eq!(clock(59.6), "1:00");
    }

    #[test]
    fn a_bar_counts_parts_of_units() {
        assert_eq!(tick().fraction(), (2.0 + 120.0 / 391.0) / 10.0);
        assert_eq!(Progress::at(Unit::Run, 3, 12, "").fraction(), 0.25);
        assert_eq!(Progress::at(Unit::Run, 0, 0, "").fraction(), 0.0);
    }
}
