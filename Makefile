# Mint — the two commands: `make dev` and `make test`.
SHELL := /bin/bash
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
PROTOS := $(shell find protos -name '*.proto' 2>/dev/null)

.PHONY: dev test lint protos install clean fmt mutation bench chromium

$(BIN)/python:
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip

$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/pip install -q -e '.[dev,embedded]' --config-settings editable_mode=compat
	printf '%s\n%s\n' "$(CURDIR)/services" "$(CURDIR)/operator" > $$($(BIN)/python -c 'import sysconfig;print(sysconfig.get_paths()["purelib"])')/mint-src.pth
	touch $(STAMP)

install: $(STAMP) protos

protos: $(STAMP)
	$(BIN)/python -m mint.protogen

dev: install
	$(BIN)/mint dev

test: install chromium
	bash tools/test.sh

# Debian's Chromium for the browser tests (tests/browser; Playwright never downloads its own
# browsers), installed once when missing — non-interactively, as root (CI) or through sudo.
chromium:
	@command -v chromium >/dev/null 2>&1 || { \
	  echo "[test] installing Debian's chromium with apt"; \
	  SUDO=$$([ "$$(id -u)" = 0 ] || echo "sudo -n"); \
	  $$SUDO apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq chromium >/dev/null || \
	  echo "[test] could not install chromium: the browser tests will fail saying so"; }

# The money path under load beside raw PostgreSQL (not part of `make test`): README "Benchmarks".
# e.g. make bench BENCH_ARGS="--duration 3 --clients 1,8 --no-start-times"
BENCH_ARGS ?=
bench: install
	$(BIN)/mint bench $(BENCH_ARGS)

# Mutation testing of the money core (slow, not part of `make test`): README "Tests".
mutation: install
	bash tools/mutation.sh $(MUTANTS)

lint: install
	$(BIN)/ruff check services operator tests
	$(BIN)/ruff format --check services operator tests
	$(BIN)/mypy services/mint operator/mint_operator
	$(BIN)/lint-imports

fmt: install
	$(BIN)/ruff format services operator tests
	$(BIN)/ruff check --fix services operator tests

clean:
	rm -rf $(VENV) .mint
