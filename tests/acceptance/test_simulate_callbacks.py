"""Callbacks in a simulation run against a real router process and PostgreSQL: the
simulated customers take the callbacks GetContact offers, the simulated agents dial
them, and what the run recorded of each callback is what the router recorded."""

from __future__ import annotations

from typing import Any

import asyncpg
from contact_router_tools.scenario import parse
from contact_router_tools.simulate import simulate
from contact_router_tools.simulation.text import render


def _center(**router: Any) -> dict[str, Any]:
    """Two agents for 2 erlangs of calls: a queue builds, so the estimated wait is long,
    and nobody abandons, so every callback taken ends reached or unreached."""
    return {
        "name": "callbacks",
        "duration": 300,
        "drain": 1200,
        "time_scale": 30,
        "seed": 11,
        "router": {"phone_reserve": 0, "callback_attempts": 2, **router},
        "channels": {"phone": {"rate_per_hour": 120, "talk": 60}},
        "callbacks": {
            "accept": 1.0,
            "check_every": 15,
            "dial_seconds": 5,
            "no_answer": 0.3,
            "wrong_number": 0.15,
        },
        "agents": [{"group": "phone", "count": 2}],
    }


class TestSimulatedCallbacks:
    async def test_customers_take_offered_callbacks_and_agents_dial_them(
        self, database_url: str, db: asyncpg.Connection
    ) -> None:
        scenario = parse(_center(phone_callback_offer_after_seconds=0, callback_retry_seconds=30))
        report = await simulate(scenario, database_url=database_url, run_id="cb")
        assert not report.counters.errors
        (figures,) = report.callbacks
        assert figures.taken > 0
        assert figures.taken == figures.offered  # accept = 1: everyone offered took it
        assert figures.reached + figures.unreached == figures.taken  # nobody left waiting
        rows = await db.fetch(
            "SELECT c.id::text AS id, c.state, b.attempts, b.reached_at IS NOT NULL AS reached"
            " FROM contacts AS c JOIN callbacks AS b ON b.contact_id = c.id"
        )
        recorded = {row["id"]: row for row in rows}
        taken = [r for r in report.records if r.callback]
        assert set(recorded) == {r.contact_id for r in taken}
        for rec in taken:
            row = recorded[rec.contact_id]
            assert row["attempts"] == len(rec.dials)
            assert row["reached"] == (rec.reached is not None)
            assert row["state"] == ("completed" if rec.reached is not None else "unreached")
        assert "CALLBACKS (" in render(report)

    async def test_without_the_threshold_nobody_is_offered_a_callback(
        self, database_url: str, db: asyncpg.Connection
    ) -> None:
        """The run before: the same customers, no threshold, no callback."""
        report = await simulate(parse(_center()), database_url=database_url, run_id="none")
        assert not report.counters.errors
        assert report.callbacks == []
        assert await db.fetchval("SELECT count(*) FROM callbacks") == 0
        assert "CALLBACKS (" not in render(report)
