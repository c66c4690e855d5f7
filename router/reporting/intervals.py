"""Reporting intervals and ranges: 15 and 30 minutes, hour, day, week, month, year, in
the center's time zone.

Contacts count in the interval in which they were queued, however long they last; agent
time is cut at the range's edges. Days, weeks (ISO 8601: from Monday), months and years
begin at local midnight in the zone, so a day is 23 or 25 hours long across a
daylight-saving change; 15 and 30 minutes and hours follow the zone's clock (in a zone
30 or 45 minutes off UTC, an hour starts at the local hour). Every start is returned as
the UTC instant it is. The SQL (report_contacts in router/store/queries.sql) bins by the
same rule; these functions give the intervals a range holds (staffing from history, the
charts).
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from enum import Enum
from zoneinfo import ZoneInfo

UTC_ZONE = ZoneInfo("UTC")


class Interval(Enum):
    MINUTES_15 = "15m"
    MINUTES_30 = "30m"
    HOUR = "hour"
    DAY = "day"
    WEEK = "week"
    MONTH = "month"
    YEAR = "year"

    @property
    def fixed_length(self) -> timedelta | None:
        """The length of intervals that follow the clock (15 and 30 minutes, hour); None
        for days, weeks, months and years, whose length depends on the calendar and the
        zone's daylight-saving changes."""
        return _FIXED.get(self)

    @property
    def calendar_unit(self) -> str | None:
        """PostgreSQL's date_trunc unit for calendar intervals; None for the others."""
        return None if self in _FIXED else self.value


_FIXED = {
    Interval.MINUTES_15: timedelta(minutes=15),
    Interval.MINUTES_30: timedelta(minutes=30),
    Interval.HOUR: timedelta(hours=1),
}
# Clock intervals are binned on the local clock from this (naive) local time.
BIN_ORIGIN = datetime(2000, 1, 3)


def interval_start(at: datetime, interval: Interval, zone: ZoneInfo = UTC_ZONE) -> datetime:
    """The start (UTC) of the interval holding `at` in `zone` (the same rule as the SQL)."""
    local = at.astimezone(zone)
    length = _FIXED.get(interval)
    if length is not None:
        wall = local.replace(tzinfo=None)
        into = (wall - BIN_ORIGIN) % length
        return (at - into).astimezone(UTC)
    day = local.date()
    if interval is Interval.WEEK:
        day -= timedelta(days=day.weekday())
    elif interval is Interval.MONTH:
        day = day.replace(day=1)
    elif interval is Interval.YEAR:
        day = day.replace(month=1, day=1)
    return local_midnight(day, zone)


def local_midnight(day: date, zone: ZoneInfo) -> datetime:
    """The UTC instant at which `day` begins in `zone` (in a gap, the offset before it,
    as PostgreSQL reads a local time that does not exist)."""
    return datetime(day.year, day.month, day.day, tzinfo=zone).astimezone(UTC)


def next_start(start: datetime, interval: Interval, zone: ZoneInfo = UTC_ZONE) -> datetime:
    """The start of the interval after the one starting at `start`; OverflowError after
    the last interval of year 9999, which has none."""
    length = _FIXED.get(interval)
    if length is not None:
        return start + length
    day = start.astimezone(zone).date()
    if interval is Interval.DAY:
        day += timedelta(days=1)
    elif interval is Interval.WEEK:
        day += timedelta(weeks=1)
    elif interval is Interval.MONTH:
        day = _month_after(day)
    else:
        if day.year == 9999:
            raise OverflowError("no year after 9999")
        day = date(day.year + 1, 1, 1)
    return local_midnight(day, zone)


def interval_starts(
    start: datetime, end: datetime, interval: Interval, zone: ZoneInfo = UTC_ZONE
) -> list[datetime]:
    """Every interval start from the one holding `start` up to before `end` (the last
    interval of year 9999 is the last there is)."""
    starts = []
    current = interval_start(start, interval, zone)
    while current < end:
        starts.append(current)
        try:
            current = next_start(current, interval, zone)
        except OverflowError:
            break
    return starts


def _month_after(day: date) -> date:
    if day.year == 9999 and day.month == 12:
        raise OverflowError("no month after December 9999")
    return date(day.year + 1, 1, 1) if day.month == 12 else date(day.year, day.month + 1, 1)
