#!/usr/bin/env bash
# MinAtar environment throughput, as a ratio against the reference package (`minatar` 1.0.15)
# measured in the same run: a uniform random policy steps each game, reading the state after
# every step (examples/bench_minatar.rs against scripts/bench_minatar.py). Writes
# bench/minatar.md. BENCH_MINATAR_STEPS=N steps per game and run (default 200000). Run through
# `make bench`.
set -euo pipefail
cd "$(dirname "$0")/.."
out=bench; mkdir -p "$out"
: "${REPRO_PYTHON:?run through make bench, or eval \"\$(scripts/setup.sh)\" first}"
cargo build --release --example bench_minatar >/dev/null 2>&1
bin=${CARGO_TARGET_DIR:-target}/release/examples
steps=${BENCH_MINATAR_STEPS:-200000}
rounds=2 # interleaved repeats; best of them each (load drifts on a shared machine hit both sides)

work=$(mktemp -d); trap 'rm -rf "$work"' EXIT
for _ in $(seq "$rounds"); do
  "$bin"/bench_minatar "$steps" >> "$work/repro.jsonl"
  "$REPRO_PYTHON" scripts/bench_minatar.py "$steps" >> "$work/minatar.jsonl"
done

"$REPRO_PYTHON" - "$work/repro.jsonl" "$work/minatar.jsonl" "$steps" "$rounds" > "$out/minatar.md" <<'PY'
import json
import sys


def best(path):
    rates = {}
    for line in open(path):
        row = json.loads(line)
        rates[row["game"]] = max(rates.get(row["game"], 0.0), row["steps_per_s"])
    return rates


ours, theirs = best(sys.argv[1]), best(sys.argv[2])
steps, rounds = int(sys.argv[3]), int(sys.argv[4])
print(f"| MinAtar game, random policy, act + state() per step ({steps} steps, best of "
      f"{rounds} interleaved rounds) | repro steps/s | minatar steps/s | ratio (repro / minatar) |")
print("|---|---|---|---|")
for game, r in ours.items():
    m = theirs[game]
    print(f"| {game} | {r:,.0f} | {m:,.0f} | {r / m:.1f} |")
PY
cat "$out/minatar.md"
