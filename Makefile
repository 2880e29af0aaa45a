# The README's two commands: `make demo` (the whole pipeline) and `make test` (lint + every test).
# Both create .venv with the locked dependencies (uv.lock) when it is missing or out of date.
# uv itself is installed into .tools/ with the machine's python3 and pip; nothing else outside the
# repo changes, except that `make test` run as root installs the Debian packages the tests need.

UV_VERSION := 0.13.9
UV := .tools/uv/bin/uv
VENV := .venv
STAMP := $(VENV)/.synced
PYTEST_ARGS ?=

.PHONY: demo test test-fast lint format lock clean-venv system-packages

demo: $(STAMP)
	$(VENV)/bin/xnaming demo $(DEMO_ARGS)

test: $(STAMP) lint system-packages
	$(VENV)/bin/pytest $(PYTEST_ARGS)

# Under a minute: no training, no Label Studio server, no browser.
test-fast: $(STAMP) lint
	$(VENV)/bin/pytest -m "not slow" $(PYTEST_ARGS)

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

format: $(STAMP)
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

# Debian's chromium and docker-compose for the browser and deployment tests: installed when run
# as root with apt-get, else their tests are skipped (failed under CI=true). See the script.
system-packages:
	@.ci/system-packages

# After editing dependencies in pyproject.toml: `make lock`, then commit uv.lock.
# To move every pin to the newest allowed version: `make lock LOCK_ARGS=--upgrade`.
lock: $(UV)
	$(UV) lock $(LOCK_ARGS)

$(UV):
	python3 -m pip install --quiet --disable-pip-version-check --root-user-action=ignore --target .tools/uv uv==$(UV_VERSION)

# --locked: fail (and say so) if uv.lock no longer matches pyproject.toml, rather than re-resolving.
$(STAMP): pyproject.toml uv.lock | $(UV)
	$(UV) sync --locked
	touch $@

clean-venv:
	rm -rf $(VENV) .tools
