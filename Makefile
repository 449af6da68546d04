# The two commands of README: `make run` and `make test`. Everything else is a helper for them.
JOBS ?= $(shell nproc)

.PHONY: run test build build-asan bench clean

build:
	@scripts/bootstrap
	@cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
	@cmake --build build -j $(JOBS)

build-asan:
	@scripts/bootstrap test
	@cmake -S . -B build-asan -DCMAKE_BUILD_TYPE=Debug -DSKIFF_SANITIZE=ON >/dev/null
	@cmake --build build-asan -j $(JOBS)

# Relays to the real Gemini API when GEMINI_API_KEYS is set, else to a bundled `skiff sim`.
run: build
	@scripts/run

test: build-asan
	@cd build-asan && ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 \
		UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
		ctest --output-on-failure -j 2

bench: build
	@bench/run

clean:
	rm -rf build build-asan
