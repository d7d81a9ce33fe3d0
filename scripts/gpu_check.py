"""The GPU check's body (run through scripts/gpu-check.sh, which sets up the binaries and libtorch).

    gpu_check.py --device cuda|cpu --bin DIR --out DIR [--repeats N]

1. the device: GPU name, driver, memory, libtorch, what repro-worker's probe reports;
2. the benchmark rows (scripts/bench.py: training steps, LM step, optimizers, DQN update) on the
   device, repro against PyTorch eager;
3. one paper-profile epoch of ResNet-18 (cifar10_resnet18's paper parameters, schedule
   `always`) on generated CIFAR-10 of the real size (50,000 + 10,000 images, the upstream
   binary format), through `repro run`: two epochs, the second is the steady-state one;
4. 1, 2 and 4 such runs at once on the one GPU (`--gpus 0 --runs-per-gpu N`), total images/s;
5. achieved TFLOP/s: the FLOPs of one ResNet-18 training step counted by PyTorch's
   FlopCounterMode (forward and backward, convolutions and matmuls) times the measured images/s,
   against the card's datasheet peak.

`--device cpu` is the dry path: the same steps at tiny sizes (1/8 width, a few hundred images,
`--jobs N` instead of GPU slots), so the script can be tested on a machine without a GPU. Writes
gpu-check.md (the tables), gpu-check.json and bench-<device>.md to --out.
"""
import argparse
import glob
import json
import os
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "tests", "python"))

# Dense (no sparsity) datasheet peaks in TFLOP/s: FP32 on the CUDA cores, TF32 and BF16 on the
# tensor cores. The paper profile trains in FP32 with TF32 off, so FP32 is the ceiling it can reach.
PEAKS = [  # (name contains, fp32, tf32, bf16)
    ("H200", 67.0, 494.7, 989.4),
    ("H100 PCIe", 51.2, 378.0, 756.0),
    ("H100", 67.0, 494.7, 989.4),  # SXM5; after "H100 PCIe" so that one matches first
    ("A100", 19.5, 156.0, 312.0),
    ("L40S", 91.6, 183.0, 366.0),
    ("L4", 30.3, 60.0, 121.0),
]


def sh(argv, **kw):
    print("+ " + " ".join(argv), file=sys.stderr, flush=True)
    return subprocess.run(argv, check=True, text=True, **kw)


def device_info(args):
    info = {"device": args.device}
    import torch
    info["torch"] = torch.__version__
    if args.device == "cuda":
        p = torch.cuda.get_device_properties(0)
        info.update(gpu=p.name, memory_gib=round(p.total_memory / 2**30, 1), sms=p.multi_processor_count,
                    capability=f"{p.major}.{p.minor}")
        q = subprocess.run(["nvidia-smi", "--query-gpu=driver_version", "--format=csv,noheader"],
                           capture_output=True, text=True)
        info["driver"] = q.stdout.strip()
        info["peak"] = next(({"fp32": f, "tf32": t, "bf16": b} for k, f, t, b in PEAKS if k in p.name), None)
    return info


def train_flops_per_image(arch, classes, width, size, batch):
    """FLOPs of one training step (forward + backward) per image, as FlopCounterMode counts them."""
    import torch
    from torch.utils.flop_counter import FlopCounterMode
    import models
    net = models.build(arch, classes, float(width))
    x, y = torch.randn(batch, 3, size, size), torch.randint(classes, (batch,))
    with FlopCounterMode(display=False) as counter:
        torch.nn.functional.cross_entropy(net(x), y).backward()
    return counter.get_total_flops() / batch


def pipeline_with_profile(path, profile):
    """pipeline.yaml with one more profile, inserted right under `profiles:`."""
    lines = open(os.path.join(ROOT, "pipeline.yaml")).read().splitlines(keepends=True)
    i = lines.index("profiles:\n")
    with open(path, "w") as f:
        f.writelines(lines[: i + 1] + [profile] + lines[i + 1:])


def run_resnet18(args, work, name, runs, epochs):
    """`runs` ResNet-18 runs at once, `epochs` each, on a fresh store: their records."""
    if args.device == "cuda":
        data = "{train_per_class: 5000, test_per_class: 1000}"  # CIFAR-10's real size
        params = f"{{epochs: {epochs}}}"
        place = ["--gpus", "0", "--runs-per-gpu", str(runs)]
    else:
        data = "{train_per_class: 20, test_per_class: 10}"
        params = f"{{epochs: {epochs}, width: 0.125}}"
        place = ["--jobs", str(runs)]
    seeds = ", ".join(str(s) for s in range(runs))
    pipeline = os.path.join(work, f"{name}.yaml")
    pipeline_with_profile(pipeline, f"""  gpucheck:
    description: The GPU check's runs (scripts/gpu_check.py).
    datasets: {{cifar10: {{source: generate, params: {data}}}}}
    experiments:
      cifar10_resnet18: {{params: {params}, grid: {{schedule: [always], seed: [{seeds}]}}}}
      cifar10_resnet18_sharpness: {{skip: true}}  # it reads schedules this profile does not run
""")
    store = os.path.join(work, f"store-{name}")
    t = time.time()
    sh([os.path.join(args.bin, "repro"), "run", "--pipeline", pipeline, "--profile", "gpucheck", "--device",
        args.device, "--store", store, "--datasets", os.path.join(work, "datasets"), "--quiet", *place,
        "cifar10_resnet18"], stdout=subprocess.DEVNULL)
    wall = time.time() - t
    records = [json.load(open(p)) for p in sorted(glob.glob(os.path.join(store, "runs", "*.json")))]
    records = [r for r in records if r.get("experiment") == "cifar10_resnet18"]
    if len(records) != runs:
        raise SystemExit(f"gpu-check: expected {runs} cifar10_resnet18 records in {store}, found {len(records)}")
    return records, wall


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--device", choices=["cuda", "cpu"], required=True)
    ap.add_argument("--bin", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--work", required=True)
    ap.add_argument("--repeats", type=int, default=2)
    args = ap.parse_args()
    os.makedirs(args.out, exist_ok=True)
    started = time.time()
    info = device_info(args)
    print(json.dumps(info), flush=True)
    result = {"device": info, "steps": {}}

    # 2. The benchmark rows on the device.
    t = time.time()
    size = "gpu" if args.device == "cuda" else "tiny"
    bench_md = os.path.join(args.out, f"bench-{args.device}.md")
    sh([sys.executable, os.path.join(ROOT, "scripts", "bench.py"), "--device", args.device, "--size", size,
        "--repeats", str(args.repeats), "--only", "vision,lm,mt,optim,rl,fuse", "--out", bench_md],
       env=dict(os.environ, REPRO_BENCH_BIN=args.bin), stdout=subprocess.DEVNULL)
    bench = json.load(open(os.path.splitext(bench_md)[0] + ".json"))
    result["steps"]["bench_s"] = time.time() - t

    # 3. One paper-profile epoch (two, the second steady), then 4. concurrency.
    t = time.time()
    single, wall1 = run_resnet18(args, args.work, "epoch", 1, 2)
    result["steps"]["epoch_s"] = time.time() - t
    epoch = {"epoch_seconds": single[0]["metrics"]["epoch_seconds"],
             "images_per_s": single[0]["metrics"]["images_per_s"], "wall_s": wall1,
             "environment": {k: single[0]["environment"].get(k) for k in ("libtorch_runtime", "placement")}}
    concurrent = {1: {"total_images_per_s": epoch["images_per_s"][-1], "wall_s": wall1}}
    t = time.time()
    for n in (2, 4):
        recs, wall = run_resnet18(args, args.work, f"concurrent{n}", n, 1)
        concurrent[n] = {"total_images_per_s": sum(r["metrics"]["images_per_s"][-1] for r in recs), "wall_s": wall,
                         "per_run": [r["metrics"]["images_per_s"][-1] for r in recs]}
    result["steps"]["concurrency_s"] = time.time() - t

    # 5. Achieved TFLOP/s of ResNet-18 training.
    width = 1.0 if args.device == "cuda" else 0.125
    flops = train_flops_per_image("resnet18", 10, width, 32, 8)
    step_row = next(r for r in bench["groups"]["vision"] if r["label"].startswith("resnet18"))
    result.update(epoch=epoch, concurrent=concurrent, train_flops_per_image=flops, bench=bench["groups"])
    peak = (info.get("peak") or {}).get("fp32")

    def tflops(img_s):
        return flops * img_s / 1e12

    lines = [f"# GPU check ({args.device})", "",
             "| | |", "|---|---|"]
    for k in ("gpu", "capability", "sms", "memory_gib", "driver", "torch"):
        if k in info:
            lines.append(f"| {k} | {info[k]} |")
    lines += ["", f"## Benchmark rows on {args.device}", "", open(bench_md).read(), "",
              "## One paper-profile epoch of ResNet-18 (generated CIFAR-10"
              + (", real size" if args.device == "cuda" else ", tiny dry-path size") + ")", "",
              "| epoch | seconds (train + test pass + checkpoint) | training images/s |", "|---|---|---|"]
    for i, (s, r) in enumerate(zip(epoch["epoch_seconds"], epoch["images_per_s"])):
        lines.append(f"| {i + 1} | {s:.2f} | {r:,.0f} |")
    lines += ["", "## Runs at once on one device (last epoch of each, summed)", "",
              "| runs at once | total images/s | vs 1 run | per run | wall of the `repro run` (s) |",
              "|---|---|---|---|---|"]
    base = concurrent[1]["total_images_per_s"]
    for n, c in concurrent.items():
        per = ", ".join(f"{x:,.0f}" for x in c.get("per_run", [c["total_images_per_s"]]))
        lines.append(f"| {n} | {c['total_images_per_s']:,.0f} | {c['total_images_per_s'] / base:.2f}× | {per} | "
                     f"{c['wall_s']:.1f} |")
    lines += ["", "## Achieved TFLOP/s, ResNet-18 training (FP32)", "",
              f"FlopCounterMode: {flops / 1e9:.3f} GFLOP per training image (forward + backward, width {width}).", "",
              "| measurement | images/s | TFLOP/s | of the FP32 peak |", "|---|---|---|---|"]
    for label, img_s in [("training step alone (bench row, repro)", step_row["repro"]),
                         ("paper-profile epoch 2 (with the test pass)", epoch["images_per_s"][-1]),
                         (f"{max(concurrent)} runs at once, total", concurrent[max(concurrent)]["total_images_per_s"])]:
        share = f"{tflops(img_s) / peak:.1%} of {peak} (datasheet)" if peak else "n/a"
        lines.append(f"| {label} | {img_s:,.0f} | {tflops(img_s):.2f} | {share} |")
    result["steps"]["total_s"] = time.time() - started
    lines += ["", f"Took {result['steps']['total_s']:.0f} s: benchmark rows {result['steps']['bench_s']:.0f} s, "
              f"epoch {result['steps']['epoch_s']:.0f} s, concurrency {result['steps']['concurrency_s']:.0f} s."]
    text = "\n".join(lines) + "\n"
    open(os.path.join(args.out, "gpu-check.md"), "w").write(text)
    json.dump(result, open(os.path.join(args.out, "gpu-check.json"), "w"), indent=1)
    print(text)


if __name__ == "__main__":
    main()
