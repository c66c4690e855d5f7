"""Reports by team, against a hand-built history.

2026-03-02, UTC. alice signs in with team "returns" at 09:00, answers two calls and a
chat, signs out at 12:00 and signs in again with team "orders" at 13:00, where she
answers one call. bob signs in with "orders" at 09:00 and answers one call. carol signs
in without a team and answers one call. One call is abandoned (no team).
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Awaitable
from datetime import UTC, datetime, timedelta

import asyncpg
import pytest

from router.domain import Channel, InvalidArgument, RoutingPolicy
from router.domain.rolling import RollingServiceLevel
from router.reporting.intervals import Interval
from router.reporting.reporting import Reporting
from router.service_level_watch import ServiceLevelWatch
from router.store import Store

THRESHOLDS = {Channel.PHONE: 20.0, Channel.CHAT: 60.0}
DAY = datetime(2026, 3, 2, tzinfo=UTC)
NOW = DAY + timedelta(days=1)


def at(hour: int, minute: int = 0) -> datetime:
    return DAY + timedelta(hours=hour, minutes=minute)


async def sign_in(db: asyncpg.Connection, agent: str, team: str, when: datetime) -> None:
    await db.execute(
        "INSERT INTO agents (id, first_seen_at, last_seen_at, team) VALUES ($1, $2, $2, $3) "
        "ON CONFLICT (id) DO UPDATE SET team = EXCLUDED.team",
        agent,
        when,
        team,
    )
    await db.execute(
        "INSERT INTO agent_status_log (agent_id, kind, status, reason, connected, at, team) "
        "VALUES ($1, 'signed_in', 'ready', '', true, $2, $3)",
        agent,
        when,
        team,
    )


async def sign_out(db: asyncpg.Connection, agent: str, when: datetime) -> None:
    await db.execute(
        "INSERT INTO agent_status_log (agent_id, kind, status, reason, connected, at) "
        "VALUES ($1, 'signed_out', 'offline', '', false, $2)",
        agent,
        when,
    )


async def handled(
    db: asyncpg.Connection,
    channel: Channel,
    queued: datetime,
    agent: str | None,
    *,
    wait: float = 10.0,
    disposition: str = "order-status",
    rating: int | None = None,
) -> None:
    """A contact queued at `queued`, answered by `agent` after `wait` seconds and
    completed five minutes later; abandoned after `wait` when `agent` is None."""
    contact_id = uuid.uuid4()
    answered = queued + timedelta(seconds=wait)
    completed = answered + timedelta(minutes=5)
    await db.execute(
        """
        INSERT INTO contacts (
            id, idempotency_key, channel, customer_id, attributes, state, queued_at,
            offered_at, answered_at, ended_at, completed_at, abandoned_at, agent_id,
            disposition, offer_count, updated_at
        ) VALUES ($1, $2, $3, 'c', '{}'::jsonb, $4, $5, $6, $6, $7, $7, $8, $9, $10, 1, $11)
        """,
        contact_id,
        f"key-{contact_id}",
        channel.value,
        "completed" if agent else "abandoned",
        queued,
        answered if agent else None,
        completed if agent else None,
        None if agent else answered,
        agent,
        disposition if agent else None,
        completed if agent else answered,
    )
    if rating is not None:
        await db.execute(
            "INSERT INTO contact_feedback (contact_id, rating, recorded_at) VALUES ($1, $2, $3)",
            contact_id,
            rating,
            completed,
        )


@pytest.fixture
async def teams(db: asyncpg.Connection, store: Store) -> Store:
    """The day in the module docstring."""
    await sign_in(db, "alice", "returns", at(9))
    await sign_in(db, "bob", "orders", at(9))
    await sign_in(db, "carol", "", at(9))
    await handled(db, Channel.PHONE, at(10), "alice", disposition="return", rating=4)
    await handled(db, Channel.PHONE, at(10, 5), "alice", wait=30.0, disposition="return")
    await handled(db, Channel.CHAT, at(10, 10), "alice", rating=2)
    await handled(db, Channel.PHONE, at(10, 20), "bob", rating=5)
    await handled(db, Channel.PHONE, at(10, 30), "carol")
    await handled(db, Channel.PHONE, at(10, 40), None, wait=40.0)
    await sign_out(db, "alice", at(12))
    await sign_in(db, "alice", "orders", at(13))
    await handled(db, Channel.PHONE, at(14), "alice", rating=3)
    return store


@pytest.fixture
async def reporting(teams: Store) -> AsyncIterator[Reporting]:
    policy = RoutingPolicy()
    watch = ServiceLevelWatch(RollingServiceLevel(policy), policy, clock=lambda: NOW)
    layer = Reporting(teams.reports, policy, watch, clock=lambda: NOW)
    try:
        yield layer
    finally:
        await layer.close()


class TestContactsByTeam:
    async def test_each_contact_counts_for_its_agents_team_when_it_was_handled(
        self, reporting: Reporting
    ) -> None:
        """alice's morning calls are "returns", her afternoon call "orders" (she moved);
        carol's call and the abandoned one have no team ("")."""
        report = await reporting.contact_report(
            DAY, NOW, Interval.DAY, [Channel.PHONE], by_team=True
        )
        rows = {r.figures.team: r for r in report.rows}
        assert {team: r.figures.offered for team, r in rows.items()} == {
            "": 2,
            "orders": 2,
            "returns": 2,
        }
        # returns: one of two answered within 20 s; orders: both.
        assert rows["returns"].service_level == 0.5
        assert rows["orders"].service_level == 1.0
        assert rows[""].figures.abandoned == 1
        assert [r.figures.team for r in report.rows] == ["", "orders", "returns"]

    async def test_a_team_filter_keeps_its_contacts_only(self, reporting: Reporting) -> None:
        report = await reporting.contact_report(DAY, NOW, Interval.DAY, team="returns")
        assert [(r.figures.channel, r.figures.offered) for r in report.rows] == [
            (Channel.PHONE, 2),
            (Channel.CHAT, 1),
        ]
        assert {r.figures.team for r in report.rows} == {"returns"}

    async def test_without_teams_nothing_is_split(self, reporting: Reporting) -> None:
        report = await reporting.contact_report(DAY, NOW, Interval.DAY, [Channel.PHONE])
        assert [(r.figures.team, r.figures.offered) for r in report.rows] == [("", 6)]

    async def test_monthly_and_yearly_service_level_per_team(self, reporting: Reporting) -> None:
        for interval in (Interval.MONTH, Interval.YEAR):
            report = await reporting.contact_report(
                DAY, NOW, interval, [Channel.PHONE], by_team=True, detail=False
            )
            assert [r.figures.team for r in report.rows] == ["", "orders", "returns"]


class TestOtherReportsByTeam:
    async def test_dispositions_and_feedback(self, reporting: Reporting) -> None:
        report = await reporting.disposition_report(DAY, NOW, by_team=True)
        assert [(d.channel, d.team, d.disposition, d.contacts) for d in report.dispositions] == [
            (Channel.PHONE, "", "order-status", 1),
            (Channel.PHONE, "orders", "order-status", 2),
            (Channel.PHONE, "returns", "return", 2),
            (Channel.CHAT, "returns", "order-status", 1),
        ]
        totals = {(f.channel, f.team): f.mean_rating for f in report.feedback if f.agent_id is None}
        assert totals == {
            (Channel.PHONE, "orders"): 4.0,
            (Channel.PHONE, "returns"): 4.0,
            (Channel.CHAT, "returns"): 2.0,
        }
        by_agent = {
            (f.channel, f.team, f.agent_id): f.ratings
            for f in report.feedback
            if f.agent_id is not None
        }
        assert by_agent == {
            (Channel.PHONE, "orders", "alice"): 1,
            (Channel.PHONE, "orders", "bob"): 1,
            (Channel.PHONE, "returns", "alice"): 1,
            (Channel.CHAT, "returns", "alice"): 1,
        }

    async def test_dispositions_of_one_team(self, reporting: Reporting) -> None:
        report = await reporting.disposition_report(DAY, NOW, team="orders")
        assert [(d.team, d.contacts) for d in report.dispositions] == [("orders", 2)]
        assert {f.agent_id for f in report.feedback} == {None, "alice", "bob"}

    async def test_agents_carry_their_latest_team(self, reporting: Reporting) -> None:
        """An agent's team is its latest sign-in's before the range's end: alice's is
        "returns" for the morning, "orders" for the day."""
        report = await reporting.agent_report(DAY, NOW)
        assert {r.agent_id: r.team for r in report.rows} == {
            "alice": "orders",
            "bob": "orders",
            "carol": "",
        }
        morning = await reporting.agent_report(at(8), at(12, 30))
        assert {r.agent_id: r.team for r in morning.rows}["alice"] == "returns"
        orders = await reporting.agent_report(DAY, NOW, team="orders")
        assert [r.agent_id for r in orders.rows] == ["alice", "bob"]

    @pytest.mark.parametrize("report", ["contacts", "agents", "dispositions"])
    async def test_a_team_nobody_signed_in_with_is_refused(
        self, reporting: Reporting, report: str
    ) -> None:
        """A misspelt team would answer an empty report; it names the field instead."""
        asked: Awaitable[object]
        if report == "contacts":
            asked = reporting.contact_report(DAY, NOW, Interval.DAY, team="Returns")
        elif report == "agents":
            asked = reporting.agent_report(DAY, NOW, team="Returns")
        else:
            asked = reporting.disposition_report(DAY, NOW, team="Returns")
        with pytest.raises(InvalidArgument) as refused:
            await asked
        assert refused.value.field == "team"
