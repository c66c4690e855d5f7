"""The standard error details contact-router attaches to every error it answers.

    try:
        await gateway.submit(...)
    except grpc.aio.AioRpcError as error:
        details = error_details(error)
        if details.reason == "QUEUE_FULL":
            ...offer the customer another channel ({details.metadata["channel"]} is full)
        for violation in details.field_violations:
            ...mark violation.field on the form, with violation.description

The router sends a google.rpc.Status in the `grpc-status-details-bin` trailer (the
proto's header comment lists what comes with which code):

* google.rpc.ErrorInfo on every error: `reason`, a stable name to branch on
  (INVALID_FIELD, NOT_FOUND, WRONG_STATE, QUEUE_FULL, STANDBY, ...), the domain
  "contactrouter.v1", and `metadata` (the field, the channel, the limit...);
* google.rpc.BadRequest on INVALID_ARGUMENT: each field's path and what is wrong;
* google.rpc.RetryInfo on UNAVAILABLE: how long to wait before the same request again.

Decoding them needs the google.rpc messages, which come with grpcio-status (the gRPC
project's own package for these details). The client does not require it: install the
`details` extra, `pip install 'contact-router-client[details]'`. Without it the codes
and messages work as before; only this module is unavailable.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, cast

import grpc

try:
    from google.rpc.error_details_pb2 import BadRequest, ErrorInfo, RetryInfo
    from google.rpc.status_pb2 import Status
    from grpc_status import rpc_status
except ImportError as missing:  # pragma: no cover - exercised in a subprocess by the tests
    raise ImportError(
        "contactrouter.error_details needs grpcio-status: "
        "pip install 'contact-router-client[details]'",
        name=missing.name,
    ) from missing

__all__ = ["ErrorDetails", "FieldViolation", "error_details"]


@dataclass(frozen=True, slots=True)
class FieldViolation:
    """One bad field of a request: its path (`forecast[3].interval_start`) and why."""

    field: str
    description: str


@dataclass(frozen=True, slots=True)
class ErrorDetails:
    """What a failed call says, as plain values.

    `reason`, `domain` and `metadata` are empty, and `retry_after` None, for an error
    that did not come from a router (a connection that failed, a deadline)."""

    code: grpc.StatusCode
    message: str
    reason: str = ""
    domain: str = ""
    metadata: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))
    field_violations: tuple[FieldViolation, ...] = ()
    retry_after: float | None = None
    """Seconds to wait before sending the same request again (UNAVAILABLE only)."""


def error_details(error: grpc.RpcError) -> ErrorDetails:
    """The details of a failed call: a grpc.aio.AioRpcError, or the grpc.RpcError of a
    synchronous stub (which is also a grpc.Call)."""
    call = cast(Any, error)
    code: grpc.StatusCode = call.code()
    message: str = call.details() or ""
    # from_call also checks that the details' code and message are the call's own.
    status = cast(Status | None, rpc_status.from_call(call))
    if status is None:
        return ErrorDetails(code, message)
    info = ErrorInfo()
    violations: list[FieldViolation] = []
    retry_after = None
    for packed in status.details:
        # Unpack reads a detail only into a message of its own kind (it answers whether
        # it did); kinds this client does not know are left alone.
        request, retry = BadRequest(), RetryInfo()
        if packed.Unpack(request):
            violations.extend(
                FieldViolation(v.field, v.description) for v in request.field_violations
            )
        elif packed.Unpack(retry):
            retry_after = retry.retry_delay.ToTimedelta().total_seconds()
        else:
            packed.Unpack(info)
    return ErrorDetails(
        code,
        message,
        info.reason,
        info.domain,
        MappingProxyType(dict(info.metadata)),
        tuple(violations),
        retry_after,
    )
