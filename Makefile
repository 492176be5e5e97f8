# Roster: `make run` to start it, `make test` to test it, `make bench` to measure it.
SWIFT ?= swift

.PHONY: run test bench fuzz build release deps clean

deps:
	@bash scripts/deps.sh

build: deps
	$(SWIFT) build

release: deps
	$(SWIFT) build -c release --product roster

run: release
	@bash scripts/run.sh

# Unit tests, then the integration tests that drive the release binary behind a real nginx.
test: release
	@bash scripts/deps.sh --e2e
	@bash scripts/test.sh

# libFuzzer on every parser (FUZZ_SECONDS each, default 60), then the route fuzzer for ROSTER_FUZZ_SECONDS.
fuzz: deps
	@bash scripts/fuzz.sh

bench: deps
	@bash scripts/deps.sh --bench
	$(SWIFT) build -c release --product roster
	@bash scripts/bench.sh
	@bash scripts/bench-postgres.sh

clean:
	rm -rf .build run
