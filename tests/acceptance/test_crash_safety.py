"""SIGKILL the router at random moments under load, restart it, and check the record.

Gateways keep submitting (retrying with the same key whatever failed), agents keep
taking, ending and completing contacts (retrying whatever they were doing), and the
server process is killed several times at seeded random moments. Afterwards, with the
load drained, PostgreSQL must show: every acknowledged contact, with the queued_at it
was acknowledged with; each handled exactly once (one submitted, answered, ended and
completed event); one contact per key; and never two offers of one contact open at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import asyncpg
import grpc
import pytest
from contactrouter.client import connect
from contactrouter.v1 import contact_router_pb2 as pb
from contactrouter.v1 import contact_router_pb2_grpc as pb_grpc

from tests.acceptance.conftest import eventually
from tests.acceptance.ports import free_port
from tests.acceptance.router_process import RouterProcess

SEED = int(os.environ.get("CRASH_TEST_SEED", "20261123"))
KILLS = 4
AGENTS = 3
GATEWAYS = 3
CHANNELS = (pb.CHANNEL_PHONE, pb.CHANNEL_CHAT)
# While a router is down its clients back off; this bounds each attempt.
CALL_TIMEOUT = 3.0
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
OFFER_CLOSERS = {"answered", "declined", "offer_timed_out", "requeued", "abandoned"}


@dataclass
class Acknowledged:
    contact_id: str
    queued_at: int  # nanoseconds since the epoch, as the router answered


@dataclass
class Load:
    """What the clients were told, to compare with what PostgreSQL recorded."""

    acknowledged: dict[str, Acknowledged] = field(default_factory=dict)
    submitting: bool = True
    stopped: asyncio.Event = field(default_factory=asyncio.Event)
    next_key: int = 0

    def key(self) -> str:
        self.next_key += 1
        return f"call-{self.next_key}"


async def gateway(
    contacts: pb_grpc.ContactServiceAsyncStub, load: Load, rng: random.Random
) -> None:
    """Submit contacts one after another; a failed key is retried until acknowledged."""
    while load.submitting:
        key = load.key()
        request = pb.SubmitContactRequest(
            idempotency_key=key, channel=rng.choice(CHANNELS), customer_id=f"c-{key}"
        )
        while True:
            try:
                response = await contacts.SubmitContact(request, timeout=CALL_TIMEOUT)
            except grpc.aio.AioRpcError:
                if load.stopped.is_set():
                    return
                await asyncio.sleep(0.05)  # back off while the router is down
                continue
            queued_at = response.contact.timings.queued_at.ToNanoseconds()
            known = load.acknowledged.get(key)
            assert known is None or known.contact_id == response.contact.contact_id
            load.acknowledged[key] = Acknowledged(response.contact.contact_id, queued_at)
            break
        await asyncio.sleep(rng.uniform(0.0, 0.02))  # an arrival process, not a wait


class Agent:
    """An agent desktop that keeps working across crashes: it signs in again, finishes
    what it had accepted, and retries an accept whose answer it never got."""

    def __init__(self, agent_id: str, agents: pb_grpc.AgentServiceAsyncStub) -> None:
        self.agent_id = agent_id
        self._agents = agents
        self._held: set[str] = set()
        self._accepting: tuple[str, str] | None = None  # (offer_id, contact_id)

    async def work(self, load: Load) -> None:
        while not load.stopped.is_set():
            try:
                await self._session()
            except grpc.aio.AioRpcError:
                await asyncio.sleep(0.05)  # back off while the router is down

    async def _session(self) -> None:
        await self._agents.SignIn(
            pb.SignInRequest(
                agent_id=self.agent_id,
                capacities=[pb.ChannelCapacity(channel=pb.CHANNEL_CHAT, capacity=2)],
            ),
            timeout=CALL_TIMEOUT,
        )
        if self._accepting is not None:
            await self._accept(*self._accepting)
        for contact_id in sorted(self._held):
            await self._finish(contact_id)
        stream = self._agents.StreamOffers(pb.StreamOffersRequest(agent_id=self.agent_id))
        try:
            async for message in stream:
                if message.WhichOneof("event") == "offer":
                    offer = message.offer
                    await self._accept(offer.offer_id, offer.contact.contact_id)
                    if offer.contact.contact_id in self._held:
                        await self._finish(offer.contact.contact_id)
        finally:
            stream.cancel()

    async def _accept(self, offer_id: str, contact_id: str) -> None:
        self._accepting = (offer_id, contact_id)
        request = pb.AcceptOfferRequest(agent_id=self.agent_id, offer_id=offer_id)
        try:
            await self._agents.AcceptOffer(request, timeout=CALL_TIMEOUT)
        except grpc.aio.AioRpcError as error:
            # NOT_FOUND: this router does not know the agent yet (a retry the client's
            # policy took to a router that just took over, before the agent signed in
            # there): sign in again, then retry the accept.
            if error.code() in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.NOT_FOUND):
                raise
            # The offer was withdrawn (a restart put the contact back in the queue).
            self._accepting = None
            return
        self._accepting = None
        self._held.add(contact_id)

    async def _finish(self, contact_id: str) -> None:
        await self._agents.EndContact(
            pb.EndContactRequest(agent_id=self.agent_id, contact_id=contact_id),
            timeout=CALL_TIMEOUT,
        )
        await self._agents.CompleteContact(
            pb.CompleteContactRequest(
                agent_id=self.agent_id, contact_id=contact_id, disposition="resolved"
            ),
            timeout=CALL_TIMEOUT,
        )
        self._held.discard(contact_id)


@pytest.fixture
def address() -> str:
    """One fixed port for every run of the server, as a real deployment has."""
    return f"127.0.0.1:{free_port()}"


@pytest.fixture
def standby_address() -> str:
    """The other fixed port, for a hot standby beside the active router."""
    return f"127.0.0.1:{free_port()}"


class TestKilledUnderLoad:
    @pytest.mark.parametrize("standby", [False, True], ids=["restarted", "hot_standby"])
    async def test_nothing_acknowledged_is_lost_or_doubled(
        self,
        database_url: str,
        address: str,
        standby_address: str,
        db: asyncpg.Connection,
        standby: bool,
    ) -> None:
        """Killed under load: restarted each time, or (`standby`) a hot standby takes
        over from its warm core each time and a new standby starts where the killed
        router was; the clients are given both addresses then."""
        rng = random.Random(SEED)

        def env_at(at: str) -> dict[str, str]:
            return {
                "ROUTER_DATABASE_URL": database_url,
                "ROUTER_PORT": at.rsplit(":", 1)[1],
                "ROUTER_PHONE_RESERVE": "0",
            }

        env = env_at(address)
        load = Load()
        # With both addresses, the client's documented retry policy takes a standby's
        # UNAVAILABLE to the active router (contactrouter.client.connect).
        channel = (
            connect(f"{address},{standby_address}") if standby else connect(address, retry=False)
        )
        contacts = pb_grpc.ContactServiceStub(channel)
        agents = [Agent(f"agent-{n}", pb_grpc.AgentServiceStub(channel)) for n in range(AGENTS)]
        process = await RouterProcess.start(env)
        waiting = None
        if standby:
            waiting = await RouterProcess.start(
                env_at(standby_address), until="standby_waiting_for_active_lock"
            )
        addresses = [address, standby_address]
        gateways = [
            asyncio.create_task(gateway(contacts, load, random.Random(rng.random())))
            for _ in range(GATEWAYS)
        ]
        tasks = [*gateways, *(asyncio.create_task(agent.work(load)) for agent in agents)]
        try:
            for _ in range(KILLS):
                before = len(load.acknowledged)

                async def progressed(before: int = before) -> bool:
                    return len(load.acknowledged) > before + 5

                await eventually(progressed, within=30.0, what="submissions under load")
                await asyncio.sleep(rng.uniform(0.0, 0.5))  # a random moment to crash at
                await process.kill()
                if waiting is None:
                    process = await RouterProcess.start(env)
                    continue
                # The standby takes over; a new standby starts on the killed one's port.
                addresses.reverse()
                process = waiting
                await process.wait_for("router_active", 60.0)
                assert process.event("queue_restored")["warm"] is True, "from its warm core"
                waiting = await RouterProcess.start(
                    env_at(addresses[1]), until="standby_waiting_for_active_lock"
                )
            load.submitting = False
            # Each gateway finishes the key it holds (retrying it until acknowledged).
            await asyncio.wait_for(asyncio.gather(*gateways), 30.0)
            expected = {a.contact_id for a in load.acknowledged.values()}

            async def all_completed() -> bool:
                done = await db.fetchval(
                    "SELECT count(*) FROM contacts WHERE id = ANY($1::uuid[]) "
                    "AND state = 'completed'",
                    list(expected),
                )
                return bool(done == len(expected))

            await eventually(all_completed, within=60.0, what="every contact completed")
        finally:
            load.stopped.set()
            for task in tasks:
                task.cancel()
            for task in tasks:
                with contextlib.suppress(asyncio.CancelledError, grpc.aio.AioRpcError):
                    await task
            await channel.close()
            await process.stop()
            if waiting is not None:
                await waiting.stop()

        assert len(load.acknowledged) > KILLS * 5
        rows = await db.fetch("SELECT id::text, idempotency_key, queued_at FROM contacts")
        recorded = {r["idempotency_key"]: r for r in rows}
        assert len(recorded) == len(rows), "one contact per key"
        for key, acknowledged in load.acknowledged.items():
            row = recorded[key]
            assert row["id"] == acknowledged.contact_id
            queued_us = (row["queued_at"] - EPOCH) // timedelta(microseconds=1)
            assert queued_us == acknowledged.queued_at // 1000, key

        events = await db.fetch(
            "SELECT contact_id::text, kind, reason FROM contact_events ORDER BY contact_id, id"
        )
        restarts = sum(1 for e in events if e["reason"] == "restart")
        print(
            f"\nseed {SEED}: {KILLS} kills, {len(load.acknowledged)} contacts acknowledged, "
            f"{len(events)} events, {restarts} offers returned to the queue by a restart"
        )
        by_contact: dict[str, list[str]] = {}
        for event in events:
            by_contact.setdefault(event["contact_id"], []).append(event["kind"])
        for acknowledged in load.acknowledged.values():
            kinds = by_contact[acknowledged.contact_id]
            for once in ("submitted", "answered", "ended", "completed"):
                assert kinds.count(once) == 1, (acknowledged.contact_id, kinds)
            offer_open = False
            for kind in kinds:
                if kind == "offered":
                    assert not offer_open, ("offered twice at once", kinds)
                    offer_open = True
                elif kind in OFFER_CLOSERS:
                    offer_open = False
