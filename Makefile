# Herald: the verbs people expect. Every target installs what it needs.
PYTHON ?= $(shell command -v python3.11 || command -v python3.12 || command -v python3.13 || command -v python3)
VENV   ?= .venv
PY     := $(VENV)/bin/python
PYTEST_ARGS ?=
CHROMIUM ?= chromium

.PHONY: install lock services-up edge-deps browser-deps test test-fast test-unit test-fuzz test-faults run lint typecheck bench bench-peers up down clean

# Every dependency (runtime, dev extras, the build backend) pinned with its hashes in
# requirements.lock; the image installs requirements-runtime.lock. `make lock` refreshes both
# from pyproject.toml; `pip check` fails the install when the lock misses something.
LOCK_FLAGS := --quiet --generate-hashes --allow-unsafe --strip-extras --no-emit-index-url --no-emit-find-links

$(VENV)/.installed: pyproject.toml requirements.lock
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "Herald needs Python 3.11 or newer")'
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --require-hashes -r requirements.lock
	$(PY) -m pip install -q --no-deps --no-build-isolation -e .
	@$(PY) -m pip check >/dev/null || { $(PY) -m pip check; echo "requirements.lock is behind pyproject.toml: run make lock"; exit 1; }
	@touch $@

install: $(VENV)/.installed

lock:
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q 'pip-tools>=7.4,<8'
	$(PY) -m piptools compile $(LOCK_FLAGS) --extra dev --build-deps-for editable -o requirements.lock pyproject.toml
	$(PY) -m piptools compile $(LOCK_FLAGS) --build-deps-for wheel -o requirements-runtime.lock pyproject.toml

services-up: install
	@$(PY) deploy/dev/ensure_services.py

# Debian's nginx: the edge of `make run` and of the tests (each test fronts its services with a
# real nginx). Installed with apt-get as root when missing; otherwise this says what to do.
NGINX ?= nginx
edge-deps:
	@command -v $(NGINX) >/dev/null 2>&1 || [ -x /usr/sbin/nginx ] || { \
		if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
			apt-get -o DPkg::Lock::Timeout=300 update -q >/dev/null && \
			apt-get -o DPkg::Lock::Timeout=300 install -y -q --no-install-recommends nginx >/dev/null || \
			{ echo "could not install nginx: install it (Debian: apt-get install nginx)"; exit 1; }; \
		else \
			echo "nginx is missing and cannot be installed here: install it (Debian: apt-get install nginx)"; exit 1; \
		fi; }

# Debian's Chromium for the browser tests (Playwright drives it; it never downloads a browser).
# Without it, and without apt-get as root to install it, those tests are skipped and say why.
browser-deps:
	@command -v $(CHROMIUM) >/dev/null 2>&1 || { \
		if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
			apt-get -o DPkg::Lock::Timeout=300 update -q >/dev/null && \
			apt-get -o DPkg::Lock::Timeout=300 install -y -q chromium >/dev/null || \
			echo "could not install chromium: the browser tests will be skipped"; \
		else \
			echo "chromium is missing and cannot be installed here: the browser tests will be skipped"; \
		fi; }

test: services-up edge-deps browser-deps
	$(PY) -m pytest $(PYTEST_ARGS)

# Everything but the tests marked slow (loads, process kills, outages): for the edit-test loop.
test-fast: services-up edge-deps browser-deps
	$(PY) -m pytest -m "not slow" $(PYTEST_ARGS)

test-unit: install edge-deps
	$(PY) -m pytest -m unit $(PYTEST_ARGS)

# schemathesis over /v2/openapi.json against the running suite: no 5xx, every answer as documented.
FUZZ_EXAMPLES ?= 30
test-fuzz: services-up edge-deps
	$(PY) tests/fuzz/run_fuzz.py $(FUZZ_EXAMPLES)

# Events through the whole delivery path while the worker is SIGKILLed, AMQP connections and
# PostgreSQL backends are cut and the receiver fails half its requests: 0 lost, or exit 1.
FAULT_EVENTS ?= 10000
test-faults: services-up edge-deps
	FAULT_EVENTS=$(FAULT_EVENTS) $(PY) tests/faults/run_faults.py

# The suite as processes: nginx on HERALD_EDGE_PORT (8080) in front of the services.
run: services-up edge-deps
	$(PY) -m services

# Style, the import rules between services and shared (pyproject's importlinter contracts), and
# dead code (vulture, over the product alone and then with the tests; see pyproject.toml).
lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/lint-imports
	$(VENV)/bin/vulture services shared bench deploy vulture_whitelist.py
	$(VENV)/bin/vulture

typecheck: install
	$(VENV)/bin/mypy

bench: services-up edge-deps
	@command -v wrk >/dev/null || { [ "$$(id -u)" = 0 ] && apt-get install -y -q wrk >/dev/null; } || \
		echo "wrk is not installed: the HTTP part of the benchmark is skipped"
	$(PY) bench/run.py
	$(PY) bench/stats_query.py

# Herald and Directus 12.4 side by side (Directus and Node 22 from the npm registry into
# ~/.cache/herald-bench the first time, about 10 minutes; then about 5 minutes a run).
bench-peers: services-up edge-deps
	@command -v wrk >/dev/null || { [ "$$(id -u)" = 0 ] && apt-get install -y -q wrk >/dev/null; } || \
		{ echo "wrk is not installed"; exit 1; }
	$(PY) bench/peers/directus.py

up:
	docker compose up -d --build

down:
	docker compose down

clean:
	rm -rf $(VENV) *.egg-info .pytest_cache .mypy_cache .ruff_cache
