"""EventService.StreamEvents through gRPC: the recorded history, then live events, each
once and in commit order, resumable by cursor; bad cursors, the stream limit and slow
consumers."""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
from collections.abc import AsyncIterator
from typing import TypeAlias

import asyncpg
import grpc
import pytest
from contactrouter.client import AgentDesk, Events, Gateway, connect
from contactrouter.v1 import contact_router_pb2 as pb
from contactrouter.v1 import contact_router_pb2_grpc as pb_grpc
from grpc_health.v1 import health_pb2

from router.domain import RoutingPolicy
from router.event_stream import Cursors, EventHub
from router.server import RunningRouter, start_router
from router.store import Store
from router.store.database_url import with_database
from router.store.event_feed import EventFeed, StoredEvent
from tests.acceptance.conftest import (
    OfferStreams,
    eventually,
    handle,
    next_offer,
    reason_of,
    rpc_error,
    sign_in,
    submit,
)
from tests.acceptance.ports import free_port
from tests.acceptance.router_process import RouterProcess
from tests.conftest import Graveyard, created_database

SERVING = health_pb2.HealthCheckResponse.SERVING

EventCall: TypeAlias = grpc.aio.UnaryStreamCall[pb.StreamEventsRequest, pb.StreamEventsResponse]


async def recorded_events(db: asyncpg.Connection) -> list[tuple[str, str]]:
    """(kind, contact id or agent id) of every row of both event tables, in seq order."""
    rows = await db.fetch(
        "SELECT seq, kind, contact_id::text AS who FROM contact_events "
        "UNION ALL SELECT seq, kind, agent_id FROM agent_status_log ORDER BY seq"
    )
    return [(r["kind"], r["who"]) for r in rows]


def summary(message: pb.StreamEventsResponse) -> tuple[str, str]:
    if message.WhichOneof("event") == "contact_event":
        return message.contact_event.kind, message.contact_event.contact_id
    return message.agent_event.kind, message.agent_event.agent_id


async def read(call: EventCall, count: int, within: float = 10.0) -> list[pb.StreamEventsResponse]:
    """The next `count` events of the stream."""
    messages = []
    for _ in range(count):
        message = await asyncio.wait_for(call.read(), within)
        assert isinstance(message, pb.StreamEventsResponse), f"the stream ended: {message}"
        messages.append(message)
    return messages


@pytest.fixture
def events(channel: grpc.aio.Channel) -> pb_grpc.EventServiceAsyncStub:
    return pb_grpc.EventServiceStub(channel)


@pytest.fixture
async def calls() -> AsyncIterator[list[EventCall]]:
    """Event streams the test opens, cancelled when it ends."""
    opened: list[EventCall] = []
    try:
        yield opened
    finally:
        for call in opened:
            call.cancel()


async def a_handled_call(
    contacts: pb_grpc.ContactServiceAsyncStub,
    agents: pb_grpc.AgentServiceAsyncStub,
    streams: OfferStreams,
    key: str,
    agent_id: str = "alice",
) -> pb.Contact:
    """Sign `agent_id` in (with its stream), submit a call it answers, ends and completes."""
    await sign_in(agents, agent_id)
    stream = await streams.open(agent_id)
    await submit(contacts, key)
    offer = await next_offer(stream)
    return await handle(agents, agent_id, offer)


class TestHistoryThenLive:
    async def test_every_event_once_in_commit_order_history_then_live(
        self,
        contacts: pb_grpc.ContactServiceAsyncStub,
        agents: pb_grpc.AgentServiceAsyncStub,
        events: pb_grpc.EventServiceAsyncStub,
        offer_streams: OfferStreams,
        db: asyncpg.Connection,
        calls: list[EventCall],
    ) -> None:
        """A stream from the start gets the tables' rows in order, then the events of a
        call handled while it is open, and nothing else."""
        first = await a_handled_call(contacts, agents, offer_streams, "call-1")
        history = await recorded_events(db)
        call = events.StreamEvents(pb.StreamEventsRequest())
        calls.append(call)
        received = await read(call, len(history))
        assert [summary(m) for m in received] == history

        second = await submit(contacts, "call-2")
        stream = offer_streams.opened[0][1]
        await handle(agents, "alice", await next_offer(stream))
        everything = await recorded_events(db)
        received += await read(call, len(everything) - len(history))
        assert [summary(m) for m in received] == everything
        assert len({m.cursor for m in received}) == len(received)

        completed = [
            m.contact_event
            for m in received
            if m.contact_event.kind == "completed"
            and m.contact_event.contact_id == second.contact_id
        ]
        assert len(completed) == 1
        assert completed[0].disposition == "order-status"
        assert completed[0].agent_id == "alice"
        assert completed[0].channel == pb.CHANNEL_PHONE
        assert completed[0].customer_id == "customer-call-2"
        assert completed[0].timings.HasField("answered_at")
        assert completed[0].timings.HasField("completed_at")
        submitted = next(
            m.contact_event
            for m in received
            if m.contact_event.kind == "submitted"
            and m.contact_event.contact_id == first.contact_id
        )
        assert not submitted.timings.HasField("answered_at")
        assert submitted.disposition == ""

    async def test_a_stream_resumed_from_a_cursor_continues_with_the_next_event(
        self,
        contacts: pb_grpc.ContactServiceAsyncStub,
        agents: pb_grpc.AgentServiceAsyncStub,
        events: pb_grpc.EventServiceAsyncStub,
        offer_streams: OfferStreams,
        db: asyncpg.Connection,
        calls: list[EventCall],
    ) -> None:
        """Cut after any event, a stream opened with its cursor gives exactly the rest."""
        await a_handled_call(contacts, agents, offer_streams, "call-1")
        history = await recorded_events(db)
        call = events.StreamEvents(pb.StreamEventsRequest())
        calls.append(call)
        received = await read(call, len(history))
        call.cancel()
        for cut in (0, 3, len(history) - 1):
            again = events.StreamEvents(pb.StreamEventsRequest(cursor=received[cut].cursor))
            calls.append(again)
            rest = await read(again, len(history) - cut - 1)
            assert [m.cursor for m in rest] == [m.cursor for m in received[cut + 1 :]]
            assert [summary(m) for m in rest] == history[cut + 1 :]
            again.cancel()
        last = events.StreamEvents(pb.StreamEventsRequest(cursor=received[-1].cursor))
        calls.append(last)
        await submit(contacts, "call-2")
        (message,) = await read(last, 1)
        assert summary(message)[0] == "submitted"


class TestRefused:
    async def test_malformed_foreign_and_future_cursors_are_invalid_arguments(
        self,
        router_server: RunningRouter,
        events: pb_grpc.EventServiceAsyncStub,
        server_url: str,
        template_database: str,
        graveyard: Graveyard,
    ) -> None:
        """Garbage, a cursor of another database (a copy of the same template) and one
        beyond every recorded event are refused, naming the field."""
        hub = router_server.active.get_events()
        async with created_database(
            server_url, "router_test", template_database, graveyard
        ) as name:
            other = await Store.open(with_database(server_url, name))
            try:
                foreign = Cursors(await other.events.origin()).encode(0)
            finally:
                await other.close()
        last = await router_server.store.events.last_seq()
        cases = {
            "garbage": "not a cursor!",
            "too long": "A" * 500,
            "wrong length": hub.cursors.encode(1)[:-2],
            "another database": foreign,
            "from the future": hub.cursors.encode(last + 1000),
        }
        for case, cursor in cases.items():
            error = await rpc_error(
                _first(events.StreamEvents(pb.StreamEventsRequest(cursor=cursor)))
            )
            assert error.code() == grpc.StatusCode.INVALID_ARGUMENT, case
            assert "cursor" in (error.details() or ""), case
            assert reason_of(error) == "INVALID_FIELD", case

    async def test_streams_beyond_the_limit_are_resource_exhausted(
        self, database_url: str, policy: RoutingPolicy
    ) -> None:
        """With ROUTER_MAX_EVENT_STREAMS = 2, a third stream is refused until one closes."""
        running = await start_router(database_url, policy, max_event_streams=2)
        try:
            async with grpc.aio.insecure_channel(f"127.0.0.1:{running.port}") as channel:
                stub = pb_grpc.EventServiceStub(channel)
                hub = running.active.get_events()
                first = stub.StreamEvents(pb.StreamEventsRequest())
                second = stub.StreamEvents(pb.StreamEventsRequest())

                async def both_open() -> bool:
                    return hub.open_streams == 2

                await eventually(both_open, what="two streams open")
                error = await rpc_error(_first(stub.StreamEvents(pb.StreamEventsRequest())))
                assert error.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
                assert reason_of(error) == "TOO_MANY_STREAMS"
                first.cancel()

                async def one_open() -> bool:
                    return hub.open_streams == 1

                await eventually(one_open, what="one stream left")
                third = stub.StreamEvents(pb.StreamEventsRequest())
                await eventually(both_open, what="a new stream open")
                second.cancel()
                third.cancel()
        finally:
            await running.stop(grace=1.0)


async def _first(call: EventCall) -> object:
    return await asyncio.wait_for(call.read(), 10)


_FOLLOWING: contextvars.ContextVar[bool] = contextvars.ContextVar("following", default=False)


class CountingFeed(EventFeed):
    """The feed, counting the pages read, and apart those its followers read."""

    reads = 0
    follower_reads = 0

    async def read_after(self, seq: int, limit: int = 500) -> list[StoredEvent]:
        self.reads += 1
        if _FOLLOWING.get():
            self.follower_reads += 1
        return await super().read_after(seq, limit)

    async def follow(
        self, seq: int, *, poll_seconds: float = 1.0, retry_seconds: float = 0.5
    ) -> AsyncIterator[list[StoredEvent]]:
        _FOLLOWING.set(True)  # in the follower's own task
        async for page in super().follow(
            seq, poll_seconds=poll_seconds, retry_seconds=retry_seconds
        ):
            yield page


class TestFanOut:
    async def test_live_streams_cost_one_read_per_commit_not_one_per_stream(
        self,
        router_server: RunningRouter,
        agents: pb_grpc.AgentServiceAsyncStub,
        database_url: str,
    ) -> None:
        """Twenty live streams of one hub: each commit is read once, by its follower."""
        pool = await asyncpg.create_pool(database_url, min_size=1, max_size=4)
        feed = CountingFeed(pool, database_url)
        hub = EventHub(feed, max_streams=50)
        await hub.start()
        received: list[list[int]] = [[] for _ in range(20)]

        async def consume(into: list[int]) -> None:
            async for _, event in hub.stream(""):
                into.append(event.seq)

        tasks = [asyncio.create_task(consume(into)) for into in received]
        try:
            await sign_in(agents, "alice", status=pb.AGENT_STATUS_AWAY)
            total = await router_server.store.events.last_seq()

            async def all_caught_up(seq: int) -> bool:
                return all(into and into[-1] >= seq for into in received)

            await eventually(lambda: all_caught_up(total), what="every stream at the start")
            before = feed.reads - feed.follower_reads
            follower_before = hub.pages_read
            for index in range(10):
                reason = f"break-{index}"
                await agents.SetStatus(
                    pb.SetStatusRequest(
                        agent_id="alice", status=pb.AGENT_STATUS_AWAY, away_reason=reason
                    )
                )
                now = await router_server.store.events.last_seq()
                await eventually(
                    lambda now=now: all_caught_up(now),  # type: ignore[misc]
                    what=f"every stream has {reason}",
                )
            assert hub.pages_read - follower_before >= 1
            # The streams read PostgreSQL at most once more each (the read that makes a
            # stream live may follow the start), never once per commit (200 reads).
            stream_reads = feed.reads - feed.follower_reads - before
            assert stream_reads <= len(received), stream_reads
            expected = sorted(set(received[0]))
            assert all(into == expected for into in received)
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            await hub.close()
            await pool.close()

    async def test_without_a_live_stream_nothing_is_read(
        self,
        router_server: RunningRouter,
        agents: pb_grpc.AgentServiceAsyncStub,
        database_url: str,
        db: asyncpg.Connection,
    ) -> None:
        """Commits with no stream open cost no read; a stream opened after the last one
        closed starts a new follower and still gets every event once, in order, live
        events included."""
        pool = await asyncpg.create_pool(database_url, min_size=1, max_size=4)
        feed = CountingFeed(pool, database_url)
        hub = EventHub(feed, max_streams=5)
        await hub.start()

        async def set_away(reason: str) -> int:
            await agents.SetStatus(
                pb.SetStatusRequest(
                    agent_id="alice", status=pb.AGENT_STATUS_AWAY, away_reason=reason
                )
            )
            return await router_server.store.events.last_seq()

        try:
            await sign_in(agents, "alice", status=pb.AGENT_STATUS_AWAY)
            for index in range(5):
                await set_away(f"unwatched-{index}")
            assert (feed.reads, hub.pages_read) == (0, 0)
            for round_ in range(2):
                stream = hub.stream("")
                received: list[int] = []
                try:
                    last = await router_server.store.events.last_seq()
                    while not received or received[-1] < last:
                        _, event = await asyncio.wait_for(anext(stream), 10)
                        received.append(event.seq)
                    following = asyncio.ensure_future(anext(stream))

                    async def live() -> bool:
                        return bool(hub._live) and hub._task is not None

                    await eventually(live, what="the stream live, its follower started")
                    await set_away(f"watched-{round_}")
                    _, event = await asyncio.wait_for(following, 10)
                    received.append(event.seq)
                finally:
                    await stream.aclose()
                rows = await db.fetch(
                    "SELECT seq FROM contact_events UNION ALL SELECT seq FROM agent_status_log "
                    "ORDER BY 1"
                )
                assert received == [r["seq"] for r in rows]
                assert not hub._live
                assert hub._task is None, "the last stream to leave stops the follower"
                reads = feed.reads
                await set_away(f"unwatched-again-{round_}")
                assert feed.reads == reads
        finally:
            await hub.close()
            await pool.close()

    async def test_a_slow_consumer_falls_back_to_postgresql_and_misses_nothing(
        self,
        router_server: RunningRouter,
        agents: pb_grpc.AgentServiceAsyncStub,
        database_url: str,
        db: asyncpg.Connection,
    ) -> None:
        """A consumer that stops reading while more events commit than its buffer holds
        is dropped from the live fan-out (its buffer never exceeds its bound), then gets
        every event, once, in order, from PostgreSQL."""
        pool = await asyncpg.create_pool(database_url, min_size=1, max_size=4)
        feed = EventFeed(pool, database_url)
        hub = EventHub(feed, max_streams=5, buffer=3)
        await hub.start()
        stream = hub.stream("")
        received: list[int] = []
        try:
            await sign_in(agents, "alice", status=pb.AGENT_STATUS_AWAY)
            _, first = await anext(stream)
            received.append(first.seq)
            # The stream is live now (its reads were short); it reads nothing for a while.
            for index in range(12):
                await agents.SetStatus(
                    pb.SetStatusRequest(
                        agent_id="alice", status=pb.AGENT_STATUS_AWAY, away_reason=f"b{index}"
                    )
                )
            last = await router_server.store.events.last_seq()

            async def slow_dropped() -> bool:
                return not hub._live

            await eventually(slow_dropped, what="the slow consumer dropped from the fan-out")
            while received[-1] < last:
                _, event = await asyncio.wait_for(anext(stream), 10)
                received.append(event.seq)
            rows = await db.fetch(
                "SELECT seq FROM contact_events UNION ALL SELECT seq FROM agent_status_log "
                "ORDER BY 1"
            )
            assert received == [r["seq"] for r in rows]
        finally:
            with contextlib.suppress(Exception):
                await stream.aclose()
            await hub.close()
            await pool.close()


class TestFailover:
    async def test_a_consumer_resumes_on_the_standby_and_misses_nothing(
        self, database_url: str, db: asyncpg.Connection
    ) -> None:
        """While submissions keep coming, the active router is killed (SIGKILL) under a
        reading consumer; it resumes on the standby with its last cursor. What it got,
        in order, is exactly both tables' rows, none twice."""
        env = {"ROUTER_DATABASE_URL": database_url, "ROUTER_PHONE_RESERVE": "0"}
        active = await RouterProcess.start(env)
        standby = await RouterProcess.start(env, until="standby_waiting_for_active_lock")
        received: list[pb.StreamEventsResponse] = []
        ended: list[grpc.StatusCode] = []
        submitted = 0
        stop_load = asyncio.Event()

        async def load(address: str) -> None:
            nonlocal submitted
            async with grpc.aio.insecure_channel(address) as channel:
                contacts = pb_grpc.ContactServiceStub(channel)
                agents = pb_grpc.AgentServiceStub(channel)
                await sign_in(agents, f"agent-{address}", status=pb.AGENT_STATUS_AWAY)
                while not stop_load.is_set():
                    try:
                        await submit(contacts, f"{address}-{submitted}")
                    except grpc.aio.AioRpcError:
                        return
                    submitted += 1

        async def consume(address: str, until: int | None = None) -> None:
            """Read from `address`, resuming after the last event received, until the
            stream fails or `until` events have come."""
            async with grpc.aio.insecure_channel(address) as channel:
                stub = pb_grpc.EventServiceStub(channel)
                cursor = received[-1].cursor if received else ""
                call = stub.StreamEvents(pb.StreamEventsRequest(cursor=cursor))
                try:
                    async for message in call:
                        received.append(message)
                        if until is not None and len(received) >= until:
                            return
                except grpc.aio.AioRpcError as error:
                    ended.append(error.code())
                finally:
                    call.cancel()

        try:
            loading = asyncio.create_task(load(active.address))
            reading = asyncio.create_task(consume(active.address))

            async def some_read() -> bool:
                return len(received) >= 40

            await eventually(some_read, within=30, what="40 events read before the kill")
            await active.kill()
            await asyncio.wait_for(loading, 30)
            await asyncio.wait_for(reading, 30)

            async def standby_active() -> bool:
                return bool(await standby.health() == SERVING)

            await eventually(standby_active, within=30, what="the standby serving")
            stop_load.clear()
            before = submitted
            loading = asyncio.create_task(load(standby.address))

            async def more_submitted() -> bool:
                return submitted >= before + 20

            await eventually(more_submitted, within=30, what="submissions on the standby")
            stop_load.set()
            await asyncio.wait_for(loading, 30)
            expected = await recorded_events(db)
            await asyncio.wait_for(consume(standby.address, until=len(expected)), 30)
        finally:
            stop_load.set()
            for process in (active, standby):
                await process.kill()
        assert ended == [grpc.StatusCode.UNAVAILABLE]
        assert [summary(m) for m in received] == expected
        assert len({m.cursor for m in received}) == len(received)
        print(f"\n{len(received)} events received across the takeover, {submitted} submitted")


class TestPythonClient:
    async def test_events_resumes_by_itself_across_a_restart(
        self, database_url: str, policy: RoutingPolicy, db: asyncpg.Connection
    ) -> None:
        """Events.events() reopens the stream after the last event it yielded when the
        router stops and another starts on the same port: every row once, in order."""
        port = free_port()
        router = await start_router(database_url, policy, port=port)
        restarted = None
        channel = connect(f"127.0.0.1:{port}")
        received: list[pb.StreamEventsResponse] = []
        retries: list[grpc.StatusCode] = []
        stream = Events(channel).events(on_retry=lambda error, _: retries.append(error.code()))

        async def consume() -> None:
            async for message in stream:
                received.append(message)

        reading = asyncio.create_task(consume())
        try:
            desk = AgentDesk(channel, "alice")
            await desk.sign_in()
            await desk.set_status(pb.AGENT_STATUS_AWAY, "lunch")
            await eventually(lambda: _true(len(received) == 2), what="two events before the stop")
            await router.stop(grace=1.0)
            restarted = await start_router(database_url, policy, port=port)
            await desk.sign_in()
            await Gateway(channel).submit("call-1", pb.CHANNEL_PHONE, "+15550100")
            expected = await recorded_events(db)
            await eventually(
                lambda: _true(len(received) >= len(expected)),
                within=15.0,
                what="every event after the restart",
            )
            assert [summary(m) for m in received] == await recorded_events(db)
            assert retries
            assert set(retries) <= {
                grpc.StatusCode.UNAVAILABLE,
                grpc.StatusCode.CANCELLED,
            }
        finally:
            reading.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await reading
            await stream.aclose()
            await channel.close()
            with contextlib.suppress(Exception):
                await router.stop(grace=1.0)
            if restarted is not None:
                await restarted.stop(grace=1.0)


async def _true(value: bool) -> bool:
    return value
