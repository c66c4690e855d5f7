"""`contact-router staffing --history`: agents needed beside agents ready per interval,
in the table, its summary and the --chart, with missed service level lined up against
under-staffing."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from contact_router_tools.staffing_command import (
    RATIOS,
    draw_staffing,
    has_actual,
    staffing_summary,
    staffing_table,
)
from contact_router_tools.tables import for_people, render_table
from contactrouter.v1 import contact_router_pb2 as pb
from google.protobuf.timestamp_pb2 import Timestamp

TEN = datetime(2026, 3, 2, 10, tzinfo=UTC)


def row(hour: int, agents: int, ready: float | None, measured: float | None) -> pb.StaffingRow:
    stamp = Timestamp()
    stamp.FromDatetime(TEN + timedelta(hours=hour))
    result = pb.StaffingRow(
        interval_start=stamp, calls=20, aht_seconds=180, traffic_erlangs=1.0, agents=agents
    )
    if ready is not None:
        result.staffed_agents = ready
        result.missed = measured is not None and measured < 0.8
    if measured is not None:
        result.measured_service_level = measured
    return result


HISTORY = pb.GetStaffingResponse(
    rows=[row(0, 3, 3.5, 1.0), row(1, 3, 1.0, 0.0), row(2, 3, 2.0, 0.85), row(3, 0, 1.0, None)],
    target_service_level=0.8,
)


class TestActualInTheTable:
    def test_history_rows_show_ready_gap_measured_and_missed(self) -> None:
        header, rows = staffing_table(HISTORY, with_abandonment=False)
        assert header[-4:] == ["staffed", "gap", "measured_sl", "missed"]
        assert [r[-4:] for r in rows] == [
            [3.5, 0.5, 1.0, ""],
            [1.0, -2.0, 0.0, "MISSED"],
            [2.0, -1.0, 0.85, ""],
            [1.0, 1.0, None, ""],
        ]

    def test_the_measured_service_level_reads_as_a_percentage(self) -> None:
        """As the planned service level beside it: 85.0%, not 0.85."""
        text = render_table(for_people(staffing_table(HISTORY, with_abandonment=False), RATIOS))
        third = text.splitlines()[4]
        assert "85.0%" in third
        assert " 0.85 " not in third

    def test_a_forecast_has_no_actual_columns(self) -> None:
        forecast = pb.GetStaffingResponse(rows=[row(0, 3, None, None)])
        assert not has_actual(forecast)
        header, _ = staffing_table(forecast, with_abandonment=False)
        assert "staffed" not in header

    def test_callback_work_shows_beside_the_calls_erlangs(self) -> None:
        """Phone from history: the callbacks' Erlangs before the agents they are in;
        without them (a forecast, chat) no such column."""
        phone = pb.GetStaffingResponse(rows=[row(0, 4, 3.5, 1.0)])
        phone.rows[0].callback_erlangs = 1.0
        header, rows = staffing_table(phone, with_abandonment=False)
        assert header[3:6] == ["erlangs", "callback_erl", "agents"]
        assert rows[0][3:6] == [1.0, 1.0, 4]
        assert "callback_erl" not in staffing_table(HISTORY, with_abandonment=False)[0]

    def test_the_summary_lines_missed_up_with_under_staffing(self) -> None:
        assert staffing_summary(HISTORY) == (
            "Under-staffed (fewer ready than needed): 2 of 4 intervals; service level "
            "missed: 1, of which 1 under-staffed"
        )

    def test_the_chart_is_written(self, tmp_path: Path) -> None:
        path = tmp_path / "staffing.png"
        draw_staffing(HISTORY, path, "Agents for phone, per hour", timedelta(hours=1))
        assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
