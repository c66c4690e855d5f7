"""Stopping and restarting a router on the same database: it stops cleanly and rebuilds its
queue, and nothing acknowledged is lost."""

from __future__ import annotations

import asyncio
import contextlib
import json
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import asyncpg
import grpc
from contactrouter.v1 import contact_router_pb2 as pb
from contactrouter.v1 import contact_router_pb2_grpc as pb_grpc

from router.domain import AgentStatus, Channel, RoutingPolicy
from router.server import start_router
from router.switchboard import NewContact
from tests.acceptance.conftest import (
    OfferStreams,
    contact_state,
    event_kinds,
    finish,
    next_offer,
    sign_in,
    submit,
)


@dataclass(frozen=True)
class Client:
    contacts: pb_grpc.ContactServiceAsyncStub
    agents: pb_grpc.AgentServiceAsyncStub
    streams: OfferStreams


@asynccontextmanager
async def running(
    database_url: str, policy: RoutingPolicy, db: asyncpg.Connection
) -> AsyncIterator[Client]:
    """A router on `database_url` and a client of it; stopped (gracefully) on exit."""
    router = await start_router(database_url, policy)
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{router.port}") as channel:
            agents = pb_grpc.AgentServiceStub(channel)
            streams = OfferStreams(agents, db)
            try:
                yield Client(pb_grpc.ContactServiceStub(channel), agents, streams)
            finally:
                await streams.close_all()
    finally:
        await router.stop(grace=1.0)


class TestRestart:
    async def test_queue_and_conversations_survive_a_restart(
        self, database_url: str, policy: RoutingPolicy, db: asyncpg.Connection
    ) -> None:
        """Waiting contacts keep place and queued_at; a connected chat stays with its agent."""
        async with running(database_url, policy, db) as first:
            await sign_in(first.agents, "alice", capacities={pb.CHANNEL_PHONE: 0})
            stream = await first.streams.open("alice")
            talking = await submit(first.contacts, "chat-1", pb.CHANNEL_CHAT)
            offer = await next_offer(stream)
            accepted = await first.agents.AcceptOffer(
                pb.AcceptOfferRequest(agent_id="alice", offer_id=offer.offer_id)
            )
            older_call = await submit(first.contacts, "call-1")
            newer_call = await submit(first.contacts, "call-2")
            offered_chat = await submit(first.contacts, "chat-2", pb.CHANNEL_CHAT)
            assert (await next_offer(stream)).contact.contact_id == offered_chat.contact_id

        async with running(database_url, policy, db) as second:
            for position, call in enumerate((older_call, newer_call), start=1):
                status = await contact_state(second.contacts, call.contact_id)
                assert status.contact.state == pb.CONTACT_STATE_QUEUED
                assert status.contact.timings.queued_at == call.timings.queued_at
                assert status.queue_position == position
            returned = await contact_state(second.contacts, offered_chat.contact_id)
            assert returned.contact.state == pb.CONTACT_STATE_QUEUED
            assert returned.contact.agent_id == ""
            held = await contact_state(second.contacts, talking.contact_id)
            assert held.contact.state == pb.CONTACT_STATE_CONNECTED
            assert held.contact.agent_id == "alice"

            again = await second.contacts.SubmitContact(
                pb.SubmitContactRequest(
                    idempotency_key="call-1", channel=pb.CHANNEL_PHONE, customer_id="customer"
                )
            )
            assert again.duplicate
            assert again.contact.contact_id == older_call.contact_id

            agent = await sign_in(second.agents, "alice", capacities={pb.CHANNEL_PHONE: 0})
            assert list(agent.contact_ids) == [talking.contact_id]
            stream = await second.streams.open("alice")
            assert (await next_offer(stream)).contact.contact_id == offered_chat.contact_id
            done = await finish(second.agents, "alice", talking.contact_id, "return")
            before = accepted.contact.timings
            after = done.timings
            assert (after.queued_at, after.offered_at, after.answered_at) == (
                before.queued_at,
                before.offered_at,
                before.answered_at,
            )

        assert await event_kinds(db, talking.contact_id) == [
            "submitted",
            "offered",
            "answered",
            "ended",
            "completed",
        ]
        assert await event_kinds(db, older_call.contact_id) == ["submitted"]
        assert await db.fetchval("SELECT count(*) FROM contacts") == 4

    async def test_offer_left_open_by_a_crash_goes_back_to_the_queue(
        self, database_url: str, policy: RoutingPolicy, db: asyncpg.Connection
    ) -> None:
        """A contact recorded OFFERED (the router died) is queued again at start, reason restart."""
        contact_id = uuid.uuid4()
        queued_at = datetime.now(UTC) - timedelta(seconds=30)
        await db.execute(
            """
            INSERT INTO contacts (id, idempotency_key, channel, customer_id, attributes, state,
                queued_at, offered_at, agent_id, offer_id, offer_count, updated_at)
            VALUES ($1, 'call-1', 'phone', 'c', $2::jsonb, 'offered', $3, $4, 'alice', $5, 1, $4)
            """,
            contact_id,
            json.dumps({}),
            queued_at,
            queued_at + timedelta(seconds=1),
            uuid.uuid4(),
        )
        async with running(database_url, policy, db) as client:
            status = await contact_state(client.contacts, str(contact_id))
            assert status.contact.state == pb.CONTACT_STATE_QUEUED
            assert status.contact.agent_id == ""
            assert status.contact.offer_count == 1
            assert status.queue_position == 1
            assert status.wait_seconds >= 30
            row = await db.fetchrow("SELECT * FROM contacts WHERE id = $1", contact_id)
            assert row is not None
            assert (row["state"], row["agent_id"], row["offer_id"]) == ("queued", None, None)
            reason = await db.fetchval(
                "SELECT reason FROM contact_events WHERE contact_id = $1 AND kind = 'requeued'",
                contact_id,
            )
            assert reason == "restart"


class TestShutdown:
    async def test_stop_right_after_a_recorded_change_finishes(
        self, database_url: str, policy: RoutingPolicy
    ) -> None:
        """Stop finishes promptly even right after a change was recorded, with an offer open."""
        running = await start_router(database_url, policy)
        try:
            board = running.switchboard
            await board.sign_in("alice", frozenset(), {}, AgentStatus.READY)
            stream = await board.open_stream("alice")
            await board.submit(NewContact("call-1", Channel.PHONE, "c-1", {}, frozenset(), 1.0))
            offered = await asyncio.wait_for(stream.next(), 5.0)
            assert isinstance(offered, tuple)
            # Records alice's disconnect (waking the offer timer, which has a deadline to
            # wait for) and stops in the same instant, as SIGTERM during traffic would.
            board.close_stream(stream)
            stopping = asyncio.create_task(board.stop())
            try:
                # A hang is what this catches: the bound is generous for a loaded machine.
                await asyncio.wait_for(asyncio.shield(stopping), 10.0)
            finally:
                stopping.cancel()  # frees a stuck stop: it cancels the timer once more
                with contextlib.suppress(asyncio.CancelledError):
                    await stopping
        finally:
            await running.stop(grace=1.0)
