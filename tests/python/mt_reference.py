"""Eager PyTorch reference of crates/repro-torch/src/nn/transformer_mt.rs and crates/repro-torch/src/nn/beam_search.rs: fairseq 0.12's
TransformerModel (transformer_iwslt_de_en: post-LN, sinusoidal positions, shared decoder
input/output embedding), written from fairseq's semantics with torch.nn.functional and fairseq's
state-dict names (fairseq itself is not installable here), and SequenceGenerator's beam search
with full recomputation of the decoder at every step (no incremental state), one sentence at a time.

A config is 7 arguments: <src_vocab> <tgt_vocab> <d_model> <ffn> <heads> <enc_layers> <dec_layers>

Commands:
  count <config>
      print the parameter count of a freshly initialised model
  forward <config> <weights.safetensors> <src.npy> <prev.npy> <out.npy>
      load the weights (strict), eval-mode logits [B, T, V] of src [B, S] and prev [B, T]
  generate <config> <weights.safetensors> <src.npy> <beam> <lenpen> <max_len_a> <max_len_b> <min_len>
      beam search each source row (its pads stripped); print JSON [[{"tokens": [...], "score": x}]]
"""

import json
import math
import sys

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from models import read_safetensors

torch.set_num_threads(1)

PAD, EOS = 1, 2
MAX_POSITIONS = 1024


def make_positions(tokens, pad):
    mask = tokens.ne(pad).int()
    return (torch.cumsum(mask, dim=1).type_as(mask) * mask).long() + pad


def sinusoidal(num, d, pad):
    half = d // 2
    emb = math.log(10000) / (half - 1)
    emb = torch.exp(torch.arange(half, dtype=torch.float) * -emb)
    emb = torch.arange(num, dtype=torch.float).unsqueeze(1) * emb.unsqueeze(0)
    emb = torch.cat([torch.sin(emb), torch.cos(emb)], dim=1).view(num, -1)
    emb[pad, :] = 0
    return emb


class MultiheadAttention(nn.Module):
    def __init__(self, d, heads):
        super().__init__()
        self.heads = heads
        self.k_proj = nn.Linear(d, d)
        self.v_proj = nn.Linear(d, d)
        self.q_proj = nn.Linear(d, d)
        self.out_proj = nn.Linear(d, d)
        nn.init.xavier_uniform_(self.k_proj.weight, gain=1 / math.sqrt(2))
        nn.init.xavier_uniform_(self.v_proj.weight, gain=1 / math.sqrt(2))
        nn.init.xavier_uniform_(self.q_proj.weight, gain=1 / math.sqrt(2))
        nn.init.xavier_uniform_(self.out_proj.weight)
        nn.init.constant_(self.out_proj.bias, 0.0)

    def forward(self, query, key, key_padding_mask=None, attn_mask=None):
        # Time-first, as fairseq: query [T, B, d], key [S, B, d].
        tgt_len, bsz, d = query.size()
        src_len = key.size(0)
        hd = d // self.heads
        q = self.q_proj(query) * hd**-0.5
        k = self.k_proj(key)
        v = self.v_proj(key)
        q = q.contiguous().view(tgt_len, bsz * self.heads, hd).transpose(0, 1)
        k = k.contiguous().view(src_len, bsz * self.heads, hd).transpose(0, 1)
        v = v.contiguous().view(src_len, bsz * self.heads, hd).transpose(0, 1)
        w = torch.bmm(q, k.transpose(1, 2))
        if attn_mask is not None:
            w = w + attn_mask.unsqueeze(0)
        if key_padding_mask is not None:
            w = w.view(bsz, self.heads, tgt_len, src_len)
            w = w.masked_fill(key_padding_mask.unsqueeze(1).unsqueeze(2).bool(), float("-inf"))
            w = w.view(bsz * self.heads, tgt_len, src_len)
        w = F.softmax(w.float(), dim=-1).type_as(w)
        out = torch.bmm(w, v).transpose(0, 1).contiguous().view(tgt_len, bsz, d)
        return self.out_proj(out)


class EncoderLayer(nn.Module):
    def __init__(self, d, ffn, heads):
        super().__init__()
        self.self_attn = MultiheadAttention(d, heads)
        self.self_attn_layer_norm = nn.LayerNorm(d)
        self.fc1 = nn.Linear(d, ffn)
        self.fc2 = nn.Linear(ffn, d)
        self.final_layer_norm = nn.LayerNorm(d)

    def forward(self, x, pad_mask):
        x = self.self_attn_layer_norm(x + self.self_attn(x, x, key_padding_mask=pad_mask))
        return self.final_layer_norm(x + self.fc2(F.relu(self.fc1(x))))


class DecoderLayer(nn.Module):
    def __init__(self, d, ffn, heads):
        super().__init__()
        self.self_attn = MultiheadAttention(d, heads)
        self.self_attn_layer_norm = nn.LayerNorm(d)
        self.encoder_attn = MultiheadAttention(d, heads)
        self.encoder_attn_layer_norm = nn.LayerNorm(d)
        self.fc1 = nn.Linear(d, ffn)
        self.fc2 = nn.Linear(ffn, d)
        self.final_layer_norm = nn.LayerNorm(d)

    def forward(self, x, enc, enc_pad, self_mask, self_pad):
        x = self.self_attn_layer_norm(
            x + self.self_attn(x, x, key_padding_mask=self_pad, attn_mask=self_mask)
        )
        x = self.encoder_attn_layer_norm(x + self.encoder_attn(x, enc, key_padding_mask=enc_pad))
        return self.final_layer_norm(x + self.fc2(F.relu(self.fc1(x))))


def embedding(vocab, d):
    e = nn.Embedding(vocab, d, padding_idx=PAD)
    nn.init.normal_(e.weight, mean=0, std=d**-0.5)
    nn.init.constant_(e.weight[PAD], 0)
    return e


class Encoder(nn.Module):
    def __init__(self, vocab, d, ffn, heads, layers):
        super().__init__()
        self.d = d
        self.embed_tokens = embedding(vocab, d)
        self.layers = nn.ModuleList(EncoderLayer(d, ffn, heads) for _ in range(layers))

    def forward(self, src):
        pad_mask = src.eq(PAD)
        table = sinusoidal(MAX_POSITIONS + PAD + 1, self.d, PAD)
        x = self.embed_tokens(src) * math.sqrt(self.d) + table[make_positions(src, PAD)]
        x = x * (1 - pad_mask.unsqueeze(-1).type_as(x))
        x = x.transpose(0, 1)
        for layer in self.layers:
            x = layer(x, pad_mask)
        return x, pad_mask


class Decoder(nn.Module):
    def __init__(self, vocab, d, ffn, heads, layers):
        super().__init__()
        self.d = d
        self.embed_tokens = embedding(vocab, d)
        self.layers = nn.ModuleList(DecoderLayer(d, ffn, heads) for _ in range(layers))

    def forward(self, prev, enc, enc_pad):
        t = prev.size(1)
        table = sinusoidal(MAX_POSITIONS + PAD + 1, self.d, PAD)
        x = self.embed_tokens(prev) * math.sqrt(self.d) + table[make_positions(prev, PAD)]
        x = x.transpose(0, 1)
        self_mask = torch.triu(torch.full((t, t), float("-inf")), 1)
        self_pad = prev.eq(PAD) if prev.eq(PAD).any() else None
        for layer in self.layers:
            x = layer(x, enc, enc_pad, self_mask, self_pad)
        x = x.transpose(0, 1)
        return F.linear(x, self.embed_tokens.weight)


class TransformerModel(nn.Module):
    def __init__(self, src_vocab, tgt_vocab, d, ffn, heads, enc_layers, dec_layers):
        super().__init__()
        self.encoder = Encoder(src_vocab, d, ffn, heads, enc_layers)
        self.decoder = Decoder(tgt_vocab, d, ffn, heads, dec_layers)

    def forward(self, src, prev):
        enc, enc_pad = self.encoder(src)
        return self.decoder(prev, enc, enc_pad)


def build(args):
    return TransformerModel(*(int(a) for a in args[:7]))


def load(args, path):
    m = build(args)
    m.load_state_dict(read_safetensors(path), strict=True)
    return m.eval()


def beam_search(model, src, beam, lenpen, max_len_a, max_len_b, min_len):
    """SequenceGenerator._generate for one sentence src [1, S], recomputing the decoder."""
    vocab = model.decoder.embed_tokens.weight.size(0)
    max_len = min(int(max_len_a * src.size(1) + max_len_b), MAX_POSITIONS - 1)
    enc, enc_pad = model.encoder(src)
    enc = enc.repeat(1, beam, 1)
    enc_pad = enc_pad.repeat(beam, 1)
    tokens = torch.full((beam, 1), EOS, dtype=torch.long)
    scores = torch.zeros(beam, 0)
    finalized = []
    for step in range(max_len + 1):
        logits = model.decoder(tokens, enc, enc_pad)[:, -1, :]
        lprobs = F.log_softmax(logits.float(), dim=-1)
        lprobs[:, PAD] = float("-inf")
        if step >= max_len:
            lprobs[:, :EOS] = float("-inf")
            lprobs[:, EOS + 1 :] = float("-inf")
        elif step < min_len:
            lprobs[:, EOS] = float("-inf")
        if step == 0:
            flat = lprobs[:1].reshape(-1)
        else:
            flat = (lprobs + scores[:, step - 1].unsqueeze(-1)).reshape(-1)
        c = min(2 * beam, flat.numel() - 1)
        cand_scores, cand_idx = torch.topk(flat, k=c)
        cand_beams = cand_idx // vocab
        cand_tok = cand_idx % vocab
        eos = cand_tok.eq(EOS) & cand_scores.ne(float("-inf"))
        for j in range(min(beam, c)):
            if eos[j] and len(finalized) < beam:
                finalized.append(
                    {
                        "tokens": tokens[cand_beams[j], 1:].tolist(),
                        "score": float(cand_scores[j]) / (step + 1) ** lenpen,
                    }
                )
        if len(finalized) == beam or step == max_len:
            break
        active = [j for j in range(c) if not eos[j]][:beam]
        rows = cand_beams[active]
        tokens = torch.cat([tokens[rows], cand_tok[active].unsqueeze(1)], dim=1)
        scores = torch.cat([scores[rows], cand_scores[active].unsqueeze(1)], dim=1)
    finalized.sort(key=lambda h: -h["score"])
    return finalized


def main():
    cmd, args = sys.argv[1], sys.argv[2:]
    if cmd == "count":
        print(sum(p.numel() for p in build(args).parameters()))
        return
    with torch.no_grad():
        if cmd == "forward":
            m = load(args, args[7])
            src = torch.from_numpy(np.load(args[8]))
            prev = torch.from_numpy(np.load(args[9]))
            np.save(args[10], m(src, prev).numpy())
        elif cmd == "generate":
            m = load(args, args[7])
            src = torch.from_numpy(np.load(args[8]))
            beam, lenpen, a, b, min_len = args[9:14]
            out = []
            for row in src:
                row = row[row.ne(PAD)].unsqueeze(0)
                out.append(
                    beam_search(m, row, int(beam), float(lenpen), float(a), int(b), int(min_len))
                )
            print(json.dumps(out))
        else:
            raise SystemExit(f"unknown command {cmd}")


if __name__ == "__main__":
    main()
