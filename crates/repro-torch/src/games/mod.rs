//! Reinforcement-learning environments, the games (docs/paper.md#e6): MinAtar's five games
//! written in Rust (`minatar`) and, behind the `atari` cargo feature, Atari 2600 games through the
//! Arcade Learning Environment. The DQN stage (`train::rl`) sees them only through [`Env`].

#[cfg(feature = "atari")]
pub mod atari;
pub mod env;
pub mod minatar;
pub mod screen;

pub use env::{Env, Step};
pub use repro_core::pipeline::kinds::Suite;

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
