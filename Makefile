# Two commands on a fresh machine:
#   make repro   set up .venv (torch 2.13.0 CPU first, then cnnrnn) and run the whole DVC pipeline
#   make test    set up .venv and run the test suite (what .ci/run does)
PYTHON ?= python3
# Elsewhere than these machines (which keep the CPU wheel on disk), e.g.
# make repro TORCH_INDEX_URL=https://download.pytorch.org/whl/cpu  avoids a multi-GB CUDA build.
TORCH_INDEX_URL ?=
VENV ?= .venv
BIN := $(VENV)/bin
# The pipeline's stage commands (cnnrnn, dvc) come from the virtual environment.
export PATH := $(abspath $(BIN)):$(PATH)

.PHONY: setup browser repro test test-slow bench clean-venv

setup: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	# torch first: 2.13.0 is the CPU build on this machine's disk; a bare `torch` would pull a multi-GB CUDA build.
	$(BIN)/python -m pip install torch==2.13.0 $(if $(TORCH_INDEX_URL),--index-url $(TORCH_INDEX_URL))
	$(BIN)/python -m pip install -e '.[test]'
	touch $@

repro: setup
	dvc repro
	# One line per application: headline metric with its interval, baseline, bar, met or missed.
	# Every number: `dvc metrics show --md`; what changed since the last commit: `dvc metrics diff`.
	cnnrnn summary
	# Compare with the committed metrics (tolerance 0; timings and the machine fingerprint are ignored).
	# A difference is reported, not fatal: it names what another machine computes differently.
	-cnnrnn verify

# Debian's Chromium for the report page's browser test: installed where this runs as root (CI does); elsewhere that
# one test skips and says why (install it yourself: sudo apt-get install chromium).
browser:
	@if [ ! -x /usr/bin/chromium ] && [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
		echo "installing Debian's chromium for the report page's browser test"; \
		(apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium >/dev/null) \
			|| echo "chromium could not be installed: the report page's browser test will skip" >&2; \
	fi

test: setup browser
	$(BIN)/python -m pytest

test-slow: setup
	$(BIN)/python -m pytest -m slow

bench: setup
	cnnrnn bench speed classify --output benchmarks/results/classify_speed.json
	cnnrnn bench quality classify classify/data=fashion_mnist classify.data.source.kind=directory classify.train.augmentation.horizontal_flip=true \
		--output benchmarks/results/classify_fashion_mnist.json

clean-venv:
	rm -rf $(VENV)
