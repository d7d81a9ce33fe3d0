"""Reference BLEU from sacreBLEU 2.5.1 for crates/repro-core/tests/it/bleu.rs. argv[1] is a JSON object:
{"cases": [{"hyp": path, "refs": [path, ...], "tokenize": "13a"|"none",
            "smooth": "exp"|"floor"|"add-k"|"none", "smooth_value": float|null,
            "lowercase": bool}, ...],
 "tok13a": [string, ...]}
Files hold one segment a line, each line ended by "\n" (empty lines are empty segments).
Prints {"cases": [{"score", "counts", "totals", "raw_counts", "raw_totals", "precisions",
"bp", "sys_len", "ref_len", "format"}], "tok13a": [tokenized string, ...]}; raw_* are the
summed segment statistics before add-k smoothing touches them."""
import json
import sys

import sacrebleu
from sacrebleu.metrics.bleu import BLEU
from sacrebleu.tokenizers.tokenizer_13a import Tokenizer13a
from sacrebleu.utils import sum_of_lists

assert sacrebleu.__version__ == "2.5.1", sacrebleu.__version__


def lines(path):
    with open(path, encoding="utf-8", newline="") as f:
        text = f.read()
    assert text.endswith("\n"), path
    return text[:-1].split("\n")


def case(c):
    hyps = lines(c["hyp"])
    refs = [lines(p) for p in c["refs"]]
    kw = dict(tokenize=c["tokenize"], smooth_method=c["smooth"],
              smooth_value=c.get("smooth_value"), lowercase=c["lowercase"])
    b = sacrebleu.corpus_bleu(hyps, refs, **kw)
    metric = BLEU(**kw)
    stats = sum_of_lists(metric._extract_corpus_statistics(hyps, refs))
    n = metric.max_ngram_order
    return {"score": b.score, "counts": b.counts, "totals": b.totals,
            "raw_counts": stats[2:2 + n], "raw_totals": stats[2 + n:],
            "precisions": b.precisions, "bp": b.bp, "sys_len": b.sys_len,
            "ref_len": b.ref_len, "format": b.format()}


args = json.loads(sys.argv[1])
tok = Tokenizer13a()
print(json.dumps({"cases": [case(c) for c in args.get("cases", [])],
                  "tok13a": [tok(s) for s in args.get("tok13a", [])]}))
