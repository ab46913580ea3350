# Thin wrapper over CMake presets (CMakePresets.json). `make run` and `make test` first install
# the Debian packages that are missing (scripts/install-deps.sh, uses sudo when not root).

CONFIG ?= conf/actord.conf

SHELL := /bin/bash

.PHONY: all deps build run test test-dev test-release test-asan test-tsan test-fuzz test-systemd bench format format-check install clean

all: build

deps:
	@./scripts/install-deps.sh

build: deps
	cmake --preset dev >/dev/null
	cmake --build --preset dev

# The demo pipeline in the foreground; Ctrl-C stops it. In another terminal:
# build/ctl/actorctl --socket build/actord.sock stats
run: build
	./build/daemon/actord --config $(CONFIG) --plugin-dir build/plugins \
	  --control-socket build/actord.sock

# The whole suite: normal build, release build (warnings that only optimisation finds), ASan+UBSan
# build, TSan build of the concurrency tests, a fuzz run, and the installed daemon under a real
# systemd.
test: deps format-check test-dev test-release test-asan test-tsan test-fuzz test-systemd
	@echo "make test: all suites passed"

test-dev:
	cmake --preset dev >/dev/null
	cmake --build --preset dev
	ctest --preset dev

# Builds only: the release preset has no tests, but -O2 without -g finds warnings the dev
# build does not (-Werror makes them errors).
test-release:
	cmake --preset release >/dev/null
	cmake --build --preset release

test-asan:
	cmake --preset asan-ubsan >/dev/null
	cmake --build --preset asan-ubsan
	ctest --preset asan-ubsan

test-tsan:
	cmake --preset tsan >/dev/null
	cmake --build --preset tsan
	ctest --preset tsan

# A short fuzz run of the configuration path (FUZZ_SECONDS=600 for a longer one).
FUZZ_SECONDS ?= 30
test-fuzz:
	cmake --preset fuzz >/dev/null
	cmake --build --preset fuzz
	rm -rf build-fuzz/corpus && mkdir -p build-fuzz/corpus
	LSAN_OPTIONS=suppressions=$(CURDIR)/tests/fuzz/lsan.supp \
	  build-fuzz/tests/fuzz/fuzz-config -max_total_time=$(FUZZ_SECONDS) -timeout=10 \
	  -rss_limit_mb=4096 -artifact_prefix=build-fuzz/ -print_final_stats=1 \
	  build-fuzz/corpus tests/fuzz/corpus/config 2>&1 | tail -n 12; \
	  test $${PIPESTATUS[0]} -eq 0

# The dev build installed into a container that boots systemd (systemd-nspawn on a cached
# Debian 12 rootfs; the first run makes it, about a minute): start, status, journal fields,
# hardening, reload, watchdog, stop. Prints "SKIP: why" where the machine cannot run it.
test-systemd:
	cmake --preset dev >/dev/null
	cmake --build --preset dev
	tests/systemd/run.sh build

bench: build
	./build/bench/actord-bench channel
	./build/bench/actord-bench pipeline
	./build/bench/actord-bench nats

format:
	clang-format -i $$(git ls-files '*.c' '*.h' '*.cpp')

format-check:
	clang-format --dry-run --Werror $$(git ls-files '*.c' '*.h' '*.cpp')

install: build
	cmake --install build

clean:
	rm -rf build build-asan build-tsan build-fuzz build-release
