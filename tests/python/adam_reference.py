"""Reference for crates/repro-torch/tests/it/optim.rs: the Adam family of docs/paper.md#e7 over a schedule of
(lr, weight_decay).

usage: adam_reference.py IN.npz OUT.npz

IN holds `betas` ([2]), `eps` (scalar), `schedule` ([steps, 2]: lr, weight_decay per step), `p{i}`
(initial parameters) and `g{t}_{i}` (the gradient of parameter i at step t; absent = no gradient).

OUT gets, for `torch_adam` (torch.optim.Adam(weight_decay=λ), V1) and `torch_adamw`
(torch.optim.AdamW(weight_decay=λ), V2), in the inputs' dtype: `{name}_p{i}` (final parameters),
`{name}_m{i}` / `{name}_v{i}` (exp_avg / exp_avg_sq, where torch has state). And for `ref_v1` ..
`ref_v5`, `ref_l2_out_of_m` and `ref_adaptive_decoupled_stable`, the same keys from the formulas
of docs/paper.md#e7 written out with plain tensor ops in float64 (independent of torch.optim's
order of operations), and when the inputs are not float64 also `refin_…`: the same formulas
evaluated in the inputs' dtype:

    r = λ·w;  m ← β₁m + (1−β₁)(g + a·r);  v ← β₂v + (1−β₂)(g + b·r)²
    m̂ = m/(1−β₁ᵗ);  v̂ = v/(1−β₂ᵗ);  d = √v̂ + ε
    w ← w − α·m̂/d − [plain] α·λ·w − [adaptive] α·λ·w/d              (w on the right: the step's start)
    w ← w/(1 + α·λ/d) − α·m̂/d                                        [adaptive implicit]
"""
import sys

import numpy as np
import torch

inp = np.load(sys.argv[1])
beta1, beta2 = (float(b) for b in inp["betas"])
eps = float(inp["eps"])
schedule = [(float(lr), float(wd)) for lr, wd in inp["schedule"]]
n = len([k for k in inp.files if k.startswith("p")])


def grad(t, i, dtype=None):
    key = f"g{t}_{i}"
    if key not in inp.files:
        return None
    g = torch.from_numpy(inp[key].copy())
    return g if dtype is None else g.to(dtype)


out = {}

for name, cls in (("torch_adam", torch.optim.Adam), ("torch_adamw", torch.optim.AdamW)):
    params = [torch.nn.Parameter(torch.from_numpy(inp[f"p{i}"].copy())) for i in range(n)]
    # foreach=False: the single-tensor path, whatever the device defaults would pick.
    opt = cls(params, lr=1e-3, betas=(beta1, beta2), eps=eps, weight_decay=0.0, foreach=False)
    for t, (lr, wd) in enumerate(schedule):
        for group in opt.param_groups:
            group["lr"] = lr
            group["weight_decay"] = wd
        for i, p in enumerate(params):
            p.grad = grad(t, i)
        opt.step()
    for i, p in enumerate(params):
        out[f"{name}_p{i}"] = p.detach().numpy()
        state = opt.state.get(p, {})
        if "exp_avg" in state:
            out[f"{name}_m{i}"] = state["exp_avg"].numpy()
            out[f"{name}_v{i}"] = state["exp_avg_sq"].numpy()

VARIANTS = {  # (a, b, mode)
    "v1": (1.0, 1.0, "none"),
    "v2": (0.0, 0.0, "plain"),
    "v3": (1.0, 0.0, "none"),
    "v4": (0.0, 1.0, "plain"),
    "v5": (0.0, 0.0, "adaptive"),
    "l2_out_of_m": (0.0, 1.0, "adaptive"),
    "adaptive_decoupled_stable": (0.0, 0.0, "adaptive_implicit"),
}
in_dtype = torch.from_numpy(inp["p0"].copy()).dtype
dtypes = {"ref": torch.float64}
if in_dtype != torch.float64:
    dtypes["refin"] = in_dtype
for label, (a, b, mode) in VARIANTS.items():
    for prefix, dtype in dtypes.items():
        ws = [torch.from_numpy(inp[f"p{i}"].copy()).to(dtype) for i in range(n)]
        ms = [torch.zeros_like(w) for w in ws]
        vs = [torch.zeros_like(w) for w in ws]
        steps = [0] * n
        for t, (lr, wd) in enumerate(schedule):
            for i in range(n):
                g = grad(t, i, dtype)
                if g is None:
                    continue
                steps[i] += 1
                s = steps[i]
                w = ws[i]
                r = wd * w
                ms[i] = beta1 * ms[i] + (1 - beta1) * (g + a * r)
                vs[i] = beta2 * vs[i] + (1 - beta2) * (g + b * r) ** 2
                m_hat = ms[i] / (1 - beta1**s)
                v_hat = vs[i] / (1 - beta2**s)
                d = torch.sqrt(v_hat) + eps
                if mode == "adaptive_implicit":
                    new = w / (1 + lr * wd / d) - lr * m_hat / d
                else:
                    new = w - lr * m_hat / d
                if mode == "plain":
                    new = new - lr * wd * w
                elif mode == "adaptive":
                    new = new - lr * wd * w / d
                ws[i] = new
        for i in range(n):
            out[f"{prefix}_{label}_p{i}"] = ws[i].numpy()
            if steps[i] > 0:
                out[f"{prefix}_{label}_m{i}"] = ms[i].numpy()
                out[f"{prefix}_{label}_v{i}"] = vs[i].numpy()

np.savez(sys.argv[2], **out)
print("ok", len(schedule), "steps", n, "params")
