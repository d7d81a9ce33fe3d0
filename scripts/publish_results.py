#!/usr/bin/env python3
"""Publish a profile's rendered report in the repository.

Copies report/<profile>/ (report.md, report.html, claims.json, claims.md, tables/*.csv,
figures/*.png; the SVGs are inline in report.html) to docs/results/<profile>/, replacing what was
there, and puts claims.md between the README's markers for that profile:

    <!-- results:<profile> begin ... -->
    ...
    <!-- results:<profile> end -->

`tests/it/cli.rs` fails when the README's block and docs/results/<profile>/ disagree, or when the
published numbers are not those of the runs pinned in pipeline.lock.

Usage: scripts/publish_results.py [--profile cpu] [--root .]
"""

import argparse
import pathlib
import re
import shutil
import sys

FILES = ["report.md", "report.html", "claims.json", "claims.md", ".report-key"]
GLOBS = ["tables/*.csv", "figures/*.png"]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--profile", default="cpu")
    ap.add_argument("--root", default=".", help="the repository root")
    args = ap.parse_args()
    root = pathlib.Path(args.root)
    src = root / "report" / args.profile
    dst = root / "docs" / "results" / args.profile
    missing = [f for f in FILES if not (src / f).is_file()]
    if missing:
        print(f"{src}: no {', '.join(missing)}; run `repro report --profile {args.profile}` first",
              file=sys.stderr)
        return 1
    tmp = dst.with_name(f".{dst.name}.new")
    shutil.rmtree(tmp, ignore_errors=True)
    for f in FILES:
        (tmp / f).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(src / f, tmp / f)
    for pattern in GLOBS:
        for p in sorted(src.glob(pattern)):
            (tmp / p.relative_to(src)).parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(p, tmp / p.relative_to(src))
    shutil.rmtree(dst, ignore_errors=True)
    tmp.rename(dst)

    readme = root / "README.md"
    text = readme.read_text()
    block = re.compile(
        rf"(<!-- results:{re.escape(args.profile)} begin[^\n]*-->\n).*?(<!-- results:{re.escape(args.profile)} end -->)",
        re.S,
    )
    if not block.search(text):
        print(f"{readme}: no `<!-- results:{args.profile} begin -->` … `end -->` markers",
              file=sys.stderr)
        return 1
    claims = (dst / "claims.md").read_text()
    text = block.sub(lambda m: m.group(1) + "\n" + claims + "\n" + m.group(2), text, count=1)
    readme.write_text(text)
    print(f"published {src} to {dst} and README.md")
    return 0


if __name__ == "__main__":
    sys.exit(main())
