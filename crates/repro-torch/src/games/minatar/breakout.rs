//! MinAtar Breakout: a paddle on the bottom row bounces a ball travelling on diagonals into
//! three rows of bricks; +1 per brick, a fresh wall when the last brick goes, the episode ends
//! when the ball reaches the bottom row past the paddle. No difficulty ramp.

use super::game::{Draws, Game, Grid};

const PADDLE: usize = 0;
const BALL: usize = 1;
const TRAIL: usize = 2;
const BRICK: usize = 3;

pub struct Breakout {
    ball_x: i64,
    ball_y: i64,
    /// 0 up-left, 1 up-right, 2 down-right, 3 down-left.
    ball_dir: usize,
    pos: i64,
    bricks: [[bool; 10]; 10],
    strike: bool,
    last_x: i64,
    last_y: i64,
    terminal: bool,
}

impl Breakout {
    pub fn new() -> Self {
        Breakout {
            ball_x: 0,
            ball_y: 3,
            ball_dir: 2,
            pos: 4,
            bricks: [[false; 10]; 10],
            strike: false,
            last_x: 0,
            last_y: 3,
            terminal: false,
        }
    }

    fn fill_wall(&mut self) {
        for row in &mut self.bricks[1..4] {
            *row = [true; 10];
        }
    }
}

impl Default for Breakout {
    fn default() -> Self {
        Self::new()
    }
}

impl Game for Breakout {
    fn channels(&self) -> &'static [&'static str] {
        &["paddle", "ball", "trail", "brick"]
    }

    fn reset(&mut self, rng: &mut dyn Draws) {
        self.ball_y = 3;
        (self.ball_x, self.ball_dir) = [(0, 2), (9, 3)][rng.int_in(0, 2) as usize];
        self.pos = 4;
        self.bricks = [[false; 10]; 10];
        self.fill_wall();
        self.strike = false;
        self.last_x = self.ball_x;
        self.last_y = self.ball_y;
        self.terminal = false;
    }

    fn act(&mut self, action: usize, _rng: &mut dyn Draws) -> (f32, bool) {
        let mut reward = 0.0;
        if self.terminal {
            return (reward, true);
        }
        match action {
            1 => self.pos = (self.pos - 1).max(0),
            3 => self.pos = (self.pos + 1).min(9),
            _ => {}
        }

        self.last_x = self.ball_x;
        self.last_y = self.ball_y;
        let (dx, dy) = [(-1, -1), (1, -1), (1, 1), (-1, 1)][self.ball_dir];
        let mut new_x = self.ball_x + dx;
        let mut new_y = self.ball_y + dy;

        let mut strike_toggle = false;
        if !(0..=9).contains(&new_x) {
            new_x = new_x.clamp(0, 9);
            self.ball_dir = [1, 0, 3, 2][self.ball_dir];
        }
        if new_y < 0 {
            new_y = 0;
            self.ball_dir = [3, 2, 1, 0][self.ball_dir];
        } else if self.bricks[new_y as usize][new_x as usize] {
            strike_toggle = true;
            if !self.strike {
                reward += 1.0;
                self.strike = true;
                self.bricks[new_y as usize][new_x as usize] = false;
                new_y = self.last_y;
                self.ball_dir = [3, 2, 1, 0][self.ball_dir];
            }
        } else if new_y == 9 {
            if self.bricks.iter().flatten().all(|b| !b) {
                self.fill_wall();
            }
            if self.ball_x == self.pos {
                self.ball_dir = [3, 2, 1, 0][self.ball_dir];
                new_y = self.last_y;
            } else if new_x == self.pos {
                self.ball_dir = [2, 3, 0, 1][self.ball_dir];
                new_y = self.last_y;
            } else {
                self.terminal = true;
            }
        }
        if !strike_toggle {
            self.strike = false;
        }
        self.ball_x = new_x;
        self.ball_y = new_y;
        (reward, self.terminal)
    }

    fn state(&self, grid: &mut Grid) {
        grid.set(BALL, self.ball_y as usize, self.ball_x as usize);
        grid.set(PADDLE, 9, self.pos as usize);
        grid.set(TRAIL, self.last_y as usize, self.last_x as usize);
        for (y, row) in self.bricks.iter().enumerate() {
            for (x, &b) in row.iter().enumerate() {
                if b {
                    grid.set(BRICK, y, x);
                }
            }
        }
    }

    fn minimal_action_set(&self) -> &'static [usize] {
        &[0, 1, 3]
    }

    fn difficulty_ramp(&self) -> Option<i64> {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::games::minatar::Draw;
    use crate::games::minatar::Replay;

    fn started(start: i64) -> Breakout {
        let mut game = Breakout::new();
        game.reset(&mut Replay::new([Draw::Int {
            low: 0,
            high: 2,
            value: start,
        }]));
        game
    }

    #[test]
    fn the_ball_starts_in_a_top_corner_heading_down_and_inwards() {
        let left = started(0);
        assert_eq!((left.ball_x, left.ball_y, left.ball_dir), (0, 3, 2));
        let right = started(1);
        assert_eq!((right.ball_x, right.ball_y, right.ball_dir), (9, 3, 3));
    }

    #[test]
    fn a_missed_ball_ends_the_episode_and_a_caught_one_bounces() {
        // From (0, 3) heading down-right the ball reaches row 9 at x = 6 after six steps.
        let mut rng = Replay::new([]);
        let mut missed = started(0);
        let mut terminal = false;
        for _ in 0..6 {
            terminal = missed.act(1, &mut rng).1; // the paddle runs away to the left
        }
        assert!(terminal);
        assert_eq!(
            missed.act(0, &mut rng),
            (0.0, true),
            "terminal stays terminal"
        );

        // Under the ball's column before the step it bounces straight back up; under the
        // column it is entering, it goes back the way it came.
        for (moves, dir) in [([3, 0], 1), ([3, 3], 0)] {
            let mut caught = started(0);
            for a in moves.into_iter().chain([0; 4]) {
                assert!(!caught.act(a, &mut rng).1);
            }
            assert_eq!((caught.ball_y, caught.ball_dir), (8, dir));
        }
    }

    #[test]
    fn a_brick_pays_one_and_reflects_the_ball() {
        let mut rng = Replay::new([]);
        let mut game = started(0);
        game.ball_dir = 1; // up-right from (0, 3): the next cell (1, 2) is a brick
        let (reward, terminal) = game.act(0, &mut rng);
        assert_eq!((reward, terminal), (1.0, false));
        assert!(!game.bricks[2][1]);
        assert_eq!((game.ball_x, game.ball_y, game.ball_dir), (1, 3, 2));
    }
}
