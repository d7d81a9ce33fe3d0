#!/usr/bin/env python3
"""Publish a profile's rendered report in the repository.

Copies report/<profile>/ (report.md, report.html, claims.json, claims.md, tables/*.csv,
figures/*.png; the SVGs are inline in report.html) to docs/results/<profile>/, replacing what was
there. `make docs` then puts its verdicts by claim into the README (`tests/it/readme.rs`), and
`tests/it/cli.rs` fails when the published numbers are not those of the runs pinned in
pipeline.lock.

Usage: scripts/publish_results.py [--profile cpu] [--root .]
"""

import argparse
import pathlib
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

    print(f"published {src} to {dst}; run `make docs` to update the README")
    return 0


if __name__ == "__main__":
    sys.exit(main())
