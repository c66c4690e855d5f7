"""Forecasts of contacts and handle time per interval: the pure part (no clock, database
or numerical library), and accuracy against what happened.

A forecast is learned on the center's **wall clock**: the history is laid on a grid of
local interval starts (96 a day at 15 minutes, every day, whatever daylight saving
does), so that "Monday 09:00" is the same slot of the daily and weekly cycles in summer
and in winter. A local time that does not exist (the hour skipped in spring) takes the
slot before it; one that happens twice (the hour repeated in autumn) is the mean of its
two intervals, and is forecast for both. The model itself (`forecast_model`, numpy and
statsmodels) runs in the reporting worker process, never on the router's event loop.

Accuracy: WAPE = sum |actual - forecast| / sum actual, bias = (sum forecast - sum
actual) / sum actual (above 0: the forecast was too high), both over the intervals of a
range that have a stored forecast.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from router.domain.channel import Channel
from router.reporting.intervals import Interval

MIN_HISTORY_DAYS = 15
"""Weekly seasonality is learned from more than two weeks (with one, a weekday's
pattern cannot be told from that day's noise; and statsmodels' MSTL leaves out a period
that does not fit more than twice in the history: at exactly 14 days the weekly cycle was
dropped and a synthetic hourly forecast's WAPE was 0.51 against the seasonal-naive 0.18;
at 15 days, 0.17 against 0.18)."""
DEFAULT_HISTORY_DAYS = 56
MAX_HISTORY_DAYS = 91
"""Thirteen weeks: the fit stays around a second at 15 minutes (8,736 points)."""
MAX_HORIZON_DAYS = 56
"""Eight weeks ahead: past that a plan needs hiring, not interval forecasts."""
DEFAULT_LEVEL = 0.8
MAX_ACCURACY_DAYS = 92

ACCURACY_FORMULA = (
    "WAPE = sum |actual - forecast| / sum actual; bias = (sum forecast - sum actual) / "
    "sum actual (above 0: forecast too high); actual = contacts offered (queued), over "
    "the intervals with a stored forecast, each compared with the stored forecast whose "
    "history ended latest at or before the interval began (the latest made among those)"
)


@dataclass(frozen=True, slots=True)
class ForecastQuestion:
    """What the worker process fits and forecasts: series on the local grid."""

    per_day: int
    """Intervals per (wall-clock) day: the daily period; the weekly one is 7 times it."""
    horizon: int
    """Grid slots to forecast."""
    level: float
    """Coverage of the prediction interval, e.g. 0.8."""
    contacts: tuple[float, ...]
    aht: tuple[float | None, ...]
    """None where no contact of the interval was completed."""


@dataclass(frozen=True, slots=True)
class ForecastValues:
    """The worker's answer, one value per grid slot of the horizon."""

    contacts: tuple[float, ...]
    lower: tuple[float, ...]
    upper: tuple[float, ...]
    aht: tuple[float, ...]
    model: str


@dataclass(frozen=True, slots=True)
class ForecastInterval:
    interval_start: datetime
    contacts: float
    contacts_lower: float
    contacts_upper: float
    aht_seconds: float


@dataclass(frozen=True, slots=True)
class HistoryInterval:
    interval_start: datetime
    contacts: int
    aht_seconds: float | None


def local_grid(
    start: datetime, slots: int, length: timedelta, zone: ZoneInfo
) -> list[tuple[datetime, list[datetime]]]:
    """`slots` local wall-clock interval starts from `start`'s local time, each with the
    UTC instants it is (none in a skipped hour, two in a repeated one)."""
    first = start.astimezone(zone).replace(tzinfo=None)
    grid = []
    for index in range(slots):
        wall = first + index * length
        instants = []
        for fold in (0, 1):
            instant = wall.replace(tzinfo=zone, fold=fold).astimezone(UTC)
            if instant.astimezone(zone).replace(tzinfo=None) == wall and instant not in instants:
                instants.append(instant)
        grid.append((wall, instants))
    return grid


def slots_between(start: datetime, end: datetime, length: timedelta, zone: ZoneInfo) -> int:
    """Wall-clock slots from `start`'s local time up to `end`'s."""
    span = end.astimezone(zone).replace(tzinfo=None) - start.astimezone(zone).replace(tzinfo=None)
    return max(0, math.ceil(span / length))


def history_series(
    grid: Sequence[tuple[datetime, list[datetime]]],
    recorded: Mapping[datetime, tuple[int, float | None]],
) -> tuple[list[float], list[float | None]]:
    """Contacts and AHT per grid slot from the recorded (offered, AHT) per UTC interval
    start: an interval without a row had no contacts; a skipped local hour repeats the
    slot before it, a repeated one is the mean of its two intervals."""
    contacts: list[float] = []
    aht: list[float | None] = []
    for _, instants in grid:
        if not instants:
            contacts.append(contacts[-1] if contacts else 0.0)
            aht.append(aht[-1] if aht else None)
            continue
        figures = [recorded.get(i, (0, None)) for i in instants]
        contacts.append(sum(f[0] for f in figures) / len(figures))
        known = [f[1] for f in figures if f[1] is not None]
        aht.append(sum(known) / len(known) if known else None)
    return contacts, aht


def forecast_rows(
    grid: Sequence[tuple[datetime, list[datetime]]], values: ForecastValues
) -> list[ForecastInterval]:
    """One row per UTC interval of the horizon's grid (a repeated local slot gives two)."""
    rows: list[ForecastInterval] = []
    for (_, instants), contacts, lower, upper, aht in zip(
        grid, values.contacts, values.lower, values.upper, values.aht, strict=True
    ):
        rows.extend(ForecastInterval(i, contacts, lower, upper, aht) for i in instants)
    return rows


# ------------------------------------------------------------------- accuracy


@dataclass(frozen=True, slots=True)
class Compared:
    """One interval (or day): what was forecast against what happened."""

    start: datetime
    forecast: float
    actual: float
    forecast_aht_seconds: float | None = None
    actual_aht_seconds: float | None = None
    forecast_id: int | None = None

    @property
    def wape(self) -> float | None:
        return wape([self])

    @property
    def bias(self) -> float | None:
        return bias([self])


def wape(rows: Iterable[Compared]) -> float | None:
    """sum |actual - forecast| / sum actual; None when nothing happened."""
    rows = list(rows)
    actual = sum(r.actual for r in rows)
    if actual <= 0:
        return None
    return sum(abs(r.actual - r.forecast) for r in rows) / actual


def bias(rows: Iterable[Compared]) -> float | None:
    """(sum forecast - sum actual) / sum actual; None when nothing happened."""
    rows = list(rows)
    actual = sum(r.actual for r in rows)
    if actual <= 0:
        return None
    return (sum(r.forecast for r in rows) - actual) / actual


def by_day(rows: Iterable[Compared], zone: ZoneInfo) -> list[Compared]:
    """The intervals summed into local days (the day's start as its UTC instant)."""
    days: dict[datetime, list[Compared]] = {}
    for row in rows:
        local = row.start.astimezone(zone)
        midnight = datetime(local.year, local.month, local.day, tzinfo=zone).astimezone(UTC)
        days.setdefault(midnight, []).append(row)
    return [
        Compared(
            start=day,
            forecast=sum(r.forecast for r in members),
            actual=sum(r.actual for r in members),
        )
        for day, members in sorted(days.items())
    ]


@dataclass(frozen=True, slots=True)
class ForecastRequest:
    """A forecast question, checked against forecasting's bounds by the servicer."""

    channel: Channel
    interval: Interval
    """15 or 30 minutes, or an hour."""
    horizon_days: int
    start: datetime | None
    """None: the current interval."""
    history_days: int = DEFAULT_HISTORY_DAYS
    level: float = DEFAULT_LEVEL


@dataclass(frozen=True, slots=True)
class Forecast:
    forecast_id: int
    made_at: datetime
    rows: list[ForecastInterval]
    history: list[HistoryInterval]
    model: str
    level: float
    time_zone: str


@dataclass(frozen=True, slots=True)
class ForecastAccuracy:
    intervals: list[Compared]
    days: list[Compared]
    wape: float | None
    bias: float | None
    formula: str
    time_zone: str


LIMITATIONS = (
    "no holidays: the router has no calendar of holidays or closures yet, so a holiday "
    "is forecast as an ordinary day of its weekday (and a past holiday is learned as one)"
)
