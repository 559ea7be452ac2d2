# Two entry points for a fresh machine: `make demo` (the main job: service + dashboards on a
# simulated month) and `make test`.
# Both create the virtual environment from pyproject.toml on first use.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python

.PHONY: install demo summary test bench clean

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e ".[dev]"
	touch $@

install: $(VENV)/.installed

demo: install
	$(VENV)/bin/llmledger up --demo

summary: install
	$(VENV)/bin/llmledger demo

# Two xdist workers: the suite waits on services, browsers and subprocesses, which one process
# leaves idle (tests/conftest.py says how tests are grouped); TEST_WORKERS=0 runs in one process.
TEST_WORKERS ?= 2

test: install
	$(PY) -m pytest -q -n $(TEST_WORKERS) --dist loadgroup --no-loadscope-reorder

bench: install
	$(PY) -m bench.ingest
	$(PY) -m bench.queries

clean:
	rm -rf $(VENV) .llmledger .pytest_cache
