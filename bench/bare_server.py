"""The bare gRPC baseline: the router's own proto messages answered from dicts.

Same RPCs, same messages, one server stream per agent, the same grpc.aio server, but
no routing rules, no validation, no Postgres: each RPC echoes the contact back with
its new state, and a submitted contact is pushed to an idle agent's stream (or kept
in a FIFO until one is idle). What the load generator gets from this server is what
grpc.aio, protobuf and the harness itself allow on this machine for this RPC mix.

Only the methods the harness calls are registered (with the same serializers the
generated code uses), so RPCs added to the proto later do not concern it.

    python -m bench.bare_server PORT
"""

from __future__ import annotations

import asyncio
import sys
import uuid
from collections import deque
from collections.abc import AsyncIterator
from typing import Any

import grpc
from contactrouter.v1 import contact_router_pb2 as pb
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_health.v1.health import aio as health_aio

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

    async def submit(
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
        self.contacts[contact.contact_id] = contact
        answer = pb.SubmitContactResponse(contact=contact)
        self.waiting.append(contact.contact_id)
        self.offer_next()
        return answer

    async def sign_in(self, request: pb.SignInRequest, context: Context) -> pb.SignInResponse:
        agent = pb.Agent(agent_id=request.agent_id, status=pb.AGENT_STATUS_READY)
        agent.signed_in_at.GetCurrentTime()
        return pb.SignInResponse(agent=agent)

    async def stream_offers(
        self, request: pb.StreamOffersRequest, context: Context
    ) -> AsyncIterator[pb.StreamOffersResponse]:
        messages: asyncio.Queue[pb.StreamOffersResponse] = asyncio.Queue()
        self.streams[request.agent_id] = messages
        self.idle.append(request.agent_id)
        self.offer_next()
        try:
            while True:
                yield await messages.get()
        finally:
            del self.streams[request.agent_id]
            if request.agent_id in self.idle:
                self.idle.remove(request.agent_id)

    async def accept(
        self, request: pb.AcceptOfferRequest, context: Context
    ) -> pb.AcceptOfferResponse:
        contact = self.contacts[self.offers.pop(request.offer_id)]
        contact.state = pb.CONTACT_STATE_CONNECTED
        contact.timings.answered_at.GetCurrentTime()
        return pb.AcceptOfferResponse(contact=contact)

    async def end(self, request: pb.EndContactRequest, context: Context) -> pb.EndContactResponse:
        contact = self.contacts[request.contact_id]
        contact.state = pb.CONTACT_STATE_WRAP_UP
        contact.timings.ended_at.GetCurrentTime()
        return pb.EndContactResponse(contact=contact)

    async def complete(
        self, request: pb.CompleteContactRequest, context: Context
    ) -> pb.CompleteContactResponse:
        contact = self.contacts.pop(request.contact_id)
        contact.state = pb.CONTACT_STATE_COMPLETED
        contact.disposition = request.disposition
        contact.timings.completed_at.GetCurrentTime()
        answer = pb.CompleteContactResponse(contact=contact)
        if request.agent_id in self.streams:
            self.idle.append(request.agent_id)
            self.offer_next()
        return answer

    async def queue_status(
        self, request: pb.GetQueueStatusRequest, context: Context
    ) -> pb.GetQueueStatusResponse:
        """Only what the harness asks before it starts: how many agents are idle."""
        idle = len(self.idle)
        return pb.GetQueueStatusResponse(agents=pb.AgentCounts(idle=idle, signed_in=idle))


def _unary(method: Any, request: Any, response: Any) -> grpc.RpcMethodHandler[Any, Any]:
    return grpc.unary_unary_rpc_method_handler(
        method,
        request_deserializer=request.FromString,
        response_serializer=response.SerializeToString,
    )


def handlers(desk: Desk) -> list[grpc.GenericRpcHandler]:
    agent_methods = {
        "SignIn": _unary(desk.sign_in, pb.SignInRequest, pb.SignInResponse),
        "StreamOffers": grpc.unary_stream_rpc_method_handler(
            desk.stream_offers,
            request_deserializer=pb.StreamOffersRequest.FromString,
            response_serializer=pb.StreamOffersResponse.SerializeToString,
        ),
        "AcceptOffer": _unary(desk.accept, pb.AcceptOfferRequest, pb.AcceptOfferResponse),
        "EndContact": _unary(desk.end, pb.EndContactRequest, pb.EndContactResponse),
        "CompleteContact": _unary(
            desk.complete, pb.CompleteContactRequest, pb.CompleteContactResponse
        ),
    }
    package = "contactrouter.v1"
    return [
        grpc.method_handlers_generic_handler(
            f"{package}.ContactService",
            {
                "SubmitContact": _unary(
                    desk.submit, pb.SubmitContactRequest, pb.SubmitContactResponse
                )
            },
        ),
        grpc.method_handlers_generic_handler(f"{package}.AgentService", agent_methods),
        grpc.method_handlers_generic_handler(
            f"{package}.ReportingService",
            {
                "GetQueueStatus": _unary(
                    desk.queue_status, pb.GetQueueStatusRequest, pb.GetQueueStatusResponse
                )
            },
        ),
    ]


async def serve(port: int) -> None:
    server = grpc.aio.server()
    server.add_generic_rpc_handlers(handlers(Desk()))
    health = health_aio.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(health, server)
    server.add_insecure_port(f"127.0.0.1:{port}")
    await server.start()
    await health.set("", health_pb2.HealthCheckResponse.SERVING)
    await server.wait_for_termination()


def main(argv: list[str]) -> None:
    """`python -m bench.bare_server PORT [uvloop|asyncio]`: the event loop is the
    router's default (uvloop) unless told otherwise."""
    port = int(argv[0])
    if (argv[1] if len(argv) > 1 else "uvloop") == "uvloop":
        import uvloop

        uvloop.run(serve(port))
    else:
        asyncio.run(serve(port))


if __name__ == "__main__":
    main(sys.argv[1:])
