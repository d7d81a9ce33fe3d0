//! Reinforcement-learning environments, the games (docs/paper.md#e6): MinAtar's five games
//! written in Rust (`minatar`) and, behind the `atari` cargo feature, Atari 2600 games through the
//! Arcade Learning Environment. The DQN stage (`train::rl`) sees them only through [`Env`].

#[cfg(feature = "atari")]
pub mod atari;
pub mod minatar;
pub mod screen;

pub use repro_core::pipeline::kinds::Suite;

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

/// Which environment a stage runs, as its parameters name it.
#[derive(Debug, Clone)]
pub struct EnvSpec {
    pub suite: Suite,
    /// The game: one of MinAtar's five (`breakout`, …) or an Atari ROM name (`pong`, …).
    pub game: String,
    pub sticky_action_prob: f64,
    /// MinAtar's difficulty ramping (ignored by Atari).
    pub ramping: bool,
    /// Where the Atari ROMs are (the `atari-roms` dataset).
    pub rom_dir: Option<std::path::PathBuf>,
}

/// Build the environment `spec` names, its randomness seeded by `seed`.
pub fn make(spec: &EnvSpec, seed: u64) -> anyhow::Result<Box<dyn Env>> {
    match spec.suite {
        Suite::MinAtar => {
            let game: minatar::GameName = spec.game.parse().map_err(anyhow::Error::msg)?;
            Ok(Box::new(minatar::Environment::new(
                game,
                spec.sticky_action_prob,
                spec.ramping,
                minatar::Seeded::new(seed),
            )))
        }
        Suite::Atari => make_atari(spec, seed),
    }
}

/// The step limit is the trainer's (`max_episode_steps`), so ALE's own is off here.
#[cfg(feature = "atari")]
fn make_atari(spec: &EnvSpec, seed: u64) -> anyhow::Result<Box<dyn Env>> {
    let roms = spec.rom_dir.as_deref().ok_or_else(|| {
        anyhow::anyhow!(
            "Atari game {:?} needs the `atari-roms` dataset: list it under the experiment's \
             `datasets:`",
            spec.game
        )
    })?;
    let config = atari::AtariConfig {
        repeat_action_probability: spec.sticky_action_prob as f32,
        max_episode_steps: None,
        ..Default::default()
    };
    Ok(Box::new(atari::AtariEnv::new(
        &spec.game, roms, seed, config,
    )?))
}

#[cfg(not(feature = "atari"))]
fn make_atari(spec: &EnvSpec, _seed: u64) -> anyhow::Result<Box<dyn Env>> {
    anyhow::bail!(
        "Atari game {:?}: this build has no Arcade Learning Environment; build with \
         `cargo build --release -p repro-worker --features atari` (ALE is GPL-2.0, so it is opt-in)",
        spec.game
    )
}
