"""Two router processes on one database: one active, one hot standby. The active one
is killed (SIGKILL) and the standby takes over, with the open contacts it followed
(router/store/follow.py) caught up and restored."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

import asyncpg
import grpc
import pytest
from contactrouter.client import AgentDesk, Gateway, connect
from contactrouter.v1 import contact_router_pb2 as pb
from contactrouter.v1 import contact_router_pb2_grpc as pb_grpc
from grpc_health.v1 import health_pb2

from tests.acceptance.conftest import eventually, next_offer, rpc_error, sign_in, submit
from tests.acceptance.router_process import RouterProcess

SERVING = health_pb2.HealthCheckResponse.SERVING
NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING
# Only against a hang: how long a takeover takes is measured by bench/takeover.py, not
# asserted here (the time depends on the machine, not on the behaviour).
TAKEOVER_DEADLINE = 60.0


@pytest.fixture
async def pair(database_url: str) -> AsyncIterator[tuple[RouterProcess, RouterProcess]]:
    """An active router, then a standby on the same database."""
    env = {"ROUTER_DATABASE_URL": database_url, "ROUTER_PHONE_RESERVE": "0"}
    active = await RouterProcess.start(env)
    standby = await RouterProcess.start(env, until="standby_waiting_for_active_lock")
    try:
        yield active, standby
    finally:
        for process in (active, standby):
            await process.kill()


class TestActiveAndStandby:
    async def test_standby_reports_not_serving_and_refuses_work(
        self, pair: tuple[RouterProcess, RouterProcess]
    ) -> None:
        active, standby = pair
        assert await active.health() == SERVING
        assert await standby.health() == NOT_SERVING
        assert await standby.health("contactrouter.v1.ContactService") == NOT_SERVING
        assert await standby.health("liveness") == SERVING
        async with grpc.aio.insecure_channel(standby.address) as channel:
            refused = await rpc_error(submit(pb_grpc.ContactServiceStub(channel), "call-1"))
        assert refused.code() is grpc.StatusCode.UNAVAILABLE
        assert "standby" in (refused.details() or "")

    async def test_standby_takes_over_warm_with_the_contacts_in_place(
        self, pair: tuple[RouterProcess, RouterProcess], db: asyncpg.Connection
    ) -> None:
        active, standby = pair
        async with grpc.aio.insecure_channel(active.address) as channel:
            contacts = pb_grpc.ContactServiceStub(channel)
            agents = pb_grpc.AgentServiceStub(channel)
            await sign_in(agents, "alice")
            stream = agents.StreamOffers(pb.StreamOffersRequest(agent_id="alice"))
            talking = await submit(contacts, "call-1")
            offer = await next_offer(stream)
            await agents.AcceptOffer(
                pb.AcceptOfferRequest(agent_id="alice", offer_id=offer.offer_id)
            )
            waiting = [await submit(contacts, f"call-{n}") for n in (2, 3)]
            await active.kill()
            killed = time.perf_counter()
            stream.cancel()

        async def standby_serves() -> bool:
            return bool(await standby.health() == SERVING)

        await eventually(standby_serves, within=TAKEOVER_DEADLINE, what="the standby serving")
        takeover = time.perf_counter() - killed
        print(f"\ntakeover after SIGKILL: {takeover:.2f} s")
        # Hot: the standby had followed the contacts submitted after it started, and
        # did not read them all again when it took over.
        assert standby.event("standby_loaded")["open_contacts"] == 0
        assert standby.event("queue_restored")["warm"] is True
        assert standby.event("queue_restored")["open_contacts"] == 3

        async with grpc.aio.insecure_channel(standby.address) as channel:
            contacts = pb_grpc.ContactServiceStub(channel)
            agents = pb_grpc.AgentServiceStub(channel)
            for contact in waiting:
                now = await contacts.GetContact(pb.GetContactRequest(contact_id=contact.contact_id))
                assert now.contact.state == pb.CONTACT_STATE_QUEUED
                assert now.contact.timings.queued_at == contact.timings.queued_at
            # The agent's desktop signs in again: the call it was on is still its own.
            await sign_in(agents, "alice")
            await agents.EndContact(
                pb.EndContactRequest(agent_id="alice", contact_id=talking.contact_id)
            )
            await agents.CompleteContact(
                pb.CompleteContactRequest(
                    agent_id="alice", contact_id=talking.contact_id, disposition="resolved"
                )
            )
            stream = agents.StreamOffers(pb.StreamOffersRequest(agent_id="alice"))
            try:
                offer = await next_offer(stream)
                assert offer.contact.contact_id == waiting[0].contact_id
            finally:
                stream.cancel()
        kinds = [
            r["kind"]
            for r in await db.fetch(
                "SELECT kind FROM contact_events WHERE contact_id = $1::uuid ORDER BY id",
                talking.contact_id,
            )
        ]
        assert kinds == ["submitted", "offered", "answered", "ended", "completed"]

    async def test_client_with_both_addresses_reaches_whichever_is_active(
        self, pair: tuple[RouterProcess, RouterProcess]
    ) -> None:
        """contactrouter.client.connect with both addresses: calls land on the active router,
        before and after a takeover, through the documented retry policy."""
        active, standby = pair
        channel = connect(f"{active.address},{standby.address}")
        try:
            gateway = Gateway(channel)
            first = [await gateway.submit(f"call-{n}", pb.CHANNEL_CHAT, "c") for n in range(6)]
            await active.kill()

            refusals = []

            async def submitted_after_takeover() -> bool:
                try:
                    await gateway.submit("call-after", pb.CHANNEL_CHAT, "c")
                except grpc.aio.AioRpcError as error:
                    refusals.append(error.code())
                    return False
                return True

            await eventually(submitted_after_takeover, within=15.0, what="a submission")
            # Only "try again" answers while the standby took over.
            assert set(refusals) <= {
                grpc.StatusCode.UNAVAILABLE,
                grpc.StatusCode.DEADLINE_EXCEEDED,
            }
            desk = AgentDesk(channel, "bob")
            await desk.sign_in()
            again = await gateway.get(first[0].contact_id)
            assert again.contact.state in (pb.CONTACT_STATE_QUEUED, pb.CONTACT_STATE_OFFERED)
        finally:
            await channel.close()

    async def test_calls_made_while_the_standby_takes_over_wait_for_it(
        self, pair: tuple[RouterProcess, RouterProcess], db: asyncpg.Connection
    ) -> None:
        """A call that reaches the standby after it took the lock, while it restores,
        is held until it serves and then answered, not refused: desks that retried
        such refusals all at once slowed the takeover they were waiting for."""
        active, standby = pair
        async with grpc.aio.insecure_channel(standby.address) as channel:
            contacts = pb_grpc.ContactServiceStub(channel)
            # The standby's activation saves the channels' targets once it holds the
            # lock: this transaction keeps it there until the call is seen held.
            async with db.transaction():
                await db.execute("LOCK TABLE channel_targets IN ACCESS EXCLUSIVE MODE")
                await active.kill()
                await standby.wait_for("active_lock_acquired")
                call = asyncio.ensure_future(submit(contacts, "call-1"))
                held = await standby.wait_for("rpc_held")
                assert held["rpc"] == "SubmitContact"
                assert not call.done()
            submitted = await call
        assert submitted.state == pb.CONTACT_STATE_QUEUED
        assert standby.event("router_active")["held_calls"] == 1
        refused = [e for e in standby.events if e.get("event") == "rpc_refused"]
        assert refused == []

    async def test_offers_in_flight_are_requeued_at_their_place_by_the_takeover(
        self, pair: tuple[RouterProcess, RouterProcess], db: asyncpg.Connection
    ) -> None:
        """Offers the killed router had made are void: the standby's warm core has
        their contacts at their original place, and its takeover records each one's
        requeue (one statement for all, one log line), before any new offer of it."""
        active, standby = pair
        async with grpc.aio.insecure_channel(active.address) as channel:
            contacts = pb_grpc.ContactServiceStub(channel)
            agents = pb_grpc.AgentServiceStub(channel)
            queued = [await submit(contacts, f"call-{n}") for n in range(5)]
            streams = []
            for name in ("ann", "bob", "cy"):
                await sign_in(agents, name)
                streams.append(agents.StreamOffers(pb.StreamOffersRequest(agent_id=name)))
                await next_offer(streams[-1])
            await active.kill()
            for stream in streams:
                stream.cancel()
        offered = {c.contact_id for c in queued[:3]}  # the oldest went first

        async def standby_serves() -> bool:
            return bool(await standby.health() == SERVING)

        await eventually(standby_serves, within=TAKEOVER_DEADLINE, what="the standby serving")
        restored = standby.event("queue_restored")
        assert restored["warm"] is True
        assert restored["offers_voided"] == 3
        per_offer = [e for e in standby.events if e.get("event") == "contact_requeued"]
        assert per_offer == [], "one summary line, not one per voided offer"
        rows = await db.fetch(
            "SELECT id::text, state, agent_id, offer_id FROM contacts WHERE id = ANY($1::uuid[])",
            list(offered),
        )
        assert {(r["id"], r["state"], r["agent_id"], r["offer_id"]) for r in rows} == {
            (contact_id, "queued", None, None) for contact_id in offered
        }
        async with grpc.aio.insecure_channel(standby.address) as channel:
            contacts = pb_grpc.ContactServiceStub(channel)
            agents = pb_grpc.AgentServiceStub(channel)
            for position, contact in enumerate(queued, start=1):
                now = await contacts.GetContact(pb.GetContactRequest(contact_id=contact.contact_id))
                assert now.contact.state == pb.CONTACT_STATE_QUEUED
                assert now.contact.timings.queued_at == contact.timings.queued_at
                assert now.queue_position == position, "each at its original place"
            await sign_in(agents, "dee")
            stream = agents.StreamOffers(pb.StreamOffersRequest(agent_id="dee"))
            try:
                offer = await next_offer(stream)
                assert offer.contact.contact_id == queued[0].contact_id
            finally:
                stream.cancel()

        async def offered_again() -> bool:
            # At least: dee's stream, cancelled, may withdraw the offer in the same commit.
            recorded = await db.fetchval(
                "SELECT count(*) FROM contact_events WHERE contact_id = $1::uuid",
                queued[0].contact_id,
            )
            return bool(recorded >= 4)

        await eventually(offered_again, within=10.0, what="the new offer recorded")
        fourth = await db.fetchval(
            "SELECT kind FROM contact_events WHERE contact_id = $1::uuid ORDER BY seq OFFSET 3",
            queued[0].contact_id,
        )
        assert fourth == "offered", "the takeover's requeue comes before the new offer"
        for contact_id in offered:
            events = await db.fetch(
                "SELECT kind, reason FROM contact_events WHERE contact_id = $1::uuid ORDER BY seq",
                contact_id,
            )
            kinds = [(e["kind"], e["reason"]) for e in events]
            assert kinds[:3] == [("submitted", None), ("offered", None), ("requeued", "restart")]
