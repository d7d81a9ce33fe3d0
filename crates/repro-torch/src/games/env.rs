//! What an RL environment is to the trainer: the [`Env`] trait and one [`Step`] of it.

/// An episodic environment with a discrete action set and a fixed-shape uint8 observation.
pub trait Env: Send {
    /// Observation shape as (channels, height, width) of one frame; the agent stacks frames
    /// itself when it wants a history.
    fn frame_shape(&self) -> [usize; 3];
    /// Number of actions the agent chooses from.
    fn num_actions(&self) -> usize;
    /// Start a new episode.
    fn reset(&mut self);
    /// Apply `action` (in `0..num_actions()`); returns the reward and whether the episode ended.
    fn step(&mut self, action: usize) -> Step;
    /// Write the current frame, channel-major (C×H×W), into `out` (`len` = C·H·W).
    fn frame(&self, out: &mut [u8]);
}

/// What one environment step returned.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Step {
    pub reward: f32,
    /// The episode ended for real (game over): the agent does not bootstrap past this step.
    pub terminal: bool,
    /// The episode was cut off by a step limit the environment imposes (Atari's 27,000 agent
    /// steps, dopamine's `max_steps_per_episode`) without being over: the caller resets, but the
    /// transition is not terminal (dopamine stores it with `terminal = False`). Never set together
    /// with `terminal`. MinAtar has no such limit and always says `false`.
    pub truncated: bool,
}
