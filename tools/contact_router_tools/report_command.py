"""`contact-router report`: the contact, agent, disposition and feedback reports of a
range, read from a running router's ReportingService, so they show exactly what the API
serves. Tables go to the terminal; --format csv and json are for spreadsheets and jobs;
--chart also draws service level per interval (after the tables are printed, so a chart
that cannot be drawn loses nothing).
"""

from __future__ import annotations

import argparse
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from contactrouter.v1 import contact_router_pb2 as pb
from contactrouter.v1 import contact_router_pb2_grpc as pb_grpc

from contact_router_tools import chart
from contact_router_tools.connection import (
    RouterConnection,
    add_format_argument,
    add_router_arguments,
    field_flags,
)
from contact_router_tools.proto_values import (
    CHANNELS,
    INTERVALS,
    channel_name,
    optional,
    stamp,
    when,
)
from contact_router_tools.ranges import NAMES, named_range, router_zone
from contact_router_tools.tables import (
    Table,
    for_people,
    records,
    render_csv,
    render_json,
    render_table,
)
from router.domain.time_zones import time_zone
from router.errors import ConfigError
from router.reporting.intervals import UTC_ZONE, Interval
from router.reporting.report import ratio

SECTIONS = ("contacts", "agents", "dispositions", "feedback", "callbacks")
DEFAULT_SECTIONS = SECTIONS[:4]
"""Printed when no --section is given; queued callbacks only when asked for."""
CALLBACK_INTERVALS = ("15m", "hour", "day", "month", "year")
"""The intervals GetServiceLevel (which carries the callbacks' rows) answers for."""
RATIO_COLUMNS = frozenset(
    ("service_level", "abandonment_rate", "previous_agent_share", "occupancy", "utilization")
)
# The protobuf fields a refusal may name, and the argument that set them.
FLAGS = field_flags(
    {
        "start": "RANGE",
        "end": "RANGE",
        "interval": "--interval",
        "channels": "--channel",
        "time_zone": "--time-zone",
        "team": "--team",
    }
)


def add_report_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("range", nargs="?", default="today", help=f"{NAMES}; default today")
    parser.add_argument(
        "--interval",
        choices=list(INTERVALS),
        default="hour",
        help="length of each row's interval (default hour)",
    )
    parser.add_argument(
        "--channel",
        action="append",
        choices=list(CHANNELS),
        default=[],
        help="only this channel; repeat it for several (--channel phone --channel chat); "
        "default every channel",
    )
    parser.add_argument("--by-skill", action="store_true", help="split rows by required skill")
    parser.add_argument(
        "--by-team",
        action="store_true",
        help="split contacts, dispositions and feedback by team, and show agents' teams",
    )
    parser.add_argument(
        "--team",
        help="only this team's contacts, agents, dispositions and feedback (as given at sign-in)",
    )
    parser.add_argument(
        "--time-zone",
        metavar="ZONE",
        help="IANA time zone of the range and the intervals (Europe/Paris); default the "
        "router's (ROUTER_TIME_ZONE)",
    )
    parser.add_argument(
        "--section",
        choices=SECTIONS,
        action="append",
        default=[],
        help="what to print (repeatable; default all but callbacks; csv prints one)",
    )
    parser.add_argument(
        "--chart",
        metavar="FILE.png",
        help="also draw service level per interval and channel against each channel's goal",
    )
    add_format_argument(parser, "one --section")
    add_router_arguments(parser)


def contact_table(
    response: pb.GetContactReportResponse, by_skill: bool, by_team: bool = False
) -> Table:
    header = ["interval", "channel"] + (["skill"] if by_skill else [])
    header += ["team"] if by_team else []
    header += [
        "offered",
        "answered",
        "abandoned",
        "short_abandoned",
        "cancelled",
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
    zone = router_zone(response.time_zone)
    rows = []
    for r in response.rows:
        row: list[Any] = [when(r.interval_start).astimezone(zone), channel_name(r.channel)]
        if by_skill:
            row.append(r.skill or "-")
        if by_team:
            row.append(r.team or "-")
        row += [
            r.offered,
            r.answered,
            r.abandoned,
            r.short_abandoned,
            r.cancelled,
            r.still_waiting,
            optional(r, "service_level"),
            optional(r, "abandonment_rate"),
            optional(r, "asa_seconds"),
            optional(r, "p90_wait_seconds"),
            optional(r, "longest_wait_seconds"),
            optional(r, "aht_seconds"),
            optional(r, "mean_talk_seconds"),
            optional(r, "mean_acw_seconds"),
            r.transfers,
            r.returning_answered,
            r.returning_to_previous_agent,
            ratio(r.returning_to_previous_agent, r.returning_answered),
        ]
        rows.append(row)
    return header, rows


def callback_table(response: pb.GetServiceLevelResponse) -> Table:
    """Queued callbacks per interval and channel they came from (apart from inbound)."""
    header = ["interval", "from", "requested", "placed", "placed_within_target"]
    header += ["reached", "unreached", "unreached_before_dial", "cancelled"]
    header += ["cancelled_by_supervisor", "waiting", "dials"]
    header += ["service_level", "to_placed_s", "to_reached_s"]
    zone = router_zone(response.time_zone)
    rows = [
        [
            when(r.interval_start).astimezone(zone),
            channel_name(r.requested_from),
            r.requested,
            r.placed,
            r.placed_within_target,
            r.reached,
            r.unreached,
            r.unreached_before_dial,
            r.cancelled,
            r.cancelled_by_supervisor,
            r.waiting,
            r.dials,
            optional(r, "service_level"),
            optional(r, "mean_seconds_to_placed"),
            optional(r, "mean_seconds_to_reached"),
        ]
        for r in response.callbacks
    ]
    return header, rows


def agent_table(
    response: pb.GetAgentReportResponse, zone: ZoneInfo = UTC_ZONE, by_team: bool = False
) -> Table:
    header = ["agent"] + (["team"] if by_team else [])
    header += [
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
        first = min((when(s.signed_in_at).astimezone(zone) for s in a.sessions), default=None)
        sessions = list(a.sessions)
        last = (
            None
            if not sessions or not sessions[-1].HasField("signed_out_at")
            else when(sessions[-1].signed_out_at).astimezone(zone)
        )
        row: list[Any] = [a.agent_id] + ([a.team or "-"] if by_team else [])
        row.extend(
            [
                a.contacts_handled,
                a.contacts_completed,
                optional(a, "aht_seconds"),
                optional(a, "mean_acw_seconds"),
                a.signed_in_seconds,
                a.ready_seconds,
                a.handling_seconds,
                optional(a, "occupancy"),
                optional(a, "utilization"),
                away or "-",
                first,
                last,
                a.ratings,
                optional(a, "mean_rating"),
            ]
        )
        rows.append(row)
    return header, rows


def disposition_table(response: pb.GetDispositionReportResponse, by_team: bool = False) -> Table:
    header = ["channel"] + (["team"] if by_team else [])
    header += ["disposition", "contacts", "aht_s", "ratings", "mean_rating"]
    rows: list[list[Any]] = [
        [channel_name(d.channel)]
        + ([d.team or "-"] if by_team else [])
        + [
            d.disposition or "-",
            d.contacts,
            optional(d, "aht_seconds"),
            d.ratings,
            optional(d, "mean_rating"),
        ]
        for d in response.dispositions
    ]
    return header, rows


def feedback_table(response: pb.GetDispositionReportResponse, by_team: bool = False) -> Table:
    header = ["channel"] + (["team"] if by_team else []) + ["agent", "ratings", "mean_rating"]
    rows: list[list[Any]] = [
        [channel_name(f.channel)]
        + ([f.team or "-"] if by_team else [])
        + [f.agent_id or "(all)", f.ratings, f.mean_rating]
        for f in response.feedback
    ]
    return header, rows


async def unsplit_report(
    router: RouterConnection,
    stub: pb_grpc.ReportingServiceAsyncStub,
    request: pb.GetContactReportRequest,
    response: pb.GetContactReportResponse,
) -> pb.GetContactReportResponse:
    """The report the chart draws: `response`, unless it is split by skill (where a
    contact requiring two skills is in two rows) or by team; then the same report
    unsplit, asked like every other call (a failure is a RouterError, one line)."""
    if not request.by_skill and not request.by_team:
        return response
    unsplit = pb.GetContactReportRequest()
    unsplit.CopyFrom(request)
    unsplit.by_skill = False
    unsplit.by_team = False
    return await router.call(stub.GetContactReport, unsplit, flag_of=FLAGS)


async def run_report(args: argparse.Namespace) -> int:
    given_zone = None
    if args.time_zone is not None:
        try:
            given_zone = time_zone(args.time_zone)
        except ValueError as error:
            raise ConfigError(f"--time-zone: {error}") from None
    sections = args.section or list(DEFAULT_SECTIONS)
    if args.format == "csv" and len(sections) != 1:
        raise ConfigError("csv prints one table: choose one --section")
    if "callbacks" in sections and args.interval not in CALLBACK_INTERVALS:
        raise ConfigError(
            f"--section callbacks: --interval must be one of {', '.join(CALLBACK_INTERVALS)}"
        )
    router = RouterConnection.from_args(args)
    charted = None
    callback_formula = ""
    async with router.channel() as channel:
        stub = pb_grpc.ReportingServiceStub(channel)
        # The range's days begin at midnight in the report's zone: the router's, unless
        # --time-zone says.
        zone = given_zone
        if zone is None:
            status = await router.call(stub.GetQueueStatus, pb.GetQueueStatusRequest())
            zone = router_zone(status.time_zone)
        try:
            start, end = named_range(args.range, datetime.now(UTC), zone)
        except ValueError as error:
            raise ConfigError(str(error)) from None
        request = pb.GetContactReportRequest(
            start=stamp(start),
            end=stamp(end),
            interval=INTERVALS[args.interval],
            channels=[CHANNELS[c] for c in args.channel],
            by_skill=args.by_skill,
            time_zone=zone.key,
            by_team=args.by_team,
            team=args.team or "",
        )
        contacts = await router.call(stub.GetContactReport, request, flag_of=FLAGS)
        teams = args.by_team or bool(args.team)
        tables = {"contacts": contact_table(contacts, args.by_skill, teams)}
        if args.chart is not None:
            charted = await unsplit_report(router, stub, request, contacts)
        if "agents" in sections:
            asked = pb.GetAgentReportRequest(
                start=stamp(start), end=stamp(end), team=args.team or ""
            )
            agents = await router.call(stub.GetAgentReport, asked, flag_of=FLAGS)
            tables["agents"] = agent_table(agents, zone, teams)
        if "dispositions" in sections or "feedback" in sections:
            asked_too = pb.GetDispositionReportRequest(
                start=stamp(start), end=stamp(end), by_team=args.by_team, team=args.team or ""
            )
            dispositions = await router.call(stub.GetDispositionReport, asked_too)
            tables["dispositions"] = disposition_table(dispositions, teams)
            tables["feedback"] = feedback_table(dispositions, teams)
        if "callbacks" in sections:
            levels = pb.GetServiceLevelRequest(
                start=stamp(start), end=stamp(end), interval=request.interval, time_zone=zone.key
            )
            served = await router.call(stub.GetServiceLevel, levels, flag_of=FLAGS)
            tables["callbacks"] = callback_table(served)
            callback_formula = (
                f"{served.callback_formula} (target: {served.callback_target_seconds:g} s)"
            )
    if args.format == "csv":
        sys.stdout.write(render_csv(tables[sections[0]]))
    elif args.format == "json":
        document: dict[str, Any] = {
            "range": {"start": start.astimezone(zone), "end": end.astimezone(zone)},
            "interval": args.interval,
            "time_zone": zone.key,
            "formula": contacts.formula,
            "short_abandon_seconds": contacts.short_abandon_seconds,
            "as_of": when(contacts.as_of).astimezone(zone),
        }
        if callback_formula:
            document["callback_formula"] = callback_formula
        document.update({name: records(tables[name]) for name in sections})
        sys.stdout.write(render_json(document))
    else:
        print(
            f"Contact report {start.astimezone(zone):%Y-%m-%d %H:%M} to "
            f"{end.astimezone(zone):%Y-%m-%d %H:%M} {zone.key}, {args.interval} intervals, "
            f"as of {when(contacts.as_of).astimezone(zone):%H:%M:%S}"
        )
        print(f"{contacts.formula} (short abandon: {contacts.short_abandon_seconds:g} s)")
        if "callbacks" in sections:
            print(callback_formula)
        for name in sections:
            print(f"\n{name.capitalize()}\n")
            print(render_table(for_people(tables[name], RATIO_COLUMNS)))
    sys.stdout.flush()
    if charted is None:
        return 0
    return _draw(charted, start, end, args)


def _draw(
    response: pb.GetContactReportResponse, start: datetime, end: datetime, args: argparse.Namespace
) -> int:
    """Draw the chart once the tables are out, and say where in one line on stderr
    (stdout holds the report alone, for a pipe); a failure is one line and exit 1."""
    interval = Interval(args.interval)
    # The title gives the range's dates: a range named by its date is not named twice.
    named = "" if args.range[:1].isdigit() else f"{args.range}, "
    try:
        chart.draw_service_level(
            response, start, end, interval, args.chart, f"{named}{args.interval} intervals"
        )
    except OSError as error:
        print(
            f"contact-router report: --chart {args.chart}: cannot write it "
            f"({error.strerror or error})",
            file=sys.stderr,
        )
        return 1
    print(f"contact-router report: chart written to {Path(args.chart).resolve()}", file=sys.stderr)
    return 0
