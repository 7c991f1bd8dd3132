# The whole set-up on a fresh clone: `make demo` and `make test` create .venv and install what they need.
SHELL  := /bin/bash
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: demo test lint typecheck bench readme clean

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

# mypy resolves modules by path, and pyproject maps collector/ -> foothold.collector (etc.): type-check a
# symlinked tree laid out as the import names, then print paths as they are in the repo.
typecheck: $(STAMP)
	rm -rf .typecheck && mkdir -p .typecheck/foothold
	for f in foothold/*; do ln -s "$$PWD/$$f" .typecheck/foothold/; done
	for d in collector instrumentation dashboards; do ln -s "$$PWD/$$d" .typecheck/foothold/$$d; done
	cd .typecheck && ../$(BIN)/mypy -p foothold | sed -E 's#^foothold/(collector|instrumentation|dashboards)/#\1/#'; exit $${PIPESTATUS[0]}

test: lint
	$(BIN)/python -m pytest -q

bench: $(STAMP)
	$(BIN)/python -m benchmarks

readme: $(STAMP)
	$(BIN)/python docs/readme_tables.py

clean:
	rm -rf $(VENV) build .pytest_cache .foothold
