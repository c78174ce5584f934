# kong-looker: build, test and measure. `make help` lists the targets.

SHELL := /bin/bash
.DEFAULT_GOAL := help

CARGO ?= cargo
# Tools the build installs for itself (wasm-bindgen-test-runner, cargo-fuzz)
# live outside the clone, so a fresh clone reuses them.
TOOLS ?= $(HOME)/.cache/kong-looker/tools
export PATH := $(TOOLS)/bin:$(PATH)
TARGET_DIR := $(or $(CARGO_TARGET_DIR),target)
# The test runner must match the wasm-bindgen version in Cargo.lock.
WASM_BINDGEN_VERSION = $(shell awk '/^name = "wasm-bindgen"$$/{getline; gsub(/"/,"",$$3); print $$3}' Cargo.lock)
FUZZ_SECONDS ?= 60
# Binaryen's wasm-opt, from npm (it runs in Node, which the wasm32 tests
# need anyway), shrinks the filter by about 12% after rustc. The features are
# the ones rustc enables for wasm32-wasip1, and SIMD, which
# .cargo/config.toml turns on; the release build strips the section that
# would tell wasm-opt.
BINARYEN_VERSION = 132.0.0
WASM_OPT := $(TOOLS)/binaryen-$(BINARYEN_VERSION)/node_modules/binaryen/bin/wasm-opt
WASM_FEATURES = --enable-bulk-memory --enable-bulk-memory-opt --enable-sign-ext \
	--enable-nontrapping-float-to-int --enable-mutable-globals --enable-multivalue \
	--enable-reference-types --enable-simd
# The Looker project's tests run in a Python venv outside the clone too.
VENV ?= $(HOME)/.cache/kong-looker/venv
PYTHON := $(VENV)/bin/python

.PHONY: help demo test test-native test-engine build names plugin wasm-target tools bench fmt lint fuzz clean

help: ## List the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-7s %s\n", $$1, $$2}'

demo: build ## Run the whole pipeline on SQLite: filter in the test host (VIA=plugin: the plugin server), collector, report (STORE=clickhouse: on a throwaway ClickHouse; STORE=clickhouse://…: on yours)
	$(CARGO) build -q -p kong-looker-collector --bin kong-looker-collector --example demo
	$(if $(filter plugin,$(VIA)),$(CARGO) build -q -p kong-looker-plugin --bin kong-looker-plugin)
	$(if $(filter clickhouse,$(STORE)),scripts/install-clickhouse && scripts/with-clickhouse) $(TARGET_DIR)/debug/examples/demo $(if $(VIA),--via $(VIA)) $(if $(STORE),--store $(STORE))

test: tools build ## Run every test: native and the Looker project's (beside a throwaway PostgreSQL and ClickHouse), wasm32 in Node
	scripts/with-postgres scripts/with-clickhouse $(MAKE) --no-print-directory test-native
	$(CARGO) test -p kong-looker-proto --features mix --target wasm32-unknown-unknown
	$(CARGO) test -p kong-looker-core --lib --target wasm32-unknown-unknown

test-native: ## The tests that need PostgreSQL and ClickHouse (KONG_LOOKER_TEST_POSTGRES, KONG_LOOKER_TEST_CLICKHOUSE); `make test` starts both
	KONG_LOOKER_PYTHON=$(PYTHON) $(CARGO) test --workspace --features kong-looker-proto/mix
	@# The filter's own tests again as Kong 3.10 runs the filter (they use 3.9 unless told).
	KONG_LOOKER_TEST_KONG=3.10 $(CARGO) test --workspace --features kong-looker-proto/mix --test capture --test config --test delivery --test secrets
	@# The seed example that cargo test just built, so that pytest does not
	@# build it again under another feature set.
	KONG_LOOKER_SEED_BIN=$(TARGET_DIR)/debug/examples/seed $(PYTHON) -m pytest -q looker/tests

test-engine: build ## Only the tests in Kong's real Wasm engine (../shared/ngx-wasm), with their figures; `make test` runs them too
	$(CARGO) test -p kong-looker-collector --features kong-looker-proto/mix --test engine -- --nocapture

build: $(WASM_OPT) wasm-target ## Build the release filter into dist/kong_looker.wasm
	$(CARGO) build --release --target wasm32-wasip1 -p kong-looker
	@mkdir -p dist
	@# Written aside and renamed, so a test that loads it never reads half a file.
	node $(WASM_OPT) $(WASM_FEATURES) -O3 $(TARGET_DIR)/wasm32-wasip1/release/kong_looker.wasm -o dist/kong_looker.wasm.tmp
	mv dist/kong_looker.wasm.tmp dist/kong_looker.wasm
	cp kong_looker.meta.json dist/kong_looker.meta.json
	@echo "dist/kong_looker.wasm: $$(stat -c %s dist/kong_looker.wasm) bytes"

names: $(WASM_OPT) wasm-target ## The filter as `make build` makes it but with its function names, for profiles (dist/kong_looker.names.wasm)
	$(CARGO) build --profile profiling --target wasm32-wasip1 -p kong-looker
	@mkdir -p dist
	node $(WASM_OPT) $(WASM_FEATURES) -O3 -g $(TARGET_DIR)/wasm32-wasip1/profiling/kong_looker.wasm -o dist/kong_looker.names.wasm

plugin: ## Build the release plugin server into dist/kong-looker-plugin (Kong's external-plugin protocol)
	$(CARGO) build --release -p kong-looker-plugin --bin kong-looker-plugin
	@mkdir -p dist
	cp $(TARGET_DIR)/release/kong-looker-plugin dist/kong-looker-plugin
	@echo "dist/kong-looker-plugin: $$(stat -c %s dist/kong-looker-plugin) bytes"

$(WASM_OPT):
	@command -v npm >/dev/null || { echo "make build needs Node.js and npm for wasm-opt (binaryen)"; exit 1; }
	npm install --silent --no-audit --no-fund --prefix $(TOOLS)/binaryen-$(BINARYEN_VERSION) binaryen@$(BINARYEN_VERSION)
	@touch $@

wasm-target: ## Install the Rust target the filter builds for (a fresh toolchain has only its host's)
	@rustup target list --installed 2>/dev/null | grep -qx wasm32-wasip1 || rustup target add wasm32-wasip1

tools: ## Install the Rust targets, test tools, Python packages and (as root, with apt) the ClickHouse server a fresh machine lacks
	rustup target add wasm32-wasip1 wasm32-unknown-unknown
	@scripts/install-clickhouse
	@if ! cmp -s looker/tests/requirements.txt $(VENV)/.requirements; then \
		echo "installing the Looker tests' Python packages into $(VENV)"; \
		python3 -m venv $(VENV) && \
		$(VENV)/bin/pip install -q --disable-pip-version-check -r looker/tests/requirements.txt && \
		cp looker/tests/requirements.txt $(VENV)/.requirements; \
	fi
	@if [ "$$(wasm-bindgen-test-runner --version 2>/dev/null | awk '{print $$2}')" != "$(WASM_BINDGEN_VERSION)" ]; then \
		echo "installing wasm-bindgen-cli $(WASM_BINDGEN_VERSION) into $(TOOLS)"; \
		$(CARGO) install --root "$(TOOLS)" wasm-bindgen-cli --version "$(WASM_BINDGEN_VERSION)"; \
	fi

bench: build ## Run the criterion benches and print the wire sizes (bench/RESULTS.md)
	$(CARGO) run -q --release -p kong-looker-proto --features mix --example wire_size
	$(CARGO) bench --bench codec
	$(CARGO) bench --bench capture
	$(CARGO) bench --bench host
	scripts/install-clickhouse
	scripts/with-postgres scripts/with-clickhouse $(CARGO) bench -p kong-looker-collector --bench collector
	$(CARGO) build --release -p kong-looker-plugin --bin kong-looker-plugin
	$(CARGO) build --release --manifest-path plugin/noop/Cargo.toml
	$(CARGO) test -p kong-looker-plugin --test cost -- --ignored --nocapture
	@# Kong's real Wasm engine with wrk (apt-get install wrk; perf for --count).
	@if command -v wrk >/dev/null; then python3 bench/engine.py; else echo "skipping bench/engine.py: apt-get install wrk"; fi

fmt: ## Format the code
	$(CARGO) fmt --all

lint: tools ## rustfmt check and clippy with warnings as errors, native and wasm32
	$(CARGO) fmt --all -- --check
	for m in proto/fuzz fuzz collector/fuzz plugin/fuzz plugin/noop testkit/tests/filters/probe testkit/tests/filters/noop testkit/tests/filters/floor testkit/tests/filters/routes; do \
		$(CARGO) fmt --manifest-path $$m/Cargo.toml -- --check || exit 1; \
	done
	$(CARGO) clippy --workspace --all-targets --features kong-looker-proto/mix -- -D warnings
	$(CARGO) clippy --target wasm32-wasip1 -p kong-looker -p kong-looker-core -p kong-looker-proto -- -D warnings
	$(CARGO) check --manifest-path proto/fuzz/Cargo.toml
	$(CARGO) check --manifest-path fuzz/Cargo.toml
	$(CARGO) check --manifest-path collector/fuzz/Cargo.toml
	$(CARGO) check --manifest-path plugin/fuzz/Cargo.toml

fuzz: tools ## Fuzz every parser for FUZZ_SECONDS each (installs cargo-fuzz)
	@command -v cargo-fuzz >/dev/null || $(CARGO) install --root "$(TOOLS)" cargo-fuzz --version 0.13.2
	@mkdir -p proto/fuzz/corpus/reader && cp tests/vectors/*.bin proto/fuzz/corpus/reader/
	@mkdir -p proto/fuzz/corpus/address
	@printf '203.0.113.45' > proto/fuzz/corpus/address/v4
	@printf '2001:db8:1a2b::5e6f:7a8b' > proto/fuzz/corpus/address/v6
	@printf '::ffff:203.0.113.45' > proto/fuzz/corpus/address/mapped
	@mkdir -p collector/fuzz/corpus/http_body collector/fuzz/corpus/http_log
	@for f in tests/vectors/*.bin; do (printf '\x00'; cat $$f) > collector/fuzz/corpus/http_body/$$(basename $$f); done
	@(printf '\x01'; cat collector/tests/data/kong_sample.json) > collector/fuzz/corpus/http_body/kong_sample
	@cp collector/tests/data/kong_sample.json collector/fuzz/corpus/http_log/
	@mkdir -p collector/fuzz/corpus/store_url
	@printf 'clickhouse://looker:p%%40ss@ch:8443/kong?secure=true&ca_file=/ca.pem&insert_quorum=2' > collector/fuzz/corpus/store_url/clickhouse
	@printf 'postgres://looker:secret@db:5432/kong' > collector/fuzz/corpus/store_url/postgres
	@mkdir -p plugin/fuzz/corpus/socket_input
	for dir in proto/fuzz fuzz collector/fuzz plugin/fuzz; do \
		(cd $$dir && for t in $$(RUSTC_BOOTSTRAP=1 cargo fuzz list); do \
			RUSTC_BOOTSTRAP=1 cargo fuzz run $$t -- -max_total_time=$(FUZZ_SECONDS) -max_len=65536 || exit 1; \
		done) || exit 1; \
	done

clean: ## Remove build output
	$(CARGO) clean
	rm -rf dist
