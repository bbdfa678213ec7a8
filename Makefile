# The template repository's commands. `make test` is all a newcomer needs.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
# Downloads are cached inside the checkout, so repeated runs (and CI) reuse them.
export UV_CACHE_DIR := $(CURDIR)/.cache/uv
export PIP_CACHE_DIR := $(CURDIR)/.cache/pip
export POETRY_CACHE_DIR := $(CURDIR)/.cache/poetry
PYTEST_ARGS ?=
BENCH_ARGS ?=

.DEFAULT_GOAL := help
.PHONY: help venv test test-fast bench docs relock requirements lint clean

help: ## List the targets
	@grep -hE '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-10s %s\n", $$1, $$2}'

$(BIN)/copier: requirements-dev.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --require-hashes -r requirements-dev.txt
	touch $@

venv: $(BIN)/copier ## Create .venv with the template's tooling

test: venv ## Run the whole suite (Docker tests run when an engine answers; REQUIRE_DOCKER=1 makes them mandatory)
	PATH="$(CURDIR)/$(BIN):$$PATH" $(BIN)/pytest $(PYTEST_ARGS)

test-fast: venv ## Only the tests that need no Docker and no installs
	PATH="$(CURDIR)/$(BIN):$$PATH" $(BIN)/pytest -m "not docker and not install" $(PYTEST_ARGS)

bench: venv ## Benchmark answer sets into bench/results/ (make bench BENCH_ARGS="--quick")
	PATH="$(CURDIR)/$(BIN):$$PATH" PYTHONPATH=tests $(BIN)/python -m bench $(BENCH_ARGS)

docs: venv ## Build the documentation site into site/ (strict: warnings fail)
	$(BIN)/mkdocs build --strict

relock: venv ## Regenerate the lock snapshots in includes/locks/ (make relock TOOLS=uv)
	PATH="$(CURDIR)/$(BIN):$$PATH" $(BIN)/python scripts/relock.py $(TOOLS)

requirements: venv ## Re-pin this repository's tooling (requirements-dev.in -> .txt)
	$(BIN)/uv pip compile --quiet --universal --python-version 3.11 --generate-hashes \
		--custom-compile-command "make requirements" requirements-dev.in -o requirements-dev.txt

lint: venv ## Lint the template's own Python
	$(BIN)/ruff check tests scripts bench update-migrations
	$(BIN)/ruff format --check tests scripts bench update-migrations

clean: ## Remove the environment and caches
	rm -rf $(VENV) .cache .pytest_cache
