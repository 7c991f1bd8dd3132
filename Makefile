# The whole set-up on a fresh clone: `make demo` and `make test` create .venv and install what they need.
SHELL  := /bin/bash
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: demo test lint typecheck sdk-oldest bench readme clean claude-code gemini-cli codex-cli

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
	$(BIN)/ruff check --quiet .

# mypy resolves modules by path, and pyproject maps collector/ -> foothold.collector (etc.): type-check a
# symlinked tree laid out as the import names, then print paths as they are in the repo. mypy's cache
# (.typecheck/.mypy_cache) is kept: a first run takes about a minute, the next ones seconds.
typecheck: $(STAMP)
	rm -rf .typecheck/foothold && mkdir -p .typecheck/foothold
	for f in foothold/*; do ln -s "$$PWD/$$f" .typecheck/foothold/; done
	for d in collector instrumentation dashboards; do ln -s "$$PWD/$$d" .typecheck/foothold/$$d; done
	cd .typecheck && ../$(BIN)/mypy -p foothold | sed -E 's#^foothold/(collector|instrumentation|dashboards)/#\1/#'; exit $${PIPESTATUS[0]}

# The real Claude Code binary the suite drives offline (tests/test_claude_code_real.py), pinned by the lock file.
# Without npm, or when npm refuses, the test skips with the reason and the recorded-payload replay still runs.
CLAUDE_CODE := .ci/claude-code/node_modules/.bin/claude
$(CLAUDE_CODE): .ci/claude-code/package-lock.json
	-cd .ci/claude-code && npm ci --no-audit --no-fund

claude-code: $(CLAUDE_CODE)

# The real Gemini CLI the suite drives offline (tests/test_gemini_cli_real.py), pinned by the lock file; without
# npm the test skips with the reason and the event-attribute tests (tests/test_native_telemetry.py) still run.
GEMINI_CLI := .ci/gemini-cli/node_modules/.bin/gemini
$(GEMINI_CLI): .ci/gemini-cli/package-lock.json
	-cd .ci/gemini-cli && npm ci --no-audit --no-fund

gemini-cli: $(GEMINI_CLI)

# The real Codex CLI the suite drives offline (tests/test_codex_cli_real.py), pinned by the lock file; the native
# binary comes in the platform package npm picks (an optional dependency). Without npm the test skips with the
# reason and the event-attribute tests (tests/test_native_telemetry.py) still run.
CODEX_CLI := .ci/codex-cli/node_modules/.bin/codex
$(CODEX_CLI): .ci/codex-cli/package-lock.json
	-cd .ci/codex-cli && npm ci --no-audit --no-fund

codex-cli: $(CODEX_CLI)

# Lint, then the type checker, then the suite: a slip fails in seconds, not after the suite.
test: lint typecheck claude-code gemini-cli codex-cli
	$(BIN)/python -m pytest -q

# The integrations reach into SDK internals, so they are also tested on the oldest SDK releases pyproject
# allows (the main venv has the newest): a second venv pinned to the lower bounds, integration tests only.
OLDEST_VENV := .venv-oldest
OLDEST_SDKS := mcp==2.3.0 langchain-core==1.7.0 openai-agents==0.24.0
INTEGRATION_TESTS := tests/test_integrations_mcp.py tests/test_integrations_langchain.py \
	tests/test_integrations_openai_agents.py tests/test_mcp_proxy.py

$(OLDEST_VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(OLDEST_VENV)
	$(OLDEST_VENV)/bin/pip install --quiet --upgrade pip
	$(OLDEST_VENV)/bin/pip install --quiet -e '.[test]' $(OLDEST_SDKS)
	touch $@

sdk-oldest: $(OLDEST_VENV)/.installed
	$(OLDEST_VENV)/bin/python -m pytest -q -p no:cacheprovider $(INTEGRATION_TESTS)

bench: $(STAMP)
	$(BIN)/python -m benchmarks

readme: $(STAMP)
	$(BIN)/python docs/readme_tables.py

clean:
	rm -rf $(VENV) $(OLDEST_VENV) .typecheck build .pytest_cache .foothold .ci/claude-code/node_modules .ci/gemini-cli/node_modules \
		.ci/codex-cli/node_modules
