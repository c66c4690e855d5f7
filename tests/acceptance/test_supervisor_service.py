"""SupervisorService over a real port with a real PostgreSQL: each action, who may take
it, what is recorded of it, bad input changing nothing, and a restart keeping it."""

from __future__ import annotations

import datetime as dt
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import asyncpg
import grpc
import pytest
from contactrouter.v1 import contact_router_pb2 as pb
from contactrouter.v1 import contact_router_pb2_grpc as pb_grpc
from google.protobuf.timestamp_pb2 import Timestamp

from router.api.access import LOOPBACK_CALLER, Principal, Role, Tokens, digest_of, new_token
from router.domain import RoutingPolicy
from router.server import RunningRouter, start_router
from tests.acceptance.conftest import (
    OfferStreams,
    contact_state,
    details,
    eventually,
    next_offer,
    next_withdrawal,
    reason_of,
    recorded,
    row_counts,
    rpc_error,
    sign_in,
    stream_ended,
    submit,
)

REASON = "spam from a known sender"
ROLES = {
    "floor-lead": Role.SUPERVISOR,
    "ops": Role.ADMIN,
    "voice-gateway": Role.GATEWAY,
    "alice-desk": Role.AGENT,
    "reports-job": Role.REPORTING,
}
METHODS = tuple(m.name for m in pb.DESCRIPTOR.services_by_name["SupervisorService"].methods)
FAKE_ID = "00000000-0000-4000-8000-000000000000"


@pytest.fixture
def supervisor(channel: grpc.aio.Channel) -> pb_grpc.SupervisorServiceAsyncStub:
    return pb_grpc.SupervisorServiceStub(channel)


async def _audit(db: asyncpg.Connection, contact_id: str, kind: str) -> asyncpg.Record:
    row = await db.fetchrow(
        "SELECT reason, supervisor, supervisor_reason, agent_id FROM contact_events "
        "WHERE contact_id = $1::uuid AND kind = $2",
        contact_id,
        kind,
    )
    assert row is not None, f"no {kind} event"
    return row


def _month() -> tuple[Timestamp, Timestamp]:
    now = dt.datetime.now(dt.UTC)
    start, end = Timestamp(), Timestamp()
    start.FromDatetime(now - dt.timedelta(days=1))
    end.FromDatetime(now + dt.timedelta(days=1))
    return start, end


class TestWhoMaySupervise:
    @pytest.fixture
    def tokens(self) -> dict[str, str]:
        return {name: new_token() for name in ROLES}

    @pytest.fixture
    async def guarded(
        self, database_url: str, policy: RoutingPolicy, tokens: dict[str, str]
    ) -> AsyncIterator[RunningRouter]:
        principals = Tokens(
            {
                digest_of(tokens[name]): Principal(
                    name, role, "alice" if role is Role.AGENT else None
                )
                for name, role in ROLES.items()
            }
        )
        running = await start_router(database_url, policy, tokens=principals)
        try:
            yield running
        finally:
            await running.stop(grace=1.0)

    async def test_only_supervisor_and_admin_tokens_reach_any_rpc(
        self, guarded: RunningRouter, tokens: dict[str, str], db: asyncpg.Connection
    ) -> None:
        """Every RPC: PERMISSION_DENIED for agent, gateway and reporting tokens,
        UNAUTHENTICATED without one; a supervisor's or an admin's empty request gets as far
        as validation (INVALID_ARGUMENT). Nothing is recorded."""
        assert len(METHODS) == 7
        before = await row_counts(db)
        async with grpc.aio.insecure_channel(f"127.0.0.1:{guarded.port}") as channel:
            stub = pb_grpc.SupervisorServiceStub(channel)
            for method in METHODS:
                call: Callable[..., Awaitable[Any]] = getattr(stub, method)
                request = getattr(pb, f"{method}Request")()
                for name, role in ROLES.items():
                    auth = (("authorization", f"Bearer {tokens[name]}"),)
                    error = await rpc_error(call(request, metadata=auth))
                    if role in (Role.SUPERVISOR, Role.ADMIN):
                        assert error.code() is grpc.StatusCode.INVALID_ARGUMENT, (method, name)
                    else:
                        assert error.code() is grpc.StatusCode.PERMISSION_DENIED, (method, name)
                        assert reason_of(error) == "PERMISSION_DENIED"
                error = await rpc_error(call(request))
                assert error.code() is grpc.StatusCode.UNAUTHENTICATED, method
        assert await row_counts(db) == before

    async def test_the_token_name_is_recorded_with_the_action(
        self, guarded: RunningRouter, tokens: dict[str, str], db: asyncpg.Connection
    ) -> None:
        """contact_events and the event stream name the supervisor's token and its reason."""
        auth = {
            name: (("authorization", f"Bearer {tokens[name]}"),)
            for name in ("floor-lead", "voice-gateway", "reports-job")
        }
        async with grpc.aio.insecure_channel(f"127.0.0.1:{guarded.port}") as channel:
            submitted = await pb_grpc.ContactServiceStub(channel).SubmitContact(
                pb.SubmitContactRequest(
                    idempotency_key="spam-1", channel=pb.CHANNEL_EMAIL, customer_id="x@spam"
                ),
                metadata=auth["voice-gateway"],
            )
            contact_id = submitted.contact.contact_id
            await pb_grpc.SupervisorServiceStub(channel).CancelContact(
                pb.CancelContactRequest(contact_id=contact_id, reason=REASON),
                metadata=auth["floor-lead"],
            )
            row = await _audit(db, contact_id, "cancelled")
            assert (row["supervisor"], row["supervisor_reason"]) == ("floor-lead", REASON)
            events = pb_grpc.EventServiceStub(channel).StreamEvents(
                pb.StreamEventsRequest(), metadata=auth["reports-job"]
            )
            try:
                while True:
                    message = await events.read()
                    assert isinstance(message, pb.StreamEventsResponse)
                    if message.contact_event.kind == "cancelled":
                        break
                event = message.contact_event
                assert (event.supervisor, event.supervisor_reason) == ("floor-lead", REASON)
                assert event.timings.HasField("cancelled_at")
            finally:
                events.cancel()


class TestContactActions:
    async def test_cancelling_spam_ends_it_apart_from_abandons(
        self,
        contacts: pb_grpc.ContactServiceAsyncStub,
        supervisor: pb_grpc.SupervisorServiceAsyncStub,
        reporting: pb_grpc.ReportingServiceAsyncStub,
        db: asyncpg.Connection,
    ) -> None:
        """CANCELLED with its instant; a retry answers the same; an abandon is refused;
        the reports count it as cancelled, not abandoned nor waiting, outside service level."""
        contact = await submit(contacts, "spam-1", pb.CHANNEL_EMAIL)
        cancel = pb.CancelContactRequest(contact_id=contact.contact_id, reason=REASON)
        cancelled = (await supervisor.CancelContact(cancel)).contact
        assert cancelled.state == pb.CONTACT_STATE_CANCELLED
        assert cancelled.timings.HasField("cancelled_at")
        assert (await supervisor.CancelContact(cancel)).contact == cancelled
        status = await contact_state(contacts, contact.contact_id)
        assert status.contact.state == pb.CONTACT_STATE_CANCELLED
        error = await rpc_error(
            contacts.AbandonContact(pb.AbandonContactRequest(contact_id=contact.contact_id))
        )
        assert error.code() is grpc.StatusCode.FAILED_PRECONDITION
        await recorded(db, contact.contact_id, "submitted", "cancelled")
        audit = await _audit(db, contact.contact_id, "cancelled")
        assert (audit["supervisor"], audit["supervisor_reason"]) == (LOOPBACK_CALLER, REASON)
        start, end = _month()
        report = await reporting.GetContactReport(
            pb.GetContactReportRequest(start=start, end=end, interval=pb.INTERVAL_LENGTH_DAY)
        )
        (row,) = report.rows
        assert (row.offered, row.cancelled, row.abandoned, row.still_waiting) == (1, 1, 0, 0)
        assert not row.HasField("service_level")
        assert not row.HasField("abandonment_rate")
        level = await reporting.GetServiceLevel(
            pb.GetServiceLevelRequest(start=start, end=end, interval=pb.INTERVAL_LENGTH_DAY)
        )
        (level_row,) = level.rows
        assert (level_row.cancelled, level_row.abandoned) == (1, 0)
        assert "cancelled" in level.formula

    async def test_an_offered_contact_is_withdrawn_from_its_agent(
        self,
        contacts: pb_grpc.ContactServiceAsyncStub,
        agents: pb_grpc.AgentServiceAsyncStub,
        supervisor: pb_grpc.SupervisorServiceAsyncStub,
        offer_streams: OfferStreams,
    ) -> None:
        await sign_in(agents, "alice")
        stream = await offer_streams.open("alice")
        contact = await submit(contacts, "spam-2", pb.CHANNEL_EMAIL)
        offer = await next_offer(stream)
        await supervisor.CancelContact(
            pb.CancelContactRequest(contact_id=contact.contact_id, reason=REASON)
        )
        withdrawn = await next_withdrawal(stream)
        assert (withdrawn.offer_id, withdrawn.reason) == (offer.offer_id, "cancelled")

    async def test_a_raised_priority_puts_the_contact_first_in_line(
        self,
        contacts: pb_grpc.ContactServiceAsyncStub,
        supervisor: pb_grpc.SupervisorServiceAsyncStub,
        db: asyncpg.Connection,
    ) -> None:
        await submit(contacts, "mail-1", pb.CHANNEL_EMAIL)
        later = await submit(contacts, "mail-2", pb.CHANNEL_EMAIL)
        assert (await contact_state(contacts, later.contact_id)).queue_position == 2
        # Urgency is wait x boost: boosted tenfold, mail-2 is ahead once it has waited a
        # ninth of the time between the two submissions (the calls below take longer).
        changed = await supervisor.SetContactPriority(
            pb.SetContactPriorityRequest(
                contact_id=later.contact_id, priority_boost=10.0, reason="VIP"
            )
        )
        assert changed.contact.priority_boost == 10.0
        assert changed.contact.timings.queued_at == later.timings.queued_at
        assert (await contact_state(contacts, later.contact_id)).queue_position == 1
        row = await _audit(db, later.contact_id, "priority_changed")
        assert (row["reason"], row["supervisor_reason"]) == ("priority 1 -> 10", "VIP")

    async def test_new_skills_withdraw_an_offer_from_an_agent_without_them(
        self,
        contacts: pb_grpc.ContactServiceAsyncStub,
        agents: pb_grpc.AgentServiceAsyncStub,
        supervisor: pb_grpc.SupervisorServiceAsyncStub,
        offer_streams: OfferStreams,
        db: asyncpg.Connection,
    ) -> None:
        await sign_in(agents, "alice")
        alice = await offer_streams.open("alice")
        call = await submit(contacts, "call-1")
        await next_offer(alice)
        await sign_in(agents, "bob", skills=("lang:es",))
        bob = await offer_streams.open("bob")
        changed = await supervisor.SetContactSkills(
            pb.SetContactSkillsRequest(
                contact_id=call.contact_id, required_skills=["lang:es"], reason="Spanish"
            )
        )
        assert list(changed.contact.required_skills) == ["lang:es"]
        assert (await next_withdrawal(alice)).reason == "skills_changed"
        assert (await next_offer(bob)).contact.contact_id == call.contact_id
        await recorded(
            db, call.contact_id, "submitted", "offered", "skills_changed", "requeued", "offered"
        )

    async def test_assigning_offers_it_to_the_named_agent(
        self,
        contacts: pb_grpc.ContactServiceAsyncStub,
        agents: pb_grpc.AgentServiceAsyncStub,
        supervisor: pb_grpc.SupervisorServiceAsyncStub,
        offer_streams: OfferStreams,
        db: asyncpg.Connection,
    ) -> None:
        await sign_in(agents, "alice")
        alice = await offer_streams.open("alice")
        call = await submit(contacts, "call-1")
        await next_offer(alice)
        await sign_in(agents, "bob")
        bob = await offer_streams.open("bob")
        assigned = await supervisor.AssignContact(
            pb.AssignContactRequest(contact_id=call.contact_id, agent_id="bob", reason="account")
        )
        assert assigned.contact.preferred_agent_source == pb.PREFERENCE_SOURCE_SUPERVISOR
        assert (await next_withdrawal(alice)).reason == "assigned"
        assert (await next_offer(bob)).contact.contact_id == call.contact_id
        row = await _audit(db, call.contact_id, "assigned")
        assert (row["agent_id"], row["supervisor_reason"]) == ("bob", "account")
        error = await rpc_error(
            supervisor.AssignContact(
                pb.AssignContactRequest(contact_id=call.contact_id, agent_id="zed", reason="x")
            )
        )
        assert error.code() is grpc.StatusCode.NOT_FOUND

    async def test_an_answered_contact_is_not_the_supervisors_to_move(
        self,
        contacts: pb_grpc.ContactServiceAsyncStub,
        agents: pb_grpc.AgentServiceAsyncStub,
        supervisor: pb_grpc.SupervisorServiceAsyncStub,
        offer_streams: OfferStreams,
        db: asyncpg.Connection,
    ) -> None:
        """FAILED_PRECONDITION for each contact action on a connected call, nothing
        recorded; NOT_FOUND for a contact that does not exist."""
        await sign_in(agents, "alice")
        stream = await offer_streams.open("alice")
        call = await submit(contacts, "call-1")
        offer = await next_offer(stream)
        await agents.AcceptOffer(pb.AcceptOfferRequest(agent_id="alice", offer_id=offer.offer_id))
        await recorded(db, call.contact_id, "submitted", "offered", "answered")
        before = await row_counts(db)
        cid = call.contact_id
        for action in (
            supervisor.CancelContact(pb.CancelContactRequest(contact_id=cid, reason="x")),
            supervisor.SetContactPriority(
                pb.SetContactPriorityRequest(contact_id=cid, priority_boost=2, reason="x")
            ),
            supervisor.SetContactSkills(pb.SetContactSkillsRequest(contact_id=cid, reason="x")),
            supervisor.AssignContact(
                pb.AssignContactRequest(contact_id=cid, agent_id="alice", reason="x")
            ),
        ):
            error = await rpc_error(action)
            assert error.code() is grpc.StatusCode.FAILED_PRECONDITION
            assert "connected" in details(error)
        error = await rpc_error(
            supervisor.CancelContact(pb.CancelContactRequest(contact_id=FAKE_ID, reason="x"))
        )
        assert error.code() is grpc.StatusCode.NOT_FOUND
        assert await row_counts(db) == before


class TestAgentActions:
    async def test_a_forced_status_is_recorded_with_the_supervisor(
        self,
        agents: pb_grpc.AgentServiceAsyncStub,
        supervisor: pb_grpc.SupervisorServiceAsyncStub,
        db: asyncpg.Connection,
    ) -> None:
        await sign_in(agents, "alice")
        forced = await supervisor.SetAgentStatus(
            pb.SetAgentStatusRequest(
                agent_id="alice", status=pb.AGENT_STATUS_AWAY, reason="left the desk"
            )
        )
        assert (forced.agent.status, forced.agent.away_reason) == (
            pb.AGENT_STATUS_AWAY,
            "supervisor",
        )
        row = await db.fetchrow(
            "SELECT kind, status, reason, supervisor, supervisor_reason FROM agent_status_log "
            "WHERE agent_id = 'alice' ORDER BY id DESC LIMIT 1"
        )
        assert row is not None
        assert tuple(row) == (
            "status_changed",
            "away",
            "supervisor",
            LOOPBACK_CALLER,
            "left the desk",
        )

    async def test_sign_out_takes_force_while_the_agent_holds_a_call(
        self,
        channel: grpc.aio.Channel,
        contacts: pb_grpc.ContactServiceAsyncStub,
        agents: pb_grpc.AgentServiceAsyncStub,
        supervisor: pb_grpc.SupervisorServiceAsyncStub,
        offer_streams: OfferStreams,
        db: asyncpg.Connection,
    ) -> None:
        """Refused without force (nothing changes); with it the call goes back to the queue
        keeping its first answer, the agent's offer stream ends, and the attendance
        report names who signed it out."""
        await sign_in(agents, "alice")
        stream = await offer_streams.open("alice")
        call = await submit(contacts, "call-1")
        offer = await next_offer(stream)
        answered = await agents.AcceptOffer(
            pb.AcceptOfferRequest(agent_id="alice", offer_id=offer.offer_id)
        )
        request = pb.SignOutAgentRequest(agent_id="alice", reason="went home")
        error = await rpc_error(supervisor.SignOutAgent(request))
        assert error.code() is grpc.StatusCode.FAILED_PRECONDITION
        assert "force" in details(error)
        request.force = True
        signed_out = await supervisor.SignOutAgent(request)
        assert signed_out.agent.status == pb.AGENT_STATUS_OFFLINE
        assert await stream_ended(stream)
        status = await contact_state(contacts, call.contact_id)
        assert status.contact.state == pb.CONTACT_STATE_QUEUED
        assert status.contact.timings.answered_at == answered.contact.timings.answered_at
        await recorded(db, call.contact_id, "submitted", "offered", "answered", "requeued")
        start, end = _month()
        report = await pb_grpc.ReportingServiceStub(channel).GetAgentReport(
            pb.GetAgentReportRequest(start=start, end=end, agent_ids=["alice"])
        )
        (alice,) = report.agents
        assert [s.signed_out_by for s in alice.sessions] == [LOOPBACK_CALLER]

    async def test_new_skills_bring_work_the_agent_now_qualifies_for(
        self,
        channel: grpc.aio.Channel,
        contacts: pb_grpc.ContactServiceAsyncStub,
        agents: pb_grpc.AgentServiceAsyncStub,
        supervisor: pb_grpc.SupervisorServiceAsyncStub,
        offer_streams: OfferStreams,
    ) -> None:
        await sign_in(agents, "alice")
        stream = await offer_streams.open("alice")
        call = await submit(contacts, "call-es", skills=("lang:es",))
        changed = await supervisor.ChangeAgentSkills(
            pb.ChangeAgentSkillsRequest(
                agent_id="alice",
                skills=["lang:es"],
                capacities=[pb.ChannelCapacity(channel=pb.CHANNEL_CHAT, capacity=2)],
                reason="passed the Spanish test",
            )
        )
        assert list(changed.agent.skills) == ["lang:es"]
        assert (await next_offer(stream)).contact.contact_id == call.contact_id
        start, end = _month()
        report = await pb_grpc.ReportingServiceStub(channel).GetAgentReport(
            pb.GetAgentReportRequest(start=start, end=end, agent_ids=["alice"])
        )
        (alice,) = report.agents
        assert len(alice.sessions) == 1, "a supervisor's change split the attendance"


class TestBadInput:
    async def test_each_bad_field_is_named_and_changes_nothing(
        self,
        contacts: pb_grpc.ContactServiceAsyncStub,
        agents: pb_grpc.AgentServiceAsyncStub,
        supervisor: pb_grpc.SupervisorServiceAsyncStub,
        db: asyncpg.Connection,
    ) -> None:
        await sign_in(agents, "alice")
        contact = await submit(contacts, "mail-1", pb.CHANNEL_EMAIL)
        cid = contact.contact_id
        before = (await row_counts(db), (await contact_state(contacts, cid)).contact)
        cases: list[tuple[str, Awaitable[Any]]] = [
            ("reason", supervisor.CancelContact(pb.CancelContactRequest(contact_id=cid))),
            (
                "reason",
                supervisor.CancelContact(pb.CancelContactRequest(contact_id=cid, reason="x" * 201)),
            ),
            (
                "reason",
                supervisor.CancelContact(pb.CancelContactRequest(contact_id=cid, reason="a\nb")),
            ),
            ("contact_id", supervisor.CancelContact(pb.CancelContactRequest(reason="x"))),
            (
                "priority_boost",
                supervisor.SetContactPriority(
                    pb.SetContactPriorityRequest(contact_id=cid, priority_boost=11, reason="x")
                ),
            ),
            (
                "priority_boost",
                supervisor.SetContactPriority(
                    pb.SetContactPriorityRequest(contact_id=cid, reason="x")
                ),
            ),
            (
                "required_skills",
                supervisor.SetContactSkills(
                    pb.SetContactSkillsRequest(
                        contact_id=cid, required_skills=["Not A Skill"], reason="x"
                    )
                ),
            ),
            (
                "agent_id",
                supervisor.AssignContact(
                    pb.AssignContactRequest(contact_id=cid, agent_id="no spaces", reason="x")
                ),
            ),
            (
                "status",
                supervisor.SetAgentStatus(pb.SetAgentStatusRequest(agent_id="alice", reason="x")),
            ),
            (
                "away_reason",
                supervisor.SetAgentStatus(
                    pb.SetAgentStatusRequest(
                        agent_id="alice",
                        status=pb.AGENT_STATUS_AWAY,
                        away_reason="y" * 65,
                        reason="x",
                    )
                ),
            ),
            ("agent_id", supervisor.SignOutAgent(pb.SignOutAgentRequest(reason="x"))),
            (
                "capacities",
                supervisor.ChangeAgentSkills(
                    pb.ChangeAgentSkillsRequest(
                        agent_id="alice",
                        capacities=[pb.ChannelCapacity(channel=pb.CHANNEL_CHAT, capacity=99)],
                        reason="x",
                    )
                ),
            ),
        ]
        for field, call in cases:
            error = await rpc_error(call)
            assert error.code() is grpc.StatusCode.INVALID_ARGUMENT, field
            assert details(error).startswith(field), (field, details(error))
        assert (await row_counts(db), (await contact_state(contacts, cid)).contact) == before


class TestRestart:
    async def test_a_restarted_router_keeps_the_supervisors_changes(
        self, database_url: str, policy: RoutingPolicy
    ) -> None:
        """A priority and skills changed, and a contact cancelled, before a restart: the
        restored queue has the first with its boost and skills, and not the second."""
        first = await start_router(database_url, policy)
        try:
            async with grpc.aio.insecure_channel(f"127.0.0.1:{first.port}") as channel:
                contacts = pb_grpc.ContactServiceStub(channel)
                supervisor = pb_grpc.SupervisorServiceStub(channel)
                kept = await submit(contacts, "mail-1", pb.CHANNEL_EMAIL)
                spam = await submit(contacts, "mail-2", pb.CHANNEL_EMAIL)
                await supervisor.SetContactPriority(
                    pb.SetContactPriorityRequest(
                        contact_id=kept.contact_id, priority_boost=4.5, reason="VIP"
                    )
                )
                await supervisor.SetContactSkills(
                    pb.SetContactSkillsRequest(
                        contact_id=kept.contact_id, required_skills=["billing"], reason="bill"
                    )
                )
                await supervisor.CancelContact(
                    pb.CancelContactRequest(contact_id=spam.contact_id, reason=REASON)
                )
        finally:
            await first.stop(grace=1.0)
        second = await start_router(database_url, policy)
        try:
            async with grpc.aio.insecure_channel(f"127.0.0.1:{second.port}") as channel:
                contacts = pb_grpc.ContactServiceStub(channel)
                restored = await contact_state(contacts, kept.contact_id)
                assert restored.contact.priority_boost == 4.5
                assert list(restored.contact.required_skills) == ["billing"]
                assert restored.queue_position == 1
                gone = await contact_state(contacts, spam.contact_id)
                assert gone.contact.state == pb.CONTACT_STATE_CANCELLED
                assert gone.queue_position == 0
                reporting = pb_grpc.ReportingServiceStub(channel)

                async def one_waiting() -> bool:
                    status = await reporting.GetQueueStatus(pb.GetQueueStatusRequest())
                    return sum(c.waiting for c in status.channels) == 1

                await eventually(one_waiting, what="one contact waiting after the restart")
        finally:
            await second.stop(grace=1.0)
