# `make demo` and `make test` each create .venv if missing and install the project with its extras.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp

.PHONY: demo test lint typecheck unit clean bench chromium bench-analytics

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/mailpulse demo

# Two workers (one per core), each with its own broker and chDB directory; a file stays on one worker,
# so module fixtures are built once. `pytest -q` alone runs the same tests in one process.
test: $(STAMP) chromium lint typecheck
	$(BIN)/pytest -q -n 2 --dist loadfile

# Debian's chromium for the dashboard's headless-browser test (runs as root, as CI does).
chromium:
	test -x /usr/bin/chromium || (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium)

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: $(STAMP)
	$(BIN)/mypy

unit: $(STAMP)
	$(BIN)/pytest -q -m "not kafka and not clickhouse"

# Times every analytics API query over 10M generated events in a temporary chDB (EVENTS=... to change).
bench-analytics: $(STAMP)
	$(BIN)/python -m bench.analytics_queries --events $(or $(EVENTS),10000000)

clean:
	rm -rf $(VENV) .mailpulse .pytest_cache .mypy_cache .ruff_cache .hypothesis

bench: $(STAMP)
	$(BIN)/mailpulse bench
