//! MinAtar Asterix: placeholder until the port lands (no game rules yet).

use super::{Draws, Game, Grid};

pub struct Asterix;

impl Asterix {
    pub fn new(_ramping: bool) -> Self {
        Asterix
    }
}

impl Game for Asterix {
    fn channels(&self) -> &'static [&'static str] {
        &["player"]
    }
    fn reset(&mut self, _rng: &mut dyn Draws) {}
    fn act(&mut self, _action: usize, _rng: &mut dyn Draws) -> (f32, bool) {
        (0.0, true)
    }
    fn state(&self, _grid: &mut Grid) {}
    fn minimal_action_set(&self) -> &'static [usize] {
        &[0]
    }
    fn difficulty_ramp(&self) -> Option<i64> {
        None
    }
}
