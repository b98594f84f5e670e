# Two commands on a fresh machine: `make demo` (the main job) and `make test` (the suite).
# Both create .venv when it is missing and install what they need; on a machine where
# `nvidia-smi` works they add JAX's CUDA build (the `gpu` extra).
SHELL := /bin/bash
comma := ,
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
HAS_GPU := $(shell nvidia-smi -L >/dev/null 2>&1 && echo 1)
EXTRAS := dev$(if $(HAS_GPU),$(comma)gpu)
STAMP := $(VENV)/.installed-$(shell cat pyproject.toml Makefile | sha1sum | cut -c1-12)$(if $(HAS_GPU),-gpu)
PYTEST_ARGS ?=

.PHONY: demo test install lint bench clean

demo: $(STAMP)
	$(VENV)/bin/facepair demo

test: $(STAMP)
	$(PY) -m pytest $(PYTEST_ARGS)

install: $(STAMP)

$(STAMP):
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e ".[$(EXTRAS)]"
	rm -f $(VENV)/.installed-*
	touch $@

lint: $(STAMP)
	$(VENV)/bin/ruff check core tui tests

bench: $(STAMP)
	$(VENV)/bin/facepair bench all

clean:
	rm -rf $(VENV) .pytest_cache
