"""The simulation report's text: every section it can print, the documented sample output
that must show each of them, how long a run says it lasts, what its heading claims, and
the flags of `simulate`."""

from __future__ import annotations

import argparse
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

import pytest
from contact_router_tools import simulate
from contact_router_tools.simulation.records import AgentRecord, ContactRecord, RunCounters
from contact_router_tools.simulation.report import SimulationReport
from contact_router_tools.simulation.run import run_clock
from contact_router_tools.simulation.text import SECTIONS, render, server_report
from contactrouter.v1 import contact_router_pb2 as pb

from router.errors import ConfigError

SAMPLE = Path(__file__).parents[2] / "docs" / "sample-simulate.txt"
PHONE_ONLY = str(Path(__file__).parents[2] / "scenarios" / "phone_only.toml")
THRESHOLDS = {"phone": 20.0, "chat": 60.0, "email": 3600.0}


def everything() -> SimulationReport:
    """A report with something to say in every section."""
    records = [
        ContactRecord(
            "k1", "phone", submitted=0.0, answered=5.0, ended=50.0, completed=55.0,
            agent_id="ann", estimated_wait=4.0, queue_position=1, sampled_at=0.5,
            preferred_skills=frozenset({"lang:es"}), matched=True, previous_agent="ann",
        ),
        ContactRecord(
            "k2", "phone", submitted=1.0, answered=30.0, agent_id="bob",
            wait_reason="no_agent_signed_in", backlog=True,
        ),
        ContactRecord("k3", "chat", submitted=2.0, abandoned=90.0, abandon_reason="patience"),
        ContactRecord(
            "k4", "phone", scheduled=2.5, submitted=3.0, callback_offered=40.0,
            callback_requested=41.0, placed=60.0, reached=80.0, dials=["connected"],
        ),
    ]  # fmt: skip
    agents = [
        AgentRecord("ann", "phone", handled=1, on_shift_from=0.0, on_shift_until=100.0),
        AgentRecord("bob", "phone", handled=0, on_shift_from=10.0, on_shift_until=100.0),
    ]
    counters = RunCounters(errors=Counter({"GetContact UNAVAILABLE": 1}), offers=3)
    counters.refused["AbandonContact FAILED_PRECONDITION"] = 1
    server = pb.GetServiceLevelResponse(
        rows=[pb.ServiceLevelRow(channel=pb.CHANNEL_PHONE, offered=2, answered=2)],
        formula="service level = ...",
    )
    return SimulationReport(
        run_id="r1", scenario="test", seed=1, router="127.0.0.1:1", agents=2,
        time_scale=1.0, arrivals_seconds=60.0, drain_seconds=10.0, warm_up=0.0,
        thresholds=THRESHOLDS, short_abandon_limit=5.0, phone_reserve=1,
        window=("2026-03-04T10:00:00+00:00", "2026-03-04T10:05:00+00:00"),
        records=records, agent_records=agents, counters=counters, server=server,
        notes=["a cap means this here"],
    )  # fmt: skip


def titles(text: str) -> list[str]:
    """The section titles a report's text shows, in order."""
    known = {section.title for section in SECTIONS}
    return [t for line in text.splitlines() for t in known if line.startswith(f"{t} (")]


class TestSections:
    def test_a_full_report_prints_every_section_in_order(self) -> None:
        text = render(everything())
        assert titles(text) == [section.title for section in SECTIONS]

    def test_empty_sections_are_left_out(self) -> None:
        report = everything()
        report.records = [r for r in report.records if r.key == "k3"]
        report.notes = []
        shown = titles(render(report))
        for left_out in (
            "PREFERRED SKILLS", "BACKLOG", "UNSERVED", "QUEUE POSITION", "CALLBACKS", "NOTES",
            "FIDELITY",
        ):  # fmt: skip
            assert left_out not in shown
        assert "THIS RUN'S CONTACTS" in shown

    def test_the_documented_sample_shows_every_section(self) -> None:
        """docs/sample-simulate.txt comes from a real run (`make sample-output`); a section
        added to the report without a new sample fails here."""
        assert titles(SAMPLE.read_text()) == [section.title for section in SECTIONS]

    def test_the_documented_sample_has_todays_heading(self) -> None:
        """The heading words of today's report, and none of an older one's."""
        first = SAMPLE.read_text().splitlines()[0]
        assert first.startswith("simulation ")
        assert "  router " in first
        assert "  target " not in first

    def test_the_heading_claims_no_reserve_it_does_not_know(self) -> None:
        """A run against --router cannot know the router's phone reserve."""
        report = everything()
        assert "phone reserve 1" in render(report).splitlines()[0]
        report.phone_reserve = None
        assert "reserve" not in render(report).splitlines()[0]


class TestServerReport:
    def test_a_row_says_its_day_and_its_threshold_in_whole_simulated_seconds(self) -> None:
        """The router's times are real seconds: x the time scale (1/3 s at 60x is 20 s)."""
        report = everything()
        report.time_scale = 60.0
        row = pb.ServiceLevelRow(channel=pb.CHANNEL_PHONE, offered=1, threshold_seconds=1 / 3)
        row.interval_start.FromDatetime(datetime(2026, 3, 4, tzinfo=UTC))
        report.server = pb.GetServiceLevelResponse(rows=[row], formula="f")
        _, (table, *_) = server_report(report)
        (line,) = [line for line in table.splitlines() if " phone " in line]
        assert line.split()[:3] == ["2026-03-04", "00:00", "phone"]
        assert "20s" in line.split()


def parsed(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    simulate.add_arguments(parser)
    return parser.parse_args(argv)


class TestFlags:
    def test_talk_sets_the_mean_talk_time(self) -> None:
        """--talk CHANNEL=MEAN_SECONDS: the talk alone (handle time is talk + ACW, and
        --wrap-up draws the ACW)."""
        scenario = simulate.scenario_from_args(parsed("--talk", "phone=90", "--wrap-up", "7"))
        phone = scenario.channels["phone"]
        assert (phone.talk.kind, phone.talk.mean) == ("exponential", 90.0)
        assert phone.wrap_up.mean == 7.0
        assert scenario.channels["chat"].talk.mean == simulate.DEFAULT_TALK["chat"]

    def test_a_run_without_flags_has_the_defaults_help_says(self) -> None:
        """Each default is said once (simulate's DEFAULT_*), by the run and by --help."""
        scenario = simulate.scenario_from_args(parsed())
        assert sum(group.count for group in scenario.agents) == simulate.DEFAULT_AGENTS
        assert f"default {simulate.DEFAULT_AGENTS}" in help_of("--agents")
        numbers = simulate.DEFAULT_NUMBERS
        assert scenario.channels["email"].wrap_up.mean == numbers["wrap_up"]
        assert scenario.decline_probability == numbers["decline_probability"]
        (spanish,) = scenario.channels["phone"].mix
        assert spanish.share == numbers["spanish_share"]
        for name, default in numbers.items():
            assert f"default {default:g}" in help_of("--" + name.replace("_", "-"))
        rates = {ch: load.rates_per_hour[0] / 60 for ch, load in scenario.channels.items()}
        assert rates == simulate.DEFAULT_RATES
        assert "defaults phone=12 chat=6 email=4" in help_of("--rate")
        talk = {ch: load.talk.mean for ch, load in scenario.channels.items()}
        assert talk == simulate.DEFAULT_TALK
        assert "defaults phone=20 chat=40 email=30" in help_of("--talk")

    def test_there_is_no_handle_flag(self) -> None:
        with pytest.raises(SystemExit):
            parsed("--handle", "phone=90")

    def test_phone_reserve_sets_the_reserve_of_the_router_a_scenario_run_starts(self) -> None:
        scenario = simulate.scenario_from_args(parsed(PHONE_ONLY, "--phone-reserve", "2"))
        assert scenario.router["phone_reserve"] == 2
        assert "router a scenario run starts" in help_of("--phone-reserve")

    @pytest.mark.parametrize(
        "argv",
        [
            ("--phone-reserve", "2"),
            (PHONE_ONLY, "--router", "127.0.0.1:50051", "--phone-reserve", "2"),
        ],
        ids=["flags only", "a scenario against --router"],
    )
    def test_phone_reserve_without_a_router_to_start_is_refused(
        self, argv: tuple[str, ...]
    ) -> None:
        """The simulator starts no router, so it cannot set the reserve: one line."""
        with pytest.raises(ConfigError) as refused:
            simulate.scenario_from_args(parsed(*argv))
        message = str(refused.value)
        assert message.startswith("--phone-reserve ")
        assert "scenario" in message
        assert "\n" not in message

    def test_a_database_url_without_a_router_to_start_is_refused(self) -> None:
        """--database-url is the database of the router a scenario run starts."""
        with pytest.raises(ConfigError, match=r"^--database-url "):
            simulate.scenario_from_args(parsed("--database-url", "postgresql://x/y"))


class TestHelp:
    def test_time_scale_says_its_default_with_and_without_a_scenario(self) -> None:
        said = help_of("--time-scale")
        assert "default" in said
        assert "the scenario's time_scale" in said
        assert "without a scenario file 1" in said

    def test_the_description_says_where_scenario_files_are(self) -> None:
        """Not a path inside the tools package a newcomer cannot find from the root."""
        text = " ".join((simulate.__doc__ or "").split())
        assert "scenarios/" in text
        assert "see contact_router_tools/scenario.py" not in text


def help_of(flag: str) -> str:
    """The help of one option of `simulate` as --help prints it, on one line."""
    parser = argparse.ArgumentParser()
    simulate.add_arguments(parser)
    lines = parser.format_help().splitlines()
    (start,) = [i for i, line in enumerate(lines) if line.strip().split(" ")[0] == flag]
    said = [lines[start]]
    for line in lines[start + 1 :]:
        # The next option (a wrapped line of help may start with a flag it names).
        if not line.strip() or line.startswith("  -"):
            break
        said.append(line)
    return " ".join(" ".join(said).split())


class TestHeading:
    def test_a_router_the_simulator_started_has_the_scenarios_reserve(self) -> None:
        first = render(everything()).splitlines()[0]
        assert first.endswith("phone reserve 1")

    def test_a_router_at_router_claims_no_reserve(self) -> None:
        """A run against --router does not know the router's reserve: none is shown."""
        report = everything()
        report.phone_reserve = None
        first = render(report).splitlines()[0]
        assert "reserve" not in first
        assert first.endswith("time scale 1x")
        assert report.to_json()["phone_reserve"] is None


class TestHowLongARunLasts:
    def test_help_shows_the_drain(self) -> None:
        """--duration 20 runs about 51 s; the help says why."""
        parser = argparse.ArgumentParser()
        simulate.add_arguments(parser)
        text = " ".join(parser.format_help().split())
        options = text[text.index("options:") :]  # past the usage line
        duration = options[options.index("--duration SECONDS") : options.index("--drain SECONDS")]
        assert "drain" in duration
        assert "duration + drain" in duration
        assert "default 30" in options[options.index("--drain SECONDS") :]

    @pytest.mark.parametrize(
        ("phase", "now", "arrivals_end", "says"),
        [
            ("arrivals", 12.0, None, "arrivals 12/20 s, then drain up to 30 s"),
            ("draining", 25.0, 20.0, "draining 5/30 s"),
            ("closing", 40.0, 20.0, "closing"),
        ],
    )
    def test_progress_line_shows_the_drain(
        self, phase: str, now: float, arrivals_end: float | None, says: str
    ) -> None:
        assert run_clock(phase, now, 20.0, 30.0, arrivals_end) == says
