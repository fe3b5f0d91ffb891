# Two commands on a fresh machine with only Python and make:
#   make demo   - create .venv, install, run a full simulated session offline
#   make test   - create .venv, install, run the whole test suite (what CI runs)
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
PERSONA ?= steady-sam
STAMP := $(VENV)/.installed

.PHONY: install demo test lint typecheck check bench evals train clean

$(STAMP): pyproject.toml setup.py
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	KETAI_HOME=$${KETAI_HOME:-$(CURDIR)/.ketai} $(BIN)/ketai demo --persona $(PERSONA)

test: $(STAMP)
	$(BIN)/python -m pytest

lint: $(STAMP)
	$(BIN)/ruff check ketai tests benchmarks
	$(BIN)/ruff format --check ketai tests benchmarks

typecheck: $(STAMP)
	$(BIN)/mypy

check: lint typecheck test

bench: $(STAMP)
	$(BIN)/python benchmarks/bench_sessions.py

evals: $(STAMP)
	$(BIN)/ketai eval guardrails
	$(BIN)/ketai eval retrieval
	$(BIN)/ketai eval sessions

# Retrain the guardrail classifiers from evals/guardrails (torch only here; about 50 min on 2 cores).
train: $(STAMP)
	$(BIN)/python -m pip install --quiet -e '.[dev,train]'
	$(BIN)/python -m ketai.guardrails.train
	$(BIN)/python -m ketai.guardrails.train_output

clean:
	rm -rf $(VENV) build dist *.egg-info .pytest_cache .mypy_cache .ruff_cache
