"""ReportingService: what reporting jobs and supervisors call."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import grpc

from router._proto.contactrouter.v1 import contact_router_pb2 as pb
from router._proto.contactrouter.v1 import contact_router_pb2_grpc as pb_grpc
from router.api.convert import channel_from_proto, channel_to_proto, from_timestamp, timestamp
from router.api.errors import rpc
from router.api.servicer import Servicer
from router.domain import Channel, InvalidArgument
from router.domain.service_level import FORMULA, service_level

Context = grpc.aio.ServicerContext[Any, Any]

_INTERVALS = {
    pb.INTERVAL_LENGTH_15_MINUTES: timedelta(minutes=15),
    pb.INTERVAL_LENGTH_HOUR: timedelta(hours=1),
    pb.INTERVAL_LENGTH_DAY: timedelta(days=1),
}
_MAX_RANGE = timedelta(days=366)


class ReportingService(Servicer, pb_grpc.ReportingServiceServicer):
    @rpc
    async def GetServiceLevel(
        self, request: pb.GetServiceLevelRequest, context: Context
    ) -> pb.GetServiceLevelResponse:
        if not request.HasField("start"):
            raise InvalidArgument("start", "is required")
        if not request.HasField("end"):
            raise InvalidArgument("end", "is required")
        start, end = from_timestamp(request.start), from_timestamp(request.end)
        if end <= start:
            raise InvalidArgument("end", "must be after start")
        if end - start > _MAX_RANGE:
            raise InvalidArgument("end", "the range may span at most 366 days")
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
        )
