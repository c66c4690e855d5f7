"""Contact, agent and disposition reports, feedback, staffing and the alarm, through a
real server. Exact figures from hand-built histories are in
tests/integration/test_reports.py; here the API must agree with what was recorded."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import grpc
import pytest
from contactrouter.v1 import contact_router_pb2 as pb
from contactrouter.v1 import contact_router_pb2_grpc as pb_grpc
from google.protobuf.timestamp_pb2 import Timestamp

from router.domain.service_level import FORMULA
from tests.acceptance.conftest import (
    OfferStreams,
    details,
    handle,
    next_offer,
    row_counts,
    rpc_error,
    sign_in,
    submit,
)


def stamp(value: datetime) -> Timestamp:
    result = Timestamp()
    result.FromDatetime(value)
    return result


def around_now() -> tuple[Timestamp, Timestamp]:
    now = datetime.now(UTC)
    return stamp(now - timedelta(days=1)), stamp(now + timedelta(days=1))


async def alice_handles(
    contacts: pb_grpc.ContactServiceAsyncStub,
    agents: pb_grpc.AgentServiceAsyncStub,
    offer_streams: OfferStreams,
    *submitted: tuple[str, pb.Channel.ValueType, str],
) -> None:
    """Alice signs in and handles each (key, channel, customer), one after another."""
    await sign_in(agents, "alice")
    stream = await offer_streams.open("alice")
    for key, channel, customer in submitted:
        await submit(contacts, key, channel, customer_id=customer)
        await handle(agents, "alice", await next_offer(stream))


async def one_handled_call_and_chat(
    contacts: pb_grpc.ContactServiceAsyncStub,
    agents: pb_grpc.AgentServiceAsyncStub,
    offer_streams: OfferStreams,
) -> tuple[str, str]:
    """Alice handles a call (order-status) and a chat (return): their contact ids."""
    await sign_in(agents, "alice", skills=("lang:es",))
    stream = await offer_streams.open("alice")
    call = await submit(contacts, "call-1", skills=("lang:es",))
    await handle(agents, "alice", await next_offer(stream), "order-status")
    chat = await submit(contacts, "chat-1", pb.CHANNEL_CHAT)
    await handle(agents, "alice", await next_offer(stream), "return")
    return call.contact_id, chat.contact_id


class TestContactReport:
    async def test_agrees_with_the_recorded_timings(
        self,
        contacts: pb_grpc.ContactServiceAsyncStub,
        agents: pb_grpc.AgentServiceAsyncStub,
        reporting: pb_grpc.ReportingServiceAsyncStub,
        offer_streams: OfferStreams,
        db: asyncpg.Connection,
    ) -> None:
        """Per-row figures equal the contact_timings view's for the same contacts."""
        call_id, _ = await one_handled_call_and_chat(contacts, agents, offer_streams)
        waiting = await submit(contacts, "call-waiting")
        start, end = around_now()
        response = await reporting.GetContactReport(
            pb.GetContactReportRequest(
                start=start, end=end, interval=pb.INTERVAL_LENGTH_MONTH, by_skill=True
            )
        )
        assert response.formula == FORMULA
        phone = {r.skill: r for r in response.rows if r.channel == pb.CHANNEL_PHONE}
        assert set(phone) <= {"lang:es", ""}
        spanish = phone["lang:es"]
        timing = await db.fetchrow(
            "SELECT * FROM contact_timings WHERE contact_id = $1::uuid", call_id
        )
        assert timing is not None
        assert (spanish.offered, spanish.answered, spanish.still_waiting) == (1, 1, 0)
        assert spanish.asa_seconds == pytest.approx(timing["wait_seconds"])
        assert spanish.p90_wait_seconds == pytest.approx(timing["wait_seconds"])
        assert spanish.longest_wait_seconds == pytest.approx(timing["wait_seconds"])
        assert spanish.aht_seconds == pytest.approx(timing["handle_seconds"])
        assert spanish.mean_talk_seconds == pytest.approx(timing["talk_seconds"])
        assert spanish.mean_acw_seconds == pytest.approx(timing["acw_seconds"])
        assert spanish.transfers == 0
        assert phone[""].still_waiting == 1, f"{waiting.contact_id} still waits"
        assert not phone[""].HasField("service_level")

    async def test_returning_customer_reaches_the_previous_agent(
        self,
        contacts: pb_grpc.ContactServiceAsyncStub,
        agents: pb_grpc.AgentServiceAsyncStub,
        reporting: pb_grpc.ReportingServiceAsyncStub,
        offer_streams: OfferStreams,
    ) -> None:
        """The same customer's chat after alice completed the call: returning, to alice.
        Another customer's call is no returning customer."""
        await alice_handles(
            contacts,
            agents,
            offer_streams,
            ("call-1", pb.CHANNEL_PHONE, "customer-1"),
            ("chat-1", pb.CHANNEL_CHAT, "customer-1"),
            ("call-2", pb.CHANNEL_PHONE, "customer-2"),
        )
        start, end = around_now()
        response = await reporting.GetContactReport(
            pb.GetContactReportRequest(start=start, end=end, interval=pb.INTERVAL_LENGTH_MONTH)
        )
        assert {
            r.channel: (r.answered, r.returning_answered, r.returning_to_previous_agent)
            for r in response.rows
        } == {pb.CHANNEL_PHONE: (2, 0, 0), pb.CHANNEL_CHAT: (1, 1, 1)}

    async def test_bad_ranges_and_intervals_are_refused(
        self, reporting: pb_grpc.ReportingServiceAsyncStub
    ) -> None:
        start, end = around_now()
        for request, field in (
            (pb.GetContactReportRequest(end=end, interval=pb.INTERVAL_LENGTH_HOUR), "start"),
            (
                pb.GetContactReportRequest(
                    start=end, end=start, interval=pb.INTERVAL_LENGTH_15_MINUTES
                ),
                "end",
            ),
            (pb.GetContactReportRequest(start=start, end=end), "interval"),
            (
                pb.GetContactReportRequest(
                    start=start, end=end, interval=pb.IntervalLength.ValueType(99)
                ),
                "interval",
            ),
            (
                pb.GetContactReportRequest(
                    start=start,
                    end=end,
                    interval=pb.INTERVAL_LENGTH_15_MINUTES,
                    channels=[pb.Channel.ValueType(7)],
                ),
                "channels",
            ),
        ):
            error = await rpc_error(reporting.GetContactReport(request))
            assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
            assert details(error).startswith(field), details(error)


class TestAgentAndDispositionReports:
    async def test_agent_report(
        self,
        contacts: pb_grpc.ContactServiceAsyncStub,
        agents: pb_grpc.AgentServiceAsyncStub,
        reporting: pb_grpc.ReportingServiceAsyncStub,
        offer_streams: OfferStreams,
    ) -> None:
        """Alice: two contacts, signed in now, handling within signed-in time."""
        await one_handled_call_and_chat(contacts, agents, offer_streams)
        start, end = around_now()
        response = await reporting.GetAgentReport(pb.GetAgentReportRequest(start=start, end=end))
        assert "occupancy" in response.formulas
        assert [a.agent_id for a in response.agents] == ["alice"]
        alice = response.agents[0]
        assert (alice.contacts_handled, alice.contacts_completed) == (2, 2)
        assert 0 < alice.handling_seconds <= alice.signed_in_seconds
        assert alice.ready_seconds == pytest.approx(alice.signed_in_seconds)
        assert alice.utilization == pytest.approx(alice.handling_seconds / alice.signed_in_seconds)
        assert [s.status for s in alice.status_times] == [pb.AGENT_STATUS_READY]
        assert len(alice.sessions) == 1
        assert not alice.sessions[0].HasField("signed_out_at")
        only_bob = await reporting.GetAgentReport(
            pb.GetAgentReportRequest(start=start, end=end, agent_ids=["bob"])
        )
        assert list(only_bob.agents) == []

    async def test_feedback_shows_by_channel_agent_and_disposition(
        self,
        contacts: pb_grpc.ContactServiceAsyncStub,
        agents: pb_grpc.AgentServiceAsyncStub,
        reporting: pb_grpc.ReportingServiceAsyncStub,
        offer_streams: OfferStreams,
    ) -> None:
        call_id, chat_id = await one_handled_call_and_chat(contacts, agents, offer_streams)
        await contacts.RecordFeedback(pb.RecordFeedbackRequest(contact_id=call_id, rating=2))
        recorded = await contacts.RecordFeedback(
            pb.RecordFeedbackRequest(contact_id=call_id, rating=4, comment="quick", source="ivr")
        )
        assert recorded.HasField("recorded_at")
        await contacts.RecordFeedback(pb.RecordFeedbackRequest(contact_id=chat_id, rating=5))
        start, end = around_now()
        report = await reporting.GetDispositionReport(
            pb.GetDispositionReportRequest(start=start, end=end)
        )
        assert [
            (d.channel, d.disposition, d.contacts, d.mean_rating) for d in report.dispositions
        ] == [
            (pb.CHANNEL_PHONE, "order-status", 1, 4.0),
            (pb.CHANNEL_CHAT, "return", 1, 5.0),
        ]
        assert [(f.channel, f.agent_id, f.ratings, f.mean_rating) for f in report.feedback] == [
            (pb.CHANNEL_PHONE, "", 1, 4.0),
            (pb.CHANNEL_PHONE, "alice", 1, 4.0),
            (pb.CHANNEL_CHAT, "", 1, 5.0),
            (pb.CHANNEL_CHAT, "alice", 1, 5.0),
        ]
        agent_report = await reporting.GetAgentReport(
            pb.GetAgentReportRequest(start=start, end=end)
        )
        assert (agent_report.agents[0].ratings, agent_report.agents[0].mean_rating) == (2, 4.5)


class TestFeedbackErrors:
    async def test_bad_feedback_is_refused_and_changes_nothing(
        self,
        contacts: pb_grpc.ContactServiceAsyncStub,
        db: asyncpg.Connection,
    ) -> None:
        known = (await submit(contacts, "call-1")).contact_id
        before = await row_counts(db)
        for request, code, field in (
            (pb.RecordFeedbackRequest(contact_id=known, rating=0), "INVALID_ARGUMENT", "rating"),
            (pb.RecordFeedbackRequest(contact_id=known, rating=6), "INVALID_ARGUMENT", "rating"),
            (pb.RecordFeedbackRequest(contact_id="x", rating=3), "INVALID_ARGUMENT", "contact_id"),
            (
                pb.RecordFeedbackRequest(contact_id=known, rating=3, comment="x" * 2001),
                "INVALID_ARGUMENT",
                "comment",
            ),
            (
                pb.RecordFeedbackRequest(
                    contact_id="00000000-0000-4000-8000-000000000000", rating=3
                ),
                "NOT_FOUND",
                "",
            ),
        ):
            error = await rpc_error(contacts.RecordFeedback(request))
            assert error.code().name == code
            assert details(error).startswith(field), details(error)
        assert await row_counts(db) == before
        assert await db.fetchval("SELECT count(*) FROM contact_feedback") == 0


class TestStaffing:
    async def test_forecast(self, reporting: pb_grpc.ReportingServiceAsyncStub) -> None:
        """100 calls of 180 s in half an hour at 80/20 need 14 agents (Erlang C)."""
        start = stamp(datetime(2026, 3, 2, 10, 0, tzinfo=UTC))
        response = await reporting.GetStaffing(
            pb.GetStaffingRequest(
                channel=pb.CHANNEL_PHONE,
                interval=pb.INTERVAL_LENGTH_30_MINUTES,
                forecast=[pb.ForecastInterval(interval_start=start, calls=100, aht_seconds=180)],
            )
        )
        assert "Erlang C" in response.model
        assert (response.target_service_level, response.threshold_seconds) == (0.8, 20.0)
        (row,) = response.rows
        assert (row.agents, row.traffic_erlangs) == (14, 10.0)
        assert row.service_level == pytest.approx(0.8884, abs=1e-4)

    async def test_from_history(
        self,
        contacts: pb_grpc.ContactServiceAsyncStub,
        agents: pb_grpc.AgentServiceAsyncStub,
        reporting: pb_grpc.ReportingServiceAsyncStub,
        offer_streams: OfferStreams,
    ) -> None:
        """Yesterday-to-tomorrow history: the interval with the call needs one agent."""
        await one_handled_call_and_chat(contacts, agents, offer_streams)
        now = datetime.now(UTC)
        response = await reporting.GetStaffing(
            pb.GetStaffingRequest(
                channel=pb.CHANNEL_PHONE,
                interval=pb.INTERVAL_LENGTH_HOUR,
                history_start=stamp(now - timedelta(hours=3)),
                history_end=stamp(now + timedelta(hours=1)),
            )
        )
        after = datetime.now(UTC)
        busy = [r for r in response.rows if r.calls]
        # The hours from 3 h ago to the current one; the next hour has not begun (unless
        # the hour turned while the request was answered: then it has, with nothing in it).
        turned = after.hour != now.hour
        assert len(response.rows) in ({4, 5} if turned else {4})
        assert response.rows[-1].interval_start.ToDatetime(tzinfo=UTC) <= after
        assert [(r.calls, r.agents) for r in busy] == [(1.0, 1)]
        # What was actually there: the agent who took the call was signed in and ready.
        assert all(r.HasField("staffed_agents") for r in response.rows)
        assert busy[0].staffed_agents > 0
        assert busy[0].HasField("measured_service_level")
        blended = await reporting.GetStaffing(
            pb.GetStaffingRequest(
                interval=pb.INTERVAL_LENGTH_HOUR,
                channels=[pb.CHANNEL_PHONE, pb.CHANNEL_CHAT],
                history_start=stamp(now - timedelta(hours=3)),
                history_end=stamp(now + timedelta(hours=1)),
            )
        )
        assert "blended" in blended.model
        pooled = [r for r in blended.rows if r.calls]
        assert [(r.calls, r.agents, r.separate_agents) for r in pooled] == [(2.0, 1, 2)]
        assert not pooled[0].HasField("measured_service_level")

    async def test_blended_staffing_refuses_what_it_cannot_mean(
        self, reporting: pb_grpc.ReportingServiceAsyncStub, db: asyncpg.Connection
    ) -> None:
        """INVALID_ARGUMENT naming the field, and nothing recorded."""
        now = datetime.now(UTC)
        history = {
            "history_start": stamp(now - timedelta(hours=1)),
            "history_end": stamp(now),
        }
        start = stamp(datetime(2026, 3, 2, tzinfo=UTC))
        both = [pb.CHANNEL_PHONE, pb.CHANNEL_CHAT]
        before = await row_counts(db)
        for field, changes in [
            ("channels[1]", {"channels": [pb.CHANNEL_PHONE, 9], **history}),
            ("channels[0]", {"channels": [pb.CHANNEL_UNSPECIFIED], **history}),
            ("channels", {"channels": [pb.CHANNEL_CHAT, pb.CHANNEL_CHAT], **history}),
            ("channels", {"channels": [pb.CHANNEL_PHONE] * 4, **history}),
            ("channel", {"channel": pb.CHANNEL_EMAIL, "channels": both, **history}),
            (
                "channels",
                {
                    "channels": both,
                    "forecast": [pb.ForecastInterval(interval_start=start, calls=1)],
                },
            ),
            ("with_abandonment", {"channels": both, "with_abandonment": True, **history}),
            ("concurrency", {"channels": both, "concurrency": 2, **history}),
        ]:
            request = pb.GetStaffingRequest(interval=pb.INTERVAL_LENGTH_HOUR, **changes)  # type: ignore[arg-type]
            error = await rpc_error(reporting.GetStaffing(request))
            assert error.code() == grpc.StatusCode.INVALID_ARGUMENT, field
            assert details(error).startswith(field), (field, details(error))
        assert await row_counts(db) == before

    async def test_erlang_a_forecast(self, reporting: pb_grpc.ReportingServiceAsyncStub) -> None:
        """With two minutes' patience, abandons shorten the queue: 12 agents, not 14."""
        start = stamp(datetime(2026, 3, 2, 10, 0, tzinfo=UTC))
        response = await reporting.GetStaffing(
            pb.GetStaffingRequest(
                channel=pb.CHANNEL_PHONE,
                interval=pb.INTERVAL_LENGTH_30_MINUTES,
                with_abandonment=True,
                patience_seconds=120,
                forecast=[
                    pb.ForecastInterval(interval_start=start, calls=100, aht_seconds=180),
                    pb.ForecastInterval(interval_start=start, calls=0, aht_seconds=180),
                ],
            )
        )
        assert "Erlang A" in response.model
        assert response.patience_seconds == 120
        busy, quiet = response.rows
        assert busy.agents == 12
        assert busy.service_level >= 0.8
        assert 0 < busy.abandonment < 0.1
        assert (quiet.agents, quiet.abandonment) == (0, 0.0)

    async def test_erlang_a_needs_patience_it_can_know(
        self,
        contacts: pb_grpc.ContactServiceAsyncStub,
        reporting: pb_grpc.ReportingServiceAsyncStub,
    ) -> None:
        """No patience with a forecast, or a history without abandons: INVALID_ARGUMENT."""
        start = stamp(datetime(2026, 3, 2, tzinfo=UTC))
        ok = pb.ForecastInterval(interval_start=start, calls=10, aht_seconds=100)
        error = await rpc_error(
            reporting.GetStaffing(
                pb.GetStaffingRequest(
                    channel=pb.CHANNEL_PHONE,
                    interval=pb.INTERVAL_LENGTH_HOUR,
                    with_abandonment=True,
                    forecast=[ok],
                )
            )
        )
        assert details(error).startswith("patience_seconds")
        assert "with_abandonment" in details(error)
        await submit(contacts, "call-1")
        now = datetime.now(UTC)
        error = await rpc_error(
            reporting.GetStaffing(
                pb.GetStaffingRequest(
                    channel=pb.CHANNEL_PHONE,
                    interval=pb.INTERVAL_LENGTH_HOUR,
                    with_abandonment=True,
                    history_start=stamp(now - timedelta(hours=1)),
                    history_end=stamp(now + timedelta(hours=1)),
                )
            )
        )
        assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert "no call was abandoned" in details(error)

    async def test_erlang_a_estimates_patience_from_history(
        self,
        contacts: pb_grpc.ContactServiceAsyncStub,
        reporting: pb_grpc.ReportingServiceAsyncStub,
        db: asyncpg.Connection,
    ) -> None:
        """Patience = total wait / abandoned calls: here the one abandoned call's wait."""
        call = await submit(contacts, "call-1")
        await contacts.AbandonContact(pb.AbandonContactRequest(contact_id=call.contact_id))
        waited = await db.fetchval(
            "SELECT wait_seconds FROM contact_timings WHERE contact_id = $1::uuid", call.contact_id
        )
        now = datetime.now(UTC)
        response = await reporting.GetStaffing(
            pb.GetStaffingRequest(
                channel=pb.CHANNEL_PHONE,
                interval=pb.INTERVAL_LENGTH_HOUR,
                with_abandonment=True,
                history_start=stamp(now - timedelta(hours=2)),
                history_end=stamp(now + timedelta(hours=1)),
            )
        )
        assert response.patience_seconds == pytest.approx(waited)

    async def test_bad_requests(self, reporting: pb_grpc.ReportingServiceAsyncStub) -> None:
        start = stamp(datetime(2026, 3, 2, tzinfo=UTC))
        ok = pb.ForecastInterval(interval_start=start, calls=10, aht_seconds=100)
        for request, field in (
            (
                pb.GetStaffingRequest(
                    channel=pb.CHANNEL_PHONE, interval=pb.INTERVAL_LENGTH_DAY, forecast=[ok]
                ),
                "interval",
            ),
            (
                pb.GetStaffingRequest(
                    channel=pb.CHANNEL_PHONE, interval=pb.INTERVAL_LENGTH_15_MINUTES
                ),
                "forecast",
            ),
            (
                pb.GetStaffingRequest(
                    channel=pb.CHANNEL_PHONE,
                    interval=pb.INTERVAL_LENGTH_15_MINUTES,
                    forecast=[ok],
                    target_service_level=1.5,
                ),
                "target_service_level",
            ),
            (
                pb.GetStaffingRequest(
                    channel=pb.CHANNEL_PHONE,
                    interval=pb.INTERVAL_LENGTH_15_MINUTES,
                    forecast=[pb.ForecastInterval(interval_start=start, calls=-1)],
                ),
                "forecast[0]",
            ),
            (
                pb.GetStaffingRequest(interval=pb.INTERVAL_LENGTH_15_MINUTES, forecast=[ok]),
                "channel",
            ),
        ):
            error = await rpc_error(reporting.GetStaffing(request))
            assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
            assert details(error).startswith(field), details(error)


class TestStaffingForChatAndEmail:
    async def test_concurrency_and_shrinkage(
        self, reporting: pb_grpc.ReportingServiceAsyncStub
    ) -> None:
        """Issue 14 #8: 100 chats of 180 s at 80/20 need 14 servers: 5 agents holding the
        default 3 chats each (14 before, as if each held one), 8 to schedule at 35%
        shrinkage; both are echoed. Phone agents hold one call."""
        start = stamp(datetime(2026, 3, 2, 10, 0, tzinfo=UTC))
        forecast = [pb.ForecastInterval(interval_start=start, calls=100, aht_seconds=180)]
        chat = await reporting.GetStaffing(
            pb.GetStaffingRequest(
                channel=pb.CHANNEL_CHAT,
                interval=pb.INTERVAL_LENGTH_30_MINUTES,
                threshold_seconds=20,
                shrinkage=0.35,
                forecast=forecast,
            )
        )
        assert (chat.concurrency, chat.shrinkage) == (3.0, 0.35)
        assert [(r.agents, r.agents_scheduled) for r in chat.rows] == [(5, 8)]
        assert "concurrency" in chat.model
        two = await reporting.GetStaffing(
            pb.GetStaffingRequest(
                channel=pb.CHANNEL_CHAT,
                interval=pb.INTERVAL_LENGTH_30_MINUTES,
                threshold_seconds=20,
                concurrency=2,
                forecast=forecast,
            )
        )
        assert (two.concurrency, two.shrinkage) == (2.0, 0.0)
        assert [(r.agents, r.agents_scheduled) for r in two.rows] == [(7, 7)]
        phone = await reporting.GetStaffing(
            pb.GetStaffingRequest(
                channel=pb.CHANNEL_PHONE, interval=pb.INTERVAL_LENGTH_30_MINUTES, forecast=forecast
            )
        )
        assert phone.concurrency == 1.0
        assert [(r.agents, r.agents_scheduled) for r in phone.rows] == [(14, 14)]

    @pytest.mark.parametrize(
        ("changes", "field"),
        [
            ({"channel": pb.CHANNEL_PHONE, "concurrency": 2}, "concurrency"),
            ({"concurrency": 0.5}, "concurrency"),
            ({"concurrency": 21}, "concurrency"),
            ({"concurrency": math.nan}, "concurrency"),
            ({"shrinkage": 1.0}, "shrinkage"),
            ({"shrinkage": -0.1}, "shrinkage"),
            ({"shrinkage": math.nan}, "shrinkage"),
        ],
    )
    async def test_impossible_concurrency_and_shrinkage_are_refused(
        self, reporting: pb_grpc.ReportingServiceAsyncStub, changes: dict[str, Any], field: str
    ) -> None:
        """A phone agent holds one call; a chat agent at least one and at most the
        channel's maximum capacity (20); shrinkage is a share of time in [0, 1)."""
        request = pb.GetStaffingRequest(
            channel=pb.CHANNEL_CHAT,
            interval=pb.INTERVAL_LENGTH_HOUR,
            forecast=[
                pb.ForecastInterval(
                    interval_start=stamp(datetime(2026, 3, 2, tzinfo=UTC)),
                    calls=10,
                    aht_seconds=100,
                )
            ],
        )
        for name, value in changes.items():
            setattr(request, name, value)
        error = await rpc_error(reporting.GetStaffing(request))
        assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert details(error).startswith(field), details(error)


class TestInternalErrors:
    """Issue 14 #16 and #12: requests that answered INTERNAL (with a traceback in the log)
    or computed for ever answer at once, with a status a client can act on."""

    async def test_an_agent_report_that_starts_in_the_future_is_empty(
        self, reporting: pb_grpc.ReportingServiceAsyncStub, agents: pb_grpc.AgentServiceAsyncStub
    ) -> None:
        await sign_in(agents, "alice")
        now = datetime.now(UTC)
        response = await reporting.GetAgentReport(
            pb.GetAgentReportRequest(
                start=stamp(now + timedelta(days=1)), end=stamp(now + timedelta(days=2))
            )
        )
        assert list(response.agents) == []

    async def test_staffing_from_a_history_in_the_last_hour_of_9999(
        self, reporting: pb_grpc.ReportingServiceAsyncStub
    ) -> None:
        error = await rpc_error(
            reporting.GetStaffing(
                pb.GetStaffingRequest(
                    channel=pb.CHANNEL_PHONE,
                    interval=pb.INTERVAL_LENGTH_HOUR,
                    history_start=stamp(datetime(9999, 12, 31, 23, tzinfo=UTC)),
                    history_end=stamp(datetime(9999, 12, 31, 23, 59, 59, tzinfo=UTC)),
                )
            )
        )
        assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert details(error).startswith("history_start: is after now"), details(error)

    @pytest.mark.parametrize(
        ("changes", "field"),
        [
            ({"patience_seconds": 5e-324}, "patience_seconds"),
            ({"patience_seconds": 60, "threshold_seconds": 1e10}, "threshold_seconds"),
            ({"patience_seconds": 60, "calls": 1e6, "aht_seconds": 300}, "forecast[0]"),
            ({"patience_seconds": 60, "calls": 2e6}, "forecast[0]"),
            ({"patience_seconds": 1e9}, "patience_seconds"),
        ],
    )
    async def test_erlang_a_inputs_no_center_can_mean_are_refused_at_once(
        self,
        reporting: pb_grpc.ReportingServiceAsyncStub,
        changes: dict[str, float],
        field: str,
    ) -> None:
        """Patience 5e-324 s answered INTERNAL ("cannot convert float NaN to integer"); a
        threshold of 1e10 s, or a million calls of 300 s in 15 minutes, computed until the
        client gave up (and on after): each is INVALID_ARGUMENT naming the field."""
        item = pb.ForecastInterval(
            interval_start=stamp(datetime(2026, 3, 2, tzinfo=UTC)), calls=10, aht_seconds=300
        )
        request = pb.GetStaffingRequest(
            channel=pb.CHANNEL_PHONE,
            interval=pb.INTERVAL_LENGTH_15_MINUTES,
            with_abandonment=True,
            forecast=[item],
        )
        for name, value in changes.items():
            setattr(item if name in ("calls", "aht_seconds") else request, name, value)
        del request.forecast[:]
        request.forecast.append(item)
        error = await rpc_error(reporting.GetStaffing(request, timeout=10))
        assert error.code() == grpc.StatusCode.INVALID_ARGUMENT, details(error)
        assert details(error).startswith(field), details(error)


class TestAlarmInQueueStatus:
    async def test_queue_status_shows_the_alarm_line(
        self,
        contacts: pb_grpc.ContactServiceAsyncStub,
        agents: pb_grpc.AgentServiceAsyncStub,
        reporting: pb_grpc.ReportingServiceAsyncStub,
        offer_streams: OfferStreams,
    ) -> None:
        """No calls: no level, no alarm; one call answered at once: 100%, no alarm."""
        before = await reporting.GetQueueStatus(pb.GetQueueStatusRequest())
        assert before.service_level_alarm.threshold == 0.7
        assert not before.service_level_alarm.raised
        assert not before.service_level_alarm.HasField("rolling_service_level")
        await one_handled_call_and_chat(contacts, agents, offer_streams)
        after = await reporting.GetQueueStatus(pb.GetQueueStatusRequest())
        assert after.service_level_alarm.rolling_service_level == 1.0
        assert not after.service_level_alarm.raised
