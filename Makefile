# The README's two commands: `make demo` and `make test`. Both install first (tools/install.sh).
VENV ?= .venv
PY := $(VENV)/bin/python
# tools/dist_*.sh call torchrun and python from PATH: the venv's, without activating it
export PATH := $(abspath $(VENV))/bin:$(PATH)

.PHONY: install demo test test-fast lint docs

install:
	VENV=$(VENV) bash tools/install.sh

demo: install
	$(PY) tools/demo.py

lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

# The documentation site: every warning is an error (-W), all of them reported (--keep-going);
# cross references are checked (nitpicky, MyST heading anchors; docs/conf.py).
docs: install
	$(PY) -m sphinx -W --keep-going -q -b html docs docs/_build/html

# The suite runs on two worker processes (pytest-xdist; PYTEST_WORKERS=0 runs it in one process).
# --dist loadfile: one worker runs all the tests of a file, so that a module-scoped fixture (a
# training, a built wheel) is built once. --no-loadscope-reorder: the workers take the files in
# the order of the collection, where tests/conftest.py puts the longer files first.
PYTEST_WORKERS ?= 2
PYTEST_XDIST := -n $(PYTEST_WORKERS) --dist loadfile --no-loadscope-reorder

test: lint docs
	$(PY) -m pytest $(PYTEST_XDIST) --durations=25

test-fast: lint
	$(PY) -m pytest $(PYTEST_XDIST) -m "not slow"
