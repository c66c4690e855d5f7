"""The ranges people name on the command line: today, last-month, 2026-03-04, 2026...,
as days, months and years of the center's time zone."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from router.domain.time_zones import time_zone
from router.reporting.intervals import (
    UTC_ZONE,
    Interval,
    interval_start,
    local_midnight,
    next_start,
)

NAMES = (
    "today, yesterday, this-month, last-month, this-year, last-year, YYYY-MM-DD, YYYY-MM "
    "or YYYY (days from local midnight in the report's time zone)"
)


def router_zone(name: str) -> ZoneInfo:
    """The time zone a router's response names; UTC for a router that names none, or a
    zone this machine's tz database lacks."""
    try:
        return time_zone(name or "UTC")
    except ValueError:
        return UTC_ZONE


def named_range(name: str, now: datetime, zone: ZoneInfo = UTC_ZONE) -> tuple[datetime, datetime]:
    """[start, end), as UTC instants, for `today`, `yesterday`, `this-month`,
    `last-month`, `this-year`, `last-year`, a day `YYYY-MM-DD`, a month `YYYY-MM` or a
    year `YYYY`, each beginning at local midnight in `zone` (a day across a
    daylight-saving change is 23 or 25 hours)."""
    relative = {
        "today": (Interval.DAY, 0),
        "yesterday": (Interval.DAY, -1),
        "this-month": (Interval.MONTH, 0),
        "last-month": (Interval.MONTH, -1),
        "this-year": (Interval.YEAR, 0),
        "last-year": (Interval.YEAR, -1),
    }
    try:
        if name in relative:
            interval, back = relative[name]
            start = interval_start(now, interval, zone)
            if back:
                start = interval_start(start - timedelta(seconds=1), interval, zone)
            return start, next_start(start, interval, zone)
        if len(name) == 4 and name.isdigit():
            start = local_midnight(date(int(name), 1, 1), zone)
            return start, next_start(start, Interval.YEAR, zone)
        if len(name) == 7:
            year, month = (int(part) for part in name.split("-"))
            start = local_midnight(date(year, month, 1), zone)
            return start, next_start(start, Interval.MONTH, zone)
        start = local_midnight(date.fromisoformat(name), zone)
        return start, next_start(start, Interval.DAY, zone)
    except (ValueError, OverflowError):  # OverflowError: the last day a datetime holds
        raise ValueError(f"unknown range {name!r}: use {NAMES}") from None
