"""The center's IANA time zone, by name ("Europe/Paris"), as the reports use it."""

from __future__ import annotations

from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

MAX_NAME = 64
"""Longer than any IANA name (the longest is about 30 characters)."""


def time_zone(name: str) -> ZoneInfo:
    """The IANA time zone `name`; ValueError when there is none (an empty name, a path,
    a zone this machine's tz database lacks)."""
    if not 0 < len(name) <= MAX_NAME:
        raise ValueError(f"{name[:80]!r} is not an IANA time zone (Europe/Paris, UTC...)")
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        raise ValueError(f"{name!r} is not an IANA time zone (Europe/Paris, UTC...)") from None


def is_time_zone(name: str) -> bool:
    try:
        time_zone(name)
    except ValueError:
        return False
    return True
