"""ReportingService: what reporting jobs and supervisors call."""

from __future__ import annotations

import asyncio
import math
from datetime import UTC, datetime, timedelta
from typing import Any

import grpc
from contactrouter.v1 import contact_router_pb2 as pb
from contactrouter.v1 import contact_router_pb2_grpc as pb_grpc

from router.api.convert import (
    channel_from_proto,
    channel_to_proto,
    from_timestamp,
    timestamp,
    unserved_to_proto,
)
from router.api.errors import rpc
from router.api.servicer import Servicer
from router.domain import Channel, InvalidArgument, validation
from router.domain.service_level import FORMULA, service_level
from router.reporting import erlang_a, staffing
from router.reporting.alarm import ALARM_BELOW
from router.reporting.intervals import Interval, interval_start, next_start
from router.reporting.report import (
    HANDLING,
    OCCUPANCY_FORMULA,
    UTILIZATION_FORMULA,
    history_forecast,
    ratio,
)

Context = grpc.aio.ServicerContext[Any, Any]

_INTERVALS = {
    pb.INTERVAL_LENGTH_15_MINUTES: timedelta(minutes=15),
    pb.INTERVAL_LENGTH_HOUR: timedelta(hours=1),
    pb.INTERVAL_LENGTH_DAY: timedelta(days=1),
}
_MAX_RANGE = timedelta(days=366)
_REPORT_INTERVALS = {
    pb.INTERVAL_LENGTH_15_MINUTES: Interval.MINUTES_15,
    pb.INTERVAL_LENGTH_30_MINUTES: Interval.MINUTES_30,
    pb.INTERVAL_LENGTH_HOUR: Interval.HOUR,
    pb.INTERVAL_LENGTH_DAY: Interval.DAY,
    pb.INTERVAL_LENGTH_WEEK: Interval.WEEK,
    pb.INTERVAL_LENGTH_MONTH: Interval.MONTH,
}
_STAFFING_INTERVALS = (Interval.MINUTES_15, Interval.MINUTES_30, Interval.HOUR)
_STATUS = {"ready": pb.AGENT_STATUS_READY, "away": pb.AGENT_STATUS_AWAY}
_ERLANG_A_MODEL = (
    "Erlang A (M/M/n+M: callers wait with exponential patience and may abandon), "
    "computed exactly from the birth-death chain; service level = answered within "
    "threshold / (calls - abandoned within the short-abandon limit); agents = the fewest "
    "n that reach the target"
)
_STAFFING_MODEL = (
    "Erlang C (callers wait, none abandon): traffic A = calls x AHT / interval; "
    "P(wait) = C(n, A); service level = 1 - C(n, A) e^(-(n - A) threshold / AHT); "
    "ASA = C(n, A) AHT / (n - A); agents = the fewest n that reach the target"
)


def _range(start_field: str, end_field: str, request: Any) -> tuple[datetime, datetime]:
    """A required [start, end) of at most 366 days from a request's Timestamps."""
    if not request.HasField(start_field):
        raise InvalidArgument(start_field, "is required")
    if not request.HasField(end_field):
        raise InvalidArgument(end_field, "is required")
    start = from_timestamp(getattr(request, start_field), start_field)
    end = from_timestamp(getattr(request, end_field), end_field)
    if end <= start:
        raise InvalidArgument(end_field, f"must be after {start_field}")
    if end - start > _MAX_RANGE:
        raise InvalidArgument(end_field, "the range may span at most 366 days")
    return start, end


def _report_interval(value: int) -> Interval:
    interval: Interval | None = _REPORT_INTERVALS.get(value)  # type: ignore[call-overload]
    if interval is None:
        raise InvalidArgument(
            "interval", "use INTERVAL_LENGTH_15_MINUTES, _30_MINUTES, _HOUR, _DAY, _WEEK or _MONTH"
        )
    return interval


def _optional(message: Any, field: str, value: float | None) -> None:
    if value is not None:
        setattr(message, field, value)


class ReportingService(Servicer, pb_grpc.ReportingServiceServicer):
    @rpc
    async def GetServiceLevel(
        self, request: pb.GetServiceLevelRequest, context: Context
    ) -> pb.GetServiceLevelResponse:
        start, end = _range("start", "end", request)
        interval = _INTERVALS.get(request.interval)
        if interval is None:
            raise InvalidArgument(
                "interval", "use INTERVAL_LENGTH_15_MINUTES, INTERVAL_LENGTH_HOUR or _DAY"
            )
        channels = [channel_from_proto(c, "channels") for c in request.channels] or list(Channel)
        counts = await self._switchboard.service_level(start, end, interval, set(channels))
        counts.sort(key=lambda row: (row.interval_start, row.channel.rank))
        rows = []
        for row in counts:
            message = pb.ServiceLevelRow(
                interval_start=timestamp(row.interval_start),
                channel=channel_to_proto(row.channel),
                offered=row.offered,
                answered=row.answered,
                abandoned=row.abandoned,
                short_abandoned=row.short_abandoned,
                answered_within_threshold=row.answered_within_threshold,
                threshold_seconds=row.threshold_seconds,
            )
            level = service_level(
                row.answered_within_threshold, row.answered, row.abandoned, row.short_abandoned
            )
            if level is not None:
                message.service_level = level
            if row.asa_seconds is not None:
                message.asa_seconds = row.asa_seconds
            if row.aht_seconds is not None:
                message.aht_seconds = row.aht_seconds
            if row.mean_acw_seconds is not None:
                message.mean_acw_seconds = row.mean_acw_seconds
            rows.append(message)
        return pb.GetServiceLevelResponse(
            rows=rows,
            formula=FORMULA,
            short_abandon_seconds=self._switchboard.router.policy.short_abandon,
        )

    @rpc
    async def GetQueueStatus(
        self, request: pb.GetQueueStatusRequest, context: Context
    ) -> pb.GetQueueStatusResponse:
        snapshot, now = self._switchboard.snapshot()
        return pb.GetQueueStatusResponse(
            channels=[
                pb.ChannelQueue(
                    channel=channel_to_proto(channel),
                    waiting=snapshot.waiting[channel],
                    offered=snapshot.offered[channel],
                    oldest_wait_seconds=snapshot.oldest_wait[channel],
                    unserved=snapshot.unserved[channel],
                )
                for channel in Channel
            ],
            agents=pb.AgentCounts(
                idle=snapshot.agents_idle,
                busy=snapshot.agents_busy,
                away=snapshot.agents_away,
                disconnected=snapshot.agents_disconnected,
                signed_in=snapshot.agents_signed_in,
            ),
            as_of=timestamp(now),
            service_level_alarm=self._alarm(),
            unserved=[unserved_to_proto(u) for u in snapshot.unserved_contacts],
            unserved_total=sum(snapshot.unserved.values()),
        )

    def _alarm(self) -> pb.ServiceLevelAlarm:
        watch = self._switchboard.service_level_watch
        if watch is None:
            return pb.ServiceLevelAlarm(threshold=ALARM_BELOW)
        value = watch.check()
        alarm = pb.ServiceLevelAlarm(raised=watch.alarm.raised, threshold=watch.alarm.threshold)
        if value is not None:
            alarm.rolling_service_level = value
        if watch.alarm.raised_at is not None:
            alarm.raised_at.CopyFrom(timestamp(watch.alarm.raised_at))
        return alarm

    @rpc
    async def GetContactReport(
        self, request: pb.GetContactReportRequest, context: Context
    ) -> pb.GetContactReportResponse:
        start, end = _range("start", "end", request)
        interval = _report_interval(request.interval)
        channels = [channel_from_proto(c, "channels") for c in request.channels] or list(Channel)
        switchboard = self._switchboard
        policy = switchboard.router.policy
        as_of = datetime.now(UTC)
        figures = await switchboard.store.reports.contacts(
            start,
            end,
            interval,
            {c: policy.of(c).answer_target for c in channels},
            policy.short_abandon,
            by_skill=request.by_skill,
        )
        figures.sort(key=lambda f: (f.interval_start, f.channel.rank, f.skill))
        rows = []
        for f in figures:
            row = pb.ContactReportRow(
                interval_start=timestamp(f.interval_start),
                channel=channel_to_proto(f.channel),
                skill=f.skill,
                offered=f.offered,
                answered=f.answered,
                abandoned=f.abandoned,
                short_abandoned=f.short_abandoned,
                answered_within_threshold=f.answered_within_threshold,
                still_waiting=f.still_waiting,
                threshold_seconds=f.threshold_seconds,
                transfers=f.transfers,
                returning_answered=f.returning_answered,
                returning_to_previous_agent=f.returning_to_previous_agent,
            )
            _optional(
                row,
                "service_level",
                service_level(
                    f.answered_within_threshold, f.answered, f.abandoned, f.short_abandoned
                ),
            )
            _optional(row, "abandonment_rate", ratio(f.abandoned, f.offered))
            _optional(row, "asa_seconds", f.asa_seconds)
            _optional(row, "p90_wait_seconds", f.p90_wait_seconds)
            _optional(row, "longest_wait_seconds", f.longest_wait_seconds)
            _optional(row, "aht_seconds", f.aht_seconds)
            _optional(row, "mean_talk_seconds", f.mean_talk_seconds)
            _optional(row, "mean_acw_seconds", f.mean_acw_seconds)
            rows.append(row)
        return pb.GetContactReportResponse(
            rows=rows,
            formula=FORMULA,
            short_abandon_seconds=policy.short_abandon,
            as_of=timestamp(as_of),
        )

    @rpc
    async def GetAgentReport(
        self, request: pb.GetAgentReportRequest, context: Context
    ) -> pb.GetAgentReportResponse:
        start, end = _range("start", "end", request)
        wanted = validation.agent_ids(request.agent_ids, "agent_ids")
        reports = self._switchboard.store.reports
        as_of = datetime.now(UTC)
        # Four reads, each on its own pooled connection, at once: read-only, and the
        # router's writes have their own connection, so they wait for none of these.
        agents, status_times, sessions, feedback = await asyncio.gather(
            reports.agents(start, end, as_of),
            reports.agent_status_times(start, end, as_of),
            reports.sessions(start, end),
            reports.feedback(start, end),
        )
        rows: dict[str, pb.AgentReportRow] = {}
        for a in agents:
            if wanted and a.agent_id not in wanted:
                continue
            row = pb.AgentReportRow(
                agent_id=a.agent_id,
                contacts_handled=a.contacts_handled,
                contacts_completed=a.completed,
                acw_seconds=a.acw_seconds_total,
                signed_in_seconds=a.signed_in_seconds,
                ready_seconds=a.ready_seconds,
                handling_seconds=a.handling_seconds,
            )
            _optional(row, "aht_seconds", a.aht_seconds)
            _optional(
                row,
                "mean_acw_seconds",
                ratio(a.acw_seconds_total, a.completed) if a.completed else None,
            )
            _optional(row, "occupancy", ratio(a.handling_seconds, a.available_seconds))
            _optional(row, "utilization", ratio(a.handling_seconds, a.signed_in_seconds))
            rows[a.agent_id] = row
        for t in status_times:
            if t.agent_id in rows and t.status in _STATUS:
                rows[t.agent_id].status_times.append(
                    pb.StatusTime(
                        status=_STATUS[t.status],
                        reason=t.reason,
                        seconds=t.seconds,
                    )
                )
        for s in sessions:
            if s.agent_id in rows:
                session = pb.AgentSession(signed_in_at=timestamp(s.signed_in_at))
                if s.signed_out_at is not None:
                    session.signed_out_at.CopyFrom(timestamp(s.signed_out_at))
                rows[s.agent_id].sessions.append(session)
        ratings: dict[str, tuple[int, float]] = {}
        for f in feedback:
            if f.agent_id is not None:
                count, total = ratings.get(f.agent_id, (0, 0.0))
                ratings[f.agent_id] = (count + f.ratings, total + f.ratings * f.mean_rating)
        for agent_id, (count, total) in ratings.items():
            if agent_id in rows:
                rows[agent_id].ratings = count
                rows[agent_id].mean_rating = total / count
        return pb.GetAgentReportResponse(
            agents=[rows[k] for k in sorted(rows)],
            formulas=f"{OCCUPANCY_FORMULA}; {UTILIZATION_FORMULA}; {HANDLING}",
            as_of=timestamp(as_of),
        )

    @rpc
    async def GetDispositionReport(
        self, request: pb.GetDispositionReportRequest, context: Context
    ) -> pb.GetDispositionReportResponse:
        start, end = _range("start", "end", request)
        reports = self._switchboard.store.reports
        response = pb.GetDispositionReportResponse()
        dispositions = await reports.dispositions(start, end)
        dispositions.sort(key=lambda d: (d.channel.rank, -d.contacts, d.disposition))
        for d in dispositions:
            row = pb.DispositionRow(
                channel=channel_to_proto(d.channel),
                disposition=d.disposition,
                contacts=d.contacts,
                ratings=d.ratings,
            )
            _optional(row, "aht_seconds", d.aht_seconds)
            _optional(row, "mean_rating", d.mean_rating)
            response.dispositions.append(row)
        feedback = await reports.feedback(start, end)
        feedback.sort(key=lambda f: (f.channel.rank, f.agent_id or ""))
        for f in feedback:
            response.feedback.append(
                pb.FeedbackRow(
                    channel=channel_to_proto(f.channel),
                    agent_id=f.agent_id or "",
                    ratings=f.ratings,
                    mean_rating=f.mean_rating,
                )
            )
        return response

    @rpc
    async def GetStaffing(
        self, request: pb.GetStaffingRequest, context: Context
    ) -> pb.GetStaffingResponse:
        channel = channel_from_proto(request.channel)
        interval = _report_interval(request.interval)
        length = interval.fixed_length
        if interval not in _STAFFING_INTERVALS or length is None:
            raise InvalidArgument(
                "interval",
                "staff per INTERVAL_LENGTH_15_MINUTES, _30_MINUTES or _HOUR: Erlang C assumes "
                "calls arrive at a steady rate within the interval",
            )
        target = request.target_service_level or 0.8
        if not 0 < target < 1 or math.isnan(target):
            raise InvalidArgument("target_service_level", "must be between 0 and 1, exclusive")
        policy = self._switchboard.router.policy
        threshold = request.threshold_seconds or policy.of(channel).answer_target
        if not 0 < threshold < math.inf:
            raise InvalidArgument("threshold_seconds", "must be a positive number of seconds")
        max_occupancy = request.max_occupancy or 1.0
        if not 0 < max_occupancy <= 1:
            raise InvalidArgument("max_occupancy", "must be in (0, 1]")
        forecast, patience = await self._forecast(request, channel, interval)
        short_abandon = policy.short_abandon

        def staff() -> list[pb.StaffingRow]:
            rows = []
            for index, (start, calls, aht) in enumerate(forecast):
                field = f"forecast[{index}]"
                if not (0 <= calls < math.inf) or not (0 <= aht < math.inf):
                    raise InvalidArgument(field, "calls and aht_seconds must be finite and >= 0")
                try:
                    row = (
                        _erlang_c_row(calls, aht, length, target, threshold, max_occupancy)
                        if patience is None
                        else _erlang_a_row(calls, aht, length, target, threshold, patience,
                                           short_abandon)
                    )  # fmt: skip
                except (ValueError, OverflowError) as error:
                    # OverflowError: calls x AHT beyond a float (each finite on its own).
                    raise InvalidArgument(field, str(error)) from None
                row.interval_start.CopyFrom(timestamp(start))
                rows.append(row)
            return rows

        # Thousands of large intervals take seconds of arithmetic: off the event loop,
        # which routes every contact meanwhile.
        rows = await asyncio.to_thread(staff)
        return pb.GetStaffingResponse(
            rows=rows,
            model=_STAFFING_MODEL if patience is None else _ERLANG_A_MODEL,
            target_service_level=target,
            threshold_seconds=threshold,
            patience_seconds=patience or 0.0,
        )

    async def _forecast(
        self, request: pb.GetStaffingRequest, channel: Channel, interval: Interval
    ) -> tuple[list[tuple[datetime, float, float]], float | None]:
        """(start, calls, AHT) per interval, from the request's forecast or recorded
        history; and the callers' mean patience for Erlang A (None for Erlang C)."""
        has_history = request.HasField("history_start") or request.HasField("history_end")
        if request.forecast and has_history:
            raise InvalidArgument("forecast", "give either a forecast or a history range, not both")
        patience: float | None = None
        if request.with_abandonment:
            patience = request.patience_seconds
            if not 0 <= patience < math.inf:
                raise InvalidArgument("patience_seconds", "must be a positive number of seconds")
            if patience == 0 and not has_history:
                raise InvalidArgument("patience_seconds", "is required with a forecast (Erlang A)")
        elif request.patience_seconds:
            raise InvalidArgument("patience_seconds", "goes with with_abandonment")
        if request.forecast:
            if len(request.forecast) > 10_000:
                raise InvalidArgument("forecast", "at most 10000 intervals")
            planned = []
            for index, item in enumerate(request.forecast):
                if not item.HasField("interval_start"):
                    raise InvalidArgument(f"forecast[{index}].interval_start", "is required")
                planned.append(
                    (
                        from_timestamp(item.interval_start, f"forecast[{index}].interval_start"),
                        item.calls,
                        item.aht_seconds,
                    )
                )
            return planned, patience
        if not has_history:
            raise InvalidArgument("forecast", "give a forecast or history_start and history_end")
        start, end = _range("history_start", "history_end", request)
        policy = self._switchboard.router.policy
        figures = await self._switchboard.store.reports.contacts(
            start,
            end,
            interval,
            {channel: policy.of(channel).answer_target},
            policy.short_abandon,
        )
        if patience == 0:
            abandoned = sum(f.abandoned for f in figures)
            if abandoned == 0:
                raise InvalidArgument(
                    "patience_seconds",
                    "no call was abandoned in the history, so patience cannot be estimated: "
                    "give it",
                )
            patience = sum(f.total_wait_seconds for f in figures) / abandoned
        recorded = {f.interval_start: f for f in figures}
        intervals = []
        current = interval_start(start, interval)
        while current < end:
            f = recorded.get(current)
            intervals.append(
                (current, 0, 0, None)
                if f is None
                else (current, f.offered, f.short_abandoned, f.aht_seconds)
            )
            current = next_start(current, interval)
        return history_forecast(intervals), patience


def _erlang_c_row(
    calls: float,
    aht: float,
    length: timedelta,
    target: float,
    threshold: float,
    max_occupancy: float,
) -> pb.StaffingRow:
    need = staffing.agents_needed(
        calls,
        aht,
        length.total_seconds(),
        target=target,
        threshold=threshold,
        max_occupancy=max_occupancy,
    )
    return pb.StaffingRow(
        calls=calls,
        aht_seconds=aht,
        traffic_erlangs=need.traffic_erlangs,
        agents=need.agents,
        service_level=need.service_level,
        asa_seconds=need.asa_seconds,
        occupancy=need.occupancy,
        probability_of_waiting=need.probability_of_waiting,
    )


def _erlang_a_row(
    calls: float,
    aht: float,
    length: timedelta,
    target: float,
    threshold: float,
    patience: float,
    short_abandon: float,
) -> pb.StaffingRow:
    need = erlang_a.agents_needed_a(
        calls,
        aht,
        length.total_seconds(),
        patience_seconds=patience,
        target=target,
        threshold=threshold,
        short_abandon=short_abandon,
        max_agents=staffing.MAX_AGENTS,
    )
    return pb.StaffingRow(
        calls=calls,
        aht_seconds=aht,
        traffic_erlangs=need.traffic_erlangs,
        agents=need.agents,
        service_level=need.service_level,
        asa_seconds=need.asa_seconds,
        occupancy=need.occupancy,
        probability_of_waiting=need.probability_of_waiting,
        abandonment=need.abandonment,
    )
