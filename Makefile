# The one interface: make run, make test, make lint, make bench.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
INSTALLED := $(VENV)/.installed
MO := web/translations/fr/LC_MESSAGES/messages.mo

.PHONY: run test lint bench bench-quick bench-rebuild bench-uploads drills install translations extract-messages clean

$(INSTALLED): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[dev]"
	@touch $@

install: $(INSTALLED) $(MO)

$(MO): web/translations/fr/LC_MESSAGES/messages.po $(INSTALLED)
	$(BIN)/pybabel compile --statistics -d web/translations

translations: $(MO)

# Refresh the message catalogue after changing user-facing text, then translate the new entries.
extract-messages: $(INSTALLED)
	$(BIN)/pybabel extract -F babel.cfg -k _l -o web/translations/messages.pot --no-location --omit-header .
	$(BIN)/pybabel update -i web/translations/messages.pot -d web/translations --no-fuzzy-matching --ignore-obsolete

run: install
	$(BIN)/carepath db init
	$(BIN)/carepath demo
	$(BIN)/carepath serve

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/lint-imports

test: lint
	$(BIN)/python -m pytest -q

bench: install
	$(BIN)/python bench/surge.py

bench-quick: install
	$(BIN)/python bench/surge.py --applicants 4500 --capacity 470

# About a million events on a throw-away PostgreSQL database, then `carepath projections rebuild`.
bench-rebuild: install
	$(BIN)/python bench/rebuild.py

# 1,000 invited applicants upload 5 files of 1-5 MB each over tus to `carepath web` on PostgreSQL.
bench-uploads: install
	$(BIN)/python bench/uploads.py

drills: install
	$(BIN)/python bench/drills.py

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
