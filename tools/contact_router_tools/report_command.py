"""`contact-router report` and `contact-router staffing`: ReportingService for people.

Both talk to a running router over gRPC (--target), so they read exactly what the API
serves. Tables go to the terminal; --format csv and json are for spreadsheets and jobs;
--chart draws service level per interval per channel against the 80% target and the
70% alarm line.
"""

from __future__ import annotations

import argparse
import csv
import sys
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import grpc
from contactrouter.client import connect
from contactrouter.v1 import contact_router_pb2 as pb
from contactrouter.v1 import contact_router_pb2_grpc as pb_grpc

from router.reporting.alarm import ALARM_BELOW
from router.reporting.intervals import named_range
from router.reporting.report import (
    Table,
    percent,
    ratio,
    records,
    render_csv,
    render_json,
    render_table,
)

TARGET_LINE = 0.80
_INTERVALS = {
    "15m": pb.INTERVAL_LENGTH_15_MINUTES,
    "30m": pb.INTERVAL_LENGTH_30_MINUTES,
    "hour": pb.INTERVAL_LENGTH_HOUR,
    "day": pb.INTERVAL_LENGTH_DAY,
    "week": pb.INTERVAL_LENGTH_WEEK,
    "month": pb.INTERVAL_LENGTH_MONTH,
}
_CHANNELS = {"phone": pb.CHANNEL_PHONE, "chat": pb.CHANNEL_CHAT, "email": pb.CHANNEL_EMAIL}
_CHANNEL_NAMES = {v: k for k, v in _CHANNELS.items()}
_STATUS_NAMES = {pb.AGENT_STATUS_READY: "ready", pb.AGENT_STATUS_AWAY: "away"}
_SECTIONS = ("contacts", "agents", "dispositions", "feedback")
_RATIO_COLUMNS = frozenset(
    ("service_level", "abandonment_rate", "previous_agent_share", "occupancy", "utilization")
)


def _common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--target", default="127.0.0.1:50051", help="router address (default 127.0.0.1:50051)"
    )
    parser.add_argument(
        "--token-file",
        type=Path,
        help="file holding a reporting token (when the router has tokens)",
    )
    parser.add_argument(
        "--format", choices=("table", "csv", "json"), default="table", help="default: table"
    )


def add_report_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "range",
        nargs="?",
        default="today",
        help="today (default), yesterday, this-month, last-month, YYYY-MM-DD or YYYY-MM (UTC)",
    )
    parser.add_argument("--interval", choices=list(_INTERVALS), default="hour")
    parser.add_argument("--channel", action="append", choices=list(_CHANNELS), default=[])
    parser.add_argument("--by-skill", action="store_true", help="split rows by required skill")
    parser.add_argument(
        "--section",
        choices=_SECTIONS,
        action="append",
        default=[],
        help="what to print (repeatable; default all; csv prints one)",
    )
    parser.add_argument(
        "--chart", type=Path, metavar="FILE.png", help="also draw service level per interval"
    )
    _common(parser)


def add_staffing_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--channel", choices=list(_CHANNELS), default="phone")
    parser.add_argument("--interval", choices=("15m", "30m", "hour"), default="30m")
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
    parser.add_argument("--service-level", type=float, default=0.8, help="target (default 0.8)")
    parser.add_argument(
        "--threshold", type=float, default=0.0, help="seconds (default: the channel's target)"
    )
    parser.add_argument("--max-occupancy", type=float, default=0.0, help="e.g. 0.85")
    parser.add_argument(
        "--erlang-a",
        action="store_true",
        help="let callers abandon (Erlang A); patience from --patience or the history",
    )
    parser.add_argument(
        "--patience", type=float, default=0.0, metavar="SECONDS", help="callers' mean patience"
    )
    _common(parser)


def _token(path: Path | None) -> str | None:
    return None if path is None else path.read_text(encoding="utf-8").strip()


def _error(command: str, error: grpc.aio.AioRpcError) -> int:
    print(f"contact-router {command}: {error.code().name}: {error.details()}", file=sys.stderr)
    return 1


def _when(stamp: Any) -> datetime:
    value: datetime = stamp.ToDatetime(tzinfo=UTC)
    return value


def _opt(message: Any, field: str) -> float | None:
    return getattr(message, field) if message.HasField(field) else None


def contact_table(response: pb.GetContactReportResponse, by_skill: bool) -> Table:
    header = ["interval", "channel"] + (["skill"] if by_skill else [])
    header += [
        "offered",
        "answered",
        "abandoned",
        "short_abandoned",
        "waiting",
        "service_level",
        "abandonment_rate",
        "asa_s",
        "p90_wait_s",
        "longest_wait_s",
        "aht_s",
        "talk_s",
        "acw_s",
        "transfers",
        "returning",
        "to_previous_agent",
        "previous_agent_share",
    ]
    rows = []
    for r in response.rows:
        row: list[Any] = [_when(r.interval_start), _CHANNEL_NAMES[r.channel]]
        if by_skill:
            row.append(r.skill or "-")
        row += [
            r.offered,
            r.answered,
            r.abandoned,
            r.short_abandoned,
            r.still_waiting,
            _opt(r, "service_level"),
            _opt(r, "abandonment_rate"),
            _opt(r, "asa_seconds"),
            _opt(r, "p90_wait_seconds"),
            _opt(r, "longest_wait_seconds"),
            _opt(r, "aht_seconds"),
            _opt(r, "mean_talk_seconds"),
            _opt(r, "mean_acw_seconds"),
            r.transfers,
            r.returning_answered,
            r.returning_to_previous_agent,
            ratio(r.returning_to_previous_agent, r.returning_answered),
        ]
        rows.append(row)
    return header, rows


def agent_table(response: pb.GetAgentReportResponse) -> Table:
    header = [
        "agent",
        "handled",
        "completed",
        "aht_s",
        "acw_s",
        "signed_in_s",
        "ready_s",
        "handling_s",
        "occupancy",
        "utilization",
        "away",
        "first_sign_in",
        "last_sign_out",
        "ratings",
        "mean_rating",
    ]
    rows = []
    for a in response.agents:
        away = ", ".join(
            f"{t.reason or 'away'} {t.seconds / 60:.0f}m"
            for t in a.status_times
            if t.status == pb.AGENT_STATUS_AWAY
        )
        first = min((_when(s.signed_in_at) for s in a.sessions), default=None)
        outs = list(a.sessions)
        last = (
            None
            if not outs or not outs[-1].HasField("signed_out_at")
            else _when(outs[-1].signed_out_at)
        )
        rows.append(
            [
                a.agent_id,
                a.contacts_handled,
                a.contacts_completed,
                _opt(a, "aht_seconds"),
                _opt(a, "mean_acw_seconds"),
                a.signed_in_seconds,
                a.ready_seconds,
                a.handling_seconds,
                _opt(a, "occupancy"),
                _opt(a, "utilization"),
                away or "-",
                first,
                last,
                a.ratings,
                _opt(a, "mean_rating"),
            ]
        )
    return header, rows


def disposition_table(response: pb.GetDispositionReportResponse) -> Table:
    header = ["channel", "disposition", "contacts", "aht_s", "ratings", "mean_rating"]
    rows = [
        [
            _CHANNEL_NAMES[d.channel],
            d.disposition or "-",
            d.contacts,
            _opt(d, "aht_seconds"),
            d.ratings,
            _opt(d, "mean_rating"),
        ]
        for d in response.dispositions
    ]
    return header, rows


def feedback_table(response: pb.GetDispositionReportResponse) -> Table:
    header = ["channel", "agent", "ratings", "mean_rating"]
    rows = [
        [_CHANNEL_NAMES[f.channel], f.agent_id or "(all)", f.ratings, f.mean_rating]
        for f in response.feedback
    ]
    return header, rows


def _for_people(table: Table) -> Table:
    """Ratios as percentages for the terminal (CSV and JSON keep fractions)."""
    header, rows = table
    ratio_columns = {i for i, name in enumerate(header) if name in _RATIO_COLUMNS}
    return header, [
        [percent(v) if i in ratio_columns else v for i, v in enumerate(row)] for row in rows
    ]


async def run_report(args: argparse.Namespace) -> int:
    try:
        start, end = named_range(args.range, datetime.now(UTC))
    except ValueError as error:
        print(f"contact-router report: {error}", file=sys.stderr)
        return 2
    sections = args.section or list(_SECTIONS)
    if args.format == "csv" and len(sections) != 1:
        print("contact-router report: csv prints one table: choose one --section", file=sys.stderr)
        return 2
    channel = connect(args.target, token=_token(args.token_file))
    try:
        stub = pb_grpc.ReportingServiceStub(channel)
        tables: dict[str, Table] = {}
        request = pb.GetContactReportRequest(
            start=_stamp(start),
            end=_stamp(end),
            interval=_INTERVALS[args.interval],
            channels=[_CHANNELS[c] for c in args.channel],
            by_skill=args.by_skill,
        )
        contacts = await stub.GetContactReport(request)
        tables["contacts"] = contact_table(contacts, args.by_skill)
        if args.chart is not None:
            charted = await chart_report(stub, request, contacts)
        if "agents" in sections:
            agents = await stub.GetAgentReport(
                pb.GetAgentReportRequest(start=_stamp(start), end=_stamp(end))
            )
            tables["agents"] = agent_table(agents)
        if "dispositions" in sections or "feedback" in sections:
            dispositions = await stub.GetDispositionReport(
                pb.GetDispositionReportRequest(start=_stamp(start), end=_stamp(end))
            )
            tables["dispositions"] = disposition_table(dispositions)
            tables["feedback"] = feedback_table(dispositions)
    except grpc.aio.AioRpcError as error:
        return _error("report", error)
    finally:
        await channel.close()
    if args.chart is not None:
        draw_service_level(charted, args.chart, f"{args.range} ({args.interval} intervals)")
    if args.format == "csv":
        sys.stdout.write(render_csv(tables[sections[0]]))
    elif args.format == "json":
        document: dict[str, Any] = {
            "range": {"start": start, "end": end},
            "interval": args.interval,
            "formula": contacts.formula,
            "short_abandon_seconds": contacts.short_abandon_seconds,
            "as_of": _when(contacts.as_of),
        }
        document.update({name: records(tables[name]) for name in sections})
        sys.stdout.write(render_json(document))
    else:
        print(
            f"Contact report {start:%Y-%m-%d %H:%M} to {end:%Y-%m-%d %H:%M} UTC, "
            f"{args.interval} intervals, as of {_when(contacts.as_of):%H:%M:%S}"
        )
        print(f"{contacts.formula} (short abandon: {contacts.short_abandon_seconds:g} s)")
        for name in sections:
            print(f"\n{name.capitalize()}\n")
            print(render_table(_for_people(tables[name])))
    return 0


def _stamp(value: datetime) -> Any:
    from google.protobuf.timestamp_pb2 import Timestamp

    stamp = Timestamp()
    stamp.FromDatetime(value)
    return stamp


async def chart_report(
    stub: pb_grpc.ReportingServiceAsyncStub,
    request: pb.GetContactReportRequest,
    response: pb.GetContactReportResponse,
) -> pb.GetContactReportResponse:
    """The report the chart draws: `response`, unless it is split by skill, where a
    contact requiring two skills is in two rows; then the same report unsplit."""
    if not request.by_skill:
        return response
    unsplit = pb.GetContactReportRequest()
    unsplit.CopyFrom(request)
    unsplit.by_skill = False
    result: pb.GetContactReportResponse = await stub.GetContactReport(unsplit)
    return result


def service_level_series(
    response: pb.GetContactReportResponse,
) -> dict[str, list[tuple[datetime, float]]]:
    """Per channel, (interval start, service level) where the level is defined, from a
    report not split by skill (see chart_report): one row per channel and interval, each
    contact counted once, so the row's own service level is the point."""
    series: dict[str, list[tuple[datetime, float]]] = {}
    for r in response.rows:
        points = series.setdefault(_CHANNEL_NAMES[r.channel], [])
        if r.HasField("service_level"):
            points.append((_when(r.interval_start), r.service_level))
    return {name: sorted(points) for name, points in series.items()}


def draw_service_level(response: pb.GetContactReportResponse, path: Path, title: str) -> None:
    """Service level per interval per channel, the 80% target and the 70% alarm line;
    the band under the alarm line is shaded so a bad afternoon stands out."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.dates as mdates
    import matplotlib.pyplot as plt

    colors = {"phone": "#1f77b4", "chat": "#2ca02c", "email": "#9467bd"}
    figure, axes = plt.subplots(figsize=(11, 4.5), dpi=110)
    axes.axhspan(0, ALARM_BELOW * 100, color="#d62728", alpha=0.07)
    axes.axhline(
        TARGET_LINE * 100, color="#2ca02c", linestyle="--", linewidth=1.2, label="target 80%"
    )
    axes.axhline(
        ALARM_BELOW * 100, color="#d62728", linestyle="-", linewidth=1.2, label="alarm 70%"
    )
    for name, points in service_level_series(response).items():
        if points:
            times, levels = zip(*points, strict=True)
            axes.plot(
                times,
                [level * 100 for level in levels],
                marker="o",
                markersize=3,
                linewidth=1.6,
                color=colors.get(name),
                label=name,
            )
            bad = [(t, v * 100) for t, v in points if v < ALARM_BELOW]
            if bad:
                bad_times, bad_levels = zip(*bad, strict=True)
                axes.plot(
                    bad_times,
                    bad_levels,
                    linestyle="none",
                    marker="o",
                    markersize=6,
                    color="#d62728",
                    zorder=5,
                )
    axes.set_ylim(0, 105)
    axes.set_ylabel("service level (%)")
    axes.set_title(f"Service level per interval: {title}")
    # matplotlib.dates ships without type hints.
    axes.xaxis.set_major_formatter(mdates.DateFormatter("%m-%d %H:%M"))  # type: ignore[no-untyped-call]
    axes.grid(True, alpha=0.3)
    axes.legend(loc="upper left", bbox_to_anchor=(1.0, 1.0), fontsize=8)
    figure.autofmt_xdate()
    figure.tight_layout()
    figure.savefig(path)
    plt.close(figure)


def read_forecast(path: Path) -> list[pb.ForecastInterval]:
    """interval_start,calls,aht_seconds rows from a CSV file."""
    forecast = []
    with path.open(newline="", encoding="utf-8") as handle:
        for number, row in enumerate(csv.DictReader(handle), start=2):
            try:
                start = datetime.fromisoformat(row["interval_start"])
                calls, aht = float(row["calls"]), float(row["aht_seconds"])
            except (KeyError, TypeError, ValueError) as error:
                raise ValueError(f"{path}:{number}: {error}") from None
            if start.tzinfo is None:
                start = start.replace(tzinfo=UTC)
            forecast.append(
                pb.ForecastInterval(interval_start=_stamp(start), calls=calls, aht_seconds=aht)
            )
    return forecast


_STAFFING_RATIOS = ("service_level", "occupancy", "p_wait", "abandon")


def staffing_table(response: pb.GetStaffingResponse) -> Table:
    header = [
        "interval",
        "calls",
        "aht_s",
        "erlangs",
        "agents",
        "service_level",
        "asa_s",
        "occupancy",
        "p_wait",
        "abandon",
    ]
    rows: Sequence[Sequence[Any]] = [
        [
            _when(r.interval_start),
            r.calls,
            r.aht_seconds,
            r.traffic_erlangs,
            r.agents,
            r.service_level,
            r.asa_seconds,
            r.occupancy,
            r.probability_of_waiting,
            r.abandonment if r.HasField("abandonment") else None,
        ]
        for r in response.rows
    ]
    return header, rows


async def run_staffing(args: argparse.Namespace) -> int:
    request = pb.GetStaffingRequest(
        channel=_CHANNELS[args.channel],
        interval=_INTERVALS[args.interval],
        target_service_level=args.service_level,
        threshold_seconds=args.threshold,
        max_occupancy=args.max_occupancy,
        with_abandonment=args.erlang_a,
        patience_seconds=args.patience,
    )
    try:
        if args.forecast is not None:
            request.forecast.extend(read_forecast(args.forecast))
        else:
            start, end = named_range(args.history, datetime.now(UTC))
            request.history_start.CopyFrom(_stamp(start))
            request.history_end.CopyFrom(_stamp(end))
    except (OSError, ValueError) as error:
        print(f"contact-router staffing: {error}", file=sys.stderr)
        return 2
    channel = connect(args.target, token=_token(args.token_file))
    try:
        response = await pb_grpc.ReportingServiceStub(channel).GetStaffing(request)
    except grpc.aio.AioRpcError as error:
        return _error("staffing", error)
    finally:
        await channel.close()
    table = staffing_table(response)
    if args.format == "csv":
        sys.stdout.write(render_csv(table))
    elif args.format == "json":
        sys.stdout.write(
            render_json(
                {
                    "model": response.model,
                    "target_service_level": response.target_service_level,
                    "threshold_seconds": response.threshold_seconds,
                    "patience_seconds": response.patience_seconds or None,
                    "intervals": records(table),
                }
            )
        )
    else:
        print(
            f"Agents needed on {args.channel} for {response.target_service_level:.0%} within "
            f"{response.threshold_seconds:g} s, per {args.interval}"
        )
        print(response.model)
        if response.patience_seconds:
            print(f"Callers' mean patience: {response.patience_seconds:.0f} s")
        print()
        header, rows = table
        shown = [
            [percent(v) if header[i] in _STAFFING_RATIOS else v for i, v in enumerate(row)]
            for row in rows
        ]
        print(render_table((header, shown)))
        print(
            f"\nPeak: {max((r.agents for r in response.rows), default=0)} agents on the phones "
            "(add shrinkage for breaks, training and absence)"
        )
    return 0
