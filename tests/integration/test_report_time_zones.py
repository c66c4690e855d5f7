"""Reports in the center's time zone: days begin at local midnight across the
daylight-saving changes, clock intervals follow the local clock.

Europe/Paris moves to summer time on 2026-03-29 (02:00 CET becomes 03:00 CEST, at
01:00 UTC: a 23-hour day from 2026-03-28 23:00 UTC) and back on 2026-10-25 (03:00 CEST
becomes 02:00 CET, at 01:00 UTC: a 25-hour day from 2026-10-24 22:00 UTC).
"""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import asyncpg
import pytest

from router.domain import Channel, RoutingPolicy
from router.domain.rolling import RollingServiceLevel
from router.reporting.intervals import Interval, interval_start, interval_starts
from router.reporting.reporting import Reporting
from router.service_level_watch import ServiceLevelWatch
from router.store import Store
from router.store.reports import ContactFigures
from tests.integration.conftest import insert_history

THRESHOLDS = {Channel.PHONE: 20.0}
PARIS = "Europe/Paris"


def utc(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=UTC)


async def calls(db: asyncpg.Connection, *queued: datetime) -> None:
    """A phone call queued at each instant, answered 10 s later."""
    for at in queued:
        await insert_history(db, Channel.PHONE, at, answered_at=at + timedelta(seconds=10))


def counts(rows: list[ContactFigures]) -> list[tuple[datetime, int]]:
    return [(r.interval_start, r.offered) for r in rows]


class TestDaysAcrossDaylightSaving:
    async def test_the_23_hour_day_of_the_spring_change(
        self, db: asyncpg.Connection, store: Store
    ) -> None:
        """The day of 2026-03-29 in Paris runs from 23:00 UTC the day before to 22:00
        UTC: calls at its first and last minutes count in it, the ones a minute outside
        count in the days around it."""
        await calls(
            db,
            utc(2026, 3, 28, 22, 59),  # 23:59 CET on the 28th
            utc(2026, 3, 28, 23, 0),  # midnight CET: the 29th begins
            utc(2026, 3, 29, 0, 59),  # 01:59 CET
            utc(2026, 3, 29, 1, 0),  # 03:00 CEST, right after the change
            utc(2026, 3, 29, 21, 59),  # 23:59 CEST
            utc(2026, 3, 29, 22, 0),  # midnight CEST: the 30th begins
        )
        rows = await store.reports.contacts(
            utc(2026, 3, 27),
            utc(2026, 4, 1),
            Interval.DAY,
            THRESHOLDS,
            5.0,
            time_zone=PARIS,
        )
        assert counts(rows) == [
            (utc(2026, 3, 27, 23), 1),
            (utc(2026, 3, 28, 23), 4),
            (utc(2026, 3, 29, 22), 1),
        ]
        assert rows[1].answered_within_threshold == 4
        # The same calls in UTC days, for contrast.
        rows = await store.reports.contacts(
            utc(2026, 3, 27), utc(2026, 4, 1), Interval.DAY, THRESHOLDS, 5.0
        )
        assert counts(rows) == [(utc(2026, 3, 28), 2), (utc(2026, 3, 29), 4)]

    async def test_the_25_hour_day_of_the_autumn_change(
        self, db: asyncpg.Connection, store: Store
    ) -> None:
        """The day of 2026-10-25 in Paris runs from 22:00 UTC the day before to 23:00
        UTC; its repeated hour (02:00 to 03:00 local, twice) gives two hourly intervals,
        each the UTC instant it began."""
        await calls(
            db,
            utc(2026, 10, 24, 21, 59),  # 23:59 CEST on the 24th
            utc(2026, 10, 24, 22, 0),  # midnight CEST: the 25th begins
            utc(2026, 10, 25, 0, 30),  # 02:30 CEST, the first 02:30
            utc(2026, 10, 25, 1, 30),  # 02:30 CET, the second
            utc(2026, 10, 25, 22, 59),  # 23:59 CET
            utc(2026, 10, 25, 23, 0),  # midnight CET: the 26th begins
        )
        rows = await store.reports.contacts(
            utc(2026, 10, 24),
            utc(2026, 10, 27),
            Interval.DAY,
            THRESHOLDS,
            5.0,
            time_zone=PARIS,
        )
        assert counts(rows) == [
            (utc(2026, 10, 23, 22), 1),
            (utc(2026, 10, 24, 22), 4),
            (utc(2026, 10, 25, 23), 1),
        ]
        hours = await store.reports.contacts(
            utc(2026, 10, 25, 0),
            utc(2026, 10, 25, 2),
            Interval.HOUR,
            THRESHOLDS,
            5.0,
            time_zone=PARIS,
        )
        assert counts(hours) == [(utc(2026, 10, 25, 0), 1), (utc(2026, 10, 25, 1), 1)]

    async def test_weeks_months_and_years_begin_at_local_midnight(
        self, db: asyncpg.Connection, store: Store
    ) -> None:
        """A call at 23:30 UTC on Sunday 2026-05-31 is Monday 1 June 01:30 in Paris: a
        new week and a new month there; one at 23:30 UTC on 2026-12-31 is in 2027."""
        await calls(db, utc(2026, 5, 31, 23, 30), utc(2026, 12, 31, 23, 30))
        start, end = utc(2026, 5, 1), utc(2027, 2, 1)

        async def starts(interval: Interval) -> list[tuple[datetime, int]]:
            return counts(
                await store.reports.contacts(start, end, interval, THRESHOLDS, 5.0, time_zone=PARIS)
            )

        assert await starts(Interval.WEEK) == [
            (utc(2026, 5, 31, 22), 1),  # Monday 1 June, 00:00 CEST
            (utc(2026, 12, 27, 23), 1),  # Monday 28 December, 00:00 CET
        ]
        assert await starts(Interval.MONTH) == [
            (utc(2026, 5, 31, 22), 1),
            (utc(2026, 12, 31, 23), 1),
        ]
        assert await starts(Interval.YEAR) == [
            (utc(2025, 12, 31, 23), 1),
            (utc(2026, 12, 31, 23), 1),
        ]


class TestClockIntervals:
    @pytest.mark.parametrize(
        ("zone", "interval", "expected"),
        [
            # India is 5:30 ahead: 10:47 UTC is 16:17 there, in the 16:00 hour (10:30 UTC).
            ("Asia/Kolkata", Interval.HOUR, utc(2026, 3, 2, 10, 30)),
            ("Asia/Kolkata", Interval.MINUTES_30, utc(2026, 3, 2, 10, 30)),
            # Nepal is 5:45 ahead: 16:32 there, in the 16:00 hour and 16:30 half hour.
            ("Asia/Kathmandu", Interval.HOUR, utc(2026, 3, 2, 10, 15)),
            ("Asia/Kathmandu", Interval.MINUTES_30, utc(2026, 3, 2, 10, 45)),
            ("Asia/Kathmandu", Interval.MINUTES_15, utc(2026, 3, 2, 10, 45)),
            ("UTC", Interval.HOUR, utc(2026, 3, 2, 10)),
        ],
    )
    async def test_intervals_follow_the_local_clock(
        self,
        db: asyncpg.Connection,
        store: Store,
        zone: str,
        interval: Interval,
        expected: datetime,
    ) -> None:
        """In a zone 30 or 45 minutes off UTC, an hour starts at the local hour; the SQL
        and the Python intervals agree."""
        at = utc(2026, 3, 2, 10, 47)
        await calls(db, at)
        rows = await store.reports.contacts(
            utc(2026, 3, 2), utc(2026, 3, 3), interval, THRESHOLDS, 5.0, time_zone=zone
        )
        assert counts(rows) == [(expected, 1)]
        assert interval_start(at, interval, ZoneInfo(zone)) == expected


class TestThePythonIntervalsAgree:
    def test_days_of_a_month_with_both_changes_seen_from_paris(self) -> None:
        """interval_starts (staffing from history, the charts) gives the same local
        midnights as the SQL: 23 and 25 hours on the days of the changes."""
        paris = ZoneInfo(PARIS)
        march = interval_starts(utc(2026, 3, 27, 23), utc(2026, 3, 31, 22), Interval.DAY, paris)
        assert [b - a for a, b in itertools.pairwise(march)] == [
            timedelta(hours=24),
            timedelta(hours=23),
            timedelta(hours=24),
        ]
        october = interval_starts(utc(2026, 10, 23, 22), utc(2026, 10, 26, 23), Interval.DAY, paris)
        assert october == [utc(2026, 10, 23, 22), utc(2026, 10, 24, 22), utc(2026, 10, 25, 23)]


class TestTheCenterZone:
    async def test_the_reporting_layer_uses_the_configured_zone_unless_asked_another(
        self, db: asyncpg.Connection, store: Store
    ) -> None:
        """ROUTER_TIME_ZONE's zone (the policy's) bins the report; a request's own zone
        wins; the report says which it used."""
        await calls(db, utc(2026, 3, 28, 23, 30))
        policy = RoutingPolicy(time_zone=PARIS)
        now = utc(2026, 4, 1)
        watch = ServiceLevelWatch(RollingServiceLevel(policy), policy, clock=lambda: now)
        reporting = Reporting(store.reports, policy, watch, clock=lambda: now)
        try:
            report = await reporting.contact_report(
                utc(2026, 3, 28), utc(2026, 3, 30), Interval.DAY
            )
            assert report.time_zone == PARIS
            assert [r.figures.interval_start for r in report.rows] == [utc(2026, 3, 28, 23)]
            report = await reporting.contact_report(
                utc(2026, 3, 28), utc(2026, 3, 30), Interval.DAY, time_zone="UTC"
            )
            assert report.time_zone == "UTC"
            assert [r.figures.interval_start for r in report.rows] == [utc(2026, 3, 28)]
        finally:
            await reporting.close()
