"""Personal routing end to end: a customer's own agent, why a contact waits, its place in
line, and preferences that survive a restart (real gRPC, real PostgreSQL)."""

from __future__ import annotations

import asyncpg
import grpc
from contactrouter.v1 import contact_router_pb2 as pb
from contactrouter.v1 import contact_router_pb2_grpc as pb_grpc

from router.domain import RoutingPolicy
from tests.acceptance.conftest import (
    OfferStreams,
    contact_state,
    details,
    handle,
    next_offer,
    row_counts,
    rpc_error,
    sign_in,
)
from tests.acceptance.test_restart import running


async def submit_for(
    contacts: pb_grpc.ContactServiceAsyncStub,
    key: str,
    customer: str,
    channel: pb.Channel.ValueType = pb.CHANNEL_CHAT,
    agent: str = "",
    skills: tuple[str, ...] = (),
) -> pb.Contact:
    response = await contacts.SubmitContact(
        pb.SubmitContactRequest(
            idempotency_key=key,
            channel=channel,
            customer_id=customer,
            preferred_agent_id=agent,
            required_skills=skills,
        )
    )
    return response.contact


class TestPreferredAgent:
    async def test_a_returning_customer_reaches_the_previous_agent(
        self,
        contacts: pb_grpc.ContactServiceAsyncStub,
        agents: pb_grpc.AgentServiceAsyncStub,
        offer_streams: OfferStreams,
    ) -> None:
        """kim's first chat goes to the longest idle agent, zoe; her second goes to zoe
        again although adam has idled longer since."""
        await sign_in(agents, "zoe")
        await sign_in(agents, "adam")
        zoe = await offer_streams.open("zoe")
        adam = await offer_streams.open("adam")
        await submit_for(contacts, "kim-1", "kim")
        await handle(agents, "zoe", await next_offer(zoe))
        second = await submit_for(contacts, "kim-2", "kim", pb.CHANNEL_EMAIL)
        assert second.preferred_agent_id == "zoe"
        assert second.preferred_agent_source == pb.PREFERENCE_SOURCE_PREVIOUS_AGENT
        assert (await next_offer(zoe)).contact.contact_id == second.contact_id
        # A first-time customer still goes to the longest idle agent.
        new = await submit_for(contacts, "lee-1", "lee")
        assert new.preferred_agent_source == pb.PREFERENCE_SOURCE_UNSPECIFIED
        assert (await next_offer(adam)).contact.contact_id == new.contact_id

    async def test_a_named_agent_who_is_busy_holds_the_contact_and_says_so(
        self,
        contacts: pb_grpc.ContactServiceAsyncStub,
        agents: pb_grpc.AgentServiceAsyncStub,
        offer_streams: OfferStreams,
    ) -> None:
        await sign_in(agents, "zoe")
        zoe = await offer_streams.open("zoe")
        call = await submit_for(contacts, "call-1", "max", pb.CHANNEL_PHONE)
        offer = await next_offer(zoe)
        await agents.AcceptOffer(pb.AcceptOfferRequest(agent_id="zoe", offer_id=offer.offer_id))
        await sign_in(agents, "adam")
        await offer_streams.open("adam")
        email = await submit_for(contacts, "mail-1", "kim", pb.CHANNEL_EMAIL, agent="zoe")
        assert email.preferred_agent_source == pb.PREFERENCE_SOURCE_GATEWAY
        status = await contact_state(contacts, email.contact_id)
        assert status.contact.state == pb.CONTACT_STATE_QUEUED
        assert status.wait_reason == pb.WAIT_REASON_PREFERRED_AGENT
        assert status.wait_detail.startswith("held for agent zoe until ")
        assert (status.queue_position, status.routing_position) == (1, 1)
        await agents.EndContact(pb.EndContactRequest(agent_id="zoe", contact_id=call.contact_id))
        await agents.CompleteContact(
            pb.CompleteContactRequest(agent_id="zoe", contact_id=call.contact_id, disposition="ok")
        )
        assert (await next_offer(zoe)).contact.contact_id == email.contact_id

    async def test_a_malformed_preferred_agent_is_refused_and_records_nothing(
        self,
        contacts: pb_grpc.ContactServiceAsyncStub,
        db: asyncpg.Connection,
    ) -> None:
        before = await row_counts(db)
        error = await rpc_error(submit_for(contacts, "bad-1", "kim", agent="no spaces"))
        assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert details(error).startswith("preferred_agent_id")
        assert await row_counts(db) == before


class TestNobodyThere:
    async def test_a_contact_nobody_could_serve_waits_and_the_queue_lists_it(
        self,
        contacts: pb_grpc.ContactServiceAsyncStub,
        agents: pb_grpc.AgentServiceAsyncStub,
        reporting: pb_grpc.ReportingServiceAsyncStub,
        offer_streams: OfferStreams,
    ) -> None:
        await sign_in(agents, "zoe", skills=("en",))
        await offer_streams.open("zoe")
        french = await submit_for(contacts, "fr-1", "kim", skills=("fr",))
        status = await contact_state(contacts, french.contact_id)
        assert status.contact.state == pb.CONTACT_STATE_QUEUED
        assert status.wait_reason == pb.WAIT_REASON_NO_AGENT_WITH_SKILLS
        assert status.wait_detail.startswith("no signed-in agent takes chat with skill fr")
        queue = await reporting.GetQueueStatus(pb.GetQueueStatusRequest())
        assert queue.unserved_total == 1
        (listed,) = queue.unserved
        assert (listed.contact_id, list(listed.required_skills)) == (french.contact_id, ["fr"])
        assert listed.wait_reason == pb.WAIT_REASON_NO_AGENT_WITH_SKILLS
        assert not listed.HasField("fallback_at")
        chat = {c.channel: c for c in queue.channels}[pb.CHANNEL_CHAT]
        assert (chat.waiting, chat.unserved) == (1, 1)
        await sign_in(agents, "ana", skills=("fr",))
        ana = await offer_streams.open("ana")
        assert (await next_offer(ana)).contact.contact_id == french.contact_id
        queue = await reporting.GetQueueStatus(pb.GetQueueStatusRequest())
        assert queue.unserved_total == 0


class TestRestart:
    async def test_preferences_survive_a_restart(
        self, database_url: str, policy: RoutingPolicy, db: asyncpg.Connection
    ) -> None:
        """Preferred skills and the preferred agent are recorded; after a restart the
        contact still waits for them, and kim's previous agent is remembered."""
        async with running(database_url, policy, db) as first:
            await sign_in(first.agents, "zoe")
            zoe = await first.streams.open("zoe")
            await submit_for(first.contacts, "kim-1", "kim")
            await handle(first.agents, "zoe", await next_offer(zoe))
            await first.agents.SetStatus(
                pb.SetStatusRequest(agent_id="zoe", status=pb.AGENT_STATUS_AWAY)
            )
            waiting = await first.contacts.SubmitContact(
                pb.SubmitContactRequest(
                    idempotency_key="mail-1",
                    channel=pb.CHANNEL_EMAIL,
                    customer_id="lee",
                    preferred_agent_id="zoe",
                    preferred_skills=[pb.SkillLevel(skill="es", level=2)],
                )
            )
        async with running(database_url, policy, db) as second:
            status = await contact_state(second.contacts, waiting.contact.contact_id)
            assert list(status.contact.preferred_skills) == ["es@2"]
            assert status.contact.preferred_agent_id == "zoe"
            assert status.contact.preferred_agent_source == pb.PREFERENCE_SOURCE_GATEWAY
            returning = await submit_for(second.contacts, "kim-2", "kim", pb.CHANNEL_EMAIL)
            assert returning.preferred_agent_id == "zoe"
            assert returning.preferred_agent_source == pb.PREFERENCE_SOURCE_PREVIOUS_AGENT
