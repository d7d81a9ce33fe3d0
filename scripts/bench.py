"""`make bench`: every benchmark of repro against its baseline, measured in one run, written as
the generated part of BENCHMARKS.md.

    scripts/bench.py [--device cpu|cuda] [--repeats N] [--only GROUP,...] [--threads T]
                     [--size default|gpu|tiny] [--out FILE.md] [--update BENCHMARKS.md]

Each row pairs one repro measurement with its baseline (PyTorch eager on the same libtorch,
torch.optim, the `minatar` package, coreutils' sha256sum) on the same model, batch, dtype,
thread count and device. The two sides run as separate processes, interleaved (repro, baseline,
then baseline, repro, ...) so that load drifts on a shared machine hit both, `--repeats` times;
every repeat gives one ratio, and a row reports the median of each side and the min / median /
max of the ratios. A ratio is always repro's speed over the baseline's (throughput over
throughput, or time over time inverted), so ≥ 1.0 means repro is at least as fast.

Groups: vision, loader, lm, mt, optim, rl, engine, share (`--only` picks some). `--size tiny` shrinks every
row to seconds (for the GPU check's `--device cpu` dry path and its test); `--size gpu` is the
sizing for a GPU. The markdown table goes to `--out` (default bench/<device>.md) with a JSON twin
next to it; `--update BENCHMARKS.md` also replaces the block between its `<!-- bench:begin -->`
and `<!-- bench:end -->` markers, leaving the hand-written notes around it alone.

Needs REPRO_PYTHON (the venv's python; `eval "$(scripts/setup.sh)"`) and the release examples
(`cargo build --release --workspace --examples`, which `make bench` does). REPRO_BENCH_BIN overrides where
the examples and the repro binary are found (the GPU check carries them in a folder).
"""
import argparse
import datetime
import json
import os
import platform
import re
import shlex
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
GROUPS = ["vision", "loader", "lm", "mt", "optim", "rl", "fuse", "engine", "share"]


@dataclass
class Suite:
    """One command whose output gives named metrics; `parse` maps its stdout to {name: value}."""
    name: str
    argv: list
    parse: object
    cwd: str = ROOT
    shown: str = ""  # how BENCHMARKS.md shows the command, when not argv itself


@dataclass
class Row:
    """A ratio of two metrics, or (baseline None) an absolute repro number."""
    label: str
    repro: tuple  # (suite name, metric)
    baseline: tuple  # (suite name, metric, label) or None
    unit: str
    higher_is_better: bool = True


@dataclass
class Group:
    title: str
    suites: list
    rows: list
    note: str = ""


def metrics_words(stdout):
    """Each number named by the word before it, e.g. `images/s 43.6 cpu_images/s 22.0`; the first
    value of a name wins."""
    out = {}
    for line in stdout.splitlines():
        words = line.split()
        for k, v in zip(words, words[1:]):
            try:
                out.setdefault(k, float(v))
            except ValueError:
                pass
    return out


def metrics_named_rows(stdout):
    """`<row> ms <x> cpu_ms <y>` lines (the optimizer benches): {row: x}."""
    out = {}
    for line in stdout.splitlines():
        words = line.split()
        if len(words) >= 3 and words[1] == "ms":
            out.setdefault(words[0], float(words[2]))
    return out


def metrics_jsonl(key, value):
    def parse(stdout):
        rows = [json.loads(line) for line in stdout.splitlines() if line.startswith("{")]
        return {r[key]: r[value] for r in rows}
    return parse


def metrics_jsonl_one(stdout):
    """The numbers of a one-line JSON output."""
    row = json.loads(next(line for line in stdout.splitlines() if line.startswith("{")))
    return {k: v for k, v in row.items() if isinstance(v, (int, float))}


def metrics_seconds(stdout):
    return {"s": float(stdout.strip().splitlines()[-1])}


# Wall time of a whole command (sha256sum, `repro status`), process start-up included.
WALL = ["-c", "import subprocess, sys, time; t = time.perf_counter(); "
        "subprocess.run(sys.argv[1:], check=True, stdout=subprocess.DEVNULL); print(time.perf_counter() - t)"]


def sizes(size, device):
    """Steps and batch sizes per row: CPU sizes fit this 2-core machine, GPU sizes a GPU's speed."""
    if size == "tiny":
        # one row of each kind, for the plumbing alone (the GPU check's dry path and its test)
        return dict(vision=[("resnet18", 10, 0.125, 32, 8, 1, 1)],
                    lm=[(2000, 64, 2, 1, 64, 1, 2)],
                    mt=[(200, 200, 32, 64, 2, 1, 1, 4, 8, 8, 1, 2)], adam_shapes="100x100,100", adam_steps=(1, 2),
                    dqn=[("minatar", 4, 10, 10, 6, 2, 5, "MinAtar Q-net")],
                    minatar_steps=2000, hash_mib=16, status_runs=20, loader_epochs=1, share_mib=8,
                    fuse=([2], 200), fuse_lm=([2], 1, 5000))
    gpu = size == "gpu" or (size == "default" and device != "cpu")
    if gpu:
        return dict(vision=[("resnet18", 10, 1, 32, 128, 5, 30), ("resnet50", 100, 1, 32, 128, 5, 20),
                            ("densenet121", 200, 1, 64, 128, 3, 10)],
                    lm=[(2000, 128, 4, 2, 256, 5, 50), (33278, 200, 2, 2, 200, 5, 50)],
                    mt=[(8848, 6632, 512, 1024, 4, 6, 6, 128, 32, 32, 5, 30)],
                    adam_shapes=ADAM_SHAPES, adam_steps=(2, 20),
                    dqn=[("minatar", 4, 10, 10, 6, 50, 500, "MinAtar Q-net"), ("nature", 4, 84, 84, 6, 20, 200, "Nature CNN")],
                    minatar_steps=0, hash_mib=0, status_runs=0, loader_epochs=3, share_mib=0,
                    fuse=([1, 25, 125], 2000), fuse_lm=([1, 25, 125], 1, 0))
    # arch classes width size batch warmup steps: ResNet-50 and DenseNet-121 at smaller batches
    # than the paper profile's 128, or one repeat would take minutes on 2 cores (both sides alike).
    return dict(vision=[("resnet18", 10, 1, 32, 128, 1, 3), ("resnet50", 100, 1, 32, 32, 1, 3),
                        ("densenet121", 200, 1, 64, 16, 1, 2)],
                lm=[(2000, 128, 4, 2, 256, 2, 5), (33278, 200, 2, 2, 200, 1, 2)],
                # transformer_iwslt_de_en at its vocabulary sizes (fairseq-preprocess on IWSLT'14 gives
                # 8,848 German and 6,632 English types), a small batch so a repeat fits 2 cores
                mt=[(8848, 6632, 512, 1024, 4, 6, 6, 16, 24, 24, 1, 3)],
                adam_shapes=ADAM_SHAPES, adam_steps=(1, 5),
                dqn=[("minatar", 4, 10, 10, 6, 50, 1000, "MinAtar Q-net"), ("nature", 4, 84, 84, 6, 5, 40, "Nature CNN")],
                minatar_steps=200000, hash_mib=1024, status_runs=1000, loader_epochs=3,
                share_mib=256, fuse=([1, 5, 25], 1000), fuse_lm=([1, 5, 25], 1, 0))


# ~10M float32 parameters shaped like a wide Transformer layer with a tied 4000×1000 embedding.
ADAM_SHAPES = ("4000x1000,3000x1000,3000,1000x1000,1000,1000x1000,1000,1000x1000,1000,1000,1000,"
               "1000,1000,1000,1000,4000")


def groups(args, bin_dir, py, work):
    z = sizes(args.size, args.device)
    t = str(args.threads)
    ex = lambda name: os.path.join(bin_dir, "examples", name)  # noqa: E731
    script = lambda name: [py, os.path.join(ROOT, "scripts", name)]  # noqa: E731
    out = {}

    suites, rows = [], []
    for arch, classes, width, size, batch, warmup, steps in z["vision"]:
        a = [arch, str(classes), str(width), str(size), str(batch), t, str(warmup), str(steps), "1"]
        suites += [Suite(f"repro:{arch}", [ex("bench_train_step")] + a, metrics_words),
                   Suite(f"torch:{arch}", script("bench_train_step.py") + a, metrics_words)]
        rows.append(Row(f"{arch}, {classes} classes, width {width}, {size}×{size}, batch {batch}",
                        (f"repro:{arch}", "images/s"), (f"torch:{arch}", "images/s", "PyTorch eager"), "img/s"))
    out["vision"] = Group("One training step: forward, cross-entropy, backward, SGD momentum 0.9 + weight decay "
                          f"({t} threads on CPU)", suites, rows)

    epochs = str(z["loader_epochs"])
    out["loader"] = Group(
        "The loader alone: one augmented epoch of 50,000 32×32 uint8 images (shuffle, pad-crop, flip, "
        "normalise, batch 128, prefetch thread), median of the epochs",
        [Suite("repro:loader", [ex("loader_bench"), epochs], metrics_words)],
        [Row("CIFAR-10 loader (no baseline: compare with ResNet-18's training img/s above)",
             ("repro:loader", "images/s"), None, "img/s")])

    suites, rows = [], []
    for vocab, d, heads, layers, ffn, warmup, steps in z["lm"]:
        cfg = [str(vocab), str(d), str(heads), str(layers), str(ffn), "0.2", "1", "1", "20", "35", t]
        run = [str(warmup), str(steps), "1"]
        name = f"lm{vocab}"
        suites += [Suite(f"repro:{name}", [ex("bench_lm_step")] + cfg + run, metrics_words),
                   Suite(f"torch:{name}", script("bench_lm_step.py") + cfg + run + ["single"], metrics_words),
                   Suite(f"torch-foreach:{name}", script("bench_lm_step.py") + cfg + run + ["foreach"], metrics_words)]
        label = f"Transformer LM, vocab {vocab}, d {d}, {layers} layers, {heads} heads, ffn {ffn}, batch 20 × bptt 35"
        rows.append(Row(label, (f"repro:{name}", "tokens/s"),
                        (f"torch:{name}", "tokens/s", "PyTorch, clip + AdamW single-tensor"), "tok/s"))
        rows.append(Row(label, (f"repro:{name}", "tokens/s"),
                        (f"torch-foreach:{name}", "tokens/s", "PyTorch, clip + AdamW foreach"), "tok/s"))
    out["lm"] = Group("One LM training step: zero_grad, forward, cross-entropy, backward, clip 0.25, AdamW "
                      f"({t} threads on CPU)", suites, rows)

    suites, rows = [], []
    for src_v, tgt_v, d, ffn, heads, enc, dec, batch, src_len, tgt_len, warmup, steps in z["mt"]:
        cfg = [str(x) for x in (src_v, tgt_v, d, ffn, heads, enc, dec, batch, src_len, tgt_len)] + [t]
        run = [str(warmup), str(steps), "1"]
        name = f"mt{d}x{enc}"
        suites += [Suite(f"repro:{name}", [ex("bench_mt_step")] + cfg + run, metrics_words),
                   Suite(f"torch:{name}", script("bench_mt_step.py") + cfg + run + ["single"], metrics_words),
                   Suite(f"torch-foreach:{name}", script("bench_mt_step.py") + cfg + run + ["foreach"], metrics_words)]
        label = (f"fairseq Transformer {enc}+{dec} layers, d {d}, FFN {ffn}, {heads} heads, vocab "
                 f"{src_v}/{tgt_v}, batch {batch} × {src_len}→{tgt_len} tokens")
        rows.append(Row(label, (f"repro:{name}", "tokens/s"),
                        (f"torch:{name}", "tokens/s", "PyTorch eager reference, AdamW single-tensor"), "tok/s"))
        rows.append(Row(label, (f"repro:{name}", "tokens/s"),
                        (f"torch-foreach:{name}", "tokens/s", "PyTorch eager reference, AdamW foreach"), "tok/s"))
    out["mt"] = Group("One translation training step (target tokens/s): zero_grad, forward, label-smoothed "
                      f"cross-entropy, backward, AdamW β (0.9, 0.98); dropout off ({t} threads on CPU)",
                      suites, rows)

    warmup, steps = z["adam_steps"]
    a = [z["adam_shapes"], t, str(warmup), str(steps), "1"]
    n_params = sum(eval(s.replace("x", "*")) for s in z["adam_shapes"].split(","))
    suites = [Suite("repro:optim", [ex("bench_adam_step")] + a, metrics_named_rows),
              Suite("torch:optim", script("bench_adam_step.py") + a, metrics_named_rows)]
    rows = []
    for key, label, base, base_label in [
            ("v1", "V1 (Adam, l2 in the gradient)", "adam_single", "Adam(foreach=False)"),
            ("v2", "V2 (AdamW)", "adamw_single", "AdamW(foreach=False)"),
            ("v3", "V3 (l2 in m only)", "adam_single", "Adam(foreach=False)"),
            ("v4", "V4 (l2 in v only + decoupled)", "adam_single", "Adam(foreach=False)"),
            ("v5", "V5 (adaptive decoupled)", "adam_single", "Adam(foreach=False)"),
            ("v1_drown_out", "V1 with the E8 drown-out diagnostic read every step", "adam_single", "Adam(foreach=False)"),
            ("sgd", "SGD, momentum 0.9", "sgd_single", "SGD(foreach=False)"),
            ("v1", "V1 against torch's multi-tensor path", "adam_foreach", "Adam(foreach=True)"),
            ("v1", "V1 against torch's fused kernel", "adam_fused", "Adam(fused=True)"),
            ("sgd", "SGD against torch's multi-tensor path", "sgd_foreach", "SGD(foreach=True)")]:
        rows.append(Row(label, ("repro:optim", key), ("torch:optim", base, f"torch.optim.{base_label}"), "ms",
                        higher_is_better=False))
    out["optim"] = Group(f"The optimizer step alone: {n_params:,} float32 parameters in "
                         f"{len(z['adam_shapes'].split(','))} tensors, fixed random gradients, λ = 1e-2, lr = 1e-3, "
                         f"median of {steps} steps after {warmup} warm-up ({t} threads on CPU)", suites, rows)

    suites, rows = [], []
    for arch, c, h, w, actions, warmup, steps, label in z["dqn"]:
        cfg = [arch, str(c), str(h), str(w), str(actions), "32", "1", str(warmup), str(steps), "1"]
        suites += [Suite(f"repro:{arch}", [ex("bench_dqn_update")] + cfg, metrics_words),
                   Suite(f"torch:{arch}", script("bench_dqn_update.py") + cfg, metrics_words)]
        rows.append(Row(f"DQN update, {label}, batch 32, AdamW, 1 thread", (f"repro:{arch}", "updates/s"),
                        (f"torch:{arch}", "updates/s", "PyTorch eager"), "updates/s"))
    if z["minatar_steps"]:
        n = str(z["minatar_steps"])
        suites += [Suite("repro:minatar-env", [ex("bench_minatar"), n], metrics_jsonl("game", "steps_per_s")),
                   Suite("minatar:minatar-env", script("bench_minatar.py") + [n], metrics_jsonl("game", "steps_per_s"))]
        for game in ["asterix", "breakout", "freeway", "seaquest", "space_invaders"]:
            rows.append(Row(f"MinAtar {game}, random policy, act + state per step", ("repro:minatar-env", game),
                            ("minatar:minatar-env", game, "minatar 1.0.15"), "steps/s"))
    out["rl"] = Group("Reinforcement learning: one DQN update (Q(s, a), target max, Huber, backward, grad norm, "
                      "AdamW) as the dqn stage runs it, and the MinAtar environment", suites, rows)

    members, frames = z["fuse"]
    suites, rows = [], []
    for n in members:
        for mode in ["fused", "solo"]:
            suites.append(Suite(f"{mode}:{n}", [ex("bench_fused_dqn"), mode, str(n), str(frames)], metrics_jsonl_one))
        for what, key in [("member updates/s", "updates_per_s"), ("agent steps/s", "env_steps_per_s")]:
            rows.append(Row(f"MinAtar DQN stage end to end, {n} members: {what}", (f"fused:{n}", key),
                            (f"solo:{n}", key, f"{n} solo runs, one after another"), what.split()[-1]))
        rows.append(Row(f"… peak resident memory, {n} members (MiB)", (f"fused:{n}", "peak_rss_mib"),
                        (f"solo:{n}", "peak_rss_mib", "one solo run"), "MiB", higher_is_better=False))
    # The lm stage the same way: one epoch (or `epochs`) of the `cpu` profile's WikiText runs;
    # train_tokens 0 = the generated corpus's whole 100k-token training split.
    lm_members, lm_epochs, lm_tokens = z["fuse_lm"]
    for n in lm_members:
        for mode in ["fused", "solo"]:
            suites.append(Suite(f"lm-{mode}:{n}", [ex("bench_fused_lm"), mode, str(n), str(lm_epochs)]
                                + ([str(lm_tokens)] if lm_tokens else []), metrics_jsonl_one))
        rows.append(Row(f"WikiText LM stage end to end, {n} members: tokens/s", (f"lm-fused:{n}", "tokens_per_s"),
                        (f"lm-solo:{n}", "tokens_per_s", f"{n} solo runs, one after another"), "tok/s"))
        rows.append(Row(f"… peak resident memory, {n} members (MiB)", (f"lm-fused:{n}", "peak_rss_mib"),
                        (f"lm-solo:{n}", "peak_rss_mib", "one solo run"), "MiB", higher_is_better=False))
    lm_what = (f"the first {lm_tokens:,} training tokens" if lm_tokens else "100k training tokens")
    out["fuse"] = Group(f"A fused group (issue 30): the dqn stage end to end (acting, replay, updates, "
                        f"evaluation) on MinAtar Breakout, {frames} agent steps per member, E8 sampled every "
                        f"50 updates; the lm stage end to end (training, E8 every 20 updates, validation and "
                        f"test each epoch, files) at the `cpu` profile's sizes on its generated WikiText-2, "
                        f"{lm_epochs} epoch(s) of {lm_what} per member, 1 thread on CPU. One group of N members "
                        f"against N solo runs on the same core (timed on min(N, 5) of them)", suites, rows,
                        note="Ratios above 1 are the fused worker's gain. Memory: the group's process "
                             "against one solo run's. LM tokens/s: training tokens of all members per second "
                             "of the whole run, evaluation and files included.")

    if z["hash_mib"]:
        big = os.path.join(work, "big.bin")
        suites = [Suite("repro:hash", [ex("hash_file"), big], metrics_words),
                  Suite("coreutils:hash", [py] + WALL + ["sha256sum", big], metrics_seconds,
                        shown="wall time of: sha256sum <file>")]
        rows = [Row(f"sha256 of a {z['hash_mib']:,} MiB file, page cache warm (the store's hasher, timed inside)",
                    ("repro:hash", "seconds"), ("coreutils:hash", "s", "sha256sum"), "s", higher_is_better=False)]
        if z["status_runs"]:
            status = [os.path.join(bin_dir, "repro"), "status", "--profile", "smoke", "--device", "cpu"]
            suites.append(Suite("repro:status", [py] + WALL + status, metrics_seconds, cwd=work,
                                shown="wall time of: repro status --profile smoke --device cpu (in the store "
                                      "of the cached runs)"))
            rows.append(Row(f"`repro status` with {z['status_runs']:,} cached runs, wall time (goal < 0.5 s)",
                            ("repro:status", "s"), None, "s", higher_is_better=False))
        out["engine"] = Group("Engine", suites, rows)

    if z["share_mib"]:
        argv = [ex("bench_share"), os.path.join(work, "share"), "--runs", "32", "--mib", str(z["share_mib"]),
                "--repeats", "1"]
        s3 = moto_available(py)
        if s3:
            argv += ["--s3", f"s3://{S3_BUCKET}/bench"]
        suites = [Suite("repro:share", argv, metrics_words)]
        what = f"65 objects, {z['share_mib']} MiB (32 runs: a 2 KiB metrics file and a weights file each)"
        rows = [Row(f"`repro push` to a folder remote, {what}", ("repro:share", "push_file_MiB/s"),
                    ("repro:share", "cp_out_MiB/s", "cp -r"), "MiB/s"),
                Row("`repro pull` from a folder remote, the same (each object hashed on arrival)",
                    ("repro:share", "pull_file_MiB/s"), ("repro:share", "cp_in_MiB/s", "cp -r"), "MiB/s")]
        if s3:
            rows += [Row("`repro push` to S3 (a local moto server), the same", ("repro:share", "push_s3_MiB/s"),
                         ("repro:share", "boto3_up_MiB/s", "boto3 transfer manager, 8 threads"), "MiB/s"),
                     Row("`repro pull` from S3 (a local moto server), the same", ("repro:share", "pull_s3_MiB/s"),
                         ("repro:share", "boto3_down_MiB/s", "boto3 transfer manager, 8 threads"), "MiB/s")]
        out["share"] = Group("Sharing results: push and pull against copying the same objects", suites, rows,
                             note="Both sides timed inside one `bench_share` process, on the same page cache; "
                                  "S3 is moto's in-memory server on this machine, so its rows compare clients, "
                                  "not networks.")
    return out


S3_BUCKET = "repro-bench"


def moto_available(py):
    return subprocess.run([py, "-c", "import moto.server, boto3"], capture_output=True).returncode == 0


def start_s3(py):
    """A local moto S3 server (scripts/s3_test_server.py) whose credentials the suites inherit; it
    stops when its stdin closes."""
    server = subprocess.Popen([py, os.path.join(ROOT, "scripts", "s3_test_server.py"), S3_BUCKET],
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    info = json.loads(server.stdout.readline())
    os.environ.update(AWS_ACCESS_KEY_ID=info["access_key_id"], AWS_SECRET_ACCESS_KEY=info["secret_access_key"],
                      AWS_REGION=info["region"], AWS_ENDPOINT_URL=info["endpoint"])
    return server


def prepare_engine(args, bin_dir, work):
    """The 1 GiB file to hash and a store with `status_runs` real cached runs."""
    z = sizes(args.size, args.device)
    with open(os.path.join(work, "big.bin"), "wb") as f:
        for _ in range(z["hash_mib"]):
            f.write(os.urandom(1 << 20))
    n = z["status_runs"]
    if not n:
        return
    seeds = ",".join(str(i) for i in range(n))
    with open(os.path.join(work, "pipeline.yaml"), "w") as f:
        f.write(f"""version: 1
datasets:
  cifar10:
    format: cifar10-binary
    files: [{{name: cifar-10-binary.tar.gz, md5: c32a1d4ab5d03f1284b67883e8d87530}}]
    generate: {{generator: cifar10, params: {{train_per_class: 1, test_per_class: 1}}}}
experiments:
  tiny:
    kind: vision
    datasets: [cifar10]
    params: {{model: small_cnn, width: 0.03125, epochs: 1, batch_size: 10, augment: false}}
    grid: {{seed: [{seeds}]}}
profiles:
  smoke: {{threads: 1, datasets: {{cifar10: {{source: generate}}}}}}
""")
    print(f"engine: making {n} cached runs for `repro status` ...", file=sys.stderr, flush=True)
    subprocess.run([os.path.join(bin_dir, "repro"), "run", "--profile", "smoke", "--device", "cpu", "--quiet"],
                   cwd=work, check=True, stdout=subprocess.DEVNULL)


def run_suite(s, args):
    env = dict(os.environ, REPRO_BENCH_DEVICE=args.device)
    p = subprocess.run(s.argv, cwd=s.cwd, env=env, capture_output=True, text=True)
    if p.returncode != 0:
        raise SystemExit(f"bench: {shlex.join(s.argv)} failed ({p.returncode}):\n{p.stderr[-2000:]}")
    m = s.parse(p.stdout)
    if not m:
        raise SystemExit(f"bench: no metrics in the output of {shlex.join(s.argv)}:\n{p.stdout[-1000:]}")
    return m


def measure(group, args):
    """Every suite `repeats` times, alternating the order each repeat: {suite: [metrics, ...]}."""
    results = {s.name: [] for s in group.suites}
    for r in range(args.repeats):
        order = group.suites if r % 2 == 0 else list(reversed(group.suites))
        for s in order:
            results[s.name].append(run_suite(s, args))
        print(f"  repeat {r + 1}/{args.repeats} done", file=sys.stderr, flush=True)
    return results


def fmt(x):
    if x >= 1000:
        return f"{x:,.0f}"
    if x >= 10:
        return f"{x:.1f}"
    return f"{x:.3g}"


def summarise(group, results):
    rows = []
    for row in group.rows:
        ours = [m[row.repro[1]] for m in results[row.repro[0]]]
        entry = {"label": row.label, "unit": row.unit, "repro": statistics.median(ours),
                 "repro_all": ours}
        if row.baseline:
            theirs = [m[row.baseline[1]] for m in results[row.baseline[0]]]
            ratios = [(a / b) if row.higher_is_better else (b / a) for a, b in zip(ours, theirs)]
            entry.update(baseline_label=row.baseline[2], baseline=statistics.median(theirs),
                         baseline_all=theirs, ratio_min=min(ratios), ratio_median=statistics.median(ratios),
                         ratio_max=max(ratios))
        rows.append(entry)
    return rows


def command_of(group, name):
    s = next(s for s in group.suites if s.name == name)
    if s.shown:
        return s.shown
    words = [os.path.relpath(w, ROOT) if os.path.isabs(w) and w.startswith(ROOT) else w for w in s.argv]
    python = words and words[0] == os.environ.get("REPRO_PYTHON")
    return ("$REPRO_PYTHON " if python else "") + shlex.join(words[1:] if python else words)


def markdown(summary, groups_, args, header):
    lines = [header, ""]
    for gname, rows in summary.items():
        g = groups_[gname]
        lines += [f"### {g.title}", "",
                  "| row | baseline | baseline (median) | repro (median) | ratio min / median / max |",
                  "|---|---|---|---|---|"]
        for e in rows:
            u = e["unit"]
            if "baseline" in e:
                flag = "" if e["ratio_median"] >= 1.0 else " ⚠"
                lines.append(f"| {e['label']} | {e['baseline_label']} | {fmt(e['baseline'])} {u} | {fmt(e['repro'])} {u} | "
                             f"{e['ratio_min']:.2f} / **{e['ratio_median']:.2f}** / {e['ratio_max']:.2f}{flag} |")
            else:
                lines.append(f"| {e['label']} | | | {fmt(e['repro'])} {u} | |")
        lines += ["", "Commands (each row's repro side, then its baseline):", ""]
        seen = []
        for row in g.rows:
            for name in [row.repro[0]] + ([row.baseline[0]] if row.baseline else []):
                if name not in seen:
                    seen.append(name)
        lines += [f"- `{command_of(g, n)}`" for n in seen]
        lines.append("")
    return "\n".join(lines)


def machine(args):
    cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), "?")
    info = {"cpu": cpu, "cores": os.cpu_count(), "load_avg": os.getloadavg()[0], "platform": platform.platform()}
    if args.device != "cpu":
        q = subprocess.run(["nvidia-smi", "--query-gpu=name,driver_version,memory.total", "--format=csv,noheader"],
                           capture_output=True, text=True)
        info["gpu"] = q.stdout.strip() or "?"
    try:
        info["commit"] = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True,
                                        text=True).stdout.strip() or "?"
    except OSError:
        info["commit"] = "?"
    return info


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--only", default=",".join(GROUPS))
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--size", choices=["default", "gpu", "tiny"], default="default")
    ap.add_argument("--out")
    ap.add_argument("--update")
    args = ap.parse_args()
    if args.device != "cpu" and not re.fullmatch(r"cuda(:\d+)?", args.device):
        ap.error(f"--device: expected cpu, cuda or cuda:N, got '{args.device}'")
    only = [g for g in args.only.split(",") if g]
    bad = [g for g in only if g not in GROUPS]
    if bad:
        ap.error(f"--only: unknown group(s) {', '.join(bad)}; valid: {', '.join(GROUPS)}")
    if args.repeats < 1:
        ap.error("--repeats: expected an integer ≥ 1")
    py = os.environ.get("REPRO_PYTHON")
    if not py:
        raise SystemExit("bench: REPRO_PYTHON is not set; run `eval \"$(scripts/setup.sh)\"` first")
    bin_dir = os.environ.get("REPRO_BENCH_BIN") or os.path.join(ROOT, "target", "release")
    bin_dir = os.path.abspath(bin_dir)
    out = args.out or os.path.join(ROOT, "bench", f"{args.device.replace(':', '')}.md")
    os.makedirs(os.path.dirname(os.path.abspath(out)), exist_ok=True)

    started = time.time()
    info = machine(args)
    summary, all_groups = {}, {}
    with tempfile.TemporaryDirectory() as work:
        gs = groups(args, bin_dir, py, work)
        for name in only:
            if name not in gs:
                print(f"bench: {name}: not measured on {args.device} at this size", file=sys.stderr)
                continue
            print(f"bench: {name} ...", file=sys.stderr, flush=True)
            if name == "engine":
                prepare_engine(args, bin_dir, work)
            s3 = start_s3(py) if name == "share" and any("--s3" in s.argv for s in gs[name].suites) else None
            try:
                summary[name] = summarise(gs[name], measure(gs[name], args))
            finally:
                if s3:
                    s3.stdin.close()
                    s3.wait()
            all_groups[name] = gs[name]
    info["load_avg_end"] = os.getloadavg()[0]
    wall = time.time() - started
    header = (f"Measured {datetime.date.today().isoformat()} by `{shlex.join(['scripts/bench.py'] + sys.argv[1:])}` "
              f"in {wall / 60:.1f} min: device {args.device}"
              + (f" ({info['gpu']})" if "gpu" in info else "")
              + f", {info['cpu']}, {info['cores']} cores, load average {info['load_avg']:.1f} at the start and "
              f"{info['load_avg_end']:.1f} at the end, commit {info['commit']}, {args.repeats} interleaved repeats "
              "per row. Ratio = repro's speed / the baseline's (≥ 1.0: repro at least as fast; ⚠ marks a "
              "median under 1.0, explained in the notes below).")
    text = markdown(summary, all_groups, args, header)
    with open(out, "w") as f:
        f.write(text + "\n")
    with open(os.path.splitext(out)[0] + ".json", "w") as f:
        json.dump({"machine": info, "args": vars(args), "wall_s": wall, "groups": summary}, f, indent=1)
    if args.update:
        doc = open(args.update).read()
        begin, end = "<!-- bench:begin -->", "<!-- bench:end -->"
        if begin not in doc or end not in doc:
            raise SystemExit(f"bench: {args.update} has no {begin} … {end} block to replace")
        head, rest = doc.split(begin, 1)
        _, tail = rest.split(end, 1)
        tmp = args.update + ".tmp"
        with open(tmp, "w") as f:
            f.write(f"{head}{begin}\n{text}\n{end}{tail}")
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, args.update)
    print(text)


if __name__ == "__main__":
    main()
