//! MinAtar (Young & Tian 2019; the `minatar` package, 1.0.15) in Rust: Asterix, Breakout,
//! Freeway, Seaquest and Space Invaders on a 10×10 grid with one boolean channel per object
//! kind, sticky actions and difficulty ramping, with the reference's rules step for step.
//!
//! Every random draw goes through [`Draws`], named after the numpy `RandomState` call the
//! reference makes at that point (`rand()`, `randint(low, high)`), in the reference's order.
//! That is what lets the parity tests replay the reference's own draws ([`Replay`]) and demand
//! identical observations; runs use the seeded [`Seeded`].

pub mod asterix;
pub mod breakout;
pub mod freeway;
pub mod seaquest;
pub mod space_invaders;

use std::collections::VecDeque;
use std::fmt;
use std::str::FromStr;

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

/// The five games, by the reference's module names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum GameName {
    Asterix,
    Breakout,
    Freeway,
    Seaquest,
    SpaceInvaders,
}

impl GameName {
    pub const ALL: [GameName; 5] = [
        GameName::Asterix,
        GameName::Breakout,
        GameName::Freeway,
        GameName::Seaquest,
        GameName::SpaceInvaders,
    ];
    /// The reference's module name (`minatar.environments.<name>`).
    pub fn as_str(self) -> &'static str {
        match self {
            GameName::Asterix => "asterix",
            GameName::Breakout => "breakout",
            GameName::Freeway => "freeway",
            GameName::Seaquest => "seaquest",
            GameName::SpaceInvaders => "space_invaders",
        }
    }
    /// A fresh game, as the reference's `Env(ramping=…)`, not yet reset.
    pub fn build(self, ramping: bool) -> Box<dyn Game> {
        match self {
            GameName::Asterix => Box::new(asterix::Asterix::new(ramping)),
            GameName::Breakout => Box::new(breakout::Breakout::new()),
            GameName::Freeway => Box::new(freeway::Freeway::new(ramping)),
            GameName::Seaquest => Box::new(seaquest::Seaquest::new(ramping)),
            GameName::SpaceInvaders => Box::new(space_invaders::SpaceInvaders::new(ramping)),
        }
    }
}

impl fmt::Display for GameName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for GameName {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        GameName::ALL
            .into_iter()
            .find(|g| g.as_str() == s)
            .ok_or_else(|| {
                let names: Vec<&str> = GameName::ALL.iter().map(|g| g.as_str()).collect();
                format!("unknown MinAtar game `{s}`; valid: {}", names.join(", "))
            })
    }
}

/// The reference's `Environment`: a game with sticky actions, all six actions exposed.
///
/// As in the reference, `reset` does not forget the last action, and the sticky-action draw
/// comes first in every `act`, terminal or not, from the same stream the game draws from.
pub struct Environment<D: Draws = Seeded> {
    game: Box<dyn Game>,
    rng: D,
    sticky_action_prob: f64,
    last_action: usize,
}

/// MinAtar exposes all six actions in every game (`num_actions()` of the reference).
pub const NUM_ACTIONS: usize = 6;

impl<D: Draws> Environment<D> {
    /// A game with the given sticky-action probability and ramping, drawing from `rng`. Not
    /// yet reset: call [`Environment::reset`] first, as with the reference after `seed()`.
    pub fn new(game: GameName, sticky_action_prob: f64, ramping: bool, rng: D) -> Self {
        Environment {
            game: game.build(ramping),
            rng,
            sticky_action_prob,
            last_action: 0,
        }
    }
    pub fn reset(&mut self) {
        self.game.reset(&mut self.rng);
    }
    /// The reference's `act(a)`: (reward, terminal).
    pub fn act(&mut self, mut action: usize) -> (f32, bool) {
        assert!(
            action < NUM_ACTIONS,
            "MinAtar action {action} is not in 0..6"
        );
        if self.rng.uniform() < self.sticky_action_prob {
            action = self.last_action;
        }
        self.last_action = action;
        self.game.act(action, &mut self.rng)
    }
    pub fn state(&self) -> Grid {
        let mut grid = Grid::new(self.game.channels().len());
        self.game.state(&mut grid);
        grid
    }
    pub fn game(&self) -> &dyn Game {
        self.game.as_ref()
    }
    pub fn rng(&self) -> &D {
        &self.rng
    }
}

impl<D: Draws> crate::games::Env for Environment<D> {
    fn frame_shape(&self) -> [usize; 3] {
        [self.game.channels().len(), SIZE, SIZE]
    }
    fn num_actions(&self) -> usize {
        NUM_ACTIONS
    }
    fn reset(&mut self) {
        Environment::reset(self)
    }
    fn step(&mut self, action: usize) -> crate::games::Step {
        let (reward, terminal) = self.act(action);
        crate::games::Step {
            reward,
            terminal,
            truncated: false,
        }
    }
    fn frame(&self, out: &mut [u8]) {
        out.copy_from_slice(self.state().as_chw());
    }
}
