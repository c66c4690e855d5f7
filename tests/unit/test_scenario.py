"""Scenario files and the figures the simulation report derives from what it recorded."""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import pytest
from contact_router_tools.scenario import ROUTER_SETTINGS, Distribution, ScenarioError, load, parse
from contact_router_tools.simulation.figures import spreads, wait_estimates
from contact_router_tools.simulation.records import AgentRecord, ContactRecord

from router.config import Settings
from router.domain import Channel
from router.variables import VARIABLES

SCENARIOS = Path(__file__).parents[2] / "scenarios"


def _minimal(**extra: Any) -> dict[str, Any]:
    return {
        "channels": {"phone": {"rate_per_hour": 60, "talk": 100}},
        "agents": [{"count": 2}],
        **extra,
    }


class TestScenarioFiles:
    @pytest.mark.parametrize("path", sorted(SCENARIOS.glob("*.toml")), ids=lambda p: p.name)
    def test_every_shipped_scenario_loads(self, path: Path) -> None:
        """The scenario files in scenarios/ are valid."""
        scenario = load(path)
        assert scenario.channels
        assert scenario.agents

    def test_defaults(self) -> None:
        """A minimal scenario: exponential talk time, no wrap-up, a simulated hour at 60x."""
        scenario = parse(_minimal())
        assert scenario.time_scale == 60
        assert scenario.duration == 3600
        assert scenario.channels["phone"].talk == Distribution("exponential", 100.0)
        assert scenario.channels["phone"].wrap_up == Distribution("fixed", 0.0)
        assert scenario.channels["phone"].patience is None
        assert scenario.agents[0].capacities == {"phone": 1, "chat": 0, "email": 0}

    def test_hourly_rates(self) -> None:
        """A list of rates applies one per simulated hour, round the day."""
        data = _minimal()
        data["channels"]["phone"]["rate_per_hour"] = [3600, 7200]
        load_ = parse(data).channels["phone"]
        assert load_.rate_at(10) == 1.0
        assert load_.rate_at(3600 + 10) == 2.0
        assert load_.rate_at(7200 + 10) == 1.0
        assert load_.peak_rate == 2.0

    def test_skill_mix(self) -> None:
        """A mix entry draws its required and preferred skills for its share of contacts."""
        data = _minimal()
        data["channels"]["phone"]["mix"] = [
            {"required_skills": ["returns"], "preferred_skills": ["lang:es"], "share": 0.25}
        ]
        load_ = parse(data).channels["phone"]
        rng = random.Random(1)
        draws = [load_.skills(rng) for _ in range(4000)]
        spanish = [d for d in draws if d.preferred_skills == ("lang:es",)]
        assert all(d.required_skills == {"returns"} for d in spanish)
        assert len(spanish) / len(draws) == pytest.approx(0.25, abs=0.03)

    @pytest.mark.parametrize(
        ("change", "named"),
        [
            ({"time_scale": 0}, "time_scale"),
            ({"color": "red"}, "color"),
            ({"channels": {"fax": {}}}, "channels.fax"),
            ({"channels": {"phone": {"talk": 10}}}, "rate_per_hour"),
            ({"channels": {"phone": {"rate_per_hour": 1, "talk": -1}}}, "talk.mean"),
            ({"channels": {"phone": {"rate_per_hour": 1}}}, "channels.phone.talk"),
            ({"agents": []}, "agents"),
            ({"router": {"phone_target_seconds": 0}}, "router.phone_target_seconds"),
            ({"router": {"queue_size": 3}}, "router.queue_size"),
        ],
    )
    def test_malformed_scenarios_name_the_key(self, change: dict[str, Any], named: str) -> None:
        """A bad value is refused with a message naming its key."""
        with pytest.raises(ScenarioError, match=named.replace(".", r"\.")):
            parse(_minimal(**change))

    def test_the_old_handle_key_says_it_is_now_talk(self) -> None:
        """`handle` meant the talk alone, while handle time is talk + after-contact work
        everywhere else: the key is `talk` now, and the old one says so in one line."""
        data = _minimal()
        data["channels"]["phone"] = {"rate_per_hour": 60, "handle": 100}
        with pytest.raises(ScenarioError) as refused:
            parse(data)
        message = str(refused.value)
        assert "\n" not in message
        assert message.startswith("channels.phone.handle: ")
        assert "`talk`" in message
        assert "wrap_up" in message

    def test_server_env_divides_times_by_the_scale(self) -> None:
        """The router runs the policy at the scenario's speed; counts are not scaled."""
        scenario = parse(
            _minimal(time_scale=10, router={"phone_target_seconds": 20, "phone_reserve": 2})
        )
        env = scenario.server_env()
        assert float(env["ROUTER_PHONE_TARGET_SECONDS"]) == 2.0
        assert float(env["ROUTER_SHORT_ABANDON_SECONDS"]) == 0.5
        assert env["ROUTER_PHONE_RESERVE"] == "2"
        # 15 s / 10 = 1.5 s is below the floor that keeps machine stalls from looking missed
        assert float(env["ROUTER_OFFER_TIMEOUT_SECONDS"]) == 2.0

    def test_personal_routing_settings_reach_the_router(self) -> None:
        """Per-channel settings become ROUTER_<CHANNEL>_* variables: times divided by the
        scale, flags as true/false, counts and skills as they are."""
        router = {
            "phone_prefer_previous_agent": False,
            "chat_preferred_agent_wait_seconds": 30,
            "email_max_per_hour": 12,
            "chat_fallback_after_seconds": 120,
            "chat_fallback_skill": "general",
            "remembered_customers": 500,
        }
        env = parse(_minimal(time_scale=10, router=router)).server_env()
        assert env["ROUTER_PHONE_PREFER_PREVIOUS_AGENT"] == "false"
        assert env["ROUTER_CHAT_PREFER_PREVIOUS_AGENT"] == "true"
        assert float(env["ROUTER_CHAT_PREFERRED_AGENT_WAIT_SECONDS"]) == 3.0
        assert env["ROUTER_EMAIL_MAX_PER_HOUR"] == "12"  # the router's hour is not scaled
        assert env["ROUTER_PHONE_MAX_PER_HOUR"] == "0"
        assert float(env["ROUTER_CHAT_FALLBACK_AFTER_SECONDS"]) == 12.0
        assert env["ROUTER_CHAT_FALLBACK_SKILL"] == "general"
        assert env["ROUTER_REMEMBERED_CUSTOMERS"] == "500"
        assert float(env["ROUTER_RECONNECT_GRACE_SECONDS"]) == 12.0

    def test_optional_settings_left_unset_use_the_routers_defaults(self) -> None:
        """No preferred-agent wait (half the target) and no fallback rule unless set;
        a variant can unset them again, but not a setting with a default."""
        env = parse(_minimal()).server_env()
        assert not [k for k in env if "PREFERRED_AGENT_WAIT" in k or "FALLBACK" in k]
        scenario = parse(_minimal(router={"chat_fallback_after_seconds": 60}))
        assert (
            "ROUTER_CHAT_FALLBACK_AFTER_SECONDS"
            not in scenario.with_router(chat_fallback_after_seconds=None).server_env()
        )
        assert scenario.with_router(email_max_per_hour=5).router["email_max_per_hour"] == 5
        with pytest.raises(ScenarioError, match="cannot be unset"):
            scenario.with_router(phone_target_seconds=None)
        with pytest.raises(ScenarioError, match=r"router\.chat_prefer_previous_agent"):
            scenario.with_router(chat_prefer_previous_agent=0.5)

    @pytest.mark.parametrize(
        ("change", "named"),
        [
            ({"router": {"phone_prefer_previous_agent": "yes"}}, "phone_prefer_previous_agent"),
            ({"router": {"email_max_per_hour": 1.5}}, "email_max_per_hour"),
            ({"router": {"chat_fallback_skill": "Not A Skill"}}, "chat_fallback_skill"),
            ({"router": {"chat_fallback_after_seconds": -1}}, "chat_fallback_after_seconds"),
            ({"router": {"fax_max_per_hour": 1}}, "fax_max_per_hour"),
            ({"queue_status_every": -5}, "queue_status_every"),
        ],
    )
    def test_malformed_personal_settings_name_the_key(
        self, change: dict[str, Any], named: str
    ) -> None:
        with pytest.raises(ScenarioError, match=named):
            parse(_minimal(**change))

    def test_router_keys_are_the_policy_settings(self) -> None:
        """A scenario's [router] keys are the routing policy's settings, named as in a
        config file; the server's own settings are not among them."""
        assert set(ROUTER_SETTINGS) == {v.key for v in VARIABLES.values() if v.setting.routing}
        with pytest.raises(ScenarioError, match=r"router\.port"):
            parse(_minimal(router={"port": 50051}))

    def test_the_router_reads_the_scenarios_policy(self) -> None:
        """At time scale 1, the policy the started router reads from server_env is the
        scenario's own, every setting included."""
        router = {
            "phone_target_seconds": 30,
            "chat_capacity": 4,
            "email_fallback_after_seconds": 600,
            "email_fallback_skill": "general",
            "phone_service_level_goal": 0.9,
            "phone_service_level_alarm": 0.85,
            "chat_max_queue": 50,
            "max_contact_bytes": 4096,
            "phone_prefer_previous_agent": False,
        }
        scenario = parse(_minimal(time_scale=1, router=router))
        assert Settings.from_env(scenario.server_env()).policy == scenario.policy
        assert scenario.policy.of(Channel.PHONE).service_level_goal == 0.9

    def test_counts_fractions_and_bytes_are_not_scaled(self) -> None:
        """Only the policy's times are divided by the scale."""
        router = {"chat_service_level_goal": 0.9, "chat_max_queue": 50, "max_queue_bytes": 1 << 20}
        env = parse(_minimal(time_scale=10, router=router)).server_env()
        assert env["ROUTER_CHAT_SERVICE_LEVEL_GOAL"] == "0.9"
        assert env["ROUTER_CHAT_MAX_QUEUE"] == "50"
        assert env["ROUTER_MAX_QUEUE_BYTES"] == str(1 << 20)

    def test_settings_that_contradict_each_other_are_named(self) -> None:
        """An alarm line above the goal is refused, naming the scenario's key."""
        with pytest.raises(ScenarioError, match=r"router\.chat_service_level_alarm"):
            parse(_minimal(router={"chat_service_level_goal": 0.5}))
        with pytest.raises(ScenarioError, match=r"router\.phone_service_level_alarm"):
            parse(_minimal()).with_router(phone_service_level_alarm=0.95)

    def test_returning_and_named_shares(self) -> None:
        """Arrivals are named (gateway names an agent), returning or new in the shares
        given; together at most all of them."""
        data = _minimal()
        data["channels"]["phone"] |= {"returning": 0.4, "named_agent": 0.1}
        load_ = parse(data).channels["phone"]
        rng = random.Random(2)
        kinds = [load_.customer_kind(rng) for _ in range(10_000)]
        assert kinds.count("returning") / len(kinds) == pytest.approx(0.4, abs=0.02)
        assert kinds.count("named") / len(kinds) == pytest.approx(0.1, abs=0.01)
        data["channels"]["phone"] |= {"returning": 0.8, "named_agent": 0.3}
        with pytest.raises(ScenarioError, match="named_agent add up to more than 1"):
            parse(data)

    def test_staggered_shifts(self) -> None:
        """Agent i of a group signs in i x stagger after the group's start."""
        data = _minimal(agents=[{"count": 3, "shift": [600, 3600], "stagger": 60}])
        group = parse(data).agents[0]
        assert [group.shift_of(i) for i in range(3)] == [
            (600, 3600),
            (660, 3660),
            (720, 3720),
        ]
        assert parse(_minimal()).agents[0].shift_of(2) == (0.0, None)

    def test_cap_note_says_what_the_real_hour_covers(self) -> None:
        """The router's hour is a real one: in a run shorter than a real hour the cap
        bounds the whole run; in a longer one it is per time_scale simulated hours."""
        assert parse(_minimal()).cap_note() is None
        short = parse(_minimal(time_scale=60, router={"email_max_per_hour": 30}))
        assert "bounds each agent's answers over the whole run" in (short.cap_note() or "")
        long = short.with_overrides(time_scale=2, duration=7200 * 2, drain=0)
        assert "per 2 h of this run" in (long.cap_note() or "")

    def test_distribution_means(self) -> None:
        """Exponential and lognormal draws have the configured mean."""
        rng = random.Random(3)
        for dist in (Distribution("exponential", 50), Distribution("lognormal", 50, 0.8)):
            mean = sum(dist.sample(rng) for _ in range(40_000)) / 40_000
            assert mean == pytest.approx(50, rel=0.03)
        assert Distribution("fixed", 7).sample(rng) == 7


class TestReportFigures:
    def test_occupancy_counts_overlapping_contacts_once(self) -> None:
        """Two chats held at once are one stretch of busy time."""
        agent = AgentRecord("a", "g", 2, 0.0, 100.0, [(10.0, 30.0), (20.0, 40.0)])
        assert agent.occupancy == pytest.approx(0.3)

    def test_spread_per_group(self) -> None:
        """Fairness is the spread of contacts handled within one group."""
        records = [AgentRecord("a", "g", 4), AgentRecord("b", "g", 6), AgentRecord("c", "h", 1)]
        by_group = {s.group: s for s in spreads(records)}
        assert (by_group["g"].minimum, by_group["g"].maximum, by_group["g"].stdev) == (4, 6, 1)
        assert by_group["g"].cv == pytest.approx(0.2)

    def test_wait_estimates(self) -> None:
        """Mean absolute error and bias of estimates against actual waits."""
        records = [
            ContactRecord("k1", "phone", estimated_wait=10.0, submitted=0.0, answered=20.0),
            ContactRecord("k2", "phone", estimated_wait=30.0, submitted=0.0, answered=20.0),
            ContactRecord("k3", "phone", submitted=0.0, answered=5.0),  # no estimate
        ]
        estimates = wait_estimates(records)
        assert estimates is not None
        assert estimates.contacts == 2
        assert estimates.mean_absolute_error == 10.0
        assert estimates.bias == 0.0


class TestScriptsScenarios:
    def test_the_erlang_c_check_builds_valid_scenarios(self) -> None:
        """scenarios/erlang_c_check.py builds its scenarios in code: each pair's parses
        (a renamed key would otherwise fail only in a 30-minute run)."""
        from scenarios.erlang_c_check import PAIRS, scenario_for

        for pair in PAIRS:
            scenario = parse(scenario_for(pair, 60.0))
            assert scenario.agents[0].count == pair.agents

    def test_the_erlang_c_check_prints_its_table_with_the_renderer(self) -> None:
        """One row per pair under the header, each figure in its column, the verdict last
        (a run takes minutes, so the table is checked on a result made here)."""
        from scenarios.erlang_c_check import PAIRS, Result, table
        from scenarios.erlang_c_core import BatchMeans

        result = Result(
            pair=PAIRS[0], contacts=400, unanswered=0, relaxations=12.0, predicted=0.901,
            realized_load=2.5, measured=BatchMeans(0.912, 0.02, 20, 0.05), textbook=0.905,
            effect=BatchMeans(0.007, 0.004, 20, -0.1), overhead_effect=0.001, asa=4.0,
            textbook_asa=4.2, predicted_asa=4.5, aht=180.3, overhead_ms=12.5, errors=0,
        )  # fmt: skip
        header, rule, row, *_ = table([result]).splitlines()
        assert header.split()[:3] == ["c", "occ", "C(c,a)"]
        assert set(rule) == {"-", " "}
        cells = row.split()
        assert cells[:2] == ["5", "50%"]
        assert "91.2%" in cells
        assert "+1.1" in cells  # measured - Erlang C, in points
        assert "12.5ms" in cells
        assert cells[-1] == "agrees"
