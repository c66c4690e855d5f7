"""Service level counts only open time: a call queued just before the close and
answered at the next opening, through the core, the group commit and the reports, on a
real PostgreSQL (docs/reporting.md: the formula)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import asyncpg

from router.domain import AgentStatus, Channel, ContactEvent, Event, Router, RoutingPolicy
from router.domain.opening_hours import Calendar, WeeklyHours
from router.domain.rolling import RollingServiceLevel
from router.reporting.intervals import Interval
from router.reporting.reporting import Reporting
from router.service_level_watch import ServiceLevelWatch
from router.store import Store
from tests.integration.conftest import make_contact

PARIS = "Europe/Paris"
# 08:00-22:00 in Paris: in January 07:00-21:00 UTC.
HOURS = Calendar(PARIS, channels={Channel.PHONE: WeeklyHours.every_day((480, 1320))})
QUEUED = datetime(2026, 1, 12, 20, 59, 50, tzinfo=UTC)  # 21:59:50, ten seconds before close
ANSWERED = datetime(2026, 1, 13, 7, 0, 5, tzinfo=UTC)  # 08:00:05, five seconds after opening
ABANDONED_QUEUED = datetime(2026, 1, 12, 20, 59, 58, tzinfo=UTC)  # 21:59:58
ABANDONED = datetime(2026, 1, 13, 7, 0, 1, tzinfo=UTC)  # 08:00:01: 3 s open, a short abandon


async def committed(store: Store, events: list[Event]) -> None:
    await store.record(events)


class TestServiceLevelCountsOpenTime:
    async def test_a_call_across_the_night(self, store: Store, db: asyncpg.Connection) -> None:
        """Ten hours closed do not count: the call was answered within its 20 s (15 s
        open), ASA is 15 s, the abandon 3 s into the morning is short; the waits
        reported stay the whole night."""
        policy = RoutingPolicy(phone_reserve=0, time_zone=PARIS)
        core = Router(policy)
        core.hours.use(HOURS)
        waiting = [
            (make_contact("night", QUEUED), QUEUED),
            (make_contact("left", ABANDONED_QUEUED), ABANDONED_QUEUED),
        ]
        for contact, at in waiting:
            await store.insert_contact(contact, after_commit=lambda: None)
            await committed(store, core.submit(contact, at))
        left = core.contact_with_key("left")
        assert left is not None
        await committed(store, core.abandon(left.id, ABANDONED))
        capacities = {Channel.PHONE: 1, Channel.CHAT: 0, Channel.EMAIL: 0}
        events = core.sign_in("owl", frozenset(), capacities, AgentStatus.READY, ANSWERED)
        events += core.connect("owl", ANSWERED)
        await committed(store, events)
        [offer] = [e.offer for e in events if isinstance(e, ContactEvent) and e.offer]
        contact, answered = core.accept("owl", offer.id, ANSWERED)
        await committed(store, answered)

        row = await db.fetchrow(
            "SELECT closed_wait_seconds, open_wait_seconds, wait_seconds, within_target "
            "FROM contacts JOIN contact_timings ON contact_id = id WHERE id = $1::uuid",
            contact.id,
        )
        assert row is not None
        night = (ANSWERED - QUEUED).total_seconds()
        assert row["closed_wait_seconds"] == 10 * 3600
        assert row["wait_seconds"] == night
        assert row["open_wait_seconds"] == night - 10 * 3600 == 15
        assert row["within_target"]

        now = ANSWERED + timedelta(minutes=1)
        watch = ServiceLevelWatch(RollingServiceLevel(policy), policy, clock=lambda: now)
        reporting = Reporting(store.reports, policy, watch, clock=lambda: now)
        try:
            report = await reporting.contact_report(
                QUEUED - timedelta(hours=1), now, Interval.DAY, [Channel.PHONE]
            )
        finally:
            await reporting.close()
        [figures] = [r.figures for r in report.rows]
        assert (figures.answered, figures.abandoned, figures.short_abandoned) == (1, 1, 1)
        assert figures.answered_within_threshold == 1
        assert figures.asa_seconds == 15
        assert figures.longest_wait_seconds == night
        view = await db.fetchrow(
            "SELECT sum(answered_within_target) AS within, sum(short_abandoned) AS short, "
            "max(asa_seconds) AS asa FROM interval_service_level WHERE channel = 'phone'"
        )
        assert view is not None
        assert (view["within"], view["short"], view["asa"]) == (1, 1, 15)
