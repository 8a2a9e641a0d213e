# Everything a newcomer needs: `make bot TELEGRAM_TOKEN=...` and `make test` (see README.md).
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
PHOTOS ?= photos
ASSETS ?= assets

.PHONY: setup catalog bot test lint bench bench-quick dlib-openblas

setup: $(VENV)/.installed

$(VENV)/.installed: requirements.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -r requirements.txt
	touch $@

catalog: setup
	$(BIN)/python build_embeddings.py --photos $(PHOTOS) --assets $(ASSETS)
	$(BIN)/python build_index.py --assets $(ASSETS)

bot: catalog
	$(BIN)/python bot.py --assets $(ASSETS)

test: setup
	$(BIN)/python -m pytest -q

lint: setup
	$(BIN)/ruff check .
