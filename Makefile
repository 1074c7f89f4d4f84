# Session Lab. `make` alone lists the targets.
SHELL := /bin/bash
.DEFAULT_GOAL := help

COMPOSE ?= docker compose
VENV ?= .venv
PYTHON ?= python3
MODE ?=

# After `make offline-images`, use the local stand-ins instead of the official base images.
ifneq ($(wildcard offline-images/offline.env),)
include offline-images/offline.env
export PYTHON_IMAGE NGINX_IMAGE REDIS_IMAGE
endif

.PHONY: help env up down logs ps lb offline-images venv test test-unit test-integration test-e2e

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
	$(COMPOSE) ps

lb: ## Switch the running balancer's routing: make lb MODE=round-robin|sticky|ip-hash|least-conn
	@if [ -z "$(MODE)" ]; then echo "usage: make lb MODE=round-robin|sticky|ip-hash|least-conn" >&2; exit 2; fi
	@$(COMPOSE) exec -T lb switch-mode "$(MODE)"

offline-images: ## Build local stand-ins for the python, nginx and redis images (no registry needed)
	offline-images/build.sh

venv: $(VENV)/.installed ## Create the Python virtualenv for tests and load tools

$(VENV)/.installed: requirements-dev.txt services/app/requirements.txt
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --upgrade pip
	$(VENV)/bin/pip install --quiet -r requirements-dev.txt
	@touch $@

test: venv ## Run every test: unit, integration (real Redis) and e2e (the compose stack)
	$(VENV)/bin/pytest tests

test-unit: venv ## Unit tests only (no services)
	$(VENV)/bin/pytest tests/unit

test-integration: venv ## Integration tests (starts a throwaway redis-server)
	$(VENV)/bin/pytest tests/integration

test-e2e: venv ## End-to-end tests against a throwaway compose stack on port 18080
	$(VENV)/bin/pytest tests/e2e
