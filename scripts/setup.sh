#!/usr/bin/env bash
# Find or make the libtorch that repro builds against, once per machine, outside the clone.
#
#   scripts/setup.sh            set up (idempotent) and print shell exports for the build
#   scripts/setup.sh --check    exit 0 when the cached set-up is usable, 1 otherwise
#
# Order: LIBTORCH=/path (an unpacked libtorch), then REPRO_PYTHON or a python3 that already imports
# torch 2.11.0, then the cached venv ${XDG_CACHE_HOME:-~/.cache}/repro/venv-torch-2.11.0 (made here
# with pip if missing).
#
# REPRO_CPU_ONLY=1: a lean install for machines without a GPU: torch's wheel without its CUDA
# dependencies, except the two libraries libtorch_cpu.so itself needs (CUDA runtime and CUPTI);
# the binary is then linked without libtorch_cuda. Python's `import torch` does not work in that
# venv (it preloads cuBLAS), so the build points at the wheel's libtorch directly, and `make test`
# (which compares against PyTorch) needs the full install.
set -euo pipefail

TORCH_VERSION=2.11.0
CACHE="${REPRO_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/repro}"
CPU_ONLY="${REPRO_CPU_ONLY:-0}"
if [ "$CPU_ONLY" = 1 ]; then
  VENV="${REPRO_VENV:-$CACHE/venv-torch-$TORCH_VERSION-cpu}"
else
  VENV="${REPRO_VENV:-$CACHE/venv-torch-$TORCH_VERSION}"
fi
# Python packages the test suite compares against (reference implementations and statistics).
TEST_PACKAGES=(numpy scipy)
# Installed without their dependencies: the reference MinAtar needs only numpy at run time (its
# plotting imports are optional), and its pinned matplotlib/seaborn/pandas would add minutes;
# ale-py's wheel (the pinned `atari-roms` dataset's) is here for the Atari ROMs it carries, which
# the ROM tests read through REPRO_ATARI_ROMS (nothing imports it).
TEST_PACKAGES_NO_DEPS=(minatar==1.0.15 ale-py==0.11.2)
# Pinned with their dependencies, and added to venvs made before they joined: the translation
# references (sacreBLEU for BLEU, sacremoses for Moses' tokenizer, subword-nmt for BPE), and
# moto's S3 server, which repro-share's S3 tests push to and pull from
# (scripts/s3_test_server.py; what DVC's own tests use).
TEST_PACKAGES_PINNED=(sacrebleu==2.5.1 sacremoses==0.2.0 subword-nmt==0.3.8 "moto[server]==5.2.6")

log() { echo "setup: $*" >&2; }

torch_ok() { # python → 0 when it has the right torch (read from its metadata, not imported)
  "$1" - "$TORCH_VERSION" >/dev/null 2>&1 <<'PY'
import sys
from importlib.metadata import version
sys.exit(0 if version("torch").split("+")[0] == sys.argv[1] else 1)
PY
}

add_late_packages() { # venvs made before a pinned package joined the lists get it here
  local py="$1" pkg
  for pkg in "${TEST_PACKAGES_NO_DEPS[@]}" "${TEST_PACKAGES_PINNED[@]}"; do
    "$py" - "$pkg" >/dev/null 2>&1 <<'PY' && continue
import sys
from importlib.metadata import version
name, want = sys.argv[1].split("==")
name = name.split("[")[0]  # moto[server]: the distribution is moto
sys.exit(0 if version(name) == want else 1)
PY
    log "installing $pkg into $(dirname "$(dirname "$py")")"
    case " ${TEST_PACKAGES_NO_DEPS[*]} " in
      *" $pkg "*) "$py" -m pip install --quiet --no-deps "$pkg" >&2 ;;
      *) "$py" -m pip install --quiet "$pkg" >&2 ;;
    esac
  done
}

emit() { # print the exports the build and tests need
  local py="$1" site
  site=$("$py" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
  if [ "$CPU_ONLY" = 1 ]; then
    echo "export LIBTORCH='$site/torch'"
    echo "export LIBTORCH_CXX11_ABI=1"
    echo "export REPRO_CPU_ONLY=1"
    return
  fi
  echo "export REPRO_PYTHON='$py'"
  echo "export LIBTORCH_USE_PYTORCH=1"
  echo "export VIRTUAL_ENV='$(dirname "$(dirname "$py")")'"
  echo "export PATH='$(dirname "$py")':\"\$PATH\""
  echo "export REPRO_CPU_ONLY='$CPU_ONLY'"
  [ -d "$site/ale_py/roms" ] && echo "export REPRO_ATARI_ROMS='$site/ale_py/roms'"
  return 0
}

if [ -n "${LIBTORCH:-}" ]; then
  [ -f "$LIBTORCH/lib/libtorch_cpu.so" ] || { log "LIBTORCH=$LIBTORCH has no lib/libtorch_cpu.so"; exit 1; }
  [ "${1:-}" = --check ] && exit 0
  echo "export LIBTORCH='$LIBTORCH'"
  echo "export REPRO_CPU_ONLY='$CPU_ONLY'"
  exit 0
fi

if [ -n "${REPRO_PYTHON:-}" ] && torch_ok "$REPRO_PYTHON"; then
  [ "${1:-}" = --check ] && exit 0
  add_late_packages "$REPRO_PYTHON"
  emit "$REPRO_PYTHON"; exit 0
fi

if [ -x "$VENV/bin/python" ] && torch_ok "$VENV/bin/python" && [ -f "$VENV/.repro-ready" ]; then
  [ "${1:-}" = --check ] && exit 0
  [ "$CPU_ONLY" = 1 ] || add_late_packages "$VENV/bin/python"
  emit "$VENV/bin/python"; exit 0
fi
[ "${1:-}" = --check ] && exit 1

command -v python3 >/dev/null || { log "python3 is required to install torch==$TORCH_VERSION"; exit 1; }
log "creating $VENV with torch==$TORCH_VERSION (once per machine; ~75 s and 4.6 GB with CUDA wheels)"
mkdir -p "$CACHE"
# A lock so two builds on one machine do not install into the same venv at once.
exec 9>"$CACHE/.setup.lock"
flock 9
if ! { [ -x "$VENV/bin/python" ] && torch_ok "$VENV/bin/python" && [ -f "$VENV/.repro-ready" ]; }; then
  rm -rf "$VENV"
  python3 -m venv "$VENV"
  start=$(date +%s)
  if [ "$CPU_ONLY" = 1 ]; then
    "$VENV/bin/pip" install --quiet --no-deps "torch==$TORCH_VERSION" nvidia-cuda-runtime==13.0.96 nvidia-cuda-cupti==13.0.85 >&2
  else
    "$VENV/bin/pip" install --quiet "torch==$TORCH_VERSION" "${TEST_PACKAGES[@]}" "${TEST_PACKAGES_PINNED[@]}" >&2
    "$VENV/bin/pip" install --quiet --no-deps "${TEST_PACKAGES_NO_DEPS[@]}" >&2
  fi
  log "installed in $(( $(date +%s) - start )) s; $(du -sh "$VENV" | cut -f1) on disk"
  touch "$VENV/.repro-ready"
fi
emit "$VENV/bin/python"
