# The README's two commands. Both create .venv from scratch when it is missing.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin

.PHONY: demo test venv lint clean

# --no-compile: pip would byte-compile every installed file (about half of the install's time);
# Python compiles the modules a command imports on first use and caches them.
PIP := $(BIN)/pip install -q --no-compile

# The package and its runtime dependencies: all that `make demo` needs.
$(BIN)/reviewsense: pyproject.toml
	$(PY) -m venv $(VENV)
	$(PIP) --upgrade pip
	# torch first, pinned: pip takes the local CPU wheel instead of a multi-GB CUDA build.
	$(PIP) torch==2.13.0
	$(PIP) -e .
	touch $(BIN)/reviewsense

# + the test tools and Ray (`score --engine ray`): what `make test` needs.
$(VENV)/.dev: $(BIN)/reviewsense
	$(PIP) -e '.[dev,scale]'
	touch $(VENV)/.dev

venv: $(VENV)/.dev

# Offline main job: fine-tune MiniLM on 2,000 IMDb reviews (3 epochs), test on all 25,000.
demo: $(BIN)/reviewsense
	HF_HUB_OFFLINE=1 $(BIN)/reviewsense train --preset offline

test: $(VENV)/.dev
	HF_HUB_OFFLINE=1 $(BIN)/ruff check src tests benchmarks
	HF_HUB_OFFLINE=1 $(BIN)/ruff format --check src tests benchmarks
	HF_HUB_OFFLINE=1 $(BIN)/python -m pytest -q $(PYTEST_ARGS)

lint: $(VENV)/.dev
	$(BIN)/ruff format src tests benchmarks
	$(BIN)/ruff check --fix src tests benchmarks

clean:
	rm -rf $(VENV) runs
