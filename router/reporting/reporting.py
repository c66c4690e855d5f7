"""Reporting: the reports ReportingService serves, as plain values.

Reads go through the store's Reports; shaping is the pure modules' (contacts, agents,
plan); staffing requests are answered by staffing_requests.py, their arithmetic in a
worker process (workers). Built by the server once the router is active; the servicer
only validates requests and converts.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Collection
from dataclasses import dataclass
from datetime import datetime, timedelta

from router.clock import utc_now
from router.domain import Channel, InvalidArgument, RoutingPolicy, time_zones
from router.domain.service_level import FORMULA
from router.errors import NotEnoughHistory
from router.reporting import forecasting
from router.reporting.agents import FORMULAS, AgentReport, agent_rows
from router.reporting.alarm import AlarmStatus
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
from router.reporting.plan import StaffingPlan
from router.reporting.staffing_requests import StaffingPlanner, StaffingRequest
from router.reporting.workers import StaffingWorkers
from router.service_level_watch import ServiceLevelWatch
from router.store.reports import DispositionFigures, FeedbackFigures, Reports, StoredForecast


@dataclass(frozen=True, slots=True)
class DispositionReport:
    dispositions: list[DispositionFigures]
    """Per channel, most frequent disposition first."""
    feedback: list[FeedbackFigures]
    """Per channel (agent_id None: the channel's total), then per agent."""


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
        self._staffing = StaffingPlanner(reports, policy, self._workers, clock)

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
        up to now (staffing_requests.py). InvalidArgument names the request field at
        fault."""
        return await self._staffing.plan(request)
