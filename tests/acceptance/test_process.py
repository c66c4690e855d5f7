"""`contact-router serve` as a real process: starts, serves, and stops cleanly on signals."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
from pathlib import Path

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

START_TIMEOUT = 30.0
STOP_TIMEOUT = 20.0


async def _start(env: dict[str, str]) -> tuple[asyncio.subprocess.Process, int, list[str]]:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "router.cli",
        "serve",
        env={
            **os.environ,
            "ROUTER_PORT": "0",
            "ROUTER_METRICS_PORT": "0",
            "ROUTER_LOG_FORMAT": "json",
            **env,
        },
        stderr=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.DEVNULL,
    )
    assert process.stderr is not None
    lines: list[str] = []

    async def port_from_log() -> int:
        """The port of `router_listening`, once `router_active` says it serves."""
        assert process.stderr is not None
        port = None
        while line := (await process.stderr.readline()).decode():
            lines.append(line)
            event = json.loads(line) if line.startswith("{") else {}
            if event.get("event") == "router_listening":
                port = int(event["port"])
            if event.get("event") == "router_active" and port is not None:
                return port
        raise AssertionError("server exited before starting:\n" + "".join(lines))

    port = await asyncio.wait_for(port_from_log(), START_TIMEOUT)
    return process, port, lines


async def _health(port: int) -> int:
    async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
        stub = health_pb2_grpc.HealthStub(channel)
        response = await stub.Check(health_pb2.HealthCheckRequest(service=""), timeout=5)
        return int(response.status)


async def _stop(process: asyncio.subprocess.Process, sig: int, lines: list[str]) -> str:
    process.send_signal(sig)
    assert process.stderr is not None
    rest = await asyncio.wait_for(process.stderr.read(), STOP_TIMEOUT)
    await asyncio.wait_for(process.wait(), STOP_TIMEOUT)
    return "".join(lines) + rest.decode()


class TestServeProcess:
    async def test_sigterm_stops_cleanly(self, database_url: str) -> None:
        """With ROUTER_DATABASE_URL the server serves health and exits 0 on SIGTERM."""
        process, port, lines = await _start({"ROUTER_DATABASE_URL": database_url})
        try:
            assert await _health(port) == health_pb2.HealthCheckResponse.SERVING
        finally:
            output = await _stop(process, signal.SIGTERM, lines)
        assert process.returncode == 0, output
        assert '"router_stopped"' in output

    async def test_embedded_postgres_without_url(self, tmp_path: Path) -> None:
        """Without a database URL it starts an embedded PostgreSQL and stops on Ctrl-C."""
        env = {"ROUTER_DATABASE_URL": "", "ROUTER_DATA_DIR": str(tmp_path / "data")}
        process, port, lines = await _start(env)
        try:
            assert await _health(port) == health_pb2.HealthCheckResponse.SERVING
        finally:
            output = await _stop(process, signal.SIGINT, lines)
        assert process.returncode == 0, output
        assert '"embedded_postgres_started"' in output
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
