//! Progress from inside a stage's loops: [`Ticker`] sends a [`Progress`] tick at most every
//! `every` within a unit (the check per batch is one clock read) and one at each unit's end,
//! with the position, the throughput since the previous tick, the last training loss and the
//! ETA. The loss is read only when a tick goes out: on CUDA a read waits for the device, so a
//! time-based read leaves the numerics and the RNG draws untouched.

use std::time::{Duration, Instant};

use anyhow::{Context, Result};

use repro_core::pipeline::progress::{
    DEFAULT_EVERY_MS, EVERY_MS_ENV, Progress, Rate, Samples, Unit, Within, eta,
};

/// Where a stage's ticks go, how often, and when its attempt started (elapsed counts from there).
#[derive(Clone, Copy)]
pub struct ProgressOut<'a> {
    pub emit: &'a dyn Fn(&Progress),
    pub every: Duration,
    pub started: Instant,
}

impl<'a> ProgressOut<'a> {
    /// Ticks to `emit` at the interval of [`EVERY_MS_ENV`] (an error naming the variable and its
    /// value when that is not a whole number of milliseconds).
    pub fn from_env(emit: &'a dyn Fn(&Progress)) -> Result<ProgressOut<'a>> {
        let every_ms = match std::env::var(EVERY_MS_ENV) {
            Err(_) => DEFAULT_EVERY_MS,
            Ok(v) => v.trim().parse::<u64>().with_context(|| {
                format!(
                    "{EVERY_MS_ENV}=`{v}`: expected a whole number of milliseconds between \
                     progress ticks (0: after every batch; unset: {DEFAULT_EVERY_MS})"
                )
            })?,
        };
        Ok(ProgressOut {
            emit,
            every: Duration::from_millis(every_ms),
            started: Instant::now(),
        })
    }

    /// Sends one tick with only a position and a message (a phase: "translating the test set").
    pub fn say(&self, unit: Unit, done: u64, total: u64, message: &str) {
        (self.emit)(&Progress {
            elapsed_s: self.started.elapsed().as_secs_f64(),
            ..Progress::at(unit, done, total, message)
        });
    }
}

/// What a loop counts: `total` units of `per_unit` parts each (the last may be shorter:
/// `total_parts` in all), each part some samples of `samples`.
#[derive(Clone, Copy)]
pub struct Plan {
    pub unit: Unit,
    pub total: u64,
    pub per_unit: u64,
    pub total_parts: u64,
    pub samples: Samples,
}

impl Plan {
    /// `total` units of exactly `per_unit` parts.
    pub fn even(unit: Unit, total: u64, per_unit: u64, samples: Samples) -> Plan {
        Plan {
            unit,
            total,
            per_unit,
            total_parts: total * per_unit,
            samples,
        }
    }
}

/// The ticks of one loop of one attempt.
pub struct Ticker<'a> {
    out: ProgressOut<'a>,
    plan: Plan,
    /// When this ticker began and the parts done before it (a resumed run's): the ETA's pace.
    began: Instant,
    first_parts: u64,
    /// The window since the previous tick: when it began and the samples trained in it.
    last: Instant,
    window_samples: u64,
    /// The loss and throughput of the previous tick, repeated at a unit's end that closes an
    /// empty window.
    loss: Option<f64>,
    rate: Option<Rate>,
}

impl<'a> Ticker<'a> {
    /// A ticker for a loop resuming after `done` units.
    pub fn new(out: ProgressOut<'a>, plan: Plan, done: u64) -> Ticker<'a> {
        let now = Instant::now();
        Ticker {
            out,
            plan,
            began: now,
            first_parts: (done * plan.per_unit).min(plan.total_parts),
            last: now,
            window_samples: 0,
            loss: None,
            rate: None,
        }
    }

    /// After part `pos` (1-based) of unit `unit` (0-based), which trained `samples` samples:
    /// a tick when `every` has passed since the previous one, with the loss `loss()` reads.
    pub fn part(&mut self, unit: usize, pos: u64, samples: u64, loss: impl FnOnce() -> f64) {
        self.window_samples += samples;
        if self.last.elapsed() < self.out.every {
            return;
        }
        let l = loss();
        self.loss = l.is_finite().then_some(l);
        let p = self.plan;
        let start = unit as u64 * p.per_unit;
        let len = p.per_unit.min(p.total_parts.saturating_sub(start));
        let tick = Progress {
            within: Some(Within { pos, len }),
            ..self.tick(unit as u64, start + pos)
        };
        (self.out.emit)(&tick);
    }

    /// At the end of unit `unit` (0-based; its row written): always a tick, with `message`.
    pub fn unit_end(&mut self, unit: usize, message: &str) {
        let done = unit as u64 + 1;
        let parts = (done * self.plan.per_unit).min(self.plan.total_parts);
        let tick = Progress {
            unit_end: true,
            message: message.to_string(),
            ..self.tick(done, parts)
        };
        (self.out.emit)(&tick);
    }

    /// A tick at the start of a unit `done` (0-based) that has no parts to count, saying what
    /// it does (`measuring RUN`).
    pub fn starting(&mut self, done: usize, message: &str) {
        let parts = (done as u64 * self.plan.per_unit).min(self.plan.total_parts);
        let tick = Progress {
            message: message.to_string(),
            ..self.tick(done as u64, parts)
        };
        (self.out.emit)(&tick);
    }

    /// The tick at `done` units and `parts` parts, closing the throughput window.
    fn tick(&mut self, done: u64, parts: u64) -> Progress {
        let now = Instant::now();
        let window = now.duration_since(self.last).as_secs_f64();
        if window > 0.0 && self.window_samples > 0 {
            self.rate = Some(Rate {
                per_s: self.window_samples as f64 / window,
                of: self.plan.samples,
            });
        }
        (self.last, self.window_samples) = (now, 0);
        let pace_s = now.duration_since(self.began).as_secs_f64();
        Progress {
            rate: self.rate,
            loss: self.loss,
            elapsed_s: now.duration_since(self.out.started).as_secs_f64(),
            eta_s: eta(self.first_parts, parts, self.plan.total_parts, pace_s),
            ..Progress::at(self.plan.unit, done, self.plan.total, "")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::RefCell;

    #[test]
    fn ticks_carry_position_rate_and_eta_and_read_the_loss_only_when_sent() {
        let sent = RefCell::new(Vec::new());
        let emit = |p: &Progress| sent.borrow_mut().push(p.clone());
        let every_part = ProgressOut {
            emit: &emit,
            every: Duration::ZERO,
            started: Instant::now(),
        };
        // Resumed after 1 of 3 epochs of 4 batches.
        let plan = Plan::even(Unit::Epoch, 3, 4, Samples::Images);
        let mut t = Ticker::new(every_part, plan, 1);
        t.part(1, 1, 32, || 2.5);
        t.unit_end(1, "test acc 0.5");
        let sent = sent.borrow();
        let tick = &sent[0];
        assert_eq!((tick.done, tick.total), (1, 3));
        assert_eq!(tick.within, Some(Within { pos: 1, len: 4 }));
        assert_eq!(tick.loss, Some(2.5));
        let rate = tick.rate.expect("samples were trained");
        assert!(rate.per_s > 0.0 && rate.of == Samples::Images);
        // 1 of the 8 parts left at the start of this attempt done: 7 more of its pace.
        let eta = tick.eta_s.unwrap();
        assert!(eta >= 0.0 && eta <= 7.0 * tick.elapsed_s + 1e-9, "{eta}");
        assert!(sent[1].unit_end && sent[1].done == 2 && sent[1].message == "test acc 0.5");
        assert_eq!(
            sent[1].loss,
            Some(2.5),
            "the last loss is repeated at the end"
        );
        assert_eq!(sent[1].rate, Some(rate), "so is the last throughput");

        let quiet = ProgressOut {
            every: Duration::from_secs(3600),
            ..every_part
        };
        let mut t = Ticker::new(quiet, plan, 0);
        t.part(0, 1, 32, || {
            panic!("no tick is due: the loss must not be read")
        });
    }
}
