#!/usr/bin/env bash
# The one prepared command for a lent GPU machine (no network, its own torch 2.11.0+cu130): the
# benchmark rows on CUDA, one paper-profile ResNet-18 epoch, 1/2/4 runs at once on the GPU and
# the achieved TFLOP/s, as tables in $OUT/gpu-check.md (scripts/gpu_check.py says what each is).
#
#   scripts/gpu-check.sh --pack DIR          here: build, and copy the release binaries, stripped,
#                                            into DIR (to carry to the GPU machine, ~25 MB)
#   scripts/gpu-check.sh [--device cuda|cpu] [--bin DIR] [--out DIR] [--repeats N]
#
# --bin: the binaries (default target/release); --out: default $OUT, else bench/gpu-check.
# --device cpu is the dry path at tiny sizes, for machines without a GPU (tests/it/gpu_check.rs).
# libtorch is the one of the python that has torch (REPRO_PYTHON, else python3), put first on
# LD_LIBRARY_PATH so it wins over the build machine's path baked into the binaries.
set -euo pipefail
cd "$(dirname "$0")/.."
device=cuda bin=target/release out=${OUT:-bench/gpu-check} pack="" repeats=2
while [ $# -gt 0 ]; do
  case "$1" in
    --device) device=$2; shift 2 ;;
    --bin) bin=$2; shift 2 ;;
    --out) out=$2; shift 2 ;;
    --repeats) repeats=$2; shift 2 ;;
    --pack) pack=$2; shift 2 ;;
    *) echo "gpu-check: unknown argument '$1' (see the header of $0)" >&2; exit 2 ;;
  esac
done
case "$device" in cuda|cpu) ;; *) echo "gpu-check: --device: expected cuda or cpu, got '$device'" >&2; exit 2 ;; esac

if [ -n "$pack" ]; then
  eval "$(scripts/setup.sh)"
  cargo build --release --workspace --bins --examples
  mkdir -p "$pack/examples"
  strip -o "$pack/repro" target/release/repro
  strip -o "$pack/repro-worker" target/release/repro-worker
  for e in bench_train_step bench_lm_step bench_adam_step bench_dqn_update bench_fused_dqn bench_fused_lm bench_minatar loader_bench hash_file; do
    strip -o "$pack/examples/$e" "target/release/examples/$e"
  done
  du -sh "$pack"
  exit 0
fi

python=${REPRO_PYTHON:-python3}
torch_lib=$("$python" -c 'import os, torch; print(os.path.join(os.path.dirname(torch.__file__), "lib"))') || {
  echo "gpu-check: $python cannot import torch (set REPRO_PYTHON to a python with torch 2.11.0)" >&2; exit 1; }
export REPRO_PYTHON=$python LD_LIBRARY_PATH=$torch_lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
export PYTHONUNBUFFERED=1
[ -x "$bin/repro" ] && [ -x "$bin/repro-worker" ] || {
  echo "gpu-check: no repro/repro-worker in $bin (build, or --pack a folder and pass it as --bin)" >&2; exit 1; }
bin=$(cd "$bin" && pwd)
mkdir -p "$out"
work=$(mktemp -d); trap 'rm -rf "$work"' EXIT
[ "$device" = cpu ] || nvidia-smi || true
exec "$python" scripts/gpu_check.py --device "$device" --bin "$bin" --out "$out" --work "$work" --repeats "$repeats"
