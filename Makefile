# repro: the two commands are `make replicate` (PROFILE=paper|reduced|cpu|cpu-real|smoke) and `make test`.
# Everything else is set up on first use: scripts/setup.sh finds or makes a venv with
# torch==2.11.0 (the libtorch tch 0.24 links against) under ~/.cache/repro, once per machine.

PROFILE ?= paper
DEVICE ?= auto
# Runs at once (`repro run --jobs`): 2 for the cpu profile on 2 cores (it fixes 1 thread a run).
JOBS ?= 1
REPRO := ./target/release/repro
ENV := eval "$$(scripts/setup.sh)" &&

.PHONY: all setup build test replicate bench lint fmt lock clean

all: build

setup:
	@scripts/setup.sh >/dev/null

# The workspace's binaries: `repro` (no libtorch) and `repro-worker` (its own package).
build: setup
	$(ENV) cargo build --release --workspace --bins

# Every crate's tests; the end-to-end ones start the worker `build` put beside `repro`.
test: build
	$(ENV) cargo test --release --workspace

# Runs the profile, then the report: the claims table and the path of report/$(PROFILE)/ last.
replicate: build
	$(REPRO) run --profile $(PROFILE) --device $(DEVICE) --jobs $(JOBS)
	$(REPRO) report --profile $(PROFILE) --device $(DEVICE)

# Every benchmark row against its baseline in one run; rewrites BENCHMARKS.md's generated block.
bench: build
	$(ENV) cargo build --release --workspace --examples && $$REPRO_PYTHON scripts/bench.py --update BENCHMARKS.md

lint: setup
	$(ENV) cargo fmt --all --check && cargo clippy --release --workspace --all-targets -- -D warnings

fmt:
	cargo fmt --all

# Re-pin the smoke profile's outputs in pipeline.lock after an intended change.
lock: build
	$(REPRO) run --profile smoke --quiet
	$(REPRO) lock --profile smoke

clean:
	cargo clean
