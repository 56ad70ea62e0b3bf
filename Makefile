# activesci: the two commands of the README, and a few helpers.
#   make demo   creates .venv, installs activesci, runs the flagship loop headless, writes its report
#   make test   creates .venv if missing, installs with dev extras, runs ruff and the test suite

PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
# torch first, pinned: a bare "torch" requirement would pull gigabytes of CUDA wheels.
TORCH  ?= torch==2.13.0
# --no-compile: byte-compiling every module of torch at install costs ~20 s; Python compiles the
# few hundred it imports on first use.

.PHONY: demo test test-fast lint format bench clean container-tools yadage

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet --no-compile $(TORCH)
	$(BIN)/python -m pip install --quiet --no-compile -e .
	touch $@

$(VENV)/.installed-dev: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet --no-compile $(TORCH)
	$(BIN)/python -m pip install --quiet --no-compile -e '.[dev,browser]'
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

CONTAINER_TOOLS := podman runc debootstrap chromium

# podman, runc and debootstrap for the container tests and chromium for the browser tests:
# installed when root with apt-get, never an error (without them, those tests skip and say why)
container-tools:
	@if command -v podman >/dev/null && [ -x /usr/sbin/runc ] && command -v debootstrap >/dev/null \
	  && [ -x /usr/bin/chromium ]; then :; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	  echo "installing $(CONTAINER_TOOLS) for the container tests" >&2; \
	  { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $(CONTAINER_TOOLS); } >/dev/null 2>&1 \
	  || echo "could not install $(CONTAINER_TOOLS): the container and browser tests will be skipped" >&2; \
	else echo "no $(CONTAINER_TOOLS) (installing them needs root and apt-get): container and browser tests will be skipped" >&2; fi

YADAGE_VENV ?= .venv-yadage

# yadage/packtivity pin jsonschema<=4.9.1 (JupyterLab 4 needs newer): they get a venv of their
# own, used by tests/test_reana.py to validate and run the exported REANA workflow
$(YADAGE_VENV)/.installed: scripts/yadage-venv.sh
	PYTHON=$(PYTHON) YADAGE_VENV=$(YADAGE_VENV) bash scripts/yadage-venv.sh
	touch $@

yadage: $(YADAGE_VENV)/.installed

clean:
	rm -rf $(VENV) $(YADAGE_VENV) runs .pytest_cache .ruff_cache
