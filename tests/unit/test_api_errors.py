"""The one mapping from the error tree to gRPC statuses and their standard details."""

from __future__ import annotations

import re
from pathlib import Path
from typing import TypeVar

import grpc
import pytest
from google.rpc.code_pb2 import INVALID_ARGUMENT
from google.rpc.error_details_pb2 import BadRequest, ErrorInfo, RetryInfo
from google.rpc.status_pb2 import Status

from router import errors
from router.api.errors import DOMAIN, REFUSALS, error_status, status_of
from router.errors import (
    InternalError,
    InvalidArgument,
    NotActive,
    NotFound,
    PermissionDenied,
    QueueFull,
    RouterError,
    StoreUnavailable,
    Unauthenticated,
    WrongState,
)

REASON = re.compile(r"[A-Z][A-Z0-9_]*")
METADATA_KEY = re.compile(r"[a-z][a-zA-Z0-9\-_]+")
"""What google.rpc.ErrorInfo allows for a reason and for a metadata key."""


def tree() -> list[type[RouterError]]:
    """Every class of router/errors.py."""
    return [
        kind
        for kind in vars(errors).values()
        if isinstance(kind, type) and issubclass(kind, RouterError)
    ]


ROOT = Path(__file__).resolve().parents[2]
PROTO = ROOT / "proto" / "contactrouter" / "v1" / "contact_router.proto"
STATUS_SETTERS = re.compile(r"\.(abort|abort_with_status|set_code|set_details)\(")
"""What ends a call with a status on a grpc.aio.ServicerContext."""
REASON_LINE = re.compile(r"^//   ([A-Z][A-Z0-9_]+) +([A-Z][A-Z_]+)\b", re.MULTILINE)
"""A line of the proto header's reasons table: reason, then its status code."""


def sample(kind: type[RouterError]) -> RouterError:
    """An instance of `kind`."""
    return kind("field", "problem") if kind is InvalidArgument else kind("message")


M = TypeVar("M", ErrorInfo, BadRequest, RetryInfo)


def details_of(status: Status, kind: type[M]) -> list[M]:
    """The details of `kind` in `status`."""
    found = []
    for detail in status.details:
        message = kind()
        if detail.Unpack(message):  # False, and nothing read, for another kind
            found.append(message)
    return found


class TestTree:
    def test_reasons_are_stable_names_and_unique(self) -> None:
        """Each class has its own UPPER_SNAKE_CASE reason: a client can tell them apart."""
        reasons = [kind.reason for kind in tree()]
        assert all(REASON.fullmatch(reason) for reason in reasons), reasons
        assert len(set(reasons)) == len(reasons), reasons

    def test_metadata_keys_are_what_error_info_allows(self) -> None:
        """Metadata values become text; keys are ErrorInfo keys."""
        error = QueueFull("full", channel="phone", limit=100)
        assert error.metadata == {"channel": "phone", "limit": "100"}
        assert all(METADATA_KEY.fullmatch(key) for key in error.metadata)


class TestStatusOf:
    @pytest.mark.parametrize(
        ("error", "code"),
        [
            (InvalidArgument("channel", "is required"), grpc.StatusCode.INVALID_ARGUMENT),
            (NotFound("no such contact"), grpc.StatusCode.NOT_FOUND),
            (WrongState("not connected"), grpc.StatusCode.FAILED_PRECONDITION),
            (QueueFull("full"), grpc.StatusCode.RESOURCE_EXHAUSTED),
            (StoreUnavailable("down"), grpc.StatusCode.UNAVAILABLE),
            (NotActive("standby"), grpc.StatusCode.UNAVAILABLE),
            (Unauthenticated("no token"), grpc.StatusCode.UNAUTHENTICATED),
            (PermissionDenied("not yours"), grpc.StatusCode.PERMISSION_DENIED),
            (InternalError("a bug"), grpc.StatusCode.INTERNAL),
            (RouterError("not meant for callers"), grpc.StatusCode.INTERNAL),
        ],
    )
    def test_each_kind_has_its_code(self, error: RouterError, code: grpc.StatusCode) -> None:
        """A subclass takes its nearest mapped ancestor's code; the rest is INTERNAL."""
        assert status_of(error) is code

    def test_every_class_has_a_code(self) -> None:
        """No class of the tree falls through to an unmapped code (UNKNOWN)."""
        for kind in tree():
            assert status_of(sample(kind)) is not grpc.StatusCode.UNKNOWN


class TestErrorStatus:
    def test_every_status_carries_error_info(self) -> None:
        """ErrorInfo with the class's reason, the API's domain and the error's metadata,
        and the readable message as the status message, for each class of the tree."""
        for kind in tree():
            error = sample(kind)
            status = error_status(error)
            assert status.code == status_of(error).value[0]
            assert status.message == str(error)
            [info] = details_of(status, ErrorInfo)
            assert (info.reason, info.domain) == (kind.reason, DOMAIN)

    def test_invalid_argument_names_the_field(self) -> None:
        """INVALID_ARGUMENT carries a BadRequest field violation: the field's path and
        what is wrong with it; the field is in ErrorInfo's metadata too."""
        status = error_status(InvalidArgument("forecast[3].interval_start", "is required"))
        assert status.code == INVALID_ARGUMENT
        [request] = details_of(status, BadRequest)
        [violation] = request.field_violations
        assert (violation.field, violation.description) == (
            "forecast[3].interval_start",
            "is required",
        )
        [info] = details_of(status, ErrorInfo)
        assert info.metadata["field"] == "forecast[3].interval_start"

    def test_unavailable_says_when_to_retry(self) -> None:
        """UNAVAILABLE carries RetryInfo with the class's hint; other codes do not."""
        status = error_status(StoreUnavailable("PostgreSQL is unavailable"))
        [retry] = details_of(status, RetryInfo)
        assert retry.retry_delay.ToTimedelta().total_seconds() == StoreUnavailable.retry_after
        assert details_of(error_status(NotFound("no such contact")), RetryInfo) == []

    def test_metadata_reaches_error_info(self) -> None:
        """What the raise site knew (the channel, the limit) is in ErrorInfo."""
        status = error_status(QueueFull("full", channel="chat", limit=5, waiting=5))
        [info] = details_of(status, ErrorInfo)
        assert dict(info.metadata) == {"channel": "chat", "limit": "5", "waiting": "5"}


class TestDocumented:
    def test_the_proto_lists_every_reason_a_caller_meets(self) -> None:
        """The proto's header lists each reason a caller can receive with its code: every
        class that is refused or internal and has no subclass of its own."""
        header = PROTO.read_text(encoding="utf-8").split("\nsyntax = ", 1)[0]
        listed = dict(REASON_LINE.findall(header))
        kinds = tree()
        met = [
            kind
            for kind in kinds
            if (issubclass(kind, REFUSALS) or kind is InternalError)
            and not any(other is not kind and issubclass(other, kind) for other in kinds)
        ]
        assert met
        for kind in met:
            assert listed.get(kind.reason) == status_of(sample(kind)).name, kind


class TestOnePlace:
    def test_only_the_mapping_sets_a_status(self) -> None:
        """No module of the server ends a call with a status of its own: each goes through
        router/api/errors.py, so that every error carries the details."""
        mapping = ROOT / "router" / "api" / "errors.py"
        setting = [
            f"{path.relative_to(ROOT)}:{number}"
            for path in sorted((ROOT / "router").rglob("*.py"))
            if path != mapping
            for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
            if STATUS_SETTERS.search(line)
        ]
        assert setting == []
