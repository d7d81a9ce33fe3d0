"""What the benchmark scripts share with their Rust twins (crates/repro-torch/examples/common/mod.rs): the device
named by REPRO_BENCH_DEVICE (cpu, the default, or cuda / cuda:N) and a synchronised timer."""
import os
import time

import torch


def device():
    v = os.environ.get("REPRO_BENCH_DEVICE", "cpu")
    if v != "cpu" and not (v == "cuda" or (v.startswith("cuda:") and v[5:].isdigit())):
        raise SystemExit(f"REPRO_BENCH_DEVICE: expected cpu, cuda or cuda:N, got '{v}'")
    if v != "cpu" and not torch.cuda.is_available():
        raise SystemExit(f"REPRO_BENCH_DEVICE={v}, but torch sees no CUDA device")
    return torch.device(v)


def sync(dev):
    if dev.type == "cuda":
        torch.cuda.synchronize(dev)


def timed(dev, f):
    """Wall and CPU seconds of f() on dev, with the device synchronised before and after."""
    sync(dev)
    start, cpu_start = time.perf_counter(), time.process_time()
    f()
    sync(dev)
    return time.perf_counter() - start, time.process_time() - cpu_start
