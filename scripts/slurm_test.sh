#!/usr/bin/env bash
# The Slurm executor against a real one-node Slurm on this machine: installs slurm-wlm and
# munge when missing (root, Debian), starts the cluster (scripts/slurm_local.sh), and runs
# tests/slurm.rs (the smoke profile through Slurm against pipeline.lock, and a job killed at
# its time limit resuming from its checkpoint). Leaves the cluster running; stop it with
# `scripts/slurm_local.sh stop`.
set -euo pipefail
cd "$(dirname "$0")/.."
eval "$(scripts/setup.sh)"
REPRO_SLURM_CRED_EXPIRE=10 scripts/slurm_local.sh start >/dev/null
REPRO_SLURM_TEST=1 cargo test --release --test slurm -- --test-threads=1 --nocapture
