# Safeguard: developer and CI entry points. The native stack lives in .stack/ (see stack/).
SHELL := /bin/bash
.DEFAULT_GOAL := help

VENV   := .venv
STAMP  := $(VENV)/.installed

.PHONY: help up down status logs venv test bench chaos contract-snapshots compose-check clean

help:
	@echo "make venv           create .venv (python3.11) and pip install -e '.[dev]' (redone when pyproject.toml changes)"
	@echo "make up             start the native stack (Kafka, Postgres, Redis, HAProxy, services) in .stack/"
	@echo "make down           stop it"
	@echo "make status         state and health of every program"
	@echo "make logs           follow the logs (P=kafka for one program)"
	@echo "make test           run the tests, ARGS='-k x' for pytest (starts the stack unless KAFKA_BOOTSTRAP_SERVERS/POSTGRES_DSN/REDIS_URL are set)"
	@echo "make bench          start the stack if needed, run the benchmarks (bench/; B=flags for one) and write bench/report.md + report.png"
	@echo "make chaos          start the stack if needed, fault it under load (kill -9 each service, Kafka, Postgres, Redis), report in docs/chaos.md (F='kill-flags postgres-stop' for some, CHAOS_FAULT_SECONDS=30)"
	@echo "make contract-snapshots  regenerate event schema snapshots and docs/asyncapi.yaml"
	@echo "make compose-check  prove docker-compose.yml: images (offline stand-ins if unpullable), up, runbook checks, down -v"
	@echo "make clean          down + remove .stack data (keeps the cached Kafka jars)"

venv: $(STAMP)

$(STAMP): pyproject.toml stack/venv.sh
	@stack/venv.sh
	@touch $@

up: venv
	@stack/up.sh

down:
	@stack/down.sh

status:
	@stack/status.sh

logs:
	@test -d .stack/logs || { echo "no logs yet (.stack/logs): run make up" >&2; exit 1; }
	@if [ -n "$(P)" ]; then tail -n 100 -F .stack/logs/$(P).log; else tail -n 20 -F .stack/logs/*.log; fi

test:
	@stack/test.sh $(ARGS)

bench: up
	@stack/bench-tools.sh
	set -a && . .stack/env && set +a && $(VENV)/bin/python -m bench $(B)

chaos: up
	set -a && . .stack/env && set +a && $(VENV)/bin/python -m chaos $(F)

contract-snapshots: venv
	$(VENV)/bin/python -m shared.contract

compose-check:
	@stack/compose-check.sh

clean:
	@stack/clean.sh
