"""Reporting: the reports ReportingService serves, as plain values.

Reads go through the store's Reports; shaping is the pure modules' (contacts, agents,
plan); staffing arithmetic runs in a worker process (workers). Built by the server once
the router is active; the servicer only validates requests and converts.
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from router.clock import utc_now
from router.domain import Channel, InvalidArgument, RoutingPolicy, time_zones
from router.domain.service_level import FORMULA, service_level
from router.errors import NotEnoughHistory
from router.reporting import forecasting, plan
from router.reporting.agents import FORMULAS, AgentReport, agent_rows
from router.reporting.alarm import AlarmStatus
from router.reporting.callback_staffing import interval_with_callbacks, with_callback_work
from router.reporting.callbacks import CALLBACK_FORMULA, CallbackReport, callback_rows
from router.reporting.contacts import ContactReport, ServiceLevelGoal, contact_rows, goals
from router.reporting.forecasting import (
    Compared,
    Forecast,
    ForecastAccuracy,
    ForecastQuestion,
    ForecastRequest,
    HistoryInterval,
)
from router.reporting.intervals import Interval, interval_start, interval_starts, local_midnight
from router.reporting.plan import StaffingPlan, StaffingQuestion, StaffingRow
from router.reporting.workers import StaffingWorkers
from router.service_level_watch import ServiceLevelWatch
from router.store.reports import DispositionFigures, FeedbackFigures, Reports, StoredForecast


@dataclass(frozen=True, slots=True)
class DispositionReport:
    dispositions: list[DispositionFigures]
    """Per channel, most frequent disposition first."""
    feedback: list[FeedbackFigures]
    """Per channel (agent_id None: the channel's total), then per agent."""


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


class Reporting:
    def __init__(
        self,
        reports: Reports,
        policy: RoutingPolicy,
        watch: ServiceLevelWatch,
        *,
        clock: Callable[[], datetime] = utc_now,
        workers: StaffingWorkers | None = None,
    ) -> None:
        self._reports = reports
        self._policy = policy
        self._watch = watch
        self._clock = clock
        self._workers = workers or StaffingWorkers()

    async def close(self) -> None:
        """End the staffing worker process (waiting at most for its piece of work)."""
        await self._workers.close()

    async def record_feedback(
        self, contact_id: str, rating: int, comment: str, source: str
    ) -> datetime:
        """A survey's rating of a contact, durable when this returns; when it was
        recorded. The caller checks that the contact exists."""
        recorded_at = self._clock()
        await self._reports.record_feedback(contact_id, rating, comment, source, recorded_at)
        return recorded_at

    # ------------------------------------------------------------ live

    def goals(self, channels: Collection[Channel] = ()) -> list[ServiceLevelGoal]:
        """The configured goal of each of `channels` (all when empty)."""
        return goals(self._policy, channels or tuple(Channel))

    @property
    def time_zone(self) -> str:
        """The center's IANA time zone."""
        return self._policy.time_zone

    def alarm(self, channel: Channel = Channel.PHONE) -> AlarmStatus:
        """The channel's service-level alarm (phone's by default), read now."""
        return self._watch.status(channel)

    # ------------------------------------------------------------ history

    async def contact_report(
        self,
        start: datetime,
        end: datetime,
        interval: Interval,
        channels: Collection[Channel] = (),
        *,
        by_skill: bool = False,
        detail: bool = True,
        time_zone: str | None = None,
        by_team: bool = False,
        team: str | None = None,
    ) -> ContactReport:
        """Contacts queued in [start, end) per interval, channel (all when empty) and,
        with `by_skill`, required skill. GetServiceLevel and GetContactReport both read
        this, so their service levels are the same figures; without `detail` (what
        GetServiceLevel shows), the rows leave out the costly figures (ContactDetail).
        Intervals are in `time_zone` (an IANA name the caller checked; None: the
        center's). With `by_team` rows are per team too; `team` keeps only its contacts
        (InvalidArgument when no agent ever signed in with it)."""
        await self._check_team(team)
        wanted = self.goals(channels)
        as_of = self._clock()
        zone = time_zone or self._policy.time_zone
        figures = await self._reports.contacts(
            start,
            end,
            interval,
            {g.channel: g.threshold_seconds for g in wanted},
            self._policy.short_abandon,
            by_skill=by_skill,
            detail=detail,
            time_zone=zone,
            by_team=by_team,
            team=team,
        )
        return ContactReport(
            rows=contact_rows(figures),
            formula=FORMULA,
            short_abandon_seconds=self._policy.short_abandon,
            goals=wanted,
            as_of=as_of,
            time_zone=zone,
        )

    async def callback_report(
        self,
        start: datetime,
        end: datetime,
        interval: Interval,
        time_zone: str | None = None,
        *,
        rows: bool = True,
    ) -> CallbackReport:
        """Queued callbacks queued in [start, end), apart from inbound calls (callbacks.py);
        without `rows`, the formula and target only (nothing is read)."""
        target = self._policy.callback_target
        if not rows:
            return CallbackReport([], CALLBACK_FORMULA, target)
        zone = time_zone or self._policy.time_zone
        figures = await self._reports.callbacks(start, end, interval, target, zone)
        return CallbackReport(callback_rows(figures), CALLBACK_FORMULA, target)

    async def agent_report(
        self,
        start: datetime,
        end: datetime,
        agent_ids: Collection[str] = (),
        team: str | None = None,
    ) -> AgentReport:
        """Agents with contacts or time in [start, end), cut at now (only `agent_ids`,
        unless empty, and only `team`'s, unless None), each with its team."""
        await self._check_team(team)
        as_of = self._clock()
        # Agent time exists up to now: a range that starts later has none yet, and the
        # reads would build ranges whose lower bound passes their upper one.
        cut = min(end, as_of)
        if start >= cut:
            return AgentReport(rows=[], formulas=FORMULAS, as_of=as_of)
        reports = self._reports
        # Four reads, each on its own pooled connection, at once: read-only, and the
        # router's writes have their own connection, so they wait for none of these.
        agents, status_times, sessions, feedback, teams = await asyncio.gather(
            reports.agents(start, cut, as_of),
            reports.agent_status_times(start, cut, as_of),
            reports.sessions(start, cut),
            reports.feedback(start, end),
            reports.agent_teams(cut),
        )
        rows = agent_rows(
            agents, status_times, sessions, feedback, frozenset(agent_ids), teams, team
        )
        return AgentReport(rows=rows, formulas=FORMULAS, as_of=as_of)

    async def disposition_report(
        self, start: datetime, end: datetime, *, by_team: bool = False, team: str | None = None
    ) -> DispositionReport:
        """Wrap-up codes and customer feedback of contacts queued in [start, end), per
        team too with `by_team`, only `team`'s unless None."""
        await self._check_team(team)
        dispositions, feedback = await asyncio.gather(
            self._reports.dispositions(start, end, by_team=by_team, team=team),
            self._reports.feedback(start, end, by_team=by_team, team=team),
        )
        return DispositionReport(
            dispositions=sorted(
                dispositions, key=lambda d: (d.channel.rank, d.team, -d.contacts, d.disposition)
            ),
            feedback=sorted(feedback, key=lambda f: (f.channel.rank, f.team, f.agent_id or "")),
        )

    async def _check_team(self, team: str | None) -> None:
        """A team filter must name a team some agent signed in with: a misspelt one would
        answer an empty report that reads as a team without contacts."""
        if team is not None and not await self._reports.team_known(team):
            raise InvalidArgument(
                "team", f"no agent has ever signed in with team {team!r} (names are exact)"
            )

    # ------------------------------------------------------------ forecasts

    async def forecast(self, request: ForecastRequest) -> Forecast:
        """Contacts and AHT per interval of the horizon from the recorded history before
        its start, fitted in the worker process and stored when made. NotEnoughHistory
        when the channel's recorded history is shorter than the seasonality needs."""
        now = self._clock()
        zone_name = self._policy.time_zone
        zone = time_zones.time_zone(zone_name)
        length = request.interval.fixed_length
        if length is None:
            raise InvalidArgument("interval", "forecasts need intervals of fixed length")
        current = interval_start(now, request.interval, zone)
        start = current
        if request.start is not None:
            start = interval_start(request.start, request.interval, zone)
            if start > current:
                raise InvalidArgument(
                    "start",
                    "is in a later interval than now: a forecast starts where the recorded "
                    "history ends; leave it unset to start at the current interval",
                )
        local_day = start.astimezone(zone).date()
        earliest = local_midnight(local_day - timedelta(days=request.history_days), zone)
        first = await self._reports.first_contact(request.channel, earliest, start)
        begin = None if first is None else local_midnight(first.astimezone(zone).date(), zone)
        recorded_days = 0.0 if begin is None else (start - begin) / timedelta(days=1)
        if begin is None or recorded_days < forecasting.MIN_HISTORY_DAYS:
            since = "none" if begin is None else f"{recorded_days:.1f} days, from {begin:%Y-%m-%d}"
            raise NotEnoughHistory(
                f"a forecast of {request.channel} needs at least "
                f"{forecasting.MIN_HISTORY_DAYS} days of recorded contacts before "
                f"{start:%Y-%m-%d %H:%M} UTC (weekly seasonality is learned from more than "
                f"two weeks); the history of the {request.history_days} days before it "
                f"holds {since}",
                channel=request.channel.value,
                neededDays=forecasting.MIN_HISTORY_DAYS,
                recordedDays=round(recorded_days, 1),
            )
        figures = await self._reports.contacts(
            begin,
            start,
            request.interval,
            {request.channel: self._policy.of(request.channel).answer_target},
            self._policy.short_abandon,
            detail=False,
            time_zone=zone_name,
        )
        recorded = {f.interval_start: (f.offered, f.aht_seconds) for f in figures}
        grid = forecasting.local_grid(
            begin, forecasting.slots_between(begin, start, length, zone), length, zone
        )
        contacts, aht = forecasting.history_series(grid, recorded)
        per_day = int(timedelta(days=1) / length)
        horizon = request.horizon_days * per_day
        values = await self._workers.forecast(
            ForecastQuestion(
                per_day=per_day,
                horizon=horizon,
                level=request.level,
                contacts=tuple(contacts),
                aht=tuple(aht),
            )
        )
        rows = forecasting.forecast_rows(
            forecasting.local_grid(start, horizon, length, zone), values
        )
        forecast_id = await self._reports.save_forecast(
            StoredForecast(
                made_at=now,
                channel=request.channel,
                interval_seconds=int(length.total_seconds()),
                time_zone=zone_name,
                history_start=begin,
                starts_at=start,
                ends_at=rows[-1].interval_start + length,
                level=request.level,
                model=values.model,
            ),
            [
                (r.interval_start, r.contacts, r.contacts_lower, r.contacts_upper, r.aht_seconds)
                for r in rows
            ],
        )
        history = []
        for current_start in interval_starts(begin, start, request.interval, zone):
            offered, handle = recorded.get(current_start, (0, None))
            history.append(HistoryInterval(current_start, offered, handle))
        return Forecast(
            forecast_id=forecast_id,
            made_at=now,
            rows=rows,
            history=history,
            model=values.model,
            level=request.level,
            time_zone=zone_name,
        )

    async def forecast_accuracy(
        self,
        channel: Channel,
        interval: Interval,
        start: datetime,
        end: datetime,
        forecast_id: int | None = None,
    ) -> ForecastAccuracy:
        """Stored forecasts against the contacts offered, per interval of [start, end)
        that has ended by now and had a forecast, and per local day."""
        zone_name = self._policy.time_zone
        zone = time_zones.time_zone(zone_name)
        length = interval.fixed_length
        if length is None:
            raise InvalidArgument("interval", "forecasts have intervals of fixed length")
        cut = min(end, interval_start(self._clock(), interval, zone))
        compared: list[Compared] = []
        if start < cut:
            stored, figures = await asyncio.gather(
                self._reports.forecast_intervals(
                    channel, int(length.total_seconds()), start, cut, forecast_id
                ),
                self._reports.contacts(
                    start,
                    cut,
                    interval,
                    {channel: self._policy.of(channel).answer_target},
                    self._policy.short_abandon,
                    detail=False,
                    time_zone=zone_name,
                ),
            )
            actual = {f.interval_start: f for f in figures}
            for s in stored:
                f = actual.get(s.interval_start)
                compared.append(
                    Compared(
                        start=s.interval_start,
                        forecast=s.contacts,
                        actual=0 if f is None else f.offered,
                        forecast_aht_seconds=s.aht_seconds,
                        actual_aht_seconds=None if f is None else f.aht_seconds,
                        forecast_id=s.forecast_id,
                    )
                )
        return ForecastAccuracy(
            intervals=compared,
            days=forecasting.by_day(compared, zone),
            wape=forecasting.wape(compared),
            bias=forecasting.bias(compared),
            formula=forecasting.ACCURACY_FORMULA,
            time_zone=zone_name,
        )

    # ------------------------------------------------------------ staffing

    async def staffing(self, request: StaffingRequest) -> StaffingPlan:
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
            await self.staffing(dataclasses.replace(request, channel=channel, channels=()))
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
