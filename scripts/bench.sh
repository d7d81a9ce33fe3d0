#!/usr/bin/env bash
# Benchmarks for the engine, each as a ratio against a baseline measured in the same run.
# Writes bench/engine.md (included in BENCHMARKS.md by hand). Run through `make bench`.
set -euo pipefail
cd "$(dirname "$0")/.."
out=bench; mkdir -p "$out"
work=$(mktemp -d); trap 'rm -rf "$work"' EXIT
cargo build --release --example hash_file >/dev/null 2>&1
repro=$PWD/target/release/repro

# 1. Store hashing vs sha256sum on a 1 GiB file (page cache warm for both: best of 3 each).
head -c 1073741824 /dev/urandom > "$work/big.bin"
best() { sort -n | head -1; }
sys=$(for _ in 1 2 3; do s=$(date +%s.%N); sha256sum "$work/big.bin" >/dev/null; e=$(date +%s.%N); echo "$e - $s" | bc; done | best)
ours=$(for _ in 1 2 3; do s=$(date +%s.%N); target/release/examples/hash_file "$work/big.bin" >/dev/null; e=$(date +%s.%N); echo "$e - $s" | bc; done | best)
ratio=$(echo "scale=2; $sys / $ours" | bc)
rm -f "$work/big.bin"

# 2. `repro status` with 1,000 cached runs: a 1,000-seed grid of a tiny real vision run.
cat > "$work/pipeline.yaml" <<'YAML'
version: 1
datasets:
  cifar10:
    format: cifar10-binary
    files: [{name: cifar-10-binary.tar.gz, md5: c32a1d4ab5d03f1284b67883e8d87530}]
    generate: {generator: cifar10, params: {train_per_class: 1, test_per_class: 1}}
experiments:
  tiny:
    kind: vision
    datasets: [cifar10]
    params: {model: small_cnn, width: 0.03125, epochs: 1, batch_size: 10, augment: false}
    grid: {seed: [SEEDS]}
profiles:
  smoke: {threads: 1, datasets: {cifar10: {source: generate}}}
YAML
sed -i "s/SEEDS/$(seq -s, 0 999)/" "$work/pipeline.yaml"
( cd "$work" && "$repro" run --profile smoke --device cpu --quiet >/dev/null )
status_best=$(for _ in 1 2 3 4 5; do s=$(date +%s.%N); ( cd "$work" && "$repro" status --profile smoke --device cpu >/dev/null ); e=$(date +%s.%N); echo "$e - $s" | bc; done | best)

cat > "$out/engine.md" <<MD
| benchmark | baseline | repro | ratio (baseline time / repro time) |
|---|---|---|---|
| sha256 of a 1 GiB file (best of 3) | sha256sum: ${sys} s | ${ours} s | ${ratio} |
| \`repro status\` with 1,000 cached runs (best of 5; goal < 0.5 s) | | ${status_best} s | |
MD
cat "$out/engine.md"
