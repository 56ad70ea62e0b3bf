# activesci: the two commands of the README, and a few helpers.
#   make demo   creates .venv, installs activesci, runs the flagship loop headless, writes its report
#   make test   creates .venv if missing, installs with the test extras, runs ruff and the test suite

PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
# torch first, pinned: a bare "torch" requirement would pull gigabytes of CUDA wheels.
TORCH  ?= torch==2.13.0
# --no-compile: byte-compiling every module of torch at install costs ~20 s; Python compiles the
# few hundred it imports on first use.
# The test environment has every extra, so that the MadMiner bridge and the MLflow tracker are
# tested too (madminer only on Python < 3.12, by its marker in pyproject.toml; on this machine the
# two add ~22 s and 0.4 GB to a fresh install).
TEST_EXTRAS ?= dev,browser,madminer,mlflow

.PHONY: demo test test-fast lint format bench pretrained clean container-tools yadage

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet --no-compile $(TORCH)
	$(BIN)/python -m pip install --quiet --no-compile -e .
	touch $@

# the Makefile is a prerequisite too: a change of TEST_EXTRAS here reinstalls
$(VENV)/.installed-dev: pyproject.toml Makefile | $(BIN)/python
	$(BIN)/python -m pip install --quiet --no-compile $(TORCH)
	$(BIN)/python -m pip install --quiet --no-compile -e '.[$(TEST_EXTRAS)]'
	touch $@ $(VENV)/.installed

demo: $(VENV)/.installed
	$(BIN)/activesci demo --out runs/demo

test: $(VENV)/.installed-dev container-tools
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/python -m pytest --durations=15

# the inner loop: ruff and every test not marked slow (make test still runs everything)
test-fast: $(VENV)/.installed-dev
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/python -m pytest -m "not slow" -x -q

lint: $(VENV)/.installed-dev
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: $(VENV)/.installed-dev
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

bench: $(VENV)/.installed-dev
	$(BIN)/python benchmarks/simulator.py

# rebuild the estimators shipped trained (activesci/data/pretrained/) after changing a simulator
# or the estimators; tests/test_pretrained.py fails while the flagship's is stale
pretrained: $(VENV)/.installed
	$(BIN)/python -m activesci.inference.pretrained

# podman, runc and debootstrap for the container tests and chromium for the browser tests:
# scripts/install-tools.sh installs each one missing on its own with apt-get when root (on Ubuntu
# chromium only if apt's package is not the snap stub), prints one line per tool and never fails
# (without a tool, its tests skip and say why)
container-tools:
	@bash scripts/install-tools.sh || true

YADAGE_VENV ?= .venv-yadage

# yadage/packtivity pin jsonschema<=4.9.1 (JupyterLab 4 needs newer): they get a venv of their
# own, used by tests/test_reana.py to validate and run the exported REANA workflow
$(YADAGE_VENV)/.installed: scripts/yadage-venv.sh
	PYTHON=$(PYTHON) YADAGE_VENV=$(YADAGE_VENV) bash scripts/yadage-venv.sh
	touch $@

yadage: $(YADAGE_VENV)/.installed

clean:
	rm -rf $(VENV) $(YADAGE_VENV) runs .pytest_cache .ruff_cache
