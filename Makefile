# traysvc: `make run` serves a demo on http://127.0.0.1:8000, `make test` runs the suite.
# GNU make. Everything runs from .venv, which `make venv` builds from requirements.lock.

SHELL := /bin/bash
.DEFAULT_GOAL := help

VENV := .venv
VENV_PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
PORT ?= 8000
HOST ?= 127.0.0.1

NO_PYTHON := traysvc needs Python 3.12+; install it or pass PYTHON=/path/to/python3.12
PY_CHECK := -c 'import sys; assert sys.version_info >= (3, 12); print(sys.executable)'

# The first candidate that really runs Python >= 3.12 (pyenv shims exist on PATH but fail
# without PYENV_VERSION, so each one is run, not just looked up). Recursive on purpose: only
# evaluated when .venv has to be created. `make PYTHON=/path/to/python3.12` overrides it.
PYTHON ?= $(shell for c in python3.13 python3.12 \
	"$$(pyenv root 2>/dev/null)"/versions/3.1[2-9]*/bin/python; do \
	"$$c" $(PY_CHECK) 2>/dev/null && break; done)

.PHONY: help venv run test lint fmt lock clean

help:
	@echo "make run    serve the demo on http://$(HOST):$(PORT) (PORT=N), with a Celery worker + beat"
	@echo "make test   the whole test suite (what .ci/run calls)"
	@echo "make lint   ruff check + ruff format --check"
	@echo "make fmt    ruff format + ruff check --fix"
	@echo "make lock   recompile requirements.lock from pyproject.toml"
	@echo "make venv   create .venv and install requirements.lock"
	@echo "make clean  remove .venv and caches (keeps var/: the dev database and keys)"

$(VENV_PY):
	@py='$(PYTHON)'; \
	if [ -z "$$py" ] || ! "$$py" $(PY_CHECK) >/dev/null 2>&1; then \
		echo '$(NO_PYTHON)' >&2; exit 1; \
	fi; \
	echo "Creating $(VENV) with $$py"; \
	"$$py" -m venv --clear $(VENV)

# Re-installs only when requirements.lock is newer than the stamp.
$(STAMP): requirements.lock | $(VENV_PY)
	$(VENV_PY) -m pip install --disable-pip-version-check -r requirements.lock
	@touch $@

venv: $(STAMP)

# DEBUG and the sandbox default to on here, but the caller's environment wins.
run: export DEBUG ?= 1
run: export TRAYSVC_SANDBOX ?= 1
run: export TRAYSVC_PUBLIC_URL ?= http://127.0.0.1:$(PORT)
run: venv
	$(VENV_PY) manage.py migrate --noinput
	$(VENV_PY) manage.py seed_demo
	exec $(VENV_PY) -m traysvc.devserver --host $(HOST) --port $(PORT)

# pytest exits 5 when it collected nothing: a suite that tests nothing is a failure too.
test: venv
	@rc=0; TRAYSVC_TESTING=1 $(VENV_PY) -m pytest $(PYTEST_ARGS) || rc=$$?; \
	if [ $$rc -eq 5 ]; then echo "make test: pytest collected no tests; that is a failure" >&2; fi; \
	exit $$rc

lint: venv
	$(VENV)/bin/ruff check . && $(VENV)/bin/ruff format --check .

fmt: venv
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

# uv is a tool, not a dependency: installed into .venv on demand, never into the lock.
lock: | $(VENV_PY)
	@test -x $(VENV)/bin/uv || $(VENV_PY) -m pip install --disable-pip-version-check uv
	$(VENV)/bin/uv pip compile pyproject.toml --extra dev --no-emit-index-url \
		-o requirements.lock --python-version 3.12

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache .mypy_cache test-results var/staticfiles
	find . -path ./var -prune -o -type d -name __pycache__ -prune -exec rm -rf {} +
