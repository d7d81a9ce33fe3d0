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
pub mod game;
pub mod seaquest;
pub mod space_invaders;

use std::fmt;
use std::str::FromStr;

pub use game::{Draw, Draws, Game, Grid, Replay, SIZE, Seeded};

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

impl<D: Draws> crate::games::env::Env for Environment<D> {
    fn frame_shape(&self) -> [usize; 3] {
        [self.game.channels().len(), SIZE, SIZE]
    }
    fn num_actions(&self) -> usize {
        NUM_ACTIONS
    }
    fn reset(&mut self) {
        Environment::reset(self)
    }
    fn step(&mut self, action: usize) -> crate::games::env::Step {
        let (reward, terminal) = self.act(action);
        crate::games::env::Step {
            reward,
            terminal,
            truncated: false,
        }
    }
    fn frame(&self, out: &mut [u8]) {
        out.copy_from_slice(self.state().as_chw());
    }
}
