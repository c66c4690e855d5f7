"""The standard rich error details, read as any gRPC client reads them: grpcio-status
decodes the google.rpc.Status the router puts in the grpc-status-details-bin trailer.

Every error carries google.rpc.ErrorInfo (a stable reason, the domain
"contactrouter.v1", metadata); INVALID_ARGUMENT adds google.rpc.BadRequest (the
field's path and what is wrong); UNAVAILABLE adds google.rpc.RetryInfo. The status
message stays the readable one.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any, TypeVar, cast

import grpc
import pytest
from contactrouter.error_details import FieldViolation, error_details
from contactrouter.v1 import contact_router_pb2 as pb
from contactrouter.v1 import contact_router_pb2_grpc as pb_grpc
from google.rpc.error_details_pb2 import BadRequest, ErrorInfo, RetryInfo
from google.rpc.status_pb2 import Status
from grpc_status import rpc_status

from router.api.access import Principal, Role, Tokens, digest_of, new_token
from router.domain import Channel, ChannelPolicy, RoutingPolicy
from router.errors import NotActive
from router.server import RunningRouter, start_router
from tests.acceptance.conftest import rpc_error, sign_in, submit
from tests.acceptance.ports import free_port

DOMAIN = "contactrouter.v1"
Detail = TypeVar("Detail", ErrorInfo, BadRequest, RetryInfo)


def rich_status(error: grpc.aio.AioRpcError) -> Status:
    """The google.rpc.Status of a failed call, checked by grpcio-status against the call's
    own code and message."""
    status = cast(Status | None, rpc_status.from_call(cast(Any, error)))
    assert status is not None, f"no rich status: {error.code()} {error.details()}"
    return status


def unpacked(status: Status, kind: type[Detail]) -> list[Detail]:
    found = []
    for detail in status.details:
        message = kind()
        if detail.Unpack(message):  # False, and nothing read, for another kind
            found.append(message)
    return found


def error_info(error: grpc.aio.AioRpcError) -> ErrorInfo:
    """The one ErrorInfo of `error`, in the API's domain."""
    [info] = unpacked(rich_status(error), ErrorInfo)
    assert info.domain == DOMAIN
    return info


def field_violations(error: grpc.aio.AioRpcError) -> list[tuple[str, str]]:
    return [
        (violation.field, violation.description)
        for request in unpacked(rich_status(error), BadRequest)
        for violation in request.field_violations
    ]


def retry_seconds(error: grpc.aio.AioRpcError) -> list[float]:
    return [
        info.retry_delay.ToTimedelta().total_seconds()
        for info in unpacked(rich_status(error), RetryInfo)
    ]


async def stream_error(call: grpc.aio.UnaryStreamCall[Any, Any]) -> grpc.aio.AioRpcError:
    """The error an offer stream ends with (the test fails if it yields or ends OK)."""
    try:
        async for message in call:
            pytest.fail(f"the stream yielded {message}")
    except grpc.aio.AioRpcError as error:
        return error
    pytest.fail("the stream ended OK")


class TestRefusedRequests:
    async def test_invalid_argument_names_the_field(self, module_channel: grpc.aio.Channel) -> None:
        """INVALID_ARGUMENT: a BadRequest violation naming the field and the problem, and
        ErrorInfo INVALID_FIELD; the message is the readable one."""
        contacts = pb_grpc.ContactServiceStub(module_channel)
        error = await rpc_error(
            contacts.SubmitContact(
                pb.SubmitContactRequest(
                    idempotency_key="k", channel=pb.CHANNEL_UNSPECIFIED, customer_id="c"
                )
            )
        )
        assert error.code() is grpc.StatusCode.INVALID_ARGUMENT
        [(field, description)] = field_violations(error)
        assert field == "channel"
        assert error.details() == f"{field}: {description}"
        info = error_info(error)
        assert info.reason == "INVALID_FIELD"
        assert info.metadata["field"] == "channel"
        assert retry_seconds(error) == []

    async def test_invalid_argument_on_the_offer_stream(
        self, module_channel: grpc.aio.Channel
    ) -> None:
        """StreamOffers refuses a malformed agent id with the same details."""
        agents = pb_grpc.AgentServiceStub(module_channel)
        error = await stream_error(
            agents.StreamOffers(pb.StreamOffersRequest(agent_id="not an id"))
        )
        assert error.code() is grpc.StatusCode.INVALID_ARGUMENT
        assert [field for field, _ in field_violations(error)] == ["agent_id"]
        assert error_info(error).reason == "INVALID_FIELD"

    async def test_unparseable_bytes_are_a_bad_request(
        self, module_channel: grpc.aio.Channel
    ) -> None:
        """Bytes that do not parse as the method's request: INVALID_ARGUMENT with a
        violation of the whole `request`."""
        identity: Callable[[bytes], bytes] = lambda data: data  # noqa: E731
        call = module_channel.unary_unary(
            "/contactrouter.v1.ContactService/SubmitContact", identity, identity
        )
        error = await rpc_error(call(b"\xff\xff\xff\xff", timeout=10))
        assert error.code() is grpc.StatusCode.INVALID_ARGUMENT
        assert [field for field, _ in field_violations(error)] == ["request"]
        assert error_info(error).reason == "INVALID_FIELD"

    async def test_not_found(self, module_channel: grpc.aio.Channel) -> None:
        """NOT_FOUND: ErrorInfo NOT_FOUND, no field violation, no retry hint."""
        contacts = pb_grpc.ContactServiceStub(module_channel)
        error = await rpc_error(
            contacts.AbandonContact(pb.AbandonContactRequest(contact_id=str(uuid.uuid4())))
        )
        assert error.code() is grpc.StatusCode.NOT_FOUND
        assert error_info(error).reason == "NOT_FOUND"
        assert field_violations(error) == []
        assert retry_seconds(error) == []

    async def test_failed_precondition(self, module_channel: grpc.aio.Channel) -> None:
        """FAILED_PRECONDITION: ErrorInfo WRONG_STATE."""
        agents = pb_grpc.AgentServiceStub(module_channel)
        await sign_in(agents, "details-agent")
        error = await rpc_error(
            agents.AcceptOffer(
                pb.AcceptOfferRequest(agent_id="details-agent", offer_id=str(uuid.uuid4()))
            )
        )
        assert error.code() is grpc.StatusCode.FAILED_PRECONDITION
        assert error_info(error).reason == "WRONG_STATE"
        assert retry_seconds(error) == []


class TestQueueFull:
    @pytest.fixture
    def policy(self) -> RoutingPolicy:
        """Room for one waiting call."""
        phone = ChannelPolicy(20.0, 1, 1, exclusive=True, max_queue=1)
        return RoutingPolicy(
            phone_reserve=0,
            channels=MappingProxyType({**RoutingPolicy().channels, Channel.PHONE: phone}),
        )

    async def test_resource_exhausted_names_the_channel_and_limit(
        self, contacts: pb_grpc.ContactServiceAsyncStub
    ) -> None:
        """RESOURCE_EXHAUSTED: ErrorInfo QUEUE_FULL with the channel, the limit and how
        many wait."""
        await submit(contacts, "call-1")
        error = await rpc_error(submit(contacts, "call-2"))
        assert error.code() is grpc.StatusCode.RESOURCE_EXHAUSTED
        info = error_info(error)
        assert info.reason == "QUEUE_FULL"
        assert dict(info.metadata) == {"channel": "phone", "limit": "1", "waiting": "1"}
        assert retry_seconds(error) == []


# ------------------------------------------------------------ a standby with tokens

TOKENS = {name: new_token() for name in ("gateway", "alice")}


def bearer(name: str) -> tuple[tuple[str, str]]:
    return (("authorization", f"Bearer {TOKENS[name]}"),)


@dataclass(frozen=True)
class Standby:
    """A router that is not the active one (the module's router is), with tokens."""

    contacts: pb_grpc.ContactServiceAsyncStub
    agents: pb_grpc.AgentServiceAsyncStub


@pytest.fixture(scope="module")
async def standby(module_database_url: str, module_router: RunningRouter) -> AsyncIterator[Standby]:
    """Started after the module's router, so it waits as a standby; stopped before it."""
    tokens = Tokens(
        {
            digest_of(TOKENS["gateway"]): Principal("gateway", Role.GATEWAY),
            digest_of(TOKENS["alice"]): Principal("alice", Role.AGENT, "alice"),
        }
    )
    running = await start_router(
        module_database_url, RoutingPolicy(), wait_active=False, tokens=tokens
    )
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{running.port}") as channel:
            yield Standby(pb_grpc.ContactServiceStub(channel), pb_grpc.AgentServiceStub(channel))
    finally:
        await running.stop(grace=1.0)


def a_submission() -> pb.SubmitContactRequest:
    return pb.SubmitContactRequest(
        idempotency_key=f"details-{uuid.uuid4()}", channel=pb.CHANNEL_PHONE, customer_id="c"
    )


class TestUnavailable:
    async def test_a_standby_says_when_to_retry(self, standby: Standby) -> None:
        """UNAVAILABLE from a standby: ErrorInfo STANDBY and RetryInfo with the hint."""
        error = await rpc_error(
            standby.contacts.SubmitContact(a_submission(), metadata=bearer("gateway"))
        )
        assert error.code() is grpc.StatusCode.UNAVAILABLE
        assert "standby" in (error.details() or "")
        assert error_info(error).reason == "STANDBY"
        assert retry_seconds(error) == [NotActive.retry_after]

    async def test_the_offer_stream_of_a_standby(self, standby: Standby) -> None:
        """StreamOffers on a standby ends with the same details."""
        error = await stream_error(
            standby.agents.StreamOffers(
                pb.StreamOffersRequest(agent_id="alice"), metadata=bearer("alice")
            )
        )
        assert error.code() is grpc.StatusCode.UNAVAILABLE
        assert error_info(error).reason == "STANDBY"
        assert retry_seconds(error) == [NotActive.retry_after]


class TestAccess:
    async def test_unauthenticated(self, standby: Standby) -> None:
        """No token: UNAUTHENTICATED with ErrorInfo UNAUTHENTICATED."""
        error = await rpc_error(standby.contacts.SubmitContact(a_submission()))
        assert error.code() is grpc.StatusCode.UNAUTHENTICATED
        assert "bearer token" in (error.details() or "")
        assert error_info(error).reason == "UNAUTHENTICATED"

    async def test_unauthenticated_stream(self, standby: Standby) -> None:
        """The offer stream is refused the same way."""
        error = await stream_error(
            standby.agents.StreamOffers(pb.StreamOffersRequest(agent_id="alice"))
        )
        assert error.code() is grpc.StatusCode.UNAUTHENTICATED
        assert error_info(error).reason == "UNAUTHENTICATED"

    async def test_a_role_that_may_not_call(self, standby: Standby) -> None:
        """A gateway token on AgentService: PERMISSION_DENIED naming the role."""
        error = await rpc_error(
            standby.agents.SignIn(pb.SignInRequest(agent_id="alice"), metadata=bearer("gateway"))
        )
        assert error.code() is grpc.StatusCode.PERMISSION_DENIED
        info = error_info(error)
        assert info.reason == "PERMISSION_DENIED"
        assert info.metadata["role"] == "gateway"

    async def test_an_agent_acting_for_another(self, standby: Standby) -> None:
        """Alice's token signing in bob: PERMISSION_DENIED."""
        error = await rpc_error(
            standby.agents.SignIn(pb.SignInRequest(agent_id="bob"), metadata=bearer("alice"))
        )
        assert error.code() is grpc.StatusCode.PERMISSION_DENIED
        assert "alice" in (error.details() or "")
        assert error_info(error).reason == "PERMISSION_DENIED"


# ------------------------------------------------------------- the Python client


class TestPythonClient:
    async def test_error_details_reads_each_detail(
        self, module_channel: grpc.aio.Channel, standby: Standby
    ) -> None:
        """contactrouter.error_details turns a failed call into plain values."""
        contacts = pb_grpc.ContactServiceStub(module_channel)
        refused = await rpc_error(
            contacts.SubmitContact(
                pb.SubmitContactRequest(idempotency_key="k", channel=pb.CHANNEL_PHONE)
            )
        )
        details = error_details(refused)
        assert details.code is grpc.StatusCode.INVALID_ARGUMENT
        assert details.message == refused.details()
        assert (details.reason, details.domain) == ("INVALID_FIELD", DOMAIN)
        assert details.field_violations == (
            FieldViolation("customer_id", (refused.details() or "").split(": ", 1)[1]),
        )
        assert details.retry_after is None

        unavailable = error_details(
            await rpc_error(
                standby.contacts.SubmitContact(a_submission(), metadata=bearer("gateway"))
            )
        )
        assert (unavailable.code, unavailable.reason) == (grpc.StatusCode.UNAVAILABLE, "STANDBY")
        assert unavailable.retry_after == NotActive.retry_after
        assert unavailable.field_violations == ()

    async def test_a_failure_without_details(self) -> None:
        """A call that never reached a router (nothing listens) has no details: the
        code and message only, and an empty reason."""
        async with grpc.aio.insecure_channel(f"127.0.0.1:{free_port()}") as channel:
            contacts = pb_grpc.ContactServiceStub(channel)
            error = await rpc_error(contacts.SubmitContact(a_submission(), timeout=5))
        details = error_details(error)
        assert details.code is grpc.StatusCode.UNAVAILABLE
        assert (details.reason, details.domain, dict(details.metadata)) == ("", "", {})
        assert details.retry_after is None

    def test_without_the_extra_the_message_says_what_to_install(self) -> None:
        """Without grpcio-status, importing contactrouter.error_details fails with the
        pip command that installs the `details` extra."""
        script = textwrap.dedent(
            """
            import sys
            sys.modules["grpc_status"] = None  # as if grpcio-status were not installed
            import contactrouter.error_details
            """
        )
        done = subprocess.run(
            [sys.executable, "-c", script], capture_output=True, text=True, check=False
        )
        assert done.returncode != 0
        assert "pip install 'contact-router-client[details]'" in done.stderr, done.stderr
