"""Queued callbacks through gRPC on a real port and a real PostgreSQL: the place kept,
the number on the offer, dials, retries, unreached, a restart, and refused input."""

from __future__ import annotations

import asyncio
import csv
import io
from datetime import UTC, datetime, timedelta

import asyncpg
import grpc
import pytest
from contactrouter.client import AgentDesk, Gateway
from contactrouter.v1 import contact_router_pb2 as pb
from contactrouter.v1 import contact_router_pb2_grpc as pb_grpc
from google.protobuf.timestamp_pb2 import Timestamp

from router.domain import RoutingPolicy
from router.server import RunningRouter
from tests.acceptance.conftest import (
    OfferStreams,
    contact_state,
    event_kinds,
    next_offer,
    reason_of,
    recorded,
    row_counts,
    rpc_error,
    sign_in,
    submit,
)
from tests.acceptance.test_reporting_cli import command
from tests.acceptance.test_restart import running

NUMBER = "+14155550123"


def _stamp(at: datetime) -> Timestamp:
    stamp = Timestamp()
    stamp.FromDatetime(at)
    return stamp


async def _request(
    contacts: pb_grpc.ContactServiceAsyncStub,
    contact_id: str,
    number: str = NUMBER,
    **window: Timestamp,
) -> pb.Contact:
    response = await contacts.RequestCallback(
        pb.RequestCallbackRequest(contact_id=contact_id, number=number, **window)
    )
    return response.contact


async def _dial(
    agents: pb_grpc.AgentServiceAsyncStub,
    agent_id: str,
    contact_id: str,
    outcome: pb.DialOutcome.ValueType,
) -> pb.Contact:
    response = await agents.ReportDialOutcome(
        pb.ReportDialOutcomeRequest(agent_id=agent_id, contact_id=contact_id, outcome=outcome)
    )
    return response.contact


async def _accept(agents: pb_grpc.AgentServiceAsyncStub, agent_id: str, offer: pb.Offer) -> None:
    await agents.AcceptOffer(pb.AcceptOfferRequest(agent_id=agent_id, offer_id=offer.offer_id))


class TestCallbacks:
    async def test_a_call_turned_into_a_callback_keeps_its_place_and_the_offer_has_the_number(
        self,
        contacts: pb_grpc.ContactServiceAsyncStub,
        agents: pb_grpc.AgentServiceAsyncStub,
        reporting: pb_grpc.ReportingServiceAsyncStub,
        offer_streams: OfferStreams,
        db: asyncpg.Connection,
    ) -> None:
        """The same contact, its queued_at and first place kept; the offer carries the
        number; the service-level and contact reports count it apart from the inbound call."""
        first = await submit(contacts, "call-1")
        await submit(contacts, "call-2")
        callback = await _request(contacts, first.contact_id)
        assert callback.contact_id == first.contact_id
        assert callback.timings.queued_at == first.timings.queued_at
        assert callback.callback.number == NUMBER
        assert callback.callback.requested_from == pb.CHANNEL_PHONE
        status = await contact_state(contacts, first.contact_id)
        assert (status.routing_position, status.contact.state) == (1, pb.CONTACT_STATE_QUEUED)
        await sign_in(agents, "alice")
        stream = await offer_streams.open("alice")
        offer = await next_offer(stream)
        assert offer.contact.contact_id == first.contact_id
        assert offer.dial_number == NUMBER
        assert offer.contact.callback.number == NUMBER
        await _accept(agents, "alice", offer)
        reached = await _dial(agents, "alice", first.contact_id, pb.DIAL_OUTCOME_CONNECTED)
        assert reached.timings.HasField("answered_at")
        assert reached.callback.attempts == 1
        await recorded(
            db, first.contact_id, "submitted", "callback_requested", "offered", "dialled", "reached"
        )
        row = await db.fetchrow(
            "SELECT number, requested_from, attempts, placed_at, reached_at FROM callbacks"
        )
        assert row is not None
        assert (row["number"], row["requested_from"], row["attempts"]) == (NUMBER, "phone", 1)
        assert row["placed_at"] is not None
        assert row["reached_at"] is not None
        now = datetime.now(UTC)
        report = await reporting.GetServiceLevel(
            pb.GetServiceLevelRequest(
                start=_stamp(now - timedelta(days=1)),
                end=_stamp(now + timedelta(days=1)),
                interval=pb.INTERVAL_LENGTH_DAY,
            )
        )
        assert [(r.channel, r.offered) for r in report.rows] == [(pb.CHANNEL_PHONE, 1)]
        (callbacks,) = report.callbacks
        assert (callbacks.requested_from, callbacks.requested, callbacks.reached) == (
            pb.CHANNEL_PHONE,
            1,
            1,
        )
        assert callbacks.service_level == 1.0
        assert report.callback_formula.startswith("callback service level =")
        # The contact report's rows leave it out too, and say where it is.
        contact_report = await reporting.GetContactReport(
            pb.GetContactReportRequest(
                start=_stamp(now - timedelta(days=1)),
                end=_stamp(now + timedelta(days=1)),
                interval=pb.INTERVAL_LENGTH_DAY,
                by_skill=True,
            )
        )
        assert [(r.channel, r.offered) for r in contact_report.rows] == [(pb.CHANNEL_PHONE, 1)]
        assert list(contact_report.callbacks) == [callbacks]
        assert contact_report.callback_formula == report.callback_formula
        assert contact_report.callback_target_seconds == report.callback_target_seconds
        chat_only = await reporting.GetContactReport(
            pb.GetContactReportRequest(
                start=_stamp(now - timedelta(days=1)),
                end=_stamp(now + timedelta(days=1)),
                interval=pb.INTERVAL_LENGTH_DAY,
                channels=[pb.CHANNEL_CHAT],
            )
        )
        assert not chat_only.callbacks

    async def test_a_chat_that_asks_for_a_call_becomes_a_phone_contact(
        self,
        contacts: pb_grpc.ContactServiceAsyncStub,
        agents: pb_grpc.AgentServiceAsyncStub,
        offer_streams: OfferStreams,
        db: asyncpg.Connection,
    ) -> None:
        """Converted in place: channel phone, from chat; a chat-only agent never gets it."""
        chat = await submit(contacts, "chat-1", pb.CHANNEL_CHAT)
        callback = await _request(contacts, chat.contact_id)
        assert (callback.channel, callback.callback.requested_from) == (
            pb.CHANNEL_PHONE,
            pb.CHANNEL_CHAT,
        )
        await sign_in(agents, "chatty", capacities={pb.CHANNEL_PHONE: 0})
        await offer_streams.open("chatty")
        await sign_in(agents, "alice")
        stream = await offer_streams.open("alice")
        assert (await next_offer(stream)).contact.contact_id == chat.contact_id
        await recorded(db, chat.contact_id, "submitted", "callback_requested", "offered")
        channel = await db.fetchval(
            "SELECT channel FROM contacts WHERE id = $1::uuid", chat.contact_id
        )
        assert channel == "phone"

    async def test_through_the_client_a_window_keeps_it_from_agents_until_it_opens(
        self, channel: grpc.aio.Channel, offer_streams: OfferStreams, db: asyncpg.Connection
    ) -> None:
        """Gateway.request_callback with not_before an hour ahead: not in line, and not
        offered to a free agent whose stream is open."""
        gateway, desk = Gateway(channel), AgentDesk(channel, "alice")
        email = await gateway.submit("email-1", pb.CHANNEL_EMAIL, "customer-1")
        opens = datetime.now(UTC).replace(microsecond=0) + timedelta(hours=1)
        callback = await gateway.request_callback(email.contact_id, NUMBER, not_before=opens)
        assert callback.callback.not_before.ToDatetime(UTC) == opens
        assert callback.callback.requested_from == pb.CHANNEL_EMAIL
        await desk.sign_in(initial_status=pb.AGENT_STATUS_READY)
        await offer_streams.open("alice")  # present: anything it could take is offered now
        status = await gateway.get(email.contact_id)
        assert (status.contact.state, status.queue_position) == (pb.CONTACT_STATE_QUEUED, 0)
        assert status.wait_reason == pb.WAIT_REASON_CALLBACK_SCHEDULED
        assert status.wait_detail.startswith("callback not called before ")
        assert not status.callback_offered
        await recorded(db, email.contact_id, "submitted", "callback_requested")

    @pytest.fixture
    def policy(self) -> RoutingPolicy:
        return RoutingPolicy(phone_reserve=0, callback_attempts=2, callback_retry_delay=0.2)

    async def test_no_answer_is_retried_then_unreached(
        self,
        contacts: pb_grpc.ContactServiceAsyncStub,
        agents: pb_grpc.AgentServiceAsyncStub,
        offer_streams: OfferStreams,
        db: asyncpg.Connection,
        channel: grpc.aio.Channel,
    ) -> None:
        """NO_ANSWER: offered again after the delay; BUSY on the last attempt: UNREACHED;
        the event stream carries each step."""
        await sign_in(agents, "alice")
        stream = await offer_streams.open("alice")
        call = await submit(contacts, "call-1")
        await _accept(agents, "alice", await next_offer(stream))
        # Answered already: it cannot become a callback.
        error = await rpc_error(_request(contacts, call.contact_id))
        assert error.code() == grpc.StatusCode.FAILED_PRECONDITION
        waiting = await submit(contacts, "call-2")
        await _request(contacts, waiting.contact_id)
        await agents.EndContact(pb.EndContactRequest(agent_id="alice", contact_id=call.contact_id))
        await agents.CompleteContact(
            pb.CompleteContactRequest(agent_id="alice", contact_id=call.contact_id, disposition="x")
        )
        await _accept(agents, "alice", await next_offer(stream))
        retry = await _dial(agents, "alice", waiting.contact_id, pb.DIAL_OUTCOME_NO_ANSWER)
        assert retry.state == pb.CONTACT_STATE_QUEUED
        assert retry.callback.HasField("retry_at")
        offer = await next_offer(stream)
        assert offer.contact.contact_id == waiting.contact_id
        await _accept(agents, "alice", offer)
        unreached = await _dial(agents, "alice", waiting.contact_id, pb.DIAL_OUTCOME_BUSY)
        assert unreached.state == pb.CONTACT_STATE_UNREACHED
        assert unreached.callback.attempts == 2
        assert unreached.callback.HasField("unreached_at")
        await recorded(
            db,
            waiting.contact_id,
            "submitted",
            "callback_requested",
            "offered",
            "dialled",
            "dial_failed",
            "offered",
            "dialled",
            "dial_failed",
            "unreached",
        )
        followed = pb_grpc.EventServiceStub(channel).StreamEvents(pb.StreamEventsRequest())
        try:
            steps: list[tuple[str, str, int]] = []
            while len(steps) < 9:
                message = await asyncio.wait_for(followed.read(), 5.0)
                assert isinstance(message, pb.StreamEventsResponse)
                event = message.contact_event
                if event.contact_id == waiting.contact_id:
                    steps.append((event.kind, event.reason, event.channel))
        finally:
            followed.cancel()
        assert steps[1] == ("callback_requested", "from phone", pb.CHANNEL_PHONE)
        assert steps[4] == ("dial_failed", "no_answer", pb.CHANNEL_PHONE)
        assert steps[-1] == ("unreached", "attempts", pb.CHANNEL_PHONE)
        state = await db.fetchval(
            "SELECT state FROM contacts WHERE id = $1::uuid", waiting.contact_id
        )
        assert state == "unreached"
        assert (await contact_state(contacts, waiting.contact_id)).contact.state == (
            pb.CONTACT_STATE_UNREACHED
        )

    async def test_a_restart_keeps_a_callback_and_its_pending_retry(
        self, database_url: str, db: asyncpg.Connection
    ) -> None:
        """Number, window, attempts and the retry delay survive a stop and a start."""
        policy = RoutingPolicy(phone_reserve=0, callback_retry_delay=3600.0)
        not_after = datetime.now(UTC) + timedelta(days=1)
        async with running(database_url, policy, db) as first:
            await sign_in(first.agents, "alice")
            stream = await first.streams.open("alice")
            call = await submit(first.contacts, "call-1")
            await _accept(first.agents, "alice", await next_offer(stream))
            other = await submit(first.contacts, "chat-1", pb.CHANNEL_CHAT)
            await submit(first.contacts, "call-2")  # queued after the chat
            await _request(first.contacts, other.contact_id, not_after=_stamp(not_after))
            await first.agents.EndContact(
                pb.EndContactRequest(agent_id="alice", contact_id=call.contact_id)
            )
            await first.agents.CompleteContact(
                pb.CompleteContactRequest(
                    agent_id="alice", contact_id=call.contact_id, disposition="x"
                )
            )
            offer = await next_offer(stream)
            assert offer.contact.contact_id == other.contact_id  # the older, now a call
            await _accept(first.agents, "alice", offer)
            before = await _dial(first.agents, "alice", other.contact_id, pb.DIAL_OUTCOME_BUSY)
        async with running(database_url, policy, db) as second:
            after = (await contact_state(second.contacts, other.contact_id)).contact
            assert after.state == pb.CONTACT_STATE_QUEUED
            assert after.callback == before.callback
            assert after.callback.attempts == 1
            assert after.callback.HasField("retry_at")
            assert after.callback.not_after.ToDatetime(UTC) == not_after.replace(
                microsecond=not_after.microsecond
            )
            assert after.timings.queued_at == other.timings.queued_at
            assert await event_kinds(db, other.contact_id) == [
                "submitted",
                "callback_requested",
                "offered",
                "dialled",
                "dial_failed",
            ]


class TestRefused:
    async def _changes_nothing(self, db: asyncpg.Connection, call: object) -> grpc.aio.AioRpcError:
        before = await row_counts(db), await db.fetchval("SELECT count(*) FROM callbacks")
        error = await rpc_error(call)  # type: ignore[arg-type]
        assert (await row_counts(db), await db.fetchval("SELECT count(*) FROM callbacks")) == before
        return error

    @pytest.mark.parametrize("number", ["4155550123", "+0155550123", "+1 415 555 0123", "+12", ""])
    async def test_a_number_that_is_not_e164(
        self, contacts: pb_grpc.ContactServiceAsyncStub, db: asyncpg.Connection, number: str
    ) -> None:
        call = await submit(contacts, "call-1")
        error = await self._changes_nothing(db, _request(contacts, call.contact_id, number))
        assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert "number" in (error.details() or "")
        assert reason_of(error) == "INVALID_FIELD"

    async def test_a_window_that_ends_before_it_starts(
        self, contacts: pb_grpc.ContactServiceAsyncStub, db: asyncpg.Connection
    ) -> None:
        call = await submit(contacts, "call-1")
        start = datetime.now(UTC) + timedelta(hours=2)
        window = {"not_before": _stamp(start), "not_after": _stamp(start - timedelta(hours=1))}
        error = await self._changes_nothing(
            db,
            _request(
                contacts,
                call.contact_id,
                not_before=window["not_before"],
                not_after=window["not_after"],
            ),
        )
        assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert "not_after" in (error.details() or "")

    async def test_a_callback_on_a_completed_contact(
        self,
        contacts: pb_grpc.ContactServiceAsyncStub,
        agents: pb_grpc.AgentServiceAsyncStub,
        offer_streams: OfferStreams,
        db: asyncpg.Connection,
    ) -> None:
        await sign_in(agents, "alice")
        stream = await offer_streams.open("alice")
        call = await submit(contacts, "call-1")
        await _accept(agents, "alice", await next_offer(stream))
        await agents.EndContact(pb.EndContactRequest(agent_id="alice", contact_id=call.contact_id))
        await agents.CompleteContact(
            pb.CompleteContactRequest(agent_id="alice", contact_id=call.contact_id, disposition="x")
        )
        error = await self._changes_nothing(db, _request(contacts, call.contact_id))
        assert error.code() == grpc.StatusCode.FAILED_PRECONDITION
        assert "completed" in (error.details() or "")

    async def test_an_outcome_from_an_agent_not_holding_it(
        self,
        contacts: pb_grpc.ContactServiceAsyncStub,
        agents: pb_grpc.AgentServiceAsyncStub,
        offer_streams: OfferStreams,
        db: asyncpg.Connection,
    ) -> None:
        call = await submit(contacts, "call-1")
        await _request(contacts, call.contact_id)
        await sign_in(agents, "alice")
        stream = await offer_streams.open("alice")
        await _accept(agents, "alice", await next_offer(stream))
        await sign_in(agents, "bob")
        await recorded(db, call.contact_id, "submitted", "callback_requested", "offered", "dialled")
        error = await self._changes_nothing(
            db, _dial(agents, "bob", call.contact_id, pb.DIAL_OUTCOME_CONNECTED)
        )
        assert error.code() == grpc.StatusCode.FAILED_PRECONDITION
        unset = await self._changes_nothing(
            db, _dial(agents, "alice", call.contact_id, pb.DIAL_OUTCOME_UNSPECIFIED)
        )
        assert unset.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert "outcome" in (unset.details() or "")


class TestReportCommand:
    async def test_the_callbacks_section(
        self,
        router_server: RunningRouter,
        contacts: pb_grpc.ContactServiceAsyncStub,
    ) -> None:
        """`contact-router report --section callbacks`: a row per channel they came from,
        with the callbacks' formula; a week's interval is refused naming the flag."""
        chat = await submit(contacts, "chat-1", pb.CHANNEL_CHAT)
        await _request(contacts, chat.contact_id)
        address = f"127.0.0.1:{router_server.port}"
        code, out, err = await command(
            "report", "today", "--router", address, "--section", "callbacks", "--format", "csv"
        )
        assert code == 0, err
        (row,) = list(csv.DictReader(io.StringIO(out)))
        assert (row["from"], row["requested"], row["placed"]) == ("chat", "1", "0")
        code, out, err = await command(
            "report", "today", "--router", address, "--section", "callbacks"
        )
        assert code == 0, err
        assert "callback service level = callbacks first dialled" in out
        code, _, err = await command(
            "report", "today", "--router", address, "--section", "callbacks", "--interval", "week"
        )
        assert code != 0
        assert "--interval" in err
