//! DQN's uniform replay memory with frame sharing (dopamine's OutOfGraphReplayBuffer): each
//! agent step stores one frame (the observation the action was chosen on), the action, the
//! clipped reward and two flags, in circular arrays; a state of `history` frames is rebuilt at
//! sampling time from consecutive slots, so stacks are never stored twice. 1M Atari steps are
//! 1M × 84 × 84 bytes ≈ 7.1 GB of frames.
//!
//! Frames before the start of the sampled step's episode are zeros (dopamine pads the same way).
//! A step can be sampled when its next frame is stored (it is not the newest), its history lies
//! in memory, and it did not end an episode by truncation (no next state to bootstrap from, and
//! not terminal either). Sampling is by rejection, as dopamine's.

use rand::Rng;
use rand_chacha::ChaCha8Rng;

/// One sampled minibatch, host-side: `states`/`next_states` are B × (history·C) × H × W bytes.
pub struct Batch {
    pub states: Vec<u8>,
    pub actions: Vec<i64>,
    pub rewards: Vec<f32>,
    pub next_states: Vec<u8>,
    /// 1.0 where the step ended the episode by game over (no bootstrap).
    pub terminals: Vec<f32>,
}

pub struct Replay {
    capacity: usize,
    history: usize,
    frame_len: usize,
    frames: Vec<u8>,
    actions: Vec<u8>,
    rewards: Vec<f32>,
    terminal: Vec<bool>,
    /// The episode ended at this step (terminal or truncated).
    episode_end: Vec<bool>,
    /// Steps stored since the start (the slot of step t is t mod capacity).
    added: u64,
}

impl Replay {
    /// `frame_len` bytes per frame; `history` frames per state.
    pub fn new(capacity: usize, history: usize, frame_len: usize) -> Replay {
        assert!(capacity > history && history >= 1 && frame_len >= 1);
        Replay {
            capacity,
            history,
            frame_len,
            // vec! of zeros is calloc: pages are touched only as steps are stored.
            frames: vec![0; capacity * frame_len],
            actions: vec![0; capacity],
            rewards: vec![0.0; capacity],
            terminal: vec![false; capacity],
            episode_end: vec![false; capacity],
            added: 0,
        }
    }

    /// Steps held now (at most the capacity).
    pub fn len(&self) -> usize {
        self.added.min(self.capacity as u64) as usize
    }

    pub fn is_empty(&self) -> bool {
        self.added == 0
    }

    /// Store one step: the frame the action was taken on, and what followed.
    pub fn add(&mut self, frame: &[u8], action: usize, reward: f32, terminal: bool, end: bool) {
        assert_eq!(frame.len(), self.frame_len);
        let slot = (self.added % self.capacity as u64) as usize;
        self.frames[slot * self.frame_len..(slot + 1) * self.frame_len].copy_from_slice(frame);
        self.actions[slot] = u8::try_from(action).expect("fewer than 256 actions");
        self.rewards[slot] = reward;
        self.terminal[slot] = terminal;
        self.episode_end[slot] = end || terminal;
        self.added += 1;
    }

    fn slot(&self, t: u64) -> usize {
        (t % self.capacity as u64) as usize
    }

    /// Whether step `t` (counted from the start) can be sampled.
    fn valid(&self, t: u64) -> bool {
        let oldest = self.added - self.len() as u64;
        let history_in_memory = t >= oldest + self.history as u64 - 1 || oldest == 0;
        let s = self.slot(t);
        t >= oldest
            && t + 1 < self.added
            && history_in_memory
            && (!self.episode_end[s] || self.terminal[s])
    }

    /// Write the state ending at step `t` (its `history` frames, oldest first, zeros before
    /// the episode's start) into `out`.
    fn stack_into(&self, t: u64, out: &mut [u8]) {
        let (h, n) = (self.history, self.frame_len);
        out.fill(0);
        for k in 0..h as u64 {
            // k = 0 is the newest frame, written last in the stack.
            let Some(step) = t.checked_sub(k) else { break };
            if k > 0 && self.episode_end[self.slot(step)] {
                break; // an earlier episode
            }
            let dst = (h - 1 - k as usize) * n;
            let src = self.slot(step) * n;
            out[dst..dst + n].copy_from_slice(&self.frames[src..src + n]);
        }
    }

    /// `batch` steps drawn uniformly (with replacement) among the valid ones; an error when
    /// 1000 draws in a row find none (a memory too small for its history, say).
    pub fn sample(&self, batch: usize, rng: &mut ChaCha8Rng) -> anyhow::Result<Batch> {
        let state_len = self.history * self.frame_len;
        let mut out = Batch {
            states: vec![0; batch * state_len],
            actions: Vec::with_capacity(batch),
            rewards: Vec::with_capacity(batch),
            next_states: vec![0; batch * state_len],
            terminals: Vec::with_capacity(batch),
        };
        let oldest = self.added - self.len() as u64;
        for i in 0..batch {
            let Some(t) = (0..1000)
                .map(|_| rng.random_range(oldest..self.added))
                .find(|&t| self.valid(t))
            else {
                anyhow::bail!(
                    "the replay memory ({} steps, history {}) has no step to sample",
                    self.len(),
                    self.history
                );
            };
            let range = i * state_len..(i + 1) * state_len;
            self.stack_into(t, &mut out.states[range.clone()]);
            self.stack_into(t + 1, &mut out.next_states[range]);
            let s = self.slot(t);
            out.actions.push(self.actions[s] as i64);
            out.rewards.push(self.rewards[s]);
            out.terminals.push(if self.terminal[s] { 1.0 } else { 0.0 });
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    /// Frames of one byte holding the step number, so stacks show which steps they hold.
    fn filled(capacity: usize, history: usize, steps: &[(bool, bool)]) -> Replay {
        let mut r = Replay::new(capacity, history, 1);
        for (t, &(terminal, end)) in steps.iter().enumerate() {
            r.add(&[t as u8 + 1], t % 3, t as f32, terminal, end);
        }
        r
    }

    fn stack(r: &Replay, t: u64) -> Vec<u8> {
        let mut out = vec![9; r.history];
        r.stack_into(t, &mut out);
        out
    }

    #[test]
    fn stacks_share_frames_and_zero_the_previous_episode() {
        // Steps 0..=2 one episode (terminal at 2), 3.. the next.
        let r = filled(
            10,
            3,
            &[(false, false), (false, false), (true, true), (false, false)],
        );
        assert_eq!(stack(&r, 1), [0, 1, 2]);
        assert_eq!(stack(&r, 2), [1, 2, 3]);
        assert_eq!(stack(&r, 3), [0, 0, 4], "a new episode starts from zeros");
    }

    #[test]
    fn validity_excludes_the_newest_truncated_ends_and_overwritten_history() {
        let steps = [
            (false, false),
            (false, true),
            (false, false),
            (true, true),
            (false, false),
        ];
        let r = filled(10, 2, &steps);
        let valid: Vec<bool> = (0..5).map(|t| r.valid(t)).collect();
        // 1 was truncated (no next state), 3 is terminal (masked, so fine), 4 is the newest.
        assert_eq!(valid, [true, false, true, true, false]);

        // Capacity 4 after 6 steps holds steps 2..=5; step 2's history (step 1) is gone.
        let r = filled(4, 2, &[(false, false); 6]);
        let valid: Vec<bool> = (0..6).map(|t| r.valid(t)).collect();
        assert_eq!(valid, [false, false, false, true, true, false]);
        assert_eq!(stack(&r, 4), [4, 5]);
    }

    #[test]
    fn samples_are_valid_transitions_with_their_successor() {
        let steps: Vec<(bool, bool)> = (0..50).map(|t| (t % 7 == 6, t % 7 == 6)).collect();
        let r = filled(32, 2, &steps);
        let mut rng = ChaCha8Rng::seed_from_u64(0);
        let b = r.sample(200, &mut rng).unwrap();
        for i in 0..200 {
            let (s, n) = (
                &b.states[2 * i..2 * i + 2],
                &b.next_states[2 * i..2 * i + 2],
            );
            let t = s[1] as u64 - 1;
            assert!(r.valid(t), "sampled an invalid step {t}");
            assert_eq!(b.rewards[i], t as f32);
            assert_eq!(b.actions[i], (t % 3) as i64);
            assert_eq!(b.terminals[i] == 1.0, t % 7 == 6);
            assert_eq!(n[1] as u64, t + 2, "the next state ends at the next frame");
            if t % 7 != 6 {
                assert_eq!(n[0], s[1], "consecutive states share a frame");
            }
        }
        let again = r.sample(200, &mut ChaCha8Rng::seed_from_u64(0)).unwrap();
        assert_eq!(again.states, b.states, "seeded sampling repeats");
    }
}
