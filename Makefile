# Herald: the verbs people expect. Every target installs what it needs.
PYTHON ?= $(shell command -v python3.11 || command -v python3.12 || command -v python3.13 || command -v python3)
VENV   ?= .venv
PY     := $(VENV)/bin/python
PYTEST_ARGS ?=
CHROMIUM ?= chromium

.PHONY: install services-up browser-deps test test-fast test-unit test-fuzz test-faults run lint typecheck bench up down clean

$(VENV)/.installed: pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "Herald needs Python 3.11 or newer")'
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[dev]'
	@touch $@

install: $(VENV)/.installed

services-up: install
	@$(PY) deploy/dev/ensure_services.py

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

test: services-up browser-deps
	$(PY) -m pytest $(PYTEST_ARGS)

# Everything but the tests marked slow (loads, process kills, outages): for the edit-test loop.
test-fast: services-up browser-deps
	$(PY) -m pytest -m "not slow" $(PYTEST_ARGS)

test-unit: install
	$(PY) -m pytest -m unit $(PYTEST_ARGS)

# schemathesis over /v2/openapi.json against the running suite: no 5xx, every answer as documented.
FUZZ_EXAMPLES ?= 30
test-fuzz: services-up
	$(PY) tests/fuzz/run_fuzz.py $(FUZZ_EXAMPLES)

# Events through the whole delivery path while the worker is SIGKILLed, AMQP connections and
# PostgreSQL backends are cut and the receiver fails half its requests: 0 lost, or exit 1.
FAULT_EVENTS ?= 10000
test-faults: services-up
	FAULT_EVENTS=$(FAULT_EVENTS) $(PY) tests/faults/run_faults.py

run: services-up
	$(PY) -m services

lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

typecheck: install
	$(VENV)/bin/mypy

bench: services-up
	@command -v wrk >/dev/null || { [ "$$(id -u)" = 0 ] && apt-get install -y -q wrk >/dev/null; } || \
		echo "wrk is not installed: the HTTP part of the benchmark is skipped"
	$(PY) bench/run.py

up:
	docker compose up -d --build

down:
	docker compose down

clean:
	rm -rf $(VENV) *.egg-info .pytest_cache .mypy_cache .ruff_cache
