"""Imported before tests/conftest.py, and so before anything here imports grpc: the
router package sets the environment gRPC core reads at its import (router/__init__.py),
and the test processes, which start the embedded PostgreSQL while gRPC's threads run,
need the same settings as the router."""

import router  # noqa: F401
