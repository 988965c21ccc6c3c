# The two commands of the README: `make demo` and `make test`. Everything they need is installed from here.
SHELL := /bin/bash
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
PYTEST_ARGS ?=

.PHONY: setup demo test test-fast lint format render jars clean help

help:  ## List the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F ':.*## ' '{printf "  %-10s %s\n", $$1, $$2}'

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

# Re-run pip only when the dependencies change.
$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet --upgrade pip "setuptools>=77"
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $@

# JVM artifacts (Kafka connector, Parquet format, SQL gateway, Kafka broker), pinned in jvm/pom.xml.
jvm/target/.fetched: jvm/pom.xml
	mvn --quiet --batch-mode -f jvm/pom.xml package
	touch $@

setup: $(VENV)/.installed jvm/target/.fetched  ## Create the venv and fetch the JVM jars

jars: jvm/target/.fetched  ## Fetch the JVM jars with Maven

demo: setup  ## Run Kafka, the job and the simulator locally and watch the metrics (Ctrl-C stops)
	$(BIN)/modelmon demo

test: setup lint  ## Lint, then run unit, integration and end-to-end tests
	$(BIN)/pytest -m "not slow" $(PYTEST_ARGS)

test-fast: setup  ## Unit tests only (no broker, no JVM)
	$(BIN)/pytest tests/unit $(PYTEST_ARGS)

lint: setup  ## ruff and mypy (type-checked as installed: the source folders map onto one namespace)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	rm -rf build/typecheck
	$(BIN)/pip install --quiet --no-deps --no-build-isolation --target build/typecheck . 2>/dev/null
	cd build/typecheck && ../../$(BIN)/mypy --config-file ../../pyproject.toml -p modelmon

format: setup  ## Format the code
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

render: setup  ## Write the job's SQL to rendered/
	$(BIN)/modelmon render --out rendered

clean:  ## Remove build output and local data (stops the local broker first)
	-$(BIN)/modelmon kafka stop
	rm -rf build rendered .modelmon jvm/target
