"""PostgreSQL drops the router's connections (failover, pg_terminate_backend, idle timeouts):
callers are told to retry, never see an internal error, and nothing applied is lost."""

from __future__ import annotations

import uuid

import asyncpg
import grpc
from contactrouter.v1 import contact_router_pb2 as pb
from contactrouter.v1 import contact_router_pb2_grpc as pb_grpc

from tests.acceptance.conftest import eventually, sign_in, submit

KILL_OTHERS = (
    "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
    "WHERE datname = current_database() AND pid <> pg_backend_pid()"
)


class TestConnectionsKilled:
    async def test_retrying_gateway_gets_exactly_one_contact(
        self,
        contacts: pb_grpc.ContactServiceAsyncStub,
        agents: pb_grpc.AgentServiceAsyncStub,
        db: asyncpg.Connection,
    ) -> None:
        """After the router's connections are killed, retrying one key creates one contact."""
        await submit(contacts, "call-0")
        assert await db.fetchval(KILL_OTHERS) >= 1
        request = pb.SubmitContactRequest(
            idempotency_key="call-1", channel=pb.CHANNEL_PHONE, customer_id="c-1"
        )
        answers: list[pb.SubmitContactResponse] = []

        async def submitted() -> bool:
            try:
                answers.append(await contacts.SubmitContact(request))
            except grpc.aio.AioRpcError:
                return False
            return True

        await eventually(submitted, what="a submission after the connections were lost")
        again = await contacts.SubmitContact(request)
        assert again.duplicate
        assert again.contact.contact_id == answers[-1].contact.contact_id
        count = await db.fetchval("SELECT count(*) FROM contacts WHERE idempotency_key = 'call-1'")
        assert count == 1
        await sign_in(agents, "alice")
        assert await db.fetchval("SELECT count(*) FROM agent_status_log") == 1

    async def test_reads_answer_unavailable_not_internal(
        self, contacts: pb_grpc.ContactServiceAsyncStub, db: asyncpg.Connection
    ) -> None:
        """A lookup on a killed connection answers UNAVAILABLE (retry) or its real answer."""
        codes = set()
        for _ in range(50):
            await db.fetchval(KILL_OTHERS)
            try:
                await contacts.GetContact(pb.GetContactRequest(contact_id=str(uuid.uuid4())))
            except grpc.aio.AioRpcError as error:
                codes.add(error.code())
        assert codes <= {grpc.StatusCode.NOT_FOUND, grpc.StatusCode.UNAVAILABLE}

    async def test_status_changes_during_connection_loss_are_all_logged(
        self, agents: pb_grpc.AgentServiceAsyncStub, db: asyncpg.Connection
    ) -> None:
        """Every status change the router applied ends up in agent_status_log, even if refused."""
        await sign_in(agents, "alice")
        refusals = set()
        for i in range(20):
            await db.fetchval(KILL_OTHERS)
            status = pb.AGENT_STATUS_AWAY if i % 2 == 0 else pb.AGENT_STATUS_READY
            try:
                await agents.SetStatus(
                    pb.SetStatusRequest(agent_id="alice", status=status, away_reason="break")
                )
            except grpc.aio.AioRpcError as error:
                refusals.add(error.code())
        # A refused change is already applied in memory; UNAVAILABLE promises it lands later.
        assert refusals <= {grpc.StatusCode.UNAVAILABLE}

        async def all_logged() -> bool:
            count: int = await db.fetchval(
                "SELECT count(*) FROM agent_status_log WHERE kind = 'status_changed'"
            )
            return count == 20

        await eventually(all_logged, within=15.0, what="20 status changes in agent_status_log")
