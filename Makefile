# Two commands on a fresh machine: `make demo` (the main job) and `make test` (the suite).
# Both create .venv when it is missing and install what they need; on a machine where
# `nvidia-smi` works they add the JAX CUDA build its driver runs (core/system/cuda.py: the `gpu12` or
# `gpu13` extra) and say in one line when that JAX then finds no usable GPU.
SHELL := /bin/bash
comma := ,
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
GPU_EXTRA := $(shell $(PYTHON) core/system/cuda.py 2>/dev/null)
EXTRAS := dev,export$(if $(GPU_EXTRA),$(comma)$(GPU_EXTRA))
STAMP := $(VENV)/.installed-$(shell cat pyproject.toml Makefile | sha1sum | cut -c1-12)$(if $(GPU_EXTRA),-$(GPU_EXTRA))
# The suite runs on every core (up to 4: each worker holds its own compiled models and fixtures).
# Measured on 2 cores: 9 min 33 s with the install on a quiet machine (2026-12-04, 774 tests; 17 min
# 24 s beside a quality benchmark); keeping each file on one
# worker (--dist loadfile) was slower, for the last files' imbalance.
# --dist loadgroup: as the default "load", except that the tests of one xdist_group (the snapshot
# files, which render from one fixed folder) stay on one worker.
# --durations=25: every run (CI too) lists its 25 slowest tests, to keep the suite in its budget.
PYTEST_ARGS ?= -n logical --maxprocesses 4 --dist loadgroup --durations=25

.PHONY: demo test install lint bench clean

demo: $(STAMP)
	$(VENV)/bin/facepair demo

test: $(STAMP)
	$(PY) -m pytest $(PYTEST_ARGS)

install: $(STAMP)

$(STAMP):
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	@$(PYTHON) core/system/cuda.py >/dev/null
	$(PY) -m pip install --quiet -e ".[$(EXTRAS)]"
	$(if $(GPU_EXTRA),@$(PY) core/system/cuda.py --check)
	rm -f $(VENV)/.installed-*
	touch $@

lint: $(STAMP)
	$(VENV)/bin/ruff check core tui tests

bench: $(STAMP)
	$(VENV)/bin/facepair bench all

clean:
	rm -rf $(VENV) .pytest_cache
