# The two set-up commands of the README are `make demo` and `make test`: each creates the
# virtual environment in .venv (once) and installs everything it needs.
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin

.PHONY: demo test test-fast lint clean

$(BIN)/mmn: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	# torch pinned first: the CPU wheel on disk; an unpinned torch downloads a CUDA build.
	$(BIN)/pip install --quiet torch==2.13.0
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(BIN)/mmn

demo: $(BIN)/mmn
	$(BIN)/mmn demo

test: $(BIN)/mmn
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/python -m pytest -m "not slow" --doctest-modules simulator streaming model ops tests
	$(BIN)/python -m pytest -m slow tests

test-fast: $(BIN)/mmn
	$(BIN)/python -m pytest -m "not slow" simulator streaming model ops tests

lint: $(BIN)/mmn
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

clean:
	rm -rf $(VENV)
