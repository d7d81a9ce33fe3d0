//! MinAtar parity against the reference package (`minatar` 1.0.15, in the test venv): with the
//! reference's own random draws replayed, every observation, reward, terminal flag and
//! difficulty level of random-policy episodes is identical; with our own seeded draws, episode
//! lengths and returns over 1,000 random-policy episodes are indistinguishable from the
//! reference's (two-sample KS, p > 0.01).

use std::str::FromStr;

use repro_torch::games::minatar::{Draw, Environment, GameName, Replay, Seeded};
use serde_json::Value;

use repro_testkit::run_script;

/// Replays the reference's draws for `episodes` episodes of `game` from `seed` and demands
/// identical trajectories.
fn assert_trace_parity(game: &str, seed: u64, episodes: usize) {
    let trace: Value = serde_json::from_str(&run_script(
        "minatar_reference.py",
        &["trace", game, &seed.to_string(), &episodes.to_string()],
    ))
    .expect("the reference's trace is JSON");
    let draws = trace["draws"].as_array().unwrap().iter().map(|d| {
        if let Some(u) = d.get("u") {
            Draw::Uniform(u.as_f64().unwrap())
        } else {
            let i = d["i"].as_array().unwrap();
            let n = |k: usize| i[k].as_i64().unwrap();
            Draw::Int {
                low: n(0),
                high: n(1),
                value: n(2),
            }
        }
    });
    let name = GameName::from_str(game).unwrap();
    let mut env = Environment::new(name, 0.1, true, Replay::new(draws));
    let mut steps = 0;
    for (e, ep) in trace["episodes"].as_array().unwrap().iter().enumerate() {
        env.reset();
        let states = ep["states"].as_array().unwrap();
        assert_eq!(
            bits(&env),
            states[0],
            "{game} episode {e}: the state after reset differs"
        );
        for (t, a) in ep["actions"].as_array().unwrap().iter().enumerate() {
            let (reward, terminal) = env.act(a.as_u64().unwrap() as usize);
            let at = format!("{game} episode {e} step {t}");
            assert_eq!(
                reward as f64,
                ep["rewards"][t].as_f64().unwrap(),
                "{at}: reward"
            );
            assert_eq!(
                terminal,
                ep["terminals"][t].as_bool().unwrap(),
                "{at}: terminal"
            );
            assert_eq!(bits(&env), states[t + 1], "{at}: state");
            assert_eq!(
                env.game().difficulty_ramp(),
                ep["ramps"][t].as_i64(),
                "{at}: difficulty ramp"
            );
            steps += 1;
        }
    }
    assert_eq!(
        env.rng().remaining(),
        0,
        "{game}: the reference drew more than we did"
    );
    assert!(
        steps > episodes,
        "{game}: the trace is too short to mean anything"
    );
}

fn bits(env: &Environment<Replay>) -> String {
    env.state()
        .as_chw()
        .iter()
        .map(|&b| if b != 0 { '1' } else { '0' })
        .collect()
}

/// Episode lengths and returns of `episodes` random-policy episodes with our own draws,
/// compared with the reference's by two-sample KS.
fn assert_same_distribution(game: &str, episodes: usize) {
    use rand::{Rng, SeedableRng};
    let name = GameName::from_str(game).unwrap();
    let mut env = Environment::new(name, 0.1, true, Seeded::new(11));
    let mut policy = rand_chacha::ChaCha8Rng::seed_from_u64(12);
    let (mut lengths, mut returns) = (Vec::new(), Vec::new());
    for _ in 0..episodes {
        env.reset();
        let (mut length, mut ret, mut terminal) = (0u64, 0.0f64, false);
        while !terminal {
            let (r, t) = env.act(policy.random_range(0..6));
            (length, ret, terminal) = (length + 1, ret + r as f64, t);
        }
        lengths.push(length);
        returns.push(ret);
    }
    let dir = tempfile::tempdir().unwrap();
    let ours = dir.path().join("ours.json");
    std::fs::write(
        &ours,
        serde_json::json!({"lengths": lengths, "returns": returns}).to_string(),
    )
    .unwrap();
    let ks: Value = serde_json::from_str(&run_script(
        "minatar_reference.py",
        &[
            "ks",
            game,
            "5",
            &episodes.to_string(),
            ours.to_str().unwrap(),
        ],
    ))
    .unwrap();
    let mean = |v: &Value| {
        let v = v.as_array().unwrap();
        v.iter().map(|x| x.as_f64().unwrap()).sum::<f64>() / v.len() as f64
    };
    for (what, p, theirs, ours) in [
        (
            "length",
            &ks["length_p"],
            &ks["reference_lengths"],
            &serde_json::json!(lengths),
        ),
        (
            "return",
            &ks["return_p"],
            &ks["reference_returns"],
            &serde_json::json!(returns),
        ),
    ] {
        let p = p.as_f64().unwrap();
        assert!(
            p > 0.01,
            "{game}: episode {what}s differ from the reference's (KS p = {p:.2e}; mean {:.3} \
             here, {:.3} there)",
            mean(ours),
            mean(theirs)
        );
    }
}

macro_rules! parity {
    ($game:ident) => {
        mod $game {
            #[test]
            fn replayed_draws_give_the_references_trajectories() {
                for seed in [0, 1, 2] {
                    super::assert_trace_parity(stringify!($game), seed, 5);
                }
            }

            #[test]
            fn seeded_episodes_are_distributed_as_the_references() {
                super::assert_same_distribution(stringify!($game), 1000);
            }
        }
    };
}

parity!(breakout);
parity!(seaquest);
parity!(space_invaders);
parity!(asterix);
parity!(freeway);
