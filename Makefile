# repro: the two commands are `make replicate` and `make test`.
# Everything else is set up on first use: scripts/setup.sh finds or makes a venv with
# torch==2.11.0 (the libtorch tch 0.24 links against) under ~/.cache/repro, once per machine.
#
# `make replicate` runs the profile this machine can finish (pipeline.yaml's default_profile:
# `reduced` where CUDA is available, else `cpu`) and says which and why; PROFILE=<name> picks
# another. `paper` (thousands of GPU-hours) runs only with YES=1.
PROFILE ?=
DEVICE ?= auto
# Runs at once (`repro run --jobs`); unset, as many as the profile's fixed threads fit the cores.
JOBS ?=
YES ?=
REPRO := ./target/release/repro
ENV := eval "$$(scripts/setup.sh)" &&
PROFILE_ARG := $(if $(PROFILE),--profile $(PROFILE))
RUN_ARGS := $(PROFILE_ARG) --device $(DEVICE) $(if $(JOBS),--jobs $(JOBS)) $(if $(filter 1 yes true,$(YES)),--yes)

.PHONY: all setup build test replicate bench lint fmt lock docs clean

all: build

setup:
	@scripts/setup.sh >/dev/null

# The workspace's binaries: `repro` (no libtorch) and `repro-worker` (its own package).
build: setup
	$(ENV) cargo build --release --workspace --bins

# Every crate's tests; the end-to-end ones start the worker `build` put beside `repro`.
test: build
	$(ENV) cargo test --release --workspace

# Runs the profile, then the report: the claims table and the path of report/<profile>/ last.
replicate: build
	$(REPRO) run $(RUN_ARGS)
	$(REPRO) report $(PROFILE_ARG) --device $(DEVICE)

# Every benchmark row against its baseline in one run; rewrites BENCHMARKS.md's generated block.
bench: build
	$(ENV) cargo build --release --workspace --examples && $$REPRO_PYTHON scripts/bench.py --update BENCHMARKS.md

lint: setup
	$(ENV) cargo fmt --all --check && cargo clippy --release --workspace --all-targets -- -D warnings

fmt:
	cargo fmt --all

# README.md's generated blocks (profile table, cpu results, the smoke report's excerpt and figure):
# runs the smoke profile if needed, then lets tests/it/readme.rs rewrite what drifted.
docs: build
	$(REPRO) run --profile smoke --quiet
	$(REPRO) report --profile smoke --quiet
	$(ENV) REPRO_UPDATE_DOCS=1 cargo test --release --workspace --test it -- --include-ignored readme::

# Re-pin the smoke profile's outputs in pipeline.lock after an intended change.
lock: build
	$(REPRO) run --profile smoke --quiet
	$(REPRO) lock --profile smoke

clean:
	cargo clean
