"""contactrouter.client: the typed facades against a real router, and its retry policy against a
fake ContactService that fails on purpose."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import grpc
import pytest
from contactrouter.client import RETRY_POLICY, AgentDesk, Gateway, Reports, Supervisor, connect
from contactrouter.v1 import contact_router_pb2 as pb
from contactrouter.v1 import contact_router_pb2_grpc as pb_grpc

from router.server import RunningRouter

Context = grpc.aio.ServicerContext[Any, Any]


class FlakyContacts(pb_grpc.ContactServiceServicer):
    """SubmitContact fails with `code` for the first `failures` calls, then succeeds."""

    def __init__(self, code: grpc.StatusCode, failures: int) -> None:
        self.code = code
        self.failures = failures
        self.calls = 0

    async def SubmitContact(
        self, request: pb.SubmitContactRequest, context: Context
    ) -> pb.SubmitContactResponse:
        self.calls += 1
        if self.calls <= self.failures:
            await context.abort(self.code, f"attempt {self.calls} refused")
        contact = pb.Contact(contact_id="c-1", idempotency_key=request.idempotency_key)
        return pb.SubmitContactResponse(contact=contact)

    async def GetContact(self, request: pb.GetContactRequest, context: Context) -> Any:
        await context.abort(grpc.StatusCode.UNIMPLEMENTED, "not in the fake")

    async def AbandonContact(self, request: pb.AbandonContactRequest, context: Context) -> Any:
        await context.abort(grpc.StatusCode.UNIMPLEMENTED, "not in the fake")

    async def RecordFeedback(self, request: pb.RecordFeedbackRequest, context: Context) -> Any:
        await context.abort(grpc.StatusCode.UNIMPLEMENTED, "not in the fake")

    async def RequestCallback(self, request: pb.RequestCallbackRequest, context: Context) -> Any:
        await context.abort(grpc.StatusCode.UNIMPLEMENTED, "not in the fake")


@contextlib.asynccontextmanager
async def fake_router(servicer: FlakyContacts) -> AsyncIterator[str]:
    """A gRPC server on an ephemeral loopback port serving `servicer`: its address."""
    server = grpc.aio.server()
    pb_grpc.add_ContactServiceServicer_to_server(servicer, server)
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    try:
        yield f"127.0.0.1:{port}"
    finally:
        await server.stop(grace=None)


async def submit_through(target: str, *, retry: bool = True) -> pb.Contact:
    async with connect(target, retry=retry) as channel:
        return await Gateway(channel).submit("key-1", pb.CHANNEL_PHONE, "+15550100")


class TestLifecycle:
    async def test_call_from_submit_to_report(
        self, router_server: RunningRouter, db: asyncpg.Connection
    ) -> None:
        """A call goes through Gateway, AgentDesk and Reports from submission to report."""
        start = datetime.now(UTC) - timedelta(minutes=1)
        async with connect(f"127.0.0.1:{router_server.port}") as channel:
            gateway, desk, reports = Gateway(channel), AgentDesk(channel, "alice"), Reports(channel)
            agent = await desk.sign_in(skills=["billing"], capacities={pb.CHANNEL_CHAT: 0})
            assert agent.status == pb.AGENT_STATUS_READY
            contact = await gateway.submit(
                "call-1", pb.CHANNEL_PHONE, "+15550100", {"name": "Ana"}, ["billing"]
            )
            assert (await gateway.submit("call-1", pb.CHANNEL_PHONE, "+15550100")) == contact
            async with contextlib.aclosing(desk.offers()) as offers:
                offer = await asyncio.wait_for(anext(offers), 5.0)
                assert isinstance(offer, pb.Offer)
                assert offer.contact.contact_id == contact.contact_id
                assert (await desk.accept(offer.offer_id)).state == pb.CONTACT_STATE_CONNECTED
                assert (await desk.accept(offer.offer_id)).state == pb.CONTACT_STATE_CONNECTED
                assert (await desk.end(contact.contact_id)).state == pb.CONTACT_STATE_WRAP_UP
                done = await desk.complete(contact.contact_id, "billing")
            assert done.state == pb.CONTACT_STATE_COMPLETED
            found = await gateway.get(contact.contact_id)
            assert found.contact.disposition == "billing"
            assert found.contact.attributes["name"] == "Ana"
            assert found.queue_position == 0
            report = await reports.service_level(
                start, datetime.now(UTC) + timedelta(minutes=1), pb.INTERVAL_LENGTH_DAY
            )
            assert [(r.channel, r.offered, r.answered) for r in report.rows] == [
                (pb.CHANNEL_PHONE, 1, 1)
            ]
            assert (await desk.sign_out()).status == pb.AGENT_STATUS_OFFLINE
            status = await reports.queue_status()
            assert sum(c.waiting for c in status.channels) == 0
        kinds = await db.fetch(
            "SELECT kind FROM contact_events WHERE contact_id = $1::uuid ORDER BY id",
            contact.contact_id,
        )
        assert [r["kind"] for r in kinds] == [
            "submitted",
            "offered",
            "answered",
            "ended",
            "completed",
        ]

    async def test_abandon_and_status(self, router_server: RunningRouter) -> None:
        """A waiting chat is abandoned; an agent goes AWAY with a reason."""
        async with connect(f"127.0.0.1:{router_server.port}") as channel:
            gateway, desk = Gateway(channel), AgentDesk(channel, "bob")
            contact = await gateway.submit(
                "chat-1", pb.CHANNEL_CHAT, "web-1", preferred_agent_id="bob"
            )
            assert contact.preferred_agent_id == "bob"
            status = await gateway.get(contact.contact_id)
            assert (status.queue_position, status.wait_reason) == (
                1,
                pb.WAIT_REASON_NO_AGENT_SIGNED_IN,
            )
            abandoned = await gateway.abandon(contact.contact_id)
            assert abandoned.state == pb.CONTACT_STATE_ABANDONED
            await desk.sign_in(initial_status=pb.AGENT_STATUS_READY)
            away = await desk.set_status(pb.AGENT_STATUS_AWAY, "break")
            assert (away.status, away.away_reason) == (pb.AGENT_STATUS_AWAY, "break")


class TestSupervisor:
    async def test_each_action_through_the_facade(
        self, router_server: RunningRouter, db: asyncpg.Connection
    ) -> None:
        """Supervisor's methods reach their RPCs: a contact reprioritised, reskilled,
        assigned and cancelled; an agent set away, reskilled and forced out."""
        async with connect(f"127.0.0.1:{router_server.port}") as channel:
            gateway, desk, lead = Gateway(channel), AgentDesk(channel, "cleo"), Supervisor(channel)
            await desk.sign_in(capacities={pb.CHANNEL_EMAIL: 1})
            away = await lead.set_agent_status("cleo", pb.AGENT_STATUS_AWAY, "coaching")
            assert (away.status, away.away_reason) == (pb.AGENT_STATUS_AWAY, "supervisor")
            agent = await lead.change_agent_skills(
                "cleo", "trained", ["billing"], {pb.CHANNEL_EMAIL: 2}
            )
            assert list(agent.skills) == ["billing"]
            contact = await gateway.submit("mail-1", pb.CHANNEL_EMAIL, "a@example.com")
            cid = contact.contact_id
            assert (await lead.set_priority(cid, 4.0, "VIP")).priority_boost == 4.0
            assert list((await lead.set_skills(cid, ["billing"], "bill")).required_skills) == [
                "billing"
            ]
            assigned = await lead.assign(cid, "cleo", "her case")
            assert assigned.preferred_agent_source == pb.PREFERENCE_SOURCE_SUPERVISOR
            assert (await lead.cancel(cid, "spam")).state == pb.CONTACT_STATE_CANCELLED
            out = await lead.sign_out_agent("cleo", "shift over", force=True)
            assert out.status == pb.AGENT_STATUS_OFFLINE
        kinds = await db.fetch(
            "SELECT kind, supervisor_reason FROM contact_events WHERE contact_id = $1::uuid "
            "AND supervisor IS NOT NULL ORDER BY id",
            cid,
        )
        assert [(r["kind"], r["supervisor_reason"]) for r in kinds] == [
            ("priority_changed", "VIP"),
            ("skills_changed", "bill"),
            ("assigned", "her case"),
            ("cancelled", "spam"),
        ]


class TestRetryPolicy:
    async def test_unavailable_is_retried(self) -> None:
        """Two UNAVAILABLE answers are retried by the channel; the third attempt succeeds."""
        fake = FlakyContacts(grpc.StatusCode.UNAVAILABLE, failures=2)
        async with fake_router(fake) as target:
            contact = await submit_through(target)
        assert contact.idempotency_key == "key-1"
        assert fake.calls == 3

    async def test_attempts_are_capped(self) -> None:
        """A router that stays UNAVAILABLE is tried maxAttempts times, then the error shows."""
        fake = FlakyContacts(grpc.StatusCode.UNAVAILABLE, failures=100)
        async with fake_router(fake) as target:
            with pytest.raises(grpc.aio.AioRpcError) as caught:
                await submit_through(target)
        assert caught.value.code() == grpc.StatusCode.UNAVAILABLE
        assert fake.calls == RETRY_POLICY["methodConfig"][0]["retryPolicy"]["maxAttempts"] == 5

    @pytest.mark.parametrize(
        "code",
        [
            grpc.StatusCode.INVALID_ARGUMENT,
            grpc.StatusCode.FAILED_PRECONDITION,
            grpc.StatusCode.NOT_FOUND,
        ],
    )
    async def test_refusals_are_not_retried(self, code: grpc.StatusCode) -> None:
        """A refusal that would repeat itself reaches the caller after one attempt."""
        fake = FlakyContacts(code, failures=1)
        async with fake_router(fake) as target:
            with pytest.raises(grpc.aio.AioRpcError) as caught:
                await submit_through(target)
        assert caught.value.code() == code
        assert fake.calls == 1

    async def test_retry_false_makes_one_attempt(self) -> None:
        """connect(retry=False) leaves UNAVAILABLE to the caller."""
        fake = FlakyContacts(grpc.StatusCode.UNAVAILABLE, failures=1)
        async with fake_router(fake) as target:
            with pytest.raises(grpc.aio.AioRpcError):
                await submit_through(target, retry=False)
        assert fake.calls == 1

    def test_streams_have_their_own_entry(self) -> None:
        """StreamOffers, WatchQueue and StreamEvents are named alone, with neither retries
        nor a deadline."""
        text = json.dumps(RETRY_POLICY)
        stream = [c for c in json.loads(text)["methodConfig"] if "StreamOffers" in json.dumps(c)]
        assert stream == [
            {
                "name": [
                    {"service": "contactrouter.v1.AgentService", "method": "StreamOffers"},
                    {"service": "contactrouter.v1.ReportingService", "method": "WatchQueue"},
                    {"service": "contactrouter.v1.EventService", "method": "StreamEvents"},
                ]
            }
        ]
