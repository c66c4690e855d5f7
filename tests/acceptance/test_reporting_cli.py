"""`contact-router report` and `contact-router staffing` against a real router."""

from __future__ import annotations

import argparse
import asyncio
import csv
import io
import json
import math
import os
import re
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from contact_router_tools.chart import service_level_series
from contact_router_tools.connection import DEFAULT_ROUTER, RouterConnection
from contact_router_tools.report_command import add_report_arguments, unsplit_report
from contact_router_tools.staffing_command import add_staffing_arguments
from contactrouter.v1 import contact_router_pb2 as pb
from contactrouter.v1 import contact_router_pb2_grpc as pb_grpc

from router.domain import RoutingPolicy
from router.server import RunningRouter
from tests.acceptance.conftest import OfferStreams, finish, next_offer, sign_in, submit
from tests.acceptance.test_reporting_reports import alice_handles, around_now

ROOT = Path(__file__).parents[2]


async def command(
    *args: str, env: dict[str, str] | None = None, within: float = 60
) -> tuple[int, str, str]:
    """Run `contact-router ARGS` in a child process (`env` added to the environment, from
    which CONTACT_ROUTER_TOKEN is removed first): exit code, stdout, stderr."""
    environment = {k: v for k, v in os.environ.items() if k != "CONTACT_ROUTER_TOKEN"}
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "router.cli",
        *args,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env=environment | (env or {}),
    )
    out, err = await asyncio.wait_for(process.communicate(), within)
    assert process.returncode is not None
    return process.returncode, out.decode(), err.decode()


@pytest.fixture
async def worked(
    router_server: RunningRouter,
    contacts: pb_grpc.ContactServiceAsyncStub,
    agents: pb_grpc.AgentServiceAsyncStub,
    offer_streams: OfferStreams,
) -> str:
    """Two handled calls of one customer and another's chat today; the router's address."""
    await alice_handles(
        contacts,
        agents,
        offer_streams,
        ("call-1", pb.CHANNEL_PHONE, "customer-1"),
        ("call-2", pb.CHANNEL_PHONE, "customer-1"),
        ("chat-1", pb.CHANNEL_CHAT, "customer-2"),
    )
    return f"127.0.0.1:{router_server.port}"


def help_text(add_arguments: Callable[[argparse.ArgumentParser], None]) -> str:
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    return " ".join(parser.format_help().split())


def option_help(text: str, option: str, following: str) -> str:
    """What --help says of `option`, up to the option printed after it."""
    start = text.index(option, text.index("options:"))
    return text[start : text.index(following, start + len(option))]


def table_header(out: str) -> list[str]:
    """The column names of the staffing table (the line above the rule of dashes)."""
    lines = out.splitlines()
    (rule,) = [i for i, line in enumerate(lines) if line.startswith("----")]
    return lines[rule - 1].split()


def table_rows(out: str) -> list[dict[str, str]]:
    """The staffing table's rows by column (the interval is two words: date and time)."""
    lines = out.splitlines()
    (rule,) = [i for i, line in enumerate(lines) if line.startswith("----")]
    header = lines[rule - 1].split()
    rows = []
    for line in lines[rule + 1 :]:
        if not line.strip():
            break
        day, time, *cells = line.split()
        rows.append(dict(zip(header, [f"{day} {time}", *cells], strict=True)))
    return rows


class TestHelp:
    def test_report_says_its_defaults_and_that_channel_repeats(self) -> None:
        text = help_text(add_report_arguments)
        interval = option_help(text, "--interval {", "--channel {")
        assert "default hour" in interval
        channel = option_help(text, "--channel {", "--by-skill")
        assert "repeat" in channel
        assert "default" in channel

    def test_staffing_says_its_defaults(self) -> None:
        text = help_text(add_staffing_arguments)
        assert "default phone" in option_help(text, "--channel {", "--interval {")
        assert "default 30m" in option_help(text, "--interval {", "--forecast")

    @pytest.mark.parametrize("add_arguments", [add_report_arguments, add_staffing_arguments])
    def test_the_router_flag_says_its_default(
        self, add_arguments: Callable[[argparse.ArgumentParser], None]
    ) -> None:
        text = help_text(add_arguments)
        assert f"default {DEFAULT_ROUTER}" in option_help(text, "--router", "--tls-ca")

    async def test_the_report_benchmark_says_what_it_does_in_a_whole_sentence(self) -> None:
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "bench.report_queries", "--help",
            stdout=asyncio.subprocess.PIPE, cwd=ROOT,
        )  # fmt: skip
        out, _ = await asyncio.wait_for(process.communicate(), 60)
        text = " ".join(out.decode().split())
        assert "into a scratch database and print EXPLAIN ANALYZE timings" in text


class TestReportCommand:
    async def test_table(self, worked: str) -> None:
        code, out, err = await command("report", "today", "--router", worked)
        assert code == 0, err
        assert "service level = answered within threshold" in out
        for heading in ("Contacts", "Agents", "Dispositions", "Feedback"):
            assert f"\n{heading}\n" in out
        assert "100.0%" in out
        assert "alice" in out
        assert "to_previous_agent  previous_agent_share" in out

    async def test_csv_and_json(self, worked: str) -> None:
        code, out, err = await command(
            "report", "today", "--router", worked, "--format", "csv", "--section", "contacts"
        )
        assert code == 0, err
        rows = list(csv.DictReader(io.StringIO(out)))
        phone = [r for r in rows if r["channel"] == "phone"]
        assert sum(int(r["offered"]) for r in phone) == 2
        assert {r["service_level"] for r in phone} == {"1.0"}
        # The second call's customer called before and reaches alice again.
        returning = [(r["channel"], r["returning"], r["to_previous_agent"],
                      r["previous_agent_share"]) for r in rows]  # fmt: skip
        assert sorted(returning) == [("chat", "0", "0", ""), ("phone", "1", "1", "1.0")], out

        code, out, err = await command("report", "today", "--router", worked, "--format", "json")
        assert code == 0, err
        document = json.loads(out)
        assert document["agents"][0]["agent"] == "alice"
        assert document["agents"][0]["handled"] == 3
        assert document["dispositions"][0]["disposition"] == "order-status"
        (phone,) = [r for r in document["contacts"] if r["channel"] == "phone"]
        assert (phone["returning"], phone["to_previous_agent"]) == (1, 1)
        assert phone["previous_agent_share"] == 1.0

    async def test_chart(self, worked: str, tmp_path: Path) -> None:
        """The chart is written, and one line on stderr says where (stdout keeps the
        report alone, for a pipe)."""
        chart = tmp_path / "sl.png"
        code, out, err = await command(
            "report", "today", "--router", worked, "--interval", "15m", "--chart", str(chart)
        )
        assert code == 0, err
        assert chart.read_bytes().startswith(b"\x89PNG\r\n\x1a\n")
        (line,) = err.strip().splitlines()
        assert line == f"contact-router report: chart written to {chart.resolve()}"
        assert str(chart) not in out

    async def test_a_chart_that_cannot_be_drawn_keeps_the_tables(
        self, worked: str, tmp_path: Path
    ) -> None:
        """The tables are printed first; the chart's failure is one line and exit 1."""
        chart = tmp_path / "no such folder" / "sl.png"
        code, out, err = await command("report", "today", "--router", worked, "--chart", str(chart))
        assert code == 1
        assert "\nContacts\n" in out
        assert "alice" in out
        (line,) = err.strip().splitlines()
        assert str(chart) in line

    async def test_a_reader_that_leaves_early_gets_no_traceback(self, worked: str) -> None:
        """`report | head -1`: the pipe closes before the tables are written."""
        read, write = os.pipe()
        os.close(read)  # the reader is gone before the first line
        try:
            process = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "router.cli", "report", "today", "--router", worked,
                stdout=write, stderr=asyncio.subprocess.PIPE,
            )  # fmt: skip
        finally:
            os.close(write)
        _, err = await asyncio.wait_for(process.communicate(), 60)
        assert process.returncode == 1
        assert err.decode() == ""

    async def test_bad_range_is_a_usage_error(self, router_server: RunningRouter) -> None:
        code, _, err = await command(
            "report", "tomorrow", "--router", f"127.0.0.1:{router_server.port}"
        )
        assert code == 2
        assert "unknown range 'tomorrow'" in err


class TestReportInAZoneAndByTeam:
    async def test_a_year_by_team_in_another_zone(self, worked: str) -> None:
        """--interval year, --by-team and --time-zone: the year begins at local midnight
        in Kathmandu, printed with its offset, and alice signed in without a team."""
        code, out, err = await command(
            "report", "this-year", "--router", worked, "--interval", "year", "--by-team",
            "--time-zone", "Asia/Kathmandu", "--format", "json",
        )  # fmt: skip
        assert code == 0, err
        document = json.loads(out)
        assert document["time_zone"] == "Asia/Kathmandu"
        assert document["range"]["start"].endswith("-01-01T00:00:00+05:45")
        assert {r["interval"] for r in document["contacts"]} == {document["range"]["start"]}
        assert {r["team"] for r in document["contacts"]} == {"-"}
        assert document["agents"][0]["team"] == "-"

    @pytest.mark.parametrize(
        ("flags", "named"),
        [(("--time-zone", "Mars/Olympus"), "--time-zone"), (("--team", "nobody"), "--team")],
    )
    async def test_an_unknown_zone_or_team_is_named_by_its_flag(
        self, worked: str, flags: tuple[str, ...], named: str
    ) -> None:
        code, _, err = await command("report", "today", "--router", worked, *flags)
        assert code in (1, 2), err
        (line,) = err.strip().splitlines()
        assert f"{named}: " in line


class TestChartBySkill:
    @pytest.fixture
    def policy(self) -> RoutingPolicy:
        """Every abandon counts in service level, however quick."""
        return RoutingPolicy(phone_reserve=0, short_abandon=0.0)

    async def test_a_contact_with_two_skills_counts_once(
        self,
        router_server: RunningRouter,
        contacts: pb_grpc.ContactServiceAsyncStub,
        agents: pb_grpc.AgentServiceAsyncStub,
        reporting: pb_grpc.ReportingServiceAsyncStub,
        offer_streams: OfferStreams,
    ) -> None:
        """A call needing two skills answered at once, another abandoned while alice talks:
        service level 1 / 2. Summed over the by-skill rows it would be 2 / 3."""
        await sign_in(agents, "alice", skills=("lang:es", "returns"))
        stream = await offer_streams.open("alice")
        await submit(contacts, "call-1", skills=("lang:es", "returns"))
        offer = await next_offer(stream)
        await agents.AcceptOffer(pb.AcceptOfferRequest(agent_id="alice", offer_id=offer.offer_id))
        waiting = await submit(contacts, "call-2")
        await contacts.AbandonContact(pb.AbandonContactRequest(contact_id=waiting.contact_id))
        await finish(agents, "alice", offer.contact.contact_id)
        start, end = around_now()
        request = pb.GetContactReportRequest(
            start=start, end=end, interval=pb.INTERVAL_LENGTH_DAY, by_skill=True
        )
        split = await reporting.GetContactReport(request)
        assert sorted(r.skill for r in split.rows) == ["", "lang:es", "returns"]
        router = RouterConnection(f"127.0.0.1:{router_server.port}")
        charted = await unsplit_report(router, reporting, request, split)
        ((_, level),) = service_level_series(charted)["phone"]
        assert level == 0.5


class TestStaffingCommand:
    async def test_forecast_file(self, router_server: RunningRouter, tmp_path: Path) -> None:
        forecast = tmp_path / "forecast.csv"
        forecast.write_text(
            "interval_start,calls,aht_seconds\n"
            "2026-03-02T10:00:00+00:00,100,180\n"
            "2026-03-02T10:30:00+00:00,0,180\n"
        )
        code, out, err = await command(
            "staffing", "--forecast", str(forecast), "--format", "json",
            "--router", f"127.0.0.1:{router_server.port}",
        )  # fmt: skip
        assert code == 0, err
        document = json.loads(out)
        assert [i["agents"] for i in document["intervals"]] == [14, 0]
        assert document["threshold_seconds"] == 20.0
        chart = tmp_path / "staffing.png"
        code, _, err = await command(
            "staffing", "--forecast", str(forecast), "--chart", str(chart),
            "--router", f"127.0.0.1:{router_server.port}",
        )  # fmt: skip
        assert code != 0
        assert "--chart" in err
        assert not chart.exists()

    async def test_goal_and_answer_within(
        self, router_server: RunningRouter, tmp_path: Path
    ) -> None:
        """--goal and --answer-within: the share and the threshold, by unambiguous names."""
        forecast = tmp_path / "forecast.csv"
        forecast.write_text("interval_start,calls,aht_seconds\n2026-03-02T10:00:00+00:00,100,180\n")
        code, out, err = await command(
            "staffing", "--forecast", str(forecast), "--format", "json",
            "--goal", "0.95", "--answer-within", "30",
            "--router", f"127.0.0.1:{router_server.port}",
        )  # fmt: skip
        assert code == 0, err
        document = json.loads(out)
        assert (document["target_service_level"], document["threshold_seconds"]) == (0.95, 30.0)
        assert document["intervals"][0]["agents"] == 15  # 80% within 20 s: 14

    async def test_history_table(self, worked: str, tmp_path: Path) -> None:
        code, out, err = await command("staffing", "--history", "today", "--router", worked)
        assert code == 0, err
        assert "Erlang C" in out
        assert "Peak: 1 agent handling contacts; 1 to schedule" in out
        assert "measured_sl" in out
        assert "Under-staffed (fewer ready than needed): " in out
        chart = tmp_path / "staffing.png"
        code, _, err = await command(
            "staffing", "--history", "today", "--chart", str(chart), "--router", worked
        )  # fmt: skip
        assert code == 0, err
        assert chart.read_bytes()[:4] == b"\x89PNG"
        code, out, err = await command(
            "staffing", "--history", "today", "--channels", "phone,chat,email",
            "--format", "json", "--router", worked,
        )  # fmt: skip
        assert code == 0, err
        document = json.loads(out)
        assert document["channels"] == ["phone", "chat", "email"]
        assert all("separate" in i and "staffed" in i for i in document["intervals"])
        code, _, err = await command(
            "staffing", "--history", "today", "--channels", "phone,fax", "--router", worked
        )  # fmt: skip
        assert code != 0
        assert "--channels" in err

    async def test_the_table_counts_contacts_and_shows_abandon_with_erlang_a_only(
        self, router_server: RunningRouter, tmp_path: Path
    ) -> None:
        """Chats and emails are contacts too, not calls; Erlang C has no abandon figure."""
        forecast = tmp_path / "forecast.csv"
        forecast.write_text("interval_start,calls,aht_seconds\n2026-03-02T10:00:00,100,180\n")
        base = ["staffing", "--forecast", str(forecast)]
        base += ["--router", f"127.0.0.1:{router_server.port}"]
        code, out, err = await command(*base)
        assert code == 0, err
        header = table_header(out)
        assert header[:2] == ["interval", "contacts"]
        assert "calls" not in header
        assert "abandon" not in header
        assert "Peak: 14 agents" in out
        code, out, err = await command(*base, "--erlang-a", "--patience", "120")
        assert code == 0, err
        assert table_header(out)[-1] == "abandon"

    async def test_an_interval_without_traffic_is_not_a_perfect_one(
        self, router_server: RunningRouter, tmp_path: Path
    ) -> None:
        """It keeps its row (a plan needs every interval), with no service level, ASA,
        occupancy or chance of waiting to show: there was nobody to answer."""
        forecast = tmp_path / "forecast.csv"
        forecast.write_text(
            "interval_start,calls,aht_seconds\n"
            "2026-03-02T10:00:00+00:00,100,180\n"
            "2026-03-02T10:30:00+00:00,0,180\n"
        )
        base = ["staffing", "--forecast", str(forecast)]
        base += ["--router", f"127.0.0.1:{router_server.port}"]
        code, out, err = await command(*base)
        assert code == 0, err
        busy, quiet = table_rows(out)
        assert busy["service_level"].endswith("%")
        assert quiet["agents"] == "0"
        for column in ("service_level", "asa_s", "occupancy", "p_wait"):
            assert quiet[column] == "-", quiet
        assert "100.0%" not in " ".join(quiet.values())
        code, out, err = await command(*base, "--format", "json")
        assert code == 0, err
        _, row = json.loads(out)["intervals"]
        assert (row["agents"], row["service_level"], row["asa_s"], row["occupancy"]) == (
            0, None, None, None,
        )  # fmt: skip

    async def test_refusal_is_reported(self, router_server: RunningRouter, tmp_path: Path) -> None:
        forecast = tmp_path / "forecast.csv"
        forecast.write_text("interval_start,calls,aht_seconds\n2026-03-02T10:00:00,-5,180\n")
        code, _, err = await command(
            "staffing", "--forecast", str(forecast),
            "--router", f"127.0.0.1:{router_server.port}",
        )  # fmt: skip
        assert code == 1
        (line,) = err.strip().splitlines()
        assert f"--forecast {forecast} line 2: calls" in line

    @pytest.mark.parametrize(
        ("flags", "named", "field"),
        [
            (("--erlang-a",), "--patience", "patience_seconds"),
            (("--patience", "30"), "--patience", "patience_seconds"),
            (("--goal", "1.5"), "--goal", "target_service_level"),
            (("--shrinkage", "1.5"), "--shrinkage", "shrinkage"),
            (("--max-occupancy", "2"), "--max-occupancy", "max_occupancy"),
        ],
    )
    async def test_a_refused_field_is_named_by_its_flag(
        self,
        router_server: RunningRouter,
        tmp_path: Path,
        flags: tuple[str, ...],
        named: str,
        field: str,
    ) -> None:
        """The router names protobuf fields; the command names its own flags."""
        forecast = tmp_path / "forecast.csv"
        forecast.write_text("interval_start,calls,aht_seconds\n2026-03-02T10:00:00,10,180\n")
        code, _, err = await command(
            "staffing", "--forecast", str(forecast), *flags,
            "--router", f"127.0.0.1:{router_server.port}",
        )  # fmt: skip
        assert code == 1
        (line,) = err.strip().splitlines()
        assert line.startswith(f"contact-router staffing: {named}: ")
        assert field not in line.replace(named, "")
        # No protobuf field at all ("goes with with_abandonment" says --erlang-a).
        assert not re.search(r"\b[a-z]+(_[a-z]+)+\b", line.replace(str(forecast), ""))

    async def test_concurrency_and_shrinkage(
        self, router_server: RunningRouter, tmp_path: Path
    ) -> None:
        """Chat agents hold 3 chats each; a quarter of paid time is shrinkage: agents to
        schedule are the agents needed / 0.75, and no footer asks to add shrinkage."""
        forecast = tmp_path / "forecast.csv"
        forecast.write_text("interval_start,calls,aht_seconds\n2026-03-02T10:00:00,300,180\n")
        base = ["staffing", "--channel", "chat", "--forecast", str(forecast)]
        base += ["--router", f"127.0.0.1:{router_server.port}"]
        code, out, err = await command(*base, "--concurrency", "1", "--format", "json")
        assert code == 0, err
        (alone,) = json.loads(out)["intervals"]
        code, out, err = await command(
            *base, "--concurrency", "3", "--shrinkage", "0.25", "--format", "json"
        )
        assert code == 0, err
        document = json.loads(out)
        (row,) = document["intervals"]
        assert (document["concurrency"], document["shrinkage"]) == (3, 0.25)
        assert row["agents"] < alone["agents"] / 2
        assert row["scheduled"] == math.ceil(row["agents"] / 0.75)
        code, out, err = await command(*base, "--concurrency", "3", "--shrinkage", "0.25")
        assert code == 0, err
        assert "scheduled" in out
        assert "add shrinkage" not in out
