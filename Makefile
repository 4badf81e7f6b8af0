# berth: build, test, demo and benchmark. See README.md.
SHELL := /bin/bash
CARGO ?= cargo
WASM_TARGET := wasm32-wasip2
WASM_OUT := target/$(WASM_TARGET)/release
# Action families shipped with berth: actions/<family> builds berth_action_<family>.wasm.
FAMILIES := system container image network volume swarm node service task secret config plugin
# Guests used only by the tests.
TEST_GUESTS := berth-test-hostile berth-test-bomb berth-test-broken berth-test-legacy-v01
# A native volume plugin that the plugin tests package (tests/guests/volume-plugin).
RELEASE_ACTIONS := target/release/actions
TEST_ENGINE_DIR ?= /tmp/berth-test-engine
DEMO_ENGINE_DIR ?= /tmp/berth-demo-engine

.PHONY: all build toolchain guests host actions test unit demo bench coverage engine-start engine-stop clean

all: build

## build: the guests for wasm32-wasip2, the host, and the actions dir beside the binary
build: guests host actions

toolchain:
	@rustup target list --installed 2>/dev/null | grep -qx $(WASM_TARGET) || rustup target add $(WASM_TARGET)

guests: toolchain
	$(CARGO) build --release --target $(WASM_TARGET) $(foreach f,$(FAMILIES),-p berth-action-$(f)) $(foreach g,$(TEST_GUESTS),-p $(g))

host:
	$(CARGO) build --release -p berth

actions: guests
	@mkdir -p $(RELEASE_ACTIONS)
	@for f in $(FAMILIES); do cp $(WASM_OUT)/berth_action_$$f.wasm $(RELEASE_ACTIONS)/$$f.wasm; done
	@echo "actions installed in $(RELEASE_ACTIONS): $(FAMILIES)"

## test: unit tests, then integration tests against an isolated real dockerd (started and stopped here)
test: guests
	$(CARGO) build -p berth-test-volume-plugin
	$(CARGO) test -p berth-sdk
	tests/engine.sh run $(TEST_ENGINE_DIR) -- $(CARGO) test -p berth --no-fail-fast

## demo: build, make sure an isolated engine runs, then list actions and run a few
demo: build
	@host=$$(tests/engine.sh start $(DEMO_ENGINE_DIR)) && export DOCKER_HOST=$$host && \
	  b=target/release/berth && set -x && \
	  $$b actions && \
	  $$b run system.version -o pretty && \
	  $$b run system.ping -o pretty && \
	  $$b run system.test-connectivity -o pretty && \
	  $$b run system.df -o pretty | head -n 8 && \
	  $$b run system.events since=10m until=0s max_events=5 -o json
	@echo; echo "The demo engine keeps running at unix://$(DEMO_ENGINE_DIR)/docker.sock; stop it with: make engine-stop"

## coverage: rewrite the README's coverage table from actions/coverage.tsv
coverage: guests
	BERTH_UPDATE_README=1 $(CARGO) test -p berth --test coverage

## bench: whole-process and in-process figures against an isolated engine
bench: build
	$(CARGO) build --release --example bench_runtime --example bench_serve --example bench_fairness
	tests/bench.sh $(DEMO_ENGINE_DIR)

engine-start:
	@tests/engine.sh start $(DEMO_ENGINE_DIR)

engine-stop:
	@tests/engine.sh stop $(DEMO_ENGINE_DIR)

clean:
	$(CARGO) clean
