//! MinAtar Freeway: a chicken in column 4 crosses eight lanes of cars, moving up or down at
//! most once every three steps. +1 on reaching the top row, after which it is put back on the
//! bottom row and every car gets a fresh speed and heading; a car that meets it sends it back
//! to the bottom. Cars move one cell every 1–5 steps (the trail channel behind a car says how
//! often) and wrap round at the edges. The episode ends after 2,500 steps (on the 2,501st
//! `act`). No difficulty ramp; the ramping flag is ignored, as by the reference.
//!
//! Draw order, as the reference: `randint(1, 6)` for each of the eight speeds, then `rand()`
//! for each of the eight headings, at reset and on every crossing.

use super::game::{Draws, Game, Grid};

const CHICKEN: usize = 0;
const CAR: usize = 1;
/// The trail channel of a car moving every `n` steps is `SPEED1 + n - 1`.
const SPEED1: usize = 2;

const PLAYER_SPEED: i64 = 3;
const TIME_LIMIT: i64 = 2500;
const LANES: usize = 8;
/// The chicken's column.
const COLUMN: i64 = 4;

/// The car in lane `i`, on row `i + 1`.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Car {
    x: i64,
    /// Steps left until it next moves.
    timer: i64,
    /// Signed: the magnitude is its move interval, the sign its heading (+ right). Zero only
    /// where the reference's `np.sign` gives 0 (a heading draw of exactly 0.5), which makes a
    /// car that moves left every step and that the reference cannot draw (its `state()` has no
    /// trail channel for it); here it gets no trail.
    speed: i64,
}

pub struct Freeway {
    cars: [Car; LANES],
    pos: i64,
    move_timer: i64,
    terminate_timer: i64,
    terminal: bool,
}

impl Freeway {
    pub fn new(_ramping: bool) -> Self {
        let car = Car {
            x: 0,
            timer: 0,
            speed: 0,
        };
        Freeway {
            cars: [car; LANES],
            pos: 9,
            move_timer: PLAYER_SPEED,
            terminate_timer: TIME_LIMIT,
            terminal: false,
        }
    }

    /// Fresh speeds and headings for every car; with `initialize`, also back to x = 0.
    fn randomize_cars(&mut self, initialize: bool, rng: &mut dyn Draws) {
        let mut speeds = [0; LANES];
        for s in &mut speeds {
            *s = rng.int_in(1, 6);
        }
        for s in &mut speeds {
            // np.sign(rand() - 0.5)
            let u = rng.uniform() - 0.5;
            *s *= if u > 0.0 {
                1
            } else if u < 0.0 {
                -1
            } else {
                0
            };
        }
        for (car, speed) in self.cars.iter_mut().zip(speeds) {
            if initialize {
                car.x = 0;
            }
            car.timer = speed.abs();
            car.speed = speed;
        }
    }

    fn hit(&mut self, lane: usize) {
        if self.cars[lane].x == COLUMN && lane as i64 + 1 == self.pos {
            self.pos = 9;
        }
    }
}

impl Game for Freeway {
    fn channels(&self) -> &'static [&'static str] {
        &[
            "chicken", "car", "speed1", "speed2", "speed3", "speed4", "speed5",
        ]
    }

    fn reset(&mut self, rng: &mut dyn Draws) {
        self.randomize_cars(true, rng);
        self.pos = 9;
        self.move_timer = PLAYER_SPEED;
        self.terminate_timer = TIME_LIMIT;
        self.terminal = false;
    }

    fn act(&mut self, action: usize, rng: &mut dyn Draws) -> (f32, bool) {
        let mut reward = 0.0;
        if self.terminal {
            return (reward, true);
        }

        if self.move_timer == 0 {
            match action {
                2 => {
                    self.move_timer = PLAYER_SPEED;
                    self.pos = (self.pos - 1).max(0);
                }
                4 => {
                    self.move_timer = PLAYER_SPEED;
                    self.pos = (self.pos + 1).min(9);
                }
                _ => {}
            }
        }

        if self.pos == 0 {
            reward += 1.0;
            self.randomize_cars(false, rng);
            self.pos = 9;
        }

        // A car sends the chicken back where it stands, then again where it moves to.
        for lane in 0..LANES {
            self.hit(lane);
            let car = &mut self.cars[lane];
            if car.timer == 0 {
                car.timer = car.speed.abs();
                car.x += if car.speed > 0 { 1 } else { -1 };
                car.x = car.x.rem_euclid(10);
                self.hit(lane);
            } else {
                car.timer -= 1;
            }
        }

        if self.move_timer > 0 {
            self.move_timer -= 1;
        }
        self.terminate_timer -= 1;
        if self.terminate_timer < 0 {
            self.terminal = true;
        }
        (reward, self.terminal)
    }

    fn state(&self, grid: &mut Grid) {
        grid.set(CHICKEN, self.pos as usize, COLUMN as usize);
        for (lane, car) in self.cars.iter().enumerate() {
            let y = lane + 1;
            grid.set(CAR, y, car.x as usize);
            let back_x = (car.x + if car.speed > 0 { -1 } else { 1 }).rem_euclid(10);
            if car.speed != 0 {
                grid.set(
                    SPEED1 + car.speed.unsigned_abs() as usize - 1,
                    y,
                    back_x as usize,
                );
            }
        }
    }

    fn minimal_action_set(&self) -> &'static [usize] {
        &[0, 2, 4]
    }

    fn difficulty_ramp(&self) -> Option<i64> {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::games::minatar::{Draw, Replay};

    /// Eight speeds then eight headings; `speeds[i] < 0` heads left.
    fn draws(speeds: [i64; LANES]) -> Vec<Draw> {
        let ints = speeds.map(|s| Draw::Int {
            low: 1,
            high: 6,
            value: s.abs(),
        });
        let signs = speeds.map(|s| Draw::Uniform(if s > 0 { 0.75 } else { 0.25 }));
        ints.into_iter().chain(signs).collect()
    }

    fn started(speeds: [i64; LANES]) -> Freeway {
        let mut game = Freeway::new(false);
        let mut rng = Replay::new(draws(speeds));
        game.reset(&mut rng);
        assert_eq!(rng.remaining(), 0);
        game
    }

    #[test]
    fn reset_lines_the_cars_up_on_the_left_with_the_drawn_speeds() {
        let game = started([1, -2, 3, -4, 5, -1, 2, -3]);
        let mut grid = Grid::new(7);
        game.state(&mut grid);
        assert!(grid.get(CHICKEN, 9, 4));
        assert!((1..=8).all(|y| grid.get(CAR, y, 0)));
        assert!(
            grid.get(SPEED1, 1, 9),
            "right-moving: the trail wraps to x = 9"
        );
        assert!(grid.get(SPEED1 + 1, 2, 1), "left-moving, every 2 steps");
        assert!(grid.get(SPEED1 + 4, 5, 9));
    }

    #[test]
    fn the_chicken_moves_once_every_three_steps_and_scores_at_the_top() {
        // Every car far from column 4 and slow: they never reach the chicken here.
        let mut game = started([-5; LANES]);
        let mut rng = Replay::new([]);
        for car in &mut game.cars {
            car.x = 8;
            car.timer = i64::MAX;
        }
        for _ in 0..PLAYER_SPEED {
            game.act(2, &mut rng);
        }
        assert_eq!(game.pos, 9, "the first move waits out the timer");
        game.act(2, &mut rng);
        assert_eq!(game.pos, 8);
        for _ in 0..PLAYER_SPEED {
            game.act(2, &mut rng);
        }
        assert_eq!(game.pos, 7);

        game.pos = 1;
        game.move_timer = 0;
        let mut rng = Replay::new(draws([1; LANES]));
        assert_eq!(game.act(2, &mut rng), (1.0, false));
        assert_eq!(rng.remaining(), 0, "a crossing redraws every car");
        assert_eq!(game.pos, 9);
        assert!(game.cars.iter().all(|c| c.speed == 1 && c.x == 8));
    }

    #[test]
    fn a_car_sends_the_chicken_back_and_time_runs_out_after_2500_steps() {
        let mut game = started([1, 1, 1, 1, 1, 1, 1, 1]);
        let mut rng = Replay::new([]);
        game.pos = 3;
        game.move_timer = PLAYER_SPEED;
        game.cars[2].x = 3;
        game.cars[2].timer = 0; // lane 2 is row 3: it moves onto column 4 this step
        game.act(0, &mut rng);
        assert_eq!(game.pos, 9);

        let mut game = started([5; LANES]);
        for _ in 0..TIME_LIMIT {
            assert!(!game.act(0, &mut rng).1);
        }
        assert_eq!(game.act(0, &mut rng), (0.0, true));
        assert_eq!(
            game.act(2, &mut rng),
            (0.0, true),
            "terminal stays terminal"
        );
    }
}
