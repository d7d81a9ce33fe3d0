"""What a profile costs on one GPU: every run's FLOPs, counted, turned into GPU-hours.

    cost_model.py [--profile paper,reduced] [--gpu-check bench/gpu-check/gpu-check.json]
                  [--peak-tflops 67] [--utilisation 0.35] [--update-ms 1.5]

The runs come from `repro plan --json` (every run with its resolved parameters). Each run's
work is counted, not guessed: PyTorch's FlopCounterMode on the test suite's reference models
(tests/python: forward + backward of one training example, forward of one evaluated one) times
what the run processes (vision: epochs × (training images + test images); sharpness: per
upstream checkpoint, 2 × (trace probes + power iterations) Hessian-vector products, plus power
iterations × convolutions with `per_layer`, at ≈ 2 training steps each, plus the ascent steps,
over the subset; lm: epochs × (training tokens + validation
tokens), test once; translate: epochs × (training pairs + validation pairs) at the mean
sentence lengths, test once as beam × the forward of each test pair; dqn: one update of `batch_size` per `update_every` agent steps after
`min_replay`, one forward per agent step and per evaluation step).

Turning FLOPs into time is where the estimate is:
- with `--gpu-check` (the JSON scripts/gpu-check.sh wrote on a GPU), each model's measured
  TFLOP/s on that GPU (its CUDA benchmark row: images/s or tokens/s × FLOPs per item) is used,
  and a DQN update takes the measured update time: *measured*;
- without it, every run is assumed to sustain `--utilisation` × `--peak-tflops` (defaults of ours:
  35% of an H100 SXM's 67 FP32 TFLOP/s; the paper profile trains in FP32 with TF32 off), and a
  DQN update, too small to fill a GPU, takes at least `--update-ms` (a default of ours, for a
  launch-bound step of ~100 kernels): *estimate*.
Environment stepping (ALE on the CPU), data loading and checkpoint writes are not counted.

Fused groups (a profile's `fuse`, docs/fuse.md): a dqn or lm run trained as a member of a group
of N takes its solo time divided by the group's measured gain, the GPU check's "MinAtar DQN
stage end to end, N members: member updates/s" (or "WikiText LM stage end to end, N members:
tokens/s") ratio at the largest measured N ≤ the group's size. Until a GPU has measured it,
fused runs are counted at solo rates, an upper bound, and the basis column says so.
"""
import argparse
import functools
import json
import os
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "tests", "python"))

# Upstream split sizes (images; WikiText-2 tokens as the word-level corpus gives them with <eos>).
VISION_DATA = {"cifar10": (50000, 10000, 10, 32), "cifar100": (50000, 10000, 100, 32),
               "tinyimagenet": (100000, 10000, 200, 64)}
WIKITEXT2 = {"train": 2088628, "valid": 217646, "test": 245569, "vocab": 33278}
# IWSLT'14 De-En after prepare-iwslt14.sh (10k joint BPE) as fairseq-preprocess reports it in a
# public log: (sentences, German tokens, English tokens) per split, each sentence's </s> included;
# dictionaries of 8,848 German and 6,632 English types.
IWSLT14 = {"train": (160239, 4035591, 3949114), "valid": (7283, 182592, 178622),
           "test": (6750, 161838, 156928), "vocab": (8848, 6632)}
MINATAR_CHANNELS = {"asterix": 4, "breakout": 4, "freeway": 7, "seaquest": 10, "space_invaders": 6}


def counted(f, *inputs):
    import torch
    from torch.utils.flop_counter import FlopCounterMode
    with FlopCounterMode(display=False) as c:
        f(*inputs)
    return c.get_total_flops()


@functools.lru_cache(maxsize=None)
def vision_flops(model, classes, width, size):
    """(training FLOPs, evaluation FLOPs) per image."""
    import torch
    import models
    net, b = models.build(model, classes, float(width)), 4
    x, y = torch.randn(b, 3, size, size), torch.randint(classes, (b,))
    train = counted(lambda: torch.nn.functional.cross_entropy(net(x), y).backward())
    with torch.no_grad():
        net.eval()
        ev = counted(lambda: net(x))
    return train / b, ev / b


@functools.lru_cache(maxsize=None)
def conv_layers(model, classes, width):
    """Convolutions of a reference vision model: the layers of the per-layer S_inv."""
    import torch
    import models
    net = models.build(model, classes, float(width))
    return sum(isinstance(m, torch.nn.Conv2d) for m in net.modules())


@functools.lru_cache(maxsize=None)
def lm_flops(vocab, d, heads, layers, ffn, bptt):
    """(training FLOPs, evaluation FLOPs) per token at sequence length bptt."""
    import torch
    import lm_reference
    net = lm_reference.build([vocab, d, heads, layers, ffn, 0.0, "1", "1"])
    b = 2
    x, y = torch.randint(vocab, (bptt, b)), torch.randint(vocab, (bptt * b,))
    train = counted(lambda: torch.nn.functional.cross_entropy(net(x).view(-1, vocab), y).backward())
    with torch.no_grad():
        ev = counted(lambda: net(x))
    return train / (bptt * b), ev / (bptt * b)


@functools.lru_cache(maxsize=None)
def mt_flops(d, ffn, heads, enc, dec, src_len, tgt_len):
    """(training FLOPs, evaluation FLOPs) per sentence pair of these lengths."""
    import torch
    import mt_reference
    src_v, tgt_v = IWSLT14["vocab"]
    net, b = mt_reference.build([src_v, tgt_v, d, ffn, heads, enc, dec]), 2
    src, prev = torch.randint(4, src_v, (b, src_len)), torch.randint(4, tgt_v, (b, tgt_len))
    y = torch.randint(4, tgt_v, (b * tgt_len,))
    train = counted(lambda: torch.nn.functional.cross_entropy(net(src, prev).view(-1, tgt_v), y).backward())
    with torch.no_grad():
        net.eval()
        ev = counted(lambda: net(src, prev))
    return train / b, ev / b


def mt_pair_flops(p, split):
    """mt_flops at the split's mean source and target lengths."""
    n, de, en = IWSLT14[split]
    return mt_flops(p["d_model"], p["ffn"], p["heads"], p["encoder_layers"], p["decoder_layers"],
                    round(de / n), round(en / n))


@functools.lru_cache(maxsize=None)
def dqn_flops(arch, c, h, w, actions):
    """(training FLOPs, forward FLOPs) per state."""
    import torch
    import dqn_reference
    net, b = dqn_reference.build([arch, c, h, w, actions]), 4
    x = torch.rand(b, c, h, w)
    train = counted(lambda: net(x).sum().backward())
    with torch.no_grad():
        ev = counted(lambda: net(x))
    return train / b, ev / b


def run_work(run, runs_by_id):
    """(FLOPs, DQN updates, model key) of one run."""
    p, kind = run["params"], run["kind"]
    if kind == "vision":
        n_train, n_test, classes, size = VISION_DATA[run["datasets"][0]]
        if p.get("train_subset"):
            n_train = min(n_train, p["train_subset"])
        tr, ev = vision_flops(p["model"], classes, p["width"], size)
        return p["epochs"] * (n_train * tr + n_test * ev), 0, p["model"]
    if kind == "sharpness":
        flops, model = 0.0, None
        for up in run["upstream"]:
            u = runs_by_id[up]
            _, _, classes, size = VISION_DATA[u["datasets"][0]]
            tr, _ = vision_flops(u["params"]["model"], classes, u["params"]["width"], size)
            # tr(H) and tr(H_si)·‖w‖²: the probes twice; λ_max and S_inv: the iterations twice;
            # per_layer: λ_max of each layer's block (every conv of these nets feeds a BN).
            hvps = 2 * p["trace_probes"] + 2 * p["hessian_iters"]
            if p.get("per_layer"):
                hvps += conv_layers(u["params"]["model"], classes, u["params"]["width"]) * p["hessian_iters"]
            flops += p["subset"] * tr * (2 * hvps + p["ascent_steps"])
            model = u["params"]["model"]
        return flops, 0, model
    if kind == "lm":
        train = p["train_tokens"] or WIKITEXT2["train"]
        tr, ev = lm_flops(WIKITEXT2["vocab"], p["d_model"], p["heads"], p["layers"], p["ffn"], p["bptt"])
        return p["epochs"] * (train * tr + WIKITEXT2["valid"] * ev) + WIKITEXT2["test"] * ev, 0, "lm"
    if kind == "translate":
        n_train = min(p["train_pairs"] or IWSLT14["train"][0], IWSLT14["train"][0])
        n_valid, n_test = IWSLT14["valid"][0], p["test_sentences"] or IWSLT14["test"][0]
        tr, _ = mt_pair_flops(p, "train")
        _, ev = mt_pair_flops(p, "valid")
        _, test = mt_pair_flops(p, "test")
        # Beam search runs each target position once per beam (incremental decoding).
        return p["epochs"] * (n_train * tr + n_valid * ev) + n_test * p["beam"] * test, 0, "mt"
    if kind == "dqn":
        if p["env"] == "minatar":
            shape = ("minatar", MINATAR_CHANNELS[p["game"]], 10, 10, 6)
        else:
            shape = ("nature", p["history"], 84, 84, 6)
        tr, fwd = dqn_flops(*shape)
        updates = max(0, p["frames"] - p["min_replay"]) // p["update_every"]
        evals = p["frames"] // p["iteration_steps"] * p["eval_steps"]
        per_update = p["batch_size"] * (tr + fwd)  # online forward + backward, target forward
        return updates * per_update + (p["frames"] + evals) * fwd, updates, shape[0]
    raise SystemExit(f"cost_model: no work formula for stage kind '{kind}' (run {run['run']})")


def measured_rates(path):
    """Per model: TFLOP/s measured on the GPU check's CUDA benchmark rows; per DQN net: s/update."""
    check = json.load(open(path))
    rates, updates = {}, {}
    for row in check["bench"].get("vision", []):
        model = row["label"].split(",")[0]
        parts = row["label"].split(", ")
        classes, width, size = int(parts[1].split()[0]), float(parts[2].split()[1]), int(parts[3].split("×")[0])
        rates[model] = row["repro"] * vision_flops(model, classes, width, size)[0] / 1e12
    for row in check["bench"].get("lm", []):
        if "single-tensor" in row["baseline_label"] and "vocab 33278" in row["label"]:
            rates["lm"] = row["repro"] * lm_flops(33278, 200, 2, 2, 200, 35)[0] / 1e12
    for row in check["bench"].get("mt", []):
        if "single-tensor" in row["baseline_label"]:
            # tokens/s counts target tokens; the GPU rows run 32 → 32 tokens per pair
            rates["mt"] = row["repro"] / 32 * mt_flops(512, 1024, 4, 6, 6, 32, 32)[0] / 1e12
    for row in check["bench"].get("rl", []):
        if row["label"].startswith("DQN update"):
            updates["minatar" if "MinAtar" in row["label"] else "nature"] = 1.0 / row["repro"]
    return rates, updates, check["device"].get("gpu", "?")


# The GPU check's fused rows per kind: (label prefix, rate), one group of N against N solo runs.
FUSED_ROWS = {"dqn": ("MinAtar DQN stage end to end", "member updates/s"),
              "lm": ("WikiText LM stage end to end", "tokens/s")}


def fused_gains(path):
    """(kind, members per group) → a fused worker's measured gain over solo runs."""
    gains = {}
    for row in json.load(open(path))["bench"].get("fuse", []):
        label = row["label"]
        for kind, (prefix, rate) in FUSED_ROWS.items():
            if label.startswith(prefix) and label.endswith(rate):
                gains[kind, int(label.split(", ")[1].split()[0])] = row["ratio_median"]
    return gains


def fused_gain(run, gains):
    """The gain a run's group gets: the measured one at the largest N ≤ its group's size (1 alone
    or unmeasured)."""
    size = (run.get("fused") or {}).get("size", 1)
    measured = [n for kind, n in gains if kind == run["kind"] and n <= size]
    return gains[run["kind"], max(measured)] if size > 1 and measured else 1.0


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--profile", default="paper,reduced")
    ap.add_argument("--gpu-check")
    ap.add_argument("--peak-tflops", type=float, default=67.0)
    ap.add_argument("--utilisation", type=float, default=0.35)
    ap.add_argument("--update-ms", type=float, default=1.5)
    ap.add_argument("--repro", default=os.path.join(ROOT, "target", "release", "repro"))
    args = ap.parse_args()
    rates, update_s, gpu = measured_rates(args.gpu_check) if args.gpu_check else ({}, {}, None)
    gains = fused_gains(args.gpu_check) if args.gpu_check else {}
    assumed = args.utilisation * args.peak_tflops
    basis = (f"measured on {gpu} (scripts/gpu-check.sh)" if gpu else
             f"estimate: {args.utilisation:.0%} of {args.peak_tflops:g} FP32 TFLOP/s sustained, DQN updates "
             f"≥ {args.update_ms:g} ms (defaults of ours)")
    print(f"GPU-hours on one GPU, runs one after another; {basis}.\n")
    for profile in args.profile.split(","):
        out = subprocess.run([args.repro, "plan", "--profile", profile, "--device", "cpu", "--json"], cwd=ROOT,
                             capture_output=True, text=True)
        if out.returncode != 0:
            raise SystemExit(f"cost_model: repro plan --profile {profile} failed:\n{out.stderr}")
        runs = [json.loads(l) for l in out.stdout.splitlines()]
        by_id = {r["run"]: r for r in runs}
        per_exp = {}
        for r in runs:
            flops, updates, model = run_work(r, by_id)
            tflops = rates.get(model, assumed)
            secs = flops / (tflops * 1e12)
            if updates:
                floor = update_s.get(model, args.update_ms / 1e3)
                secs = max(secs, updates * floor)
            gain = fused_gain(r, gains)
            secs /= gain
            e = per_exp.setdefault(r["experiment"], {"runs": 0, "flops": 0.0, "secs": 0.0, "fused": 0,
                                                     "solo_rate": 0, "measured": model in rates or model in update_s})
            fused = (r.get("fused") or {}).get("size", 1) > 1
            e["fused"] += fused
            e["solo_rate"] += fused and gain == 1.0
            e["runs"] += 1
            e["flops"] += flops
            e["secs"] += secs
        print(f"### `{profile}` profile\n")
        print("| experiment | runs | PFLOP per run | GPU-hours | basis |")
        print("|---|---|---|---|---|")
        total = 0.0
        for name, e in per_exp.items():
            total += e["secs"]
            basis = "measured" if e["measured"] else "estimate"
            if e["solo_rate"]:
                basis += f", {e['solo_rate']} fused runs at solo rates (no measured gain)"
            elif e["fused"]:
                basis += ", the fused gain measured"
            print(f"| {name} | {e['runs']} | {e['flops'] / e['runs'] / 1e15:,.2f} | {e['secs'] / 3600:,.1f} | "
                  f"{basis} |")
        print(f"| **total** | {len(runs)} | | **{total / 3600:,.1f}** | |\n")


if __name__ == "__main__":
    main()
