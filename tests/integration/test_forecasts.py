"""Forecasts from a synthetic history written into the router's own tables (the
generator of scenarios/history.py), through the reporting layer with its worker process.

Four weeks of hourly phone contacts with a daily and a weekly cycle and Poisson noise:
the last week is forecast from the three before it, stored, and read back as accuracy.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import asyncpg
import pytest

from router.domain import Channel, InvalidArgument
from router.errors import NotEnoughHistory
from router.reporting.forecasting import MIN_HISTORY_DAYS, Compared, ForecastRequest, wape
from router.reporting.intervals import Interval
from router.store import Store
from scenarios.history import FIRST_DAY, History, last_week_trial, reporting_at, write_history


@pytest.fixture
async def history(db: asyncpg.Connection) -> History:
    return await write_history(db, 4, Interval.HOUR, peak_per_hour=80.0, seed=7)


def request(start: datetime, **changes: object) -> ForecastRequest:
    fields: dict[str, object] = {
        "channel": Channel.PHONE,
        "interval": Interval.HOUR,
        "horizon_days": 7,
        "start": start,
        "history_days": 21,
    }
    fields.update(changes)
    return ForecastRequest(**fields)  # type: ignore[arg-type]


class TestForecast:
    async def test_beats_seasonal_naive_on_a_seasonal_history(
        self, store: Store, history: History
    ) -> None:
        """The last week's forecast has a lower WAPE than the same hour a week earlier."""
        trial = await last_week_trial(store, history, Interval.HOUR)
        assert trial.forecast_wape < trial.naive_wape
        assert abs(trial.bias) < 0.1

    async def test_is_stored_as_made_and_measured_against_what_was_stored(
        self, store: Store, history: History, db: asyncpg.Connection
    ) -> None:
        """The rows stored are the rows answered; accuracy compares them, not a new fit."""
        start = history.end - timedelta(weeks=1)
        reporting = reporting_at(store, history.end)
        try:
            forecast = await reporting.forecast(request(start))
            stored = await db.fetch(
                "SELECT interval_start, contacts, contacts_lower, contacts_upper, aht_seconds "
                "FROM forecast_intervals WHERE forecast_id = $1 ORDER BY interval_start",
                forecast.forecast_id,
            )
            accuracy = await reporting.forecast_accuracy(
                Channel.PHONE, Interval.HOUR, start, history.end
            )
        finally:
            await reporting.close()
        assert [tuple(r) for r in stored] == [
            (r.interval_start, r.contacts, r.contacts_lower, r.contacts_upper, r.aht_seconds)
            for r in forecast.rows
        ]
        assert len(forecast.rows) == 7 * 24
        assert forecast.rows[0].interval_start == start
        assert all(r.contacts_lower <= r.contacts <= r.contacts_upper for r in forecast.rows)
        # Talk 200 s + up to 60 s at the peaks, 40 s of wrap-up: about 285 s weighted.
        weighted = sum(r.aht_seconds * r.contacts for r in forecast.rows)
        assert 250 < weighted / sum(r.contacts for r in forecast.rows) < 320
        assert all(r.aht_seconds >= 0 for r in forecast.rows)
        assert [c.forecast for c in accuracy.intervals] == [r.contacts for r in forecast.rows]
        assert {c.forecast_id for c in accuracy.intervals} == {forecast.forecast_id}
        assert len(accuracy.days) == 7
        assert sum(d.actual for d in accuracy.days) == sum(c.actual for c in accuracy.intervals)
        assert accuracy.wape == pytest.approx(wape(accuracy.intervals))
        manual = [Compared(c.start, c.forecast, c.actual) for c in accuracy.intervals]
        expected_bias = sum(c.forecast - c.actual for c in manual) / sum(c.actual for c in manual)
        assert accuracy.bias == pytest.approx(expected_bias)

    async def test_history_shorter_than_the_seasonality_needs_is_a_precondition(
        self, store: Store, history: History
    ) -> None:
        """Ten days recorded before the start: NotEnoughHistory says 15 are needed."""
        start = FIRST_DAY + timedelta(days=10)
        reporting = reporting_at(store, history.end)
        try:
            with pytest.raises(NotEnoughHistory) as refused:
                await reporting.forecast(request(start))
        finally:
            await reporting.close()
        assert f"at least {MIN_HISTORY_DAYS} days" in str(refused.value)
        assert refused.value.metadata["neededDays"] == str(MIN_HISTORY_DAYS)
        assert refused.value.metadata["recordedDays"] == "10.0"

    async def test_no_history_at_all_is_a_precondition(self, store: Store) -> None:
        """A channel with no contact recorded cannot be forecast."""
        now = datetime(2026, 3, 2, 12, tzinfo=UTC)
        reporting = reporting_at(store, now)
        try:
            with pytest.raises(NotEnoughHistory, match="holds none"):
                await reporting.forecast(request(now, channel=Channel.EMAIL))
        finally:
            await reporting.close()

    async def test_a_horizon_across_a_change_to_summer_time_has_a_23_hour_day(
        self, store: Store, db: asyncpg.Connection
    ) -> None:
        """In Paris the week of 2026-03-29 has one hour fewer: the forecast's rows are
        every real local hour once, and its history is binned on the local clock."""
        paris = ZoneInfo("Europe/Paris")
        start = datetime(2026, 3, 23, tzinfo=paris).astimezone(UTC)
        await write_history(
            db, 3, Interval.HOUR, peak_per_hour=40.0, start=start - timedelta(weeks=3)
        )
        reporting = reporting_at(store, start, "Europe/Paris")
        try:
            forecast = await reporting.forecast(request(start, history_days=21))
        finally:
            await reporting.close()
        starts = [r.interval_start for r in forecast.rows]
        assert len(starts) == 7 * 24 - 1
        assert starts == [start + timedelta(hours=i) for i in range(7 * 24 - 1)]
        assert forecast.time_zone == "Europe/Paris"
        local_hours = [s.astimezone(paris).hour for s in starts[: 24 * 7 - 1]]
        assert 2 not in local_hours[6 * 24 : 6 * 24 + 23]  # 2026-03-29 has no 02:00

    async def test_a_start_after_now_is_refused(self, store: Store, history: History) -> None:
        """A forecast starts where the recorded history ends: not in a later interval."""
        reporting = reporting_at(store, history.end)
        try:
            with pytest.raises(InvalidArgument) as refused:
                await reporting.forecast(request(history.end + timedelta(hours=2)))
        finally:
            await reporting.close()
        assert refused.value.field == "start"
