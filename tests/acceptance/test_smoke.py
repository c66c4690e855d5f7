"""The whole path through a real server: gateway in, agent out, timings in PostgreSQL."""

from __future__ import annotations

import asyncio

import asyncpg
import pytest
from contactrouter.v1 import contact_router_pb2 as pb
from contactrouter.v1 import contact_router_pb2_grpc as pb_grpc


class TestLifecycle:
    async def test_phone_call_from_submit_to_completion(
        self,
        contacts: pb_grpc.ContactServiceAsyncStub,
        agents: pb_grpc.AgentServiceAsyncStub,
        db: asyncpg.Connection,
    ) -> None:
        """A call is offered to the signed-in agent, answered, ended, completed and timed."""
        await agents.SignIn(pb.SignInRequest(agent_id="alice"))
        stream = agents.StreamOffers(pb.StreamOffersRequest(agent_id="alice"))
        submitted = await contacts.SubmitContact(
            pb.SubmitContactRequest(
                idempotency_key="call-1", channel=pb.CHANNEL_PHONE, customer_id="+15550100"
            )
        )
        message = await asyncio.wait_for(stream.read(), 10.0)
        assert isinstance(message, pb.StreamOffersResponse)
        assert message.offer.contact.contact_id == submitted.contact.contact_id
        offer_id = message.offer.offer_id
        contact_id = submitted.contact.contact_id
        await agents.AcceptOffer(pb.AcceptOfferRequest(agent_id="alice", offer_id=offer_id))
        await agents.EndContact(pb.EndContactRequest(agent_id="alice", contact_id=contact_id))
        done = await agents.CompleteContact(
            pb.CompleteContactRequest(
                agent_id="alice", contact_id=contact_id, disposition="order-status"
            )
        )
        stream.cancel()
        assert done.contact.state == pb.CONTACT_STATE_COMPLETED
        row = await db.fetchrow(
            "SELECT * FROM contact_timings WHERE contact_id = $1::uuid", contact_id
        )
        assert row is not None
        assert row["state"] == "completed"
        assert row["disposition"] == "order-status"
        assert row["wait_seconds"] == pytest.approx(
            (row["answered_at"] - row["queued_at"]).total_seconds()
        )
        assert row["wait_seconds"] > 0
        assert row["handle_seconds"] == pytest.approx(row["talk_seconds"] + row["acw_seconds"])
        kinds = [
            r["kind"]
            for r in await db.fetch(
                "SELECT kind FROM contact_events WHERE contact_id = $1::uuid ORDER BY id",
                contact_id,
            )
        ]
        assert kinds == ["submitted", "offered", "answered", "ended", "completed"]
