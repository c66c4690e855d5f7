"""`report --chart`: service level per interval and channel, against each channel's goal
and alarm line as the router is configured (the response's `goals`).

The x-axis spans exactly the requested range, with ticks that say the year when it is
not obvious (matplotlib's concise date formatter). Each channel keeps its own marker
and its own place inside each interval (phone at a quarter, chat at the half, email at
three quarters), so equal levels in the same interval do not hide one another.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from contactrouter.v1 import contact_router_pb2 as pb
from contactrouter.v1 import contact_router_pb2_grpc as pb_grpc

from router.reporting.intervals import Interval, interval_starts, next_start

if TYPE_CHECKING:
    from matplotlib.figure import Figure

CHANNELS = {pb.CHANNEL_PHONE: "phone", pb.CHANNEL_CHAT: "chat", pb.CHANNEL_EMAIL: "email"}
# name: (color, marker, size, place in the interval). Hollow markers of decreasing size:
# points at the same place stay visible one inside the other.
STYLE = {
    "phone": ("#1f77b4", "o", 10.0, 0.25),
    "chat": ("#2ca02c", "s", 7.0, 0.5),
    "email": ("#9467bd", "^", 5.0, 0.75),
}
ALARM_COLOR = "#d62728"
MANY = 100  # intervals in a range beyond which markers shrink
NEUTRAL = "#444444"


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


def _when(stamp: Any) -> datetime:
    value: datetime = stamp.ToDatetime(tzinfo=UTC)
    return value


def service_level_series(
    response: pb.GetContactReportResponse,
) -> dict[str, list[tuple[datetime, float]]]:
    """Per channel, (interval start, service level) where the level is defined, from a
    report not split by skill (see chart_report): one row per channel and interval, each
    contact counted once, so the row's own service level is the point."""
    series: dict[str, list[tuple[datetime, float]]] = {}
    for r in response.rows:
        points = series.setdefault(CHANNELS[r.channel], [])
        if r.HasField("service_level"):
            points.append((_when(r.interval_start), r.service_level))
    return {name: sorted(points) for name, points in series.items()}


def _lines(goals: Sequence[pb.ServiceLevelGoal], attribute: str) -> list[tuple[float, str, str]]:
    """(level, label, color) per distinct goal (or alarm) level: channels that share a
    level share one line."""
    by_level: dict[float, list[pb.ServiceLevelGoal]] = {}
    for goal in goals:
        by_level.setdefault(getattr(goal, attribute), []).append(goal)
    word = "goal" if attribute == "goal" else "alarm below"
    lines = []
    for level, shared in sorted(by_level.items(), reverse=True):
        names = [CHANNELS.get(g.channel, "?") for g in shared]
        within = ", ".join(
            f"{n} within {g.threshold_seconds:g} s" for n, g in zip(names, shared, strict=True)
        )
        color = STYLE[names[0]][0] if len(names) == 1 and names[0] in STYLE else NEUTRAL
        lines.append((level * 100, f"{word} {level:.0%}: {within}", color))
    return lines


def service_level_figure(
    response: pb.GetContactReportResponse,
    start: datetime,
    end: datetime,
    interval: Interval,
    title: str,
) -> Figure:
    """The chart of [start, end): points at their channel's place in each interval,
    each channel's goal (dashed) and alarm line (dotted), the band under the lowest
    alarm shaded, and points under their own channel's alarm filled red."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.dates as mdates
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(figsize=(11, 4.5), dpi=110)
    goals = list(response.goals)
    alarms = {CHANNELS.get(g.channel, "?"): g.alarm_below for g in goals}
    if goals:
        axes.axhspan(0, min(alarms.values()) * 100, color=ALARM_COLOR, alpha=0.06)
    for level, label, color in _lines(goals, "goal"):
        axes.axhline(level, color=color, linestyle="--", linewidth=1.2, label=label)
    for level, label, color in _lines(goals, "alarm_below"):
        axes.axhline(level, color=color, linestyle=":", linewidth=1.4, label=label)
    # A month of hours is 720 points a channel: smaller markers, so the lines still show.
    scale = min(1.0, math.sqrt(MANY / max(1, len(interval_starts(start, end, interval)))))
    for name, points in service_level_series(response).items():
        if not points:
            continue
        color, marker, full_size, place = STYLE[name]
        size = full_size * scale
        # matplotlib.dates ships without type hints.
        times: list[float] = mdates.date2num(  # type: ignore[no-untyped-call]
            [t + (next_start(t, interval) - t) * place for t, _ in points]
        ).tolist()
        levels = [level * 100 for _, level in points]
        axes.plot(
            times,
            levels,
            marker=marker,
            markersize=size,
            markerfacecolor="none",
            markeredgewidth=1.6 * scale,
            linewidth=1.4 * scale,
            color=color,
            label=name,
        )
        alarm = alarms.get(name)
        low = [(t, v) for t, v in zip(times, levels, strict=True) if alarm and v < alarm * 100]
        if low:
            axes.plot(
                [t for t, _ in low],
                [v for _, v in low],
                linestyle="none",
                marker=marker,
                markersize=size,
                color=ALARM_COLOR,
                zorder=5,
            )
    # matplotlib.dates ships without type hints.
    locator = mdates.AutoDateLocator(minticks=4, maxticks=12)  # type: ignore[no-untyped-call]
    axes.xaxis.set_major_locator(locator)
    # The title names the range with its year; the offset would name the last tick's
    # day, which is the day after the range.
    ticks = mdates.ConciseDateFormatter(locator, show_offset=False)  # type: ignore[no-untyped-call]
    axes.xaxis.set_major_formatter(ticks)
    axes.set_xlim(
        mdates.date2num(start),  # type: ignore[no-untyped-call]
        mdates.date2num(end),  # type: ignore[no-untyped-call]
    )
    axes.set_ylim(0, 105)
    axes.set_ylabel("service level (%)")
    last_day = end - timedelta(microseconds=1)
    span = f"{start:%Y-%m-%d}" + (
        "" if last_day.date() == start.date() else f" to {last_day:%Y-%m-%d}"
    )
    axes.set_title(f"Service level per interval: {title}, {span} UTC")
    if not goals:
        axes.text(
            0.01,
            0.03,
            "this router sent no service-level goals: no goal or alarm lines",
            transform=axes.transAxes,
            fontsize=8,
            color=NEUTRAL,
        )
    axes.grid(True, alpha=0.3)
    axes.legend(loc="upper left", bbox_to_anchor=(1.0, 1.0), fontsize=8)
    figure.tight_layout()
    return figure


def draw_service_level(
    response: pb.GetContactReportResponse,
    start: datetime,
    end: datetime,
    interval: Interval,
    path: Path,
    title: str,
) -> None:
    """Write the chart to `path` (PNG); OSError when it cannot be written."""
    import matplotlib.pyplot as plt

    figure = service_level_figure(response, start, end, interval, title)
    try:
        figure.savefig(path)
    finally:
        plt.close(figure)
