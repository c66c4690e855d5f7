"""Intervals, the alarm and its watch, and report rendering."""

from __future__ import annotations

import csv
import io
import json
from datetime import UTC, datetime, timedelta

import pytest
from structlog.testing import capture_logs

from router.domain import Channel, RoutingPolicy
from router.domain.rolling import RollingServiceLevel
from router.reporting.alarm import AlarmChange, ServiceLevelAlarm
from router.reporting.intervals import Interval, interval_start, interval_starts, named_range
from router.reporting.report import records, render_csv, render_json, render_table
from router.service_level_watch import ServiceLevelWatch

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

    @pytest.mark.parametrize(
        ("name", "start", "end"),
        [
            ("today", datetime(2026, 3, 4, tzinfo=UTC), datetime(2026, 3, 5, tzinfo=UTC)),
            ("yesterday", datetime(2026, 3, 3, tzinfo=UTC), datetime(2026, 3, 4, tzinfo=UTC)),
            ("this-month", datetime(2026, 3, 1, tzinfo=UTC), datetime(2026, 4, 1, tzinfo=UTC)),
            ("last-month", datetime(2026, 2, 1, tzinfo=UTC), datetime(2026, 3, 1, tzinfo=UTC)),
            ("2025-12", datetime(2025, 12, 1, tzinfo=UTC), datetime(2026, 1, 1, tzinfo=UTC)),
            ("2026-02-28", datetime(2026, 2, 28, tzinfo=UTC), datetime(2026, 3, 1, tzinfo=UTC)),
        ],
    )
    def test_named_ranges(self, name: str, start: datetime, end: datetime) -> None:
        assert named_range(name, T0) == (start, end)

    def test_unknown_range_says_what_is_accepted(self) -> None:
        with pytest.raises(ValueError, match="today, yesterday"):
            named_range("tomorrow", T0)


class TestAlarm:
    def test_raised_below_seventy_cleared_at_seventy(self) -> None:
        alarm = ServiceLevelAlarm()
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
        watch = ServiceLevelWatch(rolling, clock=lambda: now[0])
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


class TestRendering:
    TABLE = (
        ("interval", "channel", "offered", "service_level", "asa"),
        [
            (datetime(2026, 3, 4, 14, tzinfo=UTC), "phone", 12, 0.8333, 4.25),
            (datetime(2026, 3, 4, 14, 15, tzinfo=UTC), "chat", 3, None, None),
        ],
    )

    def test_terminal_table_aligns_numbers_right(self) -> None:
        lines = render_table(self.TABLE).splitlines()
        assert lines[0].split() == ["interval", "channel", "offered", "service_level", "asa"]
        assert lines[2].startswith("2026-03-04 14:00  phone")
        assert lines[3].endswith("-    -")
        assert len({len(line) for line in lines[:3]}) == 1

    def test_csv_keeps_full_precision_and_iso_times(self) -> None:
        rows = list(csv.reader(io.StringIO(render_csv(self.TABLE))))
        assert rows[1] == ["2026-03-04T14:00:00+00:00", "phone", "12", "0.8333", "4.25"]
        assert rows[2][3:] == ["", ""]

    def test_json(self) -> None:
        document = json.loads(render_json({"rows": records(self.TABLE)}))
        assert document["rows"][0]["interval"] == "2026-03-04T14:00:00+00:00"
        assert document["rows"][1]["service_level"] is None
