"""One training step's throughput (target tokens/s) of fairseq's Transformer encoder-decoder in
PyTorch eager: the baseline that crates/repro-torch/examples/bench_mt_step.rs is compared with in scripts/bench.py.
The model is the test suite's reference (tests/python/mt_reference.py, fairseq 0.12's
TransformerModel written out; fairseq itself cannot be installed here); the step is fairseq's:
zero_grad, forward, label_smoothed_nll_loss (ε 0.1) summed and divided by the target tokens,
backward, then torch.optim.AdamW(lr=5e-4, betas=(0.9, 0.98), weight_decay=1e-4) (the IWSLT
recipe's settings; fairseq's own adam is the same decoupled update).

    bench_mt_step.py <src_vocab> <tgt_vocab> <d_model> <ffn> <heads> <enc_layers> <dec_layers>
                     <batch> <src_len> <tgt_len> <threads> <warmup> <steps> <repeats>
                     <single|foreach> [<expected params>]

Prints `params <count>` first, then one line per repeat: `tokens/s <x> cpu_tokens/s <y>`. With an
expected count (repro's), a different count is an error before any timing.
"""
import os
import sys

import torch

import bench_common

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "tests", "python"))
import mt_reference  # noqa: E402  (sets 1 thread on import; main sets the asked count after)

LR, WEIGHT_DECAY, EPS = 5e-4, 1e-4, 0.1
PATHS = {"single": False, "foreach": True}


def label_smoothed(logits, target, eps):
    lprobs = torch.log_softmax(logits, dim=-1, dtype=torch.float32).view(-1, logits.size(-1))
    target = target.reshape(-1, 1)
    nll = -lprobs.gather(dim=-1, index=target).sum()
    smooth = -lprobs.sum(dim=-1, keepdim=True).sum()
    eps_i = eps / (lprobs.size(-1) - 1)
    return (1.0 - eps - eps_i) * nll + eps_i * smooth


def main(argv):
    if len(argv) not in (15, 16):
        raise SystemExit(__doc__ + f"\n(got {len(argv)} arguments, expected 15 or 16)")
    config = argv[:7]
    batch, src_len, tgt_len, threads, warmup, steps, repeats = (int(a) for a in argv[7:14])
    if argv[14] not in PATHS:
        raise SystemExit(f"path: expected one of {', '.join(PATHS)}, got '{argv[14]}'")
    torch.set_num_threads(threads)
    dev = bench_common.device()
    torch.manual_seed(0)
    model = mt_reference.build(config).to(dev)
    model.train()
    params = [p for p in model.parameters() if p.requires_grad]
    count = sum(p.numel() for p in params)
    print(f"params {count}", flush=True)
    if len(argv) == 16 and count != int(argv[15]):
        raise SystemExit(f"params: PyTorch's model has {count} trainable parameters, repro's {argv[15]}")
    src_vocab, tgt_vocab = int(config[0]), int(config[1])
    opt = torch.optim.AdamW(params, lr=LR, betas=(0.9, 0.98), weight_decay=WEIGHT_DECAY,
                            foreach=PATHS[argv[14]])
    src = torch.randint(4, src_vocab, (batch, src_len), device=dev)
    prev = torch.randint(4, tgt_vocab, (batch, tgt_len), device=dev)
    target = torch.randint(4, tgt_vocab, (batch, tgt_len), device=dev)
    ntokens = batch * tgt_len

    def step():
        model.zero_grad()
        loss = label_smoothed(model(src, prev), target, EPS) / ntokens
        loss.backward()
        opt.step()

    for _ in range(warmup):
        step()
    for _ in range(repeats):
        secs, cpu = bench_common.timed(dev, lambda: [step() for _ in range(steps)])
        tokens = steps * ntokens
        print(f"tokens/s {tokens / secs:.2f} cpu_tokens/s {tokens / cpu:.2f}", flush=True)


if __name__ == "__main__":
    main(sys.argv[1:])
