# berth: build, test, demo and benchmark. See README.md.
SHELL := /bin/bash
CARGO ?= cargo
WASM_TARGET := wasm32-wasip2
WASM_OUT := target/$(WASM_TARGET)/release
# Action families shipped with berth: actions/<family> builds berth_action_<family>.wasm.
FAMILIES := system container image network volume swarm node service task secret config plugin response
# Guests used only by the tests.
TEST_GUESTS := berth-test-hostile berth-test-bomb berth-test-broken berth-test-legacy-v01 berth-test-floor
# A native volume plugin that the plugin tests package (tests/guests/volume-plugin).
RELEASE_ACTIONS := target/release/actions
# Families in Python and JavaScript, on the SDKs in actions/sdk-python and actions/sdk-js:
# examples shipped with berth (actions/<name>/app.py|app.js) and guests for the tests.
COMPONENTS := target/components
PY_EXAMPLES := hunt
JS_EXAMPLES := posture
PY_TEST_GUESTS := py-probe
JS_TEST_GUESTS := js-probe
WIT := wit/since_v0.2.0
# The guest toolchains, pinned to the versions known to work, installed under target/.
TOOLCHAINS := $(CURDIR)/target/toolchains
COMPONENTIZE_PY := $(TOOLCHAINS)/py/bin/componentize-py
COMPONENTIZE_JS := $(TOOLCHAINS)/js/node_modules/.bin/componentize-js
PY_SDK := $(wildcard actions/sdk-python/berth_sdk/*.py) actions/sdk-python/stamp.py
JS_SDK := actions/sdk-js/berth.js actions/sdk-js/stamp.mjs
TEST_ENGINE_DIR ?= /tmp/berth-test-engine
DEMO_ENGINE_DIR ?= /tmp/berth-demo-engine

.PHONY: all build toolchain toolchains clients guests components host actions test test-run unit lint demo bench coverage engine-start engine-stop clean

all: build

## build: the guests for wasm32-wasip2 (Rust, Python, JS), the host, and the actions dir beside the binary
build: guests components host actions

toolchain:
	@rustup target list --installed 2>/dev/null | grep -qx $(WASM_TARGET) || rustup target add $(WASM_TARGET)

guests: toolchain
	$(CARGO) build --release --target $(WASM_TARGET) $(foreach f,$(FAMILIES),-p berth-action-$(f)) $(foreach g,$(TEST_GUESTS),-p $(g))

## toolchains: componentize-py 0.25.1 (PyPI) and componentize-js 0.23.0 (npm), under target/toolchains
toolchains: $(COMPONENTIZE_PY) $(COMPONENTIZE_JS)

$(COMPONENTIZE_PY):
	python3 -m venv $(TOOLCHAINS)/py
	$(TOOLCHAINS)/py/bin/pip install --quiet --disable-pip-version-check componentize-py==0.25.1

## clients: the SOAR-side clients the platform tests drive: DataFire 2.27.1 (npm), which
# generates a connector from berth serve's OpenAPI document, openapi-spec-validator and
# splunk-soar-sdk 2.3 (PyPI)
CLIENTS := $(TOOLCHAINS)/clients
DATAFIRE := $(CLIENTS)/js/node_modules/.bin/datafire
OPENAPI_VALIDATOR := $(CLIENTS)/py/bin/openapi-spec-validator
SOARAPPS := $(CLIENTS)/soar/bin/soarapps
UV_VERSION := 0.13.9
clients: $(DATAFIRE) $(OPENAPI_VALIDATOR) $(SOARAPPS)

# splunk-soar-sdk runs and packages the app `berth export splunk-soar` writes; uv locks it.
$(SOARAPPS):
	python3 -m venv $(CLIENTS)/soar
	$(CLIENTS)/soar/bin/pip install --quiet --disable-pip-version-check splunk-soar-sdk==2.3.7 uv==$(UV_VERSION)

$(OPENAPI_VALIDATOR):
	python3 -m venv $(CLIENTS)/py
	$(CLIENTS)/py/bin/pip install --quiet --disable-pip-version-check openapi-spec-validator==0.9.0

$(DATAFIRE):
	mkdir -p $(CLIENTS)/js
	cd $(CLIENTS)/js && echo '{"private":true}' > package.json && npm install --no-audit --no-fund --silent datafire@2.27.1

$(COMPONENTIZE_JS):
	mkdir -p $(TOOLCHAINS)/js
	cd $(TOOLCHAINS)/js && echo '{"private":true}' > package.json && npm install --no-audit --no-fund --silent @bytecodealliance/componentize-js@0.23.0

## components: the Python and JavaScript families, stamped with their contract version
components: $(foreach f,$(PY_EXAMPLES) $(JS_EXAMPLES),$(COMPONENTS)/$(f).wasm) $(foreach g,$(PY_TEST_GUESTS) $(JS_TEST_GUESTS),$(COMPONENTS)/$(g).wasm)

define py_component
$(COMPONENTS)/$(1).wasm: $(2)/app.py $(PY_SDK) $(WIT)/berth.wit | $(COMPONENTIZE_PY)
	@mkdir -p $(COMPONENTS)
	$(COMPONENTIZE_PY) -d $(WIT) -w family componentize app -p $(2) -p actions/sdk-python -o $$@.tmp
	python3 actions/sdk-python/stamp.py $$@.tmp
	mv $$@.tmp $$@
endef

# componentize-js resolves imports inside the source's directory: build from a copy beside the SDK.
define js_component
$(COMPONENTS)/$(1).wasm: $(2)/app.js $(JS_SDK) $(WIT)/berth.wit | $(COMPONENTIZE_JS)
	@mkdir -p $(COMPONENTS)/$(1).src
	cp $(2)/app.js actions/sdk-js/berth.js $(COMPONENTS)/$(1).src/
	$(COMPONENTIZE_JS) --wit $(WIT) -n family -d http -d fetch-event -o $$@.tmp $(COMPONENTS)/$(1).src/app.js
	node actions/sdk-js/stamp.mjs $$@.tmp
	mv $$@.tmp $$@
endef

# The same JS family built without `-d http -d fetch-event`: it imports wasi:http, which berth
# does not give; `berth check` must name that import.
components: $(COMPONENTS)/js-needs-http.wasm
$(COMPONENTS)/js-needs-http.wasm: $(COMPONENTS)/posture.wasm
	$(COMPONENTIZE_JS) --wit $(WIT) -n family -o $@.tmp $(COMPONENTS)/posture.src/app.js
	mv $@.tmp $@

# The SDK references' examples: every ```python or ```js block of REFERENCE.md, in order, as
# one family each, built like the others and run by tests/authoring.rs.
components: $(COMPONENTS)/pyref.wasm $(COMPONENTS)/jsref.wasm
$(COMPONENTS)/pyref.md/app.py: actions/sdk-python/REFERENCE.md
	@mkdir -p $(@D)
	awk '/^```python$$/ {f=1; next} /^```$$/ {f=0} f' $< >$@
$(COMPONENTS)/jsref.md/app.js: actions/sdk-js/REFERENCE.md
	@mkdir -p $(@D)
	awk '/^```js$$/ {f=1; next} /^```$$/ {f=0} f' $< >$@
$(eval $(call py_component,pyref,$(COMPONENTS)/pyref.md))
$(eval $(call js_component,jsref,$(COMPONENTS)/jsref.md))

$(foreach f,$(PY_EXAMPLES),$(eval $(call py_component,$(f),actions/$(f))))
$(foreach f,$(JS_EXAMPLES),$(eval $(call js_component,$(f),actions/$(f))))
$(foreach g,$(PY_TEST_GUESTS),$(eval $(call py_component,$(g),tests/guests/$(g))))
$(foreach g,$(JS_TEST_GUESTS),$(eval $(call js_component,$(g),tests/guests/$(g))))

host:
	$(CARGO) build --release -p berth

actions: guests components
	@mkdir -p $(RELEASE_ACTIONS)
	@for f in $(FAMILIES); do cp $(WASM_OUT)/berth_action_$$f.wasm $(RELEASE_ACTIONS)/$$f.wasm; done
	@for f in $(PY_EXAMPLES) $(JS_EXAMPLES); do cp $(COMPONENTS)/$$f.wasm $(RELEASE_ACTIONS)/$$f.wasm; done
	@echo "actions installed in $(RELEASE_ACTIONS): $(FAMILIES) $(PY_EXAMPLES) $(JS_EXAMPLES)"

## test: unit tests, then integration tests against isolated real dockerds (started and stopped here)
# One release build serves the demo and the tests: the integration tests (the crate in tests/)
# do not link berth, they drive the binary `make build` made; the host's unit tests and the
# few tests of its library (host/tests/) build on the same release dependencies.
# The integration binaries mostly wait on their engine, so they run in two groups side by side,
# each against an isolated engine of its own (neither sees the other's containers, images or
# prunes). The authoring tests (they build Python and JS components: CPU-bound, ~4 min) run
# beside both, against a third engine. All share one compile cache. The second group's and the
# authoring tests' output follow the first group's.
INTEGRATION := $(basename $(notdir $(wildcard tests/*.rs)))
TEST_GROUP_B := remote swarm isolation gate serve system fanout netvol
TEST_GROUP_A := $(filter-out authoring $(TEST_GROUP_B),$(INTEGRATION))
TESTS := $(CARGO) test --release -p berth-tests --no-fail-fast
# make test records its wall time and how many builds of wasmtime target/ holds (make bench
# reports both).
test:
	@start=$$(date +%s); $(MAKE) --no-print-directory build test-run; rc=$$?; \
	  builds=$$(ls target/*/deps/libwasmtime-*.rlib 2>/dev/null | wc -l); \
	  echo "{\"seconds\": $$(( $$(date +%s) - start )), \"wasmtime_builds\": $$builds, \"rc\": $$rc}" >target/make-test.json; \
	  echo "make test: $$(( $$(date +%s) - start )) s; wasmtime built $$builds time(s) in target/"; exit $$rc

test-run: clients
	$(CARGO) build --release -p berth-test-volume-plugin
	$(CARGO) test --release -p berth-sdk $(foreach f,$(FAMILIES),-p berth-action-$(f))
	$(CARGO) test --release -p berth --no-run
	$(TESTS) --no-run
	tests/engine.sh ensure
	@mkdir -p target
	@export BERTH_TEST_CACHE=$(TEST_ENGINE_DIR)-cache; \
	  tests/engine.sh run $(TEST_ENGINE_DIR)-authoring -- $(TESTS) --test authoring >target/authoring-tests.log 2>&1 & apid=$$!; \
	  tests/engine.sh run $(TEST_ENGINE_DIR)-b -- $(TESTS) $(foreach t,$(TEST_GROUP_B),--test $(t)) >target/group-b-tests.log 2>&1 & bpid=$$!; \
	  tests/engine.sh run $(TEST_ENGINE_DIR) -- bash -c '$(CARGO) test --release -p berth --no-fail-fast; h=$$?; $(TESTS) $(foreach t,$(TEST_GROUP_A),--test $(t)) && exit $$h'; rc=$$?; \
	  wait $$bpid; brc=$$?; echo "--- $(foreach t,$(TEST_GROUP_B),tests/$(t).rs) (run beside the others)"; cat target/group-b-tests.log; \
	  wait $$apid; arc=$$?; echo "--- tests/authoring.rs (run beside the others)"; cat target/authoring-tests.log; \
	  [ $$rc -eq 0 ] && [ $$brc -eq 0 ] && [ $$arc -eq 0 ]

## unit: the unit tests of the engine transport, the policy gate, specs and credentials, built
# without wasmtime (seconds once the release dependencies are built)
unit:
	$(CARGO) test --release -p berth --no-default-features --lib

## lint: formatting (.rustfmt.toml) and clippy, warnings as errors, for the host, the tests and
# the guests (for their own target); .ci/run fails on either
NATIVE_CRATES := -p berth -p berth-tests -p berth-test-support -p berth-sdk -p berth-test-volume-plugin
lint: toolchain
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --release $(NATIVE_CRATES) --all-targets -- -D warnings
	$(CARGO) clippy --release -p berth --no-default-features --all-targets -- -D warnings
	$(CARGO) clippy --release --target $(WASM_TARGET) -p berth-sdk $(foreach f,$(FAMILIES),-p berth-action-$(f)) $(foreach g,$(TEST_GUESTS),-p $(g)) -- -D warnings

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

## coverage: rewrite actions/COVERAGE.md from actions/coverage.tsv
coverage: guests
	BERTH_UPDATE_COVERAGE=1 $(CARGO) test --release -p berth-tests --test coverage

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
