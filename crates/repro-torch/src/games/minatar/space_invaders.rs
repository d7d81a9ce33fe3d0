//! MinAtar Space Invaders: a cannon on the bottom row shoots upward at a 4×6 block of aliens
//! that marches sideways, steps down a row and turns whenever one reaches the edge it is
//! heading for, and drops bullets from the alien nearest the cannon every eleven frames. +1
//! per alien shot. The block moves once every min(aliens left, move interval) frames, so a
//! thinning wave speeds up; a cleared wave is replaced by a fresh one, and with ramping the
//! move interval drops by one per cleared wave (12 down to 6). The episode ends when an alien
//! or an alien bullet reaches the cannon, or when the block steps down from the bottom row.
//!
//! The reference moves everything with `np.roll`, which wraps: a block stepping down from the
//! bottom row reappears on the top row (the episode ends there anyway). The game makes no
//! random draws of its own.

use super::game::{Draws, Game, Grid, SIZE};

const CANNON: usize = 0;
const ALIEN: usize = 1;
const ALIEN_LEFT: usize = 2;
const ALIEN_RIGHT: usize = 3;
const FRIENDLY_BULLET: usize = 4;
const ENEMY_BULLET: usize = 5;

const SHOT_COOL_DOWN: i64 = 5;
const ENEMY_MOVE_INTERVAL: i64 = 12;
const ENEMY_SHOT_INTERVAL: i64 = 10;

/// A 10×10 boolean map, indexed `[y][x]`.
type Map = [[bool; SIZE]; SIZE];

pub struct SpaceInvaders {
    ramping: bool,
    pos: usize,
    f_bullets: Map,
    e_bullets: Map,
    aliens: Map,
    /// -1 left, +1 right.
    alien_dir: i64,
    enemy_move_interval: i64,
    alien_move_timer: i64,
    alien_shot_timer: i64,
    ramp_index: i64,
    shot_timer: i64,
    terminal: bool,
}

impl SpaceInvaders {
    pub fn new(ramping: bool) -> Self {
        let mut game = SpaceInvaders {
            ramping,
            pos: 5,
            f_bullets: [[false; SIZE]; SIZE],
            e_bullets: [[false; SIZE]; SIZE],
            aliens: [[false; SIZE]; SIZE],
            alien_dir: -1,
            enemy_move_interval: ENEMY_MOVE_INTERVAL,
            alien_move_timer: ENEMY_MOVE_INTERVAL,
            alien_shot_timer: ENEMY_SHOT_INTERVAL,
            ramp_index: 0,
            shot_timer: 0,
            terminal: false,
        };
        game.start();
        game
    }

    /// The reference's `reset()`, which draws nothing.
    fn start(&mut self) {
        self.pos = 5;
        self.f_bullets = [[false; SIZE]; SIZE];
        self.e_bullets = [[false; SIZE]; SIZE];
        self.aliens = [[false; SIZE]; SIZE];
        self.fill_wave();
        self.alien_dir = -1;
        self.enemy_move_interval = ENEMY_MOVE_INTERVAL;
        self.alien_move_timer = self.enemy_move_interval;
        self.alien_shot_timer = ENEMY_SHOT_INTERVAL;
        self.ramp_index = 0;
        self.shot_timer = 0;
        self.terminal = false;
    }

    /// `alien_map[0:4, 2:8] = 1`.
    fn fill_wave(&mut self) {
        for row in &mut self.aliens[0..4] {
            row[2..8].fill(true);
        }
    }

    fn alien_count(&self) -> i64 {
        self.aliens.iter().flatten().filter(|&&a| a).count() as i64
    }

    fn column_has_alien(&self, x: usize) -> bool {
        self.aliens.iter().any(|row| row[x])
    }

    /// The reference's `_nearest_alien`: columns by distance from `pos` (ties to the left, as
    /// Python's stable sort leaves them), the lowest alien of the first occupied one.
    fn nearest_alien(&self, pos: usize) -> Option<(usize, usize)> {
        let mut order: Vec<usize> = (0..SIZE).collect();
        order.sort_by_key(|&x| x.abs_diff(pos));
        order
            .into_iter()
            .find_map(|x| (0..SIZE).rev().find(|&y| self.aliens[y][x]).map(|y| (y, x)))
    }
}

/// `np.roll(map, shift, axis=0)`: rows move down by `shift`, wrapping.
fn roll_rows(map: &Map, shift: i64) -> Map {
    let mut out = [[false; SIZE]; SIZE];
    for (y, row) in map.iter().enumerate() {
        out[(y as i64 + shift).rem_euclid(SIZE as i64) as usize] = *row;
    }
    out
}

/// `np.roll(map, shift, axis=1)`: columns move right by `shift`, wrapping.
fn roll_columns(map: &Map, shift: i64) -> Map {
    let mut out = [[false; SIZE]; SIZE];
    for (y, row) in map.iter().enumerate() {
        for (x, &cell) in row.iter().enumerate() {
            out[y][(x as i64 + shift).rem_euclid(SIZE as i64) as usize] = cell;
        }
    }
    out
}

impl Game for SpaceInvaders {
    fn channels(&self) -> &'static [&'static str] {
        &[
            "cannon",
            "alien",
            "alien_left",
            "alien_right",
            "friendly_bullet",
            "enemy_bullet",
        ]
    }

    fn reset(&mut self, _rng: &mut dyn Draws) {
        self.start();
    }

    fn act(&mut self, action: usize, _rng: &mut dyn Draws) -> (f32, bool) {
        let mut reward = 0.0;
        if self.terminal {
            return (reward, true);
        }
        match action {
            5 if self.shot_timer == 0 => {
                self.f_bullets[9][self.pos] = true;
                self.shot_timer = SHOT_COOL_DOWN;
            }
            1 => self.pos = self.pos.saturating_sub(1),
            3 => self.pos = (self.pos + 1).min(9),
            _ => {}
        }

        // Friendly bullets rise a row (leaving from the top), enemy bullets fall one (leaving
        // from the bottom).
        self.f_bullets = roll_rows(&self.f_bullets, -1);
        self.f_bullets[9] = [false; SIZE];
        self.e_bullets = roll_rows(&self.e_bullets, 1);
        self.e_bullets[0] = [false; SIZE];
        if self.e_bullets[9][self.pos] {
            self.terminal = true;
        }

        if self.aliens[9][self.pos] {
            self.terminal = true;
        }
        if self.alien_move_timer == 0 {
            self.alien_move_timer = self.alien_count().min(self.enemy_move_interval);
            if (self.column_has_alien(0) && self.alien_dir < 0)
                || (self.column_has_alien(9) && self.alien_dir > 0)
            {
                self.alien_dir = -self.alien_dir;
                if self.aliens[9].iter().any(|&a| a) {
                    self.terminal = true;
                }
                self.aliens = roll_rows(&self.aliens, 1);
            } else {
                self.aliens = roll_columns(&self.aliens, self.alien_dir);
            }
            if self.aliens[9][self.pos] {
                self.terminal = true;
            }
        }
        if self.alien_shot_timer == 0 {
            self.alien_shot_timer = ENEMY_SHOT_INTERVAL;
            // The reference would crash on an empty map here; a wave is refilled at the end of
            // every frame, so there always is an alien.
            if let Some((y, x)) = self.nearest_alien(self.pos) {
                self.e_bullets[y][x] = true;
            }
        }

        for (aliens, bullets) in self.aliens.iter_mut().zip(self.f_bullets.iter_mut()) {
            for (alien, bullet) in aliens.iter_mut().zip(bullets.iter_mut()) {
                if *alien && *bullet {
                    reward += 1.0;
                    (*alien, *bullet) = (false, false);
                }
            }
        }

        self.shot_timer -= (self.shot_timer > 0) as i64;
        self.alien_move_timer -= 1;
        self.alien_shot_timer -= 1;
        if self.alien_count() == 0 {
            if self.enemy_move_interval > 6 && self.ramping {
                self.enemy_move_interval -= 1;
                self.ramp_index += 1;
            }
            self.fill_wave();
        }
        (reward, self.terminal)
    }

    fn state(&self, grid: &mut Grid) {
        grid.set(CANNON, 9, self.pos);
        let direction = if self.alien_dir < 0 {
            ALIEN_LEFT
        } else {
            ALIEN_RIGHT
        };
        for y in 0..SIZE {
            for x in 0..SIZE {
                if self.aliens[y][x] {
                    grid.set(ALIEN, y, x);
                    grid.set(direction, y, x);
                }
                if self.f_bullets[y][x] {
                    grid.set(FRIENDLY_BULLET, y, x);
                }
                if self.e_bullets[y][x] {
                    grid.set(ENEMY_BULLET, y, x);
                }
            }
        }
    }

    fn minimal_action_set(&self) -> &'static [usize] {
        &[0, 1, 3, 5]
    }

    fn difficulty_ramp(&self) -> Option<i64> {
        Some(self.ramp_index)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::games::minatar::Replay;

    fn started(ramping: bool) -> SpaceInvaders {
        let mut game = SpaceInvaders::new(ramping);
        game.reset(&mut Replay::new([]));
        game
    }

    fn only_aliens(cells: &[(usize, usize)]) -> Map {
        let mut map = [[false; SIZE]; SIZE];
        for &(y, x) in cells {
            map[y][x] = true;
        }
        map
    }

    #[test]
    fn the_wave_starts_as_a_four_by_six_block_heading_left() {
        let game = started(true);
        let mut grid = Grid::new(6);
        game.state(&mut grid);
        for y in 0..SIZE {
            for x in 0..SIZE {
                let alien = y < 4 && (2..8).contains(&x);
                assert_eq!(grid.get(ALIEN, y, x), alien);
                assert_eq!(grid.get(ALIEN_LEFT, y, x), alien);
                assert!(!grid.get(ALIEN_RIGHT, y, x));
            }
        }
        assert!(grid.get(CANNON, 9, 5));
        assert_eq!(game.difficulty_ramp(), Some(0));
    }

    #[test]
    fn the_block_moves_every_twelve_frames_and_turns_down_at_the_edge() {
        let mut rng = Replay::new([]);
        let mut game = started(true);
        for _ in 0..12 {
            game.act(0, &mut rng);
        }
        assert!(game.aliens[0][2], "not moved before the timer runs out");
        game.act(0, &mut rng);
        assert!(game.aliens[0][1] && !game.aliens[0][7], "one column left");
        // At the left edge the block steps down and turns instead of moving sideways.
        game.aliens = only_aliens(&[(3, 0)]);
        game.alien_move_timer = 0;
        game.act(0, &mut rng);
        assert_eq!(game.aliens, only_aliens(&[(4, 0)]));
        assert_eq!(game.alien_dir, 1);
        // One alien left moves every frame: min(1 alien, interval) - 1 = 0 left on the timer.
        assert_eq!(game.alien_move_timer, 0);
        game.act(0, &mut rng);
        assert_eq!(game.aliens, only_aliens(&[(4, 1)]));
    }

    #[test]
    fn stepping_down_from_the_bottom_row_ends_the_episode_and_wraps_to_the_top() {
        let mut rng = Replay::new([]);
        let mut game = started(true);
        game.pos = 5;
        game.aliens = only_aliens(&[(9, 9)]);
        game.alien_dir = 1;
        game.alien_move_timer = 0;
        let (reward, terminal) = game.act(0, &mut rng);
        assert_eq!((reward, terminal), (0.0, true));
        assert_eq!(game.aliens, only_aliens(&[(0, 9)]), "np.roll wraps");
        assert_eq!(
            game.act(0, &mut rng),
            (0.0, true),
            "terminal stays terminal"
        );
    }

    #[test]
    fn an_alien_reaching_the_cannon_ends_the_episode() {
        let mut rng = Replay::new([]);
        let mut game = started(true);
        game.aliens = only_aliens(&[(9, 4), (0, 0)]);
        game.alien_move_timer = 5;
        assert!(!game.act(0, &mut rng).1);
        assert!(game.act(1, &mut rng).1, "the cannon moved under it");
    }

    #[test]
    fn the_nearest_alien_shoots_ties_going_left() {
        let mut game = started(true);
        game.aliens = only_aliens(&[(1, 3), (2, 3), (5, 7), (8, 0)]);
        assert_eq!(game.nearest_alien(5), Some((2, 3)));
        assert_eq!(game.nearest_alien(6), Some((5, 7)));
        let mut rng = Replay::new([]);
        game.pos = 5;
        game.alien_shot_timer = 0;
        game.alien_move_timer = 5;
        game.act(0, &mut rng);
        assert!(game.e_bullets[2][3]);
        assert_eq!(game.alien_shot_timer, ENEMY_SHOT_INTERVAL - 1);
        game.act(0, &mut rng);
        assert!(
            game.e_bullets[3][3] && !game.e_bullets[2][3],
            "bullets fall a row a frame"
        );
    }

    #[test]
    fn a_hit_pays_one_and_a_cleared_wave_ramps_and_refills() {
        let mut rng = Replay::new([]);
        for (ramping, ramp) in [(true, 1), (false, 0)] {
            let mut game = started(ramping);
            game.aliens = only_aliens(&[(8, 5)]);
            game.alien_move_timer = 5;
            // Fired from row 9, the bullet rises to row 8 in the same frame.
            let (reward, terminal) = game.act(5, &mut rng);
            assert_eq!((reward, terminal), (1.0, false));
            assert!(!game.f_bullets[8][5]);
            assert_eq!(game.difficulty_ramp(), Some(ramp));
            assert_eq!(game.enemy_move_interval, ENEMY_MOVE_INTERVAL - ramp);
            assert_eq!(game.alien_count(), 24, "a fresh wave");
            assert_eq!(game.shot_timer, SHOT_COOL_DOWN - 1);
        }
        // The interval bottoms out at 6.
        let mut game = started(true);
        game.enemy_move_interval = 6;
        game.aliens = only_aliens(&[(8, 5)]);
        game.alien_move_timer = 5;
        game.act(5, &mut rng);
        assert_eq!((game.enemy_move_interval, game.ramp_index), (6, 0));
    }
}
