"""Intervals, the alarm and its watch."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from types import MappingProxyType

import pytest
from structlog.testing import capture_logs

from router.domain import Channel, ContactEvent, ContactEventKind, RoutingPolicy
from router.domain.rolling import RollingServiceLevel
from router.reporting.alarm import AlarmChange, ServiceLevelAlarm
from router.reporting.intervals import Interval, interval_start, interval_starts
from router.service_level_watch import ServiceLevelWatch
from tests.unit.conftest import build_contact

T0 = datetime(2026, 3, 4, 14, 7, 30, tzinfo=UTC)  # a Wednesday


class TestIntervals:
    @pytest.mark.parametrize(
        ("interval", "expected"),
        [
            (Interval.MINUTES_15, datetime(2026, 3, 4, 14, 0, tzinfo=UTC)),
            (Interval.MINUTES_30, datetime(2026, 3, 4, 14, 0, tzinfo=UTC)),
            (Interval.HOUR, datetime(2026, 3, 4, 14, 0, tzinfo=UTC)),
            (Interval.DAY, datetime(2026, 3, 4, tzinfo=UTC)),
            (Interval.WEEK, datetime(2026, 3, 2, tzinfo=UTC)),
            (Interval.MONTH, datetime(2026, 3, 1, tzinfo=UTC)),
        ],
    )
    def test_interval_start(self, interval: Interval, expected: datetime) -> None:
        assert interval_start(T0, interval) == expected

    def test_months_of_a_year_have_their_own_lengths(self) -> None:
        starts = interval_starts(
            datetime(2024, 1, 15, tzinfo=UTC), datetime(2025, 1, 1, tzinfo=UTC), Interval.MONTH
        )
        assert len(starts) == 12
        assert starts[1] == datetime(2024, 2, 1, tzinfo=UTC)
        assert starts[-1] == datetime(2024, 12, 1, tzinfo=UTC)

    @pytest.mark.parametrize("interval", list(Interval))
    def test_the_last_interval_of_year_9999_is_the_last(self, interval: Interval) -> None:
        """Issue 14 #16: a range in the last hour of 9999-12-31 raised OverflowError
        looking for the interval after it; there is none, and the range ends there."""
        start = datetime(9999, 12, 31, 23, 45, tzinfo=UTC)
        starts = interval_starts(start, datetime.max.replace(tzinfo=UTC), interval)
        assert starts == [interval_start(start, interval)]


class TestAlarm:
    def test_raised_below_seventy_cleared_at_seventy(self) -> None:
        alarm = ServiceLevelAlarm(0.70)
        assert alarm.observe(0.70, T0) is None
        raised = alarm.observe(0.69, T0)
        assert raised is not None
        assert raised.change is AlarmChange.RAISED
        assert (alarm.raised, alarm.raised_at) == (True, T0)
        assert alarm.observe(0.5, T0 + timedelta(minutes=1)) is None, "raised once"
        assert alarm.observe(None, T0 + timedelta(minutes=2)) is None, "empty window: no change"
        cleared = alarm.observe(0.70, T0 + timedelta(minutes=3))
        assert cleared is not None
        assert cleared.change is AlarmChange.CLEARED
        assert (alarm.raised, alarm.raised_at) == (False, None)


class TestServiceLevelWatch:
    def test_logs_a_warning_when_raised_and_info_when_cleared(self) -> None:
        """Three late calls of four: 25% raises; good calls later bring it back."""
        now = [T0]
        rolling = RollingServiceLevel(RoutingPolicy(), window=900)
        watch = ServiceLevelWatch(rolling, RoutingPolicy(), clock=lambda: now[0])
        for wait in (5.0, 30.0, 30.0, 30.0):
            rolling.answered(Channel.PHONE, T0, wait)
        with capture_logs() as logs:
            assert watch.check() == 0.25
            for _ in range(8):
                rolling.answered(Channel.PHONE, T0 + timedelta(seconds=60), 1.0)
            now[0] = T0 + timedelta(seconds=60)
            assert watch.check() == 0.75
        assert [(e["event"], e["log_level"], e["service_level"]) for e in logs] == [
            ("service_level_alarm_raised", "warning", 0.25),
            ("service_level_alarm_cleared", "info", 0.75),
        ]

    def test_the_configured_alarm_line_is_the_one_watched(self) -> None:
        """Issue 14 #7: with the phone alarm line at 90%, 85% is an alarm (it was not
        below the fixed 70%), and the status shows the line and since when."""
        policy = with_alarm(Channel.PHONE, 0.90)
        rolling = RollingServiceLevel(policy, window=900)
        watch = ServiceLevelWatch(rolling, policy, clock=lambda: T0)
        for wait in [1.0] * 17 + [30.0] * 3:
            rolling.answered(Channel.PHONE, T0, wait)
        status = watch.status()
        assert (status.raised, status.threshold, status.raised_at) == (True, 0.90, T0)
        assert status.rolling_service_level == pytest.approx(0.85)

    def test_each_channel_has_its_own_alarm(self) -> None:
        """A chat answered late raises the chat alarm, at chat's own line, and leaves
        phone's alone: every channel's configured alarm is watched, not phone's only."""
        policy = with_alarm(Channel.CHAT, 0.90)
        rolling = RollingServiceLevel(policy, window=900)
        watch = ServiceLevelWatch(rolling, policy, clock=lambda: T0)
        late = replace(
            build_contact("c1", Channel.CHAT, 0.0), answered_at=T0 + timedelta(minutes=5)
        )
        rolling.answered(Channel.CHAT, T0, 300.0)
        with capture_logs() as logs:
            watch.observe([ContactEvent(ContactEventKind.ANSWERED, late, T0)])
        assert [(e["event"], e["channel"], e["threshold"]) for e in logs] == [
            ("service_level_alarm_raised", "chat", 0.90)
        ]
        assert watch.status(Channel.CHAT).raised
        assert not watch.status(Channel.PHONE).raised


def with_alarm(channel: Channel, alarm: float) -> RoutingPolicy:
    """The default policy with `channel`'s alarm line (and goal, above it) raised."""
    policy = RoutingPolicy()
    rule = replace(policy.of(channel), service_level_goal=0.95, service_level_alarm=alarm)
    return replace(policy, channels=MappingProxyType({**policy.channels, channel: rule}))
