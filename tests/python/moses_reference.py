"""Reference for crates/repro-core/tests/it/moses.rs: sacremoses 0.2.0, the Python port of Moses' tokenizer.perl.

Usage: moses_reference.py INPUT.json
INPUT.json holds {"tokenize": {"de": [lines], "en": [lines]}, "lower": [lines]}; prints the same
shape with each line tokenized as tokenizer.perl -l LANG does with its defaults (escaping on, no
aggressive hyphen splitting), and lowercased with str.lower().
"""

import json
import sys

from sacremoses import MosesTokenizer


def main():
    with open(sys.argv[1], encoding="utf-8") as f:
        data = json.load(f)
    out = {"tokenize": {}, "lower": [line.lower() for line in data["lower"]]}
    for lang, lines in data["tokenize"].items():
        tok = MosesTokenizer(lang=lang)
        out["tokenize"][lang] = [
            tok.tokenize(line, return_str=True, escape=True, aggressive_dash_splits=False)
            for line in lines
        ]
    json.dump(out, sys.stdout, ensure_ascii=True)


if __name__ == "__main__":
    main()
