"""Prometheus metrics, served over HTTP from the router's own event loop.

Live figures (queue, agents, rolling service level) are read at scrape time from the
loop's thread, so a scrape never races a routing decision. Names follow Prometheus
conventions: a `contactrouter_` prefix, base units, `_total` on counters.
"""

from __future__ import annotations

import asyncio
import errno
from collections.abc import Callable, Iterator, Sequence
from datetime import datetime

import structlog
from prometheus_client import (
    GC_COLLECTOR,
    PLATFORM_COLLECTOR,
    PROCESS_COLLECTOR,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    disable_created_metrics,
)
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.exposition import choose_encoder
from prometheus_client.registry import Collector

from router.domain import (
    AgentEvent,
    Channel,
    ContactEvent,
    ContactEventKind,
    Event,
    OfferWithdrawn,
    QueueSnapshot,
)
from router.domain.rolling import RollingServiceLevel
from router.errors import StartupError
from router.loop_metrics import LoopCollector, LoopCounter, LoopHistogram
from router.store.group_commit import BatchTiming

log = structlog.get_logger(__name__)

LiveReader = Callable[[], tuple[QueueSnapshot, RollingServiceLevel, datetime, int, int] | None]
"""Returns the live queue, the rolling service level, now, the pending writes and the
open offer streams; None while this process is a standby."""

_LATENCY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)

# An offer stream is open as long as its agent is present: from a reconnect after a few
# seconds to a whole shift.
_STREAM_BUCKETS = (1, 10, 60, 300, 900, 1800, 3600, 7200, 14400, 28800, 43200, 86400)


class RouterMetrics:
    """Every metric of one router, in a registry of its own."""

    def __init__(self, rolling: RollingServiceLevel) -> None:
        # `_created` series (when each counter and histogram was made) double the series
        # count for a timestamp dashboards do not use. The switch is the library's, for
        # the whole process; the router's are its only metrics.
        disable_created_metrics()  # type: ignore[no-untyped-call]  # untyped in the library
        self.registry = CollectorRegistry(auto_describe=True)
        # The standard figures (CPU, memory, open files, GC, Python version), from the
        # library's collectors, which read the process itself whatever registry holds them.
        for standard in (PROCESS_COLLECTOR, PLATFORM_COLLECTOR, GC_COLLECTOR):
            self.registry.register(standard)
        self.rolling = rolling
        # The metrics changed on every RPC, offer or commit are the loop's own (see
        # router/loop_metrics.py), exposed as prometheus_client's would be.
        self.offers = LoopCounter(
            "contactrouter_offers_total",
            "Offers by outcome: made, accepted, declined, timed_out, withdrawn.",
            ["outcome"],
        )
        self.callbacks = Counter(
            "contactrouter_callbacks_total",
            "Queued callbacks by step: requested, dialled, reached, dial_failed, unreached.",
            ["step"],
            registry=self.registry,
        )
        self.routing_latency = LoopHistogram(
            "contactrouter_routing_latency_seconds",
            "From the routing decision to the offer pushed to the agent's stream.",
            _LATENCY_BUCKETS,
        )
        self.rpcs = LoopCounter(
            "contactrouter_rpcs_total",
            "Handled RPCs by method and status code.",
            ["method", "code"],
        )
        self.rpc_latency = LoopHistogram(
            "contactrouter_rpc_duration_seconds",
            "RPC handling time by method.",
            _LATENCY_BUCKETS,
            ["method"],
        )
        self.stream_duration = Histogram(
            "contactrouter_offer_stream_duration_seconds",
            "How long each agent's offer stream was open (the agent's presence), observed "
            "when it ends. Not an RPC latency: streams are kept out of "
            "contactrouter_rpc_duration_seconds.",
            buckets=_STREAM_BUCKETS,
            registry=self.registry,
        )
        self.batch_size = LoopHistogram(
            "contactrouter_db_batch_writes",
            "Rows written per group-commit transaction.",
            (1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000),
        )
        self.batch_latency = LoopHistogram(
            "contactrouter_db_batch_duration_seconds",
            "Time to run and commit one group-commit transaction.",
            _LATENCY_BUCKETS,
        )
        self.commit_callers = LoopCounter(
            "contactrouter_db_commit_callers",
            "Callers (RPCs, timers) whose writes a group commit wrote.",
        )
        self.commit_queued = LoopCounter(
            "contactrouter_db_commit_queued_seconds",
            "Seconds callers' writes waited for their commit to start (behind the one in "
            "flight), summed over callers.",
        )
        self.commit_waited = LoopCounter(
            "contactrouter_db_commit_wait_seconds",
            "Seconds callers waited from handing their writes over to their commit's end "
            "(queued, then their own commit), summed over callers.",
        )
        self.db_available = Gauge(
            "contactrouter_db_available",
            "1 while PostgreSQL takes writes, 0 during an outage (changes wait in memory).",
            registry=self.registry,
        )
        self.db_available.set(1)
        self.registry.register(
            LoopCollector(
                self.offers,
                self.routing_latency,
                self.rpcs,
                self.rpc_latency,
                self.batch_size,
                self.batch_latency,
                self.commit_callers,
                self.commit_queued,
                self.commit_waited,
            )
        )

    def observe_events(self, events: Sequence[Event], delivered: float) -> None:
        """Count offers and feed the rolling service level; `delivered` is epoch seconds."""
        for event in events:
            if isinstance(event, OfferWithdrawn):
                self.offers.inc(labels=("withdrawn",))
            elif isinstance(event, ContactEvent):
                self._observe_contact(event, delivered)
            elif isinstance(event, AgentEvent):
                continue

    def _observe_contact(self, event: ContactEvent, delivered: float) -> None:
        contact = event.contact
        if event.kind is ContactEventKind.OFFERED:
            self.offers.inc(labels=("made",))
            self.routing_latency.observe(max(0.0, delivered - event.at.timestamp()))
        elif event.kind is ContactEventKind.ANSWERED:
            self.offers.inc(labels=("accepted",))
            # A transferred contact is answered again by each leg's agent, but its
            # customer waited for an answer once: only the first counts.
            if contact.answered_at == event.at:
                wait = contact.open_wait_seconds(event.at)
                self.rolling.answered(contact.channel, event.at, wait)
        elif event.kind is ContactEventKind.DECLINED:
            self.offers.inc(labels=("declined",))
        elif event.kind is ContactEventKind.OFFER_TIMED_OUT:
            self.offers.inc(labels=("timed_out",))
        elif event.kind is ContactEventKind.ABANDONED:
            # A callback is not in the inbound calls' service level (docs/reporting.md).
            if contact.callback is None:
                wait = contact.open_wait_seconds(event.at)
                self.rolling.abandoned(contact.channel, event.at, wait)
        elif event.kind in _CALLBACK_STEPS:
            self.callbacks.labels(_CALLBACK_STEPS[event.kind]).inc()
            if event.kind is ContactEventKind.DIALLED:
                self.offers.inc(labels=("accepted",))

    def observe_batch(self, batch: BatchTiming) -> None:
        self.batch_size.observe(batch.rows)
        self.batch_latency.observe(batch.seconds)
        self.commit_callers.inc(batch.callers)
        self.commit_queued.inc(batch.queued)
        self.commit_waited.inc(batch.queued + batch.callers * batch.seconds)

    def observe_rpc(self, method: str, code: str, seconds: float) -> None:
        self.rpcs.inc(labels=(method, code))
        self.rpc_latency.observe(seconds, (method,))

    def observe_stream(self, seconds: float) -> None:
        """An offer stream ended after `seconds`."""
        self.stream_duration.observe(seconds)

    def render(self, accept: str = "") -> tuple[bytes, str]:
        """The exposition the `accept` header asks for (OpenMetrics, else the Prometheus
        text format) and its content type."""
        encode, content_type = choose_encoder(accept)
        return encode(self.registry), content_type


_CALLBACK_STEPS = {
    ContactEventKind.CALLBACK_REQUESTED: "requested",
    ContactEventKind.DIALLED: "dialled",
    ContactEventKind.REACHED: "reached",
    ContactEventKind.DIAL_FAILED: "dial_failed",
    ContactEventKind.UNREACHED: "unreached",
}


class LiveCollector(Collector):
    """Queue, agents and rolling service level, read when Prometheus scrapes."""

    def __init__(self, read: LiveReader) -> None:
        self._read = read

    def collect(self) -> Iterator[GaugeMetricFamily]:
        live = self._read()
        active = GaugeMetricFamily(
            "contactrouter_active", "1 on the active router, 0 on a standby."
        )
        active.add_metric([], 0 if live is None else 1)
        yield active
        if live is None:
            return
        snapshot, rolling, now, backlog, streams = live
        waiting = GaugeMetricFamily(
            "contactrouter_contacts_waiting", "Contacts queued now.", labels=["channel"]
        )
        offered = GaugeMetricFamily(
            "contactrouter_contacts_offered",
            "Contacts offered, not yet answered.",
            labels=["channel"],
        )
        oldest = GaugeMetricFamily(
            "contactrouter_oldest_wait_seconds",
            "Longest current wait among queued and offered contacts.",
            labels=["channel"],
        )
        unserved = GaugeMetricFamily(
            "contactrouter_contacts_unserved",
            "Contacts waiting that no signed-in agent could serve (skill missing, nobody "
            "signed in).",
            labels=["channel"],
        )
        level = GaugeMetricFamily(
            "contactrouter_service_level_ratio",
            "Answered within threshold / (answered + abandoned after the short-abandon "
            "limit), over the last 15 minutes.",
            labels=["channel"],
        )
        # The lines the level is held to, as configured: a dashboard draws these rather
        # than constants of its own.
        goal = GaugeMetricFamily(
            "contactrouter_service_level_goal_ratio",
            "The channel's service-level goal as configured (ROUTER_<CHANNEL>_SERVICE_LEVEL_GOAL).",
            labels=["channel"],
        )
        alarm = GaugeMetricFamily(
            "contactrouter_service_level_alarm_ratio",
            "The channel's alarm line as configured (ROUTER_<CHANNEL>_SERVICE_LEVEL_ALARM): "
            "a rolling service level below it is an alarm.",
            labels=["channel"],
        )
        for channel in Channel:
            goal.add_metric([channel.value], rolling.policy.of(channel).service_level_goal)
            alarm.add_metric([channel.value], rolling.policy.of(channel).service_level_alarm)
            waiting.add_metric([channel.value], snapshot.waiting[channel])
            offered.add_metric([channel.value], snapshot.offered[channel])
            oldest.add_metric([channel.value], snapshot.oldest_wait[channel])
            unserved.add_metric([channel.value], snapshot.unserved[channel])
            value = rolling.value(channel, now)
            if value is not None:
                level.add_metric([channel.value], value)
        agents = GaugeMetricFamily(
            "contactrouter_agents", "Signed-in agents by activity.", labels=["state"]
        )
        agents.add_metric(["idle"], snapshot.agents_idle)
        agents.add_metric(["busy"], snapshot.agents_busy)
        agents.add_metric(["away"], snapshot.agents_away)
        agents.add_metric(["disconnected"], snapshot.agents_disconnected)
        pending = GaugeMetricFamily(
            "contactrouter_db_pending_writes", "Writes waiting for the next commit."
        )
        pending.add_metric([], backlog)
        open_streams = GaugeMetricFamily(
            "contactrouter_offer_streams_open",
            "Offer streams open now (agents present on this router).",
        )
        open_streams.add_metric([], streams)
        yield from (waiting, offered, oldest, unserved, level, goal, alarm, agents, pending)
        yield open_streams


class WatchCollector(Collector):
    """WatchQueue's watchers and the pictures built for them, read when Prometheus
    scrapes: `read` returns (watchers open now, pictures built since the start)."""

    def __init__(self, read: Callable[[], tuple[int, int]]) -> None:
        self._read = read

    def collect(self) -> Iterator[GaugeMetricFamily | CounterMetricFamily]:
        watchers, built = self._read()
        open_watchers = GaugeMetricFamily(
            "contactrouter_queue_watchers",
            "WatchQueue streams open now (at most ROUTER_MAX_WATCHERS).",
        )
        open_watchers.add_metric([], watchers)
        pictures = CounterMetricFamily(
            "contactrouter_queue_pictures",
            "Pictures of the live queue built for WatchQueue: one per update, however many watch.",
        )
        pictures.add_metric([], built)
        yield from (open_watchers, pictures)


async def serve_metrics(metrics: RouterMetrics, host: str, port: int) -> asyncio.Server:
    """A minimal HTTP server answering GET /metrics (anything else: 404)."""

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            request = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5.0)
            path = request.split(b" ", 2)[1] if request.count(b" ") >= 2 else b""
            if request.startswith(b"GET ") and path.split(b"?")[0] == b"/metrics":
                body, content_type = metrics.render(_header(request, b"accept"))
                status = b"200 OK"
            else:
                body, status = b"not found; try /metrics\n", b"404 Not Found"
                content_type = "text/plain; charset=utf-8"
            writer.write(
                b"HTTP/1.1 " + status + b"\r\nContent-Type: " + content_type.encode() + b"\r\n"
                b"Content-Length: "
                + str(len(body)).encode()
                + b"\r\nConnection: close\r\n\r\n"
                + body
            )
            await writer.drain()
        except (
            TimeoutError,
            asyncio.IncompleteReadError,
            asyncio.LimitOverrunError,
            ConnectionError,
        ):
            pass
        finally:
            writer.close()

    try:
        return await asyncio.start_server(handle, host, port, limit=16 * 1024)
    except OSError as error:
        if error.errno == errno.EADDRINUSE:
            problem = (
                "is in use (another contact-router, or another exporter, listens there): "
                "stop it, or choose"
            )
        else:
            problem = f"cannot be bound ({error.strerror or error}): choose"
        raise StartupError(
            f"cannot serve metrics: metrics port {host}:{port} {problem} another port "
            "(--metrics-port, ROUTER_METRICS_PORT; off for no metrics)"
        ) from error


def _header(request: bytes, name: bytes) -> str:
    """The value of header `name` (lower case) in a raw HTTP request head, or ""."""
    for line in request.split(b"\r\n")[1:]:
        field, _, field_value = line.partition(b":")
        if field.strip().lower() == name:
            return field_value.strip().decode("latin-1")
    return ""
