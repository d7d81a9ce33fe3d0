"""Reference, in plain PyTorch, of crates/repro-torch/src/nn/transformer_lm.rs: pytorch/examples word_language_model
`TransformerModel` made causal, returning logits, with nn.TransformerEncoder(norm=LayerNorm) when
norm_first (pre-LN), and the positional-encoding buffer non-persistent (not in the state_dict).

A config is 8 arguments: <vocab> <d_model> <heads> <layers> <ffn> <dropout> <norm_first 0|1> <tie 0|1>

Commands:
  count <config>
      print the trainable parameter count (shared parameters once)
  forward <config> <weights.safetensors> <tokens.npy> <out.npy>
      load the weights with load_state_dict(strict=True), run the tokens [seq, batch] in eval
      mode, write the logits [seq, batch, vocab]
"""

import math
import sys

import numpy as np
import torch
import torch.nn as nn

from models import read_safetensors

torch.set_num_threads(1)


class PositionalEncoding(nn.Module):
    def __init__(self, d_model, dropout=0.1, max_len=5000):
        super().__init__()
        self.dropout = nn.Dropout(p=dropout)
        pe = torch.zeros(max_len, d_model)
        position = torch.arange(0, max_len, dtype=torch.float).unsqueeze(1)
        div_term = torch.exp(torch.arange(0, d_model, 2).float() * (-math.log(10000.0) / d_model))
        pe[:, 0::2] = torch.sin(position * div_term)
        pe[:, 1::2] = torch.cos(position * div_term)
        pe = pe.unsqueeze(0).transpose(0, 1)
        # pytorch/examples registers it persistent; here it stays out of the state_dict.
        self.register_buffer("pe", pe, persistent=False)

    def forward(self, x):
        x = x + self.pe[: x.size(0), :]
        return self.dropout(x)


class TransformerLm(nn.Module):
    def __init__(self, vocab, d, heads, layers, ffn, dropout, norm_first, tie):
        super().__init__()
        self.d = d
        self.pos_encoder = PositionalEncoding(d, dropout)
        layer = nn.TransformerEncoderLayer(
            d, heads, ffn, dropout, activation="relu", batch_first=False, norm_first=norm_first
        )
        norm = nn.LayerNorm(d) if norm_first else None
        self.transformer_encoder = nn.TransformerEncoder(
            layer, layers, norm=norm, enable_nested_tensor=False
        )
        self.encoder = nn.Embedding(vocab, d)
        self.decoder = nn.Linear(d, vocab)
        if tie:
            self.decoder.weight = self.encoder.weight
        self.tie = tie
        nn.init.uniform_(self.encoder.weight, -0.1, 0.1)
        nn.init.zeros_(self.decoder.bias)
        if not tie:
            nn.init.uniform_(self.decoder.weight, -0.1, 0.1)

    def forward(self, src):
        s = src.size(0)
        mask = nn.Transformer.generate_square_subsequent_mask(s)
        x = self.encoder(src) * math.sqrt(self.d)
        x = self.pos_encoder(x)
        x = self.transformer_encoder(x, mask, is_causal=True)
        return self.decoder(x)


def build(args):
    vocab, d, heads, layers, ffn = (int(a) for a in args[:5])
    dropout = float(args[5])
    norm_first, tie = args[6] == "1", args[7] == "1"
    return TransformerLm(vocab, d, heads, layers, ffn, dropout, norm_first, tie)


def main(argv):
    cmd = argv[0]
    if cmd == "count":
        m = build(argv[1:9])
        print(sum(p.numel() for p in m.parameters() if p.requires_grad))
    elif cmd == "forward":
        m = build(argv[1:9])
        weights, inp, out = argv[9], argv[10], argv[11]
        state = read_safetensors(weights)
        if m.tie:
            # The Rust VarStore holds the tied weight once, as encoder.weight.
            assert "decoder.weight" not in state, sorted(state)
            state["decoder.weight"] = state["encoder.weight"]
        m.load_state_dict(state, strict=True)
        if m.tie:
            assert m.decoder.weight is m.encoder.weight
        tokens = torch.from_numpy(np.load(inp)).long()
        m.eval()
        with torch.no_grad():
            np.save(out, m(tokens).numpy())
    else:
        raise SystemExit(f"unknown command {cmd}; see the docstring")


if __name__ == "__main__":
    main(sys.argv[1:])
