# Dear MP — everything on this machine. See README.md.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: install run test test-unit lint bench soak clean

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test]'
	@touch $(STAMP)

install: $(STAMP)

## make run: migrate, load the demo campaigns and data, start every service, the relay and a mail catcher
run: $(STAMP)
	$(BIN)/python -m services.ops.devrun

## make test: the whole suite (needs RabbitMQ and Postgres: DEARMP_TEST_*_URL or testcontainers).
## Tests that kill processes, stall servers or stop a shared service (marked fault) run one at a
## time, alone on the machine (they check that each fault lands while work is in flight); the
## others, each with its own database and broker namespace, run two at a time (pytest-xdist).
test: $(STAMP)
	$(BIN)/pytest -q -m "not fault" -n 2 --dist loadfile
	$(BIN)/pytest -q -m fault

test-unit: $(STAMP)
	$(BIN)/pytest -q tests/unit

## make lint: ruff, mypy, and the import contracts in pyproject.toml (import-linter)
lint: $(STAMP)
	$(BIN)/ruff check shared services tests bench
	$(BIN)/mypy
	$(BIN)/lint-imports --no-cache

## make bench: benchmarks (not part of the test suite); figures go in docs/benchmarks.md
bench: $(STAMP)
	$(BIN)/python bench/relay.py
	$(BIN)/python bench/intake.py
	$(BIN)/python bench/resolver.py
	$(BIN)/python bench/mailer.py
	$(BIN)/python bench/fanout.py
	$(BIN)/python bench/event_privacy.py
	$(BIN)/python bench/pipeline.py
	$(BIN)/python bench/floors.py

## make soak: 10,000 signatures through the web form while faults land, every email checked against
## a ledger (not in make test; docs/soak.md). SOAK_ARGS="--signatures 1000 --short", CLUSTER=3
CLUSTER ?= 1
soak: $(STAMP)
	$(BIN)/python bench/soak.py --cluster $(CLUSTER) $(SOAK_ARGS)

clean:
	rm -rf var .pytest_cache
