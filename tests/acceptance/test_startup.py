"""A router that cannot start says why in one line (a StartupError), and leaves nothing
behind: no port taken, no connection open.

Issue 14, items 1 and 6: a second router on a busy port used to share it silently
(gRPC sets SO_REUSEPORT); a busy metrics port, a missing database, an unknown user or an
unreachable server ended in a driver traceback.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import socket
import sys
from collections.abc import Iterator
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import pytest

from router.domain import RoutingPolicy
from router.errors import StartupError
from router.server import RunningRouter, start_router
from router.store.database_url import with_database
from tests.acceptance.ports import free_port
from tests.acceptance.router_process import START_TIMEOUT, RouterProcess
from tests.conftest import Graveyard, created_database


@contextlib.contextmanager
def listening_socket() -> Iterator[int]:
    """A port some other program listens on (no SO_REUSEPORT, like most programs)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        yield int(taken.getsockname()[1])


async def nobody_listens(port: int) -> bool:
    try:
        _, writer = await asyncio.open_connection("127.0.0.1", port)
    except OSError:
        return True
    writer.close()
    return False


def with_user(url: str, user: str) -> str:
    parts = urlsplit(url)
    host = parts.netloc.rpartition("@")[2]
    return urlunsplit(parts._replace(netloc=f"{user}@{host}"))


async def connections_to(server_url: str, database_url: str) -> int:
    """Sessions open on the database of `database_url` (the test's own)."""
    admin = await asyncpg.connect(server_url)
    try:
        count = await admin.fetchval(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = $1",
            urlsplit(database_url).path.lstrip("/"),
        )
        return int(count)
    finally:
        await admin.close()


class TestPorts:
    async def test_a_second_router_on_the_same_port_is_refused(self, database_url: str) -> None:
        """With one router on a port, a second on that port raises StartupError naming
        the port instead of sharing it (SO_REUSEPORT)."""
        first = await start_router(database_url, RoutingPolicy(), "127.0.0.1", 0)
        try:
            with pytest.raises(StartupError) as refused:
                await start_router(database_url, RoutingPolicy(), "127.0.0.1", first.port)
        finally:
            await first.stop(grace=0)
        message = str(refused.value)
        assert f"127.0.0.1:{first.port}" in message
        assert "in use" in message
        assert "\n" not in message

    async def test_no_one_can_join_the_routers_port(self, router_server: RunningRouter) -> None:
        """The router binds its port exclusively: a listener asking for SO_REUSEPORT (as
        gRPC does by default) cannot share it and take some of its connections."""
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as joiner:
            joiner.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
            with pytest.raises(OSError, match="in use"):
                joiner.bind(("127.0.0.1", router_server.port))

    async def test_a_port_another_program_holds_is_refused(self, database_url: str) -> None:
        """Whoever holds the gRPC port, the router does not start beside it, and the
        metrics port it had opened is closed again."""
        metrics_port = free_port()
        with (
            listening_socket() as port,
            pytest.raises(StartupError, match=f"127.0.0.1:{port} is in use"),
        ):
            await start_router(
                database_url, RoutingPolicy(), "127.0.0.1", port, metrics_port=metrics_port
            )
        assert await nobody_listens(metrics_port)

    async def test_a_busy_metrics_port_is_refused(self, server_url: str, database_url: str) -> None:
        """A busy metrics port is one line naming it, not an OSError traceback, and the
        router's database connections are closed again."""
        with listening_socket() as port, pytest.raises(StartupError) as refused:
            await start_router(database_url, RoutingPolicy(), "127.0.0.1", 0, metrics_port=port)
        message = str(refused.value)
        assert f"metrics port 127.0.0.1:{port} is in use" in message
        assert "ROUTER_METRICS_PORT" in message
        assert await connections_to(server_url, database_url) == 0


class TestDatabase:
    async def test_a_missing_database_is_named(self, server_url: str) -> None:
        """A database that does not exist: what is missing and how to create it."""
        url = with_database(server_url, "no_such_router_db")
        with pytest.raises(StartupError) as refused:
            await start_router(url, RoutingPolicy())
        message = str(refused.value)
        assert '"no_such_router_db" does not exist' in message
        assert "CREATE DATABASE" in message
        assert "ROUTER_DATABASE_URL" in message

    async def test_an_unknown_user_is_named(self, server_url: str) -> None:
        """A user PostgreSQL refuses: the user named, the setting to fix."""
        with pytest.raises(StartupError) as refused:
            await start_router(with_user(server_url, "no_such_router_role"), RoutingPolicy())
        message = str(refused.value)
        assert "no_such_router_role" in message
        assert "ROUTER_DATABASE_URL" in message

    async def test_an_unreachable_server_is_named(self) -> None:
        """Nobody listening where the URL points: where it looked, what to check."""
        port = free_port()
        url = f"postgresql://router:secret-password@127.0.0.1:{port}/contact_router"
        with pytest.raises(StartupError) as refused:
            await start_router(url, RoutingPolicy())
        message = str(refused.value)
        assert f"127.0.0.1:{port}" in message
        assert "ROUTER_DATABASE_URL" in message
        assert "secret-password" not in message


async def serve_failing(env: dict[str, str]) -> tuple[int, list[str]]:
    """Run `contact-router serve` expecting it to stop by itself: its exit status and
    its stderr lines."""
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "router.cli",
        "serve",
        env={**os.environ, "ROUTER_LOG_FORMAT": "json", "ROUTER_METRICS_PORT": "off", **env},
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        _, err = await asyncio.wait_for(process.communicate(), START_TIMEOUT)
    except TimeoutError:
        process.kill()
        await process.wait()
        raise AssertionError("contact-router serve did not stop by itself") from None
    assert process.returncode is not None
    return process.returncode, err.decode().splitlines()


def not_json(lines: list[str]) -> list[str]:
    foreign = []
    for line in lines:
        try:
            json.loads(line)
        except json.JSONDecodeError:
            foreign.append(line)
    return foreign


class TestServeProcess:
    async def test_a_second_serve_on_a_busy_port_exits_with_one_line(
        self, database_url: str, server_url: str, template_database: str, graveyard: Graveyard
    ) -> None:
        """`contact-router serve` on the port of a running router (another database):
        exit status 1 and one line naming the port, besides the router's JSON log."""
        first = await RouterProcess.start({"ROUTER_DATABASE_URL": database_url})
        try:
            async with created_database(
                server_url, "router_other", template_database, graveyard
            ) as name:
                status, lines = await serve_failing(
                    {
                        "ROUTER_DATABASE_URL": with_database(server_url, name),
                        "ROUTER_PORT": str(first.port),
                    }
                )
        finally:
            await first.stop()
        assert status == 1, lines
        assert not_json(lines) == [lines[-1]], lines
        assert lines[-1].startswith("contact-router: ")
        assert f"127.0.0.1:{first.port} is in use" in lines[-1]

    async def test_a_missing_database_exits_with_one_line(self, server_url: str) -> None:
        """A database that does not exist: one line, exit status 1, no traceback."""
        url = with_database(server_url, "no_such_router_db")
        status, lines = await serve_failing({"ROUTER_DATABASE_URL": url, "ROUTER_PORT": "0"})
        assert status == 1, lines
        assert not_json(lines) == [lines[-1]], lines
        assert '"no_such_router_db" does not exist' in lines[-1]
