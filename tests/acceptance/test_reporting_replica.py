"""Reports off the primary: with ROUTER_REPORTING_DATABASE_URL the reporting RPCs read a
real streaming replica (a primary and a standby this module starts with initdb,
pg_ctl and pg_basebackup on free ports), writes stay on the primary, and a replica
that cannot be reached is named, not hidden."""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import asyncpg
import grpc
import pytest
import structlog
from contactrouter.v1 import contact_router_pb2 as pb
from contactrouter.v1 import contact_router_pb2_grpc as pb_grpc
from google.protobuf.timestamp_pb2 import Timestamp

from router.domain import RoutingPolicy
from router.server import start_router
from router.store.migrations import migrate
from tests.acceptance.conftest import details, eventually, rpc_error, submit
from tests.acceptance.ports import free_port

TOOLS = ("initdb", "pg_ctl", "pg_basebackup")
DATABASE = "router_replica"


def postgres_binaries() -> Path | None:
    """A folder with initdb, pg_ctl and pg_basebackup: the machine's PostgreSQL 15 first."""
    folders = [
        Path("/usr/lib/postgresql/15/bin"),
        *sorted(Path("/usr/lib/postgresql").glob("*/bin")),
    ]
    for folder in folders:
        if all((folder / tool).is_file() for tool in TOOLS):
            return folder
    return None


class ReplicatedPair:
    """A primary and its streaming replica in a temporary folder, each on a free port.
    PostgreSQL refuses to run as root: as root, its tools run as the `postgres` user."""

    def __init__(self, binaries: Path, user: str | None) -> None:
        self.binaries = binaries
        self.user = user
        self.folder = Path(tempfile.mkdtemp(prefix="router-replica-"))
        if user is not None:
            shutil.chown(self.folder, user)
        self.ports = {"primary": free_port(), "replica": free_port()}
        self.started: list[str] = []

    def url(self, which: str, database: str = "postgres") -> str:
        return f"postgresql://postgres@127.0.0.1:{self.ports[which]}/{database}"

    def run(self, tool: str, *args: str) -> None:
        done = subprocess.run(
            [str(self.binaries / tool), *args],
            user=self.user,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        if done.returncode != 0:
            raise AssertionError(f"{tool} {' '.join(args)} failed: {done.stdout}{done.stderr}")

    def configure(self, which: str, *lines: str) -> None:
        with (self.folder / which / "postgresql.conf").open("a") as conf:
            conf.write("\n".join(lines) + "\n")

    def start(self) -> None:
        primary, replica = self.folder / "primary", self.folder / "replica"
        self.run("initdb", "-D", str(primary), "-U", "postgres", "-A", "trust", "--no-sync")
        self.configure(
            "primary",
            f"port = {self.ports['primary']}",
            "listen_addresses = '127.0.0.1'",
            f"unix_socket_directories = '{self.folder}'",
            "wal_level = replica",
            "max_wal_senders = 4",
            "fsync = off",
            "shared_buffers = 32MB",
        )
        self.pg_ctl("primary", "start")
        self.run(
            "pg_basebackup",
            *("-h", "127.0.0.1", "-p", str(self.ports["primary"]), "-U", "postgres"),
            *("-D", str(replica), "-R", "-X", "stream", "-c", "fast", "--no-sync"),
        )
        # The copy carries the primary's port: the last line of the file wins.
        self.configure("replica", f"port = {self.ports['replica']}", "hot_standby = on")
        self.pg_ctl("replica", "start")

    def pg_ctl(self, which: str, action: str) -> None:
        data = self.folder / which
        if action == "start":
            self.run(
                "pg_ctl",
                "-D",
                str(data),
                "-l",
                str(self.folder / f"{which}.log"),
                "-w",
                "-t",
                "90",
                "start",
            )
            self.started.append(which)
        else:
            self.run("pg_ctl", "-D", str(data), "-m", "immediate", "-w", "stop")

    def stop(self) -> None:
        for which in reversed(self.started):
            with contextlib.suppress(AssertionError):
                self.pg_ctl(which, "stop")
        shutil.rmtree(self.folder, ignore_errors=True)


@pytest.fixture(scope="module")
def pair() -> Iterator[ReplicatedPair]:
    binaries = postgres_binaries()
    if binaries is None:
        pytest.skip(f"no PostgreSQL binaries with {', '.join(TOOLS)} on this machine")
    user = None
    if os.geteuid() == 0:
        try:
            pwd.getpwnam("postgres")
        except KeyError:
            pytest.skip("running as root and there is no postgres user to run PostgreSQL as")
        user = "postgres"
    pair = ReplicatedPair(binaries, user)
    try:
        pair.start()
        yield pair
    finally:
        pair.stop()


@pytest.fixture(scope="module")
async def replicated_database(pair: ReplicatedPair) -> tuple[str, str]:
    """A migrated database on the primary, and its URL on the replica once it is there."""
    admin = await asyncpg.connect(pair.url("primary"))
    try:
        await admin.execute(f'CREATE DATABASE "{DATABASE}"')
    finally:
        await admin.close()
    primary = pair.url("primary", DATABASE)
    connection = await asyncpg.connect(primary)
    try:
        await migrate(connection)
    finally:
        await connection.close()
    replica = pair.url("replica", DATABASE)

    async def replicated() -> bool:
        try:
            connection = await asyncpg.connect(replica)
        except (OSError, asyncpg.PostgresError):
            return False
        try:
            return bool(await connection.fetchval("SELECT to_regclass('contacts') IS NOT NULL"))
        finally:
            await connection.close()

    await eventually(replicated, within=60.0, what="the schema replicated")
    return primary, replica


def stamp(value: datetime) -> Timestamp:
    result = Timestamp()
    result.FromDatetime(value)
    return result


async def offered(reporting: pb_grpc.ReportingServiceAsyncStub) -> int:
    """Contacts the service-level report counts today, give or take two days."""
    now = datetime.now(UTC)
    response = await reporting.GetServiceLevel(
        pb.GetServiceLevelRequest(
            start=stamp(now - timedelta(days=2)),
            end=stamp(now + timedelta(days=2)),
            interval=pb.INTERVAL_LENGTH_DAY,
        )
    )
    return sum(row.offered for row in response.rows)


class TestReadReplica:
    async def test_reports_read_the_replica_and_writes_go_to_the_primary(
        self, replicated_database: tuple[str, str]
    ) -> None:
        """With replay paused on the replica, a contact the primary holds is not in the
        report; once replay resumes, it is. Feedback, a write, lands on the primary."""
        primary_url, replica_url = replicated_database
        with structlog.testing.capture_logs() as lines:
            router = await start_router(
                primary_url, RoutingPolicy(phone_reserve=0), reporting_database_url=replica_url
            )
            try:
                await self.check(router.port, primary_url, replica_url)

                async def logged() -> bool:
                    return any(line["event"] == "reporting_database" for line in lines)

                await eventually(logged, within=30.0, what="the reporting database logged")
            finally:
                await router.stop(grace=1.0)
        found = [line for line in lines if line["event"] == "reporting_database"]
        assert [line["standby"] for line in found] == [True], "it logs the standby it found"

    async def check(self, port: int, primary_url: str, replica_url: str) -> None:
        replica = await asyncpg.connect(replica_url)
        primary = await asyncpg.connect(primary_url)
        try:
            async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
                contacts = pb_grpc.ContactServiceStub(channel)
                reporting = pb_grpc.ReportingServiceStub(channel)
                assert await offered(reporting) == 0

                await replica.execute("SELECT pg_wal_replay_pause()")

                async def paused() -> bool:
                    state = await replica.fetchval("SELECT pg_get_wal_replay_pause_state()")
                    return bool(state == "paused")

                await eventually(paused, within=30.0, what="replay paused on the replica")
                contact = await submit(contacts, "replicated-1")
                on_primary = await primary.fetchval("SELECT count(*) FROM contacts")
                assert on_primary == 1
                assert await offered(reporting) == 0, "the report read the primary"

                await replica.execute("SELECT pg_wal_replay_resume()")

                async def caught_up() -> bool:
                    return await offered(reporting) == 1

                await eventually(caught_up, within=30.0, what="the report to see the contact")

                await contacts.RecordFeedback(
                    pb.RecordFeedbackRequest(
                        contact_id=contact.contact_id, rating=5, comment="quick", source="survey"
                    )
                )
                rating = await primary.fetchval(
                    "SELECT rating FROM contact_feedback WHERE contact_id = $1::uuid",
                    contact.contact_id,
                )
                assert rating == 5
        finally:
            # Replay goes on even if the test failed while it was paused.
            await replica.execute("SELECT pg_wal_replay_resume()")
            await replica.close()
            await primary.close()


class TestUnreachableReplica:
    async def test_says_which_setting_and_routing_goes_on(
        self, database_url: str, policy: RoutingPolicy
    ) -> None:
        """A replica URL nobody answers: the router starts and routes, warns naming the
        setting, and each report is UNAVAILABLE with a message naming it."""
        port = free_port()
        nowhere = f"postgresql://postgres@127.0.0.1:{port}/{DATABASE}"
        with structlog.testing.capture_logs() as lines:
            router = await start_router(database_url, policy, reporting_database_url=nowhere)
            try:
                async with grpc.aio.insecure_channel(f"127.0.0.1:{router.port}") as channel:
                    await submit(pb_grpc.ContactServiceStub(channel), "routed-anyway")
                    error = await rpc_error(offered(pb_grpc.ReportingServiceStub(channel)))

                    async def warned() -> bool:
                        return any(
                            line["event"] == "reporting_database_unavailable" for line in lines
                        )

                    await eventually(warned, within=30.0, what="a warning at start")
            finally:
                await router.stop(grace=1.0)
        assert error.code() == grpc.StatusCode.UNAVAILABLE
        assert "ROUTER_REPORTING_DATABASE_URL" in details(error)
        assert f"127.0.0.1:{port}" in details(error)
        (warning,) = [line for line in lines if line["event"] == "reporting_database_unavailable"]
        assert warning["log_level"] == "warning"
        assert warning["server"] == f"127.0.0.1:{port}"
        assert "ROUTER_REPORTING_DATABASE_URL" in warning["hint"]
