//! The `dqn` stage end to end (acting, replay, updates, evaluation), as one fused group of N
//! members against N solo runs, on the same core: the real stage code (`Dqn::run_fused` and
//! `Dqn::run`), MinAtar Breakout with the smoke profile's schedule scaled by `frames` (the replay
//! memory fills at 1/5 of the frames, then one update per step), members differing in seed,
//! variant and λ as a sweep's do. Each invocation is one process, so its peak resident memory
//! (`VmHWM`) is that of what it ran alone.
//!
//!   bench_fused_dqn fused <N> <frames>     one group of N members
//!   bench_fused_dqn solo <N> <frames>      the first min(N, 5) of the N as solo runs, one after
//!                                          another (a solo run's rate does not depend on N)
//!
//! Prints one JSON line: {"mode", "members", "frames", "seconds", "updates_per_s" (member
//! updates, all members together), "env_steps_per_s" (agent steps, all members together),
//! "peak_rss_mib", "act_update_eval_seconds"}. `scripts/bench.py --only fuse` runs both modes per N and reports the ratios.

mod common;

use std::time::Instant;

use anyhow::{Context, bail};
use serde_json::{Map, Value, json};

use repro_core::pipeline::kinds::{DQN, DqnParams};
use repro_core::pipeline::progress::Progress;
use repro_torch::train::progress::ProgressOut;
use repro_torch::train::rl::Dqn;
use repro_torch::train::{Fused, MemberContext, Stage, StageContext};

/// Solo runs timed at most: N solo workers on one core take N times one's time.
const SOLO_RUNS: usize = 5;

const USAGE: &str = "usage: bench_fused_dqn fused|solo <members> <frames>";
const VARIANTS: [&str; 5] = [
    "adam_l2",
    "adamw",
    "l2_in_m",
    "adaptive_decoupled",
    "adaptive_decoupled_stable",
];

/// Member `i`'s parameters: the kind's defaults, the smoke schedule scaled to `frames`, and the
/// sweep's coordinates.
fn params(i: usize, frames: u64) -> anyhow::Result<(Map<String, Value>, DqnParams)> {
    let mut m = Map::new();
    for s in DQN.params {
        if let Some(d) = s.default_value() {
            m.insert(s.name.into(), d);
        }
    }
    let min_replay = (frames / 5).max(32);
    let weight_decay = [0.0, 1e-3, 1e-1][i % 3];
    let set = json!({
        "env": "minatar", "game": "breakout", "model": "minatar", "history": 1,
        "frames": frames, "iteration_steps": frames, "eval_steps": 300,
        "replay_capacity": frames, "min_replay": min_replay, "epsilon_decay_steps": frames,
        "target_update": 200, "batch_size": 32, "update_every": 1, "eps": 1.5e-4,
        "drown_out_every": 50, "lr": 2.5e-4,
        "variant": VARIANTS[i % VARIANTS.len()],
        "weight_decay": weight_decay, "seed": i,
    });
    for (k, v) in set.as_object().expect("an object") {
        m.insert(k.clone(), v.clone());
    }
    let p = serde_json::from_value(Value::Object(m.clone())).context("the dqn parameters")?;
    Ok((m, p))
}

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [mode, n, frames] = args.as_slice() else {
        bail!("{USAGE}");
    };
    let n = common::int("members", n, 1)? as usize;
    let frames = common::int("frames", frames, 100)? as u64;
    let device = common::device()?;
    let dir = tempfile::tempdir()?;
    let emit = |_: &Progress| {};
    let (params_map, datasets) = (Map::new(), Default::default());
    let ctx = |out: std::path::PathBuf| StageContext {
        run_id: "bench",
        params: &params_map,
        datasets: &datasets,
        upstream: &[],
        out_dir: out,
        device,
        precision: Default::default(),
        progress: ProgressOut {
            emit: &emit,
            every: std::time::Duration::from_secs(3600),
            started: Instant::now(),
        },
        checkpoints: None,
    };
    let members: Vec<DqnParams> = (0..n)
        .map(|i| params(i, frames).map(|(_, p)| p))
        .collect::<anyhow::Result<_>>()?;
    let t0 = Instant::now();
    let outcomes = match mode.as_str() {
        "fused" => {
            let group: Vec<(MemberContext, DqnParams)> = members
                .into_iter()
                .enumerate()
                .map(|(i, p)| {
                    let out = dir.path().join(format!("{i:03}"));
                    std::fs::create_dir_all(&out)?;
                    Ok((
                        MemberContext {
                            run_id: "bench",
                            out_dir: out,
                        },
                        p,
                    ))
                })
                .collect::<anyhow::Result<_>>()?;
            Dqn::run_fused(&ctx(dir.path().to_path_buf()), &group)?
        }
        "solo" => {
            let mut out = Vec::new();
            for (i, p) in members.iter().enumerate().take(SOLO_RUNS) {
                let d = dir.path().join(format!("{i:03}"));
                std::fs::create_dir_all(&d)?;
                out.push(Dqn::run(&ctx(d), p)?);
            }
            out
        }
        _ => bail!("mode: expected fused or solo, got '{mode}'\n{USAGE}"),
    };
    let seconds = t0.elapsed().as_secs_f64();
    // Where the time went (summed over solo runs; a group's once): acting, updates, evaluation.
    let metric =
        |o: &repro_core::pipeline::stage::Outcome, k: &str| o.metrics[k].as_f64().unwrap_or(0.0);
    let mut split = [0.0; 3];
    let runs = if mode == "fused" { n } else { n.min(SOLO_RUNS) };
    for o in outcomes.iter().take(if mode == "fused" { 1 } else { runs }) {
        split[0] += frames as f64 / metric(o, "env_steps_per_s");
        split[1] += metric(o, "updates") / metric(o, "updates_per_s");
        split[2] += metric(o, "eval_seconds");
    }
    let updates: u64 = outcomes
        .iter()
        .map(|o| o.metrics["updates"].as_u64().unwrap_or(0))
        .sum();
    println!(
        "{}",
        json!({
            "mode": mode, "members": n, "frames": frames, "seconds": seconds,
            "updates_per_s": updates as f64 / seconds,
            "env_steps_per_s": (runs as u64 * frames) as f64 / seconds,
            "peak_rss_mib": common::peak_rss_mib(),
            "act_update_eval_seconds": split,
        })
    );
    Ok(())
}
