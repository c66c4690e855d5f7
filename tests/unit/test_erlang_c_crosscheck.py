"""The phone staffing figures against an independent Erlang C implementation.

`call_center_tools` (PyPI call-center-tools) computes Erlang C its own way: P(wait) from
a running product of (n - i) / A rather than from Erlang B's recurrence, traffic from
calls per hour, and its own search for the agents needed. pyworkforce, which the issue
suggested, cannot be installed beside the router (docs/reporting.md, "Cross-check").
Where the two are meant to agree they agree to float precision; the places where they
differ by design are pinned here too, so a change on either side shows.
"""

from __future__ import annotations

import itertools

import pytest
from call_center_tools import StaffingData, add_shrinkage, calc_staffing

from router.reporting.plan import StaffingQuestion, staff, whole
from router.reporting.staffing import achieved, agents_needed

HALF_HOUR = 1800.0

# Calls per half hour, AHT and threshold (seconds), target: from a quiet night to a
# large centre, short and long calls, tight and loose answer targets.
GRID = list(
    itertools.product(
        [1, 5, 20, 57, 100, 250, 600, 1500],
        [45.0, 180.0, 300.0, 720.0],
        [10.0, 20.0, 60.0],
        [0.7, 0.8, 0.9],
    )
)

# call_center_tools starts its search at max(int(A), ceil(A / max_occupancy)) and, with
# no cap (1.0) and a whole traffic, tries n = A, dividing by n - A for the ASA
# (ZeroDivisionError). A cap a hair below 1 starts it at the first n > A, where ours
# starts too: n = A never meets a target.
NO_CAP = 1 - 1e-12


def theirs(
    calls: float, aht: float, threshold: float, target: float, cap: float = NO_CAP
) -> StaffingData:
    """call_center_tools' staffing for a half hour's calls."""
    return calc_staffing(
        calls_per_hour=calls * 3600 / HALF_HOUR,
        aht=aht,
        max_occupancy=cap,
        target_answer_time=threshold,
        target_service_level=target,
    )


class TestAgainstCallCenterTools:
    def test_agents_service_level_and_asa_agree_on_the_grid(self) -> None:
        """For every load of the grid both find the same agents, and the same traffic,
        P(wait), service level, ASA and occupancy for them (to 1e-9)."""
        for calls, aht, threshold, target in GRID:
            ours = agents_needed(calls, aht, HALF_HOUR, target=target, threshold=threshold)
            other = theirs(calls, aht, threshold, target)
            case = (calls, aht, threshold, target)
            assert ours.agents == other.agents, case
            assert ours.traffic_erlangs == pytest.approx(other.traffic_intensity, rel=1e-12)
            assert ours.probability_of_waiting == pytest.approx(
                other.wait_probability, rel=1e-9, abs=1e-12
            ), case
            assert ours.service_level == pytest.approx(other.service_level, rel=1e-9), case
            assert ours.asa_seconds == pytest.approx(
                other.average_speed_of_answer, rel=1e-9, abs=1e-12
            ), case
            assert ours.occupancy == pytest.approx(other.occupancy, rel=1e-12), case

    def test_any_agent_count_gives_the_same_figures(self) -> None:
        """Not only at the answer: for a fixed count above the traffic, one below the
        answer and a generous one, the figures agree."""
        for calls, aht, threshold in [(100, 180.0, 20.0), (360, 240.0, 15.0), (1500, 300.0, 20.0)]:
            traffic = calls * aht / HALF_HOUR
            for agents in (int(traffic) + 1, int(traffic) + 3, int(traffic * 1.5) + 1):
                ours = achieved(agents, calls, aht, HALF_HOUR, threshold)
                other = calc_staffing(
                    calls_per_hour=calls * 2, aht=aht, agents=agents, target_answer_time=threshold
                )
                assert ours.service_level == pytest.approx(other.service_level, rel=1e-9)
                assert ours.asa_seconds == pytest.approx(other.average_speed_of_answer, rel=1e-9)

    def test_the_same_occupancy_cap_gives_the_same_agents(self) -> None:
        """Both read a maximum occupancy as "traffic / agents <= cap"."""
        for calls, aht, threshold, target in GRID[::5]:
            ours = agents_needed(
                calls, aht, HALF_HOUR, target=target, threshold=threshold, max_occupancy=0.85
            )
            assert ours.agents == theirs(calls, aht, threshold, target, cap=0.85).agents

    def test_their_default_occupancy_cap_staffs_a_large_centre_higher(self) -> None:
        """Where they differ by default: call_center_tools caps occupancy at 85% unless
        told otherwise; the router has no cap unless asked (--max-occupancy). At 1,500
        calls of 300 s per half hour (250 Erlangs) Erlang C alone needs 261 agents
        (95.8% busy); an 85% cap needs 295."""
        ours = agents_needed(1500, 300.0, HALF_HOUR, target=0.8, threshold=20)
        default = calc_staffing(calls_per_hour=3000, aht=300.0)
        assert (ours.agents, default.agents) == (261, 295)

    def test_shrinkage_rounds_the_same_way_except_for_float_noise(self) -> None:
        """Agents to schedule: both round agents / (1 - shrinkage) up; the router
        forgives the float noise of the division, so where a whole quotient comes out a
        hair above they differ by one."""
        question = StaffingQuestion(
            interval_seconds=HALF_HOUR,
            target=0.8,
            threshold=20.0,
            max_occupancy=1.0,
            concurrency=1.0,
            shrinkage=0.3,
            patience=None,
            short_abandon=0.0,
        )
        for calls in (20, 100, 250, 600):
            ours = staff(question, calls, 180.0)
            other = calc_staffing(
                calls_per_hour=calls * 2,
                aht=180.0,
                max_occupancy=NO_CAP,
                target_answer_time=20,
                shrinkage=0.3,
            )
            assert ours.agents == other.agents
            assert ours.agents_scheduled == other.agents_with_shrinkage
        # 21 agents at 30% shrinkage: 21 / 0.7 is 30.000000000000004 in floating point,
        # 30 agents to schedule for the router, 31 for call_center_tools.
        assert whole(21 / (1 - 0.3)) == 30
        assert add_shrinkage(21, 0.3) == 31
