# swarm-runtime developer tasks. Every target creates or updates .venv itself.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
BENCH_STAMP := $(VENV)/.installed-bench

.PHONY: venv lint test demo bench clean

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "swarm-runtime needs Python >= 3.11 (set PYTHON=...)")'
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	@touch $(STAMP)

venv: $(STAMP)

lint: venv
	$(VENV)/bin/ruff check swarm_runtime tests examples benchmarks
	$(VENV)/bin/ruff format --check swarm_runtime tests examples benchmarks
	$(VENV)/bin/mypy swarm_runtime

test: lint
	$(PY) -m pytest

demo: venv
	$(PY) -m swarm_runtime run examples/pipeline.yaml --report queue/report.html
	$(PY) examples/embed.py
	$(PY) examples/handoff.py
	$(PY) examples/llm_triage.py --fake

$(BENCH_STAMP): $(STAMP)
	$(PY) -m pip install --quiet -e '.[dev,bench]'
	@touch $(BENCH_STAMP)

bench: $(BENCH_STAMP)
	$(PY) benchmarks/run.py

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache build *.egg-info
