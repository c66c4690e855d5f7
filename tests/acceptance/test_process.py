"""`contact-router serve` as a real process: starts, serves, and stops cleanly on signals."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from pathlib import Path

from grpc_health.v1 import health_pb2

from tests.acceptance.router_process import START_TIMEOUT, RouterProcess


class TestServeProcess:
    async def test_sigterm_stops_cleanly(self, database_url: str) -> None:
        """With ROUTER_DATABASE_URL the server serves health and exits 0 on SIGTERM."""
        process = await RouterProcess.start({"ROUTER_DATABASE_URL": database_url})
        try:
            assert await process.health() == health_pb2.HealthCheckResponse.SERVING
        finally:
            status = await process.stop(signal.SIGTERM)
        assert status == 0, process.output
        assert '"router_stopped"' in process.output

    async def test_embedded_postgres_without_url(self, tmp_path: Path) -> None:
        """Without a database URL it starts an embedded PostgreSQL and stops on Ctrl-C."""
        env = {"ROUTER_DATABASE_URL": "", "ROUTER_DATA_DIR": str(tmp_path / "data")}
        process = await RouterProcess.start(env)
        try:
            assert await process.health() == health_pb2.HealthCheckResponse.SERVING
        finally:
            status = await process.stop(signal.SIGINT)
        assert status == 0, process.output
        assert '"embedded_postgres_started"' in process.output
        assert (tmp_path / "data" / "postgres" / "PG_VERSION").exists()

    async def test_bad_configuration_is_refused(self) -> None:
        """A malformed setting stops the start with a message naming the variable."""
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "router.cli",
            "serve",
            env={**os.environ, "ROUTER_PHONE_RESERVE": "many"},
            stderr=asyncio.subprocess.PIPE,
        )
        _, err = await asyncio.wait_for(process.communicate(), START_TIMEOUT)
        assert process.returncode == 2
        assert b"ROUTER_PHONE_RESERVE" in err
