"""GetForecast and GetForecastAccuracy through a real server on a real port, on three
weeks of synthetic hourly history up to now (scenarios/history.py's generator)."""

from __future__ import annotations

import csv
import io
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import asyncpg
import grpc
import pytest
from contactrouter.v1 import contact_router_pb2 as pb
from contactrouter.v1 import contact_router_pb2_grpc as pb_grpc
from google.protobuf.timestamp_pb2 import Timestamp

from router.reporting.intervals import Interval
from router.server import RunningRouter
from scenarios.history import write_history
from tests.acceptance.conftest import details, reason_of, rpc_error
from tests.acceptance.test_reporting_cli import command


def stamp(value: datetime) -> Timestamp:
    result = Timestamp()
    result.FromDatetime(value)
    return result


def this_hour() -> datetime:
    return datetime.now(UTC).replace(minute=0, second=0, microsecond=0)


def forecast_request(**changes: object) -> pb.GetForecastRequest:
    fields: dict[str, object] = {
        "channel": pb.CHANNEL_PHONE,
        "interval": pb.INTERVAL_LENGTH_HOUR,
        "horizon_days": 2,
    }
    fields.update(changes)
    return pb.GetForecastRequest(**fields)  # type: ignore[arg-type]


class TestGetForecast:
    async def test_forecast_over_a_real_port_is_stored_and_measured(
        self, reporting: pb_grpc.ReportingServiceAsyncStub, db: asyncpg.Connection
    ) -> None:
        """Two days of hourly phone contacts from the current hour, with the history and
        the limits stated; the stored forecast is what accuracy reads."""
        start = this_hour()
        await write_history(
            db, 3, Interval.HOUR, peak_per_hour=40.0, start=start - timedelta(weeks=3)
        )
        response = await reporting.GetForecast(forecast_request(), timeout=110)
        assert len(response.rows) == 48
        assert response.rows[0].interval_start.ToDatetime(tzinfo=UTC) == start
        assert all(r.contacts_lower <= r.contacts <= r.contacts_upper for r in response.rows)
        # From the local (UTC) midnight of the first recorded day up to the start.
        first_day = (start - timedelta(weeks=3)).replace(hour=0)
        assert len(response.history) == (start - first_day) // timedelta(hours=1)
        assert response.history[0].interval_start.ToDatetime(tzinfo=UTC) == first_day
        assert sum(h.contacts for h in response.history) > 0
        assert response.forecast_id > 0
        assert response.level == pytest.approx(0.8)
        assert "holiday" in response.limitations
        assert response.time_zone == "UTC"
        assert "MSTL" in response.model
        stored = await db.fetchval(
            "SELECT count(*) FROM forecast_intervals WHERE forecast_id = $1",
            response.forecast_id,
        )
        assert stored == 48
        # The forecast's intervals have not happened yet: nothing to measure.
        accuracy = await reporting.GetForecastAccuracy(
            pb.GetForecastAccuracyRequest(
                channel=pb.CHANNEL_PHONE,
                interval=pb.INTERVAL_LENGTH_HOUR,
                start=stamp(start - timedelta(days=1)),
                end=stamp(start + timedelta(days=2)),
            )
        )
        assert list(accuracy.intervals) == []
        assert not accuracy.HasField("wape")
        assert "WAPE" in accuracy.formula

    async def test_without_enough_history_is_failed_precondition(
        self, reporting: pb_grpc.ReportingServiceAsyncStub
    ) -> None:
        """No chat was ever recorded: FAILED_PRECONDITION saying how much is needed."""
        error = await rpc_error(reporting.GetForecast(forecast_request(channel=pb.CHANNEL_CHAT)))
        assert error.code() == grpc.StatusCode.FAILED_PRECONDITION
        assert reason_of(error) == "NOT_ENOUGH_HISTORY"
        assert "at least 15 days of recorded contacts" in details(error)

    @pytest.mark.parametrize(
        ("changes", "field"),
        [
            ({"channel": pb.CHANNEL_UNSPECIFIED}, "channel"),
            ({"channel": 99}, "channel"),
            ({"interval": pb.INTERVAL_LENGTH_DAY}, "interval"),
            ({"interval": pb.INTERVAL_LENGTH_UNSPECIFIED}, "interval"),
            ({"horizon_days": 0}, "horizon_days"),
            ({"horizon_days": 57}, "horizon_days"),
            ({"history_days": 14}, "history_days"),
            ({"history_days": 92}, "history_days"),
            ({"level": 0.999}, "level"),
            ({"level": float("nan")}, "level"),
            ({"start": Timestamp(seconds=4_102_444_800)}, "start"),  # 2100
        ],
    )
    async def test_bad_input_is_invalid_argument_naming_the_field(
        self,
        reporting: pb_grpc.ReportingServiceAsyncStub,
        db: asyncpg.Connection,
        changes: dict[str, object],
        field: str,
    ) -> None:
        """Each bad field is named; nothing is stored."""
        error = await rpc_error(reporting.GetForecast(forecast_request(**changes)))
        assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert details(error).startswith(f"{field}:")
        assert await db.fetchval("SELECT count(*) FROM forecasts") == 0

    @pytest.mark.parametrize(
        ("changes", "field"),
        [
            ({"channel": pb.CHANNEL_UNSPECIFIED}, "channel"),
            ({"interval": pb.INTERVAL_LENGTH_WEEK}, "interval"),
            ({"end": None}, "end"),
            ({"end": stamp(datetime(2026, 6, 2, tzinfo=UTC))}, "end"),  # 93 days
            ({"forecast_id": 2**63}, "forecast_id"),
        ],
    )
    async def test_bad_accuracy_range_is_invalid_argument(
        self,
        reporting: pb_grpc.ReportingServiceAsyncStub,
        changes: dict[str, object],
        field: str,
    ) -> None:
        """The accuracy request's fields are checked the same way."""
        fields: dict[str, object] = {
            "channel": pb.CHANNEL_PHONE,
            "interval": pb.INTERVAL_LENGTH_HOUR,
            "start": stamp(datetime(2026, 3, 1, tzinfo=UTC)),
            "end": stamp(datetime(2026, 3, 8, tzinfo=UTC)),
        }
        fields.update(changes)
        request = pb.GetForecastAccuracyRequest(
            **{k: v for k, v in fields.items() if v is not None}  # type: ignore[arg-type]
        )
        error = await rpc_error(reporting.GetForecastAccuracy(request))
        assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert details(error).startswith(f"{field}:")


class TestForecastCommand:
    async def test_table_csv_json_chart_and_accuracy(
        self, router_server: RunningRouter, db: asyncpg.Connection, tmp_path: Path
    ) -> None:
        """`contact-router forecast` prints the forecast as a table, CSV and JSON, draws
        its chart, and `--accuracy` measures a backtest stored a week ago."""
        start = this_hour()
        await write_history(
            db, 3, Interval.HOUR, peak_per_hour=40.0, start=start - timedelta(weeks=3)
        )
        router = ("--router", f"127.0.0.1:{router_server.port}")
        chart = tmp_path / "forecast.png"
        code, out, err = await command(
            "forecast",
            "--interval",
            "hour",
            "--days",
            "1",
            "--chart",
            str(chart),
            *router,
            within=110,
        )
        assert code == 0, err
        assert "interval" in out
        assert "holiday" in out
        assert chart.stat().st_size > 10_000
        code, out, err = await command(
            "forecast",
            "--interval",
            "hour",
            "--days",
            "1",
            "--format",
            "csv",
            *router,
            within=110,
        )
        assert code == 0, err
        rows = list(csv.DictReader(io.StringIO(out)))
        assert len(rows) == 24
        assert set(rows[0]) == {"interval", "contacts", "lower", "upper", "aht_s"}
        # A backtest: the last week forecast from the two before it (15 days at least
        # are needed: the history is 14 days and a bit when it starts a day later).
        backtest = (start - timedelta(days=6)).isoformat()
        code, out, err = await command(
            "forecast",
            "--interval",
            "hour",
            "--days",
            "6",
            "--start",
            backtest,
            "--format",
            "json",
            *router,
            within=110,
        )
        assert code == 0, err
        made = json.loads(out)
        code, out, err = await command(
            "forecast",
            "--interval",
            "hour",
            "--accuracy",
            f"{(start - timedelta(days=6)).date()}..{(start - timedelta(days=1)).date()}",
            "--forecast-id",
            str(made["forecast_id"]),
            "--format",
            "json",
            *router,
        )
        assert code == 0, err
        accuracy = json.loads(out)
        assert 0 < accuracy["wape"] < 1
        assert len(accuracy["days"]) >= 5
        assert all(r["forecast_id"] == made["forecast_id"] for r in accuracy["intervals"])

    async def test_a_refused_field_names_its_flag(self, router_server: RunningRouter) -> None:
        code, _, err = await command(
            "forecast", "--days", "60", "--router", f"127.0.0.1:{router_server.port}"
        )
        assert code == 1
        assert "--days" in err
