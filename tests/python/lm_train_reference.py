"""pytorch/examples word_language_model's training protocol (main.py's train() and evaluate(),
data.py's Corpus/batchify/get_batch from wikitext_reference.py) for the Transformer of
lm_reference.py, with torch.optim.Adam or AdamW in place of main.py's manual SGD: the reference
the `lm` stage (crates/repro-torch/src/train/lm/mod.rs) is compared with in tests/it/lm_stage.rs.

usage: lm_train_reference.py CORPUS_DIR INIT.safetensors CONFIG_JSON
  CONFIG_JSON: {"d_model", "heads", "layers", "ffn", "norm_first", "tie_embeddings", "optimizer":
  "adam"|"adamw", "lr", "weight_decay", "betas", "eps", "epochs", "batch_size",
  "eval_batch_size", "bptt", "clip"}; dropout is 0 (the comparison is deterministic).
Prints one JSON object per epoch: train_loss, valid_loss, test_loss, weight_norm.
"""

import json
import sys

import torch
import torch.nn as nn

from lm_reference import TransformerLm
from models import read_safetensors
from wikitext_reference import Corpus, batchify, get_batch

torch.set_num_threads(1)


def evaluate(model, source, bptt, ntokens, criterion):
    model.eval()
    total = 0.0
    with torch.no_grad():
        for i in range(0, source.size(0) - 1, bptt):
            data, targets = get_batch(source, i, bptt)
            output = model(data)
            total += len(data) * criterion(output.view(-1, ntokens), targets).item()
    return total / (len(source) - 1)


def main(argv):
    folder, weights, cfg = argv[0], argv[1], json.loads(argv[2])
    corpus = Corpus(folder)
    ntokens = len(corpus.dictionary)
    train = batchify(corpus.train, cfg["batch_size"])
    valid = batchify(corpus.valid, cfg["eval_batch_size"])
    test = batchify(corpus.test, cfg["eval_batch_size"])
    model = TransformerLm(ntokens, cfg["d_model"], cfg["heads"], cfg["layers"], cfg["ffn"], 0.0,
                          cfg["norm_first"], cfg["tie_embeddings"])
    state = read_safetensors(weights)
    if cfg["tie_embeddings"]:
        state["decoder.weight"] = state["encoder.weight"]
    model.load_state_dict(state, strict=True)
    opt_class = {"adam": torch.optim.Adam, "adamw": torch.optim.AdamW}[cfg["optimizer"]]
    opt = opt_class(model.parameters(), lr=cfg["lr"], betas=tuple(cfg["betas"]), eps=cfg["eps"],
                    weight_decay=cfg["weight_decay"], foreach=False)
    criterion = nn.CrossEntropyLoss()
    bptt = cfg["bptt"]
    for _ in range(cfg["epochs"]):
        model.train()
        total = 0.0
        for i in range(0, train.size(0) - 1, bptt):
            data, targets = get_batch(train, i, bptt)
            model.zero_grad()
            output = model(data)
            loss = criterion(output.view(-1, ntokens), targets)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), cfg["clip"])
            opt.step()
            total += len(data) * loss.item()
        with torch.no_grad():
            norm = sum(p.double().square().sum() for p in model.parameters()).sqrt().item()
        print(json.dumps({
            "train_loss": total / (train.size(0) - 1),
            "valid_loss": evaluate(model, valid, bptt, ntokens, criterion),
            "test_loss": evaluate(model, test, bptt, ntokens, criterion),
            "weight_norm": norm,
        }))


if __name__ == "__main__":
    main(sys.argv[1:])
