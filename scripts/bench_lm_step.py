"""One training step's throughput (tokens/s) of the causal Transformer LM in PyTorch eager: the
baseline that crates/repro-torch/examples/bench_lm_step.rs is compared with in scripts/bench.py. The model is the
test suite's reference (tests/python/lm_reference.py); the step is pytorch/examples
word_language_model's: zero_grad, forward, cross-entropy, backward, clip_grad_norm_(0.25), then
torch.optim.AdamW(lr=1e-3, weight_decay=1e-2) (our defaults, torch's AdamW ones).

    bench_lm_step.py <vocab> <d_model> <heads> <layers> <ffn> <dropout> <norm_first 0|1> <tie 0|1>
                     <batch> <bptt> <threads> <warmup> <steps> <repeats> <single|default|foreach>
                     [<expected params>]

The last argument picks torch's code path for the clipping and the optimizer:
  single   clip_grad_norm_(foreach=False), AdamW(foreach=False): per-tensor loops, as repro
  default  both left to torch: on CPU the clipping uses foreach kernels, AdamW the single-tensor path
  foreach  clip_grad_norm_ and AdamW(foreach=True)

Prints `params <trainable count>` first, then one line per repeat: `tokens/s <x> cpu_tokens/s <y>`
(per wall-clock second and per second of the process's CPU time). With an expected
count (repro's, from the bench_lm_step example), a different count is an error before any timing.
"""
import os
import sys

import torch

import bench_common

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "tests", "python"))
import lm_reference  # noqa: E402  (sets 1 thread on import; main sets the asked count after)

CLIP = 0.25
LR = 1e-3
WEIGHT_DECAY = 1e-2
PATHS = {"single": False, "default": None, "foreach": True}


def main(argv):
    if len(argv) not in (15, 16):
        raise SystemExit(__doc__ + f"\n(got {len(argv)} arguments, expected 15 or 16)")
    config = argv[:8]
    batch, bptt, threads, warmup, steps, repeats = (int(a) for a in argv[8:14])
    if argv[14] not in PATHS:
        raise SystemExit(f"path: expected one of {', '.join(PATHS)}, got '{argv[14]}'")
    foreach = PATHS[argv[14]]
    torch.set_num_threads(threads)
    dev = bench_common.device()
    torch.manual_seed(0)
    model = lm_reference.build(config).to(dev)
    model.train()
    params = [p for p in model.parameters() if p.requires_grad]
    count = sum(p.numel() for p in params)
    print(f"params {count}", flush=True)
    if len(argv) == 16 and count != int(argv[15]):
        raise SystemExit(f"params: PyTorch's model has {count} trainable parameters, repro's {argv[15]}")
    vocab = int(config[0])
    opt = torch.optim.AdamW(params, lr=LR, weight_decay=WEIGHT_DECAY, foreach=foreach)
    # foreach=None for clip_grad_norm_ means foreach on CPU; AdamW's None means single-tensor on CPU.
    clip_foreach = False if foreach is False else None
    data = torch.randint(vocab, (bptt, batch), device=dev)
    targets = torch.randint(vocab, (bptt * batch,), device=dev)

    def step():
        model.zero_grad()
        logits = model(data)
        loss = torch.nn.functional.cross_entropy(logits.view(-1, vocab), targets)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, CLIP, foreach=clip_foreach)
        opt.step()

    for _ in range(warmup):
        step()
    for _ in range(repeats):
        secs, cpu = bench_common.timed(dev, lambda: [step() for _ in range(steps)])
        tokens = steps * batch * bptt
        print(f"tokens/s {tokens / secs:.2f} cpu_tokens/s {tokens / cpu:.2f}", flush=True)


if __name__ == "__main__":
    main(sys.argv[1:])
