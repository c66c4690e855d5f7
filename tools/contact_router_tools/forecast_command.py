"""`contact-router forecast`: contacts and handle time per interval for the coming days,
learned by the router from its recorded history (ReportingService.GetForecast, which
stores each forecast it makes); with `--accuracy RANGE`, the stored forecasts of a past
range against what happened (GetForecastAccuracy: WAPE and bias per interval and day).
"""

from __future__ import annotations

import argparse
import sys
from datetime import UTC, date, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

from contactrouter.v1 import contact_router_pb2 as pb
from contactrouter.v1 import contact_router_pb2_grpc as pb_grpc

from contact_router_tools.connection import (
    RouterConnection,
    add_format_argument,
    add_router_arguments,
    field_flags,
)
from contact_router_tools.proto_values import CHANNELS, INTERVALS, optional, stamp, when
from contact_router_tools.ranges import NAMES, named_range, router_zone
from contact_router_tools.tables import (
    Table,
    number,
    percent,
    records,
    render_csv,
    render_json,
    render_table,
    seconds,
)
from router.errors import ConfigError
from router.reporting.intervals import Interval, local_midnight, next_start

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

FLAGS = field_flags(
    {
        "channel": "--channel",
        "interval": "--interval",
        "horizon_days": "--days",
        "start": "--start",
        "history_days": "--history-days",
        "level": "--level",
        "end": "--accuracy",
        "forecast_id": "--forecast-id",
    }
)


def add_forecast_arguments(parser: argparse.ArgumentParser) -> None:
    add = parser.add_argument
    add("--channel", choices=list(CHANNELS), default="phone", help="channel (default phone)")
    add(
        "--interval",
        choices=("15m", "30m", "hour"),
        default="30m",
        help="length of each interval (default 30m)",
    )
    add("--days", type=int, default=14, help="days to forecast, 1 to 56 (default 14)")
    add(
        "--start",
        metavar="WHEN",
        help="first interval to forecast, ISO 8601 (a time without offset is in the router's "
        "zone); default the current interval; a past one is a backtest",
    )
    add(
        "--history-days",
        type=int,
        default=0,
        metavar="DAYS",
        help="days of history to learn from, 14 to 91 (default 56)",
    )
    add("--level", type=float, default=0.0, help="prediction interval coverage (default 0.8)")
    add(
        "--accuracy",
        metavar="RANGE",
        help=f"instead: stored forecasts against what happened in RANGE ({NAMES}, or "
        "YYYY-MM-DD..YYYY-MM-DD, both days included)",
    )
    add("--forecast-id", type=int, default=0, help="with --accuracy: this forecast only")
    add(
        "--chart",
        type=Path,
        metavar="FILE.png",
        help="also draw history, forecast and prediction interval (with --accuracy: forecast "
        "against actual)",
    )
    add_format_argument(parser, "the intervals")
    add_router_arguments(parser)


def accuracy_range(name: str, now: datetime, zone: ZoneInfo) -> tuple[datetime, datetime]:
    """A named range (as for report), or FIRST..LAST days, both included."""
    if ".." not in name:
        return named_range(name, now, zone)
    first, _, last = name.partition("..")
    try:
        start = local_midnight(date.fromisoformat(first), zone)
        end = next_start(local_midnight(date.fromisoformat(last), zone), Interval.DAY, zone)
    except ValueError:
        raise ValueError(f"unknown range {name!r}: use YYYY-MM-DD..YYYY-MM-DD") from None
    if end <= start:
        raise ValueError(f"{name!r}: the last day is before the first")
    return start, end


def forecast_table(response: pb.GetForecastResponse, zone: ZoneInfo) -> Table:
    header = ["interval", "contacts", "lower", "upper", "aht_s"]
    rows = [
        [
            when(r.interval_start).astimezone(zone),
            number(r.contacts, 1),
            number(r.contacts_lower, 1),
            number(r.contacts_upper, 1),
            seconds(r.aht_seconds),
        ]
        for r in response.rows
    ]
    return header, rows


def accuracy_tables(response: pb.GetForecastAccuracyResponse, zone: ZoneInfo) -> dict[str, Table]:
    def row(r: pb.ForecastAccuracyRow, interval: bool) -> list[Any]:
        values: list[Any] = [
            when(r.start).astimezone(zone),
            number(r.forecast_contacts, 1),
            r.actual_contacts,
            percent(optional(r, "wape")),
            percent(optional(r, "bias"), signed=True),
        ]
        if interval:
            values += [
                seconds(optional(r, "forecast_aht_seconds")),
                seconds(optional(r, "actual_aht_seconds")),
                r.forecast_id,
            ]
        return values

    common = ["forecast", "actual", "wape", "bias"]
    return {
        "intervals": (
            ["interval", *common, "forecast_aht_s", "actual_aht_s", "forecast_id"],
            [row(r, True) for r in response.intervals],
        ),
        "days": (["day", *common], [row(r, False) for r in response.days]),
    }


def _start(text: str, zone: ZoneInfo) -> datetime:
    try:
        value = datetime.fromisoformat(text)
    except ValueError as error:
        raise ConfigError(f"--start: {error}") from None
    return value.replace(tzinfo=zone) if value.tzinfo is None else value


async def run_forecast(args: argparse.Namespace) -> int:
    router = RouterConnection.from_args(args)
    async with router.channel() as channel:
        stub = pb_grpc.ReportingServiceStub(channel)
        status = await router.call(stub.GetQueueStatus, pb.GetQueueStatusRequest())
        zone = router_zone(status.time_zone)
        if args.accuracy is not None:
            try:
                start, end = accuracy_range(args.accuracy, datetime.now(UTC), zone)
            except ValueError as error:
                raise ConfigError(f"--accuracy: {error}") from None
            asked = pb.GetForecastAccuracyRequest(
                channel=CHANNELS[args.channel],
                interval=INTERVALS[args.interval],
                start=stamp(start),
                end=stamp(end),
                forecast_id=args.forecast_id,
            )
            accuracy = await router.call(stub.GetForecastAccuracy, asked, flag_of=FLAGS)
            return _print_accuracy(args, accuracy, zone)
        request = pb.GetForecastRequest(
            channel=CHANNELS[args.channel],
            interval=INTERVALS[args.interval],
            horizon_days=args.days,
            history_days=args.history_days,
            level=args.level,
        )
        if args.start is not None:
            request.start.CopyFrom(stamp(_start(args.start, zone)))
        response = await router.call(stub.GetForecast, request, flag_of=FLAGS)
    table = forecast_table(response, zone)
    if args.format == "csv":
        sys.stdout.write(render_csv(table))
    elif args.format == "json":
        document = {
            "channel": args.channel,
            "forecast_id": response.forecast_id,
            "made_at": when(response.made_at),
            "model": response.model,
            "level": response.level,
            "time_zone": response.time_zone,
            "limitations": response.limitations,
            "intervals": records(table),
        }
        sys.stdout.write(render_json(document))
    else:
        print(
            f"Forecast {response.forecast_id} of {args.channel} contacts per {args.interval} "
            f"({response.time_zone}), {response.level:.0%} prediction interval"
        )
        print(response.model)
        print(f"Not included: {response.limitations}")
        print()
        print(render_table(table))
        total = sum(r.contacts for r in response.rows)
        print(f"\n{total:,.0f} contacts over {args.days} days")
    if args.chart is not None:
        _save(forecast_figure(response, zone, args.channel), args.chart)
    return 0


def _print_accuracy(
    args: argparse.Namespace, response: pb.GetForecastAccuracyResponse, zone: ZoneInfo
) -> int:
    tables = accuracy_tables(response, zone)
    if args.format == "csv":
        sys.stdout.write(render_csv(tables["intervals"]))
    elif args.format == "json":
        document = {
            "channel": args.channel,
            "wape": optional(response, "wape"),
            "bias": optional(response, "bias"),
            "formula": response.formula,
            "time_zone": response.time_zone,
            "days": records(tables["days"]),
            "intervals": records(tables["intervals"]),
        }
        sys.stdout.write(render_json(document))
    else:
        print(f"Forecast accuracy of {args.channel} per {args.interval} ({response.time_zone})")
        print(response.formula)
        print()
        print(render_table(tables["days"]))
        print()
        print(render_table(tables["intervals"]))
        print(
            f"\nWAPE {percent(optional(response, 'wape'))}, "
            f"bias {percent(optional(response, 'bias'), signed=True)} "
            f"over {len(response.intervals)} intervals"
        )
    if args.chart is not None:
        _save(accuracy_figure(response, zone, args.channel), args.chart)
    return 0


def _save(figure: Figure, path: Path) -> None:
    import matplotlib.pyplot as plt

    try:
        figure.savefig(path)
    except OSError as error:
        raise ConfigError(f"--chart {path}: {error.strerror or error}") from None
    finally:
        plt.close(figure)


def _numbers(times: list[datetime]) -> list[float]:
    """Times as matplotlib's date numbers (the axes' types take no datetimes)."""
    import matplotlib.dates as mdates

    return [float(mdates.date2num(t)) for t in times]  # type: ignore[no-untyped-call]


def _date_axis(axes: Axes, zone: ZoneInfo) -> None:
    import matplotlib.dates as mdates

    locator = mdates.AutoDateLocator(tz=zone)  # type: ignore[no-untyped-call]
    axes.xaxis.set_major_locator(locator)
    axes.xaxis.set_major_formatter(
        mdates.ConciseDateFormatter(locator, tz=zone)  # type: ignore[no-untyped-call]
    )


def forecast_figure(response: pb.GetForecastResponse, zone: ZoneInfo, channel: str) -> Figure:
    """History (the last four weeks of it), forecast and its prediction interval."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(figsize=(12, 4.5), layout="constrained")
    history = [(when(h.interval_start).astimezone(zone), h.contacts) for h in response.history]
    if response.rows:
        first = when(response.rows[0].interval_start)
        history = [(t, c) for t, c in history if (first - t).days < 28]
    if history:
        axes.plot(
            _numbers([t for t, _ in history]),
            [c for _, c in history],
            color="#444444",
            linewidth=0.8,
            label="recorded",
        )
    times = _numbers([when(r.interval_start) for r in response.rows])
    axes.fill_between(
        times,
        [r.contacts_lower for r in response.rows],
        [r.contacts_upper for r in response.rows],
        color="#1f77b4",
        alpha=0.25,
        linewidth=0,
        label=f"{response.level:.0%} prediction interval",
    )
    axes.plot(times, [r.contacts for r in response.rows], color="#1f77b4", label="forecast")
    axes.set_ylabel("contacts per interval")
    axes.set_ylim(bottom=0)
    axes.set_title(f"{channel}: forecast {response.forecast_id} ({response.time_zone})")
    _date_axis(axes, zone)
    axes.legend(loc="upper left")
    axes.grid(alpha=0.3)
    return figure


def accuracy_figure(
    response: pb.GetForecastAccuracyResponse, zone: ZoneInfo, channel: str
) -> Figure:
    """Forecast against actual per interval, the range's WAPE and bias in the title."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(figsize=(12, 4.5), layout="constrained")
    times = _numbers([when(r.start) for r in response.intervals])
    axes.plot(
        times, [r.actual_contacts for r in response.intervals], color="#444444", label="actual"
    )
    axes.plot(
        times, [r.forecast_contacts for r in response.intervals], color="#1f77b4", label="forecast"
    )
    axes.set_ylim(bottom=0)
    axes.set_ylabel("contacts per interval")
    axes.set_title(
        f"{channel}: forecast against actual, WAPE {percent(optional(response, 'wape'))}, "
        f"bias {percent(optional(response, 'bias'), signed=True)}"
    )
    _date_axis(axes, zone)
    axes.legend(loc="upper left")
    axes.grid(alpha=0.3)
    return figure
