# The two commands a newcomer needs: `make run` and `make test`.
# Everything else here is for developers.

PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
BIN := $(VENV)/bin
PROTO := proto/contactrouter/v1/contact_router.proto

.PHONY: run test proto proto-check lint typecheck buf-lint check clean

$(VENV)/.runtime: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e .
	touch $@

$(VENV)/.dev: pyproject.toml $(VENV)/.runtime
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $@

## Install the service and serve gRPC on port 50051 (embedded PostgreSQL unless
## ROUTER_DATABASE_URL is set).
run: $(VENV)/.runtime
	exec $(BIN)/contact-router serve

## Install everything and run the whole test suite (ROUTER_TEST_DATABASE_URL picks
## a PostgreSQL server; without it the tests start an embedded one).
test: $(VENV)/.dev
	$(PY) -m pytest

## Regenerate the Python code under router/_proto from proto/ (the one documented
## command; CI fails when its output differs from what is committed).
proto: $(VENV)/.dev
	PATH="$(abspath $(BIN)):$$PATH" $(PY) -m grpc_tools.protoc -Irouter/_proto=proto \
		--python_out=. --grpc_python_out=. --mypy_out=. --mypy_grpc_out=. $(PROTO)

proto-check: proto
	@test -z "$$(git status --porcelain -- router/_proto)" || \
		{ git status --short -- router/_proto; echo 'router/_proto is stale: run make proto and commit'; exit 1; }

buf-lint:
	npx --yes @bufbuild/buf@1.75.0 lint

lint: $(VENV)/.dev
	$(BIN)/ruff check router tests bench scenarios
	$(BIN)/ruff format --check router tests bench scenarios

typecheck: $(VENV)/.dev
	$(BIN)/mypy

check: lint typecheck proto-check buf-lint test

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
