"""Synthetic contact histories with known daily and weekly seasonality, and the forecast's
WAPE on them against a seasonal-naive baseline.

    ROUTER_TEST_DATABASE_URL=postgresql://postgres@127.0.0.1:5432/postgres \\
        .venv/bin/python -m scenarios.history          # --weeks 6 --seed 1 --keep

For each interval length (15 and 30 minutes, an hour) the command creates a scratch
database (`forecast_history_<random>`, dropped at the end unless --keep), writes several
weeks of phone contacts into the router's own `contacts` table with COPY (each one
queued, answered, ended and completed, so report_contacts counts it as the router's
own), then, through the router's reporting layer (router.reporting.Reporting with the
clock at the end of the history), forecasts the last week from the weeks before it.
The forecast is stored as GetForecast stores it, and its accuracy is read back with
the same code as GetForecastAccuracy. The baseline is seasonal-naive: each interval as
the same interval one week earlier.

The arrivals are Poisson with rate base x day shape x weekday factor: a working-day
curve (a morning and an afternoon peak, a quiet night), Saturdays at 60% and Sundays at
40%, a slow growth of 1% a week; handle time 240 s + 60 s at the peaks, with
exponential noise per contact. Poisson noise is the irreducible part: the table also
prints the WAPE of the true rate (`oracle`), what no forecast beats on average.
"""

from __future__ import annotations

import argparse
import asyncio
import math
import os
import random
import sys
import uuid
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import asyncpg
from contact_router_tools.tables import Figure, number, percent, render_table

from router import logs
from router.domain import Channel, RoutingPolicy
from router.domain.rolling import RollingServiceLevel
from router.reporting.forecasting import Compared, Forecast, ForecastRequest, wape
from router.reporting.intervals import Interval
from router.reporting.reporting import Reporting
from router.service_level_watch import ServiceLevelWatch
from router.store import Store
from router.store.database_url import with_database

WEEKDAY_FACTOR = (1.0, 0.97, 0.95, 0.97, 1.05, 0.6, 0.4)
"""Monday first: Saturday 60%, Sunday 40% of a Monday."""
GROWTH_PER_WEEK = 0.01
FIRST_DAY = datetime(2026, 1, 5, tzinfo=UTC)  # a Monday
COLUMNS = (
    "id",
    "idempotency_key",
    "channel",
    "customer_id",
    "state",
    "queued_at",
    "offered_at",
    "answered_at",
    "ended_at",
    "completed_at",
    "agent_id",
    "offer_count",
    "updated_at",
)


def day_shape(hour: float) -> float:
    """Share of the peak rate at `hour` (0 to 24): quiet at night, peaks at 10:30 and
    15:00, a dip at lunch."""
    morning = math.exp(-(((hour - 10.5) / 2.0) ** 2))
    afternoon = 0.85 * math.exp(-(((hour - 15.0) / 2.2) ** 2))
    return 0.03 + morning + afternoon


def rate(at: datetime, peak_per_hour: float) -> float:
    """Expected contacts per hour at `at` (UTC; the synthetic center runs in UTC)."""
    hour = at.hour + at.minute / 60
    weeks = (at - FIRST_DAY) / timedelta(weeks=1)
    return (
        peak_per_hour
        * day_shape(hour)
        * WEEKDAY_FACTOR[at.weekday()]
        * (1 + GROWTH_PER_WEEK * weeks)
    )


@dataclass(frozen=True, slots=True)
class History:
    start: datetime
    end: datetime
    expected: dict[datetime, float]
    """The true mean contacts of each interval (what an oracle forecasts)."""
    contacts: int


def contact_rows(
    start: datetime,
    end: datetime,
    interval: Interval,
    peak_per_hour: float,
    seed: int,
) -> tuple[list[tuple[object, ...]], dict[datetime, float]]:
    """Every contact of [start, end) as a `contacts` row (COLUMNS), and the true mean
    per interval."""
    draw = random.Random(seed)
    length = interval.fixed_length
    assert length is not None
    hours = length / timedelta(hours=1)
    rows: list[tuple[object, ...]] = []
    expected: dict[datetime, float] = {}
    current = start
    while current < end:
        mean = rate(current + length / 2, peak_per_hour) * hours
        expected[current] = mean
        for _ in range(_poisson(draw, mean)):
            queued = current + timedelta(seconds=draw.uniform(0, length.total_seconds()))
            answered = queued + timedelta(seconds=draw.expovariate(1 / 15))
            busy = 60 * day_shape(queued.hour + queued.minute / 60)
            talk = draw.expovariate(1 / (200 + busy))
            ended = answered + timedelta(seconds=talk)
            completed = ended + timedelta(seconds=draw.expovariate(1 / 40))
            contact_id = uuid.UUID(int=draw.getrandbits(128))
            rows.append(
                (
                    contact_id,
                    f"history-{contact_id}",
                    Channel.PHONE.value,
                    f"customer-{draw.randrange(100_000)}",
                    "completed",
                    queued,
                    answered,
                    answered,
                    ended,
                    completed,
                    f"agent-{draw.randrange(40)}",
                    1,
                    completed,
                )
            )
        current += length
    return rows, expected


def _poisson(draw: random.Random, mean: float) -> int:
    """A Poisson draw (Knuth's method in pieces of 30, which keeps exp() in range)."""
    count = 0
    while mean > 0:
        piece = min(mean, 30.0)
        mean -= piece
        limit, product = math.exp(-piece), draw.random()
        while product > limit:
            count += 1
            product *= draw.random()
    return count


async def write_history(
    db: asyncpg.Connection,
    weeks: int,
    interval: Interval,
    *,
    peak_per_hour: float = 120.0,
    seed: int = 1,
    start: datetime = FIRST_DAY,
) -> History:
    """`weeks` weeks of phone contacts from `start` (an interval start), written into
    `contacts` with COPY."""
    end = start + timedelta(weeks=weeks)
    rows, expected = contact_rows(start, end, interval, peak_per_hour, seed)
    await db.copy_records_to_table("contacts", records=rows, columns=COLUMNS)
    await db.execute("ANALYZE contacts")
    return History(start, end, expected, len(rows))


def reporting_at(store: Store, now: datetime, time_zone: str = "UTC") -> Reporting:
    """The router's reporting layer on `store`, its clock stopped at `now`, the center in
    `time_zone`."""
    policy = RoutingPolicy(time_zone=time_zone)
    watch = ServiceLevelWatch(RollingServiceLevel(policy), policy, clock=lambda: now)
    return Reporting(store.reports, policy, watch, clock=lambda: now)


@dataclass(frozen=True, slots=True)
class Trial:
    interval: Interval
    weeks: int
    contacts: int
    forecast_wape: float
    naive_wape: float
    oracle_wape: float
    bias: float
    coverage: float
    level: float
    seconds: float


async def last_week_trial(store: Store, history: History, interval: Interval) -> Trial:
    """Forecast the history's last week from the weeks before; WAPE against the stored
    forecast (GetForecastAccuracy's code), seasonal-naive and the true rate."""
    reporting = reporting_at(store, history.end)
    try:
        start = history.end - timedelta(weeks=1)
        days = (start - history.start).days
        began = asyncio.get_running_loop().time()
        forecast = await reporting.forecast(
            ForecastRequest(
                channel=Channel.PHONE,
                interval=interval,
                horizon_days=7,
                start=start,
                history_days=days,
            )
        )
        seconds = asyncio.get_running_loop().time() - began
        accuracy = await reporting.forecast_accuracy(
            Channel.PHONE, interval, start, history.end, forecast.forecast_id
        )
    finally:
        await reporting.close()
    actual = {r.start: r.actual for r in accuracy.intervals}
    recorded = {h.interval_start: h.contacts for h in forecast.history}
    naive = [Compared(s, recorded.get(s - timedelta(weeks=1), 0), a) for s, a in actual.items()]
    oracle = [Compared(s, history.expected[s], a) for s, a in actual.items()]
    assert accuracy.wape is not None
    assert accuracy.bias is not None
    return Trial(
        interval=interval,
        weeks=days // 7,
        contacts=history.contacts,
        forecast_wape=accuracy.wape,
        naive_wape=wape(naive) or 0.0,
        oracle_wape=wape(oracle) or 0.0,
        bias=accuracy.bias,
        coverage=coverage(forecast, actual),
        level=forecast.level,
        seconds=seconds,
    )


def coverage(forecast: Forecast, actual: dict[datetime, float]) -> float:
    """Share of the intervals whose actual count lies in the prediction interval."""
    inside = [
        r.contacts_lower <= actual[r.interval_start] <= r.contacts_upper
        for r in forecast.rows
        if r.interval_start in actual
    ]
    return sum(inside) / len(inside)


@asynccontextmanager
async def scratch_store(server_url: str, keep: bool) -> AsyncIterator[tuple[Store, str]]:
    """A new, migrated database `forecast_history_<random>` and the store on it."""
    name = f"forecast_history_{uuid.uuid4().hex[:10]}"
    admin = await asyncpg.connect(server_url)
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
        url = with_database(server_url, name)
        store = await Store.open(url)
        try:
            await store.migrate()
            yield store, url
        finally:
            await store.close()
            if not keep:
                await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await admin.close()


def table(trials: Sequence[Trial]) -> str:
    header = ["interval", "weeks", "contacts", "forecast", "naive", "oracle", "bias"]
    header += ["in PI", "fit s"]
    rows = [
        [
            t.interval.value,
            t.weeks,
            t.contacts,
            number(t.forecast_wape, 3),
            number(t.naive_wape, 3),
            number(t.oracle_wape, 3),
            Figure(t.bias, digits=3, signed=True),
            percent(t.coverage, 0),
            number(t.seconds, 1),
        ]
        for t in trials
    ]
    return render_table((header, rows))


async def main(args: argparse.Namespace) -> int:
    logs.configure("console", "warning")
    server_url = args.database_url or os.environ.get(
        "ROUTER_TEST_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
    )
    trials = []
    for interval in (Interval.MINUTES_15, Interval.MINUTES_30, Interval.HOUR):
        async with scratch_store(server_url, args.keep) as (store, url):
            db = await asyncpg.connect(url)
            try:
                history = await write_history(db, args.weeks, interval, seed=args.seed)
            finally:
                await db.close()
            trial = await last_week_trial(store, history, interval)
            trials.append(trial)
            if args.keep:
                print(f"kept {url}", file=sys.stderr)
    print(
        f"WAPE of the last week's forecast, {args.weeks} weeks generated (seed {args.seed}); "
        "naive = the same interval a week earlier; oracle = the true rate; in PI = share "
        f"of intervals inside the {trials[0].level:.0%} prediction interval"
    )
    print(table(trials))
    beaten = all(t.forecast_wape < t.naive_wape for t in trials)
    print("the forecast beats seasonal-naive" if beaten else "seasonal-naive is NOT beaten")
    return 0 if beaten else 1


def parse(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m scenarios.history",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--weeks", type=int, default=6, help="weeks generated (default 6)")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument(
        "--database-url",
        help="a PostgreSQL server (its scratch databases are created there); default "
        "ROUTER_TEST_DATABASE_URL or 127.0.0.1:5432",
    )
    parser.add_argument("--keep", action="store_true", help="keep the scratch databases")
    return parser.parse_args(argv)


if __name__ == "__main__":
    sys.exit(asyncio.run(main(parse())))
