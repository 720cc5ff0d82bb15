# Set-up is two commands: `make demo` and `make test`. Both create .venv when it is missing.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp

.PHONY: demo test lint format proto bench clean-var

# Reinstall when the dependencies change or a top-level package appears (the editable install
# only maps the packages that existed when it ran).
$(STAMP): pyproject.toml $(wildcard */__init__.py)
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	# torch first and pinned: a looser requirement would pull several GB of CUDA packages.
	$(BIN)/python -m pip install --quiet torch==2.13.0
	$(BIN)/python -m pip install --quiet -e '.[dev,testdata]'
	# Real E-mini ticks for import tests; mlfinpy pins numpy<1.27 so only its data file is used.
	$(BIN)/python -m pip install --quiet --no-deps mlfinpy==0.1.2
	@touch $(STAMP)

demo: $(STAMP)
	$(BIN)/smart-trader demo

test: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/python -m pytest

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: $(STAMP)
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

proto: $(STAMP)
	$(BIN)/python scripts/gen_proto.py

bench: $(STAMP)
	$(BIN)/python -m pip install --quiet -e '.[dev,testdata,bench]'
	$(BIN)/python benchmarks/data_bench.py

clean-var:
	rm -rf var
