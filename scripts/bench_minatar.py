"""The reference side of scripts/bench.py: crates/repro-torch/examples/bench_minatar.rs's loop on the
`minatar` package (1.0.15) itself. A uniform random policy (numpy RandomState(1); the
environment seeded 0) steps each game with the package's defaults (sticky actions 0.1,
ramping), reading env.state() after every step and resetting at each terminal.

usage: bench_minatar.py STEPS [GAME ...]      (all five games when none is named)

Prints one JSON line per game: {"game", "steps", "seconds", "steps_per_s"}.
"""
import json
import logging
import sys
import time

logging.disable(logging.WARNING)  # minatar warns that it cannot plot without matplotlib

import numpy as np  # noqa: E402
from minatar import Environment  # noqa: E402

GAMES = ["asterix", "breakout", "freeway", "seaquest", "space_invaders"]


def bench(game, steps):
    env = Environment(game)
    env.seed(0)
    policy = np.random.RandomState(1)
    start = time.perf_counter()
    env.reset()
    env.state()
    for _ in range(steps):
        _, terminal = env.act(policy.randint(6))
        env.state()
        if terminal:
            env.reset()
            env.state()
    seconds = time.perf_counter() - start
    return {"game": game, "steps": steps, "seconds": seconds, "steps_per_s": steps / seconds}


def main():
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    steps = int(sys.argv[1])
    for game in sys.argv[2:] or GAMES:
        print(json.dumps(bench(game, steps)), flush=True)


if __name__ == "__main__":
    main()
