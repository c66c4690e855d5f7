"""The pure part of forecasts: the local wall-clock grid across daylight-saving changes,
and WAPE and bias."""

from __future__ import annotations

import subprocess
import sys
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from router.reporting.forecasting import (
    Compared,
    ForecastValues,
    bias,
    by_day,
    forecast_rows,
    history_series,
    local_grid,
    slots_between,
    wape,
)

PARIS = ZoneInfo("Europe/Paris")
HOUR = timedelta(hours=1)


class TestLocalGrid:
    def test_a_spring_day_has_a_slot_without_an_instant(self) -> None:
        """2026-03-29 in Paris: 24 wall-clock hours, 02:00 does not exist."""
        start = datetime(2026, 3, 28, 23, tzinfo=UTC)  # local midnight
        grid = local_grid(start, 24, HOUR, PARIS)
        assert len(grid) == 24
        assert [len(instants) for _, instants in grid].count(0) == 1
        assert grid[2][1] == []
        assert grid[3][1] == [datetime(2026, 3, 29, 1, tzinfo=UTC)]

    def test_an_autumn_day_has_a_slot_of_two_intervals(self) -> None:
        """2026-10-25 in Paris: 02:00 happens twice, both are forecast."""
        start = datetime(2026, 10, 24, 22, tzinfo=UTC)
        grid = local_grid(start, 24, HOUR, PARIS)
        assert grid[2][1] == [
            datetime(2026, 10, 25, 0, tzinfo=UTC),
            datetime(2026, 10, 25, 1, tzinfo=UTC),
        ]
        values = ForecastValues((1.0,) * 24, (0.5,) * 24, (2.0,) * 24, (300.0,) * 24, "m")
        rows = forecast_rows(grid, values)
        assert len(rows) == 25
        assert [r.interval_start for r in rows] == [start + i * HOUR for i in range(25)]

    def test_history_means_a_repeated_hour_and_repeats_a_skipped_one(self) -> None:
        autumn = local_grid(datetime(2026, 10, 24, 22, tzinfo=UTC), 4, HOUR, PARIS)
        recorded = {
            datetime(2026, 10, 25, 0, tzinfo=UTC): (10, 300.0),
            datetime(2026, 10, 25, 1, tzinfo=UTC): (20, None),
        }
        contacts, aht = history_series(autumn, recorded)
        assert contacts == [0.0, 0.0, 15.0, 0.0]
        assert aht == [None, None, 300.0, None]
        spring = local_grid(datetime(2026, 3, 28, 23, tzinfo=UTC), 4, HOUR, PARIS)
        contacts, _ = history_series(spring, {datetime(2026, 3, 29, 0, tzinfo=UTC): (7, None)})
        assert contacts == [0.0, 7.0, 7.0, 0.0]

    def test_slots_between_counts_wall_clock_hours(self) -> None:
        """The 23-hour day holds 24 wall-clock slots of the grid (one of them empty)."""
        start, end = datetime(2026, 3, 28, 23, tzinfo=UTC), datetime(2026, 3, 29, 22, tzinfo=UTC)
        assert slots_between(start, end, HOUR, PARIS) == 24


class TestAccuracy:
    def test_wape_and_bias(self) -> None:
        rows = [
            Compared(datetime(2026, 3, 2, h, tzinfo=UTC), f, a)
            for h, f, a in [(9, 10.0, 8.0), (10, 5.0, 10.0), (11, 3.0, 2.0)]
        ]
        assert wape(rows) == pytest.approx((2 + 5 + 1) / 20)
        assert bias(rows) == pytest.approx((18 - 20) / 20)
        assert wape([Compared(rows[0].start, 3.0, 0.0)]) is None
        assert bias([]) is None

    def test_days_are_local(self) -> None:
        """23:30 UTC on 2026-03-02 is already the 3rd in Paris."""
        rows = [
            Compared(datetime(2026, 3, 2, 22, 30, tzinfo=UTC), 1.0, 2.0),
            Compared(datetime(2026, 3, 2, 23, 30, tzinfo=UTC), 3.0, 4.0),
        ]
        days = by_day(rows, PARIS)
        assert [d.start for d in days] == [
            datetime(2026, 3, 1, 23, tzinfo=UTC),
            datetime(2026, 3, 2, 23, tzinfo=UTC),
        ]
        assert [(d.forecast, d.actual) for d in days] == [(1.0, 2.0), (3.0, 4.0)]


def test_the_router_process_does_not_load_the_model() -> None:
    """numpy's and statsmodels' import (seconds) happens in the reporting worker only."""
    code = (
        "import sys, router.api.reporting_service, router.reporting.workers; "
        "print(sorted(m for m in ('statsmodels', 'pandas') if m in sys.modules))"
    )
    loaded = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    assert loaded.strip() == "[]"
