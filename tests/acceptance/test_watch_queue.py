"""ReportingService.WatchQueue over a real port: the whole picture first, then the
queue as it changes; one picture for every watcher; the watcher limit; the end when
the router stops, and the Python client's watch_queue() across a restart."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from typing import TypeAlias

import grpc
from contactrouter.client import Reports, connect
from contactrouter.v1 import contact_router_pb2 as pb
from contactrouter.v1 import contact_router_pb2_grpc as pb_grpc

from router.domain import RoutingPolicy
from router.live_feed import FeedSettings
from router.server import RunningRouter, start_router
from tests.acceptance.conftest import OfferStreams, reason_of, rpc_error, sign_in, submit
from tests.acceptance.ports import free_port

WatchCall: TypeAlias = grpc.aio.UnaryStreamCall[pb.WatchQueueRequest, pb.WatchQueueResponse]


async def picture_where(
    watch: WatchCall, holds: Callable[[pb.WatchQueueResponse], bool], within: float = 10.0
) -> pb.WatchQueueResponse:
    """The first picture on `watch` for which `holds` is true, read with a deadline."""

    async def read() -> pb.WatchQueueResponse:
        while True:
            picture = await watch.read()
            assert isinstance(picture, pb.WatchQueueResponse), "the watch ended"
            if holds(picture):
                return picture

    return await asyncio.wait_for(read(), within)


def phone(picture: pb.WatchQueueResponse) -> pb.WatchedChannel:
    return picture.channels[0]


class TestPictures:
    async def test_the_first_picture_is_the_whole_queue(
        self, router_server: RunningRouter, channel: grpc.aio.Channel
    ) -> None:
        """Three channels, phone first, each with its goal and alarm line; agent counts;
        when it was taken; sequence from 1."""
        watch = pb_grpc.ReportingServiceStub(channel).WatchQueue(pb.WatchQueueRequest())
        try:
            first = await picture_where(watch, lambda _: True)
        finally:
            watch.cancel()
        assert [c.queue.channel for c in first.channels] == [
            pb.CHANNEL_PHONE,
            pb.CHANNEL_CHAT,
            pb.CHANNEL_EMAIL,
        ]
        assert [c.goal.channel for c in first.channels] == [c.queue.channel for c in first.channels]
        assert phone(first).goal.threshold_seconds == 20.0
        assert phone(first).goal.goal == 0.8
        assert phone(first).alarm.threshold == phone(first).goal.alarm_below == 0.7
        assert not phone(first).alarm.raised
        assert not phone(first).alarm.HasField("rolling_service_level")
        assert first.agents.signed_in == 0
        assert first.HasField("as_of")
        assert first.sequence >= 1

    async def test_changes_show_in_a_later_picture(
        self,
        router_server: RunningRouter,
        channel: grpc.aio.Channel,
        contacts: pb_grpc.ContactServiceAsyncStub,
        agents: pb_grpc.AgentServiceAsyncStub,
        offer_streams: OfferStreams,
    ) -> None:
        """A call submitted and an agent away at lunch appear: waiting 1 with its wait,
        and the away agent counted under its reason."""
        watch = pb_grpc.ReportingServiceStub(channel).WatchQueue(pb.WatchQueueRequest())
        try:
            await picture_where(watch, lambda _: True)
            await sign_in(agents, "alice", status=pb.AGENT_STATUS_AWAY)
            await offer_streams.open("alice")
            await agents.SetStatus(
                pb.SetStatusRequest(
                    agent_id="alice", status=pb.AGENT_STATUS_AWAY, away_reason="lunch"
                )
            )
            await submit(contacts, "call-1")
            picture = await picture_where(
                watch, lambda p: phone(p).queue.waiting == 1 and len(p.away_reasons) == 1
            )
        finally:
            watch.cancel()
        assert phone(picture).queue.oldest_wait_seconds >= 0
        assert picture.agents.signed_in == 1
        assert [(a.reason, a.agents) for a in picture.away_reasons] == [("lunch", 1)]

    async def test_fifty_watchers_share_each_picture(
        self,
        router_server: RunningRouter,
        channel: grpc.aio.Channel,
        contacts: pb_grpc.ContactServiceAsyncStub,
    ) -> None:
        """Fifty watchers each see the submitted call, and the router built far fewer
        pictures than watchers (one per update, not one per watcher)."""
        stub = pb_grpc.ReportingServiceStub(channel)
        watches = [stub.WatchQueue(pb.WatchQueueRequest()) for _ in range(50)]
        try:
            await asyncio.gather(*(picture_where(w, lambda _: True) for w in watches))
            await submit(contacts, "call-1")
            seen = await asyncio.gather(
                *(picture_where(w, lambda p: phone(p).queue.waiting == 1) for w in watches)
            )
        finally:
            for watch in watches:
                watch.cancel()
        assert all(p.sequence <= router_server.feed.built for p in seen)
        assert router_server.feed.built < 50


class TestLimitsAndEndings:
    async def test_watchers_beyond_the_limit_get_resource_exhausted(
        self, database_url: str, policy: RoutingPolicy
    ) -> None:
        """With ROUTER_MAX_WATCHERS at 1, a second watcher is refused with
        RESOURCE_EXHAUSTED (TOO_MANY_WATCHERS) while the first reads on."""
        router = await start_router(database_url, policy, watch=FeedSettings(max_watchers=1))
        try:
            async with grpc.aio.insecure_channel(f"127.0.0.1:{router.port}") as channel:
                stub = pb_grpc.ReportingServiceStub(channel)
                first = stub.WatchQueue(pb.WatchQueueRequest())
                await picture_where(first, lambda _: True)
                error = await rpc_error(stub.WatchQueue(pb.WatchQueueRequest()).read())
                assert error.code() is grpc.StatusCode.RESOURCE_EXHAUSTED
                assert reason_of(error) == "TOO_MANY_WATCHERS"
                assert "ROUTER_MAX_WATCHERS" in (error.details() or "")
                first.cancel()
        finally:
            await router.stop(grace=1.0)

    async def test_stopping_ends_the_watch_with_unavailable(
        self, database_url: str, policy: RoutingPolicy
    ) -> None:
        """A router that stops ends each watch UNAVAILABLE (SHUTTING_DOWN): the
        client watches again."""
        router = await start_router(database_url, policy)
        async with grpc.aio.insecure_channel(f"127.0.0.1:{router.port}") as channel:
            watch = pb_grpc.ReportingServiceStub(channel).WatchQueue(pb.WatchQueueRequest())
            await picture_where(watch, lambda _: True)
            await router.stop(grace=1.0)
            error = await rpc_error(picture_where(watch, lambda _: False))
        assert error.code() is grpc.StatusCode.UNAVAILABLE
        assert reason_of(error) == "SHUTTING_DOWN"

    async def test_the_client_watches_again_across_a_restart(
        self, database_url: str, policy: RoutingPolicy
    ) -> None:
        """Reports.watch_queue() goes on by itself when the router stops and another
        starts on the same port: it is told of the retry, then reads the new router's
        pictures, which show a call submitted to it."""
        port = free_port()
        router = await start_router(database_url, policy, port=port)
        restarted: RunningRouter | None = None
        retries: list[grpc.StatusCode] = []
        channel = connect(f"127.0.0.1:{port}")
        pictures = Reports(channel).watch_queue(on_retry=lambda e, _: retries.append(e.code()))
        try:
            await asyncio.wait_for(anext(pictures), 10)
            await router.stop(grace=1.0)
            restarted = await start_router(database_url, policy, port=port)
            await submit(pb_grpc.ContactServiceStub(channel), "call-1")

            async def the_call() -> None:
                async for picture in pictures:
                    if phone(picture).queue.waiting == 1:
                        return

            await asyncio.wait_for(the_call(), 15)
            assert retries
            assert retries[0] is grpc.StatusCode.UNAVAILABLE
        finally:
            await pictures.aclose()
            await channel.close()
            with contextlib.suppress(Exception):
                await router.stop(grace=1.0)
            if restarted is not None:
                await restarted.stop(grace=1.0)
