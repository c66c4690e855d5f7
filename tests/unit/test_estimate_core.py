"""The estimated wait through the routing core in virtual time (scenarios/estimate_core.py),
kept short: the script runs the scenario files, and in a phone-only center, where the
seconds per place are those of an M/M/c queue, the estimate is close on average."""

from __future__ import annotations

from pathlib import Path

import pytest
from contact_router_tools.scenario import load

from scenarios.estimate_core import Pairs, run, table

SCENARIOS = Path(__file__).parents[2] / "scenarios"


def test_phone_only_is_unbiased_on_average() -> None:
    """Three seeds of the phone-only center (10 agents at 80%): over the calls that
    queued, the mean estimate is within 10% of the mean wait that followed."""
    scenario = load(SCENARIOS / "phone_only.toml")
    pairs = [p for seed in (1, 2, 3) for p in run(scenario, seed, ring=1.0)["phone"].pairs]
    assert len(pairs) > 100
    estimate = sum(e for e, _, _ in pairs) / len(pairs)
    actual = sum(w for _, w, _ in pairs) / len(pairs)
    assert estimate == pytest.approx(actual, rel=0.1)


def test_the_floor_is_the_median_per_place() -> None:
    """The floor: each place's median wait as the estimate, over places with at least
    FLOOR_GROUP contacts; None when fewer than half the contacts are in such places."""
    shared = Pairs([(0.0, float(w), 1) for w in range(1, 11)])  # median 5.5
    assert shared.floor() == pytest.approx(sum(abs(w - 5.5) for w in range(1, 11)) / 10)
    assert Pairs([(0.0, 1.0, p) for p in range(1, 11)]).floor() is None


def test_the_table_has_a_row_per_channel_that_queued() -> None:
    """The blended center with a backlog, one seed: calls and emails queued (chats are
    answered at once there), each with its row."""
    scenario = load(SCENARIOS / "phone_first.toml")
    text = table(scenario.with_overrides(duration=1800.0, drain=1800.0), [1], 1.0)
    rows = [line.split()[0] for line in text.splitlines()[3:]]
    assert rows == ["phone", "email"]
