#!/usr/bin/env bash
# Vision benchmarks (issue 3), as ratios against PyTorch eager measured in the same run: one
# training step per model, and the loader alone. Writes bench/vision.md. Run through `make bench`.
set -euo pipefail
cd "$(dirname "$0")/.."
out=bench; mkdir -p "$out"
: "${REPRO_PYTHON:?run through make bench, or eval \"\$(scripts/setup.sh)\" first}"
cargo build --release --example bench_train_step --example loader_bench >/dev/null 2>&1

# 1. One training step per model (forward, loss, backward, SGD momentum + WD), batch 128 on 2 threads,
#    repro (tch) against the same model in PyTorch eager (same venv's libtorch), interleaved
#    (rust, python, rust, python, ...) so that load drifts hit both; best of the repeats each.
#    Rows: arch classes width image-size (width 1 = the paper's nets).
train_rows=""
while read -r arch classes width size steps; do
  rs=(); py=()
  for _ in 1 2; do
    rs+=("$(target/release/examples/bench_train_step "$arch" "$classes" "$width" "$size" 128 2 1 "$steps" 1 | awk '{print $2}')")
    py+=("$("$REPRO_PYTHON" scripts/bench_train_step.py "$arch" "$classes" "$width" "$size" 128 2 1 "$steps" 1 | awk '{print $2}')")
  done
  r=$(printf '%s\n' "${rs[@]}" | sort -g | tail -1); p=$(printf '%s\n' "${py[@]}" | sort -g | tail -1)
  train_rows+="| $arch, $classes classes, width $width, ${size}×${size} | PyTorch eager: $p img/s | $r img/s | $(echo "scale=2; $r / $p" | bc) |"$'\n'
done <<'ROWS'
small_cnn 10 1 32 20
resnet18 10 1 32 3
resnet50 100 1 32 2
densenet121 200 1 64 1
ROWS

# 2. The loader alone: one augmented epoch of 50,000 CIFAR-sized images at batch 128.
loader=$(target/release/examples/loader_bench | awk '/images\/s/ {print $NF}')

cat > "$out/vision.md" <<MD
| one training step, batch 128, 2 threads (best of 2, interleaved) | baseline | repro | ratio (repro / baseline throughput) |
|---|---|---|---|
${train_rows}
Loader alone (augmented epoch of 50,000 32×32 images, batch 128, prefetch thread): ${loader} images/s.
MD
cat "$out/vision.md"
