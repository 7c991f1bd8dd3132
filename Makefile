# The whole set-up on a fresh clone: `make demo` and `make test` create .venv and install what they need.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: demo test lint bench readme clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test]'
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/foothold-audit demo

# The house checks run first: a formatting slip fails in seconds, not after the suite.
lint: $(STAMP)
	$(BIN)/ruff format --check --quiet .

test: lint
	$(BIN)/python -m pytest -q

bench: $(STAMP)
	$(BIN)/python -m benchmarks

readme: $(STAMP)
	$(BIN)/python docs/readme_tables.py

clean:
	rm -rf $(VENV) build .pytest_cache .foothold
