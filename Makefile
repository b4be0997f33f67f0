# Quick start: `make train` and `make test` each set everything up themselves.
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed

.PHONY: setup train test lint bench clean system-deps notebooks

setup: $(STAMP) system-deps

$(STAMP): pyproject.toml
	python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[dev]'
	touch $(STAMP)

# Graphviz's `dot` renders the graphs; Chromium runs the browser test of the backprop page.
# Installed where we can (root with apt-get); elsewhere a note says what to install.
SYSTEM_PACKAGES := dot:graphviz chromium:chromium
system-deps:
	@missing=""; for pair in $(SYSTEM_PACKAGES); do \
	  command -v $${pair%%:*} >/dev/null 2>&1 || missing="$$missing $${pair##*:}"; done; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    echo "installing$$missing (apt-get)"; \
	    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null) \
	      || echo "note: could not apt-get install$$missing"; \
	  else echo "note: please install$$missing (e.g. apt-get install$$missing, or brew install graphviz chromium)"; fi; \
	fi

# The main job: 784-128-64-10 ReLU on MNIST (data fetched once into ~/.cache/micrograd-mnist).
# --force: running the main job again retrains runs/latest (by hand, train refuses to replace a finished run)
train: setup
	$(VENV)/bin/micrograd-mnist train --out runs/latest --force

test: setup
	$(VENV)/bin/ruff check .
	$(PY) -m pytest

# Re-run every notebook in examples/ and save it with its outputs (on real MNIST, fetched once like `make train`);
# `make test` checks that what is committed is what the code gives.
notebooks: setup
	$(PY) tests/test_notebooks.py

bench: setup
	$(PY) benchmarks/scalar.py
	$(PY) benchmarks/mnist_epoch.py

clean:
	rm -rf $(VENV) .pytest_cache .hypothesis .ruff_cache *.egg-info
