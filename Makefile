# The README's two commands: `make demo` and `make test`. Both install first (tools/install.sh).
VENV ?= .venv
PY := $(VENV)/bin/python
# tools/dist_*.sh call torchrun and python from PATH: the venv's, without activating it
export PATH := $(abspath $(VENV))/bin:$(PATH)

.PHONY: install demo test test-fast lint

install:
	VENV=$(VENV) bash tools/install.sh

demo: install
	$(PY) tools/demo.py

lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

test: lint
	$(PY) -m pytest

test-fast: lint
	$(PY) -m pytest -m "not slow"
