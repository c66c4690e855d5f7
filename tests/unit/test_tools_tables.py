"""The tools' one table renderer, and the ranges people name on the command line."""

from __future__ import annotations

import csv
import io
import json
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest
from contact_router_tools.ranges import named_range
from contact_router_tools.tables import (
    Figure,
    number,
    percent,
    records,
    render_csv,
    render_json,
    render_markdown,
    render_table,
    seconds,
)

T0 = datetime(2026, 3, 4, 14, 7, 30, tzinfo=UTC)  # a Wednesday


def u(year: int, month: int, day: int, hour: int) -> datetime:
    return datetime(year, month, day, hour, tzinfo=UTC)


class TestRanges:
    @pytest.mark.parametrize(
        ("name", "start", "end"),
        [
            ("today", datetime(2026, 3, 4, tzinfo=UTC), datetime(2026, 3, 5, tzinfo=UTC)),
            ("yesterday", datetime(2026, 3, 3, tzinfo=UTC), datetime(2026, 3, 4, tzinfo=UTC)),
            ("this-month", datetime(2026, 3, 1, tzinfo=UTC), datetime(2026, 4, 1, tzinfo=UTC)),
            ("last-month", datetime(2026, 2, 1, tzinfo=UTC), datetime(2026, 3, 1, tzinfo=UTC)),
            ("2025-12", datetime(2025, 12, 1, tzinfo=UTC), datetime(2026, 1, 1, tzinfo=UTC)),
            ("2026-02-28", datetime(2026, 2, 28, tzinfo=UTC), datetime(2026, 3, 1, tzinfo=UTC)),
        ],
    )
    def test_named_ranges(self, name: str, start: datetime, end: datetime) -> None:
        assert named_range(name, T0) == (start, end)

    @pytest.mark.parametrize(
        ("name", "start", "end"),
        [
            ("this-year", u(2025, 12, 31, 23), u(2026, 12, 31, 23)),
            ("last-year", u(2024, 12, 31, 23), u(2025, 12, 31, 23)),
            ("2027", u(2026, 12, 31, 23), u(2027, 12, 31, 23)),
            # 23 and 25 hours: the days of the changes to and from summer time.
            ("2026-03-29", u(2026, 3, 28, 23), u(2026, 3, 29, 22)),
            ("2026-10-25", u(2026, 10, 24, 22), u(2026, 10, 25, 23)),
            ("2026-03", u(2026, 2, 28, 23), u(2026, 3, 31, 22)),
            ("today", u(2026, 3, 3, 23), u(2026, 3, 4, 23)),
        ],
    )  # fmt: skip
    def test_ranges_in_a_time_zone_begin_at_local_midnight(
        self, name: str, start: datetime, end: datetime
    ) -> None:
        """Named days, months and years of a center in Paris, as UTC instants."""
        assert named_range(name, T0, ZoneInfo("Europe/Paris")) == (start, end)

    def test_today_is_the_local_day(self) -> None:
        """At 23:30 UTC it is already tomorrow in Paris."""
        late = datetime(2026, 3, 4, 23, 30, tzinfo=UTC)
        assert named_range("today", late, ZoneInfo("Europe/Paris"))[0] == datetime(
            2026, 3, 4, 23, tzinfo=UTC
        )

    @pytest.mark.parametrize("name", ["tomorrow", "2026-13", "9999-12-31"])
    def test_unknown_range_says_what_is_accepted(self, name: str) -> None:
        """The last day a datetime holds is refused like any other, not an OverflowError."""
        with pytest.raises(ValueError, match="today, yesterday"):
            named_range(name, T0)


class TestRendering:
    TABLE = (
        ("interval", "channel", "offered", "service_level", "asa"),
        [
            (datetime(2026, 3, 4, 14, tzinfo=UTC), "phone", 12, percent(0.8333), seconds(4.25)),
            (datetime(2026, 3, 4, 14, 15, tzinfo=UTC), "chat", 3, percent(None), None),
        ],
    )

    def test_terminal_table_aligns_numbers_right(self) -> None:
        lines = render_table(self.TABLE).splitlines()
        assert lines[0].split() == ["interval", "channel", "offered", "service_level", "asa"]
        assert lines[2].startswith("2026-03-04 14:00  phone")
        assert lines[2].endswith("83.3%  4.2s")
        assert lines[3].endswith("-     -")
        assert len({len(line) for line in lines[:3]}) == 1

    def test_an_empty_table_says_so_under_its_header(self) -> None:
        lines = render_table((("a", "b"), []), indent="  ").splitlines()
        assert lines == ["  a  b", "  -  -", "  (no rows)"]

    def test_csv_keeps_full_precision_and_iso_times(self) -> None:
        """Figures are written bare: the fraction, not the percentage."""
        rows = list(csv.reader(io.StringIO(render_csv(self.TABLE))))
        assert rows[1] == ["2026-03-04T14:00:00+00:00", "phone", "12", "0.8333", "4.25"]
        assert rows[2][3:] == ["", ""]

    def test_json(self) -> None:
        document = json.loads(render_json({"rows": records(self.TABLE)}))
        assert document["rows"][0]["interval"] == "2026-03-04T14:00:00+00:00"
        assert document["rows"][0]["service_level"] == 0.8333
        assert document["rows"][1]["service_level"] is None

    def test_markdown(self) -> None:
        lines = render_markdown((("a", "b"), [("x", 1.25)])).splitlines()
        assert lines == ["| a | b |", "|---|---|", "| x | 1.2 |"]

    @pytest.mark.parametrize(
        ("figure", "text"),
        [
            (percent(0.5), "50.0%"),
            (percent(-0.0125, signed=True), "-1.2%"),
            (percent(0.25, signed=True), "+25.0%"),
            (seconds(None), "-"),
            (seconds(float("inf")), "inf"),
            (number(0.12345, 3), "0.123"),
            (Figure(20.0, digits=0, unit="s"), "20s"),
        ],
    )
    def test_figures(self, figure: Figure, text: str) -> None:
        assert str(figure) == text
