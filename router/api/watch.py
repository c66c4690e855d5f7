"""ReportingService.WatchQueue: the live queue as it changes, for wallboards.

The picture is GetQueueStatus's snapshot and the reporting layer's goals and rolling
service-level alarms, per channel, with the away agents by reason; router.live_feed
builds it once per update for every watcher and paces the updates.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import grpc
import structlog
from contactrouter.v1 import contact_router_pb2 as pb

from router.api.convert import (
    agent_counts_to_proto,
    alarm_to_proto,
    channel_queue_to_proto,
    goal_to_proto,
    timestamp,
)
from router.api.errors import abort, fail, status_of
from router.api.servicer import ActiveSwitchboard, RpcObserver
from router.domain import Channel
from router.live_feed import FeedSettings, LiveFeed

Context = grpc.aio.ServicerContext[Any, Any]
QueueFeed = LiveFeed[pb.WatchQueueResponse]

log = structlog.get_logger(__name__)


def queue_picture(active: ActiveSwitchboard) -> Callable[[int], pb.WatchQueueResponse]:
    """What the feed calls to build picture number `sequence` (on the active router)."""

    def build(sequence: int) -> pb.WatchQueueResponse:
        snapshot, now = active.get().snapshot()
        reporting = active.get_reporting()
        goals = {goal.channel: goal for goal in reporting.goals()}
        away = sorted(snapshot.away_reasons.items(), key=lambda item: (-item[1], item[0]))
        return pb.WatchQueueResponse(
            channels=[
                pb.WatchedChannel(
                    queue=channel_queue_to_proto(snapshot, channel),
                    goal=goal_to_proto(goals[channel]),
                    alarm=alarm_to_proto(reporting.alarm(channel)),
                )
                for channel in Channel
            ],
            agents=agent_counts_to_proto(snapshot),
            away_reasons=[pb.AwayReasonCount(reason=r, agents=n) for r, n in away],
            as_of=timestamp(now),
            sequence=sequence,
        )

    return build


def queue_feed(active: ActiveSwitchboard, settings: FeedSettings) -> QueueFeed:
    return LiveFeed(queue_picture(active), interval=settings.interval, limit=settings.max_watchers)


async def watch_queue(
    feed: QueueFeed, active: ActiveSwitchboard, context: Context, observe_rpc: RpcObserver
) -> AsyncIterator[pb.WatchQueueResponse]:
    """The stream of one watcher: the newest picture each time it can take one; ends
    with the feed's ending (UNAVAILABLE when the router stops)."""
    with structlog.contextvars.bound_contextvars(rpc="WatchQueue"):
        opened = time.perf_counter()
        try:
            active.get()  # a standby answers UNAVAILABLE
            active.get_reporting()
            slot = feed.subscribe()
        except Exception as error:
            observe_rpc("WatchQueue", status_of(error).name, time.perf_counter() - opened)
            await fail(context, error)
        log.info("queue_watch_opened", watchers=feed.watchers)
        try:
            while (picture := await slot.next()) is not None:
                yield picture
            if slot.ending is not None:
                log.info("queue_watch_ended", reason=slot.ending.reason)
                await abort(context, slot.ending)
        finally:
            feed.unsubscribe(slot)
            log.info("queue_watch_closed", skipped=slot.skipped)
