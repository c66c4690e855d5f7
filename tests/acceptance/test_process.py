"""`contact-router serve` as a real process: starts, serves, and stops cleanly on signals."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import time

import asyncpg
import grpc
from contactrouter.client import connect
from contactrouter.v1 import contact_router_pb2 as pb
from contactrouter.v1 import contact_router_pb2_grpc as pb_grpc
from grpc_health.v1 import health_pb2

from tests.acceptance.conftest import next_offer
from tests.acceptance.router_process import START_TIMEOUT, RouterProcess
from tests.acceptance.test_embedded_postgres import scratch_folder


class TestServeProcess:
    async def test_sigterm_stops_cleanly(self, database_url: str) -> None:
        """With ROUTER_DATABASE_URL the server serves health and exits 0 on SIGTERM."""
        process = await RouterProcess.start({"ROUTER_DATABASE_URL": database_url})
        try:
            assert await process.health() == health_pb2.HealthCheckResponse.SERVING
        finally:
            status = await process.stop(signal.SIGTERM)
        assert status == 0, process.output
        assert '"router_stopped"' in process.output

    async def test_sigterm_under_load_returns_offers_and_flushes(
        self, database_url: str, db: asyncpg.Connection
    ) -> None:
        """SIGTERM while gateways submit and offers are open: exit 0 within the grace,
        every acknowledged contact recorded, no offer left open in the record."""
        env = {
            "ROUTER_DATABASE_URL": database_url,
            "ROUTER_SHUTDOWN_GRACE_SECONDS": "5",
            "ROUTER_PHONE_RESERVE": "0",
        }
        process = await RouterProcess.start(env)
        acknowledged: list[str] = []
        refusals: list[grpc.StatusCode] = []
        channel = connect(process.address, retry=False)
        try:
            contacts = pb_grpc.ContactServiceStub(channel)
            agents = pb_grpc.AgentServiceStub(channel)
            await agents.SignIn(pb.SignInRequest(agent_id="alice"))
            stream = agents.StreamOffers(pb.StreamOffersRequest(agent_id="alice"))

            async def submit_until_refused() -> None:
                for n in range(10_000):
                    request = pb.SubmitContactRequest(
                        idempotency_key=f"chat-{n}", channel=pb.CHANNEL_CHAT, customer_id="c"
                    )
                    try:
                        response = await contacts.SubmitContact(request, timeout=5)
                    except grpc.aio.AioRpcError as error:
                        refusals.append(error.code())
                        return
                    acknowledged.append(response.contact.contact_id)

            submitting = asyncio.create_task(submit_until_refused())
            await next_offer(stream)
            started = time.perf_counter()
            status = await process.stop(signal.SIGTERM)
            took = time.perf_counter() - started
            await asyncio.wait_for(submitting, 10)
            stream.cancel()
        finally:
            await channel.close()
        assert status == 0, process.output
        assert took < 5 + 5, f"stopping took {took:.1f} s"
        assert acknowledged
        # A call that reached the server as it stopped is cancelled; a later one is
        # refused. Either way the gateway retries with the same key elsewhere.
        assert len(refusals) == 1
        assert refusals[0] in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.CANCELLED)
        recorded = await db.fetch("SELECT id::text, state FROM contacts")
        assert {r["id"] for r in recorded} >= set(acknowledged)
        assert {r["state"] for r in recorded} <= {"queued"}, "offers must be returned"

    async def test_a_second_interrupt_while_stopping_is_not_a_traceback(
        self, database_url: str
    ) -> None:
        """Ctrl-C twice (or SIGINT to the process and to its group, as a terminal and a
        supervisor may both send): exit status 0, no KeyboardInterrupt. The second
        signal arrived after the handlers were removed, mid-shutdown, and raised one."""
        process = await RouterProcess.start({"ROUTER_DATABASE_URL": database_url})
        try:
            process.process.send_signal(signal.SIGINT)
            process.process.send_signal(signal.SIGINT)
            status = await process.wait()
        finally:
            if process.process.returncode is None:
                await process.kill()
        assert status == 0, process.output
        assert "KeyboardInterrupt" not in process.output
        assert "Traceback" not in process.output
        assert process.event("router_stopped")

    async def test_embedded_postgres_without_url(self) -> None:
        """Without a database URL it starts an embedded PostgreSQL and stops on Ctrl-C."""
        with scratch_folder() as scratch:
            env = {"ROUTER_DATABASE_URL": "", "ROUTER_DATA_DIR": str(scratch / "data")}
            process = await RouterProcess.start(env)
            try:
                assert await process.health() == health_pb2.HealthCheckResponse.SERVING
            finally:
                status = await process.stop(signal.SIGINT)
            assert status == 0, process.output
            assert '"embedded_postgres_started"' in process.output
            assert (scratch / "data" / "postgres" / "PG_VERSION").exists()

    async def test_bad_configuration_is_refused(self) -> None:
        """A malformed setting stops the start with a message naming the variable."""
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "router.cli",
            "serve",
            env={**os.environ, "ROUTER_PHONE_RESERVE": "many"},
            stderr=asyncio.subprocess.PIPE,
        )
        _, err = await asyncio.wait_for(process.communicate(), START_TIMEOUT)
        assert process.returncode == 2
        assert b"ROUTER_PHONE_RESERVE" in err
