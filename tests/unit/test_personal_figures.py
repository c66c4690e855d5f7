"""The personal-routing figures a simulation report derives from what it recorded:
returning customers who reached their previous agent, who took a backlog, contacts
nobody could serve, and whether the place in line counted down."""

from __future__ import annotations

from typing import Any

import pytest
from contact_router_tools.simulation.figures import (
    answered_ahead,
    backlog_figures,
    customer_figures,
    position_figures,
    unserved_figures,
)
from contact_router_tools.simulation.records import AgentRecord, ContactRecord

THRESHOLDS = {"phone": 20.0, "chat": 60.0, "email": 3600.0}


def rec(key: str, channel: str = "phone", **fields: Any) -> ContactRecord:
    return ContactRecord(key, channel, **fields)


class TestReturningCustomers:
    def test_kind_of_customer(self) -> None:
        assert rec("a").kind == "new"
        assert rec("b", previous_agent="ann").kind == "returning"
        assert rec("c", previous_agent="ann", named_agent="bob").kind == "named"

    def test_reached_is_who_answered_against_who_completed_before(self) -> None:
        """Reached: answered by the previous (or named) agent; the router's pick is
        counted apart; new customers have neither."""
        records = [
            rec(
                "r1",
                previous_agent="ann",
                agent_id="ann",
                router_preferred="ann",
                submitted=0.0,
                answered=4.0,
            ),
            rec(
                "r2",
                previous_agent="ann",
                agent_id="bob",
                router_preferred="ann",
                submitted=0.0,
                answered=30.0,
            ),
            rec("r3", previous_agent="cy", router_preferred="", submitted=0.0),  # unanswered
            rec("n1", named_agent="dee", agent_id="dee", submitted=0.0, answered=1.0),
            rec("x1", agent_id="ann", submitted=0.0, answered=0.0),
            rec("c1", "chat", agent_id="ann", submitted=0.0, answered=0.0),  # all new
        ]
        rows = {(c.channel, c.kind): c for c in customer_figures(records, THRESHOLDS, 5.0)}
        assert set(rows) == {("phone", "returning"), ("phone", "named"), ("phone", "new")}
        returning = rows["phone", "returning"]
        assert (returning.contacts, returning.answered, returning.reached) == (3, 2, 1)
        assert returning.reached_share == 0.5
        assert returning.router_agreed == 2
        assert returning.asa == 17.0
        assert rows["phone", "named"].reached_share == 1.0
        assert rows["phone", "new"].reached is None


class TestBacklog:
    def test_first_agent_to_sign_in_and_its_share(self) -> None:
        """Agents in order of sign-in; the first one's share of the backlog answered."""
        agents = [
            AgentRecord("late", "team", handled=5, on_shift_from=900.0),
            AgentRecord("early", "early", handled=9, on_shift_from=0.0),
            AgentRecord("never", "team"),
        ]
        records = [
            rec(
                f"b{i}",
                "email",
                backlog=True,
                submitted=0.0,
                answered=10.0 * i,
                agent_id="early" if i < 3 else "late",
            )
            for i in range(4)
        ]
        records.append(rec("new", "email", submitted=5.0, answered=6.0, agent_id="late"))
        figures = backlog_figures(records, agents)
        assert figures is not None
        assert figures.first_agent == "early"
        assert (figures.contacts, figures.answered, figures.first_took) == (4, 4, 3)
        assert figures.first_share == 0.75
        assert [a for a, *_ in figures.per_agent] == ["early", "late", "never"]
        assert figures.per_agent[1] == ("late", 900.0, 1, 5)
        assert figures.cleared_at == 30.0
        assert figures.cv == pytest.approx(0.9354, abs=1e-4)  # sd of 3, 1, 0 over 4/3

    def test_not_cleared_when_some_are_unanswered(self) -> None:
        agents = [AgentRecord("a", "g", on_shift_from=0.0)]
        records = [rec("b1", "email", backlog=True, submitted=0.0)]
        figures = backlog_figures(records, agents)
        assert figures is not None
        assert figures.cleared_at is None
        assert figures.first_share is None
        assert backlog_figures([rec("x", "email", submitted=0.0)], agents) is None


class TestUnserved:
    def test_grouped_by_the_reason_at_arrival(self) -> None:
        """Unserved: the arrival's wait reason said so, or the live queue listed it;
        rerouted: its required skills changed while it waited."""
        fr = frozenset({"lang:fr"})
        records = [
            rec(
                "a",
                "chat",
                required_skills=fr,
                wait_reason="no_agent_with_skills",
                listed_unserved=True,
                last_skills=frozenset({"general"}),
                submitted=0.0,
                answered=150.0,
            ),
            rec(
                "b",
                "chat",
                required_skills=fr,
                wait_reason="no_agent_with_skills",
                last_skills=fr,
                submitted=10.0,
                abandoned=70.0,
                abandon_reason="patience",
            ),
            rec("c", "chat", wait_reason="no_agent_signed_in", submitted=0.0, answered=300.0),
            rec(
                "d",
                "chat",
                wait_reason="agents_busy",
                listed_unserved=True,
                submitted=0.0,
                abandoned=900.0,
                abandon_reason="end-of-run",
            ),
            rec("e", "chat", wait_reason="agents_busy", submitted=0.0, answered=5.0),
        ]
        assert records[0].rerouted
        assert not records[1].rerouted
        rows = {u.reason: u for u in unserved_figures(records)}
        assert set(rows) == {"later", "no_agent_signed_in", "no_agent_with_skills"}
        skills = rows["no_agent_with_skills"]
        assert (skills.contacts, skills.listed, skills.rerouted, skills.answered) == (2, 1, 1, 1)
        assert (skills.abandoned, skills.asa, skills.mean_wait_unanswered) == (1, 150.0, 60.0)
        assert rows["later"].left == 1
        assert rows["no_agent_signed_in"].max_wait == 300.0


class TestPlaceInLine:
    def line(self) -> list[ContactRecord]:
        billing, sales = frozenset({"billing"}), frozenset({"sales"})
        return [
            # billing: b1 and b2 wait; b3 sampled 3rd in line, answered after both
            rec("b1", required_skills=billing, submitted=0.0, answered=20.0),
            rec("b2", required_skills=billing, submitted=1.0, answered=25.0),
            rec(
                "b3",
                required_skills=billing,
                submitted=2.0,
                answered=30.0,
                sampled_at=2.1,
                queue_position=3,
                routing_position=3,
            ),
            # answered before the sample: not ahead of it
            rec("b0", required_skills=billing, submitted=0.0, answered=2.05),
            # sales: first in its own line, 4th in routing order
            rec(
                "s1",
                required_skills=sales,
                submitted=2.5,
                answered=9.0,
                sampled_at=2.6,
                queue_position=1,
                routing_position=4,
            ),
            # submitted after b3's sample and answered before it: not counted
            rec("b4", required_skills=billing, submitted=5.0, answered=26.0),
        ]

    def test_answered_ahead_counts_the_line_waiting_at_the_sample(self) -> None:
        records = self.line()
        line = sorted(
            (r.answered, r.submitted or 0.0, r.key)
            for r in records
            if r.answered is not None and r.required_skills == frozenset({"billing"})
        )
        assert answered_ahead(records[2], line) == 2

    def test_mean_positions_and_countdown_per_line(self) -> None:
        rows = {",".join(p.skills): p for p in position_figures(self.line())}
        billing, sales = rows["billing"], rows["sales"]
        assert (billing.samples, billing.mean_queue_position, billing.exact) == (1, 3.0, 1)
        assert (sales.mean_queue_position, sales.mean_routing_position) == (1.0, 4.0)
        assert sales.exact_share == 1.0

    def test_a_miscount_by_one(self) -> None:
        records = self.line()
        records[2].queue_position = 2  # said 2nd, but two were answered ahead
        billing = next(p for p in position_figures(records) if p.skills == {"billing"})
        assert (billing.exact, billing.within_one, billing.checked) == (0, 1, 1)
