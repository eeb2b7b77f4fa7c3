# Two commands do all setup on a fresh machine: `make demo` and `make test`.
# Both create .venv; `make demo` installs only what the demo needs, `make test` everything.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
DEMO   := $(VENV)/.demo-installed
DEV    := $(VENV)/.dev-installed
# pytest workers: 2 on CI's 2 cores; override with `make test JOBS=1`.
JOBS   ?= 2

.PHONY: demo test test-fast lint format typecheck check bench clean

$(PY):
	$(PYTHON) -m venv $(VENV)

$(DEMO): pyproject.toml | $(PY)
	$(PY) -m pip install --quiet --disable-pip-version-check -e ".[demo]"
	touch $@

$(DEV): pyproject.toml | $(PY)
	$(PY) -m pip install --quiet --disable-pip-version-check -e ".[dev]"
	touch $@ $(DEMO)

demo: $(DEMO)
	$(VENV)/bin/normgrad demo

# The whole suite, as CI runs it: lint, format, types, then every test.
test: lint typecheck
	$(PY) -m pytest -q -n $(JOBS)

# The development loop: lint and the tests not marked slow (well under 30 s).
test-fast: $(DEV)
	$(VENV)/bin/ruff check src tests benchmarks
	$(PY) -m pytest -q -n $(JOBS) -m "not slow"

lint: $(DEV)
	$(VENV)/bin/ruff check src tests benchmarks
	$(VENV)/bin/ruff format --check src tests benchmarks

format: $(DEV)
	$(VENV)/bin/ruff format src tests benchmarks
	$(VENV)/bin/ruff check --fix src tests benchmarks

typecheck: $(DEV)
	$(VENV)/bin/mypy

check: $(DEV)
	$(VENV)/bin/normgrad check

bench: $(DEV)
	$(VENV)/bin/normgrad bench

clean:
	rm -rf $(VENV) build dist src/*.egg-info .pytest_cache .ruff_cache .mypy_cache
