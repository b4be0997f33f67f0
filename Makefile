# Quick start: `make train` and `make test` each set everything up themselves.
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed

.PHONY: setup train test lint bench clean system-deps

setup: $(STAMP) system-deps

$(STAMP): pyproject.toml
	python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[dev]'
	touch $(STAMP)

# Graphviz's `dot` renders the graphs; install it where we can, say how where we can't.
system-deps:
	@command -v dot >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    (apt-get update -qq && apt-get install -y -qq graphviz >/dev/null) || echo "note: could not apt-get install graphviz; graphs will fall back to .dot text"; \
	  else echo "note: Graphviz's 'dot' is missing: install it (apt-get install graphviz, brew install graphviz) to render graphs"; fi; }

# The main job: 784-128-64-10 ReLU on MNIST (data fetched once into ~/.cache/micrograd-mnist).
train: setup
	$(VENV)/bin/micrograd-mnist train --out runs/latest

test: setup
	$(VENV)/bin/ruff check .
	$(PY) -m pytest

bench: setup
	$(PY) benchmarks/scalar.py
	$(PY) benchmarks/mnist_epoch.py

clean:
	rm -rf $(VENV) .pytest_cache .hypothesis .ruff_cache *.egg-info
