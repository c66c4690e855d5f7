# The two commands a newcomer needs: `make run` and `make test`.
# Everything else here is for developers.

PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
BIN := $(VENV)/bin
PROTO := proto/contactrouter/v1/contact_router.proto
SOURCES := router clients/python tools tests bench scenarios

.PHONY: run test proto proto-check lint typecheck buf-lint check clean

PACKAGES := pyproject.toml clients/python/pyproject.toml tools/pyproject.toml

# Installs say one line each; what pip and the build backends print (setuptools warns
# about every editable install of a flat layout) goes to INSTALL_LOG, shown only when
# the install fails.
INSTALL_LOG = $(VENV)/install.log
# $(call logged,COMMAND): run COMMAND, its output appended to INSTALL_LOG.
logged = { $(1); } >>$(INSTALL_LOG) 2>&1 || { cat $(INSTALL_LOG) >&2; \
	echo "install failed (the output above is in $(INSTALL_LOG)); run make again to retry" >&2; \
	exit 1; }

# The service, its client and the tools (simulate, report, staffing), editable.
$(VENV)/.runtime: $(PACKAGES)
	@echo "installing contact-router into $(VENV) (about a minute the first time)..."
	@mkdir -p $(VENV) && : >$(INSTALL_LOG)
	@$(call logged,$(PYTHON) -m venv $(VENV))
	@$(call logged,$(PY) -m pip install --upgrade pip)
	@$(call logged,$(PY) -m pip install -e clients/python -e . -e tools)
	@touch $@

$(VENV)/.dev: $(PACKAGES) $(VENV)/.runtime
	@echo "installing the development tools into $(VENV)..."
	@$(call logged,$(PY) -m pip install -e clients/python -e '.[dev]' -e tools)
	@touch $@

## Install the service and serve gRPC on port 50051 (embedded PostgreSQL unless
## ROUTER_DATABASE_URL is set).
run: $(VENV)/.runtime
	@exec $(BIN)/contact-router serve

## Install everything and run the whole test suite (ROUTER_TEST_DATABASE_URL picks
## a PostgreSQL server; without it the tests start an embedded one). The tests mostly
## wait (PostgreSQL's fsyncs, gRPC, child processes), so TEST_WORKERS pytest-xdist
## workers share the cores: each test still has a database of its own.
TEST_WORKERS ?= 4
test: $(VENV)/.dev
	$(PY) -m pytest -n $(TEST_WORKERS) --dist worksteal

GENERATED := clients/python/contactrouter/v1

## Regenerate the Python code under clients/python/contactrouter/v1 from proto/ (the one
## documented command; CI fails when its output differs from what is committed). The
## Python package mirrors the protobuf package, so the generated imports resolve as is.
proto: $(VENV)/.dev
	PATH="$(abspath $(BIN)):$$PATH" $(PY) -m grpc_tools.protoc -Iproto \
		--python_out=clients/python --grpc_python_out=clients/python \
		--mypy_out=clients/python --mypy_grpc_out=clients/python $(PROTO)

proto-check: proto
	@test -z "$$(git status --porcelain -- $(GENERATED))" || \
		{ git status --short -- $(GENERATED); echo '$(GENERATED) is stale: run make proto and commit'; exit 1; }

buf-lint:
	npx --yes @bufbuild/buf@1.75.0 lint

.PHONY: config-docs config-check

## Regenerate docs/configuration.md, the table of every setting, from router/settings.py
## (the one place a setting is declared; CI fails when the committed page differs).
config-docs: $(VENV)/.runtime
	$(PY) -m router.settings_doc > docs/configuration.md

config-check: $(VENV)/.runtime
	@$(PY) -m router.settings_doc | diff -u docs/configuration.md - || \
		{ echo 'docs/configuration.md is stale: run make config-docs and commit'; exit 1; }

lint: $(VENV)/.dev
	$(BIN)/ruff check $(SOURCES)
	$(BIN)/ruff format --check $(SOURCES)

typecheck: $(VENV)/.dev
	$(BIN)/mypy

check: lint typecheck proto-check config-check buf-lint test

clean:
	rm -rf $(VENV) .data

## Benchmark the router against a bare gRPC server and bare asyncpg writes in one run
## (about 15 minutes on 2 cores; scratch databases on ROUTER_TEST_DATABASE_URL's server,
## else 127.0.0.1:5432). Figures: bench/results/, plot: docs/bench/growth.png.
.PHONY: bench
bench: $(VENV)/.dev
	mkdir -p bench/results
	$(PY) -m bench --json bench/results/last-run.json --markdown bench/results/last-run.md \
		--plot docs/bench/growth.png

## Regenerate docs/sample-simulate.txt, the output of `simulate` the docs show, from a
## real run of scenarios/sample.toml (about 40 s, with a router of its own on
## ROUTER_DATABASE_URL, a database no other router uses, else an embedded PostgreSQL).
## tests/unit/test_simulation_report.py fails when the sample lacks a section of today's.
.PHONY: sample-output
sample-output: $(VENV)/.runtime
	$(BIN)/contact-router simulate scenarios/sample.toml --run-id sample --quiet \
		>docs/sample-simulate.txt.new || { rm -f docs/sample-simulate.txt.new; exit 1; }
	mv docs/sample-simulate.txt.new docs/sample-simulate.txt
