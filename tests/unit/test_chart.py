"""`report --chart`: the axis spans the requested range, each channel keeps its own
place and marker, the goal and alarm lines are the router's configured ones, the legend
is compact and below the plot, and a range with nothing to plot says so."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import matplotlib.dates as mdates
import numpy as np
import pytest
from contact_router_tools.chart import service_level_figure
from contactrouter.v1 import contact_router_pb2 as pb
from google.protobuf.timestamp_pb2 import Timestamp
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.legend import Legend
from matplotlib.lines import Line2D

from router.domain.service_level import FORMULA
from router.reporting.intervals import Interval

DAY = datetime(2026, 3, 4, tzinfo=UTC)


def row(at: datetime, channel: pb.Channel.ValueType, level: float) -> pb.ContactReportRow:
    stamp = Timestamp()
    stamp.FromDatetime(at)
    return pb.ContactReportRow(interval_start=stamp, channel=channel, service_level=level)


def goal(
    channel: pb.Channel.ValueType, share: float, alarm: float, threshold: float = 20.0
) -> pb.ServiceLevelGoal:
    return pb.ServiceLevelGoal(
        channel=channel, threshold_seconds=threshold, goal=share, alarm_below=alarm
    )


# The router's defaults: every channel 80%, alarm below 70%, each its own threshold.
DEFAULT_GOALS = [
    goal(pb.CHANNEL_PHONE, 0.8, 0.7, 20.0),
    goal(pb.CHANNEL_CHAT, 0.8, 0.7, 60.0),
    goal(pb.CHANNEL_EMAIL, 0.8, 0.7, 3600.0),
]


def a_day(low: bool = False) -> pb.GetContactReportResponse:
    """A day of 15-minute intervals from 07:00 to 21:00 for the three channels (phone
    under its alarm in the afternoon when `low`)."""
    rows = []
    for quarter in range(7 * 4, 21 * 4):
        at = DAY + timedelta(minutes=15 * quarter)
        phone = 0.3 if low and 56 <= quarter < 64 else 0.82
        rows += [row(at, pb.CHANNEL_PHONE, phone), row(at, pb.CHANNEL_CHAT, 0.93)]
        rows.append(row(at, pb.CHANNEL_EMAIL, 0.97))
    return pb.GetContactReportResponse(
        rows=rows,
        goals=DEFAULT_GOALS,
        formula="service level = answered within threshold / (answered + abandoned - ...)",
        short_abandon_seconds=5.0,
    )


@pytest.fixture
def figures() -> Iterator[list[Figure]]:
    """The figures a test draws, closed afterwards."""
    import matplotlib.pyplot as plt

    made: list[Figure] = []
    yield made
    for figure in made:
        plt.close(figure)


def draw(
    figures: list[Figure],
    response: pb.GetContactReportResponse,
    start: datetime,
    end: datetime,
    interval: Interval,
) -> Axes:
    figure = service_level_figure(response, start, end, interval, "test")
    figures.append(figure)
    (axes,) = figure.axes
    return axes


def laid_out(figures: list[Figure], response: pb.GetContactReportResponse) -> Figure:
    """A day's figure, drawn so that its layout (legend, footnote) is computed."""
    figure = service_level_figure(response, DAY, DAY + timedelta(days=1), Interval.MINUTES_15, "t")
    figures.append(figure)
    figure.canvas.draw()
    return figure


def legend_of(figure: Figure) -> Legend:
    """The figure's one legend, wherever it is attached."""
    legends: list[Legend] = list(figure.legends)
    legends += [legend for axes in figure.axes if (legend := axes.get_legend()) is not None]
    (legend,) = legends
    return legend


def every_text(figure: Figure) -> list[str]:
    """Every piece of text the figure shows except tick labels."""
    (axes,) = figure.axes
    texts = [axes.get_title(), axes.get_ylabel(), *(t.get_text() for t in axes.texts)]
    texts += [t.get_text() for t in figure.texts]
    texts += [t.get_text() for t in legend_of(figure).get_texts()]
    return [t for t in texts if t]


def x_span(axes: Axes) -> tuple[datetime, datetime]:
    low, high = axes.get_xlim()
    return mdates.num2date(low), mdates.num2date(high)  # type: ignore[no-untyped-call]


def xs(line: Line2D) -> list[float]:
    values: list[float] = np.asarray(line.get_xdata(), dtype=float).tolist()
    return values


def level_lines(axes: Axes) -> dict[float, str]:
    """Horizontal lines: their level and label."""
    lines: dict[float, str] = {}
    for line in axes.get_lines():
        ys: list[float] = np.asarray(line.get_ydata(), dtype=float).tolist()
        if len(ys) == 2 and ys[0] == ys[1] and xs(line) == [0, 1]:
            lines[ys[0]] = str(line.get_label())
    return lines


def series(axes: Axes, label: str) -> Line2D:
    (line,) = [line for line in axes.get_lines() if line.get_label() == label]
    return line


class TestAxis:
    @pytest.mark.parametrize(
        ("start", "end", "interval"),
        [
            (DAY, DAY + timedelta(days=1), Interval.MINUTES_15),
            (DAY, DAY + timedelta(days=1), Interval.HOUR),
            (datetime(2026, 3, 1, tzinfo=UTC), datetime(2026, 4, 1, tzinfo=UTC), Interval.DAY),
        ],
    )
    def test_spans_the_requested_range_even_with_one_interval(
        self, figures: list[Figure], start: datetime, end: datetime, interval: Interval
    ) -> None:
        """One interval of data used to stretch the axis over two years."""
        at = DAY + timedelta(hours=9)
        response = pb.GetContactReportResponse(rows=[row(at, pb.CHANNEL_PHONE, 0.9)])
        axes = draw(figures, response, start, end, interval)
        assert x_span(axes) == (start, end)

    def test_the_title_names_the_range_with_its_year(self, figures: list[Figure]) -> None:
        """Hour ticks of one day do not say the year: the title does (one day, and the
        first and last day of a month)."""
        response = pb.GetContactReportResponse(rows=[row(DAY, pb.CHANNEL_PHONE, 0.9)])
        axes = draw(figures, response, DAY, DAY + timedelta(days=1), Interval.HOUR)
        assert axes.get_title().endswith("2026-03-04 UTC")
        month = datetime(2026, 3, 1, tzinfo=UTC), datetime(2026, 4, 1, tzinfo=UTC)
        axes = draw(figures, response, *month, Interval.DAY)
        assert axes.get_title().endswith("2026-03-01 to 2026-03-31 UTC")

    def test_days_of_a_time_zone_begin_at_its_midnights(self, figures: list[Figure]) -> None:
        """A report in Paris across the spring change: the axis spans its local days,
        each point sits inside its own 23- or 24-hour day, and the title names the zone."""
        start, end = datetime(2026, 3, 27, 23, tzinfo=UTC), datetime(2026, 3, 30, 22, tzinfo=UTC)
        days = [start, datetime(2026, 3, 28, 23, tzinfo=UTC), datetime(2026, 3, 29, 22, tzinfo=UTC)]
        response = pb.GetContactReportResponse(
            rows=[row(day, pb.CHANNEL_PHONE, 0.9) for day in days], time_zone="Europe/Paris"
        )
        axes = draw(figures, response, start, end, Interval.DAY)
        assert x_span(axes) == (start, end)
        bounds = mdates.date2num([*days, end])  # type: ignore[no-untyped-call]
        points = xs(series(axes, "phone"))
        assert all(bounds[i] < x < bounds[i + 1] for i, x in enumerate(points))
        assert axes.get_title().endswith("2026-03-28 to 2026-03-30 Europe/Paris")


class TestPoints:
    def test_equal_levels_of_two_channels_do_not_hide_each_other(
        self, figures: list[Figure]
    ) -> None:
        """Same interval, same level: each channel at its own place in the interval, with
        its own marker."""
        at = DAY + timedelta(hours=9)
        response = pb.GetContactReportResponse(
            rows=[row(at, pb.CHANNEL_PHONE, 1.0), row(at, pb.CHANNEL_CHAT, 1.0)]
        )
        axes = draw(figures, response, DAY, DAY + timedelta(days=1), Interval.HOUR)
        phone, chat = series(axes, "phone"), series(axes, "chat")
        assert xs(phone) != xs(chat)
        assert phone.get_marker() != chat.get_marker()
        hour = mdates.date2num([at, at + timedelta(hours=1)])  # type: ignore[no-untyped-call]
        for line in (phone, chat):
            (x,) = xs(line)
            assert hour[0] < x < hour[1]


class TestGoals:
    def test_each_channels_configured_goal_and_alarm(self, figures: list[Figure]) -> None:
        """Lines at the configured levels (not a fixed 80% and 70%); channels that share
        a level share its line."""
        response = pb.GetContactReportResponse(
            rows=[row(DAY, pb.CHANNEL_PHONE, 0.95)],
            goals=[
                goal(pb.CHANNEL_PHONE, 0.9, 0.75),
                goal(pb.CHANNEL_CHAT, 0.85, 0.75),
            ],
        )
        axes = draw(figures, response, DAY, DAY + timedelta(days=1), Interval.HOUR)
        lines = level_lines(axes)
        assert set(lines) == {90.0, 85.0, 75.0}
        assert "phone" in lines[90.0]
        assert "chat" in lines[85.0]
        assert "phone" in lines[75.0]
        assert "chat" in lines[75.0]

    def test_no_goals_no_lines(self, figures: list[Figure]) -> None:
        """A router that sends no goals gets no invented 80% line, and the chart says so."""
        response = pb.GetContactReportResponse(rows=[row(DAY, pb.CHANNEL_PHONE, 0.95)])
        axes = draw(figures, response, DAY, DAY + timedelta(days=1), Interval.HOUR)
        assert level_lines(axes) == {}
        assert any("no service-level goals" in t.get_text() for t in axes.texts)

    def test_a_point_under_its_own_channels_alarm_is_marked(self, figures: list[Figure]) -> None:
        """60% is under phone's alarm (75%) but not under email's (50%)."""
        response = pb.GetContactReportResponse(
            rows=[row(DAY, pb.CHANNEL_PHONE, 0.6), row(DAY, pb.CHANNEL_EMAIL, 0.6)],
            goals=[goal(pb.CHANNEL_PHONE, 0.9, 0.75), goal(pb.CHANNEL_EMAIL, 0.8, 0.5)],
        )
        axes = draw(figures, response, DAY, DAY + timedelta(days=1), Interval.HOUR)
        alarmed = [line for line in axes.get_lines() if str(line.get_label()).startswith("_")]
        alarmed = [line for line in alarmed if xs(line) != [0, 1]]
        assert [line.get_marker() for line in alarmed] == [series(axes, "phone").get_marker()]


class TestLegend:
    def test_below_the_plot_which_keeps_the_width(self, figures: list[Figure]) -> None:
        """The legend beside the plot took about 45% of the figure's width."""
        figure = laid_out(figures, a_day())
        (axes,) = figure.axes
        plot = axes.get_window_extent()
        legend = legend_of(figure).get_window_extent()
        assert plot.width > 0.8 * figure.bbox.width
        assert legend.y1 <= plot.y0
        assert legend.width < plot.width

    def test_the_footnote_fits_under_the_legend(self, figures: list[Figure]) -> None:
        """The router's whole formula, longer than the figure is wide on one line (its
        ends were cut off once hours and cancelled contacts were added to it)."""
        response = a_day()
        response.formula = FORMULA
        figure = laid_out(figures, response)
        (footnote,) = figure.texts
        box = footnote.get_window_extent()
        legend = legend_of(figure).get_window_extent()
        assert footnote.get_text().replace("\n", " ").count(FORMULA) == 1
        assert box.x0 >= 0
        assert box.x1 <= figure.bbox.width
        assert box.y0 >= 0
        assert box.y1 <= legend.y0

    def test_one_entry_per_channel_and_per_line_style(self, figures: list[Figure]) -> None:
        figure = laid_out(figures, a_day(low=True))
        labels = [t.get_text() for t in legend_of(figure).get_texts()]
        assert labels == [
            "phone",
            "chat",
            "email",
            "goal 80%",
            "alarm below 70%",
            "under its channel's alarm",
        ]

    def test_each_threshold_is_written_once(self, figures: list[Figure]) -> None:
        """phone within 20 s, chat within 60 s, email within 1 h: once, not per line."""
        shown = " | ".join(every_text(laid_out(figures, a_day())))
        for threshold in ("phone 20 s", "chat 60 s", "email 1 h"):
            assert shown.count(threshold) == 1, shown

    def test_goals_that_differ_name_each_channels_level(self, figures: list[Figure]) -> None:
        response = a_day()
        del response.goals[:]
        response.goals.extend(
            [goal(pb.CHANNEL_PHONE, 0.9, 0.75), goal(pb.CHANNEL_CHAT, 0.85, 0.75, 60.0)]
        )
        labels = [t.get_text() for t in legend_of(laid_out(figures, response)).get_texts()]
        assert "goal: phone 90%, chat 85%" in labels
        assert "alarm below 75%" in labels


class TestNothingToPlot:
    def test_no_data_in_the_range_says_so(self, figures: list[Figure]) -> None:
        response = pb.GetContactReportResponse(goals=DEFAULT_GOALS)
        axes = draw(figures, response, DAY, DAY + timedelta(days=1), Interval.HOUR)
        assert [t.get_text() for t in axes.texts] == ["no data in this range"]
        assert level_lines(axes)  # the goal and alarm lines are still drawn

    def test_rows_without_a_service_level_say_so(self, figures: list[Figure]) -> None:
        """Contacts only waiting (or abandoned within the short-abandon limit): rows,
        but no service level to plot."""
        stamp = Timestamp()
        stamp.FromDatetime(DAY)
        waiting = pb.ContactReportRow(interval_start=stamp, channel=pb.CHANNEL_PHONE, offered=2)
        response = pb.GetContactReportResponse(rows=[waiting], goals=DEFAULT_GOALS)
        axes = draw(figures, response, DAY, DAY + timedelta(days=1), Interval.HOUR)
        (note,) = [t.get_text() for t in axes.texts]
        assert note.startswith("no service level in this range")

    def test_a_range_with_data_has_no_such_note(self, figures: list[Figure]) -> None:
        figure = laid_out(figures, a_day())
        assert not [t for t in every_text(figure) if t.startswith("no ")]
