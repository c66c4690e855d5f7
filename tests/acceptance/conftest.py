"""Helpers for end-to-end tests: waiting without sleeping, offer streams that are always
cancelled, and snapshots of what a refused request must leave untouched."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import TypeAlias

import asyncpg
import grpc
import pytest
from contactrouter.v1 import contact_router_pb2 as pb
from contactrouter.v1 import contact_router_pb2_grpc as pb_grpc
from google.rpc.error_details_pb2 import ErrorInfo
from grpc_status import rpc_status

from router.domain import RoutingPolicy
from router.server import RunningRouter, start_router
from router.store.database_url import with_database
from tests.conftest import Graveyard, created_database

OfferCall: TypeAlias = grpc.aio.UnaryStreamCall[pb.StreamOffersRequest, pb.StreamOffersResponse]

TABLES = ("contacts", "contact_events", "agent_status_log", "agents")


async def eventually(
    predicate: Callable[[], Awaitable[bool]], within: float = 5.0, what: str = "condition"
) -> None:
    """Poll `predicate` every 10 ms until it holds; fail after `within` seconds."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    while True:
        if await predicate():
            return
        if loop.time() > deadline:
            raise AssertionError(f"{what} did not hold within {within} s")
        await asyncio.sleep(0.01)


async def next_message(stream: OfferCall, within: float = 5.0) -> pb.StreamOffersResponse:
    """The next message on an offer stream, or a failure if none comes in time."""
    message = await asyncio.wait_for(stream.read(), within)
    assert isinstance(message, pb.StreamOffersResponse), "the offer stream ended"
    return message


async def stream_ended(stream: OfferCall, within: float = 5.0) -> bool:
    """Whether the server ended the stream (the next read is EOF), waiting at most `within`."""
    return await asyncio.wait_for(stream.read(), within) is grpc.aio.EOF


async def next_offer(stream: OfferCall, within: float = 5.0) -> pb.Offer:
    message = await next_message(stream, within)
    assert message.WhichOneof("event") == "offer", f"expected an offer, got {message}"
    return message.offer


async def next_withdrawal(stream: OfferCall, within: float = 5.0) -> pb.OfferWithdrawn:
    message = await next_message(stream, within)
    assert message.WhichOneof("event") == "offer_withdrawn", f"expected a withdrawal: {message}"
    return message.offer_withdrawn


async def rpc_error(call: Awaitable[object]) -> grpc.aio.AioRpcError:
    """The error a call fails with (the test fails if it succeeds)."""
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await call
    return caught.value


def details(error: grpc.aio.AioRpcError) -> str:
    return error.details() or ""


def reason_of(error: grpc.aio.AioRpcError) -> str:
    """The google.rpc.ErrorInfo reason the router attached to `error`."""
    status = rpc_status.from_call(error)
    assert status is not None, "no rich status"
    for detail in status.details:
        if detail.Is(ErrorInfo.DESCRIPTOR):
            info = ErrorInfo()
            detail.Unpack(info)
            return info.reason
    raise AssertionError("no ErrorInfo")


async def submit(
    contacts: pb_grpc.ContactServiceAsyncStub,
    key: str,
    channel: pb.Channel.ValueType = pb.CHANNEL_PHONE,
    skills: tuple[str, ...] = (),
    customer_id: str = "",
) -> pb.Contact:
    response = await contacts.SubmitContact(
        pb.SubmitContactRequest(
            idempotency_key=key,
            channel=channel,
            # One customer per contact unless told: no one returns to a previous agent.
            customer_id=customer_id or f"customer-{key}",
            required_skills=skills,
        )
    )
    return response.contact


async def contact_state(
    contacts: pb_grpc.ContactServiceAsyncStub, contact_id: str
) -> pb.GetContactResponse:
    return await contacts.GetContact(pb.GetContactRequest(contact_id=contact_id))


async def wait_for_state(
    contacts: pb_grpc.ContactServiceAsyncStub,
    contact_id: str,
    state: pb.ContactState.ValueType,
    within: float = 5.0,
) -> pb.GetContactResponse:
    """Poll GetContact until the contact is in `state`."""
    seen: list[pb.GetContactResponse] = []

    async def reached() -> bool:
        seen.append(await contact_state(contacts, contact_id))
        return seen[-1].contact.state == state

    await eventually(reached, within, f"contact {contact_id} in state {state}")
    return seen[-1]


async def handle(
    agents: pb_grpc.AgentServiceAsyncStub,
    agent_id: str,
    offer: pb.Offer,
    disposition: str = "order-status",
) -> pb.Contact:
    """Accept, end and complete an offered contact; the completed contact."""
    await agents.AcceptOffer(pb.AcceptOfferRequest(agent_id=agent_id, offer_id=offer.offer_id))
    return await finish(agents, agent_id, offer.contact.contact_id, disposition)


async def finish(
    agents: pb_grpc.AgentServiceAsyncStub,
    agent_id: str,
    contact_id: str,
    disposition: str = "order-status",
) -> pb.Contact:
    """End and complete a connected contact; the completed contact."""
    await agents.EndContact(pb.EndContactRequest(agent_id=agent_id, contact_id=contact_id))
    done = await agents.CompleteContact(
        pb.CompleteContactRequest(agent_id=agent_id, contact_id=contact_id, disposition=disposition)
    )
    return done.contact


async def status_log(db: asyncpg.Connection, agent_id: str) -> list[asyncpg.Record]:
    return list(
        await db.fetch(
            "SELECT kind, status, reason, connected FROM agent_status_log "
            "WHERE agent_id = $1 ORDER BY id",
            agent_id,
        )
    )


async def event_kinds(db: asyncpg.Connection, contact_id: str) -> list[str]:
    rows = await db.fetch(
        "SELECT kind FROM contact_events WHERE contact_id = $1::uuid ORDER BY id", contact_id
    )
    return [r["kind"] for r in rows]


async def recorded(db: asyncpg.Connection, contact_id: str, *kinds: str) -> None:
    """Wait until the contact's recorded events are `kinds`. Offers and withdrawals
    reach the agent before the commit that records them, so a test that saw one on a
    stream waits here before reading PostgreSQL."""
    seen: list[list[str]] = []

    async def written() -> bool:
        seen.append(await event_kinds(db, contact_id))
        return seen[-1] == list(kinds)

    try:
        await eventually(written, what=f"events {kinds} recorded")
    except AssertionError:
        raise AssertionError(f"recorded {seen[-1]}, expected {list(kinds)}") from None


async def row_counts(db: asyncpg.Connection) -> dict[str, int]:
    return {table: await db.fetchval(f"SELECT count(*) FROM {table}") for table in TABLES}


async def queue_view(
    reporting: pb_grpc.ReportingServiceAsyncStub,
) -> tuple[tuple[tuple[int, int, int], ...], tuple[int, ...]]:
    """GetQueueStatus without what moves by itself (the clock and the oldest wait)."""
    status = await reporting.GetQueueStatus(pb.GetQueueStatusRequest())
    a = status.agents
    return (
        tuple((c.channel, c.waiting, c.offered) for c in status.channels),
        (a.idle, a.busy, a.away, a.disconnected, a.signed_in),
    )


class OfferStreams:
    """Opens agents' offer streams, waits until each agent is present, and closes every
    stream it opened when the test ends."""

    def __init__(self, agents: pb_grpc.AgentServiceAsyncStub, db: asyncpg.Connection) -> None:
        self._agents = agents
        self._db = db
        self.opened: list[tuple[str, OfferCall]] = []

    async def open(self, agent_id: str, *, wait_connected: bool = True) -> OfferCall:
        """Open `agent_id`'s stream; by default return once the router has it present."""
        before = await self._count(agent_id, "connected")
        stream = self._agents.StreamOffers(pb.StreamOffersRequest(agent_id=agent_id))
        self.opened.append((agent_id, stream))
        if wait_connected:

            async def connected() -> bool:
                return await self._count(agent_id, "connected") > before

            await eventually(connected, what=f"agent {agent_id} connected")
        return stream

    async def lose(self, stream: OfferCall, agent_id: str) -> None:
        """Cancel a stream as a crashed desktop would and wait until the router noticed."""
        before = await self._count(agent_id, "disconnected")
        stream.cancel()

        async def disconnected() -> bool:
            return await self._count(agent_id, "disconnected") > before

        await eventually(disconnected, what=f"agent {agent_id} disconnected")

    async def close_all(self) -> None:
        """Cancel every stream and wait (a little, at most) until the router has recorded
        each agent as gone, so that the router is not stopped in the middle of it."""
        for _, stream in self.opened:
            stream.cancel()
        for agent_id in {agent_id for agent_id, _ in self.opened}:

            async def gone(agent_id: str = agent_id) -> bool:
                present: bool | None = await self._db.fetchval(
                    "SELECT connected FROM agent_status_log WHERE agent_id = $1 "
                    "ORDER BY id DESC LIMIT 1",
                    agent_id,
                )
                return not present

            with contextlib.suppress(AssertionError, asyncpg.PostgresError, OSError):
                await eventually(gone, within=2.0, what=f"agent {agent_id} gone")

    async def _count(self, agent_id: str, kind: str) -> int:
        count: int = await self._db.fetchval(
            "SELECT count(*) FROM agent_status_log WHERE agent_id = $1 AND kind = $2",
            agent_id,
            kind,
        )
        return count


@pytest.fixture
async def offer_streams(
    agents: pb_grpc.AgentServiceAsyncStub, db: asyncpg.Connection
) -> AsyncIterator[OfferStreams]:
    streams = OfferStreams(agents, db)
    try:
        yield streams
    finally:
        await streams.close_all()


async def sign_in(
    agents: pb_grpc.AgentServiceAsyncStub,
    agent_id: str,
    skills: tuple[str, ...] = (),
    capacities: dict[pb.Channel.ValueType, int] | None = None,
    status: pb.AgentStatus.ValueType = pb.AGENT_STATUS_UNSPECIFIED,
) -> pb.Agent:
    response = await agents.SignIn(
        pb.SignInRequest(
            agent_id=agent_id,
            skills=skills,
            capacities=[
                pb.ChannelCapacity(channel=c, capacity=n) for c, n in (capacities or {}).items()
            ],
            initial_status=status,
        )
    )
    return response.agent


async def offered_call(
    contacts: pb_grpc.ContactServiceAsyncStub,
    agents: pb_grpc.AgentServiceAsyncStub,
    streams: OfferStreams,
) -> tuple[OfferCall, pb.Contact, pb.Offer]:
    """Sign Alice in, open her offer stream, submit call-1 and read its offer to her:
    her stream, the submitted contact and the offer."""
    await sign_in(agents, "alice")
    stream = await streams.open("alice")
    contact = await submit(contacts, "call-1")
    offer = await next_offer(stream)
    return stream, contact, offer


# A router shared by the tests of one module, for tests that only read or that must
# change nothing (each such test checks that itself): a database per test costs more
# than the test.


@pytest.fixture(scope="module")
async def module_database_url(
    server_url: str, template_database: str, graveyard: Graveyard
) -> AsyncIterator[str]:
    async with created_database(server_url, "router_test", template_database, graveyard) as name:
        yield with_database(server_url, name)


@pytest.fixture(scope="module")
async def module_router(module_database_url: str) -> AsyncIterator[RunningRouter]:
    running = await start_router(module_database_url, RoutingPolicy(phone_reserve=0))
    try:
        yield running
    finally:
        await running.stop(grace=1.0)


@pytest.fixture(scope="module")
async def module_channel(module_router: RunningRouter) -> AsyncIterator[grpc.aio.Channel]:
    async with grpc.aio.insecure_channel(f"127.0.0.1:{module_router.port}") as channel:
        yield channel
