"""How an offer stream ends, as an agent desktop sees it: a router that stops ends it
with a status the desk retries, a newer stream of the same agent ends it with one the
desk does not, and the Python client reopens it by itself across a restart."""

from __future__ import annotations

import asyncio
import contextlib

import asyncpg
import grpc
import pytest
from contactrouter.client import AgentDesk, Gateway, connect
from contactrouter.v1 import contact_router_pb2 as pb
from contactrouter.v1 import contact_router_pb2_grpc as pb_grpc
from structlog.testing import capture_logs

from router.domain import RoutingPolicy
from router.errors import NotFound
from router.offer_stream import OfferStream
from router.server import RunningRouter, start_router
from tests.acceptance.conftest import (
    OfferStreams,
    event_kinds,
    eventually,
    next_offer,
    next_withdrawal,
    offered_call,
    reason_of,
    rpc_error,
    sign_in,
)
from tests.acceptance.ports import free_port


class TestShutdown:
    async def test_stopping_ends_streams_with_unavailable_and_offers_nobody(
        self, database_url: str, policy: RoutingPolicy, db: asyncpg.Connection
    ) -> None:
        """On stop, alice's open offer is withdrawn and goes back to the queue once (it
        is not offered to bob, idle, whose stream is ending too), and both streams end
        UNAVAILABLE (SHUTTING_DOWN, the message says the router is stopping)."""
        router = await start_router(database_url, policy)
        stopped = False
        try:
            async with grpc.aio.insecure_channel(f"127.0.0.1:{router.port}") as channel:
                agents = pb_grpc.AgentServiceStub(channel)
                contacts = pb_grpc.ContactServiceStub(channel)
                streams = OfferStreams(agents, db)
                try:
                    stream, contact, _ = await offered_call(contacts, agents, streams)
                    await sign_in(agents, "bob")
                    bobs = await streams.open("bob")
                    stopped = True
                    await router.stop(grace=1.0)
                    withdrawn = await next_withdrawal(stream)
                    assert withdrawn.reason == "router_stopping"
                    for ended in (stream, bobs):
                        error = await rpc_error(ended.read())
                        assert error.code() == grpc.StatusCode.UNAVAILABLE
                        assert "stopping" in (error.details() or "")
                        assert reason_of(error) == "SHUTTING_DOWN"
                finally:
                    await streams.close_all()
        finally:
            if not stopped:
                await router.stop(grace=1.0)
        row = await db.fetchrow("SELECT state, agent_id FROM contacts")
        assert row is not None
        assert tuple(row) == ("queued", None)
        assert await event_kinds(db, contact.contact_id) == ["submitted", "offered", "requeued"]
        reason = await db.fetchval(
            "SELECT reason FROM contact_events WHERE contact_id = $1::uuid AND kind = 'requeued'",
            contact.contact_id,
        )
        assert reason == "router_stopping"

    async def test_a_stream_opened_while_stopping_is_refused_with_unavailable(
        self, database_url: str, policy: RoutingPolicy
    ) -> None:
        """Once the router is stopping, a new stream is told to come back, not accepted."""
        router = await start_router(database_url, policy)
        try:
            async with grpc.aio.insecure_channel(f"127.0.0.1:{router.port}") as channel:
                agents = pb_grpc.AgentServiceStub(channel)
                await sign_in(agents, "alice")
                await router.switchboard.stop()
                call = agents.StreamOffers(pb.StreamOffersRequest(agent_id="alice"))
                error = await rpc_error(call.read())
                assert error.code() == grpc.StatusCode.UNAVAILABLE
                assert reason_of(error) == "SHUTTING_DOWN"
        finally:
            await router.stop(grace=1.0)


class TestReplacement:
    async def test_a_replaced_stream_ends_aborted_and_the_new_one_gets_the_offer(
        self,
        contacts: pb_grpc.ContactServiceAsyncStub,
        agents: pb_grpc.AgentServiceAsyncStub,
        offer_streams: OfferStreams,
    ) -> None:
        """A second stream for alice ends the first with ABORTED (STREAM_REPLACED): not
        the UNAVAILABLE of a stopping router, which a desk would reopen."""
        first, _, offer = await offered_call(contacts, agents, offer_streams)
        second = await offer_streams.open("alice", wait_connected=False)
        assert (await next_offer(second)).offer_id == offer.offer_id
        error = await rpc_error(first.read())
        assert error.code() == grpc.StatusCode.ABORTED
        assert "replaced" in (error.details() or "")
        assert reason_of(error) == "STREAM_REPLACED"

    async def test_the_client_does_not_reopen_a_replaced_stream(
        self, router_server: RunningRouter, channel: grpc.aio.Channel
    ) -> None:
        """AgentDesk.offers raises ABORTED when another desk took over, instead of
        taking the stream back (two desks would steal it from each other forever)."""
        desk = AgentDesk(channel, "alice")
        await desk.sign_in()
        events = desk.offers()
        first = asyncio.ensure_future(anext(events))
        switchboard = router_server.switchboard
        await eventually(lambda: _true(switchboard.open_streams == 1), what="desk's stream open")
        other = pb_grpc.AgentServiceStub(channel).StreamOffers(
            pb.StreamOffersRequest(agent_id="alice")
        )
        try:
            error = await rpc_error(asyncio.wait_for(first, 10.0))
            assert error.code() == grpc.StatusCode.ABORTED
        finally:
            other.cancel()
            await events.aclose()


class TestClientReconnects:
    async def test_the_desk_reopens_its_stream_across_a_restart(
        self, database_url: str, policy: RoutingPolicy
    ) -> None:
        """A router stops and another starts on the same port and database: the desk's
        offers() reopens its stream by itself, signs in again (the new router does not
        know the agent: NOT_FOUND), and gets the next call."""
        port = free_port()
        router = await start_router(database_url, policy, port=port)
        restarted = None
        channel = connect(f"127.0.0.1:{port}")
        desk = AgentDesk(channel, "alice")
        events = desk.offers()
        try:
            await desk.sign_in()
            first = asyncio.ensure_future(anext(events))
            await eventually(
                lambda: _true(router.switchboard.router.agent("alice").connected),
                what="alice present",
            )
            await router.stop(grace=1.0)
            restarted = await start_router(database_url, policy, port=port)
            await eventually(
                lambda: _agent_present(restarted, "alice"),
                within=15.0,
                what="alice back on the restarted router",
            )
            contact = await Gateway(channel).submit("call-1", pb.CHANNEL_PHONE, "+15550100")
            offer = await asyncio.wait_for(first, 10.0)
            assert isinstance(offer, pb.Offer)
            assert offer.contact.contact_id == contact.contact_id
        finally:
            await events.aclose()
            await channel.close()
            with contextlib.suppress(Exception):
                await router.stop(grace=1.0)
            if restarted is not None:
                await restarted.stop(grace=1.0)


async def _true(value: bool) -> bool:
    return value


async def _agent_present(router: RunningRouter, agent_id: str) -> bool:
    try:
        return router.switchboard.router.agent(agent_id).connected
    except NotFound:
        return False


class TestBurst:
    async def test_two_thousand_streams_opened_at_once_all_open(
        self, router_server: RunningRouter, agents: pb_grpc.AgentServiceAsyncStub
    ) -> None:
        """Every desk reconnecting at once: 2,000 StreamOffers opened together all reach
        the router (gRPC core dropped about 130 of them, CANCELLED and unlogged, when
        calls waiting for the server passed its default backlog of 1,000)."""
        count = 2000
        await asyncio.gather(*(sign_in(agents, f"a{n}") for n in range(count)))
        calls = [
            agents.StreamOffers(pb.StreamOffersRequest(agent_id=f"a{n}")) for n in range(count)
        ]
        try:
            await eventually(
                lambda: _true(router_server.switchboard.open_streams == count),
                within=60.0,
                what=f"{count} streams open",
            )
            assert not [call for call in calls if call.done()]
        finally:
            for call in calls:
                call.cancel()


class TestFaults:
    async def test_a_fault_opening_a_stream_is_internal_and_logged(
        self,
        router_server: RunningRouter,
        agents: pb_grpc.AgentServiceAsyncStub,
        monkeypatch: pytest.MonkeyPatch,
    ) -> None:
        """A bug met while opening a stream (here: injected) answers INTERNAL with the
        standard details, as a unary call's would, and logs rpc_failed with the
        traceback: the stream's own error handling used to let it through as UNKNOWN."""

        async def broken(agent_id: str) -> OfferStream:
            raise RuntimeError("injected fault")

        monkeypatch.setattr(router_server.switchboard, "open_stream", broken)
        await sign_in(agents, "alice")
        with capture_logs() as logs:
            call = agents.StreamOffers(pb.StreamOffersRequest(agent_id="alice"))
            error = await rpc_error(call.read())
        assert error.code() == grpc.StatusCode.INTERNAL
        assert reason_of(error) == "INTERNAL"
        failed = [entry for entry in logs if entry["event"] == "rpc_failed"]
        assert failed
        assert isinstance(failed[0]["exc_info"], RuntimeError)
