"""Scenario files and the figures the simulation report derives from what it recorded."""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import pytest

from router.scenario import Distribution, ScenarioError, load, parse
from router.simulation_report import AgentRecord, ContactRecord, spreads, wait_estimates

SCENARIOS = Path(__file__).parents[2] / "scenarios"


def _minimal(**extra: Any) -> dict[str, Any]:
    return {
        "channels": {"phone": {"rate_per_hour": 60, "handle": 100}},
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
        """A minimal scenario: exponential handle time, a simulated hour at 60x."""
        scenario = parse(_minimal())
        assert scenario.time_scale == 60
        assert scenario.duration == 3600
        assert scenario.channels["phone"].handle == Distribution("exponential", 100.0)
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
            ({"channels": {"phone": {"handle": 10}}}, "rate_per_hour"),
            ({"channels": {"phone": {"rate_per_hour": 1, "handle": -1}}}, "handle.mean"),
            ({"agents": []}, "agents"),
            ({"router": {"phone_target": 0}}, "router.phone_target"),
            ({"router": {"queue_size": 3}}, "router.queue_size"),
        ],
    )
    def test_malformed_scenarios_name_the_key(self, change: dict[str, Any], named: str) -> None:
        """A bad value is refused with a message naming its key."""
        with pytest.raises(ScenarioError, match=named.replace(".", r"\.")):
            parse(_minimal(**change))

    def test_server_env_divides_times_by_the_scale(self) -> None:
        """The router runs the policy at the scenario's speed; counts are not scaled."""
        scenario = parse(_minimal(time_scale=10, router={"phone_target": 20, "phone_reserve": 2}))
        env = scenario.server_env()
        assert float(env["ROUTER_PHONE_TARGET_SECONDS"]) == 2.0
        assert float(env["ROUTER_SHORT_ABANDON_SECONDS"]) == 0.5
        assert env["ROUTER_PHONE_RESERVE"] == "2"
        # 15 s / 10 = 1.5 s is below the floor that keeps machine stalls from looking missed
        assert float(env["ROUTER_OFFER_TIMEOUT_SECONDS"]) == 2.0

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
