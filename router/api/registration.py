"""Which methods grpcio's aio server takes as registered methods: the few called for
every contact (PER_CONTACT), no others.

A generated `add_*Servicer_to_server` gives the server each method twice: in a generic
handler (found by the method's name when a call arrives) and as registered methods.
grpcio's aio server keeps one pending request per registered method, plus one for
generic calls, and each time a call arrives it waits on all of them at once
(`asyncio.wait(..., FIRST_COMPLETED)` in `AioServer._server_main_loop`): a cost per
RPC that grows with the number of registered methods, 37 with every service, health
and reflection registered. Registering none makes that one pending request, but then
calls are taken one at a time (a call, then a new request for the next), which under
load took fewer calls per event-loop pass, made smaller group commits and cost more
per lifecycle than it saved (bench/RESULTS.md, issue 18). So the methods called for
every contact stay registered (each has a pending request of its own) and the rest
(sign-ins, statuses, streams, reports, supervisors, admin, events, health, reflection)
are served from their generic handlers: the same handlers, the same answers,
UNIMPLEMENTED for an unknown method.

A Registration is not a grpc.aio.Server: a helper that picks a servicer by the server's
type (grpc_reflection's enable_server_reflection) takes it for a sync server, so the
router adds the aio servicers itself (router/server.py).
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from typing import TYPE_CHECKING, Any, TypeAlias

import grpc

if TYPE_CHECKING:
    Handler: TypeAlias = grpc.RpcMethodHandler[Any, Any]


PER_CONTACT = frozenset(
    {
        "/contactrouter.v1.ContactService/SubmitContact",
        "/contactrouter.v1.ContactService/GetContact",
        "/contactrouter.v1.ContactService/AbandonContact",
        "/contactrouter.v1.AgentService/AcceptOffer",
        "/contactrouter.v1.AgentService/DeclineOffer",
        "/contactrouter.v1.AgentService/EndContact",
        "/contactrouter.v1.AgentService/CompleteContact",
    }
)
"""The methods a contact's life calls (its gateway's and its agent's), registered."""


class Registration:
    """`server` as a generated `add_*Servicer_to_server` sees it: the generic handlers
    it adds are served; of the methods it registers again, those in `registered` are
    registered with grpcio (the generic handler added with them serves the others)."""

    def __init__(self, server: grpc.aio.Server, registered: Collection[str] = ()) -> None:
        self._server = server
        self._registered = registered

    def add_generic_rpc_handlers(self, handlers: Sequence[grpc.GenericRpcHandler]) -> None:
        self._server.add_generic_rpc_handlers(tuple(handlers))

    def add_registered_method_handlers(self, service: str, handlers: dict[str, Handler]) -> None:
        chosen = {
            method: handler
            for method, handler in handlers.items()
            if f"/{service}/{method}" in self._registered
        }
        if chosen:
            self._server.add_registered_method_handlers(service, chosen)
