"""The wall clock, read at the edges only: the routing core (router/domain) takes the
time as an argument, and the parts that read the clock take this function as their
default `clock`, so that tests can pass one of their own."""

from __future__ import annotations

from datetime import UTC, datetime


def utc_now() -> datetime:
    """Now, timezone-aware in UTC."""
    return datetime.now(UTC)
