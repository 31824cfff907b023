# The two commands of the README: `make demo` and `make test`. Both set up what they need.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
AZURITE := .tools/node_modules/.bin/azurite
CHECKOV := .venv/checkov/bin/checkov

.PHONY: help setup chromium test lint typecheck unit demo serve bench soak clean

help:
	@echo "make demo   - set up, start the sandbox stack, run the product tour, print the report"
	@echo "make test   - set up and run every check and test (what CI runs)"
	@echo "make serve  - Azurite + armsim (https://127.0.0.1:8443) + the app (http://127.0.0.1:7071)"
	@echo "make bench  - run the benchmarks and print their figures"
	@echo "make soak   - the reliability suite at full size, ending in one table"

$(STAMP): requirements.txt requirements-dev.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	touch $(STAMP)

$(AZURITE): .tools/package.json .tools/package-lock.json
	npm ci --prefix .tools --no-audit --no-fund --loglevel=error
	touch $(AZURITE)

# checkov pins packaging<24, which pytest 9 cannot use: it gets a venv of its own.
$(CHECKOV): | $(STAMP)
	$(PY) -m venv .venv/checkov
	.venv/checkov/bin/pip install --quiet --disable-pip-version-check checkov==3.3.30
	touch $(CHECKOV)

setup: $(STAMP) $(AZURITE) $(CHECKOV)

# Debian's chromium, for the report's browser test (installs only when missing; needs root then).
chromium:
	bash scripts/install-chromium.sh

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/lint-imports
	$(PY) scripts/deadcode.py

typecheck: $(STAMP)
	$(VENV)/bin/mypy

test: setup chromium lint typecheck
	$(PY) -m pytest -q

serve: setup
	$(PY) -m devhost.stack

demo: setup
	$(PY) scripts/demo.py

bench: setup
	$(PY) -m bench

# The reliability suite at full size (faults, duplicate events, crashes, hostile input, secrets):
# prints one table; a small size of every scenario runs inside make test.
soak: setup
	$(PY) -m tests.reliability.soak

clean:
	rm -rf $(VENV) .tools/node_modules .run .pytest_cache .mypy_cache .ruff_cache
