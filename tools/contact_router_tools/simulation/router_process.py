"""The router a scenario run starts: `contact-router serve` as a child process, running
the scenario's policy at its time scale on a free loopback port."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import socket
import sys
import tempfile
import time
from collections.abc import AsyncIterator
from typing import IO

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from contact_router_tools.scenario import Scenario
from router.errors import RouterError

START_TIMEOUT = 60.0
TLS_SETTINGS = ("ROUTER_TLS_CERT_FILE", "ROUTER_TLS_KEY_FILE", "ROUTER_TLS_CLIENT_CA_FILE")


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@contextlib.asynccontextmanager
async def started_router(scenario: Scenario, database_url: str | None) -> AsyncIterator[str]:
    """`contact-router serve` as a child process running the scenario's policy at its time
    scale; yields its address once it is SERVING, and stops it (SIGTERM) afterwards.

    A child process, not a task in this event loop, so that the simulated customers and
    agents do not take the router's time slices (both still share the machine)."""
    port = _free_port()
    env = {
        **os.environ,
        **scenario.server_env(),
        "ROUTER_HOST": "127.0.0.1",
        "ROUTER_PORT": str(port),
        "ROUTER_METRICS_PORT": "off",
        "ROUTER_LOG_FORMAT": "json",
        "ROUTER_LOG_LEVEL": "warning",
    }
    # On loopback, for this run's simulator only: no tokens, no TLS.
    for name in ("ROUTER_CONFIG_FILE", "ROUTER_TOKENS_FILE", *TLS_SETTINGS):
        env.pop(name, None)
    url = database_url or os.environ.get("ROUTER_DATABASE_URL", "")
    env["ROUTER_DATABASE_URL"] = url
    if not url:
        env["ROUTER_DATA_DIR"] = ".data/simulation"  # the child makes it absolute
    with tempfile.TemporaryFile() as log:
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "router.cli", "serve", env=env, stderr=log
        )
        address = f"127.0.0.1:{port}"
        try:
            await _wait_serving(address, process, log)
            yield address
        finally:
            if process.returncode is None:
                process.terminate()
                try:
                    await asyncio.wait_for(process.wait(), 30)
                except TimeoutError:
                    process.kill()
                    await process.wait()


def last_words(log: str) -> str:
    """The last line of the router's JSON log, as a person reads it: its event and the
    error it names."""
    lines = [line for line in log.splitlines() if line.strip()]
    if not lines:
        return "it logged nothing"
    try:
        entry = json.loads(lines[-1])
    except ValueError:
        return lines[-1][-300:]
    if not isinstance(entry, dict):
        return lines[-1][-300:]
    said = [str(entry.get("event", ""))]
    said += [f"{k}={entry[k]}" for k in ("error", "message", "reason") if k in entry]
    return " ".join(said)[-300:]


async def _wait_serving(address: str, process: asyncio.subprocess.Process, log: IO[bytes]) -> None:
    deadline = time.monotonic() + START_TIMEOUT
    async with grpc.aio.insecure_channel(address) as channel:
        health = health_pb2_grpc.HealthStub(channel)
        while time.monotonic() < deadline:
            if process.returncode is not None:
                break
            with contextlib.suppress(grpc.aio.AioRpcError):
                answer = await health.Check(health_pb2.HealthCheckRequest(), timeout=1.0)
                if answer.status == health_pb2.HealthCheckResponse.SERVING:
                    return
            await asyncio.sleep(0.2)
    log.seek(0)
    said = last_words(log.read().decode(errors="replace"))
    if process.returncode is not None:
        raise RouterError(
            f"the router simulate started exited with code {process.returncode}: {said}"
        )
    raise RouterError(
        f"the router simulate started at {address} was not serving after {START_TIMEOUT:.0f} s "
        f"(another router holding the database's active lock keeps it a standby): {said}"
    )
