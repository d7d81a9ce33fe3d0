"""subword-nmt 0.3.8 as fairseq's prepare-iwslt14.sh runs it, for crates/repro-core/tests/it/bpe.rs.

  bpe_reference.py learn CORPUS N CODES_OUT   learn_bpe -s N (min frequency 2) on CORPUS's lines
  bpe_reference.py apply CODES CORPUS OUT     apply_bpe -c CODES on every line of CORPUS

CORPUS is UTF-8 split on "\n" only (the test corpus has no other line breaks), so the lines
are the ones the Rust side sees. `apply` runs BPE.process_line on each line with its "\n", as
apply_bpe.py's main loop does.
"""

import io
import sys

from subword_nmt.apply_bpe import BPE
from subword_nmt.learn_bpe import learn_bpe


def read_lines(path):
    with open(path, encoding="utf-8", newline="") as f:
        text = f.read()
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    return lines


def main():
    mode = sys.argv[1]
    if mode == "learn":
        corpus, n, out = sys.argv[2], int(sys.argv[3]), sys.argv[4]
        with open(out, "w", encoding="utf-8", newline="") as f:
            learn_bpe([line + "\n" for line in read_lines(corpus)], f, n, min_frequency=2)
    elif mode == "apply":
        codes, corpus, out = sys.argv[2], sys.argv[3], sys.argv[4]
        with open(codes, encoding="utf-8", newline="") as f:
            bpe = BPE(io.StringIO(f.read()))
        with open(out, "w", encoding="utf-8", newline="") as f:
            for line in read_lines(corpus):
                f.write(bpe.process_line(line + "\n"))
    else:
        raise SystemExit("unknown mode " + mode)


if __name__ == "__main__":
    main()
