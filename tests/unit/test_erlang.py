"""Erlang C, the reference the router's measured service level is checked against."""

from __future__ import annotations

import math

import pytest

from router.domain.erlang import average_speed_of_answer, erlang_c, service_level


class TestErlangC:
    def test_single_agent_waits_with_probability_of_its_load(self) -> None:
        """M/M/1: the chance of waiting is the occupancy."""
        assert erlang_c(1, 0.7) == pytest.approx(0.7)

    def test_textbook_value(self) -> None:
        """Two agents, one erlang: C = 1/3."""
        assert erlang_c(2, 1.0) == pytest.approx(1 / 3)

    def test_large_centers_stay_finite(self) -> None:
        """The Erlang B recursion does not overflow for thousands of agents."""
        assert 0 < erlang_c(5000, 4900.0) < 1

    def test_service_level_formula(self) -> None:
        """P(wait <= t) = 1 - C exp(-(c mu - lambda) t), and ASA = C / (c mu - lambda)."""
        c, lam, aht = 10, 8 / 180, 180.0
        waits = erlang_c(c, lam * aht)
        assert service_level(c, lam, aht, 20) == pytest.approx(
            1 - waits * math.exp(-(c / aht - lam) * 20)
        )
        assert service_level(c, lam, aht, 0) == pytest.approx(1 - waits)
        assert average_speed_of_answer(c, lam, aht) == pytest.approx(waits / (c / aht - lam))

    @pytest.mark.parametrize(("agents", "load"), [(0, 0.0), (3, 3.0), (3, -1.0)])
    def test_unstable_or_empty_centers_are_refused(self, agents: int, load: float) -> None:
        """No steady state at or beyond full load, and no center without agents."""
        with pytest.raises(ValueError, match=r"agents|load"):
            erlang_c(agents, load)
