"""The ranges people name on the command line: today, last-month, 2026-03-04..."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

from router.reporting.intervals import month_after

NAMES = "today, yesterday, this-month, last-month, YYYY-MM-DD or YYYY-MM (UTC)"


def named_range(name: str, now: datetime) -> tuple[datetime, datetime]:
    """[start, end) for `today`, `yesterday`, `this-month`, `last-month`, a day
    `YYYY-MM-DD` or a month `YYYY-MM` (UTC days and months)."""
    today = datetime(now.year, now.month, now.day, tzinfo=UTC)
    if name == "today":
        return today, today + timedelta(days=1)
    if name == "yesterday":
        return today - timedelta(days=1), today
    this_month = datetime(now.year, now.month, 1, tzinfo=UTC)
    if name == "this-month":
        return this_month, month_after(this_month)
    if name == "last-month":
        previous = this_month - timedelta(days=1)
        start = datetime(previous.year, previous.month, 1, tzinfo=UTC)
        return start, this_month
    try:
        if len(name) == 7:
            year, month = (int(part) for part in name.split("-"))
            start = datetime(year, month, 1, tzinfo=UTC)
            return start, month_after(start)
        day = date.fromisoformat(name)
        start = datetime(day.year, day.month, day.day, tzinfo=UTC)
        return start, start + timedelta(days=1)
    except (ValueError, OverflowError):  # OverflowError: the last day a datetime holds
        raise ValueError(f"unknown range {name!r}: use {NAMES}") from None
