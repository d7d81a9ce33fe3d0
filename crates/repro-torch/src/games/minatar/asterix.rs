//! MinAtar Asterix: the player moves freely in rows 1–8; enemies and gold spawn at either edge
//! of a free row (one of eight slots) and travel across it, their heading shown by a trail
//! cell behind them. +1 per gold picked up, the episode ends on touching an enemy. With
//! ramping, every 100 steps after the first the spawn interval shrinks by one (down to 1) and
//! every other time the move interval does too.
//!
//! Draw order, as the reference: a spawn draws `rand()` for the side, `rand()` for gold, and
//! only then `randint(free slots)` — so when every row is taken the two `rand()` are still
//! spent and nothing spawns.

use super::game::{Draws, Game, Grid};

const PLAYER: usize = 0;
const ENEMY: usize = 1;
const TRAIL: usize = 2;
const GOLD: usize = 3;

const RAMP_INTERVAL: i64 = 100;
const INIT_SPAWN_SPEED: i64 = 10;
const INIT_MOVE_INTERVAL: i64 = 5;
const SLOTS: usize = 8;

/// An enemy or a piece of gold in slot `s`, on row `s + 1`.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Entity {
    x: i64,
    /// Heading right (spawned at x = 0) or left (at x = 9).
    right: bool,
    gold: bool,
}

pub struct Asterix {
    ramping: bool,
    player_x: i64,
    player_y: i64,
    entities: [Option<Entity>; SLOTS],
    spawn_speed: i64,
    spawn_timer: i64,
    move_speed: i64,
    move_timer: i64,
    ramp_timer: i64,
    ramp_index: i64,
    terminal: bool,
}

impl Asterix {
    pub fn new(ramping: bool) -> Self {
        Asterix {
            ramping,
            player_x: 5,
            player_y: 5,
            entities: [None; SLOTS],
            spawn_speed: INIT_SPAWN_SPEED,
            spawn_timer: INIT_SPAWN_SPEED,
            move_speed: INIT_MOVE_INTERVAL,
            move_timer: INIT_MOVE_INTERVAL,
            ramp_timer: RAMP_INTERVAL,
            ramp_index: 0,
            terminal: false,
        }
    }

    fn spawn_entity(&mut self, rng: &mut dyn Draws) {
        let right = rng.uniform() < 0.5;
        let gold = rng.uniform() < 1.0 / 3.0;
        let free: Vec<usize> = (0..SLOTS).filter(|&s| self.entities[s].is_none()).collect();
        if free.is_empty() {
            return;
        }
        let slot = free[rng.int_in(0, free.len() as i64) as usize];
        let x = if right { 0 } else { 9 };
        self.entities[slot] = Some(Entity { x, right, gold });
    }

    /// The entity in `slot` meets the player: gold is taken (+1), an enemy ends the episode
    /// (and stays on the board).
    fn collide(&mut self, slot: usize) -> f32 {
        match self.entities[slot] {
            Some(e) if e.x == self.player_x && slot as i64 + 1 == self.player_y => {
                if e.gold {
                    self.entities[slot] = None;
                    1.0
                } else {
                    self.terminal = true;
                    0.0
                }
            }
            _ => 0.0,
        }
    }

    fn ramp(&mut self) {
        if !(self.ramping && (self.spawn_speed > 1 || self.move_speed > 1)) {
            return;
        }
        if self.ramp_timer >= 0 {
            self.ramp_timer -= 1;
            return;
        }
        if self.move_speed > 1 && self.ramp_index % 2 == 1 {
            self.move_speed -= 1;
        }
        if self.spawn_speed > 1 {
            self.spawn_speed -= 1;
        }
        self.ramp_index += 1;
        self.ramp_timer = RAMP_INTERVAL;
    }
}

impl Game for Asterix {
    fn channels(&self) -> &'static [&'static str] {
        &["player", "enemy", "trail", "gold"]
    }

    fn reset(&mut self, _rng: &mut dyn Draws) {
        *self = Asterix::new(self.ramping);
    }

    fn act(&mut self, action: usize, rng: &mut dyn Draws) -> (f32, bool) {
        let mut reward = 0.0;
        if self.terminal {
            return (reward, true);
        }

        if self.spawn_timer == 0 {
            self.spawn_entity(rng);
            self.spawn_timer = self.spawn_speed;
        }

        match action {
            1 => self.player_x = (self.player_x - 1).max(0),
            3 => self.player_x = (self.player_x + 1).min(9),
            2 => self.player_y = (self.player_y - 1).max(1),
            4 => self.player_y = (self.player_y + 1).min(8),
            _ => {}
        }

        // Contact where the player stepped, then again after the entities move.
        for slot in 0..SLOTS {
            reward += self.collide(slot);
        }
        if self.move_timer == 0 {
            self.move_timer = self.move_speed;
            for slot in 0..SLOTS {
                if let Some(e) = &mut self.entities[slot] {
                    e.x += if e.right { 1 } else { -1 };
                    if !(0..=9).contains(&e.x) {
                        self.entities[slot] = None;
                    }
                }
                reward += self.collide(slot);
            }
        }

        self.spawn_timer -= 1;
        self.move_timer -= 1;
        self.ramp();
        (reward, self.terminal)
    }

    fn state(&self, grid: &mut Grid) {
        grid.set(PLAYER, self.player_y as usize, self.player_x as usize);
        for (slot, e) in self.entities.iter().enumerate() {
            let Some(e) = e else { continue };
            let y = slot + 1;
            grid.set(if e.gold { GOLD } else { ENEMY }, y, e.x as usize);
            let back_x = if e.right { e.x - 1 } else { e.x + 1 };
            if (0..=9).contains(&back_x) {
                grid.set(TRAIL, y, back_x as usize);
            }
        }
    }

    fn minimal_action_set(&self) -> &'static [usize] {
        &[0, 1, 2, 3, 4]
    }

    fn difficulty_ramp(&self) -> Option<i64> {
        Some(self.ramp_index)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::games::minatar::{Draw, Replay};

    fn int(high: i64, value: i64) -> Draw {
        Draw::Int {
            low: 0,
            high,
            value,
        }
    }

    #[test]
    fn the_eleventh_step_spawns_from_the_side_and_row_drawn() {
        let mut game = Asterix::new(true);
        game.reset(&mut Replay::new([]));
        let mut none = Replay::new([]);
        for _ in 0..10 {
            assert_eq!(game.act(0, &mut none), (0.0, false));
        }
        // Heading left (0.7 ≥ 1/2), an enemy (0.5 ≥ 1/3), in the fourth of eight free slots;
        // the move timer runs out on the same step, so it is already one cell in.
        let mut rng = Replay::new([Draw::Uniform(0.7), Draw::Uniform(0.5), int(8, 3)]);
        game.act(0, &mut rng);
        assert_eq!(rng.remaining(), 0);
        let e = Entity {
            x: 8,
            right: false,
            gold: false,
        };
        assert_eq!(game.entities[3], Some(e));
        let mut grid = Grid::new(4);
        game.state(&mut grid);
        assert!(grid.get(ENEMY, 4, 8) && grid.get(TRAIL, 4, 9));
        assert!(grid.get(PLAYER, 5, 5));
    }

    #[test]
    fn a_full_board_spends_the_side_and_gold_draws_and_spawns_nothing() {
        let mut game = Asterix::new(true);
        let e = Entity {
            x: 9,
            right: false,
            gold: true,
        };
        game.entities = [Some(e); SLOTS];
        game.spawn_timer = 0;
        game.player_x = 0; // out of everyone's way
        let mut rng = Replay::new([Draw::Uniform(0.1), Draw::Uniform(0.1)]);
        assert_eq!(game.act(0, &mut rng), (0.0, false));
        assert_eq!(rng.remaining(), 0);
        assert_eq!(game.entities, [Some(e); SLOTS]);
    }

    #[test]
    fn gold_pays_one_and_an_enemy_ends_the_episode() {
        let mut rng = Replay::new([]);
        let mut game = Asterix::new(true);
        let gold = Entity {
            x: 6,
            right: false,
            gold: true,
        };
        game.entities[4] = Some(gold); // row 5, right of the player at (5, 5)
        assert_eq!(game.act(3, &mut rng), (1.0, false));
        assert_eq!(game.entities[4], None);

        let mut game = Asterix::new(true);
        let enemy = Entity {
            gold: false,
            ..gold
        };
        game.entities[4] = Some(enemy);
        game.move_timer = 0; // it steps onto the player this step
        assert_eq!(game.act(0, &mut rng), (0.0, true));
        assert_eq!(
            game.act(3, &mut rng),
            (0.0, true),
            "terminal stays terminal"
        );
    }

    #[test]
    fn ramping_speeds_up_after_each_interval_and_not_without_ramping() {
        let mut rng = Replay::new([]);
        let mut ramped = Asterix::new(true);
        let mut flat = Asterix::new(false);
        for game in [&mut ramped, &mut flat] {
            game.spawn_timer = i64::MAX; // no spawns
        }
        // (steps so far, ramp index, spawn interval, move interval), as the reference.
        let mut taken = 0;
        for (steps, index, spawn, moves) in [
            (101, 0, 10, 5),
            (102, 1, 9, 5),
            (203, 1, 9, 5),
            (204, 2, 8, 4),
        ] {
            for _ in taken..steps {
                ramped.act(0, &mut rng);
                flat.act(0, &mut rng);
            }
            taken = steps;
            let at = format!("after {steps} steps");
            assert_eq!(ramped.difficulty_ramp(), Some(index), "{at}");
            assert_eq!(
                (ramped.spawn_speed, ramped.move_speed),
                (spawn, moves),
                "{at}"
            );
        }
        assert_eq!(flat.difficulty_ramp(), Some(0));
        assert_eq!(
            (flat.spawn_speed, flat.move_speed),
            (INIT_SPAWN_SPEED, INIT_MOVE_INTERVAL)
        );
    }
}
