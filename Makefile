# Quick start on a machine with only python3: `make demo`, then `make test`.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin

.PHONY: demo test image-test lint format bench lock clean

# The product, editable, and the dev tools. The editable install puts this checkout on the
# path, so the simulators (sim/, shipped apart as connect-bot-sim) import from here too.
$(BIN)/connect-bot: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e . --group dev
	@touch $@

demo: $(BIN)/connect-bot
	$(BIN)/python -m sim demo

# The tests mostly wait on processes and sockets, so more workers than cores pays;
# `make test WORKERS=0` runs them in one process. A module runs on one worker, so its module
# fixtures (the image install, the wheels, shared simulators) are made once; modules are handed
# out in collection order, the longest first (tests/conftest.py). No .pytest_cache is written.
WORKERS ?= 4
test: $(BIN)/connect-bot
	$(BIN)/python -m pytest -q -p no:cacheprovider -n $(WORKERS) --dist loadscope --no-loadscope-reorder

# Builds the Docker image and runs it against the simulators (tests/image/run.sh: starts a
# Docker engine for the run when root and none answers). Not part of `make test`.
image-test: $(BIN)/connect-bot
	PYTHON=$(BIN)/python tests/image/run.sh

lint: $(BIN)/connect-bot
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports
	$(BIN)/mypy
	$(BIN)/hadolint Dockerfile

format: $(BIN)/connect-bot
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

bench: $(BIN)/connect-bot
	$(BIN)/python bench/ack_latency.py
	$(BIN)/python bench/rebuild.py
	$(BIN)/python bench/health.py

# The image installs requirements.lock (hashes checked): regenerate it after changing dependencies.
lock: $(BIN)/connect-bot
	$(BIN)/python -m pip install --quiet pip-tools
	$(BIN)/pip-compile --quiet --generate-hashes --strip-extras --extra postgres \
		--no-emit-index-url --no-emit-find-links --output-file requirements.lock pyproject.toml

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache .mypy_cache .import_linter_cache dist build
