#!/usr/bin/env bash
# RL benchmarks (issue 6), as ratios against PyTorch eager measured in the same run: one DQN
# update (examples/bench_dqn_update.rs against scripts/bench_dqn_update.py: Q(s, a), the target
# net's max, Huber loss, backward, gradient norm, AdamW) on the MinAtar Q-net and the Nature CNN,
# batch 32 (SPEC.md E6), on one intra-op thread as the dqn stage runs; then the MinAtar
# environment against the `minatar` package (scripts/bench_minatar.sh). Writes bench/rl.md.
# Run through `make bench`.
set -euo pipefail
cd "$(dirname "$0")/.."
out=bench; mkdir -p "$out"
: "${REPRO_PYTHON:?run through make bench, or eval \"\$(scripts/setup.sh)\" first}"
cargo build --release --example bench_dqn_update >/dev/null 2>&1
bin=${CARGO_TARGET_DIR:-target}/release/examples
rounds=2 # interleaved repeats; best of them each (load drifts on a shared machine hit both sides)

count() { "$@" | awk 'NR == 1 {print $2}'; }
best_max() { sort -g | tail -1; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN {printf "%.2f", a / b}'; }

work=$(mktemp -d); trap 'rm -rf "$work"' EXIT
rows=""
# Rows: arch C H W actions warmup steps repeats label (MinAtar Breakout's 4 channels and Space
# Invaders' 6 actions; Atari's 4 stacked 84×84 frames).
while read -r arch c h w actions warmup steps repeats label; do
  cfg=("$arch" "$c" "$h" "$w" "$actions" 32 1)
  params=$(count "$bin"/bench_dqn_update "${cfg[@]}" 0 1 1)
  : > "$work/dqn"
  for _ in $(seq "$rounds"); do
    run=("$warmup" "$steps" "$repeats")
    "$bin"/bench_dqn_update "${cfg[@]}" "${run[@]}" | awk '/updates/ {print "repro", $2, $4}' >> "$work/dqn"
    "$REPRO_PYTHON" scripts/bench_dqn_update.py "${cfg[@]}" "${run[@]}" "$params" |
      awk '/updates/ {print "torch", $2, $4}' >> "$work/dqn"
  done
  best() { awk -v who="$1" -v col="$2" '$1 == who {print $col}' "$work/dqn" | best_max; }
  r=$(best repro 2); t=$(best torch 2); rc=$(best repro 3); tc=$(best torch 3)
  rows+="| $label ($params params) | $t | $r | $(ratio "$r" "$t") | $(ratio "$rc" "$tc") |"$'\n'
done <<'ROWS'
minatar 4 10 10 6 50 1000 3 MinAtar Q-net
nature 4 84 84 6 5 40 3 Nature CNN
ROWS

{
  echo "| DQN update, batch 32, AdamW, 1 thread (best of $rounds interleaved rounds) | PyTorch eager updates/s | repro updates/s | ratio (repro / PyTorch) | CPU-time ratio |"
  echo "|---|---|---|---|---|"
  printf '%s' "$rows"
  echo
} > "$work/rl.md"
scripts/bench_minatar.sh > /dev/null
cat "$work/rl.md" "$out/minatar.md" > "$out/rl.md"
cat "$out/rl.md"
