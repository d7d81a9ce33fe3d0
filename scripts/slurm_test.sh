#!/usr/bin/env bash
# The Slurm executor against a real one-node Slurm on this machine: installs slurm-wlm and
# munge when missing (root, Debian), starts the cluster (scripts/slurm_local.sh), and runs
# tests/it/slurm.rs, which a plain `cargo test` ignores (smoke targets through Slurm against
# pipeline.lock, and a job killed at its time limit resuming from its checkpoint).
# On every exit (pass, failure, Ctrl-C, `timeout`'s SIGTERM) it cancels the jobs its tests
# submitted, removes their temporary stores, and stops the cluster (munged too if
# slurm_local.sh started it), unless a cluster was already running when it started: that one
# stays up.
set -euo pipefail
cd "$(dirname "$0")/.."
eval "$(scripts/setup.sh)"
eval "$(scripts/slurm_local.sh env)"

# The tests' temporary stores live here, so their jobs are known by their job scripts' paths.
TEST_TMP="$(mktemp -d "${TMPDIR:-/tmp}/repro-slurm-test.XXXXXX")"
export TMPDIR="$TEST_TMP"
started=1
if scripts/slurm_local.sh status 2>/dev/null; then
  echo "slurm_test: a Slurm cluster was already running: it stays up afterwards" >&2
  started=0
fi

ours() {  # the ids of queued or running jobs whose script lies under $TEST_TMP
  timeout 20 squeue -h -o '%i|%o' 2>/dev/null | awk -F'|' -v d="$TEST_TMP/" 'index($2, d) == 1 { print $1 }'
}

cleanup() {
  local rc=$? jobs i
  trap - EXIT INT TERM HUP
  set +e
  # A job outlives the test that follows it, and stopping slurmd does not end job steps (they
  # reattach on the next start): cancel them and wait until they are gone.
  jobs="$(ours)"
  if [ -n "$jobs" ]; then
    echo "slurm_test: cancelling the tests' jobs left in the cluster:" $jobs >&2
    # shellcheck disable=SC2086  # one argument per job id
    timeout 20 scancel $jobs
    for i in $(seq 1 60); do
      [ -z "$(ours)" ] && break
      sleep 1
    done
  fi
  [ "$started" = 1 ] && scripts/slurm_local.sh stop
  rm -rf "$TEST_TMP"
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
trap 'exit 129' HUP

REPRO_SLURM_CRED_EXPIRE=10 scripts/slurm_local.sh start >/dev/null
cargo build --release --workspace --bins
# --workspace, as `make test` builds it: features unify per selection of packages, so testing the
# root package alone would rebuild a dozen dependencies (1 min 47 s measured in CI).
cargo test --release --workspace --test it -- --ignored slurm:: --test-threads=1 --nocapture
