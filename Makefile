# The two commands a newcomer needs: `make run` and `make test`. Everything else is a helper of theirs.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PORT ?= 8000
export PORT

.PHONY: install install-tools run token test lint migrate clean browser bench chaos

# .venv is made once; each command installs the extras it needs (pyproject.toml), again when pyproject.toml
# changes: `make run` the app and the embedded Redis only; `make test`, `make bench` and `make chaos` the test
# and benchmark tools too (the suite runs smoke tests of the bench and of the chaos harness).
$(VENV)/bin/python:
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip

$(VENV)/.installed-run: pyproject.toml | $(VENV)/bin/python
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $@

$(VENV)/.installed-tools: pyproject.toml | $(VENV)/bin/python
	$(PY) -m pip install --quiet -e '.[dev,test,bench]'
	touch $@

install: $(VENV)/.installed-run
install-tools: $(VENV)/.installed-tools

migrate: install
	$(PY) manage.py migrate --noinput

# The whole app on the embedded defaults: SQLite, and an embedded Redis-compatible server if none answers.
# exec: the shell gives way to runstack, so Ctrl-C (SIGINT to the terminal's group) reaches only make, which
# waits, and runstack, which stops its children in order (docs/operations.md, "Supervision and shutdown").
run: export DJANGO_DEBUG ?= true
run: install
	$(PY) manage.py migrate --noinput
	$(PY) manage.py seed_demo
	exec $(PY) manage.py runstack

# The demo API user's token (seed_demo's `merchant`, who may refund), alone on stdout: TOKEN=$(make -s token).
# Migrates and seeds first, as `make run` does, so it works on a fresh checkout, before or while the app runs;
# the seeding's messages go to stderr. On a server, with its environment: manage.py drf_create_token <user>.
token: export DJANGO_DEBUG ?= true
token: install
	@$(PY) manage.py migrate --noinput -v 0
	@$(PY) manage.py seed_demo >&2
	@$(PY) manage.py demo_token

# The browser tests drive Debian's Chromium; it is installed here when missing (never a downloaded build).
browser:
	@command -v chromium >/dev/null 2>&1 || { \
		echo "Installing Debian's chromium for the browser tests"; \
		SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
		$$SUDO apt-get update -qq && $$SUDO apt-get install -y -qq chromium; }

test: install-tools browser
	$(PY) -m pytest $(PYTEST_ARGS)

# The benchmarks (docs/benchmarks.md): a few minutes; BENCH_ARGS=--quick for a smoke run.
bench: install-tools
	$(PY) -m bench.run $(BENCH_ARGS)

# Faults injected under load, then every loss counted (docs/reliability.md): about 20 minutes, PostgreSQL only
# (the harness drops and creates its own database, checkout_chaos, on that server); CHAOS_ARGS=--ci for the
# CI-sized run (< 5 minutes). Exits 1 if any counter is not zero: a test, so it lives in tests/chaos/.
chaos: install-tools
	DATABASE_URL="$${DATABASE_URL:-postgres://postgres@127.0.0.1:5432/checkout_chaos}" $(PY) -m tests.chaos $(CHAOS_ARGS)

lint: install-tools
	$(VENV)/bin/ruff check .

clean:
	rm -rf $(VENV) var staticfiles .pytest_cache .ruff_cache
