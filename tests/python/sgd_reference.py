"""Reference for crates/repro-torch/tests/it/optim.rs: torch.optim.SGD over a schedule of (lr, weight_decay) steps.

usage: sgd_reference.py IN.npz OUT.npz

IN holds `momentum` (scalar), `schedule` ([steps, 2]: lr, weight_decay per step), `p{i}` (initial
parameters) and `g{t}_{i}` (the gradient of parameter i at step t; absent = no gradient that step).
OUT gets `p{i}` (final parameters) and `buf{i}` (final momentum buffers, where torch has one).
"""
import sys

import numpy as np
import torch

inp = np.load(sys.argv[1])
momentum = float(inp["momentum"])
schedule = inp["schedule"]
n = len([k for k in inp.files if k.startswith("p")])
params = [torch.nn.Parameter(torch.from_numpy(inp[f"p{i}"].copy())) for i in range(n)]
opt = torch.optim.SGD(params, lr=0.1, momentum=momentum, weight_decay=0.0)
for t, (lr, wd) in enumerate(schedule):
    for g in opt.param_groups:
        g["lr"] = float(lr)
        g["weight_decay"] = float(wd)
    for i, p in enumerate(params):
        key = f"g{t}_{i}"
        p.grad = torch.from_numpy(inp[key].copy()) if key in inp.files else None
    opt.step()

out = {f"p{i}": p.detach().numpy() for i, p in enumerate(params)}
for i, p in enumerate(params):
    state = opt.state.get(p, {})
    if state.get("momentum_buffer") is not None:
        out[f"buf{i}"] = state["momentum_buffer"].numpy()
np.savez(sys.argv[2], **out)
print("ok", len(schedule), "steps", n, "params")
