"""`report --chart`: service level per interval and channel, against each channel's goal
and alarm line as the router is configured (the response's `goals`).

The x-axis spans exactly the requested range, with ticks that say the year when it is
not obvious (matplotlib's concise date formatter). Each channel keeps its own marker
and its own place inside each interval (phone at a quarter, chat at the half, email at
three quarters), so equal levels in the same interval do not hide one another.
"""

from __future__ import annotations

import math
import textwrap
from collections.abc import Sequence
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

from contactrouter.v1 import contact_router_pb2 as pb

from contact_router_tools.proto_values import channel_name, optional, when
from contact_router_tools.ranges import router_zone
from router.reporting.intervals import Interval, interval_starts, next_start

if TYPE_CHECKING:
    from matplotlib.figure import Figure

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
BAND = 0.15  # of the figure's height, under the plot: the legend and the footnote
FOOTNOTE_WIDTH = 170  # characters a footnote line holds at its size across the figure


def service_level_series(
    response: pb.GetContactReportResponse,
) -> dict[str, list[tuple[datetime, float]]]:
    """Per channel, (interval start, service level) where the level is defined, from a
    report not split by skill (report_command.unsplit_report): one row per channel and
    interval, each contact counted once, so the row's own service level is the point."""
    series: dict[str, list[tuple[datetime, float]]] = {}
    zone = chart_zone(response)
    for r in response.rows:
        points = series.setdefault(channel_name(r.channel), [])
        level = optional(r, "service_level")
        if level is not None:
            points.append((when(r.interval_start).astimezone(zone), level))
    return {name: sorted(points) for name, points in series.items()}


def chart_zone(response: pb.GetContactReportResponse) -> ZoneInfo:
    """The zone the report's intervals are in (UTC for a router that names none)."""
    return router_zone(response.time_zone)


def _lines(goals: Sequence[pb.ServiceLevelGoal], attribute: str) -> list[tuple[float, str, str]]:
    """(level in %, label, color) per distinct goal (or alarm) level: channels that share
    a level share one line, drawn in their color when it is one channel's alone."""
    by_level: dict[float, list[str]] = {}
    for goal in goals:
        by_level.setdefault(getattr(goal, attribute), []).append(channel_name(goal.channel))
    word = "goal" if attribute == "goal" else "alarm below"
    lines = []
    for level, names in sorted(by_level.items(), reverse=True):
        color = STYLE[names[0]][0] if len(names) == 1 and names[0] in STYLE else NEUTRAL
        lines.append((level * 100, f"{word} {level:.0%}: {', '.join(names)}", color))
    return lines


def _line_style_label(goals: Sequence[pb.ServiceLevelGoal], attribute: str) -> str:
    """The legend's one entry for a line style: "goal 80%" when every channel shares the
    level, else each channel's ("goal: phone 90%, chat 85%")."""
    word = "goal" if attribute == "goal" else "alarm below"
    levels = {getattr(goal, attribute) for goal in goals}
    if len(levels) == 1:
        return f"{word} {levels.pop():.0%}"
    each = ", ".join(f"{channel_name(g.channel)} {getattr(g, attribute):.0%}" for g in goals)
    return f"{word}: {each}"


def _seconds(value: float) -> str:
    """A threshold as people say it: "20 s", "2 min", "1 h"."""
    if value >= 3600 and value % 3600 == 0:
        return f"{value / 3600:g} h"
    if value >= 120 and value % 60 == 0:
        return f"{value / 60:g} min"
    return f"{value:g} s"


def _footnote(response: pb.GetContactReportResponse) -> str:
    """Each channel's threshold, said once, and the formula with its short-abandon limit."""
    parts = []
    if response.goals:
        within = ", ".join(
            f"{channel_name(g.channel)} {_seconds(g.threshold_seconds)}" for g in response.goals
        )
        parts.append(f"answered within: {within}")
    if response.formula:
        parts.append(response.formula)
        if response.short_abandon_seconds:
            parts.append(f"short-abandon limit {response.short_abandon_seconds:g} s")
    # Wrapped: the formula alone grew wider than the figure (hours, cancelled contacts).
    return textwrap.fill("; ".join(parts), FOOTNOTE_WIDTH)


def service_level_figure(
    response: pb.GetContactReportResponse,
    start: datetime,
    end: datetime,
    interval: Interval,
    title: str,
) -> Figure:
    """The chart of [start, end): points at their channel's place in each interval,
    each channel's goal (dashed) and alarm line (dotted), the band under the lowest
    alarm shaded, and points under their own channel's alarm filled red. The legend
    (one entry per channel and per line style) and a footnote with each channel's
    threshold sit under the plot, which keeps the figure's width; a range with nothing
    to plot says so in the middle."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.dates as mdates
    import matplotlib.pyplot as plt
    from matplotlib.lines import Line2D

    zone = chart_zone(response)
    start, end = start.astimezone(zone), end.astimezone(zone)
    figure, axes = plt.subplots(figsize=(11, 5), dpi=110)
    goals = list(response.goals)
    alarms = {channel_name(g.channel): g.alarm_below for g in goals}
    if goals:
        axes.axhspan(0, min(alarms.values()) * 100, color=ALARM_COLOR, alpha=0.06)
    for level, label, color in _lines(goals, "goal"):
        axes.axhline(level, color=color, linestyle="--", linewidth=1.2, label=label)
    for level, label, color in _lines(goals, "alarm_below"):
        axes.axhline(level, color=color, linestyle=":", linewidth=1.4, label=label)
    # A month of hours is 720 points a channel: smaller markers, so the lines still show.
    scale = min(1.0, math.sqrt(MANY / max(1, len(interval_starts(start, end, interval, zone)))))
    handles: list[Any] = []
    under_alarm = False
    for name, points in service_level_series(response).items():
        if not points:
            continue
        color, marker, full_size, place = STYLE[name]
        size = full_size * scale
        # matplotlib.dates ships without type hints.
        times: list[float] = mdates.date2num(  # type: ignore[no-untyped-call]
            [t + (next_start(t, interval, zone) - t) * place for t, _ in points]
        ).tolist()
        levels = [level * 100 for _, level in points]
        (line,) = axes.plot(
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
        handles.append(line)
        alarm = alarms.get(name)
        low = [(t, v) for t, v in zip(times, levels, strict=True) if alarm and v < alarm * 100]
        if low:
            under_alarm = True
            axes.plot(
                [t for t, _ in low],
                [v for _, v in low],
                linestyle="none",
                marker=marker,
                markersize=size,
                color=ALARM_COLOR,
                zorder=5,
            )
    if not handles:
        # An empty plot would read as a chart that failed to draw.
        axes.text(
            0.5,
            0.5,
            "no data in this range"
            if not response.rows
            else "no service level in this range: no contact answered, or abandoned after "
            "the short-abandon limit",
            transform=axes.transAxes,
            ha="center",
            va="center",
            fontsize=11,
            color=NEUTRAL,
        )
    if goals:
        handles.append(
            Line2D([], [], color=NEUTRAL, linestyle="--", label=_line_style_label(goals, "goal"))
        )
        handles.append(
            Line2D(
                [], [], color=NEUTRAL, linestyle=":", label=_line_style_label(goals, "alarm_below")
            )
        )
    if under_alarm:
        handles.append(
            Line2D(
                [],
                [],
                color=ALARM_COLOR,
                linestyle="none",
                marker="o",
                label="under its channel's alarm",
            )
        )
    # matplotlib.dates ships without type hints.
    # Ticks at the zone's midnights and hours, labelled in its time.
    locator = mdates.AutoDateLocator(minticks=4, maxticks=12, tz=zone)  # type: ignore[no-untyped-call]
    axes.xaxis.set_major_locator(locator)
    # The title names the range with its year; the offset would name the last tick's
    # day, which is the day after the range.
    ticks = mdates.ConciseDateFormatter(locator, tz=zone, show_offset=False)  # type: ignore[no-untyped-call]
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
    axes.set_title(f"Service level, {title}, {span} {zone.key}")
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
    # The plot, its ticks and title above; under them a band for the legend, in one row,
    # and the footnote (matplotlib's layouts would not stack the two without overlap).
    figure.tight_layout(rect=(0, BAND, 1, 1))
    if handles:
        figure.legend(
            handles=handles,
            loc="center",
            bbox_to_anchor=(0.5, BAND * 0.75),
            ncols=len(handles),
            fontsize=8,
            frameon=False,
        )
    footnote = _footnote(response)
    if footnote:
        figure.text(0.5, 0.012, footnote, ha="center", va="bottom", fontsize=7.5, color=NEUTRAL)
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
