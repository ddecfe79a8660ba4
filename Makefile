# Lilypad — build, test and demo entry points. `make help` lists them.
#
# Everything the targets need is installed by the targets themselves from crates.io and
# the npm registry (contracts/node_modules); see README.md.

SHELL := /bin/bash
CARGO ?= cargo
# forge from the npm package, run from contracts/ (where foundry.toml lives).
FORGE := node_modules/@foundry-rs/forge-linux-amd64/bin/forge

TOOLS ?= geth kubo bacalhau

.PHONY: bench-matcher bench-network bench-solver chaos fuzz bench-disk tools tools-for-tests docker-images help deps contracts check-artifacts test test-unit test-contracts test-anvil test-rust gas deploy-contracts lint build clean images demo bench bench-blocktime

help: ## List the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | sed -E 's/:.*## /\t/' | expand -t 18

deps: contracts/node_modules/.installed ## Install the Solidity toolchain (npm ci in contracts/)

contracts/node_modules/.installed: contracts/package.json contracts/package-lock.json
	cd contracts && npm ci --no-audit --no-fund
	@touch $@

contracts: deps ## Compile the contracts (failing any over EIP-170's size limit) and export {abi, bytecode} to contracts/out/
	cd contracts && $(FORGE) build --sizes --skip test --skip script
	cd contracts && node tools/export-artifacts.js

check-artifacts: contracts ## Fail if contracts/out differs from a fresh build
	@if [ -n "$$(git status --porcelain -- contracts/out)" ]; then \
		git status --short -- contracts/out; git --no-pager diff --stat -- contracts/out; \
		echo "contracts/out is stale: run 'make contracts' and commit the result" >&2; exit 1; \
	fi
	@echo "contracts/out matches a fresh build"

tools: ## Build the pinned engines (deploy/tools/versions.env: geth, kubo, Bacalhau) with Go into LILYPAD_TOOLS_DIR; TOOLS="geth" builds some, TOOLS="buildx compose" the Docker CLI plugins
	deploy/tools/install.sh $(TOOLS)

test: test-contracts test-anvil test-rust ## Run every test: forge (unit, fuzz, invariant), the anvil deployment check, cargo

test-unit: ## Rust tests that need neither Docker nor anvil (unit, property, ledger tests on SQLite in a temp dir, the solver store on SQLite and PostgreSQL, artifacts, deploy files)
	deploy/postgres.sh
	$(CARGO) test --locked --lib --test contracts --test deploy

test-contracts: deps ## Forge tests; FOUNDRY_PROFILE=ci runs CI's larger fuzz/invariant campaign
	cd contracts && $(FORGE) test

test-anvil: deps ## Deploy to a real anvil node and settle one deal over JSON-RPC
	contracts/tools/anvil-check.sh

test-rust: deps images tools-for-tests ## Cargo tests (unit and tests/: end to end on anvil, geth, kubo, Bacalhau + Docker; the solver store also on PostgreSQL)
	deploy/postgres.sh
	$(CARGO) test --locked --all-targets

# The engines the tests start (geth for tests/e2e_geth.rs, kubo for tests/ipfs.rs, Bacalhau
# for tests/e2e_bacalhau.rs) and the Docker CLI plugins tests/compose.rs uses.
tools-for-tests:
	deploy/tools/install.sh geth kubo bacalhau buildx compose

TOOLS_DIR := $(or $(LILYPAD_TOOLS_DIR),$(HOME)/.cache/lilypad/tools)
ANVIL := contracts/node_modules/@foundry-rs/anvil-linux-amd64/bin/anvil
# Docker's own buildx plugin if the CLI has one, else the one `make tools TOOLS=buildx` built.
BUILDX = $(shell docker buildx version >/dev/null 2>&1 && echo docker buildx || echo DOCKER_CONFIG=$(TOOLS_DIR) docker buildx)

docker-images: build deps ## Build the compose images lilypad/node:local and lilypad/chain:local offline, from the release build and the npm-shipped anvil (see deploy/docker/)
	deploy/docker/rootfs.sh target/docker/node target/release/lilypad
	deploy/docker/rootfs.sh target/docker/chain $(ANVIL)
	$(BUILDX) build --load -f deploy/docker/Dockerfile --build-arg FROM=prebuilt --target node -t lilypad/node:local target/docker/node
	$(BUILDX) build --load -f deploy/docker/Dockerfile --build-arg FROM=prebuilt --target chain -t lilypad/chain:local target/docker/chain

gas: deps ## Print the execution gas of a happy-path job
	@set -o pipefail; cd contracts && $(FORGE) test --match-test test_gas_happyPath -vv \
		| sed -n '/happy-path execution gas/,/budget/p'

deploy-contracts: deps ## Deploy every contract to WEB3_RPC_URL with the key in WEB3_PRIVATE_KEY (see deploy/README.md)
	@test -n "$$WEB3_RPC_URL" || { echo "set WEB3_RPC_URL to the chain's RPC endpoint" >&2; exit 2; }
	@test -n "$$WEB3_PRIVATE_KEY" || { echo "set WEB3_PRIVATE_KEY (env, never a flag) to the deployer's key" >&2; exit 2; }
	cd contracts && $(FORGE) script script/Deploy.s.sol:Deploy --rpc-url "$$WEB3_RPC_URL" --broadcast

lint: deps ## Formatting and lints: cargo fmt, clippy (warnings are errors), forge fmt
	$(CARGO) fmt --check
	$(CARGO) clippy --locked --all-targets -- -D warnings
	cd contracts && $(FORGE) fmt --check

build: ## Build the lilypad binary (release)
	$(CARGO) build --locked --release

clean: ## Remove build outputs (not the committed contract artifacts)
	$(CARGO) clean
	rm -rf contracts/build

COWSAY_IMAGE := lilypad/cowsay:v0.0.1
COWSAY_DIR := deploy/images/cowsay

images: ## Build the module images the built-in catalog names (lilypad/cowsay:v0.0.1, FROM scratch)
	@deploy/docker-engine.sh
	cd $(COWSAY_DIR) && RUSTFLAGS='-C target-feature=+crt-static' $(CARGO) build --locked --release --target x86_64-unknown-linux-gnu
	cp $(COWSAY_DIR)/target/x86_64-unknown-linux-gnu/release/cowsay $(COWSAY_DIR)/cowsay
	docker build --no-cache -q -t $(COWSAY_IMAGE) $(COWSAY_DIR)

demo: deps build images ## Build, then run the cowsay job end to end on an embedded local network
	./target/release/lilypad run cowsay:v0.0.1 -i Message=moo

FUZZ_TARGETS := signed_request offer_json results_tar module_template module_spec
bench-matcher: ## One matcher pass over 1k, 10k and 50k job x resource offers (MATCHER_SIZES): time, ratio to building the same deals, peak memory
	$(CARGO) bench --locked --bench matcher

bench-solver: deps ## The solver process under load (tests/bench/solver.rs): signed-offer intake (requests/s, p50/p99) against a GET /health baseline, /ws fan-out to 1,000 subscribers, memory; on SQLite with a perf profile, then on PostgreSQL
	deploy/postgres.sh
	BENCH_PROFILE=1 $(CARGO) bench --locked --bench solver
	BENCH_DATABASE=postgres $(CARGO) bench --locked --bench solver

CHAOS_SEEDS ?= 1,2,3,4,5,6,7,8,9,10
chaos: deps images ## The chaos test (tests/chaos.rs) over CHAOS_SEEDS (1 to 10; make test runs seeds 1,2,3): twenty jobs while processes are killed with SIGKILL and started again
	CHAOS_SEEDS=$(CHAOS_SEEDS) $(CARGO) test --locked --test chaos -- --nocapture

FUZZ_SECONDS ?= 60

fuzz: ## Fuzz each parser of untrusted input (signed headers, offers/deals JSON, results tars, module templates and specs) for FUZZ_SECONDS (60) with cargo-fuzz on nightly
	tests/fuzz/run.sh $(FUZZ_SECONDS) $(FUZZ_TARGETS)

bench-network: deps images ## 200 jobs from 10 job creators on 8 slots through lilypad dev (jobs/minute, p50/p99, failures, transactions and gas per job, peak memory), then a solver holding 50,000 open offers
	$(CARGO) bench --locked --bench network

bench-disk: ## A solver store's disk use after 10,000 jobs, after its retention pass, and after 10,000 more (RETENTION_JOBS sets the number)
	RETENTION_JOBS=$${RETENTION_JOBS:-10000} $(CARGO) test --locked --release --test retention -- --nocapture

bench: deps build images tools-for-tests ## lilypad run (Docker RP and Bacalhau RP) vs a bare docker run of the same image, alternated; prints the ratios
	tests/bench/run_vs_docker.sh

bench-blocktime: deps build images tools-for-tests ## lilypad run on chains with a block every 1 and 2 s (anvil, geth) against its floor: 4 blocks + docker run
	tests/bench/block_time.sh
