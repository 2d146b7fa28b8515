# clientary-xero — every target sets itself up; run `make help` for the list.
SHELL := /bin/bash
.DEFAULT_GOAL := help

# A Python 3.12 (the Lambda runtime): the first candidate that really runs 3.12 — python3.12 on
# PATH (a pyenv shim on PATH may not, so each candidate is tried), then pyenv's newest 3.12.
PY312 ?= $(shell for c in python3.12 $$(ls -d $$(pyenv root 2>/dev/null)/versions/3.12.*/bin/python3.12 2>/dev/null | sort -rV) /usr/local/bin/python3.12 /usr/bin/python3.12; do \
	  p=$$(command -v $$c 2>/dev/null) && $$p -c 'import sys; sys.exit(sys.version_info[:2] != (3, 12))' 2>/dev/null \
	  && { $$p -c 'import sys; print(sys.executable)'; break; }; done)
VENV := .venv
SAM_VENV := .sam-venv
PY := $(VENV)/bin/python
SAM := $(SAM_VENV)/bin/sam
CFN_LINT := $(SAM_VENV)/bin/cfn-lint
SAM_CLI_VERSION := 1.170.0
CFN_LINT_VERSION := 1.53.3
export SAM_CLI_TELEMETRY := 0
# The stamp names the versions, so changing a pin reinstalls and nothing else does.
SAM_STAMP := $(SAM_VENV)/.installed-sam$(SAM_CLI_VERSION)-cfnlint$(CFN_LINT_VERSION)

.PHONY: help demo test lint typecheck unit template build venv sam-venv schema docs clean reliability bench

help: ## list targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | sed -E 's/:.*## /\t/' | column -t -s $$'\t'

check-python:
	@test -n "$(PY312)" || { echo "No Python 3.12 found: install one (e.g. 'pyenv install 3.12') or pass PY312=/path/to/python3.12" >&2; exit 1; }

$(VENV)/.installed: pyproject.toml | check-python
	@test -x $(PY) || $(PY312) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[dev]'
	@touch $@

venv: $(VENV)/.installed ## create the development virtualenv (.venv, Python 3.12)

$(SAM_STAMP): | check-python
	@test -x $(SAM_VENV)/bin/python || $(PY312) -m venv $(SAM_VENV)
	$(SAM_VENV)/bin/python -m pip install -q --upgrade pip
	$(SAM_VENV)/bin/python -m pip install -q aws-sam-cli==$(SAM_CLI_VERSION) cfn-lint==$(CFN_LINT_VERSION)
	@touch $@

sam-venv: $(SAM_STAMP) ## SAM CLI and cfn-lint in their own virtualenv (.sam-venv)

PYTEST_WORKERS ?= 2

demo: venv ## run the main job locally: sample workflow + sample invoices through the engine and sandboxes
	$(VENV)/bin/clientary-xero demo

lint: venv ## ruff
	$(VENV)/bin/ruff check shared functions tests benchmarks
	$(VENV)/bin/ruff format --check shared functions tests benchmarks

typecheck: venv ## mypy on the layer
	$(VENV)/bin/mypy

unit: venv ## all pytest tests, on PYTEST_WORKERS processes (pytest-xdist; 2 by default)
	$(VENV)/bin/pytest -q -n $(PYTEST_WORKERS)

reliability: venv ## the reliability scenarios at full size (minutes; not part of test): table + docs/RELIABILITY.md
	$(PY) -m benchmarks.reliability

bench: venv ## issue 8's benchmark (minutes; not part of test): table + PASS/FAIL per goal + docs/BENCHMARKS.md
	$(PY) benchmarks/bench.py

schema: venv ## regenerate schemas/workflow.schema.json and docs/actions.md from the models
	$(VENV)/bin/clientary-xero workflows schema > schemas/workflow.schema.json
	PYTHONPATH=shared $(PY) -m clientary_xero.workflows.action_docs > docs/actions.md

docs: schema ## the same as schema (docs/actions.md is generated with it)

template: sam-venv ## cfn-lint, sam validate --lint
	$(CFN_LINT) template.yaml
	$(SAM) validate --lint --region us-east-1

build: sam-venv ## sam build (needs python3.12 on PATH; found automatically), then check the layer is compiled
	PATH="$(dir $(PY312)):$$PATH" $(SAM) build --region us-east-1
	$(PY312) tests/check_built_layer.py .aws-sam/build/SharedLayer/python

test: venv sam-venv ## every test and check: lint, types, pytest, template checks, sam build
	$(MAKE) --no-print-directory lint typecheck unit template build

clean: ## remove virtualenvs and build output
	rm -rf $(VENV) $(SAM_VENV) .aws-sam .pytest_cache .mypy_cache .ruff_cache
