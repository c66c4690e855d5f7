"""OpenTelemetry traces: off unless OTEL_TRACES_EXPORTER names an exporter.

When on, a span per RPC comes from opentelemetry-instrumentation-grpc's aio server
interceptor (it also continues a trace the caller sent in `traceparent`); `SpanIds`,
right inside it, puts the call's contact, agent and offer ids on that span. Each RPC
that waits for a commit gets a child span "wait for commit"; the group commit writes
one span per batch ("group commit", a root of its own) with a link to the span of each
RPC whose writes it carries: a batch serves many RPCs, so it is no one's child. The
ids of the current span go on every log line of the call (`router.logs.add_trace_ids`).

When off, none of this is installed: no interceptor, the plain GroupCommit, no log
processor; nothing on the hot path asks whether tracing is on.

Configured by the standard variables, read by the OpenTelemetry SDK itself:
OTEL_TRACES_EXPORTER (`otlp`, `console`, or both, comma-separated; unset or `none`:
off), OTEL_SDK_DISABLED=true (off, whatever else is set), OTEL_SERVICE_NAME (default
here: contact-router), OTEL_RESOURCE_ATTRIBUTES, OTEL_TRACES_SAMPLER and its _ARG,
OTEL_BSP_* (the batch span processor), OTEL_EXPORTER_OTLP_ENDPOINT and the other
OTEL_EXPORTER_OTLP_* of the gRPC OTLP exporter (the optional extra
`contact-router[otlp]`).

asyncpg's instrumentation is left out: it patches asyncpg's Connection class for the
whole process, and the active lock's heartbeat (a query a second) would then start a
root span a second of its own; the "group commit" span already times every write.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, TypeAlias, cast

import grpc
from google.protobuf.message import Message
from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.sdk.resources import SERVICE_NAME, Resource
from opentelemetry.sdk.trace import SpanProcessor, TracerProvider
from opentelemetry.sdk.trace.export import (
    BatchSpanProcessor,
    ConsoleSpanExporter,
    SimpleSpanProcessor,
    SpanExporter,
)

from router.api.errors import ids_of
from router.errors import ConfigError
from router.store.active_lock import ActiveLock
from router.store.group_commit import GroupCommit, _Pending

if TYPE_CHECKING:
    Handler: TypeAlias = grpc.RpcMethodHandler[Any, Any]

EXPORTERS = ("otlp", "console")
"""What OTEL_TRACES_EXPORTER may name here."""

OTLP_HINT = "pip install 'contact-router[otlp]'"

DEFAULT_SERVICE_NAME = "contact-router"

UNTRACED_SERVICES = ("/grpc.health.v1.Health/", "/grpc.reflection.")
"""Probes call Health every few seconds: no span for them, nor for reflection."""

COMMIT_SPAN = "group commit"
WAIT_SPAN = "wait for commit"


def exporters_wanted(environ: Mapping[str, str]) -> tuple[str, ...]:
    """The exporters OTEL_TRACES_EXPORTER names (none: tracing is off). ConfigError
    for a name this router does not know."""
    if environ.get("OTEL_SDK_DISABLED", "").strip().lower() == "true":
        return ()
    text = environ.get("OTEL_TRACES_EXPORTER", "")
    names = tuple(dict.fromkeys(n.strip().lower() for n in text.split(",") if n.strip()))
    names = tuple(n for n in names if n != "none")
    unknown = [n for n in names if n not in EXPORTERS]
    if unknown:
        raise ConfigError(
            f"OTEL_TRACES_EXPORTER={text!r}: unknown exporter {unknown[0]!r}; "
            f"this router knows {', '.join(EXPORTERS)} (or none)"
        )
    return names


class Tracing:
    """A tracer provider and what the router installs with it when tracing is on."""

    def __init__(self, provider: TracerProvider) -> None:
        self.provider = provider
        self.tracer = provider.get_tracer("router")

    @classmethod
    def from_environment(cls, environ: Mapping[str, str]) -> Tracing | None:
        """Tracing as the OTEL_* variables say, or None when they leave it off."""
        names = exporters_wanted(environ)
        if not names:
            return None
        processors: list[SpanProcessor] = [
            BatchSpanProcessor(_exporter(name, environ)) for name in names
        ]
        return cls.with_processors(processors)

    @classmethod
    def with_exporter(cls, exporter: SpanExporter) -> Tracing:
        """Each span handed to `exporter` as it ends (tests: an in-memory exporter)."""
        return cls.with_processors([SimpleSpanProcessor(exporter)])

    @classmethod
    def with_processors(cls, processors: Sequence[SpanProcessor]) -> Tracing:
        # Resource.create reads OTEL_RESOURCE_ATTRIBUTES and OTEL_SERVICE_NAME; its
        # service.name is "unknown_service..." when neither names one.
        resource = Resource.create()
        name = str(resource.attributes.get(SERVICE_NAME, ""))
        if name.startswith("unknown_service"):
            resource = resource.merge(Resource({SERVICE_NAME: DEFAULT_SERVICE_NAME}))
        provider = TracerProvider(resource=resource)
        for processor in processors:
            provider.add_span_processor(processor)
        return cls(provider)

    def interceptors(self) -> list[grpc.aio.ServerInterceptor]:
        """The outermost server interceptors: the span, then the ids on it."""
        from opentelemetry.instrumentation.grpc import aio_server_interceptor

        def traced(details: grpc.HandlerCallDetails) -> bool:
            return not details.method.startswith(UNTRACED_SERVICES)

        # The instrumentation's functions carry no annotations.
        made = aio_server_interceptor(  # type: ignore[no-untyped-call]
            tracer_provider=self.provider, filter_=traced
        )
        span = cast(grpc.aio.ServerInterceptor, made)
        return [span, SpanIds()]

    def group_commit(self, lock: ActiveLock) -> GroupCommit:
        return TracedGroupCommit(lock, self.tracer)

    def shutdown(self) -> None:
        """Export what is buffered and stop the exporters."""
        self.provider.shutdown()


def _exporter(name: str, environ: Mapping[str, str]) -> SpanExporter:
    if name == "console":
        return ConsoleSpanExporter(service_name=DEFAULT_SERVICE_NAME)
    for variable in ("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", "OTEL_EXPORTER_OTLP_PROTOCOL"):
        protocol = environ.get(variable, "").strip()
        if protocol:
            if protocol != "grpc":
                raise ConfigError(
                    f"{variable}={protocol!r}: this router exports OTLP over grpc only"
                )
            break
    try:
        from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter
    except ImportError:
        raise ConfigError(
            f"OTEL_TRACES_EXPORTER names otlp, but the OTLP exporter is not installed: {OTLP_HINT}"
        ) from None
    return OTLPSpanExporter()


def _tag(request: object) -> None:
    if isinstance(request, Message):
        span = trace.get_current_span()
        for key, value in ids_of(request).items():
            span.set_attribute(key, value)


def _tag_response(response: object) -> None:
    """A contact the call answers with: SubmitContact's id is known only here."""
    if isinstance(response, Message) and "contact" in response.DESCRIPTOR.fields_by_name:
        contact = getattr(response, "contact", None)
        contact_id = getattr(contact, "contact_id", "")
        if contact_id:
            trace.get_current_span().set_attribute("contact_id", contact_id)


class SpanIds(grpc.aio.ServerInterceptor):
    """Put the request's contact_id, agent_id and offer_id (and the contact id of the
    answer) on the RPC's span, under the names the log lines use."""

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[Handler | None]],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> Handler | None:
        handler = await continuation(handler_call_details)
        if handler is None or handler.request_streaming:
            return handler
        if handler.response_streaming:
            # Typed for the sync server by grpc-stubs; on the aio server these are
            # coroutine functions and async generator functions taking the aio context.
            streaming = cast(Callable[..., AsyncIterator[Any]], handler.unary_stream)

            async def unary_stream(request: Any, context: Any) -> AsyncIterator[Any]:
                _tag(request)
                async for response in streaming(request, context):
                    yield response

            return grpc.unary_stream_rpc_method_handler(
                unary_stream, handler.request_deserializer, handler.response_serializer
            )
        unary = cast(Callable[..., Awaitable[Any]], handler.unary_unary)

        async def unary_unary(request: Any, context: Any) -> Any:
            _tag(request)
            response = await unary(request, context)
            _tag_response(response)
            return response

        return grpc.unary_unary_rpc_method_handler(
            unary_unary, handler.request_deserializer, handler.response_serializer
        )


_ROOT = otel_context.Context()


class TracedGroupCommit(GroupCommit):
    """The group commit, with a span per batch linked to the spans of the RPCs it
    serves, and a "wait for commit" span in each RPC that waits."""

    def __init__(self, lock: ActiveLock, tracer: trace.Tracer, **options: Any) -> None:
        super().__init__(lock, **options)
        self._tracer = tracer
        self._links: dict[asyncio.Future[None], trace.SpanContext] = {}

    def enqueue(
        self,
        writes: Sequence[tuple[str, tuple[Any, ...]]],
        *,
        retry: bool = True,
        after_commit: Callable[[], None] | None = None,
    ) -> asyncio.Future[None]:
        done = super().enqueue(writes, retry=retry, after_commit=after_commit)
        span = trace.get_current_span()
        if span.is_recording() and not done.done():
            self._links[done] = span.get_span_context()
            done.add_done_callback(self._forget)
        return done

    def _forget(self, done: asyncio.Future[None]) -> None:
        self._links.pop(done, None)

    async def wait(self, done: asyncio.Future[None], *, retry: bool = True) -> None:
        if not trace.get_current_span().is_recording():
            return await super().wait(done, retry=retry)
        with self._tracer.start_as_current_span(WAIT_SPAN):
            return await super().wait(done, retry=retry)

    async def _commit(self, batch: Sequence[_Pending]) -> None:
        links = [trace.Link(self._links[item.done]) for item in batch if item.done in self._links]
        attributes = {
            "router.commit.callers": len(batch),
            "router.commit.writes": sum(len(item.writes) for item in batch),
        }
        with self._tracer.start_as_current_span(
            COMMIT_SPAN, context=_ROOT, links=links, attributes=attributes
        ):
            await super()._commit(batch)
