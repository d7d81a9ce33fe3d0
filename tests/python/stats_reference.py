"""Reference statistics from scipy for crates/repro-core/tests/it/stats.rs: reads a JSON list of cases (argv[1]),
prints a JSON list of results (mean, 95% t interval, Welch one-sided p, TOST p, one-sample
p of mean(a) > thr, Kendall τ-b of x and y where given)."""
import json
import sys

import numpy as np
from scipy import stats


def case(c):
    a, b, m = np.array(c["a"]), np.array(c["b"]), c["margin"]
    lo, hi = stats.t.interval(0.95, len(a) - 1, loc=a.mean(), scale=stats.sem(a))
    w = stats.ttest_ind(a, b, equal_var=False, alternative="less")
    up = stats.ttest_ind(a - m, b, equal_var=False, alternative="less").pvalue
    low = stats.ttest_ind(a + m, b, equal_var=False, alternative="greater").pvalue
    one = stats.ttest_1samp(a, c.get("thr", 0.0), alternative="greater").pvalue
    tau = stats.kendalltau(c["x"], c["y"]).statistic if "x" in c else None
    return {"mean": a.mean(), "ci": [lo, hi], "t": w.statistic, "df": w.df,
            "p_less": w.pvalue, "tost": max(up, low), "tau": tau, "one": one}


print(json.dumps([case(c) for c in json.loads(sys.argv[1])]))
