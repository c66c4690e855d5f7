"""Erlang A (abandonment) against Erlang C, a simulation of the queue, and its search."""

from __future__ import annotations

import heapq
import random

import pytest

from router.reporting.erlang_a import agents_needed_a, erlang_a
from router.reporting.staffing import achieved, agents_needed


def simulate(
    agents: int,
    arrival: float,
    aht: float,
    patience: float,
    threshold: float,
    short_abandon: float,
    calls: int = 200_000,
    seed: int = 7,
) -> tuple[float, float]:
    """An M/M/n+M queue, event by event: (service level as the router counts it,
    abandonment rate)."""
    rng = random.Random(seed)
    clock = 0.0
    free_at: list[float] = [0.0] * agents  # a heap of when each agent is next free
    answered_in_time = abandoned = short = 0
    arrivals = []
    for _ in range(calls):
        clock += rng.expovariate(arrival)
        arrivals.append((clock, clock + rng.expovariate(1 / patience)))
    # FIFO with abandonment: each caller takes the earliest free agent if it is free
    # before the caller gives up.
    for arrived, gives_up in arrivals:
        free = heapq.heappop(free_at)
        starts = max(arrived, free)
        if starts > gives_up:
            heapq.heappush(free_at, free)
            abandoned += 1
            short += gives_up - arrived <= short_abandon
            continue
        answered_in_time += starts - arrived <= threshold
        heapq.heappush(free_at, starts + rng.expovariate(1 / aht))
    return answered_in_time / (calls - short), abandoned / calls


class TestErlangA:
    @pytest.mark.parametrize("agents", [11, 13, 14])
    def test_without_abandonment_it_is_erlang_c(self, agents: int) -> None:
        """Patience far longer than any wait: Erlang A gives Erlang C's figures."""
        a = erlang_a(agents, 100, 180, 1800, patience_seconds=1e9, threshold=20)
        c = achieved(agents, 100, 180, 1800, 20)
        assert a.service_level == pytest.approx(c.service_level, abs=1e-6)
        assert a.probability_of_waiting == pytest.approx(c.probability_of_waiting, abs=1e-6)
        assert a.asa_seconds == pytest.approx(c.asa_seconds, rel=1e-4)
        assert a.abandonment < 1e-6

    @pytest.mark.parametrize(
        ("agents", "calls", "patience"),
        [(10, 100, 60.0), (12, 100, 120.0), (8, 100, 90.0)],
    )
    def test_matches_a_simulation_of_the_queue(
        self, agents: int, calls: float, patience: float
    ) -> None:
        """Service level and abandonment within a point of 200,000 simulated calls,
        including an overloaded interval (8 agents for 10 Erlangs) Erlang C cannot staff."""
        model = erlang_a(
            agents, calls, 180, 1800, patience_seconds=patience, threshold=20, short_abandon=5
        )
        level, abandonment = simulate(agents, calls / 1800, 180, patience, 20, 5)
        assert model.service_level == pytest.approx(level, abs=0.01)
        assert model.abandonment == pytest.approx(abandonment, abs=0.01)

    def test_needs_no_more_agents_than_erlang_c(self) -> None:
        """Abandons shorten the queue: 12 agents instead of Erlang C's 14."""
        a = agents_needed_a(100, 180, 1800, patience_seconds=120, target=0.8, threshold=20)
        assert a.agents == 12 < agents_needed(100, 180, 1800, target=0.8, threshold=20).agents
        assert a.service_level >= 0.8
        fewer = erlang_a(11, 100, 180, 1800, patience_seconds=120, threshold=20)
        assert fewer.service_level < 0.8

    @pytest.mark.parametrize(("calls", "aht"), [(0, 180), (100, 0)])
    def test_no_work_needs_no_agents(self, calls: float, aht: float) -> None:
        """As Erlang C: 0 agents, every call (if any) answered at once, none abandons."""
        need = agents_needed_a(calls, aht, 1800, patience_seconds=60, target=0.8, threshold=20)
        assert (need.agents, need.traffic_erlangs, need.service_level) == (0, 0.0, 1.0)
        assert (need.abandonment, need.probability_of_waiting, need.occupancy) == (0.0, 0.0, 0.0)
        assert agents_needed(calls, aht, 1800, target=0.8, threshold=20).agents == 0

    def test_negative_work_is_refused(self) -> None:
        with pytest.raises(ValueError, match="must not be negative"):
            agents_needed_a(-1, 180, 1800, patience_seconds=60, target=0.8, threshold=20)
