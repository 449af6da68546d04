# The two commands of README: `make run` and `make test`. Everything else is a helper for them.
JOBS ?= $(shell nproc)

.PHONY: run test build build-asan build-fuzz fuzz soak bench clean

FUZZ_S ?= 300
FUZZ_TARGETS = $(patsubst tests/fuzz/fuzz_%.c,%,$(wildcard tests/fuzz/fuzz_*.c))
SOAK_S ?= 1800

build:
	@scripts/bootstrap
	@cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
	@cmake --build build -j $(JOBS)

build-asan:
	@scripts/bootstrap test
	@cmake -S . -B build-asan -DCMAKE_BUILD_TYPE=Debug -DSKIFF_SANITIZE=ON \
		-DSKIFF_FUZZ_BIN_DIR=$(CURDIR)/build-fuzz >/dev/null
	@cmake --build build-asan -j $(JOBS)

# Relays to the real Gemini API when GEMINI_API_KEYS is set, else to a bundled `skiff sim`.
run: build
	@scripts/run

# The release build too: `make run` and `make bench` use it, and -O2 warns where -O0 does not.
test: build build-asan build-fuzz
	@cd build-asan && ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 \
		UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
		ctest --output-on-failure -j 2

# The libFuzzer targets of tests/fuzz, built by clang (ASan + UBSan) in their own directory.
build-fuzz:
	@scripts/bootstrap test
	@CC=clang cmake -S . -B build-fuzz -DCMAKE_BUILD_TYPE=Debug -DSKIFF_FUZZ=ON -DSKIFF_WERROR=OFF >/dev/null
	@cmake --build build-fuzz -j $(JOBS) --target fuzzers

# Each fuzz target for FUZZ_S seconds (default 300), one after the other; `make test` runs
# each for 20 s. Figures and findings: docs/reliability.md.
fuzz: build-fuzz
	@status=0; for t in $(FUZZ_TARGETS); do \
		tests/fuzz/run $(CURDIR)/build-fuzz $$t $(FUZZ_S) || status=1; done; exit $$status

# SOAK_S seconds (default 1800) against a faulty `skiff sim` with the release build;
# `make test` runs 120 s of it. Figures: docs/reliability.md.
soak: build
	@SKIFF_BIN=$(CURDIR)/build/skiff SOAK_S=$(SOAK_S) node tests/soak/soak.mjs

bench: build
	@bench/run

clean:
	rm -rf build build-asan build-fuzz
