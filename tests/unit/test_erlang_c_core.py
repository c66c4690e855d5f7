"""The Erlang C simulation of the routing core (scenarios/erlang_c_core.py), kept short.

The full run (scenarios/erlang_c_core.py, a few minutes) settles the agreement with
Erlang C; here a few thousand contacts of the lightest pair, with a fixed seed, check
what does not depend on luck: the core answers every contact, never keeps a contact
waiting while an agent is free, answers in arrival order, and so gives each contact
exactly the wait a textbook M/M/c queue gives it. A core that broke any of these would
fail here, as the last test shows with one that keeps an idle agent back.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import pytest

from router.domain.channel import Channel
from router.domain.roster import Roster
from scenarios.erlang_c_core import (
    PAIRS,
    TARGET,
    batch_means,
    evaluate,
    fcfs_waits,
    run_pair,
    t_975,
)

LIGHT = PAIRS[0]  # 5 agents at 50%
CONTACTS = 3000


def test_the_core_answers_every_contact_as_the_textbook_queue_does() -> None:
    result = evaluate(run_pair(LIGHT, CONTACTS, seed=1), batches=10)
    run = result.run
    assert run.measured == CONTACTS
    assert not any(math.isnan(w) for w in run.waits), "every contact is answered"
    assert run.max_busy == LIGHT.agents, "all agents were busy at times, never more"
    assert run.idle_while_waiting == 0
    assert run.out_of_order == 0
    assert result.differing == 0
    assert result.largest_difference < 1e-5
    assert result.share.mean == result.textbook
    assert sum(w > TARGET for w in run.waits) > 0, "some contacts waited past the target"
    # Erlang C says 90.1%; 3000 contacts are within a few points of it (a broken router
    # that let contacts wait for a free agent would not be).
    assert abs(result.share.mean - result.nominal) < 0.06
    assert result.verdict == "agrees"


def test_a_core_that_keeps_an_idle_agent_back_is_caught(monkeypatch: pytest.MonkeyPatch) -> None:
    """A reserve wrongly applied to calls: the last idle agent is never offered one."""
    best_for = Roster.best_for

    def stingy(
        self: Roster,
        channel: Channel,
        required: frozenset[str],
        excluded: Callable[[str], bool] = lambda _: False,
        past_deadline: bool = False,
    ) -> str | None:
        if self.phone_ready <= 1:
            return None
        return best_for(self, channel, required, excluded, past_deadline)

    monkeypatch.setattr(Roster, "best_for", stingy)
    result = evaluate(run_pair(LIGHT, CONTACTS, seed=1), batches=10)
    assert result.run.idle_while_waiting > 0
    assert result.differing > 0
    assert result.share.mean < result.textbook
    assert result.verdict == "CORE BUG"


def test_textbook_queue() -> None:
    """Two agents, first come first served: the third contact waits for the first
    agent to free up at 5 s (busy again until 8 s), the fourth for the second, free at 7 s."""
    waits = fcfs_waits([0.0, 1.0, 2.0, 3.0], [5.0, 6.0, 3.0, 1.0], agents=2)
    assert waits == [0.0, 0.0, 3.0, 4.0]


def test_batch_means() -> None:
    assert t_975(9) == pytest.approx(2.262, abs=1e-3)
    assert t_975(39) == pytest.approx(2.023, abs=1e-3)
    means = batch_means([0.0, 1.0] * 10, batches=10)
    assert (means.mean, means.half_width, means.batches) == (0.5, 0.0, 10)
    alternating = batch_means([0.0] * 5 + [1.0] * 5, batches=10)
    assert alternating.half_width == pytest.approx(t_975(9) / 6, rel=1e-9)
