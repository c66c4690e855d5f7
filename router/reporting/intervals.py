"""Reporting intervals and ranges: 15 and 30 minutes, hour, day, week, month (UTC).

Contacts count in the interval in which they were queued, however long they last; agent
time is cut at the range's edges. Weeks start on Monday (ISO 8601).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from enum import Enum


class Interval(Enum):
    MINUTES_15 = "15m"
    MINUTES_30 = "30m"
    HOUR = "hour"
    DAY = "day"
    WEEK = "week"
    MONTH = "month"

    @property
    def fixed_length(self) -> timedelta | None:
        """The length for intervals of fixed length; None for months."""
        return _FIXED.get(self)


_FIXED = {
    Interval.MINUTES_15: timedelta(minutes=15),
    Interval.MINUTES_30: timedelta(minutes=30),
    Interval.HOUR: timedelta(hours=1),
    Interval.DAY: timedelta(days=1),
    Interval.WEEK: timedelta(weeks=1),
}
# A Monday: weeks are binned from it, so they start on Mondays.
BIN_ORIGIN = datetime(2000, 1, 3, tzinfo=UTC)


def interval_start(at: datetime, interval: Interval) -> datetime:
    """The start of the interval holding `at` (the same rule as the SQL)."""
    at = at.astimezone(UTC)
    if interval is Interval.MONTH:
        return datetime(at.year, at.month, 1, tzinfo=UTC)
    length = _FIXED[interval]
    return BIN_ORIGIN + ((at - BIN_ORIGIN) // length) * length


def next_start(start: datetime, interval: Interval) -> datetime:
    """The start of the interval after the one starting at `start`; OverflowError after
    the last interval of year 9999, which has none."""
    if interval is Interval.MONTH:
        return month_after(start)
    return start + _FIXED[interval]


def interval_starts(start: datetime, end: datetime, interval: Interval) -> list[datetime]:
    """Every interval start from the one holding `start` up to before `end` (the last
    interval of year 9999 is the last there is)."""
    starts = []
    current = interval_start(start, interval)
    while current < end:
        starts.append(current)
        try:
            current = next_start(current, interval)
        except OverflowError:
            break
    return starts


def month_after(start: datetime) -> datetime:
    if start.year == 9999 and start.month == 12:
        raise OverflowError("no month after December 9999")
    year, month = (start.year + 1, 1) if start.month == 12 else (start.year, start.month + 1)
    return datetime(year, month, 1, tzinfo=UTC)
