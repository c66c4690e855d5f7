"""ReportingService: what reporting jobs and supervisors call.

Validation and conversion only: protobuf in, domain values to router.reporting's
Reporting, its plain dataclasses back to protobuf.
"""

from __future__ import annotations

import math
from collections.abc import AsyncIterator, Iterable
from datetime import datetime, timedelta
from typing import Any

import grpc
from contactrouter.v1 import contact_router_pb2 as pb
from contactrouter.v1 import contact_router_pb2_grpc as pb_grpc

from router.api.convert import (
    agent_counts_to_proto,
    alarm_to_proto,
    channel_from_proto,
    channel_queue_to_proto,
    channel_to_proto,
    from_timestamp,
    goal_to_proto,
    set_optional,
    staffing_row_to_proto,
    timestamp,
    unserved_to_proto,
)
from router.api.errors import rpc
from router.api.report_callbacks import callback_fields
from router.api.servicer import ActiveSwitchboard, RpcObserver, Servicer, ignore_rpc
from router.api.watch import QueueFeed, queue_feed, watch_queue
from router.domain import AgentStatus, Channel, InvalidArgument, validation
from router.domain.time_zones import is_time_zone
from router.live_feed import FeedSettings
from router.reporting import forecasting, plan
from router.reporting.contacts import ContactRow, ServiceLevelGoal
from router.reporting.forecasting import LIMITATIONS, Compared, ForecastRequest
from router.reporting.intervals import Interval
from router.reporting.staffing_requests import StaffingRequest

Context = grpc.aio.ServicerContext[Any, Any]

_MAX_RANGE = timedelta(days=366)
_INTERVALS = {
    pb.INTERVAL_LENGTH_15_MINUTES: Interval.MINUTES_15,
    pb.INTERVAL_LENGTH_30_MINUTES: Interval.MINUTES_30,
    pb.INTERVAL_LENGTH_HOUR: Interval.HOUR,
    pb.INTERVAL_LENGTH_DAY: Interval.DAY,
    pb.INTERVAL_LENGTH_WEEK: Interval.WEEK,
    pb.INTERVAL_LENGTH_MONTH: Interval.MONTH,
    pb.INTERVAL_LENGTH_YEAR: Interval.YEAR,
}
_SERVICE_LEVEL_INTERVALS = (
    Interval.MINUTES_15,
    Interval.HOUR,
    Interval.DAY,
    Interval.MONTH,
    Interval.YEAR,
)
_STAFFING_INTERVALS = (Interval.MINUTES_15, Interval.MINUTES_30, Interval.HOUR)
_MAX_FORECAST_ID = 2**63 - 1  # forecasts.id is a bigint
_STATUS = {AgentStatus.READY: pb.AGENT_STATUS_READY, AgentStatus.AWAY: pb.AGENT_STATUS_AWAY}


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


def _interval(value: int, allowed: Iterable[Interval] = tuple(Interval), why: str = "") -> Interval:
    interval: Interval | None = _INTERVALS.get(value)  # type: ignore[call-overload]
    if interval is None or interval not in allowed:
        names = {v: pb.IntervalLength.Name(k) for k, v in _INTERVALS.items()}
        raise InvalidArgument("interval", f"use {', '.join(names[i] for i in allowed)}{why}")
    return interval


def _time_zone(value: str) -> str | None:
    """The request's time zone; None (the center's) when empty."""
    if not value:
        return None
    if not is_time_zone(value):
        raise InvalidArgument(
            "time_zone",
            f"{value[:80]!r} is not an IANA time zone: use a name such as Europe/Paris, "
            "or leave it empty for the center's",
        )
    return value


def _team(value: str) -> str | None:
    """The request's team filter; None (every team) when empty."""
    return validation.team(value, "team") or None


def _channels(values: Iterable[int]) -> list[Channel]:
    return [channel_from_proto(c, "channels") for c in values]


def _number(value: float, field: str, low: float, high: float, unit: str = "") -> float:
    """`value` if it lies in [low, high] (NaN does not)."""
    if not low <= value <= high:
        raise InvalidArgument(field, f"must be between {low:g} and {high:g}{unit}")
    return value


def _goals(goals: Iterable[ServiceLevelGoal]) -> list[pb.ServiceLevelGoal]:
    return [goal_to_proto(g) for g in goals]


def _service_level_row(row: ContactRow) -> pb.ServiceLevelRow:
    f = row.figures
    message = pb.ServiceLevelRow(
        interval_start=timestamp(f.interval_start),
        channel=channel_to_proto(f.channel),
        offered=f.offered,
        answered=f.answered,
        abandoned=f.abandoned,
        short_abandoned=f.short_abandoned,
        answered_within_threshold=f.answered_within_threshold,
        threshold_seconds=f.threshold_seconds,
        cancelled=f.cancelled,
    )
    set_optional(message, "service_level", row.service_level)
    set_optional(message, "asa_seconds", f.asa_seconds)
    set_optional(message, "aht_seconds", f.aht_seconds)
    set_optional(message, "mean_acw_seconds", f.mean_acw_seconds)
    return message


def _contact_report_row(row: ContactRow) -> pb.ContactReportRow:
    f = row.figures
    detail = f.detail
    assert detail is not None, "GetContactReport reads its rows with detail"
    message = pb.ContactReportRow(
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
        transfers=detail.transfers,
        returning_answered=detail.returning_answered,
        returning_to_previous_agent=detail.returning_to_previous_agent,
        team=f.team,
        cancelled=f.cancelled,
    )
    set_optional(message, "service_level", row.service_level)
    set_optional(message, "abandonment_rate", row.abandonment_rate)
    set_optional(message, "asa_seconds", f.asa_seconds)
    set_optional(message, "p90_wait_seconds", detail.p90_wait_seconds)
    set_optional(message, "longest_wait_seconds", f.longest_wait_seconds)
    set_optional(message, "aht_seconds", f.aht_seconds)
    set_optional(message, "mean_talk_seconds", f.mean_talk_seconds)
    set_optional(message, "mean_acw_seconds", f.mean_acw_seconds)
    return message


class ReportingService(Servicer, pb_grpc.ReportingServiceServicer):
    def __init__(
        self,
        active: ActiveSwitchboard,
        observe_rpc: RpcObserver = ignore_rpc,
        feed: QueueFeed | None = None,
    ) -> None:
        """`feed`: the live queue's pictures for WatchQueue (one for the server)."""
        super().__init__(active, observe_rpc)
        self.feed = feed or queue_feed(active, FeedSettings())

    @rpc
    async def GetServiceLevel(
        self, request: pb.GetServiceLevelRequest, context: Context
    ) -> pb.GetServiceLevelResponse:
        start, end = _range("start", "end", request)
        interval = _interval(request.interval, _SERVICE_LEVEL_INTERVALS)
        channels, zone = _channels(request.channels), _time_zone(request.time_zone)
        report = await self._reporting.contact_report(
            start, end, interval, channels, detail=False, time_zone=zone
        )
        return pb.GetServiceLevelResponse(
            rows=[_service_level_row(row) for row in report.rows],
            formula=report.formula,
            short_abandon_seconds=report.short_abandon_seconds,
            goals=_goals(report.goals),
            time_zone=report.time_zone,
            **await callback_fields(self._reporting, start, end, interval, channels, zone),
        )

    @rpc
    async def GetQueueStatus(
        self, request: pb.GetQueueStatusRequest, context: Context
    ) -> pb.GetQueueStatusResponse:
        reporting = self._reporting
        snapshot, now = self._switchboard.snapshot()
        return pb.GetQueueStatusResponse(
            channels=[channel_queue_to_proto(snapshot, channel) for channel in Channel],
            agents=agent_counts_to_proto(snapshot),
            as_of=timestamp(now),
            service_level_alarm=alarm_to_proto(reporting.alarm()),
            unserved=[unserved_to_proto(u) for u in snapshot.unserved_contacts],
            unserved_total=sum(snapshot.unserved.values()),
            goals=_goals(reporting.goals()),
            time_zone=reporting.time_zone,
        )

    async def WatchQueue(
        self, request: pb.WatchQueueRequest, context: Context
    ) -> AsyncIterator[pb.WatchQueueResponse]:
        async for picture in watch_queue(self.feed, self._active, context, self.observe_rpc):
            yield picture

    @rpc
    async def GetContactReport(
        self, request: pb.GetContactReportRequest, context: Context
    ) -> pb.GetContactReportResponse:
        start, end = _range("start", "end", request)
        interval = _interval(request.interval)
        channels, zone, team = (
            _channels(request.channels),
            _time_zone(request.time_zone),
            _team(request.team),
        )
        report = await self._reporting.contact_report(
            start,
            end,
            interval,
            channels,
            by_skill=request.by_skill,
            time_zone=zone,
            by_team=request.by_team,
            team=team,
        )
        return pb.GetContactReportResponse(
            rows=[_contact_report_row(row) for row in report.rows],
            formula=report.formula,
            short_abandon_seconds=report.short_abandon_seconds,
            as_of=timestamp(report.as_of),
            goals=_goals(report.goals),
            time_zone=report.time_zone,
            **await callback_fields(self._reporting, start, end, interval, channels, zone, team),
        )

    @rpc
    async def GetAgentReport(
        self, request: pb.GetAgentReportRequest, context: Context
    ) -> pb.GetAgentReportResponse:
        start, end = _range("start", "end", request)
        wanted = validation.agent_ids(request.agent_ids, "agent_ids")
        report = await self._reporting.agent_report(start, end, wanted, _team(request.team))
        rows = []
        for a in report.rows:
            row = pb.AgentReportRow(
                agent_id=a.agent_id,
                contacts_handled=a.contacts_handled,
                contacts_completed=a.contacts_completed,
                acw_seconds=a.acw_seconds,
                signed_in_seconds=a.signed_in_seconds,
                ready_seconds=a.ready_seconds,
                handling_seconds=a.handling_seconds,
                status_times=[
                    pb.StatusTime(status=_STATUS[t.status], reason=t.reason, seconds=t.seconds)
                    for t in a.status_times
                ],
                ratings=a.ratings,
                team=a.team,
            )
            for s in a.sessions:
                session = row.sessions.add(
                    signed_in_at=timestamp(s.signed_in_at), signed_out_by=s.signed_out_by or ""
                )
                if s.signed_out_at is not None:
                    session.signed_out_at.CopyFrom(timestamp(s.signed_out_at))
            set_optional(row, "aht_seconds", a.aht_seconds)
            set_optional(row, "mean_acw_seconds", a.mean_acw_seconds)
            set_optional(row, "occupancy", a.occupancy)
            set_optional(row, "utilization", a.utilization)
            set_optional(row, "mean_rating", a.mean_rating)
            rows.append(row)
        return pb.GetAgentReportResponse(
            agents=rows, formulas=report.formulas, as_of=timestamp(report.as_of)
        )

    @rpc
    async def GetDispositionReport(
        self, request: pb.GetDispositionReportRequest, context: Context
    ) -> pb.GetDispositionReportResponse:
        start, end = _range("start", "end", request)
        report = await self._reporting.disposition_report(
            start, end, by_team=request.by_team, team=_team(request.team)
        )
        response = pb.GetDispositionReportResponse()
        for d in report.dispositions:
            row = response.dispositions.add(
                channel=channel_to_proto(d.channel),
                disposition=d.disposition,
                contacts=d.contacts,
                ratings=d.ratings,
                team=d.team,
            )
            set_optional(row, "aht_seconds", d.aht_seconds)
            set_optional(row, "mean_rating", d.mean_rating)
        for f in report.feedback:
            response.feedback.add(
                channel=channel_to_proto(f.channel),
                agent_id=f.agent_id or "",
                ratings=f.ratings,
                mean_rating=f.mean_rating,
                team=f.team,
            )
        return response

    @rpc
    async def GetStaffing(
        self, request: pb.GetStaffingRequest, context: Context
    ) -> pb.GetStaffingResponse:
        staffing = await self._reporting.staffing(_staffing_request(request))
        question = staffing.question
        return pb.GetStaffingResponse(
            rows=[staffing_row_to_proto(r, question.callbacks) for r in staffing.rows],
            model=question.model,
            target_service_level=question.target,
            threshold_seconds=question.threshold,
            patience_seconds=question.patience or 0.0,
            concurrency=question.concurrency,
            shrinkage=question.shrinkage,
        )

    @rpc
    async def GetForecast(
        self, request: pb.GetForecastRequest, context: Context
    ) -> pb.GetForecastResponse:
        forecast = await self._reporting.forecast(_forecast_request(request))
        history = []
        for h in forecast.history:
            row = pb.ForecastHistoryRow(
                interval_start=timestamp(h.interval_start), contacts=h.contacts
            )
            set_optional(row, "aht_seconds", h.aht_seconds)
            history.append(row)
        return pb.GetForecastResponse(
            rows=[
                pb.ForecastRow(
                    interval_start=timestamp(r.interval_start),
                    contacts=r.contacts,
                    contacts_lower=r.contacts_lower,
                    contacts_upper=r.contacts_upper,
                    aht_seconds=r.aht_seconds,
                )
                for r in forecast.rows
            ],
            forecast_id=forecast.forecast_id,
            made_at=timestamp(forecast.made_at),
            model=forecast.model,
            level=forecast.level,
            history=history,
            time_zone=forecast.time_zone,
            limitations=LIMITATIONS,
        )

    @rpc
    async def GetForecastAccuracy(
        self, request: pb.GetForecastAccuracyRequest, context: Context
    ) -> pb.GetForecastAccuracyResponse:
        channel = channel_from_proto(request.channel)
        interval = _interval(
            request.interval, _STAFFING_INTERVALS, ": forecasts are per 15 or 30 minutes or hour"
        )
        start, end = _range("start", "end", request)
        if end - start > timedelta(days=forecasting.MAX_ACCURACY_DAYS):
            raise InvalidArgument(
                "end", f"the range may span at most {forecasting.MAX_ACCURACY_DAYS} days"
            )
        if request.forecast_id > _MAX_FORECAST_ID:
            raise InvalidArgument(
                "forecast_id", "is no forecast's id: give one GetForecast answered, or 0"
            )
        accuracy = await self._reporting.forecast_accuracy(
            channel, interval, start, end, request.forecast_id or None
        )
        response = pb.GetForecastAccuracyResponse(
            intervals=[_accuracy_row(r, True) for r in accuracy.intervals],
            days=[_accuracy_row(r, False) for r in accuracy.days],
            formula=accuracy.formula,
            time_zone=accuracy.time_zone,
        )
        set_optional(response, "wape", accuracy.wape)
        set_optional(response, "bias", accuracy.bias)
        return response


def _forecast_request(request: pb.GetForecastRequest) -> ForecastRequest:
    """The request's fields checked against router.reporting.forecasting's bounds."""
    channel = channel_from_proto(request.channel)
    interval = _interval(
        request.interval, _STAFFING_INTERVALS, ": forecasts are per 15 or 30 minutes or hour"
    )
    if not 1 <= request.horizon_days <= forecasting.MAX_HORIZON_DAYS:
        raise InvalidArgument(
            "horizon_days",
            f"must be 1 to {forecasting.MAX_HORIZON_DAYS} days (eight weeks)",
        )
    history_days = request.history_days or forecasting.DEFAULT_HISTORY_DAYS
    if not forecasting.MIN_HISTORY_DAYS <= history_days <= forecasting.MAX_HISTORY_DAYS:
        raise InvalidArgument(
            "history_days",
            f"must be {forecasting.MIN_HISTORY_DAYS} to {forecasting.MAX_HISTORY_DAYS} days "
            f"(0 for {forecasting.DEFAULT_HISTORY_DAYS}): weekly seasonality needs more than "
            "two weeks",
        )
    level = request.level or forecasting.DEFAULT_LEVEL
    if not 0.5 <= level <= 0.99:  # NaN is not either
        raise InvalidArgument("level", "must be between 0.5 and 0.99 (0 for 0.8)")
    start = from_timestamp(request.start, "start") if request.HasField("start") else None
    return ForecastRequest(
        channel=channel,
        interval=interval,
        horizon_days=request.horizon_days,
        start=start,
        history_days=history_days,
        level=level,
    )


def _accuracy_row(row: Compared, with_interval: bool) -> pb.ForecastAccuracyRow:
    message = pb.ForecastAccuracyRow(
        start=timestamp(row.start),
        forecast_contacts=row.forecast,
        actual_contacts=round(row.actual),
    )
    set_optional(message, "wape", row.wape)
    set_optional(message, "bias", row.bias)
    if with_interval:
        message.forecast_id = row.forecast_id or 0
        set_optional(message, "forecast_aht_seconds", row.forecast_aht_seconds)
        set_optional(message, "actual_aht_seconds", row.actual_aht_seconds)
    return message


def _staffing_request(request: pb.GetStaffingRequest) -> StaffingRequest:
    """The request's fields checked against what a contact center can mean (the bounds
    of router.reporting.plan), with unset ones left None for the policy's defaults."""
    channels = _blended_channels(request)
    channel = channels[0] if channels else channel_from_proto(request.channel)
    interval = _interval(
        request.interval,
        _STAFFING_INTERVALS,
        ": the queue models assume contacts arrive at a steady rate within the interval",
    )
    target = None
    if request.target_service_level:
        target = request.target_service_level
        if not 0 < target < 1:  # NaN is not either
            raise InvalidArgument("target_service_level", "must be between 0 and 1, exclusive")
    threshold = None
    if request.threshold_seconds:
        threshold = request.threshold_seconds
        if not 0 < threshold <= plan.MAX_THRESHOLD_SECONDS:
            raise InvalidArgument(
                "threshold_seconds",
                f"must be a positive number of seconds up to {plan.MAX_THRESHOLD_SECONDS:.0f} "
                "(a year)",
            )
    max_occupancy = request.max_occupancy or 1.0
    if not 0 < max_occupancy <= 1:
        raise InvalidArgument("max_occupancy", "must be in (0, 1]")
    concurrency = None
    if request.HasField("concurrency"):
        concurrency = request.concurrency
        if not 1 <= concurrency < math.inf:
            raise InvalidArgument("concurrency", "must be at least 1 (contacts an agent holds)")
    shrinkage = 0.0
    if request.HasField("shrinkage"):
        shrinkage = request.shrinkage
        if not 0 <= shrinkage < 1:
            raise InvalidArgument("shrinkage", "must be in [0, 1)")
    patience = None
    if request.with_abandonment:
        if request.patience_seconds:
            patience = _number(
                request.patience_seconds,
                "patience_seconds",
                plan.MIN_PATIENCE_SECONDS,
                plan.MAX_PATIENCE_SECONDS,
                " seconds",
            )
    elif request.patience_seconds:
        raise InvalidArgument("patience_seconds", "goes with with_abandonment")
    has_history = request.HasField("history_start") or request.HasField("history_end")
    if request.forecast and has_history:
        raise InvalidArgument("forecast", "give either a forecast or a history range, not both")
    forecast = None
    history = None
    if request.forecast:
        if len(request.forecast) > plan.MAX_INTERVALS:
            raise InvalidArgument("forecast", f"at most {plan.MAX_INTERVALS} intervals")
        forecast = []
        length = interval.fixed_length
        assert length is not None  # staffing intervals have a fixed length
        for index, item in enumerate(request.forecast):
            field = f"forecast[{index}]"
            if not item.HasField("interval_start"):
                raise InvalidArgument(f"{field}.interval_start", "is required")
            start = from_timestamp(item.interval_start, f"{field}.interval_start")
            problem = plan.interval_problem(item.calls, item.aht_seconds, length.total_seconds())
            if problem is not None:
                raise InvalidArgument(field, problem)
            forecast.append((start, item.calls, item.aht_seconds))
    elif has_history:
        history = _range("history_start", "history_end", request)
    else:
        raise InvalidArgument("forecast", "give a forecast or history_start and history_end")
    return StaffingRequest(
        channel=channel,
        interval=interval,
        target=target,
        threshold=threshold,
        max_occupancy=max_occupancy,
        concurrency=concurrency,
        shrinkage=shrinkage,
        with_abandonment=request.with_abandonment,
        patience=patience,
        forecast=forecast,
        history=history,
        channels=channels,
    )


def _blended_channels(request: pb.GetStaffingRequest) -> tuple[Channel, ...]:
    """The channels one blended pool of agents serves, checked; () without `channels`."""
    if not request.channels:
        return ()
    if len(request.channels) > len(Channel):
        raise InvalidArgument("channels", f"at most {len(Channel)} channels, each once")
    listed = tuple(
        channel_from_proto(value, f"channels[{index}]")
        for index, value in enumerate(request.channels)
    )
    if len(set(listed)) != len(listed):
        raise InvalidArgument("channels", "lists a channel more than once")
    if request.channel != pb.CHANNEL_UNSPECIFIED and (
        channel_from_proto(request.channel) not in listed
    ):
        raise InvalidArgument("channel", "with channels, leave it unset or give one of them")
    if request.forecast:
        raise InvalidArgument(
            "channels",
            "blended staffing reads each channel's history: give history_start and "
            "history_end, not a forecast",
        )
    if request.with_abandonment:
        raise InvalidArgument("with_abandonment", "blended staffing is Erlang C only")
    if request.HasField("concurrency"):
        raise InvalidArgument(
            "concurrency", "with channels, each channel takes its configured default capacity"
        )
    return listed
