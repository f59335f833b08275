# tf-scenes. Every target bootstraps its own virtual environment (.venv) from the lock: the pinned
# requirements*.txt with every indirect dependency pinned by constraints.txt.
SHELL := /bin/bash
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
export NUMBA_CACHE_DIR ?= $(CURDIR)/.cache/numba
export TF_CPP_MIN_LOG_LEVEL ?= 3
export PYTHONHASHSEED ?= 0

PROFILE ?= quick
DATA ?=
DATA_DIR ?= data
OUT ?=

.PHONY: venv test test-all data bench bench-scale reproduce-two-stage reproduce-dcasenet reproduce-weak-sed \
        reproduce-raw-waveform clean

venv: $(STAMP)

$(STAMP): requirements.txt requirements-dev.txt constraints.txt setup.cfg setup.py
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -c constraints.txt -r requirements-dev.txt
	$(PY) -m pip install -q --no-deps --no-build-isolation -e .
	@touch $@

## Fast tests (the CI gate). Slow tests: `make test-all`.
test: $(STAMP)
	$(PY) -m pytest -q -m "not slow" -p no:cacheprovider -n 2 --dist loadgroup

test-all: $(STAMP)
	$(PY) -m pytest -q -p no:cacheprovider -n 2 --dist loadgroup

## Synthetic default datasets (small size) under data/.
data: $(STAMP)
	$(VENV)/bin/tf-scenes synth all --out $(DATA_DIR) --size small --seed 0

bench: $(STAMP)
	$(PY) -m bench.run --out bench

## The two-stage paper profile's data path and training at several sizes, extrapolated to the real
## TAU set (bench/scale.json, scale.md, scale.png; ~20-40 min on 2 cores).
bench-scale: $(STAMP)
	$(PY) -m bench.run --out bench --only scale

reproduce-two-stage: $(STAMP)
	$(VENV)/bin/tf-scenes reproduce two_stage --profile $(PROFILE) $(if $(DATA),--data $(DATA)) \
		--out $(or $(OUT),results/two_stage)

reproduce-dcasenet: $(STAMP)
	$(VENV)/bin/tf-scenes reproduce dcasenet --profile $(PROFILE) \
		$(if $(ASC_DATA),--set data.asc_root=$(ASC_DATA)) $(if $(TAG_DATA),--set data.tag_root=$(TAG_DATA)) \
		$(if $(SED_DATA),--set data.sed_root=$(SED_DATA)) --out $(or $(OUT),results/dcasenet)

reproduce-weak-sed: $(STAMP)
	$(VENV)/bin/tf-scenes reproduce weak_sed --profile $(PROFILE) \
		$(if $(EVENTS),--set data.events_root=$(EVENTS)) $(if $(SCENES),--set data.scenes_root=$(SCENES)) \
		--out $(or $(OUT),results/weak_sed)

reproduce-raw-waveform: $(STAMP)
	$(VENV)/bin/tf-scenes reproduce raw_waveform --profile $(PROFILE) $(if $(DATA),--data $(DATA)) \
		--out $(or $(OUT),results/raw_waveform)

clean:
	rm -rf .cache .pytest_cache build *.egg-info
