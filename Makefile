# Quick start:  make demo   (coordinator + three agents + a transfer workload)
#               make test   (every test)
# Both install missing Debian packages first and build incrementally in build/.
BUILD ?= build
JOBS ?= $(shell nproc)
CTEST_ARGS ?=

.PHONY: all deps configure build demo test bench package clean

all: build

deps:
	@scripts/install-deps

$(BUILD)/CMakeCache.txt: | deps
	@cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null

configure: deps $(BUILD)/CMakeCache.txt

build: configure
	@cmake --build $(BUILD) -j$(JOBS)

demo: build
	@scripts/demo --build $(BUILD)

test: build
	@cd $(BUILD) && ctest --output-on-failure -j$(JOBS) $(CTEST_ARGS)

bench: build
	@scripts/bench --build $(BUILD)

# The Debian packages (txcoord, txcoord-agent, txcoord-tools, libtxcoord-dev)
# in $(BUILD)/ (docs/operations.md, "Installing").
package: build
	@cd $(BUILD) && cpack

clean:
	@rm -rf $(BUILD)
