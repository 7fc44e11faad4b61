# NOVAMIND: `make demo` runs the main job on local services, `make test` runs every test.
SHELL := /bin/bash
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
TOOLS := .local/bin
PROMTOOL := $(TOOLS)/promtool
PROMTOOL_VERSION := v0.316.0
KUSTOMIZE := $(TOOLS)/kustomize
KUSTOMIZE_VERSION := v5.7.1

.PHONY: help install lock services services-down services-status topics test test-unit lint demo demo-clean bench bench-ci clean

help:  ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-16s %s\n", $$1, $$2}'

# Development installs both locks: the runtime set (requirements.lock, all the image gets) and
# the tools, test libraries and the `plot` extra (requirements-dev.lock).
$(STAMP): requirements.lock requirements-dev.lock pyproject.toml
	@command -v $(PYTHON) >/dev/null || { echo "make: $(PYTHON) not found: install Python 3.11 or run make PYTHON=/path/to/python3.11"; exit 2; }
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --disable-pip-version-check -r requirements.lock -r requirements-dev.lock
	$(BIN)/pip install --quiet --disable-pip-version-check --no-deps -e .
	touch $(STAMP)

install: $(STAMP)  ## create .venv and install the pinned runtime and development dependencies

LOCK_VENV := .local/lock-venv
LOCK_FREEZE = $(LOCK_VENV)/bin/pip freeze --exclude-editable | grep -v -i -E '^(novamind|pip|setuptools|wheel)( |==)'
lock:  ## re-pin both lock files from a fresh resolve of pyproject.toml (runtime, then dev + plot)
	rm -rf $(LOCK_VENV) && $(PYTHON) -m venv $(LOCK_VENV)
	$(LOCK_VENV)/bin/pip install --quiet --disable-pip-version-check .
	{ echo '# Runtime dependencies of NOVAMIND (Python 3.11): what the worker image installs. Regenerate with `make lock`.'; \
	  $(LOCK_FREEZE); } > requirements.lock
	$(LOCK_VENV)/bin/pip install --quiet --disable-pip-version-check '.[dev,plot]'
	{ echo '# Development dependencies of NOVAMIND on top of requirements.lock: test libraries, linters and the'; \
	  echo '# `plot` extra (matplotlib). Regenerate with `make lock`.'; \
	  $(LOCK_FREEZE) | grep -v -x -F -f <(grep -v '^#' requirements.lock); } > requirements-dev.lock
	rm -rf $(LOCK_VENV)

services: $(STAMP)  ## start Kafka (KRaft), FerretDB and the schema registry locally, idempotently
	$(BIN)/novamind services up

services-down: $(STAMP)  ## stop the local services (data stays)
	$(BIN)/novamind services down

services-status: $(STAMP)  ## report the local services
	$(BIN)/novamind services status

topics: services  ## create or check every topic and registry subject
	$(BIN)/novamind topics create

test: services lint $(PROMTOOL) $(KUSTOMIZE)  ## install, start the services, lint, run every test
	PROMTOOL=$(CURDIR)/$(PROMTOOL) KUSTOMIZE=$(CURDIR)/$(KUSTOMIZE) $(BIN)/python -m pytest -q -p no:cacheprovider; rc=$$?; if [ $$rc -eq 5 ]; then echo "no tests collected"; exit 0; fi; exit $$rc

# Checkers the deploy tests run (alerting rules, dashboard queries, k8s manifests), built from the Go module proxy.
$(PROMTOOL):
	GOBIN=$(CURDIR)/$(TOOLS) GOFLAGS=-mod=mod go install github.com/prometheus/prometheus/cmd/promtool@$(PROMTOOL_VERSION)

$(KUSTOMIZE):
	GOBIN=$(CURDIR)/$(TOOLS) GOFLAGS=-mod=mod go install sigs.k8s.io/kustomize/kustomize/v5@$(KUSTOMIZE_VERSION)

test-unit: $(STAMP)  ## run the tests that need no services
	$(BIN)/python -m pytest -q -m "not integration"; rc=$$?; [ $$rc -eq 5 ] && exit 0; exit $$rc

lint: $(STAMP)  ## ruff, mypy and the import contracts (pyproject.toml [tool.importlinter])
	$(BIN)/ruff check .
	$(BIN)/mypy novamind schemas connectors workers
	$(BIN)/lint-imports --no-cache

demo: services  ## the main job end to end on the local services (options: DEMO_ARGS="--help")
	$(BIN)/python -m novamind.app.demo $(DEMO_ARGS)

demo-clean: services  ## remove earlier demo runs (topics, consumer groups, databases, demo-output/)
	$(BIN)/python -m novamind.app.demo --clean

bench: services  ## run the benchmarks; results in bench/results/
	$(BIN)/python -m bench.run_all

bench-ci: $(STAMP)  ## time a fresh clone passing CI (slow: the whole suite); bench/results/make_test.json
	$(BIN)/python -m bench.time_make_test

clean:  ## remove the virtualenv (service data under .local stays)
	rm -rf $(VENV)
