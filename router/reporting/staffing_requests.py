"""Staffing requests answered: the agents each interval needs, for a forecast or for
the recorded history, one channel or a blended pool (GetStaffing).

This part of Reporting decides what to ask the staffing models (plan.py) and checks
what the caller gave: the channel's defaults applied, the history read and turned into
a forecast with its measured service levels and ready agents, phone's queued callbacks'
work added (callback_staffing.py). The arithmetic runs in a worker process (workers.py).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime

from router.domain import Channel, InvalidArgument, RoutingPolicy, time_zones
from router.domain.service_level import service_level
from router.reporting import plan
from router.reporting.callback_staffing import interval_with_callbacks, with_callback_work
from router.reporting.intervals import Interval, interval_starts
from router.reporting.plan import StaffingPlan, StaffingQuestion, StaffingRow
from router.reporting.workers import StaffingWorkers
from router.store.reports import Reports


@dataclass(frozen=True, slots=True)
class StaffingRequest:
    """A staffing question with its policy defaults still to apply (None)."""

    channel: Channel
    interval: Interval
    target: float | None
    """None: the channel's service-level goal as configured."""
    threshold: float | None
    """None: the channel's answer target."""
    max_occupancy: float
    concurrency: float | None
    """None: the channel's default capacity (phone: 1)."""
    shrinkage: float
    with_abandonment: bool
    patience: float | None
    """Erlang A; None: estimated from the history."""
    forecast: Sequence[tuple[datetime, float, float]] | None
    """(interval start, calls, AHT); None: staff from `history`."""
    history: tuple[datetime, datetime] | None
    channels: tuple[Channel, ...] = ()
    """Two or three: staff them as one blended pool (from history, Erlang C)."""


class StaffingPlanner:
    """Answers StaffingRequests from the store's history and the staffing workers."""

    def __init__(
        self,
        reports: Reports,
        policy: RoutingPolicy,
        workers: StaffingWorkers,
        clock: Callable[[], datetime],
    ) -> None:
        self._reports = reports
        self._policy = policy
        self._workers = workers
        self._clock = clock

    async def plan(self, request: StaffingRequest) -> StaffingPlan:
        """Agents per interval for a forecast, or for the recorded history's intervals
        up to now. InvalidArgument names the request field at fault."""
        if len(request.channels) > 1:
            return await self._blended(request)
        channel_policy = self._policy.of(request.channel)
        length = request.interval.fixed_length
        if length is None:
            raise InvalidArgument("interval", "staffing needs intervals of fixed length")
        concurrency = request.concurrency
        if concurrency is None:
            concurrency = (
                1.0 if channel_policy.exclusive else max(1, channel_policy.default_capacity)
            )
        elif concurrency > max(1, channel_policy.max_capacity):
            raise InvalidArgument(
                "concurrency",
                f"an agent holds at most {channel_policy.max_capacity} contacts of "
                f"{request.channel} at once here (the channel's maximum capacity)",
            )
        patience = request.patience
        threshold = channel_policy.answer_target if request.threshold is None else request.threshold
        measured: dict[datetime, float | None] = {}
        if request.forecast is not None:
            forecast, field = list(request.forecast), "forecast"
        elif request.history is not None:
            forecast, estimated, measured = await self._history(
                request.channel, request.interval, *request.history, threshold
            )
            field = "history_start"
            if request.with_abandonment and patience is None:
                patience = _checked_patience(estimated)
        else:
            raise InvalidArgument("forecast", "give a forecast or history_start and history_end")
        if request.with_abandonment and patience is None:
            raise InvalidArgument(
                "patience_seconds",
                "is required with with_abandonment and a forecast (Erlang A): give the "
                "callers' mean patience, or staff from a history to estimate it",
            )
        question = StaffingQuestion(
            interval_seconds=length.total_seconds(),
            target=_target(request.target, channel_policy.service_level_goal),
            threshold=threshold,
            max_occupancy=request.max_occupancy,
            concurrency=concurrency,
            shrinkage=request.shrinkage,
            patience=patience if request.with_abandonment else None,
            short_abandon=self._policy.short_abandon,
        )
        staffed, problem = await self._workers.staff(question, [(c, a) for _, c, a in forecast])
        if problem is not None:
            index, why = problem
            if field == "forecast":
                raise InvalidArgument(f"forecast[{index}]", why)
            raise InvalidArgument(
                field, f"the interval from {forecast[index][0]:%Y-%m-%d %H:%M}: {why}"
            )
        if request.history is None:
            rows = [
                StaffingRow(start, s) for (start, _, _), s in zip(forecast, staffed, strict=True)
            ]
            return StaffingPlan(rows=rows, question=question)
        ready = await self._reports.ready_agents(
            [start for start, _, _ in forecast], length, self._clock()
        )
        rows = []
        for (start, _, _), s in zip(forecast, staffed, strict=True):
            level = measured.get(start)
            actual = plan.Actual(
                staffed_agents=ready.get(start, 0.0),
                service_level=level,
                missed=level is not None and level < question.target,
            )
            rows.append(StaffingRow(start, s, actual))
        recorded = StaffingPlan(rows=rows, question=question)
        if request.channel is not Channel.PHONE:
            return recorded
        return await with_callback_work(self._reports, recorded, length, self._policy.time_zone)

    async def _blended(self, request: StaffingRequest) -> StaffingPlan:
        """The channels staffed as one pool of blended agents, each counted once, beside
        the sum of each staffed on its own (plan.BLENDED says how)."""
        alone = [
            await self.plan(dataclasses.replace(request, channel=channel, channels=()))
            for channel in request.channels
        ]
        policies = [self._policy.of(channel) for channel in request.channels]
        length = request.interval.fixed_length
        assert length is not None  # checked by each channel's plan
        question = StaffingQuestion(
            interval_seconds=length.total_seconds(),
            target=request.target
            if request.target is not None
            else max(_target(None, p.service_level_goal) for p in policies),
            threshold=request.threshold
            if request.threshold is not None
            else min(p.answer_target for p in policies),
            max_occupancy=request.max_occupancy,
            concurrency=1.0,
            shrinkage=request.shrinkage,
            patience=None,
            short_abandon=self._policy.short_abandon,
            blended=True,
            callbacks=any(p.question.callbacks for p in alone),
        )
        work = []
        for group in zip(*(p.rows for p in alone), strict=True):
            calls = sum(r.staffed.calls for r in group)
            agent_seconds = sum(
                r.staffed.calls * r.staffed.aht_seconds / p.question.concurrency
                for r, p in zip(group, alone, strict=True)
            )
            work.append((calls, agent_seconds / calls if calls else 0.0))
        staffed, problem = await self._workers.staff(question, work)
        if problem is not None:
            index, why = problem
            start = alone[0].rows[index].interval_start
            raise InvalidArgument(
                "history_start", f"the interval from {start:%Y-%m-%d %H:%M}: {why}"
            )
        rows = []
        for index, pooled in enumerate(staffed):
            each = [p.rows[index] for p in alone]
            start, actual = each[0].interval_start, each[0].actual
            assert actual is not None  # a history's rows have one
            rows.append(
                StaffingRow(
                    start,
                    interval_with_callbacks(
                        pooled, question, sum(r.staffed.callback_erlangs for r in each), start
                    ),
                    plan.Actual(
                        staffed_agents=actual.staffed_agents,
                        service_level=None,
                        missed=any(r.actual is not None and r.actual.missed for r in each),
                    ),
                    separate_agents=sum(r.staffed.agents for r in each),
                )
            )
        return StaffingPlan(rows=rows, question=question)

    async def _history(
        self,
        channel: Channel,
        interval: Interval,
        start: datetime,
        end: datetime,
        threshold: float,
    ) -> tuple[list[tuple[datetime, float, float]], float | None, dict[datetime, float | None]]:
        """(start, calls, AHT) of each interval of [start, end) that has begun by now (a
        later one has no history yet), the callers' patience the range shows, and each
        interval's service level measured within `threshold`."""
        now = self._clock()
        if start >= now:
            raise InvalidArgument(
                "history_start", "is after now: a history is what was recorded; give a forecast"
            )
        figures = await self._reports.contacts(
            start,
            end,
            interval,
            {channel: threshold},
            self._policy.short_abandon,
            detail=False,
            time_zone=self._policy.time_zone,
        )
        recorded = {f.interval_start: f for f in figures}
        intervals = []
        zone = time_zones.time_zone(self._policy.time_zone)
        for current in interval_starts(start, min(end, now), interval, zone):
            f = recorded.get(current)
            intervals.append(
                (current, 0, 0, None)
                if f is None
                else (current, f.offered, f.short_abandoned, f.aht_seconds)
            )
        patience = plan.estimated_patience(
            sum(f.abandoned for f in figures), sum(f.total_wait_seconds for f in figures)
        )
        measured = {
            f.interval_start: service_level(
                f.answered_within_threshold, f.answered, f.abandoned, f.short_abandoned
            )
            for f in figures
        }
        return plan.history_forecast(intervals), patience, measured


def _target(asked: float | None, goal: float) -> float:
    """The service level to staff for: the one asked, else the channel's goal (a goal of
    1, "every contact", cannot be staffed for: the models reach it only in the limit)."""
    if asked is not None:
        return asked
    if goal >= 1:
        raise InvalidArgument(
            "target_service_level",
            "the channel's goal is 100%, which no number of agents reaches: give a target",
        )
    return goal


def _checked_patience(estimated: float | None) -> float:
    if estimated is None:
        raise InvalidArgument(
            "patience_seconds",
            "no call was abandoned in the history, so patience cannot be estimated: give it",
        )
    if not plan.MIN_PATIENCE_SECONDS <= estimated <= plan.MAX_PATIENCE_SECONDS:
        raise InvalidArgument(
            "patience_seconds",
            f"the history shows a mean patience of {estimated:.3g} s, outside "
            f"{plan.MIN_PATIENCE_SECONDS:g} to {plan.MAX_PATIENCE_SECONDS:g} s: give it",
        )
    return estimated
