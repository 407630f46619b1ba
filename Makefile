# odh-hub: two commands. `make up` runs the local platform; `make test` runs every test.
SHELL := /bin/bash
VENV := $(CURDIR)/.venv
PY := $(VENV)/bin/python
export ODH_PROXY_COMMAND ?= $(CURDIR)/.tools/chp/node_modules/.bin/configurable-http-proxy
ODH_CONFIG_DIR ?= $(CURDIR)/config/demo
ODH_STATE_DIR ?= $(CURDIR)/.odh-state
PYTEST_ARGS ?=

.PHONY: install up test test-unit test-integration test-docs test-browser bench check-config clean k8s

install:
	@scripts/install.sh

up: install
	@$(PY) -m odh_spawner.cli up --config-dir "$(ODH_CONFIG_DIR)" --state-dir "$(ODH_STATE_DIR)"

# the unit layer first, in a random order (pytest-randomly prints the seed; rerun one with --randomly-seed=N); then
# the rest with their modules in reverse order, so no module leans on what an earlier one left (tests/conftest.py)
test: install k8s
	$(PY) -m pytest -m unit -p randomly $(PYTEST_ARGS)
	$(PY) -m pytest -m "not unit" --module-order=reverse $(PYTEST_ARGS)

test-unit: install
	$(PY) -m pytest -m unit -p randomly $(PYTEST_ARGS)

test-integration: install k8s
	$(PY) -m pytest -m integration $(PYTEST_ARGS)

# every Python block of README.md and docs/user-guide.md, run in a real kernel of the profile it names
test-docs: install
	$(PY) -m pytest -m docs $(PYTEST_ARGS)

test-browser: install
	$(PY) -m pytest -m browser $(PYTEST_ARGS)

bench: install
	@for b in bench/[!_]*.py; do echo "== $$b"; $(PY) $$b || exit 1; done

check-config: install
	$(PY) -m odh_spawner.cli check-config "$(ODH_CONFIG_DIR)"

clean:
	rm -rf .odh-state test-artifacts .pytest_cache

# the real Kubernetes control plane the integration tests run against (built once, cached under ~/.cache/odh-hub;
# ~12 min cold on 2 cores); not needed by `make up`
k8s:
	@scripts/k8s-controlplane.sh build >/dev/null

# prebuild the lock environments the demo profiles run in locally (once; cached: see docs/admin-guide.md)
.PHONY: envs
envs: install
	$(PY) -m odh_spawner.cli envs build --all --config-dir "$(ODH_CONFIG_DIR)"
