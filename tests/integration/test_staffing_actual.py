"""Required against actually staffed: agents needed from history beside the agents who
were signed in and ready, and the service level measured, per interval.

A recorded morning, 2026-03-02 (UTC), read at 12:30, phone per hour, 80% in 20 s. Both
hours take 20 calls of 180 s (1 Erlang: Erlang C needs 3 agents). From 10:00 alice, bob
and carol are ready all hour and dave for its first half (3.5 agents): every call is
answered in 5 s. From 11:00 bob is at lunch and carol gone, alice alone (1 agent): every
call waits a minute, and the hour misses its service level.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime

import asyncpg
import pytest

from router.domain import Channel, RoutingPolicy
from router.domain.rolling import RollingServiceLevel
from router.reporting.intervals import Interval
from router.reporting.reporting import Reporting
from router.reporting.staffing_requests import StaffingRequest
from router.service_level_watch import ServiceLevelWatch
from router.store import Store
from tests.integration.test_callback_reports import callback
from tests.integration.test_reports import contact, events, status

NOW = datetime(2026, 3, 2, 12, 30, tzinfo=UTC)


def clock(seconds: int) -> str:
    """'HH:MM:SS' for `seconds` after midnight."""
    return f"{seconds // 3600:02d}:{seconds // 60 % 60:02d}:{seconds % 60:02d}"


@pytest.fixture
async def reporting(db: asyncpg.Connection, store: Store) -> AsyncIterator[Reporting]:
    for hour, wait in ((10, 5), (11, 60)):
        for k in range(20):
            queued = hour * 3600 + k * 170
            answered = queued + wait
            await contact(
                db,
                Channel.PHONE,
                clock(queued),
                answered=clock(answered),
                ended=clock(answered + 170),
                completed=clock(answered + 180),
                agent="alice",
            )
    # Blended work beside the calls: 30 chats of 360 s (3 at once: 1 agent-Erlang) and
    # 4 emails of 900 s per hour, answered well within their targets.
    for hour in (10, 11):
        for k in range(30):
            queued = hour * 3600 + k * 110
            await contact(
                db,
                Channel.CHAT,
                clock(queued),
                answered=clock(queued + 10),
                ended=clock(queued + 340),
                completed=clock(queued + 370),
                agent="bob",
            )
        for k in range(4):
            queued = hour * 3600 + k * 900
            await contact(
                db,
                Channel.EMAIL,
                clock(queued),
                answered=clock(queued + 60),
                ended=clock(queued + 900),
                completed=clock(queued + 960),
                agent="carol",
            )
    await status(db, "alice", "signed_in", "ready", "09:55:00")
    await status(db, "bob", "signed_in", "ready", "09:58:00")
    await status(db, "carol", "signed_in", "ready", "09:59:00")
    await status(db, "carol", "signed_out", "offline", "11:00:00")
    await status(db, "dave", "signed_in", "ready", "10:00:00")
    await status(db, "dave", "signed_out", "offline", "10:30:00")
    await status(db, "bob", "status_changed", "away", "11:00:00", "lunch")
    policy = RoutingPolicy()
    watch = ServiceLevelWatch(RollingServiceLevel(policy), policy, clock=lambda: NOW)
    layer = Reporting(store.reports, policy, watch, clock=lambda: NOW)
    try:
        yield layer
    finally:
        await layer.close()


def request(**changes: object) -> StaffingRequest:
    fields: dict[str, object] = {
        "channel": Channel.PHONE,
        "interval": Interval.HOUR,
        "target": 0.8,
        "threshold": 20.0,
        "max_occupancy": 1.0,
        "concurrency": None,
        "shrinkage": 0.0,
        "with_abandonment": False,
        "patience": None,
        "forecast": None,
        "history": (datetime(2026, 3, 2, 10, tzinfo=UTC), datetime(2026, 3, 2, 12, tzinfo=UTC)),
    }
    fields.update(changes)
    return StaffingRequest(**fields)  # type: ignore[arg-type]


class TestRequiredAgainstStaffed:
    async def test_the_missed_hour_is_the_understaffed_one(self, reporting: Reporting) -> None:
        """10:00 had 3.5 agents ready for the 3 needed and met its target (every call
        answered in 5 s); 11:00 had 1 and missed it (none within 20 s)."""
        plan = await reporting.staffing(request())
        rows = {r.interval_start.hour: r for r in plan.rows}
        assert set(rows) == {10, 11}
        for row in rows.values():
            assert row.staffed.calls == 20.0
            assert row.staffed.agents == 3
        first, second = rows[10].actual, rows[11].actual
        assert first is not None
        assert second is not None
        assert first.staffed_agents == pytest.approx(3.5)
        assert first.staffed_agents >= rows[10].staffed.agents
        assert (first.service_level, first.missed) == (1.0, False)
        assert second.staffed_agents == pytest.approx(1.0)
        assert (second.service_level, second.missed) == (0.0, True)
        assert second.staffed_agents < rows[11].staffed.agents

    async def test_the_threshold_asked_is_the_one_measured(self, reporting: Reporting) -> None:
        """Within 90 s every call of both hours was answered: nothing missed."""
        plan = await reporting.staffing(request(threshold=90.0))
        assert [r.actual.service_level for r in plan.rows if r.actual] == [1.0, 1.0]
        assert not any(r.actual.missed for r in plan.rows if r.actual)

    async def test_a_forecast_has_no_actual(self, reporting: Reporting) -> None:
        forecast = [(datetime(2026, 3, 3, 10, tzinfo=UTC), 20.0, 180.0)]
        plan = await reporting.staffing(request(history=None, forecast=forecast))
        assert [r.actual for r in plan.rows] == [None]


class TestBlendedAgents:
    async def test_a_blended_agent_is_counted_once(self, reporting: Reporting) -> None:
        """Phone, chat and email as one pool: the workload is the channels' summed
        agent-Erlangs, the pool needs fewer agents than the three staffed apart, the
        ready agents are counted once (not once per channel), and the missed hour is
        the one whose phone missed."""
        channels = (Channel.PHONE, Channel.CHAT, Channel.EMAIL)
        alone = {c: await reporting.staffing(request(channel=c, threshold=None)) for c in channels}
        blended = await reporting.staffing(request(channels=channels, threshold=None))
        assert blended.question.blended
        assert blended.question.threshold == 20.0, "phone's answer target, the shortest"
        assert [r.interval_start for r in blended.rows] == [
            r.interval_start for r in alone[Channel.PHONE].rows
        ]
        for index, row in enumerate(blended.rows):
            each = [alone[c].rows[index] for c in channels]
            workload = sum(
                r.staffed.traffic_erlangs / alone[c].question.concurrency
                for r, c in zip(each, channels, strict=True)
            )
            assert row.staffed.traffic_erlangs == pytest.approx(workload)
            assert row.staffed.calls == sum(r.staffed.calls for r in each)
            assert row.separate_agents == sum(r.staffed.agents for r in each)
            assert workload < row.staffed.agents < row.separate_agents
            assert row.actual is not None
            assert row.actual.staffed_agents == each[0].actual.staffed_agents  # type: ignore[union-attr]
        assert [r.actual.missed for r in blended.rows if r.actual] == [False, True]

    async def test_one_channel_in_channels_is_ordinary_staffing(self, reporting: Reporting) -> None:
        one = await reporting.staffing(request(channels=(Channel.PHONE,)))
        assert not one.question.blended
        assert one == await reporting.staffing(request())


async def dialled_callback(
    db: asyncpg.Connection, *steps: tuple[str, str], completed: str | None = None
) -> None:
    """A callback queued before the range (its queue time is not what staffing counts)
    with its dials and outcomes as contact events, completed at `completed`."""
    reached = next((when for kind, when in steps if kind == "reached"), None)
    contact_id = await contact(
        db, Channel.PHONE, "09:00:00", answered=reached, completed=completed, agent="alice"
    )
    await callback(db, contact_id, Channel.CHAT, attempts=1, reached=reached)
    await events(db, contact_id, *((kind, f"{when} alice") for kind, when in steps))


@pytest.fixture
async def callbacks(reporting: Reporting, db: asyncpg.Connection) -> Reporting:
    """10:00 adds 6 callbacks of 600 s of agent time each (1 Erlang): a 40 s dial that
    found nobody, a 20 s dial that reached the customer, 540 s of talk and wrap-up.
    11:00 adds 1,230 s: a dial of 20 s from 11:59:50 (into 12:00, counted where it
    began), a 10 s dial that reached a customer at 11:50:10 and its 1,200 s to 12:10:10;
    a dial from 11:30 with no outcome yet counts nothing."""
    for k in range(6):
        minute = 10 + k * 5
        await dialled_callback(
            db,
            ("dialled", f"10:{minute:02d}:00"),
            ("dial_failed", f"10:{minute:02d}:40"),
            ("dialled", f"10:{minute + 1:02d}:00"),
            ("reached", f"10:{minute + 1:02d}:20"),
            completed=f"10:{minute + 10:02d}:20",
        )
    await dialled_callback(db, ("dialled", "11:59:50"), ("dial_failed", "12:00:10"))
    await dialled_callback(
        db, ("dialled", "11:50:00"), ("reached", "11:50:10"), completed="12:10:10"
    )
    await dialled_callback(db, ("dialled", "11:30:00"))
    return reporting


class TestCallbackWork:
    async def test_callbacks_agent_time_adds_agents_beside_the_calls(
        self, callbacks: Reporting
    ) -> None:
        """The calls still need 3 agents at 80/20 (1 Erlang of 20 calls: callbacks are
        no arrivals of the queue); the callbacks' Erlangs are added and rounded up with
        them: 3 + 1 = 4 at 10:00, 3 + 0.34 = 4 at 11:00; occupancy is all work / all
        agents; the service level is the calls' still."""
        plan = await callbacks.staffing(request())
        rows = {r.interval_start.hour: r.staffed for r in plan.rows}
        assert plan.question.callbacks
        assert "callback" in plan.question.model
        assert [s.calls for s in rows.values()] == [20.0, 20.0]
        assert rows[10].callback_erlangs == pytest.approx(1.0)
        assert rows[11].callback_erlangs == pytest.approx(1230 / 3600)
        assert (rows[10].agents, rows[11].agents) == (4, 4)
        assert rows[10].occupancy == pytest.approx((1.0 + 1.0) / 4)
        assert rows[10].traffic_erlangs == pytest.approx(1.0)
        inbound = await callbacks.staffing(request(channel=Channel.CHAT, threshold=None))
        assert not inbound.question.callbacks
        assert all(r.staffed.callback_erlangs == 0.0 for r in inbound.rows)

    async def test_the_occupancy_cap_applies_to_callback_work(self, callbacks: Reporting) -> None:
        """At 85% at most, 1 callback Erlang takes 1 / 0.85 agents: 3 + 1.18 = 5."""
        plan = await callbacks.staffing(request(max_occupancy=0.85, shrinkage=0.2))
        first = plan.rows[0].staffed
        assert (first.agents, first.agents_scheduled) == (5, 7)
        assert first.occupancy <= 0.85

    async def test_a_pool_with_phone_counts_the_callbacks_once(self, callbacks: Reporting) -> None:
        """Blended: the pool's agents take the phone's callback Erlangs beside the
        channels' workload, and the separate sum has them in phone's agents."""
        channels = (Channel.PHONE, Channel.CHAT, Channel.EMAIL)
        phone = await callbacks.staffing(request(threshold=None))
        blended = await callbacks.staffing(request(channels=channels, threshold=None))
        assert blended.question.callbacks
        for pooled, alone in zip(blended.rows, phone.rows, strict=True):
            assert pooled.staffed.callback_erlangs == alone.staffed.callback_erlangs > 0
            work = pooled.staffed.traffic_erlangs + pooled.staffed.callback_erlangs
            assert work < pooled.staffed.agents
            assert pooled.staffed.occupancy == pytest.approx(work / pooled.staffed.agents)
