# The two commands of the README: `make train` and `make test`.
# Each sets up its own virtual environment first (.venv), so a fresh machine needs only Python >= 3.11.

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin

.PHONY: train test setup setup-test bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e '.[all]'
	touch $@

# torch (CPU build) is the oracle the tests compare against; it is never the engine.
$(VENV)/.installed-test: $(VENV)/.installed
	$(BIN)/pip install --quiet -e '.[test]' 'torch==2.13.0'
	touch $@

# Peers the benchmarks measure against that the tests do not need (Hyperopt, for benchmarks/tune_mnist.py).
$(VENV)/.installed-bench: $(VENV)/.installed-test
	$(BIN)/pip install --quiet -e '.[bench]'
	touch $@

setup: $(VENV)/.installed
setup-test: $(VENV)/.installed-test

## Train the MNIST MLP with the defaults (5 epochs), writing runs/mlp-mnist/model.dsc.
train: setup
	$(BIN)/descend train --model mlp --data mnist --epochs 5

## Run the whole test suite (unit tests, op table, doctests).
test: setup-test
	$(BIN)/python -m pytest tests descend --doctest-modules

## Side-by-side benchmarks against PyTorch: every workload, each side in its own process (a few minutes).
bench: $(VENV)/.installed-bench
	$(BIN)/descend bench

clean:
	rm -rf $(VENV) runs
