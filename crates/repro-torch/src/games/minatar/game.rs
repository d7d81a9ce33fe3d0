//! A MinAtar game's contract: the random draws it makes ([`Draws`]: seeded for runs,
//! [`Replay`] of the reference's own draws in the parity tests), the grid it draws on ([`Grid`])
//! and its rules ([`Game`]).

use std::collections::VecDeque;

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// The random draws a game makes, in numpy `RandomState`'s vocabulary.
pub trait Draws: Send {
    /// `rand()`: uniform in [0, 1).
    fn uniform(&mut self) -> f64;
    /// `randint(low, high)`: an integer in [low, high).
    fn int_in(&mut self, low: i64, high: i64) -> i64;
}

/// The draws of a run: ChaCha8 seeded from the run's seed.
pub struct Seeded(ChaCha8Rng);

impl Seeded {
    pub fn new(seed: u64) -> Self {
        Seeded(ChaCha8Rng::seed_from_u64(seed))
    }
}

impl Draws for Seeded {
    fn uniform(&mut self) -> f64 {
        self.0.random::<f64>()
    }
    fn int_in(&mut self, low: i64, high: i64) -> i64 {
        self.0.random_range(low..high)
    }
}

/// One draw the reference made, as its test harness records it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Draw {
    Uniform(f64),
    Int { low: i64, high: i64, value: i64 },
}

/// Draws replayed from a recording of the reference; a call that does not match the next
/// recorded one (another kind, other bounds, or none left) is a parity failure and panics
/// with what was expected, which is what a test wants.
pub struct Replay {
    draws: VecDeque<Draw>,
    taken: usize,
}

impl Replay {
    pub fn new(draws: impl IntoIterator<Item = Draw>) -> Self {
        Replay {
            draws: draws.into_iter().collect(),
            taken: 0,
        }
    }
    /// Recorded draws not yet taken.
    pub fn remaining(&self) -> usize {
        self.draws.len()
    }
    fn next(&mut self, wanted: &str) -> Draw {
        self.taken += 1;
        self.draws.pop_front().unwrap_or_else(|| {
            panic!(
                "draw #{} ({wanted}) but the recording is exhausted",
                self.taken
            )
        })
    }
}

impl Draws for Replay {
    fn uniform(&mut self) -> f64 {
        match self.next("rand()") {
            Draw::Uniform(u) => u,
            other => panic!(
                "draw #{}: rand() but the reference drew {other:?}",
                self.taken
            ),
        }
    }
    fn int_in(&mut self, low: i64, high: i64) -> i64 {
        match self.next("randint") {
            Draw::Int {
                low: l,
                high: h,
                value,
            } if (l, h) == (low, high) => value,
            other => panic!(
                "draw #{}: randint({low}, {high}) but the reference drew {other:?}",
                self.taken
            ),
        }
    }
}

/// The 10×10×C boolean state, stored channel-major (C×10×10) as the network reads it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Grid {
    channels: usize,
    cells: Vec<u8>,
}

pub const SIZE: usize = 10;

impl Grid {
    pub fn new(channels: usize) -> Self {
        Grid {
            channels,
            cells: vec![0; channels * SIZE * SIZE],
        }
    }
    pub fn channels(&self) -> usize {
        self.channels
    }
    /// Set cell (y, x) of channel `c`; the reference's `state[y, x, c] = 1`.
    pub fn set(&mut self, c: usize, y: usize, x: usize) {
        self.cells[(c * SIZE + y) * SIZE + x] = 1;
    }
    pub fn get(&self, c: usize, y: usize, x: usize) -> bool {
        self.cells[(c * SIZE + y) * SIZE + x] != 0
    }
    /// C×10×10, one byte (0 or 1) per cell.
    pub fn as_chw(&self) -> &[u8] {
        &self.cells
    }
}

/// One MinAtar game's rules, as the reference's `Env` class of that game.
pub trait Game: Send {
    /// Channel names, in the reference's channel order.
    fn channels(&self) -> &'static [&'static str];
    /// The reference's `reset()`.
    fn reset(&mut self, rng: &mut dyn Draws);
    /// The reference's `act(a)` with `a` in 0..6 (`n l u r d f`): (reward, terminal).
    fn act(&mut self, action: usize, rng: &mut dyn Draws) -> (f32, bool);
    /// The reference's `state()`, written into a zeroed `grid`.
    fn state(&self, grid: &mut Grid);
    /// The reference's `minimal_action_set()`.
    fn minimal_action_set(&self) -> &'static [usize];
    /// The reference's `difficulty_ramp()` (None where the game does not ramp).
    fn difficulty_ramp(&self) -> Option<i64>;
}
