"""Erlang C staffing, checked against well-known worked examples."""

from __future__ import annotations

import asyncio
import math
import multiprocessing
import time
from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from router.domain import InvalidArgument
from router.errors import ShuttingDown, Unavailable
from router.reporting.callback_staffing import interval_with_callbacks
from router.reporting.plan import (
    StaffingQuestion,
    estimated_patience,
    history_forecast,
    interval_problem,
    staff,
    staff_many,
    whole,
)
from router.reporting.staffing import achieved, agents_needed, erlang_b, erlang_c
from router.reporting.workers import StaffingWorkers


class TestPublishedExamples:
    def test_call_centre_helper_half_hour(self) -> None:
        """Call Centre Helper's "Erlang C formula made simple" example: 100 calls in 30
        minutes, AHT 180 s, 80% in 20 s. Traffic 10 Erlangs; 11 agents give P(wait)
        68.2% and SL 39.0%, 13 give 79.6%, 14 are needed and give 88.8%."""
        assert achieved(11, 100, 180, 1800, 20).probability_of_waiting == pytest.approx(
            0.6821, abs=1e-4
        )
        assert achieved(11, 100, 180, 1800, 20).service_level == pytest.approx(0.3896, abs=1e-4)
        assert achieved(13, 100, 180, 1800, 20).service_level == pytest.approx(0.7956, abs=1e-4)
        need = agents_needed(100, 180, 1800, target=0.8, threshold=20)
        assert (need.traffic_erlangs, need.agents) == (10.0, 14)
        assert need.service_level == pytest.approx(0.8884, abs=1e-4)
        assert need.asa_seconds == pytest.approx(7.84, abs=0.01)
        assert need.occupancy == pytest.approx(10 / 14)

    def test_westbay_erlang_c_example(self) -> None:
        """Westbay Engineers' step-by-step Erlang C example: 360 calls per half hour,
        240 s calls, 55 agents, 15 s target: 48 Erlangs, occupancy 87.3%, P(wait) about
        24%, ASA about 8.2 s, service level about 84.6%."""
        result = achieved(55, 360, 240, 1800, 15)
        assert result.traffic_erlangs == 48.0
        assert result.occupancy == pytest.approx(0.8727, abs=1e-4)
        assert result.probability_of_waiting == pytest.approx(0.2387, abs=1e-4)
        assert result.asa_seconds == pytest.approx(8.18, abs=0.01)
        assert result.service_level == pytest.approx(0.8459, abs=1e-4)


class TestErlang:
    def test_erlang_b_small_cases_by_hand(self) -> None:
        """B(1, A) = A / (1 + A); B(2, 1) = 1/5."""
        assert erlang_b(1, 2.0) == pytest.approx(2 / 3)
        assert erlang_b(2, 1.0) == pytest.approx(0.2)

    def test_erlang_c_against_the_factorial_form(self) -> None:
        traffic, agents = 7.5, 10
        top = traffic**agents / math.factorial(agents) * agents / (agents - traffic)
        bottom = sum(traffic**k / math.factorial(k) for k in range(agents)) + top
        assert erlang_c(agents, traffic) == pytest.approx(top / bottom)

    def test_large_centres_stay_finite(self) -> None:
        """Thousands of agents: no overflow, and the answer still meets the target."""
        need = agents_needed(60_000, 300, 1800, target=0.8, threshold=20)
        assert 10_000 < need.agents < 10_200
        assert need.service_level >= 0.8

    def test_no_calls_need_no_agents(self) -> None:
        assert agents_needed(0, 180, 900, target=0.8, threshold=20).agents == 0

    def test_occupancy_cap_adds_agents(self) -> None:
        free = agents_needed(100, 180, 1800, target=0.8, threshold=20)
        capped = agents_needed(100, 180, 1800, target=0.8, threshold=20, max_occupancy=0.6)
        assert capped.agents == 17 > free.agents
        assert capped.occupancy <= 0.6

    @pytest.mark.parametrize(
        ("calls", "aht", "target", "occupancy"),
        [(-1, 100, 0.8, 1.0), (1, -1, 0.8, 1.0), (1, 100, 1.0, 1.0), (1, 100, 0.8, 0.0)],
    )
    def test_bad_inputs_are_refused(
        self, calls: float, aht: float, target: float, occupancy: float
    ) -> None:
        with pytest.raises(ValueError, match="must"):
            agents_needed(calls, aht, 900, target=target, threshold=20, max_occupancy=occupancy)

    @given(
        calls=st.floats(1, 2000),
        aht=st.floats(10, 1200),
        target=st.floats(0.5, 0.95),
    )
    def test_fewest_agents_that_meet_the_target(
        self, calls: float, aht: float, target: float
    ) -> None:
        """The answer meets the target and one agent fewer does not."""
        need = agents_needed(calls, aht, 1800, target=target, threshold=20)
        assert need.service_level >= target
        fewer = achieved(need.agents - 1, calls, aht, 1800, 20)
        assert fewer.service_level < target


class TestHistoryForecast:
    def test_short_abandons_are_no_work_and_empty_intervals_take_the_mean_aht(self) -> None:
        a, b, c = (datetime(2026, 3, 2, h, tzinfo=UTC) for h in (9, 10, 11))
        assert history_forecast([(a, 12, 2, 100.0), (b, 30, 0, 200.0), (c, 3, 0, None)]) == [
            (a, 10.0, 100.0),
            (b, 30.0, 200.0),
            (c, 3.0, (10 * 100 + 30 * 200) / 40),
        ]


class TestQueueingFormulas:
    def test_single_agent_waits_with_probability_of_its_load(self) -> None:
        """M/M/1: the chance of waiting is the occupancy."""
        assert erlang_c(1, 0.7) == pytest.approx(0.7)


def question(**changes: object) -> StaffingQuestion:
    """Half-hour intervals at 80/20, Erlang C, one contact per agent, no shrinkage."""
    fields: dict[str, object] = {
        "interval_seconds": 1800.0,
        "target": 0.8,
        "threshold": 20.0,
        "max_occupancy": 1.0,
        "concurrency": 1.0,
        "shrinkage": 0.0,
        "patience": None,
        "short_abandon": 5.0,
    }
    fields.update(changes)
    return StaffingQuestion(**fields)  # type: ignore[arg-type]


class TestPlans:
    def test_an_agent_holding_three_chats_is_three_servers(self) -> None:
        """Issue 14 #8: 100 chats of 180 s need 14 servers at 80/20, so 5 agents holding
        3 chats each, not 14."""
        one = staff(question(), 100, 180)
        three = staff(question(concurrency=3.0), 100, 180)
        assert (one.agents, three.agents) == (14, 5)
        assert three.service_level == one.service_level
        assert "concurrency" in question().model

    def test_shrinkage_schedules_more_agents_than_are_needed_at_once(self) -> None:
        """14 agents at 30% shrinkage are 20 to schedule: 14 / 0.7 is 20.000000000000004
        in floating point, which is still 20."""
        staffed = staff(question(shrinkage=0.3), 100, 180)
        assert (staffed.agents, staffed.agents_scheduled) == (14, 20)
        assert whole(14 / 0.7) == 20
        assert whole(20.5) == 21

    def test_erlang_a_plans_report_abandonment(self) -> None:
        staffed = staff(question(patience=120.0), 100, 180)
        assert staffed.agents == 12
        assert staffed.abandonment is not None
        assert staff(question(), 100, 180).abandonment is None

    @pytest.mark.parametrize(
        ("calls", "aht", "words"),
        [
            (-1.0, 180.0, "calls must be between"),
            (math.nan, 180.0, "calls must be between"),
            (2e6, 180.0, "calls must be between"),
            (10.0, math.inf, "aht_seconds must be between"),
            (1e6, 86_400.0, "Erlangs"),
        ],
    )
    def test_forecasts_no_center_can_mean_are_refused(
        self, calls: float, aht: float, words: str
    ) -> None:
        assert words in (interval_problem(calls, aht, 900.0) or "")
        with pytest.raises(ValueError, match=words):
            staff(question(), calls, aht)

    def test_a_piece_of_work_stops_at_its_time_and_at_the_first_problem(self) -> None:
        """staff_many does at least one interval, stops once its time is up, and stops at
        an interval it cannot staff, saying why."""
        work = [(100.0, 180.0)] * 50
        assert len(staff_many(question(), work, 0.0).staffed) == 1
        assert len(staff_many(question(), work, 60.0).staffed) == 50
        piece = staff_many(question(), [(100.0, 180.0), (-1.0, 180.0), (1.0, 1.0)], 60.0)
        assert len(piece.staffed) == 1
        assert piece.problem is not None
        assert "calls" in piece.problem

    def test_patience_is_the_waiting_time_per_abandon(self) -> None:
        assert estimated_patience(4, 360.0) == 90.0
        assert estimated_patience(0, 360.0) is None


def own_children(others: set[int | None]) -> list[multiprocessing.process.BaseProcess]:
    """This process's children started since `others` were listed: the pool's workers,
    not another test's."""
    return [child for child in multiprocessing.active_children() if child.pid not in others]


class TestWorkers:
    async def test_a_worker_that_dies_is_unavailable_and_replaced(self) -> None:
        """A worker process killed mid-request (out of memory, say) answers that request
        Unavailable (a client retries); the next request gets a new worker. Closed, the
        workers refuse with ShuttingDown."""
        workers = StaffingWorkers()
        heavy = [(297_000.0, 300.0)] * 200  # seconds of arithmetic
        ask = question(interval_seconds=900.0, target=0.99, threshold=1.0)
        others = {child.pid for child in multiprocessing.active_children()}
        try:
            running = asyncio.ensure_future(workers.staff(ask, heavy))
            deadline = time.monotonic() + 30
            while not (own := own_children(others)):
                assert time.monotonic() < deadline, "no worker process started"
                await asyncio.sleep(0.01)
            for child in own:
                child.kill()
            with pytest.raises(Unavailable):
                await running
            staffed, problem = await workers.staff(question(), [(100.0, 180.0)])
            assert ([s.agents for s in staffed], problem) == ([14], None)
        finally:
            await workers.close()
        with pytest.raises(ShuttingDown):
            await workers.staff(question(), [(100.0, 180.0)])


def test_callback_work_past_the_limit_is_the_requests_error_not_an_internal_one() -> None:
    """Both the phone plan and a blended pool add callbacks' Erlangs through one
    function: past MAX_AGENTS it names the interval and history_start (INVALID_ARGUMENT
    at the API), where a blended pool used to let a ValueError through (INTERNAL)."""
    start = datetime(2026, 12, 5, 9, tzinfo=UTC)
    staffed = staff(question(), 100, 180)
    assert interval_with_callbacks(staffed, question(), 4.0, start).agents > staffed.agents
    with pytest.raises(InvalidArgument) as refused:
        interval_with_callbacks(staffed, question(), 10_000_000.0, start)
    assert refused.value.field == "history_start"
    assert "2026-12-05 09:00" in str(refused.value)
