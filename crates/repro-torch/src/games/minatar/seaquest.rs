//! MinAtar Seaquest: a two-cell submarine (front and back, so its heading shows) fires
//! sideways at enemy fish and enemy subs that cross the rows below the surface; subs fire
//! back. +1 per enemy shot. Divers drift across too; touching one takes it on board (at most
//! six, shown on the bottom row next to the oxygen bar). Oxygen runs down by one per frame
//! under water and the episode ends once it is used up. Coming back up to the surface with no
//! diver ends the episode; with one to five, one diver is spent and the oxygen refilled; with
//! six, all are spent and the surfacing pays one per tenth of the oxygen left. Every surfacing
//! ramps the difficulty (with ramping): enemies spawn a frame sooner (20 down to 1) and, on
//! every other one, move a frame sooner (5 down to 2). Touching an enemy or an enemy bullet
//! ends the episode. Trails mark where each enemy and diver just was.
//!
//! The reference keeps its objects in Python lists and updates them while iterating over
//! `reversed(list)`, removing with `list.remove(obj)`, which drops the first element *equal*
//! to `obj`. The updates here keep exactly that index arithmetic ([`remove_first`]): should
//! an earlier twin be removed instead of the object itself, the object shifts down and is
//! visited again, as in the reference. Two more quirks kept from it: a six-diver surfacing
//! leaves the diver count at -1 (it zeroes the count and then spends one more diver), and an
//! enemy sub removed in a frame (shot, or leaving the screen) still fires if its shot timer
//! is up that frame.

use super::game::{Draws, Game, Grid};

const SUB_FRONT: usize = 0;
const SUB_BACK: usize = 1;
const FRIENDLY_BULLET: usize = 2;
const TRAIL: usize = 3;
const ENEMY_BULLET: usize = 4;
const ENEMY_FISH: usize = 5;
const ENEMY_SUB: usize = 6;
const OXYGEN_GAUGE: usize = 7;
const DIVER_GAUGE: usize = 8;
const DIVER: usize = 9;

const MAX_OXYGEN: i64 = 200;
const INIT_SPAWN_SPEED: i64 = 20;
const DIVER_SPAWN_SPEED: i64 = 30;
const INIT_MOVE_INTERVAL: i64 = 5;
const SHOT_COOL_DOWN: i64 = 5;
const ENEMY_SHOT_INTERVAL: i64 = 10;
const DIVER_MOVE_INTERVAL: i64 = 5;

/// A bullet, the reference's `[x, y, heading right]`.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Bullet {
    x: i64,
    y: i64,
    right: bool,
}

/// A fish or a diver, the reference's `[x, y, heading right, move timer]`.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Swimmer {
    x: i64,
    y: i64,
    right: bool,
    move_timer: i64,
}

/// An enemy sub, the reference's `[x, y, heading right, move timer, shot timer]`.
#[derive(Debug, Clone, Copy, PartialEq)]
struct EnemySub {
    x: i64,
    y: i64,
    right: bool,
    move_timer: i64,
    shot_timer: i64,
}

fn step(right: bool) -> i64 {
    if right { 1 } else { -1 }
}

fn off_screen(x: i64) -> bool {
    !(0..=9).contains(&x)
}

/// Python's `list.remove(x)`: drops the first element equal to `x`, which need not be `x`
/// itself, and returns its index.
fn remove_first<T: PartialEq>(list: &mut Vec<T>, x: &T) -> usize {
    let j = list
        .iter()
        .position(|v| v == x)
        .expect("list.remove(x): x not in list");
    list.remove(j);
    j
}

/// [`remove_first`] of the object at index `i` (equal to `x`): where that object is now, or
/// None if it was the one removed.
fn remove_at_or_twin<T: PartialEq>(list: &mut Vec<T>, i: usize, x: &T) -> Option<usize> {
    let j = remove_first(list, x);
    (j != i).then(|| i - 1)
}

pub struct Seaquest {
    ramping: bool,
    oxygen: i64,
    diver_count: i64,
    sub_x: i64,
    sub_y: i64,
    /// Heading right (the back is then on the left).
    sub_or: bool,
    f_bullets: Vec<Bullet>,
    e_bullets: Vec<Bullet>,
    e_fish: Vec<Swimmer>,
    e_subs: Vec<EnemySub>,
    divers: Vec<Swimmer>,
    e_spawn_speed: i64,
    e_spawn_timer: i64,
    d_spawn_timer: i64,
    move_speed: i64,
    ramp_index: i64,
    shot_timer: i64,
    /// At the surface since the last surfacing (starts true: the sub starts there).
    surface: bool,
    terminal: bool,
}

impl Seaquest {
    pub fn new(ramping: bool) -> Self {
        let mut game = Seaquest {
            ramping,
            oxygen: 0,
            diver_count: 0,
            sub_x: 0,
            sub_y: 0,
            sub_or: false,
            f_bullets: Vec::new(),
            e_bullets: Vec::new(),
            e_fish: Vec::new(),
            e_subs: Vec::new(),
            divers: Vec::new(),
            e_spawn_speed: 0,
            e_spawn_timer: 0,
            d_spawn_timer: 0,
            move_speed: 0,
            ramp_index: 0,
            shot_timer: 0,
            surface: true,
            terminal: false,
        };
        game.start();
        game
    }

    /// The reference's `reset()`, which draws nothing.
    fn start(&mut self) {
        self.oxygen = MAX_OXYGEN;
        self.diver_count = 0;
        self.sub_x = 5;
        self.sub_y = 0;
        self.sub_or = false;
        self.f_bullets.clear();
        self.e_bullets.clear();
        self.e_fish.clear();
        self.e_subs.clear();
        self.divers.clear();
        self.e_spawn_speed = INIT_SPAWN_SPEED;
        self.e_spawn_timer = self.e_spawn_speed;
        self.d_spawn_timer = DIVER_SPAWN_SPEED;
        self.move_speed = INIT_MOVE_INTERVAL;
        self.ramp_index = 0;
        self.shot_timer = 0;
        self.surface = true;
        self.terminal = false;
    }

    fn at_player(&self, x: i64, y: i64) -> bool {
        (x, y) == (self.sub_x, self.sub_y)
    }

    /// Three draws whether or not anything spawns: heading, sub or fish, row. Nothing spawns
    /// in a row where an enemy heads the other way.
    fn spawn_enemy(&mut self, rng: &mut dyn Draws) {
        let right = rng.uniform() < 1.0 / 2.0;
        let is_sub = rng.uniform() < 1.0 / 3.0;
        let x = if right { 0 } else { 9 };
        let y = rng.int_in(1, 9);
        let opposed = self
            .e_subs
            .iter()
            .map(|s| (s.y, s.right))
            .chain(self.e_fish.iter().map(|f| (f.y, f.right)))
            .any(|(row, r)| row == y && r != right);
        if opposed {
            return;
        }
        if is_sub {
            self.e_subs.push(EnemySub {
                x,
                y,
                right,
                move_timer: self.move_speed,
                shot_timer: ENEMY_SHOT_INTERVAL,
            });
        } else {
            self.e_fish.push(Swimmer {
                x,
                y,
                right,
                move_timer: self.move_speed,
            });
        }
    }

    /// Two draws: heading, row.
    fn spawn_diver(&mut self, rng: &mut dyn Draws) {
        let right = rng.uniform() < 1.0 / 2.0;
        let x = if right { 0 } else { 9 };
        let y = rng.int_in(1, 9);
        self.divers.push(Swimmer {
            x,
            y,
            right,
            move_timer: DIVER_MOVE_INTERVAL,
        });
    }

    /// Friendly bullets fly a cell, leave the screen or hit a fish (first) or a sub where it
    /// stands before enemies move.
    fn update_friendly_bullets(&mut self) -> i64 {
        let mut reward = 0;
        for i in (0..self.f_bullets.len()).rev() {
            self.f_bullets[i].x += step(self.f_bullets[i].right);
            let bullet = self.f_bullets[i];
            if off_screen(bullet.x) {
                remove_first(&mut self.f_bullets, &bullet);
                continue;
            }
            let hit = |x: i64, y: i64| (x, y) == (bullet.x, bullet.y);
            if let Some(fish) = self.e_fish.iter().find(|f| hit(f.x, f.y)).copied() {
                remove_first(&mut self.e_fish, &fish);
                remove_first(&mut self.f_bullets, &bullet);
                reward += 1;
            } else if let Some(sub) = self.e_subs.iter().find(|s| hit(s.x, s.y)).copied() {
                remove_first(&mut self.e_subs, &sub);
                remove_first(&mut self.f_bullets, &bullet);
                reward += 1;
            }
        }
        reward
    }

    /// Divers are picked up where they are, or move when their timer is up and may then be
    /// picked up, or leave the screen.
    fn update_divers(&mut self) {
        for i in (0..self.divers.len()).rev() {
            let diver = self.divers[i];
            if self.at_player(diver.x, diver.y) && self.diver_count < 6 {
                remove_first(&mut self.divers, &diver);
                self.diver_count += 1;
            } else if diver.move_timer == 0 {
                let moved = Swimmer {
                    move_timer: DIVER_MOVE_INTERVAL,
                    x: diver.x + step(diver.right),
                    ..diver
                };
                self.divers[i] = moved;
                if off_screen(moved.x) {
                    remove_first(&mut self.divers, &moved);
                } else if self.at_player(moved.x, moved.y) && self.diver_count < 6 {
                    remove_first(&mut self.divers, &moved);
                    self.diver_count += 1;
                }
            } else {
                self.divers[i].move_timer -= 1;
            }
        }
    }

    /// Enemy subs: touching the player ends the episode (before and after moving); moving
    /// onto a friendly bullet costs them their life; their shot timer runs regardless.
    fn update_enemy_subs(&mut self) -> i64 {
        let mut reward = 0;
        for i in (0..self.e_subs.len()).rev() {
            let mut sub = self.e_subs[i];
            let mut at = Some(i);
            if self.at_player(sub.x, sub.y) {
                self.terminal = true;
            }
            if sub.move_timer == 0 {
                sub.move_timer = self.move_speed;
                sub.x += step(sub.right);
                self.e_subs[i] = sub;
                if off_screen(sub.x) {
                    at = remove_at_or_twin(&mut self.e_subs, i, &sub);
                } else if self.at_player(sub.x, sub.y) {
                    self.terminal = true;
                } else if let Some(bullet) = self
                    .f_bullets
                    .iter()
                    .find(|b| (b.x, b.y) == (sub.x, sub.y))
                    .copied()
                {
                    at = remove_at_or_twin(&mut self.e_subs, i, &sub);
                    remove_first(&mut self.f_bullets, &bullet);
                    reward += 1;
                }
            } else {
                sub.move_timer -= 1;
            }
            if sub.shot_timer == 0 {
                sub.shot_timer = ENEMY_SHOT_INTERVAL;
                self.e_bullets.push(Bullet {
                    x: sub.x,
                    y: sub.y,
                    right: sub.right,
                });
            } else {
                sub.shot_timer -= 1;
            }
            if let Some(j) = at {
                self.e_subs[j] = sub;
            }
        }
        reward
    }

    /// Enemy bullets fly a cell; touching the player before or after ends the episode.
    fn update_enemy_bullets(&mut self) {
        for i in (0..self.e_bullets.len()).rev() {
            if self.at_player(self.e_bullets[i].x, self.e_bullets[i].y) {
                self.terminal = true;
            }
            self.e_bullets[i].x += step(self.e_bullets[i].right);
            let bullet = self.e_bullets[i];
            if off_screen(bullet.x) {
                remove_first(&mut self.e_bullets, &bullet);
            } else if self.at_player(bullet.x, bullet.y) {
                self.terminal = true;
            }
        }
    }

    /// Enemy fish: as subs, without the shooting.
    fn update_enemy_fish(&mut self) -> i64 {
        let mut reward = 0;
        for i in (0..self.e_fish.len()).rev() {
            let fish = self.e_fish[i];
            if self.at_player(fish.x, fish.y) {
                self.terminal = true;
            }
            if fish.move_timer == 0 {
                let moved = Swimmer {
                    move_timer: self.move_speed,
                    x: fish.x + step(fish.right),
                    ..fish
                };
                self.e_fish[i] = moved;
                if off_screen(moved.x) {
                    remove_first(&mut self.e_fish, &moved);
                } else if self.at_player(moved.x, moved.y) {
                    self.terminal = true;
                } else if let Some(bullet) = self
                    .f_bullets
                    .iter()
                    .find(|b| (b.x, b.y) == (moved.x, moved.y))
                    .copied()
                {
                    remove_first(&mut self.e_fish, &moved);
                    remove_first(&mut self.f_bullets, &bullet);
                    reward += 1;
                }
            } else {
                self.e_fish[i].move_timer -= 1;
            }
        }
        reward
    }

    /// The reference's `_surface()`: refill the oxygen, spend a diver (all six, paying for
    /// the oxygen left, and then one more), ramp.
    fn surface(&mut self) -> i64 {
        self.surface = true;
        let reward = if self.diver_count == 6 {
            self.diver_count = 0;
            (self.oxygen * 10).div_euclid(MAX_OXYGEN)
        } else {
            0
        };
        self.oxygen = MAX_OXYGEN;
        self.diver_count -= 1;
        if self.ramping && (self.e_spawn_speed > 1 || self.move_speed > 2) {
            if self.move_speed > 2 && self.ramp_index % 2 != 0 {
                self.move_speed -= 1;
            }
            if self.e_spawn_speed > 1 {
                self.e_spawn_speed -= 1;
            }
            self.ramp_index += 1;
        }
        reward
    }
}

impl Game for Seaquest {
    fn channels(&self) -> &'static [&'static str] {
        &[
            "sub_front",
            "sub_back",
            "friendly_bullet",
            "trail",
            "enemy_bullet",
            "enemy_fish",
            "enemy_sub",
            "oxygen_guage",
            "diver_guage",
            "diver",
        ]
    }

    fn reset(&mut self, _rng: &mut dyn Draws) {
        self.start();
    }

    fn act(&mut self, action: usize, rng: &mut dyn Draws) -> (f32, bool) {
        let mut reward = 0;
        if self.terminal {
            return (0.0, true);
        }

        if self.e_spawn_timer == 0 {
            self.spawn_enemy(rng);
            self.e_spawn_timer = self.e_spawn_speed;
        }
        if self.d_spawn_timer == 0 {
            self.spawn_diver(rng);
            self.d_spawn_timer = DIVER_SPAWN_SPEED;
        }

        match action {
            5 if self.shot_timer == 0 => {
                self.f_bullets.push(Bullet {
                    x: self.sub_x,
                    y: self.sub_y,
                    right: self.sub_or,
                });
                self.shot_timer = SHOT_COOL_DOWN;
            }
            1 => {
                self.sub_x = (self.sub_x - 1).max(0);
                self.sub_or = false;
            }
            3 => {
                self.sub_x = (self.sub_x + 1).min(9);
                self.sub_or = true;
            }
            2 => self.sub_y = (self.sub_y - 1).max(0),
            4 => self.sub_y = (self.sub_y + 1).min(8),
            _ => {}
        }

        reward += self.update_friendly_bullets();
        self.update_divers();
        reward += self.update_enemy_subs();
        self.update_enemy_bullets();
        reward += self.update_enemy_fish();

        self.e_spawn_timer -= (self.e_spawn_timer > 0) as i64;
        self.d_spawn_timer -= (self.d_spawn_timer > 0) as i64;
        self.shot_timer -= (self.shot_timer > 0) as i64;
        if self.oxygen <= 0 {
            self.terminal = true;
        }
        if self.sub_y > 0 {
            self.oxygen -= 1;
            self.surface = false;
        } else if !self.surface {
            if self.diver_count == 0 {
                self.terminal = true;
            } else {
                reward += self.surface();
            }
        }
        (reward as f32, self.terminal)
    }

    fn state(&self, grid: &mut Grid) {
        let (y, x) = (self.sub_y as usize, self.sub_x as usize);
        grid.set(SUB_FRONT, y, x);
        let back_x = if self.sub_or { x - 1 } else { x + 1 };
        grid.set(SUB_BACK, y, back_x);
        for x in 0..(self.oxygen.max(0) * 10).div_euclid(MAX_OXYGEN) {
            grid.set(OXYGEN_GAUGE, 9, x as usize);
        }
        // `state[9, 9 - diver_count:9]`: empty once the count is negative.
        for x in (9 - self.diver_count)..9 {
            grid.set(DIVER_GAUGE, 9, x as usize);
        }
        for b in &self.f_bullets {
            grid.set(FRIENDLY_BULLET, b.y as usize, b.x as usize);
        }
        for b in &self.e_bullets {
            grid.set(ENEMY_BULLET, b.y as usize, b.x as usize);
        }
        let mut with_trail = |c: usize, x: i64, y: i64, right: bool| {
            grid.set(c, y as usize, x as usize);
            let back_x = x - step(right);
            if !off_screen(back_x) {
                grid.set(TRAIL, y as usize, back_x as usize);
            }
        };
        for f in &self.e_fish {
            with_trail(ENEMY_FISH, f.x, f.y, f.right);
        }
        for s in &self.e_subs {
            with_trail(ENEMY_SUB, s.x, s.y, s.right);
        }
        for d in &self.divers {
            with_trail(DIVER, d.x, d.y, d.right);
        }
    }

    fn minimal_action_set(&self) -> &'static [usize] {
        &[0, 1, 2, 3, 4, 5]
    }

    fn difficulty_ramp(&self) -> Option<i64> {
        Some(self.ramp_index)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::games::minatar::{Draw, Replay};

    fn started() -> Seaquest {
        let mut game = Seaquest::new(true);
        game.reset(&mut Replay::new([]));
        game
    }

    /// Under water at row 1 with `divers` aboard, about to surface with action 2 (`u`).
    fn below_surface(divers: i64, oxygen: i64) -> Seaquest {
        let mut game = started();
        (game.sub_y, game.surface, game.diver_count, game.oxygen) = (1, false, divers, oxygen);
        game
    }

    fn swimmer(x: i64, y: i64, right: bool, move_timer: i64) -> Swimmer {
        Swimmer {
            x,
            y,
            right,
            move_timer,
        }
    }

    fn enemy_sub(x: i64, y: i64, right: bool, move_timer: i64, shot_timer: i64) -> EnemySub {
        EnemySub {
            x,
            y,
            right,
            move_timer,
            shot_timer,
        }
    }

    #[test]
    fn the_sub_starts_at_the_surface_facing_left_with_full_oxygen() {
        let game = started();
        let mut grid = Grid::new(10);
        game.state(&mut grid);
        assert!(grid.get(SUB_FRONT, 0, 5) && grid.get(SUB_BACK, 0, 6));
        assert!((0..10).all(|x| grid.get(OXYGEN_GAUGE, 9, x)));
        assert!((0..10).all(|x| !grid.get(DIVER_GAUGE, 9, x)));
        assert_eq!(game.difficulty_ramp(), Some(0));
    }

    #[test]
    fn spawns_draw_heading_kind_and_row_for_enemies_then_heading_and_row_for_divers() {
        let mut game = started();
        (game.e_spawn_timer, game.d_spawn_timer) = (0, 0);
        let mut rng = Replay::new([
            Draw::Uniform(0.2), // heads right
            Draw::Uniform(0.1), // a sub
            Draw::Int {
                low: 1,
                high: 9,
                value: 4,
            },
            Draw::Uniform(0.7), // the diver heads left
            Draw::Int {
                low: 1,
                high: 9,
                value: 6,
            },
        ]);
        assert_eq!(game.act(0, &mut rng), (0.0, false));
        assert_eq!(rng.remaining(), 0);
        assert_eq!(game.e_subs, [enemy_sub(0, 4, true, 4, 9)]);
        assert!(game.e_fish.is_empty());
        assert_eq!(game.divers, [swimmer(9, 6, false, 4)]);
        assert_eq!((game.e_spawn_timer, game.d_spawn_timer), (19, 29));
    }

    #[test]
    fn no_enemy_spawns_in_a_row_where_one_heads_the_other_way_but_the_draws_are_made() {
        let draws = || {
            Replay::new([
                Draw::Uniform(0.2),
                Draw::Uniform(0.5), // a fish
                Draw::Int {
                    low: 1,
                    high: 9,
                    value: 4,
                },
            ])
        };
        for (heading, spawned) in [(false, false), (true, true)] {
            let mut game = started();
            game.e_spawn_timer = 0;
            game.e_fish = vec![swimmer(5, 4, heading, 3)];
            let mut rng = draws();
            game.act(0, &mut rng);
            assert_eq!(rng.remaining(), 0);
            let mut expected = vec![swimmer(5, 4, heading, 2)];
            if spawned {
                expected.push(swimmer(0, 4, true, 4));
            }
            assert_eq!(game.e_fish, expected);
        }
    }

    #[test]
    fn surfacing_without_divers_ends_the_episode() {
        let mut game = below_surface(0, 100);
        assert_eq!(game.act(2, &mut Replay::new([])), (0.0, true));
    }

    #[test]
    fn surfacing_with_some_divers_spends_one_refills_and_ramps() {
        let mut rng = Replay::new([]);
        let mut game = below_surface(3, 50);
        assert_eq!(game.act(2, &mut rng), (0.0, false));
        assert_eq!((game.diver_count, game.oxygen), (2, MAX_OXYGEN));
        assert_eq!(game.difficulty_ramp(), Some(1));
        assert_eq!((game.e_spawn_speed, game.move_speed), (19, 5));
        // Staying at the surface does nothing more; the next surfacing (odd ramp index) also
        // speeds the enemies up.
        game.act(0, &mut rng);
        assert_eq!(game.diver_count, 2);
        game.act(4, &mut rng);
        assert_eq!(game.oxygen, MAX_OXYGEN - 1);
        assert_eq!(game.act(2, &mut rng), (0.0, false));
        assert_eq!(game.diver_count, 1);
        assert_eq!(game.difficulty_ramp(), Some(2));
        assert_eq!((game.e_spawn_speed, game.move_speed), (18, 4));
    }

    #[test]
    fn the_ramp_stops_at_its_floors_and_not_at_all_without_ramping() {
        let mut game = below_surface(2, 50);
        (game.e_spawn_speed, game.move_speed, game.ramp_index) = (1, 2, 7);
        game.act(2, &mut Replay::new([]));
        assert_eq!(
            (game.e_spawn_speed, game.move_speed, game.ramp_index),
            (1, 2, 7)
        );
        let mut game = below_surface(2, 50);
        game.ramping = false;
        game.act(2, &mut Replay::new([]));
        assert_eq!(
            (game.e_spawn_speed, game.move_speed, game.ramp_index),
            (20, 5, 0)
        );
    }

    #[test]
    fn surfacing_with_six_divers_pays_for_the_oxygen_and_leaves_minus_one_diver() {
        let mut rng = Replay::new([]);
        let mut game = below_surface(6, 150);
        assert_eq!(game.act(2, &mut rng), (7.0, false)); // 150 * 10 // 200
        assert_eq!((game.diver_count, game.oxygen), (-1, MAX_OXYGEN));
        let mut grid = Grid::new(10);
        game.state(&mut grid);
        assert!((0..10).all(|x| !grid.get(DIVER_GAUGE, 9, x)));
        // With a negative count, surfacing is no longer fatal.
        game.act(4, &mut rng);
        assert_eq!(game.act(2, &mut rng), (0.0, false));
        assert_eq!(game.diver_count, -2);
    }

    #[test]
    fn the_episode_ends_once_the_oxygen_is_used_up() {
        let mut rng = Replay::new([]);
        let mut game = started();
        (game.sub_y, game.oxygen) = (3, 1);
        assert_eq!(game.act(0, &mut rng), (0.0, false));
        assert_eq!(game.oxygen, 0);
        assert_eq!(game.act(0, &mut rng), (0.0, true));
        assert_eq!(game.oxygen, -1);
        let mut grid = Grid::new(10);
        game.state(&mut grid);
        assert!((0..10).all(|x| !grid.get(OXYGEN_GAUGE, 9, x)));
        game.diver_count = 4;
        game.state(&mut grid);
        assert!((5..9).all(|x| grid.get(DIVER_GAUGE, 9, x)));
        assert!(!grid.get(DIVER_GAUGE, 9, 4) && !grid.get(DIVER_GAUGE, 9, 9));
    }

    #[test]
    fn divers_are_picked_up_where_they_stand_or_move_to_up_to_six() {
        let mut rng = Replay::new([]);
        let mut game = started();
        (game.sub_x, game.sub_y) = (4, 2);
        game.divers = vec![swimmer(5, 2, false, 0), swimmer(3, 2, true, 2)];
        game.act(0, &mut rng);
        assert_eq!(game.diver_count, 1);
        assert_eq!(game.divers, [swimmer(3, 2, true, 1)]);

        let mut full = started();
        (full.sub_x, full.sub_y, full.diver_count) = (4, 2, 6);
        full.divers = vec![swimmer(5, 2, false, 0)];
        full.act(0, &mut rng);
        assert_eq!(full.diver_count, 6);
        assert_eq!(full.divers, [swimmer(4, 2, false, DIVER_MOVE_INTERVAL)]);
    }

    #[test]
    fn a_bullet_kills_a_fish_it_flies_into_or_that_swims_into_it() {
        let mut rng = Replay::new([]);
        // The fish swims into the bullet's new cell: caught in the fish update.
        let mut game = started();
        (game.sub_x, game.sub_y, game.sub_or) = (5, 3, true);
        game.e_fish = vec![swimmer(7, 3, false, 0)];
        assert_eq!(game.act(5, &mut rng), (1.0, false));
        assert!(game.e_fish.is_empty() && game.f_bullets.is_empty());
        // The bullet flies into the fish: caught in the bullet update, a frame later.
        let mut game = started();
        (game.sub_x, game.sub_y, game.sub_or) = (5, 3, true);
        game.e_fish = vec![swimmer(7, 3, false, 3)];
        assert_eq!(game.act(5, &mut rng), (0.0, false));
        assert_eq!(game.act(0, &mut rng), (1.0, false));
        assert!(game.e_fish.is_empty() && game.f_bullets.is_empty());
        assert_eq!(game.shot_timer, SHOT_COOL_DOWN - 2);
    }

    #[test]
    fn touching_a_fish_ends_the_episode() {
        let mut game = started();
        (game.sub_x, game.sub_y) = (5, 3);
        game.e_fish = vec![swimmer(6, 3, false, 0)];
        assert_eq!(game.act(0, &mut Replay::new([])), (0.0, true));
    }

    #[test]
    fn a_sub_shot_in_the_frame_its_timer_is_up_still_fires() {
        // The sub moves into the player's bullet and dies, and its parting shot hits the
        // player in the same frame.
        let mut game = started();
        (game.sub_x, game.sub_y, game.sub_or) = (5, 3, true);
        game.e_subs = vec![enemy_sub(7, 3, false, 0, 0)];
        assert_eq!(game.act(5, &mut Replay::new([])), (1.0, true));
        assert!(game.e_subs.is_empty() && game.f_bullets.is_empty());
        assert_eq!(
            game.e_bullets,
            [Bullet {
                x: 5,
                y: 3,
                right: false
            }]
        );
    }

    #[test]
    fn a_twin_removed_in_the_objects_place_leaves_it_to_be_visited_again() {
        // Python's `list.remove(sub)` drops the first *equal* sub: the moved sub equals the
        // one before it, which goes instead; the moved one shifts into its index, has its shot
        // timer run, and is then updated a second time (as the reference does).
        let mut game = started();
        game.sub_y = 5;
        game.e_subs = vec![enemy_sub(10, 2, true, 5, 5), enemy_sub(9, 2, true, 0, 5)];
        game.act(0, &mut Replay::new([]));
        assert_eq!(game.e_subs, [enemy_sub(10, 2, true, 4, 3)]);
        assert!(game.e_bullets.is_empty());
    }
}
