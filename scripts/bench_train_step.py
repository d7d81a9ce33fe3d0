"""One training step's throughput (images/s) of a pipeline model in PyTorch eager: the baseline
that crates/repro-torch/examples/bench_train_step.rs is compared with in scripts/bench.py. Same model definitions as
the test suite's reference (tests/python/models.py), same loss, same SGD settings.

    bench_train_step.py <arch> <classes> <width> <image size> <batch> <threads> <warmup> <steps> <repeats>

Prints one line per repeat: `images/s <x> cpu_images/s <y>`. REPRO_BENCH_DEVICE picks the device
(bench_common.py).
"""
import os
import sys

import torch

import bench_common

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "tests", "python"))
import models  # noqa: E402


def main():
    arch, classes, width, size, batch, threads, warmup, steps, repeats = sys.argv[1:]
    classes, size, batch = int(classes), int(size), int(batch)
    warmup, steps, repeats = int(warmup), int(steps), int(repeats)
    torch.set_num_threads(int(threads))
    dev = bench_common.device()
    torch.manual_seed(0)
    net = models.build(arch, classes, float(width)).to(dev)
    net.train()
    opt = torch.optim.SGD(net.parameters(), lr=0.01, momentum=0.9, weight_decay=5e-4)
    x = torch.randn(batch, 3, size, size, device=dev)
    y = torch.randint(classes, (batch,), device=dev)

    def step():
        loss = torch.nn.functional.cross_entropy(net(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()

    for _ in range(warmup):
        step()
    for _ in range(repeats):
        secs, cpu = bench_common.timed(dev, lambda: [step() for _ in range(steps)])
        print(f"images/s {steps * batch / secs:.2f} cpu_images/s {steps * batch / cpu:.2f}", flush=True)


if __name__ == "__main__":
    main()
