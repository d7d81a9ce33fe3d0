"""Reference for crates/repro-torch/tests/it/minatar.rs: the `minatar` package (1.0.15) itself, instrumented.

usage:
  minatar_reference.py trace GAME SEED EPISODES   one JSON object on stdout (below)
  minatar_reference.py ks GAME SEED EPISODES RUST.json
                                                  two-sample KS of episode length and return

`trace` runs EPISODES episodes of GAME under a uniform random policy (actions from
RandomState(SEED + 1), independent of the environment's stream) with the package's defaults
(sticky actions 0.1, difficulty ramping) after `seed(SEED)`, and records every draw the
environment makes from its RandomState, in order: {"u": x} for each value of `rand()` (an
array draw is recorded element by element), {"i": [low, high, value]} for each of `randint`.
Output: {"draws": [...], "episodes": [{"actions": [...], "rewards": [...],
"terminals": [...], "states": [...], "ramps": [...]}]}, where states[0] is the state after
reset and states[t + 1] the state after action t, each as a string of '0'/'1' in channel-major
(C×10×10) order, and ramps[t] the game's difficulty_ramp() after action t (null where none).

`ks` runs EPISODES episodes the same way without recording and compares their lengths and
returns with RUST.json ({"lengths": [...], "returns": [...]}) by scipy.stats.ks_2samp; prints
{"length_p": p, "return_p": p, "reference_lengths": [...], "reference_returns": [...]}.
"""
import json
import sys

import numpy as np
from scipy.stats import ks_2samp
from minatar import Environment


class Recorder:
    """A RandomState that logs what it hands out."""

    def __init__(self, seed, log):
        self.rs = np.random.RandomState(seed)
        self.log = log

    def rand(self, *size):
        x = self.rs.rand(*size)
        if self.log is not None:
            for v in np.ravel(x):
                self.log.append({"u": float(v)})
        return x

    def randint(self, low, high=None, size=None):
        x = self.rs.randint(low, high, size)
        if self.log is not None:
            lo, hi = (0, low) if high is None else (low, high)
            for v in np.ravel(x):
                self.log.append({"i": [int(lo), int(hi), int(v)]})
        return x


def environment(game, seed, log):
    env = Environment(game)
    env.random = Recorder(seed, log)
    env.env.random = env.random
    return env


def bits(state):
    return "".join("1" if b else "0" for b in np.transpose(state, (2, 0, 1)).ravel())


def episodes(game, seed, n, record):
    log = [] if record else None
    env = environment(game, seed, log)
    policy = np.random.RandomState(seed + 1)
    out = []
    for _ in range(n):
        env.reset()
        ep = {"actions": [], "rewards": [], "terminals": [], "states": [], "ramps": []}
        if record:
            ep["states"].append(bits(env.state()))
        terminal = False
        while not terminal:
            a = int(policy.randint(6))
            r, terminal = env.act(a)
            ep["actions"].append(a)
            ep["rewards"].append(float(r))
            ep["terminals"].append(bool(terminal))
            if record:
                ep["states"].append(bits(env.state()))
                ramp = env.env.difficulty_ramp()
                ep["ramps"].append(None if ramp is None else int(ramp))
        out.append(ep)
    return out, log


def main():
    mode, game, seed, n = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
    if mode == "trace":
        eps, log = episodes(game, seed, n, record=True)
        json.dump({"draws": log, "episodes": eps}, sys.stdout)
    elif mode == "ks":
        with open(sys.argv[5]) as f:
            rust = json.load(f)
        eps, _ = episodes(game, seed, n, record=False)
        lengths = [len(e["actions"]) for e in eps]
        returns = [sum(e["rewards"]) for e in eps]
        json.dump({
            "length_p": float(ks_2samp(lengths, rust["lengths"]).pvalue),
            "return_p": float(ks_2samp(returns, rust["returns"]).pvalue),
            "reference_lengths": lengths,
            "reference_returns": returns,
        }, sys.stdout)
    else:
        sys.exit(f"unknown mode {mode!r}: trace or ks")


if __name__ == "__main__":
    main()
