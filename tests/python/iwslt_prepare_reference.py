"""fairseq's examples/translation/prepare-iwslt14.sh, step for step, with the Python ports of its
tools: sacremoses for Moses' tokenizer.perl (escaping on, no -a), str.lower for lowercase.perl,
clean-corpus-n.perl's rules written out, and subword-nmt 0.3.8's learn_bpe / apply_bpe.

    iwslt_prepare_reference.py ORIG_DIR(de-en/) OUT_DIR BPE_MERGES

Writes OUT_DIR/{train,valid,test}.{de,en} and OUT_DIR/code as the script does.
"""
import io
import os
import re
import sys

from sacremoses import MosesTokenizer
from subword_nmt.apply_bpe import BPE
from subword_nmt.learn_bpe import learn_bpe

orig, out, merges = sys.argv[1], sys.argv[2], int(sys.argv[3])
os.makedirs(out, exist_ok=True)
tok = {l: MosesTokenizer(lang=l) for l in ("de", "en")}


def tokenize(lang, line):
    return tok[lang].tokenize(line, return_str=True, escape=True, aggressive_dash_splits=False)


def read_lines(path):
    with open(path, encoding="utf-8", newline="\n") as f:
        return f.read().split("\n")[:-1]


train = {}
for l in ("de", "en"):
    lines = []
    for line in read_lines(os.path.join(orig, f"train.tags.de-en.{l}")):
        if "<url>" in line or "<talkid>" in line or "<keywords>" in line:
            continue
        for tag in ("<title>", "</title>", "<description>", "</description>"):
            line = line.replace(tag, "")
        lines.append(tokenize(l, line))
    train[l] = lines

# clean-corpus-n.perl -ratio 1.5 ... 1 175
kept = {"de": [], "en": []}
for d, e in zip(train["de"], train["en"]):
    d = re.sub(r"\s+", " ", d).strip()
    e = re.sub(r"\s+", " ", e).strip()
    if not d or not e:
        continue
    nd, ne = len(d.split(" ")), len(e.split(" "))
    if nd > 175 or ne > 175 or nd < 1 or ne < 1:
        continue
    if nd / ne > 1.5 or ne / nd > 1.5:
        continue
    kept["de"].append(d.lower())
    kept["en"].append(e.lower())

splits = {}
for l in ("de", "en"):
    splits[("valid", l)] = [x for i, x in enumerate(kept[l], 1) if i % 23 == 0]
    splits[("train", l)] = [x for i, x in enumerate(kept[l], 1) if i % 23 != 0]
    test = []
    for name in ("IWSLT14.TED.dev2010", "IWSLT14.TEDX.dev2012", "IWSLT14.TED.tst2010",
                 "IWSLT14.TED.tst2011", "IWSLT14.TED.tst2012"):
        for line in read_lines(os.path.join(orig, f"{name}.de-en.{l}.xml")):
            if "<seg id" not in line:
                continue
            line = re.sub(r'<seg id="[0-9]*">\s*', "", line)
            line = re.sub(r"\s*</seg>\s*", "", line)
            line = line.replace("\u2019", "'")
            test.append(tokenize(l, line).lower())
    splits[("test", l)] = test

codes = io.StringIO()
joint = splits[("train", "de")] + splits[("train", "en")]
learn_bpe(io.StringIO("".join(x + "\n" for x in joint)), codes, merges)
with open(os.path.join(out, "code"), "w", encoding="utf-8") as f:
    f.write(codes.getvalue())
codes.seek(0)
bpe = BPE(codes)
for (split, l), lines in splits.items():
    with open(os.path.join(out, f"{split}.{l}"), "w", encoding="utf-8", newline="\n") as f:
        for x in lines:
            f.write(bpe.process_line(x + "\n"))
