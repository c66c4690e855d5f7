"""One place that turns domain and store errors into gRPC status codes."""

from __future__ import annotations

import functools
import time
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import grpc
import structlog
from google.protobuf.message import Message

from router.api.servicer import Servicer
from router.errors import (
    DomainError,
    InvalidArgument,
    LimitReached,
    NotFound,
    Unavailable,
    WrongState,
)

log = structlog.get_logger(__name__)

S = TypeVar("S", bound=Servicer)
Req = TypeVar("Req", bound=Message)
Resp = TypeVar("Resp")

_CODES: dict[type[Exception], grpc.StatusCode] = {
    InvalidArgument: grpc.StatusCode.INVALID_ARGUMENT,
    NotFound: grpc.StatusCode.NOT_FOUND,
    WrongState: grpc.StatusCode.FAILED_PRECONDITION,
    LimitReached: grpc.StatusCode.RESOURCE_EXHAUSTED,
    Unavailable: grpc.StatusCode.UNAVAILABLE,
}


def status_of(error: Exception) -> grpc.StatusCode:
    for kind, code in _CODES.items():
        if isinstance(error, kind):
            return code
    return grpc.StatusCode.INTERNAL


def ids_of(request: Message) -> dict[str, str]:
    """contact_id / agent_id fields of a request, to bind to every log line of the RPC."""
    ids = {}
    for field in ("contact_id", "agent_id", "offer_id"):
        if request.DESCRIPTOR.fields_by_name.get(field) is not None:
            value = getattr(request, field)
            if value:
                ids[field] = value[:128]
    return ids


def rpc(
    method: Callable[[S, Req, grpc.aio.ServicerContext[Any, Any]], Awaitable[Resp]],
) -> Callable[[S, Req, grpc.aio.ServicerContext[Any, Any]], Awaitable[Resp]]:
    """Bind ids for logging, answer domain and store errors with their status, and
    tell the servicer's `observe_rpc` how each call went."""

    @functools.wraps(method)
    async def handler(self: S, request: Req, context: grpc.aio.ServicerContext[Any, Any]) -> Resp:
        started = time.perf_counter()
        code = grpc.StatusCode.OK
        with structlog.contextvars.bound_contextvars(rpc=method.__name__, **ids_of(request)):
            try:
                return await method(self, request, context)
            except (DomainError, Unavailable) as error:
                code = status_of(error)
                log.info("rpc_refused", code=code.name, error=str(error))
                await context.abort(code, str(error))
                raise  # abort raises; this line only satisfies the type checker
            except Exception:
                code = grpc.StatusCode.INTERNAL
                log.exception("rpc_failed")
                await context.abort(code, "internal error; see server log")
                raise
            finally:
                self.observe_rpc(method.__name__, code.name, time.perf_counter() - started)

    return handler
