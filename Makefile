# The two commands of the README: `make demo` and `make test`. Everything they need is installed from here.
SHELL := /bin/bash
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
PYTEST_ARGS ?=

.PHONY: setup system-packages demo test test-slow test-fast lint format render dashboards jars bench clean help

help:  ## List the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F ':.*## ' '{printf "  %-16s %s\n", $$1, $$2}'

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

# Re-run pip only when the dependencies change.
$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet --upgrade pip "setuptools>=77"
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $@

# JVM artifacts (Kafka connector, Parquet format, SQL gateway, Kafka broker), pinned in jvm/pom.xml, and
# modelmon's own SQL functions compiled from jvm/src.
jvm/target/.fetched: jvm/pom.xml $(shell find jvm/src -name '*.java')
	mvn --quiet --batch-mode -f jvm/pom.xml package
	touch $@

# Debian packages, as command:package: Prometheus (promtool tests the alert rules; the server scrapes in
# tests), Alertmanager, and headless Chromium with its WebDriver (web page tests). Installed only when a
# command is missing, so a set-up machine skips this in milliseconds. A policy-rc.d that answers 101 keeps
# the packages' post-install scripts from starting their services (no systemd in a container; and
# Alertmanager's default port 9093 is the local Kafka controller's).
SYSTEM_PACKAGES := prometheus:prometheus promtool:prometheus prometheus-alertmanager:prometheus-alertmanager \
	chromium:chromium chromedriver:chromium-driver
SUDO := $(if $(filter 0,$(shell id -u)),,sudo)
POLICY_RC := /usr/sbin/policy-rc.d

system-packages:  ## Install the Debian packages the tests need (apt-get, only when missing)
	@set -euo pipefail; missing=""; \
	for pair in $(SYSTEM_PACKAGES); do \
	  command -v "$${pair%%:*}" >/dev/null || missing="$$missing $${pair##*:}"; \
	done; \
	[ -n "$$missing" ] || exit 0; \
	missing=$$(printf '%s\n' $$missing | sort -u | tr '\n' ' '); \
	command -v apt-get >/dev/null || { echo "install these Debian/Ubuntu packages (or their commands): $$missing" >&2; exit 1; }; \
	echo "apt-get install $$missing"; \
	guard=""; \
	if [ ! -e $(POLICY_RC) ]; then \
	  printf '#!/bin/sh\nexit 101\n' | $(SUDO) tee $(POLICY_RC) >/dev/null; $(SUDO) chmod 755 $(POLICY_RC); guard=1; \
	fi; \
	trap '[ -z "$$guard" ] || $(SUDO) rm -f $(POLICY_RC)' EXIT; \
	apt="$(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get -qq -o DPkg::Lock::Timeout=600"; \
	$$apt update >/dev/null; \
	$$apt install -y --no-install-recommends $$missing >/dev/null

setup: $(VENV)/.installed jvm/target/.fetched system-packages  ## Create the venv, fetch the JVM jars, install Debian packages

jars: jvm/target/.fetched  ## Fetch the JVM jars and build modelmon's functions with Maven

demo: setup  ## Run Kafka, the job and the simulator locally and watch the metrics (Ctrl-C stops)
	$(BIN)/modelmon demo

test: setup lint  ## Lint, then run unit, integration and end-to-end tests
	$(BIN)/pytest -m "not slow" $(PYTEST_ARGS)

test-slow: setup  ## The slow tests CI leaves out: cluster crash recovery, Kafka restart, savepoint and rescale, soak
	$(BIN)/pytest -m slow $(PYTEST_ARGS)

bench: setup  ## Benchmarks: throughput vs a passthrough baseline, latency, memory, state (BENCH_ARGS="--events 1M")
	$(BIN)/modelmon bench $(BENCH_ARGS)

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

dashboards: $(VENV)/.installed  ## Regenerate the Grafana dashboard dashboards/modelmon.json (grafana-foundation-sdk)
	$(BIN)/python -m modelmon.dashboards

clean:  ## Remove build output and local data (stops the local broker first)
	-$(BIN)/modelmon kafka stop
	rm -rf build rendered .modelmon jvm/target
