"""The calendar of hours of operation: weekly hours, holidays, closures, time zones."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from router.domain.channel import Channel
from router.domain.opening_hours import (
    ALWAYS_OPEN,
    Calendar,
    Closure,
    Holiday,
    SkillHours,
    WeeklyHours,
)

PHONE, CHAT, EMAIL = Channel.PHONE, Channel.CHAT, Channel.EMAIL
NONE: frozenset[str] = frozenset()


def hm(text: str) -> int:
    hours, minutes = text.split(":")
    return int(hours) * 60 + int(minutes)


def span(text: str) -> tuple[int, int]:
    start, end = text.split("-")
    return hm(start), hm(end)


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)  # type: ignore[arg-type,misc]


def paris(**kwargs: object) -> Calendar:
    return Calendar("Europe/Paris", **kwargs)  # type: ignore[arg-type]


EIGHT_TO_TEN = WeeklyHours.every_day(span("08:00-22:00"))


class TestDefault:
    def test_no_hours_is_always_open(self) -> None:
        """A calendar with nothing configured is open at every instant, for every channel."""
        at = utc(2026, 12, 25, 3, 0)
        for channel in Channel:
            assert ALWAYS_OPEN.is_open(channel, NONE, at)
            assert ALWAYS_OPEN.next_opening(channel, NONE, at) == at
            assert ALWAYS_OPEN.next_change(channel, NONE, at) is None
        assert (
            ALWAYS_OPEN.open_seconds_between(PHONE, NONE, at, at + timedelta(hours=5)) == 5 * 3600
        )

    def test_channel_without_hours_is_open_when_another_has_some(self) -> None:
        """Hours for phone leave chat and email open all the time."""
        calendar = paris(channels={PHONE: EIGHT_TO_TEN})
        night = utc(2026, 6, 1, 1, 0)
        assert not calendar.is_open(PHONE, NONE, night)
        assert calendar.is_open(CHAT, NONE, night)
        assert calendar.next_change(CHAT, NONE, night) is None


class TestLocalText:
    def test_the_center_clock_and_utc(self) -> None:
        assert (
            paris().local_text(utc(2026, 1, 13, 7, 0))
            == "2026-01-13 08:00 CET (2026-01-13 07:00 UTC)"
        )

    def test_a_utc_center_says_it_once(self) -> None:
        """Not "09:00 UTC (09:00 UTC)"."""
        assert Calendar("UTC").local_text(utc(2026, 12, 5, 9, 0)) == "2026-12-05 09:00 UTC"


class TestWeeklyHours:
    def test_open_and_closed_on_the_local_clock(self) -> None:
        """08:00-22:00 in Paris in summer is 06:00-20:00 UTC."""
        calendar = paris(channels={PHONE: EIGHT_TO_TEN})
        assert not calendar.is_open(PHONE, NONE, utc(2026, 6, 1, 5, 59))
        assert calendar.is_open(PHONE, NONE, utc(2026, 6, 1, 6, 0))
        assert calendar.is_open(PHONE, NONE, utc(2026, 6, 1, 19, 59))
        assert not calendar.is_open(PHONE, NONE, utc(2026, 6, 1, 20, 0))

    def test_next_opening_and_change(self) -> None:
        """Closed at night: the next opening and the next change are the morning."""
        calendar = paris(channels={PHONE: EIGHT_TO_TEN})
        night = utc(2026, 6, 1, 21, 0)
        morning = utc(2026, 6, 2, 6, 0)
        assert calendar.next_opening(PHONE, NONE, night) == morning
        assert calendar.next_change(PHONE, NONE, night) == morning
        assert calendar.next_change(PHONE, NONE, morning) == utc(2026, 6, 2, 20, 0)

    def test_a_closed_weekday(self) -> None:
        """A weekday without hours is closed all day: Saturday night opens on Monday."""
        days = tuple((span("09:00-17:00"),) if d < 5 else () for d in range(7))
        calendar = Calendar("UTC", channels={PHONE: WeeklyHours(days)})
        saturday = utc(2026, 6, 6, 12, 0)
        assert not calendar.is_open(PHONE, NONE, saturday)
        assert calendar.next_opening(PHONE, NONE, saturday) == utc(2026, 6, 8, 9, 0)

    def test_hours_through_midnight_are_one_opening(self) -> None:
        """20:00-24:00 then 00:00-04:00 the next day: no change at midnight."""
        calendar = Calendar(
            "UTC", channels={PHONE: WeeklyHours.every_day(span("00:00-04:00"), span("20:00-24:00"))}
        )
        assert calendar.next_change(PHONE, NONE, utc(2026, 6, 1, 21, 0)) == utc(2026, 6, 2, 4, 0)

    def test_never_open(self) -> None:
        """A channel with no hours on any day never opens: no next opening."""
        calendar = Calendar("UTC", channels={PHONE: WeeklyHours(((),) * 7)})
        at = utc(2026, 6, 1)
        assert not calendar.is_open(PHONE, NONE, at)
        assert calendar.next_opening(PHONE, NONE, at) is None
        assert calendar.next_change(PHONE, NONE, at) is None


class TestDaylightSaving:
    def test_spring_forward_gap(self) -> None:
        """Paris, 2026-03-29, 02:00 jumps to 03:00: 01:00-03:00 is one real hour, and
        an opening at 02:30 (a time the clock skips) is the jump itself."""
        calendar = paris(channels={PHONE: WeeklyHours.every_day(span("01:00-03:00"))})
        day_start, day_end = utc(2026, 3, 28, 23, 0), utc(2026, 3, 29, 22, 0)
        assert calendar.open_seconds_between(PHONE, NONE, day_start, day_end) == 3600
        skipped = paris(channels={PHONE: WeeklyHours.every_day(span("02:30-04:00"))})
        assert skipped.next_opening(PHONE, NONE, day_start) == utc(2026, 3, 29, 1, 0)
        assert skipped.open_seconds_between(PHONE, NONE, day_start, day_end) == 3600

    def test_fall_back_overlap(self) -> None:
        """Paris, 2026-10-25, 03:00 goes back to 02:00: 01:00-03:00 is three real
        hours, and an opening at 02:30 (shown twice) is the first of the two."""
        calendar = paris(channels={PHONE: WeeklyHours.every_day(span("01:00-03:00"))})
        day_start, day_end = utc(2026, 10, 24, 22, 0), utc(2026, 10, 25, 23, 0)
        assert calendar.open_seconds_between(PHONE, NONE, day_start, day_end) == 3 * 3600
        twice = paris(channels={PHONE: WeeklyHours.every_day(span("02:30-04:00"))})
        assert twice.next_opening(PHONE, NONE, day_start) == utc(2026, 10, 25, 0, 30)
        assert twice.open_seconds_between(PHONE, NONE, day_start, day_end) == 2.5 * 3600

    def test_the_same_local_hours_move_in_utc(self) -> None:
        """08:00 Paris is 07:00 UTC in winter and 06:00 UTC in summer."""
        calendar = paris(channels={PHONE: EIGHT_TO_TEN})
        assert calendar.next_opening(PHONE, NONE, utc(2026, 1, 5, 0, 0)) == utc(2026, 1, 5, 7, 0)
        assert calendar.next_opening(PHONE, NONE, utc(2026, 7, 6, 0, 0)) == utc(2026, 7, 6, 6, 0)


class TestHolidaysAndClosures:
    def test_a_closed_holiday(self) -> None:
        """Christmas closed: the 24th's evening runs to the 26th's morning."""
        calendar = paris(channels={PHONE: EIGHT_TO_TEN}, holidays=(Holiday(date(2026, 12, 25)),))
        noon = utc(2026, 12, 25, 11, 0)
        assert not calendar.is_open(PHONE, NONE, noon)
        assert calendar.next_opening(PHONE, NONE, noon) == utc(2026, 12, 26, 7, 0)
        assert calendar.is_open(CHAT, NONE, utc(2026, 12, 25, 3, 0)) is False

    def test_a_holiday_with_its_own_hours_for_one_channel(self) -> None:
        """New Year's Eve phone 08:00-12:00; chat keeps its (always open) hours."""
        eve = Holiday(date(2026, 12, 31), (span("08:00-12:00"),), frozenset({PHONE}))
        calendar = paris(channels={PHONE: EIGHT_TO_TEN}, holidays=(eve,))
        assert calendar.is_open(PHONE, NONE, utc(2026, 12, 31, 10, 0))
        assert not calendar.is_open(PHONE, NONE, utc(2026, 12, 31, 12, 0))
        assert calendar.is_open(CHAT, NONE, utc(2026, 12, 31, 12, 0))

    def test_a_closure_across_midnight(self) -> None:
        """Closed 20:00 to 09:30 the next day on a 24-hour line."""
        closure = Closure(datetime(2026, 6, 1, 20, 0), datetime(2026, 6, 2, 9, 30))
        calendar = paris(closures=(closure,))
        assert calendar.is_open(PHONE, NONE, utc(2026, 6, 1, 17, 59))
        assert not calendar.is_open(PHONE, NONE, utc(2026, 6, 1, 18, 0))
        assert not calendar.is_open(PHONE, NONE, utc(2026, 6, 1, 22, 0))
        assert calendar.next_opening(PHONE, NONE, utc(2026, 6, 1, 22, 0)) == utc(2026, 6, 2, 7, 30)
        whole_days = calendar.open_seconds_between(
            PHONE, NONE, utc(2026, 6, 1, 0, 0), utc(2026, 6, 3, 0, 0)
        )
        assert whole_days == 48 * 3600 - 13.5 * 3600

    def test_a_closure_of_one_channel(self) -> None:
        """A closure naming email leaves phone open."""
        closure = Closure(
            datetime(2026, 6, 1, 0, 0), datetime(2026, 6, 2, 0, 0), frozenset({EMAIL})
        )
        calendar = Calendar("UTC", closures=(closure,))
        assert not calendar.is_open(EMAIL, NONE, utc(2026, 6, 1, 12))
        assert calendar.is_open(PHONE, NONE, utc(2026, 6, 1, 12))

    def test_one_holiday_twice_for_a_channel_is_refused(self) -> None:
        """Two holidays of one date for one channel: which hours would hold is unsaid."""
        with pytest.raises(ValueError, match="twice"):
            Calendar("UTC", holidays=(Holiday(date(2026, 1, 1)), Holiday(date(2026, 1, 1))))


class TestSkillHours:
    def test_a_skill_with_its_own_hours(self) -> None:
        """lang:de phone closes at 18:00; a call without it follows the channel's hours."""
        german = SkillHours(WeeklyHours.every_day(span("09:00-18:00")), frozenset({PHONE}))
        calendar = Calendar("UTC", channels={PHONE: EIGHT_TO_TEN}, skills={"lang:de": german})
        evening = utc(2026, 6, 1, 19, 0)
        assert not calendar.is_open(PHONE, frozenset({"lang:de", "returns"}), evening)
        assert calendar.is_open(PHONE, frozenset({"returns"}), evening)
        assert calendar.is_open(CHAT, frozenset({"lang:de"}), evening)

    def test_two_skills_share_their_hours(self) -> None:
        """Two skills with hours: open only when both are."""
        hours = {
            "a": SkillHours(WeeklyHours.every_day(span("08:00-12:00"))),
            "b": SkillHours(WeeklyHours.every_day(span("10:00-14:00"))),
        }
        calendar = Calendar("UTC", skills=hours)
        both = frozenset({"a", "b"})
        day = utc(2026, 6, 1), utc(2026, 6, 2)
        assert calendar.open_seconds_between(PHONE, both, *day) == 2 * 3600


# ------------------------------------------------------------------ properties

ZONES = st.sampled_from(["UTC", "Europe/Paris", "America/New_York", "Australia/Lord_Howe"])
MINUTES = st.integers(0, 24 * 60)


@st.composite
def day_spans(draw: st.DrawFn) -> tuple[tuple[int, int], ...]:
    cuts = sorted(set(draw(st.lists(MINUTES, max_size=6))))
    return tuple((cuts[i], cuts[i + 1]) for i in range(0, len(cuts) - 1, 2))


INSTANTS = st.datetimes(
    min_value=datetime(2026, 1, 1), max_value=datetime(2027, 12, 31), timezones=st.just(UTC)
)


@st.composite
def calendars(draw: st.DrawFn) -> Calendar:
    weekly = WeeklyHours(tuple(draw(day_spans()) for _ in range(7)))
    closures = []
    for _ in range(draw(st.integers(0, 2))):
        start = draw(INSTANTS).replace(tzinfo=None)
        closures.append(Closure(start, start + timedelta(minutes=draw(st.integers(1, 4000)))))
    holidays = []
    if draw(st.booleans()):
        holidays.append(Holiday(draw(INSTANTS).date(), draw(day_spans())))
    return Calendar(
        draw(ZONES), channels={PHONE: weekly}, holidays=tuple(holidays), closures=tuple(closures)
    )


class TestProperties:
    @settings(max_examples=150, deadline=None)
    @given(calendars(), INSTANTS, st.integers(0, 10 * 86400), st.integers(0, 10 * 86400))
    def test_open_seconds_are_additive_and_bounded(
        self, calendar: Calendar, start: datetime, first: int, second: int
    ) -> None:
        """Splitting a span adds up, and no span holds more open time than its length."""
        middle = start + timedelta(seconds=first)
        end = middle + timedelta(seconds=second)
        whole = calendar.open_seconds_between(PHONE, NONE, start, end)
        parts = calendar.open_seconds_between(PHONE, NONE, start, middle)
        parts += calendar.open_seconds_between(PHONE, NONE, middle, end)
        assert whole == pytest.approx(parts, abs=1e-6)
        assert 0 <= whole <= (end - start).total_seconds()

    @settings(max_examples=150, deadline=None)
    @given(calendars(), INSTANTS)
    def test_changes_agree_with_is_open(self, calendar: Calendar, at: datetime) -> None:
        """Nothing changes before the next change, and it does change there; the next
        opening is open, and the time before it closed."""
        now_open = calendar.is_open(PHONE, NONE, at)
        change = calendar.next_change(PHONE, NONE, at)
        opening = calendar.next_opening(PHONE, NONE, at)
        if change is not None:
            assert change > at
            assert calendar.is_open(PHONE, NONE, change) is not now_open
            just_before = change - timedelta(microseconds=1)
            assert calendar.is_open(PHONE, NONE, just_before) is now_open
            seconds = calendar.open_seconds_between(PHONE, NONE, at, change)
            assert seconds == pytest.approx((change - at).total_seconds() if now_open else 0)
        if now_open:
            assert opening == at
        elif opening is not None:
            assert calendar.is_open(PHONE, NONE, opening)
            assert calendar.open_seconds_between(PHONE, NONE, at, opening) == 0
