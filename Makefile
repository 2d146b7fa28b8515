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
UV := $(VENV)/bin/uv
export SAM_CLI_TELEMETRY := 0
# Installs come from the lock (hashes: pip checks every file it downloads): requirements/dev.txt for
# .venv and shared/requirements.txt for the layer are exported from uv.lock, requirements/sam.txt
# (the SAM CLI and cfn-lint, pinned in requirements/sam.in) is compiled for .sam-venv. `make lock`
# makes them all again; a changed file reinstalls its venv and nothing else does.
SAM_STAMP := $(SAM_VENV)/.installed

.PHONY: help demo test lint typecheck unit template build venv sam-venv lock schema docs clean reliability bench

help: ## list targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | sed -E 's/:.*## /\t/' | column -t -s $$'\t'

check-python:
	@test -n "$(PY312)" || { echo "No Python 3.12 found: install one (e.g. 'pyenv install 3.12') or pass PY312=/path/to/python3.12" >&2; exit 1; }

# The venv's own pip (it comes with the Python) installs the locked files as they are (--no-deps:
# each file is the whole closure; pip before 24 misreads a locked package's extras when it resolves
# them itself); then the package itself, editable, with the locked setuptools (no build isolation:
# nothing unlocked is downloaded), and `pip check` proves the lock holds all it needs. Two stamps:
# make lock needs only the locked tools (uv), also when pyproject.toml asks for more than the lock.
$(VENV)/.locked: requirements/dev.txt | check-python
	@test -x $(PY) || $(PY312) -m venv $(VENV)
	$(PY) -m pip install -q --require-hashes --no-deps -r requirements/dev.txt
	@touch $@

$(VENV)/.installed: $(VENV)/.locked pyproject.toml
	$(PY) -m pip install -q --no-deps --no-build-isolation -e .
	@$(PY) -m pip check -q || { echo "requirements/dev.txt lacks what pyproject.toml asks for: run make lock" >&2; exit 1; }
	@touch $@

venv: $(VENV)/.installed ## create the development virtualenv (.venv, Python 3.12)

$(SAM_STAMP): requirements/sam.txt | check-python
	@test -x $(SAM_VENV)/bin/python || $(PY312) -m venv $(SAM_VENV)
	$(SAM_VENV)/bin/python -m pip install -q --require-hashes --no-deps -r requirements/sam.txt
	$(SAM_VENV)/bin/python -m pip check -q
	@touch $@

sam-venv: $(SAM_STAMP) ## SAM CLI and cfn-lint in their own virtualenv (.sam-venv)

# uv resolves for every platform and Python >= 3.12 (requires-python), with the interpreter given
# (never one it would download). It keeps the locked versions that still fit; UPGRADE=1 takes the
# newest each bound allows. The export commands are written into each file's header, and
# tests/test_packaging.py runs them again to check the files are the lock's.
lock: $(VENV)/.locked ## re-lock after editing dependencies: uv.lock, requirements/*.txt, shared/requirements.txt (UPGRADE=1: newest)
	UV_PYTHON_DOWNLOADS=never $(UV) lock --python $(PY312) $(if $(UPGRADE),--upgrade)
	$(UV) export --quiet --frozen --no-emit-project --all-extras -o requirements/dev.txt
	$(UV) export --quiet --frozen --no-emit-project --no-dev -o shared/requirements.txt
	UV_PYTHON_DOWNLOADS=never UV_CUSTOM_COMPILE_COMMAND='make lock' $(UV) pip compile --quiet --universal \
		--python-version 3.12 --generate-hashes $(if $(UPGRADE),--upgrade) -o requirements/sam.txt requirements/sam.in

PYTEST_WORKERS ?= 2

demo: venv ## run the main job locally: the invoice recipe + sample invoices through the engine and sandboxes
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

# x86_64 or arm64: the template's Architecture parameter, and the wheels shared/Makefile puts in the layer.
ARCHITECTURE ?= x86_64

build: sam-venv ## sam build (needs python3.12 on PATH; found automatically; ARCHITECTURE=arm64 for Graviton), then check the layer is compiled
	PATH="$(dir $(PY312)):$$PATH" ARCHITECTURE=$(ARCHITECTURE) $(SAM) build --region us-east-1 \
		--parameter-overrides Architecture=$(ARCHITECTURE)
	$(PY312) tests/check_built_layer.py .aws-sam/build/SharedLayer/python

test: venv sam-venv ## every test and check: lint, types, pytest, template checks, sam build
	$(MAKE) --no-print-directory lint typecheck unit template build

clean: ## remove virtualenvs and build output
	rm -rf $(VENV) $(SAM_VENV) .aws-sam .pytest_cache .mypy_cache .ruff_cache
