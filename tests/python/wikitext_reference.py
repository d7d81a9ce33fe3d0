"""Reference WikiText reading for crates/repro-torch/tests/it/wikitext.rs: pytorch/examples word_language_model/data.py
(Dictionary, Corpus) and main.py (batchify, get_batch), literally, on `wiki.*.tokens`.

argv: folder holding the split files, JSON list of words to look up, batch size, bptt.
Prints JSON: vocabulary size, the words' indices, per split its length, first/last 1000 ids and
sum, and the batchified train split's shape, a few elements and get_batch at the first and last
windows."""
import json
import os
import sys

import torch


class Dictionary(object):
    def __init__(self):
        self.word2idx = {}
        self.idx2word = []

    def add_word(self, word):
        if word not in self.word2idx:
            self.idx2word.append(word)
            self.word2idx[word] = len(self.idx2word) - 1
        return self.word2idx[word]

    def __len__(self):
        return len(self.idx2word)


class Corpus(object):
    def __init__(self, path):
        self.dictionary = Dictionary()
        self.train = self.tokenize(os.path.join(path, 'wiki.train.tokens'))
        self.valid = self.tokenize(os.path.join(path, 'wiki.valid.tokens'))
        self.test = self.tokenize(os.path.join(path, 'wiki.test.tokens'))

    def tokenize(self, path):
        """Tokenizes a text file."""
        assert os.path.exists(path)
        # Add words to the dictionary
        with open(path, 'r', encoding="utf8") as f:
            for line in f:
                words = line.split() + ['<eos>']
                for word in words:
                    self.dictionary.add_word(word)

        # Tokenize file content
        with open(path, 'r', encoding="utf8") as f:
            idss = []
            for line in f:
                words = line.split() + ['<eos>']
                ids = []
                for word in words:
                    ids.append(self.dictionary.word2idx[word])
                idss.append(torch.tensor(ids).type(torch.int64))
            ids = torch.cat(idss)

        return ids


def batchify(data, bsz):
    # Work out how cleanly we can divide the dataset into bsz parts.
    nbatch = data.size(0) // bsz
    # Trim off any extra elements that wouldn't cleanly fit (remainders).
    data = data.narrow(0, 0, nbatch * bsz)
    # Evenly divide the data across the bsz batches.
    data = data.view(bsz, -1).t().contiguous()
    return data


def get_batch(source, i, bptt):
    seq_len = min(bptt, len(source) - 1 - i)
    data = source[i:i + seq_len]
    target = source[i + 1:i + 1 + seq_len].view(-1)
    return data, target


def main():
    folder, words, bsz, bptt = sys.argv[1], json.loads(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
    corpus = Corpus(folder)
    out = {
        "vocab": len(corpus.dictionary),
        "index": {w: corpus.dictionary.word2idx.get(w) for w in words},
        "first_words": corpus.dictionary.idx2word[:50],
    }
    for name in ("train", "valid", "test"):
        ids = getattr(corpus, name)
        out[name] = {"len": len(ids), "first": ids[:1000].tolist(), "last": ids[-1000:].tolist(),
                     "sum": int(ids.sum())}
    src = batchify(corpus.train, bsz)
    last = list(range(0, src.size(0) - 1, bptt))[-1]
    batches = {}
    for i in (0, last):
        data, target = get_batch(src, i, bptt)
        batches[str(i)] = {"data_shape": list(data.shape), "data": data.flatten().tolist(),
                           "target": target.tolist()}
    out["batchify"] = {
        "shape": list(src.shape),
        "elements": [[r, c, int(src[r, c])] for r, c in
                     [(0, 0), (0, bsz - 1), (1, 0), (src.size(0) - 1, 0), (src.size(0) - 1, bsz - 1),
                      (src.size(0) // 2, bsz // 2)]],
        "last": last,
        "batches": batches,
    }
    print(json.dumps(out))


if __name__ == "__main__":
    main()
