"""The bare gRPC baseline: the router's own proto services answered from dicts.

Same RPCs, same messages, one server stream per agent, the same grpc.aio server, but
no routing rules, no validation, no Postgres: each RPC echoes the contact back with
its new state, and a submitted contact is pushed to an idle agent's stream (or kept
in a FIFO until one is idle). What the load generator gets from this server is what
grpc.aio, protobuf and the harness itself allow on this machine for this RPC mix.

    python -m bench.bare_server PORT
"""

from __future__ import annotations

import asyncio
import sys
import uuid
from collections import deque
from collections.abc import AsyncIterator
from typing import Any, NoReturn

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_health.v1.health import aio as health_aio

from router._proto.contactrouter.v1 import contact_router_pb2 as pb
from router._proto.contactrouter.v1 import contact_router_pb2_grpc as pb_grpc

Context = grpc.aio.ServicerContext[Any, Any]


class Desk:
    """Everything the bare server keeps: contacts by id, streams of idle agents."""

    def __init__(self) -> None:
        self.contacts: dict[str, pb.Contact] = {}
        self.offers: dict[str, str] = {}
        self.streams: dict[str, asyncio.Queue[pb.StreamOffersResponse]] = {}
        self.idle: deque[str] = deque()
        self.waiting: deque[str] = deque()

    def offer_next(self) -> None:
        while self.idle and self.waiting:
            agent_id, contact_id = self.idle.popleft(), self.waiting.popleft()
            contact = self.contacts[contact_id]
            contact.state = pb.CONTACT_STATE_OFFERED
            contact.agent_id = agent_id
            contact.timings.offered_at.GetCurrentTime()
            offer_id = str(uuid.uuid4())
            self.offers[offer_id] = contact_id
            offer = pb.Offer(offer_id=offer_id, contact=contact)
            self.streams[agent_id].put_nowait(pb.StreamOffersResponse(offer=offer))


async def _unimplemented(context: Context) -> NoReturn:
    await context.abort(grpc.StatusCode.UNIMPLEMENTED, "not part of the bare baseline")


class BareContacts(pb_grpc.ContactServiceServicer):
    def __init__(self, desk: Desk) -> None:
        self.desk = desk

    async def GetContact(  # noqa: N802 (the proto names the method)
        self, request: pb.GetContactRequest, context: Context
    ) -> pb.GetContactResponse:
        await _unimplemented(context)

    async def AbandonContact(  # noqa: N802 (the proto names the method)
        self, request: pb.AbandonContactRequest, context: Context
    ) -> pb.AbandonContactResponse:
        await _unimplemented(context)

    async def SubmitContact(  # noqa: N802 (the proto names the method)
        self, request: pb.SubmitContactRequest, context: Context
    ) -> pb.SubmitContactResponse:
        contact = pb.Contact(
            contact_id=str(uuid.uuid4()),
            idempotency_key=request.idempotency_key,
            channel=request.channel,
            customer_id=request.customer_id,
            state=pb.CONTACT_STATE_QUEUED,
        )
        contact.timings.queued_at.GetCurrentTime()
        self.desk.contacts[contact.contact_id] = contact
        answer = pb.SubmitContactResponse(contact=contact)
        self.desk.waiting.append(contact.contact_id)
        self.desk.offer_next()
        return answer


class BareAgents(pb_grpc.AgentServiceServicer):
    def __init__(self, desk: Desk) -> None:
        self.desk = desk

    async def SignOut(  # noqa: N802 (the proto names the method)
        self, request: pb.SignOutRequest, context: Context
    ) -> pb.SignOutResponse:
        await _unimplemented(context)

    async def SetStatus(  # noqa: N802 (the proto names the method)
        self, request: pb.SetStatusRequest, context: Context
    ) -> pb.SetStatusResponse:
        await _unimplemented(context)

    async def DeclineOffer(  # noqa: N802 (the proto names the method)
        self, request: pb.DeclineOfferRequest, context: Context
    ) -> pb.DeclineOfferResponse:
        await _unimplemented(context)

    async def SignIn(  # noqa: N802 (the proto names the method)
        self, request: pb.SignInRequest, context: Context
    ) -> pb.SignInResponse:
        agent = pb.Agent(agent_id=request.agent_id, status=pb.AGENT_STATUS_READY)
        agent.signed_in_at.GetCurrentTime()
        return pb.SignInResponse(agent=agent)

    async def StreamOffers(  # noqa: N802 (the proto names the method)
        self, request: pb.StreamOffersRequest, context: Context
    ) -> AsyncIterator[pb.StreamOffersResponse]:
        messages: asyncio.Queue[pb.StreamOffersResponse] = asyncio.Queue()
        self.desk.streams[request.agent_id] = messages
        self.desk.idle.append(request.agent_id)
        self.desk.offer_next()
        try:
            while True:
                yield await messages.get()
        finally:
            del self.desk.streams[request.agent_id]
            if request.agent_id in self.desk.idle:
                self.desk.idle.remove(request.agent_id)

    async def AcceptOffer(  # noqa: N802 (the proto names the method)
        self, request: pb.AcceptOfferRequest, context: Context
    ) -> pb.AcceptOfferResponse:
        contact = self.desk.contacts[self.desk.offers.pop(request.offer_id)]
        contact.state = pb.CONTACT_STATE_CONNECTED
        contact.timings.answered_at.GetCurrentTime()
        return pb.AcceptOfferResponse(contact=contact)

    async def EndContact(  # noqa: N802 (the proto names the method)
        self, request: pb.EndContactRequest, context: Context
    ) -> pb.EndContactResponse:
        contact = self.desk.contacts[request.contact_id]
        contact.state = pb.CONTACT_STATE_WRAP_UP
        contact.timings.ended_at.GetCurrentTime()
        return pb.EndContactResponse(contact=contact)

    async def CompleteContact(  # noqa: N802 (the proto names the method)
        self, request: pb.CompleteContactRequest, context: Context
    ) -> pb.CompleteContactResponse:
        contact = self.desk.contacts.pop(request.contact_id)
        contact.state = pb.CONTACT_STATE_COMPLETED
        contact.disposition = request.disposition
        contact.timings.completed_at.GetCurrentTime()
        answer = pb.CompleteContactResponse(contact=contact)
        if request.agent_id in self.desk.streams:
            self.desk.idle.append(request.agent_id)
            self.desk.offer_next()
        return answer


class BareReports(pb_grpc.ReportingServiceServicer):
    """Only what the harness asks before it starts: how many agents are idle."""

    def __init__(self, desk: Desk) -> None:
        self.desk = desk

    async def GetServiceLevel(  # noqa: N802 (the proto names the method)
        self, request: pb.GetServiceLevelRequest, context: Context
    ) -> pb.GetServiceLevelResponse:
        await _unimplemented(context)

    async def GetQueueStatus(  # noqa: N802 (the proto names the method)
        self, request: pb.GetQueueStatusRequest, context: Context
    ) -> pb.GetQueueStatusResponse:
        idle = len(self.desk.idle)
        return pb.GetQueueStatusResponse(agents=pb.AgentCounts(idle=idle, signed_in=idle))


async def serve(port: int) -> None:
    desk = Desk()
    server = grpc.aio.server()
    pb_grpc.add_ContactServiceServicer_to_server(BareContacts(desk), server)
    pb_grpc.add_AgentServiceServicer_to_server(BareAgents(desk), server)
    pb_grpc.add_ReportingServiceServicer_to_server(BareReports(desk), server)
    health = health_aio.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(health, server)
    server.add_insecure_port(f"127.0.0.1:{port}")
    await server.start()
    await health.set("", health_pb2.HealthCheckResponse.SERVING)
    await server.wait_for_termination()


if __name__ == "__main__":
    asyncio.run(serve(int(sys.argv[1])))
