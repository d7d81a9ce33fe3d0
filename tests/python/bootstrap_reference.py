"""Reference for the rliable-style aggregates in crates/repro-core/tests/it/stats.rs (numpy and scipy only).

usage: bootstrap_reference.py CASES.json

CASES.json: {"iqm": [[x...], ...], "bootstrap": [{"scores": [[run scores of task 0], ...],
"aggregate": "iqm" | "mean" | "median", "confidence": c, "indices": [replicate][task][run]}]}.
Prints {"iqm": [scipy.stats.trim_mean(x, 0.25), ...], "bootstrap": [{"point": p, "lo": l,
"hi": h, "replicates": [...]}]}: the aggregate of the scores, and np.percentile (linear) at
100(1 - c)/2 and 100(1 + c)/2 of the aggregates of the resampled scores, where replicate r puts
scores[t][indices[r][t][j]] in place of run j of task t.

The aggregates are rliable's (rliable/metrics.py): aggregate_iqm = trim_mean(scores, 0.25,
axis=None) of all scores pooled, aggregate_mean = mean of the per-task means, aggregate_median
= median of the per-task means. When every task has the same number of runs, the resampling and
the aggregates are done on rliable's (runs x tasks) matrix the way its StratifiedBootstrap
indexes it (scores[run_indices, task_indices]); otherwise task by task.
"""
import json
import sys

import numpy as np
from scipy import stats


def matrix_aggregate(name, m):  # m: (runs x tasks), rliable's layout
    if name == "iqm":
        return stats.trim_mean(m, proportiontocut=0.25, axis=None)
    task_means = np.mean(m, axis=0)
    return np.mean(task_means) if name == "mean" else np.median(task_means)


def ragged_aggregate(name, tasks):
    if name == "iqm":
        return stats.trim_mean(np.concatenate(tasks), proportiontocut=0.25)
    task_means = np.array([np.mean(t) for t in tasks])
    return np.mean(task_means) if name == "mean" else np.median(task_means)


def bootstrap(case):
    tasks = [np.asarray(t, dtype=np.float64) for t in case["scores"]]
    name, c = case["aggregate"], case["confidence"]
    if len({len(t) for t in tasks}) == 1:
        m = np.stack(tasks, axis=1)
        task_idx = np.arange(len(tasks))[None, :]
        point = matrix_aggregate(name, m)
        # indices[r] is (tasks x runs); rliable's run indices are (runs x tasks).
        reps = [matrix_aggregate(name, m[np.asarray(ix).T, task_idx]) for ix in case["indices"]]
    else:
        point = ragged_aggregate(name, tasks)
        reps = [ragged_aggregate(name, [t[np.asarray(i)] for t, i in zip(tasks, ix)])
                for ix in case["indices"]]
    reps = np.array(reps)
    lo, hi = np.percentile(reps, [100 * (1 - c) / 2, 100 * (1 + c) / 2])
    return {"point": float(point), "lo": float(lo), "hi": float(hi),
            "replicates": reps.tolist()}


cases = json.load(open(sys.argv[1]))
print(json.dumps({
    "iqm": [float(stats.trim_mean(np.asarray(x, dtype=np.float64), 0.25)) for x in cases["iqm"]],
    "bootstrap": [bootstrap(c) for c in cases["bootstrap"]],
}))
