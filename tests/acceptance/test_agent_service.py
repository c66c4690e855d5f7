"""AgentService through a real server: routing, offers, declines, timeouts, presence."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import asyncpg
import grpc
import pytest
from contactrouter.v1 import contact_router_pb2 as pb
from contactrouter.v1 import contact_router_pb2_grpc as pb_grpc

from router.domain import RoutingPolicy
from tests.acceptance.conftest import (
    OfferStreams,
    contact_state,
    event_kinds,
    eventually,
    finish,
    handle,
    next_offer,
    next_withdrawal,
    offered_call,
    recorded,
    rpc_error,
    sign_in,
    status_log,
    stream_ended,
    submit,
    wait_for_state,
)


class TestRouting:
    async def test_phone_goes_before_an_older_email(
        self,
        contacts: pb_grpc.ContactServiceAsyncStub,
        agents: pb_grpc.AgentServiceAsyncStub,
        offer_streams: OfferStreams,
    ) -> None:
        """With an email and a later call waiting, the agent who connects is offered the call."""
        email = await submit(contacts, "email-1", pb.CHANNEL_EMAIL)
        call = await submit(contacts, "call-1")
        await sign_in(agents, "alice")
        stream = await offer_streams.open("alice")
        offer = await next_offer(stream)
        assert offer.contact.contact_id == call.contact_id
        assert offer.contact.state == pb.CONTACT_STATE_OFFERED
        # A call is exclusive: the email waits for the next free agent.
        status = await contact_state(contacts, email.contact_id)
        assert status.contact.state == pb.CONTACT_STATE_QUEUED
        assert status.queue_position == 1

    async def test_required_skill_picks_the_agent_who_has_it(
        self,
        contacts: pb_grpc.ContactServiceAsyncStub,
        agents: pb_grpc.AgentServiceAsyncStub,
        offer_streams: OfferStreams,
    ) -> None:
        """A call needing lang:es goes to the Spanish speaker, not the longer-idle agent."""
        await sign_in(agents, "english", skills=("lang:en",))
        await sign_in(agents, "spanish", skills=("lang:es", "lang:en"))
        await offer_streams.open("english")
        spanish = await offer_streams.open("spanish")
        contact = await submit(contacts, "call-1", skills=("lang:es",))
        offer = await next_offer(spanish)
        assert offer.contact.contact_id == contact.contact_id
        assert list(offer.contact.required_skills) == ["lang:es"]
        status = await contact_state(contacts, contact.contact_id)
        assert status.contact.agent_id == "spanish"

    async def test_contact_nobody_can_serve_waits(
        self,
        contacts: pb_grpc.ContactServiceAsyncStub,
        agents: pb_grpc.AgentServiceAsyncStub,
        offer_streams: OfferStreams,
    ) -> None:
        """A call needing a skill no connected agent has stays queued at position 1."""
        await sign_in(agents, "english", skills=("lang:en",))
        await offer_streams.open("english")
        contact = await submit(contacts, "call-1", skills=("lang:es",))
        status = await contact_state(contacts, contact.contact_id)
        assert status.contact.state == pb.CONTACT_STATE_QUEUED
        assert status.queue_position == 1

    async def test_agent_holds_three_chats_at_once(
        self,
        contacts: pb_grpc.ContactServiceAsyncStub,
        agents: pb_grpc.AgentServiceAsyncStub,
        offer_streams: OfferStreams,
    ) -> None:
        """With the default chat capacity of 3, three chats are offered together; a fourth waits."""
        await sign_in(agents, "alice")
        stream = await offer_streams.open("alice")
        chats = [await submit(contacts, f"chat-{i}", pb.CHANNEL_CHAT) for i in range(4)]
        offers = [await next_offer(stream) for _ in range(3)]
        assert [o.contact.contact_id for o in offers] == [c.contact_id for c in chats[:3]]
        assert len({o.offer_id for o in offers}) == 3
        fourth = await contact_state(contacts, chats[3].contact_id)
        assert fourth.contact.state == pb.CONTACT_STATE_QUEUED
        assert fourth.queue_position == 1
        # Accepting one does not free capacity; completing one does.
        for offer in offers:
            await agents.AcceptOffer(
                pb.AcceptOfferRequest(agent_id="alice", offer_id=offer.offer_id)
            )
        await finish(agents, "alice", offers[0].contact.contact_id, "done")
        offer = await next_offer(stream)
        assert offer.contact.contact_id == chats[3].contact_id

    async def test_chat_capacity_from_sign_in_is_respected(
        self,
        contacts: pb_grpc.ContactServiceAsyncStub,
        agents: pb_grpc.AgentServiceAsyncStub,
        offer_streams: OfferStreams,
    ) -> None:
        """An agent signed in with chat capacity 1 and no phone gets one chat at a time."""
        await sign_in(agents, "alice", capacities={pb.CHANNEL_CHAT: 1, pb.CHANNEL_PHONE: 0})
        stream = await offer_streams.open("alice")
        first = await submit(contacts, "chat-1", pb.CHANNEL_CHAT)
        second = await submit(contacts, "chat-2", pb.CHANNEL_CHAT)
        call = await submit(contacts, "call-1")
        offer = await next_offer(stream)
        assert offer.contact.contact_id == first.contact_id
        for contact in (second, call):
            status = await contact_state(contacts, contact.contact_id)
            assert status.contact.state == pb.CONTACT_STATE_QUEUED

    async def test_longest_idle_agent_gets_the_offer(
        self,
        contacts: pb_grpc.ContactServiceAsyncStub,
        agents: pb_grpc.AgentServiceAsyncStub,
        offer_streams: OfferStreams,
    ) -> None:
        """Each call goes to the agent free the longest, whatever the names or sign-in order."""
        await sign_in(agents, "zoe")
        await sign_in(agents, "adam")
        zoe = await offer_streams.open("zoe")
        adam = await offer_streams.open("adam")
        await submit(contacts, "call-1")
        offer = await next_offer(zoe)
        await handle(agents, "zoe", offer)
        # Zoe just finished a call; Adam has been free since sign-in.
        second = await submit(contacts, "call-2")
        offer = await next_offer(adam)
        assert offer.contact.contact_id == second.contact_id
        third = await submit(contacts, "call-3")
        offer = await next_offer(zoe)
        assert offer.contact.contact_id == third.contact_id

    async def test_away_agent_gets_no_offers_until_ready(
        self,
        contacts: pb_grpc.ContactServiceAsyncStub,
        agents: pb_grpc.AgentServiceAsyncStub,
        offer_streams: OfferStreams,
    ) -> None:
        """An agent signed in AWAY gets nothing; setting READY brings the waiting call."""
        agent = await sign_in(agents, "alice", status=pb.AGENT_STATUS_AWAY)
        assert agent.status == pb.AGENT_STATUS_AWAY
        stream = await offer_streams.open("alice")
        contact = await submit(contacts, "call-1")
        status = await contact_state(contacts, contact.contact_id)
        assert status.contact.state == pb.CONTACT_STATE_QUEUED
        ready = await agents.SetStatus(
            pb.SetStatusRequest(agent_id="alice", status=pb.AGENT_STATUS_READY)
        )
        assert ready.agent.status == pb.AGENT_STATUS_READY
        offer = await next_offer(stream)
        assert offer.contact.contact_id == contact.contact_id


class TestPhoneReserve:
    @pytest.fixture
    def policy(self) -> RoutingPolicy:
        """The default phone reserve: the last idle phone-capable agent is kept for calls."""
        return RoutingPolicy(phone_reserve=1)

    async def test_last_phone_agent_is_not_given_chat(
        self,
        contacts: pb_grpc.ContactServiceAsyncStub,
        agents: pb_grpc.AgentServiceAsyncStub,
        offer_streams: OfferStreams,
    ) -> None:
        """With one idle phone-capable agent a chat waits, and a call that rings gets her."""
        await sign_in(agents, "alice")
        stream = await offer_streams.open("alice")
        chat = await submit(contacts, "chat-1", pb.CHANNEL_CHAT)
        status = await contact_state(contacts, chat.contact_id)
        assert status.contact.state == pb.CONTACT_STATE_QUEUED
        call = await submit(contacts, "call-1")
        offer = await next_offer(stream)
        assert offer.contact.contact_id == call.contact_id

    async def test_second_phone_agent_frees_one_for_chat(
        self,
        contacts: pb_grpc.ContactServiceAsyncStub,
        agents: pb_grpc.AgentServiceAsyncStub,
        offer_streams: OfferStreams,
    ) -> None:
        """With two idle phone-capable agents one takes the chat; the next call gets the other."""
        await sign_in(agents, "alice")
        await sign_in(agents, "bob")
        alice = await offer_streams.open("alice")
        bob = await offer_streams.open("bob")
        chat = await submit(contacts, "chat-1", pb.CHANNEL_CHAT)
        offer = await next_offer(alice)
        assert offer.contact.contact_id == chat.contact_id
        call = await submit(contacts, "call-1")
        offer = await next_offer(bob)
        assert offer.contact.contact_id == call.contact_id

    async def test_agent_without_phone_takes_chat_while_the_reserve_waits(
        self,
        contacts: pb_grpc.ContactServiceAsyncStub,
        agents: pb_grpc.AgentServiceAsyncStub,
        offer_streams: OfferStreams,
    ) -> None:
        """A chat goes to the chat-only agent, not to the longer-idle phone reserve."""
        await sign_in(agents, "alice")
        await sign_in(agents, "carol", capacities={pb.CHANNEL_PHONE: 0})
        await offer_streams.open("alice")
        carol = await offer_streams.open("carol")
        chat = await submit(contacts, "chat-1", pb.CHANNEL_CHAT)
        offer = await next_offer(carol)
        assert offer.contact.contact_id == chat.contact_id


class TestDecline:
    async def test_declined_contact_goes_to_the_other_agent(
        self,
        contacts: pb_grpc.ContactServiceAsyncStub,
        agents: pb_grpc.AgentServiceAsyncStub,
        offer_streams: OfferStreams,
        db: asyncpg.Connection,
    ) -> None:
        """After Alice declines, Bob is offered the call, with its original queued_at."""
        await sign_in(agents, "alice")
        await sign_in(agents, "bob")
        alice = await offer_streams.open("alice")
        bob = await offer_streams.open("bob")
        contact = await submit(contacts, "call-1")
        first = await next_offer(alice)
        declined = await agents.DeclineOffer(
            pb.DeclineOfferRequest(agent_id="alice", offer_id=first.offer_id)
        )
        assert declined.contact.contact_id == contact.contact_id
        assert declined.contact.state == pb.CONTACT_STATE_OFFERED
        assert declined.contact.agent_id == "bob"
        second = await next_offer(bob)
        assert second.contact.contact_id == contact.contact_id
        assert second.offer_id != first.offer_id
        assert second.contact.offer_count == 2
        assert second.contact.timings.queued_at == contact.timings.queued_at
        assert await event_kinds(db, contact.contact_id) == [
            "submitted",
            "offered",
            "declined",
            "requeued",
            "offered",
        ]
        error = await rpc_error(
            agents.AcceptOffer(pb.AcceptOfferRequest(agent_id="alice", offer_id=first.offer_id))
        )
        assert error.code() == grpc.StatusCode.FAILED_PRECONDITION

    async def test_declining_twice_is_refused(
        self,
        contacts: pb_grpc.ContactServiceAsyncStub,
        agents: pb_grpc.AgentServiceAsyncStub,
        offer_streams: OfferStreams,
    ) -> None:
        """A second decline of the same offer is FAILED_PRECONDITION."""
        _, _, offer = await offered_call(contacts, agents, offer_streams)
        request = pb.DeclineOfferRequest(agent_id="alice", offer_id=offer.offer_id)
        await agents.DeclineOffer(request)
        error = await rpc_error(agents.DeclineOffer(request))
        assert error.code() == grpc.StatusCode.FAILED_PRECONDITION


class TestOffersAreTheirAgents:
    async def test_another_agent_cannot_take_or_decline_an_open_offer(
        self,
        contacts: pb_grpc.ContactServiceAsyncStub,
        agents: pb_grpc.AgentServiceAsyncStub,
        offer_streams: OfferStreams,
        db: asyncpg.Connection,
    ) -> None:
        """Bob's AcceptOffer and DeclineOffer of Alice's open offer are FAILED_PRECONDITION."""
        await sign_in(agents, "alice")
        await sign_in(agents, "bob")
        alice = await offer_streams.open("alice")
        await offer_streams.open("bob")
        contact = await submit(contacts, "call-1")
        offer = await next_offer(alice)
        error = await rpc_error(
            agents.AcceptOffer(pb.AcceptOfferRequest(agent_id="bob", offer_id=offer.offer_id))
        )
        assert error.code() == grpc.StatusCode.FAILED_PRECONDITION
        error = await rpc_error(
            agents.DeclineOffer(pb.DeclineOfferRequest(agent_id="bob", offer_id=offer.offer_id))
        )
        assert error.code() == grpc.StatusCode.FAILED_PRECONDITION
        status = await contact_state(contacts, contact.contact_id)
        assert (status.contact.state, status.contact.agent_id) == (
            pb.CONTACT_STATE_OFFERED,
            "alice",
        )
        await recorded(db, contact.contact_id, "submitted", "offered")
        accepted = await agents.AcceptOffer(
            pb.AcceptOfferRequest(agent_id="alice", offer_id=offer.offer_id)
        )
        assert accepted.contact.agent_id == "alice"


class TestDeclineAlone:
    @pytest.fixture
    def policy(self) -> RoutingPolicy:
        """A short decline exclusion, so the only agent gets the contact back soon."""
        return RoutingPolicy(phone_reserve=0, decline_exclusion=0.3)

    async def test_contact_waits_out_the_exclusion(
        self,
        contacts: pb_grpc.ContactServiceAsyncStub,
        agents: pb_grpc.AgentServiceAsyncStub,
        offer_streams: OfferStreams,
    ) -> None:
        """Right after the only agent declines, the contact is back in the queue at position 1."""
        _, contact, offer = await offered_call(contacts, agents, offer_streams)
        declined = await agents.DeclineOffer(
            pb.DeclineOfferRequest(agent_id="alice", offer_id=offer.offer_id)
        )
        assert declined.contact.state == pb.CONTACT_STATE_QUEUED
        assert declined.contact.agent_id == ""
        assert declined.contact.timings.queued_at == contact.timings.queued_at

    async def test_only_agent_is_offered_it_again_after_the_exclusion(
        self,
        contacts: pb_grpc.ContactServiceAsyncStub,
        agents: pb_grpc.AgentServiceAsyncStub,
        offer_streams: OfferStreams,
        db: asyncpg.Connection,
    ) -> None:
        """Once decline_exclusion (0.3 s) has passed, the only agent is offered it again."""
        alice, contact, first = await offered_call(contacts, agents, offer_streams)
        await agents.DeclineOffer(pb.DeclineOfferRequest(agent_id="alice", offer_id=first.offer_id))
        # Nothing else would ever offer the queued contact again: the re-offer must come from
        # the exclusion ending (checked below), so the wait can be generous for a loaded machine.
        again = await next_offer(alice, within=10.0)
        assert again.contact.contact_id == contact.contact_id
        assert again.contact.offer_count == 2
        assert again.contact.timings.queued_at == contact.timings.queued_at
        declined_at = await db.fetchval(
            "SELECT at FROM contact_events WHERE contact_id = $1::uuid AND kind = 'declined'",
            contact.contact_id,
        )
        reoffered_at = again.contact.timings.offered_at.ToDatetime(tzinfo=declined_at.tzinfo)
        assert reoffered_at - declined_at >= timedelta(seconds=0.3)


OFFER_TIMEOUT = 1.0


class TestOfferTimeout:
    @pytest.fixture
    def policy(self) -> RoutingPolicy:
        """Offers expire after 1 s: soon enough to wait out, long enough that a loaded machine
        still accepts the re-offer (an AcceptOffer round trip) before it expires too."""
        return RoutingPolicy(phone_reserve=0, offer_timeout=OFFER_TIMEOUT)

    async def test_unanswered_offer_returns_the_contact_and_sets_the_agent_away(
        self,
        contacts: pb_grpc.ContactServiceAsyncStub,
        agents: pb_grpc.AgentServiceAsyncStub,
        reporting: pb_grpc.ReportingServiceAsyncStub,
        offer_streams: OfferStreams,
        db: asyncpg.Connection,
    ) -> None:
        """The offer is withdrawn (timed_out), the agent is AWAY "missed", the call re-queued."""
        alice, contact, offer = await offered_call(contacts, agents, offer_streams)
        offered_at = offer.contact.timings.offered_at.ToDatetime()
        assert offer.expires_at.ToDatetime() - offered_at == timedelta(seconds=OFFER_TIMEOUT)
        withdrawn = await next_withdrawal(alice)
        assert withdrawn.offer_id == offer.offer_id
        assert withdrawn.contact_id == contact.contact_id
        assert withdrawn.reason == "timed_out"
        status = await contact_state(contacts, contact.contact_id)
        assert status.contact.state == pb.CONTACT_STATE_QUEUED
        assert status.contact.timings.queued_at == contact.timings.queued_at
        assert status.contact.agent_id == ""
        assert status.queue_position == 1
        await recorded(
            db, contact.contact_id, "submitted", "offered", "offer_timed_out", "requeued"
        )
        log = await status_log(db, "alice")
        assert (log[-1]["kind"], log[-1]["status"], log[-1]["reason"]) == (
            "status_changed",
            "away",
            "missed",
        )
        queue = await reporting.GetQueueStatus(pb.GetQueueStatusRequest())
        assert queue.agents.away == 1
        assert queue.agents.idle == 0
        error = await rpc_error(
            agents.AcceptOffer(pb.AcceptOfferRequest(agent_id="alice", offer_id=offer.offer_id))
        )
        assert error.code() == grpc.StatusCode.FAILED_PRECONDITION

    async def test_agent_back_from_missed_gets_the_call_again(
        self,
        contacts: pb_grpc.ContactServiceAsyncStub,
        agents: pb_grpc.AgentServiceAsyncStub,
        offer_streams: OfferStreams,
    ) -> None:
        """When the missed agent sets READY it is offered the same call, now offered twice."""
        alice, contact, _ = await offered_call(contacts, agents, offer_streams)
        await next_withdrawal(alice)
        ready = await agents.SetStatus(
            pb.SetStatusRequest(agent_id="alice", status=pb.AGENT_STATUS_READY)
        )
        assert ready.agent.away_reason == ""
        again = await next_offer(alice)
        assert again.contact.contact_id == contact.contact_id
        assert again.contact.offer_count == 2
        accepted = await agents.AcceptOffer(
            pb.AcceptOfferRequest(agent_id="alice", offer_id=again.offer_id)
        )
        assert accepted.contact.state == pb.CONTACT_STATE_CONNECTED

    async def test_timed_out_call_goes_to_another_ready_agent(
        self,
        contacts: pb_grpc.ContactServiceAsyncStub,
        agents: pb_grpc.AgentServiceAsyncStub,
        offer_streams: OfferStreams,
    ) -> None:
        """A call whose offer timed out is offered to the next ready agent at once."""
        await sign_in(agents, "alice")
        await sign_in(agents, "bob")
        alice = await offer_streams.open("alice")
        bob = await offer_streams.open("bob")
        contact = await submit(contacts, "call-1")
        await next_offer(alice)
        await next_withdrawal(alice)
        offer = await next_offer(bob)
        assert offer.contact.contact_id == contact.contact_id
        await agents.AcceptOffer(pb.AcceptOfferRequest(agent_id="bob", offer_id=offer.offer_id))


class TestLostStream:
    async def test_offered_contact_returns_to_the_queue_and_connected_one_stays(
        self,
        contacts: pb_grpc.ContactServiceAsyncStub,
        agents: pb_grpc.AgentServiceAsyncStub,
        offer_streams: OfferStreams,
        db: asyncpg.Connection,
    ) -> None:
        """Losing the stream requeues the unanswered chat; the connected chat can be finished."""
        await sign_in(agents, "alice", capacities={pb.CHANNEL_PHONE: 0})
        stream = await offer_streams.open("alice")
        talking = await submit(contacts, "chat-1", pb.CHANNEL_CHAT)
        offer = await next_offer(stream)
        await agents.AcceptOffer(pb.AcceptOfferRequest(agent_id="alice", offer_id=offer.offer_id))
        waiting = await submit(contacts, "chat-2", pb.CHANNEL_CHAT)
        offered = await next_offer(stream)
        assert offered.contact.contact_id == waiting.contact_id

        stream.cancel()
        status = await wait_for_state(contacts, waiting.contact_id, pb.CONTACT_STATE_QUEUED)
        assert status.contact.timings.queued_at == waiting.timings.queued_at
        assert status.queue_position == 1
        held = await contact_state(contacts, talking.contact_id)
        assert held.contact.state == pb.CONTACT_STATE_CONNECTED
        assert held.contact.agent_id == "alice"

        # No RPC waits for this write (the stream just ended): wait until it lands.
        async def requeue_recorded() -> bool:
            kinds = await event_kinds(db, waiting.contact_id)
            return kinds == ["submitted", "offered", "requeued"]

        await eventually(requeue_recorded, what="the requeue of the lost offer recorded")
        reason = await db.fetchval(
            "SELECT reason FROM contact_events WHERE contact_id = $1::uuid AND kind = 'requeued'",
            waiting.contact_id,
        )
        assert reason == "agent_lost"

        reopened = await offer_streams.open("alice")
        again = await next_offer(reopened)
        assert again.contact.contact_id == waiting.contact_id
        assert again.contact.offer_count == 2
        ended = await agents.EndContact(
            pb.EndContactRequest(agent_id="alice", contact_id=talking.contact_id)
        )
        assert ended.contact.state == pb.CONTACT_STATE_WRAP_UP
        done = await agents.CompleteContact(
            pb.CompleteContactRequest(
                agent_id="alice", contact_id=talking.contact_id, disposition="order-status"
            )
        )
        assert done.contact.state == pb.CONTACT_STATE_COMPLETED

    async def test_connected_call_can_be_ended_while_disconnected(
        self,
        contacts: pb_grpc.ContactServiceAsyncStub,
        agents: pb_grpc.AgentServiceAsyncStub,
        offer_streams: OfferStreams,
    ) -> None:
        """The conversation is not tied to the stream: End and Complete work without it."""
        stream, contact, offer = await offered_call(contacts, agents, offer_streams)
        await agents.AcceptOffer(pb.AcceptOfferRequest(agent_id="alice", offer_id=offer.offer_id))
        await offer_streams.lose(stream, "alice")
        done = await finish(agents, "alice", contact.contact_id)
        assert done.state == pb.CONTACT_STATE_COMPLETED

    async def test_second_stream_replaces_the_first_and_gets_open_offers(
        self,
        contacts: pb_grpc.ContactServiceAsyncStub,
        agents: pb_grpc.AgentServiceAsyncStub,
        offer_streams: OfferStreams,
    ) -> None:
        """Opening a second stream ends the first (ABORTED: replaced, not to be reopened)
        and resends the offer still open."""
        first, contact, offer = await offered_call(contacts, agents, offer_streams)
        second = await offer_streams.open("alice", wait_connected=False)
        resent = await next_offer(second)
        assert resent.offer_id == offer.offer_id
        assert (await rpc_error(first.read())).code() == grpc.StatusCode.ABORTED
        accepted = await agents.AcceptOffer(
            pb.AcceptOfferRequest(agent_id="alice", offer_id=offer.offer_id)
        )
        assert accepted.contact.contact_id == contact.contact_id

    async def test_stream_for_an_agent_not_signed_in_is_refused(
        self, agents: pb_grpc.AgentServiceAsyncStub, offer_streams: OfferStreams
    ) -> None:
        """StreamOffers for an unknown agent ends with NOT_FOUND."""
        stream = await offer_streams.open("ghost", wait_connected=False)
        error = await rpc_error(stream.read())
        assert error.code() == grpc.StatusCode.NOT_FOUND


class TestSignOut:
    async def test_refused_while_holding_a_connected_contact(
        self,
        contacts: pb_grpc.ContactServiceAsyncStub,
        agents: pb_grpc.AgentServiceAsyncStub,
        offer_streams: OfferStreams,
        db: asyncpg.Connection,
    ) -> None:
        """SignOut is FAILED_PRECONDITION during a call and in wrap-up, allowed after completion."""
        stream, contact, offer = await offered_call(contacts, agents, offer_streams)
        await agents.AcceptOffer(pb.AcceptOfferRequest(agent_id="alice", offer_id=offer.offer_id))
        request = pb.SignOutRequest(agent_id="alice")
        error = await rpc_error(agents.SignOut(request))
        assert error.code() == grpc.StatusCode.FAILED_PRECONDITION
        await agents.EndContact(
            pb.EndContactRequest(agent_id="alice", contact_id=contact.contact_id)
        )
        error = await rpc_error(agents.SignOut(request))
        assert error.code() == grpc.StatusCode.FAILED_PRECONDITION
        assert [r["kind"] for r in await status_log(db, "alice")] == ["signed_in", "connected"]
        await agents.CompleteContact(
            pb.CompleteContactRequest(
                agent_id="alice", contact_id=contact.contact_id, disposition="order-status"
            )
        )
        signed_out = await agents.SignOut(request)
        assert signed_out.agent.status == pb.AGENT_STATUS_OFFLINE
        assert await stream_ended(stream)
        log = await status_log(db, "alice")
        assert (log[-1]["kind"], log[-1]["status"]) == ("signed_out", "offline")

    async def test_sign_out_returns_an_open_offer_to_the_queue(
        self,
        contacts: pb_grpc.ContactServiceAsyncStub,
        agents: pb_grpc.AgentServiceAsyncStub,
        offer_streams: OfferStreams,
        db: asyncpg.Connection,
    ) -> None:
        """An agent holding only an offer may sign out; the contact is queued again."""
        _, contact, _ = await offered_call(contacts, agents, offer_streams)
        await agents.SignOut(pb.SignOutRequest(agent_id="alice"))
        status = await contact_state(contacts, contact.contact_id)
        assert status.contact.state == pb.CONTACT_STATE_QUEUED
        assert await event_kinds(db, contact.contact_id) == ["submitted", "offered", "requeued"]

    async def test_signed_out_agent_is_unknown(self, agents: pb_grpc.AgentServiceAsyncStub) -> None:
        """After SignOut, SetStatus and a second SignOut answer NOT_FOUND."""
        await sign_in(agents, "alice")
        await agents.SignOut(pb.SignOutRequest(agent_id="alice"))
        error = await rpc_error(agents.SignOut(pb.SignOutRequest(agent_id="alice")))
        assert error.code() == grpc.StatusCode.NOT_FOUND
        error = await rpc_error(
            agents.SetStatus(pb.SetStatusRequest(agent_id="alice", status=pb.AGENT_STATUS_READY))
        )
        assert error.code() == grpc.StatusCode.NOT_FOUND


class TestConversation:
    async def test_accept_end_and_complete_are_idempotent(
        self,
        contacts: pb_grpc.ContactServiceAsyncStub,
        agents: pb_grpc.AgentServiceAsyncStub,
        offer_streams: OfferStreams,
        db: asyncpg.Connection,
    ) -> None:
        """Retrying Accept, End and Complete returns the contact and records each step once."""
        _, contact, offer = await offered_call(contacts, agents, offer_streams)
        accept = pb.AcceptOfferRequest(agent_id="alice", offer_id=offer.offer_id)
        first = await agents.AcceptOffer(accept)
        assert (await agents.AcceptOffer(accept)).contact == first.contact
        end = pb.EndContactRequest(agent_id="alice", contact_id=contact.contact_id)
        ended = await agents.EndContact(end)
        assert (await agents.EndContact(end)).contact == ended.contact
        complete = pb.CompleteContactRequest(
            agent_id="alice", contact_id=contact.contact_id, disposition="return"
        )
        done = await agents.CompleteContact(complete)
        assert (await agents.CompleteContact(complete)).contact == done.contact
        assert await event_kinds(db, contact.contact_id) == [
            "submitted",
            "offered",
            "answered",
            "ended",
            "completed",
        ]
        other = pb.CompleteContactRequest(
            agent_id="alice", contact_id=contact.contact_id, disposition="order-status"
        )
        error = await rpc_error(agents.CompleteContact(other))
        assert error.code() == grpc.StatusCode.FAILED_PRECONDITION

    async def test_simultaneous_completes_both_succeed(
        self,
        contacts: pb_grpc.ContactServiceAsyncStub,
        agents: pb_grpc.AgentServiceAsyncStub,
        offer_streams: OfferStreams,
        db: asyncpg.Connection,
    ) -> None:
        """Two identical CompleteContact calls sent together both answer COMPLETED."""
        await sign_in(agents, "alice")
        stream = await offer_streams.open("alice")
        for i in range(5):
            contact = await submit(contacts, f"call-{i}")
            offer = await next_offer(stream)
            await agents.AcceptOffer(
                pb.AcceptOfferRequest(agent_id="alice", offer_id=offer.offer_id)
            )
            await agents.EndContact(
                pb.EndContactRequest(agent_id="alice", contact_id=contact.contact_id)
            )
            request = pb.CompleteContactRequest(
                agent_id="alice", contact_id=contact.contact_id, disposition="order-status"
            )
            first, second = await asyncio.gather(
                agents.CompleteContact(request), agents.CompleteContact(request)
            )
            assert first.contact == second.contact
            assert first.contact.state == pb.CONTACT_STATE_COMPLETED
            assert (await event_kinds(db, contact.contact_id)).count("completed") == 1

    async def test_timings_are_recorded_in_order(
        self,
        contacts: pb_grpc.ContactServiceAsyncStub,
        agents: pb_grpc.AgentServiceAsyncStub,
        offer_streams: OfferStreams,
        db: asyncpg.Connection,
    ) -> None:
        """queued <= offered <= answered <= ended <= completed, and handle = talk + ACW."""
        await sign_in(agents, "alice")
        stream = await offer_streams.open("alice")
        contact = await submit(contacts, "chat-1", pb.CHANNEL_CHAT)
        await handle(agents, "alice", await next_offer(stream))
        row = await db.fetchrow(
            "SELECT * FROM contact_timings WHERE contact_id = $1::uuid", contact.contact_id
        )
        assert row is not None
        stamps = [
            row[n] for n in ("queued_at", "offered_at", "answered_at", "ended_at", "completed_at")
        ]
        assert stamps == sorted(stamps)
        assert row["abandoned_at"] is None
        assert row["agent_id"] == "alice"
        assert row["offer_count"] == 1
        assert row["handle_seconds"] == pytest.approx(row["talk_seconds"] + row["acw_seconds"])


class TestStatusLog:
    async def test_every_status_and_presence_change_is_logged(
        self,
        agents: pb_grpc.AgentServiceAsyncStub,
        offer_streams: OfferStreams,
        db: asyncpg.Connection,
    ) -> None:
        """Sign-in, connect, away, ready, disconnect and sign-out each write one row."""
        await sign_in(agents, "alice", skills=("returns",))
        stream = await offer_streams.open("alice")
        await agents.SetStatus(
            pb.SetStatusRequest(agent_id="alice", status=pb.AGENT_STATUS_AWAY, away_reason="break")
        )
        await agents.SetStatus(pb.SetStatusRequest(agent_id="alice", status=pb.AGENT_STATUS_READY))
        await offer_streams.lose(stream, "alice")
        await agents.SignOut(pb.SignOutRequest(agent_id="alice"))
        rows = [
            (r["kind"], r["status"], r["reason"], r["connected"])
            for r in await status_log(db, "alice")
        ]
        assert rows == [
            ("signed_in", "ready", "", False),
            ("connected", "ready", "", True),
            ("status_changed", "away", "break", True),
            ("status_changed", "ready", "", True),
            ("disconnected", "ready", "", False),
            ("signed_out", "offline", "", False),
        ]
        agent = await db.fetchrow("SELECT * FROM agents WHERE id = 'alice'")
        assert agent is not None
        assert agent["skills"] == ["returns"]

    async def test_setting_the_same_status_logs_nothing(
        self, agents: pb_grpc.AgentServiceAsyncStub, db: asyncpg.Connection
    ) -> None:
        """SetStatus to the status the agent already has changes nothing."""
        await sign_in(agents, "alice")
        response = await agents.SetStatus(
            pb.SetStatusRequest(agent_id="alice", status=pb.AGENT_STATUS_READY)
        )
        assert response.agent.status == pb.AGENT_STATUS_READY
        assert [r["kind"] for r in await status_log(db, "alice")] == ["signed_in"]

    async def test_sign_in_answers_the_agent_as_the_router_sees_it(
        self, agents: pb_grpc.AgentServiceAsyncStub
    ) -> None:
        """SignIn fills in default capacities and reports the agent READY, not connected."""
        agent = await sign_in(
            agents, "alice", skills=("lang:es", "returns"), capacities={pb.CHANNEL_EMAIL: 5}
        )
        assert agent.agent_id == "alice"
        assert agent.status == pb.AGENT_STATUS_READY
        assert list(agent.skills) == ["lang:es", "returns"]
        assert {c.channel: c.capacity for c in agent.capacities} == {
            pb.CHANNEL_PHONE: 1,
            pb.CHANNEL_CHAT: 3,
            pb.CHANNEL_EMAIL: 5,
        }
        assert not agent.connected
        assert agent.HasField("signed_in_at")
