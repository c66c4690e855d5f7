"""Traces through a real router on a real port: a span per RPC with its ids, a child
span for the commit it waited on, a span per commit batch linked to the RPCs it served,
and the trace ids on the call's log lines."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import grpc
import pytest
import structlog
from contactrouter.v1 import contact_router_pb2 as pb
from contactrouter.v1 import contact_router_pb2_grpc as pb_grpc
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind

from router import logs
from router.domain import RoutingPolicy
from router.server import RunningRouter, start_router
from router.store import GroupCommit
from router.tracing import COMMIT_SPAN, WAIT_SPAN, Tracing
from tests.acceptance.conftest import eventually, submit

SUBMIT = "/contactrouter.v1.ContactService/SubmitContact"


@pytest.fixture
def exporter() -> Iterator[InMemorySpanExporter]:
    exporter = InMemorySpanExporter()
    yield exporter
    exporter.shutdown()


@pytest.fixture
async def traced_router(
    database_url: str, policy: RoutingPolicy, exporter: InMemorySpanExporter
) -> AsyncIterator[RunningRouter]:
    tracing = Tracing.with_exporter(exporter)
    running = await start_router(database_url, policy, tracing=tracing)
    try:
        yield running
    finally:
        await running.stop(grace=1.0)
        tracing.shutdown()


@pytest.fixture
async def traced_channel(traced_router: RunningRouter) -> AsyncIterator[grpc.aio.Channel]:
    async with grpc.aio.insecure_channel(f"127.0.0.1:{traced_router.port}") as channel:
        yield channel


def named(spans: tuple[ReadableSpan, ...], name: str) -> list[ReadableSpan]:
    return [span for span in spans if span.name == name]


async def finished(exporter: InMemorySpanExporter, name: str) -> tuple[ReadableSpan, ...]:
    """The finished spans, once one called `name` is among them. A call's server span
    ends as its handler returns, and the reply may reach the caller first (a refusal's
    status always does: it is sent by the abort, before the handler's exception)."""

    async def ended() -> bool:
        return bool(named(exporter.get_finished_spans(), name))

    await eventually(ended, what=f"a finished span {name}")
    return exporter.get_finished_spans()


def hex_ids(span: ReadableSpan) -> tuple[str, str]:
    context = span.get_span_context()
    assert context is not None
    return format(context.trace_id, "032x"), format(context.span_id, "016x")


class TestSubmissionTrace:
    async def test_submit_has_its_span_commit_and_log_ids(
        self, traced_channel: grpc.aio.Channel, exporter: InMemorySpanExporter
    ) -> None:
        """SubmitContact: a server span with the contact id, a child span for the commit
        it waited on, a batch span linked to it, and its trace ids on its log lines."""
        contacts = pb_grpc.ContactServiceStub(traced_channel)
        with structlog.testing.capture_logs(
            processors=[structlog.contextvars.merge_contextvars, logs.add_trace_ids]
        ) as lines:
            contact = await submit(contacts, "traced-1")
        spans = await finished(exporter, SUBMIT)

        (rpc,) = named(spans, SUBMIT)
        assert rpc.kind is SpanKind.SERVER
        assert rpc.attributes is not None
        assert rpc.attributes["contact_id"] == contact.contact_id
        trace_id, span_id = hex_ids(rpc)

        (waited,) = [s for s in named(spans, WAIT_SPAN) if s.parent == rpc.get_span_context()]
        assert waited.parent is not None
        assert format(waited.context.trace_id, "032x") == trace_id

        batches = [
            s
            for s in named(spans, COMMIT_SPAN)
            if any(link.context == rpc.get_span_context() for link in s.links)
        ]
        assert len(batches) == 1, "one batch carried the submission's insert"
        (batch,) = batches
        assert batch.parent is None, "a batch serves many RPCs: linked, no one's child"
        assert batch.attributes is not None
        writes = batch.attributes["router.commit.writes"]
        assert isinstance(writes, int)
        assert writes >= 2  # the contact and its event

        submitted = [line for line in lines if line["event"] == "contact_submitted"]
        assert len(submitted) == 1
        assert submitted[0]["contact_id"] == contact.contact_id
        assert submitted[0]["trace_id"] == trace_id
        assert submitted[0]["span_id"] == span_id

    async def test_agent_ids_on_the_span(
        self, traced_channel: grpc.aio.Channel, exporter: InMemorySpanExporter
    ) -> None:
        """An agent's RPC carries agent_id on its span."""
        agents = pb_grpc.AgentServiceStub(traced_channel)
        await agents.SignIn(pb.SignInRequest(agent_id="alice"))
        sign_in = "/contactrouter.v1.AgentService/SignIn"
        (span,) = named(await finished(exporter, sign_in), sign_in)
        assert span.attributes is not None
        assert span.attributes["agent_id"] == "alice"

    async def test_refused_call_is_traced_with_its_status(
        self, traced_channel: grpc.aio.Channel, exporter: InMemorySpanExporter
    ) -> None:
        """A refused call still has its span, with the refusal's status code (a client's
        mistake: by OpenTelemetry's conventions not an error of the server span)."""
        contacts = pb_grpc.ContactServiceStub(traced_channel)
        with pytest.raises(grpc.aio.AioRpcError):
            await contacts.GetContact(pb.GetContactRequest(contact_id="not-a-uuid"))
        get_contact = "/contactrouter.v1.ContactService/GetContact"
        (span,) = named(await finished(exporter, get_contact), get_contact)
        assert span.attributes is not None
        assert span.attributes["rpc.grpc.status_code"] == grpc.StatusCode.INVALID_ARGUMENT.value[0]
        assert span.attributes["contact_id"] == "not-a-uuid"

    async def test_health_checks_make_no_span(
        self, traced_channel: grpc.aio.Channel, exporter: InMemorySpanExporter
    ) -> None:
        """Probes call Health every few seconds: no span for them."""
        from grpc_health.v1 import health_pb2, health_pb2_grpc

        health = health_pb2_grpc.HealthStub(traced_channel)
        await health.Check(health_pb2.HealthCheckRequest(service=""))
        assert not [s for s in exporter.get_finished_spans() if "Health" in s.name]


class TestOff:
    async def test_nothing_of_tracing_is_installed(
        self, router_server: RunningRouter, contacts: pb_grpc.ContactServiceAsyncStub
    ) -> None:
        """Without tracing, the writer is the plain group commit and log lines carry no
        trace ids."""
        assert type(router_server.store.writer) is GroupCommit
        with structlog.testing.capture_logs(
            processors=[structlog.contextvars.merge_contextvars, logs.add_trace_ids]
        ) as lines:
            await submit(contacts, "untraced-1")
        (line,) = [line for line in lines if line["event"] == "contact_submitted"]
        assert "trace_id" not in line
