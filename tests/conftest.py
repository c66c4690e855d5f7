"""Shared fixtures: a real PostgreSQL (the machine's, or an embedded one) and a real
router serving gRPC on an ephemeral port.

Each test that needs a database gets its own, created from a template that was
migrated once per session, so tests never see each other's rows. A database a test is
done with is dropped in the background (Graveyard), several at a time.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import tempfile
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import asyncpg
import grpc
import pytest
from contactrouter.v1 import contact_router_pb2_grpc as pb_grpc
from hypothesis import settings

from router.domain import RoutingPolicy
from router.server import RunningRouter, start_router
from router.store.database_url import with_database
from router.store.embedded import EmbeddedPostgres
from router.store.migrations import migrate

# An example is judged by what it asserts, never by how long it took: hypothesis's
# default 200 ms deadline failed test_contact_copy on a loaded machine (CI shares two
# cores), where the same examples pass. A test may still set a deadline of its own.
settings.register_profile("contact-router", deadline=None)
settings.load_profile("contact-router")


EMBEDDED = pytest.StashKey[tuple[EmbeddedPostgres, tempfile.TemporaryDirectory[str]]]()


@pytest.hookimpl(tryfirst=True)
def pytest_sessionstart(session: pytest.Session) -> None:
    """Under pytest-xdist (`-n`) without ROUTER_TEST_DATABASE_URL, start one embedded
    PostgreSQL for the whole run and point ROUTER_TEST_DATABASE_URL at it. This runs in
    the controller before it starts its workers (tryfirst: before xdist's own hook), so
    the workers inherit the URL and share the server rather than start one each."""
    if (
        os.environ.get("ROUTER_TEST_DATABASE_URL")
        or hasattr(session.config, "workerinput")
        or not session.config.getoption("numprocesses", None)
    ):
        return
    folder = tempfile.TemporaryDirectory(prefix="router-test-pg-")
    embedded = EmbeddedPostgres(Path(folder.name) / "pg")
    try:
        os.environ["ROUTER_TEST_DATABASE_URL"] = embedded.start()
    except BaseException:
        folder.cleanup()
        raise
    session.config.stash[EMBEDDED] = (embedded, folder)


def pytest_unconfigure(config: pytest.Config) -> None:
    """Stop the embedded PostgreSQL pytest_sessionstart started, if it did."""
    started = config.stash.get(EMBEDDED, None)
    if started is None:
        return
    embedded, folder = started
    del config.stash[EMBEDDED]
    os.environ.pop("ROUTER_TEST_DATABASE_URL", None)
    try:
        embedded.stop()
    finally:
        folder.cleanup()


@pytest.fixture(scope="session")
def server_url() -> Iterator[str]:
    """ROUTER_TEST_DATABASE_URL (the machine's PostgreSQL, or the run's embedded one
    under xdist), else an embedded PostgreSQL for this session."""
    url = os.environ.get("ROUTER_TEST_DATABASE_URL")
    if url:
        yield url
        return
    with tempfile.TemporaryDirectory(prefix="router-test-pg-") as folder:
        embedded = EmbeddedPostgres(Path(folder) / "pg")
        yield embedded.start()
        embedded.stop()


class Graveyard:
    """Drops the databases tests are done with, in the background and several at once.

    PostgreSQL 15 makes every DROP DATABASE wait for a checkpoint of the whole server
    (0.1 to 3 s on the shared machine, each test paid one in its teardown), but drops
    that wait together share a checkpoint or two. So the dead wait until there are
    BATCH of them, then go AT_ONCE at a time while the next tests run. A database is
    buried only once its test is over; the session ends after the last drop, and fails
    if one could not be dropped."""

    BATCH = 12
    """Buried databases that start a dig (each takes its template's 7.5 MB on disk)."""
    AT_ONCE = 6
    """Drops in flight together: each takes a connection of its own, and the server's
    connections are shared with every test and everyone else on the machine."""

    def __init__(self, server_url: str) -> None:
        self._server_url = server_url
        self._pending: list[str] = []
        self._failures: list[str] = []
        self._digger: asyncio.Task[None] | None = None

    def bury(self, name: str) -> None:
        """Drop `name` soon (with any connection still open to it)."""
        self._pending.append(name)
        if len(self._pending) >= self.BATCH:
            self._dig_soon()

    async def close(self) -> None:
        """Drop every database still buried; fail naming those that could not be."""
        self._dig_soon()
        while self._digger is not None and not self._digger.done():
            await self._digger
        if self._failures:
            raise AssertionError("databases not dropped:\n" + "\n".join(self._failures))

    def _dig_soon(self) -> None:
        if self._digger is None or self._digger.done():
            self._digger = asyncio.get_running_loop().create_task(self._dig())

    async def _dig(self) -> None:
        slots = asyncio.Semaphore(self.AT_ONCE)
        while self._pending:
            batch, self._pending = self._pending, []
            await asyncio.gather(*(self._drop(name, slots) for name in batch))

    async def _drop(self, name: str, slots: asyncio.Semaphore) -> None:
        async with slots:
            try:
                admin = await asyncpg.connect(self._server_url)
                try:
                    await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
                finally:
                    await admin.close()
            except (OSError, asyncpg.PostgresError) as error:
                self._failures.append(f"{name}: {error!r}")


@pytest.fixture(scope="session")
async def graveyard(server_url: str) -> AsyncIterator[Graveyard]:
    buried = Graveyard(server_url)
    try:
        yield buried
    finally:
        await buried.close()


@contextlib.asynccontextmanager
async def created_database(
    server_url: str,
    prefix: str,
    template: str | None = None,
    graveyard: Graveyard | None = None,
) -> AsyncIterator[str]:
    """A new database `prefix_<random>` (a copy of `template`, if given): its name.

    It is dropped on exit, along with any connection still open to it: at once, or by
    `graveyard` in the background."""
    name = f"{prefix}_{uuid.uuid4().hex[:12]}"
    copy = f' TEMPLATE "{template}"' if template else ""
    admin = await asyncpg.connect(server_url)
    try:
        await admin.execute(f'CREATE DATABASE "{name}"{copy}')
    finally:
        await admin.close()
    try:
        yield name
    finally:
        if graveyard is not None:
            graveyard.bury(name)
        else:
            admin = await asyncpg.connect(server_url)
            try:
                await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            finally:
                await admin.close()


@pytest.fixture(scope="session")
async def template_database(server_url: str, graveyard: Graveyard) -> AsyncIterator[str]:
    """A database migrated once, cloned for each test (dropped with the last of them)."""
    async with created_database(server_url, "router_template", graveyard=graveyard) as name:
        connection = await asyncpg.connect(with_database(server_url, name))
        try:
            await migrate(connection)
        finally:
            await connection.close()
        yield name


@pytest.fixture
async def database_url(
    server_url: str, template_database: str, graveyard: Graveyard
) -> AsyncIterator[str]:
    """A fresh, migrated database of this test's own."""
    async with created_database(server_url, "router_test", template_database, graveyard) as name:
        yield with_database(server_url, name)


@pytest.fixture
async def db(database_url: str) -> AsyncIterator[asyncpg.Connection]:
    """A direct connection to the test's database, to check what was recorded."""
    connection = await asyncpg.connect(database_url)
    try:
        yield connection
    finally:
        await connection.close()


@pytest.fixture
def policy() -> RoutingPolicy:
    """Defaults, but no phone reserve so that single-agent tests route everything."""
    return RoutingPolicy(phone_reserve=0)


@pytest.fixture
async def router_server(database_url: str, policy: RoutingPolicy) -> AsyncIterator[RunningRouter]:
    """A real router on an ephemeral loopback port."""
    running = await start_router(database_url, policy, "127.0.0.1", 0)
    try:
        yield running
    finally:
        await running.stop(grace=1.0)


@pytest.fixture
async def channel(router_server: RunningRouter) -> AsyncIterator[grpc.aio.Channel]:
    async with grpc.aio.insecure_channel(f"127.0.0.1:{router_server.port}") as channel:
        yield channel


@pytest.fixture
def contacts(channel: grpc.aio.Channel) -> pb_grpc.ContactServiceAsyncStub:
    return pb_grpc.ContactServiceStub(channel)


@pytest.fixture
def agents(channel: grpc.aio.Channel) -> pb_grpc.AgentServiceAsyncStub:
    return pb_grpc.AgentServiceStub(channel)


@pytest.fixture
def reporting(channel: grpc.aio.Channel) -> pb_grpc.ReportingServiceAsyncStub:
    return pb_grpc.ReportingServiceStub(channel)
