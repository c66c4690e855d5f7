"""Refuse requests whose bytes do not parse with INVALID_ARGUMENT.

grpcio calls the method's request deserializer before any servicer code runs. When it
raises (corrupt wire format, a string field that is not UTF-8), grpcio answers UNKNOWN
"Unexpected <class DecodeError>", which tells a gateway nothing it can act on and reads
like a server fault. This interceptor gives each of the router's own methods a
deserializer that turns a parse failure into a marker, and a behaviour that answers the
marker with INVALID_ARGUMENT before the servicer sees it.
"""

from __future__ import annotations

import inspect
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import TYPE_CHECKING, Any, TypeAlias, cast

import grpc
from google.protobuf.message import DecodeError

from router.api.errors import abort
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


def _wrap(handler: Handler) -> Handler:
    """`handler` with a tolerant deserializer, or unchanged if it is a kind not wrapped."""
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
        async for response in streaming(request, context):
            yield response

    return grpc.unary_stream_rpc_method_handler(unary_stream, parse, handler.response_serializer)


class RefuseMalformedRequests(grpc.aio.ServerInterceptor):
    """Pass to grpc.aio.server(interceptors=[...]): malformed requests to the router's
    methods get INVALID_ARGUMENT instead of grpcio's UNKNOWN.

    Wrapped handlers are kept by the handler they wrap (held, so that its id cannot be
    reused): grpcio hands the same handler object to every call of a method, while an
    interceptor before this one (access checks) may return a new one for a caller,
    which is wrapped on its own; the cache is emptied when it grows past `_KEPT`.
    """

    _KEPT = 1024

    def __init__(self) -> None:
        self._wrapped: dict[int, tuple[Handler, Handler]] = {}

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[Handler | None]],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> Handler | None:
        handler = await continuation(handler_call_details)
        if handler is None or not handler_call_details.method.startswith(ROUTER_METHODS):
            return handler
        kept = self._wrapped.get(id(handler))
        if kept is not None and kept[0] is handler:
            return kept[1]
        wrapped = _wrap(handler)
        if len(self._wrapped) >= self._KEPT:
            self._wrapped.clear()
        self._wrapped[id(handler)] = (handler, wrapped)
        return wrapped
