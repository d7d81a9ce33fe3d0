//! Environment throughput of the five MinAtar games: a uniform random policy (ChaCha8 seeded 1;
//! the game's draws seeded 0) steps each game through `Environment<Seeded>` with the package's
//! defaults (sticky actions 0.1, ramping), reading `state()` after every step as an agent does
//! and resetting at each terminal. `scripts/bench.py` runs it beside
//! `scripts/bench_minatar.py` (the same loop on the `minatar` package) and reports the ratio.
//!
//!   bench_minatar <steps> [game ...]      (all five games when none is named)
//!
//! Prints one JSON line per game: {"game", "steps", "seconds", "steps_per_s"}.

use std::hint::black_box;
use std::str::FromStr;
use std::time::Instant;

use anyhow::Context;
use rand::{Rng, SeedableRng};
use repro_torch::games::minatar::{Environment, GameName, NUM_ACTIONS, Seeded};

const USAGE: &str = "usage: bench_minatar <steps> [game ...]";

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let Some((steps, games)) = args.split_first() else {
        anyhow::bail!("{USAGE}");
    };
    let steps: u64 = steps
        .parse()
        .with_context(|| format!("steps: expected a positive integer, got '{steps}'\n{USAGE}"))?;
    anyhow::ensure!(steps > 0, "steps: expected a positive integer\n{USAGE}");
    let games: Vec<GameName> = if games.is_empty() {
        GameName::ALL.to_vec()
    } else {
        games
            .iter()
            .map(|g| GameName::from_str(g).map_err(anyhow::Error::msg))
            .collect::<anyhow::Result<_>>()?
    };

    for game in games {
        let mut env = Environment::new(game, 0.1, true, Seeded::new(0));
        let mut policy = rand_chacha::ChaCha8Rng::seed_from_u64(1);
        let start = Instant::now();
        env.reset();
        black_box(env.state());
        for _ in 0..steps {
            let (_, terminal) = env.act(policy.random_range(0..NUM_ACTIONS));
            black_box(env.state());
            if terminal {
                env.reset();
                black_box(env.state());
            }
        }
        let seconds = start.elapsed().as_secs_f64();
        println!(
            "{}",
            serde_json::json!({
                "game": game.as_str(),
                "steps": steps,
                "seconds": seconds,
                "steps_per_s": steps as f64 / seconds,
            })
        );
    }
    Ok(())
}
