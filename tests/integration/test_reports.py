"""Report queries against hand-built histories with answers worked out by hand.

One morning, 2026-03-02 (a Monday), UTC. Phone threshold 20 s, chat 60 s, short
abandons up to 5 s. The report is read at 11:45 ("now"): bob is still signed in and
still talking, one call still waits.
"""

from __future__ import annotations

import dataclasses
import json
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from types import MappingProxyType

import asyncpg
import pytest

from router.domain import Channel, InvalidArgument, RoutingPolicy
from router.domain.rolling import RollingServiceLevel
from router.domain.service_level import FORMULA
from router.reporting.intervals import Interval
from router.reporting.reporting import Reporting
from router.reporting.staffing_requests import StaffingRequest
from router.service_level_watch import ServiceLevelWatch
from router.store import Store
from router.store.reports import ContactDetail, ContactFigures

THRESHOLDS = {Channel.PHONE: 20.0, Channel.CHAT: 60.0, Channel.EMAIL: 3600.0}
NOW = datetime(2026, 3, 2, 11, 45, tzinfo=UTC)
START, END = datetime(2026, 3, 2, 10, 0, tzinfo=UTC), datetime(2026, 3, 2, 12, 0, tzinfo=UTC)


def t(clock: str) -> datetime:
    """'10:15:20' on the report's day, UTC."""
    hours, minutes, seconds = (int(part) for part in clock.split(":"))
    return datetime(2026, 3, 2, hours, minutes, seconds, tzinfo=UTC)


async def contact(
    db: asyncpg.Connection,
    channel: Channel,
    queued: str,
    *,
    answered: str | None = None,
    ended: str | None = None,
    completed: str | None = None,
    abandoned: str | None = None,
    agent: str | None = None,
    disposition: str | None = None,
    skills: tuple[str, ...] = (),
    rating: int | None = None,
    customer: str = "c",
    offers: int = 1,
    state: str | None = None,
) -> uuid.UUID:
    """One contact row (and its rating) with hand-set timestamps; `offers` is its
    offer_count (a transferred contact was offered once per leg)."""
    state = state or (
        "abandoned"
        if abandoned
        else "completed"
        if completed
        else "wrap_up"
        if ended
        else "connected"
        if answered
        else "queued"
    )
    contact_id = uuid.uuid4()
    stamp = {
        name: None if value is None else t(value)
        for name, value in (
            ("answered", answered),
            ("ended", ended),
            ("completed", completed),
            ("abandoned", abandoned),
        )
    }
    await db.execute(
        """
        INSERT INTO contacts (
            id, idempotency_key, channel, customer_id, attributes, required_skills, state,
            queued_at, offered_at, answered_at, ended_at, completed_at, abandoned_at,
            agent_id, disposition, offer_count, updated_at
        ) VALUES ($1, $2, $3, $14, $4::jsonb, $5, $6, $7, $8, $8, $9, $10, $11, $12, $13, $15, $7)
        """,
        contact_id,
        f"key-{contact_id}",
        channel.value,
        json.dumps({}),
        list(skills),
        state,
        t(queued),
        stamp["answered"],
        stamp["ended"],
        stamp["completed"],
        stamp["abandoned"],
        agent,
        disposition,
        customer,
        offers,
    )
    if rating is not None:
        await db.execute(
            "INSERT INTO contact_feedback (contact_id, rating, recorded_at) VALUES ($1, $2, $3)",
            contact_id,
            rating,
            NOW,
        )
    return contact_id


async def status(
    db: asyncpg.Connection, agent: str, kind: str, state: str, clock: str, reason: str = ""
) -> None:
    await db.execute(
        "INSERT INTO agents (id, first_seen_at, last_seen_at) VALUES ($1, $2, $2) "
        "ON CONFLICT (id) DO NOTHING",
        agent,
        t(clock),
    )
    await db.execute(
        "INSERT INTO agent_status_log (agent_id, kind, status, reason, connected, at) "
        "VALUES ($1, $2, $3, $4, true, $5)",
        agent,
        kind,
        state,
        reason,
        t(clock),
    )


@pytest.fixture
async def morning(db: asyncpg.Connection, store: Store) -> Store:
    """The morning described in the module docstring."""
    # 10:00 interval, phone: answered in 10 s; answered in 30 s across the 10:15 boundary;
    # a 3 s short abandon; a 40 s abandon.
    await contact(
        db,
        Channel.PHONE,
        "10:00:00",
        answered="10:00:10",
        ended="10:05:10",
        completed="10:06:10",
        agent="alice",
        disposition="order-status",
        skills=("lang:es",),
        rating=5,
    )
    await contact(
        db,
        Channel.PHONE,
        "10:14:50",
        answered="10:15:20",
        ended="10:20:20",
        completed="10:20:50",
        agent="alice",
        disposition="return",
        rating=3,
    )
    await contact(db, Channel.PHONE, "10:05:00", abandoned="10:05:03")
    await contact(db, Channel.PHONE, "10:06:00", abandoned="10:06:40")
    # 10:15 interval, phone: bob answers in 5 s and is still in wrap-up; one still waits.
    await contact(db, Channel.PHONE, "10:20:00", answered="10:20:05", ended="10:30:05", agent="bob")
    await contact(db, Channel.PHONE, "10:25:00")
    # A chat alice handles alongside her first call.
    await contact(
        db,
        Channel.CHAT,
        "10:01:00",
        answered="10:02:00",
        ended="10:11:00",
        completed="10:12:00",
        agent="alice",
        disposition="order-status",
        rating=4,
    )
    # Outside the range: must not count.
    await contact(
        db,
        Channel.PHONE,
        "09:59:59",
        answered="10:00:01",
        ended="10:01:00",
        completed="10:01:30",
        agent="carol",
        disposition="order-status",
        rating=1,
    )

    await status(db, "alice", "signed_in", "ready", "09:55:00")
    await status(db, "alice", "status_changed", "away", "10:30:00", "lunch")
    await status(db, "alice", "status_changed", "ready", "11:00:00")
    await status(db, "alice", "signed_out", "offline", "11:30:00")
    await status(db, "bob", "signed_in", "ready", "10:10:00")
    return store


def by_interval(rows: list[ContactFigures]) -> dict[tuple[datetime, Channel, str], ContactFigures]:
    return {(r.interval_start, r.channel, r.skill): r for r in rows}


def detail(row: ContactFigures) -> ContactDetail:
    """The row's detail (read with detail, the default)."""
    assert row.detail is not None
    return row.detail


class TestContactReport:
    async def test_fifteen_minutes(self, morning: Store) -> None:
        """Every figure of both phone intervals, including the call across 10:15."""
        rows = by_interval(
            await morning.reports.contacts(START, END, Interval.MINUTES_15, THRESHOLDS, 5.0)
        )
        assert set(rows) == {
            (t("10:00:00"), Channel.PHONE, ""),
            (t("10:00:00"), Channel.CHAT, ""),
            (t("10:15:00"), Channel.PHONE, ""),
        }
        first = rows[(t("10:00:00"), Channel.PHONE, "")]
        assert (first.offered, first.answered, first.abandoned, first.short_abandoned) == (
            4,
            2,
            2,
            1,
        )
        assert (first.answered_within_threshold, first.still_waiting) == (1, 0)
        assert first.asa_seconds == 20.0
        assert detail(first).p90_wait_seconds == pytest.approx(28.0)
        assert first.longest_wait_seconds == 40.0
        assert first.aht_seconds == 345.0
        assert first.mean_talk_seconds == 300.0
        assert first.mean_acw_seconds == 45.0
        assert detail(first).transfers == 0

        second = rows[(t("10:15:00"), Channel.PHONE, "")]
        assert (second.offered, second.answered, second.abandoned, second.still_waiting) == (
            2,
            1,
            0,
            1,
        )
        assert (second.asa_seconds, second.longest_wait_seconds) == (5.0, 5.0)
        assert second.aht_seconds is None, "a contact in wrap-up has no handle time yet"
        assert second.mean_talk_seconds == 600.0
        assert second.mean_acw_seconds is None

        chat = rows[(t("10:00:00"), Channel.CHAT, "")]
        assert (chat.offered, chat.answered, chat.answered_within_threshold) == (1, 1, 1)
        assert (chat.threshold_seconds, chat.aht_seconds) == (60.0, 600.0)

    async def test_hour_merges_the_quarters(self, morning: Store) -> None:
        """One hour row for phone: 6 offered, 2 of 4 counted within 20 s, ASA 15 s."""
        rows = await morning.reports.contacts(START, END, Interval.HOUR, THRESHOLDS, 5.0)
        phone = by_interval(rows)[(t("10:00:00"), Channel.PHONE, "")]
        assert (phone.offered, phone.answered, phone.abandoned, phone.short_abandoned) == (
            6,
            3,
            2,
            1,
        )
        assert phone.answered_within_threshold == 2
        assert phone.asa_seconds == 15.0

    async def test_day_week_and_month_bins(self, morning: Store) -> None:
        """Day, ISO week (Monday) and calendar month start where a manager expects."""
        day = datetime(2026, 3, 2, tzinfo=UTC)
        start = datetime(2026, 3, 1, tzinfo=UTC)
        for interval, expected in (
            (Interval.DAY, day),
            (Interval.WEEK, day),
            (Interval.MONTH, datetime(2026, 3, 1, tzinfo=UTC)),
        ):
            rows = await morning.reports.contacts(
                start, start + timedelta(days=31), interval, THRESHOLDS, 5.0
            )
            phone = [r for r in rows if r.channel is Channel.PHONE]
            assert [(r.interval_start, r.offered) for r in phone] == [(expected, 7)], interval

    async def test_by_skill(self, morning: Store) -> None:
        """A contact counts under each skill it requires; the others under ""."""
        rows = by_interval(
            await morning.reports.contacts(
                START, END, Interval.MINUTES_15, THRESHOLDS, 5.0, by_skill=True
            )
        )
        spanish = rows[(t("10:00:00"), Channel.PHONE, "lang:es")]
        rest = rows[(t("10:00:00"), Channel.PHONE, "")]
        assert (spanish.offered, spanish.answered_within_threshold) == (1, 1)
        assert (rest.offered, rest.answered, rest.abandoned) == (3, 1, 2)

    async def test_transfers_are_counted_from_transfer_events(
        self, morning: Store, db: asyncpg.Connection
    ) -> None:
        """Each 'transferred' event counts in its contact's row (by queue interval)."""
        first = await db.fetchval("SELECT id FROM contacts WHERE queued_at = $1", t("10:00:00"))
        for _ in range(2):
            await db.execute(
                "INSERT INTO contact_events (contact_id, kind, at) VALUES ($1, 'transferred', $2)",
                first,
                t("10:03:00"),
            )
        rows = by_interval(
            await morning.reports.contacts(START, END, Interval.MINUTES_15, THRESHOLDS, 5.0)
        )
        assert detail(rows[(t("10:00:00"), Channel.PHONE, "")]).transfers == 2
        assert detail(rows[(t("10:15:00"), Channel.PHONE, "")]).transfers == 0


class TestAgentReport:
    async def test_alice(self, morning: Store) -> None:
        """Signed in 10:00-11:30 (within the range), away for lunch 10:30-11:00, handling
        10:00:10-10:12:00 (a call and a chat at once count once) and 10:15:20-10:20:50."""
        agents = {a.agent_id: a for a in await morning.reports.agents(START, END, NOW)}
        alice = agents["alice"]
        assert alice.signed_in_seconds == 5400.0
        assert alice.ready_seconds == 3600.0
        assert alice.handling_seconds == 710.0 + 330.0
        assert alice.available_seconds == 3600.0
        assert (alice.contacts_handled, alice.completed) == (3, 3)
        assert alice.aht_seconds == pytest.approx((360 + 330 + 600) / 3)
        assert alice.acw_seconds_total == 150.0

    async def test_bob_still_signed_in_and_talking(self, morning: Store) -> None:
        """Open sign-in and open contact run to now (11:45), not to the range's end."""
        agents = {a.agent_id: a for a in await morning.reports.agents(START, END, NOW)}
        bob = agents["bob"]
        assert bob.signed_in_seconds == (NOW - t("10:10:00")).total_seconds()
        assert bob.handling_seconds == (NOW - t("10:20:05")).total_seconds()
        assert (bob.contacts_handled, bob.completed, bob.aht_seconds) == (1, 0, None)
        assert bob.acw_seconds_total == 0.0

    async def test_range_edges_cut_agent_time(self, morning: Store) -> None:
        """From 10:35 to 11:15: alice is away 25 min (lunch), ready 15 min."""
        times = await morning.reports.agent_status_times(t("10:35:00"), t("11:15:00"), NOW)
        alice = {(s.status, s.reason): s.seconds for s in times if s.agent_id == "alice"}
        assert alice == {("away", "lunch"): 1500.0, ("ready", ""): 900.0}
        agents = {
            a.agent_id: a for a in await morning.reports.agents(t("10:35:00"), t("11:15:00"), NOW)
        }
        assert agents["alice"].signed_in_seconds == 2400.0
        assert agents["alice"].contacts_handled == 0

    async def test_time_by_status(self, morning: Store) -> None:
        times = await morning.reports.agent_status_times(START, END, NOW)
        assert {(s.agent_id, s.status, s.reason): s.seconds for s in times} == {
            ("alice", "ready", ""): 3600.0,
            ("alice", "away", "lunch"): 1800.0,
            ("bob", "ready", ""): (NOW - t("10:10:00")).total_seconds(),
        }

    async def test_attendance(self, morning: Store) -> None:
        """Sessions keep their real sign-in, even one from before the range."""
        sessions = await morning.reports.sessions(START, END)
        assert [(s.agent_id, s.signed_in_at, s.signed_out_at) for s in sessions] == [
            ("alice", t("09:55:00"), t("11:30:00")),
            ("bob", t("10:10:00"), None),
        ]


class TestDispositionsAndFeedback:
    async def test_dispositions(self, morning: Store) -> None:
        rows = await morning.reports.dispositions(START, END)
        assert [
            (r.channel, r.disposition, r.contacts, r.aht_seconds, r.mean_rating) for r in rows
        ] == [
            (Channel.CHAT, "order-status", 1, 600.0, 4.0),
            (Channel.PHONE, "order-status", 1, 360.0, 5.0),
            (Channel.PHONE, "return", 1, 330.0, 3.0),
        ]

    async def test_feedback_by_channel_and_agent(self, morning: Store) -> None:
        rows = await morning.reports.feedback(START, END)
        assert [(r.channel, r.agent_id, r.ratings, r.mean_rating) for r in rows] == [
            (Channel.CHAT, None, 1, 4.0),
            (Channel.CHAT, "alice", 1, 4.0),
            (Channel.PHONE, None, 2, 4.0),
            (Channel.PHONE, "alice", 2, 4.0),
        ]

    async def test_recorded_feedback_replaces_the_earlier_rating(
        self, morning: Store, db: asyncpg.Connection
    ) -> None:
        contact_id = await db.fetchval(
            "SELECT id FROM contacts WHERE queued_at = $1", t("10:01:00")
        )
        await morning.reports.record_feedback(str(contact_id), 2, "slow", "survey", NOW)
        row = await db.fetchrow(
            "SELECT rating, comment, source FROM contact_feedback WHERE contact_id = $1",
            contact_id,
        )
        assert row is not None
        assert tuple(row) == (2, "slow", "survey")


class TestViews:
    async def test_interval_service_level_view(
        self, morning: Store, db: asyncpg.Connection
    ) -> None:
        """The SQL view gives the API's figures for the same interval."""
        row = await db.fetchrow(
            "SELECT * FROM interval_service_level WHERE interval_start = $1 AND channel = 'phone'",
            t("10:00:00"),
        )
        assert row is not None
        assert (row["offered"], row["answered"], row["abandoned"], row["short_abandoned"]) == (
            4,
            2,
            2,
            1,
        )
        assert row["service_level"] == pytest.approx(1 / 3)
        assert row["asa_seconds"] == 20.0

    async def test_channel_targets_follow_the_router(
        self, morning: Store, db: asyncpg.Connection
    ) -> None:
        """With a 30 s phone target the view counts the 30 s answer as within target."""
        default = RoutingPolicy()
        channels = dict(default.channels)
        channels[Channel.PHONE] = dataclasses.replace(channels[Channel.PHONE], answer_target=30.0)
        policy = dataclasses.replace(default, channels=channels)
        await morning.reports.save_channel_targets(policy)
        row = await db.fetchrow(
            "SELECT answered_within_target FROM interval_service_level "
            "WHERE interval_start = $1 AND channel = 'phone'",
            t("10:00:00"),
        )
        assert row is not None
        assert row["answered_within_target"] == 2

    async def test_agent_status_periods(self, morning: Store, db: asyncpg.Connection) -> None:
        """The function the agent reports read: alice's stretches from 10:00 (signed in
        before) to the range's end, cut at now (11:45) for bob, still signed in."""
        rows = await db.fetch(
            "SELECT agent_id, status, reason, lower(period) AS since, upper(period) AS until "
            "FROM agent_status_periods($1, $2, $3) ORDER BY agent_id, since",
            START,
            END,
            NOW,
        )
        assert [tuple(r) for r in rows] == [
            ("alice", "ready", "", t("10:00:00"), t("10:30:00")),
            ("alice", "away", "lunch", t("10:30:00"), t("11:00:00")),
            ("alice", "ready", "", t("11:00:00"), t("11:30:00")),
            ("alice", "offline", "", t("11:30:00"), NOW),
            ("bob", "ready", "", t("10:10:00"), NOW),
        ]

    async def test_agent_views(self, morning: Store, db: asyncpg.Connection) -> None:
        sessions = await db.fetch("SELECT * FROM agent_sessions WHERE agent_id = 'alice'")
        assert [(r["signed_in_at"], r["signed_out_at"]) for r in sessions] == [
            (t("09:55:00"), t("11:30:00"))
        ]
        lunch = await db.fetchrow(
            "SELECT seconds FROM agent_activity WHERE agent_id = 'alice' AND reason = 'lunch'"
        )
        assert lunch is not None
        assert lunch["seconds"] == 1800.0


class TestTransferredContactsInTheAgentReport:
    async def test_each_agent_gets_its_own_leg(self, db: asyncpg.Connection, store: Store) -> None:
        """Dave answers at 11:00:10 and transfers at 11:05:10; the contact waits; Erin
        answers at 11:06:10, ends at 11:10:10, completes at 11:11:10. Dave handled 300 s
        (no wrap-up), Erin 300 s of which 60 s ACW; neither gets the other's time."""
        contact_id = await contact(
            db,
            Channel.PHONE,
            "11:00:00",
            answered="11:00:10",
            ended="11:10:10",
            completed="11:11:10",
            agent="erin",
            disposition="billing",
        )
        for kind, clock, agent in (
            ("submitted", "11:00:00", None),
            ("offered", "11:00:05", "dave"),
            ("answered", "11:00:10", "dave"),
            ("transferred", "11:05:10", "dave"),
            ("offered", "11:06:05", "erin"),
            ("answered", "11:06:10", "erin"),
            ("ended", "11:10:10", "erin"),
            ("completed", "11:11:10", "erin"),
        ):
            await db.execute(
                "INSERT INTO contact_events (contact_id, kind, at, agent_id) "
                "VALUES ($1, $2, $3, $4)",
                contact_id,
                kind,
                t(clock),
                agent,
            )
        for agent in ("dave", "erin"):
            await status(db, agent, "signed_in", "ready", "10:55:00")
        agents = {a.agent_id: a for a in await store.reports.agents(START, END, NOW)}
        dave, erin = agents["dave"], agents["erin"]
        assert (dave.handling_seconds, dave.contacts_handled, dave.completed) == (300.0, 1, 1)
        assert (dave.aht_seconds, dave.acw_seconds_total) == (300.0, 0.0)
        assert (erin.handling_seconds, erin.contacts_handled, erin.completed) == (300.0, 1, 1)
        assert (erin.aht_seconds, erin.acw_seconds_total) == (300.0, 60.0)
        rows = await store.reports.contacts(START, END, Interval.HOUR, THRESHOLDS, 5.0)
        (phone,) = [r for r in rows if r.channel is Channel.PHONE]
        assert (detail(phone).transfers, phone.answered, phone.asa_seconds) == (1, 1, 10.0)


async def events(db: asyncpg.Connection, contact_id: uuid.UUID, *steps: tuple[str, str]) -> None:
    """A contact's history: ("answered", "11:05:10 erin") and the like."""
    for kind, when in steps:
        clock, _, agent = when.partition(" ")
        await db.execute(
            "INSERT INTO contact_events (contact_id, kind, at, agent_id) VALUES ($1, $2, $3, $4)",
            contact_id,
            kind,
            t(clock),
            agent or None,
        )


class TestReturningCustomers:
    """Each case's contact in 11:00 to 12:00 requires its own skill, so that the report
    split by skill gives one row per case; what came before is earlier that morning,
    mostly before the range (a customer's history counts from any time and channel)."""

    @pytest.fixture
    async def cases(self, db: asyncpg.Connection, store: Store) -> Store:
        async def done(customer: str, queued: str, completed: str, agent: str, **kw: str) -> None:
            channel = Channel(kw.get("channel", "phone"))
            answered = kw.get("answered", queued[:6] + "30")
            await contact(db, channel, queued, answered=answered, ended=completed,
                          completed=completed, agent=agent, customer=customer)  # fmt: skip

        async def now(case: str, queued: str, answered: str, agent: str | None, **kw: str) -> None:
            await contact(db, Channel.PHONE, queued, answered=answered, agent=agent,
                          customer=case, skills=(f"case:{case}",),
                          offers=int(kw.get("offers", "1")))  # fmt: skip

        # Previous contact completed by the agent who answers this one; on another channel.
        await done("same", "08:00:00", "08:10:00", "alice", channel="chat")
        await now("same", "11:00:00", "11:00:10", "alice")
        # Previous contact (an email) completed by bob; carol answers this one.
        await done("other", "08:00:00", "09:00:00", "bob", channel="email")
        await now("other", "11:01:00", "11:01:10", "carol")
        # Only an abandoned contact before: not returning.
        await contact(db, Channel.PHONE, "09:00:00", abandoned="09:01:00", customer="abandoned")
        await now("abandoned", "11:02:00", "11:02:10", "alice")
        # Completed (dave), then abandoned: the completed one is the previous contact.
        await done("completed-then-abandoned", "08:00:00", "08:10:00", "dave")
        await contact(db, Channel.PHONE, "09:30:00", abandoned="09:31:00",
                      customer="completed-then-abandoned")  # fmt: skip
        await now("completed-then-abandoned", "11:03:00", "11:03:10", "dave")
        # First contact ever.
        await now("first-time", "11:04:00", "11:04:10", "alice")
        # Transferred: erin (the previous agent) answers first, frank completes. Counts.
        await done("transfer-from-previous", "08:00:00", "08:10:00", "erin")
        first = await contact(db, Channel.PHONE, "11:05:00", answered="11:05:10",
                              ended="11:12:00", completed="11:13:00", agent="frank",
                              customer="transfer-from-previous",
                              skills=("case:transfer-from-previous",), offers=2)  # fmt: skip
        await events(db, first, ("answered", "11:05:10 erin"), ("transferred", "11:08:00 erin"),
                     ("answered", "11:09:00 frank"), ("completed", "11:13:00 frank"))  # fmt: skip
        # Transferred to the previous agent (frank) after erin answered: does not count.
        await done("transfer-to-previous", "08:00:00", "08:10:00", "frank")
        to_previous = await contact(db, Channel.PHONE, "11:06:00", answered="11:06:10",
                                    ended="11:12:00", completed="11:13:00", agent="frank",
                                    customer="transfer-to-previous",
                                    skills=("case:transfer-to-previous",), offers=2)  # fmt: skip
        await events(db, to_previous, ("answered", "11:06:10 erin"),
                     ("transferred", "11:08:00 erin"), ("answered", "11:09:00 frank"))  # fmt: skip
        # Transferred by erin (the previous agent) and waiting again: no agent_id now.
        await done("transferred-waiting", "08:00:00", "08:10:00", "erin")
        waiting = await contact(db, Channel.PHONE, "11:20:00", answered="11:20:10",
                                customer="transferred-waiting", state="queued",
                                skills=("case:transferred-waiting",))  # fmt: skip
        await events(db, waiting, ("answered", "11:20:10 erin"), ("transferred", "11:25:00 erin"))
        # Answered by kate (the previous agent), whose desk dropped: liam completes it.
        await done("agent-not-back", "08:00:00", "08:10:00", "kate")
        dropped = await contact(db, Channel.PHONE, "11:07:00", answered="11:07:10",
                                ended="11:15:00", completed="11:16:00", agent="liam",
                                customer="agent-not-back", skills=("case:agent-not-back",),
                                offers=2)  # fmt: skip
        await events(db, dropped, ("answered", "11:07:10 kate"), ("requeued", "11:08:00 kate"),
                     ("answered", "11:09:00 liam"))  # fmt: skip
        # The only earlier contact was still open when this one was queued: not returning.
        await done("completed-after", "09:50:00", "11:20:00", "gina", channel="email")
        await now("completed-after", "11:10:00", "11:10:10", "gina")
        # henry completed one at 09:00; gina's, open when this was queued, does not count.
        await done("earlier-completed", "08:00:00", "09:00:00", "henry")
        await done("earlier-completed", "09:55:00", "11:30:00", "gina", channel="email")
        await now("earlier-completed", "11:15:00", "11:15:10", "henry")
        # The latest completed (ivan's email), not the latest queued (judy's call).
        await done("latest-completed", "08:00:00", "09:40:00", "ivan", channel="email")
        await done("latest-completed", "09:00:00", "09:10:00", "judy")
        await now("latest-completed", "11:25:00", "11:25:10", "ivan")
        # Completed at the very moment this one was queued: not before it.
        await done("same-instant", "08:00:00", "11:40:00", "alice", channel="email")
        await now("same-instant", "11:40:00", "11:40:10", "alice")
        # A returning customer who hung up: not answered, so not counted.
        await done("hung-up", "08:00:00", "08:10:00", "alice")
        await contact(db, Channel.PHONE, "11:30:00", abandoned="11:31:00", customer="hung-up",
                      skills=("case:hung-up",))  # fmt: skip
        # The previous contact earlier in the range (alice, no skill: the 10:00 "" row).
        await done("earlier-today", "10:10:00", "10:20:00", "alice")
        await now("earlier-today", "11:35:00", "11:35:10", "bob")
        return store

    async def test_each_case(self, cases: Store) -> None:
        rows = await cases.reports.contacts(
            START, END, Interval.HOUR, THRESHOLDS, 5.0, by_skill=True
        )
        counts = {
            (r.interval_start.hour, r.channel, r.skill.removeprefix("case:")): (
                r.answered,
                detail(r).returning_answered,
                detail(r).returning_to_previous_agent,
            )
            for r in rows
        }
        phone = Channel.PHONE
        assert counts == {
            (10, phone, ""): (1, 0, 0),
            (11, phone, "same"): (1, 1, 1),
            (11, phone, "other"): (1, 1, 0),
            (11, phone, "abandoned"): (1, 0, 0),
            (11, phone, "completed-then-abandoned"): (1, 1, 1),
            (11, phone, "first-time"): (1, 0, 0),
            (11, phone, "transfer-from-previous"): (1, 1, 1),
            (11, phone, "transfer-to-previous"): (1, 1, 0),
            (11, phone, "transferred-waiting"): (1, 1, 1),
            (11, phone, "agent-not-back"): (1, 1, 1),
            (11, phone, "completed-after"): (1, 0, 0),
            (11, phone, "earlier-completed"): (1, 1, 1),
            (11, phone, "latest-completed"): (1, 1, 1),
            (11, phone, "same-instant"): (1, 0, 0),
            (11, phone, "hung-up"): (0, 0, 0),
            (11, phone, "earlier-today"): (1, 1, 0),
        }

    async def test_totals_per_interval(self, cases: Store) -> None:
        """Unsplit: 14 answered in the 11:00 hour, 10 of them returning, 7 to the
        previous agent. The month also counts gina's 09:55 email (henry completed one
        at 09:00): returning, not to the previous agent."""
        hours = await cases.reports.contacts(START, END, Interval.HOUR, THRESHOLDS, 5.0)
        assert [
            (
                r.interval_start.hour,
                r.answered,
                detail(r).returning_answered,
                detail(r).returning_to_previous_agent,
            )
            for r in hours
        ] == [(10, 1, 0, 0), (11, 14, 10, 7)]
        month = await cases.reports.contacts(
            datetime(2026, 3, 1, tzinfo=UTC),
            datetime(2026, 4, 1, tzinfo=UTC),
            Interval.MONTH,
            THRESHOLDS,
            5.0,
        )
        assert {
            r.channel: (detail(r).returning_answered, detail(r).returning_to_previous_agent)
            for r in month
        } == {Channel.PHONE: (10, 7), Channel.CHAT: (0, 0), Channel.EMAIL: (1, 0)}

    @pytest.mark.parametrize("by_skill", [False, True])
    async def test_without_detail_the_other_figures_are_the_same(
        self, cases: Store, by_skill: bool
    ) -> None:
        """Read without detail (service level, staffing), every row and every figure but
        the detail is what the full read gives."""
        full = await cases.reports.contacts(
            START, END, Interval.HOUR, THRESHOLDS, 5.0, by_skill=by_skill
        )
        light = await cases.reports.contacts(
            START, END, Interval.HOUR, THRESHOLDS, 5.0, by_skill=by_skill, detail=False
        )
        assert len(full) >= 2
        assert all(row.detail is not None for row in full)
        assert [dataclasses.replace(row, detail=None) for row in full] == light


@pytest.fixture
async def reporting(morning: Store) -> AsyncIterator[Reporting]:
    """The reporting layer on the morning's store, read at 11:45 (NOW)."""
    policy = RoutingPolicy()
    watch = ServiceLevelWatch(RollingServiceLevel(policy), policy, clock=lambda: NOW)
    layer = Reporting(morning.reports, policy, watch, clock=lambda: NOW)
    try:
        yield layer
    finally:
        await layer.close()


def staffing_request(**changes: object) -> StaffingRequest:
    """Phone per hour from the morning's history (10:00 to 13:00), Erlang C."""
    fields: dict[str, object] = {
        "channel": Channel.PHONE,
        "interval": Interval.HOUR,
        "target": 0.8,
        "threshold": None,
        "max_occupancy": 1.0,
        "concurrency": None,
        "shrinkage": 0.0,
        "with_abandonment": False,
        "patience": None,
        "forecast": None,
        "history": (START, t("13:00:00")),
    }
    fields.update(changes)
    return StaffingRequest(**fields)  # type: ignore[arg-type]


class TestReportingLayer:
    async def test_the_view_and_the_api_count_service_level_alike(
        self, reporting: Reporting, db: asyncpg.Connection
    ) -> None:
        """One history, two readers: every row of the interval_service_level view (what a
        reporting job reads in SQL) has the API's counts and service level."""
        report = await reporting.contact_report(START, END, Interval.MINUTES_15)
        api = {(r.figures.interval_start, r.figures.channel.value): r for r in report.rows}
        view = {
            (v["interval_start"], v["channel"]): v
            for v in await db.fetch(
                "SELECT * FROM interval_service_level "
                "WHERE interval_start >= $1 AND interval_start < $2",
                START,
                END,
            )
        }
        assert set(view) == set(api)
        assert len(api) == 3
        for key, v in view.items():
            row = api[key]
            f = row.figures
            assert (
                v["offered"],
                v["answered"],
                v["abandoned"],
                v["short_abandoned"],
                v["answered_within_target"],
                v["still_waiting"],
            ) == (
                f.offered,
                f.answered,
                f.abandoned,
                f.short_abandoned,
                f.answered_within_threshold,
                f.still_waiting,
            ), key
            assert v["service_level"] == pytest.approx(row.service_level), key
            assert v["asa_seconds"] == pytest.approx(f.asa_seconds), key
            assert v["aht_seconds"] == pytest.approx(f.aht_seconds), key
        assert report.formula == FORMULA
        assert [g.channel for g in report.goals] == list(Channel)

    async def test_an_agent_report_of_a_range_not_yet_begun_is_empty(
        self, reporting: Reporting
    ) -> None:
        """Issue 14 #16: a range starting after now built a PostgreSQL range whose lower
        bound passed its upper one (DataError, INTERNAL); there is no agent time there."""
        later = await reporting.agent_report(t("12:00:00"), t("13:00:00"))
        assert later.rows == []
        assert later.as_of == NOW

    async def test_status_changes_logged_after_as_of_are_not_read(
        self, reporting: Reporting, db: asyncpg.Connection
    ) -> None:
        """A status change written between reading the clock and the reads (here: at
        11:50, after the report's 11:45) no longer makes a range end before it starts;
        the report is the same as without it."""
        before = await reporting.agent_report(START, END)
        await status(db, "bob", "status_changed", "away", "11:50:00", "break")
        after = await reporting.agent_report(START, END)
        assert after == before
        assert [r.agent_id for r in after.rows] == ["alice", "bob", "carol"]

    async def test_history_intervals_that_have_not_begun_are_left_out(
        self, reporting: Reporting
    ) -> None:
        """Issue 14 #8: history to 13:00 read at 11:45 staffs 10:00 and 11:00, not a
        12:00 interval of zeros."""
        plan = await reporting.staffing(staffing_request())
        assert [r.interval_start for r in plan.rows] == [t("10:00:00"), t("11:00:00")]
        assert plan.rows[0].staffed.calls == 5.0, "6 offered less the short abandon"

    async def test_a_history_that_has_not_begun_is_refused(self, reporting: Reporting) -> None:
        with pytest.raises(InvalidArgument, match="is after now") as refused:
            await reporting.staffing(staffing_request(history=(t("12:00:00"), t("13:00:00"))))
        assert refused.value.field == "history_start"

    async def test_the_target_defaults_to_the_channels_configured_goal(
        self, morning: Store
    ) -> None:
        """Without a target, staffing aims at the channel's goal (90% here), not a fixed
        80%; a goal of 100% cannot be staffed for and asks for a target."""
        channels = dict(RoutingPolicy().channels)
        channels[Channel.PHONE] = dataclasses.replace(
            channels[Channel.PHONE], service_level_goal=0.9
        )
        channels[Channel.CHAT] = dataclasses.replace(channels[Channel.CHAT], service_level_goal=1.0)
        policy = RoutingPolicy(channels=MappingProxyType(channels))
        watch = ServiceLevelWatch(RollingServiceLevel(policy), policy, clock=lambda: NOW)
        layer = Reporting(morning.reports, policy, watch, clock=lambda: NOW)
        try:
            plan = await layer.staffing(staffing_request(target=None))
            assert plan.question.target == 0.9
            plan = await layer.staffing(staffing_request(target=0.7))
            assert plan.question.target == 0.7
            with pytest.raises(InvalidArgument) as refused:
                await layer.staffing(staffing_request(target=None, channel=Channel.CHAT))
            assert refused.value.field == "target_service_level"
        finally:
            await layer.close()

    async def test_concurrency_defaults_to_the_channels_capacity(
        self, reporting: Reporting
    ) -> None:
        """Chat agents hold 3 chats by default; a phone agent one call; more than the
        channel's maximum capacity is refused."""
        chat = await reporting.staffing(staffing_request(channel=Channel.CHAT))
        assert chat.question.concurrency == 3
        phone = await reporting.staffing(staffing_request())
        assert phone.question.concurrency == 1
        with pytest.raises(InvalidArgument) as refused:
            await reporting.staffing(staffing_request(concurrency=2.0))
        assert refused.value.field == "concurrency"

    async def test_erlang_a_estimates_patience_from_the_history(self, reporting: Reporting) -> None:
        """Patience = all the waiting the history shows / its abandons: (10 + 30 + 3 + 40
        + 5) s of phone waits over 2 abandons."""
        plan = await reporting.staffing(staffing_request(with_abandonment=True))
        assert plan.question.patience == pytest.approx((10 + 30 + 3 + 40 + 5) / 2)
        assert len(plan.rows) == 2
        assert all(r.staffed.abandonment is not None for r in plan.rows)
