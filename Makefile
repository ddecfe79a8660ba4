# Lilypad — build, test and demo entry points. `make help` lists them.
#
# Everything the targets need is installed by the targets themselves from crates.io and
# the npm registry (contracts/node_modules); see README.md.

SHELL := /bin/bash
CARGO ?= cargo
# forge from the npm package, run from contracts/ (where foundry.toml lives).
FORGE := node_modules/@foundry-rs/forge-linux-amd64/bin/forge

.PHONY: help deps contracts check-artifacts test test-contracts test-rust gas build clean

help: ## List the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | sed -E 's/:.*## /\t/' | expand -t 18

deps: contracts/node_modules/.installed ## Install the Solidity toolchain (npm ci in contracts/)

contracts/node_modules/.installed: contracts/package.json contracts/package-lock.json
	cd contracts && npm ci --no-audit --no-fund
	@touch $@

contracts: deps ## Compile the contracts and export {abi, bytecode} to contracts/out/
	cd contracts && $(FORGE) build
	cd contracts && node tools/export-artifacts.js

check-artifacts: contracts ## Fail if contracts/out differs from a fresh build
	@if [ -n "$$(git status --porcelain -- contracts/out)" ]; then \
		git status --short -- contracts/out; git --no-pager diff --stat -- contracts/out; \
		echo "contracts/out is stale: run 'make contracts' and commit the result" >&2; exit 1; \
	fi
	@echo "contracts/out matches a fresh build"

test: test-contracts test-rust ## Run every test: forge (unit, fuzz, invariant) and cargo

test-contracts: deps ## Forge tests; FOUNDRY_PROFILE=ci runs CI's larger fuzz/invariant campaign
	cd contracts && $(FORGE) test

test-rust: ## Cargo tests (unit and tests/)
	$(CARGO) test --locked

gas: deps ## Print the execution gas of a happy-path job
	@set -o pipefail; cd contracts && $(FORGE) test --match-test test_gas_happyPath -vv \
		| sed -n '/happy-path execution gas/,/budget/p'

build: ## Build the lilypad binary (release)
	$(CARGO) build --locked --release

clean: ## Remove build outputs (not the committed contract artifacts)
	$(CARGO) clean
	rm -rf contracts/build
