"""Reporting: the reports ReportingService serves, as plain values.

Reads go through the store's Reports; shaping is the pure modules' (contacts, agents,
plan); staffing arithmetic runs in a worker process (workers). Built by the server once
the router is active; the servicer only validates requests and converts.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from router.domain import Channel, InvalidArgument, RoutingPolicy, time_zones
from router.domain.service_level import FORMULA
from router.reporting import plan
from router.reporting.agents import FORMULAS, AgentReport, agent_rows
from router.reporting.alarm import AlarmStatus
from router.reporting.contacts import ContactReport, ServiceLevelGoal, contact_rows, goals
from router.reporting.intervals import Interval, interval_starts
from router.reporting.plan import StaffingPlan, StaffingQuestion, StaffingRow
from router.reporting.workers import StaffingWorkers
from router.service_level_watch import ServiceLevelWatch
from router.store.reports import DispositionFigures, FeedbackFigures, Reports


def utc_now() -> datetime:
    return datetime.now(UTC)


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

    # ------------------------------------------------------------ staffing

    async def staffing(self, request: StaffingRequest) -> StaffingPlan:
        """Agents per interval for a forecast, or for the recorded history's intervals
        up to now. InvalidArgument names the request field at fault."""
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
        if request.forecast is not None:
            forecast, field = list(request.forecast), "forecast"
        elif request.history is not None:
            forecast, estimated = await self._history(
                request.channel, request.interval, *request.history
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
            threshold=channel_policy.answer_target
            if request.threshold is None
            else request.threshold,
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
        rows = [StaffingRow(start, s) for (start, _, _), s in zip(forecast, staffed, strict=True)]
        return StaffingPlan(rows=rows, question=question)

    async def _history(
        self, channel: Channel, interval: Interval, start: datetime, end: datetime
    ) -> tuple[list[tuple[datetime, float, float]], float | None]:
        """(start, calls, AHT) of each interval of [start, end) that has begun by now (a
        later one has no history yet), and the callers' patience the range shows."""
        now = self._clock()
        if start >= now:
            raise InvalidArgument(
                "history_start", "is after now: a history is what was recorded; give a forecast"
            )
        figures = await self._reports.contacts(
            start,
            end,
            interval,
            {channel: self._policy.of(channel).answer_target},
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
        return plan.history_forecast(intervals), patience


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
