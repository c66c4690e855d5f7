"""Hours of operation: when each channel takes contacts, in the center's time zone.

A `Calendar` holds, for the center's IANA time zone:

- weekly hours per channel (a channel without any is always open, the default), and
  optionally per skill: a contact that requires a skill with hours of its own follows
  that skill's hours instead of its channel's (several such skills: the hours they
  share);
- holidays: a date that is closed, or that has its own hours, instead of the weekly
  ones, for the channels it names (all by default);
- closures: from one local time to another (across midnight, across days), closed
  whatever the hours say, for the channels it names (all by default).

Local wall times become instants by two rules, so that every answer is exact across
daylight-saving changes: a wall time the clock skips (02:30 on the night it jumps from
02:00 to 03:00) is the instant it jumps; a wall time the clock shows twice (02:30 on the
night it goes back) is the first of the two. Hours of 01:00-03:00 are thus one real
hour long on the spring night and three on the autumn one.

Everything is pure (time passed in, instants in UTC) and the calendar never changes
once made: a new file makes a new calendar, which replaces the old one whole.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from itertools import pairwise
from types import MappingProxyType
from zoneinfo import ZoneInfo

from router.domain.channel import Channel
from router.domain.time_zones import time_zone

DAY_MINUTES = 24 * 60
WEEKDAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")

Span = tuple[int, int]
"""Minutes after local midnight, [start, end), 0 <= start < end <= 1440 (24:00)."""

Interval = tuple[datetime, datetime]
"""[start, end) in UTC."""

Key = tuple[Channel, frozenset[str]]
"""What the hours of a contact depend on: its channel, and those of its required skills
that have hours of their own on that channel."""

_SEARCH_DAYS = 7
"""Days of calendar computed at once when looking ahead for the next change."""

_ONE_DAY = timedelta(days=1)

_WEEK = timedelta(days=8)
"""Open longer than this past every holiday and closure: open for ever (the weeks repeat)."""

FOREVER = datetime.max.replace(tzinfo=UTC)
"""The end of an opening that never ends."""


def _check_spans(spans: Iterable[Span]) -> tuple[Span, ...]:
    ordered = tuple(sorted(spans))
    for start, end in ordered:
        if not 0 <= start < end <= DAY_MINUTES:
            raise ValueError(f"hours {start}-{end} must satisfy 0 <= start < end <= 1440")
    for (_, end), (start, _) in pairwise(ordered):
        if start < end:
            raise ValueError("hours of one day must not overlap")
    return ordered


@dataclass(frozen=True, slots=True)
class WeeklyHours:
    """Open spans per weekday (0 is Monday); a weekday without spans is closed."""

    days: tuple[tuple[Span, ...], ...]

    def __post_init__(self) -> None:
        if len(self.days) != 7:
            raise ValueError("weekly hours have seven days")
        object.__setattr__(self, "days", tuple(_check_spans(day) for day in self.days))

    @classmethod
    def every_day(cls, *spans: Span) -> WeeklyHours:
        return cls(tuple(spans for _ in range(7)))


@dataclass(frozen=True, slots=True)
class Holiday:
    """A date with its own hours (none: closed all day) for `channels` (empty: all)."""

    day: date
    spans: tuple[Span, ...] = ()
    channels: frozenset[Channel] = frozenset()

    def __post_init__(self) -> None:
        object.__setattr__(self, "spans", _check_spans(self.spans))

    def applies_to(self, channel: Channel) -> bool:
        return not self.channels or channel in self.channels


@dataclass(frozen=True, slots=True)
class Closure:
    """Closed from one local wall time to another (naive datetimes, the center's clock)
    for `channels` (empty: all), whatever the hours say."""

    start: datetime
    end: datetime
    channels: frozenset[Channel] = frozenset()
    reason: str = ""

    def __post_init__(self) -> None:
        if self.start.tzinfo is not None or self.end.tzinfo is not None:
            raise ValueError("a closure is given in local wall time, without a zone")
        if not self.start < self.end:
            raise ValueError("a closure ends after it starts")

    def applies_to(self, channel: Channel) -> bool:
        return not self.channels or channel in self.channels


@dataclass(frozen=True, slots=True)
class SkillHours:
    """Weekly hours of a skill, on `channels` (empty: all)."""

    hours: WeeklyHours
    channels: frozenset[Channel] = frozenset()

    def applies_to(self, channel: Channel) -> bool:
        return not self.channels or channel in self.channels


@dataclass(frozen=True, slots=True)
class Calendar:
    """When each channel is open; the default calendar is always open."""

    time_zone: str = "UTC"
    channels: Mapping[Channel, WeeklyHours] = field(default_factory=lambda: MappingProxyType({}))
    skills: Mapping[str, SkillHours] = field(default_factory=lambda: MappingProxyType({}))
    holidays: tuple[Holiday, ...] = ()
    closures: tuple[Closure, ...] = ()
    _zone: ZoneInfo = field(init=False, repr=False, compare=False)
    _holidays: Mapping[date, tuple[Holiday, ...]] = field(init=False, repr=False, compare=False)
    _cache: dict[tuple[Key, date], tuple[Interval, ...]] = field(
        init=False, repr=False, compare=False
    )
    _always_open: bool = field(init=False, repr=False, compare=False)
    _closed: tuple[tuple[frozenset[Channel], datetime, datetime], ...] = field(
        init=False, repr=False, compare=False
    )
    _last_special: date = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_zone", time_zone(self.time_zone))
        by_day: dict[date, list[Holiday]] = {}
        for holiday in self.holidays:
            for other in by_day.get(holiday.day, ()):
                if other.channels & holiday.channels or not (other.channels and holiday.channels):
                    raise ValueError(f"{holiday.day} is a holiday twice for one channel")
            by_day.setdefault(holiday.day, []).append(holiday)
        object.__setattr__(
            self, "_holidays", MappingProxyType({d: tuple(h) for d, h in by_day.items()})
        )
        object.__setattr__(self, "_cache", {})
        nothing = not (self.channels or self.skills or self.holidays or self.closures)
        object.__setattr__(self, "_always_open", nothing)
        # Each closure's instants, found once (a file may list thousands).
        closed = tuple((c.channels, self._wall(c.start), self._wall(c.end)) for c in self.closures)
        object.__setattr__(self, "_closed", closed)
        last = [h.day for h in self.holidays] + [c.end.date() for c in self.closures]
        object.__setattr__(self, "_last_special", max(last, default=date.min))

    @property
    def always_open(self) -> bool:
        """Nothing configured: every channel is open at every instant."""
        return self._always_open

    # ----------------------------------------------------------------- answers

    def is_open(self, channel: Channel, skills: frozenset[str], at: datetime) -> bool:
        """Whether a contact of `channel` requiring `skills` is in its hours at `at`."""
        if self.always_open:
            return True
        # A date's intervals lie between its local midnights, so the date of `at` holds
        # the one that contains it (its neighbours too, for a zone whose clock goes back
        # across midnight). Each date's intervals are computed once (_day).
        key = self._key(channel, skills)
        day = self._local_date(at)
        for nearby in (day - _ONE_DAY, day, day + _ONE_DAY):
            for start, end in self._day(key, nearby):
                if start <= at < end:
                    return True
        return False

    def next_change(
        self, channel: Channel, skills: frozenset[str], at: datetime
    ) -> datetime | None:
        """The first instant after `at` at which it opens or closes; None if never."""
        if self.always_open:
            return None
        for start, end in self._intervals_from(channel, skills, at):
            if start > at:
                return start
            if end > at:
                return None if end == FOREVER else end
        return None

    def next_opening(
        self, channel: Channel, skills: frozenset[str], at: datetime
    ) -> datetime | None:
        """`at` if open then, else the instant it next opens; None if it never does."""
        if self.always_open:
            return at
        for start, end in self._intervals_from(channel, skills, at):
            if end > at:
                return max(start, at)
        return None

    def open_seconds_between(
        self, channel: Channel, skills: frozenset[str], start: datetime, end: datetime
    ) -> float:
        """Seconds of [start, end) during which it was open (0 when end <= start)."""
        if end <= start:
            return 0.0
        if self.always_open:
            return (end - start).total_seconds()
        # Dates' intervals never overlap one another: their clipped lengths add up.
        key = self._key(channel, skills)
        day, last_day = self._local_date(start) - _ONE_DAY, self._local_date(end) + _ONE_DAY
        total = 0.0
        while day <= last_day:
            for first, last in self._day(key, day):
                first, last = max(first, start), min(last, end)
                if first < last:
                    total += (last - first).total_seconds()
            day += _ONE_DAY
        return total

    def open_intervals(
        self, channel: Channel, skills: frozenset[str], start: datetime, end: datetime
    ) -> list[Interval]:
        """The open intervals clipped to [start, end), in order, disjoint, in UTC."""
        key = self._key(channel, skills)
        first = self._local_date(start) - timedelta(days=1)
        last = self._local_date(end) + timedelta(days=1)
        clipped: list[Interval] = []
        for a, b in self._merged(key, first, last):
            a, b = max(a, start), min(b, end)
            if a < b:
                clipped.append((a, b))
        return clipped

    def local_text(self, at: datetime) -> str:
        """`at` on the center's clock and in UTC: "2026-12-26 08:00 CET (07:00 UTC)", the
        clock alone when it is UTC's."""
        local = at.astimezone(self._zone)
        text = f"{local:%Y-%m-%d %H:%M} {local.tzname()}"
        if local.utcoffset():
            text += f" ({at.astimezone(UTC):%Y-%m-%d %H:%M} UTC)"
        return text

    # --------------------------------------------------------------- workings

    def _key(self, channel: Channel, skills: frozenset[str]) -> Key:
        if not self.skills:
            return channel, frozenset()
        # A skill asked at a proficiency (lang:de@3) follows the hours of the skill.
        names = {skill.partition("@")[0] for skill in skills}
        own = frozenset(s for s in names if (h := self.skills.get(s)) and h.applies_to(channel))
        return channel, own

    def _intervals_from(
        self, channel: Channel, skills: frozenset[str], at: datetime
    ) -> Iterator[Interval]:
        """Every open interval that ends after `at`, in order, merged across days; one
        still open a week past the last holiday or closure is open for ever, and ends
        at FOREVER."""
        key = self._key(channel, skills)
        day = self._local_date(at) - timedelta(days=1)
        horizon = self._horizon(day)
        pending: Interval | None = None
        while True:
            stop = day + timedelta(days=_SEARCH_DAYS - 1)
            for interval in self._merged(key, day, stop):
                if pending is not None and interval[0] <= pending[1]:
                    pending = (pending[0], max(pending[1], interval[1]))
                    continue
                if pending is not None and pending[1] > at:
                    yield pending
                pending = interval
            day = stop + timedelta(days=1)
            touches = pending is not None and pending[1] >= self._instant(day, 0)
            if day > horizon and not touches:
                break
            if day > horizon and pending is not None and pending[1] - pending[0] > _WEEK:
                pending = (pending[0], FOREVER)
                break
        if pending is not None and pending[1] > at:
            yield pending

    def _horizon(self, day: date) -> date:
        """The last local date worth searching: past it the weeks only repeat."""
        last = day + timedelta(days=15)
        if self._last_special > last - timedelta(days=8):
            last = self._last_special + timedelta(days=8)
        return last

    def _local_date(self, at: datetime) -> date:
        return at.astimezone(self._zone).date()

    def _merged(self, key: Key, first: date, last: date) -> list[Interval]:
        """The open intervals of local dates first..last, merged where they touch."""
        merged: list[Interval] = []
        day = first
        while day <= last:
            for start, end in self._day(key, day):
                if merged and start <= merged[-1][1]:
                    merged[-1] = (merged[-1][0], max(merged[-1][1], end))
                else:
                    merged.append((start, end))
            day += timedelta(days=1)
        return merged

    def _day(self, key: Key, day: date) -> tuple[Interval, ...]:
        cached = self._cache.get((key, day))
        if cached is None:
            if len(self._cache) > 4096:
                self._cache.clear()
            cached = self._cache[(key, day)] = self._compute_day(key, day)
        return cached

    def _compute_day(self, key: Key, day: date) -> tuple[Interval, ...]:
        """The open intervals of one local date, closures taken out."""
        channel, own = key
        spans = self._spans(channel, own, day)
        intervals = [(self._instant(day, start), self._instant(day, end)) for start, end in spans]
        intervals = [(a, b) for a, b in intervals if a < b]
        if intervals:
            first, last = intervals[0][0], intervals[-1][1]
            for channels, start, end in self._closed:
                if start < last and first < end and (not channels or channel in channels):
                    intervals = _subtract(intervals, start, end)
        return tuple(intervals)

    def _spans(self, channel: Channel, own: frozenset[str], day: date) -> tuple[Span, ...]:
        for holiday in self._holidays.get(day, ()):
            if holiday.applies_to(channel):
                return holiday.spans
        weekday = day.weekday()
        if own:
            shared: tuple[Span, ...] | None = None
            for skill in sorted(own):
                spans = self.skills[skill].hours.days[weekday]
                shared = spans if shared is None else _intersect(shared, spans)
            assert shared is not None
            return shared
        hours = self.channels.get(channel)
        return ((0, DAY_MINUTES),) if hours is None else hours.days[weekday]

    def _instant(self, day: date, minute: int) -> datetime:
        """The instant the local clock shows `minute` after midnight of `day`."""
        if minute == DAY_MINUTES:
            day, minute = day + timedelta(days=1), 0
        return self._wall(datetime.combine(day, time(minute // 60, minute % 60)))

    def _wall(self, wall: datetime) -> datetime:
        """A local wall time as an instant (UTC): the first of two, or the jump."""
        first = wall.replace(tzinfo=self._zone, fold=0).astimezone(UTC)
        if first.astimezone(self._zone).replace(tzinfo=None) == wall:
            return first
        # The clock skips `wall`: the instant it jumps lies between the two readings.
        low = wall.replace(tzinfo=self._zone, fold=1).astimezone(UTC)
        high = first
        if low > high:
            low, high = high, low
        while (high - low) > timedelta(seconds=1):
            middle = low + (high - low) / 2
            if middle.astimezone(self._zone).replace(tzinfo=None) >= wall:
                high = middle
            else:
                low = middle
        return high.replace(microsecond=0) if high.microsecond else high


def _intersect(a: tuple[Span, ...], b: tuple[Span, ...]) -> tuple[Span, ...]:
    shared = []
    for a_start, a_end in a:
        for b_start, b_end in b:
            start, end = max(a_start, b_start), min(a_end, b_end)
            if start < end:
                shared.append((start, end))
    return tuple(sorted(shared))


def _subtract(intervals: list[Interval], start: datetime, end: datetime) -> list[Interval]:
    left: list[Interval] = []
    for a, b in intervals:
        if b <= start or end <= a:
            left.append((a, b))
            continue
        if a < start:
            left.append((a, start))
        if end < b:
            left.append((end, b))
    return left


ALWAYS_OPEN = Calendar()
