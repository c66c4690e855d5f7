"""Refused requests: the right status code, a message naming the field, the standard
details (ErrorInfo's reason, BadRequest's field), and nothing changed.

Each case runs against the same small center (a connected call, a waiting email, an agent
away) and compares the row counts of every table and the live queue before and after.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import TypeVar

import asyncpg
import grpc
import pytest
from contactrouter.error_details import error_details
from contactrouter.v1 import contact_router_pb2 as pb
from contactrouter.v1 import contact_router_pb2_grpc as pb_grpc
from google.protobuf.message import Message

from router.domain import RoutingPolicy
from tests.acceptance.conftest import (
    OfferStreams,
    contact_state,
    details,
    next_withdrawal,
    offered_call,
    queue_view,
    recorded,
    row_counts,
    rpc_error,
    sign_in,
    submit,
)


@dataclass(frozen=True)
class Center:
    """What the cases act on: Alice on a call, Bob signed in but away, an email waiting."""

    contacts: pb_grpc.ContactServiceAsyncStub
    agents: pb_grpc.AgentServiceAsyncStub
    reporting: pb_grpc.ReportingServiceAsyncStub
    database_url: str
    call_id: str
    offer_id: str
    email_id: str
    supervisor: pb_grpc.SupervisorServiceAsyncStub


# One center serves every case of this module: each case must change nothing, which is
# checked after each, and building a center per case would cost a database each.
@pytest.fixture(scope="module")
async def center(
    module_database_url: str, module_channel: grpc.aio.Channel
) -> AsyncIterator[Center]:
    db = await asyncpg.connect(module_database_url)
    contacts = pb_grpc.ContactServiceStub(module_channel)
    agents = pb_grpc.AgentServiceStub(module_channel)
    streams = OfferStreams(agents, db)
    try:
        _, call, offer = await offered_call(contacts, agents, streams)
        await agents.AcceptOffer(pb.AcceptOfferRequest(agent_id="alice", offer_id=offer.offer_id))
        await sign_in(agents, "bob", status=pb.AGENT_STATUS_AWAY)
        await streams.open("bob")
        email = await submit(contacts, "email-1", pb.CHANNEL_EMAIL)
        waiting = await contact_state(contacts, email.contact_id)
        assert waiting.contact.state == pb.CONTACT_STATE_QUEUED
        yield Center(
            contacts,
            agents,
            pb_grpc.ReportingServiceStub(module_channel),
            module_database_url,
            call.contact_id,
            offer.offer_id,
            email.contact_id,
            pb_grpc.SupervisorServiceStub(module_channel),
        )
    finally:
        await streams.close_all()
        await db.close()


@pytest.fixture
async def center_db(center: Center) -> AsyncIterator[asyncpg.Connection]:
    connection = await asyncpg.connect(center.database_url)
    try:
        yield connection
    finally:
        await connection.close()


Request = TypeVar("Request", bound=Message)


def replaced(request: Request, **fields: object) -> Request:
    """`request` with `fields` replaced: a list extends a repeated field, a dict updates a
    map field, anything else is set."""
    for name, value in fields.items():
        if isinstance(value, dict):
            getattr(request, name).update(value)
        elif isinstance(value, list):
            getattr(request, name).extend(value)
        else:
            setattr(request, name, value)
    return request


def new_contact(**fields: object) -> pb.SubmitContactRequest:
    """A valid submission with `fields` replaced."""
    request = pb.SubmitContactRequest(
        idempotency_key="call-new", channel=pb.CHANNEL_PHONE, customer_id="+15550199"
    )
    return replaced(request, **fields)


def sign_in_request(**fields: object) -> pb.SignInRequest:
    """A valid sign-in of a new agent with `fields` replaced."""
    return replaced(pb.SignInRequest(agent_id="carol"), **fields)


Call = Callable[[Center], Awaitable[object]]


@dataclass(frozen=True)
class Case:
    name: str
    call: Call
    code: grpc.StatusCode
    field: str = ""
    says: str = ""
    """Part of the message that names the reason, where another refusal has the same code."""


def submitting(**fields: object) -> Call:
    return lambda c: c.contacts.SubmitContact(new_contact(**fields))


def signing_in(**fields: object) -> Call:
    return lambda c: c.agents.SignIn(sign_in_request(**fields))


def completing(agent_id: str, disposition: str = "order-status") -> Call:
    return lambda c: c.agents.CompleteContact(
        pb.CompleteContactRequest(agent_id=agent_id, contact_id=c.call_id, disposition=disposition)
    )


def accepting(agent_id: str, offer_id: str | None = None) -> Call:
    """AcceptOffer of `offer_id`, by default the offer of the center's call."""
    return lambda c: c.agents.AcceptOffer(
        pb.AcceptOfferRequest(
            agent_id=agent_id, offer_id=c.offer_id if offer_id is None else offer_id
        )
    )


def ending(agent_id: str, contact_id: str | None = None) -> Call:
    """EndContact of `contact_id`, by default the center's call."""
    return lambda c: c.agents.EndContact(
        pb.EndContactRequest(
            agent_id=agent_id, contact_id=c.call_id if contact_id is None else contact_id
        )
    )


def abandoning(contact_id: str | None = None) -> Call:
    """AbandonContact of `contact_id`, by default the center's call."""
    return lambda c: c.contacts.AbandonContact(
        pb.AbandonContactRequest(contact_id=c.call_id if contact_id is None else contact_id)
    )


def setting_status(
    agent_id: str,
    status: pb.AgentStatus.ValueType = pb.AGENT_STATUS_UNSPECIFIED,
    away_reason: str = "",
) -> Call:
    return lambda c: c.agents.SetStatus(
        pb.SetStatusRequest(agent_id=agent_id, status=status, away_reason=away_reason)
    )


INVALID = grpc.StatusCode.INVALID_ARGUMENT
PRECONDITION = grpc.StatusCode.FAILED_PRECONDITION
NOT_FOUND = grpc.StatusCode.NOT_FOUND
REASONS = {INVALID: "INVALID_FIELD", PRECONDITION: "WRONG_STATE", NOT_FOUND: "NOT_FOUND"}
"""The google.rpc.ErrorInfo reason each code of these cases comes with."""
PHONE_TWICE = [
    pb.ChannelCapacity(channel=pb.CHANNEL_PHONE, capacity=1),
    pb.ChannelCapacity(channel=pb.CHANNEL_PHONE, capacity=0),
]

CASES = [
    Case("unknown channel 7", submitting(channel=pb.Channel.ValueType(7)), INVALID, "channel"),
    Case("unspecified channel", submitting(channel=pb.CHANNEL_UNSPECIFIED), INVALID, "channel"),
    Case("empty customer_id", submitting(customer_id=""), INVALID, "customer_id"),
    Case("blank customer_id", submitting(customer_id="   "), INVALID, "customer_id"),
    Case("long customer_id", submitting(customer_id="x" * 257), INVALID, "customer_id"),
    Case(
        "33 attributes",
        submitting(attributes={f"k{i}": "v" for i in range(33)}),
        INVALID,
        "attributes",
    ),
    Case(
        "2000-char attribute value",
        submitting(attributes={"subject": "x" * 2000}),
        INVALID,
        "attributes",
    ),
    Case("65-char attribute key", submitting(attributes={"k" * 65: "v"}), INVALID, "attributes"),
    Case("bad skill", submitting(required_skills=["Lang:ES"]), INVALID, "required_skills"),
    Case("empty skill", submitting(required_skills=[""]), INVALID, "required_skills"),
    Case(
        "17 skills",
        submitting(required_skills=[f"s{i}" for i in range(17)]),
        INVALID,
        "required_skills",
    ),
    Case("empty idempotency key", submitting(idempotency_key=""), INVALID, "idempotency_key"),
    Case(
        "129-char idempotency key",
        submitting(idempotency_key="k" * 129),
        INVALID,
        "idempotency_key",
    ),
    Case("boost above 10", submitting(priority_boost=10.5), INVALID, "priority_boost"),
    Case("boost below 1", submitting(priority_boost=0.5), INVALID, "priority_boost"),
    Case("boost NaN", submitting(priority_boost=float("nan")), INVALID, "priority_boost"),
    Case("agent_id with a space", signing_in(agent_id="carol smith"), INVALID, "agent_id"),
    Case("empty agent_id", signing_in(agent_id=""), INVALID, "agent_id"),
    Case("129-char agent_id", signing_in(agent_id="a" * 129), INVALID, "agent_id"),
    Case("bad agent skill", signing_in(skills=["Returns!"]), INVALID, "skills"),
    Case(
        "phone capacity 2",
        signing_in(capacities=[pb.ChannelCapacity(channel=pb.CHANNEL_PHONE, capacity=2)]),
        INVALID,
        "capacities",
    ),
    Case(
        "chat capacity 21",
        signing_in(capacities=[pb.ChannelCapacity(channel=pb.CHANNEL_CHAT, capacity=21)]),
        INVALID,
        "capacities",
    ),
    Case("channel listed twice", signing_in(capacities=PHONE_TWICE), INVALID, "capacities"),
    Case(
        "capacity for unknown channel",
        signing_in(capacities=[pb.ChannelCapacity(channel=pb.Channel.ValueType(9), capacity=1)]),
        INVALID,
        "capacities",
    ),
    Case(
        "initial status offline",
        signing_in(initial_status=pb.AGENT_STATUS_OFFLINE),
        INVALID,
        "initial_status",
    ),
    Case(
        "bad skill of a signed-in agent",
        lambda c: c.agents.SignIn(pb.SignInRequest(agent_id="alice", skills=["NO"])),
        INVALID,
        "skills",
    ),
    Case("status offline", setting_status("bob", pb.AGENT_STATUS_OFFLINE), INVALID, "status"),
    Case("status unspecified", setting_status("bob"), INVALID, "status"),
    Case(
        "65-char away reason",
        setting_status("bob", pb.AGENT_STATUS_AWAY, away_reason="r" * 65),
        INVALID,
        "away_reason",
    ),
    Case("bad disposition", completing("alice", "Order Status"), INVALID, "disposition"),
    Case("empty disposition", completing("alice", ""), INVALID, "disposition"),
    Case("offer_id not a uuid", accepting("alice", "o-1"), INVALID, "offer_id"),
    Case("bad agent_id on accept", accepting("alice/1"), INVALID, "agent_id"),
    Case("contact_id not a uuid", ending("alice", "c-1"), INVALID, "contact_id"),
    Case("abandon with a bad contact_id", abandoning(""), INVALID, "contact_id"),
    Case("accept an unknown offer", accepting("alice", str(uuid.uuid4())), PRECONDITION),
    Case("accept someone else's offer", accepting("bob"), PRECONDITION),
    Case(
        "decline an answered offer",
        lambda c: c.agents.DeclineOffer(
            pb.DeclineOfferRequest(agent_id="alice", offer_id=c.offer_id)
        ),
        PRECONDITION,
    ),
    Case(
        "complete someone else's contact",
        completing("bob"),
        PRECONDITION,
        says="not connected to agent bob",
    ),
    Case("complete before ending", completing("alice"), PRECONDITION, says="end it before"),
    Case(
        "end someone else's contact",
        ending("bob"),
        PRECONDITION,
        says="not connected to agent bob",
    ),
    Case(
        "end a queued contact",
        lambda c: c.agents.EndContact(
            pb.EndContactRequest(agent_id="alice", contact_id=c.email_id)
        ),
        PRECONDITION,
    ),
    Case(
        "sign out during a call",
        lambda c: c.agents.SignOut(pb.SignOutRequest(agent_id="alice")),
        PRECONDITION,
    ),
    Case("abandon an answered contact", abandoning(), PRECONDITION),
    Case("accept by an agent not signed in", accepting("carol"), NOT_FOUND),
    Case(
        "set status of an agent not signed in",
        setting_status("carol", pb.AGENT_STATUS_READY),
        NOT_FOUND,
    ),
    Case("abandon an unknown contact", abandoning(str(uuid.uuid4())), NOT_FOUND),
    Case(
        "a supervisor's action without a reason",
        lambda c: c.supervisor.CancelContact(pb.CancelContactRequest(contact_id=c.email_id)),
        INVALID,
        "reason",
    ),
    Case(
        "a supervisor's boost above 10",
        lambda c: c.supervisor.SetContactPriority(
            pb.SetContactPriorityRequest(contact_id=c.email_id, priority_boost=10.5, reason="r")
        ),
        INVALID,
        "priority_boost",
    ),
    Case(
        "a supervisor's bad skill",
        lambda c: c.supervisor.SetContactSkills(
            pb.SetContactSkillsRequest(contact_id=c.email_id, required_skills=["X"], reason="r")
        ),
        INVALID,
        "required_skills",
    ),
    Case(
        "a supervisor cancels an answered call",
        lambda c: c.supervisor.CancelContact(
            pb.CancelContactRequest(contact_id=c.call_id, reason="r")
        ),
        PRECONDITION,
    ),
    Case(
        "a supervisor signs out an agent on a call without force",
        lambda c: c.supervisor.SignOutAgent(pb.SignOutAgentRequest(agent_id="alice", reason="r")),
        PRECONDITION,
        says="force",
    ),
    Case(
        "a supervisor assigns to an agent not signed in",
        lambda c: c.supervisor.AssignContact(
            pb.AssignContactRequest(contact_id=c.email_id, agent_id="carol", reason="r")
        ),
        NOT_FOUND,
    ),
    Case(
        "a supervisor sets the status of an agent not signed in",
        lambda c: c.supervisor.SetAgentStatus(
            pb.SetAgentStatusRequest(agent_id="carol", status=pb.AGENT_STATUS_READY, reason="r")
        ),
        NOT_FOUND,
    ),
    Case("end an unknown contact", ending("alice", str(uuid.uuid4())), NOT_FOUND),
]


class TestRefusedRequestsChangeNothing:
    @pytest.mark.parametrize("case", [pytest.param(c, id=c.name) for c in CASES])
    async def test_refused(self, center: Center, center_db: asyncpg.Connection, case: Case) -> None:
        """The request fails with its status code, its stable reason and (for a bad
        field) the field's violation, and leaves rows and queue as they were."""
        db, reporting = center_db, center.reporting
        counts, queue = await row_counts(db), await queue_view(reporting)
        call_before = await contact_state(center.contacts, center.call_id)

        error = await rpc_error(case.call(center))

        assert error.code() == case.code, details(error)
        if case.field:
            assert details(error).startswith(case.field), details(error)
        assert details(error)
        said = error_details(error)
        assert (said.reason, said.domain) == (REASONS[case.code], "contactrouter.v1")
        if case.code is INVALID:
            [violation] = said.field_violations
            assert violation.field.startswith(case.field)
            assert details(error) == f"{violation.field}: {violation.description}"
        assert case.says in details(error), details(error)
        assert await row_counts(db) == counts
        assert await queue_view(reporting) == queue
        assert (await contact_state(center.contacts, center.call_id)).contact == (
            call_before.contact
        )


class TestExpiredOffer:
    @pytest.fixture
    def policy(self) -> RoutingPolicy:
        """Offers expire after 0.2 s."""
        return RoutingPolicy(phone_reserve=0, offer_timeout=0.2)

    async def test_accepting_an_expired_offer_changes_nothing(
        self,
        contacts: pb_grpc.ContactServiceAsyncStub,
        agents: pb_grpc.AgentServiceAsyncStub,
        reporting: pb_grpc.ReportingServiceAsyncStub,
        offer_streams: OfferStreams,
        db: asyncpg.Connection,
    ) -> None:
        """AcceptOffer after the offer timed out is FAILED_PRECONDITION; the call stays queued."""
        stream, contact, offer = await offered_call(contacts, agents, offer_streams)
        await next_withdrawal(stream)
        await recorded(
            db, contact.contact_id, "submitted", "offered", "offer_timed_out", "requeued"
        )
        counts, queue = await row_counts(db), await queue_view(reporting)

        error = await rpc_error(
            agents.AcceptOffer(pb.AcceptOfferRequest(agent_id="alice", offer_id=offer.offer_id))
        )

        assert error.code() == grpc.StatusCode.FAILED_PRECONDITION
        assert offer.offer_id in details(error)
        assert await row_counts(db) == counts
        assert await queue_view(reporting) == queue
        status = await contact_state(contacts, contact.contact_id)
        assert status.contact.state == pb.CONTACT_STATE_QUEUED
