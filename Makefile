# One command surface. `make help` lists the targets.
SHELL := /bin/bash
VENV ?= .venv
PY := $(VENV)/bin/python
BIN := $(VENV)/bin
PYTHON ?= python3.11
HOST ?= 127.0.0.1
PORT ?= 8000
export TF_USE_LEGACY_KERAS := 1
export TF_CPP_MIN_LOG_LEVEL := 2

.DEFAULT_GOAL := help
.PHONY: help setup run migrate data train evaluate tune serve test test-fast lint format clean

help: ## List the targets
	@grep -hE '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk 'BEGIN {FS = ":.*## "}; {printf "  \033[36m%-10s\033[0m %s\n", $$1, $$2}'

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e ".[dev]"
	touch $@

setup: $(VENV)/.installed ## Create .venv and install the project with its dev tools

migrate: setup ## Apply database migrations (RECSYS_DATABASE_URL, default SQLite in ./var)
	$(BIN)/recsys db upgrade

data: migrate ## Fetch (or verify RECSYS_MOVIELENS_DIR) and load MovieLens 100K
	$(BIN)/recsys data fetch
	$(BIN)/recsys data load

train: data ## Train, evaluate against popularity, export and publish a version
	$(BIN)/recsys train

evaluate: data ## Every method on one split: table, training/reports/latest.{json,png}
	$(BIN)/recsys evaluate --json training/reports/latest.json

tune: data ## Hyperparameter search on the validation split (writes var/train_config.json)
	$(BIN)/recsys tune

serve: setup ## Serve the live version on http://$(HOST):$(PORT)
	$(BIN)/recsys serve --host $(HOST) --port $(PORT)

run: train serve ## The main job: migrate, load, train, export, serve

test: setup ## The whole test suite (RECSYS_MOVIELENS_DIR names the data set)
	$(BIN)/pytest

test-fast: setup ## Unit tests only: no database, no training
	$(BIN)/pytest tests/unit

lint: setup ## ruff (lint + format check) and mypy on the app
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

format: setup ## Apply ruff's fixes and formatting
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

clean: ## Remove caches (keeps .venv, var/ and artifacts/)
	rm -rf .pytest_cache .ruff_cache .mypy_cache build *.egg-info
