"""The environment gRPC core reads once, at its import, as router/__init__.py sets it.

Each test runs a fresh interpreter: in this one, grpc is long imported."""

from __future__ import annotations

import os
import pwd
import subprocess
import sys

import pytest

_SETTINGS = ("GRPC_VERBOSITY", "GRPC_ENABLE_FORK_SUPPORT")

# Records the settings as they are when grpc is first imported, then imports the
# command's module (which imports grpc).
_AT_GRPC_IMPORT = """
import json, os, sys

class Watch:
    def find_spec(self, name, path=None, target=None):
        if name == "grpc" and "seen" not in Watch.__dict__:
            Watch.seen = {key: os.environ.get(key) for key in sys.argv[1:]}
        return None

sys.meta_path.insert(0, Watch())
import router.cli
print(json.dumps(getattr(Watch, "seen", None)))
"""

# Serves gRPC with four callers busy on it, and meanwhile forks as another user (a
# plain fork, as the embedded PostgreSQL's start of pg_ctl does): prints how many of
# the children died of a signal.
_FORKS_WHILE_SERVING = """
import asyncio, subprocess, sys
import router
import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc

async def main(user: str, forks: int) -> None:
    server = grpc.aio.server()
    health_pb2_grpc.add_HealthServicer_to_server(health.aio.HealthServicer(), server)
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    done = asyncio.Event()

    async def caller() -> None:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
            stub = health_pb2_grpc.HealthStub(channel)
            while not done.is_set():
                await stub.Check(health_pb2.HealthCheckRequest())

    def fork() -> int:
        return sum(subprocess.run(["/bin/true"], user=user).returncode < 0 for _ in range(forks))

    callers = [asyncio.create_task(caller()) for _ in range(4)]
    killed = await asyncio.to_thread(fork)
    done.set()
    await asyncio.gather(*callers)
    await server.stop(None)
    print(killed)

asyncio.run(main(sys.argv[1], int(sys.argv[2])))
"""


def _run(script: str, *args: str, env: dict[str, str]) -> str:
    result = subprocess.run(
        [sys.executable, "-c", script, *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    return result.stdout.strip().splitlines()[-1]


def _unset() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if k not in _SETTINGS}


class TestAtGrpcImport:
    def test_the_router_sets_both_before_grpc_is_imported(self) -> None:
        """gRPC core's own stderr lines (not JSON) are limited to errors, and its fork
        handlers are off, by the time `contact-router` first imports grpc."""
        seen = _run(_AT_GRPC_IMPORT, *_SETTINGS, env=_unset())
        assert seen == '{"GRPC_VERBOSITY": "ERROR", "GRPC_ENABLE_FORK_SUPPORT": "false"}'

    def test_the_operators_values_are_kept(self) -> None:
        env = {**_unset(), "GRPC_VERBOSITY": "debug", "GRPC_ENABLE_FORK_SUPPORT": "true"}
        seen = _run(_AT_GRPC_IMPORT, *_SETTINGS, env=env)
        assert seen == '{"GRPC_VERBOSITY": "debug", "GRPC_ENABLE_FORK_SUPPORT": "true"}'


@pytest.mark.skipif(os.geteuid() != 0, reason="forking as another user needs root")
def test_a_fork_as_another_user_while_grpc_is_busy_survives() -> None:
    """With gRPC's fork handlers on, about 4 in 10 of these children died of SIGSEGV
    before they could exec (grpcio 1.85): the embedded PostgreSQL's start failed so in
    CI. None may die."""
    user = pwd.getpwuid(65534).pw_name
    assert _run(_FORKS_WHILE_SERVING, user, "200", env=_unset()) == "0"
