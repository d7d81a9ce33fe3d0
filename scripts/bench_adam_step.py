"""Optimizer step time alone of torch.optim's Adam, AdamW and SGD (weight_decay=1e-2, lr=1e-3) over a fixed parameter
set with fixed random gradients: the baseline that crates/repro-torch/examples/bench_adam_step.rs (repro's V1–V5) is
compared with in scripts/bench.py. REPRO_BENCH_DEVICE picks the device (bench_common.py).

    bench_adam_step.py <shapes> <threads> <warmup> <steps> <repeats> [<expected params>]

`shapes` is the same string the Rust side gets (comma-separated shapes, dimensions joined by `x`).
Rows, each a fresh optimizer over parameters reset to their initial values:
  adam_single   Adam(foreach=False): the single-tensor path (what repro's per-tensor loop mirrors)
  adam_foreach  Adam(foreach=True): the multi-tensor kernels
  adam_fused    Adam(fused=True): torch's fused CPU kernel
  adamw_single  AdamW(foreach=False): the baseline of repro's V2
  sgd_single    SGD(momentum=0.9, foreach=False): the baseline of repro's SGD
  sgd_foreach   SGD(momentum=0.9, foreach=True)

torch.optim.Adam() left to its default takes the single-tensor path on CPU (its foreach default
covers only CUDA-like devices); the script checks that and prints `default_path single`.

Prints `params <count> tensors <n>` first (with an expected count, repro's, a different one is an
error before any timing), `default_path ...`, then per repeat one line per row:
`<row> ms <median> cpu_ms <median>` (wall clock and the process's CPU time), the median over `steps` timed steps after `warmup` untimed ones.
"""
import statistics
import sys

import torch
import bench_common
from torch.optim.optimizer import _default_to_fused_or_foreach

LR = 1e-3
WEIGHT_DECAY = 1e-2
ROWS = {
    "adam_single": (torch.optim.Adam, {"foreach": False}),
    "adam_foreach": (torch.optim.Adam, {"foreach": True}),
    "adam_fused": (torch.optim.Adam, {"fused": True}),
    "adamw_single": (torch.optim.AdamW, {"foreach": False}),
    "sgd_single": (torch.optim.SGD, {"foreach": False, "momentum": 0.9}),
    "sgd_foreach": (torch.optim.SGD, {"foreach": True, "momentum": 0.9}),
}


def parse_shapes(s):
    shapes = []
    for shape in s.split(","):
        dims = []
        for d in shape.split("x"):
            if not d.strip().isdigit() or int(d) < 1:
                raise SystemExit(
                    f"shapes: dimension in '{shape}': expected an integer ≥ 1, got '{d}'"
                )
            dims.append(int(d))
        shapes.append(dims)
    return shapes


def main(argv):
    if len(argv) not in (5, 6):
        raise SystemExit(__doc__ + f"\n(got {len(argv)} arguments, expected 5 or 6)")
    shapes = parse_shapes(argv[0])
    threads, warmup, steps, repeats = (int(a) for a in argv[1:5])
    torch.set_num_threads(threads)
    dev = bench_common.device()
    torch.manual_seed(0)
    init = [torch.randn(s, device=dev) for s in shapes]
    grads = [torch.randn(s, device=dev) for s in shapes]
    params = [torch.nn.Parameter(t.clone()) for t in init]
    for p, g in zip(params, grads):
        p.grad = g
    count = sum(p.numel() for p in params)
    print(f"params {count} tensors {len(params)}", flush=True)
    if len(argv) == 6 and count != int(argv[5]):
        raise SystemExit(f"params: PyTorch's set has {count} parameters, repro's {argv[5]}")
    fused, foreach = _default_to_fused_or_foreach(params, differentiable=False, use_fused=False)
    path = "fused" if fused else "foreach" if foreach else "single"
    print(f"default_path {path}", flush=True)
    for _ in range(repeats):
        for name, (cls, kwargs) in ROWS.items():
            with torch.no_grad():
                for p, p0 in zip(params, init):
                    p.copy_(p0)
            opt = cls(params, lr=LR, weight_decay=WEIGHT_DECAY, **kwargs)
            times, cpu_times = [], []
            for i in range(warmup + steps):
                wall, cpu = bench_common.timed(dev, opt.step)
                if i >= warmup:
                    times.append(wall * 1e3)
                    cpu_times.append(cpu * 1e3)
            wall, cpu = statistics.median(times), statistics.median(cpu_times)
            print(f"{name} ms {wall:.3f} cpu_ms {cpu:.3f}", flush=True)
            del opt


if __name__ == "__main__":
    main(sys.argv[1:])
