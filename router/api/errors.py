"""The one place that turns a RouterError into what a caller receives: the gRPC status
code, the readable message, and the standard error details (a google.rpc.Status in the
`grpc-status-details-bin` trailer, as grpcio-status writes it):

    every code            google.rpc.ErrorInfo: the class's stable `reason`, the domain
                          "contactrouter.v1", and the error's `metadata` (for
                          INVALID_ARGUMENT also `field`)
    INVALID_ARGUMENT      google.rpc.BadRequest: one field violation, the field's path
                          and what is wrong with it
    UNAVAILABLE           google.rpc.RetryInfo: the class's `retry_after`

The proto's header comment documents the same for clients; keep the two in step.
"""

from __future__ import annotations

import asyncio
import functools
import time
from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Any, Never, TypeVar, cast

import grpc
import structlog
from google.protobuf.any_pb2 import Any as AnyMessage
from google.protobuf.duration_pb2 import Duration
from google.protobuf.message import Message
from google.rpc.error_details_pb2 import BadRequest, ErrorInfo, RetryInfo
from google.rpc.status_pb2 import Status
from grpc_status import rpc_status
from structlog.contextvars import bind_contextvars, reset_contextvars

from router.api.servicer import Servicer
from router.errors import (
    AccessDenied,
    DomainError,
    InternalError,
    InvalidArgument,
    LimitReached,
    NotFound,
    PermissionDenied,
    RouterError,
    StreamReplaced,
    Unauthenticated,
    Unavailable,
    WrongState,
)

log = structlog.get_logger(__name__)

S = TypeVar("S", bound=Servicer)
Req = TypeVar("Req", bound=Message)
Resp = TypeVar("Resp")
Context = grpc.aio.ServicerContext[Any, Any]

DOMAIN = "contactrouter.v1"
"""google.rpc.ErrorInfo.domain of every error: the API's protobuf package."""

# The most specific class first: a subclass takes the code of its first ancestor here.
_CODES: tuple[tuple[type[RouterError], grpc.StatusCode], ...] = (
    (InvalidArgument, grpc.StatusCode.INVALID_ARGUMENT),
    (NotFound, grpc.StatusCode.NOT_FOUND),
    (WrongState, grpc.StatusCode.FAILED_PRECONDITION),
    (LimitReached, grpc.StatusCode.RESOURCE_EXHAUSTED),
    (Unavailable, grpc.StatusCode.UNAVAILABLE),
    (Unauthenticated, grpc.StatusCode.UNAUTHENTICATED),
    (PermissionDenied, grpc.StatusCode.PERMISSION_DENIED),
    (StreamReplaced, grpc.StatusCode.ABORTED),
)

REFUSALS = (DomainError, AccessDenied, Unavailable)
"""What an RPC answers as a refusal the caller can act on; any other error is a fault
of the router (INTERNAL, logged with its traceback)."""


def status_of(error: BaseException) -> grpc.StatusCode:
    """The gRPC status code that answers `error`: INTERNAL for anything not mapped (store,
    configuration and startup errors are not meant to reach a caller)."""
    for kind, code in _CODES:
        if isinstance(error, kind):
            return code
    return grpc.StatusCode.INTERNAL


def error_status(error: RouterError) -> Status:
    """The google.rpc.Status that answers `error`: its code, its message, and the
    standard details a client can act on."""
    code = status_of(error)
    metadata = dict(error.metadata)
    details: list[Message] = []
    if isinstance(error, InvalidArgument):
        metadata["field"] = error.field
        violation = BadRequest.FieldViolation(field=error.field, description=error.problem)
        details.append(BadRequest(field_violations=[violation]))
    if isinstance(error, Unavailable):
        delay = Duration()
        delay.FromTimedelta(timedelta(seconds=error.retry_after))
        details.append(RetryInfo(retry_delay=delay))
    info = ErrorInfo(reason=error.reason, domain=DOMAIN, metadata=metadata)
    status = Status(code=code.value[0], message=str(error))
    for detail in (info, *details):
        packed = AnyMessage()
        packed.Pack(detail)
        status.details.append(packed)
    return status


async def abort(context: Context, error: RouterError) -> Never:
    """End the call with `error`'s status, message and details."""
    # grpcio-status puts the serialized google.rpc.Status in the trailer that every
    # gRPC library reads it from; its message and code are the status's own.
    status = cast(grpc.Status, rpc_status.to_status(error_status(error)))
    await context.abort(status.code, status.details, status.trailing_metadata)


_ID_FIELDS = ("contact_id", "agent_id", "offer_id")
_ids_by_type: dict[type[Message], tuple[str, ...]] = {}


def ids_of(request: Message) -> dict[str, str]:
    """contact_id / agent_id fields of a request, to bind to every log line of the RPC."""
    fields = _ids_by_type.get(type(request))
    if fields is None:
        # Which of them a message type has is looked up once per type.
        by_name = request.DESCRIPTOR.fields_by_name
        fields = tuple(f for f in _ID_FIELDS if by_name.get(f) is not None)
        _ids_by_type[type(request)] = fields
    ids = {}
    for field in fields:
        value = getattr(request, field)
        if value:
            ids[field] = value[:128]
    return ids


async def fail(context: Context, error: Exception) -> Never:
    """End a call that raised `error`: a refusal with its status and details (logged
    as rpc_refused), anything else with INTERNAL (logged with its traceback). For the
    unary methods (`rpc`) and the opening of a stream alike."""
    if isinstance(error, REFUSALS):
        code = status_of(error)
        log.info("rpc_refused", code=code.name, reason=error.reason, error=str(error))
        await abort(context, error)
    log.error("rpc_failed", exc_info=error)
    await abort(context, InternalError("internal error; see server log"))


def rpc(
    method: Callable[[S, Req, grpc.aio.ServicerContext[Any, Any]], Awaitable[Resp]],
) -> Callable[[S, Req, grpc.aio.ServicerContext[Any, Any]], Awaitable[Resp]]:
    """Bind ids for logging, answer a refusal with its status and details (anything
    else with INTERNAL), and tell the servicer's `observe_rpc` how each call went."""

    name = method.__name__

    @functools.wraps(method)
    async def handler(self: S, request: Req, context: grpc.aio.ServicerContext[Any, Any]) -> Resp:
        started = time.perf_counter()
        # Tokens, not bound_contextvars: that one copies the whole context to find
        # what it replaces, a cost paid on every call (the reset restores the same).
        bound = bind_contextvars(rpc=name, **ids_of(request))
        try:
            response = await method(self, request, context)
        except asyncio.CancelledError:
            self.observe_rpc(name, "CANCELLED", time.perf_counter() - started)
            raise
        except Exception as error:
            # Observed before the status goes out: context.abort sends it at once,
            # and whoever reads the metrics after seeing it must find this call.
            self.observe_rpc(name, status_of(error).name, time.perf_counter() - started)
            await fail(context, error)
        finally:
            reset_contextvars(**bound)
        self.observe_rpc(name, "OK", time.perf_counter() - started)
        return response

    return handler
