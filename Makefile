# yiyun: `make demo` runs the sample estate end to end, `make test` runs the suite.
# Both bootstrap .venv on a fresh machine (Python >= 3.11 needed).

PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: all venv catalogs demo serve test lint bench clean

all: test

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e ".[dev,infra]"
	$(MAKE) catalogs
	touch $(STAMP)

# gettext: compile inventory/locale/*/LC_MESSAGES/*.po to .mo (only those out of date);
# then the portal's CJK web font (cut once, ~20 s; kept until `make clean`).
catalogs:
	$(BIN)/python -m inventory.i18n
	$(BIN)/python -m service.portal.fonts

venv: $(STAMP)

demo: $(STAMP)
	$(BIN)/yiyun demo

# The API on the demo ledger, with the loopback-only demo login (it prints how to get a token).
serve: $(STAMP)
	test -f .demo/yiyun.db || $(BIN)/yiyun demo
	$(BIN)/yiyun --db sqlite:///.demo/yiyun.db serve --demo-login

test: $(STAMP)
	$(BIN)/pytest -q -n auto --durations=20

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

bench: $(STAMP)
	$(BIN)/python bench/run_all.py

clean:
	rm -rf $(VENV) .demo .pytest_cache .mypy_cache .ruff_cache .screenshots service/portal/static/font/*.woff2
