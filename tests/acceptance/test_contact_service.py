"""ContactService through a real server: submission, lookup and abandonment."""

from __future__ import annotations

import asyncio
import uuid
from types import MappingProxyType

import asyncpg
import grpc
from contactrouter.v1 import contact_router_pb2 as pb
from contactrouter.v1 import contact_router_pb2_grpc as pb_grpc

from router.domain import Channel, ChannelPolicy, RoutingPolicy
from router.server import start_router
from tests.acceptance.conftest import (
    OfferStreams,
    contact_state,
    details,
    event_kinds,
    finish,
    handle,
    next_offer,
    next_withdrawal,
    offered_call,
    rpc_error,
    sign_in,
    submit,
)


class TestSubmitContact:
    async def test_new_contact_is_queued_and_recorded(
        self, contacts: pb_grpc.ContactServiceAsyncStub, db: asyncpg.Connection
    ) -> None:
        """A submission answers with a queued contact whose row and 'submitted' event exist."""
        response = await contacts.SubmitContact(
            pb.SubmitContactRequest(
                idempotency_key="call-1",
                channel=pb.CHANNEL_PHONE,
                customer_id="+15550100",
                attributes={"name": "Ana Müller", "order": "A-17"},
                required_skills=["returns", "lang:de"],
            )
        )
        contact = response.contact
        assert not response.duplicate
        assert uuid.UUID(contact.contact_id)
        assert contact.state == pb.CONTACT_STATE_QUEUED
        assert contact.priority_boost == 1.0
        assert dict(contact.attributes) == {"name": "Ana Müller", "order": "A-17"}
        assert list(contact.required_skills) == ["lang:de", "returns"]
        assert contact.timings.HasField("queued_at")
        assert not contact.timings.HasField("offered_at")
        row = await db.fetchrow("SELECT * FROM contacts WHERE id = $1::uuid", contact.contact_id)
        assert row is not None
        assert row["state"] == "queued"
        assert row["channel"] == "phone"
        assert row["queued_at"] == contact.timings.queued_at.ToDatetime(
            tzinfo=row["queued_at"].tzinfo
        )
        assert await event_kinds(db, contact.contact_id) == ["submitted"]

    async def test_same_key_returns_the_same_contact(
        self, contacts: pb_grpc.ContactServiceAsyncStub, db: asyncpg.Connection
    ) -> None:
        """Submitting a key again answers the existing contact with duplicate=True."""
        request = pb.SubmitContactRequest(
            idempotency_key="chat-1", channel=pb.CHANNEL_CHAT, customer_id="c-1"
        )
        first = await contacts.SubmitContact(request)
        second = await contacts.SubmitContact(request)
        assert not first.duplicate
        assert second.duplicate
        assert second.contact.contact_id == first.contact.contact_id
        assert second.contact.timings.queued_at == first.contact.timings.queued_at
        assert await db.fetchval("SELECT count(*) FROM contacts") == 1
        assert await event_kinds(db, first.contact.contact_id) == ["submitted"]

    async def test_same_key_with_other_fields_changes_nothing(
        self, contacts: pb_grpc.ContactServiceAsyncStub, db: asyncpg.Connection
    ) -> None:
        """A known key answers the original contact even if the retry's fields differ."""
        first = await submit(contacts, "call-1", pb.CHANNEL_PHONE, customer_id="+15550100")
        again = await contacts.SubmitContact(
            pb.SubmitContactRequest(
                idempotency_key="call-1",
                channel=pb.CHANNEL_EMAIL,
                customer_id="someone@example.com",
                required_skills=["returns"],
            )
        )
        assert again.duplicate
        assert again.contact == first
        assert await db.fetchval("SELECT count(*) FROM contacts") == 1

    async def test_concurrent_retries_create_one_contact(
        self, contacts: pb_grpc.ContactServiceAsyncStub, db: asyncpg.Connection
    ) -> None:
        """Twenty simultaneous submissions of one key create one row; one is not a duplicate."""
        request = pb.SubmitContactRequest(
            idempotency_key="email-1", channel=pb.CHANNEL_EMAIL, customer_id="a@example.com"
        )
        responses = await asyncio.gather(*(contacts.SubmitContact(request) for _ in range(20)))
        assert len({r.contact.contact_id for r in responses}) == 1
        assert sum(not r.duplicate for r in responses) == 1
        assert await db.fetchval("SELECT count(*) FROM contacts") == 1
        assert await db.fetchval("SELECT count(*) FROM contact_events") == 1

    async def test_key_of_a_finished_contact_is_still_known(
        self,
        contacts: pb_grpc.ContactServiceAsyncStub,
        agents: pb_grpc.AgentServiceAsyncStub,
        offer_streams: OfferStreams,
        db: asyncpg.Connection,
    ) -> None:
        """After completion the key still answers the completed contact, creating nothing."""
        await sign_in(agents, "alice")
        stream = await offer_streams.open("alice")
        contact = await submit(contacts, "call-1")
        await handle(agents, "alice", await next_offer(stream))
        again = await contacts.SubmitContact(
            pb.SubmitContactRequest(
                idempotency_key="call-1", channel=pb.CHANNEL_PHONE, customer_id="customer"
            )
        )
        assert again.duplicate
        assert again.contact.contact_id == contact.contact_id
        assert again.contact.state == pb.CONTACT_STATE_COMPLETED
        assert await db.fetchval("SELECT count(*) FROM contacts") == 1

    async def test_concurrent_retries_see_the_contact_as_it_is_now(
        self,
        contacts: pb_grpc.ContactServiceAsyncStub,
        agents: pb_grpc.AgentServiceAsyncStub,
        offer_streams: OfferStreams,
    ) -> None:
        """Every answer to simultaneous retries shows the state the first answer shows."""
        await sign_in(agents, "alice")
        await offer_streams.open("alice")
        request = pb.SubmitContactRequest(
            idempotency_key="call-1", channel=pb.CHANNEL_PHONE, customer_id="c-1"
        )
        responses = await asyncio.gather(*(contacts.SubmitContact(request) for _ in range(10)))
        original = next(r for r in responses if not r.duplicate)
        assert original.contact.state == pb.CONTACT_STATE_OFFERED
        assert [r.contact.state for r in responses] == [pb.CONTACT_STATE_OFFERED] * 10


class TestGetContact:
    async def test_waiting_contacts_have_positions_in_urgency_order(
        self, contacts: pb_grpc.ContactServiceAsyncStub
    ) -> None:
        """Calls outrank an older email in routing order; the oldest call is position 1;
        waits count up. With nobody signed in, each is in line with its own channel
        only, and says why it waits."""
        email = await submit(contacts, "email-1", pb.CHANNEL_EMAIL)
        first_call = await submit(contacts, "call-1")
        second_call = await submit(contacts, "call-2")
        positions = {}
        for contact in (email, first_call, second_call):
            status = await contact_state(contacts, contact.contact_id)
            assert status.contact.state == pb.CONTACT_STATE_QUEUED
            assert status.wait_seconds > 0
            assert not status.HasField("estimated_wait_seconds")
            assert status.wait_reason == pb.WAIT_REASON_NO_AGENT_SIGNED_IN
            assert "no agent is signed in" in status.wait_detail
            positions[contact.contact_id] = (status.routing_position, status.queue_position)
        assert positions == {
            first_call.contact_id: (1, 1),
            second_call.contact_id: (2, 2),
            email.contact_id: (3, 1),
        }

    async def test_offered_contact_has_no_position(
        self,
        contacts: pb_grpc.ContactServiceAsyncStub,
        agents: pb_grpc.AgentServiceAsyncStub,
        offer_streams: OfferStreams,
    ) -> None:
        """An offered contact is not waiting in the queue: position 0, agent named."""
        _, contact, offer = await offered_call(contacts, agents, offer_streams)
        status = await contact_state(contacts, contact.contact_id)
        assert status.contact.state == pb.CONTACT_STATE_OFFERED
        assert status.contact.agent_id == "alice"
        assert status.contact.offer_count == 1
        assert status.contact.timings.offered_at == offer.contact.timings.offered_at
        assert status.queue_position == 0

    async def test_completed_contact_is_read_back_from_the_database(
        self,
        contacts: pb_grpc.ContactServiceAsyncStub,
        agents: pb_grpc.AgentServiceAsyncStub,
        offer_streams: OfferStreams,
        db: asyncpg.Connection,
    ) -> None:
        """After completion GetContact answers every timing exactly as recorded."""
        await sign_in(agents, "alice")
        stream = await offer_streams.open("alice")
        contact = await submit(contacts, "call-1")
        done = await handle(agents, "alice", await next_offer(stream), "return")
        status = await contact_state(contacts, contact.contact_id)
        assert status.contact == done
        assert status.contact.state == pb.CONTACT_STATE_COMPLETED
        assert status.contact.disposition == "return"
        assert status.contact.agent_id == "alice"
        assert status.queue_position == 0
        assert not status.HasField("estimated_wait_seconds")
        row = await db.fetchrow("SELECT * FROM contacts WHERE id = $1::uuid", contact.contact_id)
        assert row is not None
        timings = status.contact.timings
        for name in ("queued_at", "offered_at", "answered_at", "ended_at", "completed_at"):
            assert getattr(timings, name).ToDatetime(tzinfo=row[name].tzinfo) == row[name], name
        assert not timings.HasField("abandoned_at")
        expected_wait = (row["answered_at"] - row["queued_at"]).total_seconds()
        assert abs(status.wait_seconds - expected_wait) < 1e-6

    async def test_estimated_wait_once_there_is_answer_history(
        self,
        contacts: pb_grpc.ContactServiceAsyncStub,
        agents: pb_grpc.AgentServiceAsyncStub,
        offer_streams: OfferStreams,
    ) -> None:
        """After two answers a waiting call has an estimated wait; a non-waiting one has none."""
        await sign_in(agents, "alice")
        stream = await offer_streams.open("alice")
        for key in ("call-1", "call-2"):
            await submit(contacts, key)
            await handle(agents, "alice", await next_offer(stream))
        talking = await submit(contacts, "call-3")
        offer = await next_offer(stream)
        await agents.AcceptOffer(pb.AcceptOfferRequest(agent_id="alice", offer_id=offer.offer_id))
        waiting = await submit(contacts, "call-4")
        status = await contact_state(contacts, waiting.contact_id)
        assert status.queue_position == 1
        assert status.HasField("estimated_wait_seconds")
        assert status.estimated_wait_seconds > 0
        connected = await contact_state(contacts, talking.contact_id)
        assert not connected.HasField("estimated_wait_seconds")

    async def test_estimate_comes_from_the_centers_answer_rate(
        self,
        contacts: pb_grpc.ContactServiceAsyncStub,
        agents: pb_grpc.AgentServiceAsyncStub,
        offer_streams: OfferStreams,
    ) -> None:
        """Agents are shared, so answers on any channel give a waiting call its estimate."""
        await sign_in(agents, "chatter", capacities={pb.CHANNEL_PHONE: 0})
        stream = await offer_streams.open("chatter")
        for key in ("chat-1", "chat-2"):
            await submit(contacts, key, pb.CHANNEL_CHAT)
            await handle(agents, "chatter", await next_offer(stream))
        call = await submit(contacts, "call-1")
        status = await contact_state(contacts, call.contact_id)
        assert status.queue_position == 1
        assert status.HasField("estimated_wait_seconds")
        assert status.estimated_wait_seconds > 0

    async def test_unknown_contact_is_not_found(
        self, contacts: pb_grpc.ContactServiceAsyncStub
    ) -> None:
        """A well-formed id that was never submitted answers NOT_FOUND."""
        error = await rpc_error(
            contacts.GetContact(pb.GetContactRequest(contact_id=str(uuid.uuid4())))
        )
        assert error.code() == grpc.StatusCode.NOT_FOUND

    async def test_malformed_id_is_invalid(self, contacts: pb_grpc.ContactServiceAsyncStub) -> None:
        """An id that is not a UUID answers INVALID_ARGUMENT naming contact_id."""
        error = await rpc_error(contacts.GetContact(pb.GetContactRequest(contact_id="call-1")))
        assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert "contact_id" in details(error)


class TestAbandonContact:
    async def test_abandon_a_queued_contact(
        self, contacts: pb_grpc.ContactServiceAsyncStub, db: asyncpg.Connection
    ) -> None:
        """A queued contact becomes ABANDONED with abandoned_at, in memory and in the row."""
        contact = await submit(contacts, "call-1")
        response = await contacts.AbandonContact(
            pb.AbandonContactRequest(contact_id=contact.contact_id)
        )
        assert response.contact.state == pb.CONTACT_STATE_ABANDONED
        assert response.contact.timings.HasField("abandoned_at")
        status = await contact_state(contacts, contact.contact_id)
        assert status.contact == response.contact
        assert status.queue_position == 0
        row = await db.fetchrow(
            "SELECT * FROM contact_timings WHERE contact_id = $1::uuid", contact.contact_id
        )
        assert row is not None
        assert row["state"] == "abandoned"
        assert row["wait_seconds"] == (row["abandoned_at"] - row["queued_at"]).total_seconds()
        assert await event_kinds(db, contact.contact_id) == ["submitted", "abandoned"]

    async def test_abandon_an_offered_contact_withdraws_the_offer(
        self,
        contacts: pb_grpc.ContactServiceAsyncStub,
        agents: pb_grpc.AgentServiceAsyncStub,
        offer_streams: OfferStreams,
        db: asyncpg.Connection,
    ) -> None:
        """The agent is told the offer is withdrawn ("abandoned") and can no longer accept."""
        stream, contact, offer = await offered_call(contacts, agents, offer_streams)
        await contacts.AbandonContact(pb.AbandonContactRequest(contact_id=contact.contact_id))
        withdrawn = await next_withdrawal(stream)
        assert withdrawn.offer_id == offer.offer_id
        assert withdrawn.contact_id == contact.contact_id
        assert withdrawn.reason == "abandoned"
        error = await rpc_error(
            agents.AcceptOffer(pb.AcceptOfferRequest(agent_id="alice", offer_id=offer.offer_id))
        )
        assert error.code() == grpc.StatusCode.FAILED_PRECONDITION
        assert await event_kinds(db, contact.contact_id) == ["submitted", "offered", "abandoned"]

    async def test_agent_freed_by_an_abandon_gets_the_next_contact(
        self,
        contacts: pb_grpc.ContactServiceAsyncStub,
        agents: pb_grpc.AgentServiceAsyncStub,
        offer_streams: OfferStreams,
    ) -> None:
        """When an offered caller hangs up, the agent is offered the next waiting call."""
        stream, first, _ = await offered_call(contacts, agents, offer_streams)
        second = await submit(contacts, "call-2")
        await contacts.AbandonContact(pb.AbandonContactRequest(contact_id=first.contact_id))
        await next_withdrawal(stream)
        offer = await next_offer(stream)
        assert offer.contact.contact_id == second.contact_id

    async def test_second_abandon_returns_the_contact_unchanged(
        self, contacts: pb_grpc.ContactServiceAsyncStub, db: asyncpg.Connection
    ) -> None:
        """Abandoning twice answers the same abandoned contact and records nothing new."""
        contact = await submit(contacts, "call-1")
        request = pb.AbandonContactRequest(contact_id=contact.contact_id)
        first = await contacts.AbandonContact(request)
        second = await contacts.AbandonContact(request)
        assert second.contact == first.contact
        assert await event_kinds(db, contact.contact_id) == ["submitted", "abandoned"]

    async def test_answered_contact_cannot_be_abandoned(
        self,
        contacts: pb_grpc.ContactServiceAsyncStub,
        agents: pb_grpc.AgentServiceAsyncStub,
        offer_streams: OfferStreams,
        db: asyncpg.Connection,
    ) -> None:
        """Once answered (and again once completed) AbandonContact is FAILED_PRECONDITION."""
        _, contact, offer = await offered_call(contacts, agents, offer_streams)
        await agents.AcceptOffer(pb.AcceptOfferRequest(agent_id="alice", offer_id=offer.offer_id))
        request = pb.AbandonContactRequest(contact_id=contact.contact_id)
        error = await rpc_error(contacts.AbandonContact(request))
        assert error.code() == grpc.StatusCode.FAILED_PRECONDITION
        assert (await contact_state(contacts, contact.contact_id)).contact.state == (
            pb.CONTACT_STATE_CONNECTED
        )
        await finish(agents, "alice", contact.contact_id)
        error = await rpc_error(contacts.AbandonContact(request))
        assert error.code() == grpc.StatusCode.FAILED_PRECONDITION
        assert "abandoned" not in await event_kinds(db, contact.contact_id)

    async def test_simultaneous_abandons_both_succeed(
        self, contacts: pb_grpc.ContactServiceAsyncStub, db: asyncpg.Connection
    ) -> None:
        """Two AbandonContact calls sent together (a gateway retry) both answer ABANDONED."""
        for i in range(5):
            contact = await submit(contacts, f"call-{i}")
            request = pb.AbandonContactRequest(contact_id=contact.contact_id)
            first, second = await asyncio.gather(
                contacts.AbandonContact(request), contacts.AbandonContact(request)
            )
            assert first.contact == second.contact
            assert first.contact.state == pb.CONTACT_STATE_ABANDONED
            assert await event_kinds(db, contact.contact_id) == ["submitted", "abandoned"]

    async def test_unknown_contact_is_not_found(
        self, contacts: pb_grpc.ContactServiceAsyncStub
    ) -> None:
        """Abandoning an id never submitted answers NOT_FOUND."""
        error = await rpc_error(
            contacts.AbandonContact(pb.AbandonContactRequest(contact_id=str(uuid.uuid4())))
        )
        assert error.code() == grpc.StatusCode.NOT_FOUND


class TestQueueLimit:
    async def test_a_full_channel_answers_resource_exhausted_and_records_nothing(
        self, database_url: str, db: asyncpg.Connection
    ) -> None:
        """With room for one waiting call, a second is refused with a clear message and
        leaves no row; a retry of the first key still gets its contact; chat still flows."""
        phone = ChannelPolicy(20.0, 1, 1, exclusive=True, max_queue=1)
        policy = RoutingPolicy(
            phone_reserve=0,
            channels=MappingProxyType({**RoutingPolicy().channels, Channel.PHONE: phone}),
        )
        running = await start_router(database_url, policy)
        try:
            async with grpc.aio.insecure_channel(f"127.0.0.1:{running.port}") as channel:
                contacts = pb_grpc.ContactServiceStub(channel)
                first = await submit(contacts, "call-1")
                error = await rpc_error(submit(contacts, "call-2"))
                assert error.code() is grpc.StatusCode.RESOURCE_EXHAUSTED
                assert "phone queue is full" in details(error)
                again = await submit(contacts, "call-1")
                assert again.contact_id == first.contact_id
                await submit(contacts, "chat-1", pb.CHANNEL_CHAT)
        finally:
            await running.stop(grace=1.0)
        keys = {
            r["idempotency_key"] for r in await db.fetch("SELECT idempotency_key FROM contacts")
        }
        assert keys == {"call-1", "chat-1"}
