# The two commands of the README: `make run` and `make test`. Everything else is a helper for them.
SHELL := /bin/bash
.DEFAULT_GOAL := help

VENV ?= .venv
PYTHON ?= $(shell command -v python3.11 || command -v python3.12 || command -v python3.13 || command -v python3)
PY := $(VENV)/bin/python
# make test defaults to the local services (started if installed but stopped); override to point elsewhere.
TEST_DATABASE_URL ?= $(or $(DATABASE_URL),postgres://postgres@127.0.0.1:5432/coupons)
TEST_REDIS_URL ?= $(or $(REDIS_URL),redis://127.0.0.1:6379/1)
PYTEST_ARGS ?= -n 2 --dist loadgroup
# The lock files (requirements.txt, requirements-dev.txt, with hashes) are generated from the hand-edited
# requirements.in / requirements-dev.in by pip-compile; it keeps the versions already locked unless told otherwise
# (make lock LOCK_ARGS="--upgrade-package NAME").
PIP_COMPILE := CUSTOM_COMPILE_COMMAND="make lock" $(VENV)/bin/pip-compile --quiet --generate-hashes --allow-unsafe \
	--strip-extras --no-emit-index-url --no-emit-find-links --no-emit-trusted-host $(LOCK_ARGS)
# mypy's Django plugin imports the settings: give them a database URL to parse (nothing connects) and a key, so
# the check needs no running service and never starts the embedded PostgreSQL.
LINT_ENV := env DATABASE_URL=postgres://lint@127.0.0.1:9/lint REDIS_URL= \
	DJANGO_SECRET_KEY=only-for-reading-settings-in-make-lint-not-a-secret

.PHONY: help run test venv services smoke migrate lint lock catalogues messages gettext

help:
	@echo "make run   - install, migrate, load demo data and serve console + API (embedded PostgreSQL if no DATABASE_URL)"
	@echo "make test  - install, start local PostgreSQL/Redis if needed, run the whole test suite"
	@echo "make smoke - the embedded (no services) smoke test that CI runs after make test"
	@echo "make messages - extract new strings into the ko catalogues (locale/, <app>/locale/) after marking them"
	@echo "make lint  - ruff, mypy and the import contracts (lint-imports); CI runs it after make test"
	@echo "make lock  - regenerate requirements*.txt (pinned, with hashes) from requirements*.in"

$(VENV)/.installed: requirements.txt requirements-dev.txt
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "Python 3.11 or newer is needed; found " + sys.version.split()[0])'
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --require-hashes -r requirements-dev.txt
	@touch $@

venv: $(VENV)/.installed

# The .mo catalogues are build output (never committed): compiled from the .po sources in pure Python (Babel, a
# pinned requirement), so a fresh machine needs no GNU gettext to build, run or test.
catalogues: venv
	$(PY) -m core.catalogues

# Extraction (makemessages) needs xgettext from GNU gettext: installed here if missing and apt-get is available.
gettext:
	@command -v xgettext >/dev/null || { command -v apt-get >/dev/null && \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ) && $$SUDO apt-get update -qq && $$SUDO apt-get install -y gettext; } || \
	  { echo "GNU gettext (xgettext) is needed: install the 'gettext' package" >&2; exit 1; }

# After marking strings: add them to the Korean catalogues, then translate the empty msgstr entries.
messages: venv gettext
	$(PY) -m core.catalogues --extract

run: venv catalogues
	$(PY) manage.py serve

services:
	@DATABASE_URL="$(TEST_DATABASE_URL)" REDIS_URL="$(TEST_REDIS_URL)" bash scripts/ensure-services.sh

test: venv services catalogues gettext
	DATABASE_URL="$(TEST_DATABASE_URL)" REDIS_URL="$(TEST_REDIS_URL)" bash scripts/pytest.sh $(PYTEST_ARGS)

smoke: venv catalogues
	bash scripts/smoke-embedded.sh

migrate: venv
	$(PY) manage.py migrate

# Every check runs, even after one fails; the target fails if any did.
lint: venv
	@status=0; \
	echo "== ruff check"; $(VENV)/bin/ruff check . || status=1; \
	echo "== mypy"; $(LINT_ENV) $(VENV)/bin/mypy || status=1; \
	echo "== lint-imports"; $(VENV)/bin/lint-imports || status=1; \
	exit $$status

# After editing requirements.in or requirements-dev.in (the dev lock is constrained to the runtime one).
lock: venv
	$(PIP_COMPILE) --output-file requirements.txt requirements.in
	$(PIP_COMPILE) --output-file requirements-dev.txt requirements-dev.in
