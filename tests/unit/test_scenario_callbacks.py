"""Queued callbacks in simulations: the scenario's [callbacks] keys and the router's
callback settings, the figures a report derives from the callbacks a run recorded, and
the run's own fidelity figures."""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import pytest
from contact_router_tools.scenario import ScenarioError, load, parse
from contact_router_tools.simulation.callback_figures import (
    call_levels,
    callback_figures,
    fidelity,
)
from contact_router_tools.simulation.records import AgentRecord, ContactRecord, RunCounters
from contact_router_tools.simulation.report import SimulationReport
from contactrouter.v1 import contact_router_pb2 as pb

from router.domain import Channel

SCENARIOS = Path(__file__).parents[2] / "scenarios"


def _minimal(**extra: Any) -> dict[str, Any]:
    return {
        "channels": {"phone": {"rate_per_hour": 60, "talk": 100}},
        "agents": [{"count": 2}],
        **extra,
    }


class TestCallbackKeys:
    def test_without_the_table_customers_take_no_callback(self) -> None:
        assert parse(_minimal()).callbacks is None

    def test_the_table_and_its_defaults(self) -> None:
        """Left out: nobody accepts, checks every 30 s, 20 s dials that all connect."""
        callbacks = parse(_minimal(callbacks={})).callbacks
        assert callbacks is not None
        assert (callbacks.accept, callbacks.check_every, callbacks.dial_seconds) == (0, 30, 20)
        assert {callbacks.outcome(d / 100) for d in range(100)} == {"connected"}

    def test_dial_outcomes_follow_their_shares(self) -> None:
        """no_answer, busy and wrong_number take their shares; connected the rest."""
        table = {"no_answer": 0.2, "busy": 0.1, "wrong_number": 0.05, "accept": 0.6}
        callbacks = parse(_minimal(callbacks=table)).callbacks
        assert callbacks is not None
        rng = random.Random(3)
        drawn = [callbacks.outcome(rng.random()) for _ in range(20_000)]
        for name, share in [("no_answer", 0.2), ("busy", 0.1), ("wrong_number", 0.05)]:
            assert drawn.count(name) / len(drawn) == pytest.approx(share, abs=0.01)
        assert drawn.count("connected") / len(drawn) == pytest.approx(0.65, abs=0.01)

    @pytest.mark.parametrize(
        ("table", "named"),
        [
            ({"accept": 1.5}, "callbacks.accept"),
            ({"accept": "often"}, "callbacks.accept"),
            ({"check_every": 0}, "callbacks.check_every"),
            ({"dial_seconds": -1}, "callbacks.dial_seconds"),
            ({"busy": -0.1}, "callbacks.busy"),
            ({"no_answer": 0.6, "busy": 0.3, "wrong_number": 0.2}, "callbacks: no_answer"),
            ({"target_seconds": 900}, "callbacks.target_seconds"),
            ({"connected": 0.5}, "callbacks.connected"),
        ],
    )
    def test_malformed_keys_are_named(self, table: dict[str, Any], named: str) -> None:
        with pytest.raises(ScenarioError, match=named.replace(".", r"\.")):
            parse(_minimal(callbacks=table))

    def test_a_callbacks_value_that_is_not_a_table_is_named(self) -> None:
        with pytest.raises(ScenarioError, match=r"^callbacks: expected a table"):
            parse(_minimal(callbacks=0.6))

    def test_the_routers_callback_settings_are_scenario_keys(self) -> None:
        """[router] takes the callback settings by their keys: the offer threshold and
        the retry delay are divided by the time scale, the attempts are a count."""
        router = {
            "phone_callback_offer_after_seconds": 60,
            "callback_retry_seconds": 120,
            "callback_attempts": 4,
            "callback_target_seconds": 600,
        }
        scenario = parse(_minimal(time_scale=20, router=router))
        env = scenario.server_env()
        assert float(env["ROUTER_PHONE_CALLBACK_OFFER_AFTER_SECONDS"]) == 3.0
        assert float(env["ROUTER_CALLBACK_RETRY_SECONDS"]) == 6.0
        assert env["ROUTER_CALLBACK_ATTEMPTS"] == "4"
        assert float(env["ROUTER_CALLBACK_TARGET_SECONDS"]) == 30.0
        assert scenario.policy.callback_target == 600
        assert "ROUTER_CHAT_CALLBACK_OFFER_AFTER_SECONDS" not in env

    def test_offers_can_be_turned_off_for_a_run_before(self) -> None:
        """with_router(key=None) unsets the threshold: the router offers no callback."""
        router = {"phone_callback_offer_after_seconds": 60}
        before = parse(_minimal(router=router)).with_router(phone_callback_offer_after_seconds=None)
        assert "ROUTER_PHONE_CALLBACK_OFFER_AFTER_SECONDS" not in before.server_env()

    @pytest.mark.parametrize(
        ("router", "named"),
        [
            ({"callback_attempts": 0}, "router.callback_attempts"),
            ({"phone_callback_offer_after_seconds": -5}, "router.phone_callback_offer_after"),
        ],
    )
    def test_malformed_router_callback_settings_are_named(
        self, router: dict[str, Any], named: str
    ) -> None:
        with pytest.raises(ScenarioError, match=named.replace(".", r"\.")):
            parse(_minimal(router=router))


def _callback(key: str, **fields: Any) -> ContactRecord:
    return ContactRecord(key, "phone", submitted=0.0, callback_offered=30.0, **fields)


def _records() -> list[ContactRecord]:
    return [
        # answered inbound within the 20 s target, and after it
        ContactRecord("a", "phone", submitted=0.0, answered=10.0),
        ContactRecord("b", "phone", submitted=0.0, answered=50.0),
        # an abandon after the short-abandon limit (5 s), and one within it
        ContactRecord("c", "phone", submitted=0.0, abandoned=40.0, abandon_reason="patience"),
        ContactRecord("d", "phone", submitted=0.0, abandoned=2.0, abandon_reason="patience"),
        # offered a callback, did not take it, answered later
        ContactRecord("e", "phone", submitted=0.0, answered=90.0, callback_offered=30.0),
        # callbacks: reached at the second dial, unreached by a wrong number, left waiting
        _callback(
            "f", callback_requested=31.0, placed=200.0, reached=560.0,
            dials=["no_answer", "connected"],
        ),
        _callback(
            "g", callback_requested=35.0, placed=300.0, unreached=320.0, dials=["wrong_number"]
        ),
        _callback("h", callback_requested=40.0, abandoned=900.0, abandon_reason="end-of-run"),
    ]  # fmt: skip


class TestCallbackFigures:
    def test_offered_taken_reached_unreached_left(self) -> None:
        (figures,) = callback_figures(_records(), target=600.0)
        assert figures.channel == "phone"
        assert (figures.offered, figures.taken, figures.reached) == (4, 3, 1)
        assert (figures.unreached, figures.wrong_number, figures.left) == (1, 1, 1)
        assert figures.take_share == 0.75
        assert figures.dials == 3
        assert figures.attempts_per_reached == 2.0

    def test_times_run_from_the_first_moment_in_the_queue(self) -> None:
        """The router keeps queued_at: the wait counts once, from the first moment."""
        (figures,) = callback_figures(_records(), target=600.0)
        assert figures.time_to_reach == 560.0
        assert figures.time_to_place == 250.0  # (200 + 300) / 2
        assert figures.waited_before == pytest.approx((31 + 35 + 40) / 3)

    def test_the_callback_service_level_is_the_routers_formula(self) -> None:
        """First dialled within the target of the first moment / (dialled + unreached
        before a dial): f at 200 s, g at 300 s; h, never dialled, is still waiting."""
        (wide,) = callback_figures(_records(), target=600.0)
        assert (wide.placed, wide.placed_within, wide.service_level) == (2, 2, 1.0)
        (narrow,) = callback_figures(_records(), target=250.0)
        assert (narrow.placed_within, narrow.service_level) == (1, 0.5)
        never = _callback("i", callback_requested=1.0, unreached=700.0)  # window closed
        (counted,) = callback_figures([*_records(), never], target=250.0)
        assert counted.service_level == pytest.approx(1 / 3)

    def test_a_run_without_callbacks_has_no_figures(self) -> None:
        plain = [r for r in _records() if r.callback_offered is None]
        assert callback_figures(plain, target=600.0) == []


class TestCallLevels:
    def test_callbacks_are_apart_from_the_inbound_level_and_in_the_every_call_one(self) -> None:
        """Inbound: a within 20 s of a, b, e answered and c a long abandon (d is short):
        1/4. Every call: f reached at 560 s is a miss, g unreached, h left: 1/7."""
        levels = call_levels(_records(), "phone", threshold=20.0, short_abandon=5.0)
        assert (levels.inbound, levels.answered, levels.abandoned) == (5, 3, 2)
        assert levels.long_abandoned == 1
        assert levels.inbound_level == 0.25
        assert (levels.callbacks, levels.callbacks_within) == (3, 0)
        assert levels.every_call_level == pytest.approx(1 / 7)
        assert levels.abandon_share == pytest.approx(2 / 8)

    def test_a_callback_reached_within_target_counts_as_within(self) -> None:
        records = [_callback("f", callback_requested=1.0, reached=15.0, dials=["connected"])]
        levels = call_levels(records, "phone", threshold=20.0, short_abandon=5.0)
        assert levels.inbound_level is None
        assert levels.every_call_level == 1.0


class TestFidelity:
    def test_submit_lag_handle_overhead_and_occupancy(self) -> None:
        """Lag: due -> acknowledged; overhead: held beyond the drawn talk and wrap-up,
        contacts cut short by the close left out; at 20x 1 simulated s is 50 real ms."""
        records = [
            ContactRecord("a", "phone", scheduled=10.0, submitted=10.5, answered=11.0,
                          talk_drawn=100.0, wrap_up_drawn=10.0, completed=122.0),
            ContactRecord("b", "phone", scheduled=20.0, submitted=21.5, answered=30.0,
                          talk_drawn=50.0, wrap_up_drawn=0.0, completed=90.0, cut_short=True),
        ]  # fmt: skip
        agents = [
            AgentRecord("x", "g", on_shift_from=0.0, on_shift_until=100.0, busy=[(0.0, 50.0)]),
            AgentRecord("y", "g", on_shift_from=0.0, on_shift_until=300.0, busy=[(0.0, 250.0)]),
        ]
        f = fidelity(records, agents, time_scale=20.0, window=(0.0, 300.0))
        assert f.submit_lag == 1.0
        assert f.handle_overhead == pytest.approx(1.0)
        assert f.contacts == 1
        assert f.real_ms(f.handle_overhead) == pytest.approx(50.0)
        assert f.occupancy == pytest.approx(300 / 400)
        # within [50, 200]: x on shift 50 s, busy 0; y on shift 150 s, busy 150
        assert fidelity(records, agents, 20.0, (50.0, 200.0)).occupancy == pytest.approx(150 / 200)


class TestBeforeAndAfterScript:
    def test_before_offers_no_callback_and_after_is_the_file(self) -> None:
        """scenarios/callbacks.py: the run before unsets every channel's offer threshold
        and keeps everything else, seed included."""
        from scenarios.callbacks import without_offers

        after = load(SCENARIOS / "callbacks_95.toml")
        before = without_offers(after)
        assert after.policy.of(Channel.PHONE).callback_offer_after == 10
        assert all(before.policy.of(ch).callback_offer_after is None for ch in Channel)
        assert (before.seed, before.channels, before.callbacks) == (
            after.seed,
            after.channels,
            after.callbacks,
        )

    def test_the_tables_say_each_run_and_both_sides(self) -> None:
        """A report made here (a run takes minutes): one row per run in the center's
        table, a router and a simulator row per run in the comparison."""
        from scenarios.callbacks import figures, text

        records = _records()
        agents = [AgentRecord("x", "g", on_shift_from=0.0, on_shift_until=600.0)]
        server = pb.GetServiceLevelResponse(
            rows=[pb.ServiceLevelRow(channel=pb.CHANNEL_PHONE, offered=5, answered=3,
                                     abandoned=2, short_abandoned=1,
                                     answered_within_threshold=1)],
            callbacks=[pb.CallbackServiceLevelRow(requested_from=pb.CHANNEL_PHONE, requested=3,
                                                  placed=2, placed_within_target=2, reached=1,
                                                  unreached=1)],
        )  # fmt: skip
        report = SimulationReport(
            run_id="r", scenario="s", seed=1, router="-", agents=1, time_scale=40.0,
            arrivals_seconds=600.0, drain_seconds=0.0, warm_up=0.0,
            thresholds={"phone": 20.0}, short_abandon_limit=5.0, phone_reserve=0,
            window=("a", "b"), records=records, agent_records=agents,
            counters=RunCounters(), server=server, callback_target=600.0,
        )  # fmt: skip
        rows = [figures("before", report, (1.0, 2.0)), figures("after", report, (2.0, 3.0))]
        assert rows[0]["server_callbacks"]["service_level"] == 1.0
        assert rows[0]["server_calls"]["service_level"] == 0.25  # 1 / (3 + 2 - 1)
        lines = text(rows).splitlines()
        assert [line.split()[0] for line in lines[2:4]] == ["before", "after"]
        compared = [line.split()[:2] for line in lines if line.split()[1:2] == ["router"]]
        assert compared == [["before", "router"], ["after", "router"]]
        assert sum(line.split()[:1] == ["simulator"] for line in lines) == 2
