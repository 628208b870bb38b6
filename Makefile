# Quick start:  make demo   (coordinator + three agents + a transfer workload)
#               make test   (every test)
#               make cluster-demo  (etcd, three weighted coordinators, three
#                           agents, found by name: docs/cluster.md)
# Both install missing Debian packages first and build incrementally in build/.
#
# Also:  make sanitize  clang with -Wthread-safety -Werror, ASan and UBSan in
#                       build-sanitize/: the unit, simulator and crash suites
#        make format-check  every .h/.cc formatted as .clang-format says
#                       (scripts/check-format --fix formats them)
#        make bench     make package     make clean
#
# CMAKE_ARGS are added when a build directory is configured (the first
# time), e.g. make test CMAKE_ARGS=-DTXCOORD_WERROR=ON as CI does.
BUILD ?= build
SANITIZE_BUILD ?= build-sanitize
JOBS ?= $(shell nproc)
CTEST_ARGS ?=
CMAKE_ARGS ?=

# What make sanitize builds and runs: the ctest labels of txcoord_test().
SANITIZE_SUITES ?= unit sim crash
# Tests of those suites left out (a ctest -E regex; empty: none): the two
# ten-thousand-transaction simulator sweeps, a minute each under the
# sanitizers. make test runs them; the other simulator tests run the same
# code under the sanitizers.
SANITIZE_EXCLUDE ?= SimulatorTest\.TenThousandTransactions
# -O1 and line tables only: a quicker build, and reports still name lines.
SANITIZE_FLAGS = -O1 -gline-tables-only
# UBSan prints the stack of what it finds; ASan does so by default.
SANITIZE_ENV = UBSAN_OPTIONS=print_stacktrace=1 \
  ASAN_SYMBOLIZER_PATH=/usr/lib/llvm-14/bin/llvm-symbolizer

empty :=
space := $(empty) $(empty)

.PHONY: all deps deps-clang configure build demo cluster-demo test bench package sanitize format-check clean

all: build

deps:
	@scripts/install-deps

deps-clang:
	@scripts/install-deps --clang

$(BUILD)/CMakeCache.txt: | deps
	@cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=RelWithDebInfo $(CMAKE_ARGS) >/dev/null

configure: deps $(BUILD)/CMakeCache.txt

build: configure
	@cmake --build $(BUILD) -j$(JOBS)

demo: build
	@scripts/demo --build $(BUILD)

cluster-demo: build
	@scripts/demo --build $(BUILD) --cluster

test: build
	@cd $(BUILD) && ctest --output-on-failure -j$(JOBS) $(CTEST_ARGS)

bench: build
	@scripts/bench --build $(BUILD)

# The Debian packages (txcoord, txcoord-agent, txcoord-tools, libtxcoord-dev)
# in $(BUILD)/ (docs/operations.md, "Installing").
package: build
	@cd $(BUILD) && cpack

# A Debug build type with our own flags: assertions stay on, NDEBUG unset.
$(SANITIZE_BUILD)/CMakeCache.txt: | deps-clang
	@cmake -S . -B $(SANITIZE_BUILD) -DCMAKE_C_COMPILER=clang-14 -DCMAKE_CXX_COMPILER=clang++-14 \
	  -DCMAKE_BUILD_TYPE=Debug -DCMAKE_C_FLAGS_DEBUG="$(SANITIZE_FLAGS)" \
	  -DCMAKE_CXX_FLAGS_DEBUG="$(SANITIZE_FLAGS)" \
	  -DTXCOORD_SANITIZE=ON -DTXCOORD_WERROR=ON $(CMAKE_ARGS) >/dev/null

sanitize: deps-clang $(SANITIZE_BUILD)/CMakeCache.txt
	@cmake --build $(SANITIZE_BUILD) -j$(JOBS) --target $(SANITIZE_SUITES:%=txcoord_tests_%)
	@cd $(SANITIZE_BUILD) && $(SANITIZE_ENV) ctest --output-on-failure -j$(JOBS) \
	  -L '^($(subst $(space),|,$(strip $(SANITIZE_SUITES))))$$' \
	  $(if $(SANITIZE_EXCLUDE),-E '$(SANITIZE_EXCLUDE)') $(CTEST_ARGS)

format-check: deps-clang
	@scripts/check-format

clean:
	@rm -rf $(BUILD) $(SANITIZE_BUILD)
