"""DQN updates/s in PyTorch eager: the baseline crates/repro-torch/examples/bench_dqn_update.rs is compared with in
scripts/bench.py. The nets are the test suite's twins (tests/python/dqn_reference.py); the
update is the same: Q(s, a), the target net's max for r + γ(1 − terminal)·max Q', Huber loss
(mean, δ 1), zero_grad, backward, the gradient norm, torch.optim.AdamW(lr 2.5e-4, eps 1.5e-4,
weight_decay 1e-2) on its single-tensor path (as repro's per-tensor loop), the loss read back.

    bench_dqn_update.py <minatar|nature> <C> <H> <W> <actions> <batch> <threads> <warmup> <steps>
                        <repeats> [<expected params>]

Prints `params <count>`, then per repeat `updates/s <x> cpu_updates/s <y>`; with an expected count
(repro's), a different count is an error before any timing.
"""
import os
import sys

import torch
import torch.nn.functional as F

import bench_common

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "tests", "python"))
from dqn_reference import build  # noqa: E402

GAMMA, LR, EPS, WEIGHT_DECAY = 0.99, 2.5e-4, 1.5e-4, 1e-2


def main(argv):
    if len(argv) not in (10, 11):
        raise SystemExit(__doc__)
    c, h, w, actions, batch, threads, warmup, steps, repeats = map(int, argv[1:10])
    torch.set_num_threads(threads)
    dev = bench_common.device()
    torch.manual_seed(0)
    online, target = build(argv[0:5]).to(dev), build(argv[0:5]).to(dev)
    params = sum(p.numel() for p in online.parameters())
    print(f"params {params}", flush=True)
    if len(argv) == 11 and int(argv[10]) != params:
        raise SystemExit(f"parameter count {params} differs from repro's {argv[10]}")
    high = 2 if argv[0] == "minatar" else 256
    states = torch.randint(high, (batch, c, h, w), dtype=torch.uint8, device=dev)
    next_states = torch.randint(high, (batch, c, h, w), dtype=torch.uint8, device=dev)
    actions_t = torch.arange(batch, device=dev) % actions
    rewards = (torch.arange(batch, device=dev) % 2).float()
    terminals = (torch.arange(batch, device=dev) % 10 == 0).float()
    opt = torch.optim.AdamW(online.parameters(), lr=LR, eps=EPS, weight_decay=WEIGHT_DECAY,
                            foreach=False)

    def step():
        q = online(states).gather(1, actions_t.unsqueeze(1)).squeeze(1)
        with torch.no_grad():
            y = rewards + GAMMA * (1 - terminals) * target(next_states).amax(1)
        loss = F.huber_loss(q, y, reduction="mean", delta=1.0)
        opt.zero_grad()
        loss.backward()
        with torch.no_grad():
            torch.stack([p.grad.square().sum() for p in online.parameters()]).sum().sqrt()
        opt.step()
        return loss.item()

    for _ in range(warmup):
        step()
    for _ in range(repeats):
        secs, cpu = bench_common.timed(dev, lambda: [step() for _ in range(steps)])
        print(f"updates/s {steps / secs:.2f} cpu_updates/s {steps / cpu:.2f}", flush=True)


if __name__ == "__main__":
    main(sys.argv[1:])
