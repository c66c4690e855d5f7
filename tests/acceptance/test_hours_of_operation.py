"""Hours of operation through a real router on a real port: a closure added to the
file for now takes effect without a restart (the file watched, or SIGHUP), calls are
refused with the next opening, the rest is queued, and nothing waiting is dropped."""

from __future__ import annotations

import signal
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import asyncpg
import grpc
import pytest
from contactrouter.v1 import contact_router_pb2 as pb
from contactrouter.v1 import contact_router_pb2_grpc as pb_grpc
from google.rpc.error_details_pb2 import ErrorInfo
from grpc_status import rpc_status

from router.domain import RoutingPolicy
from router.hours_file import HoursFile
from router.server import RunningRouter, start_router
from tests.acceptance.conftest import (
    OfferStreams,
    contact_state,
    eventually,
    next_offer,
    rpc_error,
    submit,
)
from tests.acceptance.router_process import RouterProcess

OPEN = '[hours.email]\nevery_day = ["00:00-24:00"]\n'


def closure_for_now(channels: str = "") -> str:
    """A closure from a minute ago to an hour from now (the router's zone is UTC)."""
    now = datetime.now(UTC).replace(tzinfo=None, microsecond=0)
    start, end = now - timedelta(minutes=1), now + timedelta(hours=1)
    listed = f"channels = [{channels}]\n" if channels else ""
    return (
        f"[[closures]]\nfrom = {start.isoformat()}\nto = {end.isoformat()}\n{listed}"
        'reason = "fire drill"\n'
    )


def edit(path: Path, text: str) -> None:
    """Save the file as an operator's editor would."""
    path.write_text(text, encoding="utf-8")


def error_info(error: grpc.aio.AioRpcError) -> ErrorInfo:
    status = rpc_status.from_call(error)
    assert status is not None
    for detail in status.details:
        if detail.Is(ErrorInfo.DESCRIPTOR):
            info = ErrorInfo()
            detail.Unpack(info)
            return info
    raise AssertionError("no ErrorInfo")


@pytest.fixture
def hours_path(tmp_path: Path) -> Path:
    path = tmp_path / "hours.toml"
    path.write_text(OPEN, encoding="utf-8")
    return path


@pytest.fixture
async def router_server(
    database_url: str, policy: RoutingPolicy, hours_path: Path
) -> AsyncIterator[RunningRouter]:
    """A router whose hours file is looked at every 50 ms."""
    hours = HoursFile(hours_path, policy.time_zone, poll=0.05)
    running = await start_router(database_url, policy, "127.0.0.1", 0, hours=hours)
    try:
        yield running
    finally:
        await running.stop(grace=1.0)


async def phone_closed(reporting: pb_grpc.ReportingServiceAsyncStub) -> bool:
    status = await reporting.GetQueueStatus(pb.GetQueueStatusRequest())
    return any(c.channel == pb.CHANNEL_PHONE and c.closed for c in status.channels)


class TestAClosureAddedForNow:
    async def test_takes_effect_without_dropping_a_call(
        self,
        contacts: pb_grpc.ContactServiceAsyncStub,
        agents: pb_grpc.AgentServiceAsyncStub,
        reporting: pb_grpc.ReportingServiceAsyncStub,
        offer_streams: OfferStreams,
        hours_path: Path,
    ) -> None:
        """Edit the file: the phone closes at once; the call already waiting stays,
        says "closed until", and an agent who works the backlog still gets it; a new
        call is refused with the next opening unless the gateway asks; an email is
        queued."""
        waiting = await submit(contacts, "before-the-closure")
        assert not await phone_closed(reporting)
        edit(hours_path, OPEN + closure_for_now('"phone"'))
        await eventually(lambda: phone_closed(reporting), what="the phone closed")

        refused = await rpc_error(submit(contacts, "while-closed"))
        assert refused.code() == grpc.StatusCode.FAILED_PRECONDITION
        info = error_info(refused)
        assert info.reason == "CHANNEL_CLOSED"
        opens = datetime.fromisoformat(info.metadata["opensAt"])
        assert opens > datetime.now(UTC) + timedelta(minutes=50)
        assert "closed until" in (refused.details() or "")

        queued = await contacts.SubmitContact(
            pb.SubmitContactRequest(
                idempotency_key="queued-anyway",
                channel=pb.CHANNEL_PHONE,
                customer_id="c-anyway",
                queue_when_closed=True,
            )
        )
        assert queued.contact.state == pb.CONTACT_STATE_QUEUED
        email = await submit(contacts, "an-email", pb.CHANNEL_EMAIL)
        assert email.state == pb.CONTACT_STATE_QUEUED

        seen = await contact_state(contacts, waiting.contact_id)
        assert seen.contact.state == pb.CONTACT_STATE_QUEUED
        assert seen.wait_reason == pb.WAIT_REASON_CLOSED
        assert seen.wait_detail.startswith("closed until ")

        await agents.SignIn(pb.SignInRequest(agent_id="night-owl"))
        stream = await offer_streams.open("night-owl")
        offer = await next_offer(stream)
        assert offer.contact.contact_id == waiting.contact_id

    async def test_a_bad_edit_is_refused_and_the_hours_stay(
        self,
        contacts: pb_grpc.ContactServiceAsyncStub,
        reporting: pb_grpc.ReportingServiceAsyncStub,
        router_server: RunningRouter,
        hours_path: Path,
    ) -> None:
        """A file with a fault changes nothing: the closure in force stays."""
        edit(hours_path, OPEN + closure_for_now())
        await eventually(lambda: phone_closed(reporting), what="the phone closed")
        edit(hours_path, '[hours.phone]\nmonday = ["9-5"]\n')
        assert not router_server.hours.reload()
        assert await phone_closed(reporting)
        refused = await rpc_error(submit(contacts, "still-closed"))
        assert error_info(refused).reason == "CHANNEL_CLOSED"


class TestSighup:
    async def test_sighup_reads_the_file_again(
        self, database_url: str, hours_path: Path, db: asyncpg.Connection
    ) -> None:
        """`contact-router serve`: SIGHUP after an edit, and the closure is in force."""
        env = {"ROUTER_DATABASE_URL": database_url, "ROUTER_HOURS_FILE": str(hours_path)}
        process = await RouterProcess.start(env)
        try:
            async with grpc.aio.insecure_channel(process.address) as channel:
                contacts = pb_grpc.ContactServiceStub(channel)
                waiting = await submit(contacts, "before-sighup")
                edit(hours_path, OPEN + closure_for_now())
                process.process.send_signal(signal.SIGHUP)
                await process.wait_for("hours_reloaded")
                refused = await rpc_error(submit(contacts, "after-sighup"))
                assert error_info(refused).reason == "CHANNEL_CLOSED"
                seen = await contact_state(contacts, waiting.contact_id)
                assert seen.wait_reason == pb.WAIT_REASON_CLOSED
        finally:
            assert await process.stop() == 0
        states = await db.fetch("SELECT state FROM contacts")
        assert [r["state"] for r in states] == ["queued"]


class TestTheStandby:
    async def test_a_standby_takes_over_with_the_hours_edited_while_it_waited(
        self, database_url: str, hours_path: Path
    ) -> None:
        """The standby watches the same file: a closure saved while it stands by is in
        force once it takes over, and the call waiting from before is still there."""
        env = {"ROUTER_DATABASE_URL": database_url, "ROUTER_HOURS_FILE": str(hours_path)}
        active = await RouterProcess.start(env)
        standby = await RouterProcess.start(env, until="standby_waiting_for_active_lock")
        try:
            async with grpc.aio.insecure_channel(active.address) as channel:
                waiting = await submit(pb_grpc.ContactServiceStub(channel), "before-takeover")
            edit(hours_path, OPEN + closure_for_now())
            await standby.wait_for("hours_reloaded")
            await active.kill()
            await standby.wait_for("router_active")
            async with grpc.aio.insecure_channel(standby.address) as channel:
                contacts = pb_grpc.ContactServiceStub(channel)
                refused = await rpc_error(submit(contacts, "after-takeover"))
                assert error_info(refused).reason == "CHANNEL_CLOSED"
                seen = await contact_state(contacts, waiting.contact_id)
                assert seen.wait_reason == pb.WAIT_REASON_CLOSED
        finally:
            for process in (active, standby):
                await process.kill()
