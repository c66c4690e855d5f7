"""Refuse requests whose bytes do not parse with INVALID_ARGUMENT.

grpcio calls the method's request deserializer before any servicer code runs. When it
raises (corrupt wire format, a string field that is not UTF-8), grpcio answers UNKNOWN
"Unexpected <class DecodeError>", which tells a gateway nothing it can act on and reads
like a server fault. This interceptor gives each of the router's own methods a
deserializer that turns a parse failure into a marker, and a behaviour that answers the
marker with INVALID_ARGUMENT before the servicer sees it (`add_refusing_malformed`,
used when the servicers are registered).
"""

from __future__ import annotations

import inspect
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from typing import TYPE_CHECKING, Any, TypeAlias, cast

import grpc
from google.protobuf.message import DecodeError

from router.api.activation import Holding, hold
from router.api.errors import abort
from router.api.registration import PER_CONTACT, Registration
from router.errors import InvalidArgument

if TYPE_CHECKING:
    Handler: TypeAlias = grpc.RpcMethodHandler[Any, Any]

ROUTER_METHODS = "/contactrouter.v1."
"""Only the router's services are wrapped; health and reflection are left as grpcio
serves them."""


class Malformed:
    """Stands in for a request that could not be parsed."""

    def __init__(self, error: DecodeError) -> None:
        self.error = error


def _tolerant(deserializer: Callable[[bytes], Any]) -> Callable[[bytes], Any]:
    def parse(data: bytes) -> Any:
        try:
            return deserializer(data)
        except DecodeError as error:
            return Malformed(error)

    return parse


async def _refuse(request: Malformed, context: grpc.aio.ServicerContext[Any, Any]) -> None:
    # The field is the whole request: no field of it could be read.
    await abort(
        context,
        InvalidArgument(
            "request", f"not a valid protobuf message for this method ({request.error})"
        ),
    )


def _wrap(handler: Handler, method: str, holding: Holding | None) -> Handler:
    """`handler` with a tolerant deserializer, or unchanged if it is a kind not wrapped;
    with `holding`, a call made while the router takes over waits for it to serve
    (router/api/activation.py)."""
    if handler.request_deserializer is None or handler.request_streaming:
        return handler
    parse = _tolerant(handler.request_deserializer)
    if not handler.response_streaming:
        if handler.unary_unary is None:
            return handler
        # Typed for the sync server by grpc-stubs; on the aio server it is a coroutine
        # function taking the aio context.
        unary = cast(Callable[..., Awaitable[Any]], handler.unary_unary)

        async def unary_unary(request: Any, context: grpc.aio.ServicerContext[Any, Any]) -> Any:
            if isinstance(request, Malformed):
                await _refuse(request, context)
            if holding is not None and holding.activating:
                await hold(holding, method)
            return await unary(request, context)

        return grpc.unary_unary_rpc_method_handler(unary_unary, parse, handler.response_serializer)
    if not inspect.isasyncgenfunction(handler.unary_stream):
        return handler
    # Likewise typed for the sync server; here it is an async generator function.
    streaming = cast(Callable[..., AsyncIterator[Any]], handler.unary_stream)

    async def unary_stream(
        request: Any, context: grpc.aio.ServicerContext[Any, Any]
    ) -> AsyncIterator[Any]:
        if isinstance(request, Malformed):
            await _refuse(request, context)
        if holding is not None and holding.activating:
            await hold(holding, method)
        async for response in streaming(request, context):
            yield response

    return grpc.unary_stream_rpc_method_handler(unary_stream, parse, handler.response_serializer)


class _Tolerant(grpc.GenericRpcHandler):
    """A generic handler whose method handlers are `_wrap`ped, each once (grpcio asks
    for the handler on every call and gets the same object for a method)."""

    def __init__(self, inner: grpc.GenericRpcHandler, holding: Holding | None) -> None:
        self._inner = inner
        self._holding = holding
        self._wrapped: dict[str, Handler] = {}

    def service(self, handler_call_details: grpc.HandlerCallDetails) -> Handler | None:
        method = handler_call_details.method
        wrapped = self._wrapped.get(method)
        if wrapped is None:
            handler = self._inner.service(handler_call_details)
            if handler is None:
                # Not one of this service's methods: nothing kept for unknown names.
                return None
            wrapped = self._wrapped[method] = _wrap(handler, method, self._holding)
        return wrapped


class _TolerantServer(Registration):
    """What a generated `add_*Servicer_to_server` registers through: the server, with
    every handler it is given `_wrap`ped (registered with grpcio if its method is in
    PER_CONTACT: see router/api/registration.py)."""

    def __init__(self, server: grpc.aio.Server, holding: Holding | None) -> None:
        super().__init__(server, PER_CONTACT)
        self._holding = holding

    def add_generic_rpc_handlers(self, handlers: Sequence[grpc.GenericRpcHandler]) -> None:
        super().add_generic_rpc_handlers([_Tolerant(h, self._holding) for h in handlers])

    def add_registered_method_handlers(self, service: str, handlers: dict[str, Handler]) -> None:
        wrapped = {
            method: _wrap(handler, f"/{service}/{method}", self._holding)
            for method, handler in handlers.items()
        }
        super().add_registered_method_handlers(service, wrapped)


def add_refusing_malformed(
    add_to_server: Callable[[Any, Any], None],
    servicer: Any,
    server: grpc.aio.Server,
    holding: Holding | None = None,
) -> None:
    """`add_to_server(servicer, server)` (a generated `add_*Servicer_to_server`), with
    requests whose bytes do not parse answered INVALID_ARGUMENT instead of grpcio's
    UNKNOWN, and with `holding`, calls made while the router takes over held until it
    serves (router/api/activation.py). Only the methods in PER_CONTACT are registered
    with grpcio (router/api/registration.py).

    Done when the methods are registered rather than by a server interceptor: grpcio
    runs the interceptors' chain of coroutines on every call, which cost the router
    more CPU per RPC than this whole check. An interceptor placed before (access
    checks, tracing) gets these wrapped handlers from its continuation.
    """
    add_to_server(servicer, _TolerantServer(server, holding))
