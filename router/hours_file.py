"""The hours-of-operation file (ROUTER_HOURS_FILE): read, checked whole, reloaded live.

The file is TOML (deploy/hours.example.toml shows every part); its times are the
center's clock (ROUTER_TIME_ZONE):

    [hours.phone]                      # weekly hours of a channel
    weekdays = ["08:00-20:00"]         # monday..sunday, or weekdays / weekend / every_day
    saturday = ["09:00-13:00"]         # a day named alone wins over a group naming it

    [skills."lang:de"]                 # a contact requiring lang:de follows these hours
    channels = ["phone"]               # on these channels (default: all)
    weekdays = ["09:00-18:00"]

    [[holidays]]
    date = 2026-12-25                  # closed all day (or: hours = ["10:00-14:00"])
    channels = ["phone", "chat"]       # default: all

    [[closures]]
    from = 2026-12-24T14:00:00         # local wall times; may span midnight and days
    to = 2026-12-24T18:00:00
    reason = "staff party"

A malformed file names the line (TOML syntax), or the key and its line
(`hours.phone.monday[0] (line 12)`), and what is wrong with it. At start it stops the
router; on a reload it is refused, logged (`hours_file_refused`), and the calendar in
force stays.

`HoursFile` reloads it on SIGHUP and when its modification time, size or inode
change (looked at every few seconds: cheap, and it needs no inotify), and hands a
valid new calendar to the core of this router, active or standby, at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
from collections.abc import Callable, Mapping
from datetime import date, datetime
from itertools import pairwise
from pathlib import Path
from types import MappingProxyType
from typing import Any

import structlog

from router.domain import InvalidArgument, validation
from router.domain.channel import Channel
from router.domain.opening_hours import (
    ALWAYS_OPEN,
    WEEKDAYS,
    Calendar,
    Closure,
    Holiday,
    SkillHours,
    Span,
    WeeklyHours,
)
from router.errors import ConfigError
from router.toml_file import TomlFileError, read_toml

log = structlog.get_logger()

POLL_SECONDS = 2.0
"""How often the file's modification time is looked at."""

_GROUPS = {"every_day": range(7), "weekdays": range(5), "weekend": range(5, 7)}
_SPAN = re.compile(r"(\d\d):(\d\d)-(\d\d):(\d\d)")
_TOP = {"hours", "skills", "holidays", "closures"}
MAX_ENTRIES = 10_000
"""Most holidays, closures or skills a file may list."""


def read_calendar(path: Path, time_zone: str) -> Calendar:
    """The calendar of the file at `path`; ConfigError naming the line or the key."""
    try:
        data = read_toml(path)
    except TomlFileError as error:
        raise ConfigError(str(error)) from None
    try:
        return parse_calendar(data, time_zone)
    except _Bad as error:
        line = _line_of(path, error.key)
        where = f"{path}: {error.key}" + (f" (line {line})" if line else "")
        raise ConfigError(f"{where}: {error.problem}") from None


_HEADER = re.compile(r"\s*(\[\[?)\s*([^\]]*?)\s*\]\]?\s*(#.*)?")
_INDEX = re.compile(r"\[(\d+)\]")


def _line_of(path: Path, key: str) -> int | None:
    """The line of the file where `key` (as the errors name it: `closures[2].to`,
    `hours.phone.monday[0]`) is written, when it is written as a table's own line;
    None when it cannot be told (an inline table, say)."""
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeError):
        return None
    headers: list[tuple[str, int]] = [("", 0)]  # (table as errors name it, line)
    counts: dict[str, int] = {}
    for number, text in enumerate(lines, 1):
        match = _HEADER.fullmatch(text)
        if match is None:
            continue
        name = match.group(2).replace('"', "").replace("'", "")
        if match.group(1) == "[[":
            counts[name] = counts.get(name, -1) + 1
            name = f"{name}[{counts[name]}]"
        headers.append((name, number))
    table, start = max(
        (
            (name, line)
            for name, line in headers
            if key == name or key.startswith(f"{name}.") or not name
        ),
        key=lambda header: len(header[0]),
    )
    leaf = key[len(table) :].lstrip(".")
    if not leaf:
        return start or None
    leaf = _INDEX.split(leaf, maxsplit=1)[0]
    following = [line for _, line in headers if line > start]
    stop = min(following, default=len(lines) + 1)
    assignment = re.compile(rf"\s*\"?{re.escape(leaf)}\"?\s*=")
    for number in range(start + 1, stop):
        if assignment.match(lines[number - 1]):
            return number
    return start or None


class _Bad(Exception):
    def __init__(self, key: str, problem: str) -> None:
        super().__init__(f"{key}: {problem}")
        self.key, self.problem = key, problem


def parse_calendar(data: Mapping[str, Any], time_zone: str) -> Calendar:
    """The calendar of a parsed file; _Bad names the key of the first fault."""
    for key in data:
        if key not in _TOP:
            raise _Bad(key, f"unknown key: the file holds {', '.join(sorted(_TOP))}")
    hours = _table(data, "hours")
    channels = {}
    for name, table in hours.items():
        key = f"hours.{name}"
        channels[_channel(name, key)] = _weekly(_as_table(table, key), key, ())
    skills = {}
    skill_tables = _table(data, "skills")
    _count(skill_tables, "skills")
    for name, table in skill_tables.items():
        key = f"skills.{name}"
        try:
            validation.skills([name], key, 1)
        except InvalidArgument as error:
            raise _Bad(key, error.problem) from None
        table = _as_table(table, key)
        skills[name] = SkillHours(
            _weekly(table, key, ("channels",)), _channels(table.get("channels", []), key)
        )
    holidays = [
        _holiday(entry, f"holidays[{i}]") for i, entry in enumerate(_list(data, "holidays"))
    ]
    closures = [
        _closure(entry, f"closures[{i}]") for i, entry in enumerate(_list(data, "closures"))
    ]
    try:
        return Calendar(
            time_zone,
            MappingProxyType(channels),
            MappingProxyType(skills),
            tuple(holidays),
            tuple(closures),
        )
    except ValueError as error:
        raise _Bad("holidays", str(error)) from None


def _table(data: Mapping[str, Any], key: str) -> dict[str, Any]:
    return _as_table(data.get(key, {}), key)


def _as_table(value: object, key: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise _Bad(key, "must be a table")
    return value


def _list(data: Mapping[str, Any], key: str) -> list[Any]:
    value = data.get(key, [])
    if not isinstance(value, list):
        raise _Bad(key, f"must be an array of tables ([[{key}]])")
    _count(value, key)
    return value


def _count(entries: object, key: str) -> None:
    if len(entries) > MAX_ENTRIES:  # type: ignore[arg-type]
        raise _Bad(key, f"at most {MAX_ENTRIES} entries")


def _channel(name: object, key: str) -> Channel:
    try:
        return Channel(str(name))
    except ValueError:
        raise _Bad(key, f"{str(name)[:40]!r} is not a channel (phone, chat, email)") from None


def _channels(value: object, key: str) -> frozenset[Channel]:
    key = f"{key}.channels"
    if not isinstance(value, list):
        raise _Bad(key, "must be a list of channels")
    return frozenset(_channel(name, f"{key}[{i}]") for i, name in enumerate(value))


def _weekly(table: Mapping[str, Any], key: str, others: tuple[str, ...]) -> WeeklyHours:
    days: list[tuple[Span, ...] | None] = [None] * 7
    for name, value in sorted(table.items(), key=lambda item: item[0] in WEEKDAYS):
        if name in others:
            continue
        if name in _GROUPS:
            for day in _GROUPS[name]:
                days[day] = _spans(value, f"{key}.{name}")
        elif name in WEEKDAYS:
            days[WEEKDAYS.index(name)] = _spans(value, f"{key}.{name}")
        else:
            known = ", ".join((*WEEKDAYS, *_GROUPS, *others))
            raise _Bad(f"{key}.{name}", f"unknown key: use {known}")
    return WeeklyHours(tuple(day or () for day in days))


def _spans(value: object, key: str) -> tuple[Span, ...]:
    """["08:00-12:00", "13:00-24:00"]: an empty list is closed."""
    if not isinstance(value, list):
        raise _Bad(key, 'must be a list of "HH:MM-HH:MM" (an empty list: closed)')
    spans = []
    for i, text in enumerate(value):
        where = f"{key}[{i}]"
        match = _SPAN.fullmatch(text) if isinstance(text, str) else None
        if match is None:
            raise _Bad(where, f'{str(text)[:40]!r} is not "HH:MM-HH:MM"')
        h1, m1, h2, m2 = (int(part) for part in match.groups())
        start, end = h1 * 60 + m1, h2 * 60 + m2
        if m1 > 59 or m2 > 59 or not 0 <= start < end <= 24 * 60:
            raise _Bad(where, f"{text!r}: the start must be before the end, within 00:00-24:00")
        spans.append((start, end))
    spans.sort()
    for (_, end), (start, _) in pairwise(spans):
        if start < end:
            raise _Bad(key, "its hours overlap")
    return tuple(spans)


def _holiday(entry: object, key: str) -> Holiday:
    table = _as_table(entry, key)
    for name in table:
        if name not in ("date", "hours", "channels"):
            raise _Bad(f"{key}.{name}", "unknown key: use date, hours, channels")
    day = table.get("date")
    if not isinstance(day, date) or isinstance(day, datetime):
        raise _Bad(f"{key}.date", "must be a date (2026-12-25, unquoted)")
    return Holiday(
        day,
        _spans(table.get("hours", []), f"{key}.hours"),
        _channels(table.get("channels", []), key),
    )


def _closure(entry: object, key: str) -> Closure:
    table = _as_table(entry, key)
    for name in table:
        if name not in ("from", "to", "channels", "reason"):
            raise _Bad(f"{key}.{name}", "unknown key: use from, to, channels, reason")
    bounds = []
    for name in ("from", "to"):
        value = table.get(name)
        if not isinstance(value, datetime) or value.tzinfo is not None:
            raise _Bad(
                f"{key}.{name}", "must be a local date and time (2026-12-24T14:00:00, unquoted)"
            )
        bounds.append(value)
    if not bounds[0] < bounds[1]:
        raise _Bad(f"{key}.to", "must be after from")
    reason = table.get("reason", "")
    if not isinstance(reason, str) or len(reason) > 200:
        raise _Bad(f"{key}.reason", "must be text of at most 200 characters")
    return Closure(bounds[0], bounds[1], _channels(table.get("channels", []), key), reason)


class HoursFile:
    """The calendar of this router, kept equal to its file: read at start, then again
    on `reload()` (SIGHUP) and whenever the file changes."""

    def __init__(self, path: Path | None, time_zone: str, poll: float = POLL_SECONDS) -> None:
        self.path = path
        self.time_zone = time_zone
        self.poll = poll
        self.calendar = ALWAYS_OPEN if path is None else read_calendar(path, time_zone)
        if path is not None:
            self._log_in_force("hours_loaded")
        self._seen = self._stamp()
        self._users: list[Callable[[Calendar], None]] = []
        self._task: asyncio.Task[None] | None = None

    def use(self, apply: Callable[[Calendar], None]) -> None:
        """Call `apply` with the calendar now and with each valid new one."""
        self._users.append(apply)
        apply(self.calendar)

    def reload(self) -> bool:
        """Read the file again: True if a new calendar is in force, False if it was
        refused (logged; the one in force stays)."""
        if self.path is None:
            return False
        self._seen = self._stamp()
        try:
            calendar = read_calendar(self.path, self.time_zone)
        except ConfigError as error:
            log.error("hours_file_refused", file=str(self.path), error=str(error))
            return False
        self.calendar = calendar
        for apply in self._users:
            apply(calendar)
        self._log_in_force("hours_reloaded")
        return True

    def _log_in_force(self, event: str) -> None:
        """What the operator needs to see that the file is the one in force."""
        log.info(
            event,
            file=str(self.path),
            channels=sorted(c.value for c in self.calendar.channels),
            holidays=len(self.calendar.holidays),
            closures=len(self.calendar.closures),
        )

    def start(self) -> None:
        """Look at the file every `poll` seconds; reload when it changed."""
        if self.path is not None and self._task is None:
            self._task = asyncio.create_task(self._watch(self.poll), name="hours-file")

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def _watch(self, poll: float) -> None:
        while True:
            await asyncio.sleep(poll)
            if self._stamp() != self._seen:
                self.reload()

    def _stamp(self) -> tuple[int, int, int] | None:
        if self.path is None:
            return None
        try:
            stat = os.stat(self.path)
        except OSError:
            return None
        return stat.st_mtime_ns, stat.st_size, stat.st_ino
