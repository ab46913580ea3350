# Thin wrapper over CMake presets (CMakePresets.json). `make run` and `make test` first install
# the Debian packages that are missing (scripts/install-deps.sh, uses sudo when not root).

CONFIG ?= conf/actord.conf

.PHONY: all deps build run test test-dev test-asan test-tsan bench format format-check install clean

all: build

deps:
	@./scripts/install-deps.sh

build: deps
	cmake --preset dev >/dev/null
	cmake --build --preset dev

# The demo pipeline in the foreground; Ctrl-C stops it.
run: build
	./build/daemon/actord --config $(CONFIG) --plugin-dir build/plugins

# The whole suite: normal build, ASan+UBSan build, TSan build of the concurrency tests.
test: deps format-check test-dev test-asan test-tsan
	@echo "make test: all suites passed"

test-dev:
	cmake --preset dev >/dev/null
	cmake --build --preset dev
	ctest --preset dev

test-asan:
	cmake --preset asan-ubsan >/dev/null
	cmake --build --preset asan-ubsan
	ctest --preset asan-ubsan

test-tsan:
	cmake --preset tsan >/dev/null
	cmake --build --preset tsan
	ctest --preset tsan

bench: build
	./build/bench/actord-bench channel

format:
	clang-format -i $$(git ls-files '*.c' '*.h' '*.cpp')

format-check:
	clang-format --dry-run --Werror $$(git ls-files '*.c' '*.h' '*.cpp')

install: build
	cmake --install build

clean:
	rm -rf build build-asan build-tsan build-release
