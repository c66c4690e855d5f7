"""`contact-router staffing`: agents needed per interval (Erlang C, or Erlang A when
callers abandon), from a forecast file or a recorded range, as the router computes them
(ReportingService.GetStaffing); and agents to schedule once shrinkage (breaks, training,
absence) is counted.
"""

from __future__ import annotations

import argparse
import csv
import math
import re
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from contactrouter.v1 import contact_router_pb2 as pb
from contactrouter.v1 import contact_router_pb2_grpc as pb_grpc

from contact_router_tools.connection import (
    FlagOf,
    RouterConnection,
    add_format_argument,
    add_router_arguments,
    field_flags,
)
from contact_router_tools.proto_values import CHANNELS, INTERVALS, optional, stamp, when
from contact_router_tools.ranges import named_range, router_zone
from contact_router_tools.tables import (
    Table,
    for_people,
    records,
    render_csv,
    render_json,
    render_table,
)
from router.errors import ConfigError
from router.reporting.intervals import UTC_ZONE

RATIOS = frozenset(("service_level", "occupancy", "p_wait", "abandon", "measured_sl"))
# The request's fields and the flags that set them, to name a refused field.
FIELDS = {
    "channel": "--channel",
    "interval": "--interval",
    "target_service_level": "--goal",
    "threshold_seconds": "--answer-within",
    "max_occupancy": "--max-occupancy",
    "forecast": "--forecast",
    "history_start": "--history",
    "history_end": "--history",
    "with_abandonment": "--erlang-a",
    "patience_seconds": "--patience",
    "concurrency": "--concurrency",
    "shrinkage": "--shrinkage",
    "channels": "--channels",
}


def _number(text: str) -> float:
    """A finite number (the router checks the ranges, and says which flag is wrong)."""
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"not a finite number: {text!r}")
    return value


def _channel_list(text: str) -> list[str]:
    """phone,chat,email: the channels one blended pool serves."""
    names = [name.strip() for name in text.split(",") if name.strip()]
    unknown = [name for name in names if name not in CHANNELS]
    if unknown or not names:
        raise argparse.ArgumentTypeError(f"not a list of {', '.join(CHANNELS)}: {text!r}")
    return names


def add_staffing_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--channel", choices=list(CHANNELS), default="phone", help="channel to plan (default phone)"
    )
    parser.add_argument(
        "--interval",
        choices=("15m", "30m", "hour"),
        default="30m",
        help="length of each planned interval (default 30m)",
    )
    parser.add_argument(
        "--channels",
        type=_channel_list,
        metavar="LIST",
        help="with --history: staff these channels (e.g. phone,chat,email) as one pool of "
        "blended agents, each counted once, beside the sum of each staffed alone",
    )
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument(
        "--forecast",
        type=Path,
        metavar="FILE.csv",
        help="CSV with columns interval_start (ISO 8601), calls, aht_seconds",
    )
    source.add_argument(
        "--history", metavar="RANGE", help="plan from a recorded range (as for report)"
    )
    add = parser.add_argument
    add(
        "--goal",
        type=_number,
        metavar="SHARE",
        help="service level to reach, in (0, 1) (default: the channel's goal as the router "
        "is configured, ROUTER_<CHANNEL>_SERVICE_LEVEL_GOAL, 0.8 unless set)",
    )
    add(
        "--answer-within",
        type=_number,
        metavar="SECONDS",
        help="the answer threshold the goal counts (default: the channel's answer target)",
    )
    add("--max-occupancy", type=_number, metavar="SHARE", help="highest occupancy, e.g. 0.85")
    add(
        "--erlang-a",
        action="store_true",
        help="let callers abandon (Erlang A); patience from --patience or the history",
    )
    add("--patience", type=_number, metavar="SECONDS", help="callers' mean patience (Erlang A)")
    add(
        "--concurrency",
        type=_number,
        metavar="N",
        help="contacts one agent handles at once (default: the router's capacity for the "
        "channel, e.g. 3 chats; phone is 1)",
    )
    add(
        "--shrinkage",
        type=_number,
        metavar="SHARE",
        help="share of paid time agents are not available (breaks, training, absence), "
        "in [0, 1); agents to schedule = agents needed / (1 - shrinkage) (default 0)",
    )
    add(
        "--chart",
        type=Path,
        metavar="FILE.png",
        help="with --history: draw agents needed against agents ready per interval, "
        "under-staffing shaded and missed service level marked",
    )
    add_format_argument(parser, "the intervals")
    add_router_arguments(parser)


def read_forecast(path: Path) -> list[pb.ForecastInterval]:
    """interval_start,calls,aht_seconds rows from a CSV file; ConfigError naming the
    file and line when it cannot be read."""
    forecast = []
    try:
        with path.open(newline="", encoding="utf-8") as handle:
            for number, row in enumerate(csv.DictReader(handle), start=2):
                try:
                    start = datetime.fromisoformat(row["interval_start"])
                    calls, aht = float(row["calls"]), float(row["aht_seconds"])
                except KeyError as error:
                    raise ConfigError(
                        f"--forecast {path} line {number}: no column {error}: the columns "
                        "are interval_start, calls, aht_seconds"
                    ) from None
                except (TypeError, ValueError) as error:
                    raise ConfigError(f"--forecast {path} line {number}: {error}") from None
                if start.tzinfo is None:
                    start = start.replace(tzinfo=UTC)
                forecast.append(
                    pb.ForecastInterval(interval_start=stamp(start), calls=calls, aht_seconds=aht)
                )
    except (OSError, UnicodeDecodeError) as error:
        reason = error.strerror if isinstance(error, OSError) else str(error)
        raise ConfigError(f"--forecast {path}: {reason or error}") from None
    return forecast


def staffing_request(
    args: argparse.Namespace, now: datetime, zone: ZoneInfo = UTC_ZONE
) -> pb.GetStaffingRequest:
    """The request the flags describe; unset flags leave the router's defaults. A named
    --history range's days begin at midnight in `zone` (the router's)."""
    request = pb.GetStaffingRequest(
        channel=CHANNELS[args.channel],
        interval=INTERVALS[args.interval],
        target_service_level=args.goal or 0.0,
        threshold_seconds=args.answer_within or 0.0,
        max_occupancy=args.max_occupancy or 0.0,
        with_abandonment=args.erlang_a,
        patience_seconds=args.patience or 0.0,
    )
    if args.channels:
        request.channel = CHANNELS[args.channels[0]]
        request.channels.extend(CHANNELS[name] for name in args.channels)
    if args.concurrency is not None:
        request.concurrency = args.concurrency
    if args.shrinkage is not None:
        request.shrinkage = args.shrinkage
    if args.forecast is not None:
        request.forecast.extend(read_forecast(args.forecast))
    else:
        try:
            start, end = named_range(args.history, now, zone)
        except ValueError as error:
            raise ConfigError(f"--history: {error}") from None
        request.history_start.CopyFrom(stamp(start))
        request.history_end.CopyFrom(stamp(end))
    return request


def flags_of(args: argparse.Namespace) -> FlagOf:
    """Refused fields named by flag; a forecast interval by its line in the file."""
    by_field = field_flags(FIELDS)

    def flag_of(field: str) -> str | None:
        interval = re.match(r"forecast\[(\d+)\]", field)
        if interval is not None and args.forecast is not None:
            return f"--forecast {args.forecast} line {int(interval[1]) + 2}"
        return by_field(field)

    return flag_of


def staffing_table(response: pb.GetStaffingResponse, with_abandonment: bool) -> Table:
    """One row per interval, each kept (a plan needs every interval). "contacts" is the
    protobuf field `calls`, which counts chats and emails too; "abandon" is Erlang A's
    only; "callback_erl" is phone from history's (queued callbacks' work, in
    `agents`). An interval without traffic has no service level, ASA or chance of waiting,
    nor an occupancy unless callbacks' work kept its agents busy (None, "-"): a row of
    zeros must not read as a perfect interval."""
    callbacks = any(r.HasField("callback_erlangs") for r in response.rows)
    header = ["interval", "contacts", "aht_s", "erlangs"]
    header += ["callback_erl"] if callbacks else []
    header += ["agents", "scheduled"]
    header += ["service_level", "asa_s", "occupancy", "p_wait"]
    header += ["abandon"] if with_abandonment else []
    actual = has_actual(response)
    blended = any(r.HasField("separate_agents") for r in response.rows)
    header += ["separate"] if blended else []
    header += ["staffed", "gap", "measured_sl", "missed"] if actual else []
    rows: list[list[Any]] = []
    for r in response.rows:
        traffic = r.traffic_erlangs > 0
        # Callbacks' work alone keeps agents busy: their occupancy is real, the calls'
        # service level, ASA and chance of waiting are not.
        busy = traffic or r.callback_erlangs > 0
        figures = [
            r.service_level if traffic else None,
            r.asa_seconds if traffic else None,
            r.occupancy if busy else None,
            r.probability_of_waiting if traffic else None,
        ]
        row: list[Any] = [
            when(r.interval_start),
            r.calls,
            r.aht_seconds,
            r.traffic_erlangs,
            *([r.callback_erlangs] if callbacks else []),
            r.agents,
            r.agents_scheduled,
            *figures,
        ]
        if with_abandonment:
            row.append(optional(r, "abandonment") if traffic else None)
        if blended:
            row.append(r.separate_agents)
        if actual:
            row += [
                r.staffed_agents,
                r.staffed_agents - r.agents,
                optional(r, "measured_service_level"),
                "MISSED" if r.missed else "",
            ]
        rows.append(row)
    return header, rows


def has_actual(response: pb.GetStaffingResponse) -> bool:
    """Whether the rows carry what was actually staffed (a history, not a forecast)."""
    return any(r.HasField("staffed_agents") for r in response.rows)


def staffing_summary(response: pb.GetStaffingResponse) -> str:
    """How under-staffing and missed service level line up, in one line."""
    under = {i for i, r in enumerate(response.rows) if r.staffed_agents < r.agents}
    missed = {i for i, r in enumerate(response.rows) if r.missed}
    return (
        f"Under-staffed (fewer ready than needed): {len(under)} of {len(response.rows)} "
        f"intervals; service level missed: {len(missed)}, of which {len(missed & under)} "
        "under-staffed"
    )


def served(args: argparse.Namespace) -> str:
    """The channel planned, or the blended pool's channels."""
    return " + ".join(args.channels) if args.channels else str(args.channel)


def _agents(count: int) -> str:
    return f"{count} agent" if count == 1 else f"{count} agents"


async def run_staffing(args: argparse.Namespace) -> int:
    # A malformed --history or --forecast is refused before the router is reached.
    request = staffing_request(args, datetime.now(UTC))
    router = RouterConnection.from_args(args)
    async with router.channel() as channel:
        stub = pb_grpc.ReportingServiceStub(channel)
        if args.forecast is None:
            # The history's days are the center's: ask the router its time zone.
            status = await router.call(stub.GetQueueStatus, pb.GetQueueStatusRequest())
            request = staffing_request(args, datetime.now(UTC), router_zone(status.time_zone))
        response = await router.call(stub.GetStaffing, request, flag_of=flags_of(args))
    table = staffing_table(response, request.with_abandonment)
    if args.chart is not None and not has_actual(response):
        raise ConfigError("--chart: draws a --history plan (agents needed against ready)")
    if args.format == "csv":
        sys.stdout.write(render_csv(table))
    elif args.format == "json":
        document = {
            "channel": args.channel,
            "channels": args.channels,
            "model": response.model,
            "target_service_level": response.target_service_level,
            "threshold_seconds": response.threshold_seconds,
            "patience_seconds": response.patience_seconds or None,
            "concurrency": response.concurrency,
            "shrinkage": response.shrinkage,
            "intervals": records(table),
        }
        sys.stdout.write(render_json(document))
    else:
        print(
            f"Agents for {served(args)}: {response.target_service_level:.0%} answered within "
            f"{response.threshold_seconds:g} s, per {args.interval}; each agent handles "
            f"{response.concurrency:g} at once; shrinkage {response.shrinkage:.0%}"
        )
        print(response.model)
        if response.patience_seconds:
            print(f"Callers' mean patience: {response.patience_seconds:.0f} s")
        print()
        print(render_table(for_people(table, RATIOS)))
        needed = max((r.agents for r in response.rows), default=0)
        scheduled = max((r.agents_scheduled for r in response.rows), default=0)
        print(
            f"\nPeak: {_agents(needed)} handling contacts; {scheduled} to schedule "
            "(agents / (1 - shrinkage))"
        )
        if has_actual(response):
            print(staffing_summary(response))
    if args.chart is not None:
        try:
            draw_staffing(
                response,
                args.chart,
                f"Agents for {served(args)}, per {args.interval}",
                LENGTHS[args.interval],
            )
        except OSError as error:
            raise ConfigError(f"--chart {args.chart}: {error.strerror or error}") from None
        print(f"chart written to {args.chart}", file=sys.stderr)
    return 0


LENGTHS = {"15m": timedelta(minutes=15), "30m": timedelta(minutes=30), "hour": timedelta(hours=1)}


def draw_staffing(
    response: pb.GetStaffingResponse, path: Path, title: str, length: timedelta
) -> None:
    """Agents needed (steps) against agents ready (line) per interval, under-staffing
    shaded, and the intervals that missed their service level marked red on the ready
    line: they should fall in the shaded gaps. OSError when it cannot be written."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.dates as mdates
    import matplotlib.pyplot as plt

    if not response.rows:
        raise ConfigError("--chart: no interval to draw")
    times = [when(r.interval_start) for r in response.rows]
    # matplotlib.dates ships without type hints.
    edges: list[float] = mdates.date2num(  # type: ignore[no-untyped-call]
        [*times, times[-1] + length]
    ).tolist()
    starts, ends = edges[:-1], edges[1:]
    needed = [r.agents for r in response.rows]
    ready = [r.staffed_agents for r in response.rows]
    figure, axes = plt.subplots(figsize=(11, 5), dpi=110)
    try:
        axes.stairs(needed, edges, color="#1f77b4", linewidth=1.6, label="agents needed")
        axes.stairs(ready, edges, color="#2ca02c", linewidth=1.6, label="agents ready (actual)")
        for start, end, need, have in zip(starts, ends, needed, ready, strict=True):
            if have < need:
                axes.axvspan(start, end, ymin=0, ymax=1, color="#d62728", alpha=0.08)
        missed = [
            (start + (end - start) / 2, r.staffed_agents)
            for start, end, r in zip(starts, ends, response.rows, strict=True)
            if r.missed
        ]
        if missed:
            axes.plot(
                [m for m, _ in missed],
                [h for _, h in missed],
                "o",
                color="#d62728",
                label=f"service level missed (< {response.target_service_level:.0%})",
            )
        axes.xaxis_date()
        axes.set_xlabel("UTC")
        axes.set_ylim(bottom=0)
        axes.set_ylabel("agents")
        axes.set_title(f"{title}\nshaded: fewer agents ready than needed")
        axes.grid(True, alpha=0.3)
        axes.legend(loc="upper left", fontsize=8)
        figure.autofmt_xdate()
        figure.tight_layout()
        figure.savefig(path)
    finally:
        plt.close(figure)
