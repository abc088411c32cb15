# One task runner. Everything installs itself into .venv on first use.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-$(shell cksum pyproject.toml | cut -d' ' -f1)

.PHONY: run test lint bench eval clean

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "frontdesk needs Python 3.11 or newer")'
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -e '.[dev]'
	rm -f $(VENV)/.installed-*
	touch $(STAMP)

## run: serve the demo practice on SQLite at http://127.0.0.1:8000
run: $(STAMP)
	$(BIN)/frontdesk serve --demo

## test: the whole suite (PostgreSQL too when FRONTDESK_TEST_POSTGRES_URL is set)
test: $(STAMP)
	$(BIN)/pytest

## lint: ruff and mypy
lint: $(STAMP)
	$(BIN)/ruff check src tests bench
	$(BIN)/ruff format --check src tests bench
	$(BIN)/mypy

## bench: the benchmarks under bench/ (results go in docs/PERFORMANCE.md)
bench: $(STAMP)
	$(BIN)/python bench/import_noshow.py

## eval: the agent's quality harness (results go in docs/QUALITY.md)
eval: $(STAMP)
	$(BIN)/python tests/eval/eval_intents.py
	$(BIN)/python tests/eval/eval_answers.py

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
