# Session Lab. `make` alone lists the targets.
SHELL := /bin/bash
.DEFAULT_GOAL := help

COMPOSE ?= docker compose
VENV ?= .venv
PYTHON ?= python3
MODE ?=
LAB_URL ?= http://127.0.0.1:8080
USERS ?= 30
RUN_TIME ?= 60s
UI_RUN_TIME ?= 10m
FAULT ?= kill
TARGET ?= random
HOLD ?= 15
SEED ?=
NODE ?=
QUICK ?=
SUITE ?=
MODES ?=
STRATEGIES ?=
DURATION ?= 600
RESULTS := results/$(shell date -u +%Y%m%dT%H%M%SZ)
export LAB_URL

# After `make offline-images`, use the local stand-ins instead of the official base images.
ifneq ($(wildcard offline-images/offline.env),)
include offline-images/offline.env
export PYTHON_IMAGE NGINX_IMAGE REDIS_IMAGE
endif

.PHONY: help env up down logs ps reset lb offline-images venv lint test test-guide test-unit test-integration test-e2e bench \
	load load-ui chaos kill-node experiment soak rotate-jwt-key

help: ## Show this help
	@grep -hE '^[a-zA-Z0-9_-]+:.*?## ' $(MAKEFILE_LIST) | awk -F':.*?## ' '{printf "  make %-18s %s\n", $$1, $$2}'

env: ## Create .env with generated dev-only secrets (kept if it exists)
	@scripts/make-env.sh

up: env ## Build, start and wait until every service is healthy, then print the URLs
	@scripts/require-docker.sh
	$(COMPOSE) up -d --build --wait --wait-timeout 120
	@scripts/print-urls.sh

down: ## Stop the stack and remove its containers, network and volumes
	$(COMPOSE) down -v --remove-orphans

logs: ## Follow the logs of every service
	$(COMPOSE) logs -f --tail=100

ps: ## Show the services and their health
	$(COMPOSE) ps --format "table {{.Service}}\t{{.Status}}\t{{.Ports}}"

reset: venv ## Back to where every workshop lab starts: all services healthy, stores whole, round-robin
	@$(VENV)/bin/python -m loadtest.runs.reset

lb: ## Switch the running balancer's routing: make lb MODE=round-robin|sticky|ip-hash|least-conn
	@if [ -z "$(MODE)" ]; then echo "usage: make lb MODE=round-robin|sticky|ip-hash|least-conn" >&2; exit 2; fi
	@$(COMPOSE) exec -T lb switch-mode "$(MODE)"

load: venv ## Headless load with the session oracle: make load USERS=30 RUN_TIME=60s
	@mkdir -p $(RESULTS)
	LOADTEST_RECORD=$(RESULTS)/requests.csv $(VENV)/bin/locust -f loadtest/users/locustfile.py --headless \
		-u $(USERS) -r $(USERS) --run-time $(RUN_TIME) -H $(LAB_URL) --csv $(RESULTS)/locust --only-summary
	@echo "raw records: $(RESULTS)/requests.csv"

load-ui: venv ## Locust's web UI on http://127.0.0.1:8089, load already running (stops after UI_RUN_TIME=10m)
	$(VENV)/bin/locust -f loadtest/users/locustfile.py -H $(LAB_URL) --web-host 127.0.0.1 --web-port 8089 \
		--autostart -u $(USERS) -r $(USERS) --run-time $(UI_RUN_TIME) --autoquit 30

chaos: venv ## Fault a service or store role: make chaos FAULT=kill|stop|pause|disconnect|restart|redeploy TARGET=app2|sentinel-primary|cluster-master|... HOLD=15
	$(VENV)/bin/python -m loadtest.faults.chaos --fault $(FAULT) --target $(TARGET) --hold $(HOLD) \
		$(if $(SEED),--seed $(SEED)) --timeline results/chaos-timeline.jsonl

kill-node: venv ## SIGKILL one app node, bring it back after HOLD s (0: leave it down): make kill-node NODE=app2
	@if [ -z "$(NODE)" ]; then echo "usage: make kill-node NODE=app1|app2|app3 [HOLD=15]" >&2; exit 2; fi
	$(VENV)/bin/python -m loadtest.faults.chaos --fault kill --target $(NODE) --hold $(HOLD) --timeline results/chaos-timeline.jsonl

experiment: venv ## Every strategy under faults; scorecard and report in results/ (QUICK=1: ~3.5 min; SUITE=stores|saturation; MODES=sticky,round-robin; STRATEGIES=memory,redis)
	$(VENV)/bin/python -m loadtest.runs.experiment $(if $(QUICK),--quick) $(if $(SUITE),--suite $(SUITE)) \
		$(if $(MODES),--modes $(MODES)) $(if $(STRATEGIES),--strategies $(STRATEGIES))

bench: venv ## Throughput, latency and CPU per request of every strategy at saturation, through nginx (QUICK=1: ~3 min; STRATEGIES=redis,jwt; SUITE=growth; needs wrk)
	$(VENV)/bin/python -m loadtest.bench.run $(if $(QUICK),--quick) $(if $(STRATEGIES),--only $(STRATEGIES)) \
		$(if $(SUITE),--suite $(SUITE))

soak: venv ## Steady load on every strategy; fails when container memory or Redis keeps growing: make soak DURATION=600
	$(VENV)/bin/python -m loadtest.runs.soak --duration $(DURATION) --users $(USERS)

rotate-jwt-key: venv ## New JWT signing key via two rolling restarts of the nodes (no session lost)
	@$(VENV)/bin/python scripts/rotate_jwt_key.py

offline-images: ## Build local stand-ins for the python, nginx and redis images (no registry needed)
	offline-images/build.sh

venv: $(VENV)/.installed ## Create the Python virtualenv for tests and load tools

# The app (services/app) and the load tools (loadtest/) installed as editable packages: the tests, Locust and the
# scripts import them from the venv, from any directory, with no sys.path edits.
$(VENV)/.installed: requirements-dev.txt services/app/requirements.txt services/app/pyproject.toml pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --upgrade pip
	$(VENV)/bin/pip install --quiet -r requirements-dev.txt
	$(VENV)/bin/pip install --quiet -e services/app -e .
	@touch $@

lint: venv ## The linter (ruff; rules in pyproject.toml): pyflakes, style, import order, complexity
	$(VENV)/bin/ruff check .

test: venv lint ## Run every test: the linter, then the workshop guide's labs, unit, integration (real Redis) and e2e (the compose stack)
	$(VENV)/bin/pytest

test-guide: venv ## Run the workshop guide's commands against the lab's stack on port 8080, as a learner would
	$(VENV)/bin/pytest docs/workshop

test-unit: venv ## Unit tests only (no services)
	$(VENV)/bin/pytest tests/unit

test-integration: venv ## Integration tests (throwaway redis-server and nginx processes on loopback)
	$(VENV)/bin/pytest tests/integration

test-e2e: venv ## End-to-end tests against a throwaway compose stack on port 18080
	$(VENV)/bin/pytest tests/e2e
